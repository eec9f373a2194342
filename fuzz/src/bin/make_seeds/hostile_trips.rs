//! The generated hostile trip manifests, check reports and receipts (docs/transport.md), each
//! with the outcome every decoder must give (see `hcmr_fuzz::trips`).

use hcmr::manifest::{self, CheckReport, Measure, Receipt, SignedManifest};
use hcmr_core::testkit::{check_report, gd_key, handover, js_key, refusal, trip, zj_key};

use super::hostile::{stranger, Case, Input};
use super::*;

/// The COSE bytes inside a manifest string.
fn cose_of(s: &str) -> Vec<u8> {
    SignedManifest::decode(s)
        .expect("a fixture manifest")
        .cose_bytes()
        .to_vec()
}

fn manifest_of(cose: &[u8]) -> String {
    format!("{}{}", manifest::PREFIX, base45::encode(cose))
}

/// `payload` in hcmr's envelope under `kid`, signed by `key` over the real Sig_structure.
fn sign_under(payload: &[u8], kid: &[u8], key: &NodeKey) -> Vec<u8> {
    let protected = cbor(&Value::Map(vec![
        (
            Value::Integer(Integer::from(1)),
            Value::Integer(Integer::from(-8)),
        ),
        (Value::Integer(Integer::from(4)), Value::Bytes(kid.to_vec())),
    ]));
    let tbs = cbor(&Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.clone()),
        Value::Bytes(vec![]),
        Value::Bytes(payload.to_vec()),
    ]));
    untagged(vec![
        Value::Bytes(protected),
        Value::Map(vec![]),
        Value::Bytes(payload.to_vec()),
        Value::Bytes(key.sign(&tbs).to_vec()),
    ])
}

/// A payload's items edited, re-encoded and signed by `key`.
fn edited(payload: &[u8], key: &NodeKey, edit: impl FnOnce(&mut Vec<Value>)) -> Vec<u8> {
    let Value::Array(mut items) = uncbor(payload) else {
        unreachable!("a trip payload is an array")
    };
    edit(&mut items);
    hcmr::code::cose::sign(cbor(&Value::Array(items)), key).bytes
}

/// The trip cases, in the order the corpus lists them.
pub(super) fn cases(v: &mut Vec<Case>) {
    manifest_cases(v);
    record_cases(v);
}

fn manifest_cases(v: &mut Vec<Case>) {
    let good = manifest::sign(&trip(3), &sc_key());
    let good_cose = cose_of(&good);
    v.push(Case {
        name: "manifest_valid_control",
        target: "manifest",
        input: Input::Text(good.clone()),
        why: "control: Sichuan's 3-person trip, checked at Anhui an hour after departure",
        expect: &[("decode", "ok"), ("check", "pass")],
    });
    v.push(Case {
        name: "manifest_forged_by_stranger",
        target: "manifest",
        input: Input::Text(manifest::sign(&trip(3), &stranger())),
        why: "the trip signed by a key no province has, under its own kid",
        expect: &[("decode", "ok"), ("check", "unknown_key")],
    });
    v.push(Case {
        name: "manifest_resigned_by_guangdong_under_sichuan_kid",
        target: "manifest",
        input: Input::Text(manifest_of(&sign_under(
            &trip(3).to_cbor(),
            &sc_key().kid().0,
            &gd_key(),
        ))),
        why: "another province's key re-signs the trip under Sichuan's kid",
        expect: &[("decode", "ok"), ("check", "bad_signature")],
    });
    v.push(Case {
        name: "manifest_truncated",
        target: "manifest",
        input: Input::Text(manifest_of(&good_cose[..good_cose.len() - 6])),
        why: "the COSE bytes cut short (a QR code read in part)",
        expect: &[("decode", "cbor.malformed"), ("check", "malformed")],
    });
    v.push(Case {
        name: "manifest_people_bit_flipped",
        target: "manifest",
        input: Input::Text({
            let mut c = good_cose.clone();
            let seat_3_flags = c.len() - 64 - 2 - 13;
            c[seat_3_flags] ^= 0b0000_1000;
            manifest_of(&c)
        }),
        why: "seat 3's status turned from green to red after signing",
        expect: &[("decode", "ok"), ("check", "bad_signature")],
    });
    v.push(Case {
        name: "manifest_prefix_hcmrt2",
        target: "manifest",
        input: Input::Text(good.replacen("HCMRT1:", "HCMRT2:", 1)),
        why: "an unknown version of the manifest format",
        expect: &[("decode", "prefix.foreign"), ("check", "malformed")],
    });
    v.push(Case {
        name: "manifest_oversized",
        target: "manifest",
        input: Input::Text({
            let mut c = good_cose.clone();
            c.resize(2049, 0);
            manifest_of(&c)
        }),
        why: "COSE bytes over the 2,048 accepted",
        expect: &[("decode", "base45.too_large"), ("check", "malformed")],
    });
    v.push(Case {
        name: "manifest_100_people",
        target: "manifest",
        input: Input::Text(manifest::sign(&trip(100), &sc_key())),
        why: "a genuine signature over 100 people, one more than a manifest holds",
        expect: &[("decode", "manifest.field(people)"), ("check", "malformed")],
    });
    v.push(Case {
        name: "manifest_not_canonical",
        target: "manifest",
        input: Input::Text({
            let p = trip(3).to_cbor();
            // Version 1 (after the array head and the 9-byte trip id) as 0x18 0x01.
            let mut x = p[..10].to_vec();
            x.extend_from_slice(&[0x18, 0x01]);
            x.extend_from_slice(&p[11..]);
            manifest_of(&hcmr::code::cose::sign(x, &sc_key()).bytes)
        }),
        why: "a genuine signature over a second encoding of the same manifest",
        expect: &[("decode", "manifest.not_canonical"), ("check", "malformed")],
    });
}

fn record_cases(v: &mut Vec<Case>) {
    let report = check_report().sign(&js_key());
    let receipt = handover().sign(&zj_key());
    v.push(Case {
        name: "report_valid_control",
        target: "report",
        input: Input::Bytes(report.clone()),
        why: "control: Jiangsu's STOP report (superseded; seat 2 revoked)",
        expect: &[("decode", "ok")],
    });
    v.push(Case {
        name: "report_truncated",
        target: "report",
        input: Input::Bytes(report[..report.len() - 6].to_vec()),
        why: "the report cut short",
        expect: &[("decode", "cbor.malformed")],
    });
    v.push(Case {
        name: "report_verdict_3",
        target: "report",
        input: Input::Bytes(edited(&check_report().to_cbor(), &js_key(), |items| {
            items[6] = Value::Integer(Integer::from(3));
        })),
        why: "a verdict that is neither PASS (1) nor STOP (2)",
        expect: &[("decode", "record.field(verdict)")],
    });
    v.push(Case {
        name: "report_pass_with_reasons",
        target: "report",
        input: Input::Bytes(
            CheckReport {
                verdict: hcmr::manifest::ReportVerdict::Pass,
                ..check_report()
            }
            .sign(&js_key()),
        ),
        why: "a PASS that carries reasons",
        expect: &[("decode", "record.field(reasons)")],
    });
    v.push(Case {
        name: "report_other_algorithm",
        target: "report",
        input: Input::Bytes({
            let mut parts = cose_parts(&report);
            parts[0] = Value::Bytes(cbor(&Value::Map(vec![
                (
                    Value::Integer(Integer::from(1)),
                    Value::Integer(Integer::from(-7)),
                ),
                (
                    Value::Integer(Integer::from(4)),
                    Value::Bytes(js_key().kid().0.to_vec()),
                ),
            ])));
            untagged(parts)
        }),
        why: "ES256 (-7) in the protected header",
        expect: &[("decode", "cose.alg")],
    });
    v.push(Case {
        name: "receipt_valid_control",
        target: "receipt",
        input: Input::Bytes(receipt.clone()),
        why: "control: Zhejiang's handover (one under observation, one missing)",
        expect: &[("decode", "ok")],
    });
    v.push(Case {
        name: "receipt_refusal_with_people",
        target: "receipt",
        input: Input::Bytes(
            Receipt {
                people: handover().people,
                ..refusal()
            }
            .sign(&zj_key()),
        ),
        why: "a refusal that lists people",
        expect: &[("decode", "record.field(people)")],
    });
    v.push(Case {
        name: "receipt_measure_4",
        target: "receipt",
        input: Input::Bytes(edited(&handover().to_cbor(), &zj_key(), |items| {
            if let Value::Array(people) = &mut items[7] {
                if let Value::Array(p) = &mut people[1] {
                    p[2] = Value::Integer(Integer::from(4));
                }
            }
        })),
        why: "a measure beyond 3 (sent to hospital)",
        expect: &[("decode", "record.field(measure)")],
    });
    v.push(Case {
        name: "receipt_reason_control_character",
        target: "receipt",
        input: Input::Bytes(edited(&handover().to_cbor(), &zj_key(), |items| {
            if let Value::Array(people) = &mut items[7] {
                if let Value::Array(p) = &mut people[1] {
                    p[3] = Value::Text("体温\u{1b}[2J".into());
                }
            }
        })),
        why: "an escape sequence in a person's reason",
        expect: &[("decode", "record.character(reason)")],
    });
    v.push(Case {
        name: "receipt_missing_person_quarantined",
        target: "receipt",
        input: Input::Bytes({
            let mut r = handover();
            r.people[2].measure = Measure::Quarantine;
            r.sign(&zj_key())
        }),
        why: "a measure for a person marked missing",
        expect: &[("decode", "record.field(measure)")],
    });
    v.push(Case {
        name: "receipt_hash_31_bytes",
        target: "receipt",
        input: Input::Bytes(edited(&handover().to_cbor(), &zj_key(), |items| {
            items[2] = Value::Bytes(vec![0xec; 31]);
        })),
        why: "a manifest hash one byte short of SHA-256",
        expect: &[("decode", "record.field(manifest_hash)")],
    });
    v.push(Case {
        name: "receipt_trailing_byte",
        target: "receipt",
        input: Input::Bytes({
            let mut b = receipt.clone();
            b.push(0);
            b
        }),
        why: "a byte after the COSE_Sign1",
        expect: &[("decode", "cbor.trailing")],
    });
}

/// The seed corpora of the trip targets.
pub(super) fn seeds(dir: &Path) {
    let f = hcmr_fuzz::trips::trip_fixtures();
    let m = dir.join("manifest_decoder");
    for (name, s) in &f.manifests {
        write(&m.join(format!("{name}.txt")), s.as_bytes());
        write(&m.join(format!("{name}.cose")), &cose_of(s));
    }
    write(&m.join("trip_3.payload"), &trip(3).to_cbor());
    for (name, b) in &f.reports {
        write(&dir.join(format!("report_decoder/{name}.cose")), b);
    }
    for (name, b) in &f.receipts {
        write(&dir.join(format!("receipt_decoder/{name}.cose")), b);
    }
}

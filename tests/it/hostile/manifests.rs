//! Trip manifests (docs/transport.md sections 2, 3 and 5): forged, truncated, re-signed,
//! flipped, of an unknown version, oversized, over-full and non-canonical manifests. Each case's
//! outcome is `decode / check`: what `SignedManifest::decode` says (`decoded`, or the error's
//! identifier with the field or seat it names) and the verdict of `manifest::check` at an Anhui
//! checkpoint on the trip's route an hour after departure (`pass`, or the STOP reasons).

use hcmr::manifest::{self, ManifestError, ManifestVerdict, SignedManifest};
use hcmr_core::testkit::{ah_key, transit_checkpoint, trip};

use super::*;

/// When the checkpoint checks: an hour after the fixture trip's planned departure.
fn at() -> hcmr::UnixTime {
    NOW + 2 * 3600
}

/// The fixture trip's payload (3 people).
fn payload() -> Vec<u8> {
    trip(3).to_cbor()
}

/// The fixture trip of 3 people, signed by Sichuan: passes the checkpoint.
fn good() -> String {
    manifest::sign(&trip(3), &sc_key())
}

fn good_cose() -> Vec<u8> {
    SignedManifest::decode(&good())
        .expect("the fixture decodes")
        .cose_bytes()
        .to_vec()
}

/// `HCMRT1:` + Base45 of COSE bytes.
fn mwrap(cose: &[u8]) -> String {
    format!("{}{}", manifest::PREFIX, base45::encode(cose))
}

/// `payload` signed by `key` under `kid` (hcmr's envelope), wrapped.
fn signed_as(payload: &[u8], kid: &[u8], key: &NodeKey) -> String {
    mwrap(&sign1_with(std_protected(kid), vec![], payload, key))
}

fn decode_detail(e: &ManifestError) -> String {
    match e {
        ManifestError::Field { field, .. } | ManifestError::TextCharacter { field, .. } => {
            format!("{}({field})", e.code())
        }
        ManifestError::Person { seat, .. } => format!("{}(seat {seat})", e.code()),
        _ => e.code().to_string(),
    }
}

/// `decode / check` for `s` at the Anhui checkpoint, the trip's highest version seen there
/// being `seen`. A string that does not decode stops at `malformed` alone.
fn outcome_seen(s: &str, seen: Option<u32>) -> String {
    let decoded = SignedManifest::decode(s);
    let v = manifest::check(s, &transit_checkpoint(), at(), seen);
    let verdict = match &v {
        ManifestVerdict::Pass(_) => "pass".to_string(),
        ManifestVerdict::Stop(stop) => stop
            .reasons
            .iter()
            .map(|r| r.reason.as_str())
            .collect::<Vec<_>>()
            .join(","),
    };
    let d = match &decoded {
        Ok(_) => "decoded".to_string(),
        Err(e) => {
            assert_eq!(verdict, "malformed", "an undecodable manifest: {v:?}");
            decode_detail(e)
        }
    };
    format!("{d} / {verdict}")
}

fn outcome(s: &str) -> String {
    outcome_seen(s, None)
}

/// The outcome of the fixture trip's payload as CBOR items, edited, re-encoded and signed by
/// Sichuan.
fn with_items(edit: impl FnOnce(&mut Vec<Value>)) -> String {
    let Value::Array(mut items) = ciborium::from_reader(trip(3).to_cbor().as_slice()).unwrap()
    else {
        unreachable!("a manifest is an array")
    };
    edit(&mut items);
    let k = sc_key();
    outcome(&signed_as(&cbor(&Value::Array(items)), &k.kid().0, &k))
}

/// Flips bit 0 of COSE byte `i` of the good manifest.
fn flipped(i: usize) -> String {
    flipped_bits(i, 0x01)
}

/// Flips the bits `mask` of COSE byte `i` of the good manifest.
fn flipped_bits(i: usize, mask: u8) -> String {
    let mut c = good_cose();
    c[i] ^= mask;
    mwrap(&c)
}

/// The manifests family of the hostile table: (name, expected outcome, run).
#[allow(clippy::too_many_lines)]
pub(super) fn cases() -> Vec<(&'static str, &'static str, Run)> {
    let mut v = Vec::new();

    v.push(case("manifest: control", "decoded / pass", || {
        outcome(&good())
    }));

    // --- forged and re-signed ---
    v.push(case(
        "manifest: forged, a stranger's key and kid",
        "decoded / unknown_key",
        || outcome(&manifest::sign(&trip(3), &stranger())),
    ));
    v.push(case(
        "manifest: forged, a stranger signs under Sichuan's kid",
        "decoded / bad_signature",
        || outcome(&signed_as(&payload(), &sc_key().kid().0, &stranger())),
    ));
    v.push(case(
        "manifest: re-signed by Guangdong's key",
        "decoded / unknown_key",
        || outcome(&manifest::sign(&trip(3), &gd_key())),
    ));
    v.push(case(
        "manifest: re-signed by the checkpoint's own (Anhui's) key",
        "decoded / unknown_key",
        || outcome(&manifest::sign(&trip(3), &ah_key())),
    ));
    v.push(case(
        "manifest: re-signed by Guangdong under Sichuan's kid",
        "decoded / bad_signature",
        || outcome(&signed_as(&payload(), &sc_key().kid().0, &gd_key())),
    ));
    v.push(case(
        "manifest: re-signed by Sichuan's next key, not yet announced",
        "decoded / unknown_key",
        || outcome(&manifest::sign(&trip(3), &sc_key2())),
    ));
    v.push(case(
        "manifest: Guangdong signs a trip from Guangdong (no agreement here)",
        "decoded / unknown_issuer",
        || {
            let mut m = trip(3);
            m.origin = 440106;
            outcome(&manifest::sign(&m, &gd_key()))
        },
    ));
    v.push(case(
        "manifest: Sichuan's key signs a trip it says leaves from Jiangsu",
        "decoded / unknown_issuer",
        || {
            let mut m = trip(3);
            m.origin = 320100;
            outcome(&manifest::sign(&m, &sc_key()))
        },
    ));

    // --- truncated ---
    v.push(case(
        "manifest: Base45 characters cut to a length of 1 modulo 3",
        "base45.length / malformed",
        || {
            // Base45 refuses a length of 1 modulo 3.
            let mut s = good();
            s.pop();
            while (s.len() - manifest::PREFIX.len()) % 3 != 1 {
                s.pop();
            }
            outcome(&s)
        },
    ));
    v.push(case(
        "manifest: the COSE cut inside the signature",
        "cbor.malformed / malformed",
        || {
            let c = good_cose();
            outcome(&mwrap(&c[..c.len() - 10]))
        },
    ));
    v.push(case(
        "manifest: the COSE cut in half",
        "cbor.malformed / malformed",
        || {
            let c = good_cose();
            outcome(&mwrap(&c[..c.len() / 2]))
        },
    ));
    v.push(case(
        "manifest: the prefix alone (no COSE bytes)",
        "cbor.malformed / malformed",
        || outcome(manifest::PREFIX),
    ));
    v.push(case(
        "manifest: the people cut to 12 bytes of seat 3",
        "manifest.field(people) / malformed",
        || {
            with_items(|items| {
                let Value::Bytes(p) = &mut items[12] else {
                    unreachable!()
                };
                p.pop();
            })
        },
    ));
    v.push(case(
        "manifest: the last field dropped",
        "manifest.not_array / malformed",
        || {
            with_items(|items| {
                items.pop();
            })
        },
    ));

    // --- bit flips ---
    v.push(case(
        "manifest flip: a person's status bits",
        "decoded / bad_signature",
        || {
            let c = good_cose();
            // Seat 3's flags: the last person's first byte, before the signature (64 bytes
            // and its 2-byte head).
            // status 01 (green) to 11 (red).
            let i = c.len() - 64 - 2 - 13;
            outcome(&flipped_bits(i, 0b0000_1000))
        },
    ));
    v.push(case(
        "manifest flip: the signature's first byte",
        "decoded / bad_signature",
        || outcome(&flipped(good_cose().len() - 64)),
    ));
    v.push(case(
        "manifest flip: the signature's last byte",
        "decoded / bad_signature",
        || outcome(&flipped(good_cose().len() - 1)),
    ));
    v.push(case(
        "manifest flip: a kid byte",
        "decoded / unknown_key",
        || {
            let c = good_cose();
            outcome(&flipped(find(&c, &sc_key().kid().0)))
        },
    ));
    v.push(case(
        "manifest flip: alg -8 -> -7",
        "cose.alg / malformed",
        || {
            let c = good_cose();
            outcome(&flipped(find(&c, &[0x01, 0x27]) + 1))
        },
    ));
    v.push(case(
        "manifest flip: the trip id",
        "decoded / bad_signature",
        || {
            let c = good_cose();
            outcome(&flipped(find(&c, &[0x48, 0x7e, 0x7e]) + 1))
        },
    ));
    v.push(case(
        "manifest flip: a person's reserved bit 0",
        "manifest.person(seat 1) / malformed",
        || {
            let c = good_cose();
            outcome(&flipped(c.len() - 64 - 2 - 3 * 13))
        },
    ));

    // --- versions and other formats ---
    v.push(case(
        "manifest: unknown format version HCMRT2:",
        "prefix.foreign / malformed",
        || outcome(&good().replacen("HCMRT1:", "HCMRT2:", 1)),
    ));
    v.push(case(
        "manifest: a health code shown as a manifest",
        "prefix.foreign / malformed",
        || outcome(&good_code()),
    ));
    v.push(case(
        "manifest: lower-case prefix",
        "prefix.foreign / malformed",
        || outcome(&good().replacen("HCMRT1:", "hcmrt1:", 1)),
    ));
    v.push(case(
        "manifest: version 1 shown after version 2 was seen (replay)",
        "decoded / superseded",
        || outcome_seen(&good(), Some(2)),
    ));
    v.push(case(
        "manifest: version 0",
        "manifest.field(version) / malformed",
        || with_items(|items| items[1] = int(0)),
    ));

    // --- oversized ---
    v.push(case(
        "manifest: 100 people, one more than allowed",
        "manifest.field(people) / malformed",
        || outcome(&manifest::sign(&trip(100), &sc_key())),
    ));
    v.push(case(
        "manifest: 99 people, the most allowed (control)",
        "decoded / pass",
        || outcome(&manifest::sign(&trip(99), &sc_key())),
    ));
    v.push(case(
        "manifest: COSE of 2,049 bytes",
        "base45.too_large / malformed",
        || {
            let mut c = good_cose();
            c.resize(2049, 0);
            outcome(&mwrap(&c))
        },
    ));
    v.push(case(
        "manifest: 4,097 characters",
        "prefix.too_long / malformed",
        || outcome(&format!("{}{}", manifest::PREFIX, "0".repeat(4090))),
    ));
    v.push(case(
        "manifest: a 17-byte vehicle",
        "manifest.field(vehicle) / malformed",
        || with_items(|items| items[5] = Value::Text("川R·1234567890X".into())),
    ));

    // --- non-canonical CBOR ---
    v.push(case(
        "manifest: version 1 written with a 1-byte head (0x18 0x01)",
        "manifest.not_canonical / malformed",
        || {
            let p = payload();
            // The trip id (0x48 and 8 bytes) follows the array head; then version 1.
            assert_eq!(p[10], 0x01);
            let mut x = p[..10].to_vec();
            x.extend_from_slice(&[0x18, 0x01]);
            x.extend_from_slice(&p[11..]);
            let k = sc_key();
            outcome(&signed_as(&x, &k.kid().0, &k))
        },
    ));
    v.push(case(
        "manifest: the manifest array of indefinite length",
        "manifest.not_canonical / malformed",
        || {
            let mut x = payload();
            x[0] = 0x9f;
            x.push(0xff);
            let k = sc_key();
            outcome(&signed_as(&x, &k.kid().0, &k))
        },
    ));
    v.push(case(
        "manifest: the payload's length in a longer head",
        "cbor.not_canonical / malformed",
        || {
            // After the protected header (0x4d and 13 bytes) and the empty map (0xa0), the
            // payload's bstr head 0x58 (1-byte length) is rewritten as 0x59 (2-byte length).
            let c = good_cose();
            assert_eq!(c[16], 0x58);
            let mut x = c[..16].to_vec();
            x.extend_from_slice(&[0x59, 0x00]);
            x.extend_from_slice(&c[17..]);
            outcome(&mwrap(&x))
        },
    ));
    v.push(case(
        "manifest: a trailing byte after the COSE",
        "cbor.trailing / malformed",
        || {
            let mut c = good_cose();
            c.push(0);
            outcome(&mwrap(&c))
        },
    ));
    v.push(case(
        "manifest: a trailing byte after the payload",
        "manifest.trailing / malformed",
        || {
            let mut x = payload();
            x.push(0);
            let k = sc_key();
            outcome(&signed_as(&x, &k.kid().0, &k))
        },
    ));
    v.push(case(
        "manifest: tagged COSE_Sign1 (18)",
        "cose.tag / malformed",
        || {
            let mut x = vec![0xd2];
            x.extend_from_slice(&good_cose());
            outcome(&mwrap(&x))
        },
    ));

    v
}

#[test]
fn every_case_gives_its_expected_outcome() {
    run_cases("manifests", &cases());
}

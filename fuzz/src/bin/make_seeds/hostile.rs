//! The generated part of the hostile corpus (`tests/hostile/`): each case an input and the
//! outcome each decoder must give, fixed here by hand.

use super::*;

/// One generated hostile case.
pub(super) struct Case {
    /// The file name, without extension.
    pub(super) name: &'static str,
    /// The decoder family the corpus test feeds it to (`code`, `agreement`, `feed`, `manifest`,
    /// `report`, `receipt`).
    pub(super) target: &'static str,
    /// The hostile input.
    pub(super) input: Input,
    /// What the input tries, for the reader of the `.expect` file.
    pub(super) why: &'static str,
    /// Each check and the outcome it must give.
    pub(super) expect: &'static [(&'static str, &'static str)],
}

/// A case's input: written as text (`.txt`) or as hex lines (`.hex`).
pub(super) enum Input {
    /// A string, as shown at a checkpoint.
    Text(String),
    /// Bytes, as read from a store or a file.
    Bytes(Vec<u8>),
}

/// A key no province uses: a forger's.
pub(super) fn stranger() -> NodeKey {
    NodeKey::from_seed(&[0x99; 32])
}

/// Every case, in the order the corpus lists them.
pub(super) fn hostile_cases() -> Vec<Case> {
    let f = fixtures();
    let mut v = Vec::new();
    super::hostile_codes::cases(f, &mut v);
    agreement_cases(f, &mut v);
    feed_cases(f, &mut v);
    year_10000_cases(f, &mut v);
    super::hostile_trips::cases(&mut v);
    v
}

/// Agreement records, bodies and terminations.
fn agreement_cases(f: &Fixtures, v: &mut Vec<Case>) {
    let v1 = &f.agreement_v1;
    v.push(Case {
        name: "agreement_valid_control",
        target: "agreement",
        input: Input::Bytes(v1.to_record()),
        why: "control: the concluded agreement record",
        expect: &[("record", "ok"), ("signatures", "ok"), ("snapshot", "ok")],
    });
    v.push(Case {
        name: "agreement_proposed_only",
        target: "agreement",
        input: Input::Bytes(f.agreement_v2_proposed.to_record()),
        why: "an amendment the acceptor never signed",
        expect: &[
            ("record", "ok"),
            ("signatures", "Unsigned"),
            ("snapshot", "Unsigned"),
        ],
    });
    v.push(Case {
        name: "agreement_acceptor_signature_flipped",
        target: "agreement",
        input: Input::Bytes({
            let mut s = v1.acceptor_signature.expect("concluded");
            s.signature[10] ^= 0x01;
            SignedAgreement::from_parts(v1.encoded().to_vec(), v1.proposer_signature, Some(s))
                .expect("fixture body")
                .to_record()
        }),
        why: "one bit of the acceptor's signature flipped",
        expect: &[("record", "ok"), ("signatures", "BadSignature")],
    });
    v.push(Case {
        name: "agreement_signed_by_stranger",
        target: "agreement",
        input: Input::Bytes({
            let k = stranger();
            let mut msg = b"hcmr-agreement-v1\0".to_vec();
            msg.extend_from_slice(v1.encoded());
            let s = AgreementSignature {
                kid: k.kid(),
                signature: k.sign(&msg),
            };
            SignedAgreement::from_parts(v1.encoded().to_vec(), v1.proposer_signature, Some(s))
                .expect("fixture body")
                .to_record()
        }),
        why: "a valid signature by a key the agreement does not pin",
        expect: &[("record", "ok"), ("signatures", "SignerNotPinned")],
    });
    v.push(Case {
        name: "agreement_body_not_canonical",
        target: "agreement",
        input: Input::Bytes({
            // The version (uint 1, one byte 0x01) written as a two-byte uint (0x18 0x01).
            let b = v1.encoded();
            let at = b.windows(2).position(|w| w == [0x50, 0x5c]).expect("id") + 17;
            let mut nb = b[..at].to_vec();
            nb.extend_from_slice(&[0x18, b[at]]);
            nb.extend_from_slice(&b[at + 1..]);
            cbor(&Value::Array(vec![
                Value::Bytes(nb),
                Value::Null,
                Value::Null,
            ]))
        }),
        why: "the body's version in a two-byte integer: same value, not canonical",
        expect: &[("record", "NotCanonical")],
    });
    v.push(Case {
        name: "agreement_body_truncated",
        target: "agreement",
        input: Input::Bytes(v1.encoded()[..v1.encoded().len() - 9].to_vec()),
        why: "body bytes cut short",
        expect: &[("body", "Decode"), ("record", "Decode")],
    });
    v.push(Case {
        name: "termination_valid_control",
        target: "agreement",
        input: Input::Bytes(f.termination.to_record()),
        why: "control: Guangdong's termination notice",
        expect: &[
            ("termination", "ok"),
            ("termination_check", "ok"),
            ("termination_snapshot", "ok"),
        ],
    });
    v.push(Case {
        name: "termination_postponed",
        target: "agreement",
        input: Input::Bytes({
            let t = Termination {
                effective_at: f.termination.effective_at + 1000 * hcmr_fuzz::DAY,
                ..f.termination.clone()
            };
            t.to_record()
        }),
        why: "the termination's date moved, the signature kept",
        expect: &[
            ("termination", "ok"),
            ("termination_check", "BadSignature"),
            ("termination_snapshot", "BadSignature"),
        ],
    });
}

/// Feed batches and bundles.
fn feed_cases(f: &Fixtures, v: &mut Vec<Case>) {
    let sc = &f.sc_feed;
    v.push(Case {
        name: "feed_valid_control",
        target: "feed",
        input: Input::Bytes(encode_batch(sc)),
        why: "control: Sichuan's whole feed, rotation included",
        expect: &[("batch", "ok"), ("bundle", "Malformed")],
    });
    v.push(Case {
        name: "feed_gap",
        target: "feed",
        input: Input::Bytes(encode_batch(&[sc[0].clone(), sc[1].clone(), sc[3].clone()])),
        why: "entry 3 left out",
        expect: &[("batch", "Gap")],
    });
    v.push(Case {
        name: "feed_revocation_by_stranger",
        target: "feed",
        input: Input::Bytes({
            let e = FeedEntry::sign(
                prov(SC),
                Some(&sc[0]),
                NOW,
                Statement::RevokeCode { cti: [0xc7; 16] },
                &stranger(),
            );
            encode_batch(&[sc[0].clone(), e])
        }),
        why: "a revocation chained correctly but signed by a key not in the chain",
        expect: &[("batch", "BadSignature")],
    });
    v.push(Case {
        name: "feed_entry_without_genesis",
        target: "feed",
        input: Input::Bytes(sc[1].to_record()),
        why: "entry 2 applied to an empty state",
        expect: &[("record", "ok"), ("apply", "Gap")],
    });
    v.push(Case {
        name: "feed_old_key_after_rotation",
        target: "feed",
        input: Input::Bytes({
            let e = FeedEntry::sign(
                prov(SC),
                sc.last(),
                NOW,
                Statement::RevokeCode { cti: [0x0f; 16] },
                &sc_key(),
            );
            let mut b = sc.clone();
            b.push(e);
            encode_batch(&b)
        }),
        why: "the retired first key signs after the rotation",
        expect: &[("batch", "BadSignature")],
    });
    v.push(Case {
        name: "bundle_valid_control",
        target: "feed",
        input: Input::Bytes(f.bundle.clone()),
        why: "control: Guangdong's bundle",
        expect: &[("bundle", "ok")],
    });
    v.push(Case {
        name: "bundle_signature_flipped",
        target: "feed",
        input: Input::Bytes({
            let mut b = f.bundle.clone();
            let n = b.len();
            b[n - 1] ^= 0x01;
            b
        }),
        why: "the bundle's last signature byte flipped",
        expect: &[("bundle", "BadSignature")],
    });
    v.push(Case {
        name: "bundle_truncated",
        target: "feed",
        input: Input::Bytes(f.bundle[..f.bundle.len() / 2].to_vec()),
        why: "half a bundle file",
        expect: &[("bundle", "Truncated")],
    });
}

/// Times after the year 9999 (found by the agreement_decoder fuzz target; fixed).
fn year_10000_cases(f: &Fixtures, v: &mut Vec<Case>) {
    let v1 = &f.agreement_v1;
    let sc = &f.sc_feed;
    let year_10000 = hcmr::UnixTime::from_secs(MAX_TIME + 1);
    v.push(Case {
        name: "agreement_concluded_window_from_year_10000",
        target: "agreement",
        input: Input::Bytes({
            // Signed by both fixture keys, as a peer could propose and an operator accept.
            let mut b = v1.body().clone();
            for d in &mut b.directions {
                d.effective_from = year_10000;
                d.effective_until = year_10000 + 1;
            }
            let body = b.encode();
            let mut msg = b"hcmr-agreement-v1\0".to_vec();
            msg.extend_from_slice(&body);
            let sig = |k: &NodeKey| {
                Value::Array(vec![
                    Value::Bytes(k.kid().0.to_vec()),
                    Value::Bytes(k.sign(&msg).to_vec()),
                ])
            };
            cbor(&Value::Array(vec![
                Value::Bytes(body),
                sig(&sc_key()),
                sig(&hcmr_fuzz::gd_key()),
            ]))
        }),
        why: "a concluded agreement in force from the year 10000: verify showed its start \
              with hcmr::rfc3339, which panics after 9999-12-31",
        expect: &[("record", "TimeTooLarge"), ("body", "Decode")],
    });
    v.push(Case {
        name: "termination_effective_year_10000",
        target: "agreement",
        input: Input::Bytes(
            Termination::sign(
                f.termination.id,
                f.termination.by,
                year_10000,
                NOW - hcmr_fuzz::DAY,
                &hcmr_fuzz::gd_key(),
            )
            .to_record(),
        ),
        why: "a genuine termination effective in the year 10000: the node shows a stored \
              termination's date when asked to accept or amend",
        expect: &[
            ("termination", "ok"),
            ("termination_check", "TimeTooLarge"),
            ("termination_snapshot", "TimeTooLarge"),
            ("signed_termination", "TimeTooLarge"),
        ],
    });
    v.push(Case {
        name: "feed_withdrawal_in_year_10000",
        target: "feed",
        input: Input::Bytes({
            // Sichuan's chain up to the rotation, then the old key withdrawn in the year 10000:
            // verifying a code of the old key showed the withdrawal time and panicked.
            let w = FeedEntry::sign(
                prov(SC),
                Some(&sc[3]),
                year_10000,
                Statement::KeyWithdrawal {
                    key: sc_key().public(),
                },
                &sc_key2(),
            );
            encode_batch(&[
                sc[0].clone(),
                sc[1].clone(),
                sc[2].clone(),
                sc[3].clone(),
                w,
            ])
        }),
        why: "a genuine feed entry dated after the year 9999",
        expect: &[("batch", "BadStatement")],
    });
    v.push(Case {
        name: "bundle_exported_in_year_10000",
        target: "feed",
        input: Input::Bytes({
            let content = BundleContent {
                province: prov(hcmr_fuzz::GD),
                exported_at: year_10000,
                policy: Policy {
                    clock_skew_secs: u64::MAX,
                    own_max_code_age_secs: 7 * hcmr_fuzz::DAY,
                },
                own_feed: f.gd_feed.clone(),
                peers: vec![],
                agreements: vec![],
                terminations: vec![],
            };
            hcmr::bundle::export(&content, &hcmr_fuzz::gd_key())
        }),
        why: "a genuine bundle exported in the year 10000 with an unbounded clock skew: \
              `hcmr verify --bundle` shows the export time",
        expect: &[("bundle", "Malformed")],
    });
}

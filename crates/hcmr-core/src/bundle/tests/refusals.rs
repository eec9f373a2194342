//! Every way a bundle is refused: tampering, anchors, age, retired keys, unsound content, garbage.

use super::*;

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

/// Decodes a bundle file into its five elements.
fn parts(b: &[u8]) -> Vec<Value> {
    match crate::cbor::decode_exact(b).unwrap() {
        Value::Array(a) => a,
        _ => unreachable!(),
    }
}

fn content_bytes(b: &[u8]) -> Vec<u8> {
    match &parts(b)[2] {
        Value::Bytes(c) => c.clone(),
        _ => unreachable!(),
    }
}

/// The bundle `b` with its content replaced (the signature left as it is).
fn with_content(b: &[u8], c: Vec<u8>) -> Vec<u8> {
    let mut p = parts(b);
    p[2] = Value::Bytes(c);
    crate::cbor::encode(&Value::Array(p))
}

#[test]
fn a_tampered_content_byte_is_refused() {
    let b = bundle();
    let c = content_bytes(&b);
    // content = array(8), uint 510000 (5 bytes), exported_at (0x1a + 4 bytes): change the
    // export time by one second.
    assert_eq!(&c[..7], &[0x88, 0x1a, 0x00, 0x07, 0xc8, 0x30, 0x1a]);
    let mut t = c.clone();
    t[10] ^= 0x01;
    assert_eq!(
        open(&with_content(&b, t), sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
    // A changed byte anywhere in the content is refused: the first 32 bytes, then every 13th
    // (each open re-verifies signatures, which is slow in debug builds).
    assert!(c.len() > 1_000, "{} bytes", c.len());
    for i in (0..32).chain((32..c.len()).step_by(13)) {
        let mut t = c.clone();
        t[i] ^= 0x20;
        let r = open(&with_content(&b, t), sc_kid(), NOW, DAY);
        assert!(
            r.is_err(),
            "content byte {i} changed, yet the bundle opened"
        );
    }
    // And in the signature.
    let mut p = parts(&b);
    if let Value::Bytes(s) = &mut p[4] {
        s[63] ^= 0x01;
    }
    assert_eq!(
        open(&crate::cbor::encode(&Value::Array(p)), sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
}

#[test]
fn a_wrong_anchor_is_an_untrusted_signer() {
    let b = bundle();
    let (sc, gd) = (sc_key().kid(), gd_key().kid());
    assert_eq!(
        open(&b, TrustAnchor::Kid(gd), NOW, DAY).unwrap_err(),
        BundleError::UntrustedSigner { want: gd, got: sc }
    );
    assert_eq!(
        open(&b, TrustAnchor::Key(gd_key().public()), NOW, DAY).unwrap_err(),
        BundleError::UntrustedSigner { want: gd, got: sc }
    );
    // A bundle a stranger signed, whatever it holds: the signer is not the current key of the
    // chain inside, so its signature proves nothing.
    let forged = export(&content(), &stranger());
    assert_eq!(
        open(&forged, sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
}

#[test]
fn a_stranger_with_its_own_feed_is_refused_by_the_anchor() {
    // The stranger exports a "Sichuan" bundle with a feed of its own key: self-consistent, but
    // the checkpoint pinned Sichuan's kid.
    let c = BundleContent {
        own_feed: vec![genesis(SC, &stranger(), NOW - DAY)],
        ..content()
    };
    let forged = export(&c, &stranger());
    assert!(matches!(
        open(&forged, sc_kid(), NOW, DAY),
        Err(BundleError::UntrustedSigner { .. })
    ));
}

#[test]
fn a_bundle_older_than_allowed_is_too_old() {
    let b = bundle();
    let max = 3_600;
    assert!(open(&b, sc_kid(), EXPORTED_AT + max, max).is_ok());
    assert_eq!(
        open(&b, sc_kid(), EXPORTED_AT + max + 1, max).unwrap_err(),
        BundleError::TooOld { age: max + 1, max }
    );
    assert_eq!(
        open(&b, sc_kid(), NOW + 30 * DAY, DAY).unwrap_err(),
        BundleError::TooOld {
            age: 30 * DAY + 3_600,
            max: DAY
        }
    );
}

#[test]
fn a_bundle_from_the_future_is_refused() {
    let b = bundle();
    let skew = POLICY.clock_skew_secs;
    // Within the bundle's clock skew of the checkpoint's clock: accepted.
    assert!(open(&b, sc_kid(), EXPORTED_AT - skew, DAY).is_ok());
    assert_eq!(
        open(&b, sc_kid(), EXPORTED_AT - skew - 1, DAY).unwrap_err(),
        BundleError::FromTheFuture
    );
    assert_eq!(
        open(&b, sc_kid(), UnixTime::EPOCH, DAY).unwrap_err(),
        BundleError::FromTheFuture
    );
}

#[test]
fn a_bundle_signed_by_a_retired_key_is_refused() {
    let c = BundleContent {
        own_feed: sc_feed_rotated(),
        ..content()
    };
    // The checkpoint pinned the old kid; the bundle is signed by the old key, which the bundle's
    // own feed retired.
    let old = export(&c, &sc_key());
    assert_eq!(
        open(&old, sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
    assert_eq!(
        open(&old, TrustAnchor::Key(sc_key().public()), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
    // The new key's bundle opens under the new kid or key, and also under the old one: the
    // rotation statement the old key signed is in the chain, so a checkpoint need not re-pin.
    let new = export(&c, &sc_new_key());
    let new_kid = TrustAnchor::Kid(sc_new_key().kid());
    let (_, snap) = open(&new, new_kid, NOW, DAY).unwrap();
    assert_eq!(snap.own_keys(), vec![sc_new_key().public()]);
    assert!(open(&new, TrustAnchor::Key(sc_new_key().public()), NOW, DAY).is_ok());
    assert!(open(&new, sc_kid(), NOW, DAY).is_ok());
    // Once the old key is withdrawn (compromised), it anchors nothing any more.
    let mut withdrawn = sc_feed_rotated();
    let w = FeedEntry::sign(
        prov(SC),
        withdrawn.last(),
        NOW - DAY / 2,
        Statement::KeyWithdrawal {
            key: sc_key().public(),
        },
        &sc_new_key(),
    );
    withdrawn.push(w);
    let c = BundleContent {
        own_feed: withdrawn,
        ..content()
    };
    let new = export(&c, &sc_new_key());
    assert_eq!(
        open(&new, sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::UntrustedSigner {
            want: sc_key().kid(),
            got: sc_new_key().kid()
        }
    );
    assert!(open(&new, new_kid, NOW, DAY).is_ok());
    // A bundle whose own feed is empty names no current key.
    let empty = BundleContent {
        own_feed: Vec::new(),
        ..content()
    };
    assert_eq!(
        open(&export(&empty, &sc_key()), sc_kid(), NOW, DAY).unwrap_err(),
        BundleError::BadSignature
    );
}

#[test]
fn unsound_content_under_a_good_signature_is_refused() {
    let bad = |c: BundleContent| {
        let r = open(&export(&c, &sc_key()), sc_kid(), NOW, DAY);
        match r {
            Err(BundleError::BadContent(m)) => m,
            other => panic!("expected BadContent, got {:?}", other.map(|_| ())),
        }
    };
    // A peer feed with a gap.
    let mut gd = gd_feed();
    gd.remove(2);
    let m = bad(BundleContent {
        peers: vec![BundlePeer {
            province: prov(GD),
            synced_at: GD_SYNCED_AT,
            entries: gd,
        }],
        ..content()
    });
    assert!(m.starts_with("feed of 440000"), "{m}");
    // An agreement Guangdong has not accepted.
    let mut proposed = agreement(1);
    proposed.acceptor_signature = None;
    let m = bad(BundleContent {
        agreements: vec![proposed],
        ..content()
    });
    assert!(m.starts_with("agreement"), "{m}");
    // A termination by a key that is not Guangdong's.
    let t = Termination::sign(ID, prov(GD), NOW, NOW, &stranger());
    let m = bad(BundleContent {
        terminations: vec![t],
        ..content()
    });
    assert!(m.starts_with("termination"), "{m}");
    // Sichuan's own feed broken: its first entry is not a genesis.
    let not_genesis = FeedEntry::sign(
        prov(SC),
        None,
        NOW,
        Statement::RevokeCode { cti: [1; 16] },
        &sc_key(),
    );
    let m = bad(BundleContent {
        own_feed: vec![not_genesis],
        ..content()
    });
    assert!(m.starts_with("own feed"), "{m}");
}

fn malformed(b: &[u8]) -> String {
    match open(b, sc_kid(), NOW, DAY) {
        Err(BundleError::Malformed(m) | BundleError::Truncated(m)) => m,
        other => panic!(
            "expected Malformed or Truncated, got {:?}",
            other.map(|_| ())
        ),
    }
}

#[test]
fn garbage_is_malformed() {
    let b = bundle();
    let enc = |v: Vec<Value>| crate::cbor::encode(&Value::Array(v));
    let p = parts(&b);
    let mut wrong_magic = p.clone();
    wrong_magic[0] = Value::Text("hcmr-trust-bundles".into());
    let mut wrong_format = p.clone();
    wrong_format[1] = Value::Integer(2.into());
    let mut short_kid = p.clone();
    short_kid[3] = Value::Bytes(vec![0; 7]);
    let mut trailing = b.clone();
    trailing.push(0);
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"HCMR1:not a bundle".to_vec(),
        vec![0xff; 64],
        crate::cbor::encode(&Value::Map(Vec::new())),
        enc(p[..4].to_vec()),
        enc(wrong_magic),
        enc(wrong_format),
        enc(short_kid),
        trailing,
        b[..b.len() - 1].to_vec(),
        // Content that is not CBOR, or not the content array, under the right kid.
        with_content(&b, vec![0xff]),
        with_content(&b, crate::cbor::encode(&Value::Array(Vec::new()))),
        with_content(&b, {
            let mut c = content_bytes(&b);
            c.push(0);
            c
        }),
    ];
    for (i, case) in cases.iter().enumerate() {
        let m = malformed(case);
        assert!(!m.is_empty(), "case {i}");
    }
    assert_eq!(
        malformed(&enc(p[..4].to_vec())),
        "file: expected 5 elements"
    );
    assert_eq!(malformed(&cases[5]), "not an hcmr trust bundle");
    assert_eq!(malformed(&cases[6]), "unsupported bundle format");
}

#[test]
fn every_truncation_is_refused() {
    let b = bundle();
    for n in 0..b.len() {
        assert!(
            matches!(
                open(&b[..n], sc_kid(), NOW, DAY),
                Err(BundleError::Malformed(_) | BundleError::Truncated(_))
            ),
            "truncated to {n} bytes"
        );
    }
    // Said in words: a file cut short, not the decoder's Debug text.
    assert_eq!(malformed(&[]), "the file is empty");
    for n in 1..b.len() {
        let m = malformed(&b[..n]);
        assert_eq!(
            m,
            format!(
                "the file ends early ({n} bytes): it was cut short, e.g. by an interrupted copy; \
                 copy it again or export a new one"
            )
        );
    }
    assert_eq!(
        malformed(&[0xff; 4]),
        "the file does not have a trust bundle's structure"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_open_and_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        prop_assert!(open(&bytes, sc_kid(), NOW, DAY).is_err());
    }

    #[test]
    fn arbitrary_content_under_the_right_kid_never_panics(
        tail in proptest::collection::vec(any::<u8>(), 0..400),
        head in prop_oneof![Just(vec![]), Just(vec![0x88u8, 0x1a, 0x00, 0x07, 0xc8, 0x30])],
    ) {
        let b = bundle_with_content(&[head, tail].concat());
        prop_assert!(open(&b, sc_kid(), NOW, DAY).is_err());
    }
}

/// A bundle file of `content` under Sichuan's kid, with a zero signature.
fn bundle_with_content(content: &[u8]) -> Vec<u8> {
    crate::cbor::encode(&Value::Array(vec![
        Value::Text("hcmr-trust-bundle".into()),
        Value::Integer(1.into()),
        Value::Bytes(content.to_vec()),
        Value::Bytes(sc_key().kid().0.to_vec()),
        Value::Bytes(vec![0; 64]),
    ]))
}

/// Issue 15 fault 9: decoding errors of a bundle, an agreement and a feed entry say the stage,
/// the offset and what was expected in words, never ciborium's debug text (`Io(Error { kind:
/// UnexpectedEof, .. })`, `Syntax(29)`).
#[test]
fn decode_errors_are_words_not_debug_text() {
    let debug = [
        "Io(",
        "Syntax(",
        "Semantic(",
        "kind:",
        "UnexpectedEof",
        "Text(",
        "Integer(",
    ];
    let clean = |e: &str| {
        for d in debug {
            assert!(!e.contains(d), "{e}");
        }
    };
    // Half of an array of 5.
    let e = open(&[0x85, 0x64], sc_kid(), NOW, DAY)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "damaged trust bundle: the file ends early (2 bytes): it was cut short, e.g. by an \
         interrupted copy; copy it again or export a new one"
    );
    // Reserved additional information 29 at byte 1.
    let e = open(&[0x85, 0x1d], sc_kid(), NOW, DAY)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("byte 1 (0x1d): reserved additional information 29"),
        "{e}"
    );
    clean(&e);
    // The right shape with a wrong element names the element and what it must be.
    let file = crate::cbor::encode(&Value::Array(vec![
        Value::Text(MAGIC.into()),
        Value::Integer(FORMAT.into()),
        Value::Text("content".into()),
        Value::Bytes(vec![0; 8]),
        Value::Bytes(vec![0; 64]),
    ]));
    let e = open(&file, sc_kid(), NOW, DAY).unwrap_err().to_string();
    assert_eq!(
        e,
        "not a valid trust bundle: content: expected a byte string"
    );
    let e = crate::agreement::SignedAgreement::from_record(&[0x83, 0x40, 0x1d])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("byte 2 (0x1d): reserved additional information 29"),
        "{e}"
    );
    clean(&e);
    let e = crate::agreement::SignedAgreement::from_record(&[0x83, 0x40, 0xf6, 0x01])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "agreement body does not decode: signature: expected null or an array of kid and \
         signature bytes"
    );
    let e = crate::feed::FeedEntry::from_record(&[0x83, 0x01, 0x02])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "feed entry does not decode: CBOR: not well-formed: the input ends early, at byte 3, \
         inside an item; more bytes were expected"
    );
}

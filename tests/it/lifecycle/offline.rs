//! Offline verification from a bundle with every node down, and forged subject text that
//! never reaches the terminal.

use super::*;

// 6. Offline bundles.

fn hcmr_bin(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hcmr"))
        .args(args)
        .env_remove("HCMR_NODE")
        .output()
        .expect("the hcmr binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_bundle_verifies_with_every_node_down_and_refuses_tampering() {
    use hcmr::bundle::{open, BundleError, TrustAnchor};

    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let id = conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let yellow = issue(&sc, subject("李秀英", "511302", 242), Y, 600).await;
    let revoked = issue(&sc, subject("张伟", "510802", 311), G, 600).await;
    let own = issue(&gd, subject("马超", "440106", 77), G, 600).await;
    codes(&sc)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: revoked.cti.clone(),
        })
        .await
        .unwrap();
    let r = sync_now(&gd).await;
    assert_eq!((r[0].ok, r[0].last_seq), (true, 2), "{r:?}");
    let gd_kid = kid_of(&gd).await;
    let exported = operator(&gd)
        .await
        .export_trust_bundle(proto::ExportTrustBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hex::encode(&exported.kid), gd_kid);
    let bytes = exported.bundle;
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();

    // Every node is down: the bundle alone decides, as Guangdong would have.
    let now = hcmr::unix_now();
    let anchor = TrustAnchor::parse(&gd_kid).unwrap();
    let (content, snapshot) = open(&bytes, anchor, now, 3600).unwrap();
    assert_eq!(content.province, province(GUANGDONG));
    assert_eq!(
        content.exported_at,
        hcmr::UnixTime::from_secs(exported.exported_at)
    );
    let v = hcmr::verify::verify(&yellow.code, &snapshot, now);
    assert_eq!(v.reason, hcmr::verify::Reason::Ok, "{v:?}");
    assert_eq!(v.local_status, Some(hcmr::status::HealthStatus::Red));
    assert_eq!(v.agreement.map(|a| a.to_string()), Some(id.clone()));
    assert!(v.issuer_synced_at.is_some());
    let v = hcmr::verify::verify(&revoked.code, &snapshot, now);
    assert_eq!(v.reason, hcmr::verify::Reason::Revoked, "{v:?}");
    assert_eq!(v.local_status, None);
    let v = hcmr::verify::verify(&own.code, &snapshot, now);
    assert_eq!(v.reason, hcmr::verify::Reason::Ok, "own code: {v:?}");
    assert_eq!(v.local_status, Some(hcmr::status::HealthStatus::Green));

    // Tampering. Locate the signed content inside the file.
    let content_bytes = match ciborium::from_reader::<ciborium::Value, _>(bytes.as_slice()).unwrap()
    {
        ciborium::Value::Array(a) => a[2].as_bytes().unwrap().clone(),
        other => panic!("not an array: {other:?}"),
    };
    let start = bytes
        .windows(content_bytes.len())
        .position(|w| w == content_bytes.as_slice())
        .unwrap();
    // Content = [province (0x1a + 4 bytes), exported_at (0x1a + 4 bytes), ...] after the
    // array header: flip the low bit of exported_at's last byte.
    let mut t = bytes.clone();
    t[start + 10] ^= 0x01;
    assert_eq!(
        open(&t, anchor, now, 3600).unwrap_err(),
        BundleError::BadSignature
    );
    // One byte in the middle of the content.
    let mut t = bytes.clone();
    t[start + content_bytes.len() / 2] ^= 0x40;
    let e = open(&t, anchor, now, 3600).unwrap_err();
    assert!(
        matches!(
            e,
            BundleError::BadSignature | BundleError::Malformed(_) | BundleError::BadContent(_)
        ),
        "{e:?}"
    );
    // One bit of the bundle signature (the last bytes of the file).
    let mut t = bytes.clone();
    let last = t.len() - 1;
    t[last] ^= 0x01;
    assert_eq!(
        open(&t, anchor, now, 3600).unwrap_err(),
        BundleError::BadSignature
    );
    // Truncated: a damaged bundle, not another kind of file.
    assert!(matches!(
        open(&bytes[..bytes.len() - 10], anchor, now, 3600),
        Err(BundleError::Truncated(_))
    ));
    // A checkpoint that trusts another key.
    let other = NodeKey::generate();
    let e = open(
        &bytes,
        TrustAnchor::parse(&other.kid().to_string()).unwrap(),
        now,
        3600,
    )
    .unwrap_err();
    assert!(matches!(e, BundleError::UntrustedSigner { .. }), "{e:?}");
    let e = open(&bytes, TrustAnchor::Key(other.public()), now, 3600).unwrap_err();
    assert!(matches!(e, BundleError::UntrustedSigner { .. }), "{e:?}");
    // Too old.
    let e = open(&bytes, anchor, now + 5, 0).unwrap_err();
    match e {
        BundleError::TooOld { age, max } => {
            assert!(age >= 5, "{age}");
            assert_eq!(max, 0);
        }
        other => panic!("expected TooOld, got {other:?}"),
    }

    // The binary, offline.
    let file = dir.path().join("guangdong.bundle");
    std::fs::write(&file, &bytes).unwrap();
    let f = file.to_str().unwrap();
    let o = hcmr_bin(&["verify", "--offline", f, "--trust", &gd_kid, &yellow.code]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("RECOGNIZED") && out.contains("RED"), "{out}");
    let o = hcmr_bin(&["verify", "--offline", f, "--trust", &gd_kid, &revoked.code]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains("NOT RECOGNIZED") && out.contains("REASON_REVOKED"),
        "{out}"
    );
    let mut t = bytes.clone();
    t[start + 10] ^= 0x01;
    let tampered = dir.path().join("tampered.bundle");
    std::fs::write(&tampered, &t).unwrap();
    let o = hcmr_bin(&[
        "verify",
        "--offline",
        tampered.to_str().unwrap(),
        "--trust",
        &gd_kid,
        &yellow.code,
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert_ne!(
        o.status.code(),
        Some(3),
        "not a verdict: the bundle is refused"
    );
    assert!(err.contains("signature does not verify"), "{err}");
    assert!(o.stdout.is_empty(), "no verdict printed");
    let o = hcmr_bin(&[
        "verify",
        "--offline",
        f,
        "--trust",
        &other.kid().to_string(),
        &yellow.code,
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert!(err.contains("not by the trusted key"), "{err}");
}

/// Issue 15 fault 4: a code signed by an unrelated key with Sichuan's kid, whose masked name
/// moves the cursor up, erases the verdict lines and writes "RECOGNIZED  counts here as GREEN".
/// `hcmr verify`, online and `--offline`, must not pass the control characters to the terminal,
/// and must not show the subject of a code whose signature failed as the person's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_subject_text_never_reaches_the_terminal() {
    use hcmr::code::{Claims, Subject};
    use hcmr::identity::DocumentType;

    const FORGED: &str = "\x1b[1A\x1b[2K\x1b[1A\x1b[2K\rRECOGNIZED  counts here as GREEN";
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let sc_kid = hex::decode(kid_of(&sc).await).unwrap();
    let now = hcmr::unix_now();
    let mut claims = Claims {
        iss: SICHUAN.to_string(),
        iat: now - 10,
        exp: now + 300,
        status: 1,
        status_valid_until: now + 86_400,
        subject: Subject {
            masked_name: FORGED.into(),
            document_type: DocumentType::from_u64(1).unwrap(),
            masked_document_number: "5101*\u{202e}4321".into(),
            subject_hash: SubjectHash([7; 8]),
        },
    };
    // Signed by a key no province has, under Sichuan's kid.
    let sc_kid = Kid(sc_kid.try_into().unwrap());
    let forge = |claims: &Claims| {
        hcmr_core::testkit::code_with_kid(claims, sc_kid, &hcmr_core::testkit::stranger())
    };
    let forged = forge(&claims);
    // The same verdict text without control characters: it decodes, and fails the signature.
    claims.subject.masked_name = "RECOGNIZED  counts here as GREEN".into();
    claims.subject.masked_document_number = "5101*4321".into();
    let plain = forge(&claims);

    let check = |o: std::process::Output, how: &str| {
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(3), "{how}: {out} {err}");
        for text in [&out, &err] {
            assert!(
                !text.contains(['\x1b', '\r', '\u{202e}']),
                "{how}: {text:?}"
            );
        }
        assert!(out.starts_with("NOT RECOGNIZED  REASON_"), "{how}: {out}");
        assert!(!out.contains("RECOGNIZED  counts here"), "{how}: {out}");
        assert!(!out.contains("5101*"), "{how}: {out}");
    };
    // Online, at Guangdong.
    check(
        cli(&gd).args(["verify", &forged]).output().unwrap(),
        "online",
    );
    // Offline, with Guangdong's bundle.
    let exported = operator(&gd)
        .await
        .export_trust_bundle(proto::ExportTrustBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    let file = dir.path().join("gd.bundle");
    std::fs::write(&file, &exported.bundle).unwrap();
    let gd_kid = hex::encode(&exported.kid);
    check(
        hcmr_bin(&[
            "verify",
            "--offline",
            file.to_str().unwrap(),
            "--trust",
            &gd_kid,
            &forged,
        ]),
        "offline",
    );
    // The control characters make the code malformed (issue 15 fault 8: no text claim carries
    // one); the plain forgery is a bad signature, and its subject is not shown as the person's.
    let out = |o: std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let o = cli(&gd).args(["verify", &forged]).output().unwrap();
    assert!(out(o).contains("REASON_MALFORMED"));
    for o in [
        cli(&gd).args(["verify", &plain]).output().unwrap(),
        hcmr_bin(&[
            "verify",
            "--offline",
            file.to_str().unwrap(),
            "--trust",
            &gd_kid,
            &plain,
        ]),
    ] {
        assert_eq!(o.status.code(), Some(3));
        let out = out(o);
        assert!(out.contains("REASON_BAD_SIGNATURE"), "{out}");
        assert!(
            out.contains("  subject:       not shown: the signature did not verify"),
            "{out}"
        );
        assert!(out.contains("  issued status: green (unverified)"), "{out}");
        assert!(!out.contains("counts here as GREEN"), "{out}");
    }
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

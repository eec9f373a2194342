//! Mutual TLS between nodes, certificate pinning, and key files under a passphrase.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_over_mutual_tls_admits_only_the_agreed_province() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    let gd = start(&gd_cfg).await;
    conclude(&gd, &sc, &[(G, G)], &[(G, G)]).await;
    let js = start(&init_node(dir.path(), JIANGSU).await).await;

    let feed_from = |c: &mut proto::federation_service_client::FederationServiceClient<
        tonic::transport::Channel,
    >| {
        let mut c = c.clone();
        async move {
            match c
                .get_feed(proto::GetFeedRequest {
                    from_seq: 1,
                    ..Default::default()
                })
                .await
            {
                Ok(mut s) => s.get_mut().message().await.map(|m| m.is_some()),
                Err(e) => Err(e),
            }
        }
    };
    // Guangdong, with its own node certificate: served.
    let mut as_gd = federation_as(&sc, &tls_identity_of(&gd)).await;
    assert!(feed_from(&mut as_gd).await.unwrap(), "the first entry");
    // Jiangsu's real node certificate, but no agreement with Sichuan: refused.
    let mut as_js = federation_as(&sc, &tls_identity_of(&js)).await;
    let e = feed_from(&mut as_js).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message()
            .contains("province 320000 has no agreement with 510000"),
        "{}",
        e.message()
    );
    let e = as_js
        .match_subject(proto::MatchSubjectRequest {
            subject_hash: "00".repeat(16),
            document_type: proto::DocumentType::ResidentIdentityCard as i32,
            document_number: document_number("510104", 1),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // An impostor: a certificate that says Guangdong, certified by a key nobody pinned.
    let mut impostor = federation_as(&sc, &node_identity(GUANGDONG, &NodeKey::generate())).await;
    let e = feed_from(&mut impostor).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Guangdong asking for another province's agreements: refused.
    let e = as_gd
        .get_agreements(proto::GetAgreementsRequest {
            province: "320000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let own = as_gd
        .get_agreements(proto::GetAgreementsRequest {
            province: "440000".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.agreements.len(), 1);

    // Server side: Guangdong's address now answers with Jiangsu's node. Sichuan's sync refuses
    // it at the TLS handshake and says so; nothing changes.
    pin_listen(&gd_cfg, &gd);
    let gd_addr = gd.addr;
    gd.shutdown().await.unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let js2_cfg = init_node(dir2.path(), JIANGSU).await;
    let text = std::fs::read_to_string(&js2_cfg).unwrap();
    std::fs::write(
        &js2_cfg,
        text.replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"{gd_addr}\""),
        ),
    )
    .unwrap();
    let js2 = start(&js2_cfg).await;
    assert_eq!(js2.addr, gd_addr);
    let r = sync_now(&sc).await;
    assert_eq!(r.len(), 1);
    assert!(!r[0].ok);
    assert!(
        r[0].error
            .contains("is not the node of 440000 this node trusts")
            && r[0].error.contains("speaks for province 320000"),
        "{}",
        r[0].error
    );
    js2.shutdown().await.unwrap();
    js.shutdown().await.unwrap();
    sc.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pinning_another_certificate_cannot_connect() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    // Guangdong's certificate pinned, Sichuan's address: the handshake fails.
    let e = hcmr::client::connect(&sc.endpoint, gd.tls_cert.as_deref(), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");
    // Plain text to a TLS node: no answer, not a downgrade.
    let plain = sc.endpoint.replace("https://", "http://");
    let r = hcmr::client::connect(&plain, None, Some(&test_token(&sc))).await;
    if let Ok(ch) = r {
        let e = proto::health_code_service_client::HealthCodeServiceClient::new(ch)
            .verify_health_code(proto::VerifyHealthCodeRequest::default())
            .await
            .unwrap_err();
        assert_ne!(e.code(), Code::Ok);
    }
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_key_files_need_their_passphrase_and_survive_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let var = "HCMR_TEST_PASSPHRASE_SECURITY_RS";
    std::env::set_var(var, "correct horse battery staple");
    let mut o = hcmr::node::InitOptions::new("127.0.0.1:0".parse().unwrap());
    o.key_passphrase_env = Some(var.into());
    let cfg = hcmr::node::init_node(
        hcmr::province::Province::from_code(SICHUAN).unwrap(),
        &dir.path().join("sc"),
        &o,
    )
    .await
    .unwrap();
    add_test_caller(&cfg).await;
    for f in ["node.key", "subject.key", "tls/node.key"] {
        let text = std::fs::read_to_string(dir.path().join("sc").join(f)).unwrap();
        assert!(
            text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{f}"
        );
    }
    let sc = start(&cfg).await;
    let before = kid_of(&sc).await;
    operator(&sc)
        .await
        .rotate_key(proto::RotateKeyRequest {})
        .await
        .unwrap();
    sc.shutdown().await.unwrap();
    let text = std::fs::read_to_string(dir.path().join("sc/node.key")).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "the rotated key too"
    );
    let sc = start(&cfg).await;
    let after = kid_of(&sc).await;
    assert_ne!(before, after);
    let code = issue(&sc, subject("王建国", "510104", 131), G, 300)
        .await
        .code;
    assert_eq!(
        verify(&sc, &code).await.verdict,
        proto::Verdict::Recognized as i32
    );
    sc.shutdown().await.unwrap();

    // A plain hex subject key (of a node made before subject keys were encrypted) is rewritten
    // encrypted at start, the same key: a code issued before still matches its holder.
    let protection = hcmr::keyfile::KeyProtection::from_sources(Some(var), None).unwrap();
    let subject_file = dir.path().join("sc/subject.key");
    let (key, _) = hcmr::keyfile::read_subject_key(&subject_file, &protection).unwrap();
    std::fs::remove_file(&subject_file).unwrap();
    hcmr::keyfile::write_subject_key(&subject_file, &key, &hcmr::keyfile::KeyProtection::Plain)
        .unwrap();
    let sc = start(&cfg).await;
    let text = std::fs::read_to_string(&subject_file).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{text}"
    );
    let (again, form) = hcmr::keyfile::read_subject_key(&subject_file, &protection).unwrap();
    assert_eq!(form, hcmr::keyfile::SubjectKeyForm::Pkcs8);
    let number = document_number("510104", 131);
    let doc = hcmr::identity::DocumentType::ResidentIdentityCard;
    assert_eq!(
        again.subject_hash(doc, &number),
        key.subject_hash(doc, &number)
    );
    let matched = codes(&sc)
        .await
        .match_identity(proto::MatchIdentityRequest {
            code,
            document_type: proto::DocumentType::ResidentIdentityCard as i32,
            document_number: number,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matched.matches);
    sc.shutdown().await.unwrap();
    assert!(!dir.path().join("sc/subject.key.new").exists());

    // Without the passphrase, or with a wrong one, the node does not start, and says why.
    std::env::set_var(var, "wrong");
    let c = hcmr::node::Config::load(&cfg).unwrap();
    let e = hcmr::node::Node::open(&c).err().unwrap().to_string();
    assert!(
        e.contains("subject.key cannot be decrypted: wrong passphrase"),
        "{e}"
    );
    std::env::remove_var(var);
    let e = hcmr::node::Node::open(&c).err().unwrap().to_string();
    assert!(
        e.contains(&format!("{var} (key_passphrase_env) is not set")),
        "{e}"
    );
    // Without the setting, the encrypted key files are named, the first one read first.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let line = format!("key_passphrase_env = \"{var}\"\n");
    assert!(text.contains(&line), "{text}");
    std::fs::write(&cfg, text.replace(&line, "")).unwrap();
    let c = hcmr::node::Config::load(&cfg).unwrap();
    let e = hcmr::node::Node::open(&c).err().unwrap().to_string();
    assert!(
        e.contains("subject.key is encrypted: set the passphrase"),
        "{e}"
    );
}

#[tokio::test]
async fn a_passphrase_added_to_a_node_with_plain_keys_changes_no_file() {
    // The node refuses to run on plain keys under a passphrase, and leaves every key file as it
    // was (the subject key is rewritten encrypted only once the other keys read encrypted).
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    let node_dir = cfg.parent().unwrap().to_path_buf();
    let files = ["node.key", "subject.key", "tls/node.key"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(node_dir.join(f)).unwrap())
        .collect();
    let var = "HCMR_TEST_PASSPHRASE_ADDED_LATER";
    std::env::set_var(var, "added later");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replacen(
        "\nprovince = ",
        &format!("\nkey_passphrase_env = \"{var}\"\nprovince = "),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let c = hcmr::node::Config::load(&cfg).unwrap();
    assert_eq!(c.key_passphrase_env.as_deref(), Some(var));
    let e = hcmr::node::Node::open(&c).err().unwrap().to_string();
    assert!(e.contains("node.key is not encrypted"), "{e}");
    let after: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(node_dir.join(f)).unwrap())
        .collect();
    assert_eq!(after, before);
    std::env::remove_var(var);
}

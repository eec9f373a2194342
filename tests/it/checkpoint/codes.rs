//! Codes at the checkpoint: identity match, images in and out through the CLI, a code issued
//! right after a revocation, times in the display offset, printed cards.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_match_at_the_issuer_and_forwarded_by_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let sc = start(&sc_cfg).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let person = subject("王建国", "510104", 131);
    let number = person.document_number.clone();
    let other = document_number("510104", 132);
    let code = issue(&sc, person, G, 300).await;
    let ask = |code: &str, number: &str| proto::MatchIdentityRequest {
        code: code.to_string(),
        document_type: proto::DocumentType::ResidentIdentityCard as i32,
        document_number: number.to_string(),
    };
    // At the issuing node.
    let r = codes(&sc)
        .await
        .match_identity(ask(&code.code, &number))
        .await
        .unwrap()
        .into_inner();
    assert!(r.matches);
    assert_eq!(r.checked_by, "510000");
    let r = codes(&sc)
        .await
        .match_identity(ask(&code.code, &other))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.matches);
    // At a peer: forwarded to the issuer, the only holder of the subject key.
    let mut gd_codes = codes(&gd).await;
    let r = gd_codes
        .match_identity(ask(&code.code, &number))
        .await
        .unwrap()
        .into_inner();
    assert!(r.matches);
    assert_eq!(r.checked_by, "510000");
    let lower_x = number.to_lowercase();
    let r = gd_codes
        .match_identity(ask(&code.code, &lower_x))
        .await
        .unwrap()
        .into_inner();
    assert!(r.matches, "the number is normalised like at issue");
    let r = gd_codes
        .match_identity(ask(&code.code, &other))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.matches);
    // Bad input names the field; a tampered code has no subject to match.
    let e = gd_codes
        .match_identity(ask(&code.code, "123"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("document_number"));
    let e = gd_codes
        .match_identity(ask("HCMR1:AAAA", &number))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // No oracle: a revoked code has no subject to match, and one code gets only a few tries.
    // (Another lifetime: the same claims in the same second would make the very same code.)
    let second = issue(&sc, subject("王建国", "510104", 131), G, 299).await;
    let mut sc_codes = codes(&sc).await;
    for i in 0..5 {
        let r = sc_codes.match_identity(ask(&second.code, &other)).await;
        assert!(r.is_ok(), "attempt {i}: {r:?}");
    }
    let e = sc_codes
        .match_identity(ask(&second.code, &number))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(
        e.message().contains("compare the masked ID"),
        "{}",
        e.message()
    );
    // Another lifetime again: the same as `code`'s would revoke `code` too, which a peer now
    // learns at once (its feed watch) and would refuse before asking the issuer below.
    let third = issue(&sc, subject("王建国", "510104", 131), G, 298).await;
    sc_codes
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: third.cti.clone(),
        })
        .await
        .unwrap();
    let e = sc_codes
        .match_identity(ask(&third.code, &number))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("revoked"), "{}", e.message());
    // The issuer down: a clear UNAVAILABLE that says what to do instead.
    sc.shutdown().await.unwrap();
    let e = gd_codes
        .match_identity(ask(&code.code, &number))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    assert!(
        e.message().contains("compare the masked ID by eye"),
        "{}",
        e.message()
    );
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_come_out_as_images_and_go_back_in_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let mut c = codes(&sc).await;
    let ask = |format: proto::QrFormat| proto::IssueHealthCodeRequest {
        subject: Some(subject("王建国", "510104", 131)),
        status: G,
        status_valid_until: (hcmr::unix_now() + 86_400).secs(),
        code_lifetime_secs: 300,
        qr_format: format as i32,
    };
    // PNG: the image holds exactly the code string.
    let r = c
        .issue_health_code(ask(proto::QrFormat::Png))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.qr_media_type, "image/png");
    assert_eq!(hcmr::qr::decode_image(&r.qr_image).unwrap(), r.code);
    // SVG.
    let r = c
        .issue_health_code(ask(proto::QrFormat::Svg))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.qr_media_type, "image/svg+xml");
    assert!(String::from_utf8(r.qr_image).unwrap().contains("<svg"));
    // The printable card: A6 at 300 dpi, and its QR scans back to the code.
    let r = c
        .issue_health_code(ask(proto::QrFormat::CardPng))
        .await
        .unwrap()
        .into_inner();
    let card = image::load_from_memory(&r.qr_image).unwrap();
    assert_eq!((card.width(), card.height()), (1240, 1748));
    assert_eq!(hcmr::qr::decode_image(&r.qr_image).unwrap(), r.code);
    // None: no image.
    let r = c
        .issue_health_code(ask(proto::QrFormat::None))
        .await
        .unwrap()
        .into_inner();
    assert!(r.qr_image.is_empty() && r.qr_media_type.is_empty());
    let mut bad = ask(proto::QrFormat::None);
    bad.qr_format = 42;
    let e = c.issue_health_code(bad).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("qr_format"));

    // The CLI: issue --qr writes the image; verify --qr reads it back and verifies it.
    let bin = env!("CARGO_BIN_EXE_hcmr");
    let png = dir.path().join("code.png");
    let number = document_number("510104", 131);
    let out = cli(&sc)
        .args([
            "issue",
            "--name",
            "王建国",
            "--doc-number",
            &number,
            "--status",
            "green",
            "--qr",
            png.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(hcmr::qr::decode_file(&png).unwrap(), code);
    let out = cli(&sc)
        .args(["verify", "--qr", png.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("RECOGNIZED"));
    // A PDF card, drawn by the CLI from the issued code.
    let pdf = dir.path().join("card.pdf");
    let out = cli(&sc)
        .args([
            "issue",
            "--name",
            "王建国",
            "--doc-number",
            &number,
            "--status",
            "green",
            "--card",
            pdf.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    // An image with no code: a clear error, not a verdict.
    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(200, 200, image::Rgb([255, 255, 255]))
        .save(&blank)
        .unwrap();
    let out = cli(&sc)
        .args(["verify", "--qr", blank.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no QR code"), "{err}");
    // inspect prints the claims as JSON without verifying.
    let out = std::process::Command::new(bin)
        .args(["inspect", &code])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = json.to_string();
    assert!(text.contains("510000") && text.contains("hcmr"), "{text}");
    sc.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_code_right_after_a_subject_revocation_stands() {
    // The platform's script: the status changed, revoke the subject's codes, issue the new one,
    // all within one second. The new code must not fall under the revocation.
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let person = subject("李秀英", "511302", 242);
    let old = issue(&sc, person.clone(), G, 300).await;
    let mut c = codes(&sc).await;
    for _ in 0..3 {
        c.revoke_subject(proto::RevokeSubjectRequest {
            document_type: person.document_type,
            document_number: person.document_number.clone(),
            issued_before: 0,
        })
        .await
        .unwrap();
        let new = issue(&sc, person.clone(), R, 300).await;
        let v = verify(&sc, &new.code).await;
        assert_eq!(
            (v.verdict, v.local_status),
            (Verdict::Recognized as i32, R),
            "{v:?}"
        );
        let v = verify(&sc, &old.code).await;
        assert_eq!(v.reason, Reason::Revoked as i32);
    }
    sc.shutdown().await.unwrap();
}

/// Issue 14, "Times for people in China": the CLI shows times in the node's display offset,
/// written with the offset: `display_utc_offset` of the `--dir` folder's hcmr.toml, over it
/// `--display-utc-offset` (or `HCMR_DISPLAY_UTC_OFFSET`), else +08:00. The API and the stored
/// record stay UTC seconds. A bad setting is refused naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_for_people_are_shown_in_the_display_offset() {
    let dir = tempfile::tempdir().unwrap();
    let config = init_node(dir.path(), GUANGDONG).await;
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("display_utc_offset = \"8\"\n{text}")).unwrap();
    let e = hcmr::node::Config::load(&config).unwrap_err().to_string();
    assert!(
        e.contains("display_utc_offset") && e.contains("+08:00"),
        "{e}"
    );
    std::fs::write(&config, format!("display_utc_offset = \"-05:00\"\n{text}")).unwrap();
    let now = hcmr::unix_now();
    let clock = hcmr::clock::Clock::manual(now);
    let gd =
        hcmr::node::spawn_with_clock(&hcmr::node::Config::load(&config).unwrap(), clock.clone())
            .await
            .unwrap();
    let code = issue(&gd, subject("王建国", "440104", 131), G, 300)
        .await
        .code;
    verify(&gd, &code).await;
    let t = audit_until(&gd, 1).await[0].time;
    let at =
        |o: &str| hcmr::display::display_time(hcmr::UnixTime::from_secs(t), o.parse().unwrap());
    assert_eq!(
        at("-05:00"),
        hcmr::cli::rfc3339(t - 5 * 3600).replace('Z', "-05:00")
    );
    let folder = gd.dir.to_str().unwrap().to_string();
    let first_time = |args: &[&str], env: Option<&str>| {
        let mut c = cli(&gd);
        c.args(["audit", "--csv"]).args(args);
        match env {
            Some(v) => c.env("HCMR_DISPLAY_UTC_OFFSET", v),
            None => c.env_remove("HCMR_DISPLAY_UTC_OFFSET"),
        };
        let (out, _) = run_ok(c);
        let row = out.lines().nth(1).unwrap_or_default().to_string();
        row.split(',').next().unwrap().to_string()
    };
    // The node's folder: its own setting.
    assert_eq!(first_time(&["--dir", &folder], None), at("-05:00"));
    // The flag, and its variable, over the folder's.
    assert_eq!(
        first_time(&["--dir", &folder, "--display-utc-offset", "+00:00"], None),
        at("+00:00")
    );
    assert_eq!(
        first_time(&["--dir", &folder], Some("+09:00")),
        at("+09:00")
    );
    // Neither (a remote node): Beijing time.
    assert_eq!(first_time(&[], None), at("+08:00"));
    assert!(at("+08:00").ends_with("+08:00"), "{}", at("+08:00"));
    // The table and the verdict line too.
    let mut c = cli(&gd);
    c.args(["audit", "--dir", &folder]);
    let (table, _) = run_ok(c);
    assert!(table.starts_with(&at("-05:00")), "{table}");
    let mut c = cli(&gd);
    c.args(["verify", "--dir", &folder, &code]);
    let (line, _) = run_ok(c);
    assert!(line.contains("-05:00"), "{line}");
    assert!(!line.contains(":00Z"), "{line}");
    // A bad flag: bad usage, naming the flag and the form.
    let mut c = cli(&gd);
    c.args(["audit", "--display-utc-offset", "8"]);
    let out = tokio::task::block_in_place(|| c.output()).unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--display-utc-offset") && err.contains("+08:00"),
        "{err}"
    );
    // The node's refusals (in UTC words) are read in the offset too.
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let id = conclude(&gd, &sc, &[(G, G)], &[(G, G)]).await;
    let end = now + 3600;
    let terminate = || {
        let mut c = cli(&gd);
        c.args(["agreement", "terminate", "--dir", &folder, &id, "--at"])
            .arg(hcmr::cli::rfc3339(end.secs()));
        tokio::task::block_in_place(|| c.output()).unwrap()
    };
    assert!(terminate().status.success());
    let again = terminate();
    assert!(!again.status.success(), "{again:?}");
    let err = String::from_utf8_lossy(&again.stderr);
    let from = hcmr::display::display_time(end, "-05:00".parse().unwrap());
    assert!(
        err.contains(&format!("already terminated by 440000 from {from}")),
        "{err}"
    );
    sc.shutdown().await.unwrap();
    // A verdict's detail (the API's UTC words) is shown in the offset too.
    let short = codes(&gd)
        .await
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(subject("王建国", "440104", 131)),
            status: G,
            status_valid_until: (now + 60).secs(),
            code_lifetime_secs: 3600,
            qr_format: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .code;
    clock.set(now + 120);
    let raw = verify(&gd, &short).await;
    assert_eq!(raw.reason, Reason::StatusExpired as i32, "{raw:?}");
    assert!(
        raw.detail.ends_with('Z'),
        "the API stays UTC: {}",
        raw.detail
    );
    let mut c = cli(&gd);
    c.args(["verify", "--dir", &folder, &short]);
    let out = tokio::task::block_in_place(|| c.output()).unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let shown = String::from_utf8(out.stdout).unwrap();
    let until = hcmr::display::display_time(now + 60, "-05:00".parse().unwrap());
    assert!(
        shown.contains(&format!("detail:        status held until {until}")),
        "{shown}"
    );
    gd.shutdown().await.unwrap();
}

/// Issue 14 fault 8: a printed card is a static code. Without --lifetime its code lives as long
/// as its status (at most 7 days), not a display code's five minutes, for a PNG card (drawn by
/// the node) and a PDF one (drawn by the CLI) alike, and the CLI says until when, in the
/// display offset; more than 7 days is refused saying so. The API's CARD_PNG does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printed_card_gets_a_card_lifetime_not_five_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let number = document_number("440104", 131);
    let issue_card = |file: &str, extra: &[&str]| {
        let mut c = cli(&gd);
        c.args(["issue", "--name", "王建国", "--doc-number", &number])
            .args(["--status", "green", "--card"])
            .arg(dir.path().join(file))
            .args(extra);
        let (out, err) = run_ok(c);
        let code = out.lines().next().unwrap().to_string();
        let claims = hcmr::code::HealthCode::decode(&code).unwrap().claims;
        (claims, err)
    };
    // The status holds a day (the default): so does the card's code.
    let (claims, err) = issue_card("card.png", &[]);
    assert_eq!(claims.exp.saturating_since(claims.iat), 86_400, "{err}");
    let until = hcmr::display::display_time(claims.exp, Default::default());
    assert!(
        err.contains(&format!("the card's code is valid until {until}")),
        "{err}"
    );
    assert!(err.contains("at most 7 days"), "{err}");
    // A status of 30 days: the card's code stops at 7.
    let (claims, _) = issue_card("card.pdf", &["--status-valid-for", "30d"]);
    assert_eq!(claims.exp.saturating_since(claims.iat), 7 * 86_400);
    // An explicit lifetime is kept; over 7 days is refused, saying why.
    let (claims, _) = issue_card("card2.png", &["--lifetime", "2d"]);
    assert_eq!(claims.exp.saturating_since(claims.iat), 2 * 86_400);
    let mut c = cli(&gd);
    c.args(["issue", "--name", "王建国", "--doc-number", &number])
        .args(["--status", "green", "--lifetime", "8d", "--card"])
        .arg(dir.path().join("card3.png"));
    let out = tokio::task::block_in_place(|| c.output()).unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        // No code, card or not, is valid longer than 7 days: the flag's own check says so.
        err.contains("--lifetime") && err.contains("at most 7d"),
        "{err}"
    );
    assert!(!dir.path().join("card3.png").exists());
    // Through the API: a CARD_PNG with no lifetime gets the card's default, a QR code the node's.
    let now = hcmr::unix_now();
    let ask = |format: proto::QrFormat| proto::IssueHealthCodeRequest {
        subject: Some(subject("王建国", "440104", 131)),
        status: G,
        status_valid_until: (now + 3 * 86_400).secs(),
        code_lifetime_secs: 0,
        qr_format: format as i32,
    };
    let card = codes(&gd)
        .await
        .issue_health_code(ask(proto::QrFormat::CardPng))
        .await
        .unwrap()
        .into_inner();
    // The status ends at now + 3 days, whatever second the node issued in.
    assert_eq!(card.exp, (now + 3 * 86_400).secs());
    assert!(card.exp - card.iat > 2 * 86_400, "{card:?}");
    let plain = codes(&gd)
        .await
        .issue_health_code(ask(proto::QrFormat::Png))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plain.exp - plain.iat, 300);
    gd.shutdown().await.unwrap();
}

//! The checkpoint page scanning codes: by a scanner's keystrokes and through the camera.

use super::*;

/// What the page is given and what it should show.
struct Scenario {
    page: String,
    /// The test caller's token (every role), to log in with.
    token: String,
    recognized_code: String,
    masked_name: String,
    masked_id: String,
    document_number: String,
    /// The recognized code's status_valid_until as the page should show it.
    valid_until_shown: String,
    /// Another valid number: not the holder's.
    wrong_document_number: String,
    no_agreement_code: String,
    tampered_code: String,
    /// Guangdong's own codes: they count here as issued.
    own_codes: [(String, &'static str); 2],
    shots: PathBuf,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoint_page_in_headless_chromium() {
    let started = Instant::now();
    let Some(tools) = browser_or_skip("checkpoint_page_in_headless_chromium") else {
        return;
    };

    // Sichuan issues; Guangdong verifies and serves the page; Jiangsu has no agreement.
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node_with_page(dir.path(), GUANGDONG).await).await;
    let js = start(&init_node(dir.path(), JIANGSU).await).await;
    let page = gd.http_addr.expect("Guangdong serves the page");
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;

    let number = document_number("511302", 242);
    let yellow = issue(&sc, subject("李秀英", "511302", 242), Y, 300).await;
    let jiangsu = issue(&js, subject("陈静", "320102", 77), G, 300).await;
    let gd_green = issue(&gd, subject("王建国", "440104", 131), G, 300).await;
    let gd_yellow = issue(&gd, subject("黄丽", "440304", 58), Y, 300).await;
    let forged = hcmr_core::testkit::forge_status(
        &issue(&sc, subject("张伟", "510802", 311), R, 300)
            .await
            .code,
        hcmr::status::HealthStatus::Green,
    );

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    for f in ["recognized.png", "not-recognized.png"] {
        let _ = std::fs::remove_file(shots.join(f));
    }
    let scenario = Scenario {
        page: format!("https://{page}/?checkpoint=test-gate"),
        token: test_token(&gd),
        recognized_code: yellow.code.clone(),
        masked_name: "李*英".to_string(),
        masked_id: hcmr::identity::mask_document_number(&number),
        document_number: number,
        wrong_document_number: document_number("511302", 243),
        valid_until_shown: hcmr::display::display_time(
            hcmr::code::HealthCode::decode(&yellow.code)
                .unwrap()
                .claims
                .status_valid_until,
            Default::default(),
        ),
        no_agreement_code: jiangsu.code.clone(),
        tampered_code: forged,
        own_codes: [
            (gd_green.code.clone(), "green"),
            (gd_yellow.code.clone(), "yellow"),
        ],
        shots: shots.clone(),
    };

    in_browser(&tools, dir.path(), |c| drive(c, scenario)).await;

    // Both screenshots are real PNGs, and show what they should: red for the recognized yellow
    // (counted as red here), no green anywhere on the not-recognized one.
    let recognized_png = png(&shots.join("recognized.png"));
    let refused_png = png(&shots.join("not-recognized.png"));
    let (red, _) = colour_shares(&recognized_png);
    assert!(red > 0.3, "recognized.png is {:.0}% red", red * 100.0);
    let (red, green) = colour_shares(&refused_png);
    assert!(
        green < 0.002,
        "not-recognized.png is {:.1}% green",
        green * 100.0
    );
    assert!(
        red > 0.02,
        "not-recognized.png has no red frame ({:.1}%)",
        red * 100.0
    );

    // The node's audit log holds the page's three checks: via http, at test-gate, nothing else.
    let want = [
        (Verdict::Recognized, Reason::Ok, "510000"),
        // Scanned again twice for the NO MATCH.
        (Verdict::Recognized, Reason::Ok, "510000"),
        (Verdict::Recognized, Reason::Ok, "510000"),
        (Verdict::NotRecognized, Reason::NoAgreement, "320000"),
        (Verdict::NotRecognized, Reason::BadSignature, "510000"),
        (Verdict::Recognized, Reason::Ok, "440000"),
        (Verdict::Recognized, Reason::Ok, "440000"),
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    let records = loop {
        let all: Vec<proto::AuditRecord> = audit_records(&gd)
            .await
            .into_iter()
            .filter(|r| r.via == "http")
            .collect();
        if all.len() >= want.len() || Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(records.len(), want.len(), "{records:?}");
    for (r, (verdict, reason, issuer)) in records.iter().zip(want) {
        assert_eq!(r.checkpoint_id, "test-gate", "{r:?}");
        assert_eq!(r.verdict, verdict as i32, "{r:?}");
        assert_eq!(r.reason, reason as i32, "{r:?}");
        assert_eq!(r.issuer_province, issuer, "{r:?}");
        assert_eq!(r.cti_hash.len(), 32, "{r:?}");
    }

    for n in [sc, gd, js] {
        n.shutdown().await.unwrap();
    }
    eprintln!("browser test took {:.1} s", started.elapsed().as_secs_f64());
}

/// Everything done in the browser.
async fn drive(c: Client, s: Scenario) {
    c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
    c.goto(&s.page).await.unwrap();
    // Logged out: the login panel, no verify form. Log in as the node's operator gave the token.
    wait_displayed(&c, "#login", true, VERDICT_WAIT).await;
    assert!(!displayed(&c, "#verdict").await);
    log_in(&c, &s.token).await;
    wait_logged_in(&c, "test").await;
    wait_attr(&c, "#verdict", "data-state", "ready", VERDICT_WAIT).await;
    assert_eq!(text(&c, "#checkpoint").await, "test-gate");
    assert_eq!(text(&c, "#count").await, "0");
    // The node's province reaches the header.
    wait_text_contains(&c, "#node-name", "广东省", VERDICT_WAIT).await;
    assert_focus_on_code(&c).await;
    screenshot(&c, &s.shots.join("ready.png")).await;

    // 1. A Sichuan yellow code: RECOGNIZED, counted here as red.
    scan(&c, &s.recognized_code).await;
    wait_attr(&c, "#verdict", "data-state", "recognized", VERDICT_WAIT).await;
    assert_eq!(attr(&c, "#verdict", "data-colour").await, "red");
    assert_eq!(attr(&c, "#verdict", "data-reason").await, "ok");
    let title = text(&c, "#verdict-title").await + &text(&c, "#verdict-title-en").await;
    assert!(
        title.contains("RECOGNIZED") && !title.contains("NOT"),
        "{title}"
    );
    assert!(title.contains("互认通过"), "{title}");
    assert_eq!(text(&c, "#subject-name").await, s.masked_name);
    assert_eq!(text(&c, "#subject-id").await, s.masked_id);
    let status = text(&c, "#status").await;
    assert!(
        status.contains("红码") && status.contains("RED"),
        "{status}"
    );
    let issuer = text(&c, "#issuer").await;
    assert!(
        issuer.contains("四川") && issuer.contains("Sichuan"),
        "{issuer}"
    );
    // Times in the node's display offset (Beijing time by default), written with it, whatever
    // the browser's own time zone (UTC here).
    let checked_at = text(&c, "#checked-at").await;
    assert!(checked_at.ends_with("+08:00"), "{checked_at}");
    assert_eq!(text(&c, "#valid-until").await, s.valid_until_shown);
    assert_eq!(text(&c, "#count").await, "1");
    assert_focus_on_code(&c).await;
    let recognized_bg = rgb(&c, "backgroundColor").await;
    assert!(
        recognized_bg.0 > 150 && recognized_bg.1 < 90 && recognized_bg.2 < 90,
        "recognized red is {recognized_bg:?}"
    );
    screenshot(&c, &s.shots.join("recognized.png")).await;
    c.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    screenshot(&c, &s.shots.join("recognized-phone.png")).await;
    c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();

    // The identity match: staff type the number on the person's ID card.
    let field = c.find(Locator::Css("#doc-number")).await.unwrap();
    field.click().await.unwrap();
    field
        .send_keys(&format!("{}{ENTER}", s.document_number))
        .await
        .unwrap();
    wait_attr(&c, "#match-result", "data-result", "match", VERDICT_WAIT).await;
    let answer = text(&c, "#match-result").await;
    assert!(
        answer.contains("人证一致") && answer.contains("MATCH"),
        "{answer}"
    );
    assert_eq!(
        field.prop("value").await.unwrap().unwrap_or_default(),
        "",
        "the typed number is cleared once answered"
    );
    assert_focus_on_code(&c).await;
    assert_eq!(attr(&c, "#verdict", "data-state").await, "recognized");
    // The answer is seen without scrolling, on a desktop and on a phone.
    assert_in_viewport(&c, "#match-result", "MATCH", &s.shots.join("match.png")).await;
    c.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    assert_in_viewport(
        &c,
        "#match-result",
        "MATCH",
        &s.shots.join("match-phone.png"),
    )
    .await;
    c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();

    // A wrong number: NO MATCH, fully in view at both sizes, and the panel no longer looks like
    // a pass (not the status colour, the title says NO MATCH, the status is hidden).
    for (size, shot) in [(PHONE, "no-match-phone.png"), (DESKTOP, "no-match.png")] {
        scan(&c, &s.recognized_code).await;
        wait_attr(&c, "#verdict", "data-state", "recognized", VERDICT_WAIT).await;
        c.set_window_size(size.0, size.1).await.unwrap();
        let field = c.find(Locator::Css("#doc-number")).await.unwrap();
        field.click().await.unwrap();
        field
            .send_keys(&format!("{}{ENTER}", s.wrong_document_number))
            .await
            .unwrap();
        wait_attr(&c, "#match-result", "data-result", "no-match", VERDICT_WAIT).await;
        let answer = text(&c, "#match-result").await;
        assert!(
            answer.contains("人证不符") && answer.contains("NO MATCH"),
            "{answer}"
        );
        assert_in_viewport(&c, "#match-result", "NO MATCH", &s.shots.join(shot)).await;
        let title = text(&c, "#verdict-title").await + &text(&c, "#verdict-title-en").await;
        assert!(
            title.contains("人证不符")
                && title.contains("NO MATCH")
                && !title.contains("RECOGNIZED"),
            "{title}"
        );
        assert!(
            !displayed(&c, "#status").await,
            "the status colour is still shown"
        );
        assert!(
            !displayed(&c, "#reason").await,
            "'recognized' is still shown"
        );
        let bg = rgb(&c, "backgroundColor").await;
        assert!(
            bg.0 < 80 && bg.1 < 80 && bg.2 < 80,
            "a NO MATCH panel is dark, not the pass colour: {bg:?}"
        );
        assert_in_viewport(&c, "#verdict-title-en", "NO MATCH", &s.shots.join(shot)).await;
    }
    let no_match_png = png(&s.shots.join("no-match.png"));
    let (red_share, green_share) = colour_shares(&no_match_png);
    assert!(
        green_share < 0.002,
        "no-match.png is {:.1}% green",
        green_share * 100.0
    );
    assert!(
        red_share < 0.3,
        "no-match.png is {:.0}% red: still the pass colour",
        red_share * 100.0
    );
    c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();

    // 2. A Jiangsu code: no agreement, NOT RECOGNIZED, no colour, no subject.
    scan(&c, &s.no_agreement_code).await;
    wait_attr(&c, "#verdict", "data-state", "not-recognized", VERDICT_WAIT).await;
    assert_eq!(attr(&c, "#verdict", "data-colour").await, "none");
    assert_eq!(attr(&c, "#verdict", "data-reason").await, "no_agreement");
    let title = text(&c, "#verdict-title").await + &text(&c, "#verdict-title-en").await;
    assert!(
        title.contains("NOT RECOGNIZED") && title.contains("不予互认"),
        "{title}"
    );
    let reason = text(&c, "#reason").await;
    assert!(
        reason.contains("no agreement") && reason.contains("未签互认协议"),
        "{reason}"
    );
    assert_eq!(
        text(&c, "#subject-name").await,
        "",
        "no subject for a code not recognized"
    );
    assert_eq!(text(&c, "#status").await, "");
    assert_eq!(text(&c, "#match-result").await, "");
    assert_eq!(text(&c, "#count").await, "4");
    assert_focus_on_code(&c).await;
    let refused_bg = rgb(&c, "backgroundColor").await;
    assert_ne!(refused_bg, recognized_bg);
    assert!(
        refused_bg.0 < 80 && refused_bg.1 < 80 && refused_bg.2 < 80,
        "not recognized is dark, not a colour: {refused_bg:?}"
    );
    let border = rgb(&c, "borderTopColor").await;
    assert!(border.0 > 200 && border.1 < 80, "red frame: {border:?}");
    screenshot(&c, &s.shots.join("not-recognized.png")).await;
    c.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    screenshot(&c, &s.shots.join("not-recognized-phone.png")).await;
    c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();

    // 3. A Sichuan red code altered to green: invalid signature, never green.
    scan(&c, &s.tampered_code).await;
    wait_attr(&c, "#verdict", "data-reason", "bad_signature", VERDICT_WAIT).await;
    assert_eq!(attr(&c, "#verdict", "data-state").await, "not-recognized");
    assert_eq!(attr(&c, "#verdict", "data-colour").await, "none");
    let reason = text(&c, "#reason").await;
    assert!(reason.contains("invalid signature"), "{reason}");
    assert_eq!(text(&c, "#count").await, "5");

    // Guangdong's own green and yellow codes: each on its own colour.
    let mut backgrounds = vec![recognized_bg, refused_bg];
    for (code, colour) in &s.own_codes {
        scan(&c, code).await;
        wait_attr(&c, "#verdict", "data-colour", colour, VERDICT_WAIT).await;
        assert_eq!(attr(&c, "#verdict", "data-state").await, "recognized");
        let status = text(&c, "#status").await;
        assert!(status.contains(&colour.to_uppercase()), "{status}");
        let bg = rgb(&c, "backgroundColor").await;
        assert!(
            !backgrounds.contains(&bg),
            "{colour} is {bg:?}, like another verdict"
        );
        backgrounds.push(bg);
        screenshot(&c, &s.shots.join(format!("recognized-{colour}.png"))).await;
    }
    let (r, g, _) = backgrounds[2];
    assert!(g > 100 && g > r + 50, "green is {:?}", backgrounds[2]);
    assert_eq!(text(&c, "#count").await, "7");

    // Back to ready by itself, with nothing of the subject or the code left in the page.
    wait_attr(&c, "#verdict", "data-state", "ready", READY_WAIT).await;
    assert_eq!(attr(&c, "#verdict", "data-colour").await, "none");
    let left = c
        .execute(
            "return ['subject-name','subject-id','reason','issuer','status','match-result']
                 .map(function (id) { return document.getElementById(id).textContent; }).join('')
               + document.getElementById('code').value + document.getElementById('doc-number').value",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(left, json!(""), "details cleared at ready");
    assert_eq!(
        stored(&c).await,
        json!([0, 0, 1, s.token]),
        "nothing stored in the browser but the token, in sessionStorage"
    );
    assert_eq!(text(&c, "#count").await, "7", "the shift's count stays");
    assert_focus_on_code(&c).await;

    // A new shift (pressed twice: the first press asks to confirm) resets the count.
    let new_shift = c.find(Locator::Css("#new-shift")).await.unwrap();
    new_shift.click().await.unwrap();
    assert_eq!(text(&c, "#count").await, "7");
    new_shift.click().await.unwrap();
    assert_eq!(text(&c, "#count").await, "0");
    assert_focus_on_code(&c).await;
}

/// The camera button where the browser has no BarcodeDetector (desktop Chromium on Linux): the
/// page reads the code with the vendored jsQR, served by the node. Chromium's fake camera plays
/// a Y4M file made here from the code's QR image; the code read through the camera is verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoint_page_reads_a_code_through_the_camera() {
    let Some(tools) = browser_or_skip("checkpoint_page_reads_a_code_through_the_camera") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gd = start(&init_node_with_page(dir.path(), GUANGDONG).await).await;
    let page = gd.http_addr.expect("Guangdong serves the page");
    let green = issue(&gd, subject("王建国", "440104", 131), G, 300).await;
    let video = dir.path().join("camera.y4m");
    write_y4m_of_qr(&green.code, &video);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let token = test_token(&gd);
    let url = format!("https://{page}/?checkpoint=camera-gate");
    let flags = [
        "--use-fake-device-for-media-stream".to_string(),
        "--use-fake-ui-for-media-stream".to_string(),
        format!("--use-file-for-fake-video-capture={}", video.display()),
    ];
    in_browser_with(&tools, dir.path(), &flags, move |c| async move {
        c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
        c.goto(&url).await.unwrap();
        wait_displayed(&c, "#login", true, VERDICT_WAIT).await;
        log_in(&c, &token).await;
        wait_logged_in(&c, "test").await;
        let native = c
            .execute("return typeof window.BarcodeDetector", vec![])
            .await
            .unwrap();
        assert_eq!(
            native,
            json!("undefined"),
            "this Chromium has BarcodeDetector"
        );
        assert!(displayed(&c, "#camera-btn").await, "no camera button");
        c.find(Locator::Css("#camera-btn"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_attr(&c, "#verdict", "data-state", "recognized", VERDICT_WAIT).await;
        assert_eq!(attr(&c, "#camera-box", "data-decoder").await, "jsqr");
        assert_eq!(attr(&c, "#verdict", "data-colour").await, "green");
        assert_eq!(text(&c, "#subject-name").await, "王*国");
        assert_eq!(text(&c, "#count").await, "1");
        screenshot(&c, &shots.join("camera.png")).await;
        // The camera goes off with the button.
        c.find(Locator::Css("#camera-btn"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_displayed(&c, "#camera-box", false, VERDICT_WAIT).await;
    })
    .await;
    // The check went through the page's API, like a scan.
    let deadline = Instant::now() + Duration::from_secs(5);
    let records = loop {
        let r: Vec<proto::AuditRecord> = audit_records(&gd)
            .await
            .into_iter()
            .filter(|r| r.checkpoint_id == "camera-gate")
            .collect();
        if !r.is_empty() || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].verdict, Verdict::Recognized as i32);
    assert_eq!(records[0].via, "http");
    gd.shutdown().await.unwrap();
}

/// Writes a Y4M video (2 frames, 960x720, 4:2:0) showing `code`'s QR symbol in the middle of a
/// white frame, for Chromium's fake camera.
fn write_y4m_of_qr(code: &str, path: &Path) {
    const W: u32 = 960;
    const H: u32 = 720;
    let png = hcmr::qr::encode_png(code, 1).unwrap();
    let qr = image::load_from_memory(&png).unwrap().to_luma8();
    let scale = (H - 80) / qr.height().max(qr.width());
    assert!(
        scale >= 3,
        "{}x{} modules: too many for the frame",
        qr.width(),
        qr.height()
    );
    let (qw, qh) = (qr.width() * scale, qr.height() * scale);
    let (x0, y0) = ((W - qw) / 2, (H - qh) / 2);
    let mut luma = vec![255u8; (W * H) as usize];
    for y in 0..qh {
        for x in 0..qw {
            luma[((y0 + y) * W + x0 + x) as usize] = qr.get_pixel(x / scale, y / scale).0[0];
        }
    }
    let chroma = vec![128u8; (W * H / 2) as usize];
    let mut out = format!("YUV4MPEG2 W{W} H{H} F10:1 Ip A1:1 C420jpeg\n").into_bytes();
    for _ in 0..2 {
        out.extend_from_slice(b"FRAME\n");
        out.extend_from_slice(&luma);
        out.extend_from_slice(&chroma);
    }
    std::fs::write(path, out).unwrap();
}

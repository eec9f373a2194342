//! Logging in to the checkpoint page, and what it says when a scan or the node fails.

use super::*;

/// The login, step by step, in a page of a node with a page: (a) before logging in there is no
/// verify form; (b) a wrong token is refused with the node's 401 message; (c) so is the token of
/// an issuer (403); a verifier logs in, stays logged in across a reload and verifies; when the
/// operator removes that caller, the next scan's 401 returns the page to the login panel; (e)
/// logging out does too, and removes the token from sessionStorage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoint_page_login_in_headless_chromium() {
    let Some(tools) = browser_or_skip("checkpoint_page_login_in_headless_chromium") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gd = start(&init_node_with_page(dir.path(), GUANGDONG).await).await;
    let page = gd.http_addr.expect("Guangdong serves the page");
    let issuer = add_caller(&gd, "issuer-only", &[proto::CallerRole::Issuer]).await;
    let staff = add_caller(&gd, "gate-staff", &[proto::CallerRole::Verifier]).await;
    let green = issue(&gd, subject("王建国", "440104", 131), G, 300).await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let s = LoginScenario {
        page: format!("https://{page}/?checkpoint=login-gate"),
        token: test_token(&gd),
        issuer_token: issuer,
        staff_token: staff,
        code: green.code,
        endpoint: gd.endpoint.clone(),
        cert: gd.tls_cert.clone().expect("a TLS node"),
        shots,
    };
    in_browser(&tools, dir.path(), |c| drive_login(c, s)).await;

    // The refused logins are in the node's log of denials; a token never is.
    let denials = operator(&gd)
        .await
        .list_access_denials(proto::ListAccessDenialsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let text = format!("{denials:?}");
    assert!(text.contains("/api/login"), "{text}");
    assert!(text.contains("issuer-only"), "{text}");
    assert!(!text.contains("hcmr_"), "a token in the denials: {text}");
    gd.shutdown().await.unwrap();
}

struct LoginScenario {
    page: String,
    token: String,
    issuer_token: String,
    staff_token: String,
    code: String,
    endpoint: String,
    cert: PathBuf,
    shots: PathBuf,
}

async fn drive_login(c: Client, s: LoginScenario) {
    c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
    c.goto(&s.page).await.unwrap();

    // (a) Before logging in: the login panel with the token field focused; no verify form, and
    // its field disabled; nothing stored.
    wait_displayed(&c, "#login", true, VERDICT_WAIT).await;
    assert_logged_out(&c).await;
    let label = text(&c, "#token-label").await;
    assert!(
        label.contains("核验员令牌") && label.contains("Verifier token"),
        "{label}"
    );
    assert_eq!(attr(&c, "#token", "type").await, "password");
    let button = text(&c, "#login-btn").await;
    assert!(
        button.contains("登录") && button.contains("Log in"),
        "{button}"
    );
    assert_eq!(text(&c, "#login-message").await, "");
    wait_text_contains(&c, "#node-name", "广东省", VERDICT_WAIT).await;
    screenshot(&c, &s.shots.join("login.png")).await;
    c.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    screenshot(&c, &s.shots.join("login-phone.png")).await;
    c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();

    // A code scanned before logging in goes nowhere: the page says to log in first.
    let active = c.active_element().await.unwrap();
    active
        .send_keys(&format!("{}{ENTER}", s.code))
        .await
        .unwrap();
    wait_text_contains(&c, "#login-message", "log in before scanning", VERDICT_WAIT).await;
    assert_eq!(prop(&c, "#token", "value").await, "");
    assert_logged_out(&c).await;

    // (b) A wrong token: the node's 401 message, still logged out, the field emptied.
    log_in(&c, "hcmr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    wait_attr(&c, "#login-message", "data-kind", "error", VERDICT_WAIT).await;
    let message = text(&c, "#login-message").await;
    assert!(
        message.contains("令牌无效") && message.contains("unknown or removed API token"),
        "{message}"
    );
    assert_eq!(prop(&c, "#token", "value").await, "");
    assert_logged_out(&c).await;
    screenshot(&c, &s.shots.join("login-refused.png")).await;

    // (c) An issuer's token: the node's 403 message (the role it lacks), still logged out.
    log_in(&c, &s.issuer_token).await;
    wait_text_contains(&c, "#login-message", "needs role verifier", VERDICT_WAIT).await;
    let message = text(&c, "#login-message").await;
    assert!(
        message.contains("无核验权限") && message.contains("issuer-only has role issuer"),
        "{message}"
    );
    assert_logged_out(&c).await;

    // A verifier logs in (the button this time): the verify form, the caller's name, the token
    // in sessionStorage only.
    let field = c.find(Locator::Css("#token")).await.unwrap();
    field.send_keys(&s.staff_token).await.unwrap();
    c.find(Locator::Css("#login-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_logged_in(&c, "gate-staff").await;
    assert_eq!(text(&c, "#login-message").await, "");
    assert_eq!(stored(&c).await, json!([0, 0, 1, s.staff_token]));

    // A reload keeps the login (same tab), and checks the token again.
    c.refresh().await.unwrap();
    wait_logged_in(&c, "gate-staff").await;

    // (d) A verify works and shows the verdict.
    scan(&c, &s.code).await;
    wait_attr(&c, "#verdict", "data-state", "recognized", VERDICT_WAIT).await;
    assert_eq!(attr(&c, "#verdict", "data-colour").await, "green");
    assert_eq!(text(&c, "#count").await, "1");

    // The operator removes the caller: the next scan's 401 returns the page to the login panel,
    // with the node's message, and the token is gone.
    let channel = hcmr::client::connect(&s.endpoint, Some(&s.cert), Some(&s.token))
        .await
        .unwrap();
    proto::operator_service_client::OperatorServiceClient::new(channel)
        .remove_caller(proto::RemoveCallerRequest {
            name: "gate-staff".into(),
        })
        .await
        .unwrap();
    scan(&c, &s.code).await;
    wait_displayed(&c, "#login", true, VERDICT_WAIT).await;
    let message = text(&c, "#login-message").await;
    assert!(
        message.contains("登录已失效") && message.contains("unknown or removed API token"),
        "{message}"
    );
    assert_logged_out(&c).await;

    // (e) Log in again, then log out: the login panel, the token gone from sessionStorage, and
    // a reload stays logged out.
    log_in(&c, &s.token).await;
    wait_logged_in(&c, "test").await;
    assert_eq!(stored(&c).await, json!([0, 0, 1, s.token]));
    c.find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_displayed(&c, "#login", true, VERDICT_WAIT).await;
    assert_logged_out(&c).await;
    assert_eq!(text(&c, "#caller").await, "");
    let message = text(&c, "#login-message").await;
    assert!(message.contains("logged out"), "{message}");
    c.refresh().await.unwrap();
    wait_displayed(&c, "#login", true, VERDICT_WAIT).await;
    assert_logged_out(&c).await;
}

/// When a scan or the node fails, the page says what to do, in Chinese and English: a garbage
/// scan shows the reason and advice in both languages, never the decoder's own (Rust) words;
/// a node that is down offers the fallbacks (the offline check, the masked ID by eye).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoint_page_says_what_to_do_when_a_scan_or_the_node_fails() {
    let Some(tools) =
        browser_or_skip("checkpoint_page_says_what_to_do_when_a_scan_or_the_node_fails")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gd = start(&init_node_with_page(dir.path(), GUANGDONG).await).await;
    let page = gd.http_addr.expect("Guangdong serves the page");
    let green = issue(&gd, subject("王建国", "440104", 131), G, 300).await;
    // Cut short inside the CBOR: the decoder's detail is Rust's (an I/O error's Debug).
    let garbage = "HCMR1:6BF".to_string();
    let raw = verify(&gd, &garbage).await;
    assert_eq!(raw.reason, Reason::Malformed as i32);
    assert!(!raw.detail.is_empty());
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let token = test_token(&gd);
    let url = format!("https://{page}/?checkpoint=fail-gate");
    let wrong = document_number("440104", 132);
    in_browser(&tools, dir.path(), move |c| async move {
        c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
        c.goto(&url).await.unwrap();
        wait_displayed(&c, "#login", true, VERDICT_WAIT).await;
        log_in(&c, &token).await;
        wait_logged_in(&c, "test").await;

        scan(&c, &garbage).await;
        wait_attr(&c, "#verdict", "data-reason", "malformed", VERDICT_WAIT).await;
        let panel = text(&c, "#verdict").await;
        assert!(
            panel.contains("无法识别的健康码") && panel.contains("not a readable health code"),
            "{panel}"
        );
        let advice = text(&c, "#advice").await;
        assert!(
            advice.contains("请持码人打开本人健康码") && advice.contains("ask the holder to open"),
            "{advice}"
        );
        for rust in [raw.detail.as_str(), "Error {", "Io(", "Semantic(", "kind:"] {
            assert!(!panel.contains(rust), "{rust:?} on the page: {panel}");
        }
        screenshot(&c, &shots.join("malformed.png")).await;

        // The identity match's refusals, in both languages with what to do: a mistyped number,
        // then (after five NO MATCH) the hourly limit; never the API's English.
        scan(&c, &green.code).await;
        wait_attr(&c, "#verdict", "data-state", "recognized", VERDICT_WAIT).await;
        let field = c.find(Locator::Css("#doc-number")).await.unwrap();
        field.send_keys(&format!("123{ENTER}")).await.unwrap();
        wait_attr(&c, "#match-result", "data-result", "error", VERDICT_WAIT).await;
        let answer = text(&c, "#match-result").await;
        assert!(
            answer.contains("证件号无效") && answer.contains("not a valid document number"),
            "{answer}"
        );
        for _ in 0..5 {
            field.send_keys(&format!("{wrong}{ENTER}")).await.unwrap();
            wait_attr(&c, "#match-result", "data-result", "no-match", VERDICT_WAIT).await;
        }
        field.send_keys(&format!("{wrong}{ENTER}")).await.unwrap();
        wait_attr(&c, "#match-result", "data-result", "error", VERDICT_WAIT).await;
        let answer = text(&c, "#match-result").await;
        assert!(
            answer.contains("核对次数已达上限")
                && answer.contains("too many checks of this code")
                && answer.contains("by eye"),
            "{answer}"
        );
        assert!(
            !answer.contains("identity match:"),
            "the API's words: {answer}"
        );
        assert_in_viewport(
            &c,
            "#match-result",
            "too many",
            &shots.join("match-limit.png"),
        )
        .await;
        // No answer after a NO MATCH is not a pass: the panel still says NO MATCH.
        assert_eq!(attr(&c, "#verdict", "data-match").await, "no-match");
        assert!(!displayed(&c, "#status").await, "the status colour is back");

        // The node goes down while the page is open: CHECK FAILED, with the fallbacks.
        gd.shutdown().await.unwrap();
        scan(&c, &green.code).await;
        wait_attr(&c, "#verdict", "data-state", "error", VERDICT_WAIT).await;
        let title = text(&c, "#verdict-title-en").await;
        assert!(title.contains("CHECK FAILED"), "{title}");
        let advice = text(&c, "#advice").await;
        for want in [
            "离线核验",
            "人工比对",
            "offline check",
            "compare the masked name and ID number",
            "by eye",
        ] {
            assert!(
                advice.contains(want),
                "{want:?} not in the advice {advice:?}"
            );
        }
        screenshot(&c, &shots.join("node-down.png")).await;
    })
    .await;
}

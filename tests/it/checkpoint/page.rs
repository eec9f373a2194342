//! The checkpoint page's API and the input contracts.

use super::*;

/// One HTTP/1.1 request over TLS (the node's certificate pinned), with `token` as the bearer
/// token and `extra` header lines: (status, headers and body as text).
fn http(
    addr: std::net::SocketAddr,
    cert: &std::path::Path,
    token: Option<&str>,
    extra: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut config = (*hcmr::tls::pinned_client_config(cert).unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let conn = rustls::ClientConnection::new(
        std::sync::Arc::new(config),
        rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
    )
    .unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    // A peer that closes without close_notify ends the read with an error after the data.
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).to_string();
    let status = out[9..12].parse().unwrap();
    (status, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_api_answers_json_errors_and_keeps_nothing_cached() {
    let dir = tempfile::tempdir().unwrap();
    let path = hcmr::node::init_with_page(
        hcmr::province::Province::from_code(SICHUAN).unwrap(),
        &dir.path().join("sc"),
        "127.0.0.1:0".parse().unwrap(),
        Some("127.0.0.1:0".parse().unwrap()),
        None,
    )
    .await
    .unwrap();
    add_test_caller(&path).await;
    let sc = start(&path).await;
    let addr = sc.http_addr.unwrap();
    let cert = sc.tls_cert.clone().unwrap();
    let token = test_token(&sc);
    let issuer_only = operator(&sc)
        .await
        .add_caller(proto::AddCallerRequest {
            name: "platform".into(),
            roles: vec![proto::CallerRole::Issuer as i32],
            replace: false,
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let code = issue(&sc, subject("王建国", "510104", 131), G, 300).await;
    let answers = tokio::task::spawn_blocking(move || {
        let json = "Content-Type: application/json\r\n";
        let t = Some(token.as_str());
        let post = |body: &str| http(addr, &cert, t, json, "POST", "/api/verify", body);
        let page = http(addr, &cert, None, "", "GET", "/", "");
        let ok = post(&format!(
            "{{\"code\":\"{}\",\"checkpoint_id\":\"gate-9\"}}",
            code.code
        ));
        let not_json = post("not json");
        let empty = post("{}");
        let wrong_type = post("{\"code\":7}");
        let huge = post(&"x".repeat(20_000));
        // Who may call: no token, an unknown token, a caller without the verifier role.
        let anonymous = http(addr, &cert, None, json, "POST", "/api/verify", "{}");
        let unknown = http(
            addr,
            &cert,
            Some("hcmr_x"),
            json,
            "POST",
            "/api/verify",
            "{}",
        );
        let wrong_role = http(
            addr,
            &cert,
            Some(issuer_only.as_str()),
            json,
            "POST",
            "/api/verify",
            "{}",
        );
        // CSRF: another site's origin, a cross-site fetch, a form's content type.
        let foreign = http(
            addr,
            &cert,
            t,
            "Content-Type: application/json\r\nOrigin: https://evil.example\r\n",
            "POST",
            "/api/verify",
            "{}",
        );
        let cross_site = http(
            addr,
            &cert,
            t,
            "Content-Type: application/json\r\nSec-Fetch-Site: cross-site\r\n",
            "POST",
            "/api/verify",
            "{}",
        );
        let form = http(
            addr,
            &cert,
            t,
            "Content-Type: application/x-www-form-urlencoded\r\n",
            "POST",
            "/api/verify",
            "code=x",
        );
        let login = http(addr, &cert, t, json, "POST", "/api/login", "{}");
        for (answer, status, want) in [
            (
                &anonymous,
                401,
                "needs the API token of a caller with role verifier",
            ),
            (&unknown, 401, "unknown or removed API token"),
            (&wrong_role, 403, "caller platform has role issuer"),
            (&foreign, 403, "cross-site request refused"),
            (&cross_site, 403, "cross-site request refused"),
            (&form, 415, "content-type: must be application/json"),
            (&login, 200, "{\"caller\":\"test\"}"),
        ] {
            assert_eq!(answer.0, status, "{}", answer.1);
            assert!(answer.1.contains(want), "{want}: {}", answer.1);
        }
        assert!(anonymous
            .1
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"));
        (page, ok, not_json, empty, wrong_type, huge)
    })
    .await
    .unwrap();
    let (page, ok, not_json, empty, wrong_type, huge) = answers;
    assert_eq!(page.0, 200);
    let headers = page.1.to_ascii_lowercase();
    assert!(headers.contains("content-security-policy: default-src 'none'; script-src 'self'"));
    assert!(headers.contains("cache-control: no-store"));
    assert_eq!(ok.0, 200);
    assert!(
        ok.1.contains("\"recognized\":true") && ok.1.contains("\"local_status\":\"green\""),
        "{}",
        ok.1
    );
    assert!(ok
        .1
        .to_ascii_lowercase()
        .contains("cache-control: no-store"));
    for (answer, want) in [
        (&not_json, "body: not JSON"),
        (&empty, "code: required"),
        (&wrong_type, "code: must be a string"),
    ] {
        assert_eq!(answer.0, 400, "{}", answer.1);
        assert!(
            answer.1.contains(&format!("{{\"error\":\"{want}")),
            "{}",
            answer.1
        );
    }
    assert_eq!(huge.0, 413, "{}", huge.1);
    assert!(huge.1.contains("{\"error\":\"body:"), "{}", huge.1);
    // The refusals are in the access log, with who and why, and no token.
    let denials = denials(&sc, 6).await;
    let seen: Vec<(&str, &str, &str)> = denials
        .iter()
        .map(|d| (d.rpc.as_str(), d.outcome.as_str(), d.who.as_str()))
        .collect();
    for want in [
        ("/api/verify", "UNAUTHENTICATED", "anonymous"),
        ("/api/verify", "PERMISSION_DENIED", "caller platform"),
    ] {
        assert!(seen.contains(&want), "{want:?} in {seen:?}");
    }
    assert!(
        denials.iter().all(|d| d.remote == "127.0.0.1"),
        "{denials:?}"
    );
    sc.shutdown().await.unwrap();
}

/// Issue 15 fault 8: a checkpoint id (gRPC and the page's API) and a name to issue are refused,
/// not cleaned or cut, when they carry a control character, a bidirectional control or (the id)
/// more than 64 characters, or (the name) nothing visible; the message names the character and
/// where it is, and nothing is recorded or issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_contracts_are_refused_naming_the_character() {
    let dir = tempfile::tempdir().unwrap();
    let path = hcmr::node::init_with_page(
        hcmr::province::Province::from_code(SICHUAN).unwrap(),
        &dir.path().join("sc"),
        "127.0.0.1:0".parse().unwrap(),
        Some("127.0.0.1:0".parse().unwrap()),
        None,
    )
    .await
    .unwrap();
    add_test_caller(&path).await;
    let sc = start(&path).await;
    let code = issue(&sc, subject("王建国", "510104", 131), G, 300).await;

    // Checkpoint ids over gRPC.
    let long = "x".repeat(10_000);
    for (id, want) in [
        (
            "\u{1b}[2Kgate-1",
            "checkpoint_id: character U+001B at position 1 is not allowed",
        ),
        (
            "gate\u{202e}3",
            "checkpoint_id: character U+202E at position 5",
        ),
        (
            "gate\u{2066}3",
            "checkpoint_id: character U+2066 at position 5",
        ),
        ("gate-3\n", "checkpoint_id: character U+000A at position 7"),
        (
            long.as_str(),
            "checkpoint_id: has 10000 characters; at most 64 are accepted",
        ),
    ] {
        let e = codes(&sc)
            .await
            .verify_health_code(proto::VerifyHealthCodeRequest {
                code: code.code.clone(),
                checkpoint_id: id.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{id:?}: {e:?}");
        assert!(e.message().starts_with(want), "{id:?}: {}", e.message());
    }
    // 64 characters, any script, are fine.
    let v = codes(&sc)
        .await
        .verify_health_code(proto::VerifyHealthCodeRequest {
            code: code.code.clone(),
            checkpoint_id: "成".repeat(64),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.verdict, Verdict::Recognized as i32);

    // The page's API.
    let addr = sc.http_addr.unwrap();
    let cert = sc.tls_cert.clone().unwrap();
    let token = test_token(&sc);
    let c = code.code.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let body = format!("{{\"code\":\"{c}\",\"checkpoint_id\":\"\\u001b[1Agate\"}}");
        let json = "Content-Type: application/json\r\n";
        http(
            addr,
            &cert,
            Some(&token),
            json,
            "POST",
            "/api/verify",
            &body,
        )
    })
    .await
    .unwrap();
    assert_eq!(answer.0, 400, "{}", answer.1);
    assert!(
        answer
            .1
            .contains("checkpoint_id: character U+001B at position 1 is not allowed"),
        "{}",
        answer.1
    );
    // Only the one good verification was recorded.
    let records = audit_until(&sc, 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].checkpoint_id, "成".repeat(64));

    // Names to issue.
    for (name, want) in [
        (
            "\u{202e}张三",
            "subject.name: name: character U+202E at position 1 is not allowed",
        ),
        (
            "张\u{1b}三",
            "subject.name: name: character U+001B at position 2",
        ),
        (
            "李\u{200f}英",
            "subject.name: name: character U+200F at position 2",
        ),
        (
            "\u{200d}",
            "subject.name: name has no visible character (only zero-width characters or white \
             space)",
        ),
        (
            "\u{200b} \u{2060}",
            "subject.name: name has no visible character",
        ),
    ] {
        let e = codes(&sc)
            .await
            .issue_health_code(proto::IssueHealthCodeRequest {
                subject: Some(subject(name, "510104", 132)),
                status: G,
                status_valid_until: (hcmr::unix_now() + 86_400).secs(),
                code_lifetime_secs: 300,
                qr_format: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{name:?}: {e:?}");
        assert!(e.message().starts_with(want), "{name:?}: {}", e.message());
    }
    sc.shutdown().await.unwrap();
}

//! What checkpoint staff rely on, with real nodes on loopback: every verification lands in the
//! audit log with the right fields and nothing personal, and the identity match ties a code to
//! the document shown (at the issuing node, or forwarded to it by a peer).

use crate::common;

use common::*;
use hcmr::proto::{self, Reason, Verdict};
use sha2::{Digest, Sha256};
use tonic::Code;

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;

async fn audit(
    n: &hcmr::node::NodeHandle,
    req: proto::ListAuditRecordsRequest,
) -> Vec<proto::AuditRecord> {
    operator(n)
        .await
        .list_audit_records(req)
        .await
        .unwrap()
        .into_inner()
        .records
}

/// Audit records are written in batches: wait (bounded) until `n` are there.
async fn audit_until(node: &hcmr::node::NodeHandle, n: usize) -> Vec<proto::AuditRecord> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = audit(node, proto::ListAuditRecordsRequest::default()).await;
        if r.len() >= n || std::time::Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifications_are_audited_without_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let person = subject("李秀英", "511302", 242);
    let number = person.document_number.clone();
    let code = issue(&sc, person, Y, 300).await;

    let mut c = codes(&gd).await;
    let v = c
        .verify_health_code(proto::VerifyHealthCodeRequest {
            code: code.code.clone(),
            checkpoint_id: "guangzhou-south-gate-3".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.verdict, Verdict::Recognized as i32);
    // The checkpoint id may also come as metadata.
    let mut req = tonic::Request::new(proto::VerifyHealthCodeRequest {
        code: "HCMR1:garbage!".into(),
        checkpoint_id: String::new(),
    });
    req.metadata_mut()
        .insert("x-hcmr-checkpoint", "dongguan-factory-1".parse().unwrap());
    let v = c.verify_health_code(req).await.unwrap().into_inner();
    assert_eq!(v.reason, Reason::Malformed as i32);

    let records = audit_until(&gd, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let first = &records[0];
    assert_eq!(first.checkpoint_id, "guangzhou-south-gate-3");
    assert_eq!(first.via, "grpc");
    assert_eq!(first.issuer_province, "510000");
    assert_eq!(first.verdict, Verdict::Recognized as i32);
    assert_eq!(first.reason, Reason::Ok as i32);
    let cti = hex::decode(&code.cti).unwrap();
    assert_eq!(first.cti_hash, hex::encode(&Sha256::digest(&cti)[..16]));
    assert!(first.time >= code.iat && first.time <= hcmr::unix_now());
    let second = &records[1];
    assert_eq!(second.checkpoint_id, "dongguan-factory-1");
    assert_eq!(
        (
            second.verdict,
            second.reason,
            second.issuer_province.as_str(),
            second.cti_hash.as_str()
        ),
        (
            Verdict::NotRecognized as i32,
            Reason::Malformed as i32,
            "",
            ""
        )
    );

    // Filters: by verdict, by issuer, by time.
    let only_bad = audit(
        &gd,
        proto::ListAuditRecordsRequest {
            verdict: Verdict::NotRecognized as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(only_bad.len(), 1);
    let by_issuer = audit(
        &gd,
        proto::ListAuditRecordsRequest {
            issuer_province: "510000".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_issuer.len(), 1);
    let none = audit(
        &gd,
        proto::ListAuditRecordsRequest {
            until: first.time,
            ..Default::default()
        },
    )
    .await;
    assert!(none.is_empty());
    let e = operator(&gd)
        .await
        .list_audit_records(proto::ListAuditRecordsRequest {
            issuer_province: "51".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("issuer_province"));

    // The CLI exports CSV and a day's counts.
    let out = cli(&gd).args(["audit", "--csv"]).output().unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "time,checkpoint_id,via,issuer_province,verdict,reason,cti_hash"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].contains(",guangzhou-south-gate-3,grpc,510000,RECOGNIZED,OK,"),
        "{csv}"
    );
    // Times on the command line carry their offset: the first record's time in Beijing time
    // (+08:00) is the same instant; a time without an offset is refused, not read as UTC.
    let beijing = |t: u64| hcmr::cli::rfc3339(t + 8 * 3600).replace('Z', "+08:00");
    let rows = |args: &[&str]| {
        let out = cli(&gd)
            .arg("audit")
            .arg("--csv")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().lines().count() - 1
    };
    assert_eq!(rows(&["--from", &beijing(first.time)]), 2);
    assert_eq!(rows(&["--from", &beijing(first.time + 3600)]), 0);
    assert_eq!(rows(&["--until", &beijing(first.time)]), 0);
    assert_eq!(rows(&["--until", &beijing(first.time + 3600)]), 2);
    let no_offset = beijing(first.time).replace("+08:00", "");
    let out = cli(&gd)
        .args(["audit", "--from", &no_offset])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("give the offset from UTC"),
        "{out:?}"
    );
    let day = hcmr::cli::rfc3339(first.time)[..10].to_string();
    let out = cli(&gd)
        .args(["audit", "--summary", &day])
        .output()
        .unwrap();
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(summary.contains("2 verifications"), "{summary}");
    assert!(
        summary.contains("510000") && summary.contains("Sichuan"),
        "{summary}"
    );

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
    // Nothing personal at rest at the verifying node.
    for file in walk(&dir.path().join("440000")) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [number.as_bytes(), "李秀英".as_bytes(), "李*英".as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds personal data",
                file.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_match_at_the_issuer_and_forwarded_by_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let sc = start(&sc_cfg).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let person = subject("王建国", "510104", 131);
    let number = person.document_number.clone();
    let other = hcmr::identity::synthetic_resident_id("510104", "19900101", 132);
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
    let third = issue(&sc, subject("王建国", "510104", 131), G, 300).await;
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
    assert_eq!(e.code(), Code::Unavailable);
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
        status_valid_until: hcmr::unix_now() + 86_400,
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
    let number = hcmr::identity::synthetic_resident_id("510104", "19900101", 131);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_read_page_by_page() {
    // More verifications than a page holds (10,000), in a second or a few: every one is
    // reached, through the API, the CLI's listing and the CLI's day summary.
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    // Each code of a batch counts against the caller's rate: raised out of the way.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "caller_requests_per_sec = 200",
            "caller_requests_per_sec = 1000000",
        )
        .replace("caller_burst = 400", "caller_burst = 1000000"),
    )
    .unwrap();
    let sc = start(&cfg).await;
    let code = issue(&sc, subject("张伟", "510104", 7), G, 600).await.code;
    const BATCH: usize = 256;
    let mut hc = codes(&sc).await;
    let mut batches: Vec<Vec<String>> = vec![vec![code.clone(); BATCH]; 39];
    batches.push(
        std::iter::repeat_n(code.clone(), 17)
            .chain(std::iter::repeat_n("HCMR1:X".to_string(), 3))
            .collect(),
    );
    for codes in batches {
        hc.batch_verify_health_codes(proto::BatchVerifyHealthCodesRequest {
            codes,
            checkpoint_id: "chengdu-east-2".into(),
        })
        .await
        .unwrap();
    }
    const ALL: usize = 39 * BATCH + 20;
    const BAD: usize = 3;

    let mut op = operator(&sc).await;
    let page = |limit: u32, verdict: Verdict, token: &str| proto::ListAuditRecordsRequest {
        limit,
        verdict: verdict as i32,
        page_token: token.to_string(),
        ..Default::default()
    };
    // Every record, a page at a time; the writer stores them in the background (bounded wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (all, pages) = loop {
        let (mut all, mut token, mut pages) = (Vec::new(), String::new(), Vec::new());
        loop {
            // 100,000 asks for more than a page holds: lowered to 10,000 (AIP-158).
            let r = op
                .list_audit_records(page(100_000, Verdict::Unspecified, &token))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.truncated, !r.next_page_token.is_empty());
            pages.push(r.records.len());
            all.extend(r.records);
            token = r.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        if all.len() >= ALL {
            break (all, pages);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} records",
            all.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(pages, vec![10_000, ALL - 10_000]);
    assert_eq!(all.len(), ALL);
    assert!(all.windows(2).all(|w| w[0].time <= w[1].time));
    assert!(all.iter().all(|r| r.checkpoint_id == "chengdu-east-2"));
    let bad: Vec<_> = all
        .iter()
        .filter(|r| r.verdict == Verdict::NotRecognized as i32)
        .collect();
    assert_eq!(bad.len(), BAD);

    // A filter holds across pages; a token works only with the filters it was made for.
    let first = op
        .list_audit_records(page(2, Verdict::NotRecognized, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.records.len(), 2);
    assert!(first.truncated);
    let rest = op
        .list_audit_records(page(2, Verdict::NotRecognized, &first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((rest.records.len(), rest.next_page_token.as_str()), (1, ""));
    assert_eq!(rest.records[0].reason, bad[2].reason);
    let e = op
        .list_audit_records(page(2, Verdict::Unspecified, &first.next_page_token))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .starts_with("page_token: made for other filters"),
        "{}",
        e.message()
    );
    for junk in ["00ff", "not hex", &first.next_page_token[2..]] {
        let e = op
            .list_audit_records(page(2, Verdict::NotRecognized, junk))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{junk}");
        assert!(e.message().starts_with("page_token"), "{}", e.message());
    }

    // The CLI: --limit, then the token it prints, reaches the rest.
    let run = |args: &[&str]| {
        let mut c = cli(&sc);
        c.arg("audit").args(args);
        // The node serves on this runtime: run the CLI off its worker threads' duty.
        let out = tokio::task::block_in_place(|| c.output()).unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (status, listed, note) = run(&["--csv", "--limit", "3"]);
    assert_eq!(status, Some(0), "{note}");
    assert_eq!(listed.lines().count(), 1 + 3);
    let token = note
        .split("--page-token ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no page token in {note:?}"))
        .to_string();
    assert!(note.starts_with("3 records shown"), "{note}");
    let (status, listed, note) = run(&["--csv", "--page-token", &token, "--limit", "20000"]);
    assert_eq!((status, note.as_str()), (Some(0), ""));
    assert_eq!(listed.lines().count(), 1 + ALL - 3);
    assert_eq!(
        listed
            .lines()
            .filter(|l| l.contains(",NOT_RECOGNIZED,"))
            .count(),
        BAD
    );
    // A range that cannot match, and a day that is not one: the caller's mistakes (64).
    let (status, _, note) = run(&[
        "--from",
        "2026-12-01T08:00:00+08:00",
        "--until",
        "2026-12-01T00:00:00Z",
    ]);
    assert_eq!(status, Some(64));
    assert!(
        // In the display offset (Beijing time by default), with the offset.
        note.contains(
            "--from 2026-12-01T08:00:00+08:00 is not before --until 2026-12-01T08:00:00+08:00"
        ),
        "{note}"
    );
    for day in ["2026-02-30", "1969-12-31", "yesterday"] {
        let (status, _, note) = run(&["--summary", day]);
        assert_eq!(status, Some(64), "{day}");
        assert!(
            note.contains("a UTC day YYYY-MM-DD from 1970 on"),
            "{day}: {note}"
        );
    }
    // The token with another filter is the caller's mistake (64), named.
    let (status, _, note) = run(&["--page-token", &token, "--verdict", "recognized"]);
    assert_eq!(status, Some(64));
    assert!(
        note.contains("--page-token: made for other filters"),
        "{note}"
    );

    // The day's summary counts every record of the day, over both pages.
    let day = hcmr::cli::rfc3339(all[0].time)[..10].to_string();
    let of_day: Vec<_> = all
        .iter()
        .filter(|r| hcmr::cli::rfc3339(r.time).starts_with(&day))
        .collect();
    let bad_of_day = of_day
        .iter()
        .filter(|r| r.verdict == Verdict::NotRecognized as i32)
        .count();
    let (status, summary, note) = run(&["--summary", &day, "--csv"]);
    assert_eq!((status, note.as_str()), (Some(0), ""));
    let mut want = vec![
        "issuer_province,verdict,count".to_string(),
        format!("510000,RECOGNIZED,{}", of_day.len() - bad_of_day),
    ];
    if bad_of_day > 0 {
        want.insert(1, format!(",NOT_RECOGNIZED,{bad_of_day}"));
    }
    assert_eq!(summary.lines().collect::<Vec<_>>(), want);
    sc.shutdown().await.unwrap();
}

/// Runs `c` (the hcmr binary) off the runtime's worker, expecting success; its stdout and stderr.
fn run_ok(mut c: std::process::Command) -> (String, String) {
    let out = tokio::task::block_in_place(|| c.output()).unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
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
    let at = |o: &str| hcmr::display::display_time(t, o.parse().unwrap());
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
            .arg(hcmr::cli::rfc3339(end));
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
            status_valid_until: now + 60,
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
    let number = hcmr::identity::synthetic_resident_id("440104", "19900101", 131);
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
    assert_eq!(claims.exp - claims.iat, 86_400, "{err}");
    let until = hcmr::display::display_time(claims.exp, Default::default());
    assert!(
        err.contains(&format!("the card's code is valid until {until}")),
        "{err}"
    );
    assert!(err.contains("at most 7 days"), "{err}");
    // A status of 30 days: the card's code stops at 7.
    let (claims, _) = issue_card("card.pdf", &["--status-valid-for", "30d"]);
    assert_eq!(claims.exp - claims.iat, 7 * 86_400);
    // An explicit lifetime is kept; over 7 days is refused, saying why.
    let (claims, _) = issue_card("card2.png", &["--lifetime", "2d"]);
    assert_eq!(claims.exp - claims.iat, 2 * 86_400);
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
        status_valid_until: now + 3 * 86_400,
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
    assert_eq!(card.exp, now + 3 * 86_400);
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
                status_valid_until: hcmr::unix_now() + 86_400,
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

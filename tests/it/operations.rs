//! Operations signals of a real node: Prometheus metrics at `GET /metrics` (over TLS with the
//! node certificate), grpc.health.v1 status through start and shutdown (Watch), and JSON logs
//! of `hcmr serve --log-format json`.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use hcmr::proto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;

/// Adds `metrics_listen = "127.0.0.1:0"` to a node's hcmr.toml (init writes none), before its
/// first `[table]`.
pub(crate) fn enable_metrics(config: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    let mut out = Vec::new();
    let mut done = false;
    for l in text.lines() {
        if !done && l.trim_start().starts_with('[') {
            out.push("metrics_listen = \"127.0.0.1:0\"".to_string());
            done = true;
        }
        out.push(l.to_string());
    }
    if !done {
        out.push("metrics_listen = \"127.0.0.1:0\"".to_string());
    }
    std::fs::write(config, out.join("\n") + "\n").unwrap();
}

/// `GET /metrics` over HTTP/1.1, over TLS with `cert` pinned when there is one: (status line and
/// headers, body).
pub(crate) async fn get_metrics(
    addr: std::net::SocketAddr,
    cert: Option<&Path>,
) -> (String, String) {
    let request =
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut raw = Vec::new();
    let read = async {
        match cert {
            Some(cert) => {
                let mut config = (*hcmr::tls::pinned_client_config(cert).unwrap()).clone();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let mut s = connector.connect(name, tcp).await.unwrap();
                s.write_all(&request).await.unwrap();
                // A server that closes without close_notify ends the read with an error after
                // the data.
                let _ = s.read_to_end(&mut raw).await;
            }
            None => {
                let mut s = tcp;
                s.write_all(&request).await.unwrap();
                let _ = s.read_to_end(&mut raw).await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("metrics answered within 10 s");
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "GET /metrics answered {head}"
    );
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (head.to_string(), body.to_string())
}

/// The samples of a Prometheus text exposition: `name{labels}` -> value.
pub(crate) fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse::<f64>().unwrap())
        })
        .collect()
}

/// A one-person trip manifest of `n`'s province over its code `code`, sealed with `n`'s key.
fn own_trip(n: &hcmr::node::NodeHandle, code: &str) -> String {
    use hcmr::keyfile::NodeKeyFile as _;
    use hcmr::manifest::{Escort, Manifest, Person, Place, TripId, Vehicle};
    let key = hcmr::keys::NodeKey::read_pem(&n.dir.join("node.key")).unwrap();
    let code = hcmr::code::HealthCode::decode(code).unwrap();
    let now = hcmr::unix_now();
    let m = Manifest {
        trip_id: TripId([1; 8]),
        version: 1,
        origin: n.province.code() + 104,
        destination: 330200,
        transit: Vec::new(),
        vehicle: Vehicle::new("川A·00001").unwrap(),
        place: Place::new("宁波").unwrap(),
        departure: now + 600,
        arrival: now + 7200,
        sealed_at: now,
        escort: Escort::new("王*").unwrap(),
        issuers: vec![n.province],
        people: vec![
            Person::from_code(&code, 0, hcmr::status::HealthStatus::Green, true, now).unwrap(),
        ],
    };
    hcmr::manifest::sign(&m, &key)
}

fn sample(s: &HashMap<String, f64>, key: &str) -> f64 {
    *s.get(key)
        .unwrap_or_else(|| panic!("{key} missing in {s:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_verifications_issues_syncs_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    enable_metrics(&sc_cfg);
    let sc = start(&sc_cfg).await;
    let gd = start(&gd_cfg).await;
    assert!(gd.metrics_addr.is_none(), "no metrics_listen, no endpoint");
    let addr = sc.metrics_addr.expect("metrics_listen is bound");
    let cert = sc.tls_cert.clone().unwrap();

    // Before anything happened: the build, no verification yet.
    let (head, body) = get_metrics(addr, Some(&cert)).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(body.contains("# TYPE hcmr_verify_duration_seconds histogram"));
    let s = samples(&body);
    assert_eq!(
        sample(
            &s,
            &format!(
                "hcmr_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );
    assert_eq!(sample(&s, "hcmr_verify_duration_seconds_count"), 0.0);
    assert_eq!(sample(&s, "hcmr_issued_codes_total"), 0.0);

    conclude(&sc, &gd, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let a = issue(&sc, subject("王建国", "510104", 1), G, 300).await;
    let b = issue(&sc, subject("李秀英", "510104", 2), Y, 300).await;
    // A refused issue (status already expired) is timed but issues no code.
    let past = codes(&sc)
        .await
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(subject("张伟", "510104", 3)),
            status: G,
            status_valid_until: 1,
            code_lifetime_secs: 300,
            qr_format: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(past.code(), tonic::Code::InvalidArgument);
    assert_eq!(verify(&sc, &a.code).await.reason, proto::Reason::Ok as i32);
    assert_eq!(verify(&sc, &b.code).await.reason, proto::Reason::Ok as i32);
    assert_eq!(
        verify(&sc, "HCMR1:NOTACODE").await.reason,
        proto::Reason::Malformed as i32
    );
    // A trip manifest of Sichuan's own over code `a` (PASS), and one that is not (STOP).
    let trip = own_trip(&sc, &a.code);
    for (text, pass) in [(trip.as_str(), true), ("HCMRT1:NOTATRIP", false)] {
        let r = codes(&sc)
            .await
            .verify_manifest(proto::VerifyManifestRequest {
                manifest: text.to_string(),
                checkpoint_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.pass, pass, "{r:?}");
    }
    // A call without a token is refused (and counted).
    let refused = codes_as(&sc, None)
        .await
        .verify_health_code(proto::VerifyHealthCodeRequest {
            code: a.code.clone(),
            checkpoint_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let synced = sync_now(&sc).await;
    assert!(synced.iter().all(|p| p.ok), "{synced:?}");

    let (_, body) = get_metrics(addr, Some(&cert)).await;
    assert!(body.contains("# TYPE hcmr_verifications_total counter"));
    let s = samples(&body);
    assert_eq!(
        sample(
            &s,
            "hcmr_verifications_total{reason=\"ok\",verdict=\"recognized\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &s,
            "hcmr_verifications_total{reason=\"malformed\",verdict=\"not_recognized\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &s,
            "hcmr_manifest_checks_total{reason=\"ok\",verdict=\"pass\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &s,
            "hcmr_manifest_checks_total{reason=\"malformed\",verdict=\"stop\"}"
        ),
        1.0
    );
    assert_eq!(sample(&s, "hcmr_verify_duration_seconds_count"), 3.0);
    assert_eq!(
        sample(&s, "hcmr_verify_duration_seconds_bucket{le=\"+Inf\"}"),
        3.0
    );
    assert!(sample(&s, "hcmr_verify_duration_seconds_bucket{le=\"5e-05\"}") <= 3.0);
    assert_eq!(sample(&s, "hcmr_issue_duration_seconds_count"), 3.0);
    assert!(sample(&s, "hcmr_issue_duration_seconds_sum") > 0.0);
    assert_eq!(sample(&s, "hcmr_issued_codes_total"), 2.0);
    assert_eq!(sample(&s, "hcmr_agreements"), 1.0);
    assert!(sample(&s, "hcmr_store_size_bytes") > 0.0);
    assert!(sample(&s, "hcmr_store_flushes_total") > 0.0);
    // Three calls one after another: three decisions of one code, each made inline (nothing
    // else was being decided when it came).
    assert_eq!(sample(&s, "hcmr_verify_batches_total"), 3.0);
    assert_eq!(sample(&s, "hcmr_verify_batched_codes_total"), 3.0);
    assert_eq!(sample(&s, "hcmr_verify_inline_total"), 3.0);
    assert_eq!(sample(&s, "hcmr_audit_dropped_total"), 0.0);
    assert_eq!(
        sample(&s, "hcmr_access_denied_total{outcome=\"UNAUTHENTICATED\"}"),
        1.0
    );
    let age = sample(&s, "hcmr_peer_sync_age_seconds{peer=\"440000\"}");
    assert!((0.0..5.0).contains(&age), "synced just now: {age}");
    let ok_syncs = sample(&s, "hcmr_peer_sync_total{peer=\"440000\",result=\"ok\"}");
    assert!(ok_syncs >= 1.0, "{ok_syncs}");
    assert!(!s.contains_key("hcmr_peer_sync_errors_total{peer=\"440000\"}"));

    // The peer goes away: its sync fails and is counted; its age stays (last success).
    gd.shutdown().await.unwrap();
    let failed = sync_now(&sc).await;
    assert!(
        failed.iter().any(|p| p.province == "440000" && !p.ok),
        "{failed:?}"
    );
    let (_, body) = get_metrics(addr, Some(&cert)).await;
    let s = samples(&body);
    let errors = sample(&s, "hcmr_peer_sync_errors_total{peer=\"440000\"}");
    assert!(errors >= 1.0, "{errors}");
    assert_eq!(
        sample(&s, "hcmr_peer_sync_total{peer=\"440000\",result=\"error\"}"),
        errors
    );
    assert!(s.contains_key("hcmr_peer_sync_age_seconds{peer=\"440000\"}"));
    sc.shutdown().await.unwrap();
}

/// A health-code client of `n` with `token` (or none).
async fn codes_as(
    n: &hcmr::node::NodeHandle,
    token: Option<&str>,
) -> proto::health_code_service_client::HealthCodeServiceClient<hcmr::client::NodeChannel> {
    proto::health_code_service_client::HealthCodeServiceClient::new(channel_as(n, token).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_a_plaintext_node_are_plain_http_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node_plaintext(dir.path(), SICHUAN).await;
    enable_metrics(&cfg);
    let sc = start(&cfg).await;
    let (_, body) = get_metrics(sc.metrics_addr.unwrap(), None).await;
    assert!(body.contains("hcmr_build_info{version="), "{body}");
    // An https:// URL to this plain-text node says what is wrong (any certificate to pin).
    let other = init_node(dir.path(), 440000).await;
    let cert = other.parent().unwrap().join("tls/node.crt");
    let url = format!("https://{}", sc.addr);
    let e = hcmr::client::connect(&url, Some(&cert), None)
        .await
        .expect_err("no TLS there")
        .to_string();
    assert!(
        e.contains("the node does not speak TLS on this port: a node made with --plaintext is called at its http:// URL"),
        "{e}"
    );
    sc.shutdown().await.unwrap();

    // Without [tls], metrics_listen must be a loopback address, like listen and http_listen.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "metrics_listen = \"127.0.0.1:0\"",
        "metrics_listen = \"0.0.0.0:0\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let e = hcmr::node::Config::load(&cfg).unwrap_err().to_string();
    assert!(
        e.contains("metrics_listen") && e.contains("loopback"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_watch_sees_serving_then_not_serving_at_shutdown() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    const SERVING: i32 = 1;
    const NOT_SERVING: i32 = 2;

    let dir = tempfile::tempdir().unwrap();
    let node = start(&init_node(dir.path(), SICHUAN).await).await;
    let ch = channel_as(&node, None).await;
    let mut streams = Vec::new();
    for service in ["", "hcmr.v1.HealthCodeService", "hcmr.v1.OperatorService"] {
        let mut s = HealthClient::new(ch.clone())
            .watch(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let first = tokio::time::timeout(Duration::from_secs(5), s.message())
            .await
            .expect("a first status")
            .unwrap()
            .expect("the stream is open");
        assert_eq!(first.status, SERVING, "{service:?} SERVING while serving");
        streams.push((service, s));
    }

    // Shutdown begins while the streams are open: each carries NOT_SERVING, then ends, and
    // the node finishes draining.
    let stopping = tokio::spawn(node.shutdown());
    for (service, mut s) in streams {
        let mut seen = Vec::new();
        let end = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match s.message().await {
                    Ok(Some(m)) => seen.push(m.status),
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{service:?}: the Watch stream did not end at shutdown"));
        assert_eq!(seen, vec![NOT_SERVING], "{service:?}");
        end.unwrap_or_else(|e| panic!("{service:?}: the stream ended with {e:?}"));
    }
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the node stopped")
        .unwrap()
        .unwrap();
}

#[test]
fn serve_writes_json_logs_when_asked() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cfg = rt.block_on(init_node(dir.path(), SICHUAN));
    drop(rt);

    for by_env in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hcmr"));
        cmd.args(["serve", "--config", cfg.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if by_env {
            cmd.env("HCMR_LOG_FORMAT", "json");
        } else {
            cmd.env_remove("HCMR_LOG_FORMAT")
                .args(["--log-format", "json"]);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let next = |what: &str| {
            rx.recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no log line ({what})"))
        };
        // Read until the node says it serves; every line is one JSON object.
        let mut lines = Vec::new();
        loop {
            let line = next("serving");
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            let serving = v["fields"]["message"] == "hcmr node serving";
            lines.push(v);
            if serving {
                break;
            }
        }
        // By the time the node says it serves, it catches SIGINT and SIGTERM (SigCgt in
        // /proc, bits 2 and 15), so a stop sent on that line drains it instead of killing it.
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
            .unwrap();
        assert_eq!(
            caught & (1 << (2 - 1)),
            1 << (2 - 1),
            "SIGINT caught: {caught:x}"
        );
        assert_eq!(
            caught & (1 << (15 - 1)),
            1 << (15 - 1),
            "SIGTERM caught: {caught:x}"
        );
        let serving = lines.last().unwrap();
        assert_eq!(serving["level"], "INFO", "{serving}");
        assert_eq!(serving["fields"]["province"], "510000", "{serving}");
        assert!(serving["timestamp"].is_string(), "{serving}");
        assert!(serving["target"].is_string(), "{serving}");

        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // The rest, to the end of the stream, is JSON too, and says the node stopped.
        let mut stopped = false;
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            stopped |= v["fields"]["message"] == "hcmr node stopped";
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let exit = loop {
            if let Some(exit) = child.try_wait().unwrap() {
                break exit;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("serve did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        reader.join().unwrap();
        assert!(exit.success(), "{exit:?}");
        assert!(stopped, "the node logged that it stopped");
    }
}

//! The plain-HTTP health port (`health_listen`): `/healthz` and `/readyz` on a TLS node, the
//! setting's collision check, its `serve` override, `hcmr health` (the exec probe), and a
//! replica's readiness gate (ready only while it hears from its primary).

use crate::common::*;

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` in plain HTTP/1.1: (status code, body).
pub(crate) async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), ask)
        .await
        .expect("the health port answered within 10 s")
        .expect("the health port answered");
    let text = String::from_utf8(raw).expect("a text answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    (code, body.to_string())
}

/// Adds `health_listen = "127.0.0.1:0"` above the first section of a node's hcmr.toml.
pub(crate) fn enable_health_port(cfg: &Path, addr: &str) {
    let text = std::fs::read_to_string(cfg).unwrap();
    let text = text.replacen(
        "\nlisten = ",
        &format!("\nhealth_listen = \"{addr}\"\nlisten = "),
        1,
    );
    assert!(text.contains("health_listen = "), "{text}");
    std::fs::write(cfg, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_port_answers_in_plain_http_on_a_tls_node() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), 510000).await;
    enable_health_port(&cfg, "127.0.0.1:0");
    let node = start(&cfg).await;
    assert!(node.endpoint.starts_with("https://"), "a TLS node");
    let addr = node.health_addr.expect("health_listen is bound");
    assert_eq!(http_get(addr, "/healthz").await, (200, "ok\n".into()));
    // A primary is ready as soon as it serves.
    assert_eq!(http_get(addr, "/readyz").await, (200, "ready\n".into()));
    assert_eq!(http_get(addr, "/metrics").await.0, 404);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_listen_cannot_share_another_listeners_address() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), 510000).await;
    // init took port 0 (which never collides); a fixed port is needed to collide.
    assert_eq!(hcmr::node::Config::load(&cfg).unwrap().listen.port(), 0);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:17599\"");
    std::fs::write(&cfg, text).unwrap();
    enable_health_port(&cfg, "127.0.0.1:17599");
    let e = hcmr::node::Config::load(&cfg).unwrap_err().to_string();
    assert!(
        e.contains("health_listen: 127.0.0.1:17599 is also listen's address"),
        "{e}"
    );
    // The same through `hcmr serve`'s override names it.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("health_listen = \"127.0.0.1:17599\"\n", "");
    std::fs::write(&cfg, text).unwrap();
    let mut c = hcmr::node::Config::load(&cfg).unwrap();
    let e = c
        .apply_overrides(&hcmr::node::config::Overrides {
            health_listen: Some("127.0.0.1:17599".parse().unwrap()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--health-listen/HCMR_HEALTH_LISTEN")
            && e.contains("health_listen: 127.0.0.1:17599 is also listen's address"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_text_node_may_serve_its_health_port_beyond_loopback() {
    // The health port is plain HTTP on every node and carries no data, so the loopback rule of
    // a node without [tls] does not bind it (listen itself must stay on loopback).
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node_plaintext(dir.path(), 510000).await;
    enable_health_port(&cfg, "0.0.0.0:0");
    let c = hcmr::node::Config::load(&cfg).unwrap();
    assert_eq!(c.health_listen, Some("0.0.0.0:0".parse().unwrap()));
    assert!(c.tls.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hcmr_health_exits_0_on_serving_and_69_when_nothing_answers() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&init_node(dir.path(), 510000).await).await;
    let cert = node.tls_cert.clone().unwrap();
    let run = |url: String, service: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hcmr"))
            .args(["health", "--node", &url, "--tls-cert"])
            .arg(&cert)
            .args(["--service", service])
            .output()
            .unwrap()
    };
    let out = run(node.endpoint.clone(), "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "SERVING\n");
    let out = run(node.endpoint.clone(), "hcmr.v1.HealthCodeService");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let url = node.endpoint.clone();
    node.shutdown().await.unwrap();
    let out = run(url, "");
    assert_eq!(out.status.code(), Some(69), "{out:?}");
}

/// grpc.health.v1's status of the whole node at `n`.
async fn grpc_health(n: &hcmr::node::NodeHandle) -> i32 {
    use tonic_health::pb::health_client::HealthClient;
    HealthClient::new(channel_as(n, None).await)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_is_ready_only_while_it_hears_from_its_primary() {
    const SERVING: i32 = 1;
    const NOT_SERVING: i32 = 2;
    let dir = tempfile::tempdir().unwrap();
    let primary = start(&init_node(dir.path(), 510000).await).await;
    let cfg = init_replica(dir.path(), &primary, "sc-r1").await;
    enable_health_port(&cfg, "127.0.0.1:0");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = if text.contains("max_lag_secs = 30") {
        text.replace("max_lag_secs = 30", "max_lag_secs = 3")
    } else {
        text.replace("[replica]\n", "[replica]\nmax_lag_secs = 3\n")
    };
    std::fs::write(&cfg, text).unwrap();
    let r = start(&cfg).await;
    let health = r.health_addr.unwrap();

    // Ready once synced with its primary: /readyz and grpc.health.v1 agree (bounded wait).
    let mut ready = (0, String::new());
    for _ in 0..400 {
        ready = http_get(health, "/readyz").await;
        if ready.0 == 200 && grpc_health(&r).await == SERVING {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(ready, (200, "ready\n".into()));
    assert_eq!(grpc_health(&r).await, SERVING);

    // The primary stops: after max_lag_secs the replica is alive but not ready, and says why;
    // grpc.health.v1 turns NOT_SERVING with it, and `hcmr health` exits 1 (bounded wait).
    primary.shutdown().await.unwrap();
    let mut not_ready = (0, String::new());
    for _ in 0..600 {
        not_ready = http_get(health, "/readyz").await;
        if not_ready.0 == 503 && grpc_health(&r).await == NOT_SERVING {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(not_ready.0, 503, "{not_ready:?}");
    assert!(
        not_ready
            .1
            .starts_with("not ready: the primary https://127.0.0.1:")
            && not_ready.1.contains("replica.max_lag_secs = 3"),
        "{not_ready:?}"
    );
    assert_eq!(grpc_health(&r).await, NOT_SERVING);
    assert_eq!(http_get(health, "/healthz").await, (200, "ok\n".into()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hcmr"))
        .args(["health", "--node", &r.endpoint, "--tls-cert"])
        .arg(r.tls_cert.as_ref().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NOT_SERVING"),
        "{out:?}"
    );
    // Nor does it verify on that old state for a client that calls it directly: UNAVAILABLE,
    // saying why (a revocation at the primary could be missing from it).
    let e = codes(&r)
        .await
        .verify_health_code(hcmr::proto::VerifyHealthCodeRequest {
            code: "HCMR1:anything".into(),
            checkpoint_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{}", e.message());
    assert!(
        e.message().contains("does not verify now") && e.message().contains("max_lag_secs"),
        "{}",
        e.message()
    );
    r.shutdown().await.unwrap();
}

//! Resource exhaustion by a stranger and by one caller (issue 15): slow or unfinished request
//! bodies, many streams, idle connections, large batches. Each test counts what a legitimate
//! caller still gets served and reads the refusals back from the access log; none asserts a
//! time.

use crate::common;

use std::sync::Arc;

use common::*;
use hcmr::keys::NodeKey;
use hcmr::proto;

const SICHUAN: u32 = 510000;
const JIANGSU: u32 = 320000;
/// The stranger's source address.
const STRANGER: &str = "127.0.0.2";

/// Replaces `key = ...` in the config at `cfg` (a setting of [limits]) with `key = value`.
fn set_limit(cfg: &std::path::Path, key: &str, value: &str) {
    let text = std::fs::read_to_string(cfg).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{key} in {text}"))
        .to_string();
    std::fs::write(cfg, text.replace(&line, &format!("{key} = {value}"))).unwrap();
}

type Frame = Result<hyper::body::Frame<hyper::body::Bytes>, std::convert::Infallible>;

/// A request body that sends a gRPC message header declaring 1,000 bytes, then never
/// finishes.
type Unfinished = http_body_util::StreamBody<
    futures_util::stream::Chain<
        futures_util::stream::Iter<std::array::IntoIter<Frame, 1>>,
        futures_util::stream::Pending<Frame>,
    >,
>;

fn unfinished_body() -> Unfinished {
    use futures_util::StreamExt as _;
    let header = hyper::body::Bytes::from_static(&[0, 0, 0, 0x03, 0xe8]);
    let frames = futures_util::stream::iter([Ok(hyper::body::Frame::data(header))])
        .chain(futures_util::stream::pending());
    http_body_util::StreamBody::new(frames)
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.2 is a stranger's
/// address: the per-address limits of 127.0.0.1, the verifier's, are not its).
async fn tcp_from(from: &str, to: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    socket.connect(to).await
}

/// A TLS connection to `n` from `from`, presenting `identity` (mutual TLS, as a node does).
async fn tls_as(
    n: &hcmr::node::NodeHandle,
    identity: &hcmr::tls::TlsIdentity,
    from: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let own = Arc::new(hcmr::tls::CertSource(arc_swap::ArcSwap::new(
        identity.certified_key().unwrap(),
    )));
    let config = hcmr::tls::peer_client_config(own, Some(n.province), |_| true).unwrap();
    let tcp = tcp_from(from, n.addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// An HTTP/2 connection to `n` from 127.0.0.2 over TLS presenting `identity`.
async fn h2_as(
    n: &hcmr::node::NodeHandle,
    identity: &hcmr::tls::TlsIdentity,
) -> hyper::client::conn::http2::SendRequest<Unfinished> {
    let tls = tls_as(n, identity, STRANGER).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// Sends `streams` ProposeAgreement calls with unfinished bodies on `send`; the grpc-status of
/// each answer (None when the stream failed without one) arrives on `tx`.
async fn slow_proposals(
    send: &mut hyper::client::conn::http2::SendRequest<Unfinished>,
    streams: usize,
    tx: &tokio::sync::mpsc::UnboundedSender<Option<String>>,
) {
    for _ in 0..streams {
        send.ready().await.unwrap();
        let request = http::Request::post("/hcmr.v1.FederationService/ProposeAgreement")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(unfinished_body())
            .unwrap();
        let call = send.send_request(request);
        let tx = tx.clone();
        tokio::spawn(async move {
            let status = call.await.ok().and_then(|r| {
                r.headers()
                    .get("grpc-status")
                    .map(|v| v.to_str().unwrap().to_string())
            });
            let _ = tx.send(status);
        });
    }
}

/// Verifies `calls` codes as the test caller of `n`, at most [`VERIFIER_WAVE`] at once; how
/// many were answered.
async fn verifier_calls(n: &hcmr::node::NodeHandle, calls: usize) -> usize {
    let hc = codes(n).await;
    let mut ok = 0;
    let mut left = calls;
    while left > 0 {
        let wave = left.min(VERIFIER_WAVE);
        left -= wave;
        let tasks: Vec<_> = (0..wave)
            .map(|_| {
                let mut hc = hc.clone();
                tokio::spawn(async move {
                    hc.verify_health_code(proto::VerifyHealthCodeRequest {
                        code: "HCMR1:X".into(),
                        checkpoint_id: String::new(),
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => eprintln!("verifier call refused: {e:?}"),
            }
        }
    }
    ok
}

/// The verifier's calls in flight at once: half the node-wide limit these tests set
/// (`max_concurrent_requests = 16`). Thirty at once passed only while each call ended before the
/// seventeenth began, which a machine busy with other tests in the same process does not
/// promise; the tests are about the stranger's load not taking the verifier's share.
const VERIFIER_WAVE: usize = 8;

/// Refusals in `log` of `who` with `outcome`.
fn refused(log: &[proto::AccessDenial], who: &str, outcome: &str) -> u64 {
    log.iter()
        .filter(|d| d.who == who && d.outcome == outcome)
        .map(|d| d.count)
        .sum()
}

/// Issue 15 fault 1: a node of a province without an agreement sends 80 ProposeAgreement
/// streams whose bodies never finish, on two connections. The node-wide limit is 16 calls:
/// before, the first 16 held it until the call timeout and every verifier call was refused,
/// unrecorded. Now the stranger holds at most `max_concurrent_per_caller` (64) calls, none of
/// them a node-wide slot while its body is read, the rest are refused at once, the held ones
/// after `body_timeout_secs`, and each refusal is in the access log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_with_unfinished_bodies_cannot_take_the_node_s_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    set_limit(&cfg, "max_concurrent_requests", "16");
    let sc = start(&cfg).await;
    let stranger = node_identity(JIANGSU, &NodeKey::generate());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Kept until the end: the stranger's connections stay open.
    let mut connections = Vec::new();
    for _ in 0..2 {
        let mut send = h2_as(&sc, &stranger).await;
        slow_proposals(&mut send, 40, &tx).await;
        connections.push(send);
    }
    // The first 16 answers: the calls over the stranger's limit, refused at once (before:
    // those over the node's).
    let mut answers = Vec::new();
    while answers.len() < 16 {
        answers.push(rx.recv().await.unwrap());
    }
    assert_eq!(
        verifier_calls(&sc, 30).await,
        30,
        "every verifier call served"
    );
    while answers.len() < 80 {
        answers.push(rx.recv().await.unwrap());
    }
    let count = |code: &str| {
        answers
            .iter()
            .filter(|a| a.as_deref() == Some(code))
            .count()
    };
    assert_eq!((count("8"), count("4")), (16, 64), "{answers:?}");
    let log = denials(&sc, 80).await;
    assert_eq!(
        refused(&log, "peer 320000", "RESOURCE_EXHAUSTED"),
        16,
        "{log:?}"
    );
    assert_eq!(
        refused(&log, "peer 320000", "DEADLINE_EXCEEDED"),
        64,
        "{log:?}"
    );
    drop(connections);
    sc.shutdown().await.unwrap();
}

/// Issue 14 fault 18: the identity-match limit (5 an hour per code at the verifying node, per
/// subject at the issuer) survives restarts of both nodes. Before, 4 matches, two restarts,
/// then 5 more were accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_match_limit_survives_restarts() {
    const GUANGDONG: u32 = 440000;
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    let (mut sc, mut gd) = (start(&sc_cfg).await, start(&gd_cfg).await);
    conclude(&gd, &sc, &[(G, G)], &[(G, G)]).await;
    pin_listen(&sc_cfg, &sc);
    pin_listen(&gd_cfg, &gd);
    let person = subject("王建国", "510104", 131);
    let other = document_number("510104", 132);
    let first = issue(&sc, person.clone(), G, 300).await;
    let ask = |code: &str| proto::MatchIdentityRequest {
        code: code.to_string(),
        document_type: proto::DocumentType::ResidentIdentityCard as i32,
        document_number: other.clone(),
    };
    let restart = |sc: hcmr::node::NodeHandle, gd: hcmr::node::NodeHandle| {
        let (sc_cfg, gd_cfg) = (sc_cfg.clone(), gd_cfg.clone());
        async move {
            sc.shutdown().await.unwrap();
            gd.shutdown().await.unwrap();
            (start(&sc_cfg).await, start(&gd_cfg).await)
        }
    };
    // Four matches at Guangdong (each forwarded to Sichuan), then both nodes restart.
    for i in 0..4 {
        let r = codes(&gd).await.match_identity(ask(&first.code)).await;
        assert!(!r.unwrap().into_inner().matches, "attempt {i}");
    }
    (sc, gd) = restart(sc, gd).await;
    let r = codes(&gd).await.match_identity(ask(&first.code)).await;
    assert!(!r.unwrap().into_inner().matches, "the fifth attempt");
    (sc, gd) = restart(sc, gd).await;
    let e = codes(&gd)
        .await
        .match_identity(ask(&first.code))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("at most 5 attempts"),
        "{}",
        e.message()
    );
    // A new code of the same person: Guangdong counts it afresh, but Sichuan, the issuer, has
    // counted 5 attempts on this subject across both restarts.
    let second = issue(&sc, person, G, 299).await;
    let e = codes(&gd)
        .await
        .match_identity(ask(&second.code))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

/// Issue 14 fault 10: the list of refused calls shows every refusal made before it is asked
/// for. Before, refusals counted while the writer waited (up to 200 ms after its last write)
/// were missing: one refusal stored, two more made, and the list still showed 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refused_list_shows_current_counts() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let mut stranger = codes_as(&sc, Some("hcmr_not_a_token")).await;
    let refuse = |mut c: proto::health_code_service_client::HealthCodeServiceClient<_>| async move {
        let e = c
            .verify_health_code(proto::VerifyHealthCodeRequest {
                code: "HCMR1:X".into(),
                checkpoint_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    };
    refuse(stranger.clone()).await;
    // The first is written (the writer then rests): wait for it.
    assert_eq!(refusals(&denials(&sc, 1).await), 1);
    refuse(stranger.clone()).await;
    refuse(stranger.clone()).await;
    let log = access_log(&sc).await;
    assert_eq!(refused(&log, "anonymous", "UNAUTHENTICATED"), 3, "{log:?}");
    stranger = codes_as(&sc, None).await;
    refuse(stranger).await;
    // And through the CLI.
    let out = cli(&sc)
        .env("HCMR_TOKEN_FILE", sc.dir.join(hcmr::node::ADMIN_TOKEN_FILE))
        .args(["caller", "refused"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let counted: u64 = text
        .lines()
        .filter(|l| l.contains("UNAUTHENTICATED"))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, 4, "{text}");
    sc.shutdown().await.unwrap();
}

/// Issue 15 fault 6: the caller's rate counts codes, not calls. With 1 a second and a burst of
/// 10, a batch of 8 codes passes and a second batch of 8 is refused (before, both passed: the
/// rate counted two calls), recorded under the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_counts_each_code_against_the_caller_s_rate() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    set_limit(&cfg, "caller_requests_per_sec", "1");
    set_limit(&cfg, "caller_burst", "10");
    let sc = start(&cfg).await;
    let mut hc = codes(&sc).await;
    let batch = || proto::BatchVerifyHealthCodesRequest {
        codes: vec!["HCMR1:X".to_string(); 8],
        checkpoint_id: String::new(),
    };
    let first = hc.batch_verify_health_codes(batch()).await.unwrap();
    assert_eq!(first.into_inner().results.len(), 8);
    let e = hc.batch_verify_health_codes(batch()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("each code of a batch counts"),
        "{}",
        e.message()
    );
    let log = denials(&sc, 1).await;
    assert_eq!(
        refused(&log, "caller test", "RESOURCE_EXHAUSTED"),
        1,
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|d| d.rpc == "/hcmr.v1.HealthCodeService/BatchVerifyHealthCodes"),
        "{log:?}"
    );
    sc.shutdown().await.unwrap();
}

/// Issue 15 fault 5 (and the resource test of issue 15): a stranger node, from its own address,
/// holds 80 unfinished streams on two connections and opens 10,000 more TLS connections that
/// stay idle. Its connections over `max_connections_per_address` (64) are closed at once and
/// counted; the verifier's calls, on its connection and on a new one, are all served; the
/// refusals are in the access log and `hcmr caller refused`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_s_connections_and_slow_streams_leave_a_verifier_served() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    set_limit(&cfg, "max_concurrent_requests", "16");
    let sc = start(&cfg).await;
    assert_eq!(verifier_calls(&sc, 1).await, 1);
    let stranger = node_identity(JIANGSU, &NodeKey::generate());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut send = h2_as(&sc, &stranger).await;
        slow_proposals(&mut send, 40, &tx).await;
        streams.push(send);
    }
    let mut idle = Vec::new();
    let mut closed = 0u64;
    for _ in 0..10_000 {
        match tls_as(&sc, &stranger, STRANGER).await {
            Ok(c) => idle.push(c),
            Err(_) => closed += 1,
        }
    }
    assert_eq!(
        (idle.len(), closed),
        (62, 9938),
        "64 from one address, 2 of them the streams'"
    );
    assert_eq!(
        verifier_calls(&sc, 30).await,
        30,
        "on the verifier's connection"
    );
    assert_eq!(verifier_calls(&sc, 30).await, 30, "on a new connection");
    let mut answers = Vec::new();
    while answers.len() < 80 {
        answers.push(rx.recv().await.unwrap());
    }
    let count = |code: &str| {
        answers
            .iter()
            .filter(|a| a.as_deref() == Some(code))
            .count()
    };
    assert_eq!((count("8"), count("4")), (16, 64), "{answers:?}");
    let log = denials(&sc, 9938 + 80).await;
    let connections: u64 = log
        .iter()
        .filter(|d| d.rpc.starts_with("(connection to port") && d.remote == STRANGER)
        .map(|d| d.count)
        .sum();
    assert_eq!(connections, closed, "{log:?}");
    assert_eq!(refused(&log, "peer 320000", "RESOURCE_EXHAUSTED"), 16);
    assert_eq!(refused(&log, "peer 320000", "DEADLINE_EXCEEDED"), 64);
    let out = cli(&sc)
        .env("HCMR_TOKEN_FILE", sc.dir.join(hcmr::node::ADMIN_TOKEN_FILE))
        .args(["caller", "refused"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.contains("RESOURCE_EXHAUSTED")
            && l.contains("anonymous")
            && l.contains(STRANGER)
            && l.contains("(connection to port")),
        "{text}"
    );
    drop((streams, idle));
    sc.shutdown().await.unwrap();
}

/// Issue 15 fault 5: with `idle_timeout_secs = 1`, an idle TLS connection on the gRPC port and
/// an HTTP/1 request on the page whose headers drip a line at a time are closed by the node,
/// and a page request whose body never finishes is answered 503 after
/// `request_timeout_secs` (before, all stayed open; the loops here are bounded so the test ends
/// either way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_dripped_headers_are_closed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node_with_page(dir.path(), SICHUAN).await;
    set_limit(&cfg, "idle_timeout_secs", "1");
    set_limit(&cfg, "body_timeout_secs", "1");
    set_limit(&cfg, "request_timeout_secs", "2");
    let sc = start(&cfg).await;
    let stranger = node_identity(JIANGSU, &NodeKey::generate());
    let mut idle = tls_as(&sc, &stranger, STRANGER).await.unwrap();
    let mut buf = [0u8; 64];
    let ended = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the idle connection was closed by the node");
    // The page, HTTP/1 over TLS: a request line, then a header line every 200 ms.
    let mut config =
        (*hcmr::tls::pinned_client_config(sc.tls_cert.as_ref().unwrap()).unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tcp_from(STRANGER, sc.http_addr.unwrap()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let page = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut read, mut write) = tokio::io::split(page);
    write
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let mut reader = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    let mut closed = false;
    for i in 0..300 {
        tokio::select! {
            _ = &mut reader => {
                closed = true;
                break;
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                if write.write_all(format!("X-Drip-{i}: a\r\n").as_bytes()).await.is_err() {
                    closed = true;
                    break;
                }
            }
        }
    }
    assert!(closed, "the dripping request was closed by the node");
    // A page request whose body never finishes ends after request_timeout_secs with 503.
    let mut config =
        (*hcmr::tls::pinned_client_config(sc.tls_cert.as_ref().unwrap()).unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tcp_from(STRANGER, sc.http_addr.unwrap()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut page = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    page.write_all(
        format!(
            "POST /api/verify HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
            test_token(&sc)
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        page.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("limits.request_timeout_secs"), "{answer}");
    sc.shutdown().await.unwrap();
}

//! Faults of peers stay with that peer: a peer that is silent (accepts and never answers), that
//! answers garbage, or that answers a gRPC call only after a long delay fails its own sync within
//! the peer timeout, while the other peers sync and local verification answers meanwhile from the
//! snapshot. (A peer that is down: tests/lifecycle.rs
//! `verification_goes_on_while_the_peer_is_down_and_sync_resumes_from_the_next_entry`.)

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::*;
use hcmr::proto;
use tokio::io::AsyncWriteExt;

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;
const ZHEJIANG: u32 = 330000;

/// Sets `peer_timeout_secs = 1` in a node's config (init writes 10).
fn short_peer_timeout(config: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains("peer_timeout_secs = 10"));
    std::fs::write(
        config,
        text.replace("peer_timeout_secs = 10", "peer_timeout_secs = 1"),
    )
    .unwrap();
}

/// Creates a node of a province under a folder (TLS or plain text).
type Init =
    fn(&Path, u32) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::path::PathBuf>>>;

/// Sichuan with agreements with Guangdong and Zhejiang, synced once; returns the nodes, a
/// Zhejiang code and Zhejiang's address (now free: Zhejiang is stopped).
async fn federation(
    root: &Path,
    init: Init,
) -> (
    hcmr::node::NodeHandle,
    hcmr::node::NodeHandle,
    String,
    SocketAddr,
) {
    let sc_cfg = init(root, SICHUAN).await;
    short_peer_timeout(&sc_cfg);
    let sc = start(&sc_cfg).await;
    let gd = start(&init(root, GUANGDONG).await).await;
    let zj = start(&init(root, ZHEJIANG).await).await;
    conclude(&sc, &gd, &[(G, G)], &[(G, G)]).await;
    conclude(&sc, &zj, &[(G, G)], &[(G, G)]).await;
    let r = sync_now(&sc).await;
    assert!(r.iter().all(|p| p.ok), "{r:?}");
    let code = issue(&zj, subject("陈静", "330106", 12), G, 3600)
        .await
        .code;
    let addr = zj.addr;
    zj.shutdown().await.unwrap();
    (sc, gd, code, addr)
}

fn tls_init(
    root: &Path,
    p: u32,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::path::PathBuf>>> {
    let root = root.to_path_buf();
    Box::pin(async move { init_node(&root, p).await })
}

fn plain_init(
    root: &Path,
    p: u32,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::path::PathBuf>>> {
    let root = root.to_path_buf();
    Box::pin(async move { init_node_plaintext(&root, p).await })
}

/// Runs a SyncNow at `sc` in the background; while it is stuck on the faulty peer, a
/// verification of the faulty peer's code answers from the snapshot. Returns the sync results.
async fn sync_while_verifying(
    sc: &hcmr::node::NodeHandle,
    code: &str,
) -> Vec<proto::PeerSyncResult> {
    let mut op = operator(sc).await;
    let sync = tokio::spawn(async move { op.sync_now(proto::SyncNowRequest {}).await });
    // A head start for the real sync to reach the faulty peer (a real connection; no clock moves
    // it). The checks below hold however far it got: the sync is bounded by the peer timeout.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let v = verify(sc, code).await;
    assert_eq!(v.verdict, proto::Verdict::Recognized as i32, "{v:?}");
    assert!(
        !sync.is_finished(),
        "the verification answered while the sync still waited on the faulty peer"
    );
    let r = tokio::time::timeout(Duration::from_secs(30), sync)
        .await
        .expect("the sync ends within its bound")
        .unwrap()
        .unwrap()
        .into_inner()
        .peers;
    assert_eq!(r.len(), 2, "{r:?}");
    r
}

fn result(r: &[proto::PeerSyncResult], p: u32) -> &proto::PeerSyncResult {
    r.iter().find(|x| x.province == p.to_string()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_times_out_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (sc, gd, code, addr) = federation(dir.path(), tls_init).await;
    // Zhejiang's address accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind(addr).await.unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let r = sync_while_verifying(&sc, &code).await;
    assert!(result(&r, GUANGDONG).ok, "{r:?}");
    let zj = result(&r, ZHEJIANG);
    assert!(!zj.ok);
    // The connect or TLS handshake deadline, whichever fires first.
    assert!(
        zj.error.contains("timed out") || zj.error.contains("deadline has elapsed"),
        "{}",
        zj.error
    );
    hold.abort();
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_answering_garbage_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (sc, gd, code, addr) = federation(dir.path(), tls_init).await;
    // Zhejiang's address answers every connection with bytes that are no TLS.
    let garbage = tokio::net::TcpListener::bind(addr).await.unwrap();
    let serve = tokio::spawn(async move {
        while let Ok((mut s, _)) = garbage.accept().await {
            let _ = s.write_all(&[0x42; 4096]).await;
            let _ = s.shutdown().await;
        }
    });
    let r = sync_now(&sc).await;
    assert!(result(&r, GUANGDONG).ok, "{r:?}");
    let zj = result(&r, ZHEJIANG);
    assert!(!zj.ok);
    assert!(zj.error.contains("cannot reach node"), "{}", zj.error);
    // The last synced state still verifies Zhejiang's code.
    let v = verify(&sc, &code).await;
    assert_eq!(v.verdict, proto::Verdict::Recognized as i32, "{v:?}");
    assert!(v.issuer_state_synced_at > 0);
    serve.abort();
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

/// A peer that speaks gRPC but answers its feed only after a minute.
#[derive(Clone)]
struct SlowPeer;

#[tonic::async_trait]
impl proto::federation_service_server::FederationService for SlowPeer {
    async fn get_node_info(
        &self,
        _: tonic::Request<proto::GetNodeInfoRequest>,
    ) -> Result<tonic::Response<proto::GetNodeInfoResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("slow peer"))
    }
    async fn propose_agreement(
        &self,
        _: tonic::Request<proto::ProposeAgreementRequest>,
    ) -> Result<tonic::Response<proto::ProposeAgreementResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("slow peer"))
    }
    async fn accept_agreement(
        &self,
        _: tonic::Request<proto::AcceptAgreementRequest>,
    ) -> Result<tonic::Response<proto::AcceptAgreementResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("slow peer"))
    }
    async fn notify_termination(
        &self,
        _: tonic::Request<proto::NotifyTerminationRequest>,
    ) -> Result<tonic::Response<proto::NotifyTerminationResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("slow peer"))
    }
    async fn notify_proposal_dropped(
        &self,
        _: tonic::Request<proto::NotifyProposalDroppedRequest>,
    ) -> Result<tonic::Response<proto::NotifyProposalDroppedResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("slow peer"))
    }

    type GetFeedStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<proto::FeedEntry, tonic::Status>>>;

    async fn get_feed(
        &self,
        _: tonic::Request<proto::GetFeedRequest>,
    ) -> Result<tonic::Response<Self::GetFeedStream>, tonic::Status> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(tonic::Response::new(tokio_stream::iter(Vec::new())))
    }

    async fn get_agreements(
        &self,
        _: tonic::Request<proto::GetAgreementsRequest>,
    ) -> Result<tonic::Response<proto::GetAgreementsResponse>, tonic::Status> {
        Ok(tonic::Response::new(proto::GetAgreementsResponse::default()))
    }

    async fn match_subject(
        &self,
        _: tonic::Request<proto::MatchSubjectRequest>,
    ) -> Result<tonic::Response<proto::MatchSubjectResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("slow peer"))
    }

    async fn submit_trip_record(
        &self,
        _: tonic::Request<proto::SubmitTripRecordRequest>,
    ) -> Result<tonic::Response<proto::SubmitTripRecordResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("slow peer"))
    }

    async fn find_trips(
        &self,
        _: tonic::Request<proto::FindTripsRequest>,
    ) -> Result<tonic::Response<proto::FindTripsResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("slow peer"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_peer_times_out_alone() {
    // Plain-text nodes, so that a stand-in gRPC server can take Zhejiang's place without its
    // certificate; the timeout is the same code path.
    let dir = tempfile::tempdir().unwrap();
    let (sc, gd, code, addr) = federation(dir.path(), plain_init).await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(proto::federation_service_server::FederationServiceServer::new(SlowPeer))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let r = sync_while_verifying(&sc, &code).await;
    assert!(result(&r, GUANGDONG).ok, "{r:?}");
    let zj = result(&r, ZHEJIANG);
    assert!(!zj.ok);
    assert!(
        zj.error.contains("Timeout expired") || zj.error.contains("no complete answer"),
        "{}",
        zj.error
    );
    let _ = stop.send(());
    server.abort();
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

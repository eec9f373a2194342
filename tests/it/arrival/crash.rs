//! The destination killed with SIGKILL after the handover, while the origin is down: the
//! arrival, its receipt and the receipt's outbox entry survive, the same receipt is answered
//! again, and it reaches the origin once both are up.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// A `hcmr serve` process, killed (SIGKILL) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `hcmr serve` for `config` and waits (at most 60 s) until ListArrivals answers the
/// receiver.
async fn serve(
    config: &std::path::Path,
    endpoint: &str,
    cert: &std::path::Path,
    token: &str,
) -> Server {
    let log = config.with_file_name("serve.log");
    let child = Command::new(env!("CARGO_BIN_EXE_hcmr"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(ch) = hcmr::client::connect(endpoint, Some(cert), Some(token)).await {
            if ArrivalServiceClient::new(ch)
                .list_arrivals(proto::ListArrivalsRequest::default())
                .await
                .is_ok()
            {
                return server;
            }
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!(
                "the node exited at start ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "the node did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_survives_a_sigkill_of_the_destination_and_is_delivered_later() {
    let s = scene().await;
    let codes = sc_codes(&s, 801, 2).await;
    let (trip, manifest) = sealed_trip(&s, "川R·44444", &codes).await;
    // Zhejiang as its own process from here on, on the same port; Sichuan down.
    let endpoint = s.zj.endpoint.clone();
    let cert = s.zj.tls_cert.clone().unwrap();
    pin_listen(&s.zj_cfg, &s.zj);
    s.zj.shutdown().await.unwrap();
    s.sc.shutdown().await.unwrap();
    let server = serve(&s.zj_cfg, &endpoint, &cert, &s.receiver).await;
    let gate = || async {
        ArrivalServiceClient::new(
            hcmr::client::connect(&endpoint, Some(&cert), Some(&s.receiver))
                .await
                .unwrap(),
        )
    };

    let c = gate()
        .await
        .check_in_manifest(proto::CheckInManifestRequest {
            manifest,
            checkpoint_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(c.verdict.unwrap().pass);
    gate()
        .await
        .confirm_person(confirm(&trip, 1, &codes[0], MEASURE_NONE, ""))
        .await
        .unwrap();
    gate()
        .await
        .confirm_person(missing(&trip, 2, "not at the gate"))
        .await
        .unwrap();
    let h = gate()
        .await
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!h.delivered);
    let receipt = h.receipt.unwrap().signed;

    // SIGKILL, then a restart: everything acknowledged is there.
    drop(server);
    let server = serve(&s.zj_cfg, &endpoint, &cert, &s.receiver).await;
    let list = gate()
        .await
        .list_arrivals(proto::ListArrivalsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let a = &list.arrivals[0];
    assert_eq!(
        (a.trip_id.as_str(), a.confirmed, a.delivered),
        (trip.as_str(), 2, false)
    );
    assert_eq!(a.handover.as_ref().unwrap().signed, receipt);
    let again = gate()
        .await
        .complete_handover(proto::CompleteHandoverRequest {
            trip_id: trip.clone(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.receipt.unwrap().signed, receipt);

    // Sichuan back: the queued receipt reaches it (bounded: the outbox's backoff is at most
    // 15 s).
    let sc = start_on(&s.sc_cfg, &s.clock).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let view = loop {
        let v = origin_view(&s.organizer, &sc, &trip).await;
        if v.handover.is_some() || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view.state, proto::TripState::Delivered as i32, "{view:?}");
    assert_eq!(view.handover.unwrap().signed, receipt);
    drop(server);
    sc.shutdown().await.unwrap();
}

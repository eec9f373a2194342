//! Batch verification over gRPC with real nodes on loopback: BatchVerifyHealthCodes decides each
//! code as VerifyHealthCode does (forgeries, malformed strings and peers' codes mixed in), audits
//! each, and refuses empty and oversized batches naming the field; concurrent VerifyHealthCode
//! calls, which the node verifies together, each get their own right verdict.

use crate::common;

use common::*;
use coset::{CborSerializable, CoseSign1, TaggedCborSerializable};
use hcmr::proto::{self, Reason, Verdict};
use tonic::Code;

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;

/// `valid` with one bit of its signature's `R` flipped: it decodes, its kid is pinned, and its
/// signature fails.
fn forged(valid: &str) -> String {
    let cose = hcmr::code::transport::unwrap(valid).unwrap();
    match CoseSign1::from_tagged_slice(&cose) {
        Ok(mut s) => {
            s.signature[10] ^= 1;
            hcmr::code::transport::wrap(&s.to_tagged_vec().unwrap())
        }
        Err(_) => {
            let mut s = CoseSign1::from_slice(&cose).unwrap();
            s.signature[10] ^= 1;
            hcmr::code::transport::wrap(&s.to_vec().unwrap())
        }
    }
}

/// What must agree between a batch result and a single verification (not `verified_at`,
/// which is the second each was decided).
fn outcome(v: &proto::VerifyHealthCodeResponse) -> impl PartialEq + std::fmt::Debug {
    (
        v.verdict,
        v.reason,
        v.detail.clone(),
        v.issuer_province.clone(),
        v.issued_status,
        v.local_status,
        v.cti.clone(),
        v.signature_verified,
        v.agreement_id.clone(),
    )
}

async fn batch(
    n: &hcmr::node::NodeHandle,
    codes: Vec<String>,
) -> Result<proto::BatchVerifyHealthCodesResponse, tonic::Status> {
    common::codes(n)
        .await
        .batch_verify_health_codes(proto::BatchVerifyHealthCodesRequest {
            codes,
            checkpoint_id: "toll-gate-7".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_decided_code_by_code_as_single_verifications() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;

    let green = issue(&sc, subject("李秀英", "511302", 242), G, 300)
        .await
        .code;
    let yellow = issue(&sc, subject("王芳", "510104", 7), Y, 300).await.code;
    let own = issue(&gd, subject("陈伟", "440106", 31), G, 300).await.code;
    let forged_peer = forged(&green);
    let forged_own = forged(&own);
    let malformed = "HCMR1:not a code!".to_string();
    // A batch longer than one batch equation, every kind at several positions.
    let kinds = [
        (&green, Reason::Ok),
        (&yellow, Reason::Ok),
        (&own, Reason::Ok),
        (&forged_peer, Reason::BadSignature),
        (&forged_own, Reason::BadSignature),
        (&malformed, Reason::Malformed),
    ];
    let picks: Vec<usize> = (0..100).map(|i| (i * 7 + i / 6) % kinds.len()).collect();
    let codes: Vec<String> = picks.iter().map(|&k| kinds[k].0.clone()).collect();

    let results = batch(&gd, codes.clone()).await.unwrap().results;
    assert_eq!(results.len(), codes.len());
    for (i, (r, &k)) in results.iter().zip(&picks).enumerate() {
        assert_eq!(r.reason, kinds[k].1 as i32, "code {i}: {}", r.detail);
        let recognized = kinds[k].1 == Reason::Ok;
        assert_eq!(r.verdict == Verdict::Recognized as i32, recognized);
        assert_eq!(r.signature_verified, recognized, "code {i}");
    }
    // Sichuan's yellow counts as red in Guangdong, in a batch as singly.
    let y = picks.iter().position(|&k| k == 1).unwrap();
    assert_eq!(results[y].local_status, proto::HealthStatus::Red as i32);
    // Each kind's result equals VerifyHealthCode's.
    for (k, (code, _)) in kinds.iter().enumerate() {
        let i = picks.iter().position(|&p| p == k).unwrap();
        assert_eq!(
            outcome(&results[i]),
            outcome(&verify(&gd, code).await),
            "{k}"
        );
    }

    // One audit record per code, with the batch's checkpoint id (the writer stores in batches:
    // wait, bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let batch_records = loop {
        let n = audit_records(&gd)
            .await
            .into_iter()
            .filter(|r| r.checkpoint_id == "toll-gate-7")
            .count();
        if n >= codes.len() || std::time::Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(batch_records, codes.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_oversized_batches_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;

    let e = batch(&sc, Vec::new()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.message(), "codes: at least one code is needed");

    let e = batch(&sc, vec!["X".to_string(); 257]).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.message(), "codes: at most 256 codes per call, got 257");

    // 256 is allowed; each bad string gets its own refusal.
    let results = batch(&sc, vec!["X".to_string(); 256])
        .await
        .unwrap()
        .results;
    assert_eq!(results.len(), 256);
    for r in &results {
        assert_eq!(r.reason, Reason::Malformed as i32);
        assert!(r.detail.starts_with("prefix.missing"), "{}", r.detail);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verifications_with_forgeries_each_get_their_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let valid = issue(&sc, subject("李秀英", "511302", 242), G, 300)
        .await
        .code;
    let bad = forged(&valid);
    // 64 calls in flight at a time, each task on its own connection, one in 5 forged: the node
    // forms batches with forgeries inside and must find each.
    let mut tasks = Vec::new();
    for t in 0..64usize {
        let mut client = common::codes(&sc).await;
        let (valid, bad) = (valid.clone(), bad.clone());
        tasks.push(tokio::spawn(async move {
            let mut wrong = Vec::new();
            // 5 calls each: 320 in all, under the test caller's burst of 400 (the per-caller
            // rate limit would refuse more, however fast they come).
            for i in 0..5usize {
                let is_forged = (t + i) % 5 == 0;
                let code = if is_forged { &bad } else { &valid };
                let v = client
                    .verify_health_code(proto::VerifyHealthCodeRequest {
                        code: code.clone(),
                        checkpoint_id: String::new(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let want = if is_forged {
                    Reason::BadSignature
                } else {
                    Reason::Ok
                };
                if v.reason != want as i32 {
                    wrong.push((t, i, v.reason, v.detail));
                }
            }
            wrong
        }));
    }
    for t in tasks {
        let wrong = t.await.unwrap();
        assert!(wrong.is_empty(), "{wrong:?}");
    }
}

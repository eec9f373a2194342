//! What checkpoint staff rely on, with real nodes on loopback: every verification lands in the
//! audit log with the right fields and nothing personal, and the identity match ties a code to
//! the document shown (at the issuing node, or forwarded to it by a peer).

use crate::common;

use common::*;
use hcmr::proto::{self, Reason, Verdict};
use sha2::{Digest, Sha256};
use tonic::Code;

mod audit;
mod codes;
mod page;

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

/// Runs `c` (the hcmr binary) off the runtime's worker, expecting success; its stdout and stderr.
fn run_ok(mut c: std::process::Command) -> (String, String) {
    let out = tokio::task::block_in_place(|| c.output()).unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

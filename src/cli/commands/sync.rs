//! `hcmr sync`: pull every peer's trust feed and agreement state now.

use crate::cli::node::{channel, NodeArg};
use crate::cli::CliError;
use crate::proto;
use crate::proto::operator_service_client::OperatorServiceClient;

/// Runs `hcmr sync`.
pub(crate) async fn exec(n: NodeArg) -> Result<(), CliError> {
    let r = OperatorServiceClient::new(channel(&n).await?)
        .sync_now(proto::SyncNowRequest {})
        .await?
        .into_inner();
    if r.peers.is_empty() {
        out!("no peers to sync (no concluded agreements)");
    }
    let mut failed = 0;
    for p in &r.peers {
        if p.ok {
            out!(
                "{}  ok: {} new entries, at entry {}",
                p.province,
                p.entries,
                p.last_seq
            );
        } else {
            failed += 1;
            out!("{}  FAILED: {}", p.province, p.error);
        }
    }
    if failed > 0 {
        Err(CliError::Unavailable(format!(
            "{failed} peer(s) could not be synced"
        )))
    } else {
        Ok(())
    }
}

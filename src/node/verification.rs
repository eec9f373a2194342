//! Verification with an audit record: the decision on the current snapshot, batched with the
//! other calls in flight, and one queued audit record per code.

use crate::UnixTime;

use super::batcher::Batcher;
use super::error::ApiError;
use super::metrics::Metrics;
use super::{AuditSink, NodeState, TrustState};
use crate::audit::AuditRecord;
use crate::clock::Clock;

/// What verification needs: the trust snapshot, the verifier threads, the metrics, the audit
/// queue, the clock, and (at a verify replica) when the primary was last heard from.
pub(crate) struct Verification<'a> {
    role: &'a super::replica::NodeRole,
    trust: &'a TrustState,
    batcher: &'a Batcher,
    metrics: &'a Metrics,
    audit: &'a AuditSink,
    clock: &'a Clock,
}

impl NodeState {
    /// The verification workflow's part of the node.
    pub(crate) fn verification(&self) -> Verification<'_> {
        Verification {
            role: &self.role,
            trust: &self.trust,
            batcher: &self.batcher,
            metrics: &self.metrics,
            audit: &self.audit,
            clock: &self.clock,
        }
    }
}

impl Verification<'_> {
    /// Verifies codes of caller `who` (the pure decision on the current snapshot, batched with the
    /// other calls in flight, callers in turn) and queues an audit record for each. No disk I/O
    /// here: the audit writer stores records in batches. Verdicts in the order of `codes`, and the
    /// decision time.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the decision failed (a bug).
    pub(crate) async fn verify_and_audit(
        &self,
        who: &str,
        codes: Vec<String>,
        checkpoint: &str,
        via: &'static str,
    ) -> Result<(Vec<crate::verify::Verdict>, UnixTime), ApiError> {
        let checkpoint = crate::audit::check_checkpoint_id(checkpoint)
            .map_err(|e| ApiError::invalid("checkpoint_id", e))?;
        let now = self.clock.now();
        self.role.check_fresh(now)?;
        let trust = self.trust.load_full();
        let started = std::time::Instant::now();
        let mut verdicts = self.batcher.verify(who, codes, trust.clone(), now).await?;
        let elapsed = started.elapsed();
        // At a verify replica the own province's state is as old as the last word from the
        // primary: the verdict says so, as it says a peer's age (the decision is unchanged:
        // own codes have no trust-age term; readiness covers a silent primary).
        if let Some(link) = self.role.replica() {
            for v in &mut verdicts {
                if v.issuer == Some(trust.local()) {
                    v.issuer_synced_at = link.last_contact();
                }
            }
        }
        for verdict in &verdicts {
            self.metrics.verification(verdict, elapsed);
            self.audit_verification(verdict, now, checkpoint, via);
        }
        Ok((verdicts, now))
    }

    fn audit_verification(
        &self,
        verdict: &crate::verify::Verdict,
        now: UnixTime,
        checkpoint: &str,
        via: &'static str,
    ) {
        self.audit
            .queue(AuditRecord::of(verdict, now, checkpoint, via));
        tracing::debug!(
            issuer = verdict.issuer.map(|p| p.to_string()).unwrap_or_default(),
            reason = verdict.reason.as_str(),
            checkpoint,
            via,
            "verified health code"
        );
    }
}

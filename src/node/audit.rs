//! What checkpoint staff touch, on the node side: verification with an audit record, the
//! identity match, the audit log, and codes returned as images.

use crate::lock::Locked;
use std::sync::atomic::Ordering;

use super::convert;
use super::error::ApiError;
use super::{peer, NodeState};
use crate::audit::AuditRecord;
use crate::identity;
use crate::proto;
use crate::province::Province;
use crate::store::AuditCursor;

/// Most identity matches per code (and per subject at the issuer) in one window: enough for a
/// checkpoint and a second look, far too few to guess a masked number (hundreds of thousands of
/// candidates remain behind 5113*242X).
pub(crate) const MAX_MATCH_ATTEMPTS: u32 = 5;
/// The window of [`MAX_MATCH_ATTEMPTS`], in seconds.
pub(crate) const MATCH_WINDOW_SECS: u64 = 3600;

fn too_many() -> ApiError {
    ApiError::TooManyAttempts(format!(
        "identity match: at most {MAX_MATCH_ATTEMPTS} attempts per code per hour; compare the masked ID with the document by eye"
    ))
}

/// Most audit records one ListAuditRecords page holds (a larger `limit` is lowered to it, as
/// AIP-158 asks): at most about 330 bytes each (a 64-character checkpoint id of 4-byte
/// characters), 10,000 stay under the 4 MiB a gRPC client takes by default.
pub(crate) const MAX_AUDIT_PAGE: u32 = 10_000;

/// Length of the filter digest at the end of a ListAuditRecords page token.
const AUDIT_FILTER_DIGEST_LEN: usize = 8;

/// The filters a ListAuditRecords page token is good for (all but `from`, which the token
/// replaces): the first 8 bytes of SHA-256 over `until`, the issuer and the verdict.
fn audit_filter_digest(r: &proto::ListAuditRecordsRequest) -> [u8; AUDIT_FILTER_DIGEST_LEN] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"hcmr ListAuditRecords page token v1\0");
    h.update(r.until.to_be_bytes());
    h.update(r.verdict.to_be_bytes());
    h.update(r.issuer_province.as_bytes());
    let d = h.finalize();
    let mut out = [0u8; AUDIT_FILTER_DIGEST_LEN];
    out.copy_from_slice(&d[..AUDIT_FILTER_DIGEST_LEN]);
    out
}

impl NodeState {
    /// Verifies codes of caller `who` (the pure decision on the current snapshot, batched with
    /// the other calls in flight, callers in turn) and queues an audit record for each. No disk I/O here: the audit writer stores
    /// records in batches. Verdicts in the order of `codes`, and the decision time (seconds
    /// since the Unix epoch, UTC).
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the decision failed (a bug).
    pub(crate) async fn verify_and_audit(
        &self,
        who: &str,
        codes: Vec<String>,
        checkpoint: &str,
        via: &'static str,
    ) -> Result<(Vec<crate::verify::Verdict>, u64), ApiError> {
        let checkpoint = crate::audit::check_checkpoint_id(checkpoint)
            .map_err(|e| ApiError::invalid("checkpoint_id", e))?;
        let now = self.now();
        let trust = self.trust.load_full();
        let started = std::time::Instant::now();
        let verdicts = self.batcher.verify(who, codes, trust, now).await?;
        let elapsed = started.elapsed();
        for verdict in &verdicts {
            self.metrics.verification(verdict, elapsed);
            self.audit_verification(verdict, now, checkpoint, via);
        }
        Ok((verdicts, now))
    }

    fn audit_verification(
        &self,
        verdict: &crate::verify::Verdict,
        now: u64,
        checkpoint: &str,
        via: &'static str,
    ) {
        let record = AuditRecord::of(verdict, now, checkpoint, via);
        if self.audit_tx.try_send(record).is_err() {
            // The writer is behind or gone: never block a checkpoint for the log's sake.
            let n = self.audit_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::error!(
                    dropped = n,
                    "audit records dropped: the audit writer cannot keep up"
                );
            }
        }
        tracing::debug!(
            issuer = verdict.issuer.map(|p| p.to_string()).unwrap_or_default(),
            reason = verdict.reason.as_str(),
            checkpoint,
            via,
            "verified health code"
        );
    }

    /// Counts an identity-match attempt for `key` (a hashed code id, or a subject hash
    /// zero-padded) at `now`; false when the key is over [`MAX_MATCH_ATTEMPTS`] in its
    /// [`MATCH_WINDOW_SECS`]. Counted in the store, durably, so a restart resets nothing.
    async fn match_allowed(&self, key: [u8; 16], now: u64) -> Result<bool, ApiError> {
        let n = self
            .store
            .count_match_attempt(key, now, MATCH_WINDOW_SECS)
            .await?;
        Ok(n <= MAX_MATCH_ATTEMPTS)
    }

    /// Does the document shown match the code's subject? Own codes are checked here; a peer's
    /// code is asked of the issuer's node, the only holder of its subject key.
    pub(crate) async fn match_identity(
        &self,
        r: proto::MatchIdentityRequest,
    ) -> Result<proto::MatchIdentityResponse, ApiError> {
        let doc_type = convert::document_type_from_proto(r.document_type).ok_or_else(|| {
            ApiError::invalid("document_type", "must be set to a known document type")
        })?;
        let number = identity::normalize_document_number(doc_type, &r.document_number)
            .map_err(|e| ApiError::invalid("document_number", e))?;
        let now = self.now();
        let verdict = crate::verify::verify(&r.code, &self.trust.load(), now);
        // Only a code recognized here has a subject worth matching: an expired, revoked or
        // forged code must not become an oracle for document numbers.
        let (Some(claims), Some(cti), Some(issuer), true) = (
            &verdict.claims,
            verdict.cti,
            verdict.issuer,
            verdict.recognized(),
        ) else {
            return Err(ApiError::FailedPrecondition(format!(
                "the code is not recognized here ({}): there is no subject to match",
                verdict.reason.explain()
            )));
        };
        if !self
            .match_allowed(crate::audit::cti_hash(&cti), now)
            .await?
        {
            return Err(too_many());
        }
        let hash = claims.subject.subject_hash;
        if claims.subject.document_type != doc_type {
            return Ok(proto::MatchIdentityResponse {
                matches: false,
                checked_by: self.province.to_string(),
            });
        }
        if issuer == self.province {
            let matches = self.subject_key.subject_hash(doc_type, &number) == hash;
            return Ok(proto::MatchIdentityResponse {
                matches,
                checked_by: self.province.to_string(),
            });
        }
        let url = self.store.peer_endpoint(issuer)?.ok_or_else(|| {
            ApiError::FailedPrecondition(format!("no endpoint recorded for {issuer}"))
        })?;
        let unreachable = |detail: String| {
            ApiError::PeerUnavailable {
            endpoint: url.clone(),
            detail: format!(
                "{detail}; the identity match needs the issuing province's node: compare the masked ID by eye"
            ),
        }
        };
        let mut client = peer::connect(self, "peer endpoint", &url, peer::Expect::Province(issuer))
            .await
            .map_err(|e| match e {
                ApiError::PeerUnavailable { detail, .. } => unreachable(detail),
                other => unreachable(other.to_string()),
            })?;
        let answer = client
            .match_subject(proto::MatchSubjectRequest {
                subject_hash: hash.to_string(),
                document_type: r.document_type,
                document_number: number,
            })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::ResourceExhausted => too_many(),
                _ => unreachable(s.message().to_string()),
            })?
            .into_inner();
        Ok(proto::MatchIdentityResponse {
            matches: answer.matches,
            checked_by: issuer.to_string(),
        })
    }

    /// A peer asks whether a document matches one of this node's subject hashes.
    pub(crate) async fn match_subject(
        &self,
        r: &proto::MatchSubjectRequest,
    ) -> Result<proto::MatchSubjectResponse, ApiError> {
        let doc_type = convert::document_type_from_proto(r.document_type).ok_or_else(|| {
            ApiError::invalid("document_type", "must be set to a known document type")
        })?;
        let number = identity::normalize_document_number(doc_type, &r.document_number)
            .map_err(|e| ApiError::invalid("document_number", e))?;
        let hash: [u8; identity::SUBJECT_HASH_LEN] = hex::decode(&r.subject_hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ApiError::invalid("subject_hash", "must be 16 hex digits"))?;
        // The limiter counts by 16-byte keys: the 8-byte hash, zero-padded.
        let mut limit_key = [0u8; 16];
        limit_key[..hash.len()].copy_from_slice(&hash);
        if !self.match_allowed(limit_key, self.now()).await? {
            return Err(too_many());
        }
        let mine = self.subject_key.subject_hash(doc_type, &number);
        Ok(proto::MatchSubjectResponse {
            matches: mine.0 == hash,
        })
    }

    /// The audit log, filtered, a page at a time (AIP-158): the page token is the hex of the
    /// next record's [`AuditCursor`] and the digest of the filters it was made for.
    ///
    /// # Errors
    /// INVALID_ARGUMENT naming the field: an issuer that is not a province code, an unknown
    /// verdict, a `page_token` that is not one or was made for other filters.
    pub(crate) fn list_audit(
        &self,
        r: &proto::ListAuditRecordsRequest,
    ) -> Result<proto::ListAuditRecordsResponse, ApiError> {
        let until = if r.until == 0 { u64::MAX } else { r.until };
        let issuer: Option<Province> = if r.issuer_province.is_empty() {
            None
        } else {
            Some(
                r.issuer_province
                    .parse()
                    .map_err(|e| ApiError::invalid("issuer_province", e))?,
            )
        };
        let want_recognized = match proto::Verdict::try_from(r.verdict) {
            Ok(proto::Verdict::Recognized) => Some(true),
            Ok(proto::Verdict::NotRecognized) => Some(false),
            Ok(proto::Verdict::Unspecified) => None,
            Err(_) => return Err(ApiError::invalid("verdict", "unknown verdict")),
        };
        let limit = match r.limit {
            0 => MAX_AUDIT_PAGE,
            l => l.min(MAX_AUDIT_PAGE),
        } as usize;
        let filters = audit_filter_digest(r);
        let after = match r.page_token.as_str() {
            "" => None,
            t => {
                let bad = |why: &str| ApiError::invalid("page_token", why);
                let raw = hex::decode(t)
                    .ok()
                    .filter(|b| b.len() == AuditCursor::LEN + AUDIT_FILTER_DIGEST_LEN)
                    .ok_or_else(|| bad("not a next_page_token of ListAuditRecords"))?;
                let (cursor, digest) = raw.split_at(AuditCursor::LEN);
                if digest != filters {
                    return Err(bad(
                        "made for other filters: until, issuer_province and verdict must be \
                         those of the call that returned it",
                    ));
                }
                AuditCursor::from_bytes(cursor)
            }
        };
        let (records, next) = self.store.audit_page(r.from, until, after, limit, |a| {
            issuer.is_none_or(|p| a.issuer == Some(p))
                && want_recognized.is_none_or(|w| a.recognized == w)
        })?;
        Ok(proto::ListAuditRecordsResponse {
            records: records.iter().map(audit_to_proto).collect(),
            truncated: next.is_some(),
            next_page_token: next
                .map(|c| {
                    let mut t = c.to_bytes().to_vec();
                    t.extend_from_slice(&filters);
                    hex::encode(t)
                })
                .unwrap_or_default(),
        })
    }
}

fn audit_to_proto(a: &AuditRecord) -> proto::AuditRecord {
    proto::AuditRecord {
        time: a.time,
        checkpoint_id: a.checkpoint_id.clone(),
        via: a.via.to_string(),
        issuer_province: a.issuer.map(|p| p.to_string()).unwrap_or_default(),
        verdict: if a.recognized {
            proto::Verdict::Recognized as i32
        } else {
            proto::Verdict::NotRecognized as i32
        },
        reason: a.reason as i32,
        cti_hash: a.cti_hash.map(hex::encode).unwrap_or_default(),
    }
}

/// Refused calls counted by kind ([`crate::audit::DenialTally`]) until the audit writer takes
/// them; the writer is woken when the first arrives.
#[derive(Default)]
pub(crate) struct RefusalTally {
    /// The counts. A std mutex: held for a map update only.
    tally: std::sync::Mutex<crate::audit::DenialTally>,
    /// Wakes the audit writer.
    wake: tokio::sync::Notify,
    /// One [`RefusalTally::flush`] at a time, so a reader that flushes waits for counts the
    /// writer has taken but not yet stored.
    flushing: tokio::sync::Mutex<()>,
}

impl RefusalTally {
    /// Counts a refused call (never blocks on I/O).
    pub(crate) fn add(&self, d: crate::audit::AccessDenial) {
        let first = self.tally.locked().add(d);
        if first {
            self.wake.notify_one();
        }
    }

    /// Stores what is counted (not flushed to disk: readers of the store see it at once).
    ///
    /// # Errors
    /// The store's error, with the refusals it could not store.
    pub(crate) async fn flush(
        &self,
        store: &crate::store::Store,
    ) -> Result<bool, (crate::store::StoreError, u64)> {
        let _one = self.flushing.lock().await;
        let denials = self.take();
        if denials.is_empty() {
            return Ok(false);
        }
        store
            .append_denials(&denials)
            .await
            .map(|()| true)
            .map_err(|e| (e, denials.iter().map(|d| d.count).sum()))
    }

    /// What is counted, as records, leaving the tally empty.
    pub(crate) fn take(&self) -> Vec<crate::audit::AccessDenial> {
        self.tally.locked().take()
    }
}

/// Stores queued audit records and counted refusals in batches (group commit: one flush per
/// batch, at least every 200 ms while records arrive) until `stop` turns true; then stores and
/// flushes what is left.
pub(crate) async fn audit_writer(
    store: crate::store::Store,
    mut rx: tokio::sync::mpsc::Receiver<AuditRecord>,
    refusals: std::sync::Arc<RefusalTally>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut batch = Vec::new();
    loop {
        if !*stop.borrow() {
            tokio::select! {
                r = rx.recv() => batch.extend(r),
                () = refusals.wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
        while let Ok(r) = rx.try_recv() {
            batch.push(r);
        }
        let denials = match refusals.flush(&store).await {
            Ok(stored) => stored,
            Err((e, lost)) => {
                tracing::error!(error = %e, lost, "refused-call records could not be stored");
                true
            }
        };
        if !batch.is_empty() || denials {
            let count = batch.len();
            if let Err(e) = store.append_audit(std::mem::take(&mut batch)).await {
                tracing::error!(error = %e, lost = count, "audit records could not be stored");
            } else if let Err(e) = store.flush().await {
                tracing::error!(error = %e, "audit records could not be flushed");
            }
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// tonic's default limit on a message a client decodes: 4 MiB.
    const CLIENT_DEFAULT_MAX: usize = 4 * 1024 * 1024;

    #[test]
    fn a_full_page_of_the_largest_audit_records_fits_a_default_client() {
        let largest = AuditRecord {
            time: u64::MAX,
            // 64 characters of 4 bytes each in UTF-8.
            checkpoint_id: "𠀀".repeat(crate::audit::MAX_CHECKPOINT_ID),
            via: "http",
            issuer: Some(Province::from_code(820000).unwrap()),
            recognized: false,
            reason: crate::verify::Reason::TrustStale,
            cti_hash: Some([0xff; 16]),
        };
        assert_eq!(
            crate::audit::checkpoint_id(&largest.checkpoint_id),
            largest.checkpoint_id,
            "kept whole"
        );
        let page = proto::ListAuditRecordsResponse {
            records: vec![audit_to_proto(&largest); MAX_AUDIT_PAGE as usize],
            truncated: true,
            next_page_token: "f".repeat(2 * (AuditCursor::LEN + AUDIT_FILTER_DIGEST_LEN)),
        };
        let len = page.encoded_len();
        assert!(len < CLIENT_DEFAULT_MAX, "{len} bytes");
        assert!(
            len > CLIENT_DEFAULT_MAX / 2,
            "{len} bytes: the page could hold more"
        );
    }
}

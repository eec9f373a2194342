//! The audit log: the writer task that stores queued audit records and the refusal tally in
//! batches, and ListAuditRecords a page at a time.

use crate::lock::Locked;
use crate::UnixTime;

use super::error::ApiError;
use super::NodeState;
use crate::audit::AuditRecord;
use crate::proto;
use crate::province::Province;
use crate::store::{AuditCursor, Store};

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

/// What ListAuditRecords needs: the store the audit writer fills.
pub(crate) struct AuditLog<'a> {
    store: &'a Store,
}

impl NodeState {
    /// The audit log workflow's part of the node.
    pub(crate) fn audit_log(&self) -> AuditLog<'_> {
        AuditLog { store: &self.store }
    }
}

impl AuditLog<'_> {
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
        let until = UnixTime::from_secs(if r.until == 0 { u64::MAX } else { r.until });
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
        let (records, next) =
            self.store
                .audit_page(UnixTime::from_secs(r.from), until, after, limit, |a| {
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

pub(crate) fn audit_to_proto(a: &AuditRecord) -> proto::AuditRecord {
    proto::AuditRecord {
        time: a.time.secs(),
        checkpoint_id: a.checkpoint_id.clone(),
        via: a.via.to_string(),
        issuer_province: a.issuer.map(|p| p.to_string()).unwrap_or_default(),
        verdict: if a.recognized {
            proto::Verdict::Recognized as i32
        } else {
            proto::Verdict::NotRecognized as i32
        },
        reason: a.reason.map_or(0, |r| r as i32),
        cti_hash: a.cti_hash.map(hex::encode).unwrap_or_default(),
        manifest: a
            .manifest
            .as_ref()
            .map(super::manifest_check::audit_to_proto),
        trace: a.trace.as_ref().map(trace_to_proto),
        replica: a.replica.clone().unwrap_or_default(),
    }
}

/// Longest `trace.refusal` taken from a replica, in bytes (a status message).
const MAX_REFUSAL_BYTES: usize = 1_024;

/// Reads record `i` of a SubmitAuditBatch request as the audit log keeps it (the inverse of
/// [`audit_to_proto`]); its `replica` field is ignored (the caller sets it). Every field must be
/// one this node's own records could hold, so that the primary's log holds nothing a node of
/// its own would not have written.
///
/// # Errors
/// INVALID_ARGUMENT naming the field with its index (`records[3].checkpoint_id`).
pub(crate) fn audit_from_proto(i: usize, r: &proto::AuditRecord) -> Result<AuditRecord, ApiError> {
    let bad = |field: &str, detail: String| ApiError::InvalidElement {
        field: format!("records[{i}].{field}"),
        detail,
    };
    let province = |field: &str, s: &str| -> Result<Option<Province>, ApiError> {
        match s {
            "" => Ok(None),
            s => s
                .parse()
                .map(Some)
                .map_err(|e| bad(field, format!("{s:?}: {e}"))),
        }
    };
    let hex_bytes = |field: &str, s: &str, len: usize| -> Result<Option<Vec<u8>>, ApiError> {
        if s.is_empty() {
            return Ok(None);
        }
        hex::decode(s)
            .ok()
            .filter(|b| b.len() == len && s.bytes().all(|c| !c.is_ascii_uppercase()))
            .map(Some)
            .ok_or_else(|| {
                bad(
                    field,
                    format!("{s:?} is not {} lower-case hex digits or empty", 2 * len),
                )
            })
    };
    if r.time == 0 {
        return Err(bad("time", "0 is not a time of a verification".into()));
    }
    if r.checkpoint_id.is_empty()
        || crate::audit::checkpoint_id(&r.checkpoint_id) != r.checkpoint_id
    {
        return Err(bad(
            "checkpoint_id",
            format!(
                "{:?} is not a checkpoint id as a node records it (1 to {} printable characters, \
                 no spaces around; \"unnamed\" when none was given)",
                r.checkpoint_id,
                crate::audit::MAX_CHECKPOINT_ID
            ),
        ));
    }
    let via = match r.via.as_str() {
        "grpc" => "grpc",
        "http" => "http",
        v => return Err(bad("via", format!("{v:?}: \"grpc\" or \"http\""))),
    };
    let issuer = province("issuer_province", &r.issuer_province)?;
    let recognized = match proto::Verdict::try_from(r.verdict) {
        Ok(proto::Verdict::Recognized) => true,
        Ok(proto::Verdict::NotRecognized) => false,
        _ => {
            return Err(bad(
                "verdict",
                format!("{}: RECOGNIZED or NOT_RECOGNIZED", r.verdict),
            ))
        }
    };
    if r.manifest.is_some() && r.trace.is_some() {
        return Err(bad(
            "trace",
            "a record is a code's, a manifest check's or a trace's, not two".into(),
        ));
    }
    let special = r.manifest.is_some() || r.trace.is_some();
    let reason = match (special, r.reason) {
        (true, 0) => None,
        (true, n) => {
            return Err(bad(
                "reason",
                format!("{n}: a manifest check or trace record has REASON_UNSPECIFIED"),
            ))
        }
        (false, n) => Some(
            u8::try_from(n)
                .ok()
                .filter(|n| *n != 0)
                .and_then(crate::verify::Reason::from_u8)
                .ok_or_else(|| bad("reason", format!("{n} is not a reason of a code")))?,
        ),
    };
    let cti_hash = match hex_bytes("cti_hash", &r.cti_hash, 16)? {
        Some(_) if special => {
            return Err(bad(
                "cti_hash",
                "empty for a manifest check or trace record".into(),
            ))
        }
        h => h.map(|h| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&h);
            a
        }),
    };
    let trip = |field: &str, s: &str| -> Result<Option<crate::manifest::TripId>, ApiError> {
        Ok(hex_bytes(field, s, 8)?.map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b);
            crate::manifest::TripId(a)
        }))
    };
    let manifest = match &r.manifest {
        None => None,
        Some(m) => {
            let reasons = m
                .reasons
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    let reason = crate::manifest::ManifestReason::ALL
                        .into_iter()
                        .find(|k| super::manifest_check::reason_to_proto(*k) as i32 == x.reason)
                        .ok_or_else(|| {
                            bad(
                                &format!("manifest.reasons[{j}].reason"),
                                format!("{} is not a manifest reason", x.reason),
                            )
                        })?;
                    let seat = match u8::try_from(x.seat).ok().filter(|s| *s <= 99) {
                        Some(0) => None,
                        Some(s) => Some(s),
                        None => {
                            return Err(bad(
                                &format!("manifest.reasons[{j}].seat"),
                                format!("{}: a seat is 1 to 99, or 0 for none", x.seat),
                            ))
                        }
                    };
                    Ok(crate::audit::ManifestAuditReason {
                        reason,
                        seat,
                        issuer: province(
                            &format!("manifest.reasons[{j}].issuer_province"),
                            &x.issuer_province,
                        )?,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Some(crate::audit::ManifestAudit {
                trip_id: trip("manifest.trip_id", &m.trip_id)?,
                version: m.version,
                signature_verified: m.signature_verified,
                reasons,
            })
        }
    };
    let trace = match &r.trace {
        None => None,
        Some(t) => {
            let action = u64::try_from(t.action)
                .ok()
                .and_then(crate::audit::TraceAction::from_number)
                .ok_or_else(|| {
                    bad(
                        "trace.action",
                        format!("{} is not a trace action (1 to 6)", t.action),
                    )
                })?;
            if crate::audit::checkpoint_id(&t.asked_by) != t.asked_by {
                return Err(bad(
                    "trace.asked_by",
                    format!(
                        "{:?}: a caller's name or a province code, at most {} printable characters",
                        t.asked_by,
                        crate::audit::MAX_CHECKPOINT_ID
                    ),
                ));
            }
            if t.refusal.len() > MAX_REFUSAL_BYTES {
                return Err(bad(
                    "trace.refusal",
                    format!(
                        "{} bytes; at most {MAX_REFUSAL_BYTES} are taken",
                        t.refusal.len()
                    ),
                ));
            }
            Some(crate::audit::TraceAudit {
                action,
                asked_by: t.asked_by.clone(),
                trip_id: trip("trace.trip_id", &t.trip_id)?,
                subject_prefix: hex_bytes("trace.subject_prefix", &t.subject_prefix, 4)?.map(|b| {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(&b);
                    a
                }),
                count: t.count,
                refusal: t.refusal.clone(),
            })
        }
    };
    Ok(AuditRecord {
        time: UnixTime::from_secs(r.time),
        checkpoint_id: r.checkpoint_id.clone(),
        via,
        issuer,
        recognized,
        reason,
        cti_hash,
        manifest,
        trace,
        replica: None,
    })
}

/// The wire form of a traceability record.
fn trace_to_proto(t: &crate::audit::TraceAudit) -> proto::TraceRecord {
    use crate::audit::TraceAction as A;
    use proto::TraceAction as P;
    let action = match t.action {
        A::TripChain => P::TripChain,
        A::Subject => P::Subject,
        A::QuerySent => P::QuerySent,
        A::QueryAnswered => P::QueryAnswered,
        A::NoticeSent => P::NoticeSent,
        A::NoticeReceived => P::NoticeReceived,
    };
    proto::TraceRecord {
        action: action as i32,
        asked_by: t.asked_by.clone(),
        trip_id: t.trip_id.map(|t| t.to_string()).unwrap_or_default(),
        subject_prefix: t.subject_prefix.map(hex::encode).unwrap_or_default(),
        count: t.count,
        refusal: t.refusal.clone(),
    }
}

impl super::AuditSink {
    /// Queues an audit record for the writer; never waits: a full queue drops it and counts
    /// (a checkpoint is never slowed for the log's sake).
    pub(crate) fn queue(&self, record: AuditRecord) {
        use std::sync::atomic::Ordering;
        if self.tx.try_send(record).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::error!(
                    dropped = n,
                    "audit records dropped: the audit writer cannot keep up"
                );
            }
        }
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
/// flushes what is left. At a verify replica (`ship` is set) the records go to `audit_outbox`
/// instead of `audit`, and `ship` tells the task that sends them to the primary
/// ([`super::replica::ship`]) how far they are flushed.
pub(crate) async fn audit_writer(
    store: crate::store::Store,
    mut rx: tokio::sync::mpsc::Receiver<AuditRecord>,
    refusals: std::sync::Arc<RefusalTally>,
    ship: Option<std::sync::Arc<super::replica::ship::ShipGate>>,
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
        // The trip versions checks noted, flushed with the batch.
        let versions = match store.store_manifest_versions().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(error = %e, "seen trip versions could not be stored; retried with the next batch");
                false
            }
        };
        if !batch.is_empty() || denials || versions {
            let count = batch.len();
            let records = std::mem::take(&mut batch);
            let stored = match &ship {
                None => store.append_audit(records).await.map(|()| None),
                Some(_) => store.append_audit_outbox(records).await.map(Some),
            };
            match stored {
                Err(e) => {
                    tracing::error!(error = %e, lost = count, "audit records could not be stored")
                }
                Ok(last) => {
                    if let Err(e) = store.flush().await {
                        tracing::error!(error = %e, "audit records could not be flushed");
                    } else if let (Some(gate), Some(last)) = (&ship, last) {
                        gate.flushed(last);
                    }
                }
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

    #[tokio::test]
    async fn at_a_replica_the_writer_fills_the_outbox_and_opens_the_gate_once_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let gate = std::sync::Arc::new(super::super::replica::ship::ShipGate::new(0));
        let writer = tokio::spawn(audit_writer(
            store.clone(),
            rx,
            std::sync::Arc::default(),
            Some(gate.clone()),
            stop_rx,
        ));
        let rec = |n: u64| AuditRecord {
            time: UnixTime::from_secs(1_700_000_000 + n),
            checkpoint_id: format!("gate-{n}"),
            via: "grpc",
            issuer: None,
            recognized: false,
            reason: Some(crate::verify::Reason::Malformed),
            cti_hash: None,
            manifest: None,
            trace: None,
            replica: None,
        };
        for n in 1..=3 {
            tx.send(rec(n)).await.unwrap();
        }
        // The gate moves once the records are flushed.
        let _ = stop.send(true);
        writer.await.unwrap();
        assert_eq!(gate.through(), 3);
        assert_eq!(
            store.audit_outbox_batch(10, 3).unwrap(),
            Some((1, vec![rec(1), rec(2), rec(3)]))
        );
        // Nothing went to the audit log itself.
        let (log, _) = store
            .audit_page(
                UnixTime::from_secs(0),
                UnixTime::from_secs(u64::MAX),
                None,
                10,
                |_| true,
            )
            .unwrap();
        assert!(log.is_empty());
    }

    #[test]
    fn a_record_reads_back_from_its_wire_form() {
        use crate::audit::{ManifestAudit, ManifestAuditReason, TraceAction, TraceAudit};
        use crate::manifest::{ManifestReason, TripId};
        let sc = Province::from_code(510000).unwrap();
        let code = AuditRecord {
            time: UnixTime::from_secs(1_700_000_000),
            checkpoint_id: "gate 3".into(),
            via: "http",
            issuer: Some(sc),
            recognized: false,
            reason: Some(crate::verify::Reason::Revoked),
            cti_hash: Some([0xab; 16]),
            manifest: None,
            trace: None,
            replica: None,
        };
        let undecoded = AuditRecord {
            issuer: None,
            cti_hash: None,
            reason: Some(crate::verify::Reason::Malformed),
            checkpoint_id: "unnamed".into(),
            ..code.clone()
        };
        let manifest = AuditRecord {
            reason: None,
            cti_hash: None,
            manifest: Some(ManifestAudit {
                trip_id: Some(TripId([0x7e; 8])),
                version: 3,
                signature_verified: true,
                reasons: vec![
                    ManifestAuditReason {
                        reason: ManifestReason::Revoked,
                        seat: Some(12),
                        issuer: Some(sc),
                    },
                    ManifestAuditReason {
                        reason: ManifestReason::Superseded,
                        seat: None,
                        issuer: None,
                    },
                ],
            }),
            ..code.clone()
        };
        let trace = AuditRecord {
            reason: None,
            cti_hash: None,
            trace: Some(TraceAudit {
                action: TraceAction::QueryAnswered,
                asked_by: "330000".into(),
                trip_id: None,
                subject_prefix: Some([1, 2, 3, 4]),
                count: 0,
                refusal: "no agreement".into(),
            }),
            ..code.clone()
        };
        for (i, r) in [code, undecoded, manifest, trace].into_iter().enumerate() {
            let mut wire = audit_to_proto(&r);
            assert_eq!(wire.replica, "");
            // The replica field on the wire is ignored.
            wire.replica = "someone".into();
            assert_eq!(audit_from_proto(i, &wire).unwrap(), r);
            let from_r1 = AuditRecord {
                replica: Some("sc-r1".into()),
                ..r
            };
            assert_eq!(audit_to_proto(&from_r1).replica, "sc-r1");
        }
    }

    #[test]
    fn a_full_page_of_the_largest_audit_records_fits_a_default_client() {
        let largest = AuditRecord {
            time: UnixTime::from_secs(u64::MAX),
            // 64 characters of 4 bytes each in UTF-8.
            checkpoint_id: "𠀀".repeat(crate::audit::MAX_CHECKPOINT_ID),
            via: "http",
            issuer: Some(Province::from_code(820000).unwrap()),
            recognized: false,
            reason: Some(crate::verify::Reason::TrustStale),
            cti_hash: Some([0xff; 16]),
            manifest: None,
            trace: None,
            replica: None,
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

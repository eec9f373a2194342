//! The audit log: one record per verification, with nothing personal in it.
//!
//! A record holds the time, who checked (a checkpoint id the caller chose), through which
//! interface, the issuing province, the verdict and reason, and a hash of the code id (so one
//! code's repeated scans can be counted, without linking the log to the issued-code log by a
//! plain lookup). Never a name, document number or subject hash. A check of a vehicle's trip
//! manifest (docs/transport.md section 5) is a record too: the trip's origin as the issuer, PASS
//! as recognized, and the trip, its version and the reasons of a STOP by seat
//! ([`ManifestAudit`]) instead of a code's reason and hash. A traceability record
//! (docs/tracing.md: a trace asked or answered, an exposure notice sent or received) is one
//! too: the other province as the issuer, served as recognized, and [`TraceAudit`] (hashes
//! prefixes and trips, never a person).
//!
//! Storage encoding of one record: CBOR `[time, checkpoint_id, via, issuer (uint, 0: none),
//! recognized: bool, reason: uint, cti_hash: bstr (16 or 0 bytes)]`; a manifest check has
//! reason 0, no hash, and an eighth element `[trip_id: bstr (8 or 0 bytes), version: uint,
//! signature_verified: bool, [* [reason: tstr (ManifestReason::as_str), seat: uint (0: none),
//! issuer: uint (0: none)]]]`, so records written before manifests read unchanged. A traceability
//! record has reason 0, no hash, `null` as the eighth element and a ninth, `[action: uint (1 to 6,
//! as `hcmr.v1.TraceAction`), asked_by: tstr, trip_id: bstr (8 or 0 bytes), subject_prefix: bstr
//! (4 or 0 bytes), count: uint, refusal: tstr]`. A record a verify replica made, taken in at
//! its primary (ReplicaService.SubmitAuditBatch), has a tenth element, the replica's enrolled
//! name (tstr), with `null` for an absent eighth or ninth; a null is never last, and a record
//! without the later elements keeps its older form, so every older value reads unchanged. The store keeps the records
//! of one second written together as one value, a CBOR array of such records
//! ([`AuditRecord::pack`]): one database insert per second and write batch instead of one per
//! verification, which at thousands of verifications a second was a sixteenth of the node's CPU.
//! [`AuditRecord::unpack`] reads both forms.

use ciborium::value::{Integer, Value};
use sha2::{Digest, Sha256};

use crate::manifest::{ManifestReason, ManifestVerdict, TripId};
use crate::province::Province;
use crate::verify::{Reason, Verdict};
use crate::UnixTime;

/// Longest checkpoint id kept, in characters.
pub const MAX_CHECKPOINT_ID: usize = 64;

/// One verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When the code was checked.
    pub time: UnixTime,
    /// Who checked (see [`checkpoint_id`]).
    pub checkpoint_id: String,
    /// Through which interface: `grpc` or `http`.
    pub via: &'static str,
    /// The issuing province, when the code decoded and named one.
    pub issuer: Option<Province>,
    /// Whether the code was recognized (for a manifest check: whether the vehicle passed).
    pub recognized: bool,
    /// The code's reason; `None` for a manifest check (its reasons are in `manifest`).
    pub reason: Option<Reason>,
    /// SHA-256 of the cti, first 16 bytes; `None` when the code did not decode, and for a
    /// manifest check.
    pub cti_hash: Option<[u8; 16]>,
    /// For a manifest check instead of a code: the trip and the reasons of its verdict.
    pub manifest: Option<ManifestAudit>,
    /// For a traceability record instead of a code (docs/tracing.md).
    pub trace: Option<TraceAudit>,
    /// The verify replica that made the record (its name as enrolled at this primary), for a
    /// record taken in by ReplicaService.SubmitAuditBatch; `None` when this node made it.
    pub replica: Option<String>,
}

/// What a traceability record is about: the numbers of `hcmr.v1.TraceAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceAction {
    /// This node's caller read a trip's chain.
    TripChain = 1,
    /// This node's caller traced a subject.
    Subject = 2,
    /// This node asked a peer for the trips listing a subject.
    QuerySent = 3,
    /// A peer asked this node, answered or refused.
    QueryAnswered = 4,
    /// This node queued an exposure notice for a peer (or for itself).
    NoticeSent = 5,
    /// This node took in an exposure notice (or refused one).
    NoticeReceived = 6,
}

impl TraceAction {
    /// The action of a number 1 to 6.
    pub fn from_number(n: u64) -> Option<TraceAction> {
        use TraceAction::*;
        [
            TripChain,
            Subject,
            QuerySent,
            QueryAnswered,
            NoticeSent,
            NoticeReceived,
        ]
        .into_iter()
        .find(|a| *a as u64 == n)
    }
}

/// What the audit log keeps of a traceability record: who asked, the trip or the subject as the
/// manifests hold it (4 bytes of keyed hash), a count, and why it was refused. No person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceAudit {
    /// What was done.
    pub action: TraceAction,
    /// Who asked: a caller's name, or a peer province's code.
    pub asked_by: String,
    /// The trip, when the record is about one.
    pub trip_id: Option<TripId>,
    /// The first 4 bytes of the keyed subject hash, when the record is about a subject.
    pub subject_prefix: Option<[u8; 4]>,
    /// Trips in the answer, or notices queued.
    pub count: u32,
    /// Why it was refused (a status message); empty when served.
    pub refusal: String,
}

/// What the audit log keeps of a manifest check: the trip, never a person (seats only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestAudit {
    /// The trip, when the manifest decoded (authentic only when `signature_verified`).
    pub trip_id: Option<TripId>,
    /// The version shown; 0 when the manifest did not decode.
    pub version: u64,
    /// Whether the signature verified under a key trusted for the origin.
    pub signature_verified: bool,
    /// The reasons of a STOP, in the verdict's order; empty for a PASS.
    pub reasons: Vec<ManifestAuditReason>,
}

/// One reason of a STOP as the audit log keeps it (no detail text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestAuditReason {
    /// Why.
    pub reason: ManifestReason,
    /// The person's seat (1 to 99), for a person's reason.
    pub seat: Option<u8>,
    /// The province whose feed revoked that person.
    pub issuer: Option<Province>,
}

/// Why a checkpoint id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointIdError {
    /// More than [`MAX_CHECKPOINT_ID`] characters.
    #[error("has {0} characters; at most {MAX_CHECKPOINT_ID} are accepted")]
    TooLong(usize),
    /// A control, bidirectional-control or zero-width character.
    #[error(
        "character {} at position {position} is not allowed (1 to {MAX_CHECKPOINT_ID} printable \
         characters; control, bidirectional-control and zero-width characters are refused)",
        crate::identity::code_point(*ch)
    )]
    Character {
        /// The character.
        ch: char,
        /// Its position, counting characters from 1.
        position: usize,
    },
}

/// Checks a checkpoint id as a caller sent it (issue 15 fault 8): at most
/// [`MAX_CHECKPOINT_ID`] characters, none of them a control character (ESC, CR, LF, ...), a
/// bidirectional control or a zero-width character. Refused, not cleaned or cut, so the audit
/// log holds exactly what the checkpoint said. Spaces around it are dropped; empty means none
/// given (recorded as `unnamed`).
///
/// # Errors
/// [`CheckpointIdError`], naming the character and its position.
pub fn check_checkpoint_id(raw: &str) -> Result<&str, CheckpointIdError> {
    let id = raw.trim_matches(' ');
    if let Some((position, ch)) = id
        .chars()
        .enumerate()
        .find(|(_, c)| {
            c.is_control()
                || crate::identity::is_bidi_control(*c)
                || crate::identity::is_zero_width(*c)
        })
        .map(|(i, c)| (i + 1, c))
    {
        return Err(CheckpointIdError::Character { ch, position });
    }
    let n = id.chars().count();
    if n > MAX_CHECKPOINT_ID {
        return Err(CheckpointIdError::TooLong(n));
    }
    Ok(id)
}

/// A checkpoint id as recorded: printable characters only, at most 64, `unnamed` when empty.
/// Ids from callers are checked first ([`check_checkpoint_id`]); this only guards the log.
pub fn checkpoint_id(raw: &str) -> String {
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CHECKPOINT_ID)
        .collect();
    if cleaned.is_empty() {
        "unnamed".to_string()
    } else {
        cleaned
    }
}

/// SHA-256 of a code id, first 16 bytes.
pub fn cti_hash(cti: &[u8]) -> [u8; 16] {
    let d = Sha256::digest(cti);
    let mut h = [0u8; 16];
    h.copy_from_slice(&d[..16]);
    h
}

impl AuditRecord {
    /// The record of a verdict.
    pub fn of(verdict: &Verdict, time: UnixTime, checkpoint: &str, via: &'static str) -> Self {
        AuditRecord {
            time,
            checkpoint_id: checkpoint_id(checkpoint),
            via,
            issuer: verdict.issuer,
            recognized: verdict.recognized(),
            reason: Some(verdict.reason),
            cti_hash: verdict.cti.as_ref().map(|c| cti_hash(c)),
            manifest: None,
            trace: None,
            replica: None,
        }
    }

    /// The record of a traceability step at `time`: `other` is the other province (a peer
    /// asked or answered, a notice's sender or receiver), `served` false when refused (then
    /// `trace.refusal` says why). The checkpoint id is who asked.
    pub fn of_trace(time: UnixTime, other: Option<Province>, trace: TraceAudit) -> Self {
        AuditRecord {
            time,
            checkpoint_id: checkpoint_id(&trace.asked_by),
            via: "grpc",
            issuer: other,
            recognized: trace.refusal.is_empty(),
            reason: None,
            cti_hash: None,
            manifest: None,
            trace: Some(trace),
            replica: None,
        }
    }

    /// The record of a manifest check: `verdict` on the manifest that claims `origin`, `trip_id`
    /// and `version` (from its decoding; `None` when it did not decode).
    pub fn of_manifest(
        verdict: &ManifestVerdict,
        decoded: Option<(Province, TripId, u64)>,
        signature_verified: bool,
        time: UnixTime,
        checkpoint: &str,
        via: &'static str,
    ) -> Self {
        AuditRecord {
            time,
            checkpoint_id: checkpoint_id(checkpoint),
            via,
            issuer: decoded.map(|(p, _, _)| p),
            recognized: verdict.passed(),
            reason: None,
            cti_hash: None,
            manifest: Some(ManifestAudit {
                trip_id: decoded.map(|(_, t, _)| t),
                version: decoded.map_or(0, |(_, _, v)| v),
                signature_verified,
                reasons: verdict
                    .reasons()
                    .iter()
                    .map(|r| ManifestAuditReason {
                        reason: r.reason,
                        seat: r.seat.and_then(|s| u8::try_from(s).ok()),
                        issuer: r.issuer,
                    })
                    .collect(),
            }),
            trace: None,
            replica: None,
        }
    }

    /// The storage encoding.
    pub fn to_record(&self) -> Vec<u8> {
        crate::cbor::encode(&self.to_value())
    }

    fn to_value(&self) -> Value {
        let mut items = vec![
            Value::Integer(Integer::from(self.time.secs())),
            Value::Text(self.checkpoint_id.clone()),
            Value::Text(self.via.to_string()),
            Value::Integer(Integer::from(self.issuer.map_or(0, |p| p.code()))),
            Value::Bool(self.recognized),
            Value::Integer(Integer::from(self.reason.map_or(0, |r| r as u8))),
            Value::Bytes(self.cti_hash.map(|h| h.to_vec()).unwrap_or_default()),
        ];
        // Optional elements in order (manifest, trace, replica); a later one present pads the
        // earlier absent ones with null, and trailing absent ones are left out, so a record
        // without the later kinds keeps the encoding it had before they existed.
        let optional = [
            self.manifest.as_ref().map(ManifestAudit::to_value),
            self.trace.as_ref().map(TraceAudit::to_value),
            self.replica.as_ref().map(|r| Value::Text(r.clone())),
        ];
        let present = optional
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        items.extend(
            optional
                .into_iter()
                .take(present)
                .map(|v| v.unwrap_or(Value::Null)),
        );
        Value::Array(items)
    }

    /// The storage encoding of several records: a CBOR array of [`AuditRecord::to_record`]
    /// arrays.
    pub fn pack<'a>(records: impl IntoIterator<Item = &'a AuditRecord>) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(
            records.into_iter().map(AuditRecord::to_value).collect(),
        ))
    }

    /// Reads a stored value: one record ([`AuditRecord::to_record`]) or several
    /// ([`AuditRecord::pack`]); `None` when it does not decode.
    pub fn unpack(bytes: &[u8]) -> Option<Vec<Self>> {
        let Value::Array(a) = crate::cbor::decode_exact(bytes).ok()? else {
            return None;
        };
        if a.first().is_some_and(|v| matches!(v, Value::Array(_))) {
            a.iter().map(AuditRecord::from_value).collect()
        } else {
            Some(vec![AuditRecord::from_items(&a)?])
        }
    }

    /// Reads [`AuditRecord::to_record`] bytes; `None` when they do not decode.
    pub fn from_record(bytes: &[u8]) -> Option<Self> {
        AuditRecord::from_value(&crate::cbor::decode_exact(bytes).ok()?)
    }

    fn from_value(v: &Value) -> Option<Self> {
        let Value::Array(a) = v else {
            return None;
        };
        AuditRecord::from_items(a)
    }

    fn from_items(a: &[Value]) -> Option<Self> {
        if a.len() < 7 || a.len() > 10 {
            return None;
        }
        let (a, optional) = a.split_at(7);
        let manifest = match optional.first() {
            None | Some(Value::Null) => None,
            Some(m) => Some(ManifestAudit::from_value(m)?),
        };
        let trace = match optional.get(1) {
            None | Some(Value::Null) => None,
            Some(t) => Some(TraceAudit::from_value(t)?),
        };
        let replica = match optional.get(2) {
            None => None,
            Some(Value::Text(r)) if !r.is_empty() => Some(r.clone()),
            Some(_) => return None,
        };
        // A null is padding only: never the last element.
        if optional.last().is_some_and(Value::is_null) {
            return None;
        }
        let [Value::Integer(t), Value::Text(cp), Value::Text(via), Value::Integer(iss), Value::Bool(ok), Value::Integer(r), Value::Bytes(h)] =
            a
        else {
            return None;
        };
        // A code's reason is never 0; a manifest check's always is.
        // A trace record's reason is 0 too.
        let reason = match (
            u8::try_from(*r).ok()?,
            manifest.is_some() || trace.is_some(),
        ) {
            (0, true) => None,
            (r, false) => Some(Reason::from_u8(r)?),
            _ => return None,
        };
        let issuer = match u32::try_from(*iss).ok()? {
            0 => None,
            c => Some(Province::from_code(c).ok()?),
        };
        Some(AuditRecord {
            time: UnixTime::from_secs(u64::try_from(*t).ok()?),
            checkpoint_id: cp.clone(),
            via: if via == "http" { "http" } else { "grpc" },
            issuer,
            recognized: *ok,
            reason,
            cti_hash: match h.len() {
                0 => None,
                _ => Some(h.as_slice().try_into().ok()?),
            },
            manifest,
            trace,
            replica,
        })
    }
}

impl TraceAudit {
    fn to_value(&self) -> Value {
        Value::Array(vec![
            Value::Integer(Integer::from(self.action as u8)),
            Value::Text(self.asked_by.clone()),
            Value::Bytes(self.trip_id.map(|t| t.0.to_vec()).unwrap_or_default()),
            Value::Bytes(self.subject_prefix.map(|s| s.to_vec()).unwrap_or_default()),
            Value::Integer(Integer::from(self.count)),
            Value::Text(self.refusal.clone()),
        ])
    }

    fn from_value(v: &Value) -> Option<Self> {
        let Value::Array(a) = v else {
            return None;
        };
        let [Value::Integer(action), Value::Text(asked_by), Value::Bytes(trip), Value::Bytes(subject), Value::Integer(count), Value::Text(refusal)] =
            a.as_slice()
        else {
            return None;
        };
        Some(TraceAudit {
            action: TraceAction::from_number(u64::try_from(*action).ok()?)?,
            asked_by: asked_by.clone(),
            trip_id: match trip.len() {
                0 => None,
                _ => Some(TripId(trip.as_slice().try_into().ok()?)),
            },
            subject_prefix: match subject.len() {
                0 => None,
                _ => Some(subject.as_slice().try_into().ok()?),
            },
            count: u32::try_from(*count).ok()?,
            refusal: refusal.clone(),
        })
    }
}

impl ManifestAudit {
    fn to_value(&self) -> Value {
        let reasons = self
            .reasons
            .iter()
            .map(|r| {
                Value::Array(vec![
                    Value::Text(r.reason.as_str().to_string()),
                    Value::Integer(Integer::from(r.seat.unwrap_or(0))),
                    Value::Integer(Integer::from(r.issuer.map_or(0, |p| p.code()))),
                ])
            })
            .collect();
        Value::Array(vec![
            Value::Bytes(self.trip_id.map(|t| t.0.to_vec()).unwrap_or_default()),
            Value::Integer(Integer::from(self.version)),
            Value::Bool(self.signature_verified),
            Value::Array(reasons),
        ])
    }

    fn from_value(v: &Value) -> Option<Self> {
        let Value::Array(a) = v else {
            return None;
        };
        let [Value::Bytes(trip), Value::Integer(version), Value::Bool(verified), Value::Array(rs)] =
            a.as_slice()
        else {
            return None;
        };
        let reasons = rs
            .iter()
            .map(|r| {
                let Value::Array(r) = r else {
                    return None;
                };
                let [Value::Text(why), Value::Integer(seat), Value::Integer(iss)] = r.as_slice()
                else {
                    return None;
                };
                Some(ManifestAuditReason {
                    reason: *ManifestReason::ALL.iter().find(|x| x.as_str() == why)?,
                    seat: match u8::try_from(*seat).ok()? {
                        0 => None,
                        s => Some(s),
                    },
                    issuer: match u32::try_from(*iss).ok()? {
                        0 => None,
                        c => Some(Province::from_code(c).ok()?),
                    },
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(ManifestAudit {
            trip_id: match trip.len() {
                0 => None,
                _ => Some(TripId(trip.as_slice().try_into().ok()?)),
            },
            version: u64::try_from(*version).ok()?,
            signature_verified: *verified,
            reasons,
        })
    }
}

/// Calls the node refused before running them, of one kind in one second: no or unknown
/// credentials (UNAUTHENTICATED), a caller without the role or a peer without an agreement
/// (PERMISSION_DENIED), or a caller over its rate (RESOURCE_EXHAUSTED). Holds no token and
/// nothing of the request. Refusals of the same second, RPC, outcome, caller and address are
/// one record with their `count` ([`DenialTally`]), so a caller refused as fast as it calls
/// adds a record a second, not one a call.
///
/// Storage encoding: CBOR `[time, rpc, outcome, who, remote, count]`; `[time, rpc, outcome,
/// who, remote]` (written before refusals were counted) reads as a count of 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessDenial {
    /// The second the calls were refused in.
    pub time: UnixTime,
    /// The RPC, as its path (`/hcmr.v1.HealthCodeService/IssueHealthCode`), or the page's API
    /// path.
    pub rpc: String,
    /// The gRPC status code name: `UNAUTHENTICATED`, `PERMISSION_DENIED`, `RESOURCE_EXHAUSTED`
    /// (a rate, a concurrency or a connection limit) or `DEADLINE_EXCEEDED` (a request body that
    /// did not arrive within `limits.body_timeout_secs`).
    pub outcome: String,
    /// Who: `caller <name>`, `peer <province>`, or `anonymous`.
    pub who: String,
    /// The remote IP address, when known.
    pub remote: String,
    /// How many such calls were refused in that second: 1 or more.
    pub count: u64,
}

impl AccessDenial {
    /// The storage encoding.
    pub fn to_record(&self) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(vec![
            Value::Integer(Integer::from(self.time.secs())),
            Value::Text(self.rpc.clone()),
            Value::Text(self.outcome.clone()),
            Value::Text(self.who.clone()),
            Value::Text(self.remote.clone()),
            Value::Integer(Integer::from(self.count)),
        ]))
    }

    /// Reads [`AccessDenial::to_record`] bytes (or the older form without the count); `None`
    /// when they do not decode or the count is 0.
    pub fn from_record(bytes: &[u8]) -> Option<Self> {
        let Value::Array(a) = crate::cbor::decode_exact(bytes).ok()? else {
            return None;
        };
        let (fields, count) = match a.as_slice() {
            [fields @ .., Value::Integer(n)] if fields.len() == 5 => {
                (fields, u64::try_from(*n).ok().filter(|n| *n >= 1)?)
            }
            fields => (fields, 1),
        };
        let [Value::Integer(t), Value::Text(rpc), Value::Text(outcome), Value::Text(who), Value::Text(remote)] =
            fields
        else {
            return None;
        };
        Some(AccessDenial {
            time: UnixTime::from_secs(u64::try_from(*t).ok()?),
            rpc: rpc.clone(),
            outcome: outcome.clone(),
            who: who.clone(),
            remote: remote.clone(),
            count,
        })
    }
}

/// Most kinds of refusal (second, RPC, outcome, caller, address) a [`DenialTally`] counts
/// apart; refusals of further kinds are counted together under [`OTHER`] with their second and
/// outcome, so a flood from many addresses or with many names stays a bounded map.
pub const MAX_TALLY_KINDS: usize = 4096;

/// The RPC, caller and address of the record that counts the refusals beyond
/// [`MAX_TALLY_KINDS`].
pub const OTHER: &str = "(other)";

/// Refused calls counted by kind between two writes of the access log (see [`AccessDenial`]).
/// Memory: at most [`MAX_TALLY_KINDS`] kinds, plus one [`OTHER`] record per second and outcome.
#[derive(Debug, Default)]
pub struct DenialTally {
    /// Kind (a record with count 0) -> refusals.
    counts: std::collections::HashMap<AccessDenial, u64>,
}

impl DenialTally {
    /// Counts `d` (its `count` refusals, at least 1); true when the tally was empty before.
    pub fn add(&mut self, mut d: AccessDenial) -> bool {
        let n = std::mem::take(&mut d.count).max(1);
        let was_empty = self.counts.is_empty();
        if self.counts.len() >= MAX_TALLY_KINDS && !self.counts.contains_key(&d) {
            d = AccessDenial {
                time: d.time,
                rpc: OTHER.into(),
                outcome: d.outcome,
                who: OTHER.into(),
                remote: OTHER.into(),
                count: 0,
            };
        }
        let c = self.counts.entry(d).or_insert(0);
        *c = c.saturating_add(n);
        was_empty
    }

    /// Whether nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The records counted so far, by time (then RPC, caller, address, outcome), and an empty
    /// tally.
    pub fn take(&mut self) -> Vec<AccessDenial> {
        let mut out: Vec<AccessDenial> = self
            .counts
            .drain()
            .map(|(mut d, n)| {
                d.count = n;
                d
            })
            .collect();
        out.sort_by(|a, b| {
            (a.time, &a.rpc, &a.who, &a.remote, &a.outcome)
                .cmp(&(b.time, &b.rpc, &b.who, &b.remote, &b.outcome))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_query_and_a_chain_read_round_trip_beside_a_code_record() {
        let sc = Province::from_code(510000).unwrap();
        let refused = AuditRecord::of_trace(
            UnixTime::from_secs(1_700_000_000),
            Some(Province::from_code(330000).unwrap()),
            TraceAudit {
                action: TraceAction::QueryAnswered,
                asked_by: "330000".into(),
                trip_id: None,
                subject_prefix: Some([0xca, 0x5e, 0, 1]),
                count: 0,
                refusal: "no agreement in force lets 330000 trace here".into(),
            },
        );
        assert!(!refused.recognized);
        assert_eq!(refused.checkpoint_id, "330000");
        assert_eq!((refused.reason, refused.cti_hash), (None, None));
        let bytes = refused.to_record();
        assert_eq!(AuditRecord::from_record(&bytes), Some(refused.clone()));
        // Nine elements, the eighth null.
        let Value::Array(items) = crate::cbor::decode_exact(&bytes).unwrap() else {
            panic!("not an array")
        };
        assert_eq!(items.len(), 9);
        assert_eq!(items[7], Value::Null);
        let sent = AuditRecord::of_trace(
            UnixTime::from_secs(1_700_000_001),
            None,
            TraceAudit {
                action: TraceAction::TripChain,
                asked_by: "platform".into(),
                trip_id: Some(TripId([7; 8])),
                subject_prefix: None,
                count: 12,
                refusal: String::new(),
            },
        );
        assert!(sent.recognized);
        let code = AuditRecord {
            time: UnixTime::from_secs(1_700_000_001),
            checkpoint_id: "gate".into(),
            via: "grpc",
            issuer: Some(sc),
            recognized: true,
            reason: Some(Reason::Ok),
            cti_hash: Some([1; 16]),
            manifest: None,
            trace: None,
            replica: None,
        };
        assert_eq!(
            AuditRecord::unpack(&AuditRecord::pack([&refused, &sent, &code])),
            Some(vec![refused, sent, code])
        );
        for n in 1..=6 {
            assert_eq!(TraceAction::from_number(n).map(|a| a as u64), Some(n));
        }
        assert_eq!(TraceAction::from_number(0), None);
        assert_eq!(TraceAction::from_number(7), None);
    }

    #[test]
    fn record_round_trip_and_checkpoint_ids() {
        let r = AuditRecord {
            time: UnixTime::from_secs(1_700_000_000),
            checkpoint_id: checkpoint_id("  gate-3\n"),
            via: "http",
            issuer: Some(Province::from_code(510000).unwrap()),
            recognized: false,
            reason: Some(Reason::Revoked),
            cti_hash: Some(cti_hash(&[7; 16])),
            manifest: None,
            trace: None,
            replica: None,
        };
        assert_eq!(r.checkpoint_id, "gate-3");
        assert_eq!(AuditRecord::from_record(&r.to_record()), Some(r.clone()));
        assert_eq!(checkpoint_id(""), "unnamed");
        assert_eq!(checkpoint_id(&"x".repeat(100)).len(), 64);
        assert_eq!(
            hex::encode(cti_hash(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223",
            "SHA-256 of \"abc\" (FIPS 180-2), first 16 bytes"
        );
        assert_eq!(AuditRecord::from_record(b"\x80"), None);
        // Packed and single values.
        let mut other = r.clone();
        other.cti_hash = None;
        other.issuer = None;
        assert_eq!(
            AuditRecord::unpack(&AuditRecord::pack([&r, &other])),
            Some(vec![r.clone(), other.clone()])
        );
        assert_eq!(AuditRecord::unpack(&r.to_record()), Some(vec![r.clone()]));
        // A pack is an array of the record arrays: 0x82 (array of 2), then 0x87 (array of 7).
        assert_eq!(&AuditRecord::pack([&r, &other])[..2], &[0x82, 0x87]);
        assert_eq!(AuditRecord::unpack(b"\x80"), None);
        assert_eq!(AuditRecord::unpack(b"\x81\x80"), None);
    }

    #[test]
    fn a_manifest_check_record_round_trips_beside_code_records() {
        let sc = Province::from_code(510000).unwrap();
        let stop = ManifestVerdict::Stop(crate::manifest::ManifestStop {
            trip_id: Some(TripId([0x7e; 8])),
            version: Some(2),
            reasons: vec![
                crate::manifest::StopReason {
                    reason: ManifestReason::Superseded,
                    seat: None,
                    issuer: None,
                    detail: "version 2 shown; version 3 was seen here".into(),
                },
                crate::manifest::StopReason {
                    reason: ManifestReason::Revoked,
                    seat: Some(7),
                    issuer: Some(sc),
                    detail: "seat 7".into(),
                },
            ],
        });
        let time = UnixTime::from_secs(1_700_000_000);
        let r = AuditRecord::of_manifest(
            &stop,
            Some((sc, TripId([0x7e; 8]), 2)),
            true,
            time,
            "anhui-border-1",
            "grpc",
        );
        assert_eq!((r.issuer, r.recognized, r.reason), (Some(sc), false, None));
        let m = r.manifest.as_ref().unwrap();
        assert_eq!((m.trip_id, m.version), (Some(TripId([0x7e; 8])), 2));
        assert_eq!(
            m.reasons,
            vec![
                ManifestAuditReason {
                    reason: ManifestReason::Superseded,
                    seat: None,
                    issuer: None
                },
                ManifestAuditReason {
                    reason: ManifestReason::Revoked,
                    seat: Some(7),
                    issuer: Some(sc)
                },
            ]
        );
        // The detail text is not kept: nothing a decoder said about the input.
        assert!(!String::from_utf8_lossy(&r.to_record()).contains("version 3"));
        let undecoded = AuditRecord::of_manifest(
            &ManifestVerdict::Stop(crate::manifest::ManifestStop {
                trip_id: None,
                version: None,
                reasons: vec![crate::manifest::StopReason {
                    reason: ManifestReason::Malformed,
                    seat: None,
                    issuer: None,
                    detail: "prefix.foreign".into(),
                }],
            }),
            None,
            false,
            time,
            "",
            "grpc",
        );
        let code = AuditRecord {
            time,
            checkpoint_id: "gate".into(),
            via: "grpc",
            issuer: Some(sc),
            recognized: true,
            reason: Some(Reason::Ok),
            cti_hash: None,
            manifest: None,
            trace: None,
            replica: None,
        };
        assert_eq!(
            AuditRecord::unpack(&AuditRecord::pack([&r, &code, &undecoded])),
            Some(vec![r.clone(), code.clone(), undecoded])
        );
        assert_eq!(AuditRecord::from_record(&r.to_record()), Some(r.clone()));
        // A trace record, alone and beside the others.
        let trace = AuditRecord::of_trace(
            time,
            None,
            TraceAudit {
                action: TraceAction::TripChain,
                asked_by: "caller platform".into(),
                trip_id: Some(TripId([7; 8])),
                subject_prefix: None,
                count: 9,
                refusal: String::new(),
            },
        );
        assert_eq!(trace.checkpoint_id, "caller platform");
        assert!(trace.recognized);
        assert_eq!(
            AuditRecord::unpack(&AuditRecord::pack([&code, &trace, &r])),
            Some(vec![code.clone(), trace.clone(), r.clone()])
        );
        let mut refused = trace.clone();
        if let Some(t) = refused.trace.as_mut() {
            t.subject_prefix = Some([1, 2, 3, 4]);
            t.trip_id = None;
            t.refusal = "NOT_FOUND".into();
        }
        assert_eq!(
            AuditRecord::from_record(&refused.to_record()),
            Some(refused)
        );
        // A code record with reason 0, or a manifest record with a code's reason: not records.
        let mut bad = code.clone();
        bad.reason = None;
        assert_eq!(AuditRecord::from_record(&bad.to_record()), None);
        let mut bad = r;
        bad.reason = Some(Reason::Ok);
        assert_eq!(AuditRecord::from_record(&bad.to_record()), None);
    }

    #[test]
    fn a_trace_record_round_trips_beside_code_and_manifest_records() {
        let ah = Province::from_code(340000).unwrap();
        let time = UnixTime::from_secs(1_700_000_000);
        let sent = AuditRecord::of_trace(
            time,
            Some(ah),
            TraceAudit {
                action: TraceAction::NoticeSent,
                asked_by: "510000".into(),
                trip_id: Some(TripId([0x7e; 8])),
                subject_prefix: Some([0xa1, 0xb2, 0xc3, 0xd4]),
                count: 1,
                refusal: String::new(),
            },
        );
        assert_eq!(
            (
                sent.recognized,
                sent.reason,
                sent.issuer,
                sent.checkpoint_id.as_str()
            ),
            (true, None, Some(ah), "510000")
        );
        let refused = AuditRecord::of_trace(
            time,
            Some(ah),
            TraceAudit {
                action: TraceAction::NoticeReceived,
                asked_by: "340000".into(),
                trip_id: None,
                subject_prefix: None,
                count: 0,
                refusal: "no agreement allows tracing".into(),
            },
        );
        assert!(!refused.recognized);
        let code = AuditRecord {
            time,
            checkpoint_id: "gate".into(),
            via: "grpc",
            issuer: Some(ah),
            recognized: true,
            reason: Some(Reason::Ok),
            cti_hash: None,
            manifest: None,
            trace: None,
            replica: None,
        };
        assert_eq!(
            AuditRecord::unpack(&AuditRecord::pack([&sent, &code, &refused])),
            Some(vec![sent.clone(), code, refused])
        );
        assert_eq!(
            AuditRecord::from_record(&sent.to_record()),
            Some(sent.clone())
        );
        let mut bad = sent;
        bad.reason = Some(Reason::Ok);
        assert_eq!(AuditRecord::from_record(&bad.to_record()), None);
        assert_eq!(
            TraceAction::from_number(6),
            Some(TraceAction::NoticeReceived)
        );
        assert_eq!(TraceAction::from_number(7), None);
    }

    #[test]
    fn a_replica_record_round_trips_and_older_encodings_still_read() {
        let sc = Province::from_code(510000).unwrap();
        let time = UnixTime::from_secs(1_700_000_000);
        let code = AuditRecord {
            time,
            checkpoint_id: "gate".into(),
            via: "grpc",
            issuer: Some(sc),
            recognized: true,
            reason: Some(Reason::Ok),
            cti_hash: Some([3; 16]),
            manifest: None,
            trace: None,
            replica: None,
        };
        // The encoding written before replicas (and still written for a record made here):
        // seven elements, byte for byte as the code wrote them.
        let older = crate::cbor::encode(&Value::Array(vec![
            Value::Integer(Integer::from(1_700_000_000u64)),
            Value::Text("gate".into()),
            Value::Text("grpc".into()),
            Value::Integer(Integer::from(510000u32)),
            Value::Bool(true),
            Value::Integer(Integer::from(Reason::Ok as u8)),
            Value::Bytes(vec![3; 16]),
        ]));
        assert_eq!(code.to_record(), older);
        assert_eq!(AuditRecord::from_record(&older), Some(code.clone()));

        // From a replica: a tenth element, nulls for the manifest and trace.
        let from_r1 = AuditRecord {
            replica: Some("sc-r1".into()),
            ..code.clone()
        };
        let bytes = from_r1.to_record();
        let Value::Array(items) = crate::cbor::decode_exact(&bytes).unwrap() else {
            panic!("not an array")
        };
        assert_eq!(items.len(), 10);
        assert_eq!((&items[7], &items[8]), (&Value::Null, &Value::Null));
        assert_eq!(items[9], Value::Text("sc-r1".into()));
        assert_eq!(AuditRecord::from_record(&bytes), Some(from_r1.clone()));

        // A manifest check and a trace record from a replica, packed beside older forms.
        let manifest = AuditRecord {
            replica: Some("sc-r2".into()),
            ..AuditRecord::of_manifest(
                &ManifestVerdict::Stop(crate::manifest::ManifestStop {
                    trip_id: Some(TripId([9; 8])),
                    version: Some(4),
                    reasons: vec![crate::manifest::StopReason {
                        reason: ManifestReason::Revoked,
                        seat: Some(2),
                        issuer: Some(sc),
                        detail: "seat 2".into(),
                    }],
                }),
                Some((sc, TripId([9; 8]), 4)),
                true,
                time,
                "bridge",
                "http",
            )
        };
        let trace = AuditRecord {
            replica: Some("sc-r1".into()),
            ..AuditRecord::of_trace(
                time,
                None,
                TraceAudit {
                    action: TraceAction::TripChain,
                    asked_by: "platform".into(),
                    trip_id: Some(TripId([7; 8])),
                    subject_prefix: None,
                    count: 2,
                    refusal: String::new(),
                },
            )
        };
        let Value::Array(m_items) = crate::cbor::decode_exact(&manifest.to_record()).unwrap()
        else {
            panic!("not an array")
        };
        assert_eq!((m_items.len(), &m_items[8]), (10, &Value::Null));
        let mut plain_trace = trace.clone();
        plain_trace.replica = None;
        let all = [&code, &from_r1, &manifest, &trace, &plain_trace];
        assert_eq!(
            AuditRecord::unpack(&AuditRecord::pack(all)),
            Some(all.into_iter().cloned().collect())
        );

        // A null as the last element, an empty or non-text replica, or eleven elements: not a
        // record.
        let with = |extra: Vec<Value>| {
            let Value::Array(mut items) = crate::cbor::decode_exact(&older).unwrap() else {
                panic!("not an array")
            };
            items.extend(extra);
            crate::cbor::encode(&Value::Array(items))
        };
        for bad in [
            vec![Value::Null],
            vec![Value::Null, Value::Null],
            vec![Value::Null, Value::Null, Value::Text(String::new())],
            vec![Value::Null, Value::Null, Value::Integer(Integer::from(1))],
            vec![Value::Null, Value::Null, Value::Null],
            vec![
                Value::Null,
                Value::Null,
                Value::Text("r".into()),
                Value::Text("r".into()),
            ],
        ] {
            assert_eq!(
                AuditRecord::from_record(&with(bad.clone())),
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn denial_round_trip() {
        let d = AccessDenial {
            time: UnixTime::from_secs(1_700_000_000),
            rpc: "/hcmr.v1.HealthCodeService/IssueHealthCode".to_string(),
            outcome: "PERMISSION_DENIED".to_string(),
            who: "caller gate-1".to_string(),
            remote: "127.0.0.1".to_string(),
            count: 35_000,
        };
        assert_eq!(AccessDenial::from_record(&d.to_record()), Some(d.clone()));
        assert_eq!(AccessDenial::from_record(b"\x80"), None);
        // The older form, without a count, is one refusal; a count of 0 is no record.
        let older = crate::cbor::encode(&Value::Array(vec![
            Value::Integer(Integer::from(d.time.secs())),
            Value::Text(d.rpc.clone()),
            Value::Text(d.outcome.clone()),
            Value::Text(d.who.clone()),
            Value::Text(d.remote.clone()),
        ]));
        let one = AccessDenial {
            count: 1,
            ..d.clone()
        };
        assert_eq!(AccessDenial::from_record(&older), Some(one));
        let zero = AccessDenial { count: 0, ..d };
        assert_eq!(AccessDenial::from_record(&zero.to_record()), None);
    }

    fn refused(time: u64, who: &str, remote: &str) -> AccessDenial {
        AccessDenial {
            time: UnixTime::from_secs(time),
            rpc: "/hcmr.v1.HealthCodeService/VerifyHealthCode".into(),
            outcome: "UNAUTHENTICATED".into(),
            who: who.into(),
            remote: remote.into(),
            count: 1,
        }
    }

    #[test]
    fn a_tally_counts_refusals_by_second_and_kind_in_bounded_memory() {
        let mut t = DenialTally::default();
        assert!(t.add(refused(100, "anonymous", "10.0.0.1")));
        for _ in 0..34_999 {
            assert!(!t.add(refused(100, "anonymous", "10.0.0.1")));
        }
        t.add(refused(101, "anonymous", "10.0.0.1"));
        t.add(refused(100, "caller gate-1", "10.0.0.1"));
        t.add(AccessDenial {
            count: 5,
            ..refused(100, "anonymous", "10.0.0.2")
        });
        let got = t.take();
        assert!(t.is_empty());
        let want = [
            (100, "anonymous", "10.0.0.1", 35_000),
            (100, "anonymous", "10.0.0.2", 5),
            (100, "caller gate-1", "10.0.0.1", 1),
            (101, "anonymous", "10.0.0.1", 1),
        ];
        let seen: Vec<(u64, &str, &str, u64)> = got
            .iter()
            .map(|d| (d.time.secs(), d.who.as_str(), d.remote.as_str(), d.count))
            .collect();
        assert_eq!(seen, want);

        // A flood from more addresses than the tally keeps apart: the rest in one record.
        let addresses = MAX_TALLY_KINDS + 1_000;
        for a in 0..addresses {
            t.add(refused(
                200,
                "anonymous",
                &format!("10.1.{}.{}", a / 256, a % 256),
            ));
        }
        t.add(refused(200, "anonymous", "10.1.0.0"));
        let got = t.take();
        assert_eq!(got.len(), MAX_TALLY_KINDS + 1);
        assert_eq!(
            got.iter().map(|d| d.count).sum::<u64>(),
            addresses as u64 + 1
        );
        let other: Vec<_> = got.iter().filter(|d| d.remote == OTHER).collect();
        assert_eq!(other.len(), 1);
        assert_eq!(
            (other[0].rpc.as_str(), other[0].who.as_str()),
            (OTHER, OTHER)
        );
        assert_eq!(other[0].count, 1_000);
        let first = got.iter().find(|d| d.remote == "10.1.0.0").unwrap();
        assert_eq!(
            first.count, 2,
            "a kind already counted keeps its own record"
        );
    }
}

//! The check report (docs/transport.md section 6): what a checkpoint's node tells the trip's
//! origin about one check, signed by the checking node as an untagged COSE_Sign1 with the
//! manifest's envelope, sent as bytes over federation (no prefix, no Base45).
//!
//! ```text
//! report = [trip_id, version, manifest_hash, checker, checkpoint, checked_at, verdict, reasons]
//! reason = [number, seat / null, issuer / null]
//! ```

use ciborium::value::Value;

use super::record::{self, Envelope, RecordError, RecordMismatch, MANIFEST_HASH_LEN};
use super::{ManifestReason, ManifestVerdict, SignedManifest, StopReason, TripId, MAX_PEOPLE};
use crate::cbor::uint;
use crate::code::cose;
use crate::keys::{Kid, NodeKey, PublicKey};
use crate::province::Province;
use crate::time::UnixTime;

/// Elements of the report array.
pub const REPORT_FIELDS: usize = 8;
/// Most reasons in one report: every reason of section 5's table once, and one per seat.
pub const MAX_REASONS: usize = ManifestReason::ALL.len() + MAX_PEOPLE;
/// Largest report accepted, in COSE bytes: the largest valid one (114 reasons, a 64-byte
/// checkpoint) takes 1,197 bytes.
pub const MAX_REPORT_BYTES: usize = 2048;

impl ManifestReason {
    /// The reason's number in a report: its row in section 5's table, 1 (`malformed`) to 15
    /// (`revoked`), the order of [`ManifestReason::ALL`].
    pub fn number(self) -> u8 {
        let i = ManifestReason::ALL
            .iter()
            .position(|r| *r == self)
            .expect("ALL holds every reason");
        (i + 1) as u8
    }

    /// The reason of a number ([`ManifestReason::number`]); `None` outside 1 to 15.
    pub fn from_number(n: u64) -> Option<ManifestReason> {
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        ManifestReason::ALL.get(i).copied()
    }
}

/// A checkpoint's name: 1 to 64 bytes (UTF-8) under the manifest's text rule (no control or
/// bidirectional-control character, something visible), e.g. `皖苏界G40收费站`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint(String);

impl Checkpoint {
    /// Most bytes of the text.
    pub const MAX_BYTES: usize = 64;

    /// Checks the text.
    ///
    /// # Errors
    /// [`RecordError::Field`] (`checkpoint`) when empty, invisible or too long;
    /// [`RecordError::TextCharacter`] for a refused character.
    pub fn new(s: impl Into<String>) -> Result<Checkpoint, RecordError> {
        let s = s.into();
        record::check(&s, "checkpoint", Self::MAX_BYTES, false)?;
        Ok(Checkpoint(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The verdict reported: 1 PASS, 2 STOP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportVerdict {
    /// The green lane.
    Pass = 1,
    /// Stopped, with at least one reason.
    Stop = 2,
}

/// One reason of a reported STOP: the reason, and for a person's reason the seat and the
/// province whose feed revoked them. No free text: the detail stays at the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportReason {
    /// Why.
    pub reason: ManifestReason,
    /// The seat (1 to 99), for a person's reason.
    pub seat: Option<usize>,
    /// The issuing province, for a person's reason.
    pub issuer: Option<Province>,
}

impl From<&StopReason> for ReportReason {
    fn from(r: &StopReason) -> Self {
        ReportReason {
            reason: r.reason,
            seat: r.seat,
            issuer: r.issuer,
        }
    }
}

/// A check report's content (docs/transport.md section 6), in array order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The trip checked.
    pub trip_id: TripId,
    /// The version shown at the checkpoint.
    pub version: u64,
    /// SHA-256 of the COSE bytes shown ([`super::manifest_hash`]).
    pub manifest_hash: [u8; MANIFEST_HASH_LEN],
    /// The checking node's province (the signer's).
    pub checker: Province,
    /// Where.
    pub checkpoint: Checkpoint,
    /// When, by the checking node's clock.
    pub checked_at: UnixTime,
    /// PASS or STOP.
    pub verdict: ReportVerdict,
    /// None for a PASS; 1 to [`MAX_REASONS`] for a STOP, in the verdict's order.
    pub reasons: Vec<ReportReason>,
}

impl CheckReport {
    /// The report of `verdict` on the decoded manifest `shown`, checked by `checker`'s node at
    /// `checkpoint` at `checked_at`.
    pub fn of_verdict(
        shown: &SignedManifest,
        verdict: &ManifestVerdict,
        checker: Province,
        checkpoint: Checkpoint,
        checked_at: UnixTime,
    ) -> CheckReport {
        CheckReport {
            trip_id: shown.manifest.trip_id,
            version: shown.manifest.version,
            manifest_hash: record::manifest_hash(shown),
            checker,
            checkpoint,
            checked_at,
            verdict: if verdict.passed() {
                ReportVerdict::Pass
            } else {
                ReportVerdict::Stop
            },
            reasons: verdict.reasons().iter().map(ReportReason::from).collect(),
        }
    }

    /// The payload: the array of section 6 in deterministic encoding (RFC 8949 section
    /// 4.2.1).
    pub fn to_cbor(&self) -> Vec<u8> {
        let null_or = |v: Option<u64>| v.map_or(Value::Null, uint);
        let reasons = self
            .reasons
            .iter()
            .map(|r| {
                Value::Array(vec![
                    uint(u64::from(r.reason.number())),
                    null_or(r.seat.map(|s| s as u64)),
                    null_or(r.issuer.map(|p| u64::from(p.code()))),
                ])
            })
            .collect();
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.trip_id.0.to_vec()),
            uint(self.version),
            Value::Bytes(self.manifest_hash.to_vec()),
            uint(u64::from(self.checker.code())),
            Value::Text(self.checkpoint.as_str().to_string()),
            uint(self.checked_at.secs()),
            uint(self.verdict as u64),
            Value::Array(reasons),
        ]))
    }

    /// Decodes and checks a payload: exactly one canonical array of 8 elements, each of its
    /// type and rule.
    ///
    /// # Errors
    /// A `record.*` [`RecordError`] naming the field.
    pub fn from_cbor(bytes: &[u8]) -> Result<CheckReport, RecordError> {
        record::decode_array::<_, REPORT_FIELDS>(bytes, "report", |items| {
            let [trip_id, version, hash, checker, checkpoint, checked_at, verdict, reasons] = items;
            let report = CheckReport {
                trip_id: record::trip_id(trip_id)?,
                version: record::version(version)?,
                manifest_hash: record::hash(hash)?,
                checker: record::province(checker, "checker")?,
                checkpoint: Checkpoint(record::text(
                    checkpoint,
                    "checkpoint",
                    Checkpoint::MAX_BYTES,
                    false,
                )?),
                checked_at: record::time(checked_at, "checked_at")?,
                verdict: match record::small(verdict, "verdict", 1, 2)? {
                    1 => ReportVerdict::Pass,
                    _ => ReportVerdict::Stop,
                },
                reasons: record::list(reasons, "reasons", MAX_REASONS)?
                    .into_iter()
                    .map(reason)
                    .collect::<Result<_, _>>()?,
            };
            report.check()?;
            Ok(report)
        })
    }

    /// Checks the rules the types do not hold: a PASS has no reasons, a STOP at least one and
    /// at most [`MAX_REASONS`]; version at least 1; `checked_at` at most 9999-12-31; seats 1
    /// to 99.
    ///
    /// # Errors
    /// The first [`RecordError::Field`] met.
    pub fn check(&self) -> Result<(), RecordError> {
        if self.version == 0 {
            return Err(RecordError::field(
                "version",
                "is 0; the first seal is version 1",
            ));
        }
        if self.checked_at > UnixTime::MAX {
            return Err(RecordError::field("checked_at", "is after the year 9999"));
        }
        match (self.verdict, self.reasons.len()) {
            (ReportVerdict::Pass, 0) => {}
            (ReportVerdict::Pass, n) => {
                return Err(RecordError::field(
                    "reasons",
                    format!("has {n} reasons for a PASS, which has none"),
                ))
            }
            (ReportVerdict::Stop, 0) => {
                return Err(RecordError::field("reasons", "is empty for a STOP"))
            }
            (ReportVerdict::Stop, n) if n > MAX_REASONS => {
                return Err(RecordError::field(
                    "reasons",
                    format!("has {n} elements; at most {MAX_REASONS}"),
                ))
            }
            (ReportVerdict::Stop, _) => {}
        }
        if let Some(s) = self
            .reasons
            .iter()
            .filter_map(|r| r.seat)
            .find(|s| !(1..=MAX_PEOPLE).contains(s))
        {
            return Err(RecordError::field(
                "seat",
                format!("is {s}; seats are 1 to {MAX_PEOPLE}"),
            ));
        }
        Ok(())
    }

    /// Signs the report into its COSE_Sign1 bytes (untagged, protected `{1: -8, 4: kid}`,
    /// the manifest's envelope). Deterministic (Ed25519, RFC 8032). The caller signs with its
    /// own province's key; a report that breaks a rule ([`CheckReport::check`]) signs, but does
    /// not decode.
    pub fn sign(&self, key: &NodeKey) -> Vec<u8> {
        cose::sign(self.to_cbor(), key).bytes
    }
}

fn reason(v: Value) -> Result<ReportReason, RecordError> {
    let [number, seat, issuer] = record::array_of::<3>(v, "reason")?;
    let n = record::uint_of(number, "reason")?;
    let reason = ManifestReason::from_number(n).ok_or_else(|| {
        RecordError::field(
            "reason",
            format!(
                "is {n}; 1 to {} are defined (docs/transport.md section 5)",
                ManifestReason::ALL.len()
            ),
        )
    })?;
    Ok(ReportReason {
        reason,
        seat: record::nullable(seat, |v| record::seat(v, "seat"))?,
        issuer: record::nullable(issuer, |v| record::province(v, "issuer"))?,
    })
}

/// A decoded check report whose form is valid and whose signature is not yet checked.
#[derive(Debug, Clone)]
pub struct SignedCheckReport {
    /// The content; trusted only once the signature verifies under a key of `checker`.
    pub report: CheckReport,
    envelope: Envelope,
    cose: Vec<u8>,
}

impl SignedCheckReport {
    /// Decodes a report's COSE bytes strictly: at most [`MAX_REPORT_BYTES`], the code format's
    /// envelope rules, then the payload ([`CheckReport::from_cbor`]).
    ///
    /// # Errors
    /// The first [`RecordError`] met.
    pub fn decode(bytes: &[u8]) -> Result<SignedCheckReport, RecordError> {
        let envelope = Envelope::parse(bytes, MAX_REPORT_BYTES)?;
        let report = CheckReport::from_cbor(&envelope.payload)?;
        Ok(SignedCheckReport {
            report,
            envelope,
            cose: bytes.to_vec(),
        })
    }

    /// The kid of the protected header: the caller picks the key by `report.checker` and it.
    pub fn kid(&self) -> Kid {
        self.envelope.kid
    }

    /// Whether the signature verifies under `key` (Ed25519, strict).
    pub fn verify_signature(&self, key: &PublicKey) -> bool {
        self.envelope.verify(key)
    }

    /// The COSE bytes as received (what the origin stores).
    pub fn cose_bytes(&self) -> &[u8] {
        &self.cose
    }

    /// The version among `sealed` (the origin's sealed manifests) this report is about.
    ///
    /// # Errors
    /// [`RecordMismatch`] when no sealed version has its trip, version and hash.
    pub fn match_sealed<'a>(
        &self,
        sealed: &'a [SignedManifest],
    ) -> Result<&'a SignedManifest, RecordMismatch> {
        let r = &self.report;
        record::match_sealed(r.trip_id, r.version, &r.manifest_hash, sealed)
    }
}

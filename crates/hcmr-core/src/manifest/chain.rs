//! A trip's chain (docs/tracing.md section 2): every signed object of one trip, from its creation
//! to its handover, and their verification. Each item is one COSE_Sign1 of the trip — a trip
//! event ([`super::SignedTripEvent`]), a sealed manifest, a check report or a handover receipt
//! or refusal — signed by the node of the province that recorded it. [`verify_chain`] decodes
//! each by its stated kind, checks that it is of the trip, picks the recorder's key by kid and
//! checks the signature, and orders the chain.
//!
//! Pure: the keys come from the caller (a node's trusted keys, or a trust bundle's).

use super::event::{EventDetail, EventKind, SignedTripEvent};
use super::record::RecordError;
use super::{
    encoding, ManifestError, Measure, Outcome, ReportVerdict, SignedCheckReport, SignedManifest,
    SignedReceipt, TripId,
};
use crate::keys::{Kid, PublicKey};
use crate::province::Province;
use crate::time::UnixTime;

/// The kind of an item of a chain; the numbers are those of `TripEventKind` in the proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChainKind {
    /// A trip event: created.
    Created = 1,
    /// A trip event: a person boarded.
    Boarded = 2,
    /// A trip event: a person taken off.
    Removed = 3,
    /// A sealed manifest (its COSE bytes).
    Sealed = 4,
    /// A trip event: cancelled.
    Cancelled = 5,
    /// A check report.
    Checked = 6,
    /// A trip event: checked in at the destination.
    Arrived = 7,
    /// A handover receipt (delivered).
    HandedOver = 8,
    /// A handover refusal.
    Refused = 9,
}

impl ChainKind {
    /// Every kind, by number.
    pub const ALL: [ChainKind; 9] = [
        ChainKind::Created,
        ChainKind::Boarded,
        ChainKind::Removed,
        ChainKind::Sealed,
        ChainKind::Cancelled,
        ChainKind::Checked,
        ChainKind::Arrived,
        ChainKind::HandedOver,
        ChainKind::Refused,
    ];

    /// The kind of a number 1 to 9; `None` for another.
    pub fn from_number(n: u64) -> Option<ChainKind> {
        ChainKind::ALL.into_iter().find(|k| *k as u64 == n)
    }

    /// Its name in docs/tracing.md: `created`, `boarded`, `removed`, `sealed`, `cancelled`,
    /// `checked`, `arrived`, `handed_over`, `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainKind::Created => "created",
            ChainKind::Boarded => "boarded",
            ChainKind::Removed => "removed",
            ChainKind::Sealed => "sealed",
            ChainKind::Cancelled => "cancelled",
            ChainKind::Checked => "checked",
            ChainKind::Arrived => "arrived",
            ChainKind::HandedOver => "handed_over",
            ChainKind::Refused => "refused",
        }
    }

    /// The kind of a name ([`ChainKind::as_str`]).
    pub fn parse(s: &str) -> Option<ChainKind> {
        ChainKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Where events of one second stand among each other: creation, changes at the origin,
    /// seals, checks, check-in, handover.
    fn phase(self) -> u8 {
        match self {
            ChainKind::Created => 0,
            ChainKind::Boarded | ChainKind::Removed | ChainKind::Cancelled => 1,
            ChainKind::Sealed => 2,
            ChainKind::Checked => 3,
            ChainKind::Arrived => 4,
            ChainKind::HandedOver | ChainKind::Refused => 5,
        }
    }

    /// The chain kind of a trip event's kind.
    pub fn of_event(k: EventKind) -> ChainKind {
        match k {
            EventKind::Created => ChainKind::Created,
            EventKind::Boarded => ChainKind::Boarded,
            EventKind::Removed => ChainKind::Removed,
            EventKind::Cancelled => ChainKind::Cancelled,
            EventKind::Arrived => ChainKind::Arrived,
        }
    }
}

/// One item of a chain as given: its stated kind and its COSE_Sign1 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainItem {
    /// What the item says it is.
    pub kind: ChainKind,
    /// The COSE_Sign1 bytes.
    pub signed: Vec<u8>,
}

/// A decoded item.
#[derive(Debug, Clone)]
pub enum ChainContent {
    /// A trip event.
    Event(SignedTripEvent),
    /// A sealed manifest.
    Sealed(Box<SignedManifest>),
    /// A check report.
    Checked(SignedCheckReport),
    /// A handover receipt or refusal.
    Handover(SignedReceipt),
}

impl ChainContent {
    /// Decodes `item.signed` as its stated kind.
    ///
    /// # Errors
    /// [`ChainFault::Malformed`]; [`ChainFault::KindMismatch`] when a trip event or a receipt
    /// is of another kind than stated.
    pub fn decode(item: &ChainItem) -> Result<ChainContent, ChainFault> {
        let rec = |e: RecordError| ChainFault::Malformed(e.to_string());
        let content = match item.kind {
            ChainKind::Sealed => ChainContent::Sealed(Box::new(
                SignedManifest::decode(&encoding::wrap(&item.signed))
                    .map_err(|e: ManifestError| ChainFault::Malformed(e.to_string()))?,
            )),
            ChainKind::Checked => {
                ChainContent::Checked(SignedCheckReport::decode(&item.signed).map_err(rec)?)
            }
            ChainKind::HandedOver | ChainKind::Refused => {
                ChainContent::Handover(SignedReceipt::decode(&item.signed).map_err(rec)?)
            }
            _ => ChainContent::Event(SignedTripEvent::decode(&item.signed).map_err(rec)?),
        };
        let found = content.kind();
        if found != item.kind {
            return Err(ChainFault::KindMismatch {
                stated: item.kind,
                found,
            });
        }
        Ok(content)
    }

    /// The kind, as the content says.
    pub fn kind(&self) -> ChainKind {
        match self {
            ChainContent::Event(e) => ChainKind::of_event(e.event.kind()),
            ChainContent::Sealed(_) => ChainKind::Sealed,
            ChainContent::Checked(_) => ChainKind::Checked,
            ChainContent::Handover(r) if r.receipt.outcome == Outcome::Refused => {
                ChainKind::Refused
            }
            ChainContent::Handover(_) => ChainKind::HandedOver,
        }
    }

    /// The trip it is of.
    pub fn trip_id(&self) -> TripId {
        match self {
            ChainContent::Event(e) => e.event.trip_id,
            ChainContent::Sealed(m) => m.manifest.trip_id,
            ChainContent::Checked(r) => r.report.trip_id,
            ChainContent::Handover(r) => r.receipt.trip_id,
        }
    }

    /// The province whose node signed it: the event's recorder, the manifest's origin, the
    /// checker, the destination.
    ///
    /// # Errors
    /// [`ChainFault::Malformed`] for a manifest whose origin names no province (never for a
    /// decoded one).
    pub fn recorder(&self) -> Result<Province, ChainFault> {
        Ok(match self {
            ChainContent::Event(e) => e.event.recorder,
            ChainContent::Sealed(m) => m
                .manifest
                .origin_province()
                .map_err(|e| ChainFault::Malformed(e.to_string()))?,
            ChainContent::Checked(r) => r.report.checker,
            ChainContent::Handover(r) => r.receipt.destination,
        })
    }

    /// When, by the recorder's clock: the event's time, the seal, the check, the handover.
    pub fn at(&self) -> UnixTime {
        match self {
            ChainContent::Event(e) => e.event.at,
            ChainContent::Sealed(m) => m.manifest.sealed_at,
            ChainContent::Checked(r) => r.report.checked_at,
            ChainContent::Handover(r) => r.receipt.received_at,
        }
    }

    /// The seat concerned; 0 for none.
    pub fn seat(&self) -> u8 {
        match self {
            ChainContent::Event(e) => e.event.seat,
            _ => 0,
        }
    }

    /// The manifest version concerned; 0 for none.
    pub fn version(&self) -> u64 {
        match self {
            ChainContent::Event(e) => e.event.version,
            ChainContent::Sealed(m) => m.manifest.version,
            ChainContent::Checked(r) => r.report.version,
            ChainContent::Handover(r) => r.receipt.version,
        }
    }

    /// The sealed version it follows, for the order within one second: a trip event's
    /// `version` (the latest sealed when it was recorded), `N - 1` for the seal of version `N`
    /// (it closes what came before), `N` for a check, check-in or receipt of version `N`.
    fn epoch(&self) -> u64 {
        match self {
            ChainContent::Sealed(m) => m.manifest.version.saturating_sub(1),
            c => c.version(),
        }
    }

    /// The kid of its signature.
    pub fn kid(&self) -> Kid {
        match self {
            ChainContent::Event(e) => e.kid(),
            ChainContent::Sealed(m) => m.kid,
            ChainContent::Checked(r) => r.kid(),
            ChainContent::Handover(r) => r.kid(),
        }
    }

    /// Whether the signature verifies under `key` (Ed25519, strict).
    pub fn verify_signature(&self, key: &PublicKey) -> bool {
        match self {
            ChainContent::Event(e) => e.verify_signature(key),
            ChainContent::Sealed(m) => m.verify_signature(key),
            ChainContent::Checked(r) => r.verify_signature(key),
            ChainContent::Handover(r) => r.verify_signature(key),
        }
    }

    /// One line for people, e.g. `boarded seat 3: green, issuer 510000` or `PASS at 340000
    /// 皖-G42, version 1`.
    pub fn summary(&self) -> String {
        match self {
            ChainContent::Event(e) => {
                let ev = &e.event;
                match &ev.detail {
                    EventDetail::Created {
                        vehicle,
                        origin,
                        destination,
                        departure,
                        arrival,
                    } => format!(
                        "created: {vehicle} from {origin} to {destination}, departing {}, \
                         arriving {}",
                        crate::rfc3339(departure.secs()),
                        crate::rfc3339(arrival.secs())
                    ),
                    EventDetail::Boarded {
                        issuer,
                        status,
                        crew,
                    } => format!(
                        "boarded seat {}{}: {}, issuer {}",
                        ev.seat,
                        if *crew { " (crew)" } else { "" },
                        status.as_str(),
                        issuer.code()
                    ),
                    EventDetail::Removed { reason } if reason.is_empty() => {
                        format!("removed seat {}", ev.seat)
                    }
                    EventDetail::Removed { reason } => {
                        format!("removed seat {}: {reason}", ev.seat)
                    }
                    EventDetail::Cancelled => "cancelled".to_string(),
                    EventDetail::Arrived { checkpoint, .. } => format!(
                        "arrived: version {} checked in by {} at {checkpoint}",
                        ev.version,
                        ev.recorder.code()
                    ),
                }
            }
            ChainContent::Sealed(m) => {
                let (passengers, crew) = m.manifest.headcount();
                format!(
                    "sealed version {}: {passengers} passengers, {crew} crew",
                    m.manifest.version
                )
            }
            ChainContent::Checked(r) => {
                let r = &r.report;
                format!(
                    "{} at {} {}, version {}",
                    match r.verdict {
                        ReportVerdict::Pass => "PASS",
                        ReportVerdict::Stop => "STOP",
                    },
                    r.checker.code(),
                    r.checkpoint,
                    r.version
                )
            }
            ChainContent::Handover(r) => {
                let r = &r.receipt;
                match r.outcome {
                    Outcome::Delivered => format!(
                        "handed over to {}: version {}, {} of {} present",
                        r.destination.code(),
                        r.version,
                        r.people.iter().filter(|p| p.present).count(),
                        r.people.len()
                    ),
                    Outcome::Refused => format!(
                        "refused by {}: version {}: {}",
                        r.destination.code(),
                        r.version,
                        r.reason
                    ),
                }
            }
        }
    }

    /// Further lines: a STOP's reasons by seat; a receipt's outcome and measure per seat.
    pub fn details(&self) -> Vec<String> {
        match self {
            ChainContent::Checked(r) => r
                .report
                .reasons
                .iter()
                .map(|x| {
                    let mut s = x.reason.as_str().to_string();
                    if let Some(seat) = x.seat {
                        s = format!("seat {seat}: {s}");
                    }
                    if let Some(p) = x.issuer {
                        s.push_str(&format!(" (issuer {})", p.code()));
                    }
                    s
                })
                .collect(),
            ChainContent::Handover(r) => r
                .receipt
                .people
                .iter()
                .map(|p| {
                    let mut s = format!(
                        "seat {}: {}, {}",
                        p.seat,
                        if p.present { "present" } else { "missing" },
                        measure_name(p.measure)
                    );
                    if !p.reason.is_empty() {
                        s.push_str(&format!(" ({})", p.reason));
                    }
                    s
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A measure in words: `no measure`, `health observation`, `quarantine`, `sent to hospital`.
pub fn measure_name(m: Measure) -> &'static str {
    match m {
        Measure::None => "no measure",
        Measure::Observation => "health observation",
        Measure::Quarantine => "quarantine",
        Measure::Hospital => "sent to hospital",
    }
}

/// Why an item of a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainFault {
    /// The bytes are not a well-formed object of the stated kind.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The object is of another kind than stated.
    #[error("stated as {}, but it is a {} record", stated.as_str(), found.as_str())]
    KindMismatch {
        /// The kind given with the item.
        stated: ChainKind,
        /// The kind its content says.
        found: ChainKind,
    },
    /// The object is of another trip.
    #[error("of trip {found}, not of trip {expected}")]
    WrongTrip {
        /// The chain's trip.
        expected: TripId,
        /// The item's.
        found: TripId,
    },
    /// No key of the recorder with the signature's kid is known.
    #[error("no key of {province} with kid {kid} is known")]
    UnknownKey {
        /// The recorder.
        province: Province,
        /// The signature's kid.
        kid: Kid,
    },
    /// The signature does not verify under the recorder's key of its kid.
    #[error("the signature does not verify under {province}'s key {kid}")]
    BadSignature {
        /// The recorder.
        province: Province,
        /// The signature's kid.
        kid: Kid,
    },
}

impl ChainFault {
    /// A stable identifier: `malformed`, `kind_mismatch`, `wrong_trip`, `unknown_key`,
    /// `bad_signature`.
    pub fn code(&self) -> &'static str {
        match self {
            ChainFault::Malformed(_) => "malformed",
            ChainFault::KindMismatch { .. } => "kind_mismatch",
            ChainFault::WrongTrip { .. } => "wrong_trip",
            ChainFault::UnknownKey { .. } => "unknown_key",
            ChainFault::BadSignature { .. } => "bad_signature",
        }
    }
}

/// One item of a verified chain.
#[derive(Debug, Clone)]
pub struct ChainEntry {
    /// Its position among the items given (0-based).
    pub index: usize,
    /// The stated kind.
    pub kind: ChainKind,
    /// The content, when it decoded as its kind.
    pub content: Option<ChainContent>,
    /// Ok when of the trip and signed under a known key of its recorder; else why not.
    pub outcome: Result<(), ChainFault>,
}

impl ChainEntry {
    /// Whether it verified.
    pub fn ok(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// What [`verify_chain`] found: every item, in the chain's order.
#[derive(Debug, Clone)]
pub struct ChainReport {
    /// The trip.
    pub trip_id: TripId,
    /// The items, oldest first: by time; within one second by the sealed version they follow
    /// (an event recorded after version N was sealed, and a check, check-in or receipt of
    /// version N, come after the seal of version N), then creation, changes at the origin,
    /// seals, checks, check-in and handover, then as given; items that did not decode last, as
    /// given.
    pub entries: Vec<ChainEntry>,
}

impl ChainReport {
    /// Whether every item verified.
    pub fn all_ok(&self) -> bool {
        self.entries.iter().all(ChainEntry::ok)
    }

    /// The items that did not verify.
    pub fn failures(&self) -> impl Iterator<Item = &ChainEntry> {
        self.entries.iter().filter(|e| !e.ok())
    }
}

/// Why a chain cannot be verified at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No item: an empty chain proves nothing.
    #[error("the chain has no event")]
    Empty,
}

/// Verifies the items of trip `trip_id`'s chain: each decodes as its stated kind, is of the
/// trip, and is signed under a key of its recorder's province that `keys` gives with the
/// signature's kid. The items may come in any order; the report orders them
/// ([`ChainReport::entries`]).
///
/// # Errors
/// [`ChainError::Empty`] when there is no item; a faulty item is reported in its entry.
pub fn verify_chain(
    trip_id: TripId,
    items: &[ChainItem],
    keys: impl Fn(Province) -> Vec<PublicKey>,
) -> Result<ChainReport, ChainError> {
    if items.is_empty() {
        return Err(ChainError::Empty);
    }
    let mut entries: Vec<ChainEntry> = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let (content, outcome) = match ChainContent::decode(item) {
                Ok(c) => {
                    let outcome = check_one(trip_id, &c, &keys);
                    (Some(c), outcome)
                }
                Err(e) => (None, Err(e)),
            };
            ChainEntry {
                index,
                kind: item.kind,
                content,
                outcome,
            }
        })
        .collect();
    entries.sort_by_key(|e| match &e.content {
        Some(c) => (0u8, c.at(), c.epoch(), c.kind().phase(), e.index),
        None => (1, UnixTime::from_secs(0), 0, 0, e.index),
    });
    Ok(ChainReport { trip_id, entries })
}

fn check_one(
    trip_id: TripId,
    c: &ChainContent,
    keys: &impl Fn(Province) -> Vec<PublicKey>,
) -> Result<(), ChainFault> {
    if c.trip_id() != trip_id {
        return Err(ChainFault::WrongTrip {
            expected: trip_id,
            found: c.trip_id(),
        });
    }
    let province = c.recorder()?;
    let kid = c.kid();
    let Some(key) = keys(province).into_iter().find(|k| k.kid == kid) else {
        return Err(ChainFault::UnknownKey { province, kid });
    };
    if !c.verify_signature(&key) {
        return Err(ChainFault::BadSignature { province, kid });
    }
    Ok(())
}

/// The keys a trust snapshot holds for `province`'s signatures: the node's own keys for its own
/// province, else the keys of the peer's synced feed and of the agreements with it, less those
/// withdrawn (a retired key still verifies what it signed before).
pub fn snapshot_keys(snapshot: &crate::trust::TrustSnapshot, province: Province) -> Vec<PublicKey> {
    if province == snapshot.local() {
        return snapshot
            .own()
            .keys()
            .iter()
            .filter(|k| k.withdrawn_at.is_none())
            .map(|k| k.key)
            .collect();
    }
    let mut keys: Vec<PublicKey> = Vec::new();
    for a in snapshot.agreements_with(province) {
        if let Some(party) = a.agreement.body().peer_of(snapshot.local()) {
            keys.extend(party.keys.iter().copied());
        }
    }
    if let Some(feed) = snapshot.peer_feed(province) {
        for k in feed.state.keys() {
            if k.withdrawn_at.is_some() {
                keys.retain(|x| *x != k.key);
            } else if !keys.contains(&k.key) {
                keys.push(k.key);
            }
        }
    }
    keys
}

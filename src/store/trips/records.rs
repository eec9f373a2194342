//! The records of the trip trees (see [`super`]) and their CBOR encoding: arrays in field
//! order, decoded strictly (a damaged value is [`StoreError::Corrupt`], never a panic).

use ciborium::value::Value;

use crate::cbor::{as_u64, uint};
use crate::code::Cti;
use crate::identity::{DocumentType, SubjectHash};
use crate::manifest::TripId;
use crate::province::Province;
use crate::status::HealthStatus;
use crate::store::{corrupt, StoreError};
use crate::UnixTime;

/// A person on a trip, as the origin keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TripEntry {
    /// The organizer's seat number, 1 to 99.
    pub seat: u8,
    /// Crew rather than passenger.
    pub crew: bool,
    /// The code's issuing province.
    pub issuer: Province,
    /// The status as verified at boarding (after the agreement's mapping).
    pub status: HealthStatus,
    /// The code's id.
    pub cti: Cti,
    /// The code's `iat`.
    pub iat: UnixTime,
    /// Until when the code's status holds.
    pub status_valid_until: UnixTime,
    /// The keyed subject hash as the code carries it (never the document number).
    pub subject_hash: SubjectHash,
    /// When boarded.
    pub boarded_at: UnixTime,
    /// The masked name the code carries.
    pub masked_name: String,
    /// The document type the code carries.
    pub document_type: DocumentType,
    /// The masked document number the code carries.
    pub masked_document_number: String,
}

/// A person taken off a trip, for the trip's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The seat freed.
    pub seat: u8,
    /// Why (no personal data).
    pub reason: String,
    /// When.
    pub at: UnixTime,
}

/// A trip as its origin keeps it (the value of `trips`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TripRecord {
    /// The trip.
    pub id: TripId,
    /// Plate or train and carriage.
    pub vehicle: String,
    /// GB/T 2260 county code of the departure.
    pub origin: u32,
    /// GB/T 2260 code of the destination.
    pub destination: u32,
    /// Destination place.
    pub place: String,
    /// Provinces passed through, in order.
    pub transit: Vec<Province>,
    /// Planned departure.
    pub departure: UnixTime,
    /// Planned arrival.
    pub arrival: UnixTime,
    /// The escort's masked name.
    pub escort: String,
    /// When created.
    pub created_at: UnixTime,
    /// When cancelled (never sealed), if it was.
    pub cancelled_at: Option<UnixTime>,
    /// The latest sealed version; 0 when never sealed.
    pub version: u64,
    /// When the latest version was sealed.
    pub sealed_at: Option<UnixTime>,
    /// Whether people were boarded or removed since the latest seal.
    pub changed_since_seal: bool,
    /// The people as they stand now, by seat.
    pub people: Vec<TripEntry>,
    /// People taken off, oldest first.
    pub removals: Vec<Removal>,
}

impl TripRecord {
    /// Whether the trip's people count in the holders' index: not cancelled; the handover is
    /// tracked apart (see [`Store::trip_handover`]).
    pub fn cancelled(&self) -> bool {
        self.cancelled_at.is_some()
    }

    /// The person of `issuer` and `subject`, if on board.
    pub fn holder(&self, issuer: Province, subject: &SubjectHash) -> Option<&TripEntry> {
        self.people
            .iter()
            .find(|p| p.issuer == issuer && p.subject_hash == *subject)
    }
}

/// A check report received from a checkpoint's node, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// The checking province.
    pub checker: Province,
    /// The checkpoint as the checker named it.
    pub checkpoint: String,
    /// When checked.
    pub checked_at: UnixTime,
    /// The manifest version checked.
    pub version: u64,
    /// Whether the vehicle passed.
    pub pass: bool,
    /// The reasons of a STOP: (reason number, seat, issuer province code or 0, detail).
    pub reasons: Vec<(u64, u64, u32, String)>,
    /// The signed report (COSE_Sign1 bytes).
    pub signed: Vec<u8>,
}

/// A handover receipt or refusal received from the destination, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHandover {
    /// The destination province.
    pub destination: Province,
    /// The manifest version it answers.
    pub version: u64,
    /// When received or refused.
    pub received_at: UnixTime,
    /// A refusal rather than a receipt.
    pub refused: bool,
    /// The refusal's reason, or a note.
    pub reason: String,
    /// Each person's outcome: (seat, present, measure number, reason).
    pub people: Vec<(u64, bool, u64, String)>,
    /// The signed record (COSE_Sign1 bytes).
    pub signed: Vec<u8>,
}

/// What storing a received record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Stored now.
    New,
    /// The identical record was stored before.
    Duplicate,
    /// A different handover is stored for the trip (only for handovers).
    Conflict,
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn province_value(p: Province) -> Value {
    uint(u64::from(p.code()))
}

fn time_value(t: UnixTime) -> Value {
    uint(t.secs())
}

fn encode_entry(p: &TripEntry) -> Value {
    Value::Array(vec![
        uint(u64::from(p.seat)),
        Value::Bool(p.crew),
        province_value(p.issuer),
        uint(p.status.to_u64()),
        Value::Bytes(p.cti.to_vec()),
        time_value(p.iat),
        time_value(p.status_valid_until),
        Value::Bytes(p.subject_hash.0.to_vec()),
        time_value(p.boarded_at),
        text(&p.masked_name),
        uint(u64::from(p.document_type.to_u8())),
        text(&p.masked_document_number),
    ])
}

/// The CBOR of a trip record: an array in [`TripRecord`]'s field order, `cancelled_at` and
/// `sealed_at` 0 when none, people and removals as arrays.
pub(super) fn encode_trip(t: &TripRecord) -> Vec<u8> {
    crate::cbor::encode(&Value::Array(vec![
        Value::Bytes(t.id.0.to_vec()),
        text(&t.vehicle),
        uint(u64::from(t.origin)),
        uint(u64::from(t.destination)),
        text(&t.place),
        Value::Array(t.transit.iter().map(|p| province_value(*p)).collect()),
        time_value(t.departure),
        time_value(t.arrival),
        text(&t.escort),
        time_value(t.created_at),
        uint(t.cancelled_at.map_or(0, UnixTime::secs)),
        uint(t.version),
        uint(t.sealed_at.map_or(0, UnixTime::secs)),
        Value::Bool(t.changed_since_seal),
        Value::Array(t.people.iter().map(encode_entry).collect()),
        Value::Array(
            t.removals
                .iter()
                .map(|r| {
                    Value::Array(vec![
                        uint(u64::from(r.seat)),
                        text(&r.reason),
                        time_value(r.at),
                    ])
                })
                .collect(),
        ),
    ]))
}

/// Field readers for a stored record of `tree`.
struct Fields(&'static str);

impl Fields {
    fn bad(&self, what: &str) -> StoreError {
        corrupt(self.0, format!("not a trip record: {what}"))
    }
    fn u64(&self, v: &Value, what: &str) -> Result<u64, StoreError> {
        as_u64(v).ok_or_else(|| self.bad(what))
    }
    fn time(&self, v: &Value, what: &str) -> Result<UnixTime, StoreError> {
        self.u64(v, what).map(UnixTime::from_secs)
    }
    fn opt_time(&self, v: &Value, what: &str) -> Result<Option<UnixTime>, StoreError> {
        Ok(Some(self.u64(v, what)?)
            .filter(|s| *s != 0)
            .map(UnixTime::from_secs))
    }
    fn text(&self, v: &Value, what: &str) -> Result<String, StoreError> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(self.bad(what)),
        }
    }
    fn bool(&self, v: &Value, what: &str) -> Result<bool, StoreError> {
        match v {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.bad(what)),
        }
    }
    fn bytes<const N: usize>(&self, v: &Value, what: &str) -> Result<[u8; N], StoreError> {
        match v {
            Value::Bytes(b) => b.as_slice().try_into().map_err(|_| self.bad(what)),
            _ => Err(self.bad(what)),
        }
    }
    fn vec_bytes(&self, v: &Value, what: &str) -> Result<Vec<u8>, StoreError> {
        match v {
            Value::Bytes(b) => Ok(b.clone()),
            _ => Err(self.bad(what)),
        }
    }
    fn array<'v>(&self, v: &'v Value, what: &str) -> Result<&'v [Value], StoreError> {
        match v {
            Value::Array(a) => Ok(a),
            _ => Err(self.bad(what)),
        }
    }
    fn province(&self, v: &Value, what: &str) -> Result<Province, StoreError> {
        let c = u32::try_from(self.u64(v, what)?).map_err(|_| self.bad(what))?;
        Province::from_code(c).map_err(|_| self.bad(what))
    }
    fn seat(&self, v: &Value) -> Result<u8, StoreError> {
        u8::try_from(self.u64(v, "seat")?).map_err(|_| self.bad("seat"))
    }
    fn decode(&self, bytes: &[u8]) -> Result<Vec<Value>, StoreError> {
        match crate::cbor::decode_exact(bytes).map_err(|e| corrupt(self.0, e.to_string()))? {
            Value::Array(a) => Ok(a),
            _ => Err(self.bad("not an array")),
        }
    }
}

fn decode_entry(f: &Fields, v: &Value) -> Result<TripEntry, StoreError> {
    let [seat, crew, issuer, status, cti, iat, until, hash, boarded, name, doc, number] =
        f.array(v, "person")?
    else {
        return Err(f.bad("person"));
    };
    Ok(TripEntry {
        seat: f.seat(seat)?,
        crew: f.bool(crew, "crew")?,
        issuer: f.province(issuer, "issuer")?,
        status: HealthStatus::from_u64(f.u64(status, "status")?).ok_or_else(|| f.bad("status"))?,
        cti: f.bytes(cti, "cti")?,
        iat: f.time(iat, "iat")?,
        status_valid_until: f.time(until, "status_valid_until")?,
        subject_hash: SubjectHash(f.bytes(hash, "subject_hash")?),
        boarded_at: f.time(boarded, "boarded_at")?,
        masked_name: f.text(name, "masked_name")?,
        document_type: DocumentType::from_u64(f.u64(doc, "document_type")?)
            .ok_or_else(|| f.bad("document_type"))?,
        masked_document_number: f.text(number, "masked_document_number")?,
    })
}

pub(super) fn decode_trip(bytes: &[u8]) -> Result<TripRecord, StoreError> {
    let f = Fields("trips");
    let a = f.decode(bytes)?;
    let [id, vehicle, origin, destination, place, transit, departure, arrival, escort, created, cancelled, version, sealed, changed, people, removals] =
        a.as_slice()
    else {
        return Err(f.bad("16 fields"));
    };
    let u32_of = |v: &Value, what: &str| {
        f.u64(v, what)
            .and_then(|n| u32::try_from(n).map_err(|_| f.bad(what)))
    };
    Ok(TripRecord {
        id: TripId(f.bytes(id, "id")?),
        vehicle: f.text(vehicle, "vehicle")?,
        origin: u32_of(origin, "origin")?,
        destination: u32_of(destination, "destination")?,
        place: f.text(place, "place")?,
        transit: f
            .array(transit, "transit")?
            .iter()
            .map(|p| f.province(p, "transit"))
            .collect::<Result<_, _>>()?,
        departure: f.time(departure, "departure")?,
        arrival: f.time(arrival, "arrival")?,
        escort: f.text(escort, "escort")?,
        created_at: f.time(created, "created_at")?,
        cancelled_at: f.opt_time(cancelled, "cancelled_at")?,
        version: f.u64(version, "version")?,
        sealed_at: f.opt_time(sealed, "sealed_at")?,
        changed_since_seal: f.bool(changed, "changed_since_seal")?,
        people: f
            .array(people, "people")?
            .iter()
            .map(|p| decode_entry(&f, p))
            .collect::<Result<_, _>>()?,
        removals: f
            .array(removals, "removals")?
            .iter()
            .map(|r| match f.array(r, "removal")? {
                [seat, reason, at] => Ok(Removal {
                    seat: f.seat(seat)?,
                    reason: f.text(reason, "reason")?,
                    at: f.time(at, "at")?,
                }),
                _ => Err(f.bad("removal")),
            })
            .collect::<Result<_, _>>()?,
    })
}

pub(super) fn encode_report(r: &StoredReport) -> Vec<u8> {
    crate::cbor::encode(&Value::Array(vec![
        province_value(r.checker),
        text(&r.checkpoint),
        time_value(r.checked_at),
        uint(r.version),
        Value::Bool(r.pass),
        Value::Array(
            r.reasons
                .iter()
                .map(|(reason, seat, issuer, detail)| {
                    Value::Array(vec![
                        uint(*reason),
                        uint(*seat),
                        uint(u64::from(*issuer)),
                        text(detail),
                    ])
                })
                .collect(),
        ),
        Value::Bytes(r.signed.clone()),
    ]))
}

pub(super) fn decode_report(bytes: &[u8]) -> Result<StoredReport, StoreError> {
    let f = Fields("trip_reports");
    let a = f.decode(bytes)?;
    let [checker, checkpoint, at, version, pass, reasons, signed] = a.as_slice() else {
        return Err(f.bad("7 fields"));
    };
    Ok(StoredReport {
        checker: f.province(checker, "checker")?,
        checkpoint: f.text(checkpoint, "checkpoint")?,
        checked_at: f.time(at, "checked_at")?,
        version: f.u64(version, "version")?,
        pass: f.bool(pass, "pass")?,
        reasons: f
            .array(reasons, "reasons")?
            .iter()
            .map(|r| match f.array(r, "reason")? {
                [reason, seat, issuer, detail] => Ok((
                    f.u64(reason, "reason")?,
                    f.u64(seat, "seat")?,
                    u32::try_from(f.u64(issuer, "issuer")?).map_err(|_| f.bad("issuer"))?,
                    f.text(detail, "detail")?,
                )),
                _ => Err(f.bad("reason")),
            })
            .collect::<Result<_, _>>()?,
        signed: f.vec_bytes(signed, "signed")?,
    })
}

pub(super) fn encode_handover(h: &StoredHandover) -> Vec<u8> {
    crate::cbor::encode(&Value::Array(vec![
        province_value(h.destination),
        uint(h.version),
        time_value(h.received_at),
        Value::Bool(h.refused),
        text(&h.reason),
        Value::Array(
            h.people
                .iter()
                .map(|(seat, present, measure, reason)| {
                    Value::Array(vec![
                        uint(*seat),
                        Value::Bool(*present),
                        uint(*measure),
                        text(reason),
                    ])
                })
                .collect(),
        ),
        Value::Bytes(h.signed.clone()),
    ]))
}

pub(super) fn decode_handover(bytes: &[u8]) -> Result<StoredHandover, StoreError> {
    let f = Fields("trip_handovers");
    let a = f.decode(bytes)?;
    let [destination, version, at, refused, reason, people, signed] = a.as_slice() else {
        return Err(f.bad("7 fields"));
    };
    Ok(StoredHandover {
        destination: f.province(destination, "destination")?,
        version: f.u64(version, "version")?,
        received_at: f.time(at, "received_at")?,
        refused: f.bool(refused, "refused")?,
        reason: f.text(reason, "reason")?,
        people: f
            .array(people, "people")?
            .iter()
            .map(|p| match f.array(p, "person")? {
                [seat, present, measure, reason] => Ok((
                    f.u64(seat, "seat")?,
                    f.bool(present, "present")?,
                    f.u64(measure, "measure")?,
                    f.text(reason, "reason")?,
                )),
                _ => Err(f.bad("person")),
            })
            .collect::<Result<_, _>>()?,
        signed: f.vec_bytes(signed, "signed")?,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::store) fn entry(seat: u8) -> TripEntry {
        TripEntry {
            seat,
            crew: seat == 1,
            issuer: Province::from_code(510000).unwrap(),
            status: HealthStatus::Green,
            cti: [seat; 16],
            iat: UnixTime::from_secs(1_700_000_000),
            status_valid_until: UnixTime::from_secs(1_700_600_000),
            subject_hash: SubjectHash([seat; 8]),
            boarded_at: UnixTime::from_secs(1_700_000_100),
            masked_name: "张*".into(),
            document_type: DocumentType::ResidentIdentityCard,
            masked_document_number: "5101**********1234".into(),
        }
    }

    pub(in crate::store) fn trip() -> TripRecord {
        TripRecord {
            id: TripId([7; 8]),
            vehicle: "川R·12345".into(),
            origin: 511304,
            destination: 330200,
            place: "宁波工厂".into(),
            transit: vec![Province::from_code(340000).unwrap()],
            departure: UnixTime::from_secs(1_700_003_600),
            arrival: UnixTime::from_secs(1_700_080_000),
            escort: "王*".into(),
            created_at: UnixTime::from_secs(1_700_000_000),
            cancelled_at: None,
            version: 2,
            sealed_at: Some(UnixTime::from_secs(1_700_000_200)),
            changed_since_seal: true,
            people: vec![entry(1), entry(3)],
            removals: vec![Removal {
                seat: 2,
                reason: "left at a stop".into(),
                at: UnixTime::from_secs(1_700_000_150),
            }],
        }
    }

    #[test]
    fn a_trip_record_reads_back_as_written() {
        let t = trip();
        assert_eq!(decode_trip(&encode_trip(&t)).unwrap(), t);
        let open = TripRecord {
            version: 0,
            sealed_at: None,
            cancelled_at: Some(UnixTime::from_secs(5)),
            ..t
        };
        assert_eq!(decode_trip(&encode_trip(&open)).unwrap(), open);
    }

    #[test]
    fn reports_and_handovers_read_back_as_written() {
        let r = StoredReport {
            checker: Province::from_code(340000).unwrap(),
            checkpoint: "G50-toll-3".into(),
            checked_at: UnixTime::from_secs(1_700_010_000),
            version: 1,
            pass: false,
            reasons: vec![(15, 4, 510000, "revoked".into())],
            signed: vec![1, 2, 3],
        };
        assert_eq!(decode_report(&encode_report(&r)).unwrap(), r);
        let h = StoredHandover {
            destination: Province::from_code(330000).unwrap(),
            version: 2,
            received_at: UnixTime::from_secs(1_700_080_000),
            refused: false,
            reason: String::new(),
            people: vec![(1, true, 0, String::new()), (2, false, 0, "missing".into())],
            signed: vec![9; 70],
        };
        assert_eq!(decode_handover(&encode_handover(&h)).unwrap(), h);
    }

    #[test]
    fn a_damaged_record_is_corrupt_never_a_panic() {
        let mut bytes = encode_trip(&trip());
        bytes.truncate(bytes.len() / 2);
        assert!(matches!(
            decode_trip(&bytes),
            Err(StoreError::Corrupt { tree: "trips", .. })
        ));
        assert!(matches!(
            decode_report(&[0x80]),
            Err(StoreError::Corrupt { .. })
        ));
    }
}

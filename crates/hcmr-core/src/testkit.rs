//! Fixtures for tests, benches and fuzz targets: seeded keys per province, concluded agreements,
//! trust snapshots, signed (and forged) codes, trip manifests and records, and synthetic people.
//!
//! Compiled for the core's own unit tests and, elsewhere, with the cargo feature `testkit`.
//! Everything is deterministic: keys come from fixed seeds and times are fixed offsets from
//! [`NOW`], so known answers (kids, signatures, ctis) stay the same from run to run. Nothing
//! here does I/O. Helpers panic on misuse (an unknown province code, a refused agreement): they
//! build valid fixtures, and a panic is the test failing.

use std::collections::BTreeMap;
use std::sync::Arc;

use coset::{iana, CborSerializable, CoseSign1Builder, HeaderBuilder};

use crate::agreement::{
    AgreementBody, AgreementId, AgreementSignature, DirectionTerms, ManifestTerms, Party,
    SignedAgreement,
};
use crate::code::{transport, Claims, Subject};
use crate::feed::{proof_of_possession, FeedEntry, FeedState, Statement};
use crate::identity::{synthetic_resident_id, DocumentType, SubjectHash};
use crate::keys::{Kid, NodeKey};
use crate::manifest::{
    manifest_hash, CheckReport, Checkpoint, Escort, Manifest, ManifestReason, Measure, Outcome,
    Person as ManifestPerson, Place, ReasonText, Receipt, ReceiptPerson, ReportReason,
    ReportVerdict, SignedManifest, TripId, Vehicle,
};
use crate::province::Province;
use crate::status::HealthStatus;
use crate::time::UnixTime;
use crate::trust::{PeerFeed, Policy, TrustSnapshot};

// ---------------------------------------------------------------------------------------------
// Times and provinces
// ---------------------------------------------------------------------------------------------

/// The fixed "now" of the fixtures: 1 750 000 000 s, 2025-06-15T15:06:40Z.
pub const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);
/// One day, in seconds.
pub const DAY: u64 = 86_400;

/// Sichuan (GB/T 2260 code).
pub const SC: u32 = 510000;
/// Guangdong (GB/T 2260 code).
pub const GD: u32 = 440000;
/// Jiangsu (GB/T 2260 code).
pub const JS: u32 = 320000;
/// Zhejiang (GB/T 2260 code).
pub const ZJ: u32 = 330000;

/// The province of a GB/T 2260 province code.
///
/// # Panics
/// If `code` is not a province code.
pub fn prov(code: u32) -> Province {
    Province::from_code(code).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// The node key of seed `[n; 32]`.
pub fn key(n: u8) -> NodeKey {
    NodeKey::from_seed(&[n; 32])
}

/// Sichuan's key: seed `[0x51; 32]`.
pub fn sc_key() -> NodeKey {
    key(0x51)
}

/// Sichuan's second key: seed `[0x52; 32]` (a rotated-in or not yet announced key).
pub fn sc_new_key() -> NodeKey {
    key(0x52)
}

/// Guangdong's key: seed `[0x44; 32]`.
pub fn gd_key() -> NodeKey {
    key(0x44)
}

/// Guangdong's second key: seed `[0x45; 32]`.
pub fn gd_new_key() -> NodeKey {
    key(0x45)
}

/// Jiangsu's key: seed `[0x32; 32]`.
pub fn js_key() -> NodeKey {
    key(0x32)
}

/// Zhejiang's key: seed `[0x33; 32]`.
pub fn zj_key() -> NodeKey {
    key(0x33)
}

/// A key no province has: seed `[0x99; 32]`.
pub fn stranger() -> NodeKey {
    key(0x99)
}

// ---------------------------------------------------------------------------------------------
// Agreements
// ---------------------------------------------------------------------------------------------

/// The id of the fixture agreements: sixteen `0x5c` bytes.
pub const AGREEMENT_ID: AgreementId = AgreementId([0x5c; 16]);

/// A status map from `(issued, counts as)` pairs.
pub fn status_map(pairs: &[(HealthStatus, HealthStatus)]) -> BTreeMap<HealthStatus, HealthStatus> {
    pairs.iter().copied().collect()
}

/// The terms for codes of `issuer` verified at `verifier`: codes up to a day old, no trust age
/// limit, in force from 30 days before [`NOW`] to 365 days after. Change a field with struct
/// update syntax.
pub fn direction(
    issuer: u32,
    verifier: u32,
    status_map: BTreeMap<HealthStatus, HealthStatus>,
) -> DirectionTerms {
    DirectionTerms {
        issuer: prov(issuer),
        verifier: prov(verifier),
        status_map,
        max_code_age_secs: DAY,
        max_trust_age_secs: 0,
        manifests: ManifestTerms::none(),
        tracing: false,
        effective_from: NOW - 30 * DAY,
        effective_until: NOW + 365 * DAY,
    }
}

/// Version 1 of agreement [`AGREEMENT_ID`], created 31 days before [`NOW`], between `proposer`
/// and `acceptor` (province code and the one key each pins), with `directions`.
pub fn agreement_body(
    proposer: (u32, &NodeKey),
    acceptor: (u32, &NodeKey),
    directions: Vec<DirectionTerms>,
) -> AgreementBody {
    AgreementBody {
        id: AGREEMENT_ID,
        version: 1,
        created_at: NOW - 31 * DAY,
        proposer: Party {
            province: prov(proposer.0),
            keys: vec![proposer.1.public()],
        },
        acceptor: Party {
            province: prov(acceptor.0),
            keys: vec![acceptor.1.public()],
        },
        directions,
    }
}

/// Version `version` of the Sichuan–Guangdong agreement [`AGREEMENT_ID`]: [`agreement_body`]
/// with Sichuan ([`sc_key`]) proposing and Guangdong ([`gd_key`]) accepting; Sichuan's codes
/// count in Guangdong as `sc_at_gd` says, Guangdong's in Sichuan as `gd_at_sc` says (directions
/// in that order). Created `version` seconds after 31 days before [`NOW`], so that each
/// amendment is newer than the version before.
pub fn sc_gd_body(
    version: u32,
    sc_at_gd: &[(HealthStatus, HealthStatus)],
    gd_at_sc: &[(HealthStatus, HealthStatus)],
) -> AgreementBody {
    let body = agreement_body(
        (SC, &sc_key()),
        (GD, &gd_key()),
        vec![
            direction(SC, GD, status_map(sc_at_gd)),
            direction(GD, SC, status_map(gd_at_sc)),
        ],
    );
    AgreementBody {
        version,
        created_at: body.created_at + u64::from(version),
        ..body
    }
}

/// `body` proposed with `proposer` and accepted with `acceptor`: a concluded agreement.
///
/// # Panics
/// If either key may not sign for its party, or the body is invalid.
pub fn conclude(body: AgreementBody, proposer: &NodeKey, acceptor: &NodeKey) -> SignedAgreement {
    let mut a = SignedAgreement::propose(body, proposer).unwrap();
    a.accept(acceptor).unwrap();
    a
}

/// A concluded agreement between `proposer` and `acceptor` (province code and key) on the
/// terms of [`direction`]: the proposer's codes count in the acceptor's province as
/// `proposer_there` says, the acceptor's in the proposer's as `acceptor_here` says.
pub fn concluded(
    proposer: (u32, &NodeKey),
    acceptor: (u32, &NodeKey),
    proposer_there: &[(HealthStatus, HealthStatus)],
    acceptor_here: &[(HealthStatus, HealthStatus)],
) -> SignedAgreement {
    let directions = vec![
        direction(proposer.0, acceptor.0, status_map(proposer_there)),
        direction(acceptor.0, proposer.0, status_map(acceptor_here)),
    ];
    conclude(
        agreement_body(proposer, acceptor, directions),
        proposer.1,
        acceptor.1,
    )
}

/// A party's signature over the canonical body bytes `body` (`"hcmr-agreement-v1\0" || body`,
/// as [`SignedAgreement::propose`] signs), made by `signer` but naming `kid`: genuine when
/// `kid` is `signer`'s, a forgery under another key's kid otherwise.
pub fn agreement_signature(body: &[u8], kid: Kid, signer: &NodeKey) -> AgreementSignature {
    let mut msg = b"hcmr-agreement-v1\0".to_vec();
    msg.extend_from_slice(body);
    AgreementSignature {
        kid,
        signature: signer.sign(&msg),
    }
}

// ---------------------------------------------------------------------------------------------
// Feeds and trust snapshots
// ---------------------------------------------------------------------------------------------

/// The genesis entry of province `p`'s feed for `key`, made at `time`.
pub fn genesis(p: u32, key: &NodeKey, time: UnixTime) -> FeedEntry {
    FeedEntry::sign(
        prov(p),
        None,
        time,
        Statement::Genesis { key: key.public() },
        key,
    )
}

/// The entry after `prev` in province `p`'s feed, made at `time`, rotating from `old` to `new`
/// (with `new`'s proof of possession).
pub fn rotation(
    p: u32,
    prev: &FeedEntry,
    time: UnixTime,
    old: &NodeKey,
    new: &NodeKey,
) -> FeedEntry {
    let s = Statement::KeyRotation {
        key: new.public(),
        pop: proof_of_possession(prov(p), new),
    };
    FeedEntry::sign(prov(p), Some(prev), time, s, old)
}

/// Province `local`'s feed with only the genesis of `key`, made 40 days before [`NOW`].
///
/// # Panics
/// Never for a province code (the genesis always applies).
pub fn own_feed(local: u32, key: &NodeKey) -> Arc<FeedState> {
    let mut f = FeedState::new(prov(local));
    f.apply(&genesis(local, key, NOW - 40 * DAY)).unwrap();
    Arc::new(f)
}

/// The trust snapshot of `local`'s node: its own feed ([`own_feed`] of `own`), the default
/// policy, and `agreements` added in order.
///
/// # Panics
/// If an agreement is refused.
pub fn snapshot(local: u32, own: &NodeKey, agreements: Vec<SignedAgreement>) -> TrustSnapshot {
    let mut t = TrustSnapshot::new(prov(local), own_feed(local, own), Policy::default());
    for a in agreements {
        t.add_agreement(a).unwrap();
    }
    t
}

// ---------------------------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------------------------

/// The subject of the fixture codes: masked name `张*三`, a resident identity card masked
/// `5101*1234`, subject hash eight `0xa5` bytes.
pub fn subject() -> Subject {
    Subject {
        masked_name: "张*三".into(),
        document_type: DocumentType::ResidentIdentityCard,
        masked_document_number: "5101*1234".into(),
        subject_hash: SubjectHash([0xa5; 8]),
    }
}

/// A current code's claims: issuer `iss` and status `status` taken as given (so a test can
/// forge an unknown issuer or status), issued a minute before [`NOW`], displayable five more
/// minutes, status valid a day; the [`subject`].
pub fn claims(iss: &str, status: u64) -> Claims {
    Claims {
        iss: iss.to_string(),
        iat: NOW - 60,
        exp: NOW + 300,
        status,
        status_valid_until: NOW + DAY,
        subject: subject(),
    }
}

/// The code string of `claims` signed by `key`, as a node issues it.
pub fn code(claims: &Claims, key: &NodeKey) -> String {
    crate::code::encode(claims, key)
}

/// A forged code string: its protected header names `kid`, but `signer` signs it.
///
/// # Panics
/// Never in practice (COSE serialization of a built structure).
pub fn code_with_kid(claims: &Claims, kid: Kid, signer: &NodeKey) -> String {
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(kid.0.to_vec())
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(claims.to_cbor())
        .create_signature(b"", |tbs| signer.sign(tbs).to_vec())
        .build();
    transport::wrap(&sign1.to_vec().unwrap())
}

/// `code` with its status claim changed to `status` and its signature kept: what someone who
/// edits a code's colour presents (the signature no longer verifies).
///
/// # Panics
/// If `code` is not a well-formed code string.
pub fn forge_status(code: &str, status: HealthStatus) -> String {
    let cose = transport::unwrap(code).unwrap();
    let mut sign1 = coset::CoseSign1::from_slice(&cose).unwrap();
    let mut claims = Claims::from_cbor(sign1.payload.as_deref().unwrap_or_default()).unwrap();
    claims.status = status.to_u64();
    sign1.payload = Some(claims.to_cbor());
    transport::wrap(&sign1.to_vec().unwrap())
}

// ---------------------------------------------------------------------------------------------
// Trip manifests (docs/transport.md section 3)
// ---------------------------------------------------------------------------------------------

/// Anhui (GB/T 2260 code): the fixture trip's transit province.
pub const AH: u32 = 340000;
/// Chongqing (GB/T 2260 code): an issuer of the fixture trip's people.
pub const CQ: u32 = 500000;
/// Guizhou (GB/T 2260 code): an issuer of the fixture trip's people.
pub const GZ: u32 = 520000;
/// The fixture trip's id: eight `0x7e` bytes.
pub const TRIP_ID: TripId = TripId([0x7e; 8]);

/// The person at `seat` (1-based) of the fixture trip: issuer index `(seat - 1) % 3`, green,
/// crew for seat 1 (the driver), passengers after; the code issued `seat * 7` minutes before
/// the seal; cti and subject prefixes from SHA-256 of `"cti"` or `"subject"` and the seat, so
/// that they look random and differ per seat.
pub fn rider(seat: usize) -> ManifestPerson {
    use sha2::{Digest, Sha256};
    let digest = |tag: &str| Sha256::digest(format!("{tag}{seat}").as_bytes());
    ManifestPerson {
        issuer: ((seat - 1) % 3) as u8,
        status: HealthStatus::Green,
        crew: seat == 1,
        age_minutes: (seat * 7) as u16,
        cti: digest("cti")[..6].try_into().unwrap(),
        subject: digest("subject")[..4].try_into().unwrap(),
    }
}

/// The fixture trip with `people` people ([`rider`] 1 to `people`), with the typical fields
/// of docs/transport.md section 3.2: version 1, from county 511304 (Sichuan) to 330200 (Ningbo,
/// Zhejiang) through Anhui, vehicle `川R·12345`, place `宁波市某电子厂`, escort `张*三`, issuers
/// Sichuan, Chongqing and Guizhou; sealed at [`NOW`], departing an hour later, arriving 26 h
/// after departure.
///
/// # Panics
/// Never for `people` up to 9,362 (the ages fit 16 bits).
pub fn trip(people: usize) -> Manifest {
    Manifest {
        trip_id: TRIP_ID,
        version: 1,
        origin: 511304,
        destination: 330200,
        transit: vec![prov(AH)],
        vehicle: Vehicle::new("川R·12345").unwrap(),
        place: Place::new("宁波市某电子厂").unwrap(),
        departure: NOW + 3600,
        arrival: NOW + 3600 + 26 * 3600,
        sealed_at: NOW,
        escort: Escort::new("张*三").unwrap(),
        issuers: vec![prov(SC), prov(CQ), prov(GZ)],
        people: (1..=people).map(rider).collect(),
    }
}

/// [`trip`] with the largest fields of docs/transport.md section 3.2: a 16-byte vehicle
/// (`川R·1234567890`), a 24-byte place (`宁波市某电子厂区`), 4 transit provinces (Chongqing,
/// Hubei, Anhui, Jiangsu) and 6 issuers (Sichuan, Chongqing, Guizhou, Yunnan, Guangxi, Hunan).
///
/// # Panics
/// As [`trip`].
pub fn largest_trip(people: usize) -> Manifest {
    Manifest {
        transit: [CQ, 420000, AH, JS].map(prov).to_vec(),
        vehicle: Vehicle::new("川R·1234567890").unwrap(),
        place: Place::new("宁波市某电子厂区").unwrap(),
        issuers: [SC, CQ, GZ, 530000, 450000, 430000].map(prov).to_vec(),
        ..trip(people)
    }
}

/// Anhui's key: seed `[0x34; 32]`.
pub fn ah_key() -> NodeKey {
    key(0x34)
}

/// An Anhui checkpoint on the fixture trip's route: Anhui's node ([`snapshot`] of [`ah_key`])
/// with the Sichuan–Anhui agreement (green for green both ways; the Sichuan -> Anhui direction
/// accepts Sichuan's manifests in transit) and Sichuan's feed (the genesis of [`sc_key`], 40
/// days before [`NOW`]) synced at [`NOW`]. [`trip`] signed by [`sc_key`] passes it from an hour
/// before departure to 12 h after arrival.
pub fn transit_checkpoint() -> TrustSnapshot {
    let green = || status_map(&[(HealthStatus::Green, HealthStatus::Green)]);
    let sc_ah = DirectionTerms {
        manifests: ManifestTerms::transit(),
        tracing: false,
        ..direction(SC, AH, green())
    };
    let body = agreement_body(
        (SC, &sc_key()),
        (AH, &ah_key()),
        vec![sc_ah, direction(AH, SC, green())],
    );
    let mut t = snapshot(AH, &ah_key(), vec![conclude(body, &sc_key(), &ah_key())]);
    t.set_peer_feed(PeerFeed {
        state: own_feed(SC, &sc_key()),
        synced_at: NOW,
    });
    t
}

/// The fixture check report: the Jiangsu node's toll gate `苏皖界G40收费站` stops [`trip`]`(2)`
/// (as signed by [`sc_key`]) 2 h after the seal, for seat 2 revoked by Chongqing and a
/// superseded version.
pub fn check_report() -> CheckReport {
    CheckReport {
        trip_id: TRIP_ID,
        version: 1,
        manifest_hash: sealed_hash(2),
        checker: prov(JS),
        checkpoint: Checkpoint::new("苏皖界G40收费站").unwrap(),
        checked_at: NOW + 7200,
        verdict: ReportVerdict::Stop,
        reasons: vec![
            ReportReason {
                reason: ManifestReason::Superseded,
                seat: None,
                issuer: None,
            },
            ReportReason {
                reason: ManifestReason::Revoked,
                seat: Some(2),
                issuer: Some(prov(CQ)),
            },
        ],
    }
}

/// The fixture handover of [`trip`]`(3)` at Zhejiang, 27 h after the seal: seat 1 present,
/// seat 2 under health observation (`体温37.6℃`), seat 3 missing (`未上车`).
pub fn handover() -> Receipt {
    let person = |seat, present, measure, reason: &str| ReceiptPerson {
        seat,
        present,
        measure,
        reason: ReasonText::new(reason).unwrap(),
    };
    Receipt {
        trip_id: TRIP_ID,
        version: 1,
        manifest_hash: sealed_hash(3),
        destination: prov(ZJ),
        received_at: NOW + 27 * 3600,
        outcome: Outcome::Delivered,
        reason: ReasonText::default(),
        people: vec![
            person(1, true, Measure::None, ""),
            person(2, true, Measure::Observation, "体温37.6℃"),
            person(3, false, Measure::None, "未上车"),
        ],
    }
}

/// The fixture refusal of [`trip`]`(3)` at Zhejiang (`目的地未接收`), no people.
pub fn refusal() -> Receipt {
    Receipt {
        outcome: Outcome::Refused,
        reason: ReasonText::new("目的地未接收").unwrap(),
        people: vec![],
        ..handover()
    }
}

/// [`manifest_hash`] of [`trip`]`(people)` signed by [`sc_key`].
pub fn sealed_hash(people: usize) -> [u8; 32] {
    let s = crate::manifest::sign(&trip(people), &sc_key());
    manifest_hash(&SignedManifest::decode(&s).expect("the fixture trip decodes"))
}

// ---------------------------------------------------------------------------------------------
// Synthetic people
// ---------------------------------------------------------------------------------------------

/// Birth date of every synthetic person: 1990-01-01.
pub const BIRTH: &str = "19900101";

/// A synthetic person: a name and a resident identity card number that passes the GB 11643
/// check but identifies no one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Full name, as written on the card.
    pub name: String,
    /// 18 characters: `address`, [`BIRTH`], `seq` and the GB 11643 check character.
    pub document_number: String,
}

/// The person `name` registered at `address` (a 6-digit GB/T 2260 code) with sequence `seq`
/// (0 to 999), born on [`BIRTH`].
///
/// # Panics
/// If `address` is not 6 ASCII digits or `seq` over 999.
pub fn person(name: &str, address: &str, seq: u16) -> Person {
    Person {
        name: name.to_string(),
        document_number: synthetic_resident_id(address, BIRTH, seq),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::HealthStatus::{Green, Red};

    #[test]
    fn a_person_has_a_valid_resident_id() {
        let p = person("张三", "510104", 123);
        assert_eq!(p.document_number.len(), 18);
        assert!(p.document_number.starts_with("51010419900101123"));
        assert_eq!(
            crate::identity::check_resident_id(&p.document_number).unwrap(),
            p.document_number
        );
    }

    #[test]
    fn the_seeded_keys_are_distinct() {
        let kids = [
            sc_key(),
            sc_new_key(),
            gd_key(),
            gd_new_key(),
            js_key(),
            zj_key(),
            stranger(),
        ]
        .map(|k| k.kid());
        let distinct: std::collections::HashSet<_> = kids.iter().collect();
        assert_eq!(distinct.len(), kids.len());
    }

    #[test]
    fn a_concluded_agreement_is_recognized_by_a_snapshot() {
        let pairs = [(Green, Green), (Red, Red)];
        let a = concluded((SC, &sc_key()), (GD, &gd_key()), &pairs, &pairs);
        assert!(a.is_concluded());
        let gd = snapshot(GD, &gd_key(), vec![a]);
        let v = crate::verify::verify(&code(&claims("510000", 1), &sc_key()), &gd, NOW);
        assert_eq!(v.reason, crate::verify::Reason::Ok, "{}", v.detail);
    }

    #[test]
    fn an_amendment_is_newer_and_a_forged_status_does_not_verify() {
        let pairs = [(Green, Green), (Red, Red)];
        let (v1, v2) = (sc_gd_body(1, &pairs, &pairs), sc_gd_body(2, &pairs, &pairs));
        assert_eq!((v1.version, v2.version), (1, 2));
        assert!(v2.created_at > v1.created_at);
        let gd = snapshot(GD, &gd_key(), vec![conclude(v1, &sc_key(), &gd_key())]);
        let red = code(&claims("510000", 3), &sc_key());
        let v = crate::verify::verify(&forge_status(&red, Green), &gd, NOW);
        assert_eq!(
            v.reason,
            crate::verify::Reason::BadSignature,
            "{}",
            v.detail
        );
    }

    #[test]
    fn an_agreement_signature_by_the_named_key_is_the_genuine_one() {
        let pairs = [(Green, Green)];
        let a = concluded((SC, &sc_key()), (GD, &gd_key()), &pairs, &pairs);
        let s = agreement_signature(a.encoded(), sc_key().kid(), &sc_key());
        assert_eq!(Some(s), a.proposer_signature);
        let forged = agreement_signature(a.encoded(), sc_key().kid(), &stranger());
        assert_ne!(Some(forged), a.proposer_signature);
    }

    #[test]
    fn a_code_with_another_keys_kid_does_not_verify() {
        let gd = snapshot(
            GD,
            &gd_key(),
            vec![concluded(
                (SC, &sc_key()),
                (GD, &gd_key()),
                &[(Green, Green)],
                &[(Green, Green)],
            )],
        );
        let forged = code_with_kid(&claims("510000", 1), sc_key().kid(), &stranger());
        let v = crate::verify::verify(&forged, &gd, NOW);
        assert_eq!(
            v.reason,
            crate::verify::Reason::BadSignature,
            "{}",
            v.detail
        );
    }
}

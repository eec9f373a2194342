//! Tests of bilateral agreements: the propose/accept round, the canonical encoding (with a
//! known-answer vector), validation, signatures and the storage record.

use super::*;
use crate::status::HealthStatus::{Green, Red, Yellow};
use crate::testkit::status_map as map;
use crate::testkit::{gd_key, key, prov, sc_key, GD, JS, SC};

mod encoding;
mod manifests;
mod signatures;
mod tracing;
mod validation;

fn seed(hex32: &str) -> [u8; 32] {
    hex::decode(hex32).unwrap().try_into().unwrap()
}

const FROM: UnixTime = UnixTime::from_secs(1_700_000_000);
const UNTIL: UnixTime = UnixTime::from_secs(1_800_000_000);

/// Sichuan (proposer) and Guangdong (acceptor): Sichuan's yellow counts as red in Guangdong,
/// whose own scheme has only green and red.
fn body_with(sc_keys: Vec<PublicKey>, gd_keys: Vec<PublicKey>) -> AgreementBody {
    AgreementBody {
        id: AgreementId([0x11; 16]),
        version: 1,
        created_at: FROM - 100,
        proposer: Party {
            province: prov(SC),
            keys: sc_keys,
        },
        acceptor: Party {
            province: prov(GD),
            keys: gd_keys,
        },
        directions: vec![
            DirectionTerms {
                issuer: prov(SC),
                verifier: prov(GD),
                status_map: map(&[(Green, Green), (Yellow, Red), (Red, Red)]),
                max_code_age_secs: 86_400,
                max_trust_age_secs: 0,
                manifests: ManifestTerms::none(),
                tracing: false,
                effective_from: FROM,
                effective_until: UNTIL,
            },
            DirectionTerms {
                issuer: prov(GD),
                verifier: prov(SC),
                status_map: map(&[(Green, Green), (Red, Red)]),
                max_code_age_secs: 3_600,
                max_trust_age_secs: 0,
                manifests: ManifestTerms::none(),
                tracing: false,
                effective_from: FROM,
                effective_until: UNTIL,
            },
        ],
    }
}

fn body() -> AgreementBody {
    body_with(vec![sc_key().public()], vec![gd_key().public()])
}

fn concluded() -> SignedAgreement {
    let mut a = SignedAgreement::propose(body(), &sc_key()).unwrap();
    a.accept(&gd_key()).unwrap();
    a
}

/// RFC 8032 section 7.1, test 1 (secret key).
const RFC8032_SEED_1: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
/// RFC 8032 section 7.1, test 2 (secret key).
const RFC8032_SEED_2: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

/// The encoding of [`kat_body`], written out by hand from the CDDL in the module documentation
/// (array heads, shortest unsigned integers, RFC 8032 public keys d75a98.. and 3d4017..):
///
/// ```text
/// 88                                   array(8)
///   6e 68636d722d61677265656d656e74    "hcmr-agreement"
///   01                                 format 1
///   50 00112233445566778899aabbccddeeff id
///   01                                 version 1
///   1a 6553f100                        created_at 1700000000
///   82 1a 0007c830 81 5820 d75a..511a  proposer [510000, [key]]
///   82 1a 0006b6c0 81 5820 3d40..660c  acceptor [440000, [key]]
///   82                                 two directions
///     87 1a 0007c830 1a 0006b6c0 83 820101 820203 820303 1a 00015180 1a 6553f100 1a 6b49d200 00
///     87 1a 0006b6c0 1a 0007c830 82 820101 820303 19 0e10 1a 6553f100 1a 6b49d200 00
/// ```
const KAT_HEX: &str = concat!(
    "886e68636d722d61677265656d656e74015000112233445566778899aabbccddeeff011a6553f100",
    "821a0007c830815820d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "821a0006b6c08158203d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    "82871a0007c8301a0006b6c0838201018202038203031a000151801a6553f1001a6b49d20000",
    "871a0006b6c01a0007c83082820101820303190e101a6553f1001a6b49d20000",
);

fn kat_body() -> AgreementBody {
    let k1 = NodeKey::from_seed(&seed(RFC8032_SEED_1)).public();
    let k2 = NodeKey::from_seed(&seed(RFC8032_SEED_2)).public();
    AgreementBody {
        id: AgreementId::from_hex("00112233445566778899aabbccddeeff").unwrap(),
        version: 1,
        created_at: UnixTime::from_secs(1_700_000_000),
        proposer: Party {
            province: prov(SC),
            keys: vec![k1],
        },
        acceptor: Party {
            province: prov(GD),
            keys: vec![k2],
        },
        directions: vec![
            DirectionTerms {
                issuer: prov(SC),
                verifier: prov(GD),
                status_map: map(&[(Green, Green), (Yellow, Red), (Red, Red)]),
                max_code_age_secs: 86_400,
                max_trust_age_secs: 0,
                manifests: ManifestTerms::none(),
                tracing: false,
                effective_from: UnixTime::from_secs(1_700_000_000),
                effective_until: UnixTime::from_secs(1_800_000_000),
            },
            DirectionTerms {
                issuer: prov(GD),
                verifier: prov(SC),
                status_map: map(&[(Green, Green), (Red, Red)]),
                max_code_age_secs: 3_600,
                max_trust_age_secs: 0,
                manifests: ManifestTerms::none(),
                tracing: false,
                effective_from: UnixTime::from_secs(1_700_000_000),
                effective_until: UnixTime::from_secs(1_800_000_000),
            },
        ],
    }
}

//! Tests of the trust feed: a known-answer vector for the entry encoding, every chain rule
//! ([`FeedError`] variant), all-or-nothing batches, revocation semantics, the anchor check, the
//! storage record and decoding of hostile bytes. Keys are seeded, times fixed.

use proptest::prelude::*;

use super::*;
use crate::testkit::{key, prov, GD, SC};

mod chain;
mod encoding;
mod state;

/// The genesis time of every test chain: 2023-11-14T22:13:20Z.
const T0: UnixTime = UnixTime::from_secs(1_700_000_000);

fn sc() -> Province {
    prov(SC)
}

/// The genesis entry of Sichuan's feed for `k`, at `T0`.
fn genesis(k: &NodeKey) -> FeedEntry {
    FeedEntry::sign(sc(), None, T0, Statement::Genesis { key: k.public() }, k)
}

/// The entry after `prev`, made `dt` seconds after `T0`.
fn next(prev: &FeedEntry, dt: u64, statement: Statement, k: &NodeKey) -> FeedEntry {
    FeedEntry::sign(sc(), Some(prev), T0 + dt, statement, k)
}

/// A rotation from `old` to `new` after `prev` (with `new`'s valid proof of possession).
fn rotation(prev: &FeedEntry, dt: u64, old: &NodeKey, new: &NodeKey) -> FeedEntry {
    let statement = Statement::KeyRotation {
        key: new.public(),
        pop: proof_of_possession(sc(), new),
    };
    next(prev, dt, statement, old)
}

fn revoke_code(cti: &[u8; 16]) -> Statement {
    Statement::RevokeCode { cti: *cti }
}

/// The state after applying `entries` one by one (each must apply).
fn state_of(entries: &[FeedEntry]) -> FeedState {
    let mut s = FeedState::new(sc());
    for e in entries {
        s.apply(e)
            .unwrap_or_else(|err| panic!("entry {}: {err}", e.seq()));
    }
    s
}

/// `entry` with one bit of its signature flipped.
fn with_flipped_signature(entry: &FeedEntry, byte: usize) -> FeedEntry {
    let mut sig = *entry.signature();
    sig[byte] ^= 0x01;
    FeedEntry::from_parts(entry.encoded().to_vec(), entry.signer(), sig).unwrap()
}

/// Asserts that applying `entry` fails with `want` and leaves the state as it was.
fn refused(state: &mut FeedState, entry: &FeedEntry, want: FeedError) {
    let before = state.clone();
    assert_eq!(state.apply(entry), Err(want));
    assert_eq!(*state, before, "a refused entry must not change the state");
}

/// Public key of seed 32 x 0x11 (RFC 8032), computed independently (Python `cryptography`).
const KAT_PUBLIC: &str = "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737";

/// The genesis entry of province 510000 at 1700000000 for that key, written out by hand from the
/// CDDL in the module documentation (RFC 8949 preferred serialization):
const KAT_ENTRY: &str = concat!(
    "87",                                                               // array(7): the entry
    "69",                                                               //   text(9)
    "68636d722d66656564",                                               //     "hcmr-feed"
    "01",                                                               //   uint 1: format
    "1a0007c830", //   uint 510000 = 0x0007c830 (4-byte form: > 65535)
    "01",         //   uint 1: seq
    "5820",       //   bytes(32): prev
    "0000000000000000000000000000000000000000000000000000000000000000", // all zero for seq 1
    "1a6553f100", //   uint 1700000000 = 0x6553f100: time
    "82",         //   array(2): the statement
    "00",         //     uint 0: genesis
    "5820",       //     bytes(32): the key
    "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737",
);
/// SHA-256 of `KAT_ENTRY` (the next entry's `prev`), computed independently.
const KAT_HASH: &str = "e9ab70afa25434780ae2e77286eef9d382daa1f7b097030a6fb3464888944693";
/// Ed25519 over "hcmr-feed-v1\0" || `KAT_ENTRY` with seed 32 x 0x11, computed independently.
const KAT_SIGNATURE: &str = concat!(
    "6ce994926048b6c6647e0ad8d708445cb1663b2f9739010533005a909ace110e",
    "e99cb44976d46eb99b937c82804acee08ac126d820b33380102370a3bc473a07",
);
/// SHA-256(key)[0..8].
const KAT_KID: &str = "10ba682c8ad13513";

/// One entry of every statement kind, in a valid chain.
fn every_statement() -> Vec<FeedEntry> {
    let (k1, k2) = (key(1), key(2));
    let g = genesis(&k1);
    let r = rotation(&g, 1, &k1, &k2);
    let w = next(&r, 2, Statement::KeyWithdrawal { key: k1.public() }, &k2);
    let c = next(&w, 3, revoke_code(&[0xc7; 16]), &k2);
    let subject = Statement::RevokeSubject {
        subject_hash: SubjectHash([0xa5; 8]),
        before: UnixTime::from_secs(u64::MAX),
    };
    let sub = next(&c, 4, subject, &k2);
    let many = next(
        &sub,
        5,
        Statement::RevokeCodes {
            ctis: vec![[1; 16], [2; 16], [3; 16]],
        },
        &k2,
    );
    vec![g, r, w, c, sub, many]
}

//! hcmr-core: the parts of hcmr that decide, with no I/O.
//!
//! Everything here is a pure function of its inputs: no network, no database, no files, no clock
//! (times come in as arguments, as [`UnixTime`]). The node (`hcmr`) wraps it
//! with gRPC, sled and key files. The compiler keeps it so: this crate does not depend on tokio,
//! sled, tonic, axum, hyper or rustls (tests/purity.rs checks `cargo tree`).
//!
//! | module | owns |
//! |---|---|
//! | [`province`] | GB/T 2260 province-level codes and their table |
//! | [`identity`] | GB 11643 ID number check, masking, keyed subject hash |
//! | [`status`] | health status colours |
//! | [`keys`] | Ed25519 node keys and kids |
//! | [`cbor`] | CBOR helpers shared by the signed formats |
//! | [`code`] | the code format: CWT claims, COSE_Sign1, Base45, prefix |
//! | [`inspect`] | stage-by-stage decoding of hcmr and EU DCC strings, no signature check |
//! | [`manifest`] | the trip manifest format: a vehicle's people, signed, Base45, `HCMRT1:` (docs/transport.md) |
//! | [`agreement`] | bilateral agreements: terms, canonical encoding, signatures, termination |
//! | [`feed`] | each province's signed, hash-chained trust feed: keys, rotations, revocations |
//! | [`bundle`] | signed offline trust bundles for checkpoints without a network |
//! | [`trace`] | tracing a case: which manifests list a subject, the contact rule, a returned manifest's origin check (docs/tracing.md) |
//! | [`trust`] | the trust snapshot the verifier reads: agreements, feeds, sync times |
//! | [`verify`] | the decision: (code, trust snapshot, now) -> verdict |
//! | [`trace`] | traceability: the signed exposure notice a tracing node sends a fellow traveller's issuing province (docs/tracing.md) |
//! | [`time`] | [`UnixTime`], a point in time in whole seconds since the Unix epoch (UTC) |
//! | `testkit` | fixtures for tests, benches and fuzzing (feature `testkit`): keys, agreements, snapshots, codes, people |
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, missing_docs)]

pub mod agreement;
pub mod bundle;
pub mod cbor;
pub mod code;
pub mod feed;
pub mod identity;
pub mod inspect;
pub mod keys;
pub mod manifest;
pub mod province;
pub mod status;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
pub mod trace;
pub mod trust;
pub mod verify;

pub use time::UnixTime;

/// A time for people, from seconds since the Unix epoch: [`UnixTime`]'s RFC 3339 form
/// (`2026-11-29T10:00:00Z`), for callers that hold the bare number of a wire format.
pub fn rfc3339(t: u64) -> String {
    UnixTime::from_secs(t).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_is_total() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339(super::code::MAX_TIME),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(
            super::rfc3339(u64::MAX),
            "18446744073709551615 s after the Unix epoch"
        );
    }
}

//! hcmr: health-code mutual recognition between provinces.
//!
//! Each province runs one node. The node issues signed health codes for its residents and
//! verifies codes shown at its checkpoints, its own or a peer province's, recognizing a peer's code
//! exactly as far as the bilateral agreement between the two provinces says.
//!
//! The map (data flows from the edges to the pure core, never back):
//!
//! **The core**, the workspace crate `hcmr-core` (crates/hcmr-core), re-exported here under the
//! same names. It decides and does no I/O; the compiler keeps it so, since it depends on no
//! runtime, database or transport crate (its tests/purity.rs checks `cargo tree`).
//!
//! | module | owns |
//! |---|---|
//! | [`province`] | GB/T 2260 province-level codes and their table |
//! | [`identity`] | GB 11643 ID number check, masking, keyed subject hash |
//! | [`status`] | health status colours |
//! | [`keys`] | Ed25519 node keys and kids |
//! | [`code`] | the code format: CWT claims, COSE_Sign1, Base45, prefix |
//! | [`inspect`] | stage-by-stage decoding of hcmr and EU DCC strings, no signature check (`hcmr inspect`) |
//! | [`agreement`] | bilateral agreements: terms, canonical encoding, signatures, notices |
//! | [`feed`] | each province's signed, hash-chained trust feed: keys, rotations, revocations |
//! | [`manifest`] | trip manifests (`HCMRT1:`): a vehicle's signed list of boarded codes, docs/transport.md |
//! | [`bundle`] | signed offline trust bundles for checkpoints without a network |
//! | [`trust`] | the trust snapshot the verifier reads: agreements, feeds, sync times |
//! | [`verify`] | the decision: (code, trust snapshot, now) -> verdict |
//! | [`UnixTime`] | a point in time, whole seconds since the Unix epoch (UTC): every time hcmr holds |
//!
//! **The edges** of this package: files, the database, the network, people.
//!
//! | module | owns |
//! |---|---|
//! | [`store`] | sled trees by family (feeds, agreements, issued codes, audit, access, callers) |
//! | [`keyfile`] | the node's key files: PKCS#8 PEM, encrypted under a passphrase |
//! | [`tls`] | TLS on every listener; node certificates bound to signing keys for mutual TLS |
//! | [`client`] | connecting to a node: TLS with a pinned certificate, the caller's token |
//! | [`audit`] | the audit log of verifications and refused calls: records without personal data |
//! | [`callers`] | API callers, their roles (issuer, verifier, admin, organizer, receiver) and hashed tokens |
//! | [`backup`] | the backup file of a node: database and key files, checksummed |
//! | [`clock`] | the node's clock: the system's, or a manual one for tests and scenarios |
//! | [`display`] | times for people: in the display offset (`+08:00`), with the offset |
//! | [`qr`] | QR codes out (PNG, SVG; alphanumeric, level Q) and in (photos, screenshots) |
//! | [`card`] | the printable A6 card (SVG, PNG at 300 dpi, PDF) for people without a smartphone |
//! | [`proto`] | generated gRPC types of `proto/hcmr/v1` |
//!
//! **The node and the command line.**
//!
//! | module | owns |
//! |---|---|
//! | [`node`] | the node: `api/` (thin gRPC services) over one module per workflow, its state, guards, listeners, configuration and `init` |
//! | [`cli`] | the `hcmr` command line: a short dispatch, one file per command (the binary only parses and calls this) |
//! | [`mod@demo`] | the local five-province federation of the main job |
//! | `bench` | `hcmr bench`: load over gRPC, latency percentiles, server CPU per request |
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, missing_docs)]

pub use hcmr_core::agreement;
pub mod audit;
pub mod backup;
pub(crate) mod bench;
pub use hcmr_core::bundle;
pub mod callers;
pub mod card;
pub(crate) use hcmr_core::cbor;
pub mod cli;
pub mod client;
pub mod clock;
pub use hcmr_core::code;
pub mod demo;
pub mod display;
pub use hcmr_core::feed;
pub(crate) mod fsutil;
pub use hcmr_core::identity;
pub use hcmr_core::inspect;
pub mod keyfile;
pub use hcmr_core::keys;
pub use hcmr_core::manifest;
pub(crate) mod lock;
pub mod node;
pub use hcmr_core::province;
pub mod qr;
pub use hcmr_core::status;
pub mod store;
pub(crate) mod synthetic;
pub mod tls;
pub use hcmr_core::trace;
pub use hcmr_core::trust;
pub use hcmr_core::verify;

/// Generated protobuf and gRPC types of `proto/hcmr/v1/hcmr.proto` (package `hcmr.v1`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("hcmr.v1");

    /// Encoded `FileDescriptorSet` of the API, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("hcmr_descriptor");
}

pub use hcmr_core::{rfc3339, UnixTime};

/// Now by the system clock (the epoch if the clock is set before it); the one place hcmr reads
/// the clock, so everything else takes `now` as an argument.
pub fn unix_now() -> UnixTime {
    UnixTime::from_system_time(std::time::SystemTime::now()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    // The decision's reasons and the API enum agree value by value.
    #[test]
    fn proto_reason_values_match() {
        use crate::proto::Reason as P;
        use crate::verify::Reason;
        let pairs = [
            (Reason::Ok, P::Ok),
            (Reason::Malformed, P::Malformed),
            (Reason::UnknownIssuer, P::UnknownIssuer),
            (Reason::NoAgreement, P::NoAgreement),
            (Reason::AgreementNotYetInForce, P::AgreementNotYetInForce),
            (Reason::AgreementExpired, P::AgreementExpired),
            (Reason::UnknownKey, P::UnknownKey),
            (Reason::BadSignature, P::BadSignature),
            (Reason::NotYetValid, P::NotYetValid),
            (Reason::Expired, P::Expired),
            (Reason::CodeTooOld, P::CodeTooOld),
            (Reason::StatusNotRecognized, P::StatusNotRecognized),
            (Reason::StatusExpired, P::StatusExpired),
            (Reason::AgreementTerminated, P::AgreementTerminated),
            (Reason::Revoked, P::Revoked),
            (Reason::KeyWithdrawn, P::KeyWithdrawn),
            (Reason::KeyRetired, P::KeyRetired),
            (Reason::TrustStale, P::TrustStale),
        ];
        for (r, p) in pairs {
            assert_eq!(r as i32, p as i32, "{r:?}");
            assert_eq!(P::try_from(r as i32), Ok(p));
            // The stable identifier is the proto name without its prefix, in lower case.
            assert_eq!(
                format!("REASON_{}", r.as_str().to_ascii_uppercase()),
                p.as_str_name(),
                "{r:?}"
            );
            assert!(!r.explain().is_empty());
        }
        // Every proto value but UNSPECIFIED has its Rust variant: 1..=18, nothing beyond.
        assert_eq!(P::Unspecified as i32, 0);
        assert!(P::try_from(19).is_err());
    }
}

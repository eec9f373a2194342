//! hcmr: health-code mutual recognition between provinces.
//!
//! Each province runs one node. The node issues signed health codes for its residents and
//! verifies codes shown at its checkpoints, its own or a peer province's, recognizing a peer's code
//! exactly as far as the bilateral agreement between the two provinces says.
//!
//! The map of the crate (data flows from the edges to the pure core, never back):
//!
//! | module | owns |
//! |---|---|
//! | [`province`] | GB/T 2260 province-level codes and their table |
//! | [`identity`] | GB 11643 ID number check, masking, keyed subject hash |
//! | [`status`] | health status colours |
//! | [`keys`] | Ed25519 node keys and kids |
//! | [`code`] | the code format: CWT claims, COSE_Sign1, Base45, prefix |
//! | [`inspect`] | stage-by-stage decoding of hcmr and EU DCC strings, no signature check (`hcmr inspect`) |
//! | [`agreement`] | bilateral agreements: terms, canonical encoding, signatures, termination |
//! | [`feed`] | each province's signed, hash-chained trust feed: keys, rotations, revocations |
//! | [`audit`] | the audit log of verifications and refused calls: records without personal data |
//! | [`callers`] | API callers, their roles (issuer, verifier, admin) and hashed tokens |
//! | [`tls`] | TLS on every listener; node certificates bound to signing keys for mutual TLS |
//! | [`client`] | connecting to a node: TLS with a pinned certificate, the caller's token |
//! | [`bundle`] | signed offline trust bundles for checkpoints without a network |
//! | [`trust`] | the trust snapshot the verifier reads: agreements, feeds, sync times |
//! | [`verify`] | the decision: (code, trust snapshot, now) -> verdict; pure |
//! | [`store`] | sled trees and their typed records |
//! | [`backup`] | the backup file of a node: database and key files, checksummed |
//! | [`node`] | the gRPC server, its configuration and `init` |
//! | [`proto`] | generated gRPC types of `proto/hcmr/v1` |
//! | [`qr`] | QR codes out (PNG, SVG; alphanumeric, level Q) and in (photos, screenshots) |
//! | [`display`] | times for people: in the display offset (`+08:00`), with the offset |
//! | [`card`] | the printable A6 card (SVG, PNG at 300 dpi, PDF) for people without a smartphone |
//! | [`bench`] | `hcmr bench`: load over gRPC, latency percentiles, server CPU per request |
//! | [`demo`] | the local five-province federation of the main job |
//! | [`cli`] | the `hcmr` command line (the binary only parses and calls this) |
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, missing_docs)]

pub mod agreement;
pub mod audit;
pub mod backup;
pub mod bench;
pub mod bundle;
pub mod callers;
pub mod card;
pub(crate) mod cbor;
pub mod cli;
pub mod client;
pub mod clock;
pub mod code;
pub mod demo;
pub mod display;
pub mod feed;
pub(crate) mod fsutil;
pub mod identity;
pub mod inspect;
pub mod keys;
pub(crate) mod lock;
pub mod node;
pub mod province;
pub mod qr;
pub mod status;
pub mod store;
pub(crate) mod synthetic;
pub mod tls;
pub mod trust;
pub mod verify;

/// Generated protobuf and gRPC types of `proto/hcmr/v1/hcmr.proto` (package `hcmr.v1`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("hcmr.v1");

    /// Encoded `FileDescriptorSet` of the API, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("hcmr_descriptor");
}

/// A time for people: RFC 3339, UTC, whole seconds (`2026-11-29T10:00:00Z`), from seconds since
/// the Unix epoch.
pub fn rfc3339(t: u64) -> String {
    // RFC 3339 has four-digit years: a later time (only ever from a hostile input; decoders
    // refuse them) is shown as its number of seconds instead of panicking.
    if t > code::MAX_TIME {
        return format!("{t} s after the Unix epoch");
    }
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
        .to_string()
}

/// Seconds since the Unix epoch (UTC) by the system clock; the one place hcmr reads the clock,
/// so everything else takes `now` as an argument.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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

//! The trip manifest of `verify-manifest`: 55 people (the QR size docs/transport.md section 3.2
//! is about) boarded from the peer province's codes and sealed with the peer's key, read from
//! its folder, as its origin node would seal it.

use std::path::Path;

use crate::keyfile::NodeKeyFile as _;
use crate::keys::NodeKey;
use crate::manifest::{Escort, Manifest, Person, Place, TripId, Vehicle};
use crate::status::HealthStatus;
use crate::UnixTime;

use super::BenchError;

/// People on the bench's manifest.
const MANIFEST_PEOPLE: usize = 55;

/// A 55-person manifest of the node whose config file is `peer_config` (its key read as the
/// node reads it, passphrase and all), over its green `codes` (the first 55; seat 1 crew),
/// sealed at `now`, departing in half an hour and arriving 20 h later, for a vehicle to Zhejiang
/// (Guangdong for a Zhejiang peer) passing every province: the checking node's agreement with
/// the peer must accept its manifests in transit and on arrival.
///
/// # Errors
/// [`BenchError::Setup`] for an unreadable config or key, fewer than 55 codes, or a code that
/// is not one of the peer's.
pub fn peer_manifest(
    peer_config: &Path,
    codes: &[String],
    now: UnixTime,
) -> Result<String, BenchError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| {
        BenchError::Setup(format!("the verify-manifest trip: {what}: {e}"))
    };
    let config = crate::node::Config::load(peer_config).map_err(|e| setup("peer config", &e))?;
    let protection = config
        .key_protection()
        .map_err(|e| setup("peer key passphrase", &e))?;
    let key = NodeKey::read_pem_protected(&config.key_file, &protection)
        .map_err(|e| setup("peer key", &e))?;
    if codes.len() < MANIFEST_PEOPLE {
        return Err(BenchError::Setup(format!(
            "the verify-manifest trip needs {MANIFEST_PEOPLE} codes of the peer, got {}",
            codes.len()
        )));
    }
    let people = codes[..MANIFEST_PEOPLE]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let code = crate::code::HealthCode::decode(c).map_err(|e| setup("a peer code", &e))?;
            Person::from_code(&code, 0, HealthStatus::Green, i == 0, now)
                .map_err(|e| setup("a peer code", &e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let origin: crate::province::Province = config
        .province
        .parse()
        .map_err(|e| setup("peer province", &e))?;
    let destination = if origin.code() == 330000 {
        440106
    } else {
        330200
    };
    let m = Manifest {
        trip_id: TripId(*b"benchtrp"),
        version: 1,
        origin: origin.code() + 101,
        destination,
        transit: Vec::new(),
        vehicle: Vehicle::new("BENCH-001").map_err(|e| setup("vehicle", &e))?,
        place: Place::new("bench factory").map_err(|e| setup("place", &e))?,
        departure: now + 1800,
        arrival: now + 1800 + 20 * 3600,
        sealed_at: now,
        escort: Escort::new("王*").map_err(|e| setup("escort", &e))?,
        issuers: vec![origin],
        people,
    };
    m.check().map_err(|e| setup("manifest", &e))?;
    Ok(crate::manifest::sign(&m, &key))
}

//! Verify replicas (docs/deploy.md): read-only nodes of a province that follow its primary and
//! verify, so that checkpoints keep an online answer while one machine is down and the province
//! can add machines for load.
//!
//! - [`NodeRole`]: what this node is; a replica's [`ReplicaLink`] holds what it knows of its
//!   primary (the URL, when it last heard from it, whether it has synced once).
//! - [`serves`]: the RPCs a replica answers itself; every other is refused with
//!   FAILED_PRECONDITION naming the primary (a load balancer sends them to the primary).
//!
//! The primary's side (enrolling replicas, the state they follow, their audit records) and the
//! replica's (following, shipping its audit records) live in this folder, one file each.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::lock::Locked;

use crate::keys::PublicKey;
use crate::UnixTime;

mod enroll;
pub(crate) mod follow;
mod link;
pub(crate) mod serve;
pub(crate) mod ship;

/// At a primary: when each enrolled replica last followed (in memory; ListReplicas shows it).
#[derive(Default)]
pub(crate) struct SeenReplicas(Mutex<HashMap<String, UnixTime>>);

impl SeenReplicas {
    /// Records that replica `name` followed at `now`.
    pub(crate) fn seen(&self, name: &str, now: UnixTime) {
        self.0.locked().insert(name.to_string(), now);
    }

    /// When replica `name` last followed; `None`: not since this node started.
    pub(crate) fn last_seen(&self, name: &str) -> Option<UnixTime> {
        self.0.locked().get(name).copied()
    }
}

/// What a node is in its province.
pub(crate) enum NodeRole {
    /// The province's one writer: holds the keys, issues, revokes, signs.
    Primary,
    /// A verify replica following a primary.
    Replica(Box<ReplicaLink>),
}

impl NodeRole {
    /// At a verify replica that is not ready at `now` (never synced since start, or its primary
    /// silent for longer than `replica.max_lag_secs`): the refusal of a verification,
    /// UNAVAILABLE naming why and the primary, so that a checkpoint calling it directly is not
    /// answered on state older than the province allows (a load balancer has taken it out
    /// already).
    ///
    /// # Errors
    /// UNAVAILABLE when not ready; `Ok` on a primary and a ready replica.
    pub(crate) fn check_fresh(&self, now: UnixTime) -> Result<(), super::error::ApiError> {
        match self.replica().map(|r| (r, r.readiness(now))) {
            Some((r, Readiness::NotReady(why))) => Err(super::error::ApiError::NotReady(format!(
                "verify replica {} does not verify now: {why}; ask the primary or another node",
                r.name
            ))),
            _ => Ok(()),
        }
    }

    /// The replica's link, on a replica.
    pub(crate) fn replica(&self) -> Option<&ReplicaLink> {
        match self {
            NodeRole::Primary => None,
            NodeRole::Replica(r) => Some(r),
        }
    }
}

/// What a replica knows of its primary.
pub(crate) struct ReplicaLink {
    /// The primary's URL (`[replica] primary`).
    pub(crate) primary: String,
    /// The name it was enrolled under.
    pub(crate) name: String,
    /// A random id of this replica's data folder (16 hex digits), made when it was created.
    pub(crate) instance: String,
    /// The primary's key that certified this replica's TLS key at enrollment: the anchor its
    /// copy of the own feed must contain, and a key the primary's certificate may be certified
    /// by.
    pub(crate) anchor: PublicKey,
    /// Longest without hearing from the primary before NOT_SERVING (`max_lag_secs`).
    pub(crate) max_lag: Duration,
    /// When it last heard from the primary (a state message or a feed entry), seconds since
    /// the Unix epoch by this node's clock; 0: never.
    last_contact: AtomicU64,
    /// Whether the first full sync (state, own feed, every peer feed) has completed since start.
    synced: AtomicBool,
}

/// Whether a node may serve verifications now, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// SERVING.
    Ready,
    /// NOT_SERVING, with the reason (for the health port's body and the log).
    NotReady(String),
}

impl ReplicaLink {
    /// A link not yet synced.
    pub(crate) fn new(
        primary: String,
        name: String,
        instance: String,
        anchor: PublicKey,
        max_lag: Duration,
    ) -> Self {
        ReplicaLink {
            primary,
            name,
            instance,
            anchor,
            max_lag,
            last_contact: AtomicU64::new(0),
            synced: AtomicBool::new(false),
        }
    }

    /// Records that the primary was heard from at `now`.
    pub(crate) fn heard(&self, now: UnixTime) {
        self.last_contact.fetch_max(now.secs(), Ordering::Relaxed);
    }

    /// Records that the first full sync completed.
    pub(crate) fn mark_synced(&self) {
        self.synced.store(true, Ordering::Relaxed);
    }

    /// When the primary was last heard from; `None`: never.
    pub(crate) fn last_contact(&self) -> Option<UnixTime> {
        match self.last_contact.load(Ordering::Relaxed) {
            0 => None,
            t => Some(UnixTime::from_secs(t)),
        }
    }

    /// Seconds since the primary was last heard from at `now`; `None`: never.
    pub(crate) fn lag_secs(&self, now: UnixTime) -> Option<u64> {
        self.last_contact().map(|t| now.saturating_since(t))
    }

    /// SERVING once the first full sync is done and while the primary was heard from within
    /// `max_lag`.
    pub(crate) fn readiness(&self, now: UnixTime) -> Readiness {
        if !self.synced.load(Ordering::Relaxed) {
            return Readiness::NotReady(format!(
                "not yet synced with the primary {} since start",
                self.primary
            ));
        }
        match self.lag_secs(now) {
            Some(lag) if lag <= self.max_lag.as_secs() => Readiness::Ready,
            Some(lag) => Readiness::NotReady(format!(
                "the primary {} was last heard from {lag} s ago (replica.max_lag_secs = {})",
                self.primary,
                self.max_lag.as_secs()
            )),
            None => Readiness::NotReady(format!("never heard from the primary {}", self.primary)),
        }
    }
}

impl super::NodeState {
    /// Whether this node should take verifications now (the health port's `/readyz`, and
    /// grpc.health.v1 on a replica): a primary is ready while it serves; a replica once it has
    /// synced with its primary and while it hears from it within `replica.max_lag_secs`.
    pub(crate) fn readiness(&self) -> Readiness {
        match self.role.replica() {
            None => Readiness::Ready,
            Some(r) => r.readiness(self.now()),
        }
    }

    /// The primary's URL, on a verify replica.
    pub(crate) fn primary_url(&self) -> Option<&str> {
        self.role.replica().map(|r| r.primary.as_str())
    }
}

/// The RPCs (gRPC paths) a verify replica answers itself: verification, a vehicle's manifest,
/// node information, health and reflection. Everything else needs the primary.
pub(crate) fn serves(path: &str) -> bool {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return true;
    };
    match service {
        "hcmr.v1.HealthCodeService" => matches!(
            method,
            "VerifyHealthCode" | "BatchVerifyHealthCodes" | "VerifyManifest"
        ),
        "hcmr.v1.FederationService" => method == "GetNodeInfo",
        "hcmr.v1.OperatorService"
        | "hcmr.v1.TripService"
        | "hcmr.v1.ArrivalService"
        | "hcmr.v1.TraceService"
        | "hcmr.v1.ReplicaService" => false,
        // grpc.health.v1, server reflection, and unknown paths (UNIMPLEMENTED by the server).
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_serves_verification_and_refuses_writes() {
        for p in [
            "/hcmr.v1.HealthCodeService/VerifyHealthCode",
            "/hcmr.v1.HealthCodeService/BatchVerifyHealthCodes",
            "/hcmr.v1.HealthCodeService/VerifyManifest",
            "/hcmr.v1.FederationService/GetNodeInfo",
            "/grpc.health.v1.Health/Check",
        ] {
            assert!(serves(p), "{p}");
        }
        for p in [
            "/hcmr.v1.HealthCodeService/IssueHealthCode",
            "/hcmr.v1.HealthCodeService/RevokeHealthCode",
            "/hcmr.v1.HealthCodeService/RevokeSubject",
            "/hcmr.v1.HealthCodeService/MatchIdentity",
            "/hcmr.v1.FederationService/GetFeed",
            "/hcmr.v1.FederationService/ProposeAgreement",
            "/hcmr.v1.OperatorService/ListAuditRecords",
            "/hcmr.v1.TripService/CreateManifest",
            "/hcmr.v1.ArrivalService/ConfirmPerson",
            "/hcmr.v1.TraceService/TraceSubject",
            "/hcmr.v1.ReplicaService/FollowState",
        ] {
            assert!(!serves(p), "{p}");
        }
    }

    #[test]
    fn readiness_needs_a_first_sync_and_a_recent_primary() {
        let key = crate::keys::NodeKey::generate().public();
        let r = ReplicaLink::new(
            "https://p:7510".into(),
            "r1".into(),
            "0011223344556677".into(),
            key,
            Duration::from_secs(30),
        );
        let now = UnixTime::from_secs(1_000);
        assert!(matches!(r.readiness(now), Readiness::NotReady(m) if m.contains("not yet synced")));
        r.heard(now);
        assert!(matches!(r.readiness(now), Readiness::NotReady(_)));
        r.mark_synced();
        assert_eq!(r.readiness(now), Readiness::Ready);
        assert_eq!(r.readiness(UnixTime::from_secs(1_030)), Readiness::Ready);
        assert!(
            matches!(r.readiness(UnixTime::from_secs(1_031)), Readiness::NotReady(m) if m.contains("31 s ago"))
        );
        // An older contact never moves the time back.
        r.heard(UnixTime::from_secs(900));
        assert_eq!(r.lag_secs(UnixTime::from_secs(1_010)), Some(10));
    }
}

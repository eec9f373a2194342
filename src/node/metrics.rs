//! Operations metrics: counters and histograms the node updates as it works, and values read
//! from the node at scrape time, served at `GET /metrics` on `metrics_listen` in the Prometheus
//! text exposition format (version 0.0.4).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `hcmr_verifications_total` | counter | `reason` ([`crate::verify::Reason::as_str`]), `verdict` (`recognized`, `not_recognized`) |
//! | `hcmr_verify_duration_seconds` | histogram | the verification decision |
//! | `hcmr_manifest_checks_total` | counter | `reason` (the first of a STOP, [`crate::manifest::ManifestReason::as_str`]; `ok` for a PASS), `verdict` (`pass`, `stop`) |
//! | `hcmr_issue_duration_seconds` | histogram | the IssueHealthCode call |
//! | `hcmr_peer_sync_age_seconds` | gauge | `peer`: seconds since its last successful sync |
//! | `hcmr_peer_sync_total` | counter | `peer`, `result` (`ok`, `error`) |
//! | `hcmr_peer_sync_errors_total` | counter | `peer` |
//! | `hcmr_feed_watches_open` | gauge | `peer`: watches of its feed open (or opening) now |
//! | `hcmr_feed_watch_entries_total` | counter | `peer`: its feed entries received by watch |
//! | `hcmr_store_size_bytes` | gauge | |
//! | `hcmr_store_flushes_total` | counter | |
//! | `hcmr_verify_batches_total` | counter | decisions of the verifier threads (each one batch) |
//! | `hcmr_verify_batched_codes_total` | counter | codes in them (divided by batches: the mean batch) |
//! | `hcmr_issued_codes_total` | counter | codes issued (logged durably, then returned) since the node started |
//! | `hcmr_agreements` | gauge | agreements in the trust snapshot |
//! | `hcmr_access_denied_total` | counter | `outcome` (`UNAUTHENTICATED`, `PERMISSION_DENIED`, ...) |
//! | `hcmr_audit_dropped_total` | counter | audit records dropped (queue full) |
//! | `hcmr_trips_overdue` | gauge | sealed trips of this origin without a handover by their planned arrival plus the grace period |
//! | `hcmr_trip_outbox_pending` | gauge | signed trip records (check reports, handover receipts) waiting for their node's acknowledgement |
//! | `hcmr_trip_records_given_up_total` | counter | trip records their node refused for good since the node started (kept in `trip_outbox_dead`) |
//! | `hcmr_replica_audit_pending` | gauge | at a verify replica: audit records made here waiting for the primary's acknowledgement (`audit_outbox`) |
//! | `hcmr_replica_audit_shipped_total` | counter | at a verify replica: audit records the primary acknowledged since this node started |
//! | `hcmr_build_info` | gauge (1) | `version` |
//!
//! Nothing personal is in a metric: labels are provinces, reasons and outcomes. The endpoint
//! needs no token; serve it on a management address (TLS with the node certificate when the
//! node has TLS).

use crate::lock::Locked;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::batcher::Batcher;
use super::{AuditSink, NodeState, TrustState};
use crate::clock::Clock;
use crate::province::Province;
use crate::store::Store;

/// Histogram buckets, in seconds: 50 µs to 1 s (a verification takes well under a millisecond,
/// an issue a flush of the store).
const DURATION_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerificationLabels {
    reason: &'static str,
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerSyncLabels {
    peer: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The metrics a node updates as it works. Cheap to update from any task (atomics, and a short
/// lock for a histogram or a new label set).
pub(crate) struct Metrics {
    verifications: Family<VerificationLabels, Counter>,
    manifest_checks: Family<VerificationLabels, Counter>,
    verify_duration: Histogram,
    issue_duration: Histogram,
    issued: Counter,
    peer_sync: Family<PeerSyncLabels, Counter>,
    peer_sync_errors: Family<PeerLabels, Counter>,
    access_denied: Family<OutcomeLabels, Counter>,
    feed_watches_open: Family<PeerLabels, Gauge>,
    feed_watch_entries: Family<PeerLabels, Counter>,
    /// Trip records refused for good by their node ([`super::outbox`]).
    pub(crate) trip_records_given_up: AtomicU64,
    /// At a verify replica: audit records the primary acknowledged ([`super::replica::ship`]).
    pub(crate) replica_audit_shipped: AtomicU64,
    /// At a verify replica: failed attempts to follow the primary.
    replica_follow_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            verifications: Family::default(),
            manifest_checks: Family::default(),
            verify_duration: duration_histogram(),
            issue_duration: duration_histogram(),
            issued: Counter::default(),
            peer_sync: Family::default(),
            peer_sync_errors: Family::default(),
            access_denied: Family::default(),
            feed_watches_open: Family::default(),
            feed_watch_entries: Family::default(),
            trip_records_given_up: AtomicU64::new(0),
            replica_audit_shipped: AtomicU64::new(0),
            replica_follow_failures: Counter::default(),
        }
    }
}

impl Metrics {
    /// Counts one verification and the time its decision took.
    pub(crate) fn verification(&self, verdict: &crate::verify::Verdict, took: std::time::Duration) {
        self.verifications
            .get_or_create(&VerificationLabels {
                reason: verdict.reason.as_str(),
                verdict: if verdict.recognized() {
                    "recognized"
                } else {
                    "not_recognized"
                },
            })
            .inc();
        self.verify_duration.observe(took.as_secs_f64());
    }

    /// Counts one check of a trip manifest.
    pub(crate) fn manifest_check(&self, verdict: &crate::manifest::ManifestVerdict) {
        self.manifest_checks
            .get_or_create(&VerificationLabels {
                reason: verdict
                    .reasons()
                    .first()
                    .map_or("ok", |r| r.reason.as_str()),
                verdict: if verdict.passed() { "pass" } else { "stop" },
            })
            .inc();
    }

    /// The time one IssueHealthCode call took, and whether it issued a code (`false`: refused
    /// or failed).
    pub(crate) fn issue(&self, took: std::time::Duration, issued: bool) {
        self.issue_duration.observe(took.as_secs_f64());
        if issued {
            self.issued.inc();
        }
    }

    /// Counts one failed attempt of a verify replica to follow its primary.
    pub(crate) fn replica_follow_failed(&self) {
        self.replica_follow_failures.inc();
    }

    /// Counts one sync of `peer`.
    pub(crate) fn peer_sync(&self, peer: Province, ok: bool) {
        let peer = peer.to_string();
        if !ok {
            self.peer_sync_errors
                .get_or_create(&PeerLabels { peer: peer.clone() })
                .inc();
        }
        self.peer_sync
            .get_or_create(&PeerSyncLabels {
                peer,
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// A watch of `peer`'s feed opened (`delta` 1) or ended (-1).
    pub(crate) fn feed_watch_open(&self, peer: Province, delta: i64) {
        self.feed_watches_open
            .get_or_create(&PeerLabels {
                peer: peer.to_string(),
            })
            .inc_by(delta);
    }

    /// Counts `n` of `peer`'s feed entries received by watch.
    pub(crate) fn feed_watch_entries(&self, peer: Province, n: u64) {
        self.feed_watch_entries
            .get_or_create(&PeerLabels {
                peer: peer.to_string(),
            })
            .inc_by(n);
    }

    /// Counts one refused call (`outcome`: the gRPC code's name, as the access log has it);
    /// returns how many calls were refused with that outcome since the node started, this one
    /// included.
    pub(crate) fn access_denied(&self, outcome: &str) -> u64 {
        self.access_denied
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc()
            + 1
    }

    /// Every metric in the Prometheus text format, with the values read from `state` now.
    pub(crate) fn render(&self, state: &Gauged<'_>) -> Result<String, std::fmt::Error> {
        // The node's clock: the one `synced_at` was taken by.
        let now = state.clock.now();
        let mut r = Registry::default();
        r.register(
            "hcmr_build",
            "The running hcmr version (value 1)",
            Info::new(vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
        );
        r.register(
            "hcmr_verifications",
            "Verifications made here (gRPC and checkpoint page), by verdict and reason",
            self.verifications.clone(),
        );
        r.register(
            "hcmr_manifest_checks",
            "Trip manifests checked here (VerifyManifest), by verdict and first reason",
            self.manifest_checks.clone(),
        );
        r.register(
            "hcmr_verify_duration_seconds",
            "Time of the verification decision on the trust snapshot",
            self.verify_duration.clone(),
        );
        r.register(
            "hcmr_issue_duration_seconds",
            "Time of an IssueHealthCode call, from request to answer",
            self.issue_duration.clone(),
        );
        let ages: Family<PeerLabels, Gauge<f64, AtomicU64>> = Family::default();
        for (peer, feed) in state.trust.peer_feeds.locked().iter() {
            ages.get_or_create(&PeerLabels {
                peer: peer.to_string(),
            })
            .set(now.saturating_since(feed.synced_at) as f64);
        }
        r.register(
            "hcmr_peer_sync_age_seconds",
            "Seconds since the last successful sync of a peer's trust state",
            ages,
        );
        if let Some(link) = state.role.replica() {
            r.register(
                "hcmr_replica_lag_seconds",
                "At a verify replica: seconds since it last heard from its primary (-1: never since start)",
                ConstGauge::new(link.lag_secs(now).map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))),
            );
            r.register(
                "hcmr_replica_ready",
                "At a verify replica: 1 when it serves verifications (synced, primary heard from within replica.max_lag_secs), else 0",
                ConstGauge::new(i64::from(link.readiness(now) == super::replica::Readiness::Ready)),
            );
            r.register(
                "hcmr_replica_follow_failures",
                "At a verify replica: failed attempts to follow its primary",
                self.replica_follow_failures.clone(),
            );
        }
        r.register(
            "hcmr_peer_sync",
            "Peer syncs, by peer and result",
            self.peer_sync.clone(),
        );
        r.register(
            "hcmr_peer_sync_errors",
            "Failed peer syncs, by peer",
            self.peer_sync_errors.clone(),
        );
        r.register(
            "hcmr_feed_watches_open",
            "Watches of a peer's feed open (or opening) now, by peer",
            self.feed_watches_open.clone(),
        );
        r.register(
            "hcmr_feed_watch_entries",
            "A peer's feed entries received by watch, by peer",
            self.feed_watch_entries.clone(),
        );
        match state.store.size_on_disk() {
            Ok(size) => r.register(
                "hcmr_store_size_bytes",
                "Size of the database on disk",
                ConstGauge::new(i64::try_from(size).unwrap_or(i64::MAX)),
            ),
            Err(e) => tracing::warn!(error = %e, "metrics: store size unavailable"),
        }
        r.register(
            "hcmr_store_flushes",
            "Flushes of the database to disk since the node started",
            ConstCounter::new(state.store.flush_count()),
        );
        let (batches, codes) = state.batcher.counts();
        r.register(
            "hcmr_verify_batches",
            "Verification decisions: batches of the verifier threads, and calls decided inline (a batch of one each)",
            ConstCounter::new(batches),
        );
        r.register(
            "hcmr_verify_inline",
            "Calls decided inline on the runtime at low load (nothing else being decided, recent decisions small)",
            ConstCounter::new(state.batcher.inline_count()),
        );
        r.register(
            "hcmr_verify_batched_codes",
            "Codes in those batches",
            ConstCounter::new(codes),
        );
        // Counted as codes are issued: counting the log's entries would walk the whole tree
        // (sled keeps no count), tens of millions of entries at national scale, every scrape.
        r.register(
            "hcmr_issued_codes",
            "Codes issued since the node started (each logged durably before it was returned)",
            self.issued.clone(),
        );
        r.register(
            "hcmr_agreements",
            "Agreements in the trust snapshot",
            ConstGauge::new(
                i64::try_from(state.trust.load().agreement_count()).unwrap_or(i64::MAX),
            ),
        );
        r.register(
            "hcmr_access_denied",
            "Refused calls, by outcome",
            self.access_denied.clone(),
        );
        r.register(
            "hcmr_audit_dropped",
            "Audit records dropped because the audit queue was full",
            ConstCounter::new(state.audit.dropped.load(Ordering::Relaxed)),
        );
        match super::trips::overdue_count(state.store, now) {
            Ok(n) => r.register(
                "hcmr_trips_overdue",
                "Sealed trips of this origin with no handover by their planned arrival plus the grace period",
                ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX)),
            ),
            Err(e) => tracing::warn!(error = %e, "metrics: overdue trips unavailable"),
        }
        r.register(
            "hcmr_trip_outbox_pending",
            "Signed trip records (check reports, handover receipts) waiting for their node's acknowledgement",
            ConstGauge::new(i64::try_from(state.store.trip_outbox_len()).unwrap_or(i64::MAX)),
        );
        r.register(
            "hcmr_trip_records_given_up",
            "Trip records their node refused for good since this node started (kept in trip_outbox_dead)",
            ConstCounter::new(self.trip_records_given_up.load(Ordering::Relaxed)),
        );
        match state.store.audit_outbox_len() {
            Ok(n) => r.register(
                "hcmr_replica_audit_pending",
                "At a verify replica: audit records made here waiting for the primary's acknowledgement",
                ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX)),
            ),
            Err(e) => tracing::warn!(error = %e, "metrics: audit outbox unavailable"),
        }
        r.register(
            "hcmr_replica_audit_shipped",
            "At a verify replica: audit records the primary acknowledged since this node started",
            ConstCounter::new(self.replica_audit_shipped.load(Ordering::Relaxed)),
        );
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &r)?;
        Ok(out)
    }
}

/// What a scrape reads from the node besides the counters of [`Metrics`]: the trust state (peer
/// sync ages, agreements), the store (size, flushes), the verifier threads, the audit sink
/// (dropped records) and the clock.
pub(crate) struct Gauged<'a> {
    trust: &'a TrustState,
    store: &'a Store,
    batcher: &'a Batcher,
    audit: &'a AuditSink,
    clock: &'a Clock,
    role: &'a super::replica::NodeRole,
}

impl NodeState {
    /// The parts of the node a metrics scrape reads.
    pub(crate) fn gauged(&self) -> Gauged<'_> {
        Gauged {
            trust: &self.trust,
            store: &self.store,
            batcher: &self.batcher,
            audit: &self.audit,
            clock: &self.clock,
            role: &self.role,
        }
    }
}

/// `GET /metrics`.
async fn scrape(axum::extract::State(s): axum::extract::State<Arc<NodeState>>) -> Response {
    // The store's size on disk reads the file system: off the async workers.
    let rendered = tokio::task::spawn_blocking(move || s.metrics.render(&s.gauged())).await;
    match rendered {
        Ok(Ok(body)) => {
            let mut r = body.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                ),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(Err(_)) | Err(_) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be encoded\n",
        )
            .into_response(),
    }
}

/// The routes of the metrics endpoint.
pub(crate) fn router(state: Arc<NodeState>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(state)
}

/// Serves the metrics endpoint on `listener` until `stop` turns true.
pub(crate) async fn serve<L>(
    state: Arc<NodeState>,
    listener: L,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    super::http::Remote:
        for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    axum::serve(
        listener,
        router(state.clone())
            .layer(axum::middleware::from_fn_with_state(
                std::time::Duration::from_secs(state.guards.limits.request_timeout_secs),
                super::http::count_calls,
            ))
            .into_make_service_with_connect_info::<super::http::Remote>(),
    )
    .with_graceful_shutdown(async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_buckets_cover_50us_to_1s() {
        assert_eq!(DURATION_BUCKETS[0], 0.000_05);
        assert_eq!(DURATION_BUCKETS[DURATION_BUCKETS.len() - 1], 1.0);
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn counters_have_their_labels() {
        let m = Metrics::default();
        m.peer_sync("440000".parse().unwrap(), false);
        m.peer_sync("440000".parse().unwrap(), true);
        m.access_denied("UNAUTHENTICATED");
        m.feed_watch_open("440000".parse().unwrap(), 1);
        m.feed_watch_open("440000".parse().unwrap(), 1);
        m.feed_watch_open("440000".parse().unwrap(), -1);
        m.feed_watch_entries("440000".parse().unwrap(), 3);
        let mut r = Registry::default();
        r.register("hcmr_feed_watches_open", "", m.feed_watches_open.clone());
        r.register("hcmr_feed_watch_entries", "", m.feed_watch_entries.clone());
        r.register("hcmr_peer_sync", "", m.peer_sync.clone());
        r.register("hcmr_peer_sync_errors", "", m.peer_sync_errors.clone());
        r.register("hcmr_access_denied", "", m.access_denied.clone());
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &r).unwrap();
        for line in [
            "hcmr_peer_sync_total{peer=\"440000\",result=\"error\"} 1",
            "hcmr_peer_sync_total{peer=\"440000\",result=\"ok\"} 1",
            "hcmr_peer_sync_errors_total{peer=\"440000\"} 1",
            "hcmr_access_denied_total{outcome=\"UNAUTHENTICATED\"} 1",
            "hcmr_feed_watches_open{peer=\"440000\"} 1",
            "hcmr_feed_watch_entries_total{peer=\"440000\"} 3",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing in\n{out}");
        }
    }
}

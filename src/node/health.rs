//! grpc.health.v1 for the node: the status of "" (the whole node) and of the hcmr services,
//! NOT_SERVING until the node is ready, SERVING while it serves, NOT_SERVING again as soon as
//! shutdown begins. On a verify replica SERVING also follows its readiness (synced with its
//! primary and heard from it within `replica.max_lag_secs`), read every 500 ms. Watch streams
//! end when the node starts draining (right after they have carried NOT_SERVING), so an open
//! Watch never holds up a graceful shutdown. The node's [`Phase`] is what the plain-HTTP health
//! port (`health_port`) answers from.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;
use tokio_stream::Stream;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService};
use tonic_health::ServingStatus;

use super::api;
use super::replica::Readiness;
use super::NodeState;
use crate::proto;

/// How often a verify replica's grpc.health.v1 status is brought in line with its readiness.
const READINESS_POLL: Duration = Duration::from_millis(500);

/// Where a node is in its life, as the health port tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Bound, not serving yet.
    Starting,
    /// Serving calls.
    Serving,
    /// Shutdown has begun: in-flight calls drain, new ones should go elsewhere.
    Draining,
}

/// Every name the node reports: "" (the node) and its services.
fn service_names() -> [&'static str; 8] {
    use tonic::server::NamedService;
    [
        "",
        <proto::health_code_service_server::HealthCodeServiceServer<api::HealthCodeApi> as NamedService>::NAME,
        <proto::federation_service_server::FederationServiceServer<api::FederationApi> as NamedService>::NAME,
        <proto::operator_service_server::OperatorServiceServer<api::OperatorApi> as NamedService>::NAME,
        <proto::trip_service_server::TripServiceServer<api::TripApi> as NamedService>::NAME,
        <proto::arrival_service_server::ArrivalServiceServer<api::ArrivalApi> as NamedService>::NAME,
        <proto::trace_service_server::TraceServiceServer<api::TraceApi> as NamedService>::NAME,
        <proto::replica_service_server::ReplicaServiceServer<api::ReplicaApi> as NamedService>::NAME,
    ]
}

/// Sets the node's health statuses.
#[derive(Clone)]
pub(crate) struct NodeHealth {
    reporter: HealthReporter,
    /// The node's phase, for the health port.
    phase: Arc<watch::Sender<Phase>>,
    /// True once shutdown has begun: the readiness task no longer changes the statuses.
    stopped: Arc<tokio::sync::Mutex<bool>>,
}

impl NodeHealth {
    /// Statuses NOT_SERVING, and the Health service; its Watch streams end once `draining`
    /// turns true.
    pub(crate) async fn new(
        draining: watch::Receiver<bool>,
    ) -> (NodeHealth, HealthServer<DrainingHealth>) {
        let reporter = HealthReporter::new();
        let h = NodeHealth {
            reporter,
            phase: Arc::new(watch::channel(Phase::Starting).0),
            stopped: Arc::new(tokio::sync::Mutex::new(false)),
        };
        h.set(false).await;
        let service = DrainingHealth {
            inner: HealthService::from_health_reporter(h.reporter.clone()),
            draining,
        };
        (h, HealthServer::new(service))
    }

    /// The node's phase, as it changes.
    pub(crate) fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    /// The node serves: SERVING on a primary; on a verify replica SERVING while it is ready,
    /// kept in line with its readiness by a task (every 500 ms) until [`NodeHealth::stop`].
    pub(crate) async fn start_serving(&self, state: &Arc<NodeState>) {
        let _ = self.phase.send(Phase::Serving);
        if state.role.replica().is_none() {
            self.set(true).await;
            return;
        }
        let mut last = state.readiness();
        self.follow(&last).await;
        let (h, state) = (self.clone(), state.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(READINESS_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = state.readiness();
                // Ready or not is what changes the status and earns a log line; the reason's
                // words change every second while not ready (the lag counts up).
                if std::mem::discriminant(&now) == std::mem::discriminant(&last) {
                    continue;
                }
                let stopped = h.stopped.lock().await;
                if *stopped {
                    return;
                }
                h.set(now == Readiness::Ready).await;
                drop(stopped);
                match &now {
                    Readiness::Ready => tracing::info!("replica ready: health SERVING"),
                    Readiness::NotReady(why) => {
                        tracing::warn!(reason = %why, "replica not ready: health NOT_SERVING")
                    }
                }
                last = now;
            }
        });
    }

    /// Sets the statuses from `readiness`, unless shutdown has begun.
    async fn follow(&self, readiness: &Readiness) {
        let stopped = self.stopped.lock().await;
        if !*stopped {
            self.set(*readiness == Readiness::Ready).await;
        }
        if let Readiness::NotReady(why) = readiness {
            tracing::warn!(reason = %why, "replica not ready: health NOT_SERVING");
        }
    }

    /// Shutdown begins: NOT_SERVING for good, and the health port answers 503.
    pub(crate) async fn stop(&self) {
        let mut stopped = self.stopped.lock().await;
        *stopped = true;
        self.set(false).await;
        let _ = self.phase.send(Phase::Draining);
    }

    /// SERVING (`true`) or NOT_SERVING for "" and every hcmr service.
    async fn set(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in service_names() {
            self.reporter.set_service_status(name, status).await;
        }
    }
}

/// tonic-health's service, with Watch streams that end when the node starts draining.
pub(crate) struct DrainingHealth {
    inner: HealthService,
    draining: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl Health for DrainingHealth {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        self.inner.check(request).await
    }

    type WatchStream = EndOnDrain;

    async fn watch(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<EndOnDrain>, tonic::Status> {
        let inner = self.inner.watch(request).await?.into_inner();
        let mut draining = self.draining.clone();
        Ok(tonic::Response::new(EndOnDrain {
            inner,
            draining: Box::pin(async move {
                while !*draining.borrow_and_update() {
                    if draining.changed().await.is_err() {
                        return;
                    }
                }
            }),
        }))
    }
}

/// A Watch stream that ends once the node drains, after every status change made before.
pub(crate) struct EndOnDrain {
    inner: tonic_health::server::WatchStream,
    draining: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Stream for EndOnDrain {
    type Item = Result<HealthCheckResponse, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // The status first: NOT_SERVING is set before draining starts, so it is sent before
        // the stream ends.
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        match self.draining.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

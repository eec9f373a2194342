//! grpc.health.v1 for the node: the status of "" (the whole node) and of the five hcmr
//! services, NOT_SERVING until the node is ready, SERVING while it serves, NOT_SERVING again as
//! soon as shutdown begins. Watch streams end when the node starts draining (right after they
//! have carried NOT_SERVING), so an open Watch never holds up a graceful shutdown.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::watch;
use tokio_stream::Stream;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService};
use tonic_health::ServingStatus;

use super::api;
use crate::proto;

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
}

impl NodeHealth {
    /// Statuses NOT_SERVING, and the Health service; its Watch streams end once `draining`
    /// turns true.
    pub(crate) async fn new(
        draining: watch::Receiver<bool>,
    ) -> (NodeHealth, HealthServer<DrainingHealth>) {
        let reporter = HealthReporter::new();
        let h = NodeHealth { reporter };
        h.set(false).await;
        let service = DrainingHealth {
            inner: HealthService::from_health_reporter(h.reporter.clone()),
            draining,
        };
        (h, HealthServer::new(service))
    }

    /// SERVING (`true`) or NOT_SERVING for "" and every hcmr service.
    pub(crate) async fn set(&self, serving: bool) {
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

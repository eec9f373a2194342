//! `hcmr.v1.TraceService`: the province's platform reads trips' chains, traces cases to their
//! fellow travellers and reads the exposure notices for its residents (docs/tracing.md).

use tonic::{Request, Response, Status};

use super::{caller_of, on_blocking_pool, TraceApi};
use crate::proto;

#[tonic::async_trait]
impl proto::trace_service_server::TraceService for TraceApi {
    async fn trace_trip(
        &self,
        request: Request<proto::TraceTripRequest>,
    ) -> Result<Response<proto::TraceTripResponse>, Status> {
        let who = caller_of(&request);
        let r = request.into_inner();
        Ok(Response::new(
            on_blocking_pool(&self.0, move |s| s.trace_trip(&who, &r)).await?,
        ))
    }

    async fn trace_subject(
        &self,
        request: Request<proto::TraceSubjectRequest>,
    ) -> Result<Response<proto::TraceSubjectResponse>, Status> {
        let from = request
            .extensions()
            .get::<super::super::auth::Principal>()
            .cloned();
        Ok(Response::new(
            super::super::trace::subject::trace_subject(
                &self.0,
                from.as_ref(),
                request.into_inner(),
            )
            .await?,
        ))
    }

    async fn list_exposure_notices(
        &self,
        request: Request<proto::ListExposureNoticesRequest>,
    ) -> Result<Response<proto::ListExposureNoticesResponse>, Status> {
        Ok(Response::new(
            self.0.exposure().list(request.into_inner()).await?,
        ))
    }
}

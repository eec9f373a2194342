//! `hcmr.v1.TraceService`: the province's platform reads trips' chains, traces cases to their
//! fellow travellers and reads the exposure notices for its residents (docs/tracing.md).

use tonic::{Request, Response, Status};

use super::TraceApi;
use crate::proto;

#[tonic::async_trait]
impl proto::trace_service_server::TraceService for TraceApi {
    // Issue 18 in progress: the trip chain slice.
    async fn trace_trip(
        &self,
        _request: Request<proto::TraceTripRequest>,
    ) -> Result<Response<proto::TraceTripResponse>, Status> {
        Err(Status::unimplemented("TraceTrip"))
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

    // Issue 18 in progress: the exposure notices slice.
    async fn list_exposure_notices(
        &self,
        _request: Request<proto::ListExposureNoticesRequest>,
    ) -> Result<Response<proto::ListExposureNoticesResponse>, Status> {
        Err(Status::unimplemented("ListExposureNotices"))
    }
}

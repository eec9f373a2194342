//! `hcmr.v1.ArrivalService`: receivers check trips in at their destination, confirm people and
//! sign handover receipts or refusals (docs/transport.md section 6).

use tonic::{Request, Response, Status};

use super::{caller_of, on_blocking_pool, ArrivalApi};
use crate::proto;

#[tonic::async_trait]
impl proto::arrival_service_server::ArrivalService for ArrivalApi {
    async fn check_in_manifest(
        &self,
        request: Request<proto::CheckInManifestRequest>,
    ) -> Result<Response<proto::CheckInManifestResponse>, Status> {
        let r = request.into_inner();
        let answer = self
            .0
            .arrival()
            .check_in(&r.manifest, &r.checkpoint_id)
            .await?;
        Ok(Response::new(answer))
    }

    async fn confirm_person(
        &self,
        request: Request<proto::ConfirmPersonRequest>,
    ) -> Result<Response<proto::ConfirmPersonResponse>, Status> {
        let who = caller_of(&request);
        let answer = self.0.arrival().confirm(&who, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    async fn complete_handover(
        &self,
        request: Request<proto::CompleteHandoverRequest>,
    ) -> Result<Response<proto::CompleteHandoverResponse>, Status> {
        let answer = self.0.arrival().complete(request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    async fn refuse_vehicle(
        &self,
        request: Request<proto::RefuseVehicleRequest>,
    ) -> Result<Response<proto::RefuseVehicleResponse>, Status> {
        let answer = self.0.arrival().refuse(request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    async fn list_arrivals(
        &self,
        request: Request<proto::ListArrivalsRequest>,
    ) -> Result<Response<proto::ListArrivalsResponse>, Status> {
        let r = request.into_inner();
        let answer = on_blocking_pool(&self.0, move |s| s.arrival().list(&r)).await?;
        Ok(Response::new(answer))
    }
}

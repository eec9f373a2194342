//! `hcmr.v1.ArrivalService`: receivers check trips in at their destination, confirm people and
//! sign handover receipts or refusals (docs/transport.md section 6).

use tonic::{Request, Response, Status};

use super::ArrivalApi;
use crate::proto;

#[tonic::async_trait]
impl proto::arrival_service_server::ArrivalService for ArrivalApi {
    async fn check_in_manifest(
        &self,
        _request: Request<proto::CheckInManifestRequest>,
    ) -> Result<Response<proto::CheckInManifestResponse>, Status> {
        Err(Status::unimplemented("CheckInManifest: not yet"))
    }

    async fn confirm_person(
        &self,
        _request: Request<proto::ConfirmPersonRequest>,
    ) -> Result<Response<proto::ConfirmPersonResponse>, Status> {
        Err(Status::unimplemented("ConfirmPerson: not yet"))
    }

    async fn complete_handover(
        &self,
        _request: Request<proto::CompleteHandoverRequest>,
    ) -> Result<Response<proto::CompleteHandoverResponse>, Status> {
        Err(Status::unimplemented("CompleteHandover: not yet"))
    }

    async fn refuse_vehicle(
        &self,
        _request: Request<proto::RefuseVehicleRequest>,
    ) -> Result<Response<proto::RefuseVehicleResponse>, Status> {
        Err(Status::unimplemented("RefuseVehicle: not yet"))
    }

    async fn list_arrivals(
        &self,
        _request: Request<proto::ListArrivalsRequest>,
    ) -> Result<Response<proto::ListArrivalsResponse>, Status> {
        Err(Status::unimplemented("ListArrivals: not yet"))
    }
}

//! `hcmr.v1.TripService`: organizers create trips, board people and seal manifests at the
//! trip's origin (docs/transport.md).

use tonic::{Request, Response, Status};

use super::TripApi;
use crate::proto;

#[tonic::async_trait]
impl proto::trip_service_server::TripService for TripApi {
    async fn create_manifest(
        &self,
        _request: Request<proto::CreateManifestRequest>,
    ) -> Result<Response<proto::CreateManifestResponse>, Status> {
        Err(Status::unimplemented("CreateManifest: not yet"))
    }

    async fn board_person(
        &self,
        _request: Request<proto::BoardPersonRequest>,
    ) -> Result<Response<proto::BoardPersonResponse>, Status> {
        Err(Status::unimplemented("BoardPerson: not yet"))
    }

    async fn remove_person(
        &self,
        _request: Request<proto::RemovePersonRequest>,
    ) -> Result<Response<proto::RemovePersonResponse>, Status> {
        Err(Status::unimplemented("RemovePerson: not yet"))
    }

    async fn seal_manifest(
        &self,
        _request: Request<proto::SealManifestRequest>,
    ) -> Result<Response<proto::SealManifestResponse>, Status> {
        Err(Status::unimplemented("SealManifest: not yet"))
    }

    async fn cancel_manifest(
        &self,
        _request: Request<proto::CancelManifestRequest>,
    ) -> Result<Response<proto::CancelManifestResponse>, Status> {
        Err(Status::unimplemented("CancelManifest: not yet"))
    }

    async fn get_manifest(
        &self,
        _request: Request<proto::GetManifestRequest>,
    ) -> Result<Response<proto::ManifestView>, Status> {
        Err(Status::unimplemented("GetManifest: not yet"))
    }

    async fn list_manifests(
        &self,
        _request: Request<proto::ListManifestsRequest>,
    ) -> Result<Response<proto::ListManifestsResponse>, Status> {
        Err(Status::unimplemented("ListManifests: not yet"))
    }
}

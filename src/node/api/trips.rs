//! `hcmr.v1.TripService`: organizers create trips, board people and seal manifests at the
//! trip's origin (docs/transport.md). The workflows are in `node/trips/`.

use tonic::{Request, Response, Status};

use super::{caller_of, on_blocking_pool, TripApi};
use crate::proto;

#[tonic::async_trait]
impl proto::trip_service_server::TripService for TripApi {
    async fn create_manifest(
        &self,
        request: Request<proto::CreateManifestRequest>,
    ) -> Result<Response<proto::CreateManifestResponse>, Status> {
        Ok(Response::new(
            self.0.trips().create(request.into_inner()).await?,
        ))
    }

    async fn board_person(
        &self,
        request: Request<proto::BoardPersonRequest>,
    ) -> Result<Response<proto::BoardPersonResponse>, Status> {
        let who = caller_of(&request);
        Ok(Response::new(
            self.0.trips().board(&who, request.into_inner()).await?,
        ))
    }

    async fn remove_person(
        &self,
        request: Request<proto::RemovePersonRequest>,
    ) -> Result<Response<proto::RemovePersonResponse>, Status> {
        Ok(Response::new(
            self.0.trips().remove(request.into_inner()).await?,
        ))
    }

    async fn seal_manifest(
        &self,
        request: Request<proto::SealManifestRequest>,
    ) -> Result<Response<proto::SealManifestResponse>, Status> {
        Ok(Response::new(
            self.0.trips().seal(request.into_inner()).await?,
        ))
    }

    async fn cancel_manifest(
        &self,
        request: Request<proto::CancelManifestRequest>,
    ) -> Result<Response<proto::CancelManifestResponse>, Status> {
        Ok(Response::new(
            self.0.trips().cancel(request.into_inner()).await?,
        ))
    }

    async fn get_manifest(
        &self,
        request: Request<proto::GetManifestRequest>,
    ) -> Result<Response<proto::ManifestView>, Status> {
        let r = request.into_inner();
        Ok(Response::new(
            on_blocking_pool(&self.0, move |s| s.trips().get(&r)).await?,
        ))
    }

    async fn list_manifests(
        &self,
        request: Request<proto::ListManifestsRequest>,
    ) -> Result<Response<proto::ListManifestsResponse>, Status> {
        Ok(Response::new(
            self.0.trips().list(request.into_inner()).await?,
        ))
    }
}

//! `hcmr.v1.ReplicaService`: what a primary serves its enrolled verify replicas.

use tonic::{Request, Response, Status};

use super::super::auth::Principal;
use super::ReplicaApi;
use crate::proto;

/// The enrolled name of the replica that made the call (the auth layer put it there).
fn replica_of<T>(request: &Request<T>) -> Result<String, Status> {
    match request.extensions().get::<Principal>() {
        Some(Principal::Replica(name)) => Ok(name.clone()),
        _ => Err(Status::permission_denied(
            "only an enrolled verify replica may call ReplicaService",
        )),
    }
}

#[tonic::async_trait]
impl proto::replica_service_server::ReplicaService for ReplicaApi {
    type FollowStateStream = super::super::replica::serve::StateStream;

    async fn follow_state(
        &self,
        request: Request<proto::FollowStateRequest>,
    ) -> Result<Response<Self::FollowStateStream>, Status> {
        let name = replica_of(&request)?;
        Ok(Response::new(super::super::replica::serve::follow_state(
            self.0.clone(),
            name,
        )))
    }

    async fn report_manifest_check(
        &self,
        request: Request<proto::ReportManifestCheckRequest>,
    ) -> Result<Response<proto::ReportManifestCheckResponse>, Status> {
        replica_of(&request)?;
        let r = request.into_inner();
        super::super::manifest_check::report_replica_check(&self.0, &r.report, &r.origin).await?;
        Ok(Response::new(proto::ReportManifestCheckResponse {}))
    }

    async fn submit_audit_batch(
        &self,
        request: Request<proto::SubmitAuditBatchRequest>,
    ) -> Result<Response<proto::SubmitAuditBatchResponse>, Status> {
        let name = replica_of(&request)?;
        Ok(Response::new(
            super::super::replica::serve::take_audit_batch(&self.0, &name, request.into_inner())
                .await?,
        ))
    }
}

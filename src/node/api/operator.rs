//! `hcmr.v1.OperatorService`: what the node's operator calls (role admin).

use tonic::{Request, Response, Status};

use super::super::auth::Principal;
use super::on_blocking_pool;
use super::OperatorApi;
use crate::proto;

#[tonic::async_trait]
impl proto::operator_service_server::OperatorService for OperatorApi {
    async fn create_agreement(
        &self,
        request: Request<proto::CreateAgreementRequest>,
    ) -> Result<Response<proto::CreateAgreementResponse>, Status> {
        let view = self
            .0
            .agreements()
            .create_agreement(request.into_inner())
            .await?;
        Ok(Response::new(proto::CreateAgreementResponse {
            agreement: Some(view),
        }))
    }

    async fn list_agreements(
        &self,
        request: Request<proto::ListAgreementsRequest>,
    ) -> Result<Response<proto::ListAgreementsResponse>, Status> {
        let r = request.into_inner();
        Ok(Response::new(
            on_blocking_pool(&self.0, move |s| s.agreements().list_agreements(&r)).await?,
        ))
    }

    async fn approve_agreement(
        &self,
        request: Request<proto::ApproveAgreementRequest>,
    ) -> Result<Response<proto::ApproveAgreementResponse>, Status> {
        let view = self.0.agreements().approve(&request.get_ref().id).await?;
        Ok(Response::new(proto::ApproveAgreementResponse {
            agreement: Some(view),
        }))
    }

    async fn terminate_agreement(
        &self,
        request: Request<proto::TerminateAgreementRequest>,
    ) -> Result<Response<proto::TerminateAgreementResponse>, Status> {
        Ok(Response::new(
            self.0.agreements().terminate(request.into_inner()).await?,
        ))
    }

    async fn reject_agreement(
        &self,
        request: Request<proto::RejectAgreementRequest>,
    ) -> Result<Response<proto::RejectAgreementResponse>, Status> {
        let (versions, peer_notified) = self
            .0
            .agreements()
            .discard_proposal(&request.get_ref().id, false)
            .await?;
        Ok(Response::new(proto::RejectAgreementResponse {
            versions,
            peer_notified,
        }))
    }

    async fn withdraw_agreement(
        &self,
        request: Request<proto::WithdrawAgreementRequest>,
    ) -> Result<Response<proto::WithdrawAgreementResponse>, Status> {
        let (versions, peer_notified) = self
            .0
            .agreements()
            .discard_proposal(&request.get_ref().id, true)
            .await?;
        Ok(Response::new(proto::WithdrawAgreementResponse {
            versions,
            peer_notified,
        }))
    }

    async fn rotate_key(
        &self,
        _request: Request<proto::RotateKeyRequest>,
    ) -> Result<Response<proto::RotateKeyResponse>, Status> {
        Ok(Response::new(self.0.key_admin().rotate_key().await?))
    }

    async fn withdraw_key(
        &self,
        request: Request<proto::WithdrawKeyRequest>,
    ) -> Result<Response<proto::WithdrawKeyResponse>, Status> {
        Ok(Response::new(
            self.0
                .key_admin()
                .withdraw_key(&request.get_ref().kid)
                .await?,
        ))
    }

    async fn sync_now(
        &self,
        _request: Request<proto::SyncNowRequest>,
    ) -> Result<Response<proto::SyncNowResponse>, Status> {
        self.0.agreements().deliver_proposal_notices(None).await;
        let targets = self.0.peer_sync().sync_targets();
        let peers = self
            .0
            .peer_sync()
            .sync_peers(&targets)
            .await
            .iter()
            .map(super::super::sync::outcome_to_proto)
            .collect();
        Ok(Response::new(proto::SyncNowResponse { peers }))
    }

    async fn list_audit_records(
        &self,
        request: Request<proto::ListAuditRecordsRequest>,
    ) -> Result<Response<proto::ListAuditRecordsResponse>, Status> {
        let r = request.into_inner();
        Ok(Response::new(
            on_blocking_pool(&self.0, move |s| s.audit_log().list_audit(&r)).await?,
        ))
    }

    async fn export_trust_bundle(
        &self,
        _request: Request<proto::ExportTrustBundleRequest>,
    ) -> Result<Response<proto::ExportTrustBundleResponse>, Status> {
        Ok(Response::new(
            on_blocking_pool(&self.0, |s| s.trust_bundle().export_bundle()).await?,
        ))
    }

    async fn add_caller(
        &self,
        request: Request<proto::AddCallerRequest>,
    ) -> Result<Response<proto::AddCallerResponse>, Status> {
        Ok(Response::new(
            self.0
                .caller_admin()
                .add_caller(request.into_inner())
                .await?,
        ))
    }

    async fn list_callers(
        &self,
        _request: Request<proto::ListCallersRequest>,
    ) -> Result<Response<proto::ListCallersResponse>, Status> {
        Ok(Response::new(self.0.caller_admin().list_callers()?))
    }

    async fn remove_caller(
        &self,
        request: Request<proto::RemoveCallerRequest>,
    ) -> Result<Response<proto::RemoveCallerResponse>, Status> {
        let by = match request.extensions().get::<Principal>() {
            Some(Principal::Caller(c)) => Some(c.clone()),
            _ => None,
        };
        Ok(Response::new(
            self.0
                .caller_admin()
                .remove_caller(&request.get_ref().name, by.as_ref())
                .await?,
        ))
    }

    async fn list_access_denials(
        &self,
        request: Request<proto::ListAccessDenialsRequest>,
    ) -> Result<Response<proto::ListAccessDenialsResponse>, Status> {
        // Refusals counted but not yet written are written first, so the list shows every
        // refusal made before this call (issue 14 fault 10: it lagged by up to 200 ms).
        if let Err((e, lost)) = self.0.audit.refusals.flush(&self.0.store).await {
            tracing::error!(error = %e, lost, "refused-call records could not be stored");
        }
        let r = request.into_inner();
        Ok(Response::new(
            on_blocking_pool(&self.0, move |s| s.caller_admin().list_denials(&r)).await?,
        ))
    }

    type ExportBackupStream =
        tokio_stream::wrappers::ReceiverStream<Result<proto::BackupChunk, Status>>;

    async fn enroll_replica(
        &self,
        request: Request<proto::EnrollReplicaRequest>,
    ) -> Result<Response<proto::EnrollReplicaResponse>, Status> {
        Ok(Response::new(
            self.0.enroll_replica(request.into_inner()).await?,
        ))
    }

    async fn list_replicas(
        &self,
        _request: Request<proto::ListReplicasRequest>,
    ) -> Result<Response<proto::ListReplicasResponse>, Status> {
        Ok(Response::new(
            on_blocking_pool(&self.0, |s| s.list_replicas()).await?,
        ))
    }

    async fn remove_replica(
        &self,
        request: Request<proto::RemoveReplicaRequest>,
    ) -> Result<Response<proto::RemoveReplicaResponse>, Status> {
        self.0.remove_replica(&request.get_ref().name).await?;
        Ok(Response::new(proto::RemoveReplicaResponse {}))
    }

    async fn export_backup(
        &self,
        _request: Request<proto::ExportBackupRequest>,
    ) -> Result<Response<Self::ExportBackupStream>, Status> {
        Ok(Response::new(self.0.clone().backup_stream()))
    }
}

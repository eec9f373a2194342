//! `hcmr.v1.HealthCodeService`: code-making, verification, identity match, revocation.

use tonic::{Request, Response, Status};

use super::super::convert;
use super::super::error::ApiError;
use super::{caller_of, checkpoint_of, remote_of, HealthCodeApi, MAX_BATCH_CODES};
use crate::proto;

#[tonic::async_trait]
impl proto::health_code_service_server::HealthCodeService for HealthCodeApi {
    async fn issue_health_code(
        &self,
        request: Request<proto::IssueHealthCodeRequest>,
    ) -> Result<Response<proto::IssueHealthCodeResponse>, Status> {
        let started = std::time::Instant::now();
        let issued = self.0.issuer().issue(request.into_inner()).await;
        self.0.metrics.issue(started.elapsed(), issued.is_ok());
        Ok(Response::new(issued?))
    }

    async fn verify_health_code(
        &self,
        request: Request<proto::VerifyHealthCodeRequest>,
    ) -> Result<Response<proto::VerifyHealthCodeResponse>, Status> {
        let checkpoint = checkpoint_of(&request, &request.get_ref().checkpoint_id).to_string();
        let who = caller_of(&request);
        let code = request.into_inner().code;
        let (verdicts, now) = self
            .0
            .verification()
            .verify_and_audit(&who, vec![code], &checkpoint, "grpc")
            .await?;
        let verdict = verdicts
            .first()
            .ok_or(ApiError::Internal("no verdict for the code"))?;
        Ok(Response::new(convert::verdict_to_proto(verdict, now)))
    }

    async fn batch_verify_health_codes(
        &self,
        request: Request<proto::BatchVerifyHealthCodesRequest>,
    ) -> Result<Response<proto::BatchVerifyHealthCodesResponse>, Status> {
        let checkpoint = checkpoint_of(&request, &request.get_ref().checkpoint_id).to_string();
        let who = caller_of(&request);
        let remote = remote_of(&request);
        let codes = request.into_inner().codes;
        if codes.is_empty() {
            return Err(ApiError::invalid("codes", "at least one code is needed").into());
        }
        if codes.len() > MAX_BATCH_CODES {
            return Err(ApiError::invalid(
                "codes",
                format!(
                    "at most {MAX_BATCH_CODES} codes per call, got {}",
                    codes.len()
                ),
            )
            .into());
        }
        // The caller's rate counts codes: the call took one, the other codes take theirs.
        self.0.take_codes(
            &who,
            codes.len() - 1,
            "/hcmr.v1.HealthCodeService/BatchVerifyHealthCodes",
            remote,
        )?;
        let (verdicts, now) = self
            .0
            .verification()
            .verify_and_audit(&who, codes, &checkpoint, "grpc")
            .await?;
        Ok(Response::new(proto::BatchVerifyHealthCodesResponse {
            results: verdicts
                .iter()
                .map(|v| convert::verdict_to_proto(v, now))
                .collect(),
        }))
    }

    async fn match_identity(
        &self,
        request: Request<proto::MatchIdentityRequest>,
    ) -> Result<Response<proto::MatchIdentityResponse>, Status> {
        Ok(Response::new(
            self.0
                .identity_match()
                .match_identity(request.into_inner())
                .await?,
        ))
    }

    async fn revoke_health_code(
        &self,
        request: Request<proto::RevokeHealthCodeRequest>,
    ) -> Result<Response<proto::RevokeResponse>, Status> {
        Ok(Response::new(
            self.0
                .revocation()
                .revoke_code(&request.get_ref().cti)
                .await?,
        ))
    }

    async fn revoke_subject(
        &self,
        request: Request<proto::RevokeSubjectRequest>,
    ) -> Result<Response<proto::RevokeResponse>, Status> {
        Ok(Response::new(
            self.0
                .revocation()
                .revoke_subject(request.into_inner())
                .await?,
        ))
    }

    async fn verify_manifest(
        &self,
        request: Request<proto::VerifyManifestRequest>,
    ) -> Result<Response<proto::VerifyManifestResponse>, Status> {
        let checkpoint = checkpoint_of(&request, &request.get_ref().checkpoint_id).to_string();
        let checked =
            self.0
                .manifest_check()
                .check(&request.get_ref().manifest, &checkpoint, "grpc")?;
        if let Some(due) = checked.report {
            super::super::manifest_check::spawn_report(&self.0, due);
        }
        Ok(Response::new(checked.response))
    }
}

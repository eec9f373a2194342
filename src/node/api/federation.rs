//! `hcmr.v1.FederationService`: what peer nodes call.

use tonic::{Request, Response, Status};

use super::super::auth::Principal;
use super::super::convert;
use super::super::error::ApiError;
use super::on_blocking_pool;
use super::FederationApi;
use crate::proto;

#[tonic::async_trait]
impl proto::federation_service_server::FederationService for FederationApi {
    async fn find_trips(
        &self,
        request: Request<proto::FindTripsRequest>,
    ) -> Result<Response<proto::FindTripsResponse>, Status> {
        let from = request.extensions().get::<Principal>().cloned();
        Ok(Response::new(
            super::super::trace::find::find_trips(&self.0, from.as_ref(), request.into_inner())
                .await?,
        ))
    }

    async fn get_node_info(
        &self,
        _request: Request<proto::GetNodeInfoRequest>,
    ) -> Result<Response<proto::GetNodeInfoResponse>, Status> {
        let s = &self.0;
        Ok(Response::new(proto::GetNodeInfoResponse {
            province: s.province.to_string(),
            province_name: s.province.name_en().to_string(),
            keys: s
                .trust
                .load()
                .own_keys()
                .iter()
                .map(convert::key_info)
                .collect(),
            endpoint: s.endpoint(),
            software_version: env!("CARGO_PKG_VERSION").to_string(),
            role: match s.role.replica() {
                None => proto::NodeRole::Primary as i32,
                Some(_) => proto::NodeRole::Replica as i32,
            },
            primary_endpoint: s
                .role
                .replica()
                .map(|r| r.primary.clone())
                .unwrap_or_default(),
            state_synced_at: s
                .role
                .replica()
                .and_then(|r| r.last_contact())
                .map_or(0, |t| t.secs()),
        }))
    }

    async fn propose_agreement(
        &self,
        request: Request<proto::ProposeAgreementRequest>,
    ) -> Result<Response<proto::ProposeAgreementResponse>, Status> {
        let from = request.extensions().get::<Principal>().cloned();
        Ok(Response::new(
            self.0
                .agreements()
                .receive_proposal(request.into_inner(), from.as_ref())
                .await?,
        ))
    }

    async fn accept_agreement(
        &self,
        request: Request<proto::AcceptAgreementRequest>,
    ) -> Result<Response<proto::AcceptAgreementResponse>, Status> {
        let from = request.extensions().get::<Principal>().cloned();
        Ok(Response::new(
            self.0
                .agreements()
                .receive_acceptance(request.into_inner(), from.as_ref())
                .await?,
        ))
    }

    async fn notify_termination(
        &self,
        request: Request<proto::NotifyTerminationRequest>,
    ) -> Result<Response<proto::NotifyTerminationResponse>, Status> {
        self.0
            .agreements()
            .receive_termination(request.into_inner())
            .await?;
        Ok(Response::new(proto::NotifyTerminationResponse {}))
    }

    async fn notify_proposal_dropped(
        &self,
        request: Request<proto::NotifyProposalDroppedRequest>,
    ) -> Result<Response<proto::NotifyProposalDroppedResponse>, Status> {
        let from = request.extensions().get::<Principal>().cloned();
        let versions = self
            .0
            .agreements()
            .receive_proposal_notice(request.into_inner(), from.as_ref())
            .await?;
        Ok(Response::new(proto::NotifyProposalDroppedResponse {
            versions,
        }))
    }

    type GetFeedStream = super::super::feed_watch::FeedStream;

    async fn get_feed(
        &self,
        request: Request<proto::GetFeedRequest>,
    ) -> Result<Response<Self::GetFeedStream>, Status> {
        let from = request.extensions().get::<Principal>().cloned();
        Ok(Response::new(super::super::feed_watch::get_feed(
            &self.0,
            from.as_ref(),
            request.into_inner(),
        )?))
    }

    async fn match_subject(
        &self,
        request: Request<proto::MatchSubjectRequest>,
    ) -> Result<Response<proto::MatchSubjectResponse>, Status> {
        Ok(Response::new(
            self.0
                .identity_match()
                .match_subject(request.get_ref())
                .await?,
        ))
    }

    async fn get_agreements(
        &self,
        request: Request<proto::GetAgreementsRequest>,
    ) -> Result<Response<proto::GetAgreementsResponse>, Status> {
        // Over mutual TLS a peer learns only its own agreements, whatever it asks.
        if let Some(Principal::Node(peer)) = request.extensions().get::<Principal>() {
            if request.get_ref().province != peer.province.to_string() {
                return Err(ApiError::PermissionDenied(format!(
                    "province: the calling node is {}, not {}",
                    peer.province,
                    request.get_ref().province
                ))
                .into());
            }
        }
        Ok(Response::new({
            let province = request.into_inner().province;
            on_blocking_pool(&self.0, move |s| s.agreements().agreements_for(&province)).await?
        }))
    }

    async fn submit_trip_record(
        &self,
        request: Request<proto::SubmitTripRecordRequest>,
    ) -> Result<Response<proto::SubmitTripRecordResponse>, Status> {
        let from = request.extensions().get::<Principal>().cloned();
        Ok(Response::new(
            self.0
                .trips()
                .receive(from.as_ref(), request.into_inner())
                .await?,
        ))
    }
}

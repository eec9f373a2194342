//! TEMPORARY STUB, replaced by main's `NodeState::primary_channel` (the lead writes it): a
//! mutual-TLS channel to the primary presenting this replica's certificate, so that the audit
//! shipper ([`super::ship`]) builds against its signature until it lands.

use super::super::error::ApiError;
use super::super::NodeState;

impl NodeState {
    /// A channel to the primary (mutual TLS, presenting this replica's certificate; the
    /// primary's certificate must be of this province and certified by the enrollment anchor).
    ///
    /// # Errors
    /// FAILED_PRECONDITION on a node that is not a replica or has no TLS; UNAVAILABLE when the
    /// primary cannot be reached.
    pub(crate) async fn primary_channel(&self) -> Result<tonic::transport::Channel, ApiError> {
        let (Some(r), Some(t)) = (self.role.replica(), self.tls.as_ref()) else {
            return Err(ApiError::FailedPrecondition(
                "not a verify replica with TLS".into(),
            ));
        };
        let anchor = r.anchor;
        let config =
            crate::tls::peer_client_config(t.cert.clone(), Some(self.province), move |c| {
                c.certified_by_any(&[anchor])
            })
            .map_err(|e| ApiError::PeerUnavailable {
                endpoint: r.primary.clone(),
                detail: e.to_string(),
            })?;
        crate::client::channel(&r.primary, Some(config), self.peer_timeout)
            .await
            .map_err(|e| ApiError::PeerUnavailable {
                endpoint: r.primary.clone(),
                detail: e.to_string(),
            })
    }
}

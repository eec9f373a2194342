//! At a verify replica: the connection to its primary (mutual TLS: the replica presents its
//! enrolled certificate; the primary must present a node certificate of the same province
//! certified by a key of the own feed the replica follows, or by the key that enrolled it).

use tonic::transport::Channel;

use super::super::error::ApiError;
use super::super::NodeState;

impl NodeState {
    /// A channel to this replica's primary.
    ///
    /// # Errors
    /// FAILED_PRECONDITION on a primary or when the primary's certificate is not the
    /// province's; UNAVAILABLE when it cannot be reached.
    pub(crate) async fn primary_channel(&self) -> Result<Channel, ApiError> {
        let (Some(link), Some(tls)) = (self.role.replica(), self.tls.as_ref()) else {
            return Err(ApiError::FailedPrecondition(
                "not a verify replica: there is no primary to call".into(),
            ));
        };
        // The own feed's current keys, and the key that enrolled this replica unless the feed
        // withdrew it (before the first sync it is the only one).
        let own = self.trust.load();
        let mut keys: Vec<_> = own
            .own()
            .keys()
            .iter()
            .filter(|k| k.withdrawn_at.is_none())
            .map(|k| k.key)
            .collect();
        let anchor_withdrawn = own
            .own()
            .keys()
            .iter()
            .any(|k| k.key == link.anchor && k.withdrawn_at.is_some());
        if !anchor_withdrawn && !keys.contains(&link.anchor) {
            keys.push(link.anchor);
        }
        let config =
            crate::tls::peer_client_config(tls.cert.clone(), Some(self.province), move |c| {
                !c.replica && c.certified_by_any(&keys)
            })
            .map_err(|e| ApiError::PeerUnavailable {
                endpoint: link.primary.clone(),
                detail: e.to_string(),
            })?;
        crate::client::channel(&link.primary, Some(config), self.peer_timeout)
            .await
            .map_err(|e| match e {
                crate::client::ClientError::WrongCertificate { detail, .. } => {
                    ApiError::FailedPrecondition(format!(
                        "the node at {} is not this province's primary ({detail})",
                        link.primary
                    ))
                }
                other => ApiError::PeerUnavailable {
                    endpoint: link.primary.clone(),
                    detail: other.to_string(),
                },
            })
    }
}

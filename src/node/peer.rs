//! Calls from this node to a peer node's FederationService.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::error::ApiError;
use crate::proto::federation_service_client::FederationServiceClient;

/// How long to wait for a peer's TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a peer's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to a peer node's federation API at `url` (`http://host:port`).
///
/// # Errors
/// INVALID_ARGUMENT on `field` for a URL that does not parse; UNAVAILABLE when the peer cannot be
/// reached.
pub(crate) async fn connect(
    field: &'static str,
    url: &str,
) -> Result<FederationServiceClient<Channel>, ApiError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::invalid(
            field,
            format!("{url:?} must be a URL such as http://127.0.0.1:7510"),
        ));
    }
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| ApiError::invalid(field, format!("{url:?}: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| ApiError::PeerUnavailable {
            endpoint: url.to_string(),
            detail: format!("cannot connect: {e}"),
        })?;
    Ok(FederationServiceClient::new(channel))
}

/// Maps a failed call to a peer.
pub(crate) fn call_failed(url: &str, s: tonic::Status) -> ApiError {
    match s.code() {
        tonic::Code::InvalidArgument
        | tonic::Code::FailedPrecondition
        | tonic::Code::Unauthenticated
        | tonic::Code::PermissionDenied
        | tonic::Code::NotFound => ApiError::FailedPrecondition(format!(
            "peer {url} refused: {:?}: {}",
            s.code(),
            s.message()
        )),
        _ => ApiError::PeerUnavailable {
            endpoint: url.to_string(),
            detail: format!("{:?}: {}", s.code(), s.message()),
        },
    }
}

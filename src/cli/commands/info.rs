//! `hcmr info`: a node's province and public keys.

use crate::cli::node::{channel, NodeArg};
use crate::cli::CliError;
use crate::proto;
use crate::proto::federation_service_client::FederationServiceClient;

/// Runs `hcmr info`.
pub(crate) async fn exec(n: NodeArg) -> Result<(), CliError> {
    let info = FederationServiceClient::new(channel(&n).await?)
        .get_node_info(proto::GetNodeInfoRequest {})
        .await?
        .into_inner();
    out!("province: {} {}", info.province, info.province_name);
    out!("endpoint: {}", info.endpoint);
    for k in &info.keys {
        out!(
            "key:      kid {}  public {}",
            hex::encode(&k.kid),
            hex::encode(&k.public_key)
        );
    }
    Ok(())
}

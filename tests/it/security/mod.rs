//! Who may call what, over real TLS: every RPC without credentials and with the wrong role;
//! federation RPCs from a node of a province without an agreement, from an impostor, and from
//! no certificate; a peer endpoint that answers with another node's certificate; callers added
//! and removed; per-caller rate and message size limits; encrypted key files. Each refusal is
//! read back from the node's access log.

use crate::common;

use common::*;
use hcmr::keys::NodeKey;
use hcmr::proto;
use prost::Message;
use prost_types::FileDescriptorSet;
use tonic::Code;

mod callers;
mod proposals;
mod tls_and_keys;

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;
const JIANGSU: u32 = 320000;

/// What each RPC needs, written out here (not taken from the server's own table).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    Open,
    Issuer,
    Verifier,
    Admin,
    Organizer,
    Receiver,
    Tracer,
    Node,
}

fn need(service: &str, method: &str) -> Need {
    match (service, method) {
        (
            "HealthCodeService",
            "VerifyHealthCode" | "BatchVerifyHealthCodes" | "MatchIdentity" | "VerifyManifest",
        ) => Need::Verifier,
        ("HealthCodeService", _) => Need::Issuer,
        ("OperatorService", _) => Need::Admin,
        ("TripService", _) => Need::Organizer,
        ("ArrivalService", _) => Need::Receiver,
        ("TraceService", _) => Need::Tracer,
        ("FederationService", "GetNodeInfo") => Need::Open,
        ("FederationService", _) => Need::Node,
        // An enrolled replica's certificate: a token is not one, nor another province's node's.
        ("ReplicaService", _) => Need::Node,
        _ => panic!("unknown service {service}"),
    }
}

/// Every RPC of hcmr.v1, from the compiled descriptor: (service, method).
fn every_rpc() -> Vec<(String, String)> {
    let fds = FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
    let file = fds.file.iter().find(|f| f.package() == "hcmr.v1").unwrap();
    file.service
        .iter()
        .flat_map(|s| {
            s.method
                .iter()
                .map(move |m| (s.name().to_string(), m.name().to_string()))
        })
        .collect()
}

/// Calls `/hcmr.v1.<service>/<method>` with an empty request message (every field default) and
/// returns the status code (`Code::Ok` on success). Streaming answers are read as one message.
async fn call<T>(channel: T, service: &str, method: &str) -> Code
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    let ready: Result<(), tonic::codegen::StdError> = grpc.ready().await.map_err(Into::into);
    ready.unwrap();
    let path: tonic::codegen::http::uri::PathAndQuery =
        format!("/hcmr.v1.{service}/{method}").try_into().unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    if method == "GetFeed" || method == "ExportBackup" || method == "FollowState" {
        return match grpc
            .server_streaming(tonic::Request::new(()), path, codec)
            .await
        {
            Ok(mut s) => match s.get_mut().message().await {
                Ok(_) => Code::Ok,
                Err(e) => e.code(),
            },
            Err(e) => e.code(),
        };
    }
    match grpc.unary(tonic::Request::new(()), path, codec).await {
        Ok(_) => Code::Ok,
        Err(e) => e.code(),
    }
}

/// Adds a caller with `roles` through the OperatorService; returns its token.
async fn add_caller(n: &hcmr::node::NodeHandle, name: &str, roles: &[proto::CallerRole]) -> String {
    operator(n)
        .await
        .add_caller(proto::AddCallerRequest {
            name: name.into(),
            roles: roles.iter().map(|r| *r as i32).collect(),
            replace: false,
        })
        .await
        .unwrap()
        .into_inner()
        .token
}

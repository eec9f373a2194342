//! `hcmr agreement`: bilateral agreements with peer provinces.

mod propose;

use clap::Subcommand;

use crate::cli::display::{api_time, status_name};
use crate::cli::node::{channel, NodeArg};
use crate::cli::values::{point_in_time, secs};
use crate::cli::{args, CliError};
use crate::node::convert;
use crate::proto;
use crate::proto::operator_service_client::OperatorServiceClient;

pub use propose::ProposeArgs;

/// Agreement subcommands.
#[derive(Debug, Subcommand)]
pub enum AgreementCommand {
    /// Propose an agreement to a peer node (this node signs and sends it), or amend one in force
    /// (--amends ID: only the terms given change, and the changes are shown first).
    Propose(ProposeArgs),
    /// List this node's agreements.
    List {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
    },
    /// Accept (countersign) an agreement a peer proposed; the peer is told over gRPC.
    Accept {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Agreement id (32 hex digits, from `hcmr agreement list`).
        id: String,
    },
    /// Reject a proposal a peer made (AWAITING_ACCEPTANCE): it is deleted here; an agreement
    /// in force stays as it is.
    Reject {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Agreement id (32 hex digits, from `hcmr agreement list`).
        id: String,
    },
    /// Withdraw a proposal this node made (PROPOSED): it is deleted here, and the peer can no
    /// longer accept it.
    Withdraw {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Agreement id (32 hex digits, from `hcmr agreement list`).
        id: String,
    },
    /// Show every version of one agreement and its termination.
    Show {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Agreement id (32 hex digits).
        id: String,
    },
    /// Terminate an agreement, at once or at a set time; the peer is told.
    Terminate {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Agreement id (32 hex digits).
        id: String,
        /// When it ends, RFC 3339 with its offset (Z, +08:00); default at once.
        #[arg(long, value_parser = point_in_time)]
        at: Option<std::time::SystemTime>,
    },
}

/// Runs `hcmr agreement ...`.
pub(crate) async fn exec(c: AgreementCommand) -> Result<(), CliError> {
    match c {
        AgreementCommand::Propose(a) => propose::exec(a).await,
        AgreementCommand::List { node } => {
            let all = all_agreements(&node).await?;
            if all.is_empty() {
                out!("no agreements");
            }
            all.iter().for_each(print_agreement);
            Ok(())
        }
        AgreementCommand::Accept { node, id } => {
            let r = OperatorServiceClient::new(channel(&node).await?)
                .approve_agreement(proto::ApproveAgreementRequest { id })
                .await?
                .into_inner();
            if let Some(v) = &r.agreement {
                print_agreement(v);
            }
            Ok(())
        }
        AgreementCommand::Reject { node, id } => {
            let r = OperatorServiceClient::new(channel(&node).await?)
                .reject_agreement(proto::RejectAgreementRequest { id: id.clone() })
                .await?
                .into_inner();
            out!(
                "rejected agreement {id} ({}); {}",
                versions_dropped(&r.versions),
                if r.peer_notified {
                    "the proposer was told and dropped its copy"
                } else {
                    "the proposer could not be told now: the notice is sent again at every sync (hcmr sync); its copy cannot conclude meanwhile"
                }
            );
            Ok(())
        }
        AgreementCommand::Withdraw { node, id } => {
            let r = OperatorServiceClient::new(channel(&node).await?)
                .withdraw_agreement(proto::WithdrawAgreementRequest { id: id.clone() })
                .await?
                .into_inner();
            out!(
                "withdrew agreement {id} ({}); {}",
                versions_dropped(&r.versions),
                if r.peer_notified {
                    "the peer was told and dropped its copy"
                } else {
                    "the peer could not be told now: the notice is sent again at every sync (hcmr sync); its copy cannot conclude meanwhile"
                }
            );
            Ok(())
        }
        AgreementCommand::Show { node, id } => {
            let all = all_agreements(&node).await?;
            let versions: Vec<_> = all.iter().filter(|a| a.id == id).collect();
            if versions.is_empty() {
                // An unknown id is a bad argument (EXIT_CODES), as the node's NOT_FOUND is.
                return Err(CliError::Usage(format!("no agreement {id} at this node")));
            }
            out!(
                "agreement {id}: {} version(s), oldest first",
                versions.len()
            );
            for v in versions {
                print_agreement(v);
            }
            Ok(())
        }
        AgreementCommand::Terminate { node, id, at } => {
            let r = OperatorServiceClient::new(channel(&node).await?)
                .terminate_agreement(proto::TerminateAgreementRequest {
                    id,
                    effective_at: at.map_or(0, secs),
                })
                .await?
                .into_inner();
            if let Some(v) = &r.agreement {
                print_agreement(v);
            }
            if !r.peer_notified {
                note!(
                    "the peer could not be told now; it learns of the termination at its next sync"
                );
            }
            Ok(())
        }
    }
}

/// Every agreement version at the node, following ListAgreements' pages.
async fn all_agreements(node: &NodeArg) -> Result<Vec<proto::AgreementView>, CliError> {
    let mut client =
        proto::operator_service_client::OperatorServiceClient::new(channel(node).await?);
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let r = client
            .list_agreements(proto::ListAgreementsRequest {
                page_token: std::mem::take(&mut token),
                ..Default::default()
            })
            .await?
            .into_inner();
        if r.agreements.is_empty() && !r.next_page_token.is_empty() {
            return Err(CliError::Failed(
                "the node returned an empty page with a next_page_token".into(),
            ));
        }
        all.extend(r.agreements);
        if r.next_page_token.is_empty() {
            return Ok(all);
        }
        token = r.next_page_token;
    }
}

/// Prints one agreement version: its state, who acts next, keys and directions.
fn print_agreement(a: &proto::AgreementView) {
    let state = proto::AgreementState::try_from(a.state)
        .map(|s| s.as_str_name().trim_start_matches("AGREEMENT_STATE_"))
        .unwrap_or("?");
    out!(
        "{}  v{}  {} <-> {}  {}",
        a.id,
        a.version,
        a.proposer_province,
        a.acceptor_province,
        state
    );
    // Who acts next on a pending proposal: both sides see it from their own end.
    if a.state == proto::AgreementState::Proposed as i32 {
        out!(
            "    next: {} accepts it (or this node withdraws it: hcmr agreement withdraw {})",
            a.acceptor_province,
            a.id
        );
    } else if a.state == proto::AgreementState::AwaitingAcceptance as i32 {
        out!(
            "    next: this node's operator accepts it (hcmr agreement accept {}) or rejects it (hcmr agreement reject {}); {} waits",
            a.id,
            a.id,
            a.proposer_province
        );
    }
    if a.terminated_at != 0 {
        out!(
            "    terminated by {} from {}",
            a.terminated_by,
            api_time(a.terminated_at)
        );
    }
    for (who, keys) in [
        (&a.proposer_province, &a.proposer_keys),
        (&a.acceptor_province, &a.acceptor_keys),
    ] {
        let kids: Vec<String> = keys.iter().map(|k| hex::encode(&k.kid)).collect();
        out!("    {who} keys (kid): {}", kids.join(", "));
    }
    for d in &a.directions {
        let map: Vec<String> = d
            .status_map
            .iter()
            .map(|m| format!("{}={}", status_name(m.issued), status_name(m.counts_as)))
            .collect();
        out!(
            "    codes of {} at {}: {}  max age {}  {} .. {}  manifests {}{}",
            d.issuer_province,
            d.verifier_province,
            if map.is_empty() {
                "none".into()
            } else {
                map.join(",")
            },
            args::short_duration(d.max_code_age_secs),
            api_time(d.effective_from),
            api_time(d.effective_until),
            convert::manifest_terms_from_proto(d.manifests_transit, d.manifests_arrival),
            // Shown only when on, so lists of agreements without the term read as before.
            if d.tracing { "  tracing on" } else { "" }
        );
    }
}

/// "version 2 dropped", "versions 2, 3 dropped": the pending versions a reject or withdraw
/// deleted.
fn versions_dropped(v: &[u32]) -> String {
    let list: Vec<String> = v.iter().map(u32::to_string).collect();
    match list.len() {
        1 => format!("version {} dropped", list[0]),
        _ => format!("versions {} dropped", list.join(", ")),
    }
}

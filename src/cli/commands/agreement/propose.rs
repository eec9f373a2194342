//! `hcmr agreement propose`: a new agreement, or an amendment of one in force.

use std::time::Duration;

use clap::Args;

use super::{all_agreements, print_agreement};
use crate::agreement::{ManifestRole, ManifestTerms};
use crate::cli::display::{api_time, status_name};
use crate::cli::node::{channel, check_node_url, NodeArg};
use crate::cli::values::{parse_status_map, point_in_time, secs};
use crate::cli::{args, CliError};
use crate::node::convert::manifest_terms_from_proto;
use crate::proto;

/// Arguments of `hcmr agreement propose`.
///
/// A new agreement needs --peer, --peer-kid, --peer-codes and --our-codes. An amendment
/// (--amends ID) starts from the terms of the version in force: only the terms given change, and
/// the changes are printed before the proposal is sent.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hcmr agreement propose --dir /tmp/guangdong --peer https://127.0.0.1:17510 \\\n    --peer-kid 0123456789abcdef --peer-codes green=green,yellow=red,red=red --our-codes green=green\n  hcmr agreement propose --dir /tmp/zhejiang --peer https://127.0.0.1:17510 --peer-kid 0123456789abcdef \\\n    --peer-codes green=green --our-codes green=green --peer-manifests arrival --our-manifests none\n  hcmr agreement propose --dir /tmp/guangdong --amends <ID> --for 30d   # only the run length changes"
)]
pub struct ProposeArgs {
    #[command(flatten)]
    node: NodeArg,
    /// The peer node's gRPC URL (an amendment: default the address recorded for the peer).
    #[arg(long)]
    peer: Option<String>,
    /// Kid of the peer's current key (16 hex digits), obtained from its operator out of band
    /// (they read it from `hcmr info`); the proposal is refused if the peer presents another key.
    /// An amendment: default any key this node already trusts for the peer.
    #[arg(long)]
    peer_kid: Option<String>,
    /// Amend this agreement (32 hex digits): the proposal becomes its next version, with the
    /// terms of the version in force except those given here.
    #[arg(long)]
    amends: Option<String>,
    /// How this node counts the peer's codes, e.g. green=green,yellow=red,red=red ("none": no
    /// status).
    #[arg(long)]
    peer_codes: Option<String>,
    /// How the peer counts this node's codes, same form.
    #[arg(long)]
    our_codes: Option<String>,
    /// Oldest code accepted, e.g. 1d (a new agreement: default 1d).
    #[arg(long, value_parser = args::duration)]
    max_code_age: Option<Duration>,
    /// Start, RFC 3339 with its offset (e.g. 2026-12-01T08:00:00+08:00); a new agreement:
    /// default now.
    #[arg(long, value_parser = point_in_time)]
    from: Option<std::time::SystemTime>,
    /// How long the agreement runs from its start, e.g. 365d (a new agreement: default 365d; an
    /// amendment keeps its end unless this is given).
    #[arg(long = "for", value_parser = args::duration)]
    duration: Option<Duration>,
    /// Refuse the peer's codes when its trust state here is older than this, e.g. 1h (0: no
    /// limit; a new agreement: default 0).
    #[arg(long, value_parser = args::duration)]
    max_trust_age: Option<Duration>,
    /// Which of the peer's trip manifests this node accepts (docs/transport.md section 4):
    /// transit (its checkpoints pass the peer's vehicles through), arrival (its receivers take
    /// them in), transit,arrival, or none (a new agreement: default none).
    #[arg(long, value_parser = manifests)]
    peer_manifests: Option<ManifestTerms>,
    /// Which of this node's trip manifests the peer accepts, same form.
    #[arg(long, value_parser = manifests)]
    our_manifests: Option<ManifestTerms>,
    /// Whether this node answers the peer's trace queries and takes its exposure notices
    /// (docs/tracing.md section 4): on or off (a new agreement: default off).
    #[arg(long, value_parser = on_off)]
    peer_tracing: Option<bool>,
    /// Whether the peer answers this node's trace queries and takes its exposure notices: on or
    /// off.
    #[arg(long, value_parser = on_off)]
    our_tracing: Option<bool>,
}

/// A tracing term on the command line: `on` or `off`.
fn on_off(s: &str) -> Result<bool, String> {
    match s.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("{other:?} is not on or off")),
    }
}

/// A tracing term as shown: `on` or `off`.
fn on_off_text(on: bool) -> String {
    if on { "on" } else { "off" }.to_string()
}

/// A manifest term on the command line: `none`, or `transit`, `arrival` or both separated by a
/// comma (or `+`, as `hcmr agreement list` shows it), in any order.
fn manifests(s: &str) -> Result<ManifestTerms, String> {
    let s = s.trim();
    if s == "none" {
        return Ok(ManifestTerms::none());
    }
    let (mut transit, mut arrival) = (false, false);
    for part in s.split([',', '+']).map(str::trim) {
        match part {
            "transit" => transit = true,
            "arrival" => arrival = true,
            _ => {
                return Err(format!(
                    "{part:?} is not transit or arrival (e.g. transit,arrival; none: no manifests)"
                ))
            }
        }
    }
    Ok(manifest_terms_from_proto(transit, arrival))
}

/// The terms of a proposal as `hcmr agreement propose` compares them.
#[derive(Debug, Clone, PartialEq)]
struct ProposedTerms {
    peer_codes: Vec<proto::StatusMapping>,
    our_codes: Vec<proto::StatusMapping>,
    max_code_age_secs: u64,
    effective_from: u64,
    effective_until: u64,
    max_trust_age_secs: u64,
    /// What this node accepts of the peer's trip manifests.
    peer_manifests: ManifestTerms,
    /// What the peer accepts of this node's.
    our_manifests: ManifestTerms,
    /// Whether this node answers the peer's trace queries.
    peer_tracing: bool,
    /// Whether the peer answers this node's.
    our_tracing: bool,
}

impl ProposedTerms {
    /// The terms of `a` as seen from `local` (the codes of the peer here, ours there).
    fn of(a: &proto::AgreementView, local: &str) -> Option<Self> {
        let here = a.directions.iter().find(|d| d.verifier_province == local)?;
        let there = a.directions.iter().find(|d| d.issuer_province == local)?;
        Some(Self {
            peer_codes: here.status_map.clone(),
            our_codes: there.status_map.clone(),
            max_code_age_secs: here.max_code_age_secs,
            effective_from: here.effective_from,
            effective_until: here.effective_until,
            max_trust_age_secs: here.max_trust_age_secs,
            peer_manifests: manifest_terms_from_proto(
                here.manifests_transit,
                here.manifests_arrival,
            ),
            our_manifests: manifest_terms_from_proto(
                there.manifests_transit,
                there.manifests_arrival,
            ),
            peer_tracing: here.tracing,
            our_tracing: there.tracing,
        })
    }

    /// One line per term that differs from `old`: "name: old -> new".
    fn changes_from(&self, old: &Self) -> Vec<String> {
        let codes = |m: &[proto::StatusMapping]| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter()
                    .map(|x| format!("{}={}", status_name(x.issued), status_name(x.counts_as)))
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        let secs = |s: u64| humantime::format_duration(Duration::from_secs(s)).to_string();
        let mut out = Vec::new();
        let mut diff = |name: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{name}: {a} -> {b}"));
            }
        };
        diff(
            "peer codes here (--peer-codes)",
            codes(&old.peer_codes),
            codes(&self.peer_codes),
        );
        diff(
            "our codes there (--our-codes)",
            codes(&old.our_codes),
            codes(&self.our_codes),
        );
        diff(
            "max code age",
            secs(old.max_code_age_secs),
            secs(self.max_code_age_secs),
        );
        diff(
            "from",
            api_time(old.effective_from),
            api_time(self.effective_from),
        );
        diff(
            "until",
            api_time(old.effective_until),
            api_time(self.effective_until),
        );
        diff(
            "max trust age",
            secs(old.max_trust_age_secs),
            secs(self.max_trust_age_secs),
        );
        diff(
            "peer manifests here (--peer-manifests)",
            old.peer_manifests.to_string(),
            self.peer_manifests.to_string(),
        );
        diff(
            "our manifests there (--our-manifests)",
            old.our_manifests.to_string(),
            self.our_manifests.to_string(),
        );
        diff(
            "tracing here (--peer-tracing)",
            on_off_text(old.peer_tracing),
            on_off_text(self.peer_tracing),
        );
        diff(
            "tracing there (--our-tracing)",
            on_off_text(old.our_tracing),
            on_off_text(self.our_tracing),
        );
        out
    }
}

/// `hcmr agreement propose`: a new agreement from the flags, or an amendment from the terms of
/// the version in force with the flags given, its changes printed before it is sent.
pub(super) async fn exec(a: ProposeArgs) -> Result<(), CliError> {
    if let Some(peer) = &a.peer {
        check_node_url("--peer", peer)?;
    }
    if a.max_code_age.is_some_and(|d| d.as_secs() == 0) {
        return Err(CliError::Usage(
            "--max-code-age: must be at least 1s".into(),
        ));
    }
    let codes = |flag: &str, v: &Option<String>| {
        v.as_deref().map(|s| parse_status_map(flag, s)).transpose()
    };
    let peer_codes = codes("--peer-codes", &a.peer_codes)?;
    let our_codes = codes("--our-codes", &a.our_codes)?;
    let from = a.from.map(secs);
    let until = |from: u64, d: Duration| {
        from.checked_add(d.as_secs())
            .ok_or_else(|| CliError::Usage("--for: too long".into()))
    };
    let terms = match &a.amends {
        None => {
            let missing: Vec<&str> = [
                ("--peer", a.peer.is_none()),
                ("--peer-kid", a.peer_kid.is_none()),
                ("--peer-codes", peer_codes.is_none()),
                ("--our-codes", our_codes.is_none()),
            ]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(f, _)| *f)
            .collect();
            if !missing.is_empty() {
                return Err(CliError::Usage(format!(
                    "a new agreement needs {} (to amend one in force: --amends ID, and only the terms that change)",
                    missing.join(", ")
                )));
            }
            let from = from.unwrap_or_else(|| crate::unix_now().secs());
            ProposedTerms {
                peer_codes: peer_codes.unwrap_or_default(),
                our_codes: our_codes.unwrap_or_default(),
                max_code_age_secs: a.max_code_age.map_or(86_400, |d| d.as_secs()),
                effective_from: from,
                effective_until: until(
                    from,
                    a.duration.unwrap_or(Duration::from_secs(365 * 86_400)),
                )?,
                max_trust_age_secs: a.max_trust_age.map_or(0, |d| d.as_secs()),
                peer_manifests: a.peer_manifests.unwrap_or_default(),
                our_manifests: a.our_manifests.unwrap_or_default(),
                peer_tracing: a.peer_tracing.unwrap_or(false),
                our_tracing: a.our_tracing.unwrap_or(false),
            }
        }
        Some(id) => {
            let local = proto::federation_service_client::FederationServiceClient::new(
                channel(&a.node).await?,
            )
            .get_node_info(proto::GetNodeInfoRequest {})
            .await?
            .into_inner()
            .province;
            let versions: Vec<proto::AgreementView> = all_agreements(&a.node)
                .await?
                .into_iter()
                .filter(|v| v.id == *id)
                .collect();
            if versions.is_empty() {
                // An unknown id is a bad argument (EXIT_CODES), as the node's NOT_FOUND is.
                return Err(CliError::Usage(format!(
                    "--amends: no agreement {id} at this node"
                )));
            }
            let current = versions
                .iter()
                .rev()
                .find(|v| {
                    v.state == proto::AgreementState::Concluded as i32
                        || v.state == proto::AgreementState::Terminated as i32
                })
                .ok_or_else(|| {
                    CliError::Failed(format!(
                        "--amends: agreement {id} has no concluded version at this node to amend"
                    ))
                })?;
            let old = ProposedTerms::of(current, &local).ok_or_else(|| {
                CliError::Failed(format!("--amends: agreement {id} is not one of {local}'s"))
            })?;
            let from = from.unwrap_or(old.effective_from);
            let new = ProposedTerms {
                peer_codes: peer_codes.unwrap_or_else(|| old.peer_codes.clone()),
                our_codes: our_codes.unwrap_or_else(|| old.our_codes.clone()),
                max_code_age_secs: a
                    .max_code_age
                    .map_or(old.max_code_age_secs, |d| d.as_secs()),
                effective_from: from,
                effective_until: match a.duration {
                    Some(d) => until(from, d)?,
                    None => old.effective_until,
                },
                max_trust_age_secs: a
                    .max_trust_age
                    .map_or(old.max_trust_age_secs, |d| d.as_secs()),
                peer_manifests: a.peer_manifests.unwrap_or(old.peer_manifests),
                our_manifests: a.our_manifests.unwrap_or(old.our_manifests),
                peer_tracing: a.peer_tracing.unwrap_or(old.peer_tracing),
                our_tracing: a.our_tracing.unwrap_or(old.our_tracing),
            };
            let changes = new.changes_from(&old);
            out!(
                "amending agreement {id} version {} (terms not given stay as they are):",
                current.version
            );
            if changes.is_empty() {
                out!("  no term changes (the peer's current keys are pinned again)");
            }
            for c in changes {
                out!("  {c}");
            }
            new
        }
    };
    let r = proto::operator_service_client::OperatorServiceClient::new(channel(&a.node).await?)
        .create_agreement(proto::CreateAgreementRequest {
            peer_endpoint: a.peer.unwrap_or_default(),
            peer_codes_here: terms.peer_codes,
            our_codes_there: terms.our_codes,
            max_code_age_secs: terms.max_code_age_secs,
            max_trust_age_secs: terms.max_trust_age_secs,
            amends: a.amends.unwrap_or_default(),
            expected_peer_kid: a.peer_kid.unwrap_or_default(),
            effective_from: terms.effective_from,
            effective_until: terms.effective_until,
            peer_manifests_transit: terms.peer_manifests.allows(ManifestRole::Transit),
            peer_manifests_arrival: terms.peer_manifests.allows(ManifestRole::Arrival),
            our_manifests_transit: terms.our_manifests.allows(ManifestRole::Transit),
            our_manifests_arrival: terms.our_manifests.allows(ManifestRole::Arrival),
            peer_tracing: terms.peer_tracing,
            our_tracing: terms.our_tracing,
        })
        .await?
        .into_inner();
    if let Some(v) = &r.agreement {
        print_agreement(v);
    }
    Ok(())
}

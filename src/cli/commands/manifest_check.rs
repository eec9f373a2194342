//! `hcmr manifest check`: check a vehicle by its trip manifest (docs/transport.md section 5) at
//! a node (VerifyManifest, as a verifier), or offline against a trust bundle. Exit 0 on PASS,
//! 3 on STOP (as `hcmr verify` on NOT RECOGNIZED).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::display::{api_time, for_people};
use crate::cli::node::{channel, NodeArg};
use crate::cli::{args, CliError};
use crate::proto;
use crate::proto::health_code_service_client::HealthCodeServiceClient;
use crate::province::Province;

/// Longest input read from a file or standard input, in bytes: more than any manifest
/// ([`crate::manifest::MAX_MANIFEST_CHARS`] characters) and its line ends.
const MAX_INPUT: u64 = 8192;

/// Arguments of `hcmr manifest check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The node to ask, with a verifier's token (ignored with --offline).
    #[command(flatten)]
    node: NodeArg,
    /// Check with this trust bundle file alone, without any node (no audit, no report to the
    /// origin, no memory of versions seen).
    #[arg(long, value_name = "BUNDLE")]
    offline: Option<PathBuf>,
    /// With --offline: the exporting node's key or kid (hex), as `hcmr bundle export` printed it.
    #[arg(long, value_name = "KID_OR_KEY", requires = "offline")]
    trust: Option<String>,
    /// With --offline: the oldest bundle accepted, e.g. 1d.
    #[arg(long, default_value = "1d", value_parser = args::duration, requires = "offline")]
    max_bundle_age: Duration,
    /// Who is checking, for the node's audit log and the report to the origin (e.g.
    /// 皖苏界G40收费站).
    #[arg(long, default_value = "cli")]
    checkpoint: String,
    /// Read the manifest from this file instead.
    #[arg(long, value_name = "FILE", conflicts_with = "manifest")]
    file: Option<PathBuf>,
    /// Print the verdict as one JSON object.
    #[arg(long)]
    json: bool,
    /// The manifest string ("HCMRT1:..."), or - to read it from standard input.
    #[arg(required_unless_present = "file")]
    manifest: Option<String>,
}

/// Runs `hcmr manifest check`.
///
/// # Errors
/// [`CliError::NotRecognized`] (exit 3) on STOP, after printing it; [`CliError::Usage`] for
/// input that cannot be read or a bad bundle argument; the node's errors.
pub async fn run(a: CheckArgs) -> Result<(), CliError> {
    let text = manifest_text(a.manifest.as_deref(), a.file.as_deref())?;
    let r = match &a.offline {
        Some(path) => {
            let (snapshot, now) = super::verify::open_bundle(
                "--offline",
                path,
                a.trust.as_deref(),
                a.max_bundle_age,
            )?;
            crate::node::manifest_check::check_offline(&text, &snapshot, now)
        }
        None => HealthCodeServiceClient::new(channel(&a.node).await?)
            .verify_manifest(proto::VerifyManifestRequest {
                manifest: text,
                checkpoint_id: a.checkpoint.clone(),
            })
            .await?
            .into_inner(),
    };
    if a.json {
        out!("{}", to_json(&r));
    } else {
        print_verdict(&r);
    }
    if r.pass {
        Ok(())
    } else {
        Err(CliError::NotRecognized)
    }
}

/// The manifest string: the argument, standard input (`-`) or `--file`, trimmed.
fn manifest_text(arg: Option<&str>, file: Option<&std::path::Path>) -> Result<String, CliError> {
    let text = match (arg, file) {
        (_, Some(path)) => {
            let bytes = crate::fsutil::read_capped(path, MAX_INPUT)
                .map_err(|e| CliError::Usage(format!("--file {}: {e}", path.display())))?;
            String::from_utf8(bytes).map_err(|_| {
                CliError::Usage(format!("--file {}: not UTF-8 text", path.display()))
            })?
        }
        (Some("-"), None) => {
            let mut s = String::new();
            std::io::Read::read_to_string(
                &mut std::io::Read::take(std::io::stdin(), MAX_INPUT),
                &mut s,
            )
            .map_err(|e| CliError::Usage(format!("reading the manifest from stdin: {e}")))?;
            s
        }
        (Some(s), None) => s.to_string(),
        (None, None) => return Err(CliError::Usage("give a MANIFEST or --file FILE".into())),
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(CliError::Usage(
            "the manifest is empty: give the HCMRT1: string, - to read it from standard input, \
             or --file FILE"
                .into(),
        ));
    }
    Ok(text.to_string())
}

/// A reason's stable identifier (`revoked`, `manifests_not_agreed`, ...), as docs/transport.md
/// section 5 names it.
fn reason_name(r: i32) -> String {
    proto::ManifestReason::try_from(r)
        .map(|x| {
            x.as_str_name()
                .trim_start_matches("MANIFEST_REASON_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| format!("reason_{r}"))
}

/// A province code with its English name.
fn province(code: &str) -> String {
    match code.parse::<Province>() {
        Ok(p) => format!("{code} {}", p.name_en()),
        Err(_) => code.to_string(),
    }
}

/// Prints a vehicle's verdict for checkpoint staff: PASS or STOP, the headcount, the route, and
/// every reason of a STOP by seat.
pub fn print_verdict(r: &proto::VerifyManifestResponse) {
    let head = if r.pass { "PASS" } else { "STOP" };
    if r.trip_id.is_empty() {
        out!("{head}  {}", r.explanation);
    } else {
        out!(
            "{head}  {}  trip {} version {}",
            r.vehicle,
            r.trip_id,
            r.version
        );
        out!("  {}", r.explanation);
        if !r.signature_verified {
            out!("  not verified: the signature did not verify; what follows is not the origin's word");
        }
        out!(
            "  headcount:  {} passengers + {} crew = {}{}",
            r.passengers,
            r.crew,
            r.passengers + r.crew,
            if r.pass {
                "  (count heads on board)"
            } else {
                ""
            }
        );
        // The province of a six-digit county code: its first two digits and four zeros.
        let in_province = |county: &str| match county.get(..2) {
            Some(p) => format!("{county} ({})", province(&format!("{p}0000"))),
            None => county.to_string(),
        };
        let mut route = vec![in_province(&r.origin)];
        route.extend(r.transit.iter().map(|t| province(t)));
        route.push(format!("{} {}", in_province(&r.destination), r.place));
        out!(
            "  route:      {}; checked here in {}",
            route.join(" -> "),
            r.role
        );
        out!(
            "  window:     departure {}, arrival {}; sealed {} before this check",
            api_time(r.departure),
            api_time(r.arrival),
            humantime::format_duration(Duration::from_secs(r.seal_age_secs))
        );
        if r.not_rechecked > 0 {
            out!(
                "  not re-checked: {} (no feed of their issuer here; their boarding stands)",
                r.not_rechecked
            );
        }
    }
    for x in &r.reasons {
        let who = match (x.seat, x.issuer_province.as_str()) {
            (0, _) => String::new(),
            (s, "") => format!("seat {s}: "),
            (s, p) => format!("seat {s} ({}): ", province(p)),
        };
        out!(
            "  {who}{}{}",
            reason_name(x.reason),
            if x.detail.is_empty() {
                String::new()
            } else {
                format!(" - {}", for_people(&x.detail))
            }
        );
    }
}

/// The verdict as one JSON object: every field of the answer, reasons by their identifiers.
pub fn to_json(r: &proto::VerifyManifestResponse) -> serde_json::Value {
    serde_json::json!({
        "verdict": if r.pass { "PASS" } else { "STOP" },
        "pass": r.pass,
        "reasons": r.reasons.iter().map(|x| serde_json::json!({
            "reason": reason_name(x.reason),
            "seat": x.seat,
            "issuer_province": x.issuer_province,
            "detail": x.detail,
        })).collect::<Vec<_>>(),
        "trip_id": r.trip_id,
        "version": r.version,
        "passengers": r.passengers,
        "crew": r.crew,
        "vehicle": r.vehicle,
        "origin": r.origin,
        "destination": r.destination,
        "place": r.place,
        "transit": r.transit,
        "departure": r.departure,
        "arrival": r.arrival,
        "seal_age_secs": r.seal_age_secs,
        "not_rechecked": r.not_rechecked,
        "role": r.role,
        "checked_at": r.checked_at,
        "signature_verified": r.signature_verified,
        "explanation": r.explanation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_named_by_their_identifiers() {
        assert_eq!(
            reason_name(proto::ManifestReason::ManifestsNotAgreed as i32),
            "manifests_not_agreed"
        );
        for r in crate::manifest::ManifestReason::ALL {
            let wire = crate::node::manifest_check::reason_to_proto(r) as i32;
            assert_eq!(reason_name(wire), r.as_str());
        }
        assert_eq!(reason_name(99), "reason_99");
    }

    #[test]
    fn json_names_the_verdict_and_each_reason_by_seat() {
        let r = proto::VerifyManifestResponse {
            pass: false,
            reasons: vec![proto::ManifestStopReason {
                reason: proto::ManifestReason::Revoked as i32,
                seat: 3,
                issuer_province: "510000".into(),
                detail: String::new(),
            }],
            trip_id: "747269702d303432".into(),
            version: 2,
            ..Default::default()
        };
        let j = to_json(&r);
        assert_eq!(j["verdict"], "STOP");
        assert_eq!(j["reasons"][0]["reason"], "revoked");
        assert_eq!(j["reasons"][0]["seat"], 3);
        assert_eq!(j["version"], 2);
    }
}

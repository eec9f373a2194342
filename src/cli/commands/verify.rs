//! `hcmr verify`: verify a code at a node, or offline against a trust bundle.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::display::{api_time, for_people, local_time, status_name};
use crate::cli::node::{channel, NodeArg};
use crate::cli::values::code_or_stdin;
use crate::cli::{args, terminal_safe, CliError};
use crate::identity::DocumentType;
use crate::node::convert;
use crate::proto;
use crate::proto::health_code_service_client::HealthCodeServiceClient;
use crate::province::Province;

/// Arguments of `hcmr verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The node to ask (ignored with --offline).
    #[command(flatten)]
    node: NodeArg,
    /// Verify with this trust bundle file alone, without any node (a file of at most 4 MiB).
    #[arg(long, value_name = "BUNDLE")]
    offline: Option<PathBuf>,
    /// With --offline: the exporting node's key or kid (hex), as `hcmr bundle export` printed it.
    #[arg(long, value_name = "KID_OR_KEY", requires = "offline")]
    trust: Option<String>,
    /// With --offline: the oldest bundle accepted, e.g. 1d.
    #[arg(long, default_value = "1d", value_parser = args::duration, requires = "offline")]
    max_bundle_age: Duration,
    /// Read the code from a photo or screenshot of its QR code (PNG or JPEG), or the SVG that
    /// `hcmr issue --qr` wrote, instead.
    #[arg(long, value_name = "IMAGE", conflicts_with = "code")]
    qr: Option<PathBuf>,
    /// Who is checking, for the node's audit log (e.g. chengdu-east-gate-3).
    #[arg(long, default_value = "cli")]
    checkpoint: String,
    /// The code string, or - to read it from standard input.
    #[arg(required_unless_present = "qr")]
    code: Option<String>,
}

/// Runs `hcmr verify`.
pub(crate) async fn exec(v: VerifyArgs) -> Result<(), CliError> {
    let code = match (&v.qr, v.code) {
        (Some(image), _) => crate::qr::decode_file(image).map_err(|e| {
            let msg = format!("--qr {}: {e}", image.display());
            // The exit-code rule for files (EXIT_CODES): an image that cannot be read
            // is a bad argument; one that is read but holds no readable code fails.
            match e {
                crate::qr::QrError::NoQrCode
                | crate::qr::QrError::Unreadable(_)
                | crate::qr::QrError::NotText => CliError::Failed(msg),
                _ => CliError::Usage(msg),
            }
        })?,
        // Only the argument can be `-` (read stdin) or empty; an image's text is checked.
        (None, Some(c)) => code_or_stdin(c)?,
        (None, None) => return Err(CliError::Usage("give a CODE or --qr IMAGE".into())),
    };
    let r = match &v.offline {
        Some(path) => verify_offline(path, v.trust.as_deref(), v.max_bundle_age, &code)?,
        None => HealthCodeServiceClient::new(channel(&v.node).await?)
            .verify_health_code(proto::VerifyHealthCodeRequest {
                code,
                checkpoint_id: v.checkpoint.clone(),
            })
            .await?
            .into_inner(),
    };
    print_verdict(&r);
    if r.verdict == proto::Verdict::Recognized as i32 {
        Ok(())
    } else {
        Err(CliError::NotRecognized)
    }
}

/// Prints a verification answer for checkpoint staff.
pub fn print_verdict(r: &proto::VerifyHealthCodeResponse) {
    let recognized = r.verdict == proto::Verdict::Recognized as i32;
    let reason = proto::Reason::try_from(r.reason)
        .map(|x| x.as_str_name())
        .unwrap_or("REASON_UNSPECIFIED");
    out!(
        "{}  {}",
        if recognized {
            "RECOGNIZED"
        } else {
            "NOT RECOGNIZED"
        },
        if recognized {
            format!(
                "counts here as {}",
                status_name(r.local_status).to_uppercase()
            )
        } else {
            format!("{reason}: {}", r.explanation)
        }
    );
    if !r.issuer_province.is_empty() {
        let name = r
            .issuer_province
            .parse::<Province>()
            .map(|p| p.name_en())
            .unwrap_or("?");
        out!("  issuer:        {} {name}", r.issuer_province);
    }
    match &r.subject {
        // Whatever a code whose signature did not verify says about its holder is the forger's
        // text: never shown as if it were the person's (issue 15 fault 4).
        Some(_) if !r.signature_verified => {
            out!("  subject:       not shown: the signature did not verify");
        }
        Some(s) => {
            let t = u64::try_from(s.document_type)
                .ok()
                .and_then(DocumentType::from_u64)
                .map_or("?", DocumentType::label);
            // Escaped whole, line feeds included: a field is one line.
            out!(
                "  subject:       {}  {} ({t})",
                terminal_safe(&s.masked_name, false),
                terminal_safe(&s.masked_document_number, false)
            );
        }
        None => {}
    }
    if r.exp != 0 {
        out!(
            "  issued status: {}{}   counts here: {}",
            status_name(r.issued_status),
            if r.signature_verified {
                ""
            } else {
                " (unverified)"
            },
            status_name(r.local_status)
        );
        out!(
            "  code expires:  {}   status valid until: {}",
            api_time(r.exp),
            api_time(r.status_valid_until)
        );
    }
    if r.issuer_state_synced {
        out!(
            "  issuer state:  synced {} ({} ago)",
            api_time(r.issuer_state_synced_at),
            humantime::format_duration(Duration::from_secs(r.issuer_state_age_secs))
        );
    } else if !r.agreement_id.is_empty() {
        out!("  issuer state:  never synced (pinned keys only, no revocations known)");
    }
    if !r.detail.is_empty() {
        out!("  detail:        {}", for_people(&r.detail));
    }
}

/// Verifies a code with a trust bundle alone.
fn verify_offline(
    path: &std::path::Path,
    trust: Option<&str>,
    max_age: Duration,
    code: &str,
) -> Result<proto::VerifyHealthCodeResponse, CliError> {
    let (snapshot, now) = open_bundle("--offline", path, trust, max_age)?;
    let verdict = crate::verify::verify(code, &snapshot, now);
    Ok(convert::verdict_to_proto(&verdict, now))
}

/// The trust snapshot of the bundle file `path` (`--offline`), checked against the exporting
/// node's key or kid `trust` (`--trust`) and no older than `max_age` (`--max-bundle-age`), with
/// the time it was judged at; notes on standard error which bundle it is. Shared by every
/// offline check (`hcmr verify`, `hcmr manifest check`, `hcmr manifest trace --verify`); `flag`
/// names the option that gave `path` in messages.
///
/// # Errors
/// [`CliError::Usage`] for a missing `--trust`, an unreadable file or one that is not a bundle;
/// [`CliError::Failed`] for a bundle that fails its checks or is too old.
pub(crate) fn open_bundle(
    flag: &str,
    path: &std::path::Path,
    trust: Option<&str>,
    max_age: Duration,
) -> Result<(crate::trust::TrustSnapshot, crate::UnixTime), CliError> {
    let trust = trust.ok_or_else(|| {
        CliError::Usage(format!(
            "--trust: required with {flag} (the kid `hcmr bundle export` printed)"
        ))
    })?;
    let anchor = crate::bundle::TrustAnchor::parse(trust)
        .map_err(|e| CliError::Usage(format!("--trust: {e}")))?;
    let bytes = crate::fsutil::read_capped(path, crate::bundle::MAX_BUNDLE_BYTES)
        .map_err(|e| CliError::Usage(format!("{flag} {}: {e}", path.display())))?;
    let now = crate::unix_now();
    let (content, snapshot) =
        crate::bundle::open(&bytes, anchor, now, max_age.as_secs()).map_err(|e| match e {
            crate::bundle::BundleError::TooOld { age, max } => CliError::Failed(format!(
                "bundle {}: exported {} ago, older than --max-bundle-age {} allows: export a \
                 new one, or allow more",
                path.display(),
                humantime::format_duration(Duration::from_secs(age)),
                args::short_duration(max)
            )),
            // Not a bundle at all is a bad argument; a bundle that fails its checks fails
            // (EXIT_CODES).
            crate::bundle::BundleError::Malformed(_) => {
                CliError::Usage(format!("bundle {}: {e}", path.display()))
            }
            e => CliError::Failed(format!("bundle {}: {e}", path.display())),
        })?;
    note!(
        "offline: bundle of {} {} exported {} ({} ago)",
        content.province,
        content.province.name_en(),
        local_time(content.exported_at),
        humantime::format_duration(Duration::from_secs(
            now.saturating_since(content.exported_at)
        ))
    );
    Ok((snapshot, now))
}

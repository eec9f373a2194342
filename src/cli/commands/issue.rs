//! `hcmr issue`: issue a health code, and write its QR code or printable card.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::display::{api_time, DISPLAY_OFFSET};
use crate::cli::node::{channel, NodeArg};
use crate::cli::values::DocType;
use crate::cli::{args, output, CliError};
use crate::identity::DocumentType;
use crate::node::convert;
use crate::proto;
use crate::proto::health_code_service_client::HealthCodeServiceClient;
use crate::status::HealthStatus;

/// Arguments of `hcmr issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    #[command(flatten)]
    node: NodeArg,
    /// Full name (sent to the node, which keeps only the masked form).
    #[arg(long)]
    name: String,
    /// Document type.
    #[arg(long, value_enum, default_value = "id-card")]
    doc_type: DocType,
    /// Document number (a resident identity card number is checked per GB 11643).
    #[arg(long)]
    doc_number: String,
    /// Status: green, yellow or red.
    #[arg(long)]
    status: HealthStatus,
    /// How long the status holds from now, e.g. 14d, 12h; at most 366d.
    #[arg(long, default_value = "1d", value_parser = args::status_validity)]
    status_valid_for: Duration,
    /// How long the code itself is valid, e.g. 5m, 1s to 7d (default: the node's setting; for a
    /// --card, as long as the status, at most 7 days).
    #[arg(long, value_parser = args::code_lifetime)]
    lifetime: Option<Duration>,
    /// Also write the QR code to this new file: .png or .svg (checked before the code is
    /// issued; a file that exists, or a symbolic link, is refused, never overwritten).
    #[arg(long, value_name = "FILE")]
    qr: Option<PathBuf>,
    /// Also write a printable A6 card to this new file, for people without a phone: .pdf for a
    /// PDF, anything else for a PNG at 300 dpi (checked before the code is issued; a file that
    /// exists, or a symbolic link, is refused, never overwritten). A card is a static
    /// code: without --lifetime its code is valid as long as the status (--status-valid-for), at
    /// most 7 days (the most --lifetime may ask for a card); its times are printed in the display
    /// offset.
    #[arg(long, value_name = "FILE")]
    card: Option<PathBuf>,
}

/// Runs `hcmr issue`.
pub(crate) async fn exec(a: IssueArgs) -> Result<(), CliError> {
    let doc: DocumentType = a.doc_type.into();
    let qr_format = match (&a.qr, &a.card) {
        (Some(_), Some(_)) => {
            return Err(CliError::Usage(
                "--qr and --card: choose one (the card holds the QR code)".into(),
            ))
        }
        // A PDF card is drawn here from the issued code; a PNG one by the node.
        (None, Some(p)) if is_pdf(p) => proto::QrFormat::None,
        (None, Some(_)) => proto::QrFormat::CardPng,
        (Some(p), None) => match p.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("png") => proto::QrFormat::Png,
            Some(e) if e.eq_ignore_ascii_case("svg") => proto::QrFormat::Svg,
            _ => {
                return Err(CliError::Usage(format!(
                    "--qr {}: the file name must end in .png or .svg",
                    p.display()
                )))
            }
        },
        (None, None) => proto::QrFormat::None,
    };
    // The image file is opened before the code is issued: a path that cannot be
    // written is refused while nothing is issued.
    let image = match (&a.qr, &a.card) {
        (Some(p), _) => Some(("--qr", p)),
        (None, Some(p)) => Some(("--card", p)),
        (None, None) => None,
    };
    let image_file = image
        .map(|(flag, p)| output::OutputFile::reserve(flag, p, output::Kind::New))
        .transpose()
        .map_err(|e| CliError::Usage(format!("{e}; no code was issued")))?;
    let r = HealthCodeServiceClient::new(channel(&a.node).await?)
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(proto::Subject {
                name: a.name,
                document_type: i32::from(doc.to_u8()),
                document_number: a.doc_number,
            }),
            status: convert::status_to_proto(Some(a.status)),
            status_valid_until: crate::unix_now()
                .checked_add(a.status_valid_for.as_secs())
                .ok_or_else(|| CliError::Usage("--status-valid-for: too long".into()))?
                .secs(),
            code_lifetime_secs: match a.lifetime.map(|d| d.as_secs()) {
                // A printed card is a static code: its own default, not five minutes.
                None if a.card.is_some() => {
                    crate::card::card_default_lifetime(a.status_valid_for.as_secs())
                }
                None => 0,
                // --lifetime's parser takes 1s to 7d, which is also a card's maximum.
                Some(l) => l,
            },
            qr_format: qr_format as i32,
        })
        .await?
        .into_inner();
    // The code and its cti (needed to revoke it) first: it is issued whatever happens
    // to the image file.
    out!("{}", r.code);
    note!("cti {}  kid {}  expires {}", r.cti, r.kid, api_time(r.exp));
    let (Some(file), Some((flag, path))) = (image_file, image) else {
        return Ok(());
    };
    let failed = |e: String| {
        CliError::Failed(format!(
            "{flag} {}: {e}; the code was issued (printed above, cti {})",
            path.display(),
            r.cti
        ))
    };
    if is_pdf(path) && a.card.is_some() {
        let pdf = crate::card::CardInfo::from_code(&r.code)
            .and_then(|mut info| {
                info.utc_offset = DISPLAY_OFFSET.get().copied().unwrap_or_default();
                crate::card::card_pdf(&info)
            })
            .map_err(|e| failed(e.to_string()))?;
        file.write(&pdf).map_err(|e| failed(e.to_string()))?;
        note!("wrote {} (application/pdf)", path.display());
    } else {
        file.write(&r.qr_image).map_err(|e| failed(e.to_string()))?;
        note!("wrote {} ({})", path.display(), r.qr_media_type);
    }
    if a.card.is_some() {
        note!(
            "the card's code is valid until {} ({}; a printed card cannot refresh \
             itself: print a new one by then)",
            api_time(r.exp),
            match a.lifetime {
                Some(_) => "--lifetime",
                None => "a card's default: as long as the status, at most 7 days",
            }
        );
    }
    Ok(())
}

/// Whether `p` names a PDF file (`.pdf`, any case).
fn is_pdf(p: &std::path::Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
}

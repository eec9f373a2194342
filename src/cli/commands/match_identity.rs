//! `hcmr match`: does a shown document match a code's subject?

use clap::Args;

use crate::cli::node::{channel, NodeArg};
use crate::cli::values::{code_or_stdin, DocType};
use crate::cli::CliError;
use crate::identity::DocumentType;
use crate::proto;
use crate::proto::health_code_service_client::HealthCodeServiceClient;

/// Arguments of `hcmr match`.
#[derive(Debug, Args)]
pub struct MatchArgs {
    /// The node to ask.
    #[command(flatten)]
    node: NodeArg,
    /// Document type.
    #[arg(long, value_enum, default_value = "id-card")]
    doc_type: DocType,
    /// The document number as shown.
    #[arg(long)]
    doc_number: String,
    /// The code string, or - to read it from standard input.
    code: String,
}

/// Runs `hcmr match`.
pub(crate) async fn exec(a: MatchArgs) -> Result<(), CliError> {
    let MatchArgs {
        node,
        doc_type,
        doc_number,
        code,
    } = a;
    let doc: DocumentType = doc_type.into();
    let code = code_or_stdin(code)?;
    let r = HealthCodeServiceClient::new(channel(&node).await?)
        .match_identity(proto::MatchIdentityRequest {
            code,
            document_type: i32::from(doc.to_u8()),
            document_number: doc_number,
        })
        .await?
        .into_inner();
    if r.matches {
        out!(
            "MATCH: the document belongs to the code's holder (checked by {})",
            r.checked_by
        );
        Ok(())
    } else {
        out!(
            "NO MATCH: the document is not the code's holder's (checked by {})",
            r.checked_by
        );
        Err(CliError::NotRecognized)
    }
}

//! The CLI's errors and their exit codes ([`EXIT_CODES`]).

use super::args;
use super::display::for_people;

/// The exit codes and the one rule for file and id arguments, shown by `hcmr --help` and
/// written in the README.
pub const EXIT_CODES: &str = "\
Exit codes: 0 success (verify: RECOGNIZED; manifest check: PASS); 3 verify NOT RECOGNIZED, \
manifest check STOP, match NO MATCH; 64 bad usage or argument; 69 node unreachable; 78 bad \
configuration (a setting, a certificate, a value from an environment variable); 1 any other \
failure (a refused call among them).

File and id arguments: 64 when the argument names the wrong thing: an input file that is missing \
or cannot be read, a file of the wrong kind (not a PNG, JPEG or SVG image, not a trust bundle, \
not a backup), an id the node does not know (agreement, caller, code, key), an output file that \
exists or whose folder does not; 1 when it is the right thing but fails its check (a damaged, \
too old or foreign bundle or backup, an image without a readable QR code). The node's own files \
(hcmr.toml of --config or --dir, its key passphrase file, the certificate of --tls-cert) are \
configuration: 78.";

/// A command-line failure with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage or argument: exit 64.
    #[error("{0}")]
    Usage(String),
    /// Bad configuration: exit 78.
    #[error("{0}")]
    Config(String),
    /// The node cannot be reached: exit 69.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: exit 1.
    #[error("{0}")]
    Failed(String),
    /// `verify` answered NOT RECOGNIZED (a manifest check STOP, `match` NO MATCH): exit 3
    /// (already printed).
    #[error("not recognized")]
    NotRecognized,
    /// Stopped by SIGINT or SIGTERM before it was done (`bench`): exit 130, as a shell reports
    /// a process ended by Ctrl-C.
    #[error("{0}")]
    Interrupted(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 64,
            CliError::Config(_) => 78,
            CliError::Unavailable(_) => 69,
            CliError::Failed(_) => 1,
            CliError::NotRecognized => 3,
            CliError::Interrupted(_) => 130,
        }
    }
}

impl From<tonic::Status> for CliError {
    fn from(s: tonic::Status) -> Self {
        // In the operator's words: the node's message, with what kind of refusal it is where
        // the message alone does not say; never the gRPC code's name.
        // The node writes times in UTC; the person reads them in the display offset. Only the
        // node's words are rewritten: a CLI error may quote the operator's own input.
        let message = for_people(s.message());
        let msg = match s.code() {
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                format!("the node refused the call: {}", message)
            }
            tonic::Code::Unavailable => format!("the node is unavailable: {}", message),
            tonic::Code::DeadlineExceeded => {
                format!("the node did not answer in time: {}", message)
            }
            tonic::Code::ResourceExhausted => format!("the node is busy: {}", message),
            tonic::Code::InvalidArgument => args::in_flags(&message),
            tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss => {
                format!("the node failed: {}", message)
            }
            _ => message,
        };
        match s.code() {
            // NOT_FOUND answers an id that names nothing there: a bad argument (EXIT_CODES).
            tonic::Code::InvalidArgument | tonic::Code::NotFound => CliError::Usage(msg),
            tonic::Code::Unavailable => CliError::Unavailable(msg),
            _ => CliError::Failed(msg),
        }
    }
}

//! The `hcmr` command line. `main.rs` only parses arguments into [`Cli`] and calls [`run`].
//!
//! Exit codes: 0 success (for `verify`: recognized); 3 `verify` answered NOT RECOGNIZED;
//! 64 bad usage or argument (EX_USAGE); 69 node unreachable (EX_UNAVAILABLE); 78 bad
//! configuration (EX_CONFIG); 1 any other failure. File and id arguments follow one rule,
//! [`EXIT_CODES`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::identity::DocumentType;
use crate::node::convert;
use crate::proto;
use crate::province::Province;
use crate::status::HealthStatus;

/// Writes a line to standard output; a closed pipe (`hcmr audit --csv | head`) ends the program
/// quietly instead of panicking as `println!` would. Control, bidi and invisible characters are
/// escaped ([`terminal_safe`]): every line may carry data from a code, a peer or a caller.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let line = $crate::cli::terminal_safe(&line, true);
        if let Err(e) = writeln!(std::io::stdout(), "{line}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// `eprintln!` with the escaping of [`out!`], for notes that carry data (tokens, names, paths).
macro_rules! note {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        eprintln!("{}", $crate::cli::terminal_safe(&line, true));
    }};
}

mod args;
mod backup;
mod escape;
mod output;
mod serving;

pub use args::{env_source, parse, ParseError};
pub use escape::terminal_safe;

/// Default node URL when neither `--node`, `HCMR_NODE` nor `--dir` is given.
pub const DEFAULT_NODE: &str = "https://127.0.0.1:7510";

/// hcmr: health-code mutual recognition between provinces.
#[derive(Debug, Parser)]
#[command(name = "hcmr", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Show times in this offset from UTC, e.g. +08:00 (Beijing time) [default: the
    /// display_utc_offset of --dir's hcmr.toml, else +08:00]. Times are written with their
    /// offset; what the node stores and logs stays UTC. (The node's own card and page use the
    /// display_utc_offset of its hcmr.toml; `hcmr init` writes this offset there.)
    #[arg(
        long,
        global = true,
        env = "HCMR_DISPLAY_UTC_OFFSET",
        value_name = "OFFSET"
    )]
    pub display_utc_offset: Option<crate::display::DisplayOffset>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a province node: key files, database and config file in DIR.
    Init {
        /// GB/T 2260 province-level code, e.g. 510000 (Sichuan).
        #[arg(long)]
        province: String,
        /// Folder for the node (created; must not hold a node already).
        #[arg(long)]
        data_dir: PathBuf,
        /// gRPC listen address.
        #[arg(long, default_value = "127.0.0.1:7510")]
        listen: SocketAddr,
        /// URL peers use to reach this node (default: https:// + the listen address).
        #[arg(long)]
        endpoint: Option<String>,
        /// Address of the checkpoint web page, e.g. 127.0.0.1:8510; none by default.
        #[arg(long)]
        http_listen: Option<SocketAddr>,
        /// No TLS: plain text on loopback addresses only, for development. Peers cannot be
        /// authenticated then.
        #[arg(long)]
        plaintext: bool,
        /// Encrypt the key files with the passphrase in this environment variable (its name is
        /// stored in hcmr.toml; the passphrase is not). It must be set now and at every start.
        #[arg(long, conflicts_with = "key_passphrase_file")]
        key_passphrase_env: Option<String>,
        /// Encrypt the key files with the passphrase in this file (mode 0600); hcmr.toml stores
        /// its absolute path.
        #[arg(long)]
        key_passphrase_file: Option<PathBuf>,
    },
    /// Serve a node's gRPC API until SIGINT or SIGTERM.
    #[command(after_help = EXIT_CODES)]
    Serve {
        /// The node's config file (hcmr.toml, written by init).
        #[arg(long, required_unless_present = "dir", conflicts_with = "dir")]
        config: Option<PathBuf>,
        /// The node's folder (made by `hcmr init`): serves its hcmr.toml.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Log lines on standard error: `human` (text) or `json` (one JSON object a line, for a
        /// log collector).
        #[arg(long, env = "HCMR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
        log_format: LogFormat,
        /// Settings over those of the config file (a flag wins over its environment variable).
        #[command(flatten)]
        overrides: ServeOverrides,
        /// Stop (gracefully) when the process PID, which started this one, exits, even by
        /// SIGKILL, and do not start when it has already exited: for nodes that `hcmr bench`
        /// starts.
        #[arg(long, hide = true, value_name = "PID")]
        exit_with_parent: Option<u32>,
    },
    /// Show a node's province and public keys.
    Info(NodeArg),
    /// Issue a health code (code-making request, GB/T 38963); prints the code string.
    Issue(IssueArgs),
    /// Verify a health code at a node (code-verification request, GB/T 38963), or offline
    /// against a trust bundle.
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyArgs),
    /// Bilateral agreements with peer provinces.
    #[command(subcommand)]
    Agreement(AgreementCommand),
    /// The node's signing keys: rotation and withdrawal.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Revoke codes this node issued: one code, or every code of a subject.
    #[command(subcommand)]
    Revoke(RevokeCommand),
    /// Pull every peer's trust feed and agreement state now.
    Sync(NodeArg),
    /// Offline trust bundles for checkpoints without a network.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Does the document a person shows match the code's subject? (Ties a printed card to its
    /// holder; the number is neither stored nor logged.)
    Match {
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
    },
    /// Decode any code of this pipeline (HCMR1: or an EU DCC HC1:) without verifying it; prints
    /// JSON.
    Inspect {
        /// The code string, or - to read it from standard input.
        code: String,
    },
    /// The audit log of verifications: list, filter, export CSV, or count a day.
    Audit(AuditArgs),
    /// Run the local five-province federation demo and print its table.
    Demo {
        /// Keep the nodes' folders here afterwards (a new folder), e.g. to inspect what they
        /// stored; by default they are temporary.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Load a node over gRPC and report throughput, latency percentiles and server CPU per
    /// request (see BENCHMARKS.md).
    Bench(BenchArgs),
    /// Callers of the node's API (platforms, checkpoint devices, operators) and their roles.
    #[command(subcommand)]
    Caller(CallerCommand),
    /// Back up a running node (as an admin): its database, configuration and key files, in one
    /// new file of mode 0600, as secret as the keys.
    Backup {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The backup file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a new node folder from a backup, offline; then start it with `hcmr serve`.
    Restore {
        /// The backup file (from `hcmr backup`); refused when damaged.
        #[arg(long)]
        from: PathBuf,
        /// The new node folder (must not exist).
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Print a shell completion script, made from these very options, e.g.
    /// `hcmr completions bash > /etc/bash_completion.d/hcmr`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (hcmr.1 and one per subcommand, e.g. hcmr-verify.1) into a
    /// folder, made from these very options, e.g. `hcmr man --out /usr/local/share/man/man1`.
    Man {
        /// The folder (created when missing). Pages already there are refused (nothing is
        /// written) unless --force is given.
        #[arg(long)]
        out: PathBuf,
        /// Replace pages that already exist in the folder (e.g. when upgrading hcmr).
        #[arg(long)]
        force: bool,
    },
}

/// How `hcmr serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text lines for people.
    Human,
    /// One JSON object per line (`timestamp`, `level`, `fields.message`, ..., `target`).
    Json,
}

/// Arguments of `hcmr bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The node to load (a caller with roles issuer and verifier); not with --self-contained.
    #[command(flatten)]
    node: NodeArg,
    /// Start two nodes of this machine (Sichuan issues, Guangdong verifies) and load Guangdong.
    #[arg(long)]
    self_contained: bool,
    /// The server's process id, for its CPU time per request (self-contained: known).
    #[arg(long)]
    server_pid: Option<u32>,
    /// A peer node's folder on this machine, whose codes `verify-peer` verifies (its province
    /// has an agreement with the node under load); not with --self-contained.
    #[arg(long, requires = "peer_token_file")]
    peer_dir: Option<PathBuf>,
    /// File holding a token of the peer node (--peer-dir) with role issuer.
    #[arg(long, requires = "peer_dir")]
    peer_token_file: Option<PathBuf>,
    /// Requests in flight (closed loop), or the most in flight (open loop); 1 to 10,000.
    #[arg(long, default_value_t = 64, value_parser = count_in::<1, 10_000>)]
    concurrency: usize,
    /// Open loop: requests per second on a fixed schedule (1 to 10,000,000); default closed
    /// loop.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    rate: Option<u64>,
    /// How long to measure, e.g. 10s; at least 1s, at most 24h.
    #[arg(long, default_value = "10s", value_parser = measure_duration)]
    duration: Duration,
    /// Untimed warm-up before measuring; at most 1h.
    #[arg(long, default_value = "2s", value_parser = warmup_duration)]
    warmup: Duration,
    /// Weighted mix of verify-own, verify-peer, verify-not-recognized, verify-batch (64 codes
    /// per BatchVerifyHealthCodes call, counted per call), issue, empty; a name without `=w`
    /// weighs 1. Default with a peer (--self-contained, --peer-dir):
    /// verify-own=45,verify-peer=40,verify-not-recognized=5,issue=10; without:
    /// verify-own=85,verify-not-recognized=5,issue=10.
    #[arg(long)]
    mix: Option<String>,
    /// HTTP/2 connections the requests are spread over (no more than --concurrency are
    /// opened).
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    connections: usize,
    /// Another kind of bench (the options above apply to its load).
    #[command(subcommand)]
    kind: Option<BenchKind>,
}

/// Other kinds of `hcmr bench`.
#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// The Scale target: build a node with many agreements and revocations and an empty one in
    /// --dir, then measure start time, memory per revocation and verify throughput (loaded over
    /// empty, mix verify-own=50,verify-peer=50, with --duration, --warmup, --concurrency and
    /// --connections given before `scale`).
    Scale(ScaleArgs),
    /// Open a node's store and build its snapshot --runs times; print the figures as JSON
    /// (run by `bench scale` in a child process).
    #[command(hide = true)]
    ScaleOpen {
        /// The node's configuration file.
        #[arg(long)]
        config: PathBuf,
        /// How many opens.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

/// A count of at least 1 (clap value parser).
fn at_least_one(s: &str) -> Result<usize, String> {
    count_in::<1, { usize::MAX }>(s)
}

/// A count from `MIN` to `MAX` (clap value parser).
fn count_in<const MIN: usize, const MAX: usize>(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n < MIN => Err(format!("must be at least {MIN}")),
        Ok(n) if n > MAX => Err(format!("must be at most {MAX}")),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A measurement's duration, e.g. `10s` or `2min`: at least [`crate::bench::MIN_DURATION`],
/// at most [`crate::bench::MAX_DURATION`] (clap value parser).
fn measure_duration(s: &str) -> Result<Duration, String> {
    match args::duration(s) {
        Ok(d) if d < crate::bench::MIN_DURATION => Err("must be at least 1s".into()),
        Ok(d) if d > crate::bench::MAX_DURATION => Err("must be at most 24h".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// A warm-up's duration, at most [`crate::bench::MAX_WARMUP`] (clap value parser).
fn warmup_duration(s: &str) -> Result<Duration, String> {
    match args::duration(s) {
        Ok(d) if d > crate::bench::MAX_WARMUP => Err("must be at most 1h".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// Arguments of `hcmr bench scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Concluded agreements in the loaded node (spread over the 33 other provinces, a month
    /// apart); 1 to 10,000.
    #[arg(long, default_value_t = 1000, value_parser = count_in::<1, 10_000>)]
    agreements: usize,
    /// Revoked code ids in the loaded node's peer feeds.
    #[arg(long, default_value_t = 10_000_000)]
    revocations: usize,
    /// A new or empty folder for the two nodes (the loaded store takes about 25 bytes per
    /// revocation on disk).
    #[arg(long)]
    dir: PathBuf,
    /// Opens measured per node (the start time is their median).
    #[arg(long, default_value_t = 5, value_parser = at_least_one)]
    start_runs: usize,
    /// Load rounds, each the empty node then the loaded node.
    #[arg(long, default_value_t = 2, value_parser = at_least_one)]
    rounds: usize,
}

/// Roles on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Issue and revoke codes.
    Issuer,
    /// Verify codes, match documents, use the checkpoint page.
    Verifier,
    /// Manage agreements, keys, callers; sync; bundles; audit log.
    Admin,
}

impl From<RoleArg> for crate::callers::Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Issuer => crate::callers::Role::Issuer,
            RoleArg::Verifier => crate::callers::Role::Verifier,
            RoleArg::Admin => crate::callers::Role::Admin,
        }
    }
}

/// Caller subcommands. With `--config`, they work on a stopped node's database directly (for
/// recovery, e.g. a lost admin token); otherwise they call the running node as an admin.
#[derive(Debug, Subcommand)]
pub enum CallerCommand {
    /// Add a caller; prints its token once. An existing name is refused unless --replace.
    Add {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// A stopped node's config file, to change its database directly.
        #[arg(long, conflicts_with = "node")]
        config: Option<PathBuf>,
        /// Write the token to this new file (mode 0600) instead of printing it; `-` prints the
        /// token alone on standard output (for scripts). Checked before the node is changed: a
        /// file that exists (a symbolic link too), or a folder that does not, is refused.
        #[arg(long)]
        token_out: Option<PathBuf>,
        /// The caller's name (1 to 64 of A-Z a-z 0-9 . _ -).
        name: String,
        /// Its roles (repeat or separate by commas).
        #[arg(long = "role", value_enum, value_delimiter = ',', required = true)]
        roles: Vec<RoleArg>,
        /// Replace the caller of this name: a new token and these roles; its old token stops
        /// working at once. The last admin keeps the admin role.
        #[arg(long)]
        replace: bool,
    },
    /// List callers and their roles (never their tokens).
    List {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
    },
    /// Remove a caller; its token stops working at once.
    Remove {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The caller's name.
        name: String,
    },
    /// The log of refused calls (no credentials, wrong role, over the rate): time, how many in
    /// that second, outcome, who, address, RPC.
    Refused {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// From this time, RFC 3339 with its offset (2026-12-01T18:00:00+08:00 or
        /// 2026-12-01T10:00:00Z); default the beginning.
        #[arg(long, value_parser = point_in_time)]
        since: Option<std::time::SystemTime>,
        /// Continue after an earlier listing (the token it printed when more followed).
        #[arg(long, conflicts_with = "since")]
        page_token: Option<String>,
        /// Most records to show, 1 to 5000 (each counts the refusals of one kind in one second).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=5000))]
        limit: u32,
    },
}

/// Settings of `hcmr serve` over the config file's, each checked like the file's.
#[derive(Debug, Args, Default)]
pub struct ServeOverrides {
    /// gRPC listen address (`listen`).
    #[arg(long, env = "HCMR_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Checkpoint page address (`http_listen`).
    #[arg(long, env = "HCMR_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// URL peers use (`endpoint`).
    #[arg(long, env = "HCMR_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Seconds between peer syncs (`sync_interval_secs`).
    #[arg(long, env = "HCMR_SYNC_INTERVAL_SECS")]
    pub sync_interval_secs: Option<u64>,
    /// Longest wait for a peer, seconds (`peer_timeout_secs`).
    #[arg(long, env = "HCMR_PEER_TIMEOUT_SECS")]
    pub peer_timeout_secs: Option<u64>,
    /// Tolerated clock difference for iat, seconds (`policy.clock_skew_secs`).
    #[arg(long, env = "HCMR_CLOCK_SKEW_SECS")]
    pub clock_skew_secs: Option<u64>,
}

/// Which node to talk to, and as whom. The API token comes from `--token-file`, else the
/// environment variable `HCMR_TOKEN`, else the `admin.token` of `--dir`.
#[derive(Debug, Args, Default)]
pub struct NodeArg {
    /// The node's gRPC URL [default: from --dir, else https://127.0.0.1:7510].
    #[arg(long, env = "HCMR_NODE")]
    pub node: Option<String>,
    /// The node's certificate to pin for an https URL (its tls/node.crt) [default: from --dir].
    #[arg(long, env = "HCMR_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// File holding the caller's API token (from `hcmr caller add`); without it, the token in
    /// the environment variable HCMR_TOKEN, else the admin token of --dir.
    #[arg(long, env = "HCMR_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The node's folder on this machine (made by `hcmr init`): its URL, certificate and, when
    /// no token is given otherwise, its admin token.
    #[arg(long, env = "HCMR_DIR")]
    pub dir: Option<PathBuf>,
}

/// Document types on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DocType {
    /// Resident identity card (GB 11643, checked).
    IdCard,
    /// Passport.
    Passport,
    /// Mainland Travel Permit for Hong Kong and Macao residents.
    HkMacaoPermit,
    /// Mainland Travel Permit for Taiwan residents.
    TaiwanPermit,
    /// Foreigner's Permanent Residence ID Card.
    ForeignerResidence,
    /// Other.
    Other,
}

impl From<DocType> for DocumentType {
    fn from(d: DocType) -> Self {
        match d {
            DocType::IdCard => DocumentType::ResidentIdentityCard,
            DocType::Passport => DocumentType::Passport,
            DocType::HkMacaoPermit => DocumentType::HkMacaoTravelPermit,
            DocType::TaiwanPermit => DocumentType::TaiwanTravelPermit,
            DocType::ForeignerResidence => DocumentType::ForeignerPermanentResidence,
            DocType::Other => DocumentType::Other,
        }
    }
}

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

/// Arguments of `hcmr audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The node to ask.
    #[command(flatten)]
    node: NodeArg,
    /// From this time, RFC 3339 with its offset (2026-11-29T08:00:00+08:00 or
    /// 2026-11-29T00:00:00Z).
    #[arg(long, value_parser = point_in_time)]
    from: Option<std::time::SystemTime>,
    /// Until this time (exclusive), RFC 3339 with its offset.
    #[arg(long, value_parser = point_in_time)]
    until: Option<std::time::SystemTime>,
    /// Only codes of this issuing province (GB/T 2260).
    #[arg(long)]
    issuer: Option<String>,
    /// Only this verdict.
    #[arg(long, value_enum)]
    verdict: Option<VerdictArg>,
    /// Counts per issuing province and verdict for one UTC day (YYYY-MM-DD) instead of records.
    #[arg(long, value_name = "DAY", conflicts_with_all = ["from", "until"])]
    summary: Option<String>,
    /// Print CSV (time,checkpoint_id,via,issuer_province,verdict,reason,cti_hash).
    #[arg(long)]
    csv: bool,
    /// Most records to print, oldest first (fetched in pages of at most 10,000); when more
    /// match, the token to continue with is printed on standard error. Not with --summary,
    /// which counts every record of its day.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "summary")]
    limit: u32,
    /// Continue after an earlier listing: the token it printed when more followed (with the
    /// same --until, --issuer and --verdict).
    #[arg(long, conflicts_with_all = ["from", "summary"])]
    page_token: Option<String>,
}

/// Verdicts on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VerdictArg {
    /// Recognized.
    Recognized,
    /// Not recognized.
    NotRecognized,
}

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

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a new signing key; the old key signs a rotation statement that peers accept.
    Rotate(NodeArg),
    /// Withdraw a key at once (compromise): codes under it stop being recognized once peers sync.
    Withdraw {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Kid of the key (16 hex digits); not the current key (rotate first).
        kid: String,
    },
}

/// Revocation subcommands.
#[derive(Debug, Subcommand)]
pub enum RevokeCommand {
    /// Revoke one code by its cti (as `hcmr issue` printed it); when it is already revoked, by
    /// itself or with its subject, says so and adds nothing.
    Code {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The code id, 32 hex digits.
        cti: String,
    },
    /// Revoke every code of a subject issued before a time (default now): the status changed.
    /// When an earlier revocation of the subject reaches as late, says so and adds nothing.
    Subject {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// Document type.
        #[arg(long, value_enum, default_value = "id-card")]
        doc_type: DocType,
        /// Document number (only its keyed hash is kept).
        #[arg(long)]
        doc_number: String,
        /// Revoke codes issued before this time, RFC 3339 with its offset (Z, +08:00); default
        /// now.
        #[arg(long, value_parser = point_in_time)]
        before: Option<std::time::SystemTime>,
    },
}

/// Bundle subcommands.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Export the node's trust state as a signed file.
    Export {
        /// The node to ask.
        #[command(flatten)]
        node: NodeArg,
        /// The new file to write the bundle to (checked before the node is asked; a file that
        /// exists, or a symbolic link, is refused, never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

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

/// Arguments of `hcmr agreement propose`.
///
/// A new agreement needs --peer, --peer-kid, --peer-codes and --our-codes. An amendment
/// (--amends ID) starts from the terms of the version in force: only the terms given change, and
/// the changes are printed before the proposal is sent.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hcmr agreement propose --dir /tmp/guangdong --peer https://127.0.0.1:17510 \\\n    --peer-kid 0123456789abcdef --peer-codes green=green,yellow=red,red=red --our-codes green=green\n  hcmr agreement propose --dir /tmp/guangdong --amends <ID> --for 30d   # only the run length changes"
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
            local_time(old.effective_from),
            local_time(self.effective_from),
        );
        diff(
            "until",
            local_time(old.effective_until),
            local_time(self.effective_until),
        );
        diff(
            "max trust age",
            secs(old.max_trust_age_secs),
            secs(self.max_trust_age_secs),
        );
        out
    }
}

/// The exit codes and the one rule for file and id arguments, shown by `hcmr --help` and
/// written in the README.
pub const EXIT_CODES: &str = "\
Exit codes: 0 success (verify: RECOGNIZED); 3 verify NOT RECOGNIZED, match NO MATCH; 64 bad usage \
or argument; 69 node unreachable; 78 bad configuration (a setting, a certificate, a value from \
an environment variable); 1 any other failure (a refused call among them).

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
    /// `verify` answered NOT RECOGNIZED: exit 3 (already printed).
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

/// Checks a node URL: `https://host:port`, or `http://host:port` for a node without TLS.
///
/// # Errors
/// [`CliError::Usage`] naming the flag.
pub fn check_node_url(flag: &str, url: &str) -> Result<(), CliError> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(CliError::Usage(format!(
            "{flag} {url:?}: expected a URL such as https://127.0.0.1:7510"
        )));
    }
    Ok(())
}

/// Where to connect and with what: URL, pinned certificate, token.
fn resolve_node(n: &NodeArg) -> Result<(String, Option<PathBuf>, Option<String>), CliError> {
    resolve_node_as(n, "--dir", "--token-file")
}

/// [`resolve_node`], with errors that name the flags `dir_flag` and `token_flag` (for a second
/// node on the same command line, such as bench's --peer-dir and --peer-token-file).
fn resolve_node_as(
    n: &NodeArg,
    dir_flag: &str,
    token_flag: &str,
) -> Result<(String, Option<PathBuf>, Option<String>), CliError> {
    let dir_named = match env_source("dir") {
        Some(var) if dir_flag == "--dir" => format!("environment variable {var}"),
        _ => dir_flag.to_string(),
    };
    let config = match &n.dir {
        Some(d) => Some(
            crate::node::Config::load(&d.join(crate::node::CONFIG_FILE))
                .map_err(|e| CliError::Config(format!("{dir_named}: {e}")))?,
        ),
        None => None,
    };
    if let Some(c) = &config {
        // Unless --display-utc-offset said otherwise: the node's own display time zone.
        let _ = DISPLAY_OFFSET.set(c.display_utc_offset);
    }
    let url = match (&n.node, &config) {
        (Some(u), _) => u.clone(),
        // The address the folder's node really serves at, when it is running (serve --listen
        // may differ from hcmr.toml); else the file's.
        (None, Some(c)) => n
            .dir
            .as_deref()
            .and_then(serving::live_url)
            .or_else(|| c.endpoint.clone())
            .unwrap_or_else(|| local_url(c, c.listen)),
        (None, None) => DEFAULT_NODE.to_string(),
    };
    check_node_url("--node", &url).map_err(|e| match (&n.node, env_source("node")) {
        (Some(_), Some(var)) => CliError::Config(format!(
            "environment variable {var}={url:?}: expected a URL such as https://127.0.0.1:7510"
        )),
        _ => e,
    })?;
    let cert = n.tls_cert.clone().or_else(|| {
        config
            .as_ref()
            .and_then(|c| c.tls.as_ref())
            .map(|t| t.cert_file.clone())
    });
    let token = match (&n.token_file, std::env::var("HCMR_TOKEN")) {
        (Some(f), _) => Some(match env_source("token_file") {
            Some(var) if token_flag == "--token-file" => {
                read_token(f, &format!("environment variable {var}"))
                    .map_err(|e| CliError::Config(e.to_string()))?
            }
            _ => read_token(f, token_flag)?,
        }),
        (None, Ok(t)) if !t.trim().is_empty() => {
            let t = t.trim();
            // What a header can carry (visible ASCII): said here, naming the variable, rather
            // than by the client in its own words.
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(CliError::Config(
                    "environment variable HCMR_TOKEN: an API token is visible ASCII text \
                     (hcmr_...), as `hcmr caller add` printed it; this value has other characters"
                        .into(),
                ));
            }
            Some(t.to_string())
        }
        _ => match &n.dir {
            Some(d) if d.join(crate::node::ADMIN_TOKEN_FILE).exists() => Some(read_token(
                &d.join(crate::node::ADMIN_TOKEN_FILE),
                dir_flag,
            )?),
            _ => None,
        },
    };
    Ok((url, cert, token))
}

/// The URL a client on this machine reaches a node of config `c` at when it listens on `addr`
/// (an unspecified address is reached on loopback).
fn local_url(c: &crate::node::Config, mut addr: SocketAddr) -> String {
    let scheme = if c.tls.is_some() { "https" } else { "http" };
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("{scheme}://{addr}")
}

/// Largest token file read, in bytes: a token is under 100 characters.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

fn read_token(path: &std::path::Path, flag: &str) -> Result<String, CliError> {
    let usage =
        |e: &dyn std::fmt::Display| CliError::Usage(format!("{flag} {}: {e}", path.display()));
    let t = crate::fsutil::read_capped(path, MAX_TOKEN_FILE_BYTES).map_err(|e| usage(&e))?;
    let t = String::from_utf8(t).map_err(|_| usage(&"the file is not UTF-8 text"))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(CliError::Usage(format!(
            "{flag} {}: the file holds no token",
            path.display()
        )));
    }
    Ok(t.to_string())
}

async fn channel(n: &NodeArg) -> Result<crate::client::NodeChannel, CliError> {
    let (url, cert, token) = resolve_node(n)?;
    crate::client::connect(&url, cert.as_deref(), token.as_deref())
        .await
        .map_err(|e| match e {
            crate::client::ClientError::Unreachable { .. } => CliError::Unavailable(e.to_string()),
            crate::client::ClientError::Tls(_) => CliError::Config(format!(
                "the node's certificate to pin ({}): {e}",
                match (&n.tls_cert, env_source("tls_cert")) {
                    (Some(_), Some(var)) => format!("environment variable {var}"),
                    _ => "--tls-cert, or tls/node.crt of --dir".to_string(),
                }
            )),
            // A node answered, but not the one the certificate belongs to: the certificate or
            // the URL is wrong (bad configuration), not an outage.
            crate::client::ClientError::WrongCertificate { url, detail } => {
                CliError::Config(match (&n.tls_cert, &n.dir, &cert) {
                    (None, Some(d), Some(c)) => format!(
                        "the node at {url} is not this folder's node ({}): it presented another \
                         certificate than {} ({detail}); is the folder's node served at another \
                         address (hcmr serve --listen), or another node at this one?",
                        d.display(),
                        c.display()
                    ),
                    _ => format!(
                        "the certificate given with {} {} is not this node's: the node at {url} \
                         presented another ({detail}); pin the node's own tls/node.crt",
                        env_source("tls_cert").unwrap_or("--tls-cert"),
                        cert.as_deref()
                            .map_or("?".into(), |c| c.display().to_string())
                    ),
                })
            }
            other => CliError::Usage(other.to_string()),
        })
}

/// Parses `green=green,yellow=red` (or `none`) into status mappings.
///
/// # Errors
/// [`CliError::Usage`] naming the flag.
pub fn parse_status_map(flag: &str, s: &str) -> Result<Vec<proto::StatusMapping>, CliError> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|pair| {
            let (a, b) = pair.split_once('=').ok_or_else(|| {
                CliError::Usage(format!(
                    "{flag}: {pair:?} is not ISSUED=COUNTS_AS, e.g. yellow=red"
                ))
            })?;
            let a: HealthStatus = a
                .parse()
                .map_err(|e| CliError::Usage(format!("{flag}: {e}")))?;
            let b: HealthStatus = b
                .parse()
                .map_err(|e| CliError::Usage(format!("{flag}: {e}")))?;
            Ok(proto::StatusMapping {
                issued: convert::status_to_proto(Some(a)),
                counts_as: convert::status_to_proto(Some(b)),
            })
        })
        .collect()
}

/// A point in time given on the command line: RFC 3339 with its offset from UTC, `Z` or e.g.
/// `+08:00` for Beijing time (`2026-12-01T08:00:00+08:00` is `2026-12-01T00:00:00Z`); a space
/// may stand for the `T`. A time without an offset is refused rather than guessed: read as UTC,
/// a Beijing operator's `08:00` would be 16:00 their time (clap value parser).
fn point_in_time(s: &str) -> Result<std::time::SystemTime, String> {
    use time::format_description::well_known::Rfc3339;
    let t = s.trim();
    let with_t = match t.as_bytes().get(10) {
        Some(b' ') => format!("{}T{}", &t[..10], &t[11..]),
        _ => t.to_string(),
    };
    match time::OffsetDateTime::parse(&with_t, &Rfc3339) {
        Ok(when) => {
            let secs = u64::try_from(when.unix_timestamp())
                .map_err(|_| "before 1970-01-01T00:00:00Z".to_string())?;
            Ok(std::time::UNIX_EPOCH + Duration::from_secs(secs))
        }
        Err(e) if humantime::parse_rfc3339_weak(t).is_ok() => Err(format!(
            "{e}: give the offset from UTC, e.g. {t}Z for UTC or {t}+08:00 for Beijing time"
        )),
        Err(e) => Err(format!(
            "{e}: expected RFC 3339 such as 2026-12-01T08:00:00+08:00 or 2026-12-01T00:00:00Z"
        )),
    }
}

fn secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 (UTC, seconds) of a time in seconds since the Unix epoch.
pub fn rfc3339(t: u64) -> String {
    crate::rfc3339(t)
}

/// The offset this run shows times in: `--display-utc-offset` (or its variable), else the
/// `display_utc_offset` of the `--dir` folder's hcmr.toml (set when it is read), else +08:00.
static DISPLAY_OFFSET: std::sync::OnceLock<crate::display::DisplayOffset> =
    std::sync::OnceLock::new();

/// A message for the person at the terminal (an error the node sent, in its UTC words): its
/// times shown in this run's display offset ([`crate::display::localize_times`]).
pub fn for_people(text: &str) -> String {
    crate::display::localize_times(text, DISPLAY_OFFSET.get().copied().unwrap_or_default())
}

/// A time for the person at the terminal: [`crate::display::display_time`] in this run's offset.
fn local_time(t: u64) -> String {
    crate::display::display_time(t, DISPLAY_OFFSET.get().copied().unwrap_or_default())
}

fn status_name(v: i32) -> &'static str {
    convert::status_from_proto(v).map_or("-", HealthStatus::as_str)
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
            local_time(r.exp),
            local_time(r.status_valid_until)
        );
    }
    if r.issuer_state_synced {
        out!(
            "  issuer state:  synced {} ({} ago)",
            local_time(r.issuer_state_synced_at),
            humantime::format_duration(Duration::from_secs(r.issuer_state_age_secs))
        );
    } else if !r.agreement_id.is_empty() {
        out!("  issuer state:  never synced (pinned keys only, no revocations known)");
    }
    if !r.detail.is_empty() {
        out!("  detail:        {}", for_people(&r.detail));
    }
}

/// `hcmr agreement propose`: a new agreement from the flags, or an amendment from the terms of
/// the version in force with the flags given, its changes printed before it is sent.
async fn propose(a: ProposeArgs) -> Result<(), CliError> {
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
            let from = from.unwrap_or_else(crate::unix_now);
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
        })
        .await?
        .into_inner();
    if let Some(v) = &r.agreement {
        print_agreement(v);
    }
    Ok(())
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
            local_time(a.terminated_at)
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
            "    codes of {} at {}: {}  max age {}  {} .. {}",
            d.issuer_province,
            d.verifier_province,
            if map.is_empty() {
                "none".into()
            } else {
                map.join(",")
            },
            args::short_duration(d.max_code_age_secs),
            local_time(d.effective_from),
            local_time(d.effective_until)
        );
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// [`CliError`] with its exit code.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    use proto::federation_service_client::FederationServiceClient;
    use proto::health_code_service_client::HealthCodeServiceClient;
    use proto::operator_service_client::OperatorServiceClient;
    if let Some(o) = cli.display_utc_offset {
        let _ = DISPLAY_OFFSET.set(o);
    }
    match cli.command {
        Command::Init {
            province,
            data_dir,
            listen,
            endpoint,
            http_listen,
            plaintext,
            key_passphrase_env,
            key_passphrase_file,
        } => {
            let p: Province = province
                .parse()
                .map_err(|e| CliError::Usage(format!("--province: {e}")))?;
            // hcmr.toml resolves relative paths against its own folder: a file named relative
            // to where init runs is stored absolute.
            let key_passphrase_file = key_passphrase_file
                .map(|f| {
                    std::path::absolute(&f).map_err(|e| {
                        CliError::Usage(format!("--key-passphrase-file {}: {e}", f.display()))
                    })
                })
                .transpose()?;
            let opts = crate::node::InitOptions {
                listen,
                http_listen,
                endpoint,
                tls: !plaintext,
                key_passphrase_env,
                key_passphrase_file,
                display_utc_offset: DISPLAY_OFFSET.get().copied().unwrap_or_default(),
            };
            let path = crate::node::init_node(p, &data_dir, &opts)
                .await
                .map_err(|e| CliError::Config(e.to_string()))?;
            out!(
                "created node of {} {} ({}); start it with: hcmr serve --config {}",
                p,
                p.name_en(),
                p.name_zh(),
                path.display()
            );
            out!(
                "admin API token: {} (mode 0600); add callers with: hcmr caller add NAME --role issuer --dir {}",
                data_dir.join(crate::node::ADMIN_TOKEN_FILE).display(),
                data_dir.display()
            );
            if opts.tls {
                out!(
                    "node certificate (clients pin it): {}",
                    data_dir.join("tls/node.crt").display()
                );
            }
            Ok(())
        }
        Command::Caller(c) => caller(c).await,
        Command::Bench(b) => bench(b).await,
        Command::Backup { node, out } => backup::backup(&node, &out).await,
        Command::Restore { from, data_dir } => backup::restore(&from, &data_dir).await,
        Command::Completions { shell } => {
            let mut cmd = args::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "hcmr", &mut buf);
            std::io::Write::write_all(&mut std::io::stdout(), &buf)
                .map_err(|e| CliError::Failed(format!("writing the completions: {e}")))
        }
        Command::Man { out, force } => man_pages(&out, force),
        Command::Serve {
            config,
            dir,
            overrides,
            exit_with_parent,
            ..
        } => {
            if exit_with_parent.is_some_and(|pid| std::os::unix::process::parent_id() != pid) {
                return Err(CliError::Failed(
                    "the process that started this node has already exited: not starting".into(),
                ));
            }
            let config = match (config, dir) {
                (Some(c), _) => c,
                (None, Some(d)) => d.join(crate::node::CONFIG_FILE),
                (None, None) => return Err(CliError::Usage("give --config or --dir".into())),
            };
            let mut c =
                crate::node::Config::load(&config).map_err(|e| CliError::Config(e.to_string()))?;
            apply_serve_overrides(&mut c, overrides)?;
            let node = crate::node::Node::open(&c).map_err(|e| CliError::Config(e.to_string()))?;
            let listener = tokio::net::TcpListener::bind(c.listen)
                .await
                .map_err(|e| CliError::Config(format!("listen {}: {e}", c.listen)))?;
            let http = match c.http_listen {
                Some(a) => Some(
                    tokio::net::TcpListener::bind(a)
                        .await
                        .map_err(|e| CliError::Config(format!("http_listen {a}: {e}")))?,
                ),
                None => None,
            };
            let metrics = match c.metrics_listen {
                Some(a) => Some(
                    tokio::net::TcpListener::bind(a)
                        .await
                        .map_err(|e| CliError::Config(format!("metrics_listen {a}: {e}")))?,
                ),
                None => None,
            };
            // Where the node really serves, for client commands given its folder (--dir).
            let _serving = listener.local_addr().ok().and_then(|a| {
                let folder = config.parent().filter(|p| !p.as_os_str().is_empty());
                serving::write(
                    folder.unwrap_or(std::path::Path::new(".")),
                    &local_url(&c, a),
                )
            });
            // Installed now, before the node says it serves: a SIGTERM from then on drains the
            // node (a handler installed on the first poll of `stop` left a window in which the
            // default action killed it).
            let signal = shutdown_signal();
            let stop = async move {
                tokio::select! {
                    () = signal => {}
                    () = parent_exited(exit_with_parent) => {
                        tracing::warn!("the process that started this node exited: stopping");
                    }
                }
            };
            node.with_metrics_listener(metrics)
                .serve(listener, http, stop)
                .await
                .map_err(|e| CliError::Failed(e.to_string()))
        }
        Command::Info(n) => {
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
        Command::Issue(a) => {
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
                        .ok_or_else(|| CliError::Usage("--status-valid-for: too long".into()))?,
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
            note!(
                "cti {}  kid {}  expires {}",
                r.cti,
                r.kid,
                local_time(r.exp)
            );
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
                    local_time(r.exp),
                    match a.lifetime {
                        Some(_) => "--lifetime",
                        None => "a card's default: as long as the status, at most 7 days",
                    }
                );
            }
            Ok(())
        }
        Command::Verify(v) => {
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
        Command::Agreement(AgreementCommand::Propose(a)) => propose(a).await,
        Command::Agreement(AgreementCommand::List { node }) => {
            let all = all_agreements(&node).await?;
            if all.is_empty() {
                out!("no agreements");
            }
            all.iter().for_each(print_agreement);
            Ok(())
        }
        Command::Agreement(AgreementCommand::Accept { node, id }) => {
            let r = OperatorServiceClient::new(channel(&node).await?)
                .approve_agreement(proto::ApproveAgreementRequest { id })
                .await?
                .into_inner();
            if let Some(v) = &r.agreement {
                print_agreement(v);
            }
            Ok(())
        }
        Command::Agreement(AgreementCommand::Reject { node, id }) => {
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
        Command::Agreement(AgreementCommand::Withdraw { node, id }) => {
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
        Command::Agreement(AgreementCommand::Show { node, id }) => {
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
        Command::Agreement(AgreementCommand::Terminate { node, id, at }) => {
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
        Command::Key(KeyCommand::Rotate(n)) => {
            let r = OperatorServiceClient::new(channel(&n).await?)
                .rotate_key(proto::RotateKeyRequest {})
                .await?
                .into_inner();
            let new = r.new_key.unwrap_or_default();
            out!(
                "new key: kid {}  public {}",
                hex::encode(&new.kid),
                hex::encode(&new.public_key)
            );
            out!(
                "retired kid {} (its codes stay valid until they expire); feed entry {}",
                hex::encode(&r.retired_kid),
                r.seq
            );
            Ok(())
        }
        Command::Key(KeyCommand::Withdraw { node, kid }) => {
            let r = OperatorServiceClient::new(channel(&node).await?)
                .withdraw_key(proto::WithdrawKeyRequest { kid: kid.clone() })
                .await?
                .into_inner();
            out!(
                "withdrew key {kid}; feed entry {} (peers apply it at their next sync)",
                r.seq
            );
            Ok(())
        }
        Command::Revoke(RevokeCommand::Code { node, cti }) => {
            let r = HealthCodeServiceClient::new(channel(&node).await?)
                .revoke_health_code(proto::RevokeHealthCodeRequest { cti: cti.clone() })
                .await?
                .into_inner();
            if r.already_revoked {
                out!("code {cti} was already revoked; nothing added to the feed");
                return Ok(());
            }
            out!("revoked code {cti}; feed entry {}", r.seq);
            Ok(())
        }
        Command::Revoke(RevokeCommand::Subject {
            node,
            doc_type,
            doc_number,
            before,
        }) => {
            let doc: DocumentType = doc_type.into();
            let r = HealthCodeServiceClient::new(channel(&node).await?)
                .revoke_subject(proto::RevokeSubjectRequest {
                    document_type: i32::from(doc.to_u8()),
                    document_number: doc_number,
                    issued_before: before.map_or(0, secs),
                })
                .await?
                .into_inner();
            if r.already_revoked {
                out!(
                    "the subject's codes issued before that time were already revoked; nothing added to the feed"
                );
                return Ok(());
            }
            out!("revoked the subject's earlier codes; feed entry {}", r.seq);
            Ok(())
        }
        Command::Sync(n) => {
            let r = OperatorServiceClient::new(channel(&n).await?)
                .sync_now(proto::SyncNowRequest {})
                .await?
                .into_inner();
            if r.peers.is_empty() {
                out!("no peers to sync (no concluded agreements)");
            }
            let mut failed = 0;
            for p in &r.peers {
                if p.ok {
                    out!(
                        "{}  ok: {} new entries, at entry {}",
                        p.province,
                        p.entries,
                        p.last_seq
                    );
                } else {
                    failed += 1;
                    out!("{}  FAILED: {}", p.province, p.error);
                }
            }
            if failed > 0 {
                Err(CliError::Unavailable(format!(
                    "{failed} peer(s) could not be synced"
                )))
            } else {
                Ok(())
            }
        }
        Command::Bundle(BundleCommand::Export { node, out }) => {
            let file = output::OutputFile::reserve("--out", &out, output::Kind::New)?;
            let r = OperatorServiceClient::new(channel(&node).await?)
                .export_trust_bundle(proto::ExportTrustBundleRequest {})
                .await?
                .into_inner();
            file.write(&r.bundle)
                .map_err(|e| CliError::Failed(format!("--out {}: {e}", out.display())))?;
            out!(
                "wrote {} ({} bytes), exported {}; verify with: hcmr verify --offline {} --trust {} CODE",
                out.display(),
                r.bundle.len(),
                local_time(r.exported_at),
                out.display(),
                hex::encode(&r.kid)
            );
            Ok(())
        }
        Command::Match {
            node,
            doc_type,
            doc_number,
            code,
        } => {
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
        Command::Inspect { code } => {
            let code = code_or_stdin(code)?;
            let i = crate::inspect::inspect(code.trim())
                .map_err(|e| CliError::Failed(format!("inspect: {e}")))?;
            out!(
                "{}",
                serde_json::to_string_pretty(&i.to_json()).unwrap_or_default()
            );
            Ok(())
        }
        Command::Audit(a) => audit(a).await,
        Command::Demo { keep } => {
            let outcome = crate::demo::run_in(&mut std::io::stdout(), keep.as_deref())
                .await
                .map_err(|e| CliError::Failed(format!("demo: {e}")))?;
            if outcome.access_mismatches > 0 {
                return Err(CliError::Failed(format!(
                    "demo: {} of {} access checks differ from the scenario",
                    outcome.access_mismatches, outcome.access_checks
                )));
            }
            if outcome.mismatches == 0 {
                Ok(())
            } else {
                Err(CliError::Failed(format!(
                    "demo: {} of {} verdicts differ from the scenario",
                    outcome.mismatches, outcome.checks
                )))
            }
        }
    }
}

/// `hcmr bench`: a load run (self-contained or against a node), or `bench scale`. SIGINT and
/// SIGTERM stop it and the nodes it started.
async fn bench(b: BenchArgs) -> Result<(), CliError> {
    let started_nodes = b.self_contained || matches!(b.kind, Some(BenchKind::Scale(_)));
    tokio::select! {
        r = bench_run(b) => r,
        () = shutdown_signal() => Err(CliError::Interrupted(if started_nodes {
            "interrupted; the nodes the bench started were stopped".into()
        } else {
            "interrupted".into()
        })),
    }
}

/// Applies `serve`'s settings from flags and environment variables over the file's `c`. A value
/// that the configuration refuses is named by where it came from: a flag is bad usage (64), an
/// environment variable bad configuration (78), as for values their parser refuses.
fn apply_serve_overrides(c: &mut crate::node::Config, o: ServeOverrides) -> Result<(), CliError> {
    use crate::node::config::Overrides;
    let all = Overrides {
        listen: o.listen,
        http_listen: o.http_listen,
        endpoint: o.endpoint.clone(),
        sync_interval_secs: o.sync_interval_secs,
        peer_timeout_secs: o.peer_timeout_secs,
        clock_skew_secs: o.clock_skew_secs,
    };
    let Err(e) = c.apply_overrides(&all) else {
        return Ok(());
    };
    // One at a time over the file's settings: the first that the configuration refuses.
    let none = Overrides::default();
    let singles = [
        (
            "listen",
            o.listen.map(|v| v.to_string()),
            Overrides {
                listen: o.listen,
                ..none.clone()
            },
        ),
        (
            "http_listen",
            o.http_listen.map(|v| v.to_string()),
            Overrides {
                http_listen: o.http_listen,
                ..none.clone()
            },
        ),
        (
            "endpoint",
            o.endpoint.clone(),
            Overrides {
                endpoint: o.endpoint,
                ..none.clone()
            },
        ),
        (
            "sync_interval_secs",
            o.sync_interval_secs.map(|v| v.to_string()),
            Overrides {
                sync_interval_secs: o.sync_interval_secs,
                ..none.clone()
            },
        ),
        (
            "peer_timeout_secs",
            o.peer_timeout_secs.map(|v| v.to_string()),
            Overrides {
                peer_timeout_secs: o.peer_timeout_secs,
                ..none.clone()
            },
        ),
        (
            "clock_skew_secs",
            o.clock_skew_secs.map(|v| v.to_string()),
            Overrides {
                clock_skew_secs: o.clock_skew_secs,
                ..none.clone()
            },
        ),
    ];
    for (id, value, single) in singles {
        let Some(value) = value else { continue };
        let Err(why) = c.clone().apply_overrides(&single) else {
            continue;
        };
        let why = why.to_string();
        // The configuration's message names the setting after "settings from ...: ".
        let why = why.split_once(": ").map_or(why.as_str(), |(_, w)| w);
        return Err(match env_source(id) {
            Some(var) => CliError::Config(format!("environment variable {var}={value:?}: {why}")),
            None => CliError::Usage(format!("--{} {value}: {why}", id.replace('_', "-"))),
        });
    }
    Err(CliError::Config(e.to_string()))
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

/// The flags of `hcmr bench` for a node to load (none of which --self-contained or `bench
/// scale` takes) that are on the command line: their names. The same settings from the
/// environment (HCMR_DIR, ...) do not count: they are there for other commands.
fn node_flags() -> Vec<&'static str> {
    let typed: Vec<String> = std::env::args().collect();
    [
        "--node",
        "--tls-cert",
        "--token-file",
        "--dir",
        "--server-pid",
        "--peer-dir",
        "--peer-token-file",
    ]
    .into_iter()
    .filter(|flag| {
        typed
            .iter()
            .take_while(|a| *a != "scale")
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    })
    .collect()
}

async fn bench_run(b: BenchArgs) -> Result<(), CliError> {
    use crate::bench::BenchError;
    let with_peer = b.self_contained || b.peer_dir.is_some();
    let mix = b.mix.clone().unwrap_or_else(|| {
        if with_peer {
            "verify-own=45,verify-peer=40,verify-not-recognized=5,issue=10"
        } else {
            "verify-own=85,verify-not-recognized=5,issue=10"
        }
        .to_string()
    });
    let mix = crate::bench::parse_mix(&mix).map_err(|e| CliError::Usage(e.to_string()))?;
    let opts = crate::bench::Options {
        concurrency: b.concurrency,
        rate: b.rate,
        duration: b.duration,
        warmup: b.warmup,
        mix,
        connections: b.connections,
    };
    opts.check().map_err(|e| CliError::Usage(e.to_string()))?;
    let fail = |e: BenchError| match e {
        BenchError::Usage(m) => CliError::Usage(m),
        BenchError::Setup(m) => CliError::Failed(format!("bench setup: {m}")),
        BenchError::Unreachable(m) => CliError::Unavailable(m),
        BenchError::Config(m) => CliError::Config(m),
    };
    let node_given = node_flags();
    match b.kind {
        Some(BenchKind::ScaleOpen { config, runs }) => {
            let f = crate::bench::scale::measure_open(&config, runs).map_err(fail)?;
            let json = serde_json::to_string(&f).map_err(|e| CliError::Failed(e.to_string()))?;
            out!("scale-open: {json}");
            return Ok(());
        }
        Some(BenchKind::Scale(s)) => {
            let mut fixed = node_given.clone();
            fixed.extend(
                [
                    ("--self-contained", b.self_contained),
                    ("--mix", b.mix.is_some()),
                    ("--rate", b.rate.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, given)| given.then_some(name)),
            );
            if let Some(flag) = fixed.first() {
                return Err(CliError::Usage(format!(
                    "bench scale makes its own two nodes and loads them closed-loop with \
                     verify-own=50,verify-peer=50: {flag} does not apply"
                )));
            }
            let exe = std::env::current_exe().map_err(|e| CliError::Failed(e.to_string()))?;
            let o = crate::bench::scale::ScaleOptions {
                agreements: s.agreements,
                revocations: s.revocations,
                dir: s.dir,
                start_runs: s.start_runs,
                rounds: s.rounds,
                // Verification only: the target is verify throughput.
                load: crate::bench::Options {
                    mix: crate::bench::parse_mix("verify-own=50,verify-peer=50")
                        .map_err(|e| CliError::Failed(e.to_string()))?,
                    ..opts
                },
            };
            let report = crate::bench::scale::run(&exe, &o).await.map_err(fail)?;
            out!("{report}");
            return Ok(());
        }
        None => {}
    }
    let report = if b.self_contained {
        if let Some(flag) = node_given.first() {
            return Err(CliError::Usage(format!(
                "--self-contained starts and loads nodes of its own: {flag} does not apply"
            )));
        }
        let exe = std::env::current_exe().map_err(|e| CliError::Failed(e.to_string()))?;
        let nodes = crate::bench::self_contained(&exe).await.map_err(fail)?;
        out!(
            "self-contained: two nodes on loopback; loading Guangdong at {}",
            nodes.target.url
        );
        crate::bench::run(&nodes.target, &opts)
            .await
            .map_err(fail)?
    } else {
        let (url, cert, token) = resolve_node(&b.node)?;
        // The health check (`empty`) needs no token; every other op does.
        let only_empty = opts
            .mix
            .iter()
            .all(|(op, weight)| *op == crate::bench::Op::Empty || *weight == 0);
        if token.is_none() && !only_empty {
            return Err(CliError::Usage(
                "bench needs a caller's token (--token-file, HCMR_TOKEN) for every op but empty"
                    .into(),
            ));
        }
        let peer_codes = match (&b.peer_dir, &b.peer_token_file) {
            (Some(dir), Some(token_file))
                if opts
                    .mix
                    .iter()
                    .any(|(op, _)| *op == crate::bench::Op::VerifyPeer) =>
            {
                let (peer_url, peer_cert, peer_token) = resolve_node_as(
                    &NodeArg {
                        dir: Some(dir.clone()),
                        token_file: Some(token_file.clone()),
                        ..NodeArg::default()
                    },
                    "--peer-dir",
                    "--peer-token-file",
                )?;
                if peer_url == url {
                    return Err(CliError::Usage(format!(
                        "--peer-dir names the node under load ({url}): verify-peer needs codes of \
                         another province's node"
                    )));
                }
                let peer_token = peer_token.unwrap_or_default();
                crate::bench::peer_codes(&peer_url, peer_cert.as_deref(), &peer_token)
                    .await
                    .map_err(fail)?
            }
            _ => Vec::new(),
        };
        let target = crate::bench::Target {
            url,
            cert,
            token,
            pid: b.server_pid,
            peer_codes,
        };
        crate::bench::run(&target, &opts).await.map_err(fail)?
    };
    out!("{report}");
    if report.error_share() > MAX_BENCH_ERROR_SHARE {
        return Err(CliError::Failed(format!(
            "{} of {} requests failed (see the errors above): the figures do not describe the \
             node's normal work",
            report.errors(),
            report.ok() + report.errors()
        )));
    }
    Ok(())
}

/// Above this share of failed requests `hcmr bench` exits with an error after its report.
const MAX_BENCH_ERROR_SHARE: f64 = 0.05;

/// `hcmr man`: the pages are made in a staging folder inside `out`, then moved in; an existing
/// page is refused before any is moved, unless `force` (a rename replaces a symbolic link
/// itself, never the file it points to).
fn man_pages(out: &std::path::Path, force: bool) -> Result<(), CliError> {
    let failed = |e: std::io::Error| CliError::Failed(format!("--out {}: {e}", out.display()));
    if out.exists() && !out.is_dir() {
        return Err(CliError::Usage(format!(
            "--out {}: is not a folder",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotADirectory => CliError::Usage(format!(
            "--out {}: a part of this path is a file, not a folder",
            out.display()
        )),
        _ => failed(e),
    })?;
    let staging = tempfile::Builder::new()
        .prefix(".hcmr-man-")
        .tempdir_in(out)
        .map_err(failed)?;
    clap_mangen::generate_to(args::command(), staging.path()).map_err(failed)?;
    let mut pages = std::fs::read_dir(staging.path())
        .and_then(|d| {
            d.map(|e| e.map(|e| e.file_name()))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(failed)?;
    pages.sort();
    let existing: Vec<String> = pages
        .iter()
        .filter(|p| std::fs::symlink_metadata(out.join(p)).is_ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if !existing.is_empty() && !force {
        return Err(CliError::Usage(format!(
            "--out {}: {} page(s) exist ({}); nothing was written; add --force to replace them",
            out.display(),
            existing.len(),
            existing.join(", ")
        )));
    }
    for p in &pages {
        std::fs::rename(staging.path().join(p), out.join(p)).map_err(failed)?;
    }
    out!(
        "wrote {} manual pages to {}{}",
        pages.len(),
        out.display(),
        if existing.is_empty() {
            String::new()
        } else {
            format!(" (replaced {})", existing.len())
        }
    );
    Ok(())
}

async fn caller(c: CallerCommand) -> Result<(), CliError> {
    use proto::operator_service_client::OperatorServiceClient;
    match c {
        CallerCommand::Add {
            node,
            config,
            token_out,
            name,
            roles,
            replace,
        } => {
            let roles: Vec<crate::callers::Role> = roles.into_iter().map(Into::into).collect();
            let exists = || {
                CliError::Usage(format!(
                    "caller {name} exists; nothing was changed. To replace it (a new token; its \
                     old one stops working at once) add --replace, or choose a new name"
                ))
            };
            // The token file is made before the node is changed: a path that cannot be written
            // is refused while the caller's old token still works.
            // `--token-out -` is standard output: the token alone, for scripts.
            let to_stdout = token_out.as_deref() == Some(std::path::Path::new("-"));
            let token_out = token_out.filter(|_| !to_stdout);
            let out_file = token_out
                .as_deref()
                .map(|f| output::OutputFile::reserve("--token-out", f, output::Kind::NewSecret))
                .transpose()
                .map_err(|e| CliError::Usage(format!("{e}; the caller was not changed")))?;
            let token = match config {
                Some(path) => {
                    let c = crate::node::Config::load(&path)
                        .map_err(|e| CliError::Config(e.to_string()))?;
                    crate::node::add_or_replace_caller_offline(&c, &name, &roles, replace)
                        .await
                        .map_err(|e| match e {
                            crate::node::ConfigError::Caller(
                                crate::callers::AddRefusal::Exists(_),
                            ) => exists(),
                            crate::node::ConfigError::Caller(r) => CliError::Failed(r.to_string()),
                            e => CliError::Config(e.to_string()),
                        })?
                }
                None => {
                    let r = OperatorServiceClient::new(channel(&node).await?)
                        .add_caller(proto::AddCallerRequest {
                            name: name.clone(),
                            roles: roles
                                .iter()
                                .map(|r| match r {
                                    crate::callers::Role::Issuer => {
                                        proto::CallerRole::Issuer as i32
                                    }
                                    crate::callers::Role::Verifier => {
                                        proto::CallerRole::Verifier as i32
                                    }
                                    crate::callers::Role::Admin => proto::CallerRole::Admin as i32,
                                })
                                .collect(),
                            replace,
                        })
                        .await
                        .map_err(|s| match s.code() {
                            tonic::Code::AlreadyExists => exists(),
                            _ => CliError::from(s),
                        })?
                        .into_inner();
                    zeroize::Zeroizing::new(r.token)
                }
            };
            let roles = crate::callers::Roles::of(&roles);
            match (out_file, token_out) {
                (Some(file), Some(f)) => {
                    let line = zeroize::Zeroizing::new(format!("{}\n", token.as_str()));
                    if let Err(e) = file.write(line.as_bytes()) {
                        // The node holds the new token and the old one is gone: the token must
                        // not be lost with the file.
                        out!(
                            "caller {name} ({roles}) is set on the node, but --token-out {} could not be written ({e}); its token, shown only now:",
                            f.display()
                        );
                        out!("{}", token.as_str());
                        return Err(CliError::Failed(format!(
                            "--token-out {}: {e}; the token is printed above instead",
                            f.display()
                        )));
                    }
                    out!("caller {name} ({roles}): token written to {}", f.display());
                }
                _ if to_stdout => {
                    note!("caller {name} ({roles}); its token, shown only now, on standard output");
                    out!("{}", token.as_str());
                }
                _ => {
                    out!("caller {name} ({roles}); its token, shown only now:");
                    out!("{}", token.as_str());
                }
            }
            Ok(())
        }
        CallerCommand::List { node } => {
            let r = OperatorServiceClient::new(channel(&node).await?)
                .list_callers(proto::ListCallersRequest {})
                .await?
                .into_inner();
            for c in r.callers {
                let roles: Vec<&str> = c
                    .roles
                    .iter()
                    .map(|r| match proto::CallerRole::try_from(*r) {
                        Ok(proto::CallerRole::Issuer) => "issuer",
                        Ok(proto::CallerRole::Verifier) => "verifier",
                        Ok(proto::CallerRole::Admin) => "admin",
                        _ => "?",
                    })
                    .collect();
                out!(
                    "{:<24} {:<24} added {}",
                    c.name,
                    roles.join(","),
                    local_time(c.created)
                );
            }
            Ok(())
        }
        CallerCommand::Remove { node, name } => {
            OperatorServiceClient::new(channel(&node).await?)
                .remove_caller(proto::RemoveCallerRequest { name: name.clone() })
                .await?;
            out!("caller {name} removed: its token no longer works");
            Ok(())
        }
        CallerCommand::Refused {
            node,
            since,
            page_token,
            limit,
        } => {
            let continued = page_token.is_some();
            let r = OperatorServiceClient::new(channel(&node).await?)
                .list_access_denials(proto::ListAccessDenialsRequest {
                    from: since.map(secs).unwrap_or(0),
                    limit,
                    page_token: page_token.unwrap_or_default(),
                })
                .await?
                .into_inner();
            if r.denials.is_empty() {
                match since {
                    _ if continued => out!("no more refused calls"),
                    Some(t) => out!("no refused calls since {}", local_time(secs(t))),
                    None => out!("no refused calls"),
                }
            }
            for d in &r.denials {
                out!(
                    "{}  {:>7}  {:<18} {:<20} {:<16} {}",
                    local_time(d.time),
                    d.count,
                    d.outcome,
                    d.who,
                    d.remote,
                    d.rpc
                );
            }
            if !r.next_page_token.is_empty() {
                note!(
                    "{} record{} shown, oldest first; more follow: --page-token {} for the next",
                    r.denials.len(),
                    if r.denials.len() == 1 { "" } else { "s" },
                    r.next_page_token
                );
            }
            Ok(())
        }
    }
}

/// `hcmr audit`: records as a table or CSV, or one day's counts.
async fn audit(a: AuditArgs) -> Result<(), CliError> {
    use proto::operator_service_client::OperatorServiceClient;
    let (from, until) = match &a.summary {
        Some(day) => {
            // One instruction: the day's own form, not the RFC 3339 advice of --from.
            let usage = |why: &str| {
                CliError::Usage(format!(
                    "--summary {day:?}: {why}give a UTC day YYYY-MM-DD from 1970 on, e.g. 2026-12-01"
                ))
            };
            let format = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]")
                .map_err(|e| CliError::Failed(format!("the day format: {e}")))?;
            let date = time::Date::parse(day.trim(), &format).map_err(|e| match e {
                time::error::Parse::TryFromParsed(_) => usage("no such day; "),
                _ => usage(""),
            })?;
            let s = u64::try_from(date.midnight().assume_utc().unix_timestamp())
                .map_err(|_| usage("before 1970; "))?;
            (s, s + 86_400)
        }
        None => (a.from.map_or(0, secs), a.until.map_or(0, secs)),
    };
    if until != 0 && from >= until {
        return Err(CliError::Usage(format!(
            "--from {} is not before --until {}: no record can match",
            local_time(from),
            local_time(until)
        )));
    }
    let verdict = |v: i32| {
        if v == proto::Verdict::Recognized as i32 {
            "RECOGNIZED"
        } else {
            "NOT_RECOGNIZED"
        }
    };
    let reason = |r: i32| {
        proto::Reason::try_from(r)
            .map(|x| x.as_str_name().trim_start_matches("REASON_"))
            .unwrap_or("?")
    };
    let mut client = OperatorServiceClient::new(channel(&a.node).await?);
    // Every record of the summary's day; else at most --limit. A page at a time, printed as it
    // comes, so no more than a page is held.
    let want = if a.summary.is_some() {
        u64::MAX
    } else {
        u64::from(a.limit)
    };
    let mut token = a.page_token.clone().unwrap_or_default();
    let mut shown: u64 = 0;
    let mut counts: std::collections::BTreeMap<(String, &str), u64> = Default::default();
    if a.csv && a.summary.is_none() {
        out!("time,checkpoint_id,via,issuer_province,verdict,reason,cti_hash");
    }
    loop {
        let page_size = u32::try_from(want - shown).unwrap_or(u32::MAX);
        let r = client
            .list_audit_records(proto::ListAuditRecordsRequest {
                from,
                until,
                issuer_province: a.issuer.clone().unwrap_or_default(),
                verdict: match a.verdict {
                    None => 0,
                    Some(VerdictArg::Recognized) => proto::Verdict::Recognized as i32,
                    Some(VerdictArg::NotRecognized) => proto::Verdict::NotRecognized as i32,
                },
                limit: page_size,
                page_token: std::mem::take(&mut token),
            })
            .await?
            .into_inner();
        shown += r.records.len() as u64;
        for rec in &r.records {
            if a.summary.is_some() {
                *counts
                    .entry((rec.issuer_province.clone(), verdict(rec.verdict)))
                    .or_default() += 1;
            } else if a.csv {
                out!(
                    "{},{},{},{},{},{},{}",
                    local_time(rec.time),
                    csv_field(&rec.checkpoint_id),
                    rec.via,
                    rec.issuer_province,
                    verdict(rec.verdict),
                    reason(rec.reason),
                    rec.cti_hash
                );
            } else {
                out!(
                    "{}  {:<20} {:<4} {:<7} {:<15} {:<26} {}",
                    local_time(rec.time),
                    rec.checkpoint_id,
                    rec.via,
                    rec.issuer_province,
                    verdict(rec.verdict),
                    reason(rec.reason),
                    rec.cti_hash
                );
            }
        }
        // Ends: each page moves past the records it returned, and the log is finite.
        if r.next_page_token.is_empty() {
            break;
        }
        if r.records.is_empty() {
            return Err(CliError::Failed(
                "the node returned an empty page with a next_page_token".into(),
            ));
        }
        if shown >= want {
            note!(
                "{shown} record{} shown, oldest first; more follow: --page-token {} for the next \
                 (with the same --until, --issuer and --verdict)",
                if shown == 1 { "" } else { "s" },
                r.next_page_token
            );
            break;
        }
        token = r.next_page_token;
    }
    // An empty listing says so (as `agreement list` does), rather than printing nothing.
    if shown == 0 && a.summary.is_none() {
        let filtered = a.from.is_some()
            || a.until.is_some()
            || a.issuer.is_some()
            || a.verdict.is_some()
            || a.page_token.is_some();
        let what = if filtered {
            "no audit records match"
        } else {
            "no audit records (no verifications yet)"
        };
        if a.csv {
            eprintln!("{what}");
        } else {
            out!("{what}");
        }
    }
    if let Some(day) = &a.summary {
        if a.csv {
            out!("issuer_province,verdict,count");
        } else {
            out!("{day} (UTC): {shown} verifications");
        }
        for ((issuer, v), n) in counts {
            let name = issuer
                .parse::<Province>()
                .map(|p| p.name_en())
                .unwrap_or("(undecodable)");
            if a.csv {
                out!("{issuer},{v},{n}");
            } else {
                out!("  {issuer:<7} {name:<14} {v:<15} {n}");
            }
        }
    }
    Ok(())
}

/// A CSV field: quoted when it holds a comma, quote or line break (RFC 4180); a field that
/// a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return; OWASP "CSV injection") gets a leading `'`, so it opens as text. Checkpoint ids are
/// chosen by callers, and a crafted page link can set one.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod csv_tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("gate-3"), "gate-3");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("gate-=1"), "gate-=1");
    }
}

fn is_pdf(p: &std::path::Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
}

/// The code argument, or standard input (at most 64 KiB) when it is `-`.
///
/// # Errors
/// [`CliError::Usage`] when stdin cannot be read, or when the code is empty (only white space):
/// that is a mistake on the command line, not a code to check (and no audit record).
fn code_or_stdin(code: String) -> Result<String, CliError> {
    if code != "-" {
        if code.trim().is_empty() {
            return Err(CliError::Usage(
                "CODE is empty: give the code string, or - to read it from standard input".into(),
            ));
        }
        return Ok(code);
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), 65_536), &mut s)
        .map_err(|e| CliError::Usage(format!("reading the code from stdin: {e}")))?;
    if s.trim().is_empty() {
        return Err(CliError::Usage(
            "standard input held no code (CODE is -): nothing was checked".into(),
        ));
    }
    Ok(s)
}

/// Verifies a code with a trust bundle alone.
fn verify_offline(
    path: &std::path::Path,
    trust: Option<&str>,
    max_age: Duration,
    code: &str,
) -> Result<proto::VerifyHealthCodeResponse, CliError> {
    let trust = trust.ok_or_else(|| {
        CliError::Usage(
            "--trust: required with --offline (the kid `hcmr bundle export` printed)".into(),
        )
    })?;
    let anchor = crate::bundle::TrustAnchor::parse(trust)
        .map_err(|e| CliError::Usage(format!("--trust: {e}")))?;
    let bytes = crate::fsutil::read_capped(path, crate::bundle::MAX_BUNDLE_BYTES)
        .map_err(|e| CliError::Usage(format!("--offline {}: {e}", path.display())))?;
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
        humantime::format_duration(Duration::from_secs(now.saturating_sub(content.exported_at)))
    );
    let verdict = crate::verify::verify(code, &snapshot, now);
    Ok(convert::verdict_to_proto(&verdict, now))
}

/// Resolves when the process `parent` is no longer this process's parent (it exited and this
/// one was re-parented), checked at once and then twice a second; never when `parent` is `None`.
/// Given the pid (not read at start), a parent that died before this process looked is seen too.
async fn parent_exited(parent: Option<u32>) {
    let Some(parent) = parent else {
        return std::future::pending().await;
    };
    while std::os::unix::process::parent_id() == parent {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called (not
/// when first polled), so a signal that arrives as the node starts serving is not lost.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let (int, term) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        let (ctrl_c, term) = (
            async move {
                match int {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            },
            async move {
                match term {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            },
        );
        #[cfg(not(unix))]
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
        tracing::info!("shutdown signal received: draining in-flight calls");
    }
}

#[cfg(test)]
mod tests {
    use super::point_in_time;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> Result<std::time::SystemTime, String> {
        Ok(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn a_point_in_time_takes_its_offset_and_refuses_none() {
        // 2026-12-01T00:00:00Z is 1,796,083,200 s after the epoch.
        assert_eq!(point_in_time("2026-12-01T00:00:00Z"), at(1_796_083_200));
        assert_eq!(
            point_in_time("2026-12-01T08:00:00+08:00"),
            at(1_796_083_200)
        );
        assert_eq!(
            point_in_time("2026-12-01 08:00:00+08:00"),
            at(1_796_083_200)
        );
        assert_eq!(
            point_in_time("2026-11-30T19:00:00-05:00"),
            at(1_796_083_200)
        );
        assert_eq!(point_in_time("2026-12-01T00:00:00.9Z"), at(1_796_083_200));
        let none = point_in_time("2026-12-01T08:00:00").unwrap_err();
        assert!(
            none.contains("2026-12-01T08:00:00+08:00 for Beijing time"),
            "{none}"
        );
        let junk = point_in_time("yesterday").unwrap_err();
        assert!(junk.contains("expected RFC 3339"), "{junk}");
        let early = point_in_time("1969-12-31T23:59:59Z").unwrap_err();
        assert!(early.contains("before 1970"), "{early}");
    }
}

//! `hcmr caller`: callers of the node's API and their roles.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use crate::cli::display::api_time;
use crate::cli::node::{channel, NodeArg};
use crate::cli::values::{point_in_time, secs};
use crate::cli::{output, CliError};
use crate::proto;
use crate::proto::operator_service_client::OperatorServiceClient;

/// Roles on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Issue and revoke codes.
    Issuer,
    /// Verify codes, match documents, use the checkpoint page.
    Verifier,
    /// Manage agreements, keys, callers; sync; bundles; audit log.
    Admin,
    /// Create trips, board people, seal and list manifests (docs/transport.md).
    Organizer,
    /// Check arriving trips in, confirm people, sign handover receipts or refusals.
    Receiver,
    /// Trace trips and cases, read exposure notices (docs/tracing.md).
    Tracer,
}

impl From<RoleArg> for crate::callers::Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Issuer => crate::callers::Role::Issuer,
            RoleArg::Verifier => crate::callers::Role::Verifier,
            RoleArg::Admin => crate::callers::Role::Admin,
            RoleArg::Organizer => crate::callers::Role::Organizer,
            RoleArg::Receiver => crate::callers::Role::Receiver,
            RoleArg::Tracer => crate::callers::Role::Tracer,
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

/// Runs `hcmr caller ...`.
pub(crate) async fn exec(c: CallerCommand) -> Result<(), CliError> {
    match c {
        CallerCommand::Add {
            node,
            config,
            token_out,
            name,
            roles,
            replace,
        } => add(node, config, token_out, name, roles, replace).await,
        CallerCommand::List { node } => list(node).await,
        CallerCommand::Remove { node, name } => remove(node, name).await,
        CallerCommand::Refused {
            node,
            since,
            page_token,
            limit,
        } => refused(node, since, page_token, limit).await,
    }
}

/// `hcmr caller add`: at the running node, or with --config in a stopped node's database.
async fn add(
    node: NodeArg,
    config: Option<PathBuf>,
    token_out: Option<PathBuf>,
    name: String,
    roles: Vec<RoleArg>,
    replace: bool,
) -> Result<(), CliError> {
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
            let c =
                crate::node::Config::load(&path).map_err(|e| CliError::Config(e.to_string()))?;
            crate::node::add_or_replace_caller_offline(&c, &name, &roles, replace)
                .await
                .map_err(|e| match e {
                    crate::node::ConfigError::Caller(crate::callers::AddRefusal::Exists(_)) => {
                        exists()
                    }
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
                        .map(|r| crate::node::role_to_proto(*r))
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

/// `hcmr caller list`.
async fn list(node: NodeArg) -> Result<(), CliError> {
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
                Ok(proto::CallerRole::Organizer) => "organizer",
                Ok(proto::CallerRole::Receiver) => "receiver",
                Ok(proto::CallerRole::Tracer) => "tracer",
                _ => "?",
            })
            .collect();
        out!(
            "{:<24} {:<24} added {}",
            c.name,
            roles.join(","),
            api_time(c.created)
        );
    }
    Ok(())
}

/// `hcmr caller remove`.
async fn remove(node: NodeArg, name: String) -> Result<(), CliError> {
    OperatorServiceClient::new(channel(&node).await?)
        .remove_caller(proto::RemoveCallerRequest { name: name.clone() })
        .await?;
    out!("caller {name} removed: its token no longer works");
    Ok(())
}

/// `hcmr caller refused`.
async fn refused(
    node: NodeArg,
    since: Option<std::time::SystemTime>,
    page_token: Option<String>,
    limit: u32,
) -> Result<(), CliError> {
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
            Some(t) => out!("no refused calls since {}", api_time(secs(t))),
            None => out!("no refused calls"),
        }
    }
    for d in &r.denials {
        out!(
            "{}  {:>7}  {:<18} {:<20} {:<16} {}",
            api_time(d.time),
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

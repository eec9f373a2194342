//! Which node a client command talks to, and as whom: `--node`, `--tls-cert`, `--token-file`,
//! `--dir` and their environment variables, resolved into a URL, a pinned certificate and a
//! token, and the channel to it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::args::env_source;
use super::display::DISPLAY_OFFSET;
use super::serving;
use super::token;
use super::CliError;

/// Default node URL when neither `--node`, `HCMR_NODE` nor `--dir` is given.
pub const DEFAULT_NODE: &str = "https://127.0.0.1:7510";

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
pub(super) fn resolve_node(
    n: &NodeArg,
) -> Result<(String, Option<PathBuf>, Option<String>), CliError> {
    resolve_node_as(n, "--dir", "--token-file")
}

/// [`resolve_node`], with errors that name the flags `dir_flag` and `token_flag` (for a second
/// node on the same command line, such as bench's --peer-dir and --peer-token-file).
pub(super) fn resolve_node_as(
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
    let token = token::resolve(n, dir_flag, token_flag)?;
    Ok((url, cert, token))
}

/// The URL a client on this machine reaches a node of config `c` at when it listens on `addr`
/// (an unspecified address is reached on loopback).
pub(super) fn local_url(c: &crate::node::Config, mut addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    crate::client::node_url(c.tls.is_some(), addr)
}

/// A channel to the node of `n` ([`resolve_node`]), its failures named by the flag at fault.
pub(super) async fn channel(n: &NodeArg) -> Result<crate::client::NodeChannel, CliError> {
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

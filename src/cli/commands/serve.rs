//! `hcmr serve`: serve a node until SIGINT or SIGTERM.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::cli::args::env_source;
use crate::cli::node::local_url;
use crate::cli::signal::{parent_exited, shutdown_signal};
use crate::cli::{serving, CliError};
use crate::node::config::Overrides;

/// Arguments of `hcmr serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The node's config file (hcmr.toml, written by init).
    #[arg(long, required_unless_present = "dir", conflicts_with = "dir")]
    config: Option<PathBuf>,
    /// The node's folder (made by `hcmr init`): serves its hcmr.toml.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Log lines on standard error: `human` (text) or `json` (one JSON object a line, for a
    /// log collector).
    #[arg(long, env = "HCMR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Settings over those of the config file (a flag wins over its environment variable).
    #[command(flatten)]
    overrides: Overrides,
    /// Stop (gracefully) when the process PID, which started this one, exits, even by
    /// SIGKILL, and do not start when it has already exited: for nodes that `hcmr bench`
    /// starts.
    #[arg(long, hide = true, value_name = "PID")]
    exit_with_parent: Option<u32>,
}

/// How `hcmr serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text lines for people.
    Human,
    /// One JSON object per line (`timestamp`, `level`, `fields.message`, ..., `target`).
    Json,
}

/// Runs `hcmr serve`.
pub(crate) async fn exec(a: ServeArgs) -> Result<(), CliError> {
    let ServeArgs {
        config,
        dir,
        overrides,
        exit_with_parent,
        ..
    } = a;
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
    let mut c = crate::node::Config::load(&config).map_err(|e| CliError::Config(e.to_string()))?;
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
    let health = match c.health_listen {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| CliError::Config(format!("health_listen {a}: {e}")))?,
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
        .with_health_listener(health)
        .serve(listener, http, stop)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))
}

/// Applies `serve`'s settings from flags and environment variables over the file's `c`. A value
/// that the configuration refuses is named by where it came from: a flag is bad usage (64), an
/// environment variable bad configuration (78), as for values their parser refuses.
fn apply_serve_overrides(c: &mut crate::node::Config, o: Overrides) -> Result<(), CliError> {
    let Err(e) = c.apply_overrides(&o) else {
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
            "health_listen",
            o.health_listen.map(|v| v.to_string()),
            Overrides {
                health_listen: o.health_listen,
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

//! `hcmr init`: create a province node.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::cli::display::DISPLAY_OFFSET;
use crate::cli::CliError;
use crate::province::Province;

/// Arguments of `hcmr init`.
#[derive(Debug, Args)]
pub struct InitArgs {
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
    /// Make a verify replica following the primary at this URL (https://...) instead of a
    /// primary: no signing or subject key; its TLS key is enrolled at the primary now
    /// (docs/deploy.md). Needs --primary-cert, --admin-token-file and --name.
    #[arg(long, requires_all = ["primary_cert", "admin_token_file", "name"], conflicts_with = "plaintext")]
    replica_of: Option<String>,
    /// The primary's certificate (its tls/node.crt), pinned for the enrollment call.
    #[arg(long, requires = "replica_of")]
    primary_cert: Option<PathBuf>,
    /// A file holding an admin API token of the primary, used once to enroll and not stored.
    #[arg(long, requires = "replica_of")]
    admin_token_file: Option<PathBuf>,
    /// The replica's name at the primary (1 to 64 of A-Z a-z 0-9 . _ -), e.g. sc-verify-1.
    #[arg(long, requires = "replica_of")]
    name: Option<String>,
}

/// Runs `hcmr init`.
pub(crate) async fn exec(a: InitArgs) -> Result<(), CliError> {
    let InitArgs {
        province,
        data_dir,
        listen,
        endpoint,
        http_listen,
        plaintext,
        key_passphrase_env,
        key_passphrase_file,
        replica_of,
        primary_cert,
        admin_token_file,
        name,
    } = a;
    let p: Province = province
        .parse()
        .map_err(|e| CliError::Usage(format!("--province: {e}")))?;
    // hcmr.toml resolves relative paths against its own folder: a file named relative
    // to where init runs is stored absolute.
    let key_passphrase_file = key_passphrase_file
        .map(|f| {
            std::path::absolute(&f)
                .map_err(|e| CliError::Usage(format!("--key-passphrase-file {}: {e}", f.display())))
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
    if let (Some(primary), Some(primary_cert), Some(token_file), Some(name)) =
        (replica_of, primary_cert, admin_token_file, name)
    {
        let token = zeroize::Zeroizing::new(crate::cli::token::read_token(
            &token_file,
            "--admin-token-file",
        )?);
        let r = crate::node::ReplicaInit {
            primary: primary.clone(),
            primary_cert,
            admin_token: token,
            name: name.clone(),
        };
        let path = crate::node::init_replica(p, &data_dir, &opts, &r)
            .await
            .map_err(|e| CliError::Config(e.to_string()))?;
        out!(
            "created verify replica {name} of {} {} ({}), enrolled at {primary}; start it with: hcmr serve --config {}",
            p,
            p.name_en(),
            p.name_zh(),
            path.display()
        );
        out!(
            "replica certificate (clients and load balancers pin it): {}",
            data_dir.join("tls/node.crt").display()
        );
        return Ok(());
    }
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

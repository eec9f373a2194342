//! `--self-contained`: two province nodes of this machine, made in a temporary folder and started
//! as `hcmr serve` child processes, with an agreement between them; and the pieces of that
//! set-up `bench scale` shares.

use std::path::Path;
use std::time::{Duration, Instant};

use super::load::{issue_codes, CODES};
use super::{BenchError, Target};
use crate::proto;

/// Two nodes of this machine, started as `hcmr serve` processes, and the bench's target at
/// Guangdong; stopped when dropped.
pub struct SelfContained {
    /// Stopped before the folder is removed (fields drop in this order).
    _children: Vec<Served>,
    _dir: tempfile::TempDir,
    /// The target (Guangdong), with Sichuan's codes as peer codes.
    pub target: Target,
}

/// A node the bench started (`hcmr serve` as a child process): killed and waited for when
/// dropped, so a folder removed after it is no longer written to. Started with
/// `--exit-with-parent <the bench's pid>`, so it also stops by itself (within half a second) when
/// the bench is killed outright, even before the node has finished starting.
pub(crate) struct Served(std::process::Child);

impl Served {
    /// Starts `exe serve --config config`, its log at level error to nowhere.
    ///
    /// # Errors
    /// [`BenchError::Setup`] when the process cannot be started.
    pub(crate) fn spawn(exe: &Path, config: &Path) -> Result<Served, BenchError> {
        std::process::Command::new(exe)
            .arg("serve")
            .arg(format!("--exit-with-parent={}", std::process::id()))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(Served)
            .map_err(|e| BenchError::Setup(format!("{}: {e}", exe.display())))
    }

    /// Its process id.
    pub(crate) fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BenchError::Setup(e.to_string()))
}

/// A node made for a bench: initialised in `dir` on a free loopback port, with the per-caller
/// rate limit and the concurrency limit raised out of the way of the load, and a caller "bench"
/// with `roles`.
pub(crate) struct BenchNode {
    /// Its hcmr.toml.
    pub(crate) config_path: std::path::PathBuf,
    /// The configuration as loaded.
    pub(crate) config: crate::node::Config,
    /// Its gRPC port on 127.0.0.1.
    pub(crate) port: u16,
    /// The bench caller's token.
    pub(crate) token: String,
}

/// Makes a [`BenchNode`] of `province` in `dir`.
///
/// # Errors
/// [`BenchError::Setup`] naming what failed.
pub(crate) async fn init_bench_node(
    province: crate::province::Province,
    dir: &Path,
    roles: &[crate::callers::Role],
) -> Result<BenchNode, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let port = free_port()?;
    let mut opts =
        crate::node::InitOptions::new(format!("127.0.0.1:{port}").parse().map_err(|e| setup(&e))?);
    opts.endpoint = Some(format!("https://127.0.0.1:{port}"));
    let config_path = crate::node::init_node(province, dir, &opts)
        .await
        .map_err(|e| setup(&e))?;
    let text = std::fs::read_to_string(&config_path).map_err(|e| setup(&e))?;
    let text = text
        .replace(
            "caller_requests_per_sec = 200",
            "caller_requests_per_sec = 10000000",
        )
        .replace("caller_burst = 400", "caller_burst = 10000000")
        .replace(
            "max_concurrent_requests = 512",
            "max_concurrent_requests = 4096",
        )
        // One caller from one address is the whole load here.
        .replace(
            "max_concurrent_per_caller = 64",
            "max_concurrent_per_caller = 4096",
        )
        .replace(
            "max_concurrent_per_address = 256",
            "max_concurrent_per_address = 4096",
        )
        .replace(
            "max_connections_per_address = 64",
            "max_connections_per_address = 4096",
        );
    std::fs::write(&config_path, text).map_err(|e| setup(&e))?;
    let config = crate::node::Config::load(&config_path).map_err(|e| setup(&e))?;
    let token = crate::node::add_caller_offline(&config, "bench", roles)
        .await
        .map_err(|e| setup(&e))?;
    Ok(BenchNode {
        config_path,
        config,
        port,
        token: token.to_string(),
    })
}

/// Makes and starts the two nodes with `exe serve` (this binary), raises their per-caller limits
/// out of the way, concludes an agreement, and issues 256 Sichuan codes for verify-peer.
///
/// # Errors
/// [`BenchError::Setup`].
pub async fn self_contained(exe: &Path) -> Result<SelfContained, BenchError> {
    use crate::proto::operator_service_client::OperatorServiceClient;
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let dir = tempfile::tempdir().map_err(|e| setup(&e))?;
    let mut children = Vec::new();
    let mut nodes = Vec::new();
    let mut configs = Vec::new();
    for code in [510000u32, 440000] {
        let p = crate::province::Province::from_code(code).map_err(|e| setup(&e))?;
        let made = init_bench_node(
            p,
            &dir.path().join(code.to_string()),
            &[
                crate::callers::Role::Issuer,
                crate::callers::Role::Verifier,
                crate::callers::Role::Admin,
                // `board`: Guangdong's trips, boarded with its own codes.
                crate::callers::Role::Organizer,
            ],
        )
        .await?;
        let (path, port, token) = (made.config_path, made.port, made.token);
        children.push(Served::spawn(exe, &path)?);
        configs.push(path);
        nodes.push((
            format!("https://127.0.0.1:{port}"),
            dir.path().join(code.to_string()).join("tls/node.crt"),
            token.to_string(),
        ));
    }
    let sc = wait_ready(&nodes[0].0, &nodes[0].1, &nodes[0].2).await?;
    let gd = wait_ready(&nodes[1].0, &nodes[1].1, &nodes[1].2).await?;
    conclude(&sc, &gd, &nodes[0].0, true).await?;
    let peer_codes = issue_codes(&sc, CODES).await.map_err(|e| setup(&e))?;
    let manifest = super::peer_manifest(&configs[0], &peer_codes, crate::unix_now())?;
    // Guangdong holds Sichuan's feed (its revocations) before the first check.
    OperatorServiceClient::new(gd.clone())
        .sync_now(proto::SyncNowRequest {})
        .await
        .map_err(|e| setup(&e))?;
    let pid = children.get(1).map(Served::id);
    Ok(SelfContained {
        _children: children,
        _dir: dir,
        target: Target {
            url: nodes[1].0.clone(),
            cert: Some(nodes[1].1.clone()),
            token: Some(nodes[1].2.clone()),
            pid,
            peer_codes,
            manifest: Some(manifest),
        },
    })
}

/// Waits (up to 30 s) until the node at `url` answers its admin `token`; a channel to it.
///
/// # Errors
/// [`BenchError::Setup`] when it does not.
pub(crate) async fn wait_ready(
    url: &str,
    cert: &Path,
    token: &str,
) -> Result<crate::client::NodeChannel, BenchError> {
    use crate::proto::operator_service_client::OperatorServiceClient;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(ch) = crate::client::connect(url, Some(cert), Some(token)).await {
            if OperatorServiceClient::new(ch.clone())
                .list_callers(proto::ListCallersRequest {})
                .await
                .is_ok()
            {
                return Ok(ch);
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!("node at {url} did not start")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Concludes an agreement proposed by Guangdong (`gd`) to Sichuan (`sc`, at `sc_url`): green
/// and red both ways for a month, with Sichuan's trip manifests taken in Guangdong when
/// `manifests`.
///
/// # Errors
/// [`BenchError::Setup`].
pub(crate) async fn conclude(
    sc: &crate::client::NodeChannel,
    gd: &crate::client::NodeChannel,
    sc_url: &str,
    manifests: bool,
) -> Result<(), BenchError> {
    use crate::proto::federation_service_client::FederationServiceClient;
    use crate::proto::operator_service_client::OperatorServiceClient;
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let kid = FederationServiceClient::new(sc.clone())
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .map_err(|e| setup(&e))?
        .into_inner()
        .keys
        .first()
        .map(|k| hex::encode(&k.kid))
        .ok_or_else(|| BenchError::Setup("Sichuan has no key".into()))?;
    let map = |pairs: &[(i32, i32)]| {
        pairs
            .iter()
            .map(|(a, b)| proto::StatusMapping {
                issued: *a,
                counts_as: *b,
            })
            .collect::<Vec<_>>()
    };
    let (g, r) = (
        proto::HealthStatus::Green as i32,
        proto::HealthStatus::Red as i32,
    );
    let now = crate::unix_now();
    let created = OperatorServiceClient::new(gd.clone())
        .create_agreement(proto::CreateAgreementRequest {
            peer_endpoint: sc_url.to_string(),
            peer_codes_here: map(&[(g, g), (r, r)]),
            our_codes_there: map(&[(g, g), (r, r)]),
            max_code_age_secs: 86_400,
            max_trust_age_secs: 0,
            amends: String::new(),
            expected_peer_kid: kid,
            effective_from: (now - 10).secs(),
            effective_until: (now + 30 * 86_400).secs(),
            // Guangdong's checkpoints and receivers take Sichuan's trips (verify-manifest).
            peer_manifests_transit: manifests,
            peer_manifests_arrival: manifests,
            ..Default::default()
        })
        .await
        .map_err(|e| setup(&e))?
        .into_inner()
        .agreement
        .ok_or_else(|| BenchError::Setup("no agreement".into()))?;
    OperatorServiceClient::new(sc.clone())
        .approve_agreement(proto::ApproveAgreementRequest { id: created.id })
        .await
        .map_err(|e| setup(&e))?;
    Ok(())
}

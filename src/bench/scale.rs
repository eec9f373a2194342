//! `hcmr bench scale`: the "Scale" target of BENCHMARKS.md. Builds two Guangdong nodes in one
//! folder, one **loaded** (every other province as a peer, `--agreements` concluded agreements,
//! `--revocations` revoked code ids in the peers' synced feeds) and one **empty** (one agreement,
//! with Sichuan, and no revocation), then measures:
//!
//! - **start**: [`crate::node::Node::open`] (store opened, feeds rebuilt, snapshot ready) in a
//!   child process (`hcmr bench scale-open`), `--start-runs` times, median;
//! - **memory**: VmRSS of that child (`/proc/self/status`) before and after the first open,
//!   divided by the revocations; and the revocation sets' own heap bytes per entry;
//! - **verify throughput**: both nodes started as `hcmr serve` processes and loaded in turn
//!   (empty, loaded, empty, loaded, ...) by the closed-loop gRPC bench with
//!   `verify-own=50,verify-peer=50`; the figure is the loaded node's total over the empty one's.
//!
//! The agreement model: 33 peers (every other province-level GB/T 2260 code); the agreements are
//! spread over them (about 30 each at 1,000), each its own agreement id, created a month apart:
//! the history of successive arrangements, each expired at the next one's creation, the newest
//! in force. Every agreement carries both provinces' signatures. Revoked ids are random 16-byte
//! ctis in RevokeCodes entries of 4,096; half of them in Sichuan's feed (the issuer of the
//! verify-peer codes, so its lookups meet the largest set), the rest spread over the other
//! peers.

use crate::UnixTime;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{BenchError, Options, Report, Served, Target};
use crate::agreement::{
    AgreementBody, AgreementId, DirectionTerms, ManifestTerms, Party, SignedAgreement,
};
use crate::feed::{Cti, FeedEntry, Statement, MAX_CTIS_PER_ENTRY};
use crate::keyfile::NodeKeyFile as _;
use crate::keys::NodeKey;
use crate::province::Province;
use crate::status::HealthStatus;

/// Sichuan: the peer whose codes are verified.
const SICHUAN: u32 = 510000;
/// Guangdong: the node under test.
const GUANGDONG: u32 = 440000;
const DAY: u64 = 86_400;
/// Feed entries written to the store per batch (about 18 MB).
const ENTRIES_PER_WRITE: usize = 256;

/// What `hcmr bench scale` does.
#[derive(Debug, Clone)]
pub struct ScaleOptions {
    /// Concluded agreements in the loaded node.
    pub agreements: usize,
    /// Revoked code ids in the loaded node's peer feeds.
    pub revocations: usize,
    /// A new (or empty) folder for the two nodes.
    pub dir: PathBuf,
    /// Opens measured per node.
    pub start_runs: usize,
    /// Load rounds (each: empty node, then loaded node).
    pub rounds: usize,
    /// The gRPC load of each node per round.
    pub load: Options,
}

/// What one child measured over opens of a node (see [`measure_open`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenFigures {
    /// Each open's time (store opened to snapshot ready), milliseconds.
    pub start_ms: Vec<f64>,
    /// VmRSS before the first open, KiB.
    pub rss_before_kib: u64,
    /// VmRSS with the first opened node alive, KiB.
    pub rss_after_kib: u64,
    /// Revocations in the peer feeds (code ids + subjects).
    pub revocations: usize,
    /// Heap bytes of the peers' revoked-code sets.
    pub revocation_heap_bytes: usize,
    /// Agreements in the snapshot (newest version of each id).
    pub agreements: usize,
}

impl OpenFigures {
    /// The median start time, milliseconds.
    pub fn median_ms(&self) -> f64 {
        let mut v = self.start_ms.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }

    /// VmRSS growth over the first open, bytes.
    pub fn rss_growth_bytes(&self) -> u64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) * 1024
    }

    /// Resident bytes per revocation: this node's VmRSS growth over the first open, less the
    /// growth of `base` (the same node without revocations: what any node takes to open), over
    /// the revocations; `None` without revocations.
    pub fn rss_bytes_per_revocation(&self, base: &OpenFigures) -> Option<f64> {
        (self.revocations > 0).then(|| {
            self.rss_growth_bytes()
                .saturating_sub(base.rss_growth_bytes()) as f64
                / self.revocations as f64
        })
    }
}

/// VmRSS of this process in KiB, from `/proc/self/status`.
pub fn vm_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Opens the node of `config` `runs` times (each opened and dropped in turn) and measures.
///
/// # Errors
/// [`BenchError::Setup`] if the node does not open.
pub fn measure_open(config: &Path, runs: usize) -> Result<OpenFigures, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let config = crate::node::Config::load(config).map_err(|e| setup(&e))?;
    let rss_before_kib = vm_rss_kib().unwrap_or(0);
    let mut f = OpenFigures {
        start_ms: Vec::new(),
        rss_before_kib,
        rss_after_kib: 0,
        revocations: 0,
        revocation_heap_bytes: 0,
        agreements: 0,
    };
    for i in 0..runs.max(1) {
        let t = Instant::now();
        let node = crate::node::Node::open(&config).map_err(|e| setup(&e))?;
        f.start_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if i == 0 {
            f.rss_after_kib = vm_rss_kib().unwrap_or(0);
            let (n, bytes, agreements) = node.trust_figures();
            f.revocations = n;
            f.revocation_heap_bytes = bytes;
            f.agreements = agreements;
        }
        drop(node);
    }
    Ok(f)
}

fn province(code: u32) -> Result<Province, BenchError> {
    Province::from_code(code).map_err(|e| BenchError::Setup(e.to_string()))
}

fn direction(
    issuer: Province,
    verifier: Province,
    from: UnixTime,
    until: UnixTime,
) -> DirectionTerms {
    use HealthStatus::{Green, Red, Yellow};
    DirectionTerms {
        issuer,
        verifier,
        status_map: [(Green, Green), (Yellow, Red), (Red, Red)]
            .into_iter()
            .collect(),
        max_code_age_secs: DAY,
        max_trust_age_secs: 0,
        manifests: ManifestTerms::none(),
        tracing: false,
        effective_from: from,
        effective_until: until,
    }
}

/// `count` concluded agreements between `local` and `peer`, created a month apart, each in
/// force until the next one's creation, the newest until a year from now.
fn agreement_history(
    (local, local_key): (Province, &NodeKey),
    (peer, peer_key): (Province, &NodeKey),
    count: usize,
    now: UnixTime,
) -> Result<Vec<SignedAgreement>, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let mut out = Vec::with_capacity(count);
    for j in 0..count {
        let age = (count - j) as u64;
        let from = now - age * 30 * DAY;
        let until = if j + 1 == count {
            now + 365 * DAY
        } else {
            from + 30 * DAY
        };
        let body = AgreementBody {
            id: AgreementId::generate(),
            version: 1,
            created_at: from - DAY,
            proposer: Party {
                province: local,
                keys: vec![local_key.public()],
            },
            acceptor: Party {
                province: peer,
                keys: vec![peer_key.public()],
            },
            directions: vec![
                direction(peer, local, from, until),
                direction(local, peer, from, until),
            ],
        };
        let mut a = SignedAgreement::propose(body, local_key).map_err(|e| setup(&e))?;
        a.accept(peer_key).map_err(|e| setup(&e))?;
        out.push(a);
    }
    Ok(out)
}

/// Writes `peer`'s feed into `store`: genesis by `key`, then `revocations` random code ids in
/// RevokeCodes entries of [`MAX_CTIS_PER_ENTRY`]. Returns the entries written.
async fn write_peer_feed(
    store: &crate::store::Store,
    peer: Province,
    key: &NodeKey,
    revocations: usize,
    now: UnixTime,
) -> Result<u64, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let mut rng = rand::thread_rng();
    let t0 = now - 3600;
    let mut last = FeedEntry::sign(
        peer,
        None,
        t0,
        Statement::Genesis { key: key.public() },
        key,
    );
    let mut batch = vec![last.clone()];
    let mut written = 0u64;
    let mut left = revocations;
    while left > 0 || !batch.is_empty() {
        if left > 0 {
            let n = left.min(MAX_CTIS_PER_ENTRY);
            let mut ctis: Vec<Cti> = vec![[0; 16]; n];
            for c in &mut ctis {
                rng.fill_bytes(c);
            }
            left -= n;
            last = FeedEntry::sign(
                peer,
                Some(&last),
                t0 + 1,
                Statement::RevokeCodes { ctis },
                key,
            );
            batch.push(last.clone());
        }
        if batch.len() >= ENTRIES_PER_WRITE || left == 0 {
            store
                .append_peer_feed(peer, &batch, now)
                .await
                .map_err(|e| setup(&e))?;
            written += batch.len() as u64;
            batch.clear();
        }
    }
    Ok(written)
}

/// A node folder made by `init_node`, with the per-caller limits raised out of the way, and a
/// caller for the bench.
#[derive(Clone)]
struct Made {
    config_path: PathBuf,
    config: crate::node::Config,
    url: String,
    cert: PathBuf,
    token: String,
}

async fn make_node(dir: &Path) -> Result<Made, BenchError> {
    let made = super::init_bench_node(
        province(GUANGDONG)?,
        dir,
        &[crate::callers::Role::Issuer, crate::callers::Role::Verifier],
    )
    .await?;
    Ok(Made {
        config_path: made.config_path,
        url: format!("https://127.0.0.1:{}", made.port),
        cert: dir.join("tls/node.crt"),
        token: made.token,
        config: made.config,
    })
}

/// Fills a made node's store: peers' feeds (genesis and revocations), and agreements.
/// `agreements` are spread over `peers` (the first ones get one more); `revocations` go half to
/// Sichuan (the first peer), the rest evenly to the others.
async fn fill(
    made: &Made,
    peers: &[(Province, NodeKey)],
    agreements: usize,
    revocations: usize,
    now: UnixTime,
) -> Result<(), BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let protection = made.config.key_protection().map_err(|e| setup(&e))?;
    let local_key =
        NodeKey::read_pem_protected(&made.config.key_file, &protection).map_err(|e| setup(&e))?;
    let local = province(GUANGDONG)?;
    let store = crate::store::Store::open(&made.config.data_dir).map_err(|e| setup(&e))?;
    let n = peers.len();
    let first = if n > 1 { revocations / 2 } else { revocations };
    let rest = revocations - first;
    for (i, (p, k)) in peers.iter().enumerate() {
        let share = if i == 0 {
            first
        } else {
            rest / (n - 1) + usize::from(i - 1 < rest % (n - 1))
        };
        write_peer_feed(&store, *p, k, share, now).await?;
        let count = agreements / n + usize::from(i < agreements % n);
        for a in agreement_history((local, &local_key), (*p, k), count, now)? {
            store.put_agreement(&a).await.map_err(|e| setup(&e))?;
        }
    }
    store.flush().await.map_err(|e| setup(&e))?;
    Ok(())
}

/// 256 Sichuan codes for verify-peer, signed here with Sichuan's key.
fn sichuan_codes(key: &NodeKey, now: UnixTime) -> Vec<String> {
    let mut rng = rand::thread_rng();
    (0..256u32)
        .map(|i| {
            let mut hash = crate::identity::SubjectHash(Default::default());
            rng.fill_bytes(&mut hash.0);
            let claims = crate::synthetic::green_claims(
                SICHUAN,
                now - 60,
                now + DAY,
                now + DAY,
                format!("5101*{:04}", i % 10_000),
                hash,
            );
            crate::code::encode(&claims, key)
        })
        .collect()
}

async fn serve(exe: &Path, made: &Made) -> Result<Served, BenchError> {
    use crate::proto::operator_service_client::OperatorServiceClient;
    let served = Served::spawn(exe, &made.config_path)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(ch) = crate::client::connect(&made.url, Some(&made.cert), Some(&made.token)).await
        {
            // Any answer (a refusal of the role included) means the node serves.
            let r = OperatorServiceClient::new(ch)
                .list_callers(crate::proto::ListCallersRequest {})
                .await;
            if r.is_ok() || r.is_err_and(|s| s.code() == tonic::Code::PermissionDenied) {
                return Ok(served);
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "node at {} did not start",
                made.url
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `exe bench scale-open` on a node and reads its figures.
fn open_in_child(exe: &Path, made: &Made, runs: usize) -> Result<OpenFigures, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let out = std::process::Command::new(exe)
        .args(["bench", "scale-open", "--config"])
        .arg(&made.config_path)
        .args(["--runs", &runs.to_string()])
        .env("RUST_LOG", "error")
        .output()
        .map_err(|e| setup(&e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("scale-open: "))
        .ok_or_else(|| {
            BenchError::Setup(format!(
                "scale-open gave no figures: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        })?;
    serde_json::from_str(line).map_err(|e| setup(&e))
}

/// Everything `hcmr bench scale` measured.
#[derive(Debug)]
pub struct ScaleReport {
    /// Seconds to build the two stores.
    pub setup_secs: f64,
    /// Opens of the loaded node.
    pub loaded_open: OpenFigures,
    /// Opens of the empty node.
    pub empty_open: OpenFigures,
    /// Load rounds: (empty node, loaded node).
    pub rounds: Vec<(Report, Report)>,
}

impl ScaleReport {
    /// Loaded throughput over empty throughput, over all rounds.
    pub fn throughput_ratio(&self) -> f64 {
        let (e, l) = self.rounds.iter().fold((0.0, 0.0), |(e, l), (a, b)| {
            (e + a.throughput(), l + b.throughput())
        });
        l / e
    }
}

/// Fewer revocations than this make the resident bytes per revocation noise (the process's
/// own growth varies by megabytes from open to open).
const MIN_REVOCATIONS_FOR_MEMORY: usize = 1_000_000;

impl std::fmt::Display for ScaleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "setup (both stores): {:.1} s", self.setup_secs)?;
        for (name, o) in [("empty", &self.empty_open), ("loaded", &self.loaded_open)] {
            let runs: Vec<String> = o.start_ms.iter().map(|m| format!("{m:.0}")).collect();
            writeln!(
                f,
                "{name} node start (store open -> snapshot ready): median {:.0} ms over [{}] ms; \
                 {} agreements, {} revocations",
                o.median_ms(),
                runs.join(", "),
                o.agreements,
                o.revocations
            )?;
            writeln!(
                f,
                "{name} node VmRSS: {} KiB before open, {} KiB after ({:+} KiB)",
                o.rss_before_kib,
                o.rss_after_kib,
                o.rss_after_kib as i64 - o.rss_before_kib as i64
            )?;
        }
        let l = &self.loaded_open;
        match l.rss_bytes_per_revocation(&self.empty_open) {
            Some(per) => writeln!(
                f,
                "memory per revocation: {per:.1} bytes resident (VmRSS growth, less the empty \
                 node's, / {}), {:.1} bytes in the revocation sets",
                l.revocations,
                l.revocation_heap_bytes as f64 / l.revocations as f64
            )?,
            None => writeln!(f, "memory per revocation: no revocations")?,
        }
        if (1..MIN_REVOCATIONS_FOR_MEMORY).contains(&l.revocations) {
            writeln!(
                f,
                "(with fewer than {MIN_REVOCATIONS_FOR_MEMORY} revocations the resident figure is \
                 the noise of the allocator's and sled's pages, tens of MiB: give more for it)"
            )?;
        }
        for (i, (e, lo)) in self.rounds.iter().enumerate() {
            writeln!(f, "round {}: empty node", i + 1)?;
            writeln!(f, "{e}")?;
            writeln!(f, "round {}: loaded node", i + 1)?;
            writeln!(f, "{lo}")?;
        }
        write!(
            f,
            "verify throughput, loaded / empty (all rounds): {:.3}",
            self.throughput_ratio()
        )
    }
}

/// Builds both nodes in `o.dir` and measures (see the module documentation).
///
/// # Errors
/// [`BenchError`].
pub async fn run(exe: &Path, o: &ScaleOptions) -> Result<ScaleReport, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    if o.agreements == 0 {
        return Err(BenchError::Usage("--agreements must be at least 1".into()));
    }
    if o.dir.exists()
        && std::fs::read_dir(&o.dir)
            .map_err(|e| setup(&e))?
            .next()
            .is_some()
    {
        return Err(BenchError::Usage(format!(
            "--dir {} must be a new or empty folder",
            o.dir.display()
        )));
    }
    let started = Instant::now();
    let now = crate::unix_now();
    let mut peers = vec![(province(SICHUAN)?, NodeKey::generate())];
    for p in crate::province::PROVINCES {
        if p.code != SICHUAN && p.code != GUANGDONG {
            peers.push((province(p.code)?, NodeKey::generate()));
        }
    }
    let loaded = make_node(&o.dir.join("loaded")).await?;
    let empty = make_node(&o.dir.join("empty")).await?;
    fill(&loaded, &peers, o.agreements, o.revocations, now).await?;
    fill(&empty, &peers[..1], 1, 0, now).await?;
    let setup_secs = started.elapsed().as_secs_f64();
    eprintln!("stores built in {setup_secs:.1} s; measuring starts");

    let exe_owned = exe.to_path_buf();
    let runs = o.start_runs;
    let (loaded_open, empty_open) = {
        let (a, b) = (loaded.clone(), empty.clone());
        tokio::task::spawn_blocking(move || {
            Ok::<_, BenchError>((
                open_in_child(&exe_owned, &a, runs)?,
                open_in_child(&exe_owned, &b, runs)?,
            ))
        })
        .await
        .map_err(|e| setup(&e))??
    };
    eprintln!(
        "loaded node start: median {:.0} ms; load rounds start",
        loaded_open.median_ms()
    );

    let codes = sichuan_codes(&peers[0].1, now);
    let mut rounds = Vec::new();
    let s_empty = serve(exe, &empty).await?;
    let s_loaded = serve(exe, &loaded).await?;
    let target = |m: &Made, s: &Served| Target {
        url: m.url.clone(),
        cert: Some(m.cert.clone()),
        token: Some(m.token.clone()),
        pid: Some(s.id()),
        peer_codes: codes.clone(),
        manifest: None,
    };
    for _ in 0..o.rounds.max(1) {
        let e = super::run(&target(&empty, &s_empty), &o.load).await?;
        let l = super::run(&target(&loaded, &s_loaded), &o.load).await?;
        rounds.push((e, l));
    }
    drop((s_empty, s_loaded));
    Ok(ScaleReport {
        setup_secs,
        loaded_open,
        empty_open,
        rounds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_loaded_store_opens_with_every_revocation_and_agreement() {
        let dir = tempfile::tempdir().unwrap();
        let made = make_node(&dir.path().join("n")).await.unwrap();
        let now = crate::unix_now();
        let peers: Vec<(Province, NodeKey)> = [SICHUAN, 320000, 330000]
            .into_iter()
            .map(|c| (province(c).unwrap(), NodeKey::generate()))
            .collect();
        fill(&made, &peers, 10, 10_000, now).await.unwrap();
        let f = measure_open(&made.config_path, 2).unwrap();
        assert_eq!(f.revocations, 10_000);
        assert_eq!(f.agreements, 10);
        assert_eq!(f.start_ms.len(), 2);
        // 16 bytes per id in the bases; the deltas are empty after a bulk load.
        let per = f.revocation_heap_bytes as f64 / 10_000.0;
        assert!((16.0..17.0).contains(&per), "{per} bytes per revocation");
        // A Sichuan code verifies as recognized-capable input: it decodes with Sichuan's kid.
        let codes = sichuan_codes(&peers[0].1, now);
        assert_eq!(codes.len(), 256);
        let c = crate::code::HealthCode::decode(&codes[0]).unwrap();
        assert_eq!(c.claims.iss, "510000");
        assert!(c.signature_valid(&peers[0].1.public()));
    }
}

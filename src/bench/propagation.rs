//! `hcmr bench propagation`: how long a revocation takes to reach another node that verifies
//! (BENCHMARKS.md, "Replicas and watches"). Starts two nodes of this machine as `hcmr serve`
//! processes (Sichuan issues and revokes; the target verifies) with the interval sync an hour
//! apart, so that only a feed watch can deliver, and then `--samples` times: issues a code at
//! Sichuan, checks the target recognizes it, revokes it, and times from the RevokeHealthCode
//! call to the first Verify at the target that answers REVOKED (Verify every 5 ms, at most
//! 10 s a sample). The time includes the revocation's durable write at Sichuan.
//!
//! The target is a [`PropagationTarget`]: a peer province (Guangdong, with an agreement) now;
//! a verify replica of Sichuan is the other kind the issue names.

use std::path::Path;
use std::time::{Duration, Instant};

use super::self_contained::{conclude, wait_ready};
use super::{init_bench_node, BenchError, Served};
use crate::proto;
use crate::proto::health_code_service_client::HealthCodeServiceClient;

/// Between two Verify calls at the target while waiting for a revocation.
const POLL: Duration = Duration::from_millis(5);
/// Longest a sample may take before the bench fails.
const SAMPLE_LIMIT: Duration = Duration::from_secs(10);
/// Most samples.
pub const MAX_SAMPLES: usize = 10_000;

/// Where a revocation is timed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropagationTarget {
    /// Another province's node with an agreement (its feed watch of the issuer).
    Peer,
}

impl std::fmt::Display for PropagationTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PropagationTarget::Peer => "peer",
        })
    }
}

/// What a propagation bench measured.
#[derive(Debug, Clone)]
pub struct PropagationReport {
    /// The target.
    pub target: PropagationTarget,
    /// Each sample's time, from the revocation call to the first REVOKED at the target,
    /// milliseconds, in the order taken.
    pub samples_ms: Vec<f64>,
}

impl PropagationReport {
    /// The `q` quantile (0 to 1, nearest rank) of the samples, milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut v = self.samples_ms.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }
}

impl std::fmt::Display for PropagationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "propagation of a revocation to a {} ({} samples, Verify every {} ms):",
            self.target,
            self.samples_ms.len(),
            POLL.as_millis()
        )?;
        write!(
            f,
            "  p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
            self.quantile_ms(0.50),
            self.quantile_ms(0.99),
            self.quantile_ms(1.0)
        )
    }
}

/// Runs the bench with `exe serve` (this binary) as the nodes.
///
/// # Errors
/// [`BenchError::Usage`] for 0 or too many samples; [`BenchError::Setup`] when the nodes do
/// not start, a call fails, or a revocation has not arrived within 10 s.
pub async fn run(
    exe: &Path,
    target: PropagationTarget,
    samples: usize,
) -> Result<PropagationReport, BenchError> {
    if !(1..=MAX_SAMPLES).contains(&samples) {
        return Err(BenchError::Usage(format!(
            "--samples: {samples} is outside 1 to {MAX_SAMPLES}"
        )));
    }
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let dir = tempfile::tempdir().map_err(|e| setup(&e))?;
    let mut children = Vec::new();
    let mut nodes = Vec::new();
    for code in [510000u32, 440000] {
        let p = crate::province::Province::from_code(code).map_err(|e| setup(&e))?;
        let folder = dir.path().join(code.to_string());
        let made = init_bench_node(
            p,
            &folder,
            &[
                crate::callers::Role::Issuer,
                crate::callers::Role::Verifier,
                crate::callers::Role::Admin,
            ],
        )
        .await?;
        // Polling an hour apart: what arrives within a sample came by watch.
        let text = std::fs::read_to_string(&made.config_path).map_err(|e| setup(&e))?;
        let text = text.replace("sync_interval_secs = 30", "sync_interval_secs = 3600");
        std::fs::write(&made.config_path, text).map_err(|e| setup(&e))?;
        children.push(Served::spawn(exe, &made.config_path)?);
        nodes.push((
            format!("https://127.0.0.1:{}", made.port),
            folder.join("tls/node.crt"),
            made.token,
        ));
    }
    let sc = wait_ready(&nodes[0].0, &nodes[0].1, &nodes[0].2).await?;
    let to = match target {
        PropagationTarget::Peer => {
            let gd = wait_ready(&nodes[1].0, &nodes[1].1, &nodes[1].2).await?;
            conclude(&sc, &gd, &nodes[0].0, false).await?;
            gd
        }
    };
    let mut issuer = HealthCodeServiceClient::new(sc);
    let mut verifier = HealthCodeServiceClient::new(to);
    let verify = |code: String| proto::VerifyHealthCodeRequest {
        code,
        checkpoint_id: String::new(),
    };
    let mut samples_ms = Vec::with_capacity(samples);
    for i in 0..samples {
        let issued = issuer
            .issue_health_code(super::load::issue_request((i % 60_000) as u16))
            .await
            .map_err(|e| setup(&e))?
            .into_inner();
        // Recognized first (the agreement and the issuer's key have arrived), untimed.
        let deadline = Instant::now() + SAMPLE_LIMIT;
        loop {
            let v = verifier
                .verify_health_code(verify(issued.code.clone()))
                .await
                .map_err(|e| setup(&e))?
                .into_inner();
            if v.reason == proto::Reason::Ok as i32 {
                break;
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(format!(
                    "the {target} does not recognize a fresh code (reason {})",
                    v.reason
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        let t0 = Instant::now();
        issuer
            .revoke_health_code(proto::RevokeHealthCodeRequest {
                cti: issued.cti.clone(),
            })
            .await
            .map_err(|e| setup(&e))?;
        loop {
            let v = verifier
                .verify_health_code(verify(issued.code.clone()))
                .await
                .map_err(|e| setup(&e))?
                .into_inner();
            if v.reason == proto::Reason::Revoked as i32 {
                break;
            }
            if t0.elapsed() > SAMPLE_LIMIT {
                return Err(BenchError::Setup(format!(
                    "a revocation did not reach the {target} within {} s",
                    SAMPLE_LIMIT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        samples_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    drop(children);
    Ok(PropagationReport { target, samples_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let r = PropagationReport {
            target: PropagationTarget::Peer,
            samples_ms: (1..=100).rev().map(f64::from).collect(),
        };
        assert_eq!(r.quantile_ms(0.5), 50.0);
        assert_eq!(r.quantile_ms(0.99), 99.0);
        assert_eq!(r.quantile_ms(1.0), 100.0);
        let one = PropagationReport {
            target: PropagationTarget::Peer,
            samples_ms: vec![7.0],
        };
        assert_eq!(one.quantile_ms(0.99), 7.0);
        assert!(r.to_string().contains("p99 99.0 ms"), "{r}");
    }
}

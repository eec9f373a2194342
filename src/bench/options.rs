//! What a bench run does: the ops and their mix (`--mix`), the loop, the measured time.

use std::time::Duration;

use super::BenchError;

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Verify a code the target node issued.
    VerifyOwn,
    /// Verify a peer province's code (recognized under the agreement).
    VerifyPeer,
    /// Verify a forged code (refused: bad signature).
    VerifyNotRecognized,
    /// BatchVerifyHealthCodes with [`BATCH_CODES`] own codes in one call (a checkpoint
    /// gateway); counted per call, so codes per second are [`BATCH_CODES`] times the calls.
    VerifyBatch,
    /// VerifyManifest on a 55-person trip manifest of the peer province (PASS expected): one
    /// scan per vehicle at a checkpoint (docs/transport.md section 5).
    VerifyManifest,
    /// TripService.BoardPerson of an own-province code onto a trip of at most 55 people (the
    /// node's organizer role); ok only when boarded. A full trip is replaced by a new one and
    /// cancelled within the op, so that its people board again.
    Board,
    /// Issue a code (the issued-code log is durable before the answer).
    Issue,
    /// grpc.health.v1 Check: the cheapest call through the same server and client.
    Empty,
}

impl Op {
    /// Every op, in report order.
    pub const ALL: [Op; 8] = [
        Op::VerifyOwn,
        Op::VerifyPeer,
        Op::VerifyNotRecognized,
        Op::VerifyBatch,
        Op::VerifyManifest,
        Op::Board,
        Op::Issue,
        Op::Empty,
    ];

    /// Its name in `--mix`.
    pub fn name(self) -> &'static str {
        match self {
            Op::VerifyOwn => "verify-own",
            Op::VerifyPeer => "verify-peer",
            Op::VerifyNotRecognized => "verify-not-recognized",
            Op::VerifyBatch => "verify-batch",
            Op::VerifyManifest => "verify-manifest",
            Op::Board => "board",
            Op::Issue => "issue",
            Op::Empty => "empty",
        }
    }
}

/// Codes in one BatchVerifyHealthCodes call of [`Op::VerifyBatch`].
pub const BATCH_CODES: usize = 64;

/// Parses `verify-own=70,verify-peer=20,issue=10` into weights.
///
/// # Errors
/// [`BenchError::Usage`] naming the part at fault.
pub fn parse_mix(s: &str) -> Result<Vec<(Op, u32)>, BenchError> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, w) = part.split_once('=').unwrap_or((part, "1"));
        let op = Op::ALL
            .into_iter()
            .find(|o| o.name() == name.trim())
            .ok_or_else(|| {
                BenchError::Usage(format!(
                    "--mix {part:?}: expected one of verify-own, verify-peer, verify-not-recognized, verify-batch, verify-manifest, board, issue, empty"
                ))
            })?;
        if seen.contains(&op) {
            return Err(BenchError::Usage(format!(
                "--mix: {} is given more than once",
                op.name()
            )));
        }
        seen.push(op);
        let w: u32 = w.trim().parse().map_err(|_| {
            BenchError::Usage(format!(
                "--mix {part:?}: the weight must be a whole number from 0 to {}",
                u32::MAX
            ))
        })?;
        if w > 0 {
            out.push((op, w));
        }
    }
    if out.is_empty() {
        return Err(BenchError::Usage(
            "--mix: no op with a positive weight".into(),
        ));
    }
    Ok(out)
}

/// The shortest measurement, 1 second: a shorter one ends before there are calls enough to
/// tell a p99.9 (or, at `1ns`, any call at all).
pub const MIN_DURATION: Duration = Duration::from_secs(1);
/// The longest measurement, 24 hours (so every deadline fits the clock).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The longest warm-up, 1 hour.
pub const MAX_WARMUP: Duration = Duration::from_secs(3600);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Requests in flight (closed loop), or the most in flight (open loop).
    pub concurrency: usize,
    /// Requests per second (open loop); `None`: closed loop.
    pub rate: Option<u64>,
    /// How long to measure.
    pub duration: Duration,
    /// Untimed warm-up before the measurement.
    pub warmup: Duration,
    /// The mix.
    pub mix: Vec<(Op, u32)>,
    /// HTTP/2 connections the requests are spread over.
    pub connections: usize,
}

impl Options {
    /// Checks the options before anything is started.
    ///
    /// # Errors
    /// [`BenchError::Usage`] naming the flag: a zero `--concurrency`, `--connections` or
    /// `--rate`; a `--duration` under [`MIN_DURATION`] or over [`MAX_DURATION`]; a `--warmup`
    /// over [`MAX_WARMUP`].
    pub fn check(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::Usage(m.into()));
        if self.concurrency == 0 {
            return bad("--concurrency must be at least 1");
        }
        if self.connections == 0 {
            return bad("--connections must be at least 1");
        }

        if self.rate == Some(0) {
            return bad("--rate must be at least 1 request per second");
        }
        if self.duration < MIN_DURATION {
            return bad("--duration must be at least 1s");
        }
        if self.duration > MAX_DURATION {
            return bad("--duration must be at most 24h");
        }
        if self.warmup > MAX_WARMUP {
            return bad("--warmup must be at most 1h");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_name_the_bad_part() {
        assert_eq!(
            parse_mix("verify-own=70,issue=30").unwrap(),
            vec![(Op::VerifyOwn, 70), (Op::Issue, 30)]
        );
        assert_eq!(parse_mix("empty").unwrap(), vec![(Op::Empty, 1)]);
        assert!(parse_mix("verify=1")
            .unwrap_err()
            .to_string()
            .contains("\"verify=1\""));
        assert!(parse_mix("issue=x").is_err());
        assert!(parse_mix("issue=0").is_err());
        assert_eq!(
            parse_mix("verify-own=1,empty=9,empty=0")
                .unwrap_err()
                .to_string(),
            "--mix: empty is given more than once"
        );
    }
}

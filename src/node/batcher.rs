//! The verification batcher: Verify calls that are in flight together are decided together, so
//! their Ed25519 signatures are confirmed by one batch equation ([`crate::verify::batch`]).
//!
//! Request handlers (on the tokio runtime) queue a job and await its verdicts; a few verifier
//! threads (one per core) take every job waiting, up to [`MAX_CODES_PER_TAKE`] codes, and decide
//! them in one [`verify_items`] call. Nothing waits to fill a batch: batches form only when calls
//! arrive faster than one thread decides them, which is exactly when batching pays. The
//! CPU-bound work of a batch stays off the runtime's threads, which keep serving connections
//! meanwhile.
//!
//! A call of one code that finds nothing else being decided (no job queued or in a verifier
//! thread, no other call deciding inline) is decided at once on the runtime's thread, alone:
//! one code costs about one signature check, less than handing it to a sleeping thread and
//! waking the caller again. The next call that arrives meanwhile queues, so batching starts as
//! soon as calls overlap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::error::ApiError;
use crate::trust::TrustSnapshot;
use crate::verify::batch::{verify_items, Item, MAX_SIGNATURES_PER_EQUATION};
use crate::verify::Verdict;

/// Most codes one verifier thread takes from the queue at once. A quarter of an equation's
/// worth: a take of 16 costs about as much per signature as one of 64 (the batch equation's
/// cost is nearly linear past a few signatures), and a call that arrives while both threads
/// are busy waits for at most one take of each (about 0.6 ms at 40 us a code, against 1.3 ms
/// with 32): the p99 at half load depends on it.
pub(crate) const MAX_CODES_PER_TAKE: usize = MAX_SIGNATURES_PER_EQUATION / 4;

/// Most codes a call decides inline (see the module documentation): one, a checkpoint's scan.
const MAX_INLINE_CODES: usize = 1;

/// Most calls deciding inline at once. One: with one per core, calls under load found the queue
/// empty often enough to be decided alone (a single check, 2.7 times a batched one per code),
/// and the Verify load cost 20 % more CPU per call, with no better tail latency.
const MAX_INLINE_DECISIONS: u64 = 1;

/// Jobs that may wait in the queue. The node-wide concurrency limit keeps it far from full; a
/// full queue makes the caller decide its codes itself, never fail.
const QUEUE: usize = 4096;

/// Codes to decide by one snapshot at one time, and where their verdicts go.
struct Job {
    codes: Vec<String>,
    trust: Arc<TrustSnapshot>,
    /// Seconds since the Unix epoch (UTC).
    now: u64,
    reply: oneshot::Sender<Vec<Verdict>>,
}

/// The queue and its verifier threads. Dropping it closes the queue; the threads then finish
/// the jobs they hold and exit.
pub(crate) struct Batcher {
    tx: SyncSender<Job>,
    counts: Arc<Counts>,
}

/// What the verifier threads and inline calls did, for the metrics, and what is being decided.
#[derive(Default)]
struct Counts {
    /// Decisions (batches, and inline calls as batches of their own).
    batches: AtomicU64,
    /// Codes in them.
    codes: AtomicU64,
    /// Decisions made inline on the runtime.
    inline: AtomicU64,
    /// Jobs queued or being decided by the verifier threads.
    queued: AtomicU64,
    /// Calls deciding inline now.
    inline_now: AtomicU64,
}

impl Batcher {
    /// Starts `threads` verifier threads (at least one).
    pub(crate) fn start(threads: usize) -> Batcher {
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let counts = Arc::new(Counts::default());
        for i in 0..threads.max(1) {
            let (rx, counts) = (rx.clone(), counts.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("hcmr-verify-{i}"))
                .spawn(move || work(&rx, &counts));
            if let Err(e) = spawned {
                // Fewer threads only means less parallelism; with none, callers decide inline.
                tracing::error!(error = %e, "cannot start a verifier thread");
            }
        }
        Batcher { tx, counts }
    }

    /// Decisions since the start (batches of the verifier threads, and calls decided inline,
    /// each a batch of its own), and the codes in them.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.counts.batches.load(Ordering::Relaxed),
            self.counts.codes.load(Ordering::Relaxed),
        )
    }

    /// Calls decided inline on the runtime since the start.
    pub(crate) fn inline_count(&self) -> u64 {
        self.counts.inline.load(Ordering::Relaxed)
    }

    /// Decides `codes` by `trust` at `now` (seconds since the Unix epoch, UTC), batched with
    /// whatever else is in flight; verdicts in the order of `codes`.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the decision panicked (a bug; the thread logs it and lives on).
    pub(crate) async fn verify(
        &self,
        codes: Vec<String>,
        trust: Arc<TrustSnapshot>,
        now: u64,
    ) -> Result<Vec<Verdict>, ApiError> {
        let counts = &self.counts;
        if codes.len() <= MAX_INLINE_CODES
            && counts.queued.load(Ordering::Acquire) == 0
            && counts
                .inline_now
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < MAX_INLINE_DECISIONS).then_some(n + 1)
                })
                .is_ok()
        {
            let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                decide(&codes, &trust, now)
            }));
            counts.inline_now.fetch_sub(1, Ordering::AcqRel);
            counts.inline.fetch_add(1, Ordering::Relaxed);
            counts.batches.fetch_add(1, Ordering::Relaxed);
            counts
                .codes
                .fetch_add(codes.len() as u64, Ordering::Relaxed);
            return decided.map_err(|_| {
                tracing::error!("the verification decision panicked");
                ApiError::Internal("the verification decision failed")
            });
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            codes,
            trust,
            now,
            reply,
        };
        counts.queued.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                counts.queued.fetch_sub(1, Ordering::AcqRel);
                return Ok(decide(&job.codes, &job.trust, job.now));
            }
        }
        answer
            .await
            .map_err(|_| ApiError::Internal("the verifier thread failed"))
    }
}

fn decide(codes: &[String], trust: &TrustSnapshot, now: u64) -> Vec<Verdict> {
    let items: Vec<Item<'_>> = codes.iter().map(|code| Item { code, trust, now }).collect();
    verify_items(&items)
}

/// A verifier thread: take what waits, decide it in one call, answer each job.
fn work(rx: &Mutex<Receiver<Job>>, counts: &Counts) {
    let mut jobs: Vec<Job> = Vec::new();
    loop {
        {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            match rx.recv() {
                Ok(job) => jobs.push(job),
                Err(_) => return,
            }
            let mut codes = jobs[0].codes.len();
            while codes < MAX_CODES_PER_TAKE {
                match rx.try_recv() {
                    Ok(job) => {
                        codes += job.codes.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
        }
        let items: Vec<Item<'_>> = jobs
            .iter()
            .flat_map(|job| {
                job.codes.iter().map(|code| Item {
                    code,
                    trust: &job.trust,
                    now: job.now,
                })
            })
            .collect();
        counts.batches.fetch_add(1, Ordering::Relaxed);
        counts
            .codes
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        let decided =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify_items(&items)));
        drop(items);
        let Ok(decided) = decided else {
            // The replies drop unanswered: each caller gets ApiError::Internal.
            tracing::error!(codes = jobs.len(), "the verification decision panicked");
            counts.queued.fetch_sub(jobs.len() as u64, Ordering::AcqRel);
            jobs.clear();
            continue;
        };
        let mut verdicts = decided.into_iter();
        for job in jobs.drain(..) {
            let mine: Vec<Verdict> = verdicts.by_ref().take(job.codes.len()).collect();
            counts.queued.fetch_sub(1, Ordering::AcqRel);
            // The caller may have gone (a cancelled request): nothing to answer then.
            let _ = job.reply.send(mine);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lone_call_is_decided_inline_and_several_codes_go_to_the_threads() {
        let sc = crate::province::Province::from_code(510000).unwrap();
        let own = Arc::new(crate::feed::FeedState::new(sc));
        let trust = Arc::new(TrustSnapshot::new(sc, own, crate::trust::Policy::default()));
        let batcher = Batcher::start(1);
        for _ in 0..3 {
            let v = batcher
                .verify(vec!["X".into()], trust.clone(), 1_750_000_000)
                .await
                .unwrap();
            assert!(v[0].detail.starts_with("prefix.missing"), "{}", v[0].detail);
        }
        assert_eq!(batcher.inline_count(), 3);
        assert_eq!(batcher.counts(), (3, 3));
        // Two codes: queued for a verifier thread, one batch.
        let v = batcher
            .verify(
                vec![String::new(), "X".into()],
                trust.clone(),
                1_750_000_000,
            )
            .await
            .unwrap();
        assert!(v[0].detail.starts_with("prefix.empty"), "{}", v[0].detail);
        assert!(v[1].detail.starts_with("prefix.missing"), "{}", v[1].detail);
        assert_eq!(batcher.inline_count(), 3);
        assert_eq!(batcher.counts(), (4, 5));
        // Nothing is left counted as being decided: the next lone call is inline again.
        assert_eq!(batcher.counts.queued.load(Ordering::Acquire), 0);
        assert_eq!(batcher.counts.inline_now.load(Ordering::Acquire), 0);
        batcher
            .verify(vec!["X".into()], trust, 1_750_000_000)
            .await
            .unwrap();
        assert_eq!(batcher.inline_count(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_jobs_get_their_own_verdicts_in_order() {
        // Malformed codes decide without keys; each job's verdicts must name its own codes'
        // faults, in its order, whatever batches the threads formed.
        let sc = crate::province::Province::from_code(510000).unwrap();
        let own = Arc::new(crate::feed::FeedState::new(sc));
        let trust = Arc::new(TrustSnapshot::new(sc, own, crate::trust::Policy::default()));
        let batcher = Arc::new(Batcher::start(2));
        let mut tasks = Vec::new();
        for j in 0..200usize {
            let (b, t) = (batcher.clone(), trust.clone());
            tasks.push(tokio::spawn(async move {
                // Job j: j % 3 + 1 codes; code k is "" (empty) when k is even, else "X" (no prefix).
                let codes: Vec<String> = (0..j % 3 + 1)
                    .map(|k| {
                        if k % 2 == 0 {
                            String::new()
                        } else {
                            "X".into()
                        }
                    })
                    .collect();
                let verdicts = b.verify(codes.clone(), t, 1_750_000_000).await.unwrap();
                (codes, verdicts)
            }));
        }
        for t in tasks {
            let (codes, verdicts) = t.await.unwrap();
            assert_eq!(verdicts.len(), codes.len());
            for (c, v) in codes.iter().zip(&verdicts) {
                let want = if c.is_empty() {
                    "prefix.empty"
                } else {
                    "prefix.missing"
                };
                assert!(v.detail.starts_with(want), "{c:?}: {}", v.detail);
            }
        }
    }
}

//! The verification batcher: Verify calls that are in flight together are decided together, so
//! their Ed25519 signatures are confirmed by one batch equation ([`crate::verify::batch`]).
//!
//! Request handlers (on the tokio runtime) queue a job and await its verdicts; a few verifier
//! threads (one per core) take what waits, up to [`MAX_CODES_PER_TAKE`] codes, and decide
//! them in one [`verify_items`] call.
//!
//! The queue is fair between callers: a job is cut into pieces of at most [`MAX_CODES_PER_TAKE`]
//! codes, queued under its caller, and a thread takes one piece from each caller with work in turn.
//! A caller who sends many large batches waits behind its own pieces; another caller's code is in
//! one of the next takes (issue 15 fault 6: one token's batches of 256 codes made every other
//! caller wait behind all of them). Nothing waits to fill a batch: a lone call is decided at once,
//! alone; batches form only when calls arrive faster than one thread decides them, which is exactly
//! when batching pays. The CPU-bound work stays off the runtime's threads, which keep serving
//! connections meanwhile.
//!
//! At low load a call of one code is decided inline, on the runtime's thread: when nothing else
//! is being decided and the recent decisions held fewer than [`INLINE_BELOW_MEAN`] codes on
//! average. It saves the handoff to a sleeping thread and the wake-up back. Under load the mean
//! rises with the batches and calls queue: decided alone, they would each cost a single strict
//! check, dearer than a batched signature (figures: BENCHMARKS.md, "Batch verification").

use crate::lock::Locked;
use crate::UnixTime;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::oneshot;

use super::error::ApiError;
use crate::trust::TrustSnapshot;
use crate::verify::batch::{verify_items, Item, MAX_SIGNATURES_PER_EQUATION};
use crate::verify::Verdict;

/// Most codes one verifier thread takes from the queue at once, and most codes in one piece of
/// a job. A quarter of an equation's worth: a batch of 16 costs about as much per signature as
/// one of 64 (BENCHMARKS.md, "Batch verification"), when the queue is long every thread gets
/// a share instead of the first taking it all, and a call that arrives while both threads are
/// busy waits for a shorter batch.
pub(crate) const MAX_CODES_PER_TAKE: usize = MAX_SIGNATURES_PER_EQUATION / 4;

/// Pieces that may wait in the queue (each of at most [`MAX_CODES_PER_TAKE`] codes). The
/// limits per caller and node-wide keep it far from full; a full queue makes the caller decide
/// its codes itself, never fail.
const QUEUE: usize = 4096;

/// Codes to decide by one snapshot at one time, and where their verdicts go.
struct Job {
    codes: Vec<String>,
    trust: Arc<TrustSnapshot>,
    /// The decision time.
    now: UnixTime,
    /// Verdicts as the pieces are decided, and the reply, sent with the last.
    done: Mutex<Done>,
}

struct Done {
    verdicts: Vec<Option<Verdict>>,
    /// Pieces not decided yet.
    pieces_left: usize,
    /// Taken when answered (or dropped, when a decision failed: the caller gets an error).
    reply: Option<oneshot::Sender<Vec<Verdict>>>,
}

/// Codes `start..end` of a job.
struct Piece {
    job: Arc<Job>,
    start: usize,
    end: usize,
}

/// Waiting pieces, per caller, taken in turn.
#[derive(Default)]
struct FairQueue {
    /// Callers with waiting pieces, in the order of their next turn.
    turns: VecDeque<String>,
    /// Each caller's waiting pieces, oldest first.
    waiting: HashMap<String, VecDeque<Piece>>,
    /// Pieces waiting, all callers.
    pieces: usize,
    /// No more jobs come: threads exit once the queue is empty.
    closed: bool,
}

impl FairQueue {
    /// Queues `job` cut into pieces under `who`.
    fn push(&mut self, who: &str, job: &Arc<Job>) {
        let n = job.codes.len();
        let queue = match self.waiting.get_mut(who) {
            Some(q) => q,
            None => {
                self.turns.push_back(who.to_string());
                self.waiting.entry(who.to_string()).or_default()
            }
        };
        for start in (0..n).step_by(MAX_CODES_PER_TAKE) {
            queue.push_back(Piece {
                job: job.clone(),
                start,
                end: (start + MAX_CODES_PER_TAKE).min(n),
            });
            self.pieces += 1;
        }
    }

    /// Up to `max` codes (at least one piece): one piece from each caller in turn.
    fn take(&mut self, max: usize) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut codes = 0;
        while codes < max {
            let Some(who) = self.turns.pop_front() else {
                break;
            };
            let Some(queue) = self.waiting.get_mut(&who) else {
                continue;
            };
            if let Some(piece) = queue.pop_front() {
                codes += piece.end - piece.start;
                self.pieces -= 1;
                out.push(piece);
            }
            if queue.is_empty() {
                self.waiting.remove(&who);
            } else {
                self.turns.push_back(who);
            }
        }
        out
    }
}

/// The queue and the condition its threads wait on.
type Shared = (Mutex<FairQueue>, Condvar);

/// The queue and its verifier threads. Dropping it closes the queue; the threads then finish
/// the jobs queued and exit.
pub(crate) struct Batcher {
    queue: Arc<Shared>,
    counts: Arc<Counts>,
}

impl Drop for Batcher {
    fn drop(&mut self) {
        let (queue, ready) = &*self.queue;
        queue.locked().closed = true;
        ready.notify_all();
    }
}

/// What was decided (for the metrics), what is being decided, and how large decisions are
/// lately (for the choice to decide inline).
struct Counts {
    /// Decisions: batches of the verifier threads, and inline calls (a batch of one each).
    batches: AtomicU64,
    /// Codes in them.
    codes: AtomicU64,
    /// Calls decided inline.
    inline: AtomicU64,
    /// Jobs queued or being decided, and calls deciding inline.
    busy: AtomicU64,
    /// Codes per decision, moving mean (each decision weighs 1/8), in sixteenths.
    mean_x16: AtomicU64,
}

/// Inline decisions need recent decisions of fewer codes than this on average.
const INLINE_BELOW_MEAN: u64 = 2;

impl Counts {
    fn new() -> Counts {
        Counts {
            batches: AtomicU64::new(0),
            codes: AtomicU64::new(0),
            inline: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            mean_x16: AtomicU64::new(16),
        }
    }

    /// Counts a decision of `codes` codes.
    fn decided(&self, codes: usize) {
        let codes = codes as u64;
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.codes.fetch_add(codes, Ordering::Relaxed);
        let _ = self
            .mean_x16
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                Some((m * 7 + codes * 16) / 8)
            });
    }

    /// Whether decisions lately were small enough for a lone call to be decided inline.
    fn quiet(&self) -> bool {
        self.mean_x16.load(Ordering::Relaxed) < INLINE_BELOW_MEAN * 16
    }
}

impl Batcher {
    /// Starts `threads` verifier threads (at least one).
    pub(crate) fn start(threads: usize) -> Batcher {
        let queue: Arc<Shared> = Arc::default();
        let counts = Arc::new(Counts::new());
        for i in 0..threads.max(1) {
            let (queue, counts) = (queue.clone(), counts.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("hcmr-verify-{i}"))
                .spawn(move || work(&queue, &counts));
            if let Err(e) = spawned {
                // Fewer threads only means less parallelism; with none, callers decide inline.
                tracing::error!(error = %e, "cannot start a verifier thread");
            }
        }
        Batcher { queue, counts }
    }

    /// Calls decided inline since the start.
    pub(crate) fn inline_count(&self) -> u64 {
        self.counts.inline.load(Ordering::Relaxed)
    }

    /// Decisions since the start (batches of the verifier threads, and calls decided inline,
    /// each a batch of its own), and the codes in them.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.counts.batches.load(Ordering::Relaxed),
            self.counts.codes.load(Ordering::Relaxed),
        )
    }

    /// Decides `codes` of caller `who` by `trust` at `now`,
    /// batched with whatever else is in flight, taking turns with other callers; verdicts in the
    /// order of `codes`.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the decision panicked (a bug; the thread logs it and lives on).
    pub(crate) async fn verify(
        &self,
        who: &str,
        codes: Vec<String>,
        trust: Arc<TrustSnapshot>,
        now: UnixTime,
    ) -> Result<Vec<Verdict>, ApiError> {
        let counts = &self.counts;
        if codes.len() == 1
            && counts.quiet()
            && counts
                .busy
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let items = [Item {
                code: &codes[0],
                trust: &trust,
                now,
            }];
            let decided =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify_items(&items)));
            counts.busy.fetch_sub(1, Ordering::AcqRel);
            counts.inline.fetch_add(1, Ordering::Relaxed);
            counts.decided(1);
            return decided.map_err(|_| {
                tracing::error!("the verification decision panicked");
                ApiError::Internal("the verification decision failed")
            });
        }
        let (reply, answer) = oneshot::channel();
        let n = codes.len();
        let job = Arc::new(Job {
            done: Mutex::new(Done {
                verdicts: (0..n).map(|_| None).collect(),
                pieces_left: n.div_ceil(MAX_CODES_PER_TAKE),
                reply: Some(reply),
            }),
            codes,
            trust,
            now,
        });
        {
            let (queue, ready) = &*self.queue;
            let mut q = queue.locked();
            if n == 0 || q.closed || q.pieces + n.div_ceil(MAX_CODES_PER_TAKE) > QUEUE {
                drop(q);
                return Ok(decide(&job));
            }
            counts.busy.fetch_add(1, Ordering::AcqRel);
            q.push(who, &job);
            drop(q);
            ready.notify_one();
        }
        answer
            .await
            .map_err(|_| ApiError::Internal("the verifier thread failed"))
    }
}

fn decide(job: &Job) -> Vec<Verdict> {
    let items: Vec<Item<'_>> = job
        .codes
        .iter()
        .map(|code| Item {
            code,
            trust: &job.trust,
            now: job.now,
        })
        .collect();
    verify_items(&items)
}

/// A verifier thread: take what waits (callers in turn), decide it in one call, answer each job
/// whose last piece it was.
fn work(shared: &Shared, counts: &Counts) {
    let (queue, ready) = shared;
    loop {
        let pieces = {
            let mut q = queue.locked();
            loop {
                if q.pieces > 0 {
                    break q.take(MAX_CODES_PER_TAKE);
                }
                if q.closed {
                    return;
                }
                q = ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let items: Vec<Item<'_>> = pieces
            .iter()
            .flat_map(|p| {
                p.job.codes[p.start..p.end].iter().map(|code| Item {
                    code,
                    trust: &p.job.trust,
                    now: p.job.now,
                })
            })
            .collect();
        counts.decided(items.len());
        let decided =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify_items(&items)));
        drop(items);
        let Ok(decided) = decided else {
            // The replies drop unanswered: each caller gets ApiError::Internal.
            tracing::error!(pieces = pieces.len(), "the verification decision panicked");
            for p in &pieces {
                let mut done = p.job.done.locked();
                if done.reply.take().is_some() {
                    counts.busy.fetch_sub(1, Ordering::AcqRel);
                }
            }
            continue;
        };
        let mut verdicts = decided.into_iter();
        for p in pieces {
            let mut done = p.job.done.locked();
            for (slot, v) in done.verdicts[p.start..p.end]
                .iter_mut()
                .zip(verdicts.by_ref())
            {
                *slot = Some(v);
            }
            done.pieces_left -= 1;
            if done.pieces_left == 0 {
                if let Some(reply) = done.reply.take() {
                    counts.busy.fetch_sub(1, Ordering::AcqRel);
                    let all: Option<Vec<Verdict>> = done.verdicts.drain(..).collect();
                    // The caller may have gone (a cancelled request): nothing to answer then.
                    if let Some(all) = all {
                        let _ = reply.send(all);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lone(batcher: &Batcher, trust: &Arc<TrustSnapshot>) {
        let v = batcher
            .verify(
                "a",
                vec!["X".into()],
                trust.clone(),
                UnixTime::from_secs(1_750_000_000),
            )
            .await
            .unwrap();
        assert!(v[0].detail.starts_with("prefix.missing"), "{}", v[0].detail);
    }

    #[tokio::test]
    async fn lone_calls_are_decided_inline_only_while_decisions_are_small() {
        let sc = crate::province::Province::from_code(510000).unwrap();
        let own = Arc::new(crate::feed::FeedState::new(sc));
        let trust = Arc::new(TrustSnapshot::new(sc, own, crate::trust::Policy::default()));
        let batcher = Batcher::start(1);
        for _ in 0..3 {
            lone(&batcher, &trust).await;
        }
        assert_eq!(batcher.inline_count(), 3);
        assert_eq!(batcher.counts(), (3, 3));
        // Two codes go to a verifier thread: one batch, verdicts in order.
        let v = batcher
            .verify(
                "a",
                vec![String::new(), "X".into()],
                trust.clone(),
                UnixTime::from_secs(1_750_000_000),
            )
            .await
            .unwrap();
        assert!(v[0].detail.starts_with("prefix.empty"), "{}", v[0].detail);
        assert!(v[1].detail.starts_with("prefix.missing"), "{}", v[1].detail);
        assert_eq!((batcher.inline_count(), batcher.counts()), (3, (4, 5)));
        // After large batches (load), a lone call queues too, until the mean falls under 2.
        for _ in 0..4 {
            batcher.counts.decided(16);
        }
        lone(&batcher, &trust).await;
        assert_eq!(batcher.inline_count(), 3, "queued while the mean is high");
        for _ in 0..40 {
            lone(&batcher, &trust).await;
        }
        assert!(
            batcher.inline_count() > 3,
            "inline again once decisions are small"
        );
        assert_eq!(batcher.counts.busy.load(Ordering::Acquire), 0);
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
                let who = format!("caller {}", j % 4);
                let verdicts = b
                    .verify(&who, codes.clone(), t, UnixTime::from_secs(1_750_000_000))
                    .await
                    .unwrap();
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

    fn job(n: usize) -> Arc<Job> {
        let sc = crate::province::Province::from_code(510000).unwrap();
        let own = Arc::new(crate::feed::FeedState::new(sc));
        Arc::new(Job {
            codes: vec!["X".to_string(); n],
            trust: Arc::new(TrustSnapshot::new(sc, own, crate::trust::Policy::default())),
            now: UnixTime::from_secs(1_750_000_000),
            done: Mutex::new(Done {
                verdicts: Vec::new(),
                pieces_left: 0,
                reply: None,
            }),
        })
    }

    /// Issue 15 fault 6: a caller with eight batches of 256 codes queued does not make a caller
    /// who comes after wait behind them: each take holds at most one piece of 16 codes per
    /// caller, callers in turn, so the second caller's code is in the second take (with one
    /// queue in arrival order, it was behind 2,048 codes).
    #[test]
    fn callers_take_turns_in_the_queue() {
        let mut q = FairQueue::default();
        for _ in 0..8 {
            q.push("caller flood", &job(256));
        }
        q.push("caller gate", &job(1));
        assert_eq!(q.pieces, 8 * 16 + 1);
        let first = q.take(MAX_CODES_PER_TAKE);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].end - first[0].start, 16, "one piece of the flood");
        let second = q.take(MAX_CODES_PER_TAKE);
        assert_eq!(
            second.iter().map(|p| p.end - p.start).collect::<Vec<_>>(),
            [1, 16],
            "the gate's code, then the flood's next piece"
        );
        let mut rest = 0;
        while q.pieces > 0 {
            rest += q.take(MAX_CODES_PER_TAKE).len();
        }
        assert_eq!(rest, 8 * 16 - 2);
        assert!(q.turns.is_empty() && q.waiting.is_empty());
    }

    /// A job cut into pieces gets its verdicts back whole and in order, whatever batches the
    /// pieces were decided in.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_job_is_answered_whole_in_order() {
        let sc = crate::province::Province::from_code(510000).unwrap();
        let own = Arc::new(crate::feed::FeedState::new(sc));
        let trust = Arc::new(TrustSnapshot::new(sc, own, crate::trust::Policy::default()));
        let batcher = Batcher::start(2);
        let codes: Vec<String> = (0..100)
            .map(|k| {
                if k % 3 == 0 {
                    String::new()
                } else {
                    "X".into()
                }
            })
            .collect();
        let verdicts = batcher
            .verify(
                "caller a",
                codes.clone(),
                trust,
                UnixTime::from_secs(1_750_000_000),
            )
            .await
            .unwrap();
        assert_eq!(verdicts.len(), 100);
        for (c, v) in codes.iter().zip(&verdicts) {
            let want = if c.is_empty() {
                "prefix.empty"
            } else {
                "prefix.missing"
            };
            assert!(v.detail.starts_with(want), "{c:?}: {}", v.detail);
        }
        assert_eq!(batcher.counts.busy.load(Ordering::Acquire), 0);
    }
}

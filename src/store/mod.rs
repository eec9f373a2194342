//! The node's sled database and its typed records.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `b"province"` | GB/T 2260 code, 6 ASCII digits |
//! | `meta` | `b"instance"` | a random id of the data folder, 16 hex digits (a verify replica's `instance`) |
//! | `feed` | seq (u64 big-endian) | this node's trust feed: [`FeedEntry::to_record`] |
//! | `peer_feeds` | province (u32 BE) ‖ seq (u64 BE) | peers' feeds as synced: [`FeedEntry::to_record`] |
//! | `sync` | province (u32 BE) | last successful sync of that peer: u64 BE seconds |
//! | `agreements` | id (16 bytes) ‖ version (u32 big-endian) | [`SignedAgreement::to_record`] |
//! | `terminations` | id (16 bytes) | [`Termination::to_record`] |
//! | `audit` | time (u64 BE) ‖ id (u64 BE) | the records of that second written together: [`AuditRecord::pack`] (older values: one [`AuditRecord::to_record`]) |
//! | `peers` | province (u32 big-endian) | CBOR `[endpoint: tstr, updated_at: uint]` |
//! | `proposals` | id (16 bytes) ‖ version (u32 BE) | a received proposal's `proposer_endpoint` (UTF-8): it becomes the peer's address only when the operator accepts |
//! | `issued` | cti (16 bytes) | CBOR `[iat, exp, status, status_valid_until, subject_hash: bstr .size 8]` |
//! | `issued_expiry` | exp (u64 BE) ‖ cti (16 bytes) | empty: the issued-code log by expiry, for retention |
//! | `callers` | name (UTF-8) | [`Caller::to_record`]: roles and SHA-256 of the token, never the token |
//! | `access` | time (u64 BE) ‖ kind id (8 bytes; older records: a unique id) | refused calls of one kind in one second: [`AccessDenial::to_record`] |
//! | `notice_outbox` | id (16 bytes) ‖ outcome (1 withdrawn, 2 rejected) | a withdrawal or rejection the other party has not taken yet: [`UndeliveredNotice::to_record`]; retried every sync interval and at `hcmr sync` |
//! | `manifests_seen` | trip id (8 bytes) | the highest version of that trip seen here with a verified signature: u64 BE (stored with the audit batch) |
//! | `manifests_seen_by_time` | first stored (u64 BE) ‖ trip id | empty: the seen trips by time, for retention |
//! | `manifests_checked` | trip id (8 bytes) | that version's manifest string (`HCMRT1:...`, UTF-8), kept for traces (docs/tracing.md section 3; stored with the audit batch) |
//! | `trip_outbox` | seq (u64 BE) | a signed trip record (check report, handover receipt or refusal) for another province's node, until it acknowledges: [`OutboxEntry`] (src/store/outbox.rs) |
//! | `trip_outbox_dead` | seq (u64 BE) | a trip record its node refused for good, with the refusal, for operators |
//! | `match_attempts` | hashed code id or subject hash (16 bytes) | identity-match attempts in the current window: count (u32 BE) ‖ window start (u64 BE seconds) |
//! | `arrivals` | trip id (8 bytes) | a trip checked in (or refused) here as its destination: [`ArrivalRecord`] (origin, version, manifest string, each seat's outcome, the signed receipt or refusal, its outbox sequence number) |
//! | `arrivals_by_time` | checked_in_at (u64 BE) ‖ trip id (8 bytes) | empty: the arrivals by check-in time, for ListArrivals newest first |
//! | `trips` | trip id (8 bytes) | a trip of this origin: [`TripRecord`] as CBOR (details, people by seat with issuer, status as verified, cti, `iat`, status end, keyed subject hash, crew, boarding time and the masked subject; removals) |
//! | `trips_created` | created (u64 BE) ‖ trip id | empty: trips by creation, for ListManifests |
//! | `trip_versions` | trip id ‖ version (u64 BE) | the sealed manifest string (`HCMRT1:...`, UTF-8) |
//! | `trip_holders` | issuer (u32 BE) ‖ keyed subject hash (8 bytes) | trip id: the trip holding that person, while not cancelled or handed over (a reader checks the trip still holds them) |
//! | `trips_due` | planned arrival (u64 BE) ‖ trip id | empty: sealed trips without a handover, for the overdue check |
//! | `trip_reports` | trip id ‖ checked_at (u64 BE) ‖ SHA-256 of the report (first 8 bytes) | a check report received: [`StoredReport`] as CBOR, with the signed bytes |
//! | `trip_handovers` | trip id | the handover receipt or refusal received (the first; a different second one is refused): [`StoredHandover`] as CBOR, with the signed bytes |
//! | `trip_events` | trip id ‖ at (u64 BE) ‖ id (u64 BE; for a received event: the first 8 bytes of its SHA-256) | a signed trip event (docs/tracing.md section 2: created, boarded, removed, cancelled at the origin; arrived at the destination, and received from it at the origin): its COSE_Sign1 bytes |
//! | `exposure_notices` | notice id (8 bytes) | an exposure notice received for a resident (docs/tracing.md section 5): [`StoredNotice`] (the signed bytes, received_at, the resident's keyed subject hash when the issued-code log held the code) |
//! | `exposure_by_time` | received_at (u64 BE) ‖ notice id | empty: the notices by receipt, for ListExposureNotices newest first and retention |
//! | `replicas` | name (UTF-8) | a verify replica enrolled at this primary: [`EnrolledReplica`] as CBOR `[spki_sha256: bstr .size 32, enrolled_at: uint, audit_records: uint]` |
//! | `replica_audit_marks` | replica name (UTF-8) ‖ 0x00 ‖ instance (16 hex digits) | at a primary: the last sequence number of that replica's audit records stored here (u64 BE), written in the same transaction as the records |
//! | `audit_outbox` | seq (u64 BE), and the empty key | at a verify replica: an audit record made here and not yet acknowledged by the primary ([`AuditRecord::to_record`]); under the empty key, the next sequence number (u64 BE), which outlives the records |
//!
//! The methods of [`Store`] are grouped by tree family: `feeds` (feed, peer_feeds, sync),
//! `agreements` (agreements, terminations, proposals, peers, notice_outbox), `issued` (issued,
//! issued_expiry), `audit`, `manifests_seen`, `access` (access, match_attempts), `callers`,
//! `outbox` (trip_outbox, trip_outbox_dead), `arrivals` (arrivals, arrivals_by_time), `trips`
//! (trips, trips_created, trip_versions, trip_holders, trips_due, trip_reports, trip_handovers,
//! trip_events), `exposure` (exposure_notices, exposure_by_time), `replicas` (replicas,
//! replica_audit_marks, audit_outbox), and `export` (the
//! backup's copy of every tree and the restore's import); this file holds the database, the
//! write gate, group commit and `meta`.
//!
//! The issued-code log holds no name and no document number: only the keyed subject hash.
//! Every write method flushes before returning (group commit: concurrent writers share flushes),
//! so an acknowledged change survives a crash of the process; docs/durability.md has the
//! contract.
//!
//! A write gate makes copies consistent while the node runs: every write method holds its shared
//! side from its first insert to the end of its flush (one private helper, `write`, does both),
//! and [`Store::export`] (the backup) holds the exclusive side while it reads every tree, so a
//! copy never holds half a write and holds every write acknowledged before it started.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

use crate::agreement::AgreementError;
use crate::feed::FeedError;
use crate::lock::Locked;
use crate::province::Province;
use crate::UnixTime;

#[cfg(doc)]
use crate::{
    agreement::{SignedAgreement, Termination},
    audit::{AccessDenial, AuditRecord},
    callers::Caller,
    feed::FeedEntry,
};

mod access;
mod agreements;
mod arrivals;
mod audit;
mod callers;
mod export;
mod exposure;
mod feeds;
mod issued;
mod manifests_seen;
mod outbox;
mod replicas;
#[cfg(test)]
mod tests;
mod trips;

pub use access::{DENIAL_KEY_LEN, MATCH_PRUNE_EVERY};
pub use agreements::UndeliveredNotice;
pub use arrivals::{ArrivalPage, ArrivalRecord, SeatOutcome, SignedHandover};
pub use audit::AuditCursor;
pub use export::ExportItem;
pub use exposure::StoredNotice;
pub use issued::IssuedRecord;
pub use outbox::{OutboxEntry, TripRecordKind, MAX_TRIP_RECORD_BYTES};
pub use replicas::{EnrolledReplica, TakenAudit};
pub use trips::{NewEvent, Removal, Stored, StoredHandover, StoredReport, TripEntry, TripRecord};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O).
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    /// Another process holds the database.
    #[error(
        "database {0} is locked by another process: is another `hcmr serve` running on this node?"
    )]
    Locked(String),
    /// A record does not decode: the data directory is damaged or from another program.
    #[error("database record in tree {tree} is corrupt: {detail}")]
    Corrupt {
        /// The tree, so an operator knows which data a restore must bring back.
        tree: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl From<FeedError> for StoreError {
    fn from(e: FeedError) -> Self {
        corrupt("feed", e.to_string())
    }
}

impl From<AgreementError> for StoreError {
    fn from(e: AgreementError) -> Self {
        corrupt("agreements", e.to_string())
    }
}

/// The node's database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    feed: sled::Tree,
    peer_feeds: sled::Tree,
    sync: sled::Tree,
    agreements: sled::Tree,
    terminations: sled::Tree,
    audit: sled::Tree,
    peers: sled::Tree,
    proposals: sled::Tree,
    issued: sled::Tree,
    issued_expiry: sled::Tree,
    callers: sled::Tree,
    replicas: sled::Tree,
    replica_audit_marks: sled::Tree,
    audit_outbox: sled::Tree,
    access: sled::Tree,
    match_attempts: sled::Tree,
    notice_outbox: sled::Tree,
    manifests_seen: sled::Tree,
    manifests_seen_by_time: sled::Tree,
    /// Trip versions seen by checks and not yet stored in `manifests_seen`.
    manifests_pending: Arc<manifests_seen::PendingVersions>,
    manifests_checked: sled::Tree,
    /// Manifest strings checked and not yet stored in `manifests_checked`.
    manifests_text_pending: Arc<manifests_seen::PendingTexts>,
    arrivals: sled::Tree,
    arrivals_by_time: sled::Tree,
    trips: sled::Tree,
    trips_created: sled::Tree,
    trip_versions: sled::Tree,
    trip_holders: sled::Tree,
    trips_due: sled::Tree,
    trip_reports: sled::Tree,
    trip_handovers: sled::Tree,
    trip_events: sled::Tree,
    /// One trip workflow's read-check-write at a time ([`Store::lock_trips`]).
    trips_lock: Arc<tokio::sync::Mutex<()>>,
    trip_outbox: sled::Tree,
    trip_outbox_dead: sled::Tree,
    exposure_notices: sled::Tree,
    exposure_by_time: sled::Tree,
    /// Identity-match attempts counted since windows that ended were last removed.
    match_counted: Arc<AtomicU64>,
    commit: Arc<GroupCommit>,
    /// The write gate: shared by write methods (insert to flush), exclusive for [`Store::export`].
    gate: Arc<tokio::sync::RwLock<()>>,
    /// One [`Store::append_denials`] at a time (it adds to records it reads).
    denials_lock: Arc<tokio::sync::Mutex<()>>,
    /// One read-modify-write of an arrival at a time ([`Store::lock_arrivals`]).
    arrivals_lock: Arc<tokio::sync::Mutex<()>>,
}

/// What one pruning step removed ([`Store::prune_audit`] and the like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Records removed.
    pub records: u64,
    /// Whether the step stopped at its bound, so more may be due.
    pub more: bool,
}

/// Group-commit state shared by the clones of a [`Store`].
#[derive(Debug, Default)]
struct GroupCommit {
    /// Tickets handed out (one per flush request).
    requested: AtomicU64,
    /// Highest ticket known durable.
    durable: AtomicU64,
    /// One flush at a time.
    lock: tokio::sync::Mutex<()>,
    /// Flushes done.
    flushes: AtomicU64,
    /// Injected failure (tests).
    fail_writes: std::sync::Mutex<Option<String>>,
}

fn corrupt(tree: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        tree,
        detail: detail.into(),
    }
}

/// Runs `f` on a blocking thread (sled's calls block), mapping a failed thread to an I/O error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    blocking_or::<T, StoreError>(f).await
}

/// [`blocking`] for a closure with its own error type (the visitor of [`Store::export`]), which
/// a failed thread's [`StoreError`] converts into.
async fn blocking_or<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        StoreError::Sled(sled::Error::Io(std::io::Error::other(format!(
            "a database thread failed: {e}"
        ))))
    })?
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process holds the database; [`StoreError::Sled`].
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        // No background flusher: every write method flushes before it returns, and a flusher
        // thread would keep the database (and its lock) alive after the last handle is dropped,
        // so a restart in the same process could find it still locked.
        let config = sled::Config::new().path(dir).flush_every_ms(None);
        let locked = |e: &sled::Error| {
            matches!(e, sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    // sled 0.34 reports a held lock in the message of an I/O error.
                    || io.to_string().contains("could not acquire lock"))
        };
        // A lock released a moment ago (a node of this process just stopped) is retried for up
        // to a second; a lock another process holds is reported.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(e) if locked(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) if locked(&e) => return Err(StoreError::Locked(dir.display().to_string())),
                Err(e) => return Err(StoreError::Sled(e)),
            }
        };
        let store = Store {
            meta: db.open_tree("meta")?,
            feed: db.open_tree("feed")?,
            peer_feeds: db.open_tree("peer_feeds")?,
            sync: db.open_tree("sync")?,
            agreements: db.open_tree("agreements")?,
            terminations: db.open_tree("terminations")?,
            audit: db.open_tree("audit")?,
            peers: db.open_tree("peers")?,
            proposals: db.open_tree("proposals")?,
            issued: db.open_tree("issued")?,
            issued_expiry: db.open_tree("issued_expiry")?,
            callers: db.open_tree("callers")?,
            replicas: db.open_tree("replicas")?,
            replica_audit_marks: db.open_tree("replica_audit_marks")?,
            audit_outbox: db.open_tree("audit_outbox")?,
            access: db.open_tree("access")?,
            match_attempts: db.open_tree("match_attempts")?,
            notice_outbox: db.open_tree("notice_outbox")?,
            manifests_seen: db.open_tree("manifests_seen")?,
            manifests_seen_by_time: db.open_tree("manifests_seen_by_time")?,
            manifests_pending: Arc::default(),
            manifests_checked: db.open_tree("manifests_checked")?,
            manifests_text_pending: Arc::default(),
            arrivals: db.open_tree("arrivals")?,
            arrivals_by_time: db.open_tree("arrivals_by_time")?,
            trips: db.open_tree("trips")?,
            trips_created: db.open_tree("trips_created")?,
            trip_versions: db.open_tree("trip_versions")?,
            trip_holders: db.open_tree("trip_holders")?,
            trips_due: db.open_tree("trips_due")?,
            trip_reports: db.open_tree("trip_reports")?,
            trip_handovers: db.open_tree("trip_handovers")?,
            trip_events: db.open_tree("trip_events")?,
            trips_lock: Arc::default(),
            trip_outbox: db.open_tree("trip_outbox")?,
            trip_outbox_dead: db.open_tree("trip_outbox_dead")?,
            exposure_notices: db.open_tree("exposure_notices")?,
            exposure_by_time: db.open_tree("exposure_by_time")?,
            match_counted: Arc::default(),
            commit: Arc::default(),
            gate: Arc::default(),
            denials_lock: Arc::default(),
            arrivals_lock: Arc::default(),
            db,
        };
        store.index_issued_by_expiry()?;
        Ok(store)
    }

    /// Makes all writes so far durable (sled flush), with group commit: concurrent callers share
    /// flushes. A caller's writes were made before it takes its ticket; a flush that starts (reads
    /// the latest ticket) after that covers them, so a caller whose ticket is already covered
    /// returns without flushing again.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn flush(&self) -> Result<(), StoreError> {
        let c = &self.commit;
        let ticket = c.requested.fetch_add(1, SeqCst) + 1;
        let _one_flusher = c.lock.lock().await;
        if c.durable.load(SeqCst) >= ticket {
            return Ok(());
        }
        let target = c.requested.load(SeqCst);
        if let Some(e) = c.fail_writes.locked().as_ref() {
            return Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(
                e.clone(),
            ))));
        }
        self.db.flush_async().await?;
        c.durable.fetch_max(target, SeqCst);
        c.flushes.fetch_add(1, SeqCst);
        Ok(())
    }

    /// How many flushes reached the disk since the store was opened (group commit makes this
    /// smaller than the number of acknowledged writes).
    pub fn flush_count(&self) -> u64 {
        self.commit.flushes.load(SeqCst)
    }

    /// Fault injection for tests of storage failures: while set, every flush fails with this
    /// message (as a full or failing disk would), so writes are not acknowledged.
    #[doc(hidden)]
    pub fn inject_flush_failure(&self, message: Option<&str>) {
        *self.commit.fail_writes.locked() = message.map(str::to_string);
    }

    /// Size of the database on disk, in bytes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// The shape of every write method: `apply` (its inserts and removes) runs under the shared
    /// side of the write gate, and the method returns only once a flush covers them, so a copy
    /// ([`Store::export`]) never holds half a write and an acknowledged write survives a crash.
    async fn write<T>(
        &self,
        apply: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.write_or_undo(apply, drop).await
    }

    /// [`Store::write`] that calls `undo` with what `apply` returned when the flush fails: for
    /// writes that must not stay in memory unacknowledged, where a later flush would make them
    /// durable (a feed entry) or a retry would see them (a caller).
    async fn write_or_undo<T>(
        &self,
        apply: impl Future<Output = Result<T, StoreError>>,
        undo: impl FnOnce(T),
    ) -> Result<T, StoreError> {
        let _gate = self.gate.read().await;
        let done = apply.await?;
        if let Err(e) = self.flush().await {
            undo(done);
            return Err(e);
        }
        Ok(done)
    }

    /// Writes that the caller flushes with a later batch (audit and refused-call records):
    /// `apply` runs under the shared side of the write gate, with no flush.
    async fn write_unflushed<T>(
        &self,
        apply: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let _gate = self.gate.read().await;
        apply.await
    }

    /// The oldest values of a tree keyed by time (u64 BE) ‖ id, before `before`, at most `max`, in one batch on a blocking thread: see
    /// [`Store::prune_audit`]. `records` tells how many records a value holds.
    async fn prune_by_time(
        &self,
        tree: sled::Tree,
        before: UnixTime,
        max: usize,
        records: impl Fn(&[u8]) -> Result<u64, StoreError> + Send + 'static,
    ) -> Result<Pruned, StoreError> {
        self.write(blocking(move || {
            let mut batch = sled::Batch::default();
            let (mut values, mut removed) = (0usize, 0u64);
            for r in tree.range(..before.secs().to_be_bytes()).take(max) {
                let (k, v) = r?;
                removed += records(&v)?;
                batch.remove(k);
                values += 1;
            }
            tree.apply_batch(batch)?;
            Ok(Pruned {
                records: removed,
                more: values == max,
            })
        }))
        .await
    }

    /// The province recorded at `init`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when missing or invalid.
    pub fn province(&self) -> Result<Province, StoreError> {
        let v = self
            .meta
            .get(b"province")?
            .ok_or_else(|| corrupt("meta", "no province recorded (run hcmr init)"))?;
        std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("meta", "province is not a GB/T 2260 code"))
    }

    /// A random id of this data folder (16 lower-case hex digits), made and flushed at its
    /// first call (when a node opens, before anything else writes): a verify replica's
    /// `instance`, which keeps apart the audit sequences of replicas sharing one enrolled
    /// certificate.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn instance_id(&self) -> Result<String, StoreError> {
        if let Some(v) = self.meta.get(b"instance")? {
            return Ok(String::from_utf8_lossy(&v).to_string());
        }
        let id = hex::encode(rand::random::<[u8; 8]>());
        self.meta.insert(b"instance", id.as_bytes())?;
        self.db.flush()?;
        Ok(id)
    }

    /// Records the node's province (at `init`).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn set_province(&self, p: Province) -> Result<(), StoreError> {
        self.write(async {
            self.meta.insert(b"province", p.to_string().as_bytes())?;
            Ok(())
        })
        .await
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

//! The node's sled database and its typed records.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `b"province"` | GB/T 2260 code, 6 ASCII digits |
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
//! | `match_attempts` | hashed code id or subject hash (16 bytes) | identity-match attempts in the current window: count (u32 BE) ‖ window start (u64 BE seconds) |
//!
//! The issued-code log holds no name and no document number: only the keyed subject hash.
//! Every write method flushes before returning (group commit: concurrent writers share flushes),
//! so an acknowledged change survives a crash of the process; docs/durability.md has the
//! contract.
//!
//! A write gate makes copies consistent while the node runs: every write method holds its shared
//! side from its first insert to the end of its flush, and [`Store::export`] (the backup) holds
//! the exclusive side while it reads every tree, so a copy never holds half a write and holds
//! every write acknowledged before it started.

use crate::cbor::{as_u64, uint};
use crate::code::Cti;
use crate::lock::Locked;
use std::path::Path;

use ciborium::value::Value;

use crate::agreement::{
    AgreementError, AgreementId, ProposalNotice, ProposalOutcome, SignedAgreement, Termination,
};
use crate::audit::{AccessDenial, AuditRecord};
use crate::callers::Caller;
use crate::feed::{FeedEntry, FeedError};
use crate::identity::SubjectHash;
use crate::province::Province;

/// Most audit records stored in one value (see [`Store::append_audit`]): about 20 KiB.
const AUDIT_PACK: usize = 256;

/// Length of a refused-call record's key: its time (8 bytes, big-endian) and the id of its kind
/// (8 bytes; see [`Store::append_denials`]).
pub const DENIAL_KEY_LEN: usize = 16;

/// Length of an audit value's key: the time of its records (8 bytes, big-endian) and a unique
/// id (8 bytes).
const AUDIT_KEY_LEN: usize = 16;

/// Where a page of the audit log goes on ([`Store::audit_page`]): the key of a stored value of
/// audit records and the position of a record in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    /// The value's key: time (seconds since the Unix epoch, big-endian) and id.
    pub pack: [u8; AUDIT_KEY_LEN],
    /// The record's position in the value, from 0.
    pub index: u16,
}

impl AuditCursor {
    /// Length of [`AuditCursor::to_bytes`]: the key and the position (2 bytes, big-endian).
    pub const LEN: usize = AUDIT_KEY_LEN + 2;

    /// The key followed by the position, big-endian.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..AUDIT_KEY_LEN].copy_from_slice(&self.pack);
        b[AUDIT_KEY_LEN..].copy_from_slice(&self.index.to_be_bytes());
        b
    }

    /// Reads [`AuditCursor::to_bytes`]; `None` for another length.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b: &[u8; Self::LEN] = b.try_into().ok()?;
        let (pack, index) = b.split_at(AUDIT_KEY_LEN);
        Some(Self {
            pack: pack.try_into().ok()?,
            index: u16::from_be_bytes(index.try_into().ok()?),
        })
    }
}

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
        /// The tree.
        tree: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl From<FeedError> for StoreError {
    fn from(e: FeedError) -> Self {
        StoreError::Corrupt {
            tree: "feed",
            detail: e.to_string(),
        }
    }
}

impl From<AgreementError> for StoreError {
    fn from(e: AgreementError) -> Self {
        StoreError::Corrupt {
            tree: "agreements",
            detail: e.to_string(),
        }
    }
}

/// One entry of the issued-code log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRecord {
    /// Code id (`cti`), 16 bytes: the first 16 bytes of the code's Ed25519 signature
    /// ([`crate::code::HealthCode::cti`]).
    pub cti: Cti,
    /// Issued at, seconds since the Unix epoch (UTC).
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch (UTC).
    pub exp: u64,
    /// Status number as issued (1 green, 2 yellow, 3 red).
    pub status: u64,
    /// Status valid until, seconds since the Unix epoch (UTC).
    pub status_valid_until: u64,
    /// Keyed subject hash; never the document number.
    pub subject_hash: SubjectHash,
}

/// A proposal notice (withdrawal or rejection) the other party has not taken yet, with where
/// and to whom it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliveredNotice {
    /// The signed notice.
    pub notice: ProposalNotice,
    /// The other party.
    pub peer: Province,
    /// Its node's endpoint URL.
    pub endpoint: String,
    /// The keys its node's certificate must be certified by (those the proposal pins for it).
    pub keys: Vec<crate::keys::PublicKey>,
}

impl UndeliveredNotice {
    fn key(id: AgreementId, outcome: ProposalOutcome) -> [u8; 17] {
        let mut k = [0u8; 17];
        k[..16].copy_from_slice(&id.0);
        k[16] = match outcome {
            ProposalOutcome::Withdrawn => 1,
            ProposalOutcome::Rejected => 2,
        };
        k
    }

    /// Storage encoding: CBOR `[notice: bstr (ProposalNotice::to_record), peer: uint,
    /// endpoint: tstr, keys: [* bstr .size 32]]`.
    pub fn to_record(&self) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.notice.to_record()),
            uint(u64::from(self.peer.code())),
            Value::Text(self.endpoint.clone()),
            Value::Array(
                self.keys
                    .iter()
                    .map(|k| Value::Bytes(k.to_bytes().to_vec()))
                    .collect(),
            ),
        ]))
    }

    fn from_record(bytes: &[u8]) -> Result<Self, StoreError> {
        let bad = |w: &str| corrupt("notice_outbox", w);
        let Value::Array(a) = crate::cbor::decode_exact(bytes).map_err(|e| bad(&e.to_string()))?
        else {
            return Err(bad("not an array"));
        };
        let [Value::Bytes(n), Value::Integer(p), Value::Text(endpoint), Value::Array(keys)] =
            a.as_slice()
        else {
            return Err(bad("not [notice, peer, endpoint, keys]"));
        };
        let peer = u32::try_from(*p)
            .ok()
            .and_then(|c| Province::from_code(c).ok())
            .ok_or_else(|| bad("peer is not a province"))?;
        let keys = keys
            .iter()
            .map(|k| match k {
                Value::Bytes(b) => crate::keys::PublicKey::from_bytes(b).ok(),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("a key is not an Ed25519 public key"))?;
        Ok(UndeliveredNotice {
            notice: ProposalNotice::from_record(n)?,
            peer,
            endpoint: endpoint.clone(),
            keys,
        })
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
    access: sled::Tree,
    match_attempts: sled::Tree,
    notice_outbox: sled::Tree,
    /// Identity-match attempts counted since windows that ended were last removed.
    match_counted: std::sync::Arc<std::sync::atomic::AtomicU64>,
    commit: std::sync::Arc<GroupCommit>,
    /// The write gate: shared by write methods (insert to flush), exclusive for [`Store::export`].
    gate: std::sync::Arc<tokio::sync::RwLock<()>>,
    /// One [`Store::append_denials`] at a time (it adds to records it reads).
    denials_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Identity-match attempts between two removals of ended windows ([`Store::count_match_attempt`]).
pub const MATCH_PRUNE_EVERY: u64 = 4096;

/// What one pruning step removed ([`Store::prune_audit`] and the like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Records removed.
    pub records: u64,
    /// Whether the step stopped at its bound, so more may be due.
    pub more: bool,
}

/// Runs `f` on a blocking thread (sled's calls block), mapping a failed thread to an I/O error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        StoreError::Sled(sled::Error::Io(std::io::Error::other(format!(
            "a database thread failed: {e}"
        ))))
    })?
}

/// What [`Store::export`] shows its visitor, in this order: `Trees` once, then for every tree
/// (by name, in byte order) `Tree` followed by its records in key order.
#[derive(Debug)]
pub enum ExportItem<'a> {
    /// How many trees follow.
    Trees(usize),
    /// The start of the next tree: its name.
    Tree(&'a [u8]),
    /// A record of the current tree: key and value.
    Record(&'a [u8], &'a [u8]),
}

/// Group-commit state shared by the clones of a [`Store`].
#[derive(Debug, Default)]
struct GroupCommit {
    /// Tickets handed out (one per flush request).
    requested: std::sync::atomic::AtomicU64,
    /// Highest ticket known durable.
    durable: std::sync::atomic::AtomicU64,
    /// One flush at a time.
    lock: tokio::sync::Mutex<()>,
    /// Flushes done.
    flushes: std::sync::atomic::AtomicU64,
    /// Injected failure (tests).
    fail_writes: std::sync::Mutex<Option<String>>,
}

fn corrupt(tree: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        tree,
        detail: detail.into(),
    }
}

/// The id of a refused call's kind (RPC, outcome, who, remote): the first 8 bytes of SHA-256
/// over them, each followed by a zero byte, after a domain label.
fn denial_kind_id(d: &AccessDenial) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"hcmr access kind v1\0");
    for part in [&d.rpc, &d.outcome, &d.who, &d.remote] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&h.finalize()[..8]);
    id
}

/// Whether two refused-call records are of one kind in one second.
fn same_kind(a: &AccessDenial, b: &AccessDenial) -> bool {
    (a.time, &a.rpc, &a.outcome, &a.who, &a.remote)
        == (b.time, &b.rpc, &b.outcome, &b.who, &b.remote)
}

/// An entry of the issued-code log from its stored value (see the table at the top).
fn decode_issued(cti: &Cti, v: &[u8]) -> Result<IssuedRecord, StoreError> {
    let bad = || corrupt("issued", "not an issued-code record");
    let Value::Array(a) =
        crate::cbor::decode_exact(v).map_err(|e| corrupt("issued", e.to_string()))?
    else {
        return Err(bad());
    };
    let [iat, exp, status, until, Value::Bytes(h)] = a.as_slice() else {
        return Err(bad());
    };
    Ok(IssuedRecord {
        cti: *cti,
        iat: as_u64(iat).ok_or_else(bad)?,
        exp: as_u64(exp).ok_or_else(bad)?,
        status: as_u64(status).ok_or_else(bad)?,
        status_valid_until: as_u64(until).ok_or_else(bad)?,
        subject_hash: SubjectHash(h.as_slice().try_into().map_err(|_| bad())?),
    })
}

/// Key of the `issued_expiry` index: `exp` (big-endian) and the cti.
fn expiry_key(exp: u64, cti: &Cti) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&exp.to_be_bytes());
    k[8..].copy_from_slice(cti);
    k
}

fn agreement_key(id: AgreementId, version: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&id.0);
    k[16..].copy_from_slice(&version.to_be_bytes());
    k
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Sled`], e.g. when another process holds the database.
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
            access: db.open_tree("access")?,
            match_attempts: db.open_tree("match_attempts")?,
            notice_outbox: db.open_tree("notice_outbox")?,
            match_counted: std::sync::Arc::default(),
            commit: std::sync::Arc::default(),
            gate: std::sync::Arc::default(),
            denials_lock: std::sync::Arc::default(),
            db,
        };
        store.index_issued_by_expiry()?;
        Ok(store)
    }

    /// Builds the `issued_expiry` index of a database written before it existed (an empty index
    /// beside a non-empty issued-code log), once; flushed.
    fn index_issued_by_expiry(&self) -> Result<(), StoreError> {
        if !self.issued_expiry.is_empty() || self.issued.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for r in self.issued.iter() {
            let (k, v) = r?;
            let cti: Cti = k
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("issued", "a key that is not a cti"))?;
            let exp = decode_issued(&cti, &v)?.exp;
            batch.insert(expiry_key(exp, &cti).to_vec(), Vec::new());
        }
        self.issued_expiry.apply_batch(batch)?;
        self.db.flush()?;
        tracing::info!(
            entries = self.issued_expiry.len(),
            "issued-code log indexed by expiry (once, for retention)"
        );
        Ok(())
    }

    /// Makes all writes so far durable (sled flush), with group commit: concurrent callers share
    /// flushes. A caller's writes were made before it takes its ticket; a flush that starts (reads
    /// the latest ticket) after that covers them, so a caller whose ticket is already covered
    /// returns without flushing again.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn flush(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
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
        self.commit
            .flushes
            .load(std::sync::atomic::Ordering::SeqCst)
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

    /// Records the node's province (at `init`).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn set_province(&self, p: Province) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        self.meta.insert(b"province", p.to_string().as_bytes())?;
        self.flush().await
    }

    /// Appends an entry to this node's own trust feed and flushes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn append_feed(&self, e: &FeedEntry) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        self.feed.insert(e.seq().to_be_bytes(), e.to_record())?;
        if let Err(err) = self.flush().await {
            // Not acknowledged: take it back, so that a later flush cannot publish an entry the
            // node did not apply (peers would then hold a sequence number the node reuses).
            let _ = self.feed.remove(e.seq().to_be_bytes());
            return Err(err);
        }
        Ok(())
    }

    /// This node's feed entries with `seq >= from`, in order.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn feed_from(&self, from: u64) -> Result<Vec<FeedEntry>, StoreError> {
        self.feed
            .range(from.to_be_bytes()..)
            .map(|r| Ok(FeedEntry::from_record(&r?.1)?))
            .collect()
    }

    /// This node's feed entries in order, read one at a time (for a start: no list of them all).
    pub fn feed_iter(&self) -> impl Iterator<Item = Result<FeedEntry, StoreError>> {
        self.feed.iter().map(|r| Ok(FeedEntry::from_record(&r?.1)?))
    }

    /// A peer's stored feed entries in order, read one at a time.
    pub fn peer_feed_iter(
        &self,
        peer: Province,
    ) -> impl Iterator<Item = Result<FeedEntry, StoreError>> {
        self.peer_feeds
            .scan_prefix(peer.code().to_be_bytes())
            .map(|r| Ok(FeedEntry::from_record(&r?.1)?))
    }

    /// Appends entries of a peer's feed and records the sync time, then flushes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn append_peer_feed(
        &self,
        peer: Province,
        entries: &[FeedEntry],
        synced_at: u64,
    ) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        let mut batch = sled::Batch::default();
        for e in entries {
            let mut k = peer.code().to_be_bytes().to_vec();
            k.extend_from_slice(&e.seq().to_be_bytes());
            batch.insert(k, e.to_record());
        }
        self.peer_feeds.apply_batch(batch)?;
        self.sync
            .insert(peer.code().to_be_bytes(), &synced_at.to_be_bytes())?;
        self.flush().await
    }

    /// A peer's stored feed entries, in order.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn peer_feed(&self, peer: Province) -> Result<Vec<FeedEntry>, StoreError> {
        self.peer_feeds
            .scan_prefix(peer.code().to_be_bytes())
            .map(|r| Ok(FeedEntry::from_record(&r?.1)?))
            .collect()
    }

    /// Every peer with a synced feed and its last sync time (seconds since the Unix epoch).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn sync_times(&self) -> Result<Vec<(Province, u64)>, StoreError> {
        self.sync
            .iter()
            .map(|r| {
                let (k, v) = r?;
                let code = u32::from_be_bytes(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| corrupt("sync", "key length"))?,
                );
                let p = Province::from_code(code).map_err(|e| corrupt("sync", e.to_string()))?;
                let t = u64::from_be_bytes(
                    v.as_ref()
                        .try_into()
                        .map_err(|_| corrupt("sync", "value length"))?,
                );
                Ok((p, t))
            })
            .collect()
    }

    /// Stores a termination notice (replacing an earlier one of the same agreement).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_termination(&self, t: &Termination) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        self.terminations.insert(t.id.0, t.to_record())?;
        self.flush().await
    }

    /// Every stored termination notice.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn terminations(&self) -> Result<Vec<Termination>, StoreError> {
        self.terminations
            .iter()
            .map(|r| Ok(Termination::from_record(&r?.1)?))
            .collect()
    }

    /// The termination notice of agreement `id`, if any.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn termination(&self, id: AgreementId) -> Result<Option<Termination>, StoreError> {
        match self.terminations.get(id.0)? {
            None => Ok(None),
            Some(v) => Ok(Some(Termination::from_record(&v)?)),
        }
    }

    /// Keeps a notice the other party has not taken, replacing an earlier one of the same
    /// agreement and outcome.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_undelivered(&self, n: &UndeliveredNotice) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        self.notice_outbox.insert(
            UndeliveredNotice::key(n.notice.id, n.notice.outcome),
            n.to_record(),
        )?;
        self.flush().await
    }

    /// Every notice not yet taken by its peer.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn undelivered(&self) -> Result<Vec<UndeliveredNotice>, StoreError> {
        self.notice_outbox
            .iter()
            .map(|r| UndeliveredNotice::from_record(&r?.1))
            .collect()
    }

    /// Forgets an undelivered notice (taken, or refused by the peer).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn remove_undelivered(
        &self,
        id: AgreementId,
        outcome: ProposalOutcome,
    ) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        self.notice_outbox
            .remove(UndeliveredNotice::key(id, outcome))?;
        self.flush().await
    }

    /// Stores an agreement version, replacing the record of the same id and version.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_agreement(&self, a: &SignedAgreement) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        self.agreements
            .insert(agreement_key(a.body().id, a.body().version), a.to_record())?;
        self.flush().await
    }

    /// The newest stored version of agreement `id`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn agreement(&self, id: AgreementId) -> Result<Option<SignedAgreement>, StoreError> {
        match self.agreements.scan_prefix(id.0).next_back() {
            None => Ok(None),
            Some(r) => Ok(Some(SignedAgreement::from_record(&r?.1)?)),
        }
    }

    /// A stored agreement version.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn agreement_version(
        &self,
        id: AgreementId,
        version: u32,
    ) -> Result<Option<SignedAgreement>, StoreError> {
        match self.agreements.get(agreement_key(id, version))? {
            None => Ok(None),
            Some(v) => Ok(Some(SignedAgreement::from_record(&v)?)),
        }
    }

    /// Every stored agreement version.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn agreements(&self) -> Result<Vec<SignedAgreement>, StoreError> {
        self.agreements
            .iter()
            .map(|r| Ok(SignedAgreement::from_record(&r?.1)?))
            .collect()
    }

    /// Every stored version of agreement `id`, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn agreement_versions(&self, id: AgreementId) -> Result<Vec<SignedAgreement>, StoreError> {
        self.agreements
            .scan_prefix(id.0)
            .map(|r| Ok(SignedAgreement::from_record(&r?.1)?))
            .collect()
    }

    /// Stores a proposal received from a peer and the endpoint it gave, which is not the
    /// peer's address until the operator accepts (see [`Store::proposal_endpoint`]).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_received_proposal(
        &self,
        a: &SignedAgreement,
        endpoint: &str,
    ) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        let k = agreement_key(a.body().id, a.body().version);
        self.proposals.insert(k, endpoint.as_bytes())?;
        self.agreements.insert(k, a.to_record())?;
        self.flush().await
    }

    /// The endpoint a received proposal gave for its proposer, if stored.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn proposal_endpoint(
        &self,
        id: AgreementId,
        version: u32,
    ) -> Result<Option<String>, StoreError> {
        match self.proposals.get(agreement_key(id, version))? {
            None => Ok(None),
            Some(v) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|_| corrupt("proposals", "endpoint is not UTF-8")),
        }
    }

    /// Removes agreement versions that are not concluded (a rejected or withdrawn proposal)
    /// and their proposal endpoints.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn remove_agreement_versions(
        &self,
        id: AgreementId,
        versions: &[u32],
    ) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        for v in versions {
            let k = agreement_key(id, *v);
            self.agreements.remove(k)?;
            self.proposals.remove(k)?;
        }
        self.flush().await
    }

    /// Records that the operator accepted a received proposal: the concluded agreement, and
    /// the endpoint the proposal gave as the peer's address.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_accepted(
        &self,
        a: &SignedAgreement,
        endpoint: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        let k = agreement_key(a.body().id, a.body().version);
        self.agreements.insert(k, a.to_record())?;
        let v = crate::cbor::encode(&Value::Array(vec![Value::Text(endpoint.into()), uint(now)]));
        self.peers
            .insert(a.body().proposer.province.code().to_be_bytes(), v)?;
        self.proposals.remove(k)?;
        self.flush().await
    }

    /// Records where a peer province's node is reached.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_peer(&self, p: Province, endpoint: &str, now: u64) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        let v = crate::cbor::encode(&Value::Array(vec![Value::Text(endpoint.into()), uint(now)]));
        self.peers.insert(p.code().to_be_bytes(), v)?;
        self.flush().await
    }

    /// The recorded endpoint of a peer province's node.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn peer_endpoint(&self, p: Province) -> Result<Option<String>, StoreError> {
        let Some(v) = self.peers.get(p.code().to_be_bytes())? else {
            return Ok(None);
        };
        match crate::cbor::decode_exact(&v).map_err(|e| corrupt("peers", e.to_string()))? {
            Value::Array(a) if a.len() == 2 => match &a[0] {
                Value::Text(t) => Ok(Some(t.clone())),
                _ => Err(corrupt("peers", "endpoint is not text")),
            },
            _ => Err(corrupt("peers", "not a peer record")),
        }
    }

    /// Counts an identity-match attempt for `key` (a hashed code id or subject hash) at `now`
    /// (seconds since the Unix epoch, UTC), in a window of `window` seconds from the key's first
    /// attempt, and makes it durable before returning: the limit on these attempts is a security
    /// limit, which a restart of the node must not reset. Returns the attempts in the key's
    /// current window, this one included. Windows that ended are removed every
    /// [`MATCH_PRUNE_EVERY`] attempts.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn count_match_attempt(
        &self,
        key: [u8; 16],
        now: u64,
        window: u64,
    ) -> Result<u32, StoreError> {
        let _gate = self.gate.read().await;
        let current = move |v: Option<&[u8]>| -> (u32, u64) {
            v.and_then(|v| {
                let count = u32::from_be_bytes(v.get(..4)?.try_into().ok()?);
                let start = u64::from_be_bytes(v.get(4..12)?.try_into().ok()?);
                Some((count, start))
            })
            .filter(|(_, start)| now.saturating_sub(*start) < window)
            .unwrap_or((0, now))
        };
        let tree = self.match_attempts.clone();
        let counted = self.match_counted.clone();
        let count = blocking(move || {
            let stored = tree.update_and_fetch(key, |old| {
                let (count, start) = current(old);
                let mut v = count.saturating_add(1).to_be_bytes().to_vec();
                v.extend_from_slice(&start.to_be_bytes());
                Some(v)
            })?;
            if counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % MATCH_PRUNE_EVERY
                == MATCH_PRUNE_EVERY - 1
            {
                for r in tree.iter() {
                    let (k, v) = r?;
                    if current(Some(&v)).0 == 0 {
                        tree.remove(k)?;
                    }
                }
            }
            Ok(current(stored.as_deref()).0)
        })
        .await?;
        self.flush().await?;
        Ok(count)
    }

    /// Adds refused calls (not flushed: the caller flushes a batch): each under the key `time`
    /// (8 bytes, big-endian) and the id of its kind ([`denial_kind_id`]), so the refusals of one
    /// kind in one second are one record whatever the number of writes: a record already there
    /// gets the new `count` added. (Should two kinds share an id, the second is stored under a
    /// fresh unique id instead.) Holds the write gate, and a lock so that two callers never add
    /// to the same record at once.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn append_denials(&self, records: &[AccessDenial]) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        let _one = self.denials_lock.lock().await;
        let mut merged: std::collections::BTreeMap<Vec<u8>, AccessDenial> = Default::default();
        for r in records {
            let mut k = r.time.to_be_bytes().to_vec();
            k.extend_from_slice(&denial_kind_id(r));
            let before = match merged.get(&k) {
                Some(m) => Some(m.clone()),
                None => self
                    .access
                    .get(&k)?
                    .and_then(|v| AccessDenial::from_record(&v)),
            };
            match before {
                None => {
                    merged.insert(k, r.clone());
                }
                Some(b) if same_kind(&b, r) => {
                    let mut sum = r.clone();
                    sum.count = b.count.saturating_add(r.count);
                    merged.insert(k, sum);
                }
                Some(_) => {
                    k.truncate(8);
                    k.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
                    merged.insert(k, r.clone());
                }
            }
        }
        let mut batch = sled::Batch::default();
        for (k, r) in merged {
            batch.insert(k, r.to_record());
        }
        self.access.apply_batch(batch)?;
        Ok(())
    }

    /// Refused calls, oldest first, at most `limit`: those with `time >= from`, or, given the
    /// key of a record (`after`, from an earlier page), those after it. With them, the key of
    /// the last one returned when more follow (the next page's `after`).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn denials_page(
        &self,
        from: u64,
        after: Option<[u8; DENIAL_KEY_LEN]>,
        limit: usize,
    ) -> Result<(Vec<AccessDenial>, Option<[u8; DENIAL_KEY_LEN]>), StoreError> {
        use std::ops::Bound;
        let start = match after {
            Some(k) => Bound::Excluded(k.to_vec()),
            None => Bound::Included(from.to_be_bytes().to_vec()),
        };
        let mut records = self.access.range((start, Bound::Unbounded));
        let mut out = Vec::new();
        let mut last = None;
        for r in records.by_ref().take(limit) {
            let (k, v) = r?;
            out.push(
                AccessDenial::from_record(&v)
                    .ok_or_else(|| corrupt("access", "not an access record"))?,
            );
            last = Some(k);
        }
        if records.next().transpose()?.is_none() {
            return Ok((out, None));
        }
        let next = last
            .and_then(|k| <[u8; DENIAL_KEY_LEN]>::try_from(k.as_ref()).ok())
            .ok_or_else(|| corrupt("access", "a key that is not time and id"))?;
        Ok((out, Some(next)))
    }

    /// Adds or replaces a caller, and flushes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_caller(&self, c: &Caller) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        let old = self.callers.insert(c.name.as_bytes(), c.to_record())?;
        if let Err(e) = self.flush().await {
            // Not durable, so not done: undone in memory too, so that a retry (which must not
            // find an existing name it did not make) sees the state the error reported.
            let _ = match old {
                Some(v) => self.callers.insert(c.name.as_bytes(), v).map(drop),
                None => self.callers.remove(c.name.as_bytes()).map(drop),
            };
            return Err(e);
        }
        Ok(())
    }

    /// Removes a caller and flushes; whether it existed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn remove_caller(&self, name: &str) -> Result<bool, StoreError> {
        let _gate = self.gate.read().await;
        let existed = self.callers.remove(name.as_bytes())?.is_some();
        self.flush().await?;
        Ok(existed)
    }

    /// Every caller, by name.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a record that does not decode.
    pub fn callers(&self) -> Result<Vec<Caller>, StoreError> {
        let mut out = Vec::new();
        for r in self.callers.iter() {
            let (k, v) = r?;
            let name = String::from_utf8_lossy(&k).to_string();
            out.push(
                Caller::from_record(&name, &v).map_err(|e| corrupt("callers", e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Appends audit records (not flushed: the caller flushes a batch). Holds the write gate
    /// while it inserts. The encoding and inserting (a few milliseconds for the thousand records
    /// a busy node writes each 200 ms) run on a blocking thread, off the runtime's threads that
    /// serve calls.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn append_audit(&self, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let _gate = self.gate.read().await;
        let (db, audit) = (self.db.clone(), self.audit.clone());
        blocking(move || {
            // One value per second (in order of arrival within it), at most AUDIT_PACK records.
            let mut by_time: std::collections::BTreeMap<u64, Vec<&AuditRecord>> =
                std::collections::BTreeMap::new();
            for r in &records {
                by_time.entry(r.time).or_default().push(r);
            }
            let mut batch = sled::Batch::default();
            for (time, same_second) in &by_time {
                for pack in same_second.chunks(AUDIT_PACK) {
                    let mut k = time.to_be_bytes().to_vec();
                    k.extend_from_slice(&db.generate_id()?.to_be_bytes());
                    batch.insert(k, AuditRecord::pack(pack.iter().copied()));
                }
            }
            audit.apply_batch(batch)?;
            Ok(())
        })
        .await
    }

    /// Audit records with `from <= time < until` that pass `keep`, oldest first, at most
    /// `limit`: from `from`, or, given the cursor of an earlier page (`after`), from the record
    /// it names (then `from` is not used). With them, the cursor of the next record that passes
    /// `keep` when there is one (the next page's `after`), else `None`.
    ///
    /// # Errors
    /// [`StoreError`]; [`StoreError::Corrupt`] for a value or key that does not decode.
    pub fn audit_page(
        &self,
        from: u64,
        until: u64,
        after: Option<AuditCursor>,
        limit: usize,
        keep: impl Fn(&AuditRecord) -> bool,
    ) -> Result<(Vec<AuditRecord>, Option<AuditCursor>), StoreError> {
        use std::ops::Bound;
        let start = match after {
            Some(c) => c.pack.to_vec(),
            None => from.to_be_bytes().to_vec(),
        };
        let end = until.to_be_bytes().to_vec();
        if start >= end {
            return Ok((Vec::new(), None));
        }
        let mut out = Vec::new();
        let range = self
            .audit
            .range((Bound::Included(start), Bound::Excluded(end)));
        for r in range {
            let (k, v) = r?;
            let pack: [u8; AUDIT_KEY_LEN] = k
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("audit", "a key that is not time and id"))?;
            let recs =
                AuditRecord::unpack(&v).ok_or_else(|| corrupt("audit", "not an audit record"))?;
            let skip = match after {
                Some(c) if c.pack == pack => usize::from(c.index),
                _ => 0,
            };
            for (index, rec) in recs.into_iter().enumerate().skip(skip) {
                if !keep(&rec) {
                    continue;
                }
                if out.len() == limit {
                    let index = u16::try_from(index)
                        .map_err(|_| corrupt("audit", "more records in a value than a pack"))?;
                    return Ok((out, Some(AuditCursor { pack, index })));
                }
                out.push(rec);
            }
        }
        Ok((out, None))
    }

    /// Appends to the issued-code log and flushes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn log_issued(&self, r: &IssuedRecord) -> Result<(), StoreError> {
        let _gate = self.gate.read().await;
        let v = crate::cbor::encode(&Value::Array(vec![
            uint(r.iat),
            uint(r.exp),
            uint(r.status),
            uint(r.status_valid_until),
            Value::Bytes(r.subject_hash.0.to_vec()),
        ]));
        // The index first: a crash between the two leaves an index entry without its entry,
        // which retention removes as it would the pair, never an entry retention cannot find.
        self.issued_expiry
            .insert(expiry_key(r.exp, &r.cti), Vec::new())?;
        self.issued.insert(r.cti, v)?;
        self.flush().await
    }

    /// An entry of the issued-code log by `cti`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn issued(&self, cti: &Cti) -> Result<Option<IssuedRecord>, StoreError> {
        match self.issued.get(cti)? {
            Some(v) => decode_issued(cti, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Number of entries in the issued-code log.
    pub fn issued_count(&self) -> usize {
        self.issued.len()
    }

    /// Removes the oldest verification audit values (each the records of one second, up to
    /// 256) with a time before `before` (seconds since the Unix epoch, UTC), at most `max` values
    /// in one write batch, and flushes. Returns the records removed and whether older values may
    /// remain (`max` were removed: call again). The batch runs on a blocking thread under the
    /// write gate.
    ///
    /// # Errors
    /// [`StoreError`]; [`StoreError::Corrupt`] for a value that does not decode (nothing is
    /// removed then).
    pub async fn prune_audit(&self, before: u64, max: usize) -> Result<Pruned, StoreError> {
        self.prune_by_time(self.audit.clone(), before, max, |v| {
            AuditRecord::unpack(v)
                .map(|r| r.len() as u64)
                .ok_or_else(|| corrupt("audit", "not an audit record"))
        })
        .await
    }

    /// Removes refused-call records (one per second and kind) with a time before `before`, as
    /// [`Store::prune_audit`] does; counts records, not the refusals they count.
    ///
    /// # Errors
    /// As [`Store::prune_audit`].
    pub async fn prune_access(&self, before: u64, max: usize) -> Result<Pruned, StoreError> {
        self.prune_by_time(self.access.clone(), before, max, |_| Ok(1))
            .await
    }

    /// Removes from the issued-code log (and its expiry index) the entries of codes that expired
    /// before `expired_before` (seconds since the Unix epoch, UTC), at most `max` in one batch,
    /// and flushes. As [`Store::prune_audit`] for the result.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn prune_issued(
        &self,
        expired_before: u64,
        max: usize,
    ) -> Result<Pruned, StoreError> {
        let _gate = self.gate.read().await;
        let (issued, index) = (self.issued.clone(), self.issued_expiry.clone());
        let pruned = blocking(move || {
            let mut gone = sled::Batch::default();
            let mut gone_index = sled::Batch::default();
            let mut n = 0usize;
            for r in index.range(..expired_before.to_be_bytes()).take(max) {
                let (k, _) = r?;
                if let Some(cti) = k.get(8..24) {
                    gone.remove(cti);
                }
                gone_index.remove(k);
                n += 1;
            }
            issued.apply_batch(gone)?;
            index.apply_batch(gone_index)?;
            Ok(Pruned {
                records: n as u64,
                more: n == max,
            })
        })
        .await?;
        self.flush().await?;
        Ok(pruned)
    }

    /// The oldest values of a tree keyed by time (u64 BE) ‖ id, before `before`: see
    /// [`Store::prune_audit`]. `records` tells how many records a value holds.
    async fn prune_by_time(
        &self,
        tree: sled::Tree,
        before: u64,
        max: usize,
        records: impl Fn(&[u8]) -> Result<u64, StoreError> + Send + 'static,
    ) -> Result<Pruned, StoreError> {
        let _gate = self.gate.read().await;
        let pruned = blocking(move || {
            let mut batch = sled::Batch::default();
            let (mut values, mut removed) = (0usize, 0u64);
            for r in tree.range(..before.to_be_bytes()).take(max) {
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
        })
        .await?;
        self.flush().await?;
        Ok(pruned)
    }

    /// A consistent copy of every tree, for backups: takes the write gate exclusively (waits
    /// for running write methods to finish their flush, holds off new ones), flushes, and shows
    /// `visit` every tree and record (see [`ExportItem`]) with `state`, on a blocking thread.
    /// Returns the state, which holds the copy. Writes wait meanwhile; reads (verification) do
    /// not.
    ///
    /// # Errors
    /// [`StoreError`] from the database, or the visitor's error (which ends the copy).
    pub async fn export<S, E>(
        &self,
        mut state: S,
        mut visit: impl FnMut(&mut S, ExportItem<'_>) -> Result<(), E> + Send + 'static,
    ) -> Result<S, E>
    where
        S: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let _exclusive = self.gate.write().await;
        self.flush().await?;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut names = db.tree_names();
            names.sort();
            visit(&mut state, ExportItem::Trees(names.len()))?;
            for name in &names {
                let tree = db.open_tree(name).map_err(StoreError::from)?;
                visit(&mut state, ExportItem::Tree(name))?;
                for r in tree.iter() {
                    let (k, v) = r.map_err(StoreError::from)?;
                    visit(&mut state, ExportItem::Record(&k, &v))?;
                }
            }
            Ok(state)
        })
        .await
        .map_err(|e| StoreError::Sled(sled::Error::Io(std::io::Error::other(e.to_string()))))?
    }

    /// Writes records into tree `tree` (created when missing), for `hcmr restore` filling a new
    /// database that no node serves; not flushed (call [`Store::flush`] at the end).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn import(
        &self,
        tree: &[u8],
        records: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in records {
            batch.insert(k, v);
        }
        self.db.open_tree(tree)?.apply_batch(batch)?;
        Ok(())
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Reason;

    fn record(time: u64, n: u32) -> AuditRecord {
        AuditRecord {
            time,
            checkpoint_id: format!("gate-{n}"),
            via: "grpc",
            issuer: Some(Province::from_code(510000).unwrap()),
            recognized: n.is_multiple_of(2),
            reason: if n.is_multiple_of(2) {
                Reason::Ok
            } else {
                Reason::Expired
            },
            cti_hash: Some(crate::audit::cti_hash(&n.to_be_bytes())),
        }
    }

    #[tokio::test]
    async fn refused_calls_are_read_from_a_time_or_page_by_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let denial = |time: u64, who: &str| AccessDenial {
            time,
            rpc: "/hcmr.v1.HealthCodeService/VerifyHealthCode".into(),
            outcome: "PERMISSION_DENIED".into(),
            who: format!("caller {who}"),
            remote: "127.0.0.1".into(),
            count: 1,
        };
        // Five in one second: pages must not stop at a second's boundary.
        let all = [
            denial(10, "a"),
            denial(20, "b"),
            denial(20, "c"),
            denial(20, "d"),
            denial(20, "e"),
            denial(20, "f"),
            denial(30, "g"),
        ];
        store.append_denials(&all).await.unwrap();
        // By time, and within a second by kind (the key's second half), not by arrival.
        let (stored, _) = store.denials_page(0, None, 100).unwrap();
        let mut sorted = stored.clone();
        sorted.sort_by(|a, b| a.who.cmp(&b.who));
        assert_eq!(sorted, all);
        assert_eq!((stored[0].time, stored[6].time), (10, 30));
        let all = stored;
        let (first, next) = store.denials_page(0, None, 2).unwrap();
        assert_eq!(first, all[..2]);
        let (second, next) = store.denials_page(0, next, 2).unwrap();
        assert_eq!(second, all[2..4]);
        let (third, next) = store.denials_page(0, next, 2).unwrap();
        assert_eq!(third, all[4..6]);
        // Exactly as many left as the limit: no next page.
        let (last, next) = store.denials_page(0, next, 1).unwrap();
        assert_eq!(last, all[6..]);
        assert_eq!(next, None);
        let (from_20, next) = store.denials_page(20, None, 10).unwrap();
        assert_eq!(from_20, all[1..]);
        assert_eq!(next, None);
    }

    #[tokio::test]
    async fn audit_records_are_packed_by_second_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // A value of the older form: one record under its own key.
        let legacy = record(100, 9_999);
        let mut k = 100u64.to_be_bytes().to_vec();
        k.extend_from_slice(&0u64.to_be_bytes());
        store.audit.insert(k, legacy.to_record()).unwrap();
        // 5 records at 99, 300 at 100, 300 at 101, interleaved as a writer's batch can be.
        let mut batch: Vec<AuditRecord> = (0..5).map(|n| record(99, n)).collect();
        for n in 0..300 {
            batch.push(record(100, 1_000 + n));
            batch.push(record(101, 2_000 + n));
        }
        store.append_audit(batch).await.unwrap();
        store.append_audit(Vec::new()).await.unwrap();
        // 99: one value; 100: the legacy value and two packs (256 + 44); 101: two packs.
        assert_eq!(store.audit.len(), 1 + 3 + 2);

        let (at_100, next) = store.audit_page(100, 101, None, 1_000, |_| true).unwrap();
        assert_eq!(next, None);
        assert_eq!(at_100.len(), 301);
        assert_eq!(at_100[0], legacy, "the older value comes first (id 0)");
        let names: Vec<&str> = at_100[1..]
            .iter()
            .map(|r| r.checkpoint_id.as_str())
            .collect();
        let want: Vec<String> = (1_000..1_300).map(|n| format!("gate-{n}")).collect();
        assert_eq!(names, want, "in order of arrival");
        assert_eq!(at_100[1], record(100, 1_000));

        let (all, _) = store
            .audit_page(0, u64::MAX, None, 10_000, |_| true)
            .unwrap();
        assert_eq!(all.len(), 606);
        assert!(all.windows(2).all(|w| w[0].time <= w[1].time));

        // The limit counts records, not values, and the cursor names the next one.
        let (first, next) = store.audit_page(99, 102, None, 7, |_| true).unwrap();
        assert_eq!(first.len(), 7);
        assert_eq!(first[5], legacy);
        let next = next.expect("more follow");
        assert_eq!(AuditCursor::from_bytes(&next.to_bytes()), Some(next));
        assert_eq!(next.index, 1, "the second record of the first pack at 100");
        // Pages of any size, within and across packs and seconds, give every record once.
        for size in [1, 7, 255, 256, 257, 605, 606, 1_000] {
            let (mut paged, mut after, mut pages) = (Vec::new(), None, 0);
            loop {
                let (page, next) = store
                    .audit_page(0, u64::MAX, after, size, |_| true)
                    .unwrap();
                assert!(page.len() <= size);
                paged.extend(page);
                pages += 1;
                match next {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
            assert_eq!(paged, all, "pages of {size}");
            assert_eq!(pages, 606usize.div_ceil(size), "pages of {size}");
        }
        // A cursor's page keeps to `until` and ignores `from`.
        let (rest_of_100, next) = store
            .audit_page(200, 101, Some(next), 1_000, |_| true)
            .unwrap();
        assert_eq!((rest_of_100.len(), next), (299, None));
        assert_eq!(rest_of_100[0], record(100, 1_001));
        // An empty or reversed range is empty.
        assert_eq!(
            store.audit_page(101, 101, None, 10, |_| true).unwrap(),
            (vec![], None)
        );
        assert_eq!(
            store.audit_page(102, 99, None, 10, |_| true).unwrap(),
            (vec![], None)
        );
        // A filter applies to each record of a pack, and the cursor skips what it refuses.
        let expired = |r: &AuditRecord| r.reason == Reason::Expired;
        let (all_expired, next) = store.audit_page(101, 102, None, 1_000, expired).unwrap();
        assert_eq!(next, None);
        assert_eq!(all_expired.len(), 150);
        assert!(all_expired.iter().all(|r| r.time == 101 && !r.recognized));
        let (first_100, next) = store.audit_page(101, 102, None, 100, expired).unwrap();
        let next = next.expect("50 more");
        assert_eq!(
            next.index, 201,
            "record 2,101 is the 202nd of the first pack at 101"
        );
        let (last_50, next) = store.audit_page(0, 102, Some(next), 100, expired).unwrap();
        assert_eq!(next, None);
        assert_eq!([first_100, last_50].concat(), all_expired);
    }

    fn issued_record(n: u8) -> IssuedRecord {
        IssuedRecord {
            cti: [n; 16],
            iat: 1_700_000_000 + u64::from(n),
            exp: 1_700_000_300 + u64::from(n),
            status: 1,
            status_valid_until: 1_700_086_400,
            subject_hash: crate::identity::SubjectHash([n; 8]),
        }
    }

    #[tokio::test]
    async fn retention_removes_what_is_before_its_time_in_bounded_steps() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Audit: 5 records at 99, 300 at 100 (two packs), 300 at 101 (two packs).
        let mut batch: Vec<AuditRecord> = (0..5).map(|n| record(99, n)).collect();
        for n in 0..300 {
            batch.push(record(100, 1_000 + n));
            batch.push(record(101, 2_000 + n));
        }
        store.append_audit(batch).await.unwrap();
        // Values before 101, one a step: 99's, then 100's two packs.
        let steps: Vec<Pruned> = [
            store.prune_audit(101, 1).await.unwrap(),
            store.prune_audit(101, 1).await.unwrap(),
            store.prune_audit(101, 1).await.unwrap(),
            store.prune_audit(101, 1).await.unwrap(),
        ]
        .to_vec();
        let records: Vec<(u64, bool)> = steps.iter().map(|p| (p.records, p.more)).collect();
        assert_eq!(records, [(5, true), (256, true), (44, true), (0, false)]);
        let (left, _) = store
            .audit_page(0, u64::MAX, None, 10_000, |_| true)
            .unwrap();
        assert_eq!(left.len(), 300);
        assert!(left.iter().all(|r| r.time == 101));
        assert_eq!(
            store.prune_audit(101, 10).await.unwrap(),
            Pruned::default(),
            "nothing left before 101"
        );

        // Access: records before the cut-off go, the rest stay.
        let denial = |time: u64| AccessDenial {
            time,
            rpc: "/hcmr.v1.HealthCodeService/IssueHealthCode".into(),
            outcome: "UNAUTHENTICATED".into(),
            who: "anonymous".into(),
            remote: "10.0.0.1".into(),
            count: 7,
        };
        store
            .append_denials(&[denial(10), denial(20), denial(20), denial(30)])
            .await
            .unwrap();
        // The two of second 20 are one record (a count of 14).
        let p = store.prune_access(30, 100).await.unwrap();
        assert_eq!(
            p,
            Pruned {
                records: 2,
                more: false
            }
        );
        let (left, _) = store.denials_page(0, None, 100).unwrap();
        assert_eq!(left, [denial(30)]);

        // Issued codes: entries of codes expired before the cut-off go, with their index.
        for n in 0..10 {
            store.log_issued(&issued_record(n)).await.unwrap();
        }
        // issued_record(n) expires at 1_700_000_300 + n: before ...305 are 0 to 4.
        let p = store.prune_issued(1_700_000_305, 3).await.unwrap();
        assert_eq!(
            p,
            Pruned {
                records: 3,
                more: true
            }
        );
        let p = store.prune_issued(1_700_000_305, 3).await.unwrap();
        assert_eq!(
            p,
            Pruned {
                records: 2,
                more: false
            }
        );
        assert_eq!(store.issued_count(), 5);
        assert_eq!(store.issued_expiry.len(), 5);
        assert_eq!(store.issued(&[4; 16]).unwrap(), None);
        assert_eq!(store.issued(&[5; 16]).unwrap(), Some(issued_record(5)));
    }

    #[tokio::test]
    async fn refusals_of_one_kind_in_one_second_are_one_record_over_many_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let refused = |time: u64, who: &str, count: u64| AccessDenial {
            time,
            rpc: "/hcmr.v1.HealthCodeService/VerifyHealthCode".into(),
            outcome: "UNAUTHENTICATED".into(),
            who: who.into(),
            remote: "10.0.0.1".into(),
            count,
        };
        // Five writes of the audit writer in second 100, one in 101.
        for count in [6_818, 4_858, 7_984, 3_062] {
            store
                .append_denials(&[refused(100, "anonymous", count)])
                .await
                .unwrap();
        }
        store
            .append_denials(&[
                refused(100, "caller gate-1", 2),
                refused(100, "anonymous", 1),
            ])
            .await
            .unwrap();
        store
            .append_denials(&[refused(101, "anonymous", 5)])
            .await
            .unwrap();
        let (all, next) = store.denials_page(0, None, 100).unwrap();
        assert_eq!(next, None);
        let mut got: Vec<(u64, String, u64)> =
            all.into_iter().map(|d| (d.time, d.who, d.count)).collect();
        got.sort();
        assert_eq!(
            got,
            [
                (
                    100,
                    "anonymous".to_string(),
                    6_818 + 4_858 + 7_984 + 3_062 + 1
                ),
                (100, "caller gate-1".to_string(), 2),
                (101, "anonymous".to_string(), 5),
            ]
        );
        assert_eq!(store.access.len(), 3);
    }

    #[tokio::test]
    async fn an_issued_code_log_without_its_expiry_index_is_indexed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            for n in 0..4 {
                store.log_issued(&issued_record(n)).await.unwrap();
            }
            // As a database written before the index existed.
            store.issued_expiry.clear().unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.issued_expiry.len(), 4);
        let p = store.prune_issued(1_700_000_302, 100).await.unwrap();
        assert_eq!(p.records, 2);
        assert_eq!(store.issued(&[1; 16]).unwrap(), None);
        assert_eq!(store.issued(&[2; 16]).unwrap(), Some(issued_record(2)));
    }

    #[tokio::test]
    async fn concurrent_writers_share_flushes_and_a_failed_flush_acknowledges_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // 64 writers at once while a flush is in progress (here: the flusher's lock held, as a
        // flush holds it; a real flush may also finish before the next writer comes, for
        // instance when sled runs it inline on a busy machine). Each writes and waits for the
        // lock; the first to get it flushes for all of them.
        let in_progress = store.commit.lock.lock().await;
        let writes = (0..64u8).map(|n| {
            let store = store.clone();
            async move { store.log_issued(&issued_record(n)).await }
        });
        let mut writes = std::pin::pin!(futures_util::future::join_all(writes));
        tokio::select! {
            biased;
            _ = &mut writes => panic!("a write was acknowledged before its flush"),
            () = std::future::ready(()) => {}
        }
        drop(in_progress);
        for r in writes.await {
            r.unwrap();
        }
        assert_eq!(store.flush_count(), 1);
        assert_eq!(store.issued_count(), 64);
        assert_eq!(store.issued(&[7; 16]).unwrap(), Some(issued_record(7)));

        // While flushes fail, every concurrent writer gets the failure (none is acknowledged by
        // another's flush), and the flushes still counted are the earlier ones.
        let before = store.flush_count();
        store.inject_flush_failure(Some("disk full"));
        let writes = (64..80u8).map(|n| {
            let store = store.clone();
            async move { store.log_issued(&issued_record(n)).await }
        });
        let results = futures_util::future::join_all(writes).await;
        assert!(results.iter().all(Result::is_err), "{results:?}");
        assert_eq!(store.flush_count(), before);
        // Once the disk is back, the next write's flush covers the earlier ones too.
        store.inject_flush_failure(None);
        store.log_issued(&issued_record(80)).await.unwrap();
        assert_eq!(store.flush_count(), before + 1);
    }

    #[tokio::test]
    async fn a_value_that_is_no_audit_record_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut k = 5u64.to_be_bytes().to_vec();
        k.extend_from_slice(&1u64.to_be_bytes());
        // A pack with one good record and one that is not a record.
        let good = record(5, 1).to_record();
        let good: Value = ciborium::de::from_reader(good.as_slice()).unwrap();
        let bad = crate::cbor::encode(&Value::Array(vec![good, Value::Array(vec![])]));
        store.audit.insert(k, bad).unwrap();
        let err = store.audit_page(0, 10, None, 10, |_| true).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }
}

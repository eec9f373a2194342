//! The trust feed: each province node's append-only, hash-chained log of signed statements about
//! its own trust state (its keys and its revocations). Peers pull it and apply it in order.
//!
//! ```text
//! entry  = ["hcmr-feed", 1, province: uint, seq: uint, prev: bstr .size 32, time: uint, statement]
//! statement = [0, key: bstr .size 32]                          ; genesis: the node's first key
//!           / [1, key: bstr .size 32, pop: bstr .size 64]      ; key rotation: a new key
//!           / [2, key: bstr .size 32]                          ; key withdrawal (compromise)
//!           / [3, cti: bstr .size 16]                          ; revoke one code
//!           / [4, subject_hash: bstr .size 8, before: uint]    ; revoke a subject's codes
//!           / [5, [+ cti: bstr .size 16]]                      ; revoke 1 to 4,096 codes
//! signed = entry bytes; signature = Ed25519 over "hcmr-feed-v1\0" || entry
//! ```
//! `seq` starts at 1 (the genesis entry) and grows by one; `prev` is SHA-256 of the previous
//! entry's bytes (32 zero bytes for seq 1); `time` is when the statement was made, seconds since
//! the Unix epoch (UTC). A rotation's `pop` is the new key's signature over
//! `"hcmr-key-pop-v1\0" || province || new key`, proving its holder agreed.
//!
//! Every entry is signed by a key that is active in the chain at that point: the genesis key, or
//! a key added by an earlier rotation, and not withdrawn. The hash chain binds each entry to all
//! before it, so a receiver that checks the links and signatures in order knows the whole history
//! is the node's. A peer anchors the chain in its agreement: a chain is trusted only if it
//! contains a key the agreement pins (a key can only enter a chain with its own proof of
//! possession, so a forged chain cannot contain a pinned key).
//!
//! A code id (`cti`) is exactly 16 bytes, as hcmr issues them. Statement 5 revokes up to
//! [`MAX_CTIS_PER_ENTRY`] codes under one signature, so that a large revocation costs one entry
//! (about 70 KB) and one signature per 4,096 codes instead of one per code. The subject hash has
//! the length of [`SubjectHash`].
//!
//! Revocation by subject follows SMART Health Cards' `rid` with a timestamp: every code of that
//! subject hash issued before `before` is revoked; codes issued afterwards (a new status) are not.

use crate::cbor::{as_u64, uint};
use ciborium::value::Value;
use sha2::{Digest, Sha256};

use crate::identity::SubjectHash;
use crate::keys::{Kid, NodeKey, PublicKey};
use crate::province::Province;
use crate::time::UnixTime;

mod revoked;
mod wire;
pub use revoked::{Cti, MaxTimeMap, RevokedCodes};

/// Most code ids one RevokeCodes statement (5) may carry.
pub const MAX_CTIS_PER_ENTRY: usize = 4096;

const MAGIC: &str = "hcmr-feed";
const FORMAT: u64 = 1;
const SIGNING_CONTEXT: &[u8] = b"hcmr-feed-v1\0";
const POP_CONTEXT: &[u8] = b"hcmr-key-pop-v1\0";

/// What one feed entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// The node's first key (seq 1 only), signed by itself.
    Genesis {
        /// Active from this entry on; it signs the entry itself.
        key: PublicKey,
    },
    /// A new key for the province, signed (as the entry) by a key already active. From this
    /// entry's time on the old signing key is retired: codes it signs later are not accepted.
    KeyRotation {
        /// The new key.
        key: PublicKey,
        /// The new key's signature over the province and itself ([`proof_of_possession`]): only
        /// its holder can rotate it in.
        pop: [u8; 64],
    },
    /// A key withdrawn at once (compromise): no code under it is recognized any more, and it can
    /// sign no further entries.
    KeyWithdrawal {
        /// The withdrawn key.
        key: PublicKey,
    },
    /// One code revoked by its `cti`.
    RevokeCode {
        /// The code's id, as derived from its signature ([`crate::code::HealthCode::cti`]).
        cti: Cti,
    },
    /// 1 to [`MAX_CTIS_PER_ENTRY`] codes revoked by their `cti`s, under one signature.
    RevokeCodes {
        /// The codes' ids ([`crate::code::HealthCode::cti`]), without duplicates.
        ctis: Vec<Cti>,
    },
    /// Every code of a subject issued before `before` revoked.
    RevokeSubject {
        /// The subject as codes carry it (keyed, so the feed names no person).
        subject_hash: SubjectHash,
        /// Codes with `iat < before` are revoked.
        before: UnixTime,
    },
}

/// One signed entry of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    province: Province,
    seq: u64,
    prev: [u8; 32],
    time: UnixTime,
    statement: Statement,
    encoded: Vec<u8>,
    signer: Kid,
    signature: [u8; 64],
}

/// Why a feed entry or batch was refused. Nothing of a refused batch is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The entry bytes do not decode or are not canonical.
    #[error("feed entry does not decode: {0}")]
    Decode(String),
    /// The entry is for another province than the feed's.
    #[error("feed entry of province {got} in the feed of {want}")]
    WrongProvince {
        /// The feed's province.
        want: Province,
        /// The entry's.
        got: Province,
    },
    /// A sequence number other than the next one.
    #[error("feed gap: expected entry {expected}, got {got}")]
    Gap {
        /// The next sequence number.
        expected: u64,
        /// The one received.
        got: u64,
    },
    /// `prev` does not match the hash of the previous entry.
    #[error("feed entry {0} does not link to the previous entry")]
    BrokenChain(u64),
    /// The signer is not an active key of the chain at that point, or the signature fails.
    #[error("feed entry {0} has a bad signature (or a signer that is not an active key)")]
    BadSignature(u64),
    /// A genesis entry after seq 1, or seq 1 that is not a genesis entry.
    #[error("feed entry {0}: a genesis entry must be entry 1, and only entry 1")]
    BadGenesis(u64),
    /// A rotation whose proof of possession fails, or that adds a key already in the chain.
    #[error("feed entry {0}: key rotation without a valid proof of possession by the new key")]
    BadRotation(u64),
    /// A withdrawal of a key that is not in the chain, or of the last active key.
    #[error("feed entry {0}: withdrawal of a key that is not active, or of the last active key")]
    BadWithdrawal(u64),
    /// An entry dated before the previous one.
    #[error("feed entry {0} is dated before the entry it follows")]
    TimeWentBack(u64),
    /// A statement whose content is out of range (e.g. a code id over 64 bytes).
    #[error("feed entry {0}: {1}")]
    BadStatement(u64, &'static str),
    /// The chain contains no key pinned by the agreement: it is not the peer's.
    #[error("the feed of {0} contains no key the agreement pins for it")]
    NotAnchored(Province),
}

fn pop_message(province: Province, key: &PublicKey) -> Vec<u8> {
    let mut m = POP_CONTEXT.to_vec();
    m.extend_from_slice(&province.code().to_be_bytes());
    m.extend_from_slice(&key.to_bytes());
    m
}

/// The proof of possession a new key gives for a rotation.
pub fn proof_of_possession(province: Province, new_key: &NodeKey) -> [u8; 64] {
    new_key.sign(&pop_message(province, &new_key.public()))
}

fn encode_statement(s: &Statement) -> Value {
    let b = |x: &[u8]| Value::Bytes(x.to_vec());
    Value::Array(match s {
        Statement::Genesis { key } => vec![uint(0), b(&key.to_bytes())],
        Statement::KeyRotation { key, pop } => vec![uint(1), b(&key.to_bytes()), b(pop)],
        Statement::KeyWithdrawal { key } => vec![uint(2), b(&key.to_bytes())],
        Statement::RevokeCode { cti } => vec![uint(3), b(cti)],
        Statement::RevokeCodes { ctis } => {
            vec![uint(5), Value::Array(ctis.iter().map(|c| b(c)).collect())]
        }
        Statement::RevokeSubject {
            subject_hash,
            before,
        } => vec![uint(4), b(&subject_hash.0), uint(before.secs())],
    })
}

fn encode_entry(
    province: Province,
    seq: u64,
    prev: &[u8; 32],
    time: UnixTime,
    statement: &Statement,
) -> Vec<u8> {
    crate::cbor::encode(&Value::Array(vec![
        Value::Text(MAGIC.into()),
        uint(FORMAT),
        uint(u64::from(province.code())),
        uint(seq),
        Value::Bytes(prev.to_vec()),
        uint(time.secs()),
        encode_statement(statement),
    ]))
}

fn signing_message(encoded: &[u8]) -> Vec<u8> {
    let mut m = SIGNING_CONTEXT.to_vec();
    m.extend_from_slice(encoded);
    m
}

fn as_bytes<const N: usize>(v: &Value) -> Option<[u8; N]> {
    match v {
        Value::Bytes(b) => b.as_slice().try_into().ok(),
        _ => None,
    }
}

fn decode_statement(v: &Value) -> Result<Statement, String> {
    let Value::Array(a) = v else {
        return Err("statement is not an array".into());
    };
    let key = |v: &Value| {
        as_bytes::<32>(v)
            .ok_or("key must be 32 bytes".to_string())
            .and_then(|k| PublicKey::from_bytes(&k).map_err(|e| e.to_string()))
    };
    match (a.first().and_then(as_u64), a.len()) {
        (Some(0), 2) => Ok(Statement::Genesis { key: key(&a[1])? }),
        (Some(1), 3) => Ok(Statement::KeyRotation {
            key: key(&a[1])?,
            pop: as_bytes::<64>(&a[2]).ok_or("pop must be 64 bytes")?,
        }),
        (Some(2), 2) => Ok(Statement::KeyWithdrawal { key: key(&a[1])? }),
        (Some(3), 2) => Ok(Statement::RevokeCode {
            cti: as_bytes::<16>(&a[1]).ok_or("cti must be 16 bytes")?,
        }),
        (Some(4), 3) => Ok(Statement::RevokeSubject {
            subject_hash: match &a[1] {
                Value::Bytes(b) => b.as_slice().try_into().ok().map(SubjectHash),
                _ => None,
            }
            .ok_or_else(|| {
                format!(
                    "subject hash must be {} bytes",
                    std::mem::size_of::<SubjectHash>()
                )
            })?,
            before: as_u64(&a[2])
                .map(UnixTime::from_secs)
                .ok_or("before must be an unsigned integer")?,
        }),
        (Some(5), 2) => match &a[1] {
            Value::Array(list) if !list.is_empty() && list.len() <= MAX_CTIS_PER_ENTRY => {
                let ctis = list
                    .iter()
                    .map(as_bytes::<16>)
                    .collect::<Option<Vec<Cti>>>()
                    .ok_or("every cti must be 16 bytes")?;
                Ok(Statement::RevokeCodes { ctis })
            }
            Value::Array(_) => Err(format!("1 to {MAX_CTIS_PER_ENTRY} ctis in one entry")),
            _ => Err("ctis must be an array".into()),
        },
        _ => Err("unknown statement".into()),
    }
}

impl FeedEntry {
    /// Makes and signs the entry following `prev_entry` (or the first entry when `None`).
    pub fn sign(
        province: Province,
        prev_entry: Option<&FeedEntry>,
        time: UnixTime,
        statement: Statement,
        key: &NodeKey,
    ) -> FeedEntry {
        let (seq, prev) = match prev_entry {
            None => (1, [0u8; 32]),
            Some(p) => (p.seq + 1, p.hash()),
        };
        let encoded = encode_entry(province, seq, &prev, time, &statement);
        FeedEntry {
            signature: key.sign(&signing_message(&encoded)),
            signer: key.kid(),
            province,
            seq,
            prev,
            time,
            statement,
            encoded,
        }
    }

    /// Decodes received parts (canonical bytes, signer kid, signature); does not verify.
    ///
    /// # Errors
    /// [`FeedError::Decode`].
    pub fn from_parts(
        encoded: Vec<u8>,
        signer: Kid,
        signature: [u8; 64],
    ) -> Result<Self, FeedError> {
        // Canonical bytes (every entry this node or a well-behaved peer writes) are read
        // directly; anything else goes to the general decoder below, which refuses it (or
        // accepts exactly what it accepted before): see `wire`.
        if let Some(f) = wire::read_entry(&encoded) {
            return Ok(FeedEntry {
                province: f.province,
                seq: f.seq,
                prev: f.prev,
                time: f.time,
                statement: f.statement,
                encoded,
                signer,
                signature,
            });
        }
        Self::from_parts_general(encoded, signer, signature)
    }

    /// [`FeedEntry::from_parts`] through a CBOR `Value` and a re-encode: the reference decoder,
    /// for bytes the fast reader does not take.
    fn from_parts_general(
        encoded: Vec<u8>,
        signer: Kid,
        signature: [u8; 64],
    ) -> Result<Self, FeedError> {
        let v =
            crate::cbor::decode_exact(&encoded).map_err(|e| FeedError::Decode(e.to_string()))?;
        let Value::Array(a) = v else {
            return Err(FeedError::Decode("an entry must be an array".into()));
        };
        if a.len() != 7 || a[0] != Value::Text(MAGIC.into()) || as_u64(&a[1]) != Some(FORMAT) {
            return Err(FeedError::Decode(
                "not an hcmr feed entry of format 1".into(),
            ));
        }
        let province = as_u64(&a[2])
            .and_then(|c| u32::try_from(c).ok())
            .and_then(|c| Province::from_code(c).ok())
            .ok_or_else(|| {
                FeedError::Decode("province must be a GB/T 2260 province code".into())
            })?;
        let seq = as_u64(&a[3])
            .ok_or_else(|| FeedError::Decode("seq must be an unsigned integer".into()))?;
        let prev = as_bytes::<32>(&a[4])
            .ok_or_else(|| FeedError::Decode("prev must be 32 bytes".into()))?;
        let time = as_u64(&a[5])
            .map(UnixTime::from_secs)
            .ok_or_else(|| FeedError::Decode("time must be an unsigned integer".into()))?;
        let statement = decode_statement(&a[6]).map_err(FeedError::Decode)?;
        if encode_entry(province, seq, &prev, time, &statement) != encoded {
            return Err(FeedError::Decode("not in canonical encoding".into()));
        }
        Ok(FeedEntry {
            province,
            seq,
            prev,
            time,
            statement,
            encoded,
            signer,
            signature,
        })
    }

    /// SHA-256 of the entry bytes: the next entry's `prev`.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(&self.encoded).into()
    }

    /// The province whose feed this is.
    pub fn province(&self) -> Province {
        self.province
    }
    /// Sequence number, from 1.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// When the statement was made.
    pub fn time(&self) -> UnixTime {
        self.time
    }
    /// The statement.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }
    /// The signed bytes.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
    /// The signing key's kid.
    pub fn signer(&self) -> Kid {
        self.signer
    }
    /// The Ed25519 signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The storage encoding: CBOR `[entry: bstr, kid: bstr .size 8, signature: bstr .size 64]`.
    pub fn to_record(&self) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.encoded.clone()),
            Value::Bytes(self.signer.0.to_vec()),
            Value::Bytes(self.signature.to_vec()),
        ]))
    }

    /// Reads [`FeedEntry::to_record`] bytes.
    ///
    /// # Errors
    /// [`FeedError::Decode`].
    pub fn from_record(bytes: &[u8]) -> Result<Self, FeedError> {
        if let Some((entry, kid, sig)) = wire::read_record(bytes) {
            return FeedEntry::from_parts(entry.to_vec(), Kid(kid), sig);
        }
        Self::from_record_general(bytes, FeedEntry::from_parts)
    }

    /// [`FeedEntry::from_record`] through a CBOR `Value`, for records not in the canonical
    /// encoding, with `parts` reading the entry bytes.
    fn from_record_general(
        bytes: &[u8],
        parts: fn(Vec<u8>, Kid, [u8; 64]) -> Result<Self, FeedError>,
    ) -> Result<Self, FeedError> {
        let v = crate::cbor::decode_exact(bytes).map_err(|e| FeedError::Decode(e.to_string()))?;
        match v {
            Value::Array(a) if a.len() == 3 => {
                let Value::Bytes(e) = &a[0] else {
                    return Err(FeedError::Decode(
                        "a record's entry must be a byte string".into(),
                    ));
                };
                let kid = as_bytes::<8>(&a[1])
                    .ok_or_else(|| FeedError::Decode("a record's kid must be 8 bytes".into()))?;
                let sig = as_bytes::<64>(&a[2]).ok_or_else(|| {
                    FeedError::Decode("a record's signature must be 64 bytes".into())
                })?;
                parts(e.clone(), Kid(kid), sig)
            }
            _ => Err(FeedError::Decode(
                "a record must be an array of 3 (entry, kid, signature)".into(),
            )),
        }
    }
}

/// The state of one key in a province's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyState {
    /// As its genesis or rotation entry added it.
    pub key: PublicKey,
    /// When a rotation replaced it: codes it signed later are not accepted.
    pub retired_at: Option<UnixTime>,
    /// When it was withdrawn: nothing it signed is accepted any more.
    pub withdrawn_at: Option<UnixTime>,
}

/// A province's trust state as its feed says it, up to some entry: keys and revocations.
///
/// Cloning is cheap at any size: the revocation sets share their bulk by `Arc` (see
/// [`RevokedCodes`] and [`MaxTimeMap`]); a clone copies the keys and at most the sets' small
/// deltas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedState {
    province: Province,
    last_seq: u64,
    last_hash: [u8; 32],
    /// Time of the last applied entry: times never go back, so `retired_at` and withdrawal
    /// times are consistent with the order of the chain.
    last_time: UnixTime,
    keys: Vec<KeyState>,
    revoked_codes: RevokedCodes,
    revoked_subjects: MaxTimeMap<SubjectHash>,
}

/// Whether [`Replay::push`] checks signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Entries from outside (a peer, a bundle, a caller): every signature is checked.
    Verify,
    /// Entries this node stored after checking them: links, order and statements are checked,
    /// signatures are not (see [`FeedState::restore`]).
    Stored,
}

/// Entries being applied to a copy of a state: the code ids they revoke are gathered and added
/// to the set once at the end, so a batch of millions is one sort and one merge.
#[derive(Debug)]
struct Replay {
    next: FeedState,
    pending: Vec<Cti>,
    trust: Trust,
}

impl Replay {
    fn new(state: &FeedState, trust: Trust) -> Self {
        Replay {
            next: state.clone(),
            pending: Vec::new(),
            trust,
        }
    }

    fn finish(mut self) -> FeedState {
        self.next
            .revoked_codes
            .extend(std::mem::take(&mut self.pending));
        self.next
    }

    /// Checks `entry` as the next one and applies it (code ids to `pending`).
    fn push(&mut self, entry: &FeedEntry) -> Result<(), FeedError> {
        let s = &mut self.next;
        let seq = entry.seq;
        if entry.province != s.province {
            return Err(FeedError::WrongProvince {
                want: s.province,
                got: entry.province,
            });
        }
        if seq != s.last_seq + 1 {
            return Err(FeedError::Gap {
                expected: s.last_seq + 1,
                got: seq,
            });
        }
        if entry.prev != s.last_hash {
            return Err(FeedError::BrokenChain(seq));
        }
        if entry.time < s.last_time {
            return Err(FeedError::TimeWentBack(seq));
        }
        // Withdrawal and retirement times are shown as RFC 3339: none after the year 9999.
        if entry.time > UnixTime::MAX {
            return Err(FeedError::BadStatement(
                seq,
                "its time is after 9999-12-31T23:59:59Z",
            ));
        }
        let verify = self.trust == Trust::Verify;
        match &entry.statement {
            Statement::Genesis { key } => {
                if seq != 1 {
                    return Err(FeedError::BadGenesis(seq));
                }
                if key.kid != entry.signer
                    || (verify
                        && !crate::keys::verify_signature(
                            key,
                            &signing_message(&entry.encoded),
                            &entry.signature,
                        ))
                {
                    return Err(FeedError::BadSignature(seq));
                }
                s.keys.push(KeyState {
                    key: *key,
                    retired_at: None,
                    withdrawn_at: None,
                });
            }
            other => {
                if seq == 1 {
                    return Err(FeedError::BadGenesis(seq));
                }
                let candidates: Vec<PublicKey> = s.signers(entry.signer).map(|k| k.key).collect();
                // A stored entry's signer is the one active key with its kid; only if two active
                // keys share a kid (8 bytes of a hash: practically never) is the signature
                // checked to tell them apart.
                let signer = if !verify && candidates.len() == 1 {
                    Some(candidates[0])
                } else {
                    let msg = signing_message(&entry.encoded);
                    candidates
                        .into_iter()
                        .find(|k| crate::keys::verify_signature(k, &msg, &entry.signature))
                }
                .ok_or(FeedError::BadSignature(seq))?;
                match other {
                    Statement::Genesis { .. } => unreachable!("handled above"),
                    Statement::KeyRotation { key, pop } => {
                        let pop_ok =
                            crate::keys::verify_signature(key, &pop_message(s.province, key), pop);
                        if !pop_ok || s.keys.iter().any(|k| k.key == *key) {
                            return Err(FeedError::BadRotation(seq));
                        }
                        for k in s.keys.iter_mut() {
                            if k.key == signer && k.retired_at.is_none() {
                                k.retired_at = Some(entry.time);
                            }
                        }
                        s.keys.push(KeyState {
                            key: *key,
                            retired_at: None,
                            withdrawn_at: None,
                        });
                    }
                    Statement::KeyWithdrawal { key } => {
                        let remaining = s
                            .keys
                            .iter()
                            .filter(|k| k.withdrawn_at.is_none() && k.retired_at.is_none())
                            .filter(|k| k.key != *key)
                            .count();
                        let target = s
                            .keys
                            .iter_mut()
                            .find(|k| k.key == *key && k.withdrawn_at.is_none());
                        match target {
                            Some(t) if remaining > 0 => t.withdrawn_at = Some(entry.time),
                            _ => return Err(FeedError::BadWithdrawal(seq)),
                        }
                    }
                    Statement::RevokeCode { cti } => self.pending.push(*cti),
                    Statement::RevokeCodes { ctis }
                        if ctis.is_empty() || ctis.len() > MAX_CTIS_PER_ENTRY =>
                    {
                        return Err(FeedError::BadStatement(
                            seq,
                            "a RevokeCodes entry names 1 to 4096 code ids",
                        ));
                    }
                    Statement::RevokeCodes { ctis } => self.pending.extend_from_slice(ctis),
                    Statement::RevokeSubject {
                        subject_hash,
                        before,
                    } => s.revoked_subjects.raise(*subject_hash, *before),
                }
            }
        }
        s.last_seq = seq;
        s.last_hash = entry.hash();
        s.last_time = entry.time;
        Ok(())
    }
}

impl FeedState {
    /// The state before any entry.
    pub fn new(province: Province) -> Self {
        FeedState {
            province,
            last_seq: 0,
            last_hash: [0; 32],
            last_time: UnixTime::EPOCH,
            keys: Vec::new(),
            revoked_codes: RevokedCodes::default(),
            revoked_subjects: MaxTimeMap::default(),
        }
    }

    /// The province.
    pub fn province(&self) -> Province {
        self.province
    }

    /// The last applied sequence number (0: none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Every key the chain has named, with its state.
    pub fn keys(&self) -> &[KeyState] {
        &self.keys
    }

    /// The key that signs new codes and entries: the newest one neither retired nor withdrawn.
    pub fn current_key(&self) -> Option<&PublicKey> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.retired_at.is_none() && k.withdrawn_at.is_none())
            .map(|k| &k.key)
    }

    /// Keys that may sign the next entry: neither retired nor withdrawn.
    fn signers(&self, kid: Kid) -> impl Iterator<Item = &KeyState> {
        self.keys
            .iter()
            .filter(move |k| k.key.kid == kid && k.withdrawn_at.is_none() && k.retired_at.is_none())
    }

    /// Checks `entry` as the next one and applies it.
    ///
    /// # Errors
    /// A [`FeedError`]; the state is unchanged then.
    pub fn apply(&mut self, entry: &FeedEntry) -> Result<(), FeedError> {
        self.apply_all([entry])
    }

    /// Applies a batch all or nothing, checking every entry's links and signature.
    ///
    /// # Errors
    /// The first entry's [`FeedError`]; the state is unchanged then.
    pub fn apply_all<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a FeedEntry>,
    ) -> Result<(), FeedError> {
        let mut r = Replay::new(self, Trust::Verify);
        for e in entries {
            r.push(e)?;
        }
        *self = r.finish();
        Ok(())
    }

    /// Rebuilds a state from entries read back from this node's own store, all or nothing:
    /// sequence numbers, hash links, times, statements and the signer's kid are checked as in
    /// [`FeedState::apply_all`], signatures are not (except a rotation's proof of possession,
    /// and a signer whose kid two active keys share).
    ///
    /// Safe because of where the entries come from: the store is this node's own database, and
    /// the node writes a feed entry to it only after the entry passed [`FeedState::apply`] or
    /// [`FeedState::apply_all`] with every signature checked (its own entries after signing
    /// and applying them, a peer's after a sync applied them, in `node::sync`). Whoever can
    /// change the store can also change the pinned keys and agreements in it, so checking the
    /// signatures again would not protect against them; it would cost one Ed25519 verification
    /// per entry at every start. Entries from anywhere else (a sync, a bundle) go through
    /// [`FeedState::apply_all`].
    ///
    /// # Errors
    /// The first failing entry's [`FeedError`], or `E` from the source; the state is unchanged
    /// then.
    pub fn restore<E: From<FeedError>>(
        &mut self,
        entries: impl IntoIterator<Item = Result<FeedEntry, E>>,
    ) -> Result<(), E> {
        let mut r = Replay::new(self, Trust::Stored);
        for e in entries {
            r.push(&e?)?;
        }
        *self = r.finish();
        self.revoked_codes.compact();
        Ok(())
    }

    /// Whether the chain names any of `pinned` (the anchor check).
    pub fn contains_any(&self, pinned: &[PublicKey]) -> bool {
        self.keys.iter().any(|k| pinned.contains(&k.key))
    }

    /// Whether a code is revoked: its `cti` revoked, or its subject revoked for codes issued
    /// before a time later than its `iat`.
    pub fn is_revoked(&self, cti: &[u8], subject: &SubjectHash, iat: UnixTime) -> bool {
        self.revoked_codes.contains_slice(cti)
            || self
                .revoked_subjects
                .get(subject)
                .is_some_and(|before| iat < before)
    }

    /// For each of `prefixes` (the first 6 bytes of a code's cti, as a trip manifest carries
    /// them), whether a revoked code id starts with it: a prefix may match a code it is not, so
    /// a collision is a false "revoked", never a missed one.
    pub fn revoked_cti_prefixes(&self, prefixes: &[[u8; 6]]) -> Vec<bool> {
        self.revoked_codes.matching_prefixes(prefixes)
    }

    /// For each `(subject prefix, iat)` (the first 4 bytes of a keyed subject hash, and an
    /// issue time never later than the code's), whether a revoked subject whose hash starts
    /// with that prefix has a `before` later than `iat`. One pass over the subject revocations
    /// for all of them
    /// ([`MaxTimeMap::matching_prefixes`]).
    pub fn revoked_subject_prefixes(&self, people: &[([u8; 4], UnixTime)]) -> Vec<bool> {
        self.revoked_subjects.matching_prefixes(people)
    }

    /// The time before which a subject's codes are revoked, if they are.
    pub fn subject_revoked_before(&self, subject: &SubjectHash) -> Option<UnixTime> {
        self.revoked_subjects.get(subject)
    }

    /// Whether one code id is revoked (ids that are not 16 bytes never are).
    pub fn is_code_revoked(&self, cti: &[u8]) -> bool {
        self.revoked_codes.contains_slice(cti)
    }

    /// Number of revocations in effect: distinct code ids plus distinct subjects.
    pub fn revocation_count(&self) -> usize {
        self.revoked_codes.len() + self.revoked_subjects.len()
    }

    /// Bytes of heap the revoked code ids take (see [`RevokedCodes::heap_bytes`]).
    pub fn revoked_codes_heap_bytes(&self) -> usize {
        self.revoked_codes.heap_bytes()
    }
}

#[cfg(test)]
mod tests;

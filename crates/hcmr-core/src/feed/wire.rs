//! A fast, allocation-light reader of feed entries and storage records in their canonical
//! encoding, for the hot paths (a node start reads millions of revoked code ids back from its
//! store; a sync reads thousands).
//!
//! It accepts only the exact bytes [`super::encode_entry`] (or [`super::FeedEntry::to_record`])
//! writes: every head in its shortest form (ciborium's encoding), definite lengths, the fields in
//! order with their types and sizes, nothing after the item. That is a subset of what the general
//! decoder (ciborium `Value`, then a re-encode compared with the input) accepts, and the same set
//! for entries: whatever this reader does not accept goes to the general decoder, which refuses
//! it or accepts it as before (and gives the error message). So using it changes no decision,
//! only the cost: no `Value` per code id and no re-encoding.

use crate::identity::SubjectHash;
use crate::keys::PublicKey;
use crate::province::Province;
use crate::time::UnixTime;

use super::{Cti, Statement, FORMAT, MAGIC, MAX_CTIS_PER_ENTRY};

/// CBOR major types used here.
const UINT: u8 = 0;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;

/// A cursor over canonical CBOR: each read either matches and advances, or gives `None`.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    /// A head of major type `major` in its shortest form; its argument.
    fn head(&mut self, major: u8) -> Option<u64> {
        let first = *self.take(1)?.first()?;
        if first >> 5 != major {
            return None;
        }
        let (arg, min) = match first & 0x1f {
            n @ 0..=23 => return Some(u64::from(n)),
            24 => (u64::from(self.take(1)?[0]), 24),
            25 => (
                u64::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?)),
                0x100,
            ),
            26 => (
                u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
                0x1_0000,
            ),
            27 => (
                u64::from_be_bytes(self.take(8)?.try_into().ok()?),
                0x1_0000_0000,
            ),
            _ => return None, // reserved, or indefinite length
        };
        (arg >= min).then_some(arg)
    }

    fn uint(&mut self) -> Option<u64> {
        self.head(UINT)
    }

    fn array(&mut self, len: u64) -> Option<()> {
        (self.head(ARRAY)? == len).then_some(())
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.head(BYTES)?).ok()?;
        self.take(n)
    }

    fn bytes_n<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes()?.try_into().ok()
    }

    /// A public key, only if it encodes back to the same 32 bytes.
    fn key(&mut self) -> Option<PublicKey> {
        let b = self.bytes_n::<32>()?;
        let key = PublicKey::from_bytes(&b).ok()?;
        (key.to_bytes() == b).then_some(key)
    }

    fn statement(&mut self) -> Option<Statement> {
        let len = self.head(ARRAY)?;
        Some(match (self.uint()?, len) {
            (0, 2) => Statement::Genesis { key: self.key()? },
            (1, 3) => Statement::KeyRotation {
                key: self.key()?,
                pop: self.bytes_n::<64>()?,
            },
            (2, 2) => Statement::KeyWithdrawal { key: self.key()? },
            (3, 2) => Statement::RevokeCode {
                cti: self.bytes_n::<16>()?,
            },
            (4, 3) => Statement::RevokeSubject {
                subject_hash: SubjectHash(self.bytes_n()?),
                before: UnixTime::from_secs(self.uint()?),
            },
            (5, 2) => {
                let n = usize::try_from(self.head(ARRAY)?).ok()?;
                if n == 0 || n > MAX_CTIS_PER_ENTRY {
                    return None;
                }
                let mut ctis: Vec<Cti> = Vec::with_capacity(n);
                for _ in 0..n {
                    ctis.push(self.bytes_n::<16>()?);
                }
                Statement::RevokeCodes { ctis }
            }
            _ => return None,
        })
    }
}

/// The fields of an entry, as [`super::encode_entry`] takes them.
pub(super) struct EntryFields {
    pub province: Province,
    pub seq: u64,
    pub prev: [u8; 32],
    pub time: UnixTime,
    pub statement: Statement,
}

/// Reads entry bytes that are exactly what [`super::encode_entry`] writes for their fields;
/// `None` for anything else (which the general decoder then judges).
pub(super) fn read_entry(encoded: &[u8]) -> Option<EntryFields> {
    let mut r = Reader { rest: encoded };
    r.array(7)?;
    let magic = r
        .head(TEXT)
        .and_then(|n| r.take(usize::try_from(n).ok()?))?;
    if magic != MAGIC.as_bytes() || r.uint()? != FORMAT {
        return None;
    }
    let province = Province::from_code(u32::try_from(r.uint()?).ok()?).ok()?;
    let fields = EntryFields {
        province,
        seq: r.uint()?,
        prev: r.bytes_n::<32>()?,
        time: UnixTime::from_secs(r.uint()?),
        statement: r.statement()?,
    };
    r.rest.is_empty().then_some(fields)
}

/// Reads a storage record `[entry: bstr, kid: bstr .size 8, signature: bstr .size 64]` in its
/// canonical encoding: the entry bytes (not decoded), the kid and the signature. `None` for any
/// other encoding (which the general decoder then judges).
pub(super) fn read_record(bytes: &[u8]) -> Option<(&[u8], [u8; 8], [u8; 64])> {
    let mut r = Reader { rest: bytes };
    r.array(3)?;
    let entry = r.bytes()?;
    let kid = r.bytes_n::<8>()?;
    let sig = r.bytes_n::<64>()?;
    r.rest.is_empty().then_some((entry, kid, sig))
}

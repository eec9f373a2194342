//! Offline trust bundles: one file, signed by a node, holding everything its verifier needs
//! (its own feed, concluded agreements, terminations, peers' synced feeds, the local policy), so a
//! checkpoint without a network verifies exactly as the node would at the time of export.
//!
//! ```text
//! file    = ["hcmr-trust-bundle", 1, content: bstr, kid: bstr .size 8, signature: bstr .size 64]
//! content = [province: uint, exported_at: uint, clock_skew: uint, own_max_code_age: uint,
//!            own_feed: [* feed record], peers: [* [province: uint, synced_at: uint, [* feed record]]],
//!            agreements: [* agreement record], terminations: [* termination record]]
//! signature = Ed25519 over "hcmr-bundle-v1\0" || content, by the node's current key
//! ```
//! Records are the store encodings ([`FeedEntry::to_record`], [`SignedAgreement::to_record`],
//! [`Termination::to_record`]). Opening a bundle re-verifies every chain and signature in it: the
//! bundle signature proves where it came from, not that its content is sound.

use crate::cbor::uint;
use std::sync::Arc;

use ciborium::value::Value;

use crate::agreement::{SignedAgreement, Termination};
use crate::feed::{FeedEntry, FeedState};
use crate::keys::{Kid, NodeKey, PublicKey};
use crate::province::Province;
use crate::time::UnixTime;
use crate::trust::{PeerFeed, Policy, TrustSnapshot};

const MAGIC: &str = "hcmr-trust-bundle";
const FORMAT: u64 = 1;
const CONTEXT: &[u8] = b"hcmr-bundle-v1\0";
/// Largest bundle file `hcmr verify --offline` reads, in bytes (4 MiB): the most a node's
/// `ExportTrustBundle` answer can carry to `hcmr bundle export` (tonic's default 4 MiB message
/// limit), so no bundle a node exports is larger. Checked before the file is read.
pub const MAX_BUNDLE_BYTES: u64 = 4 * 1024 * 1024;

/// What a bundle holds.
#[derive(Debug, Clone)]
pub struct BundleContent {
    /// The exporting node's province.
    pub province: Province,
    /// When it was exported.
    pub exported_at: UnixTime,
    /// The exporting node's local policy.
    pub policy: Policy,
    /// The node's own feed, from entry 1.
    pub own_feed: Vec<FeedEntry>,
    /// Peers' feeds as synced.
    pub peers: Vec<BundlePeer>,
    /// Every concluded version the node holds, in any order: the newest of each agreement
    /// applies.
    pub agreements: Vec<SignedAgreement>,
    /// The termination notices the node holds; each ends every version of its agreement.
    pub terminations: Vec<Termination>,
}

/// A peer's feed in a bundle, as the exporting node synced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlePeer {
    /// The peer.
    pub province: Province,
    /// When the exporting node last synced the peer's feed successfully.
    pub synced_at: UnixTime,
    /// The peer's feed, from entry 1.
    pub entries: Vec<FeedEntry>,
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not a bundle file, or a part does not decode.
    #[error("not a valid trust bundle: {0}")]
    Malformed(String),
    /// A bundle file that ends early: the right kind of file, damaged (an interrupted copy).
    #[error("damaged trust bundle: {0}")]
    Truncated(String),
    /// The bundle is not signed by the key the checkpoint trusts.
    #[error("the bundle is signed by kid {got}, not by the trusted key {want}")]
    UntrustedSigner {
        /// The trusted kid.
        want: Kid,
        /// The signer's kid.
        got: Kid,
    },
    /// The signature does not verify, or the signer is not the node's current key: tampered.
    #[error("the bundle's signature does not verify: it was altered or is not this node's")]
    BadSignature,
    /// Older than allowed.
    #[error("the bundle was exported {age} s ago; at most {max} s is accepted")]
    TooOld {
        /// Its age, seconds.
        age: u64,
        /// The limit, seconds.
        max: u64,
    },
    /// Exported later than now (plus clock skew).
    #[error("the bundle's export time is in the future")]
    FromTheFuture,
    /// A chain, agreement or termination inside does not verify.
    #[error("the bundle's content does not verify: {0}")]
    BadContent(String),
}

fn records<T>(items: &[T], f: impl Fn(&T) -> Vec<u8>) -> Value {
    Value::Array(items.iter().map(|i| Value::Bytes(f(i))).collect())
}

/// Encodes and signs a bundle with the node's current key.
pub fn export(content: &BundleContent, key: &NodeKey) -> Vec<u8> {
    let c = crate::cbor::encode(&Value::Array(vec![
        uint(u64::from(content.province.code())),
        uint(content.exported_at.secs()),
        uint(content.policy.clock_skew_secs),
        uint(content.policy.own_max_code_age_secs),
        records(&content.own_feed, FeedEntry::to_record),
        Value::Array(
            content
                .peers
                .iter()
                .map(|p| {
                    Value::Array(vec![
                        uint(u64::from(p.province.code())),
                        uint(p.synced_at.secs()),
                        records(&p.entries, FeedEntry::to_record),
                    ])
                })
                .collect(),
        ),
        records(&content.agreements, SignedAgreement::to_record),
        records(&content.terminations, Termination::to_record),
    ]));
    let mut msg = CONTEXT.to_vec();
    msg.extend_from_slice(&c);
    let sig = key.sign(&msg);
    crate::cbor::encode(&Value::Array(vec![
        Value::Text(MAGIC.into()),
        uint(FORMAT),
        Value::Bytes(c),
        Value::Bytes(key.kid().0.to_vec()),
        Value::Bytes(sig.to_vec()),
    ]))
}

/// What a checkpoint trusts to sign its bundles: the node's key, or its kid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustAnchor {
    /// The full public key.
    Key(PublicKey),
    /// Only the kid (8 bytes of SHA-256 of the key).
    Kid(Kid),
}

impl TrustAnchor {
    /// Parses 64 hex digits (a key) or 16 (a kid).
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = hex::decode(s.trim()).map_err(|_| format!("{s:?} is not hex"))?;
        match b.len() {
            32 => PublicKey::from_bytes(&b)
                .map(TrustAnchor::Key)
                .map_err(|e| e.to_string()),
            8 => Ok(TrustAnchor::Kid(Kid::from_slice(&b).expect("8 bytes"))),
            n => Err(format!(
                "expected a 32-byte key or an 8-byte kid in hex, got {n} bytes"
            )),
        }
    }

    fn kid(&self) -> Kid {
        match self {
            TrustAnchor::Key(k) => k.kid,
            TrustAnchor::Kid(k) => *k,
        }
    }
}

type R<T> = Result<T, BundleError>;

fn malformed(what: &str) -> BundleError {
    BundleError::Malformed(what.to_string())
}

fn arr(v: Value, what: &str) -> R<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(malformed(&format!("{what}: expected an array"))),
    }
}

fn u(v: &Value, what: &str) -> R<u64> {
    match v {
        Value::Integer(i) => u64::try_from(*i).map_err(|_| malformed(&format!("{what}: negative"))),
        _ => Err(malformed(&format!("{what}: expected an unsigned integer"))),
    }
}

fn bytes(v: Value, what: &str) -> R<Vec<u8>> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(malformed(&format!("{what}: expected a byte string"))),
    }
}

fn province(v: &Value, what: &str) -> R<Province> {
    u32::try_from(u(v, what)?)
        .ok()
        .and_then(|c| Province::from_code(c).ok())
        .ok_or_else(|| malformed(&format!("{what}: expected a GB/T 2260 province code")))
}

fn feed(v: Value, what: &str) -> R<Vec<FeedEntry>> {
    arr(v, what)?
        .into_iter()
        .map(|r| {
            FeedEntry::from_record(&bytes(r, what)?)
                .map_err(|e| BundleError::Malformed(e.to_string()))
        })
        .collect()
}

/// Decodes the CBOR of a bundle part (`what`), saying in words what is wrong with one that does
/// not decode: cut short (a copy that stopped early), not CBOR at all, or another structure.
fn decode(bytes_in: &[u8], what: &str) -> R<Value> {
    crate::cbor::decode_exact(bytes_in).map_err(|e| {
        use ciborium::de::Error as E;
        let why = match ciborium::de::from_reader::<Value, _>(bytes_in) {
            _ if bytes_in.is_empty() => format!("{what} is empty"),
            Ok(_) => e.to_string(),
            // Cut short: it starts as a bundle does (an array) and ends early. Other text that
            // happens to end early (a text file read as CBOR) is not a bundle at all.
            Err(E::Io(io))
                if io.kind() == std::io::ErrorKind::UnexpectedEof && bytes_in[0] >> 5 == 4 =>
            {
                return BundleError::Truncated(format!(
                    "{what} ends early ({} bytes): it was cut short, e.g. by an interrupted \
                     copy; copy it again or export a new one",
                    bytes_in.len()
                ))
            }
            Err(E::Syntax(_)) => format!("{what} is not a trust bundle: {e}"),
            Err(_) => format!("{what} does not have a trust bundle's structure"),
        };
        BundleError::Malformed(why)
    })
}

/// Opens a bundle: checks the signature against `anchor`, the age against `max_age_secs` at
/// `now`, re-verifies everything inside, and builds the trust
/// snapshot the exporting node had.
///
/// # Errors
/// A [`BundleError`]; nothing of a refused bundle is used.
pub fn open(
    bytes_in: &[u8],
    anchor: TrustAnchor,
    now: UnixTime,
    max_age_secs: u64,
) -> R<(BundleContent, TrustSnapshot)> {
    let v = decode(bytes_in, "the file")?;
    let mut a = arr(v, "file")?.into_iter();
    if a.len() != 5 {
        return Err(malformed("file: expected 5 elements"));
    }
    if a.next() != Some(Value::Text(MAGIC.into())) {
        return Err(malformed("not an hcmr trust bundle"));
    }
    if u(&a.next().unwrap_or(Value::Null), "format")? != FORMAT {
        return Err(malformed("unsupported bundle format"));
    }
    let content_bytes = bytes(a.next().unwrap_or(Value::Null), "content")?;
    let kid = Kid::from_slice(&bytes(a.next().unwrap_or(Value::Null), "kid")?)
        .ok_or_else(|| malformed("kid: expected 8 bytes"))?;
    let sig = bytes(a.next().unwrap_or(Value::Null), "signature")?;
    let content = decode(&content_bytes, "its content")?;
    let c = arr(content, "content")?;
    if c.len() != 8 {
        return Err(malformed("content: expected 8 elements"));
    }
    let mut c = c.into_iter();
    let mut next = || c.next().unwrap_or(Value::Null);
    let prov = province(&next(), "province")?;
    let exported_at = UnixTime::from_secs(u(&next(), "exported_at")?);
    // Shown as RFC 3339 by `hcmr verify --bundle`: none after the year 9999.
    if exported_at > UnixTime::MAX {
        return Err(malformed("exported_at is after the year 9999"));
    }
    let policy = Policy {
        clock_skew_secs: u(&next(), "clock_skew")?,
        own_max_code_age_secs: u(&next(), "own_max_code_age")?,
    };
    let own_feed = feed(next(), "own feed")?;
    let peers = arr(next(), "peers")?
        .into_iter()
        .map(|p| {
            let p = arr(p, "peer")?;
            let [pv, tv, ev]: [Value; 3] = p
                .try_into()
                .map_err(|_| malformed("peer: expected an array of 3"))?;
            let synced_at = UnixTime::from_secs(u(&tv, "synced_at")?);
            if synced_at > UnixTime::MAX {
                return Err(malformed("synced_at is after the year 9999"));
            }
            Ok(BundlePeer {
                province: province(&pv, "peer province")?,
                synced_at,
                entries: feed(ev, "peer feed")?,
            })
        })
        .collect::<R<Vec<_>>>()?;
    let agreements = arr(next(), "agreements")?
        .into_iter()
        .map(|r| {
            SignedAgreement::from_record(&bytes(r, "agreement")?)
                .map_err(|e| BundleError::Malformed(e.to_string()))
        })
        .collect::<R<Vec<_>>>()?;
    let terminations = arr(next(), "terminations")?
        .into_iter()
        .map(|r| {
            Termination::from_record(&bytes(r, "termination")?)
                .map_err(|e| BundleError::Malformed(e.to_string()))
        })
        .collect::<R<Vec<_>>>()?;

    // The signer must be the exporting node's current key, as its own feed says.
    let mut own = FeedState::new(prov);
    own.apply_all(&own_feed)
        .map_err(|e| BundleError::BadContent(format!("own feed: {e}")))?;
    // The signer must be the exporting node's current key, as its own feed says, and the
    // checkpoint's anchor must be a key of that chain that is not withdrawn: a checkpoint that
    // pinned the node's key before a rotation still accepts bundles signed by its successor,
    // because the rotation statement (signed by the pinned key) is in the chain.
    let signer = own
        .current_key()
        .copied()
        .filter(|k| k.kid == kid)
        .ok_or(BundleError::BadSignature)?;
    let anchored = own.keys().iter().any(|k| {
        k.withdrawn_at.is_none()
            && match anchor {
                TrustAnchor::Key(a) => k.key == a,
                TrustAnchor::Kid(a) => k.key.kid == a,
            }
    });
    if !anchored {
        return Err(BundleError::UntrustedSigner {
            want: anchor.kid(),
            got: kid,
        });
    }
    let mut msg = CONTEXT.to_vec();
    msg.extend_from_slice(&content_bytes);
    if !crate::keys::verify_signature(&signer, &msg, &sig) {
        return Err(BundleError::BadSignature);
    }
    if exported_at > now.saturating_add(policy.clock_skew_secs) {
        return Err(BundleError::FromTheFuture);
    }
    let age = now.saturating_since(exported_at);
    if age > max_age_secs {
        return Err(BundleError::TooOld {
            age,
            max: max_age_secs,
        });
    }

    let mut snapshot = TrustSnapshot::new(prov, Arc::new(own), policy);
    for a in &agreements {
        snapshot
            .add_agreement(a.clone())
            .map_err(|e| BundleError::BadContent(format!("agreement {}: {e}", a.body().id)))?;
    }
    for BundlePeer {
        province: p,
        synced_at,
        entries,
    } in &peers
    {
        let mut state = FeedState::new(*p);
        state
            .apply_all(entries)
            .map_err(|e| BundleError::BadContent(format!("feed of {p}: {e}")))?;
        // As the node's sync does: a peer's feed counts only if it contains a key an agreement
        // pins for that peer.
        let pinned: Vec<PublicKey> = agreements
            .iter()
            .filter_map(|a| a.body().party(*p).map(|x| x.keys.clone()))
            .flatten()
            .collect();
        if !state.contains_any(&pinned) {
            return Err(BundleError::BadContent(format!(
                "the feed of {p} contains no key an agreement pins for it"
            )));
        }
        snapshot.set_peer_feed(PeerFeed {
            state: Arc::new(state),
            synced_at: *synced_at,
        });
    }
    for t in &terminations {
        snapshot
            .add_termination(t.clone())
            .map_err(|e| BundleError::BadContent(format!("termination of {}: {e}", t.id)))?;
    }
    let content = BundleContent {
        province: prov,
        exported_at,
        policy,
        own_feed,
        peers,
        agreements,
        terminations,
    };
    Ok((content, snapshot))
}

#[cfg(test)]
mod tests;

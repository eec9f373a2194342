//! Inspection of a code string, stage by stage, **without verifying the signature**: hcmr codes
//! (`HCMR1:`) and EU Digital COVID Certificates (`HC1:`), which share the pipeline
//!
//! ```text
//! prefix --> Base45 (RFC 9285) --> [zlib (RFC 1950), EU only] --> COSE_Sign1 (RFC 9052)
//!        --> CBOR payload
//! ```
//!
//! Each stage has its own function ([`unprefix`], [`base45()`], [`decompress`] /
//! [`decompress_for`], [`decode_cose`], [`decode_payload`]) and its own error type, wrapped in
//! [`InspectError`] whose message names the stage. [`inspect`] runs them in order and returns an
//! [`Inspection`]; [`Inspection::to_json`] renders it for `hcmr inspect`.
//!
//! This is a diagnostic tool, not a verifier. It does **not** apply hcmr's COSE header policy
//! (docs/code-format.md section 8.6): EU certificates are signed with ES256 or PS256 and may
//! carry their kid in the unprotected header, and an inspector must show such a header, not
//! refuse it. For hcmr codes the strict decoder's verdict is reported beside the inspection
//! ([`Inspection::hcmr_decoder`]). Nothing here ever chooses a key or checks a signature.
//!
//! Differences between the schemes:
//!
//! | stage | hcmr (`HCMR1:`) | EU DCC (`HC1:`) |
//! |---|---|---|
//! | zlib | none: the Base45 output is the COSE bytes, at most [`crate::code::MAX_COSE_BYTES`] | a payload not starting with `0x78` is taken as-is (the EU rule); capped at [`MAX_EU_INFLATED_BYTES`] |
//! | payload | CWT claims map | CWT claims map with the hcert claim `-260` / `1` |

use std::io::Read;

use ciborium::value::Value;
use flate2::read::ZlibDecoder;
use serde_json::{json, Map, Value as Json};

use crate::cbor::CborError;
use crate::code::{CodeError, HealthCode};

/// Prefix of the EU Digital COVID Certificate (HCERT v1.0.x; case-sensitive).
pub const EU_PREFIX: &str = "HC1:";
/// Longest string inspected, in characters, prefix included: the alphanumeric capacity of the
/// largest QR code (version 40, level L), so any scanned code fits.
pub const MAX_INSPECT_CHARS: usize = 4296;
/// Largest inflated COSE accepted for an EU certificate (and by [`decompress`]), in bytes. EU
/// certificates are larger than hcmr codes (typically 300 to 1000 bytes), but inflating
/// untrusted input must stay capped (a zip bomb).
pub const MAX_EU_INFLATED_BYTES: usize = 64 * 1024;
/// The hcert claim of an EU certificate's CWT payload (HCERT section 2.6.3).
pub const CLAIM_HCERT: i64 = -260;
/// The key of the EU DGC v1 inside the hcert claim.
pub const HCERT_EU_DGC_V1: i64 = 1;

/// COSE header label of the algorithm (RFC 9052 section 3.1).
const LABEL_ALG: i64 = 1;
/// COSE header label of the key identifier (RFC 9052 section 3.1).
const LABEL_KID: i64 = 4;
/// CBOR tag of COSE_Sign1.
const TAG_COSE_SIGN1: u64 = crate::code::cose::TAG_COSE_SIGN1;
/// CBOR tag of a CWT.
const TAG_CWT: u64 = crate::code::cose::TAG_CWT;

// ---------------------------------------------------------------------------------------------
// Schemes and stages
// ---------------------------------------------------------------------------------------------

/// Which code scheme a prefix names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// An hcmr health code, prefix `HCMR1:` (docs/code-format.md).
    Hcmr,
    /// An EU Digital COVID Certificate, prefix `HC1:`.
    EuDcc,
}

impl Scheme {
    /// Every scheme, in the order prefixes are tried.
    pub const ALL: [Scheme; 2] = [Scheme::Hcmr, Scheme::EuDcc];

    /// The stable name used in JSON: `hcmr` or `eu-dcc`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Hcmr => "hcmr",
            Scheme::EuDcc => "eu-dcc",
        }
    }

    /// The prefix of the scheme's strings.
    pub fn prefix(self) -> &'static str {
        match self {
            Scheme::Hcmr => crate::code::PREFIX,
            Scheme::EuDcc => EU_PREFIX,
        }
    }

    /// Largest COSE accepted for the scheme, in bytes: after Base45 for hcmr (no compression),
    /// after inflation for the EU DCC.
    pub fn cose_cap(self) -> usize {
        match self {
            Scheme::Hcmr => crate::code::MAX_COSE_BYTES,
            Scheme::EuDcc => MAX_EU_INFLATED_BYTES,
        }
    }
}

/// A stage of the pipeline, in decoding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Finding the scheme's prefix.
    Prefix,
    /// Base45 decoding (RFC 9285).
    Base45,
    /// zlib inflation (RFC 1950): EU certificates only; hcmr codes are not compressed.
    Decompression,
    /// COSE_Sign1 structure (RFC 9052) and its tags.
    Cose,
    /// The CBOR payload (CWT claims).
    Payload,
}

impl Stage {
    /// The stage's name, as errors and JSON show it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Prefix => "prefix",
            Stage::Base45 => "base45",
            Stage::Decompression => "decompression",
            Stage::Cose => "cose",
            Stage::Payload => "payload",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: one type per stage, wrapped in InspectError
// ---------------------------------------------------------------------------------------------

/// Why no known prefix was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Nothing left after trimming line endings.
    #[error("the code is empty")]
    Empty,
    /// Longer than [`MAX_INSPECT_CHARS`].
    #[error("the code has {0} characters; at most {MAX_INSPECT_CHARS} are inspected")]
    TooLong(usize),
    /// A prefix (up to its `:`) that is neither `HCMR1:` nor `HC1:`, e.g. `HC2:` or `shc:`.
    #[error("unknown prefix {0:?}; known prefixes are \"HCMR1:\" (hcmr) and \"HC1:\" (EU DCC)")]
    Unknown(String),
    /// No prefix at all.
    #[error("missing prefix; known prefixes are \"HCMR1:\" (hcmr) and \"HC1:\" (EU DCC)")]
    Missing,
}

/// A Base45 fault (RFC 9285), as [`crate::code::transport::base45_decode`] finds them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base45Error {
    /// A character outside the 45-character alphabet.
    #[error("character {ch:?} at position {position} is not in the RFC 9285 alphabet")]
    Character {
        /// Zero-based character index after the prefix.
        position: usize,
        /// The offending character.
        ch: char,
    },
    /// A length with `len % 3 == 1`.
    #[error("length {0} leaves a single trailing character (len % 3 == 1)")]
    Length(usize),
    /// A triplet above 65535 or a final pair above 255.
    #[error("group at position {position} has value {value}, above {max}")]
    Overflow {
        /// Zero-based index of the group's first character.
        position: usize,
        /// The decoded value.
        value: u32,
        /// 65535 for a triplet, 255 for a final pair.
        max: u32,
    },
    /// An hcmr code whose Base45 text decodes to more than [`crate::code::MAX_COSE_BYTES`].
    #[error("decodes to {bytes} bytes; at most {max} are accepted")]
    TooLarge {
        /// The decoded size, in bytes.
        bytes: usize,
        /// The cap, in bytes.
        max: usize,
    },
}

/// A zlib fault (RFC 1950).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    /// Fewer than 2 bytes, CMF not `0x78`, bad FCHECK, or FDICT set.
    #[error("no zlib header (the first bytes are {hex})", hex = hex::encode(.0))]
    Header(Vec<u8>),
    /// A corrupt or truncated deflate stream, or an Adler-32 mismatch.
    #[error("corrupt or truncated zlib stream: {0}")]
    Corrupt(String),
    /// Inflating would exceed the cap.
    #[error("inflated size exceeds {max} bytes")]
    TooLarge {
        /// The cap, in bytes.
        max: usize,
    },
    /// Bytes after the end of the zlib stream.
    #[error("{0} bytes after the end of the zlib stream")]
    Trailing(usize),
}

/// A COSE_Sign1 fault (RFC 9052). Header *policy* (which alg, where the kid is) is not checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoseError {
    /// The bytes are not one well-formed CBOR item.
    #[error("not well-formed CBOR: {0}")]
    Cbor(String),
    /// Bytes after the one CBOR item.
    #[error("{0} bytes after the COSE_Sign1 item")]
    Trailing(usize),
    /// A tag other than none, 18, or 61 around 18 (shown as e.g. `98`, `61(98)`, `61(untagged)`).
    #[error("unexpected CBOR tag {0}; expected none, 18 (COSE_Sign1) or 61(18)")]
    Tag(String),
    /// Not an array of 4 with the right item types.
    #[error("not a COSE_Sign1 structure: {0}")]
    Structure(String),
    /// The protected header bytes are not an encoded map.
    #[error("protected header is not an encoded CBOR map: {0}")]
    ProtectedHeader(String),
    /// A header label that appears twice in one header.
    #[error("label {label} appears twice in the {header} header")]
    DuplicateLabel {
        /// `protected` or `unprotected`.
        header: &'static str,
        /// The label, as text.
        label: String,
    },
    /// A detached (nil) payload: there is nothing to inspect.
    #[error("payload is detached (nil)")]
    PayloadMissing,
}

/// A fault of the CBOR payload (the CWT claims).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// An empty payload.
    #[error("payload is empty")]
    Empty,
    /// Not one well-formed CBOR item.
    #[error("not well-formed CBOR: {0}")]
    Cbor(String),
    /// Bytes after the one CBOR item.
    #[error("{0} bytes after the claims item")]
    Trailing(usize),
    /// The claims are not a CBOR map.
    #[error("claims are not a CBOR map")]
    NotMap,
    /// An EU payload without a well-formed hcert claim (`-260` holding a map whose key `1`
    /// holds the DGC, a map).
    #[error("EU hcert: {0}")]
    Hcert(&'static str),
}

/// Why a string could not be inspected: the first stage that failed, with its reason. The
/// message starts with the stage's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// The prefix stage failed.
    #[error("prefix stage: {0}")]
    Prefix(#[from] PrefixError),
    /// The Base45 stage failed.
    #[error("base45 stage: {0}")]
    Base45(#[from] Base45Error),
    /// The decompression stage failed.
    #[error("decompression stage: {0}")]
    Decompression(#[from] DecompressError),
    /// The COSE stage failed.
    #[error("cose stage: {0}")]
    Cose(#[from] CoseError),
    /// The payload stage failed.
    #[error("payload stage: {0}")]
    Payload(#[from] PayloadError),
}

impl InspectError {
    /// The stage that failed.
    pub fn stage(&self) -> Stage {
        match self {
            InspectError::Prefix(_) => Stage::Prefix,
            InspectError::Base45(_) => Stage::Base45,
            InspectError::Decompression(_) => Stage::Decompression,
            InspectError::Cose(_) => Stage::Cose,
            InspectError::Payload(_) => Stage::Payload,
        }
    }

    /// A stable dotted identifier, `stage.fault`.
    pub fn code(&self) -> &'static str {
        match self {
            InspectError::Prefix(e) => match e {
                PrefixError::Empty => "prefix.empty",
                PrefixError::TooLong(_) => "prefix.too_long",
                PrefixError::Unknown(_) => "prefix.unknown",
                PrefixError::Missing => "prefix.missing",
            },
            InspectError::Base45(e) => match e {
                Base45Error::Character { .. } => "base45.character",
                Base45Error::Length(_) => "base45.length",
                Base45Error::Overflow { .. } => "base45.overflow",
                Base45Error::TooLarge { .. } => "base45.too_large",
            },
            InspectError::Decompression(e) => match e {
                DecompressError::Header(_) => "decompression.header",
                DecompressError::Corrupt(_) => "decompression.corrupt",
                DecompressError::TooLarge { .. } => "decompression.too_large",
                DecompressError::Trailing(_) => "decompression.trailing",
            },
            InspectError::Cose(e) => match e {
                CoseError::Cbor(_) => "cose.cbor",
                CoseError::Trailing(_) => "cose.trailing",
                CoseError::Tag(_) => "cose.tag",
                CoseError::Structure(_) => "cose.structure",
                CoseError::ProtectedHeader(_) => "cose.protected_header",
                CoseError::DuplicateLabel { .. } => "cose.duplicate_label",
                CoseError::PayloadMissing => "cose.payload_missing",
            },
            InspectError::Payload(e) => match e {
                PayloadError::Empty => "payload.empty",
                PayloadError::Cbor(_) => "payload.cbor",
                PayloadError::Trailing(_) => "payload.trailing",
                PayloadError::NotMap => "payload.not_map",
                PayloadError::Hcert(_) => "payload.hcert",
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 1: prefix
// ---------------------------------------------------------------------------------------------

/// Finds the scheme from the prefix and returns the text after it.
///
/// Leading white space and trailing `\r`, `\n` and tabs (a scanner's Enter) are ignored, as the
/// hcmr decoder does; a trailing space is Base45 data and is kept. Prefixes are case-sensitive.
///
/// # Errors
/// [`InspectError::Prefix`].
pub fn unprefix(code: &str) -> Result<(Scheme, &str), InspectError> {
    let code = code.trim_start().trim_end_matches(['\r', '\n', '\t']);
    if code.is_empty() {
        return Err(PrefixError::Empty.into());
    }
    let chars = code.chars().count();
    if chars > MAX_INSPECT_CHARS {
        return Err(PrefixError::TooLong(chars).into());
    }
    for scheme in Scheme::ALL {
        if let Some(rest) = code.strip_prefix(scheme.prefix()) {
            return Ok((scheme, rest));
        }
    }
    // Something that looks like a scheme name (up to 8 letters or digits, then ':') is an
    // unknown prefix; anything else has none. ':' is ASCII, so `i` is a char boundary.
    if let Some(i) = code.find(':') {
        let name = &code[..i];
        if (1..=8).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(PrefixError::Unknown(code[..=i].to_string()).into());
        }
    }
    Err(PrefixError::Missing.into())
}

// ---------------------------------------------------------------------------------------------
// Stage 2: Base45
// ---------------------------------------------------------------------------------------------

/// Decodes Base45 (RFC 9285) with hcmr's checks: characters outside the alphabet, `len % 3 == 1`
/// and overflowing groups are each refused ([`crate::code::transport::base45_decode`]).
///
/// # Errors
/// [`InspectError::Base45`].
pub fn base45(text: &str) -> Result<Vec<u8>, InspectError> {
    crate::code::transport::base45_decode(text).map_err(|e| {
        InspectError::Base45(match e {
            CodeError::Base45Character { position, ch } => Base45Error::Character { position, ch },
            CodeError::Base45Overflow {
                position,
                value,
                max,
            } => Base45Error::Overflow {
                position,
                value,
                max,
            },
            // base45_decode returns only the three Base45 faults; the length one is the rest.
            _ => Base45Error::Length(text.len()),
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Stage 3: decompression (EU certificates; hcmr codes are not compressed)
// ---------------------------------------------------------------------------------------------

/// Inflates a zlib stream, strictly: the header must be zlib's (CMF `0x78`, valid FCHECK, no
/// preset dictionary), the stream complete with a matching Adler-32, nothing after it, and the
/// output at most [`MAX_EU_INFLATED_BYTES`].
///
/// This is the check of a test vector's compression step; [`decompress_for`] adds the EU rule
/// for uncompressed payloads and the per-scheme cap.
///
/// # Errors
/// [`InspectError::Decompression`].
pub fn decompress(data: &[u8]) -> Result<Vec<u8>, InspectError> {
    inflate_capped(data, MAX_EU_INFLATED_BYTES)
}

/// The output of the decompression stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decompressed {
    /// The COSE bytes.
    pub bytes: Vec<u8>,
    /// Whether they came out of a zlib stream (false: an EU payload taken as-is).
    pub compressed: bool,
}

/// The decompression stage as [`inspect`] runs it for `scheme`.
///
/// * hcmr: no compression (docs/code-format.md section 6): the Base45 output is the COSE
///   bytes, capped at [`crate::code::MAX_COSE_BYTES`] as the hcmr decoder does
///   ([`InspectError::Base45`] `base45.too_large` beyond it).
/// * EU DCC: a payload whose first byte is not `0x78` is taken as-is, uncompressed (the rule of
///   the EU verifiers; a COSE_Sign1 never starts with `0x78`, a CBOR text string). A payload
///   that starts with `0x78` must be valid zlib, capped at [`MAX_EU_INFLATED_BYTES`].
///
/// # Errors
/// [`InspectError::Decompression`], or [`InspectError::Base45`] for an hcmr code too large.
pub fn decompress_for(scheme: Scheme, data: &[u8]) -> Result<Decompressed, InspectError> {
    if scheme == Scheme::Hcmr {
        let max = scheme.cose_cap();
        if data.len() > max {
            return Err(Base45Error::TooLarge {
                bytes: data.len(),
                max,
            }
            .into());
        }
        return Ok(Decompressed {
            bytes: data.to_vec(),
            compressed: false,
        });
    }
    if data.first() != Some(&0x78) {
        return Ok(Decompressed {
            bytes: data.to_vec(),
            compressed: false,
        });
    }
    Ok(Decompressed {
        bytes: inflate_capped(data, scheme.cose_cap())?,
        compressed: true,
    })
}

/// Inflates `data` (zlib, RFC 1950), refusing more than `cap` bytes of output: CMF `0x78`, a
/// valid FCHECK, no preset dictionary, a complete stream with a matching Adler-32 and nothing
/// after it.
fn inflate_capped(data: &[u8], cap: usize) -> Result<Vec<u8>, InspectError> {
    if data.len() < 2
        || data[0] != 0x78
        || (u16::from(data[0]) * 256 + u16::from(data[1])) % 31 != 0
        || data[1] & 0x20 != 0
    {
        return Err(DecompressError::Header(data.iter().take(2).copied().collect()).into());
    }
    let mut dec = ZlibDecoder::new(data);
    let mut out = Vec::with_capacity(data.len().saturating_mul(2).min(cap));
    let limit = cap as u64;
    (&mut dec)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Corrupt(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(DecompressError::TooLarge { max: cap }.into());
    }
    let consumed = usize::try_from(dec.total_in()).unwrap_or(usize::MAX);
    if consumed < data.len() {
        return Err(DecompressError::Trailing(data.len() - consumed).into());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Stage 4: COSE_Sign1
// ---------------------------------------------------------------------------------------------

/// How the COSE_Sign1 was tagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagForm {
    /// No tag.
    Untagged,
    /// Tag 18 (COSE_Sign1).
    Sign1,
    /// Tag 61 (CWT) around tag 18.
    CwtSign1,
}

impl TagForm {
    /// As JSON shows it: `untagged`, `18` or `61(18)`.
    pub fn name(self) -> &'static str {
        match self {
            TagForm::Untagged => "untagged",
            TagForm::Sign1 => "18",
            TagForm::CwtSign1 => "61(18)",
        }
    }
}

/// A COSE header: its parameters as decoded, in the order they came.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    /// The (label, value) pairs. Labels are unique (checked by [`decode_cose`]).
    pub params: Vec<(Value, Value)>,
}

impl Header {
    /// The value of the parameter with integer label `label`.
    pub fn get(&self, label: i64) -> Option<&Value> {
        self.params
            .iter()
            .find(|(k, _)| k.as_integer().map(i128::from) == Some(i128::from(label)))
            .map(|(_, v)| v)
    }

    /// The alg parameter (label 1), whatever its type.
    pub fn alg(&self) -> Option<&Value> {
        self.get(LABEL_ALG)
    }

    /// The kid parameter (label 4), when it is a byte string.
    pub fn kid(&self) -> Option<&[u8]> {
        self.get(LABEL_KID)
            .and_then(Value::as_bytes)
            .map(Vec::as_slice)
    }

    /// The header as JSON: `parameters` (labels as strings, values converted by [`cbor_to_json`]),
    /// and `alg` (with its name when known) and `kid` (hex) when present.
    pub fn to_json(&self) -> Json {
        let mut obj = Map::new();
        if let Some(alg) = self.alg() {
            obj.insert("alg".into(), alg_json(alg));
        }
        if let Some(kid) = self.get(LABEL_KID) {
            obj.insert("kid".into(), cbor_to_json(kid));
        }
        obj.insert("parameters".into(), map_to_json(&self.params));
        Json::Object(obj)
    }
}

/// The name of a COSE algorithm (IANA "COSE Algorithms" registry), for the ones codes use.
pub fn alg_name(alg: i64) -> Option<&'static str> {
    Some(match alg {
        -7 => "ES256",
        -35 => "ES384",
        -36 => "ES512",
        -8 => "EdDSA",
        -19 => "Ed25519",
        -37 => "PS256",
        -38 => "PS384",
        -39 => "PS512",
        -47 => "ES256K",
        -257 => "RS256",
        -258 => "RS384",
        -259 => "RS512",
        _ => return None,
    })
}

/// An alg value as JSON: `{"value": -7, "name": "ES256"}` (name null when unknown).
fn alg_json(alg: &Value) -> Json {
    let name = alg
        .as_integer()
        .and_then(|i| i64::try_from(i128::from(i)).ok())
        .and_then(alg_name);
    json!({ "value": cbor_to_json(alg), "name": name })
}

/// Where a header parameter was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamLocation {
    /// Only in the protected header.
    Protected,
    /// Only in the unprotected header (not covered by the signature).
    Unprotected,
    /// In both, with equal values.
    Both,
    /// In both, with different values: the protected one is the one reported (the signed one;
    /// a verifier must never fall back to the unprotected one).
    BothDiffer,
}

impl ParamLocation {
    /// As JSON shows it.
    pub fn name(self) -> &'static str {
        match self {
            ParamLocation::Protected => "protected",
            ParamLocation::Unprotected => "unprotected",
            ParamLocation::Both => "both",
            ParamLocation::BothDiffer => "both_differ",
        }
    }
}

/// A decoded COSE_Sign1, its headers not judged.
#[derive(Debug, Clone, PartialEq)]
pub struct CoseSign1Info {
    /// How it was tagged.
    pub tag: TagForm,
    /// The protected header bytes, as received (what a signature covers).
    pub protected_bytes: Vec<u8>,
    /// The protected header, decoded (empty when the bytes are empty).
    pub protected: Header,
    /// The unprotected header.
    pub unprotected: Header,
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// The signature bytes (not checked).
    pub signature: Vec<u8>,
}

impl CoseSign1Info {
    /// Where a parameter is, and its value (the protected one when both headers carry it).
    fn locate(&self, label: i64) -> Option<(&Value, ParamLocation)> {
        match (self.protected.get(label), self.unprotected.get(label)) {
            (Some(p), None) => Some((p, ParamLocation::Protected)),
            (None, Some(u)) => Some((u, ParamLocation::Unprotected)),
            (Some(p), Some(u)) if p == u => Some((p, ParamLocation::Both)),
            (Some(p), Some(_)) => Some((p, ParamLocation::BothDiffer)),
            (None, None) => None,
        }
    }

    /// The kid and where it was found (the protected one when both headers carry one), when it
    /// is a byte string.
    pub fn kid(&self) -> Option<(&[u8], ParamLocation)> {
        let (v, loc) = self.locate(LABEL_KID)?;
        v.as_bytes().map(|b| (b.as_slice(), loc))
    }

    /// The alg and where it was found (the protected one when both headers carry one).
    pub fn alg(&self) -> Option<(&Value, ParamLocation)> {
        self.locate(LABEL_ALG)
    }
}

/// Decodes COSE bytes: untagged, tag 18, or 61(18); an array of 4 (protected bstr, unprotected
/// map, payload bstr, signature bstr). The headers are decoded and reported whatever they say:
/// no alg or kid policy is applied.
///
/// # Errors
/// [`InspectError::Cose`].
pub fn decode_cose(bytes: &[u8]) -> Result<CoseSign1Info, InspectError> {
    let value = crate::cbor::decode_exact(bytes).map_err(|e| match e {
        CborError::Trailing(n) => CoseError::Trailing(n),
        other => CoseError::Cbor(cbor_reason(&other)),
    })?;
    let (tag, value) = untag(value)?;
    let items = match value {
        Value::Array(items) if items.len() == 4 => items,
        Value::Array(items) => {
            return Err(
                CoseError::Structure(format!("an array of {} items, not 4", items.len())).into(),
            )
        }
        other => {
            return Err(CoseError::Structure(format!("{}, not an array", kind(&other))).into())
        }
    };
    let mut items = items.into_iter();
    let mut next = || items.next().unwrap_or(Value::Null);
    let protected_bytes = match next() {
        Value::Bytes(b) => b,
        other => {
            return Err(CoseError::Structure(format!(
                "protected header is {}, not a byte string",
                kind(&other)
            ))
            .into())
        }
    };
    let protected = if protected_bytes.is_empty() {
        Header::default()
    } else {
        match crate::cbor::decode_exact(&protected_bytes) {
            Ok(Value::Map(params)) => header("protected", params)?,
            Ok(other) => return Err(CoseError::ProtectedHeader(kind(&other).into()).into()),
            Err(e) => return Err(CoseError::ProtectedHeader(cbor_reason(&e)).into()),
        }
    };
    let unprotected = match next() {
        Value::Map(params) => header("unprotected", params)?,
        other => {
            return Err(CoseError::Structure(format!(
                "unprotected header is {}, not a map",
                kind(&other)
            ))
            .into())
        }
    };
    let payload = match next() {
        Value::Bytes(b) => b,
        Value::Null => return Err(CoseError::PayloadMissing.into()),
        other => {
            return Err(CoseError::Structure(format!(
                "payload is {}, not a byte string or nil",
                kind(&other)
            ))
            .into())
        }
    };
    let signature = match next() {
        Value::Bytes(b) => b,
        other => {
            return Err(CoseError::Structure(format!(
                "signature is {}, not a byte string",
                kind(&other)
            ))
            .into())
        }
    };
    Ok(CoseSign1Info {
        tag,
        protected_bytes,
        protected,
        unprotected,
        payload,
        signature,
    })
}

/// Removes the accepted tags: none, 18, or 61 around 18.
fn untag(value: Value) -> Result<(TagForm, Value), CoseError> {
    match value {
        Value::Tag(TAG_CWT, inner) => match *inner {
            Value::Tag(TAG_COSE_SIGN1, v) => Ok((TagForm::CwtSign1, *v)),
            Value::Tag(t, _) => Err(CoseError::Tag(format!("{TAG_CWT}({t})"))),
            _ => Err(CoseError::Tag(format!("{TAG_CWT}(untagged)"))),
        },
        Value::Tag(TAG_COSE_SIGN1, v) => Ok((TagForm::Sign1, *v)),
        Value::Tag(t, _) => Err(CoseError::Tag(t.to_string())),
        v => Ok((TagForm::Untagged, v)),
    }
}

/// A header from its map, refusing a label that appears twice.
fn header(which: &'static str, params: Vec<(Value, Value)>) -> Result<Header, CoseError> {
    for (i, (label, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(l, _)| l == label) {
            return Err(CoseError::DuplicateLabel {
                header: which,
                label: key_string(label),
            });
        }
    }
    Ok(Header { params })
}

/// The reason of a CBOR decoding error, without the hcmr decoder's "CBOR:" wording.
fn cbor_reason(e: &CborError) -> String {
    match e {
        CborError::Malformed(reason) => reason.clone(),
        CborError::Trailing(n) => format!("{n} bytes after the item"),
    }
}

/// A short name of a value's CBOR type, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "an integer",
        Value::Bytes(_) => "a byte string",
        Value::Float(_) => "a float",
        Value::Text(_) => "a text string",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Tag(..) => "a tagged item",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        _ => "an unknown item",
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 5: CBOR payload
// ---------------------------------------------------------------------------------------------

/// The decoded payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// The claims map, as decoded (a [`Value::Map`]).
    pub claims: Value,
    /// For an EU certificate, the DGC: the value at claim `-260`, key `1`.
    pub hcert: Option<Value>,
}

/// Decodes the payload: one CBOR map (any keys). For an EU certificate, the hcert claim must be
/// a map holding key `1` (the EU DGC v1), whose value is a map.
///
/// # Errors
/// [`InspectError::Payload`].
pub fn decode_payload(scheme: Scheme, bytes: &[u8]) -> Result<Payload, InspectError> {
    if bytes.is_empty() {
        return Err(PayloadError::Empty.into());
    }
    let claims = crate::cbor::decode_exact(bytes).map_err(|e| match e {
        CborError::Trailing(n) => PayloadError::Trailing(n),
        other => PayloadError::Cbor(cbor_reason(&other)),
    })?;
    let Value::Map(entries) = &claims else {
        return Err(PayloadError::NotMap.into());
    };
    let hcert = match scheme {
        Scheme::Hcmr => None,
        Scheme::EuDcc => {
            let h = map_get(entries, CLAIM_HCERT).ok_or(PayloadError::Hcert("no claim -260"))?;
            let Value::Map(h) = h else {
                return Err(PayloadError::Hcert("claim -260 is not a map").into());
            };
            let dgc = map_get(h, HCERT_EU_DGC_V1)
                .ok_or(PayloadError::Hcert("claim -260 has no key 1 (EU DGC v1)"))?;
            // The DGC is a JSON-schema object, so a map; anything else (e.g. a byte string
            // holding CBOR, as in the EU test case CBO1) is a malformed certificate.
            if !matches!(dgc, Value::Map(_)) {
                return Err(PayloadError::Hcert("claim -260 / 1 (the DGC) is not a map").into());
            }
            Some(dgc.clone())
        }
    };
    Ok(Payload { claims, hcert })
}

/// The value at integer key `key` of a map (the first, if it repeats).
fn map_get(entries: &[(Value, Value)], key: i64) -> Option<&Value> {
    entries
        .iter()
        .find(|(k, _)| k.as_integer().map(i128::from) == Some(i128::from(key)))
        .map(|(_, v)| v)
}

// ---------------------------------------------------------------------------------------------
// CBOR -> JSON
// ---------------------------------------------------------------------------------------------

/// Converts a CBOR value to JSON for display:
///
/// * integers as numbers (as strings beyond the 64-bit range);
/// * byte strings as lower-case hex strings;
/// * floats as numbers (`"NaN"`, `"Infinity"`, `"-Infinity"` as strings: JSON has none);
/// * tags as `{"tag": n, "value": ...}`;
/// * maps as objects whose keys are the text keys as they are, integer keys in decimal, and any
///   other key in CBOR diagnostic style (`h'0a0b'`, `true`, `1.5`, or the JSON of the key); a
///   key whose string was already used gets `#2`, `#3`, ... appended, so nothing is lost.
pub fn cbor_to_json(v: &Value) -> Json {
    match v {
        Value::Integer(i) => int_json(i128::from(*i)),
        Value::Bytes(b) => Json::String(hex::encode(b)),
        Value::Float(f) => float_json(*f),
        Value::Text(t) => Json::String(t.clone()),
        Value::Bool(b) => Json::Bool(*b),
        Value::Null => Json::Null,
        Value::Tag(t, inner) => json!({ "tag": t, "value": cbor_to_json(inner) }),
        Value::Array(items) => Json::Array(items.iter().map(cbor_to_json).collect()),
        Value::Map(entries) => map_to_json(entries),
        other => Json::String(format!("{other:?}")),
    }
}

fn int_json(n: i128) -> Json {
    if let Ok(i) = i64::try_from(n) {
        Json::from(i)
    } else if let Ok(u) = u64::try_from(n) {
        Json::from(u)
    } else {
        Json::String(n.to_string())
    }
}

fn float_json(f: f64) -> Json {
    match serde_json::Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None if f.is_nan() => Json::String("NaN".into()),
        None if f > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

fn map_to_json(entries: &[(Value, Value)]) -> Json {
    let mut obj = Map::new();
    for (k, v) in entries {
        let base = key_string(k);
        let mut key = base.clone();
        let mut n = 2;
        while obj.contains_key(&key) {
            key = format!("{base}#{n}");
            n += 1;
        }
        obj.insert(key, cbor_to_json(v));
    }
    Json::Object(obj)
}

/// A map key as a JSON object key.
fn key_string(k: &Value) -> String {
    match k {
        Value::Text(t) => t.clone(),
        Value::Integer(i) => i128::from(*i).to_string(),
        Value::Bytes(b) => format!("h'{}'", hex::encode(b)),
        Value::Float(f) => match float_json(*f) {
            Json::String(s) => s,
            other => other.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => cbor_to_json(other).to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The whole pipeline
// ---------------------------------------------------------------------------------------------

/// The size of each stage's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageSizes {
    /// Characters of the code as inspected (line endings trimmed), prefix included.
    pub code_chars: usize,
    /// Characters of Base45 text after the prefix (the prefix stage's output).
    pub base45_chars: usize,
    /// Bytes after Base45 decoding (for an hcmr code, already the COSE bytes).
    pub compressed_bytes: usize,
    /// Bytes after decompression (the COSE bytes; for hcmr, the same as `compressed_bytes`).
    pub cose_bytes: usize,
    /// Bytes of the COSE payload (the CBOR claims).
    pub payload_bytes: usize,
}

/// Everything [`inspect`] found in a code string. The signature is **not** verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The scheme named by the prefix.
    pub scheme: Scheme,
    /// Each stage's output size.
    pub sizes: StageSizes,
    /// Whether the COSE bytes were zlib-compressed (false for every hcmr code, and an EU payload
    /// taken as-is).
    pub compressed: bool,
    /// The COSE_Sign1: tag form, headers, payload and signature bytes.
    pub cose: CoseSign1Info,
    /// The claims, converted by [`cbor_to_json`].
    pub claims: Json,
    /// For an EU certificate, the DGC at claim `-260` / `1`, converted by [`cbor_to_json`].
    pub hcert: Option<Json>,
    /// For an hcmr code, the strict hcmr decoder's verdict ([`HealthCode::decode`]): `Ok` when
    /// it would accept the code's structure (the signature is still unchecked), otherwise its
    /// error. `None` for other schemes.
    pub hcmr_decoder: Option<Result<(), CodeError>>,
}

/// Decodes `code` stage by stage, without verifying its signature. See the module docs.
///
/// # Errors
/// The first stage that fails, as an [`InspectError`] naming it.
pub fn inspect(code: &str) -> Result<Inspection, InspectError> {
    let (scheme, text) = unprefix(code)?;
    let code_chars = code
        .trim_start()
        .trim_end_matches(['\r', '\n', '\t'])
        .chars()
        .count();
    let compressed = base45(text)?;
    let cose_bytes = decompress_for(scheme, &compressed)?;
    let cose = decode_cose(&cose_bytes.bytes)?;
    let payload = decode_payload(scheme, &cose.payload)?;
    let hcmr_decoder = match scheme {
        Scheme::Hcmr => Some(HealthCode::decode(code).map(|_| ())),
        Scheme::EuDcc => None,
    };
    Ok(Inspection {
        scheme,
        sizes: StageSizes {
            code_chars,
            base45_chars: text.chars().count(),
            compressed_bytes: compressed.len(),
            cose_bytes: cose_bytes.bytes.len(),
            payload_bytes: cose.payload.len(),
        },
        compressed: cose_bytes.compressed,
        claims: cbor_to_json(&payload.claims),
        hcert: payload.hcert.as_ref().map(cbor_to_json),
        cose,
        hcmr_decoder,
    })
}

impl Inspection {
    /// For an hcmr code whose signature has 64 bytes, its code id: the signature's first 16
    /// bytes ([`HealthCode::cti`]; docs/code-format.md section 5.1). Not a claim, and not
    /// checked: the signature is not verified here.
    pub fn cti(&self) -> Option<crate::code::Cti> {
        if self.scheme != Scheme::Hcmr || self.cose.signature.len() != 64 {
            return None;
        }
        let mut cti = [0u8; crate::code::CTI_LEN];
        cti.copy_from_slice(&self.cose.signature[..crate::code::CTI_LEN]);
        Some(cti)
    }

    /// The inspection as JSON (the output of `hcmr inspect`; pretty-printing is the caller's):
    ///
    /// ```text
    /// { "scheme": "hcmr" | "eu-dcc", "prefix": "HCMR1:",
    ///   "signature_verified": false,
    ///   "sizes": { "code_chars", "base45_chars", "compressed_bytes", "cose_bytes", "payload_bytes" },
    ///   "compressed": false (hcmr, never compressed) | true (EU, zlib),
    ///   "cose_tag": "untagged" | "18" | "61(18)",
    ///   "protected": { "bytes", "alg"?, "kid"?, "parameters" }, "unprotected": { ... },
    ///   "alg": { "value", "name", "location" } | null,
    ///   "kid": { "hex", "location", "unprotected_hex"? } | null,
    ///   "signature_bytes": n,
    ///   "cti": "<32 hex digits>"             (hcmr only, when the signature has 64 bytes)
    ///   "claims": { ... },
    ///   "hcert": { ... }                     (EU only)
    ///   "hcmr_decoder": { "accepted", "code"?, "error"? }   (hcmr only) }
    /// ```
    pub fn to_json(&self) -> Json {
        let mut obj = Map::new();
        obj.insert("scheme".into(), self.scheme.name().into());
        obj.insert("prefix".into(), self.scheme.prefix().into());
        obj.insert("signature_verified".into(), false.into());
        let s = &self.sizes;
        obj.insert(
            "sizes".into(),
            json!({
                "code_chars": s.code_chars,
                "base45_chars": s.base45_chars,
                "compressed_bytes": s.compressed_bytes,
                "cose_bytes": s.cose_bytes,
                "payload_bytes": s.payload_bytes,
            }),
        );
        obj.insert("compressed".into(), self.compressed.into());
        obj.insert("cose_tag".into(), self.cose.tag.name().into());
        let mut protected = self.cose.protected.to_json();
        if let Json::Object(p) = &mut protected {
            p.insert("bytes".into(), self.cose.protected_bytes.len().into());
        }
        obj.insert("protected".into(), protected);
        obj.insert("unprotected".into(), self.cose.unprotected.to_json());
        let alg = match self.cose.alg() {
            Some((v, loc)) => {
                let mut a = alg_json(v);
                a["location"] = loc.name().into();
                a
            }
            None => Json::Null,
        };
        obj.insert("alg".into(), alg);
        let kid = match self.cose.kid() {
            Some((kid, loc)) => {
                let mut k = json!({ "hex": hex::encode(kid), "location": loc.name() });
                if loc == ParamLocation::BothDiffer {
                    k["unprotected_hex"] = self
                        .cose
                        .unprotected
                        .get(LABEL_KID)
                        .map(cbor_to_json)
                        .into();
                }
                k
            }
            None => Json::Null,
        };
        obj.insert("kid".into(), kid);
        obj.insert("signature_bytes".into(), self.cose.signature.len().into());
        if let Some(cti) = self.cti() {
            obj.insert("cti".into(), hex::encode(cti).into());
        }
        obj.insert("claims".into(), self.claims.clone());
        if let Some(h) = &self.hcert {
            obj.insert("hcert".into(), h.clone());
        }
        if let Some(verdict) = &self.hcmr_decoder {
            let v = match verdict {
                Ok(()) => json!({ "accepted": true }),
                Err(e) => json!({ "accepted": false, "code": e.code(), "error": e.to_string() }),
            };
            obj.insert("hcmr_decoder".into(), v);
        }
        Json::Object(obj)
    }
}

#[cfg(test)]
mod tests;

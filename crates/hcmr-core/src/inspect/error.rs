//! The errors of the inspector: one type per stage, wrapped in [`InspectError`].

use super::*;

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

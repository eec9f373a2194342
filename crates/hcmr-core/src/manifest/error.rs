//! Decode errors of a trip manifest (docs/transport.md sections 2 and 3), one variant per fault,
//! grouped by stage like [`crate::code::CodeError`].

use crate::code::CodeError;

/// Why a string is not a well-formed trip manifest, or a value is not a valid manifest field.
/// [`ManifestError::code`] gives a stable dotted identifier (`prefix.missing`,
/// `manifest.people`, ...) for APIs and logs; Base45 and COSE faults keep the code format's
/// identifiers (`base45.length`, `cose.kid_unprotected`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    // --- transport: prefix ---
    /// Nothing left after removing line endings.
    #[error("the manifest is empty")]
    Empty,
    /// Longer than [`super::MAX_MANIFEST_CHARS`].
    #[error("the manifest has {0} characters; at most {max} are accepted", max = super::MAX_MANIFEST_CHARS)]
    TooLong(usize),
    /// A health code (`HCMR1:`) or another scheme's prefix: not a manifest.
    #[error("prefix {0:?} is not a trip manifest's; manifests start with {p:?}", p = super::PREFIX)]
    ForeignPrefix(String),
    /// No `HCMRT1:` prefix.
    #[error("missing prefix: trip manifests start with {p:?}", p = super::PREFIX)]
    MissingPrefix,

    // --- transport: Base45 (RFC 9285), with the code format's variants ---
    /// A Base45 fault: a [`CodeError`] of the `base45.*` family.
    #[error("{0}")]
    Base45(CodeError),
    /// The Base45 text decodes to more than [`super::MAX_COSE_BYTES`] bytes.
    #[error("Base45: decodes to {0} bytes; at most {max} are accepted", max = super::MAX_COSE_BYTES)]
    TooLarge(usize),

    // --- COSE_Sign1 (RFC 9052), with the code format's rules and variants ---
    /// A COSE_Sign1 fault: a [`CodeError`] of the `cbor.*` or `cose.*` family, about the
    /// envelope (untagged, canonical, `{1: -8, 4: kid}`, empty unprotected header).
    #[error("{0}")]
    Cose(CodeError),

    // --- the payload: a CBOR array (docs/transport.md section 3) ---
    /// The payload is not well-formed CBOR.
    #[error("manifest: CBOR not well-formed: {0}")]
    Cbor(String),
    /// Bytes after the payload's one item.
    #[error("manifest: {0} bytes after the manifest array")]
    CborTrailing(usize),
    /// Well-formed CBOR in another encoding than the encoder's (an indefinite length, a
    /// chunked string, a longer head than needed): one manifest has one string.
    #[error(
        "manifest: not in canonical form at byte {0}: hcmr writes definite lengths, \
         unchunked strings and the shortest head of each item"
    )]
    NotCanonical(usize),
    /// The payload is not an array of [`super::FIELDS`] elements.
    #[error("manifest: the payload must be an array of {n} elements; {0}", n = super::FIELDS)]
    NotArray(String),
    /// A field of the wrong CBOR type, or a value outside its rule.
    #[error("manifest: {field} {why}")]
    Field {
        /// The field, as docs/transport.md section 3 names it (`vehicle`, `transit`, ...).
        field: &'static str,
        /// What is wrong, in words.
        why: String,
    },
    /// A control or bidirectional-control character in a text field (the code format's text
    /// rule, [`crate::identity::refused_character`]).
    #[error(
        "manifest: {field} has the character {} at position {position}, which is not allowed \
         (control and bidirectional-control characters)",
        crate::identity::code_point(*ch)
    )]
    TextCharacter {
        /// `vehicle`, `place` or `escort`.
        field: &'static str,
        /// The character.
        ch: char,
        /// Its position in the text, counting characters from 1.
        position: usize,
    },
    /// A person's 13 bytes break a rule of docs/transport.md section 3.1.
    #[error("manifest: the person at seat {seat}: {why}")]
    Person {
        /// 1-based position in `people`.
        seat: usize,
        /// What is wrong, in words.
        why: String,
    },
}

impl ManifestError {
    /// A stable dotted identifier of the fault, `stage.fault`; Base45 and COSE faults give
    /// the code format's identifiers.
    pub fn code(&self) -> &'static str {
        use ManifestError::*;
        match self {
            Empty => "prefix.empty",
            TooLong(_) => "prefix.too_long",
            ForeignPrefix(_) => "prefix.foreign",
            MissingPrefix => "prefix.missing",
            Base45(e) | Cose(e) => e.code(),
            TooLarge(_) => "base45.too_large",
            Cbor(_) => "manifest.cbor",
            CborTrailing(_) => "manifest.trailing",
            NotCanonical(_) => "manifest.not_canonical",
            NotArray(_) => "manifest.not_array",
            Field { .. } => "manifest.field",
            TextCharacter { .. } => "manifest.character",
            Person { .. } => "manifest.person",
        }
    }

    /// A field fault.
    pub(crate) fn field(field: &'static str, why: impl Into<String>) -> Self {
        ManifestError::Field {
            field,
            why: why.into(),
        }
    }
}

impl From<crate::cbor::CborError> for ManifestError {
    /// The payload's CBOR fault (`manifest.cbor`, `manifest.trailing`).
    fn from(e: crate::cbor::CborError) -> Self {
        match e {
            crate::cbor::CborError::Malformed(why) => ManifestError::Cbor(why),
            crate::cbor::CborError::Trailing(n) => ManifestError::CborTrailing(n),
        }
    }
}

/// Why a boarded code cannot be packed into a person's 13 bytes ([`super::Person::from_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonError {
    /// The code was issued after `sealed_at`: its age would be negative.
    #[error("the code was issued at {iat}, after the manifest's seal at {sealed_at}")]
    IssuedAfterSeal {
        /// The code's `iat`.
        iat: crate::UnixTime,
        /// The seal time.
        sealed_at: crate::UnixTime,
    },
    /// The code is older than 65,535 minutes (about 45 days) at `sealed_at`.
    #[error("the code is {0} minutes old at the seal; at most 65535 fit")]
    TooOld(u64),
    /// An issuer index above 15 (4 bits).
    #[error("issuer index {0} does not fit 4 bits (at most 15)")]
    IssuerIndex(u8),
}

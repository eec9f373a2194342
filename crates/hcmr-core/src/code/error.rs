//! Decode errors, one variant per fault, grouped by pipeline stage.

/// Why a string is not a well-formed health code. Each fault that earlier verifiers mishandled
/// (see the EU DCC notes in docs/code-format.md) has its own variant, and [`CodeError::code`]
/// gives a stable dotted identifier (`base45.length`, `cose.kid_unprotected`, ...) for APIs and
/// logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    // --- transport: prefix ---
    /// Nothing left after removing line endings.
    #[error("the code is empty")]
    Empty,
    /// Longer than [`super::MAX_CODE_CHARS`].
    #[error("the code has {0} characters; at most {max} are accepted", max = super::MAX_CODE_CHARS)]
    TooLong(usize),
    /// A known prefix of another scheme, e.g. `HC1:` of the EU Digital COVID Certificate.
    #[error("prefix {0:?} belongs to another scheme; hcmr codes start with {p:?}", p = super::PREFIX)]
    ForeignPrefix(String),
    /// No `HCMR1:` prefix.
    #[error("missing prefix: hcmr codes start with {p:?}", p = super::PREFIX)]
    MissingPrefix,

    // --- transport: Base45 (RFC 9285) ---
    /// A character outside the 45-character alphabet (includes every byte above 0x7F).
    #[error("Base45: character {ch:?} at position {position} is not in the RFC 9285 alphabet")]
    Base45Character {
        /// Zero-based character index after the prefix.
        position: usize,
        /// The offending character.
        ch: char,
    },
    /// A length with `len % 3 == 1`, which no byte string encodes to.
    #[error("Base45: length {0} leaves a single trailing character (len % 3 == 1)")]
    Base45Length(usize),
    /// A triplet whose value exceeds 65535 (or a final pair above 255).
    #[error("Base45: group at position {position} has value {value}, above {max}")]
    Base45Overflow {
        /// Zero-based index of the group's first character.
        position: usize,
        /// The decoded value.
        value: u32,
        /// 65535 for a triplet, 255 for a final pair.
        max: u32,
    },
    /// The Base45 text decodes to more than [`super::MAX_COSE_BYTES`] bytes (not a code).
    #[error("Base45: decodes to {0} bytes; at most {max} are accepted", max = super::MAX_COSE_BYTES)]
    Base45TooLarge(usize),

    // --- COSE_Sign1 (RFC 9052) ---
    /// Not well-formed CBOR.
    #[error("CBOR: not well-formed: {0}")]
    Cbor(String),
    /// Bytes after the one CBOR item.
    #[error("CBOR: {0} bytes after the COSE_Sign1 item")]
    CborTrailing(usize),
    /// Any CBOR tag around the COSE_Sign1, 18 (COSE_Sign1) and 61 (CWT) included: hcmr codes
    /// are untagged, and one code has one encoding.
    #[error("COSE: unexpected CBOR tag {0}; hcmr codes are an untagged COSE_Sign1")]
    UnexpectedTag(u64),
    /// Well-formed CBOR in another encoding than the encoder's: an indefinite length, a chunked
    /// string, a longer head than needed. One code has exactly one string (docs/code-format.md
    /// section 8.4).
    #[error(
        "CBOR: the {part} is not in canonical form at byte {offset}: hcmr writes definite \
         lengths, unchunked strings and the shortest head of each item"
    )]
    NotCanonical {
        /// `COSE_Sign1`, `protected header` or `claims`.
        part: &'static str,
        /// Offset of the first byte that differs from the canonical encoding, within the part.
        offset: usize,
    },
    /// The item is not a COSE_Sign1 structure.
    #[error("COSE: not a COSE_Sign1 structure: {0}")]
    NotCoseSign1(String),
    /// The protected header names no algorithm.
    #[error("COSE: protected header has no alg")]
    MissingAlgorithm,
    /// An algorithm other than EdDSA (-8).
    #[error("COSE: algorithm {0} is not accepted; hcmr codes use EdDSA (-8)")]
    UnsupportedAlgorithm(String),
    /// A `crit` header parameter: hcmr understands none, so RFC 9052 section 3.1 says reject.
    #[error("COSE: critical header parameters are not understood")]
    CriticalHeader,
    /// No kid in the protected header, and none anywhere else.
    #[error("COSE: protected header has no kid")]
    MissingKid,
    /// A kid only in the unprotected header; never trusted (the EU DCC fallback fault).
    #[error("COSE: kid appears only in the unprotected header, which is not signed")]
    KidUnprotected,
    /// Protected and unprotected headers carry different kids.
    #[error("COSE: unprotected kid differs from the protected kid")]
    KidConflict,
    /// Anything in the unprotected header, even the protected kid again: it is not signed, so
    /// accepting it would give one code many strings.
    #[error("COSE: the unprotected header must be empty; it is not signed")]
    UnprotectedNotEmpty,
    /// A kid that is not 8 bytes.
    #[error("COSE: kid has {0} bytes; hcmr kids have 8")]
    KidLength(usize),
    /// A detached or empty payload.
    #[error("COSE: no payload")]
    MissingPayload,
    /// A signature that is not 64 bytes (Ed25519).
    #[error("COSE: signature has {0} bytes; Ed25519 signatures have 64")]
    SignatureLength(usize),

    // --- CWT claims (RFC 8392) ---
    /// The payload is not a CBOR map.
    #[error("claims: payload is not a CBOR map")]
    ClaimsNotMap,
    /// A map key appears twice (RFC 8949 section 5.6: invalid for our purposes).
    #[error("claims: duplicate key {0} in {1}")]
    DuplicateKey(String, &'static str),
    /// A required claim or field is absent.
    #[error("claims: missing {0}")]
    MissingClaim(&'static str),
    /// A claim or field of the wrong CBOR type or out of range.
    #[error("claims: {0} has the wrong type or value: {1}")]
    BadClaim(&'static str, &'static str),
    /// A control or bidirectional-control character in a text claim: no hcmr issuer writes one
    /// (names are refused at issue), and a verifier's screen must not act on one.
    #[error(
        "claims: {what} has the character {} at position {position}, which is not allowed \
         (control and bidirectional-control characters)",
        crate::identity::code_point(*ch)
    )]
    ClaimCharacter {
        /// The claim, e.g. `subject.name`.
        what: &'static str,
        /// The character.
        ch: char,
        /// Its position in the text, counting characters from 1.
        position: usize,
    },
    /// A time claim that is NaN or infinite.
    #[error("claims: {0} is not a finite number")]
    TimeNotFinite(&'static str),
    /// A time claim with a fractional part.
    #[error("claims: {0} is not a whole number of seconds")]
    TimeNotWhole(&'static str),
    /// A negative time claim.
    #[error("claims: {0} is negative")]
    TimeNegative(&'static str),
    /// A time claim after 9999-12-31.
    #[error("claims: {0} is after the year 9999")]
    TimeTooLarge(&'static str),
}

impl CodeError {
    /// A stable dotted identifier of the fault, `stage.fault`.
    pub fn code(&self) -> &'static str {
        use CodeError::*;
        match self {
            Empty => "prefix.empty",
            TooLong(_) => "prefix.too_long",
            ForeignPrefix(_) => "prefix.foreign",
            MissingPrefix => "prefix.missing",
            Base45Character { .. } => "base45.character",
            Base45Length(_) => "base45.length",
            Base45Overflow { .. } => "base45.overflow",
            Base45TooLarge(_) => "base45.too_large",
            Cbor(_) => "cbor.malformed",
            CborTrailing(_) => "cbor.trailing",
            NotCanonical { .. } => "cbor.not_canonical",
            UnexpectedTag(_) => "cose.tag",
            NotCoseSign1(_) => "cose.structure",
            MissingAlgorithm => "cose.alg_missing",
            UnsupportedAlgorithm(_) => "cose.alg",
            CriticalHeader => "cose.crit",
            MissingKid => "cose.kid_missing",
            KidUnprotected => "cose.kid_unprotected",
            KidConflict => "cose.kid_conflict",
            UnprotectedNotEmpty => "cose.unprotected_not_empty",
            KidLength(_) => "cose.kid_length",
            MissingPayload => "cose.payload_missing",
            SignatureLength(_) => "cose.signature_length",
            ClaimsNotMap => "claims.not_map",
            DuplicateKey(..) => "claims.duplicate_key",
            MissingClaim(_) => "claims.missing",
            BadClaim(..) => "claims.type",
            ClaimCharacter { .. } => "claims.character",
            TimeNotFinite(_) => "claims.time_not_finite",
            TimeNotWhole(_) => "claims.time_not_whole",
            TimeNegative(_) => "claims.time_negative",
            TimeTooLarge(_) => "claims.time_too_large",
        }
    }
}

impl From<crate::cbor::CborError> for CodeError {
    /// A code's CBOR fault, in the code decoder's own variants (`cbor.malformed`,
    /// `cbor.trailing`).
    fn from(e: crate::cbor::CborError) -> Self {
        match e {
            crate::cbor::CborError::Malformed(why) => CodeError::Cbor(why),
            crate::cbor::CborError::Trailing(n) => CodeError::CborTrailing(n),
        }
    }
}

//! The five stages of the inspector: prefix, Base45, decompression, COSE_Sign1 and the CBOR
//! payload, each its own function.

use super::*;

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
pub(super) fn alg_json(alg: &Value) -> Json {
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
    /// The unprotected header (not covered by the signature).
    pub unprotected: Header,
    /// The payload as carried (for an EU certificate, before the hcert claim is read).
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

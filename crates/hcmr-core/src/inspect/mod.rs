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

mod error;
mod json;
mod stages;

pub use error::*;
pub use json::*;
pub use stages::*;

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

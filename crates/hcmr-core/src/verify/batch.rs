//! Batch verification: many codes decided together, their Ed25519 signatures checked with one
//! batch equation instead of one equation each.
//!
//! Each code first goes through the ordinary decision (`verify_decoded_with`) with its
//! signature *presumed* valid under the first candidate key; the decision records that key.
//! Then every presumption is confirmed at once with ed25519-dalek's `verify_batch` (a random
//! linear combination of the RFC 8032 equations, cheaper per signature than single checks; the
//! figures are in BENCHMARKS.md, "Batch verification"). When a batch fails, it is split in halves and each half confirmed the
//! same way, down to single strict checks, so a forged code among valid ones costs a few extra
//! batches, not a single check for everyone; a code whose presumption fails is decided again
//! with real single checks of every candidate key, exactly as [`super::verify_decoded`] does.
//!
//! The verdicts equal those of [`super::verify`] code by code, with one caveat that only an
//! issuer can exploit: a signature whose `R` has a small-order component fails `verify_strict`
//! but may pass the cofactorless batch equation, depending on the batch's random coefficients.
//! Such a signature can only be made with the issuer's private key (the equation still binds
//! `s` to the key), and whoever holds that key can sign any code anyway. `s` is checked
//! canonical in both, and trusted keys are refused when weak, as `verify_strict` requires.

use ed25519_dalek::Signature;

use super::{malformed, verify_decoded, verify_decoded_with, Verdict};
use crate::code::HealthCode;
use crate::keys::PublicKey;
use crate::time::UnixTime;
use crate::trust::TrustSnapshot;

/// Signatures confirmed by one batch equation at most. ed25519-dalek's multiscalar
/// multiplication gains little beyond this, and a failed batch is re-checked in halves.
pub const MAX_SIGNATURES_PER_EQUATION: usize = 64;

/// One code to decide, with the trust snapshot and the time to decide it by. Items of one call may come from different requests, so each has its own.
#[derive(Clone, Copy)]
pub struct Item<'a> {
    /// The code string as scanned.
    pub code: &'a str,
    /// The trust snapshot of the deciding node.
    pub trust: &'a TrustSnapshot,
    /// The decision time.
    pub now: UnixTime,
}

/// Decides every code in `codes` by `trust` at `now`; the verdicts are in the order of `codes`. The same verdicts as [`super::verify`] on each code
/// (see the module documentation for the one caveat).
pub fn verify_batch(codes: &[&str], trust: &TrustSnapshot, now: UnixTime) -> Vec<Verdict> {
    let items: Vec<Item<'_>> = codes.iter().map(|code| Item { code, trust, now }).collect();
    verify_items(&items)
}

/// As [`verify_batch`], each item with its own snapshot and time.
pub fn verify_items(items: &[Item<'_>]) -> Vec<Verdict> {
    let mut decoded: Vec<Option<HealthCode>> = Vec::with_capacity(items.len());
    let mut verdicts = Vec::with_capacity(items.len());
    // (item index, the key the decision presumed to have signed it).
    let mut presumed: Vec<(usize, PublicKey)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match HealthCode::decode(item.code) {
            Err(e) => {
                verdicts.push(malformed(&e));
                decoded.push(None);
            }
            Ok(hc) => {
                let mut asked = None;
                let v = verify_decoded_with(&hc, item.trust, item.now, &mut |key| {
                    asked = Some(*key);
                    true
                });
                if let Some(key) = asked {
                    presumed.push((i, key));
                }
                verdicts.push(v);
                decoded.push(Some(hc));
            }
        }
    }
    for chunk in presumed.chunks(MAX_SIGNATURES_PER_EQUATION) {
        confirm(chunk, items, &decoded, &mut verdicts);
    }
    verdicts
}

/// Confirms the presumed signatures of `chunk`, deciding again with single checks the codes
/// whose presumption fails.
fn confirm(
    chunk: &[(usize, PublicKey)],
    items: &[Item<'_>],
    decoded: &[Option<HealthCode>],
    verdicts: &mut [Verdict],
) {
    let code = |i: usize| {
        decoded[i]
            .as_ref()
            .expect("only decoded codes are presumed")
    };
    if chunk.len() <= 2 {
        for &(i, ref key) in chunk {
            let hc = code(i);
            if !hc.signature_valid(key) {
                verdicts[i] = verify_decoded(hc, items[i].trust, items[i].now);
            }
        }
        return;
    }
    let messages: Vec<&[u8]> = chunk.iter().map(|&(i, _)| code(i).to_be_signed()).collect();
    let signatures: Vec<Signature> = chunk
        .iter()
        .map(|&(i, _)| Signature::from_bytes(code(i).signature()))
        .collect();
    let keys: Vec<_> = chunk.iter().map(|(_, k)| k.key).collect();
    if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
        return;
    }
    let (a, b) = chunk.split_at(chunk.len() / 2);
    confirm(a, items, decoded, verdicts);
    confirm(b, items, decoded, verdicts);
}

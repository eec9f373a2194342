//! No input panics the decoder.

use super::*;
use proptest::prelude::*;

proptest! {
    /// Any text, and any bytes behind the prefix, is refused or decoded, never a panic.
    #[test]
    fn no_input_panics_the_decoder(
        s in ".{0,200}",
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let _ = SignedManifest::decode(&s);
        let _ = SignedManifest::decode(&format!("{PREFIX}{s}"));
        let _ = SignedManifest::decode(&encoding::wrap(&bytes));
        let _ = SignedManifest::decode(&sign_payload(bytes));
    }

    /// A valid manifest with one byte of its payload changed decodes or is refused; a decoded
    /// one re-encodes to the same payload (one manifest, one encoding).
    #[test]
    fn a_changed_byte_is_refused_or_decodes_canonically(
        n in 1usize..30,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut p = trip(n).to_cbor();
        let i = at.index(p.len());
        p[i] = byte;
        if let Ok(d) = SignedManifest::decode(&sign_payload(p.clone())) {
            prop_assert_eq!(d.manifest.to_cbor(), p);
        }
    }
}

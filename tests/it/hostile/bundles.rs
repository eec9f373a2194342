//! Trust bundles: tampered, for another node, random bytes.

use super::*;

/// The bundles family of the hostile table: (name, expected outcome, run).
#[allow(clippy::too_many_lines)]
pub(super) fn cases() -> Vec<(&'static str, &'static str, Run)> {
    let mut v = Vec::new();

    // --- bundles ---
    v.push(case("bundle: genuine (control)", "ok", || {
        open_gd(&hcmr::bundle::export(&gd_bundle_content(), &gd_key()))
    }));
    v.push(case("bundle: signature flipped", "BadSignature", || {
        let mut b = hcmr::bundle::export(&gd_bundle_content(), &gd_key());
        let n = b.len();
        b[n - 1] ^= 1;
        open_gd(&b)
    }));
    v.push(case("bundle: signed by a stranger", "BadSignature", || {
        open_gd(&hcmr::bundle::export(&gd_bundle_content(), &stranger()))
    }));
    v.push(case(
        "bundle: anchor is another key",
        "UntrustedSigner",
        || {
            bundle_err(hcmr::bundle::open(
                &hcmr::bundle::export(&gd_bundle_content(), &gd_key()),
                TrustAnchor::Key(stranger().public()),
                NOW,
                DAY,
            ))
        },
    ));
    v.push(case("bundle: truncated", "Truncated", || {
        let b = hcmr::bundle::export(&gd_bundle_content(), &gd_key());
        open_gd(&b[..b.len() / 2])
    }));
    v.push(case("bundle: too old", "TooOld", || {
        let c = BundleContent {
            exported_at: NOW - 2 * DAY,
            ..gd_bundle_content()
        };
        open_gd(&hcmr::bundle::export(&c, &gd_key()))
    }));
    v.push(case("bundle: from the future", "FromTheFuture", || {
        let c = BundleContent {
            exported_at: NOW + DAY,
            ..gd_bundle_content()
        };
        open_gd(&hcmr::bundle::export(&c, &gd_key()))
    }));
    v.push(case(
        "bundle: holds an agreement with one forged signature",
        "BadContent",
        || {
            let a = agreement(1);
            let mut s = a.acceptor_signature.unwrap();
            s.signature[1] ^= 1;
            let c = BundleContent {
                agreements: vec![forge(&a, None, Some(s))],
                ..gd_bundle_content()
            };
            open_gd(&hcmr::bundle::export(&c, &gd_key()))
        },
    ));
    v.push(case(
        "bundle: holds a peer feed with a stranger's revocation",
        "BadContent",
        || {
            let g = genesis(SC, &sc_key());
            let e = sc_next(&g, revoke(0xc7), &stranger());
            let c = BundleContent {
                peers: vec![BundlePeer {
                    province: prov(SC),
                    synced_at: NOW - 120,
                    entries: vec![g, e],
                }],
                ..gd_bundle_content()
            };
            open_gd(&hcmr::bundle::export(&c, &gd_key()))
        },
    ));
    v.push(case(
        "bundle: peer feed not anchored in the agreement",
        "BadContent",
        || {
            let c = BundleContent {
                peers: vec![BundlePeer {
                    province: prov(SC),
                    synced_at: NOW - 120,
                    entries: vec![genesis(SC, &stranger())],
                }],
                ..gd_bundle_content()
            };
            open_gd(&hcmr::bundle::export(&c, &gd_key()))
        },
    ));
    v.push(case("bundle: random bytes", "Malformed", || {
        open_gd(&[0xff; 64])
    }));

    v
}

#[test]
fn every_case_gives_its_expected_outcome() {
    run_cases("bundles", &cases());
}

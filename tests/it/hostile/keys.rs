//! Keys: unknown, withdrawn, a stranger's, the wrong algorithm.

use super::*;

/// The keys family of the hostile table: (name, expected outcome, run).
#[allow(clippy::too_many_lines)]
pub(super) fn cases() -> Vec<(&'static str, &'static str, Run)> {
    let mut v = Vec::new();

    // --- keys ---
    v.push(case(
        "key: signed by a stranger, own kid",
        "unknown_key",
        || verify_outcome(&hcmr::code::encode(&claims(), &stranger())),
    ));
    v.push(case(
        "key: stranger signs under Sichuan's kid",
        "bad_signature",
        || verify_outcome(&code_with_kid(&claims(), sc_key().kid(), &stranger())),
    ));
    v.push(case(
        "key: Guangdong's own key signs a Sichuan code",
        "unknown_key",
        || verify_outcome(&hcmr::code::encode(&claims(), &gd_key())),
    ));
    v.push(case(
        "key: Sichuan's key signs a Guangdong (own) code",
        "unknown_key",
        || {
            verify_outcome(&hcmr::code::encode(
                &Claims {
                    iss: "440000".into(),
                    ..claims()
                },
                &sc_key(),
            ))
        },
    ));
    v.push(case(
        "key: kid collides with a second pinned key; stranger signs",
        "bad_signature",
        || {
            // Sichuan pins two keys, the second given the first's kid (an 8-byte collision).
            let mut colliding = sc_key2().public();
            colliding.kid = sc_key().kid();
            let node = gd_node(vec![conclude(body(1, vec![sc_key().public(), colliding]))]);
            verify_outcome_at(
                &code_with_kid(&claims(), sc_key().kid(), &stranger()),
                &node,
            )
        },
    ));
    v.push(case(
        "key: kid collision, the genuine key still verifies (control)",
        "ok",
        || {
            let mut colliding = sc_key2().public();
            colliding.kid = sc_key().kid();
            let node = gd_node(vec![conclude(body(1, vec![colliding, sc_key().public()]))]);
            verify_outcome_at(&good_code(), &node)
        },
    ));
    v.push(case(
        "key: kid of a pinned key, unpinned key signs",
        "bad_signature",
        || verify_outcome(&code_with_kid(&claims(), sc_key().kid(), &sc_key2())),
    ));

    v
}

#[test]
fn every_case_gives_its_expected_outcome() {
    run_cases("keys", &cases());
}

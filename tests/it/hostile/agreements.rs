//! Agreements: truncated, not canonical, signatures flipped, windows out of range.

use super::*;

/// The agreements family of the hostile table: (name, expected outcome, run).
#[allow(clippy::too_many_lines)]
pub(super) fn cases() -> Vec<(&'static str, &'static str, Run)> {
    let mut v = Vec::new();

    // --- agreements ---
    v.push(case(
        "agreement: acceptor signature forged (bit flip)",
        "BadSignature(\"acceptor\")",
        || {
            let a = agreement(1);
            let mut s = a.acceptor_signature.unwrap();
            s.signature[5] ^= 1;
            agreement_err(forge(&a, None, Some(s)).check_both())
        },
    ));
    v.push(case(
        "agreement: proposer signature by a stranger under the pinned kid",
        "BadSignature(\"proposer\")",
        || {
            let a = agreement(1);
            let s = agreement_signature(a.encoded(), sc_key().kid(), &stranger());
            agreement_err(forge(&a, Some(s), None).check_both())
        },
    ));
    v.push(case(
        "agreement: acceptor signed by the proposer's key",
        "SignerNotPinned(\"acceptor\")",
        || {
            let a = agreement(1);
            let s = agreement_signature(a.encoded(), sc_key().kid(), &sc_key());
            agreement_err(forge(&a, None, Some(s)).check_both())
        },
    ));
    v.push(case(
        "agreement: acceptor signature missing",
        "Unsigned(\"acceptor\")",
        || {
            let a = agreement(1);
            agreement_err(
                SignedAgreement::from_parts(a.encoded().to_vec(), a.proposer_signature, None)
                    .unwrap()
                    .check_both(),
            )
        },
    ));
    v.push(case(
        "agreement: signatures swapped",
        "SignerNotPinned(\"proposer\")",
        || {
            let a = agreement(1);
            agreement_err(
                SignedAgreement::from_parts(
                    a.encoded().to_vec(),
                    a.acceptor_signature,
                    a.proposer_signature,
                )
                .unwrap()
                .check_both(),
            )
        },
    ));
    v.push(case(
        "agreement: v1 signatures on v2 body",
        "BadSignature(\"proposer\")",
        || {
            let a1 = agreement(1);
            let a2 = agreement(2);
            agreement_err(
                SignedAgreement::from_parts(
                    a2.encoded().to_vec(),
                    a1.proposer_signature,
                    a1.acceptor_signature,
                )
                .unwrap()
                .check_both(),
            )
        },
    ));
    v.push(case("agreement: body bytes truncated", "Decode", || {
        let a = agreement(1);
        let e = a.encoded();
        match SignedAgreement::from_parts(e[..e.len() - 3].to_vec(), None, None) {
            Err(AgreementError::Decode(_)) => "Decode".into(),
            other => format!("{other:?}"),
        }
    }));
    v.push(case(
        "agreement: forged one signature, added to snapshot",
        "BadSignature(\"acceptor\")",
        || {
            let a = agreement(2);
            let mut s = a.acceptor_signature.unwrap();
            s.signature[63] ^= 0x10;
            add_to_gd(vec![agreement(1)], forge(&a, None, Some(s)))
        },
    ));
    v.push(case(
        "agreement: replayed older version after newer",
        "ok",
        || {
            // v2 (no yellow) then a replayed v1 (yellow->yellow): v2 must stay in force.
            let mut node = gd_node(vec![agreement(2)]);
            let yellow = sc_yellow_code();
            let before = (snapshot_view(&node), verify(&yellow, &node, NOW));
            let r = agreement_err(node.add_agreement(agreement(1)));
            let after = (snapshot_view(&node), verify(&yellow, &node, NOW));
            if before != after {
                return format!("{r} STATE CHANGED");
            }
            if after.0[0].0 != 2 || after.1.reason.as_str() != "status_not_recognized" {
                return format!(
                    "{r} but terms are v{} ({})",
                    after.0[0].0,
                    after.1.reason.as_str()
                );
            }
            r
        },
    ));
    v.push(case("agreement: replayed same version", "ok", || {
        add_to_gd(vec![agreement(2)], agreement(2))
    }));
    v.push(case(
        "agreement: not naming this province",
        "BadDirections",
        || {
            // A Sichuan-Guangdong agreement offered to a Jiangsu node.
            let mut js = snapshot(JS, &stranger(), vec![]);
            let r = agreement_err(js.add_agreement(agreement(1)));
            if js.agreement_count() != 0 {
                return format!("{r} STATE CHANGED");
            }
            r
        },
    ));

    v
}

#[test]
fn every_case_gives_its_expected_outcome() {
    run_cases("agreements", &cases());
}

//! Feeds: gaps, bad signatures, forged entries; stateful cases check that nothing changed.

use super::*;

/// The feeds family of the hostile table: (name, expected outcome, run).
#[allow(clippy::too_many_lines)]
pub(super) fn cases() -> Vec<(&'static str, &'static str, Run)> {
    let mut v = Vec::new();

    // --- feeds ---
    v.push(case(
        "feed: revocation with a flipped signature",
        "BadSignature(2)",
        || {
            let g = genesis(SC, &sc_key());
            let e = sc_next(&g, revoke(0xc7), &sc_key());
            let mut sig = *e.signature();
            sig[0] ^= 1;
            feed_outcome(
                &[],
                &[FeedEntry::from_parts(e.encoded().to_vec(), e.signer(), sig).unwrap()],
            )
        },
    ));
    v.push(case(
        "feed: revocation re-signed by a stranger",
        "BadSignature(2)",
        || after_genesis(revoke(1), &stranger()),
    ));
    v.push(case(
        "feed: stranger's signature under Sichuan's kid",
        "BadSignature(2)",
        || {
            let g = genesis(SC, &sc_key());
            let e = sc_next(&g, revoke(1), &stranger());
            feed_outcome(
                &[],
                &[
                    FeedEntry::from_parts(e.encoded().to_vec(), sc_key().kid(), *e.signature())
                        .unwrap(),
                ],
            )
        },
    ));
    v.push(case("feed: gap (entry 3 after 1)", "Gap(2,3)", || {
        let g = genesis(SC, &sc_key());
        let e2 = sc_next(&g, revoke(1), &sc_key());
        let e3 = sc_next(&e2, revoke(2), &sc_key());
        feed_outcome(&[], &[e3])
    }));
    v.push(case(
        "feed: replayed entry 2 after entry 2",
        "Gap(3,2)",
        || {
            let g = genesis(SC, &sc_key());
            let e2 = sc_next(&g, revoke(1), &sc_key());
            feed_outcome(std::slice::from_ref(&e2), std::slice::from_ref(&e2))
        },
    ));
    v.push(case(
        "feed: broken chain (prev of another genesis)",
        "BrokenChain(2)",
        || {
            let other = hcmr_core::testkit::genesis(SC, &sc_key(), NOW - 41 * DAY);
            feed_outcome(&[], &[sc_next(&other, revoke(1), &sc_key())])
        },
    ));
    v.push(case("feed: wrong province", "WrongProvince", || {
        let g = genesis(GD, &sc_key());
        feed_outcome(
            &[],
            &[FeedEntry::sign(
                prov(GD),
                Some(&g),
                NOW,
                Statement::RevokeCode { cti: [1; 16] },
                &sc_key(),
            )],
        )
    }));
    v.push(case("feed: second genesis", "BadGenesis(2)", || {
        after_genesis(
            Statement::Genesis {
                key: stranger().public(),
            },
            &stranger(),
        )
    }));
    v.push(case("feed: time went back", "TimeWentBack(2)", || {
        let g = genesis(SC, &sc_key());
        feed_outcome(
            &[],
            &[FeedEntry::sign(
                prov(SC),
                Some(&g),
                NOW - 50 * DAY,
                Statement::RevokeCode { cti: [1; 16] },
                &sc_key(),
            )],
        )
    }));
    v.push(case(
        "feed: RevokeCodes with 4,097 code ids",
        "BadStatement(2)",
        || {
            after_genesis(
                Statement::RevokeCodes {
                    ctis: vec![[1; 16]; 4097],
                },
                &sc_key(),
            )
        },
    ));
    v.push(case(
        "feed: good entry then forged one (batch all or nothing)",
        "BadSignature(3)",
        || {
            let g = genesis(SC, &sc_key());
            let e2 = sc_next(&g, revoke(1), &sc_key());
            let e3 = sc_next(
                &e2,
                Statement::RevokeSubject {
                    subject_hash: SubjectHash([0xa5; 8]),
                    before: NOW,
                },
                &stranger(),
            );
            feed_outcome(&[], &[e2, e3])
        },
    ));
    v.push(case(
        "feed: rotation signed by the wrong key",
        "BadSignature(2)",
        || {
            let g = genesis(SC, &sc_key());
            let new = stranger();
            // The rotation to `new`, signed by `new` itself.
            feed_outcome(&[], &[rotation(SC, &g, NOW, &new, &new)])
        },
    ));
    v.push(case(
        "feed: rotation with another key's proof",
        "BadRotation(2)",
        || {
            let s = Statement::KeyRotation {
                key: stranger().public(),
                pop: proof_of_possession(prov(SC), &sc_key2()),
            };
            after_genesis(s, &sc_key())
        },
    ));
    v.push(case(
        "feed: rotation by a retired key",
        "BadSignature(3)",
        || {
            let g = genesis(SC, &sc_key());
            let r = rotation(SC, &g, NOW - DAY, &sc_key(), &sc_key2());
            feed_outcome(
                std::slice::from_ref(&r),
                &[rotation(SC, &r, NOW, &sc_key(), &stranger())],
            )
        },
    ));
    v.push(case(
        "feed: withdrawal of the last key",
        "BadWithdrawal(2)",
        || {
            after_genesis(
                Statement::KeyWithdrawal {
                    key: sc_key().public(),
                },
                &sc_key(),
            )
        },
    ));
    v.push(case("feed: entry bytes not canonical", "Decode", || {
        let g = genesis(SC, &sc_key());
        let e = sc_next(&g, revoke(1), &sc_key());
        let mut b = e.encoded().to_vec();
        b.push(0x00);
        match FeedEntry::from_parts(b, e.signer(), *e.signature()) {
            Err(err) => feed_err(&err),
            Ok(_) => "accepted".into(),
        }
    }));

    v
}

#[test]
fn every_case_gives_its_expected_outcome() {
    run_cases("feeds", &cases());
}

/// [`feed_outcome`] of the one entry after Sichuan's genesis stating `statement`, signed by
/// `key`.
fn after_genesis(statement: Statement, key: &NodeKey) -> String {
    feed_outcome(&[], &[sc_next(&genesis(SC, &sc_key()), statement, key)])
}

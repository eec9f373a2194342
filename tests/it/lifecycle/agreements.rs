//! Agreements over their life: amended, terminated now or on a date, and the proposals
//! that wait for a decision.

use super::*;

// 1. Amendment, then termination at once: one test per step, each from its own pair of nodes.

/// Two nodes with agreement version 1 concluded (Guangdong counts a Sichuan yellow as red) and
/// three codes: a Sichuan yellow, a Sichuan green and a Guangdong green.
struct Concluded {
    _dir: tempfile::TempDir,
    sc: NodeHandle,
    gd: NodeHandle,
    id: String,
    yellow: proto::IssueHealthCodeResponse,
    green: proto::IssueHealthCodeResponse,
    gd_green: proto::IssueHealthCodeResponse,
}

async fn concluded() -> Concluded {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let id = conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;

    let yellow = issue(&sc, subject("李秀英", "511302", 242), Y, 600).await;
    let green = issue(&sc, subject("王建国", "510104", 131), G, 600).await;
    let gd_green = issue(&gd, subject("马超", "440106", 77), G, 600).await;
    Concluded {
        _dir: dir,
        sc,
        gd,
        id,
        yellow,
        green,
        gd_green,
    }
}

/// Guangdong proposes version 2 (Sichuan's yellow no longer recognized) and Sichuan accepts;
/// the checks of each step are in `an_amendment_governs_once_accepted_and_supersedes_v1`.
async fn amend_to_v2(c: &Concluded) {
    operator(&c.gd)
        .await
        .create_agreement(create_req(
            &c.sc,
            kid_of(&c.sc).await,
            &[(G, G), (R, R)],
            &[(G, G), (R, R)],
            &c.id,
        ))
        .await
        .unwrap();
    approve(&c.sc, &c.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_counts_a_yellow_as_red_and_a_second_agreement_is_refused_from_either_side() {
    let Concluded {
        _dir,
        sc,
        gd,
        id,
        yellow,
        ..
    } = concluded().await;
    let v = verify(&gd, &yellow.code).await;
    assert_eq!(
        outcome(&v),
        recognized_as(R),
        "v1 counts a Sichuan yellow as red: {v:?}"
    );
    assert_eq!(v.agreement_id, id);

    // A brand-new agreement while this one is in force is refused, from either side.
    let e = operator(&gd)
        .await
        .create_agreement(create_req(&sc, kid_of(&sc).await, &[(G, G)], &[(G, G)], ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains(&id), "{}", e.message());
    let e = operator(&sc)
        .await
        .create_agreement(create_req(&gd, kid_of(&gd).await, &[(G, G)], &[(G, G)], ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amendment_governs_once_accepted_and_supersedes_v1() {
    let Concluded {
        _dir,
        sc,
        gd,
        id,
        yellow,
        green,
        gd_green,
    } = concluded().await;
    // Guangdong amends: version 2 no longer recognizes Sichuan's yellow.
    let amended = operator(&gd)
        .await
        .create_agreement(create_req(
            &sc,
            kid_of(&sc).await,
            &[(G, G), (R, R)],
            &[(G, G), (R, R)],
            &id,
        ))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!((amended.id.as_str(), amended.version), (id.as_str(), 2));
    assert_eq!(amended.state, AgreementState::Proposed as i32);
    // Until Sichuan accepts, version 1 governs.
    assert_eq!(outcome(&verify(&gd, &yellow.code).await), recognized_as(R));
    let at_sc = agreements(&sc).await;
    assert_eq!(
        version(&at_sc, &id, 1).state,
        AgreementState::Concluded as i32
    );
    assert_eq!(
        version(&at_sc, &id, 2).state,
        AgreementState::AwaitingAcceptance as i32
    );

    let accepted = approve(&sc, &id).await;
    assert_eq!(
        (accepted.version, accepted.state),
        (2, AgreementState::Concluded as i32)
    );
    for n in [&gd, &sc] {
        let list = agreements(n).await;
        assert_eq!(list.len(), 2, "{list:?}");
        assert_eq!(
            version(&list, &id, 1).state,
            AgreementState::Superseded as i32
        );
        assert_eq!(
            version(&list, &id, 2).state,
            AgreementState::Concluded as i32
        );
    }
    let v = verify(&gd, &yellow.code).await;
    assert_eq!(outcome(&v), refused(Reason::StatusNotRecognized), "{v:?}");
    assert!(v.signature_verified);
    assert_eq!(v.agreement_id, id);
    assert_eq!(v.issued_status, Y);
    assert_eq!(outcome(&verify(&gd, &green.code).await), recognized_as(G));
    assert_eq!(
        outcome(&verify(&sc, &gd_green.code).await),
        recognized_as(G)
    );
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_party_may_amend_too() {
    let c = concluded().await;
    amend_to_v2(&c).await;
    let Concluded {
        _dir,
        sc,
        gd,
        id,
        yellow,
        ..
    } = c;
    // The other party may amend too: Sichuan proposes version 3, restoring yellow -> red at
    // Guangdong (for Sichuan, "our codes there"); Guangdong accepts.
    let v3 = operator(&sc)
        .await
        .create_agreement(create_req(
            &gd,
            kid_of(&gd).await,
            &[(G, G), (R, R)],
            &[(G, G), (Y, R), (R, R)],
            &id,
        ))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!((v3.id.as_str(), v3.version), (id.as_str(), 3));
    assert_eq!(v3.proposer_province, "510000");
    assert_eq!(v3.state, AgreementState::Proposed as i32);
    let accepted = approve(&gd, &id).await;
    assert_eq!(
        (accepted.version, accepted.state),
        (3, AgreementState::Concluded as i32)
    );
    for n in [&gd, &sc] {
        let list = agreements(n).await;
        assert_eq!(list.len(), 3, "{list:?}");
        for (ver, state) in [
            (1, AgreementState::Superseded),
            (2, AgreementState::Superseded),
            (3, AgreementState::Concluded),
        ] {
            assert_eq!(version(&list, &id, ver).state, state as i32, "v{ver}");
        }
    }
    let v = verify(&gd, &yellow.code).await;
    assert_eq!(
        outcome(&v),
        recognized_as(R),
        "v3 counts yellow as red again: {v:?}"
    );
    assert_eq!(v.agreement_id, id);
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_at_once_ends_recognition_on_both_sides_and_spares_own_codes() {
    let Concluded {
        _dir,
        sc,
        gd,
        id,
        green,
        gd_green,
        ..
    } = concluded().await;
    // Sichuan terminates at once; Guangdong is told by NotifyTermination.
    let t = operator(&sc)
        .await
        .terminate_agreement(terminate_req(&id, 0))
        .await
        .unwrap()
        .into_inner();
    assert!(t.peer_notified, "the peer acknowledged the notice");
    let view = t.agreement.unwrap();
    assert_eq!(view.state, AgreementState::Terminated as i32);
    assert_eq!(view.terminated_by, "510000");
    assert!(view.terminated_at <= hcmr::unix_now().secs() && view.terminated_at > 0);
    let v = verify(&gd, &green.code).await;
    assert_eq!(outcome(&v), refused(Reason::AgreementTerminated), "{v:?}");
    assert_eq!(v.agreement_id, id);
    let v = verify(&sc, &gd_green.code).await;
    assert_eq!(outcome(&v), refused(Reason::AgreementTerminated), "{v:?}");
    for n in [&gd, &sc] {
        for a in agreements(n).await {
            assert_eq!(a.state, AgreementState::Terminated as i32, "{a:?}");
            assert_eq!(a.terminated_by, "510000");
            assert_eq!(a.terminated_at, view.terminated_at);
        }
    }
    // Own codes are untouched by the termination.
    assert_eq!(outcome(&verify(&sc, &green.code).await), recognized_as(G));
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_agreement_is_neither_terminated_again_nor_amended() {
    let Concluded {
        _dir, sc, gd, id, ..
    } = concluded().await;
    operator(&sc)
        .await
        .terminate_agreement(terminate_req(&id, 0))
        .await
        .unwrap();
    // Terminating again, or amending a terminated agreement, is refused.
    let e = operator(&gd)
        .await
        .terminate_agreement(terminate_req(&id, 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = operator(&gd)
        .await
        .create_agreement(create_req(
            &sc,
            kid_of(&sc).await,
            &[(G, G)],
            &[(G, G)],
            &id,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = operator(&gd)
        .await
        .terminate_agreement(terminate_req(&"00".repeat(16), 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

// 1 (continued). A scheduled termination, and one made while the peer is down.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_termination_waits_and_a_missed_notice_arrives_by_sync_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    // Both nodes read one manual clock, which the test moves instead of sleeping; it starts after
    // `init`, which dates each feed's first entry by the system clock.
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc = start_on(&sc_cfg, &clock).await;
    let gd = start_on(&gd_cfg, &clock).await;
    pin_listen(&gd_cfg, &gd);
    let first = conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let sc_code = issue(&sc, subject("王建国", "510104", 131), G, 600).await;
    let gd_code = issue(&gd, subject("马超", "440106", 77), G, 600).await;

    // Guangdong schedules the end 3 s ahead: codes stay recognized until then.
    let at = clock.now() + 3;
    let t = operator(&gd)
        .await
        .terminate_agreement(terminate_req(&first, at.secs()))
        .await
        .unwrap()
        .into_inner();
    assert!(t.peer_notified);
    let view = t.agreement.unwrap();
    assert_eq!(
        view.state,
        AgreementState::Concluded as i32,
        "not yet ended"
    );
    assert_eq!(
        (view.terminated_at, view.terminated_by.as_str()),
        (at.secs(), "440000")
    );
    for (n, code) in [(&gd, &sc_code), (&sc, &gd_code)] {
        let v = verify(n, &code.code).await;
        assert!(v.verified_at < at.secs(), "checked before the end");
        assert_eq!(outcome(&v), recognized_as(G), "{v:?}");
    }
    let at_sc = version(&agreements(&sc).await, &first, 1);
    assert_eq!(at_sc.state, AgreementState::Concluded as i32);
    assert_eq!(
        (at_sc.terminated_at, at_sc.terminated_by.as_str()),
        (at.secs(), "440000")
    );
    // The other party cannot postpone the end.
    let e = operator(&sc)
        .await
        .terminate_agreement(terminate_req(&first, (at + 100).secs()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    clock.set(at);
    for (n, code) in [(&gd, &sc_code), (&sc, &gd_code)] {
        let v = verify(n, &code.code).await;
        assert_eq!(outcome(&v), refused(Reason::AgreementTerminated), "{v:?}");
        let a = version(&agreements(n).await, &first, 1);
        assert_eq!(a.state, AgreementState::Terminated as i32);
    }

    // With the first one ended, a new agreement may be made.
    let second = conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    assert_ne!(second, first);
    let v = verify(&gd, &sc_code.code).await;
    assert_eq!(outcome(&v), recognized_as(G));
    assert_eq!(v.agreement_id, second);

    // Guangdong goes down; Sichuan terminates at once and cannot tell it.
    let gd_endpoint = gd.endpoint.clone();
    gd.shutdown().await.unwrap();
    let t = operator(&sc)
        .await
        .terminate_agreement(terminate_req(&second, 0))
        .await
        .unwrap()
        .into_inner();
    assert!(!t.peer_notified, "the peer was down");
    assert_eq!(
        t.agreement.unwrap().state,
        AgreementState::Terminated as i32
    );
    let v = verify(&sc, &gd_code.code).await;
    assert_eq!(outcome(&v), refused(Reason::AgreementTerminated));
    assert_eq!(v.agreement_id, second);

    // Back up (same port), Guangdong has not heard of it yet...
    let gd = start_on(&gd_cfg, &clock).await;
    assert_eq!(gd.endpoint, gd_endpoint);
    let v = verify(&gd, &sc_code.code).await;
    assert_eq!(outcome(&v), recognized_as(G), "not yet told: {v:?}");
    let a = version(&agreements(&gd).await, &second, 1);
    assert_eq!(a.state, AgreementState::Concluded as i32);
    // ...until its sync brings the notice.
    let r = sync_now(&gd).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].province.as_str(), r[0].ok), ("510000", true), "{r:?}");
    let v = verify(&gd, &sc_code.code).await;
    assert_eq!(outcome(&v), refused(Reason::AgreementTerminated), "{v:?}");
    assert_eq!(v.agreement_id, second);
    let a = version(&agreements(&gd).await, &second, 1);
    assert_eq!(a.state, AgreementState::Terminated as i32);
    assert_eq!(a.terminated_by, "510000");

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

/// Issue 14 fault 3: `hcmr agreement propose --amends ID` with only the term that changes (no
/// --peer, --peer-kid, --peer-codes): the other terms are those of the version in force, the
/// changed term is printed before the proposal is sent, and the peer accepts version 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amendment_starts_from_the_terms_in_force_and_shows_what_changes() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let id = conclude(&gd, &sc, &[(G, G), (Y, R)], &[(G, G)]).await;
    let v1 = version(&agreements(&gd).await, &id, 1);

    // A new agreement without its terms is a usage error naming what is missing.
    let out = cli(&gd).args(["agreement", "propose"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("a new agreement needs --peer, --peer-kid, --peer-codes, --our-codes"),
        "{out:?}"
    );

    let out = cli(&gd)
        .args([
            "agreement",
            "propose",
            "--amends",
            &id,
            "--our-codes",
            "green=green,yellow=yellow",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let changes: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("amending agreement"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(
        changes,
        ["  our codes there (--our-codes): green=green -> green=green,yellow=yellow"],
        "{stdout}"
    );
    let v2 = version(&agreements(&gd).await, &id, 2);
    assert_eq!(v2.state, AgreementState::Proposed as i32);
    let terms = |v: &proto::AgreementView, issuer: &str| {
        let d = v
            .directions
            .iter()
            .find(|d| d.issuer_province == issuer)
            .unwrap()
            .clone();
        (
            d.status_map
                .iter()
                .map(|m| (m.issued, m.counts_as))
                .collect::<Vec<_>>(),
            d.max_code_age_secs,
            d.effective_from,
            d.effective_until,
            d.max_trust_age_secs,
        )
    };
    // Guangdong's view of Sichuan's codes: unchanged; of its own codes at Sichuan: the new map.
    assert_eq!(terms(&v2, "510000"), terms(&v1, "510000"));
    let (map2, age2, from2, until2, trust2) = terms(&v2, "440000");
    let (_, age1, from1, until1, trust1) = terms(&v1, "440000");
    assert_eq!(map2, [(G, G), (Y, Y)]);
    assert_eq!((age2, from2, until2, trust2), (age1, from1, until1, trust1));
    approve(&sc, &id).await;
    assert_eq!(
        version(&agreements(&gd).await, &id, 2).state,
        AgreementState::Concluded as i32
    );
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

/// Issue 14 fault 20: during a proposal both sides' `agreement list` say who acts next; after
/// an immediate termination a code of the peer is refused as terminated and the answer still
/// says when the peer's trust state was last synced (not "never synced").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_proposals_say_who_acts_next_and_a_terminated_peer_keeps_its_sync_time() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let now = hcmr::unix_now();
    let created = operator(&gd)
        .await
        .create_agreement(create_req(&sc, kid_of(&sc).await, &[(G, G)], &[(G, G)], ""))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    let id = created.id.clone();
    let list = |n: &NodeHandle| {
        let out = cli(n).args(["agreement", "list"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let at_gd = list(&gd);
    assert!(
        at_gd.contains(&format!(
            "    next: 510000 accepts it (or this node withdraws it: hcmr agreement withdraw {id})"
        )),
        "{at_gd}"
    );
    let at_sc = list(&sc);
    assert!(
        at_sc.contains(&format!(
            "    next: this node's operator accepts it (hcmr agreement accept {id}) or rejects it (hcmr agreement reject {id}); 440000 waits"
        )),
        "{at_sc}"
    );
    approve(&sc, &id).await;
    assert!(!list(&sc).contains("next:"));

    let synced = sync_now(&sc).await;
    assert!(synced[0].ok, "{synced:?}");
    let code = issue(&gd, subject("张三", "440104", 1), G, 600).await.code;
    operator(&sc)
        .await
        .terminate_agreement(terminate_req(&id, 0))
        .await
        .unwrap();
    let v = verify(&sc, &code).await;
    assert_eq!(v.reason, Reason::AgreementTerminated as i32, "{v:?}");
    assert!(v.issuer_state_synced, "{v:?}");
    assert!(v.issuer_state_synced_at >= now.secs(), "{v:?}");
    let out = cli(&sc).args(["verify", &code]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("issuer state:  synced "), "{stdout}");
    assert!(!stdout.contains("never synced"), "{stdout}");
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

//! Proposals from impostors and strangers: amendments, caps per province, and withdrawals and
//! rejections (forged ones refused, missed ones sent again).

use super::*;

/// Issue 15 fault 2: a self-made "Guangdong" node sends the live agreement's id as version 2,
/// pinning and signed by its own key, with its own address. It is refused, nothing is stored,
/// Sichuan still syncs with the real Guangdong, and the impostor is not let in as Guangdong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_cannot_amend_or_redirect() {
    use hcmr::agreement::{AgreementBody, AgreementId, SignedAgreement};
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let id = conclude(&gd, &sc, &[(G, G)], &[(G, G)]).await;
    let v1 = agreements(&sc).await.remove(0);
    let body = AgreementBody::decode(&v1.signed.as_ref().unwrap().body).unwrap();

    // The impostor's version 2: its own key for Guangdong, signed by it.
    let impostor = NodeKey::generate();
    let mut forged = body.clone();
    forged.version = 2;
    forged.proposer.keys = vec![impostor.public()];
    let forged = SignedAgreement::propose(forged, &impostor).unwrap();
    assert_eq!(forged.body().id, AgreementId::from_hex(&id).unwrap());
    let mut as_impostor = federation_as(&sc, &node_identity(GUANGDONG, &impostor)).await;
    let e = as_impostor
        .propose_agreement(proto::ProposeAgreementRequest {
            agreement: Some(hcmr::node::convert::signed_to_proto(&forged)),
            proposer_endpoint: "https://127.0.0.1:1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains("an amendment must be signed by a key that version 1 pins for 440000"),
        "{}",
        e.message()
    );
    let listed = agreements(&sc).await;
    assert_eq!(listed.len(), 1, "nothing stored: {listed:#?}");
    // The real Guangdong is still where Sichuan syncs, and the impostor is no Guangdong here.
    let synced = sync_now(&sc).await;
    assert!(synced[0].ok, "{synced:?}");
    let e = as_impostor
        .get_agreements(proto::GetAgreementsRequest {
            province: "440000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Nor does a new agreement of the impostor's get in while one is in force.
    let sc_key = body.acceptor.keys[0];
    let e = as_impostor
        .propose_agreement(stranger_proposal(GUANGDONG, &impostor, sc_key))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("is in force here"), "{}", e.message());
    assert_eq!(agreements(&sc).await.len(), 1);
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

/// A pending proposal can be rejected (by the side it was sent to) or withdrawn (by its
/// proposer); an acceptance of a withdrawn proposal concludes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_proposals_can_be_rejected_or_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let id = conclude(&gd, &sc, &[(G, G)], &[(G, G)]).await;
    // A genuine amendment from Guangdong waits at Sichuan: Sichuan rejects it.
    let amend = |peer: &hcmr::node::NodeHandle, kid: String| proto::CreateAgreementRequest {
        peer_endpoint: peer.endpoint.clone(),
        peer_codes_here: map(&[(G, G), (Y, Y)]),
        our_codes_there: map(&[(G, G)]),
        max_code_age_secs: 3600,
        max_trust_age_secs: 0,
        amends: id.clone(),
        expected_peer_kid: kid,
        effective_from: 0,
        effective_until: (hcmr::unix_now() + 86_400).secs(),
        ..Default::default()
    };
    let sc_kid = kid_of(&sc).await;
    let v2 = operator(&gd)
        .await
        .create_agreement(amend(&sc, sc_kid.clone()))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(v2.version, 2);
    let e = operator(&sc)
        .await
        .withdraw_agreement(proto::WithdrawAgreementRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("reject it"), "{}", e.message());
    let out = cli(&sc)
        .args(["agreement", "reject", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("rejected agreement {id}")),
        "{out:?}"
    );
    // Rejecting again: the agreement is known, nothing is pending: a refusal (exit 1).
    let again = cli(&sc)
        .args(["agreement", "reject", &id])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("has no proposal awaiting this node's acceptance: nothing to reject"),
        "{again:?}"
    );
    let states: Vec<(u32, i32)> = agreements(&sc)
        .await
        .iter()
        .map(|a| (a.version, a.state))
        .collect();
    assert_eq!(states, [(1, proto::AgreementState::Concluded as i32)]);
    // Sichuan told Guangdong (a signed rejection): Guangdong dropped its PROPOSED copy, so
    // neither side shows version 2 and there is nothing to withdraw (a refusal, exit 1).
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the proposer was told and dropped its copy"),
        "{out:?}"
    );
    assert_eq!(agreements(&gd).await.len(), 1);
    let out = cli(&gd)
        .args(["agreement", "withdraw", &id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("has no proposal of this node awaiting the peer's acceptance"),
        "{out:?}"
    );

    // Proposed again, withdrawn at Guangdong before Sichuan accepts: Sichuan is told and drops
    // its copy, and the acceptance concludes nothing anywhere.
    operator(&gd)
        .await
        .create_agreement(amend(&sc, sc_kid))
        .await
        .unwrap();
    let w = operator(&gd)
        .await
        .withdraw_agreement(proto::WithdrawAgreementRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((w.versions, w.peer_notified), (vec![2], true));
    assert_eq!(agreements(&sc).await.len(), 1, "Sichuan dropped version 2");
    let e = operator(&sc)
        .await
        .approve_agreement(proto::ApproveAgreementRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("withdrawn"), "{}", e.message());
    let concluded = |l: &[proto::AgreementView]| {
        l.iter()
            .filter(|a| a.state == proto::AgreementState::Concluded as i32)
            .map(|a| a.version)
            .collect::<Vec<_>>()
    };
    assert_eq!(concluded(&agreements(&sc).await), [1]);
    assert_eq!(concluded(&agreements(&gd).await), [1]);
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

/// A proposal from a node of `province` (with its own key) to Sichuan, with a fresh id.
fn stranger_proposal(
    province: u32,
    key: &NodeKey,
    sc_key: hcmr::keys::PublicKey,
) -> proto::ProposeAgreementRequest {
    use hcmr::agreement::{
        AgreementBody, AgreementId, DirectionTerms, ManifestTerms, Party, SignedAgreement,
    };
    use hcmr::province::Province;
    let now = hcmr::unix_now();
    let (p, sc) = (
        Province::from_code(province).unwrap(),
        Province::from_code(SICHUAN).unwrap(),
    );
    let dir = |issuer, verifier| DirectionTerms {
        issuer,
        verifier,
        status_map: [(
            hcmr::status::HealthStatus::Green,
            hcmr::status::HealthStatus::Green,
        )]
        .into(),
        max_code_age_secs: 60,
        max_trust_age_secs: 0,
        manifests: ManifestTerms::none(),
        tracing: false,
        effective_from: now,
        effective_until: now + 60,
    };
    let body = AgreementBody {
        id: AgreementId::generate(),
        version: 1,
        created_at: now,
        proposer: Party {
            province: p,
            keys: vec![key.public()],
        },
        acceptor: Party {
            province: sc,
            keys: vec![sc_key],
        },
        directions: vec![dir(p, sc), dir(sc, p)],
    };
    proto::ProposeAgreementRequest {
        agreement: Some(hcmr::node::convert::signed_to_proto(
            &SignedAgreement::propose(body, key).unwrap(),
        )),
        proposer_endpoint: "https://127.0.0.1:1".into(),
    }
}

/// A Sichuan node holding 4 proposals from a Jiangsu node (the most one province may have
/// awaiting its decision): (folder, node, Sichuan's key, Jiangsu's key and client, the ids).
async fn four_proposals_from_jiangsu() -> (
    tempfile::TempDir,
    hcmr::node::NodeHandle,
    hcmr::keys::PublicKey,
    NodeKey,
    proto::federation_service_client::FederationServiceClient<tonic::transport::Channel>,
    Vec<String>,
) {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let info = federation(&sc)
        .await
        .get_node_info(proto::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let sc_key = hcmr::keys::PublicKey::from_bytes(&info.keys[0].public_key).unwrap();
    let js_key = NodeKey::generate();
    let mut js = federation_as(&sc, &node_identity(JIANGSU, &js_key)).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            js.propose_agreement(stranger_proposal(JIANGSU, &js_key, sc_key))
                .await
                .unwrap()
                .into_inner()
                .id,
        );
    }
    (dir, sc, sc_key, js_key, js, ids)
}

/// Issue 15 fault 3: one province may have at most 4 proposals awaiting a node's decision (the
/// fifth is RESOURCE_EXHAUSTED until one is rejected).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_proposals_are_capped_per_province() {
    let (_dir, sc, sc_key, js_key, mut js, ids) = four_proposals_from_jiangsu().await;
    let e = js
        .propose_agreement(stranger_proposal(JIANGSU, &js_key, sc_key))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .contains("4 proposals from 320000 already await 510000's decision (at most 4)"),
        "{}",
        e.message()
    );
    operator(&sc)
        .await
        .reject_agreement(proto::RejectAgreementRequest { id: ids[0].clone() })
        .await
        .unwrap();
    js.propose_agreement(stranger_proposal(JIANGSU, &js_key, sc_key))
        .await
        .unwrap();
    // The keys a stored proposal claims let no one in as that province before it is accepted.
    let e = js
        .get_agreements(proto::GetAgreementsRequest {
            province: JIANGSU.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    sc.shutdown().await.unwrap();
}

/// Issue 15 fault 3 (continued): ListAgreements is paged, and the CLI follows the pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agreements_are_listed_in_pages() {
    let (_dir, sc, sc_key, _, _, _) = four_proposals_from_jiangsu().await;
    // 25 more provinces, 4 each: 104 pending in all, listed 100 a page by default.
    let others: Vec<u32> = hcmr::province::PROVINCES
        .iter()
        .map(|p| p.code)
        .filter(|c| ![SICHUAN, JIANGSU].contains(c))
        .take(25)
        .collect();
    for p in others {
        let key = NodeKey::generate();
        let mut fed = federation_as(&sc, &node_identity(p, &key)).await;
        for _ in 0..4 {
            fed.propose_agreement(stranger_proposal(p, &key, sc_key))
                .await
                .unwrap();
        }
    }
    let mut op = operator(&sc).await;
    let first = op
        .list_agreements(proto::ListAgreementsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.agreements.len(), 100);
    assert!(!first.next_page_token.is_empty());
    let e = op
        .list_agreements(proto::ListAgreementsRequest {
            state: proto::AgreementState::Concluded as i32,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("page_token"), "{}", e.message());
    let second = op
        .list_agreements(proto::ListAgreementsRequest {
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.agreements.len(), 4);
    assert!(second.next_page_token.is_empty());
    let mut seen: Vec<&str> = first
        .agreements
        .iter()
        .chain(&second.agreements)
        .map(|a| a.id.as_str())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 104, "every version once");
    let small = op
        .list_agreements(proto::ListAgreementsRequest {
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(small.agreements.len(), 3);

    let out = cli(&sc).args(["agreement", "list"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains(" <-> 510000")).count(),
        104,
        "{text}"
    );
    sc.shutdown().await.unwrap();
}

const ZHEJIANG: u32 = 330000;

/// A proposal from `from` to `to` (a newcomer: no agreement between them).
async fn propose_new(from: &hcmr::node::NodeHandle, to: &hcmr::node::NodeHandle) -> String {
    let now = hcmr::unix_now();
    operator(from)
        .await
        .create_agreement(proto::CreateAgreementRequest {
            peer_endpoint: to.endpoint.clone(),
            peer_codes_here: map(&[(G, G)]),
            our_codes_there: map(&[(G, G)]),
            max_code_age_secs: 3600,
            max_trust_age_secs: 0,
            amends: String::new(),
            expected_peer_kid: kid_of(to).await,
            effective_from: now.secs(),
            effective_until: (now + 86_400).secs(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap()
        .id
}

/// Issue 15 faults 2-3 (follow-up): a withdrawal is a signed notice the peer takes, so the peer
/// drops its copy and the cap of 4 is freed; a rejection reaches the proposer the same way; a
/// forged notice (another province's certificate, an impostor's key, a stranger's own name)
/// changes nothing; the cap's refusal is the peer's refusal (exit 1) and names what works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawals_and_rejections_reach_the_other_side_and_forged_ones_are_refused() {
    use hcmr::agreement::{AgreementId, ProposalNotice, ProposalOutcome};
    use hcmr::province::Province;
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let zj = start(&init_node(dir.path(), ZHEJIANG).await).await;
    let pending = |l: &[proto::AgreementView]| l.len();

    // Proposed and withdrawn at once, 6 times: each withdrawal reaches Sichuan, whose list is
    // empty again, so the cap of 4 never fills.
    for _ in 0..6 {
        let id = propose_new(&zj, &sc).await;
        assert_eq!(pending(&agreements(&sc).await), 1);
        let out = cli(&zj)
            .args(["agreement", "withdraw", &id])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("the peer was told and dropped its copy"),
            "{out:?}"
        );
        assert_eq!(pending(&agreements(&sc).await), 0, "Sichuan dropped {id}");
        assert_eq!(pending(&agreements(&zj).await), 0);
        // Accepting it now at Sichuan: an unknown id (exit 64).
        let out = cli(&sc)
            .args(["agreement", "accept", &id])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{out:?}");
    }

    // Forged withdrawals of a pending proposal of Zhejiang's: nothing changes at Sichuan.
    let id = propose_new(&zj, &sc).await;
    let aid = AgreementId::from_hex(&id).unwrap();
    let zj_p = Province::from_code(ZHEJIANG).unwrap();
    let js_key = NodeKey::generate();
    let notice = |by: Province, key: &NodeKey| proto::NotifyProposalDroppedRequest {
        notice: Some(hcmr::node::convert::proposal_notice_to_proto(
            &ProposalNotice::sign(
                aid,
                1,
                by,
                ProposalOutcome::Withdrawn,
                hcmr::unix_now(),
                key,
            ),
        )),
    };
    // Jiangsu's certificate, a notice in Zhejiang's name.
    let mut as_js = federation_as(&sc, &node_identity(JIANGSU, &js_key)).await;
    let e = as_js
        .notify_proposal_dropped(notice(zj_p, &js_key))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains("the notice is from 330000 but the calling node's certificate is for 320000"),
        "{}",
        e.message()
    );
    // Jiangsu in its own name: it proposed nothing here, so nothing is dropped.
    let r = as_js
        .notify_proposal_dropped(notice(Province::from_code(JIANGSU).unwrap(), &js_key))
        .await
        .unwrap()
        .into_inner();
    assert!(r.versions.is_empty());
    // An impostor "Zhejiang": its own key, which the proposal does not pin.
    let impostor = NodeKey::generate();
    let mut as_impostor = federation_as(&sc, &node_identity(ZHEJIANG, &impostor)).await;
    let e = as_impostor
        .notify_proposal_dropped(notice(zj_p, &impostor))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message()
            .contains("it must be signed by a key the proposal pins for 330000"),
        "{}",
        e.message()
    );
    let listed = agreements(&sc).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(
        listed[0].state,
        proto::AgreementState::AwaitingAcceptance as i32
    );

    // Sichuan rejects it: Zhejiang is told and drops its PROPOSED copy.
    let out = cli(&sc)
        .args(["agreement", "reject", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the proposer was told and dropped its copy"),
        "{out:?}"
    );
    assert_eq!(pending(&agreements(&zj).await), 0);
    // Nothing pending of a known id... is no longer known at all: a bad argument.
    let out = cli(&zj)
        .args(["agreement", "withdraw", &id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");

    // Four kept pending at Sichuan: the fifth is Sichuan's refusal (exit 1, not 69), naming
    // what works.
    for _ in 0..4 {
        propose_new(&zj, &sc).await;
    }
    let out = cli(&zj)
        .args([
            "agreement",
            "propose",
            "--peer",
            &sc.endpoint,
            "--peer-kid",
            &kid_of(&sc).await,
            "--peer-codes",
            "green=green",
            "--our-codes",
            "green=green",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("4 proposals from 330000 already await 510000's decision (at most 4)")
            && err.contains("hcmr agreement reject ID")
            && err.contains("hcmr agreement withdraw ID"),
        "{err}"
    );
    // An unknown id to amend is a bad argument (exit 64).
    let out = cli(&zj)
        .args(["agreement", "propose", "--amends", &"ab".repeat(16)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    sc.shutdown().await.unwrap();
    zj.shutdown().await.unwrap();
}

/// A withdrawal or rejection made while the other node is down is kept and sent again at the
/// next sync (`hcmr sync` here): the other side then drops its copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_or_rejection_the_peer_missed_is_sent_again_at_sync() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let zj_cfg = init_node(dir.path(), ZHEJIANG).await;
    // Only the explicit syncs below send anything again.
    set_sync_interval(&sc_cfg, 3600);
    set_sync_interval(&zj_cfg, 3600);
    let sc = start(&sc_cfg).await;
    let zj = start(&zj_cfg).await;

    // Withdrawn at Zhejiang while Sichuan is down.
    let id = propose_new(&zj, &sc).await;
    pin_listen(&sc_cfg, &sc);
    sc.shutdown().await.unwrap();
    let out = cli(&zj)
        .args(["agreement", "withdraw", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("the peer could not be told now: the notice is sent again at every sync"),
        "{out:?}"
    );
    let sc = start(&sc_cfg).await;
    assert_eq!(agreements(&sc).await.len(), 1, "Sichuan has not heard yet");
    // Accepting the stale copy: Zhejiang refuses (exit 1) and says why; nothing changes.
    let out = cli(&sc)
        .args(["agreement", "accept", &id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("330000 holds no proposal to it (it was withdrawn, or never made here)"),
        "{out:?}"
    );
    assert_eq!(
        agreements(&sc).await[0].state,
        proto::AgreementState::AwaitingAcceptance as i32
    );
    let out = cli(&zj).args(["sync"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(agreements(&sc).await.is_empty(), "Sichuan dropped {id}");
    // Taken once: a second sync sends nothing (and Sichuan still has nothing).
    sync_now(&zj).await;
    assert!(agreements(&sc).await.is_empty());

    // Rejected at Sichuan while Zhejiang is down.
    let id = propose_new(&zj, &sc).await;
    pin_listen(&zj_cfg, &zj);
    zj.shutdown().await.unwrap();
    let r = operator(&sc)
        .await
        .reject_agreement(proto::RejectAgreementRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.versions, r.peer_notified), (vec![1], false));
    let zj = start(&zj_cfg).await;
    assert_eq!(agreements(&zj).await.len(), 1, "Zhejiang has not heard yet");
    sync_now(&sc).await;
    assert!(agreements(&zj).await.is_empty(), "Zhejiang dropped {id}");
    sc.shutdown().await.unwrap();
    zj.shutdown().await.unwrap();
}

//! The agreement's trip manifests term (docs/transport.md section 4) set by `hcmr agreement
//! propose --peer-manifests / --our-manifests`, listed back at both nodes, carried over by an
//! amendment; an agreement made without the flags encodes as before the term (7 elements per
//! direction, no eighth).

use super::*;

use hcmr::agreement::ManifestTerms;

const ZHEJIANG: u32 = 330000;

/// Runs `hcmr ARGS` against `n` as the test caller (admin), off the runtime's workers.
async fn hcmr_cli(n: &NodeHandle, args: &[&str]) -> (bool, String, String) {
    let mut c = cli(n);
    c.args(args);
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// (transit, arrival) of the direction `issuer -> verifier` of `a`.
fn manifests_of(a: &proto::AgreementView, issuer: u32, verifier: u32) -> (bool, bool) {
    let d = a
        .directions
        .iter()
        .find(|d| {
            d.issuer_province == issuer.to_string() && d.verifier_province == verifier.to_string()
        })
        .unwrap_or_else(|| panic!("no direction {issuer} -> {verifier}: {a:?}"));
    (d.manifests_transit, d.manifests_arrival)
}

/// The number of elements of each direction in the signed body of `a`, in body order, with the
/// eighth element's value when there is one.
fn direction_shapes(a: &proto::AgreementView) -> Vec<(usize, Option<u64>)> {
    let body = &a.signed.as_ref().unwrap().body;
    let v: ciborium::value::Value = ciborium::de::from_reader(body.as_slice()).unwrap();
    let top = v.into_array().unwrap();
    assert_eq!(top.len(), 8, "body = 8 elements");
    top[7]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let d = d.as_array().unwrap();
            let eighth = d
                .get(7)
                .map(|m| u64::try_from(m.as_integer().unwrap()).unwrap());
            (d.len(), eighth)
        })
        .collect()
}

/// The one version `version` of `id` in a listing.
fn the_version<'a>(
    list: &'a [proto::AgreementView],
    id: &str,
    version: u32,
) -> &'a proto::AgreementView {
    list.iter()
        .find(|a| a.id == id && a.version == version)
        .unwrap_or_else(|| panic!("no {id} v{version} in {list:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_transit_one_way_and_arrival_the_other_are_listed_at_both_nodes_and_kept_by_an_amendment(
) {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let zj = start(&init_node(dir.path(), ZHEJIANG).await).await;

    // Zhejiang's receivers take Sichuan's trips in on arrival; Sichuan's checkpoints pass
    // Zhejiang's vehicles through.
    let sc_kid = kid_of(&sc).await;
    let (ok, out, err) = hcmr_cli(
        &zj,
        &[
            "agreement",
            "propose",
            "--peer",
            &sc.endpoint,
            "--peer-kid",
            &sc_kid,
            "--peer-codes",
            "green=green",
            "--our-codes",
            "green=green",
            "--peer-manifests",
            "arrival",
            "--our-manifests",
            "transit",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("codes of 510000 at 330000: green=green") && out.contains("manifests arrival"),
        "{out}"
    );
    let id = out.split_whitespace().next().unwrap().to_string();
    let (ok, out, err) = hcmr_cli(&sc, &["agreement", "accept", &id]).await;
    assert!(ok && out.contains("CONCLUDED"), "{out}{err}");

    for n in [&sc, &zj] {
        let list = agreements(n).await;
        let v1 = the_version(&list, &id, 1);
        assert_eq!(v1.state, AgreementState::Concluded as i32, "{v1:?}");
        assert_eq!(manifests_of(v1, SICHUAN, ZHEJIANG), (false, true), "{v1:?}");
        assert_eq!(manifests_of(v1, ZHEJIANG, SICHUAN), (true, false), "{v1:?}");
        // Signed into the body: direction Sichuan -> Zhejiang (the proposer's, first) holds 2
        // (arrival), Zhejiang -> Sichuan holds 1 (transit).
        assert_eq!(direction_shapes(v1), [(8, Some(2)), (8, Some(1))]);
        let (ok, out, err) = hcmr_cli(n, &["agreement", "list"]).await;
        assert!(ok, "{out}{err}");
        let line = |issuer: &str| {
            out.lines()
                .find(|l| l.trim_start().starts_with(&format!("codes of {issuer} at")))
                .unwrap_or_else(|| panic!("no line for {issuer}: {out}"))
                .to_string()
        };
        assert!(line("510000").ends_with("manifests arrival"), "{out}");
        assert!(line("330000").ends_with("manifests transit"), "{out}");
    }
    let (ok, out, _) = hcmr_cli(&sc, &["agreement", "show", &id]).await;
    assert!(ok && out.contains("manifests arrival") && out.contains("manifests transit"));

    // An amendment that changes only the run length keeps the term: it is not among the changes.
    let (ok, out, err) = hcmr_cli(
        &zj,
        &["agreement", "propose", "--amends", &id, "--for", "30d"],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(!out.contains("manifests here (--peer-manifests)"), "{out}");
    assert!(out.contains("until: "), "{out}");
    approve(&sc, &id).await;
    let v2 = agreements(&sc).await;
    let v2 = the_version(&v2, &id, 2);
    assert_eq!(v2.state, AgreementState::Concluded as i32);
    assert_eq!(manifests_of(v2, SICHUAN, ZHEJIANG), (false, true));
    assert_eq!(manifests_of(v2, ZHEJIANG, SICHUAN), (true, false));

    // An amendment that changes it says so, from both sides' point of view.
    let (ok, out, err) = hcmr_cli(
        &sc,
        &[
            "agreement",
            "propose",
            "--amends",
            &id,
            "--peer-manifests",
            "transit,arrival",
            "--our-manifests",
            "none",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("peer manifests here (--peer-manifests): transit -> transit+arrival"),
        "{out}"
    );
    assert!(
        out.contains("our manifests there (--our-manifests): arrival -> none"),
        "{out}"
    );
    let v3 = approve(&zj, &id).await;
    assert_eq!(
        (v3.version, v3.state),
        (3, AgreementState::Concluded as i32)
    );
    assert_eq!(manifests_of(&v3, ZHEJIANG, SICHUAN), (true, true));
    assert_eq!(manifests_of(&v3, SICHUAN, ZHEJIANG), (false, false));
    // Sichuan proposed v3: its direction (Zhejiang -> Sichuan) is first, Sichuan -> Zhejiang has
    // no eighth element any more.
    assert_eq!(direction_shapes(&v3), [(8, Some(3)), (7, None)]);

    // A bad value is a usage error and nothing is proposed.
    let (ok, _, err) = hcmr_cli(
        &zj,
        &[
            "agreement",
            "propose",
            "--amends",
            &id,
            "--peer-manifests",
            "toll",
        ],
    )
    .await;
    assert!(
        !ok && err.contains("\"toll\" is not transit or arrival"),
        "{err}"
    );
    assert_eq!(agreements(&zj).await.len(), 3);
    sc.shutdown().await.unwrap();
    zj.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agreement_made_without_the_flags_keeps_the_encoding_from_before_the_term() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    let sc_kid = kid_of(&sc).await;
    let (ok, out, err) = hcmr_cli(
        &gd,
        &[
            "agreement",
            "propose",
            "--peer",
            &sc.endpoint,
            "--peer-kid",
            &sc_kid,
            "--peer-codes",
            "green=green,yellow=red,red=red",
            "--our-codes",
            "green=green",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let id = out.split_whitespace().next().unwrap().to_string();
    approve(&sc, &id).await;
    for n in [&sc, &gd] {
        let list = agreements(n).await;
        let v1 = the_version(&list, &id, 1);
        assert_eq!(v1.state, AgreementState::Concluded as i32);
        assert_eq!(direction_shapes(v1), [(7, None), (7, None)]);
        assert_eq!(manifests_of(v1, SICHUAN, GUANGDONG), (false, false));
        assert_eq!(manifests_of(v1, GUANGDONG, SICHUAN), (false, false));
        let (ok, out, _) = hcmr_cli(n, &["agreement", "list"]).await;
        assert!(ok);
        assert_eq!(out.matches("manifests none").count(), 2, "{out}");
    }
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_helper_concludes_with_the_term_each_way() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let zj = start(&init_node(dir.path(), ZHEJIANG).await).await;
    let id = conclude_with_manifests(
        &zj,
        &sc,
        &[(G, G)],
        &[(G, G)],
        ManifestTerms::arrival(),
        ManifestTerms::both(),
    )
    .await;
    for n in [&sc, &zj] {
        let list = agreements(n).await;
        let v1 = the_version(&list, &id, 1);
        assert_eq!(manifests_of(v1, SICHUAN, ZHEJIANG), (false, true));
        assert_eq!(manifests_of(v1, ZHEJIANG, SICHUAN), (true, true));
    }
    sc.shutdown().await.unwrap();
    zj.shutdown().await.unwrap();
}

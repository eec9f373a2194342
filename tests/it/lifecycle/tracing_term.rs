//! The agreement's tracing term (docs/tracing.md section 4) set by `hcmr agreement propose
//! --peer-tracing / --our-tracing`, listed back at both nodes and changed by an amendment: on, a
//! direction's ninth element (after manifests 0); off, no ninth element.

use super::*;

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

/// The tracing term of the direction `issuer -> verifier` of `a`.
fn tracing_of(a: &proto::AgreementView, issuer: u32, verifier: u32) -> bool {
    a.directions
        .iter()
        .find(|d| {
            d.issuer_province == issuer.to_string() && d.verifier_province == verifier.to_string()
        })
        .unwrap_or_else(|| panic!("no direction {issuer} -> {verifier}: {a:?}"))
        .tracing
}

/// Each direction of the signed body of `a`, in body order, as its elements from the eighth on.
fn direction_tails(a: &proto::AgreementView) -> Vec<Vec<u64>> {
    let body = &a.signed.as_ref().unwrap().body;
    let v: ciborium::value::Value = ciborium::de::from_reader(body.as_slice()).unwrap();
    let top = v.into_array().unwrap();
    top[7]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d.as_array().unwrap()[7..]
                .iter()
                .map(|m| u64::try_from(m.as_integer().unwrap()).unwrap())
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_one_way_is_signed_listed_at_both_nodes_and_amended() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let zj = start(&init_node(dir.path(), ZHEJIANG).await).await;

    // Sichuan answers Zhejiang's traces (Zhejiang -> Sichuan); not the other way.
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
            "--our-tracing",
            "on",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let id = out.split_whitespace().next().unwrap().to_string();
    let (ok, out, err) = hcmr_cli(&sc, &["agreement", "accept", &id]).await;
    assert!(ok && out.contains("CONCLUDED"), "{out}{err}");
    for n in [&sc, &zj] {
        let list = agreements(n).await;
        let v1 = list.iter().find(|a| a.id == id).unwrap();
        assert!(tracing_of(v1, ZHEJIANG, SICHUAN), "{v1:?}");
        assert!(!tracing_of(v1, SICHUAN, ZHEJIANG), "{v1:?}");
        // Zhejiang proposed: its direction (Sichuan -> Zhejiang) first, with no tail; Zhejiang ->
        // Sichuan has manifests 0 then tracing 1.
        assert_eq!(direction_tails(v1), [vec![], vec![0, 1]]);
        let (ok, out, err) = hcmr_cli(n, &["agreement", "list"]).await;
        assert!(ok, "{out}{err}");
        let line = |issuer: &str| {
            out.lines()
                .find(|l| l.trim_start().starts_with(&format!("codes of {issuer} at")))
                .unwrap_or_else(|| panic!("no line for {issuer}: {out}"))
                .to_string()
        };
        assert!(
            line("330000").ends_with("manifests none  tracing on"),
            "{out}"
        );
        assert!(line("510000").ends_with("manifests none"), "{out}");
    }

    // The amendment turns it around, and says so.
    let (ok, out, err) = hcmr_cli(
        &sc,
        &[
            "agreement",
            "propose",
            "--amends",
            &id,
            "--peer-tracing",
            "off",
            "--our-tracing",
            "on",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("tracing here (--peer-tracing): on -> off"),
        "{out}"
    );
    assert!(
        out.contains("tracing there (--our-tracing): off -> on"),
        "{out}"
    );
    let v2 = approve(&zj, &id).await;
    assert_eq!(
        (v2.version, v2.state),
        (2, AgreementState::Concluded as i32)
    );
    assert!(tracing_of(&v2, SICHUAN, ZHEJIANG));
    assert!(!tracing_of(&v2, ZHEJIANG, SICHUAN));

    // A bad value is a usage error and nothing is proposed.
    let (ok, _, err) = hcmr_cli(
        &zj,
        &[
            "agreement",
            "propose",
            "--amends",
            &id,
            "--our-tracing",
            "yes",
        ],
    )
    .await;
    assert!(!ok && err.contains("\"yes\" is not on or off"), "{err}");
    assert_eq!(agreements(&zj).await.len(), 2);
    sc.shutdown().await.unwrap();
    zj.shutdown().await.unwrap();
}

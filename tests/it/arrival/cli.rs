//! `hcmr arrival` as a receiver types it: check-in (STOP exits 1), confirm, handover and list.

use super::*;

/// Runs `hcmr arrival ARGS` at Zhejiang as the receiver; returns standard output, asserting
/// the exit status `code`.
fn hcmr_arrival(s: &Scene, token_file: &std::path::Path, args: &[&str], code: i32) -> String {
    let out = cli(&s.zj)
        .arg("arrival")
        .args(args)
        .env("HCMR_TOKEN_FILE", token_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "hcmr arrival {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_hands_a_trip_over_with_the_cli() {
    let s = scene().await;
    let codes = sc_codes(&s, 601, 2).await;
    let (trip, manifest) = sealed_trip(&s, "川R·22222", &codes).await;
    let token_file = s._dir.path().join("gate.token");
    std::fs::write(&token_file, &s.receiver).unwrap();

    let out = hcmr_arrival(
        &s,
        &token_file,
        &["check-in", "--checkpoint", "gate 1", &manifest],
        0,
    );
    assert!(out.contains(&format!("trip {trip} version 1")), "{out}");
    assert!(out.contains("seat  2"), "{out}");
    // STOP exits 1 and records nothing.
    let forged = hcmr::manifest::sign(
        &hcmr::manifest::SignedManifest::decode(&manifest)
            .unwrap()
            .manifest,
        &hcmr::keys::NodeKey::generate(),
    );
    let out = hcmr_arrival(&s, &token_file, &["check-in", &forged], 1);
    assert!(out.contains("UNKNOWN_KEY"), "{out}");

    let out = hcmr_arrival(&s, &token_file, &["confirm", &trip, "1", &codes[0]], 0);
    assert!(out.contains("present, measure none; 1 seat to go"), "{out}");
    // A measure without its reason is bad usage (64).
    hcmr_arrival(
        &s,
        &token_file,
        &[
            "confirm",
            &trip,
            "2",
            "--missing",
            "--measure",
            "quarantine",
        ],
        64,
    );
    hcmr_arrival(
        &s,
        &token_file,
        &[
            "confirm",
            &trip,
            "2",
            "--missing",
            "--reason",
            "missed the bus",
        ],
        0,
    );
    let out = hcmr_arrival(&s, &token_file, &["handover", &trip, "--json"], 0);
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(h["refused"], false);
    assert_eq!(h["delivered"], true, "Sichuan is up: {h}");
    assert_eq!(h["people"][1]["present"], false);
    assert_eq!(h["people"][1]["reason"], "missed the bus");

    let out = hcmr_arrival(&s, &token_file, &["list", "--json"], 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["trip_id"], trip.as_str());
    assert_eq!(
        (list[0]["confirmed"].as_u64(), list[0]["listed"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(list[0]["delivered"], true);
    let out = hcmr_arrival(&s, &token_file, &["list"], 0);
    assert!(
        out.contains("handed over") && out.contains("delivered"),
        "{out}"
    );
    s.sc.shutdown().await.unwrap();
    s.zj.shutdown().await.unwrap();
}

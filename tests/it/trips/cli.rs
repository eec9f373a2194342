//! `hcmr manifest` against a running node, as an organizer.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_boards_seals_shows_and_lists_a_trip() {
    let t = setup().await;
    let token_file = t.sc.dir.join("organizer.token");
    std::fs::write(&token_file, &t.organizer).unwrap();
    let run = |args: &[&str]| {
        let out = cli(&t.sc)
            .env("HCMR_TOKEN_FILE", &token_file)
            .arg("manifest")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let now = t.clock.now();
    let departure = hcmr::rfc3339((now + 3600).secs());
    let arrival = hcmr::rfc3339((now + 26 * 3600).secs());
    let (code, out, err) = run(&[
        "create",
        "--vehicle",
        "川R·12345",
        "--origin",
        "511304",
        "--destination",
        "330212",
        "--place",
        "宁波鄞州工厂",
        "--transit",
        "500000,340000",
        "--departure",
        &departure,
        "--arrival",
        &arrival,
        "--escort",
        "王*",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let trip = out.trim().to_string();
    assert_eq!(trip.len(), 16, "{out}");

    let li = issue(&t.sc, subject("李秀英", "511302", 242), G, 3600).await;
    let (code, out, err) = run(&["board", &trip, &li.code, "--crew"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "boarded 李*英 in seat 1");
    let (code, _, err) = run(&["board", &trip, &li.code]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("not boarded: already on this manifest"),
        "{err}"
    );

    let card = t.sc.dir.join("windshield.png");
    let (code, out, err) = run(&["seal", &trip, "--quiet", "--card", card.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let manifest = out.trim().to_string();
    assert!(manifest.starts_with("HCMRT1:"), "{out}");
    assert!(err.contains("wrote the windshield card"), "{err}");
    // The card's QR code reads back as the manifest just sealed.
    let image = image::load_from_memory(&std::fs::read(&card).unwrap())
        .unwrap()
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    assert_eq!(grids[0].decode().unwrap().1, manifest);
    // An existing file is never overwritten, and nothing is sealed then.
    let (code, _, err) = run(&["seal", &trip, "--card", card.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--card") && err.contains("exists"), "{err}");

    let (code, out, err) = run(&["show", &trip, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["trip_id"], trip.as_str());
    assert_eq!(j["state"], "sealed");
    assert_eq!(j["version"], 1);
    assert_eq!(j["manifest"], manifest.as_str());
    assert_eq!(j["transit"], serde_json::json!(["500000", "340000"]));
    assert_eq!(j["people"][0]["crew"], true);
    assert_eq!(j["people"][0]["cti"], li.cti.as_str());
    let (code, out, _) = run(&["show", &trip]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with(&format!("trip {trip}: sealed\n")), "{out}");

    let (code, out, _) = run(&["list", "--state", "sealed", "--json"]);
    assert_eq!(code, Some(0));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 1);
    assert_eq!(j[0]["trip_id"], trip.as_str());
    let (_, out, _) = run(&["list", "--state", "open"]);
    assert_eq!(out, "");

    let (code, _, err) = run(&["cancel", &trip]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("only a trip never sealed can be cancelled"),
        "{err}"
    );
}

//! The checkpoint page with trip manifests (`HCMRT1:`, docs/transport.md section 5): the
//! vehicle's verdict on the page and from `POST /api/verify-manifest`.
//!
//! The manifests are signed here with the core's `manifest::sign` and Sichuan's node key read
//! from its key file (the TripService that seals them is not in this build), over codes
//! Sichuan's node issued. Guangdong serves the page, under an agreement by which it accepts
//! Sichuan's manifests in transit only:
//! - a Sichuan bus through Guangdong to Zhejiang passes, with the headcount, plate, route and
//!   times, from a scanner's keystrokes and from an uploaded image of its QR code;
//! - once Sichuan revokes a passenger and Guangdong has synced, it stops with that seat's
//!   reason, naming Sichuan;
//! - a bus bound for Guangdong itself (arrival, not agreed) stops with `manifests_not_agreed`;
//!   an older version after a newer one with `superseded`;
//! - a truncated manifest stops as `malformed`, with the decoder's fault;
//! - every check is in Guangdong's audit log, via `http`, like gRPC's.

use super::https::{https_client, send};
use super::*;
use hcmr::agreement::ManifestTerms;
use hcmr::keyfile::NodeKeyFile as _;
use hcmr::keys::NodeKey;
use hcmr::manifest::{self, Escort, Manifest, Person, Place, TripId, Vehicle};
use hcmr::province::Province;
use hcmr::status::HealthStatus;

/// The plate of the Sichuan bus.
const PLATE: &str = "川R·12345";
/// People on the bus: the driver (crew) and three passengers.
const ON_BOARD: usize = 4;
/// The seat of the passenger Sichuan revokes.
const REVOKED_SEAT: usize = 3;

/// Two nodes, their agreement, and the manifests shown to Guangdong's page.
struct Trips {
    sc: hcmr::node::NodeHandle,
    gd: hcmr::node::NodeHandle,
    /// The bus from Sichuan through Guangdong to Ningbo, version 1.
    bus: String,
    /// Its version 2 (one passenger fewer).
    bus_v2: String,
    /// A bus from Sichuan to Shenzhen: Guangdong is its destination.
    to_guangdong: String,
    /// The cti of the passenger in [`REVOKED_SEAT`].
    revoked_cti: String,
}

/// The node key in a node's folder (`node.key`, written plain by `init`).
fn node_key(n: &hcmr::node::NodeHandle) -> NodeKey {
    NodeKey::read_pem(&n.dir.join("node.key")).unwrap()
}

/// A person boarded by their code, as the origin decides it at boarding.
fn board(code: &str, crew: bool, sealed_at: hcmr::UnixTime) -> Person {
    let code = hcmr::code::HealthCode::decode(code).unwrap();
    Person::from_code(&code, 0, HealthStatus::Green, crew, sealed_at).unwrap()
}

/// A Sichuan trip from county 511304 to `destination`, the first person its driver.
fn sichuan_trip(
    trip: u8,
    version: u64,
    destination: u32,
    codes: &[String],
    sealed_at: hcmr::UnixTime,
) -> Manifest {
    Manifest {
        trip_id: TripId([trip; 8]),
        version,
        origin: 511304,
        destination,
        transit: if destination == 330200 {
            vec![Province::from_code(GUANGDONG).unwrap()]
        } else {
            Vec::new()
        },
        vehicle: Vehicle::new(PLATE).unwrap(),
        place: Place::new("宁波市某电子厂").unwrap(),
        departure: sealed_at + 600,
        arrival: sealed_at + 600 + 20 * 3600,
        sealed_at,
        escort: Escort::new("张*三").unwrap(),
        issuers: vec![Province::from_code(SICHUAN).unwrap()],
        people: codes
            .iter()
            .enumerate()
            .map(|(i, c)| board(c, i == 0, sealed_at))
            .collect(),
    }
}

async fn trips(dir: &Path) -> Trips {
    let sc = start(&init_node(dir, SICHUAN).await).await;
    let gd = start(&init_node_with_page(dir, GUANGDONG).await).await;
    conclude_with_manifests(
        &gd,
        &sc,
        &[(G, G), (Y, R), (R, R)],
        &[(G, G), (R, R)],
        ManifestTerms::transit(),
        ManifestTerms::none(),
    )
    .await;
    let mut people = Vec::new();
    for seq in 1..=ON_BOARD as u16 {
        people.push(issue(&sc, subject("李秀英", "511302", 240 + seq), G, 3600).await);
    }
    let codes: Vec<String> = people.iter().map(|p| p.code.clone()).collect();
    let sealed_at = hcmr::unix_now();
    let key = node_key(&sc);
    // Guangdong holds Sichuan's feed: the people are re-checked, not taken on trust.
    sync_now(&gd).await;
    Trips {
        bus: manifest::sign(&sichuan_trip(0x51, 1, 330200, &codes, sealed_at), &key),
        bus_v2: manifest::sign(&sichuan_trip(0x51, 2, 330200, &codes[..3], sealed_at), &key),
        to_guangdong: manifest::sign(&sichuan_trip(0x52, 1, 440300, &codes, sealed_at), &key),
        revoked_cti: people[REVOKED_SEAT - 1].cti.clone(),
        sc,
        gd,
    }
}

/// Revokes the passenger in [`REVOKED_SEAT`] at Sichuan, and syncs Guangdong.
async fn revoke_passenger(t: &Trips) {
    codes(&t.sc)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: t.revoked_cti.clone(),
        })
        .await
        .unwrap();
    sync_now(&t.gd).await;
}

/// Guangdong's audit records of manifest checks at `checkpoint`, once `want` are there.
async fn manifest_audit(
    gd: &hcmr::node::NodeHandle,
    checkpoint: &str,
    want: usize,
) -> Vec<proto::AuditRecord> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r: Vec<proto::AuditRecord> = audit_records(gd)
            .await
            .into_iter()
            .filter(|r| r.checkpoint_id == checkpoint && r.manifest.is_some())
            .collect();
        if r.len() >= want || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The route's JSON and its guard, without a browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_manifest_route_answers_the_vehicle_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let t = trips(dir.path()).await;
    let page = t.gd.http_addr.expect("Guangdong serves the page");
    let client = https_client(t.gd.tls_cert.as_ref().unwrap());
    let url = format!("https://{page}/api/verify-manifest");
    let token = format!("Bearer {}", test_token(&t.gd));
    let issuer = format!(
        "Bearer {}",
        add_caller(&t.gd, "issuer-only", &[proto::CallerRole::Issuer]).await
    );
    const JSON: (&str, &str) = ("content-type", "application/json");
    let body = |m: &str| json!({ "manifest": m, "checkpoint_id": "toll-7" }).to_string();
    let ask = |m: String| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            let r = send(
                &client,
                "POST",
                &url,
                &[JSON, ("authorization", &token)],
                &m,
            )
            .await;
            assert_eq!(r.status, 200, "{:?}", r.text());
            assert_eq!(r.header("cache-control"), "no-store");
            r.json()
        }
    };

    // The guard: no token 401, an issuer's token 403, a foreign origin 403; none is checked.
    let r = send(&client, "POST", &url, &[JSON], &body(&t.bus)).await;
    assert_eq!(r.status, 401, "{:?}", r.text());
    let r = send(
        &client,
        "POST",
        &url,
        &[JSON, ("authorization", &issuer)],
        &body(&t.bus),
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.text());
    assert!(r.error().contains("needs role verifier"), "{}", r.error());
    let r = send(
        &client,
        "POST",
        &url,
        &[
            JSON,
            ("authorization", &token),
            ("origin", "https://evil.example"),
        ],
        &body(&t.bus),
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.text());
    // Bad input: named fields.
    let with_token = [JSON, ("authorization", token.as_str())];
    let r = send(&client, "POST", &url, &with_token, "{}").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "manifest: required");
    let r = send(&client, "POST", &url, &with_token, r#"{"manifest": 7}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "manifest: must be a string");
    let r = send(
        &client,
        "POST",
        &url,
        &with_token,
        &json!({ "manifest": t.bus, "checkpoint_id": "gate\u{7}" }).to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.text());
    assert!(r.error().contains("checkpoint_id"), "{}", r.error());

    // PASS: the Sichuan bus in transit.
    let v = ask(body(&t.bus)).await;
    assert_eq!(v["pass"], true, "{v}");
    assert_eq!(v["verdict"], "PASS", "{v}");
    assert_eq!(v["signature_verified"], true);
    assert_eq!(v["headcount"], ON_BOARD);
    assert_eq!(v["passengers"], ON_BOARD - 1);
    assert_eq!(v["crew"], 1);
    assert_eq!(v["vehicle"], PLATE);
    assert_eq!(v["trip_id"], "5151515151515151");
    assert_eq!(v["version"], 1);
    assert_eq!(v["origin"]["code"], "511304");
    assert_eq!(v["origin"]["province"]["name_zh"], "四川省");
    assert_eq!(v["destination"]["province"]["name_en"], "Zhejiang");
    assert_eq!(
        v["transit"],
        json!([{ "code": "440000", "name_zh": "广东省", "name_en": "Guangdong" }])
    );
    assert_eq!(v["place"], "宁波市某电子厂");
    assert_eq!(v["not_rechecked"], 0);
    assert_eq!(v["role"], "transit");
    assert_eq!(v["reasons"], json!([]));
    let departure = v["departure"].as_u64().unwrap();
    assert_eq!(v["arrival"].as_u64().unwrap(), departure + 20 * 3600);
    assert_eq!(
        v["shown"]["departure"],
        hcmr::display::display_time(hcmr::UnixTime::from_secs(departure), Default::default())
    );
    assert!(v["seal_age_secs"].as_u64().unwrap() < 3600, "{v}");

    // STOP: a bus bound for Guangdong, whose agreement accepts Sichuan's manifests in transit
    // only; authentic, so the vehicle is named.
    let v = ask(body(&t.to_guangdong)).await;
    assert_eq!(v["pass"], false, "{v}");
    assert_eq!(v["verdict"], "STOP");
    assert_eq!(v["signature_verified"], true);
    assert_eq!(v["vehicle"], PLATE);
    assert_eq!(v["role"], "arrival");
    assert_eq!(v["reasons"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["reasons"][0]["reason"], "manifests_not_agreed");
    assert_eq!(v["reasons"][0]["seat"], Value::Null);
    assert_eq!(v["not_rechecked"], Value::Null);

    // Malformed: the decoder's fault, nothing of the trip.
    let truncated = &t.bus[..t.bus.len() - 9];
    let v = ask(body(truncated)).await;
    assert_eq!(v["pass"], false);
    assert_eq!(v["signature_verified"], false);
    assert_eq!(v["reasons"][0]["reason"], "malformed");
    assert!(
        !v["reasons"][0]["detail"].as_str().unwrap().is_empty(),
        "{v}"
    );
    assert_eq!(v["vehicle"], Value::Null);
    assert_eq!(v["trip_id"], Value::Null);

    // Version 2 (a passenger left), then version 1 again: superseded.
    let v = ask(body(&t.bus_v2)).await;
    assert_eq!(v["pass"], true, "{v}");
    assert_eq!(v["headcount"], ON_BOARD - 1);
    let v = ask(body(&t.bus)).await;
    assert_eq!(v["pass"], false, "{v}");
    assert_eq!(v["reasons"][0]["reason"], "superseded", "{v}");

    // Sichuan revokes a passenger: the bus stops at that seat, by Sichuan.
    revoke_passenger(&t).await;
    let v = ask(body(&t.bus_v2)).await;
    assert_eq!(v["pass"], false, "{v}");
    let reasons = v["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{v}");
    assert_eq!(reasons[0]["reason"], "revoked");
    assert_eq!(reasons[0]["seat"], REVOKED_SEAT);
    assert_eq!(reasons[0]["issuer"]["code"], "510000");
    let said = reasons[0]["explanation"].as_str().unwrap();
    assert!(
        said.contains("seat 3: revoked by 510000 Sichuan since boarding"),
        "{said}"
    );

    // Every check made is audited, via http, at its checkpoint, with its trip and reasons.
    let audit = manifest_audit(&t.gd, "toll-7", 6).await;
    let got: Vec<(String, u64, bool, Vec<i32>)> = audit
        .iter()
        .map(|r| {
            assert_eq!(r.via, "http", "{r:?}");
            let m = r.manifest.as_ref().unwrap();
            (
                m.trip_id.clone(),
                m.version,
                m.signature_verified,
                m.reasons.iter().map(|x| x.reason).collect(),
            )
        })
        .collect();
    use proto::ManifestReason as M;
    let bus = "5151515151515151".to_string();
    assert_eq!(
        got,
        vec![
            (bus.clone(), 1, true, vec![]),
            (
                "5252525252525252".into(),
                1,
                true,
                vec![M::ManifestsNotAgreed as i32]
            ),
            (String::new(), 0, false, vec![M::Malformed as i32]),
            (bus.clone(), 2, true, vec![]),
            (bus.clone(), 1, true, vec![M::Superseded as i32]),
            (bus, 2, true, vec![M::Revoked as i32]),
        ],
        "{audit:?}"
    );

    t.sc.shutdown().await.unwrap();
    t.gd.shutdown().await.unwrap();
}

/// The page: PASS from a scanner's keystrokes and from an uploaded image of the QR code, a
/// seat's STOP after a revocation, and a malformed manifest's fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoint_page_shows_a_vehicle_verdict() {
    let Some(tools) = browser_or_skip("checkpoint_page_shows_a_vehicle_verdict") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let t = trips(dir.path()).await;
    let page = t.gd.http_addr.expect("Guangdong serves the page");
    let url = format!("https://{page}/?checkpoint=toll-7");
    let token = test_token(&t.gd);
    let image = dir.path().join("windshield-card.png");
    std::fs::write(&image, hcmr::qr::encode_png(&t.bus, 6).unwrap()).unwrap();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();

    // Part 1: PASS, scanned and from an image.
    let bus = t.bus.clone();
    let (tok, u, sh) = (token.clone(), url.clone(), shots.clone());
    in_browser(&tools, dir.path(), move |c| async move {
        c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
        c.goto(&u).await.unwrap();
        wait_displayed(&c, "#login", true, VERDICT_WAIT).await;
        log_in(&c, &tok).await;
        wait_logged_in(&c, "test").await;

        scan(&c, &bus).await;
        wait_attr(&c, "#verdict", "data-state", "pass", VERDICT_WAIT).await;
        assert_eq!(attr(&c, "#verdict", "data-reason").await, "ok");
        let title = text(&c, "#verdict-title").await + &text(&c, "#verdict-title-en").await;
        assert!(title.contains("放行") && title.contains("PASS"), "{title}");
        assert_eq!(text(&c, "#headcount").await, ON_BOARD.to_string());
        let split = text(&c, "#headcount-split").await;
        assert!(split.contains("passengers 3 + crew 1"), "{split}");
        assert_eq!(text(&c, "#vehicle-plate").await, PLATE);
        assert_eq!(
            text(&c, "#vehicle-route").await,
            "四川省 Sichuan 511304 → 广东省 Guangdong → 浙江省 Zhejiang 330200"
        );
        assert_eq!(text(&c, "#vehicle-place").await, "宁波市某电子厂");
        let times = text(&c, "#vehicle-times").await;
        assert!(
            times.contains("departure") && times.contains("+08:00"),
            "{times}"
        );
        assert_eq!(text(&c, "#vehicle-trip").await, "5151515151515151 v1");
        assert_eq!(text(&c, "#not-rechecked").await, "0");
        assert!(text(&c, "#vehicle-seal").await.contains("ago"));
        assert!(!displayed(&c, "#stop-advice").await);
        assert!(
            !displayed(&c, "#subject").await,
            "a person's fields on a vehicle"
        );
        assert_eq!(text(&c, "#count").await, "1");
        let bg = rgb(&c, "backgroundColor").await;
        assert!(bg.1 > 100 && bg.1 > bg.0 + 50, "PASS is green: {bg:?}");
        screenshot(&c, &sh.join("manifest-pass.png")).await;
        // On a phone the headcount is seen without scrolling.
        c.set_window_size(PHONE.0, PHONE.1).await.unwrap();
        assert_in_viewport(&c, "#headcount", "4", &sh.join("manifest-pass-phone.png")).await;
        c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
        assert_focus_on_code(&c).await;

        // The same bus from a photo of its windshield card: read in the browser by jsQR.
        // Escape first: back to ready, so that the next PASS is the image's.
        c.active_element()
            .await
            .unwrap()
            .send_keys("\u{e00c}")
            .await
            .unwrap();
        wait_attr(&c, "#verdict", "data-state", "ready", VERDICT_WAIT).await;
        let file = c.find(Locator::Css("#image-file")).await.unwrap();
        file.send_keys(&image.display().to_string()).await.unwrap();
        wait_attr(&c, "#verdict", "data-state", "pass", VERDICT_WAIT).await;
        assert_eq!(text(&c, "#headcount").await, ON_BOARD.to_string());
        assert_eq!(text(&c, "#vehicle-plate").await, PLATE);
        assert_eq!(text(&c, "#count").await, "2");
    })
    .await;

    // Part 2: after Sichuan revokes a passenger, the seat; then a truncated manifest.
    revoke_passenger(&t).await;
    let bus = t.bus.clone();
    let truncated = t.bus[..t.bus.len() - 9].to_string();
    in_browser(&tools, dir.path(), move |c| async move {
        c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
        c.goto(&url).await.unwrap();
        wait_displayed(&c, "#login", true, VERDICT_WAIT).await;
        log_in(&c, &token).await;
        wait_logged_in(&c, "test").await;

        scan(&c, &bus).await;
        wait_attr(&c, "#verdict", "data-state", "stop", VERDICT_WAIT).await;
        assert_eq!(attr(&c, "#verdict", "data-reason").await, "revoked");
        let title = text(&c, "#verdict-title").await + &text(&c, "#verdict-title-en").await;
        assert!(title.contains("拦停") && title.contains("STOP"), "{title}");
        let seat = text(&c, "#stop-reasons li[data-seat='3']").await;
        assert!(
            seat.contains("seat 3: revoked by 510000 Sichuan since boarding")
                && seat.contains("3号座位"),
            "{seat}"
        );
        assert_eq!(text(&c, "#vehicle-plate").await, PLATE);
        assert_eq!(text(&c, "#headcount").await, "", "no headcount on STOP");
        let advice = text(&c, "#stop-advice").await;
        assert!(
            advice.contains("scan each person's own health code") && advice.contains("逐一扫描"),
            "{advice}"
        );
        let bg = rgb(&c, "backgroundColor").await;
        assert!(bg.0 < 80 && bg.1 < 80, "STOP is dark: {bg:?}");
        screenshot(&c, &shots.join("manifest-stop.png")).await;
        c.set_window_size(PHONE.0, PHONE.1).await.unwrap();
        assert_in_viewport(
            &c,
            "#stop-reasons li[data-seat='3']",
            "seat 3",
            &shots.join("manifest-stop-phone.png"),
        )
        .await;
        c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();

        scan(&c, &truncated).await;
        wait_attr(&c, "#verdict", "data-reason", "malformed", VERDICT_WAIT).await;
        assert_eq!(attr(&c, "#verdict", "data-state").await, "stop");
        let reasons = text(&c, "#stop-reasons").await;
        assert!(
            reasons.contains("not a readable trip manifest") && reasons.contains("无法识别"),
            "{reasons}"
        );
        let fault = text(&c, "#stop-reasons .stop-detail").await;
        assert!(!fault.is_empty(), "no fault shown");
        assert!(
            !displayed(&c, "#vehicle-facts").await,
            "a malformed manifest's claims are shown"
        );
        assert_eq!(text(&c, "#count").await, "2");
    })
    .await;

    // The page's checks are audited like gRPC's.
    let audit = manifest_audit(&t.gd, "toll-7", 4).await;
    assert_eq!(audit.len(), 4, "{audit:?}");
    assert!(audit.iter().all(|r| r.via == "http"), "{audit:?}");

    t.sc.shutdown().await.unwrap();
    t.gd.shutdown().await.unwrap();
}

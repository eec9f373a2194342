//! The checkpoint page with trip manifests (`HCMRT1:`, docs/transport.md section 5): the
//! vehicle's verdict on the page and from `POST /api/verify-manifest`.
//!
//! The manifests are signed here with the core's `manifest::sign` and the origin node's own key
//! read from its key file (the TripService that seals them is not in this build), over codes
//! the real nodes issued. Guangdong serves the page:
//! - a Guangdong manifest (its own province: no agreement needed) carrying four Guangdong
//!   people and one Sichuan passenger passes, with the headcount, plate, route and times;
//! - a Sichuan manifest, under an agreement whose terms accept no manifests (the term cannot be
//!   set through the API yet), stops with `manifests_not_agreed`;
//! - once Sichuan revokes its passenger and Guangdong has synced, the Guangdong manifest stops
//!   with that seat's reason, naming Sichuan;
//! - a truncated manifest stops as `malformed`, with the decoder's fault.

use super::https::{https_client, send};
use super::*;
use hcmr::keyfile::NodeKeyFile as _;
use hcmr::keys::NodeKey;
use hcmr::manifest::{self, Escort, Manifest, Person, Place, TripId, Vehicle};
use hcmr::province::Province;
use hcmr::status::HealthStatus;

/// The plate of the Guangdong bus.
const PLATE: &str = "粤A·12345";
/// People on the Guangdong bus: the driver (crew) and four passengers.
const ON_BOARD: usize = 5;
/// The Sichuan passenger's seat on the Guangdong bus.
const SICHUAN_SEAT: usize = 5;

/// Two nodes, an agreement, and the manifests shown to Guangdong's page.
struct Trips {
    sc: hcmr::node::NodeHandle,
    gd: hcmr::node::NodeHandle,
    /// The Guangdong bus: 4 Guangdong people, then the Sichuan passenger in seat 5.
    own: String,
    /// The Sichuan bus, through Guangdong: 2 Sichuan people.
    peer: String,
    /// The Sichuan passenger's cti, to revoke.
    sichuan_cti: String,
}

/// The node key in a node's folder (`node.key`, written plain by `init`).
fn node_key(n: &hcmr::node::NodeHandle) -> NodeKey {
    NodeKey::read_pem(&n.dir.join("node.key")).unwrap()
}

/// A person boarded by their code, as the origin decides it at boarding.
fn board(code: &str, issuer: u8, crew: bool, sealed_at: hcmr::UnixTime) -> Person {
    let code = hcmr::code::HealthCode::decode(code).unwrap();
    Person::from_code(&code, issuer, HealthStatus::Green, crew, sealed_at).unwrap()
}

fn manifest_of(
    trip: u8,
    origin: u32,
    transit: &[u32],
    vehicle: &str,
    issuers: &[u32],
    people: Vec<Person>,
    sealed_at: hcmr::UnixTime,
) -> Manifest {
    Manifest {
        trip_id: TripId([trip; 8]),
        version: 1,
        origin,
        destination: 330200,
        transit: transit
            .iter()
            .map(|p| Province::from_code(*p).unwrap())
            .collect(),
        vehicle: Vehicle::new(vehicle).unwrap(),
        place: Place::new("宁波市某电子厂").unwrap(),
        departure: sealed_at + 600,
        arrival: sealed_at + 600 + 20 * 3600,
        sealed_at,
        escort: Escort::new("张*三").unwrap(),
        issuers: issuers
            .iter()
            .map(|p| Province::from_code(*p).unwrap())
            .collect(),
        people,
    }
}

async fn trips(dir: &Path) -> Trips {
    let sc = start(&init_node(dir, SICHUAN).await).await;
    let gd = start(&init_node_with_page(dir, GUANGDONG).await).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let mut gd_codes = Vec::new();
    for seq in 1..=4u16 {
        gd_codes.push(
            issue(&gd, subject("王建国", "440104", 130 + seq), G, 3600)
                .await
                .code,
        );
    }
    let sichuan = issue(&sc, subject("李秀英", "511302", 242), G, 3600).await;
    let sc_driver = issue(&sc, subject("张伟", "510802", 311), G, 3600).await;
    let sealed_at = hcmr::unix_now();

    let mut people: Vec<Person> = gd_codes
        .iter()
        .enumerate()
        .map(|(i, c)| board(c, 0, i == 0, sealed_at))
        .collect();
    people.push(board(&sichuan.code, 1, false, sealed_at));
    assert_eq!(people.len(), ON_BOARD);
    let own = manifest_of(
        0x51,
        440104,
        &[360000],
        PLATE,
        &[GUANGDONG, SICHUAN],
        people,
        sealed_at,
    );
    let peer = manifest_of(
        0x52,
        511304,
        &[GUANGDONG],
        "川R·12345",
        &[SICHUAN],
        vec![
            board(&sc_driver.code, 0, true, sealed_at),
            board(&sichuan.code, 0, false, sealed_at),
        ],
        sealed_at,
    );
    // Guangdong holds Sichuan's feed: the Sichuan passenger is re-checked, not taken on trust.
    sync_now(&gd).await;
    Trips {
        own: manifest::sign(&own, &node_key(&gd)),
        peer: manifest::sign(&peer, &node_key(&sc)),
        sichuan_cti: sichuan.cti,
        sc,
        gd,
    }
}

/// Revokes the Sichuan passenger's code at Sichuan, and syncs Guangdong.
async fn revoke_sichuan_passenger(t: &Trips) {
    codes(&t.sc)
        .await
        .revoke_health_code(proto::RevokeHealthCodeRequest {
            cti: t.sichuan_cti.clone(),
        })
        .await
        .unwrap();
    sync_now(&t.gd).await;
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
        let client = client.clone();
        let url = url.clone();
        let token = token.clone();
        async move {
            let r = send(&client, "POST", &url, &[JSON, ("authorization", &token)], &m).await;
            assert_eq!(r.status, 200, "{:?}", r.text());
            assert_eq!(r.header("cache-control"), "no-store");
            r.json()
        }
    };

    // The guard: no token 401, an issuer's token 403, a foreign origin 403.
    let r = send(&client, "POST", &url, &[JSON], &body(&t.own)).await;
    assert_eq!(r.status, 401, "{:?}", r.text());
    let r = send(
        &client,
        "POST",
        &url,
        &[JSON, ("authorization", &issuer)],
        &body(&t.own),
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
        &body(&t.own),
    )
    .await;
    assert_eq!(r.status, 403, "{:?}", r.text());
    // Bad input: named fields.
    let r = send(
        &client,
        "POST",
        &url,
        &[JSON, ("authorization", &token)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "manifest: required");
    let r = send(
        &client,
        "POST",
        &url,
        &[JSON, ("authorization", &token)],
        &json!({ "manifest": 7 }).to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "manifest: must be a string");

    // PASS: the Guangdong bus.
    let v = ask(body(&t.own)).await;
    assert_eq!(v["pass"], true, "{v}");
    assert_eq!(v["verdict"], "PASS", "{v}");
    assert_eq!(v["signature_verified"], true);
    assert_eq!(v["headcount"], ON_BOARD);
    assert_eq!(v["passengers"], ON_BOARD - 1);
    assert_eq!(v["crew"], 1);
    assert_eq!(v["vehicle"], PLATE);
    assert_eq!(v["trip_id"], "5151515151515151");
    assert_eq!(v["version"], 1);
    assert_eq!(v["origin"]["code"], "440104");
    assert_eq!(v["origin"]["province"]["name_zh"], "广东省");
    assert_eq!(v["destination"]["province"]["name_en"], "Zhejiang");
    assert_eq!(v["transit"][0]["code"], "360000");
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

    // STOP: Sichuan's bus, under an agreement that accepts no manifests; authentic, so the
    // vehicle is named.
    let v = ask(body(&t.peer)).await;
    assert_eq!(v["pass"], false, "{v}");
    assert_eq!(v["verdict"], "STOP");
    assert_eq!(v["signature_verified"], true);
    assert_eq!(v["vehicle"], "川R·12345");
    assert_eq!(v["reasons"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["reasons"][0]["reason"], "manifests_not_agreed");
    assert_eq!(v["reasons"][0]["seat"], Value::Null);
    assert_eq!(v["headcount"], 2);
    assert_eq!(v["not_rechecked"], Value::Null);

    // Malformed: the decoder's fault, nothing of the trip.
    let truncated = &t.own[..t.own.len() - 9];
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

    // Sichuan revokes its passenger: the Guangdong bus stops at seat 5, by Sichuan.
    revoke_sichuan_passenger(&t).await;
    let v = ask(body(&t.own)).await;
    assert_eq!(v["pass"], false, "{v}");
    let reasons = v["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{v}");
    assert_eq!(reasons[0]["reason"], "revoked");
    assert_eq!(reasons[0]["seat"], SICHUAN_SEAT);
    assert_eq!(reasons[0]["issuer"]["code"], "510000");
    let said = reasons[0]["explanation"].as_str().unwrap();
    assert!(
        said.contains("seat 5: revoked by 510000 Sichuan since boarding"),
        "{said}"
    );

    t.sc.shutdown().await.unwrap();
    t.gd.shutdown().await.unwrap();
}

/// The page: PASS from a scanner's keystrokes, STOP from an uploaded image of the QR code, a
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
    let image = dir.path().join("peer-manifest.png");
    std::fs::write(&image, hcmr::qr::encode_png(&t.peer, 6).unwrap()).unwrap();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();

    // Part 1: PASS, then the Sichuan bus from an image.
    let own = t.own.clone();
    let (tok, u, sh) = (token.clone(), url.clone(), shots.clone());
    in_browser(&tools, dir.path(), move |c| async move {
        c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
        c.goto(&u).await.unwrap();
        wait_displayed(&c, "#login", true, VERDICT_WAIT).await;
        log_in(&c, &tok).await;
        wait_logged_in(&c, "test").await;

        scan(&c, &own).await;
        wait_attr(&c, "#verdict", "data-state", "pass", VERDICT_WAIT).await;
        assert_eq!(attr(&c, "#verdict", "data-reason").await, "ok");
        let title = text(&c, "#verdict-title").await + &text(&c, "#verdict-title-en").await;
        assert!(title.contains("放行") && title.contains("PASS"), "{title}");
        assert_eq!(text(&c, "#headcount").await, ON_BOARD.to_string());
        let split = text(&c, "#headcount-split").await;
        assert!(split.contains("passengers 4 + crew 1"), "{split}");
        assert_eq!(text(&c, "#vehicle-plate").await, PLATE);
        let route = text(&c, "#vehicle-route").await;
        assert!(
            route.contains("广东省 Guangdong 440104")
                && route.contains("江西省 Jiangxi")
                && route.contains("浙江省 Zhejiang 330200"),
            "{route}"
        );
        assert_eq!(text(&c, "#vehicle-place").await, "宁波市某电子厂");
        let times = text(&c, "#vehicle-times").await;
        assert!(times.contains("+08:00"), "{times}");
        assert_eq!(text(&c, "#vehicle-trip").await, "5151515151515151 v1");
        assert_eq!(text(&c, "#not-rechecked").await, "0");
        assert!(!displayed(&c, "#stop-advice").await);
        assert!(!displayed(&c, "#subject").await, "a person's fields on a vehicle");
        assert_eq!(text(&c, "#count").await, "1");
        let bg = rgb(&c, "backgroundColor").await;
        assert!(bg.1 > 100 && bg.1 > bg.0 + 50, "PASS is green: {bg:?}");
        screenshot(&c, &sh.join("manifest-pass.png")).await;
        assert_focus_on_code(&c).await;

        // The Sichuan bus, from a photo of its windshield card.
        let file = c.find(Locator::Css("#image-file")).await.unwrap();
        file.send_keys(&image.display().to_string()).await.unwrap();
        wait_attr(&c, "#verdict", "data-state", "stop", VERDICT_WAIT).await;
        assert_eq!(
            attr(&c, "#verdict", "data-reason").await,
            "manifests_not_agreed"
        );
        let title = text(&c, "#verdict-title").await + &text(&c, "#verdict-title-en").await;
        assert!(title.contains("拦停") && title.contains("STOP"), "{title}");
        let reasons = text(&c, "#stop-reasons").await;
        assert!(
            reasons.contains("the agreement does not accept these manifests"),
            "{reasons}"
        );
        assert_eq!(text(&c, "#vehicle-plate").await, "川R·12345");
        let advice = text(&c, "#stop-advice").await;
        assert!(
            advice.contains("scan each person's own health code") && advice.contains("逐一扫描"),
            "{advice}"
        );
        assert_eq!(text(&c, "#headcount").await, "", "no headcount on STOP");
        let bg = rgb(&c, "backgroundColor").await;
        assert!(bg.0 < 80 && bg.1 < 80, "STOP is dark: {bg:?}");
        screenshot(&c, &sh.join("manifest-stop.png")).await;
    })
    .await;

    // Part 2: after Sichuan revokes its passenger, the seat; then a truncated manifest.
    revoke_sichuan_passenger(&t).await;
    let own = t.own.clone();
    let truncated = t.own[..t.own.len() - 9].to_string();
    in_browser(&tools, dir.path(), move |c| async move {
        c.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
        c.goto(&url).await.unwrap();
        wait_displayed(&c, "#login", true, VERDICT_WAIT).await;
        log_in(&c, &token).await;
        wait_logged_in(&c, "test").await;

        scan(&c, &own).await;
        wait_attr(&c, "#verdict", "data-state", "stop", VERDICT_WAIT).await;
        assert_eq!(attr(&c, "#verdict", "data-reason").await, "revoked");
        let seat = text(&c, "#stop-reasons li[data-seat='5']").await;
        assert!(
            seat.contains("seat 5: revoked by 510000 Sichuan since boarding")
                && seat.contains("5号座位"),
            "{seat}"
        );
        assert_eq!(text(&c, "#vehicle-plate").await, PLATE);
        assert!(displayed(&c, "#stop-advice").await);
        screenshot(&c, &shots.join("manifest-stop-seat.png")).await;

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

    t.sc.shutdown().await.unwrap();
    t.gd.shutdown().await.unwrap();
}

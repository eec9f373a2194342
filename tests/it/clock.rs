//! Time, judged by one injected clock per node: an issuer whose clock runs two hours fast (the
//! EU verifier told people with a slow phone that their certificate came "from the future") is
//! refused as NOT_YET_VALID within the default skew and recognized once the verifier's
//! `policy.clock_skew_secs` covers it; an agreement ends exactly when the verifier's clock
//! passes its `effective_until`.

use crate::common;

use common::*;
use hcmr::clock::Clock;
use hcmr::node::{spawn_with_clock, Config};
use hcmr::proto::{Reason, Verdict};

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_is_tolerated_as_configured_and_agreements_end_on_the_verifiers_clock() {
    let dir = tempfile::tempdir().unwrap();
    let sc_cfg = init_node(dir.path(), SICHUAN).await;
    let gd_cfg = init_node(dir.path(), GUANGDONG).await;
    // Sichuan's clock is two hours fast; Guangdong's is set by hand, starting now.
    let sc = spawn_with_clock(&Config::load(&sc_cfg).unwrap(), Clock::Offset(7200))
        .await
        .unwrap();
    let now = hcmr::unix_now();
    let gd_clock = Clock::manual(now);
    let gd = spawn_with_clock(&Config::load(&gd_cfg).unwrap(), gd_clock.clone())
        .await
        .unwrap();
    conclude(&gd, &sc, &[(G, G)], &[(G, G)]).await;

    let code = issue(&sc, subject("王建国", "510104", 131), G, 3 * 3600)
        .await
        .code;
    let v = verify(&gd, &code).await;
    assert_eq!(
        v.reason,
        Reason::NotYetValid as i32,
        "default skew 300 s: {v:?}"
    );
    assert!(v.detail.contains("future") || !v.detail.is_empty(), "{v:?}");

    // The verifier's operator allows three hours of skew.
    gd.shutdown().await.unwrap();
    let text = std::fs::read_to_string(&gd_cfg).unwrap();
    assert!(text.contains("clock_skew_secs = 300"));
    std::fs::write(
        &gd_cfg,
        text.replace("clock_skew_secs = 300", "clock_skew_secs = 10800"),
    )
    .unwrap();
    let gd = spawn_with_clock(&Config::load(&gd_cfg).unwrap(), gd_clock.clone())
        .await
        .unwrap();
    let v = verify(&gd, &code).await;
    assert_eq!(v.verdict, Verdict::Recognized as i32, "{v:?}");

    // The agreement (conclude: in force until now + 1 day) by Guangdong's clock: one second
    // before its end the code is still recognized; one second after, AGREEMENT_EXPIRED.
    let end = now + 86_400;
    gd_clock.set(end - 1);
    let late = issue(&sc, subject("李秀英", "511302", 242), G, 3 * 86_400)
        .await
        .code;
    let v = verify(&gd, &late).await;
    assert!(
        v.verdict == Verdict::Recognized as i32 || v.reason == Reason::CodeTooOld as i32,
        "{v:?}"
    );
    gd_clock.set(end + 1);
    let v = verify(&gd, &late).await;
    assert_eq!(v.reason, Reason::AgreementExpired as i32, "{v:?}");
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
}

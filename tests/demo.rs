//! The main job (`hcmr demo`) runs its five-province scenario and every verdict is as expected.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_federation_meets_every_expectation() {
    let mut out = Vec::new();
    let outcome = hcmr::demo::run(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(outcome.mismatches, 0, "{text}");
    assert_eq!(outcome.checks, 14);
    assert_eq!(outcome.recognized, 10);
    let row = |needle: &[&str]| text.lines().any(|l| needle.iter().all(|n| l.contains(n)));
    assert!(
        row(&[
            "李*英",
            "Sichuan",
            "Guangdong",
            "yellow",
            "red",
            "RECOGNIZED",
            "ok"
        ]),
        "{text}"
    );
    assert!(
        row(&["Jiangsu", "Zhejiang", "NOT RECOGNIZED", "no_agreement"]),
        "{text}"
    );
    assert!(
        row(&["NOT RECOGNIZED", "bad_signature", "edited to green"]),
        "{text}"
    );
    assert!(
        row(&["NOT RECOGNIZED", "expired", "shown after expiry"]),
        "{text}"
    );
    assert!(
        text.contains("14 of 14 verdicts as the scenario expects"),
        "{text}"
    );
}

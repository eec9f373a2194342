//! The main job (`hcmr demo`) runs its five-province scenario and every verdict is as expected.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_federation_meets_every_expectation() {
    let mut out = Vec::new();
    let outcome = hcmr::demo::run(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(outcome.mismatches, 0, "{text}");
    assert_eq!(outcome.checks, 20);
    assert_eq!(outcome.recognized, 13);
    assert_eq!(
        (outcome.access_checks, outcome.access_mismatches),
        (4, 0),
        "{text}"
    );
    // The point-to-point trip: 13 boardings, 4 checks at the Anhui border, the check-in, the
    // receipt and Sichuan's view; then the trace: the chain (2 lines), the case's trip, its
    // contacts, the notices queued, and each platform's notices.
    assert_eq!(
        (outcome.trip_checks, outcome.trip_mismatches),
        (27, 0),
        "{text}"
    );
    for (what, got) in [
        ("board 冯*华 (Sichuan code)", "status_ends_before_arrival"),
        ("board 谢*福 (Sichuan code)", "on_another_manifest"),
        ("board 汪*芬 (Anhui code)", "boarded, seat 11"),
        ("Anhui border, version 1", "PASS 11 (10+1)"),
        ("Anhui, after Sichuan revoked one code", "STOP revoked@6"),
        ("Anhui, version 2 without that seat", "PASS 10 (9+1)"),
        ("Anhui, version 1 shown again", "STOP superseded,revoked@6"),
        ("Zhejiang factory gate, check-in", "PASS 10 (9+1)"),
        (
            "handover receipt signed by Zhejiang",
            "9 present, 1 missing, 1 under observation",
        ),
        ("Sichuan's view of the trip", "delivered, 4 checks reported"),
        (
            "Sichuan's chain of the trip (TraceTrip)",
            "21 events by 330000+340000+510000, 21 verified",
        ),
        (
            "Sichuan traces the case (TraceSubject)",
            "1 trip, seat 9, held by 330000+340000+510000; asked 330000+340000",
        ),
        ("contacts", "seats 1,5,6,7,8,10 (Anhui code: seat 10)"),
        ("exposure notices queued", "6"),
        (
            "Sichuan's platform: its residents' notices",
            "5, 5 matched to a code it issued",
        ),
        (
            "Anhui's platform: its resident's notice",
            "from 510000, seat 10, 1 seat(s) from the case, matched",
        ),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(what) && l.trim_end().ends_with(got)),
            "{what}: {got} in {text}"
        );
    }
    for (what, got) in [
        ("a call without a token", "UNAUTHENTICATED"),
        (
            "a Guangdong checkpoint (verifier) tries to issue",
            "PERMISSION_DENIED",
        ),
        (
            "Jiangsu's node pulls Sichuan's feed (no agreement)",
            "PERMISSION_DENIED",
        ),
        (
            "Guangdong's node pulls Sichuan's feed (agreement)",
            "served",
        ),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(what) && l.trim_end().ends_with(got)),
            "{what}: {got} in {text}"
        );
    }
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
    for needle in [
        &[
            "王*国",
            "NOT RECOGNIZED",
            "revoked",
            "code revoked by Sichuan",
        ][..],
        &["李*英", "NOT RECOGNIZED", "revoked", "subject revoked"],
        &["李*英", "red", "RECOGNIZED", "new code after the change"],
        &["刘*", "Zhejiang", "RECOGNIZED", "signed by the new key"],
        &["张*", "RECOGNIZED", "signed by the old key"],
        &["杨*", "NOT RECOGNIZED", "agreement_terminated"],
    ] {
        assert!(row(needle), "{needle:?} in {text}");
    }
    assert!(
        text.contains("20 of 20 verdicts as the scenario expects"),
        "{text}"
    );
}

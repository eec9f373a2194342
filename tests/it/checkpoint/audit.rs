//! The audit log of verifications: no personal data, and read page by page.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifications_are_audited_without_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let person = subject("李秀英", "511302", 242);
    let number = person.document_number.clone();
    let code = issue(&sc, person, Y, 300).await;

    let mut c = codes(&gd).await;
    let v = c
        .verify_health_code(proto::VerifyHealthCodeRequest {
            code: code.code.clone(),
            checkpoint_id: "guangzhou-south-gate-3".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.verdict, Verdict::Recognized as i32);
    // The checkpoint id may also come as metadata.
    let mut req = tonic::Request::new(proto::VerifyHealthCodeRequest {
        code: "HCMR1:garbage!".into(),
        checkpoint_id: String::new(),
    });
    req.metadata_mut()
        .insert("x-hcmr-checkpoint", "dongguan-factory-1".parse().unwrap());
    let v = c.verify_health_code(req).await.unwrap().into_inner();
    assert_eq!(v.reason, Reason::Malformed as i32);

    let records = audit_until(&gd, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let first = &records[0];
    assert_eq!(first.checkpoint_id, "guangzhou-south-gate-3");
    assert_eq!(first.via, "grpc");
    assert_eq!(first.issuer_province, "510000");
    assert_eq!(first.verdict, Verdict::Recognized as i32);
    assert_eq!(first.reason, Reason::Ok as i32);
    let cti = hex::decode(&code.cti).unwrap();
    assert_eq!(first.cti_hash, hex::encode(&Sha256::digest(&cti)[..16]));
    assert!(first.time >= code.iat && first.time <= hcmr::unix_now().secs());
    let second = &records[1];
    assert_eq!(second.checkpoint_id, "dongguan-factory-1");
    assert_eq!(
        (
            second.verdict,
            second.reason,
            second.issuer_province.as_str(),
            second.cti_hash.as_str()
        ),
        (
            Verdict::NotRecognized as i32,
            Reason::Malformed as i32,
            "",
            ""
        )
    );

    // Filters: by verdict, by issuer, by time.
    let only_bad = audit(
        &gd,
        proto::ListAuditRecordsRequest {
            verdict: Verdict::NotRecognized as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(only_bad.len(), 1);
    let by_issuer = audit(
        &gd,
        proto::ListAuditRecordsRequest {
            issuer_province: "510000".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_issuer.len(), 1);
    let none = audit(
        &gd,
        proto::ListAuditRecordsRequest {
            until: first.time,
            ..Default::default()
        },
    )
    .await;
    assert!(none.is_empty());
    let e = operator(&gd)
        .await
        .list_audit_records(proto::ListAuditRecordsRequest {
            issuer_province: "51".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("issuer_province"));

    // The CLI exports CSV and a day's counts.
    let out = cli(&gd).args(["audit", "--csv"]).output().unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "time,checkpoint_id,via,issuer_province,verdict,reason,cti_hash,replica"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].contains(",guangzhou-south-gate-3,grpc,510000,RECOGNIZED,OK,"),
        "{csv}"
    );
    // Times on the command line carry their offset: the first record's time in Beijing time
    // (+08:00) is the same instant; a time without an offset is refused, not read as UTC.
    let beijing = |t: u64| hcmr::cli::rfc3339(t + 8 * 3600).replace('Z', "+08:00");
    let rows = |args: &[&str]| {
        let out = cli(&gd)
            .arg("audit")
            .arg("--csv")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().lines().count() - 1
    };
    assert_eq!(rows(&["--from", &beijing(first.time)]), 2);
    assert_eq!(rows(&["--from", &beijing(first.time + 3600)]), 0);
    assert_eq!(rows(&["--until", &beijing(first.time)]), 0);
    assert_eq!(rows(&["--until", &beijing(first.time + 3600)]), 2);
    let no_offset = beijing(first.time).replace("+08:00", "");
    let out = cli(&gd)
        .args(["audit", "--from", &no_offset])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("give the offset from UTC"),
        "{out:?}"
    );
    let day = hcmr::cli::rfc3339(first.time)[..10].to_string();
    let out = cli(&gd)
        .args(["audit", "--summary", &day])
        .output()
        .unwrap();
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(summary.contains("2 verifications"), "{summary}");
    assert!(
        summary.contains("510000") && summary.contains("Sichuan"),
        "{summary}"
    );

    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();
    // Nothing personal at rest at the verifying node.
    for file in walk(&dir.path().join("440000")) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [number.as_bytes(), "李秀英".as_bytes(), "李*英".as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds personal data",
                file.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_read_page_by_page() {
    // More verifications than a page holds (10,000), in a second or a few: every one is
    // reached, through the API, the CLI's listing and the CLI's day summary.
    let dir = tempfile::tempdir().unwrap();
    let cfg = init_node(dir.path(), SICHUAN).await;
    // Each code of a batch counts against the caller's rate: raised out of the way.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "caller_requests_per_sec = 200",
            "caller_requests_per_sec = 1000000",
        )
        .replace("caller_burst = 400", "caller_burst = 1000000"),
    )
    .unwrap();
    let sc = start(&cfg).await;
    let code = issue(&sc, subject("张伟", "510104", 7), G, 600).await.code;
    const BATCH: usize = 256;
    let mut hc = codes(&sc).await;
    let mut batches: Vec<Vec<String>> = vec![vec![code.clone(); BATCH]; 39];
    batches.push(
        std::iter::repeat_n(code.clone(), 17)
            .chain(std::iter::repeat_n("HCMR1:X".to_string(), 3))
            .collect(),
    );
    for codes in batches {
        hc.batch_verify_health_codes(proto::BatchVerifyHealthCodesRequest {
            codes,
            checkpoint_id: "chengdu-east-2".into(),
        })
        .await
        .unwrap();
    }
    const ALL: usize = 39 * BATCH + 20;
    const BAD: usize = 3;

    let mut op = operator(&sc).await;
    let page = |limit: u32, verdict: Verdict, token: &str| proto::ListAuditRecordsRequest {
        limit,
        verdict: verdict as i32,
        page_token: token.to_string(),
        ..Default::default()
    };
    // Every record, a page at a time; the writer stores them in the background (bounded wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (all, pages) = loop {
        let (mut all, mut token, mut pages) = (Vec::new(), String::new(), Vec::new());
        loop {
            // 100,000 asks for more than a page holds: lowered to 10,000 (AIP-158).
            let r = op
                .list_audit_records(page(100_000, Verdict::Unspecified, &token))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.truncated, !r.next_page_token.is_empty());
            pages.push(r.records.len());
            all.extend(r.records);
            token = r.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        if all.len() >= ALL {
            break (all, pages);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} records",
            all.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(pages, vec![10_000, ALL - 10_000]);
    assert_eq!(all.len(), ALL);
    assert!(all.windows(2).all(|w| w[0].time <= w[1].time));
    assert!(all.iter().all(|r| r.checkpoint_id == "chengdu-east-2"));
    let bad: Vec<_> = all
        .iter()
        .filter(|r| r.verdict == Verdict::NotRecognized as i32)
        .collect();
    assert_eq!(bad.len(), BAD);

    // A filter holds across pages; a token works only with the filters it was made for.
    let first = op
        .list_audit_records(page(2, Verdict::NotRecognized, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.records.len(), 2);
    assert!(first.truncated);
    let rest = op
        .list_audit_records(page(2, Verdict::NotRecognized, &first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((rest.records.len(), rest.next_page_token.as_str()), (1, ""));
    assert_eq!(rest.records[0].reason, bad[2].reason);
    let e = op
        .list_audit_records(page(2, Verdict::Unspecified, &first.next_page_token))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .starts_with("page_token: made for other filters"),
        "{}",
        e.message()
    );
    for junk in ["00ff", "not hex", &first.next_page_token[2..]] {
        let e = op
            .list_audit_records(page(2, Verdict::NotRecognized, junk))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{junk}");
        assert!(e.message().starts_with("page_token"), "{}", e.message());
    }

    // The CLI: --limit, then the token it prints, reaches the rest.
    let run = |args: &[&str]| {
        let mut c = cli(&sc);
        c.arg("audit").args(args);
        // The node serves on this runtime: run the CLI off its worker threads' duty.
        let out = tokio::task::block_in_place(|| c.output()).unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (status, listed, note) = run(&["--csv", "--limit", "3"]);
    assert_eq!(status, Some(0), "{note}");
    assert_eq!(listed.lines().count(), 1 + 3);
    let token = note
        .split("--page-token ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no page token in {note:?}"))
        .to_string();
    assert!(note.starts_with("3 records shown"), "{note}");
    let (status, listed, note) = run(&["--csv", "--page-token", &token, "--limit", "20000"]);
    assert_eq!((status, note.as_str()), (Some(0), ""));
    assert_eq!(listed.lines().count(), 1 + ALL - 3);
    assert_eq!(
        listed
            .lines()
            .filter(|l| l.contains(",NOT_RECOGNIZED,"))
            .count(),
        BAD
    );
    // A range that cannot match, and a day that is not one: the caller's mistakes (64).
    let (status, _, note) = run(&[
        "--from",
        "2026-12-01T08:00:00+08:00",
        "--until",
        "2026-12-01T00:00:00Z",
    ]);
    assert_eq!(status, Some(64));
    assert!(
        // In the display offset (Beijing time by default), with the offset.
        note.contains(
            "--from 2026-12-01T08:00:00+08:00 is not before --until 2026-12-01T08:00:00+08:00"
        ),
        "{note}"
    );
    for day in ["2026-02-30", "1969-12-31", "yesterday"] {
        let (status, _, note) = run(&["--summary", day]);
        assert_eq!(status, Some(64), "{day}");
        assert!(
            note.contains("a UTC day YYYY-MM-DD from 1970 on"),
            "{day}: {note}"
        );
    }
    // The token with another filter is the caller's mistake (64), named.
    let (status, _, note) = run(&["--page-token", &token, "--verdict", "recognized"]);
    assert_eq!(status, Some(64));
    assert!(
        note.contains("--page-token: made for other filters"),
        "{note}"
    );

    // The day's summary counts every record of the day, over both pages.
    let day = hcmr::cli::rfc3339(all[0].time)[..10].to_string();
    let of_day: Vec<_> = all
        .iter()
        .filter(|r| hcmr::cli::rfc3339(r.time).starts_with(&day))
        .collect();
    let bad_of_day = of_day
        .iter()
        .filter(|r| r.verdict == Verdict::NotRecognized as i32)
        .count();
    let (status, summary, note) = run(&["--summary", &day, "--csv"]);
    assert_eq!((status, note.as_str()), (Some(0), ""));
    let mut want = vec![
        "issuer_province,verdict,count".to_string(),
        format!("510000,RECOGNIZED,{}", of_day.len() - bad_of_day),
    ];
    if bad_of_day > 0 {
        want.insert(1, format!(",NOT_RECOGNIZED,{bad_of_day}"));
    }
    assert_eq!(summary.lines().collect::<Vec<_>>(), want);
    sc.shutdown().await.unwrap();
}

//! The privacy check (PIPL): after the demo, and after nodes have gone through every path that
//! handles a person's identity (issue, verify at home and at a peer, identity match at home and
//! forwarded, subject revocation, the CLI, bundles, the audit and access logs), no full name and
//! no document number appears anywhere in the nodes' folders or in their logs at debug level.
//! Likewise after traces and exposure notices (issue 18 section 4): a trip boarded, checked at
//! a border, traced with notices sent to a peer that takes them, read back by the CLI.

use crate::common;

use std::sync::{Arc, Mutex};

use common::*;
use hcmr::proto;

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;

/// The people of the demo's scenario (src/demo.rs), as the demo registers them: full name,
/// address code, birth date, sequence number. The demo's own data, so kept here rather than
/// taken from the testkit; the demo test below also finds each of them, masked, in the demo's
/// table, so that a change of the scenario's people shows here.
const DEMO_PEOPLE: [(&str, &str, &str, u16); 14] = [
    ("王建国", "510104", "19850312", 131),
    ("李秀英", "511302", "19900721", 242),
    ("张伟", "510802", "19780105", 311),
    ("刘洋", "511602", "19951130", 57),
    ("陈静", "510104", "19881018", 426),
    ("杨帆", "341202", "19920203", 173),
    ("赵敏", "340102", "19870614", 288),
    ("黄磊", "341602", "19830909", 95),
    ("周杰", "341202", "19960427", 139),
    ("吴芳", "320102", "19910816", 264),
    ("徐强", "510104", "19800222", 35),
    ("孙丽", "511302", "19930505", 148),
    ("马超", "440106", "19890101", 77),
    ("朱琳", "510104", "19970319", 182),
];

/// The demo's people: (full name, GB 11643 document number).
fn demo_people() -> Vec<(String, String)> {
    DEMO_PEOPLE
        .iter()
        .map(|(name, address, birth, seq)| {
            (
                name.to_string(),
                hcmr::identity::synthetic_resident_id(address, birth, *seq),
            )
        })
        .collect()
}

/// Where a needle occurs in `haystack`, if anywhere.
fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

/// Every place under `dir`, and in each of `logs`, holding a name or a number of `people`
/// (also used by the exposure notices' test, tests/it/exposure.rs).
pub(crate) fn findings(
    dirs: &[&std::path::Path],
    logs: &[(&str, &[u8])],
    people: &[(String, String)],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut files = 0;
    for d in dirs {
        for f in walk(d) {
            files += 1;
            let bytes = std::fs::read(&f).unwrap();
            for (name, number) in people {
                for needle in [name.as_str(), number.as_str(), &number.to_lowercase()] {
                    if contains(&bytes, needle) {
                        out.push(format!("{needle} in {}", f.display()));
                    }
                }
            }
        }
    }
    assert!(
        files > 10,
        "the folders hold the nodes' data ({files} files)"
    );
    for (what, bytes) in logs {
        for (name, number) in people {
            for needle in [name.as_str(), number.as_str()] {
                if contains(bytes, needle) {
                    out.push(format!("{needle} in {what}"));
                }
            }
        }
    }
    out
}

#[test]
fn the_demo_keeps_no_full_name_or_document_number_in_its_data_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("demo");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hcmr"))
        .args(["demo", "--keep", keep.to_str().unwrap()])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("20 of 20 verdicts as the scenario expects"),
        "{stdout}"
    );
    assert!(o.stderr.len() > 10_000, "debug logs were written");
    let people = demo_people();
    assert!(people.len() >= 14);
    // The table shows masked names and numbers (what a checkpoint sees), the logs nothing.
    assert!(stdout.contains("王*国") && stdout.contains("5101*1312"));
    for (name, number) in &people {
        let masked_name = hcmr::identity::mask_name(name).unwrap();
        let masked_number = hcmr::identity::mask_document_number(number);
        assert!(
            stdout.contains(&masked_name) && stdout.contains(&masked_number),
            "{masked_name} {masked_number} is not in the demo's table: {stdout}"
        );
    }
    let found = findings(
        &[&keep],
        &[
            ("the demo's output", &o.stdout),
            ("the demo's debug log", &o.stderr),
        ],
        &people,
    );
    assert!(found.is_empty(), "{found:#?}");
}

/// A writer that keeps everything written, for a tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A runtime (two workers, as the other multi-thread tests get from tokio) whose every
/// thread, workers and blocking pool alike, logs at debug level into `log`, and the guard that
/// makes the calling thread (which runs the test's own future in `block_on`) log there too. The
/// subscriber is scoped to these threads, not global: the other tests of this binary run in the
/// same process and must neither panic on a second global subscriber nor log into `log`.
fn runtime_logging_into(
    log: &Captured,
) -> (tokio::runtime::Runtime, tracing::dispatcher::DefaultGuard) {
    let writer = log.clone();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let guard = tracing::dispatcher::set_default(&dispatch);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // The guard lives as long as the thread: the thread keeps this subscriber to its end.
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        })
        .build()
        .unwrap();
    (runtime, guard)
}

#[test]
fn nodes_keep_no_full_name_or_document_number_on_any_path() {
    let log = Captured::default();
    let (runtime, _guard) = runtime_logging_into(&log);
    runtime.block_on(nodes_keep_no_personal_data(log));
}

async fn nodes_keep_no_personal_data(log: Captured) {
    let dir = tempfile::tempdir().unwrap();
    let sc = start(&init_node(dir.path(), SICHUAN).await).await;
    let gd = start(&init_node(dir.path(), GUANGDONG).await).await;
    conclude(&gd, &sc, &[(G, G), (Y, R), (R, R)], &[(G, G), (R, R)]).await;
    let people: Vec<proto::Subject> = vec![
        subject("王建国", "510104", 131),
        subject("李秀英", "511302", 242),
        subject("欧阳明月", "510802", 311),
        subject("张伟", "440106", 77),
    ];
    let mut hc = codes(&sc).await;
    for (i, p) in people.iter().enumerate() {
        let status = [G, Y, R, G][i];
        let code = issue(&sc, p.clone(), status, 600).await.code;
        // Verified at home and at the peer.
        verify(&sc, &code).await;
        verify(&gd, &code).await;
        // The identity match, at the issuer and forwarded by the peer, right and wrong.
        for at in [&sc, &gd] {
            for number in [
                p.document_number.clone(),
                people[(i + 1) % 4].document_number.clone(),
            ] {
                let _ = codes(at)
                    .await
                    .match_identity(proto::MatchIdentityRequest {
                        code: code.clone(),
                        document_type: proto::DocumentType::ResidentIdentityCard as i32,
                        document_number: number,
                    })
                    .await;
            }
        }
    }
    // A subject revocation, and a bad request that echoes nothing personal back into logs.
    hc.revoke_subject(proto::RevokeSubjectRequest {
        document_type: people[1].document_type,
        document_number: people[1].document_number.clone(),
        issued_before: 0,
    })
    .await
    .unwrap();
    let _ = hc
        .issue_health_code(proto::IssueHealthCodeRequest {
            subject: Some(proto::Subject {
                name: "欧阳明月".into(),
                document_type: proto::DocumentType::ResidentIdentityCard as i32,
                document_number: "510802199001010000".into(),
            }),
            status: G,
            status_valid_until: (hcmr::unix_now() + 86_400).secs(),
            code_lifetime_secs: 60,
            qr_format: 0,
        })
        .await
        .unwrap_err();
    // The CLI, with its own debug log.
    let cli_run = cli(&sc)
        .args([
            "issue",
            "--name",
            &people[3].name,
            "--doc-number",
            &people[3].document_number,
            "--status",
            "green",
        ])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(cli_run.status.success());
    let code = String::from_utf8_lossy(&cli_run.stdout).trim().to_string();
    let cli_verify = cli(&gd)
        .args(["verify", &code])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&cli_verify.stdout).starts_with("RECOGNIZED"));
    // A bundle, the audit log, the access log (an anonymous call refused).
    let bundle = dir.path().join("sc.bundle");
    let b = operator(&sc)
        .await
        .export_trust_bundle(proto::ExportTrustBundleRequest::default())
        .await
        .unwrap()
        .into_inner();
    std::fs::write(&bundle, format!("{b:?}")).unwrap();
    audit_records(&gd).await;
    let _ = proto::health_code_service_client::HealthCodeServiceClient::new(
        channel_as(&sc, None).await,
    )
    .verify_health_code(proto::VerifyHealthCodeRequest::default())
    .await;
    denials(&sc, 1).await;
    sc.shutdown().await.unwrap();
    gd.shutdown().await.unwrap();

    let logged = log.0.lock().unwrap().clone();
    assert!(logged.len() > 1_000, "debug logs were captured");
    let pairs: Vec<(String, String)> = people
        .iter()
        .map(|p| (p.name.clone(), p.document_number.clone()))
        .chain([("欧阳明月".to_string(), "510802199001010000".to_string())])
        .collect();
    let found = findings(
        &[dir.path()],
        &[
            ("the nodes' debug log", &logged),
            ("the CLI's output", &cli_run.stdout),
            ("the CLI's log", &cli_run.stderr),
            ("the verifying CLI's output", &cli_verify.stdout),
            ("the verifying CLI's log", &cli_verify.stderr),
        ],
        &pairs,
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn traces_and_notices_keep_no_full_name_or_document_number() {
    let log = Captured::default();
    let (runtime, _guard) = runtime_logging_into(&log);
    runtime.block_on(traces_keep_no_personal_data(log));
}

async fn traces_keep_no_personal_data(log: Captured) {
    use crate::trace_subject::{agree, bus, tracer};
    const ANHUI: u32 = 340000;
    let dir = tempfile::tempdir().unwrap();
    let clock = hcmr::clock::Clock::manual(hcmr::unix_now());
    let sc = start_on(&init_node(dir.path(), SICHUAN).await, &clock).await;
    let ah = start_on(&init_node(dir.path(), ANHUI).await, &clock).await;
    // Sichuan's buses pass through Anhui; each traces at the other and takes its notices.
    agree(
        &sc,
        &ah,
        proto::CreateAgreementRequest {
            our_manifests_transit: true,
            our_tracing: true,
            peer_tracing: true,
            ..Default::default()
        },
    )
    .await;
    sync_now(&sc).await;
    sync_now(&ah).await;
    let people: Vec<proto::Subject> = vec![
        subject("罗德明", "511304", 501),
        subject("何师傅", "511304", 502),
        subject("欧阳明月", "340104", 503),
        subject("杨小燕", "511304", 504),
        subject("王芳", "340104", 505),
    ];
    let mut issued = Vec::new();
    for p in &people {
        let at = if p.document_number.starts_with("34") {
            &ah
        } else {
            &sc
        };
        issued.push(issue(at, p.clone(), G, 3600).await);
    }
    // The bus: the driver, the case, then the others; checked at the Anhui border.
    let now = clock.now();
    let seats: Vec<&proto::IssueHealthCodeResponse> =
        [1, 0, 2, 3, 4].iter().map(|&i| &issued[i]).collect();
    let (trip, manifest) = bus(
        &sc,
        "511304",
        "川R·24680",
        (now + 60).secs(),
        &["340000"],
        &seats,
    )
    .await;
    clock.set(now + 3600);
    let pass = codes(&ah)
        .await
        .verify_manifest(proto::VerifyManifestRequest {
            manifest,
            checkpoint_id: "皖-G42".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(pass.pass, "{pass:?}");
    clock.set(now + 3 * 3600);
    // The trace with notices: to Sichuan's residents here, to Anhui's at Anhui.
    let r = tracer(&sc)
        .await
        .trace_subject(proto::TraceSubjectRequest {
            document_type: proto::DocumentType::ResidentIdentityCard as i32,
            document_number: people[0].document_number.clone(),
            since: 0,
            until: 0,
            rule: None,
            case_class: proto::CaseClass::Confirmed as i32,
            send_notices: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.answered, ["340000"], "{r:?}");
    assert_eq!(r.notices_queued, 4, "{r:?}");
    // Delivered to Anhui (bounded wait: the outbox retries at most every 15 s).
    let mut at_ah = Vec::new();
    for _ in 0..120 {
        at_ah = tracer(&ah)
            .await
            .list_exposure_notices(proto::ListExposureNoticesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .notices;
        if at_ah.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(at_ah.len(), 2, "{at_ah:?}");
    assert!(at_ah.iter().all(|v| v.matched));
    // The trip's chain at its origin (a transit node keeps none, docs/tracing.md section 2); a
    // trace by the CLI; the notices and the audit by the CLI.
    let chain = tracer(&sc)
        .await
        .trace_trip(proto::TraceTripRequest {
            trip_id: trip.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(chain.events.len() >= 7, "{chain:?}");
    let mut outputs = Vec::new();
    for (at, args) in [
        (
            &sc,
            vec![
                "trace",
                "subject",
                "--doc-number",
                people[3].document_number.as_str(),
                "--notify",
                "--case-class",
                "suspected",
            ],
        ),
        (&sc, vec!["exposure", "list", "--format", "json"]),
        (&ah, vec!["exposure", "list"]),
        (&sc, vec!["audit"]),
        (&ah, vec!["audit", "--csv"]),
    ] {
        let mut c = cli(at);
        c.args(&args).env("RUST_LOG", "debug");
        let o = tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        outputs.push((format!("hcmr {}", args.join(" ")), o));
    }
    sc.shutdown().await.unwrap();
    ah.shutdown().await.unwrap();

    let logged = log.0.lock().unwrap().clone();
    assert!(logged.len() > 1_000, "debug logs were captured");
    let lines = String::from_utf8_lossy(&logged);
    assert!(
        lines.contains("exposure notice queued"),
        "the notices were logged"
    );
    let pairs: Vec<(String, String)> = people
        .iter()
        .map(|p| (p.name.clone(), p.document_number.clone()))
        .collect();
    let mut logs: Vec<(String, &[u8])> = vec![("the nodes' debug log".into(), &logged)];
    for (what, o) in &outputs {
        logs.push((format!("{what}: output"), &o.stdout));
        logs.push((format!("{what}: log"), &o.stderr));
    }
    let logs: Vec<(&str, &[u8])> = logs.iter().map(|(w, b)| (w.as_str(), *b)).collect();
    let found = findings(&[dir.path()], &logs, &pairs);
    assert!(found.is_empty(), "{found:#?}");
}

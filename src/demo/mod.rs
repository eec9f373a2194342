//! The main job: a local federation of five province nodes on loopback, doing what the March 2020
//! memoranda describe, through the same gRPC calls an operator and a platform would make.
//!
//! Sichuan 510000, Guangdong 440000, Zhejiang 330000, Anhui 340000 and Jiangsu 320000 each run a
//! node. Agreements: Sichuan-Guangdong (Guangdong's scheme has only green and red, so it counts a
//! Sichuan yellow as red), Sichuan-Zhejiang, Anhui-Zhejiang and Sichuan-Anhui (all three colours
//! as they are; Zhejiang takes Sichuan's trips in on arrival, Anhui passes them through).
//! Jiangsu has none. Sichuan and Anhui issue codes for synthetic migrant workers (made-up names,
//! ID numbers with valid GB 11643 check characters); Guangdong and Zhejiang verify them at their
//! checkpoints. Every verdict is compared with what the scenario expects.
//!
//! The rows of the scenario are in `scenario`, the nodes and the calls made to them in
//! `federation`, the printed table in `table`; `changes` (revocations, a key rotation, a
//! termination) and `access` (who may call what) follow the first verdicts; between them, `trip`
//! runs a point-to-point bus from Sichuan to a Zhejiang factory through Anhui.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::agreement::ManifestTerms;
use crate::status::HealthStatus;

mod access;
mod changes;
mod federation;
mod scenario;
mod table;
mod trip;

use federation::{conclude, issue, verify_at, Federation, Folder};
pub use scenario::people;
use scenario::{cases, Twist};
use table::Table;

/// Errors that stop the demo before it can judge the scenario.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A node could not be created or started.
    #[error("starting a node: {0}")]
    Node(String),
    /// A gRPC call failed.
    #[error("gRPC call {call}: {status}")]
    Rpc {
        /// Which call.
        call: &'static str,
        /// The status returned.
        status: tonic::Status,
    },
    /// Writing the table failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    /// Something the scenario relies on did not happen.
    #[error("{0}")]
    Scenario(String),
}

/// The demo's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOutcome {
    /// Verifications made.
    pub checks: usize,
    /// Verdicts recognized.
    pub recognized: usize,
    /// Verdicts that differ from the scenario's expectation (0 on success).
    pub mismatches: usize,
    /// Access checks made (calls that must be refused or admitted).
    pub access_checks: usize,
    /// Access checks whose outcome differs from the expectation (0 on success).
    pub access_mismatches: usize,
    /// Outcomes checked on the point-to-point trip (boardings, vehicle verdicts, handover).
    pub trip_checks: usize,
    /// Trip outcomes that differ from the scenario (0 on success).
    pub trip_mismatches: usize,
}

// The scenario's provinces, by GB/T 2260 code.
const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;
const ZHEJIANG: u32 = 330000;
const ANHUI: u32 = 340000;
const JIANGSU: u32 = 320000;

/// Edits a code's status after signing while keeping its signature: what a forger would try
/// (a yellow edited to green). For the demo and tests; any verifier answers BAD_SIGNATURE.
///
/// # Errors
/// [`DemoError::Scenario`] when `code` does not decode.
pub fn forge_status(code: &str, status: HealthStatus) -> Result<String, DemoError> {
    crate::synthetic::forge_status(code, status)
        .map_err(|e| DemoError::Scenario(format!("tampering: {e}")))
}

/// Starts the federation, runs the scenario, prints the table and summary to `out`, and stops
/// the nodes.
///
/// # Errors
/// [`DemoError`] when the federation cannot be set up; a verdict that differs from the
/// expectation is not an error but counted in [`DemoOutcome::mismatches`].
pub async fn run(out: &mut impl Write) -> Result<DemoOutcome, DemoError> {
    run_in(out, None).await
}

/// As [`run`], with the nodes' folders under `keep` (which must not exist yet), left in place
/// afterwards for inspection; `None`: a temporary folder, removed at the end.
///
/// # Errors
/// As [`run`]; [`DemoError::Io`] when `keep` exists.
pub async fn run_in(
    out: &mut impl Write,
    keep: Option<&std::path::Path>,
) -> Result<DemoOutcome, DemoError> {
    let started = Instant::now();
    let dir = match keep {
        None => Folder::Temp(tempfile::tempdir()?),
        Some(p) => {
            if p.exists() {
                return Err(DemoError::Io(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists: choose a new folder to keep", p.display()),
                )));
            }
            std::fs::create_dir_all(p)?;
            Folder::Kept(p.to_path_buf())
        }
    };
    let fed = Federation::start(dir).await?;
    writeln!(out, "hcmr demo: five province nodes on loopback")?;
    for n in &fed.nodes {
        writeln!(
            out,
            "  {} {:<10} {}",
            n.province,
            n.province.name_en(),
            n.endpoint
        )?;
    }

    use HealthStatus::*;
    let all = [(Green, Green), (Yellow, Yellow), (Red, Red)];
    let agreements = [
        (
            "Sichuan-Guangdong",
            conclude(
                &fed,
                GUANGDONG,
                SICHUAN,
                &[(Green, Green), (Yellow, Red), (Red, Red)],
                &[(Green, Green), (Red, Red)],
                ManifestTerms::none(),
                false,
            )
            .await?,
            "Guangdong counts a Sichuan yellow as red",
        ),
        (
            "Sichuan-Zhejiang",
            conclude(
                &fed,
                SICHUAN,
                ZHEJIANG,
                &all,
                &all,
                ManifestTerms::arrival(),
                true,
            )
            .await?,
            "all colours as issued; Zhejiang takes Sichuan's trips in; tracing",
        ),
        (
            "Anhui-Zhejiang",
            conclude(
                &fed,
                ZHEJIANG,
                ANHUI,
                &all,
                &all,
                ManifestTerms::none(),
                false,
            )
            .await?,
            "all colours as issued",
        ),
        (
            "Sichuan-Anhui",
            conclude(
                &fed,
                SICHUAN,
                ANHUI,
                &all,
                &all,
                ManifestTerms::transit(),
                true,
            )
            .await?,
            "all colours; Anhui passes Sichuan's trips through; tracing",
        ),
    ];
    writeln!(
        out,
        "\nagreements, proposed and accepted over gRPC, signed by both nodes:"
    )?;
    for (name, id, note) in &agreements {
        writeln!(out, "  {name:<18} {id}  {note}")?;
    }

    // Issue every code first; the expired one is shown last, once its one second has run out.
    let cases = cases();
    let mut codes = Vec::new();
    let mut latest_exp = 0;
    for c in &cases {
        let lifetime = if c.twist == Twist::Expired { 1 } else { 300 };
        let r = issue(&fed, c, c.status, lifetime).await?;
        if c.twist == Twist::Expired {
            latest_exp = latest_exp.max(r.exp);
        }
        let code = match c.twist {
            Twist::EditedToGreen => forge_status(&r.code, HealthStatus::Green)?,
            _ => r.code,
        };
        codes.push(code);
    }
    // Bounded wait (at most 3 s) for the short-lived code to expire.
    let deadline = Instant::now() + Duration::from_secs(3);
    while crate::unix_now().secs() < latest_exp && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    writeln!(out)?;
    let mut table = Table::new(out)?;
    for (c, code) in cases.iter().zip(&codes) {
        let r = verify_at(&fed, c.to, code).await?;
        let note = match c.twist {
            Twist::None => "",
            Twist::EditedToGreen => "edited to green",
            Twist::Expired => "shown after expiry",
        };
        table.row(c.from, c.to, c.status, &r, c.expect, note)?;
    }

    // The point-to-point trip, while every agreement it relies on is in force (Zhejiang
    // terminates its agreement with Anhui below, and the bus carries an Anhui worker).
    let trip_id = trip::point_to_point(&fed, &mut table).await?;
    // One passenger becomes a case: Sichuan traces them to their fellow travellers.
    trip::trace_case(&fed, &mut table, &trip_id).await?;

    // Trust changes: revocations, a key rotation and a termination, carried to the peers by
    // their sync (triggered here instead of waiting for the interval).
    changes::trust_changes(&fed, &mut table, &cases, &codes, &agreements[2].1).await?;

    access::access_checks(&fed, &mut table).await?;

    let outcome = table.outcome.clone();
    writeln!(
        table.out,
        "\nsummary: {} checks, {} recognized, {} not recognized; {} of {} verdicts as the scenario expects; {} of {} access checks as expected; {} of {} trip outcomes as expected; {:.1} s",
        outcome.checks,
        outcome.recognized,
        outcome.checks - outcome.recognized,
        outcome.checks - outcome.mismatches,
        outcome.checks,
        outcome.access_checks - outcome.access_mismatches,
        outcome.access_checks,
        outcome.trip_checks - outcome.trip_mismatches,
        outcome.trip_checks,
        started.elapsed().as_secs_f64()
    )?;
    for n in fed.nodes {
        n.shutdown()
            .await
            .map_err(|e| DemoError::Node(e.to_string()))?;
    }
    Ok(outcome)
}

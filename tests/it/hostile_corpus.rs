//! File corpus of hostile inputs (`tests/hostile/`): fuzz findings and representative inputs,
//! each with the exact outcome it must get, run through the same harness as the cargo-fuzz
//! targets (`fuzz/src/lib.rs`, included below), which also asserts the targets' invariants.
//! Plus the stable property tests of issue 5: arbitrary bytes and mutated valid codes never
//! panic and never verify.
//!
//! A case is two files with one stem:
//! - the input: `<name>.txt` (used byte for byte, no newline added), `<name>.hex` (hex digits,
//!   white space ignored) or `<name>.bin` (raw bytes, e.g. a fuzzer artifact as found);
//! - `<name>.expect`: `#` comment lines, then `target = code | agreement | feed | manifest |
//!   report | receipt | event | notice` and one or more
//!   `decoder = outcome` lines. Decoders and outcomes are those of the harness: for `code`,
//!   `decode` / `cose` / `claims` give [`hcmr::code::CodeError::code`] (`base45.length`),
//!   `inspect` / `inspect_cose` give `InspectError::code`, `verify` the verification reason
//!   (`malformed`); for `agreement` (`record`, `signatures`, `snapshot`, `body`, `termination`,
//!   `termination_check`, `termination_snapshot`) and `feed` (`record`, `apply`, `batch`,
//!   `bundle`) the error's variant name (`NotCanonical`, `Gap`), or `ok`; for `manifest`
//!   (`decode`, `cose`, `payload`: [`hcmr::manifest::ManifestError::code`] with the field or
//!   seat it names, `manifest.field(people)`; `check`: the verdict at an Anhui checkpoint, `pass`
//!   or the reasons, `bad_signature`) and `report` / `receipt` / `event` / `notice` (`decode`,
//!   `payload`:
//!   [`hcmr::manifest::RecordError::code`] with the field, `record.field(verdict)`).

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use hcmr::code::transport;
use hcmr::verify::verify;

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use harness::{fixtures, NOW};

const TARGETS: [&str; 8] = [
    "code",
    "agreement",
    "feed",
    "manifest",
    "report",
    "receipt",
    "event",
    "notice",
];
const INPUT_EXTENSIONS: [&str; 3] = ["txt", "hex", "bin"];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile")
}

struct Expect {
    target: String,
    checks: Vec<(String, String)>,
}

fn parse_expect(text: &str) -> Result<Expect, String> {
    let mut target = None;
    let mut checks = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("not `key = value`: {line:?}"))?;
        let (k, v) = (k.trim(), v.trim());
        if k == "target" {
            if !TARGETS.contains(&v) {
                return Err(format!("unknown target {v:?}"));
            }
            target = Some(v.to_string());
        } else {
            checks.push((k.to_string(), v.to_string()));
        }
    }
    let target = target.ok_or("no `target = ...` line")?;
    if checks.is_empty() {
        return Err("no expected outcome".into());
    }
    Ok(Expect { target, checks })
}

fn read_input(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("hex") => {
            let digits: String = String::from_utf8(raw)
                .map_err(|_| "hex file is not UTF-8".to_string())?
                .split_whitespace()
                .collect();
            hex::decode(digits).map_err(|e| format!("{}: {e}", path.display()))
        }
        _ => Ok(raw),
    }
}

fn run(target: &str, data: &[u8]) -> harness::Outcomes {
    match target {
        "code" => harness::code_target(data),
        "agreement" => harness::agreement_target(data),
        "feed" => harness::feed_target(data),
        "manifest" => harness::manifest_target(data),
        "report" => harness::report_target(data),
        "receipt" => harness::receipt_target(data),
        "event" => harness::event_target(data),
        "notice" => harness::notice_target(data),
        _ => unreachable!("checked when parsed"),
    }
}

/// Every input file has one `.expect` and every `.expect` one input; each case gets exactly its
/// expected outcomes and never panics.
#[test]
fn hostile_files() {
    let dir = corpus_dir();
    let mut stems = BTreeSet::new();
    let mut inputs = BTreeSet::new();
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/hostile exists") {
        let path = entry.expect("directory entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        match path.extension().and_then(|e| e.to_str()) {
            Some("expect") => {
                stems.insert(stem.to_string());
            }
            Some(ext) if INPUT_EXTENSIONS.contains(&ext) => {
                if !inputs.insert(stem.to_string()) {
                    failures.push(format!("{stem}: more than one input file"));
                }
            }
            _ => failures.push(format!("{}: not a corpus file", path.display())),
        }
    }
    for orphan in inputs.symmetric_difference(&stems) {
        failures.push(format!(
            "{orphan}: an input without .expect, or the reverse"
        ));
    }

    let mut checked = 0;
    for stem in stems.intersection(&inputs) {
        let expect = match std::fs::read_to_string(dir.join(format!("{stem}.expect")))
            .map_err(|e| e.to_string())
            .and_then(|t| parse_expect(&t))
        {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{stem}.expect: {e}"));
                continue;
            }
        };
        let input = INPUT_EXTENSIONS
            .iter()
            .map(|ext| dir.join(format!("{stem}.{ext}")))
            .find(|p| p.exists())
            .expect("an input file (checked above)");
        let data = match read_input(&input) {
            Ok(d) => d,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let outcomes = match catch_unwind(AssertUnwindSafe(|| run(&expect.target, &data))) {
            Ok(o) => o,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{stem}: PANICKED: {msg}"));
                continue;
            }
        };
        for (decoder, want) in &expect.checks {
            checked += 1;
            match outcomes.get(decoder.as_str()) {
                Some(got) if got == want => {}
                Some(got) => {
                    failures.push(format!("{stem}: {decoder}: expected {want}, got {got}"))
                }
                None => failures.push(format!(
                    "{stem}: {decoder}: no such outcome (got {outcomes:?})"
                )),
            }
        }
    }
    println!(
        "hostile corpus: {} cases, {checked} expected outcomes",
        stems.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(stems.len() >= 10, "only {} cases", stems.len());
}

/// The code the property tests mutate, and its claims.
fn fixture_code(i: usize) -> &'static harness::FixtureCode {
    let codes = &fixtures().codes;
    &codes[i % codes.len()]
}

/// Verifies `s` at Guangdong's node: it may be recognized, or its signature verify, only if it
/// carries exactly `original`'s claims (a mutation the transport ignores, e.g. a trailing CR).
fn assert_never_verifies_other(
    s: &str,
    original: &hcmr::code::Claims,
) -> Result<(), TestCaseError> {
    let v = verify(s, &fixtures().snapshot, NOW);
    prop_assert_eq!(v.recognized(), v.local_status.is_some());
    if v.recognized() || v.signature_verified {
        prop_assert!(v.signature_verified);
        prop_assert_eq!(v.claims.as_ref(), Some(original), "{}", s);
    }
    Ok(())
}

fn base45_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::sample::select(
            "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".chars().collect::<Vec<_>>()
        ),
        1 => any::<char>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes, as a string, as Base45 behind the prefix (mostly not zlib) and
    /// compressed behind the prefix (reaching CBOR and COSE), never verify; and every decoder
    /// of the six fuzz targets takes them without panicking or breaking an invariant.
    #[test]
    fn arbitrary_bytes_never_panic_never_verify(
        b in proptest::collection::vec(any::<u8>(), 0..700),
    ) {
        let snapshot = &fixtures().snapshot;
        for s in [
            String::from_utf8_lossy(&b).into_owned(),
            format!("HCMR1:{}", base45::encode(&b)),
            transport::wrap(&b),
        ] {
            let v = verify(&s, snapshot, NOW);
            prop_assert!(!v.recognized(), "{}", s);
            prop_assert!(!v.signature_verified, "{}", s);
        }
        harness::code_target(&b);
        harness::agreement_target(&b);
        harness::feed_target(&b);
        harness::manifest_target(&b);
        harness::report_target(&b);
        harness::receipt_target(&b);
        harness::event_target(&b);
        harness::notice_target(&b);
    }

    /// One to four edits (replace, insert, delete, truncate, swap) of a valid code string never
    /// panic and never verify with other claims.
    #[test]
    fn mutated_codes_never_verify_other_claims(
        which in 0usize..11,
        edits in proptest::collection::vec(
            (any::<proptest::sample::Index>(), 0u8..5, base45_char()),
            1..=4,
        ),
    ) {
        let fixture = fixture_code(which);
        let mut m: Vec<char> = fixture.code.chars().collect();
        for (at, op, c) in edits {
            if m.is_empty() {
                break;
            }
            let i = at.index(m.len());
            match op {
                0 => m[i] = c,
                1 => m.insert(i, c),
                2 => {
                    m.remove(i);
                }
                3 => m.truncate(i),
                _ => {
                    let j = (i + 1) % m.len();
                    m.swap(i, j);
                }
            }
        }
        let s: String = m.into_iter().collect();
        prop_assume!(s != fixture.code);
        let _ = hcmr::code::HealthCode::decode(&s);
        let _ = hcmr::inspect::inspect(&s);
        assert_never_verifies_other(&s, &fixture.claims)?;
    }

    /// One to four byte edits (replace, flip a bit, insert, delete) of a valid COSE_Sign1,
    /// re-compressed into a code: never a panic, never other claims verified.
    #[test]
    fn mutated_cose_never_verifies_other_claims(
        which in 0usize..8,
        edits in proptest::collection::vec(
            (any::<proptest::sample::Index>(), 0u8..4, any::<u8>()),
            1..=4,
        ),
    ) {
        let fixture = fixture_code(which);
        let mut cose = fixture.cose.clone();
        for (at, op, b) in edits {
            if cose.is_empty() {
                break;
            }
            let i = at.index(cose.len());
            match op {
                0 => cose[i] = b,
                1 => cose[i] ^= 1 << (b % 8),
                2 => cose.insert(i, b),
                _ => {
                    cose.remove(i);
                }
            }
        }
        prop_assume!(cose != fixture.cose);
        harness::code_target(&cose);
        assert_never_verifies_other(&transport::wrap(&cose), &fixture.claims)?;
    }

    /// One to four byte edits (replace, flip a bit, insert, delete) of a signed trip manifest,
    /// check report, receipt, trip event or exposure notice: never a panic, and the trip targets' invariants hold (nothing
    /// but a fixture verifies or passes the checkpoint; what decodes is canonical).
    #[test]
    fn mutated_trip_records_keep_the_invariants(
        which in 0usize..8,
        edits in proptest::collection::vec(
            (any::<proptest::sample::Index>(), 0u8..4, any::<u8>()),
            1..=4,
        ),
    ) {
        let f = harness::trips::trip_fixtures();
        let manifests: Vec<Vec<u8>> = f
            .manifests
            .iter()
            .map(|(_, s)| {
                hcmr::manifest::SignedManifest::decode(s)
                    .expect("a fixture manifest")
                    .cose_bytes()
                    .to_vec()
            })
            .collect();
        let (kind, original) = match which {
            0..=3 => ("manifest", manifests[which].clone()),
            4 | 5 => ("report", f.reports[which - 4].1.clone()),
            6 | 7 => ("receipt", f.receipts[which - 6].1.clone()),
            8 | 9 => ("event", f.events[which - 8].1.clone()),
            _ => ("notice", f.notices[0].1.clone()),
        };
        let mut b = original.clone();
        for (at, op, byte) in edits {
            if b.is_empty() {
                break;
            }
            let i = at.index(b.len());
            match op {
                0 => b[i] = byte,
                1 => b[i] ^= 1 << (byte % 8),
                2 => b.insert(i, byte),
                _ => {
                    b.remove(i);
                }
            }
        }
        prop_assume!(b != original);
        match kind {
            "manifest" => {
                let s = format!("{}{}", hcmr::manifest::PREFIX, base45::encode(&b));
                harness::manifest_target(s.as_bytes());
                harness::manifest_target(&b);
            }
            "report" => {
                harness::report_target(&b);
            }
            "receipt" => {
                harness::receipt_target(&b);
            }
            "event" => {
                harness::event_target(&b);
            }
            _ => {
                harness::notice_target(&b);
            }
        }
    }
}

//! The inspector against the EU DCC common test cases (tests/data/eu-dcc-common, from
//! eu-digital-green-certificates/dgc-testdata, Apache-2.0): every JSON file, every pipeline
//! flag it carries (EXPECTEDUNPREFIX, EXPECTEDB45DECODE, EXPECTEDCOMPRESSION, EXPECTEDDECODE).
//! Absent flags are not tested; the other flags (signature, key usage, schema, expiry, picture)
//! are beyond an inspector. The number of checks that ran is asserted, so the test cannot pass by
//! checking nothing. Run with `-- --nocapture` to see which checks ran for each file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ciborium::value::Value;
use hcmr::inspect::{
    base45, decode_cose, decode_payload, decompress, decompress_for, inspect, unprefix,
    InspectError, ParamLocation, Scheme, TagForm,
};
use serde_json::Value as Json;

/// JSON files in the folder.
const EXPECTED_FILES: usize = 38;
/// Checks the four flags give over those files: EXPECTEDUNPREFIX 8, EXPECTEDB45DECODE 5,
/// EXPECTEDCOMPRESSION 6, EXPECTEDDECODE 5.
const EXPECTED_CHECKS: usize = 24;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/eu-dcc-common")
}

/// Every test case, by file name.
fn cases() -> BTreeMap<String, Json> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(data_dir()).expect("tests/data/eu-dcc-common exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let json: Json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        out.insert(
            path.file_name().unwrap().to_string_lossy().into_owned(),
            json,
        );
    }
    out
}

fn field<'a>(case: &'a Json, name: &str) -> Option<&'a str> {
    case.get(name).and_then(Json::as_str)
}

fn hex_field(case: &Json, name: &str) -> Result<Vec<u8>, String> {
    let s = field(case, name).ok_or_else(|| format!("no {name} field"))?;
    hex::decode(s.trim()).map_err(|e| format!("{name} is not hex: {e}"))
}

/// The COSE bytes of a case: its COSE field, or else the pipeline run on its PREFIX (the EU
/// rule: an uncompressed payload is taken as-is).
fn cose_of(case: &Json) -> Result<Vec<u8>, String> {
    if field(case, "COSE").is_some() {
        return hex_field(case, "COSE");
    }
    let prefix = field(case, "PREFIX").ok_or("neither COSE nor PREFIX")?;
    let run = || -> Result<Vec<u8>, InspectError> {
        let (scheme, text) = unprefix(prefix)?;
        Ok(decompress_for(scheme, &base45(text)?)?.bytes)
    };
    run().map_err(|e| format!("PREFIX does not reach COSE: {e}"))
}

/// CBOR values equal after decoding: maps compare as sets of entries (any order), numbers by
/// value.
fn cbor_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.iter().any(|(k2, v2)| cbor_eq(k, k2) && cbor_eq(v, v2)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| cbor_eq(p, q))
        }
        (Value::Tag(t, x), Value::Tag(u, y)) => t == u && cbor_eq(x, y),
        (Value::Float(x), Value::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}

/// JSON values equal, numbers by value (`1` equals `1.0`).
fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// One flag's check. `Ok` when the outcome is the expected one. A `false` flag must be met by
/// the stage function itself failing: a mismatch with the case's own fields does not count.
fn check(case: &Json, flag: &str, expected: bool) -> Result<(), String> {
    match flag {
        "EXPECTEDUNPREFIX" => {
            let prefix = field(case, "PREFIX").ok_or("no PREFIX field")?;
            match (unprefix(prefix), expected) {
                (Ok((scheme, rest)), true) => {
                    let want = field(case, "BASE45").ok_or("no BASE45 field")?;
                    if scheme != Scheme::EuDcc {
                        return Err(format!("scheme {scheme:?}, expected EuDcc"));
                    }
                    if rest != want {
                        return Err("the text after the prefix differs from BASE45".into());
                    }
                    Ok(())
                }
                (r, want) => stage_outcome(r.map(|_| ()), want),
            }
        }
        "EXPECTEDB45DECODE" => {
            let text = field(case, "BASE45").ok_or("no BASE45 field")?;
            match (base45(text), expected) {
                (Ok(got), true) => {
                    if got == hex_field(case, "COMPRESSED")? {
                        Ok(())
                    } else {
                        Err("decodes, but not to COMPRESSED".into())
                    }
                }
                (r, want) => stage_outcome(r.map(|_| ()), want),
            }
        }
        "EXPECTEDCOMPRESSION" => {
            let compressed = hex_field(case, "COMPRESSED")?;
            match (decompress(&compressed), expected) {
                (Ok(got), true) => {
                    if got == hex_field(case, "COSE")? {
                        Ok(())
                    } else {
                        Err("inflates, but not to COSE".into())
                    }
                }
                (r, want) => stage_outcome(r.map(|_| ()), want),
            }
        }
        "EXPECTEDDECODE" => {
            let cose = cose_of(case)?;
            let decoded =
                decode_cose(&cose).and_then(|c| decode_payload(Scheme::EuDcc, &c.payload));
            match (decoded, expected) {
                (Ok(payload), true) => {
                    let hcert = payload.hcert.ok_or("no hcert")?;
                    let cbor_field = hex_field(case, "CBOR")?;
                    let want: Value = ciborium::de::from_reader(cbor_field.as_slice())
                        .map_err(|e| format!("the CBOR field does not decode: {e}"))?;
                    if !cbor_eq(&hcert, &want) {
                        return Err("hcert differs from the CBOR field".into());
                    }
                    if let Some(want) = case.get("JSON").filter(|j| !j.is_null()) {
                        let got = hcmr::inspect::cbor_to_json(&hcert);
                        if !json_eq(&got, want) {
                            return Err(format!("hcert JSON differs from the JSON field: {got}"));
                        }
                    }
                    Ok(())
                }
                (r, want) => stage_outcome(r.map(|_| ()), want),
            }
        }
        other => Err(format!("no check for {other}")),
    }
}

/// A stage function's result against the flag, when there is nothing more to compare.
fn stage_outcome(r: Result<(), InspectError>, expected: bool) -> Result<(), String> {
    match (r, expected) {
        (Ok(()), true) | (Err(_), false) => Ok(()),
        (Ok(()), false) => Err("succeeded, expected to fail".into()),
        (Err(e), true) => Err(format!("failed, expected to succeed: {e}")),
    }
}

/// The pipeline flags this test checks, in pipeline order.
const FLAGS: [&str; 4] = [
    "EXPECTEDUNPREFIX",
    "EXPECTEDB45DECODE",
    "EXPECTEDCOMPRESSION",
    "EXPECTEDDECODE",
];

#[test]
fn every_eu_test_case_flag_holds() {
    let cases = cases();
    assert_eq!(
        cases.len(),
        EXPECTED_FILES,
        "JSON files in {:?}",
        data_dir()
    );
    let mut ran = 0;
    let mut per_flag: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let expected = &case["EXPECTEDRESULTS"];
        let mut report = Vec::new();
        for flag in FLAGS {
            let Some(want) = expected.get(flag) else {
                continue;
            };
            let want = want
                .as_bool()
                .unwrap_or_else(|| panic!("{name}: {flag} is not a boolean"));
            ran += 1;
            *per_flag.entry(flag).or_default() += 1;
            let short = flag.trim_start_matches("EXPECTED");
            match check(case, flag, want) {
                Ok(()) => report.push(format!("{short}={want} ok")),
                Err(e) => {
                    report.push(format!("{short}={want} FAILED"));
                    failures.push(format!("{name} {flag}={want}: {e}"));
                }
            }
        }
        if report.is_empty() {
            report.push("no pipeline flag".into());
        }
        println!("{name}: {}", report.join(", "));
    }
    println!("{ran} checks over {} files: {per_flag:?}", cases.len());
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    assert_eq!(ran, EXPECTED_CHECKS, "checks that ran: {per_flag:?}");
}

/// The whole inspector on every case's PREFIX string: which stage fails, or what it finds. Not
/// part of the EU flags, but it pins the inspector's behaviour on real certificates: the kid's
/// location in the CO18 to CO23 cases, the tag forms, and the EU rule for an uncompressed
/// payload (Z2).
#[test]
fn inspect_every_prefix_string() {
    let cases = cases();
    let mut ok = 0;
    for (name, case) in &cases {
        let Some(prefix) = field(case, "PREFIX") else {
            continue;
        };
        let expected_error: Option<&str> = match name.as_str() {
            // Not HC1: (HL0:, HC2:, none).
            "H1.json" | "H2.json" => Some("prefix.unknown"),
            "H3.json" => Some("prefix.missing"),
            // "=====" at the end: not Base45.
            "B1.json" => Some("base45.character"),
            // "Compression broken": not zlib (first byte 0x35), so taken as-is, and not COSE.
            "Z1.json" => Some("cose.trailing"),
            // "wrong CWT structure": the COSE bytes are scrambled (0x00, then 425 more bytes).
            "CBO2.json" => Some("cose.trailing"),
            // "wrong CBOR structure": the DGC is a byte string of scrambled CBOR, not a map.
            "CBO1.json" => Some("payload.hcert"),
            _ => None,
        };
        let result = inspect(prefix);
        match (expected_error, &result) {
            (Some(code), Err(e)) => {
                assert_eq!(e.code(), code, "{name}: {e}");
                continue;
            }
            (Some(code), Ok(_)) => panic!("{name}: inspected, expected {code}"),
            (None, Err(e)) => panic!("{name}: {e}"),
            (None, Ok(_)) => {}
        }
        let ins = result.unwrap();
        ok += 1;
        assert_eq!(ins.scheme, Scheme::EuDcc, "{name}");
        assert!(ins.hcert.is_some(), "{name}");
        let j = ins.to_json();
        assert_eq!(j["scheme"], "eu-dcc");
        assert!(j["hcert"].is_object(), "{name}: {}", j["hcert"]);
        // Z2 carries its COSE uncompressed: the EU rule takes it as-is.
        assert_eq!(ins.compressed, name != "Z2.json", "{name}");
        if let Ok(cose) = hex_field(case, "COSE") {
            assert_eq!(ins.sizes.cose_bytes, cose.len(), "{name}");
        }
        let tag = if name == "CO28.json" {
            TagForm::CwtSign1
        } else {
            TagForm::Sign1
        };
        assert_eq!(ins.cose.tag, tag, "{name}");
        let kid = ins.cose.kid().map(|(k, loc)| (hex::encode(k), loc));
        let location = kid.as_ref().map(|(_, loc)| *loc);
        let want = match name.as_str() {
            // KID in the unprotected header only (CO23's is also wrong: "foo").
            "CO19.json" | "CO20.json" | "CO23.json" => Some(ParamLocation::Unprotected),
            // KID in both headers, different: the protected (signed) one is reported, never
            // the unprotected one, even when only that one is right (CO22).
            "CO21.json" | "CO22.json" => Some(ParamLocation::BothDiffer),
            _ => Some(ParamLocation::Protected),
        };
        assert_eq!(location, want, "{name}: {kid:?}");
        if name == "CO22.json" {
            assert_eq!(j["kid"]["hex"], hex::encode("foo"));
            assert_eq!(j["kid"]["unprotected_hex"], "f818bebd44ff0fb6");
        }
        // No header policy: ES256 and PS256 are reported, wherever the alg is.
        let (alg_name, alg_location) = match name.as_str() {
            "CO1.json" | "CO2.json" => ("PS256", "protected"),
            "CO20.json" | "CO22.json" | "CO23.json" => ("ES256", "unprotected"),
            _ => ("ES256", "protected"),
        };
        assert_eq!(j["alg"]["name"], alg_name, "{name}");
        assert_eq!(j["alg"]["location"], alg_location, "{name}");
    }
    assert_eq!(ok, 31, "cases that inspect");
}

//! Writes the fuzz seed corpora (`fuzz/seeds/<target>/`) and the generated part of the hostile
//! corpus (`tests/hostile/`, inputs with their expected outcomes), from the fixtures of
//! `hcmr_fuzz`. Deterministic: run it again and nothing changes unless hcmr's encodings do.
//!
//! ```sh
//! cd fuzz && cargo run --bin make_seeds          # from the fuzz directory
//! ```
//!
//! The expectations written to `tests/hostile/*.expect` are fixed here by hand, not computed
//! from the decoders: `tests/it/hostile_corpus.rs` checks them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ciborium::value::{Integer, Value};

use hcmr::agreement::{AgreementSignature, SignedAgreement, Termination};
use hcmr::bundle::BundleContent;
use hcmr::code::{transport, MAX_TIME};
use hcmr::feed::{FeedEntry, Statement};
use hcmr::keys::NodeKey;
use hcmr::trust::Policy;
use hcmr_fuzz::{encode_batch, fixtures, prov, sc_key, sc_key2, Fixtures, NOW, SC};

// A bin's modules sit in the folder named after it, beside the file (the path stays the one the
// generated files name).
#[path = "make_seeds/hostile.rs"]
mod hostile;
#[path = "make_seeds/hostile_codes.rs"]
mod hostile_codes;
#[path = "make_seeds/hostile_trips.rs"]
mod hostile_trips;

use hostile::{hostile_cases, Input};

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("a parent")).expect("create the directory");
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("writing to a Vec cannot fail");
    out
}

fn uncbor(b: &[u8]) -> Value {
    ciborium::from_reader(b).expect("fixture CBOR")
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(data).expect("writing to a Vec cannot fail");
    z.finish().expect("writing to a Vec cannot fail")
}

fn code_of(bytes: &[u8]) -> String {
    format!("HCMR1:{}", base45::encode(bytes))
}

/// The parts of an untagged COSE_Sign1 ([protected, unprotected, payload, signature]).
fn cose_parts(cose: &[u8]) -> Vec<Value> {
    match uncbor(cose) {
        Value::Array(a) => a,
        _ => unreachable!("fixture COSE"),
    }
}

/// An untagged COSE_Sign1 from its parts, as hcmr writes it.
fn untagged(parts: Vec<Value>) -> Vec<u8> {
    cbor(&Value::Array(parts))
}

fn tagged(tag: u64, parts: Vec<Value>) -> Vec<u8> {
    cbor(&Value::Tag(tag, Box::new(Value::Array(parts))))
}

fn hex_lines(b: &[u8]) -> String {
    let h = hex::encode(b);
    let mut s = String::new();
    for chunk in h.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).expect("hex"));
        s.push('\n');
    }
    s
}

fn seeds(root: &Path) {
    let f = fixtures();
    let dir = root.join("fuzz/seeds");

    let code = dir.join("code_decoder");
    for c in &f.codes {
        write(&code.join(format!("{}.txt", c.name)), c.code.as_bytes());
        write(&code.join(format!("{}.cose", c.name)), &c.cose);
    }
    write(&code.join("sc_green.claims"), &f.codes[0].claims.to_cbor());
    // Two EU DCC test vectors for `hcmr inspect` (tests/data/eu-dcc-common, Apache-2.0).
    for name in ["CO1", "CO2"] {
        let p = root.join(format!("tests/data/eu-dcc-common/{name}.json"));
        let j: serde_json::Value =
            serde_json::from_slice(&fs::read(&p).expect("EU DCC test data")).expect("JSON");
        if let Some(prefix) = j["PREFIX"].as_str() {
            write(&code.join(format!("eu_dcc_{name}.txt")), prefix.as_bytes());
        }
    }

    let agr = dir.join("agreement_decoder");
    write(
        &agr.join("v1_concluded.record"),
        &f.agreement_v1.to_record(),
    );
    write(
        &agr.join("v2_proposed.record"),
        &f.agreement_v2_proposed.to_record(),
    );
    write(&agr.join("v1.body"), f.agreement_v1.encoded());
    write(&agr.join("termination.record"), &f.termination.to_record());
    write(&agr.join("long_window.body"), f.agreement_long.encoded());
    write(
        &agr.join("long_window.record"),
        &f.agreement_long.to_record(),
    );

    let feed = dir.join("feed_decoder");
    for (p, entries) in [("sc", &f.sc_feed), ("gd", &f.gd_feed)] {
        for e in entries.iter() {
            write(
                &feed.join(format!("{p}_entry{}.record", e.seq())),
                &e.to_record(),
            );
        }
        write(
            &feed.join(format!("{p}_feed.batch")),
            &encode_batch(entries),
        );
    }
    write(&feed.join("gd.bundle"), &f.bundle);

    hostile_trips::seeds(&dir);
}

fn hostile(root: &Path) {
    let dir = root.join("tests/hostile");
    for c in hostile_cases() {
        let (ext, bytes) = match &c.input {
            Input::Text(s) => ("txt", s.as_bytes().to_vec()),
            Input::Bytes(b) => ("hex", hex_lines(b).into_bytes()),
        };
        write(&dir.join(format!("{}.{ext}", c.name)), &bytes);
        let mut e = Vec::new();
        writeln!(e, "# {}", c.why).expect("Vec");
        writeln!(e, "# generated by fuzz/src/bin/make_seeds.rs").expect("Vec");
        writeln!(e, "target = {}", c.target).expect("Vec");
        for (k, val) in c.expect {
            writeln!(e, "{k} = {val}").expect("Vec");
        }
        write(&dir.join(format!("{}.expect", c.name)), &e);
    }
}

fn main() {
    // The repository root: the parent of this crate's directory.
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ has a parent")
        .to_path_buf();
    seeds(&root);
    hostile(&root);
    println!("seeds in {}", root.join("fuzz/seeds").display());
    println!("hostile cases in {}", root.join("tests/hostile").display());
}

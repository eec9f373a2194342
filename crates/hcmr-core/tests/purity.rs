//! The core decides and never does I/O: its dependency tree holds no async runtime, database,
//! RPC, HTTP or TLS crate. `cargo tree` answers from Cargo.lock, so this fails the moment one of
//! them enters the core, directly or through another crate.

use std::process::Command;

/// Crates that would bring I/O into the core (the runtime, the database, the transports).
const FORBIDDEN: &[&str] = &[
    "tokio", "sled", "tonic", "axum", "hyper", "rustls", "mio", "h2", "reqwest",
];

#[test]
fn the_core_depends_on_no_io_crate() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--package",
            "hcmr-core",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).expect("cargo tree prints UTF-8");
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"hcmr-core"), "{tree}");
    assert!(names.contains(&"ed25519-dalek"), "{tree}");
    let found: Vec<&&str> = FORBIDDEN
        .iter()
        .filter(|f| {
            names
                .iter()
                .any(|n| n == *f || n.starts_with(&format!("{f}-")))
        })
        .collect();
    assert!(found.is_empty(), "the core depends on {found:?}:\n{tree}");
}

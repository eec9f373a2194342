//! The README's walk-through ("Two real nodes by hand"), run as written by bash.
//!
//! The shell blocks of that section are taken from README.md itself, so the test fails when the
//! README says something the binary does not do. Only what a person fills in is filled in: the
//! placeholders (`<kid from step 4>`, `<ID from the list>`, ...) by the values the preceding
//! commands printed, `/tmp/` by a temporary folder and the ports 7510 and 7440 by free ones, so
//! that the test runs beside others. `cargo build --release` is replaced by the binary under test.
//! After the walk-through, the checkpoint page is turned on as the README's operator section
//! says (uncomment `http_listen` in hcmr.toml, restart `hcmr serve`) and must serve.
//! Loopback only; the script has a deadline and every wait in it is bounded.

use crate::common::free_port;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hcmr");
const README: &str = include_str!("../../README.md");

/// The text of the section that starts with `heading`, up to the next `## ` heading.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no section {heading:?}"));
    let body = &text[start + heading.len() + 2..];
    match body.find("\n## ") {
        Some(end) => &body[..end],
        None => body,
    }
}

/// The fenced `sh` blocks of `text`, in order.
fn sh_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Shell lines joined across a trailing backslash, comments and blank lines dropped.
fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                out.push(std::mem::take(&mut pending));
            }
        }
    }
    assert!(
        pending.is_empty(),
        "a continued line ends the block: {pending}"
    );
    out
}

/// Drops a trailing `# comment` (outside quotes, after white space).
fn strip_comment(cmd: &str) -> String {
    let mut quote = None;
    let b = cmd.as_bytes();
    for (i, c) in cmd.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if i > 0 && b[i - 1].is_ascii_whitespace() => {
                return cmd[..i].trim_end().to_string()
            }
            _ => {}
        }
    }
    cmd.trim_end().to_string()
}

/// The placeholders a reader fills in, and the shell value the script fills in for them.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("<kid from step 4>", "$SC_KID"),
    ("<ID from the list>", "$ID"),
    ("<cti printed by hcmr issue>", "$CTI"),
    ("<old kid>", "$SC_KID"),
    ("<ID>", "$ID"),
    ("<kid>", "$GD_KID"),
    // An optional part, shown in brackets: the walk-through terminates at once.
    (" [--at 2026-12-31T00:00:00Z]", ""),
];

/// Waits (bounded) until the node of folder `$1` answers.
const WAIT_FOR: &str = r#"wait_for() {
  for _ in $(seq 200); do
    hcmr info --dir "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node $1 did not come up" >&2
  return 1
}
"#;

/// The script: each README command, announced on stdout by a `### ` line so that the log can be
/// split by command, with the values the reader would copy set right after the command that
/// shows them.
fn script(blocks: &[String], work: &Path, sc_port: u16, gd_port: u16, page_port: u16) -> String {
    let w = work.display();
    let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
    let mut s = format!(
        "set -euo pipefail\nexport PATH=\"{bin_dir}:$PATH\"\nunset HCMR_NODE HCMR_DIR \
         HCMR_TOKEN HCMR_TOKEN_FILE HCMR_TLS_CERT\ntrap 'kill $(jobs -p) 2>/dev/null || true' \
         EXIT\n{WAIT_FOR}"
    );
    let kid_of =
        |node: &str| format!("$(hcmr info --dir {w}/{node} | awk '/^key:/ {{ print $3; exit }}')");
    for cmd in blocks.iter().flat_map(|b| commands(b)) {
        if cmd.starts_with("cargo build") {
            continue; // the binary under test is on PATH
        }
        // White space as a shell reads it: the README aligns its columns.
        let cmd = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut c = strip_comment(&cmd)
            .replace("/tmp/", &format!("{w}/"))
            .replace("127.0.0.1:7510", &format!("127.0.0.1:{sc_port}"))
            .replace("127.0.0.1:7440", &format!("127.0.0.1:{gd_port}"));
        for (p, v) in PLACEHOLDERS {
            c = c.replace(p, v);
        }
        assert!(
            !c.contains('<'),
            "a placeholder this test does not know: {c}"
        );
        // A verification of the revoked code at the end is NOT RECOGNIZED (3) by design.
        let run = if c.starts_with("hcmr verify --offline") {
            format!("{c} || test $? -eq 3")
        } else {
            c.clone()
        };
        s.push_str(&format!("echo '### {}'\n{run}\n", c.replace('\'', "")));
        if c.starts_with("hcmr serve") {
            let dir = c
                .split_whitespace()
                .skip_while(|a| *a != "--config" && *a != "--dir")
                .nth(1)
                .unwrap()
                .trim_end_matches("/hcmr.toml");
            s.push_str(&format!("wait_for {dir}\n"));
        }
        if c.starts_with(&format!("hcmr info --dir {w}/sichuan")) {
            s.push_str(&format!("SC_KID={}\n", kid_of("sichuan")));
        }
        if c.starts_with(&format!("hcmr agreement list --dir {w}/sichuan")) {
            s.push_str(&format!(
                "ID=$(hcmr agreement list --dir {w}/sichuan | awk 'NR == 1 {{ print $1 }}')\n"
            ));
        }
        if c.starts_with("CODE=$(hcmr issue") {
            s.push_str(
                "CTI=$(hcmr inspect \"$CODE\" | sed -n 's/.*\"cti\": \"\\([0-9a-f]*\\)\".*/\\1/p')\n",
            );
        }
        if c.starts_with("hcmr bundle export") {
            s.push_str(&format!("GD_KID={}\n", kid_of("guangdong")));
        }
    }
    // The checkpoint page, as "For the operator of the checkpoint page" says: uncomment
    // http_listen where init wrote it, restart the node.
    s.push_str(&format!(
        "echo '### page'\n\
         grep -q '^# http_listen = \"127.0.0.1:8510\"' {w}/sichuan/hcmr.toml\n\
         sed -i 's/^# http_listen = \"127.0.0.1:8510\"/http_listen = \"127.0.0.1:{page_port}\"/' \
         {w}/sichuan/hcmr.toml\n\
         kill $(sed -n 's/^pid = //p' {w}/sichuan/serving.toml)\n\
         for _ in $(seq 200); do [ -e {w}/sichuan/serving.toml ] || break; sleep 0.1; done\n\
         hcmr serve --config {w}/sichuan/hcmr.toml 2>>{w}/sichuan.log &\n\
         wait_for {w}/sichuan\n\
         exec 3<>/dev/tcp/127.0.0.1/{page_port}\n\
         echo page serves\n"
    ));
    s
}

/// The output of the command announced as `### {prefix}...` in the log, up to the next one.
fn output_of<'a>(log: &'a str, prefix: &str) -> &'a str {
    let start = log
        .find(&format!("### {prefix}"))
        .unwrap_or_else(|| panic!("no command {prefix:?} in the log:\n{log}"));
    let body = &log[start..];
    let body = &body[body.find('\n').map_or(body.len(), |i| i + 1)..];
    match body.find("### ") {
        Some(end) => &body[..end],
        None => body,
    }
}

#[test]
fn the_readme_walk_through_runs_as_written() {
    let blocks = sh_blocks(section(README, "## Two real nodes by hand"));
    assert!(
        blocks.len() >= 2,
        "the walk-through and the trust lifecycle"
    );
    let work = tempfile::tempdir().unwrap();
    let text = script(
        &blocks[..2],
        work.path(),
        free_port(),
        free_port(),
        free_port(),
    );
    std::fs::write(work.path().join("walk-through.sh"), &text).unwrap();

    let mut child = Command::new("bash")
        .arg(work.path().join("walk-through.sh"))
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the walk-through did not finish in 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = reader.join().unwrap();
    let errors = err_reader.join().unwrap();
    assert!(
        status.success(),
        "the walk-through failed ({status}):\n--- stdout\n{log}\n--- stderr\n{errors}"
    );

    // Step 8: Guangdong recognizes the Sichuan yellow and counts it as red.
    let verdict = output_of(&log, "hcmr verify --dir");
    assert!(verdict.starts_with("RECOGNIZED"), "{verdict}");
    assert!(verdict.contains("RED"), "{verdict}");
    // The amendment line is taken and shows the term it changes.
    let amend = &log[log.rfind("### hcmr agreement propose").unwrap()..];
    assert!(
        amend.contains(
            "our codes there (--our-codes): green=green,red=red -> green=green,yellow=yellow"
        ),
        "{amend}"
    );
    // The code revoked in the lifecycle is refused offline, with that reason.
    let offline = output_of(&log, "hcmr verify --offline");
    assert!(offline.starts_with("NOT RECOGNIZED"), "{offline}");
    assert!(log.trim_end().ends_with("page serves"), "{log}");
}

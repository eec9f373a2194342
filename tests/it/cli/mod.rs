//! The `hcmr` binary as an operator uses it: init, serve (two real processes), propose, list,
//! accept, issue, verify, and a graceful SIGTERM. Loopback only; every wait is bounded.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod by_hand;
mod errors;
mod init;

const BIN: &str = env!("CARGO_BIN_EXE_hcmr");

fn hcmr(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("HCMR_NODE")
        .output()
        .expect("the hcmr binary runs")
}

/// Runs hcmr against the node in folder `dir` (its URL, certificate and admin token, as an
/// operator on the node's machine), as the caller of `token_file` when given.
fn hcmr_at(dir: &Path, token_file: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("HCMR_NODE")
        .env_remove("HCMR_TOKEN")
        .env("HCMR_DIR", dir);
    match token_file {
        Some(t) => c.env("HCMR_TOKEN_FILE", t),
        None => c.env_remove("HCMR_TOKEN_FILE"),
    };
    c.output().expect("the hcmr binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &Path) -> Server {
    let child = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if hcmr_at(config.parent().unwrap(), None, &["info"])
            .status
            .success()
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "node of {} did not come up",
            config.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sigterm_and_wait(mut s: Server) -> std::process::ExitStatus {
    let pid = s.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = s.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `hcmr init` of province `province` in `dir` listening on 127.0.0.1:`port`.
fn init_at(dir: &Path, province: &str, port: u16) {
    let o = hcmr(&[
        "init",
        "--province",
        province,
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
}

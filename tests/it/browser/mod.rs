//! The checkpoint page in a real headless Chromium, driven over WebDriver (chromedriver), served
//! over HTTPS by a real node:
//!
//! - after logging in with a verifier's token, a Sichuan yellow code scanned at a Guangdong gate
//!   shows RECOGNIZED on red (Guangdong counts Sichuan's yellow as red); a Jiangsu code (no
//!   agreement) and a tampered code show NOT RECOGNIZED on the black panel, never a colour; the
//!   identity match answers MATCH, and a wrong number NO MATCH, each a banner wholly in the
//!   window at 1280x900 and 390x844, the NO MATCH turning the panel to the refused look; the
//!   panel returns to ready and forgets the subject; and the
//!   node's audit log holds the page's checks;
//! - the login: before it the verify form is not there and cannot be used; a wrong token and an
//!   issuer's token are refused with the node's message; the token survives a reload (it is in
//!   sessionStorage), a removed caller's token sends the page back to the login panel, and
//!   logging out removes it.
//!
//! Needs Chromium and chromedriver (Debian: `apt-get install -y chromium chromium-driver`).
//! Without them the browser tests print why and pass, except under CI (the `CI` variable set),
//! where they fail: CI must prove the page works.
//!
//! The page's API without a browser (tokens, CSRF guard, content type, CSP) is tested by a plain
//! HTTPS client here too, always, browser or not.
//!
//! - the camera button without BarcodeDetector (this Chromium has none): the vendored jsQR reads
//!   a code from Chromium's fake camera (a Y4M file made from the code's QR image) and the page
//!   verifies it;
//! - a garbage scan shows the reason and advice in both languages, never the decoder's words; a
//!   node that is down gets CHECK FAILED with the fallbacks (offline check, masked ID by eye).
//!
//! - a trip manifest (`HCMRT1:`) scanned, or read from an uploaded image of its QR code, shows
//!   the vehicle's verdict: PASS with the headcount and plate, STOP with a seat's reason, a
//!   malformed manifest's fault (`manifest.rs`, which also tests `POST /api/verify-manifest`
//!   without a browser).
//!
//! Screenshots go to `target/browser/` (desktop and phone size, both verdicts, the login panel).

use crate::common;

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use hcmr::proto::{self, Reason, Verdict};
use serde_json::{json, Value};

mod https;
mod login;
mod manifest;
mod scan;

const SICHUAN: u32 = 510000;
const GUANGDONG: u32 = 440000;
const JIANGSU: u32 = 320000;

const CHROMIUM: &str = "/usr/bin/chromium";
const ENTER: char = '\u{e007}';
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// Waits of the page: a verdict takes milliseconds; the panel returns to ready after ~8 s.
const VERDICT_WAIT: Duration = Duration::from_secs(10);
const READY_WAIT: Duration = Duration::from_secs(14);
/// The whole browser part.
const BROWSER_BUDGET: Duration = Duration::from_secs(50);
/// The page's one sessionStorage entry: the verifier's token.
const TOKEN_KEY: &str = "hcmr.verifier-token";

/// Finds `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium and chromedriver, when both are installed.
fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = Path::new(CHROMIUM);
    let driver = on_path("chromedriver");
    match (chromium.is_file(), driver) {
        (true, Some(d)) => Ok((chromium.to_path_buf(), d)),
        (c, d) => {
            let mut missing = Vec::new();
            if !c {
                missing.push(CHROMIUM);
            }
            if d.is_none() {
                missing.push("chromedriver (on PATH)");
            }
            Err(format!(
                "not installed: {} (Debian: apt-get install -y chromium chromium-driver)",
                missing.join(", ")
            ))
        }
    }
}

/// Chromium and chromedriver, or `None` (the test passes, saying why) when they are missing
/// outside CI; under CI a missing browser fails the test.
fn browser_or_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    match browser_tools() {
        Ok(t) => Some(t),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("CI must run the browser test {test}, but the browser is {why}")
        }
        Err(why) => {
            // Straight to the process's stderr, past the test harness's capture, so it is seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: the browser is {why}");
            None
        }
    }
}

/// chromedriver as a child process, in its own process group so that the browsers it starts
/// go with it; killed on drop.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Driver {
    fn start(binary: &Path, dir: &Path) -> Driver {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let log = dir.join("chromedriver.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(binary);
        cmd.arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn().unwrap();
        let mut d = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return d;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("chromedriver exited with {status}: {}", d.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within 10 s: {}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            // The group we created: chromedriver and any browser it left behind.
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("kill -KILL -- -{} 2>/dev/null", self.child.id()))
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(driver: &Driver, chromium: &Path, profile: &Path, extra: &[String]) -> Client {
    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--hide-scrollbars".into(),
        // The node serves the page over HTTPS with its self-signed node certificate
        // (`tls/node.crt`), which this throwaway profile does not know. Production checkpoint
        // devices install that certificate (or the node's CA) instead and never skip the check.
        "--ignore-certificate-errors".into(),
        "--lang=zh-CN".into(),
        format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
        format!("--user-data-dir={}", profile.display()),
    ];
    args.extend_from_slice(extra);
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    tokio::time::timeout(
        Duration::from_secs(15),
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver.url),
    )
    .await
    .unwrap_or_else(|_| panic!("no WebDriver session within 15 s: {}", driver.log_text()))
    .unwrap_or_else(|e| panic!("WebDriver session: {e}: {}", driver.log_text()))
}

/// Runs `drive` in a fresh Chromium: the browser part runs on its own task, so that whatever
/// happens in it (a failed assertion, the time budget) the session is closed and chromedriver
/// killed before the test goes on.
async fn in_browser<F, Fut>(tools: &(PathBuf, PathBuf), dir: &Path, drive: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    in_browser_with(tools, dir, &[], drive).await
}

/// [`in_browser`], with more Chromium flags.
async fn in_browser_with<F, Fut>(tools: &(PathBuf, PathBuf), dir: &Path, extra: &[String], drive: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (chromium, chromedriver) = tools;
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(chromedriver, dir);
    let client = connect(&driver, chromium, profile.path(), extra).await;
    let mut task = tokio::spawn(drive(client.clone()));
    let outcome = tokio::time::timeout(BROWSER_BUDGET, &mut task).await;
    if outcome.is_err() {
        task.abort();
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
    drop(driver);
    match outcome {
        Err(_) => panic!("the browser part took longer than {BROWSER_BUDGET:?}"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("browser task: {e}"),
        Ok(Ok(())) => {}
    }
}

/// Adds a caller with `roles` at `n` (OperatorService AddCaller); returns its token.
async fn add_caller(n: &hcmr::node::NodeHandle, name: &str, roles: &[proto::CallerRole]) -> String {
    operator(n)
        .await
        .add_caller(proto::AddCallerRequest {
            name: name.to_string(),
            roles: roles.iter().map(|r| *r as i32).collect(),
            replace: false,
        })
        .await
        .unwrap()
        .into_inner()
        .token
}

/// Types `token` into the token field and presses Enter.
async fn log_in(c: &Client, token: &str) {
    let field = c.find(Locator::Css("#token")).await.unwrap();
    field.send_keys(&format!("{token}{ENTER}")).await.unwrap();
}

/// Waits until the page shows the verify form, logged in as `caller`, with the focus on #code.
async fn wait_logged_in(c: &Client, caller: &str) {
    wait_displayed(c, "#session", true, VERDICT_WAIT).await;
    wait_text_contains(c, "#caller", caller, VERDICT_WAIT).await;
    assert_eq!(text(c, "#caller").await, caller);
    assert!(
        !displayed(c, "#login").await,
        "the login panel is still shown"
    );
    assert!(displayed(c, "#scan-row").await);
    assert!(displayed(c, "#verdict").await);
    let code = c.find(Locator::Css("#code")).await.unwrap();
    assert!(code.is_enabled().await.unwrap(), "#code is disabled");
    assert_eq!(attr(c, "#verdict", "data-state").await, "ready");
    assert_focus_on(c, "code").await;
}

/// The login panel, with the focus on the token field, and no way to verify; nothing stored.
async fn assert_logged_out(c: &Client) {
    assert!(displayed(c, "#login").await, "no login panel");
    for css in ["#scan-row", "#code", "#verdict", "#session", "#logout"] {
        assert!(!displayed(c, css).await, "{css} is shown before login");
    }
    let code = c.find(Locator::Css("#code")).await.unwrap();
    assert!(
        !code.is_enabled().await.unwrap(),
        "#code is enabled before login"
    );
    assert_focus_on(c, "token").await;
    assert_eq!(stored(c).await, json!([0, 0, 0, null]));
}

/// [localStorage.length, document.cookie.length, sessionStorage.length, the stored token].
async fn stored(c: &Client) -> Value {
    c.execute(
        "return [localStorage.length, document.cookie.length, sessionStorage.length,
                 sessionStorage.getItem(arguments[0])]",
        vec![json!(TOKEN_KEY)],
    )
    .await
    .unwrap()
}

async fn displayed(c: &Client, css: &str) -> bool {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap()
}

async fn wait_displayed(c: &Client, css: &str, want: bool, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if displayed(c, css).await == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css} is {}shown after {within:?} (login: {:?})",
            if want { "not " } else { "still " },
            text(c, "#login-message").await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn prop(c: &Client, css: &str, name: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .prop(name)
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Types a code into the focused field, as a scanner does: its characters, then Enter.
async fn scan(c: &Client, code: &str) {
    let active = c.active_element().await.unwrap();
    assert_eq!(active.attr("id").await.unwrap().as_deref(), Some("code"));
    active.send_keys(&format!("{code}{ENTER}")).await.unwrap();
}

async fn assert_focus_on_code(c: &Client) {
    assert_focus_on(c, "code").await;
}

async fn assert_focus_on(c: &Client, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let id = c.active_element().await.unwrap().attr("id").await.unwrap();
        if id.as_deref() == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "focus is on {id:?}, not #{want}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn attr(c: &Client, css: &str, name: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_default()
}

/// The element's text as rendered (empty when hidden).
async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn wait_attr(c: &Client, css: &str, name: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = attr(c, css, name).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css} {name} is {got:?}, not {want:?}, after {within:?} (panel: {:?})",
            text(c, "#verdict").await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn wait_text_contains(c: &Client, css: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = text(c, css).await;
        if got.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css} is {got:?}, without {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Asserts that `css` shows `want` and lies wholly inside the window (seen without scrolling),
/// after taking a screenshot to `shot`.
async fn assert_in_viewport(c: &Client, css: &str, want: &str, shot: &Path) {
    screenshot(c, shot).await;
    let got = text(c, css).await;
    assert!(got.contains(want), "{css} is {got:?}, without {want:?}");
    let v = c
        .execute(
            "var r = document.querySelector(arguments[0]).getBoundingClientRect();
             return [r.left, r.top, r.right, r.bottom, window.innerWidth, window.innerHeight];",
            vec![json!(css)],
        )
        .await
        .unwrap();
    let n: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let (left, top, right, bottom, width, height) = (n[0], n[1], n[2], n[3], n[4], n[5]);
    assert!(
        left >= 0.0 && top >= 0.0 && right <= width + 0.5 && bottom <= height + 0.5 && bottom > top,
        "{css} {want:?} is at ({left}, {top})-({right}, {bottom}), outside the {width}x{height} window (see {})",
        shot.display()
    );
}

/// A computed colour of #verdict, as (r, g, b).
async fn rgb(c: &Client, property: &str) -> (u8, u8, u8) {
    let v = c
        .execute(
            "return getComputedStyle(document.getElementById('verdict'))[arguments[0]]",
            vec![json!(property)],
        )
        .await
        .unwrap();
    let s = v.as_str().unwrap_or_default().to_string();
    let nums: Vec<u8> = s
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .take(3)
        .map(|n| n.trim().parse().unwrap_or_else(|_| panic!("colour {s:?}")))
        .collect();
    assert_eq!(nums.len(), 3, "colour {s:?}");
    (nums[0], nums[1], nums[2])
}

async fn screenshot(c: &Client, path: &Path) {
    // Let a resize or the new verdict settle into layout before the capture.
    c.execute(
        "return new Promise(function (r) { requestAnimationFrame(function () { requestAnimationFrame(r); }); })",
        vec![],
    )
    .await
    .unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(path, png).unwrap();
}

/// Reads a screenshot, checking it is a PNG of a real size.
fn png(path: &Path) -> image::RgbImage {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert!(
        bytes.len() > 10_000,
        "{} is only {} bytes",
        path.display(),
        bytes.len()
    );
    let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert!(
        img.width() >= 800 && img.height() >= 600,
        "{}",
        path.display()
    );
    img
}

/// Shares of clearly red and clearly green pixels.
fn colour_shares(img: &image::RgbImage) -> (f64, f64) {
    let (mut red, mut green) = (0u64, 0u64);
    for p in img.pixels() {
        let [r, g, b] = p.0.map(i32::from);
        if r > 150 && r - g > 80 && r - b > 60 {
            red += 1;
        }
        if g > 100 && g - r > 50 && g - b > 30 {
            green += 1;
        }
    }
    let n = f64::from(img.width()) * f64::from(img.height());
    (red as f64 / n, green as f64 / n)
}

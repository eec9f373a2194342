//! `hcmr caller add`: the token file, an existing name, the last admin.

use super::*;

/// Fault 1: `caller add --token-out` to a file that exists, or into a folder that does not:
/// refused (64) before the caller is replaced, so the platform's working token still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_add_checks_token_out_before_replacing_the_caller() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let first = root.path().join("platform.token");
    let f = first.to_str().unwrap();
    let o = hcmr(
        &n,
        &[
            "caller",
            "add",
            "platform",
            "--role",
            "issuer,verifier",
            "--token-out",
            f,
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    let token = std::fs::read_to_string(&first).unwrap().trim().to_string();
    assert!(token_works(&n, &token).await);

    // The file exists: refused, nothing changed.
    let o = hcmr(
        &n,
        &[
            "caller",
            "add",
            "platform",
            "--role",
            "issuer,verifier",
            "--token-out",
            f,
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains("the file exists; refusing to overwrite it; the caller was not changed"),
        "{}",
        err(&o)
    );
    assert!(token_works(&n, &token).await, "the old token was revoked");
    assert_eq!(std::fs::read_to_string(&first).unwrap().trim(), token);

    // Its folder does not exist: refused, nothing changed, no folder made.
    let missing = root.path().join("no-such-folder/platform.token");
    let o = hcmr(
        &n,
        &[
            "caller",
            "add",
            "platform",
            "--role",
            "issuer",
            "--token-out",
            missing.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains("does not exist; create it first"),
        "{}",
        err(&o)
    );
    assert!(token_works(&n, &token).await, "the old token was revoked");
    assert!(!missing.parent().unwrap().exists());

    // A refusal by the node (a bad name) leaves no empty token file behind.
    let unused = root.path().join("bad.token");
    let o = hcmr(
        &n,
        &[
            "caller",
            "add",
            "bad name!",
            "--role",
            "issuer",
            "--token-out",
            unused.to_str().unwrap(),
        ],
    )
    .await;
    assert!(!o.status.success());
    assert!(!unused.exists(), "a refused caller left a token file");
    n.shutdown().await.unwrap();
}

/// Fault 1, the other half: when the token file cannot be written after the node has replaced
/// the caller (here: a file size limit of 0, so writing fails with EFBIG), the token, which
/// only this command could show, is printed with a clear message, and the command fails (1).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_add_shows_the_token_when_its_file_cannot_be_written() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let file = root.path().join("platform.token");
    let o = hcmr_no_file_size(
        &n,
        &[
            "caller",
            "add",
            "platform",
            "--role",
            "verifier",
            "--token-out",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        out(&o).contains("caller platform (verifier) is set on the node, but --token-out"),
        "{}",
        out(&o)
    );
    assert!(
        err(&o).contains("the token is printed above instead"),
        "{}",
        err(&o)
    );
    let token = out(&o).lines().nth(1).unwrap().trim().to_string();
    assert!(
        token_works(&n, &token).await,
        "the printed token is the new one"
    );
    assert!(!file.exists(), "a half-written token file was left");
    n.shutdown().await.unwrap();
}

/// The roles of the caller `name` on `n`, or None.
async fn roles_of(n: &NodeHandle, name: &str) -> Option<Vec<i32>> {
    operator(n)
        .await
        .list_callers(proto::ListCallersRequest {})
        .await
        .unwrap()
        .into_inner()
        .callers
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| c.roles)
}

/// Newcomer test fault 3: `caller add` of an existing name is refused (64, saying how to
/// replace it; the old token still works) unless `--replace`; the last admin is never replaced
/// by a non-admin (1, FAILED_PRECONDITION), online or offline with `--config`; AddCaller
/// answers ALREADY_EXISTS without `replace`; the README's recovery line (a new admin name,
/// offline) still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_add_refuses_an_existing_name_and_keeps_the_last_admin() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let add = |name: &'static str, role: &'static str, extra: &'static [&'static str]| {
        let mut a = vec!["caller", "add", name, "--role", role];
        a.extend_from_slice(extra);
        a
    };
    let o = hcmr(&n, &add("platform", "issuer,verifier", &[])).await;
    assert!(o.status.success(), "{}", err(&o));
    let token = out(&o).lines().nth(1).unwrap().trim().to_string();
    assert!(token_works(&n, &token).await);

    // Again: refused, nothing changed.
    let o = hcmr(&n, &add("platform", "issuer", &[])).await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains("caller platform exists; nothing was changed")
            && err(&o).contains("add --replace"),
        "{}",
        err(&o)
    );
    assert!(token_works(&n, &token).await, "the old token was revoked");
    assert_eq!(
        roles_of(&n, "platform").await.unwrap(),
        vec![
            proto::CallerRole::Issuer as i32,
            proto::CallerRole::Verifier as i32
        ]
    );
    // The API says ALREADY_EXISTS without `replace`.
    let e = operator(&n)
        .await
        .add_caller(proto::AddCallerRequest {
            name: "platform".into(),
            roles: vec![proto::CallerRole::Verifier as i32],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists, "{e:?}");
    assert!(token_works(&n, &token).await);

    // With --replace: a new token, the old one is dead.
    let o = hcmr(&n, &add("platform", "verifier", &["--replace"])).await;
    assert!(o.status.success(), "{}", err(&o));
    let new = out(&o).lines().nth(1).unwrap().trim().to_string();
    assert!(token_works(&n, &new).await);
    assert!(!token_works(&n, &token).await);

    // Two admins (the initial `admin` and the test's `test`): `admin` may become a verifier,
    // then `test`, the last admin, may not, with or without --replace.
    let o = hcmr(&n, &add("admin", "verifier", &[])).await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    let admin = proto::CallerRole::Admin as i32;
    assert_eq!(roles_of(&n, "admin").await.unwrap(), vec![admin]);
    let o = hcmr(&n, &add("admin", "verifier", &["--replace"])).await;
    assert!(o.status.success(), "{}", err(&o));
    let o = hcmr(&n, &add("test", "issuer,verifier", &["--replace"])).await;
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("caller test is the last admin"),
        "{}",
        err(&o)
    );
    assert!(roles_of(&n, "test").await.unwrap().contains(&admin));

    // Offline, with --config: the same rules; a new admin name recovers the node.
    let config = n.dir.join("hcmr.toml");
    let config = config.to_str().unwrap().to_string();
    n.shutdown().await.unwrap();
    let offline = |extra: &[&str]| {
        let mut a = vec!["caller", "add", "--config", config.as_str()];
        a.extend_from_slice(extra);
        hcmr_offline(&a)
    };
    let o = offline(&["test", "--role", "verifier"]);
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(err(&o).contains("caller test exists"), "{}", err(&o));
    let o = offline(&["test", "--role", "verifier", "--replace"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("caller test is the last admin"),
        "{}",
        err(&o)
    );
    let o = offline(&["rescue", "--role", "admin"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = offline(&["test", "--role", "verifier", "--replace"]);
    assert!(o.status.success(), "{}", err(&o));
}

//! Output files (images, backups, bundles): checked first, existing files and links refused.

use super::*;

/// Fault 1, its siblings: `backup --out` and `bundle export --out` into a folder that does not
/// exist are refused (64) before the node is asked; a bundle that cannot be written after
/// the node answered is an error naming the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_bundle_outputs_are_checked_first() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    for cmd in [&["backup"][..], &["bundle", "export"][..]] {
        let mut args = cmd.to_vec();
        let missing = root.path().join("nowhere/file");
        args.extend(["--out", missing.to_str().unwrap()]);
        let o = hcmr(&n, &args).await;
        assert_eq!(o.status.code(), Some(64), "{cmd:?}: {}", err(&o));
        assert!(
            err(&o).contains("--out") && err(&o).contains("does not exist"),
            "{cmd:?}: {}",
            err(&o)
        );
    }
    // A folder given as the file: refused, naming it.
    let o = hcmr(
        &n,
        &["bundle", "export", "--out", root.path().to_str().unwrap()],
    )
    .await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(err(&o).contains("is a folder"), "{}", err(&o));
    n.shutdown().await.unwrap();
}

/// Fault 6: `issue --qr` (or `--card`) into a folder that does not exist is refused (64) before
/// a code is issued; when writing fails after issuing, the code and its cti (needed to revoke
/// it) are printed anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_checks_the_image_path_first_and_always_prints_the_cti() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let doc = document_number("510104", 7);
    let issue = |image_flag: &'static str, path: String| {
        vec![
            "issue".to_string(),
            "--name".into(),
            "Zhang San".into(),
            "--doc-number".into(),
            doc.clone(),
            "--status".into(),
            "green".into(),
            image_flag.into(),
            path,
        ]
    };
    for (flag, name) in [
        ("--qr", "code.png"),
        ("--card", "card.pdf"),
        ("--card", "card.png"),
    ] {
        let path = root.path().join("nonexistent").join(name);
        let args = issue(flag, path.to_str().unwrap().into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = hcmr(&n, &args).await;
        assert_eq!(o.status.code(), Some(64), "{flag} {name}: {}", err(&o));
        assert!(out(&o).is_empty(), "a code was issued: {}", out(&o));
        assert!(
            err(&o).contains(&format!("{flag} ")) && err(&o).contains("no code was issued"),
            "{}",
            err(&o)
        );
    }

    // Writing fails after the code is issued (a file size limit of 0: EFBIG, as on a full
    // disk): the code and the cti line are printed, the error says so.
    #[cfg(target_os = "linux")]
    {
        let full = root.path().join("full.png");
        let args = issue("--qr", full.to_str().unwrap().into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = hcmr_no_file_size(&n, &args).await;
        assert_eq!(o.status.code(), Some(1), "{}", err(&o));
        assert!(out(&o).starts_with("HCMR1:"), "{}", out(&o));
        let cti = err(&o)
            .lines()
            .find_map(|l| l.strip_prefix("cti "))
            .map(|l| l[..32].to_string())
            .unwrap_or_else(|| panic!("no cti line: {}", err(&o)));
        assert!(
            err(&o).contains(&format!("the code was issued (printed above, cti {cti})")),
            "{}",
            err(&o)
        );
        // The cti printed is the one to revoke it with.
        let o = hcmr(&n, &["revoke", "code", &cti]).await;
        assert!(o.status.success(), "{}", err(&o));
    }
    n.shutdown().await.unwrap();
}

/// Runs `hcmr ARGS` against `n` in the folder `cwd`.
async fn hcmr_in(n: &NodeHandle, cwd: &Path, args: &[&str]) -> Output {
    let mut c = cli(n);
    c.args(args).current_dir(cwd);
    run(c).await
}

/// Issue 14 fault 1's kind, newcomer test fault 1: `issue --qr` and `--card` to a file that
/// exists, or to a symbolic link (dangling or not), are refused (64) before a code is issued;
/// the existing file, and the file a link points to, are untouched, and a dangling link's
/// target is not created.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_refuses_an_existing_image_file_or_a_symlink() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let doc = document_number("510104", 7);
    let victim = root.path().join("victim.txt");
    std::fs::write(&victim, b"keep me").unwrap();
    for (flag, name) in [
        ("--qr", "code.png"),
        ("--qr", "code.svg"),
        ("--card", "card.pdf"),
    ] {
        let existing = root.path().join(format!("old-{name}"));
        std::fs::write(&existing, b"old").unwrap();
        let link = root.path().join(format!("link-{name}"));
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let dangling = root.path().join(format!("dangling-{name}"));
        let dangling_target = root.path().join(format!("nowhere-{name}"));
        std::os::unix::fs::symlink(&dangling_target, &dangling).unwrap();
        for path in [&existing, &link, &dangling] {
            let o = hcmr(
                &n,
                &[
                    "issue",
                    "--name",
                    "Zhang San",
                    "--doc-number",
                    &doc,
                    "--status",
                    "green",
                    flag,
                    path.to_str().unwrap(),
                ],
            )
            .await;
            assert_eq!(o.status.code(), Some(64), "{flag} {path:?}: {}", err(&o));
            assert!(out(&o).is_empty(), "a code was issued: {}", out(&o));
            assert!(
                err(&o).contains("the file exists")
                    && err(&o).contains("refusing to overwrite it")
                    && err(&o).contains("no code was issued"),
                "{}",
                err(&o)
            );
        }
        assert_eq!(std::fs::read(&existing).unwrap(), b"old");
        assert!(!dangling_target.exists(), "a dangling link was followed");
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    // `-` is no file here either.
    let o = hcmr_in(
        &n,
        root.path(),
        &[
            "issue",
            "--name",
            "Zhang San",
            "--doc-number",
            &doc,
            "--status",
            "green",
            "--card",
            "-",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains("standard output is not an output here"),
        "{}",
        err(&o)
    );
    assert!(!root.path().join("-").exists());
    n.shutdown().await.unwrap();
}

/// Newcomer test fault 2: `bundle export --out` refuses an existing file and a symbolic link
/// (64, nothing changed); `--token-out -` prints the token alone on standard output (no file
/// named `-`); a file under a file says that it is not a folder; `man --out` refuses pages that
/// exist unless `--force`.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_outputs_refuse_existing_files_and_links() {
    let root = tempfile::tempdir().unwrap();
    let n = node(root.path(), 510_000).await;
    let victim = root.path().join("victim.txt");
    std::fs::write(&victim, b"keep me").unwrap();
    let existing = root.path().join("old.bundle");
    std::fs::write(&existing, b"old").unwrap();
    let link = root.path().join("link.bundle");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let dangling = root.path().join("dangling.bundle");
    std::os::unix::fs::symlink(root.path().join("nowhere"), &dangling).unwrap();
    for path in [&existing, &link, &dangling] {
        let o = hcmr(&n, &["bundle", "export", "--out", path.to_str().unwrap()]).await;
        assert_eq!(o.status.code(), Some(64), "{path:?}: {}", err(&o));
        assert!(err(&o).contains("the file exists"), "{}", err(&o));
    }
    assert_eq!(std::fs::read(&existing).unwrap(), b"old");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert!(!root.path().join("nowhere").exists());

    // `--token-out -`: the token alone on standard output, and it works.
    let o = hcmr_in(
        &n,
        root.path(),
        &[
            "caller",
            "add",
            "gate",
            "--role",
            "verifier",
            "--token-out",
            "-",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        !root.path().join("-").exists(),
        "a file named - was written"
    );
    let token = out(&o).trim().to_string();
    assert!(
        token.starts_with("hcmr_") && !token.contains('\n'),
        "{token}"
    );
    assert!(token_works(&n, &token).await);

    // A file under a file: its "folder" is not a folder.
    let under = victim.join("x.token");
    let o = hcmr(
        &n,
        &[
            "caller",
            "add",
            "gate2",
            "--role",
            "verifier",
            "--token-out",
            under.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("{} is not a folder", victim.display())),
        "{}",
        err(&o)
    );

    // `man --out`: existing pages are refused (nothing written) unless --force.
    let man = root.path().join("man1");
    let man_s = man.to_str().unwrap();
    let o = hcmr_offline(&["man", "--out", man_s]);
    assert!(o.status.success(), "{}", err(&o));
    let page = man.join("hcmr-verify.1");
    std::fs::write(&page, b"mine").unwrap();
    let o = hcmr_offline(&["man", "--out", man_s]);
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(
        err(&o).contains("exist")
            && err(&o).contains("hcmr-verify.1")
            && err(&o).contains("--force"),
        "{}",
        err(&o)
    );
    assert_eq!(std::fs::read(&page).unwrap(), b"mine");
    let o = hcmr_offline(&["man", "--out", man_s, "--force"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_ne!(std::fs::read(&page).unwrap(), b"mine");
    // A file where a folder should be.
    let o = hcmr_offline(&["man", "--out", page.join("x").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(err(&o).contains("is a file, not a folder"), "{}", err(&o));
    n.shutdown().await.unwrap();
}

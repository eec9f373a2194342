//! The deployment files, checked offline: the Kubernetes manifests of deploy/k8s and the
//! Dockerfile (docs/deploy.md section 5).
//!
//! - Every manifest is validated by kubernetes-validate (PyPI) against the Kubernetes
//!   [`K8S_VERSION`] JSON schemas it ships in its wheel, strictly (an unknown field is an
//!   error), so nothing is fetched once the virtualenv target/k8s-validate-venv is made from
//!   deploy/validate-requirements.txt. The validator answers a kind it has no schema for with a
//!   warning and exit 0, so the test also requires one "passed" line per resource and no
//!   warning. Two broken copies (a wrong field type, an unknown field) must be refused, which
//!   shows that the validator really reads the files.
//! - Every kustomization.yaml lists every file of its folder, and every file it lists exists
//!   (a kustomization is not a Kubernetes resource: it is read, not validated).
//! - The properties docs/deploy.md relies on are read off the parsed manifests: one primary pod
//!   that is never doubled, non-root pods without capabilities on a read-only root, probes on
//!   the plain-text health port, secrets with mode 0400.
//! - Each hcmr.toml of the config maps is a valid configuration of its kind of node.
//! - The Dockerfile's runtime stage runs as a non-root user.
//!
//! With `kubectl` on the PATH, `kubectl kustomize` also builds each folder and the output is
//! validated the same way. Without Python, its venv module or PyPI, the manifest test prints why
//! and passes, except under CI (the `CI` variable set), where it fails. Every wait is bounded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::python_client::{run, text, venv};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The Kubernetes version whose schemas the manifests are validated against (the oldest minor
/// version the manifests are meant for).
const K8S_VERSION: &str = "1.30.0";

/// deploy/k8s.
fn k8s_dir() -> PathBuf {
    Path::new(ROOT).join("deploy/k8s")
}

/// The virtualenv's interpreter with kubernetes-validate installed; `None`: skipped (outside
/// CI only).
fn validator_python() -> Option<PathBuf> {
    match venv("k8s-validate-venv", "deploy/validate-requirements.txt") {
        Ok(p) => Some(p),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("CI must validate the Kubernetes manifests, but Python is not usable: {why}")
        }
        Err(why) => {
            eprintln!("skipping the Kubernetes manifests' validation: {why}");
            None
        }
    }
}

/// The YAML documents of `file` as JSON values (PyYAML, as the validator reads them; empty
/// documents left out).
fn load_yaml(python: &Path, file: &Path) -> Vec<Value> {
    let o = run(
        Command::new(python)
            .arg("-c")
            .arg(
                "import json, sys, yaml\n\
             docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]\n\
             print(json.dumps(docs))",
            )
            .arg(file),
        Duration::from_secs(60),
    )
    .unwrap();
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "{} does not parse: {err}",
        file.display()
    );
    match serde_json::from_str(&out).unwrap() {
        Value::Array(docs) => docs,
        other => panic!("{}: {other}", file.display()),
    }
}

/// What kubernetes-validate made of `files`: its exit status and output.
fn validate(python: &Path, files: &[PathBuf]) -> (Option<i32>, String) {
    let o = run(
        Command::new(python)
            .args(["-m", "kubernetes_validate", "--strict"])
            .args(["--kubernetes-version", K8S_VERSION])
            .args(files),
        Duration::from_secs(300),
    )
    .unwrap();
    let (out, err) = text(&o);
    (o.status.code(), format!("{out}{err}"))
}

/// Validates `files` holding `resources` documents in all: exit 0, one "passed" line per
/// resource, no warning or error.
fn assert_valid(python: &Path, files: &[PathBuf], resources: usize) {
    let (code, out) = validate(python, files);
    assert_eq!(code, Some(0), "kubernetes-validate refused:\n{out}");
    let passed = out.lines().filter(|l| l.starts_with("INFO ")).count();
    assert_eq!(
        passed, resources,
        "expected {resources} resources to pass:\n{out}"
    );
    let version = K8S_VERSION.rsplit_once('.').unwrap().0;
    for l in out.lines() {
        assert!(
            l.starts_with("INFO ") && l.ends_with(&format!("against version {version}")),
            "{l}"
        );
    }
}

/// The folders under deploy/k8s that hold a kustomization.yaml.
fn kustomization_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = crate::common::walk(&k8s_dir())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "kustomization.yaml"))
        .map(|p| p.parent().unwrap().to_path_buf())
        .collect();
    roots.sort();
    roots
}

/// A kustomization's list of strings under `key` (absent: none).
fn strings(k: &Value, key: &str) -> Vec<String> {
    k.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| {
                    v.as_str()
                        .unwrap_or_else(|| panic!("{key}: {v}"))
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Checks one kustomization: every file it lists exists, every file of its folder (and the
/// folders below that are not kustomizations of their own) is listed. Returns its resource
/// files (the YAML files under `resources`).
fn check_kustomization(python: &Path, root: &Path) -> Vec<PathBuf> {
    let docs = load_yaml(python, &root.join("kustomization.yaml"));
    assert_eq!(docs.len(), 1, "{}", root.display());
    let k = &docs[0];
    assert_eq!(k["kind"], "Kustomization", "{}", root.display());

    let mut resources = Vec::new();
    let mut listed = BTreeSet::new();
    for r in strings(k, "resources") {
        let p = root.join(&r);
        if r.ends_with(".yaml") {
            assert!(
                p.is_file(),
                "{}: resource {r} does not exist",
                root.display()
            );
            listed.insert(p.canonicalize().unwrap());
            resources.push(p);
        } else {
            assert!(
                p.join("kustomization.yaml").is_file(),
                "{}: resource {r} is neither a YAML file nor a kustomization folder",
                root.display()
            );
        }
    }
    for generator in ["configMapGenerator", "secretGenerator"] {
        for g in k
            .get(generator)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for f in strings(g, "files") {
                // `key=path` or `path`.
                let path = f.split_once('=').map_or(f.as_str(), |(_, p)| p);
                let p = root.join(path);
                assert!(
                    p.is_file(),
                    "{}: {generator} file {f} does not exist",
                    root.display()
                );
                listed.insert(p.canonicalize().unwrap());
            }
        }
    }
    for patch in k
        .get("patches")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(path) = patch.get("path").and_then(Value::as_str) {
            let p = root.join(path);
            assert!(
                p.is_file(),
                "{}: patch {path} does not exist",
                root.display()
            );
            listed.insert(p.canonicalize().unwrap());
        }
    }

    for f in crate::common::walk(root) {
        let rel = f.strip_prefix(root).unwrap();
        if f.file_name().unwrap() == "kustomization.yaml" {
            continue;
        }
        // A file below another kustomization belongs to it.
        let owned_below = rel.ancestors().skip(1).any(|a| {
            !a.as_os_str().is_empty() && root.join(a).join("kustomization.yaml").is_file()
        });
        if owned_below {
            continue;
        }
        assert!(
            listed.contains(&f.canonicalize().unwrap()),
            "{} is in {} but its kustomization.yaml does not list it",
            rel.display(),
            root.display()
        );
    }
    resources
}

/// The one resource of `kind` named `name` among `docs`.
fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{kind}/{name}");
    found[0]
}

/// A pod template's hardening and probes, as docs/deploy.md section 5 states them.
fn check_pod(what: &str, spec: &Value) {
    let sc = &spec["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{what}");
    assert_eq!(sc["runAsUser"], 10001, "{what}");
    assert_eq!(sc["fsGroup"], 10001, "{what}");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{what}");
    assert_eq!(spec["automountServiceAccountToken"], false, "{what}");
    assert_eq!(spec["enableServiceLinks"], false, "{what}");

    let inits = spec["initContainers"].as_array().unwrap();
    let mains = spec["containers"].as_array().unwrap();
    assert_eq!(mains.len(), 1, "{what}");
    for c in inits.iter().chain(mains) {
        let name = format!("{what} container {}", c["name"]);
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{name}"
        );
        assert!(c["resources"]["requests"]["cpu"].is_string(), "{name}");
        assert!(c["resources"]["limits"]["memory"].is_string(), "{name}");
    }

    let hcmr = &mains[0];
    assert_eq!(
        hcmr["args"],
        serde_json::json!([
            "serve",
            "--config",
            "/etc/hcmr/hcmr.toml",
            "--log-format",
            "json"
        ]),
        "{what}"
    );
    let ports: Vec<(String, i64)> = hcmr["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    for want in [
        ("grpc", 7510),
        ("page", 8510),
        ("metrics", 9510),
        ("health", 8080),
    ] {
        assert!(
            ports.contains(&(want.0.to_string(), want.1)),
            "{what}: {ports:?}"
        );
    }
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &hcmr[probe]["httpGet"];
        assert_eq!(get["path"], path, "{what} {probe}");
        assert_eq!(get["port"], "health", "{what} {probe}");
    }

    // Every secret is mounted with mode 0400, and only into an init container, which copies it
    // with mode 0600 (the kubelet makes secret files group-readable under fsGroup).
    let secrets: Vec<&str> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v.get("secret").is_some())
        .map(|v| {
            assert_eq!(v["secret"]["defaultMode"], 0o400, "{what}: {v}");
            v["name"].as_str().unwrap()
        })
        .collect();
    assert!(!secrets.is_empty(), "{what}");
    for m in hcmr["volumeMounts"].as_array().unwrap() {
        assert!(
            !secrets.contains(&m["name"].as_str().unwrap()),
            "{what}: {m}"
        );
    }
}

/// The hcmr.toml files of the config maps are valid configurations: the primary's holds the
/// keys, the replica's has a [replica] section and no key.
fn check_configs() {
    use hcmr::node::config::{Config, TOP_LEVEL_KEYS};
    let configs = [
        ("base/config/primary.toml", false),
        ("base/config/replica.toml", true),
        ("overlays/sichuan/primary.toml", false),
        ("overlays/sichuan/replica.toml", true),
    ];
    for (file, replica) in configs {
        let mut toml = std::fs::read_to_string(k8s_dir().join(file)).unwrap();
        assert!(
            toml.contains("\nhealth_listen = \"0.0.0.0:8080\""),
            "{file}"
        );
        // The plain-text health port (issue 19) is configured before this build knows it.
        if !TOP_LEVEL_KEYS.contains(&"health_listen") {
            toml = toml
                .lines()
                .filter(|l| !l.starts_with("health_listen"))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        let c = Config::from_toml(&toml, Path::new("/etc/hcmr/hcmr.toml"))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(c.province, "510000", "{file}");
        assert_eq!(c.listen.to_string(), "0.0.0.0:7510", "{file}");
        assert!(c.tls.is_some(), "{file}");
        assert_eq!(c.replica.is_some(), replica, "{file}");
        if replica {
            assert!(c.key_file.as_os_str().is_empty(), "{file}");
            assert_eq!(c.data_dir, Path::new("/var/lib/hcmr/db"), "{file}");
        } else {
            assert_eq!(
                c.key_file,
                Path::new("/var/lib/hcmr/node/node.key"),
                "{file}"
            );
        }
    }
}

#[test]
fn k8s_manifests_validate_offline_and_kustomizations_list_every_file() {
    check_configs();
    let Some(python) = validator_python() else {
        return;
    };

    let roots = kustomization_roots();
    let names: Vec<String> = roots
        .iter()
        .map(|r| r.strip_prefix(k8s_dir()).unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["base", "overlays/sichuan"]);

    let mut files = Vec::new();
    for root in &roots {
        files.extend(check_kustomization(&python, root));
    }
    files.sort();
    let docs: Vec<Value> = files.iter().flat_map(|f| load_yaml(&python, f)).collect();
    let kinds: BTreeSet<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "Deployment/hcmr-replica",
            "HorizontalPodAutoscaler/hcmr-replica",
            "Namespace/hcmr",
            "PodDisruptionBudget/hcmr-replica",
            "Service/hcmr-primary",
            "Service/hcmr-verify",
            "Service/hcmr-verify-headless",
            "StatefulSet/hcmr-primary",
        ]
    );
    assert_valid(&python, &files, docs.len());

    // The writer: one pod, replaced only after it has ended, on a volume one node mounts.
    let primary = find(&docs, "StatefulSet", "hcmr-primary");
    assert_eq!(primary["spec"]["replicas"], 1);
    assert_eq!(primary["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(primary["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert_eq!(primary["spec"]["serviceName"], "hcmr-primary");
    let claims = primary["spec"]["volumeClaimTemplates"].as_array().unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        claims[0]["spec"]["accessModes"],
        serde_json::json!(["ReadWriteOnce"])
    );
    check_pod("the primary", &primary["spec"]["template"]["spec"]);

    // The replicas: three at least, an emptyDir database each, autoscaled, one evicted at a time.
    let replicas = find(&docs, "Deployment", "hcmr-replica");
    assert_eq!(replicas["spec"]["replicas"], 3);
    let pod = &replicas["spec"]["template"]["spec"];
    check_pod("a replica", pod);
    let db = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "db")
        .unwrap();
    assert!(db["emptyDir"].is_object(), "{db}");
    let labels = &replicas["spec"]["template"]["metadata"]["labels"];
    let hpa = find(&docs, "HorizontalPodAutoscaler", "hcmr-replica");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "hcmr-replica");
    assert_eq!(hpa["spec"]["minReplicas"], 3);
    assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
    let pdb = find(&docs, "PodDisruptionBudget", "hcmr-replica");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);

    // The Services: writes to the primary, verification to the replicas through a virtual IP
    // or, for clients that balance each call, the headless name.
    let primary_labels = &primary["spec"]["template"]["metadata"]["labels"];
    assert_eq!(
        &find(&docs, "Service", "hcmr-primary")["spec"]["selector"],
        primary_labels
    );
    let verify = find(&docs, "Service", "hcmr-verify");
    assert_eq!(&verify["spec"]["selector"], labels);
    assert_eq!(verify["spec"]["type"], "ClusterIP");
    let headless = find(&docs, "Service", "hcmr-verify-headless");
    assert_eq!(&headless["spec"]["selector"], labels);
    assert_eq!(headless["spec"]["clusterIP"], "None");

    // The validator validates: a wrong field type, and an unknown field, are refused.
    let tmp = tempfile::tempdir().unwrap();
    let replica_yaml = std::fs::read_to_string(k8s_dir().join("base/replica.yaml")).unwrap();
    for (what, from, to, field) in [
        (
            "a wrong type",
            "  replicas: 3\n",
            "  replicas: \"three\"\n",
            "spec.replicas",
        ),
        (
            "an unknown field",
            "  minReadySeconds: 5\n",
            "  minReadySecond: 5\n",
            "minReadySecond",
        ),
    ] {
        assert_eq!(replica_yaml.matches(from).count(), 1, "{from}");
        let broken = tmp.path().join("replica.yaml");
        std::fs::write(&broken, replica_yaml.replace(from, to)).unwrap();
        let (code, out) = validate(&python, &[broken]);
        assert_eq!(code, Some(1), "{what} was not refused:\n{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("ERROR ") && l.contains(field)),
            "{what}:\n{out}"
        );
    }

    // Where kubectl is at hand, each kustomization builds, and what it builds validates.
    let kubectl = run(
        Command::new("kubectl").args(["version", "--client"]),
        Duration::from_secs(30),
    );
    if !kubectl.is_ok_and(|o| o.status.success()) {
        eprintln!("kubectl is not on the PATH: the kustomizations were checked, not built");
        return;
    }
    for (root, name) in roots.iter().zip(&names) {
        let o = run(
            Command::new("kubectl").arg("kustomize").arg(root),
            Duration::from_secs(60),
        )
        .unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "kubectl kustomize {name}: {err}");
        let built = tmp.path().join(format!("{}.yaml", name.replace('/', "-")));
        std::fs::write(&built, &out).unwrap();
        let docs = load_yaml(&python, &built);
        // The resources and the two generated config maps.
        assert_eq!(docs.len(), 10, "{name}");
        let generated = docs
            .iter()
            .filter(|d| d["kind"] == "ConfigMap")
            .filter(|d| {
                d["data"]["hcmr.toml"]
                    .as_str()
                    .is_some_and(|t| t.contains("province = \"510000\""))
            })
            .count();
        assert_eq!(generated, 2, "{name}");
        assert_valid(&python, &[built], docs.len());
    }
}

#[test]
fn dockerfile_builds_locked_and_runs_as_non_root() {
    let dockerfile = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).unwrap();
    // Instructions, without comments and with continued lines joined.
    let joined = dockerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let stages: Vec<Vec<&str>> = joined
        .split("\nFROM ")
        .skip(1)
        .map(|s| s.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
        .collect();
    assert_eq!(stages.len(), 2, "a builder stage and a runtime stage");
    let (build, runtime) = (&stages[0], &stages[1]);
    assert!(
        build[0].starts_with("rust:1-bookworm AS build"),
        "{build:?}"
    );
    assert!(
        build
            .iter()
            .any(|l| l.starts_with("RUN ") && l.contains("cargo build --release --locked")),
        "{build:?}"
    );

    // The runtime stage: the last USER is a numeric uid other than 0 (so that the kubelet's
    // runAsNonRoot can check it), and it comes after every RUN.
    let users: Vec<(usize, &str)> = runtime
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.strip_prefix("USER ").map(|u| (i, u.trim())))
        .collect();
    let &(at, user) = users.last().expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert_eq!(uid, "10001", "{user}");
    let last_run = runtime
        .iter()
        .rposition(|l| l.starts_with("RUN "))
        .unwrap_or(0);
    assert!(at > last_run, "USER must follow the last RUN: {runtime:?}");
    let copies: Vec<&&str> = runtime.iter().filter(|l| l.starts_with("COPY ")).collect();
    assert_eq!(copies.len(), 1, "only the binary is copied: {copies:?}");
    assert!(copies[0].contains("--from=build") && copies[0].ends_with("/usr/local/bin/hcmr"));
    assert!(runtime.contains(&"ENTRYPOINT [\"hcmr\"]"), "{runtime:?}");
    assert!(
        runtime.contains(&"CMD [\"serve\", \"--config\", \"/etc/hcmr/hcmr.toml\"]"),
        "{runtime:?}"
    );
    for port in ["7510", "8510", "9510", "8080"] {
        assert!(
            runtime
                .iter()
                .any(|l| l.starts_with("EXPOSE ") && l.split_whitespace().any(|p| p == port)),
            "{port}"
        );
    }

    // The build context leaves out build output, history and node secrets.
    let ignore = std::fs::read_to_string(Path::new(ROOT).join(".dockerignore")).unwrap();
    let ignored: Vec<&str> = ignore.lines().map(str::trim).collect();
    for entry in ["target/", ".git/", "**/*.key", "**/*.token", "**/*.hcmrbak"] {
        assert!(ignored.contains(&entry), "{entry} not in .dockerignore");
    }
}

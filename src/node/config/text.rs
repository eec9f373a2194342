//! The text of hcmr.toml: what `hcmr init` writes (every setting with its meaning, the optional
//! ones commented out), and the check that a top-level setting is not inside a section.

use std::path::PathBuf;

use super::{Config, LimitsConfig, PolicyConfig, RetentionConfig, TlsConfig};
use crate::province::Province;

/// Every top-level setting of hcmr.toml (above the first `[section]`). `display_utc_offset` is
/// the display time zone of times people read.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "province",
    "listen",
    "http_listen",
    "metrics_listen",
    "health_listen",
    "endpoint",
    "data_dir",
    "key_file",
    "subject_key_file",
    "sync_interval_secs",
    "peer_timeout_secs",
    "key_passphrase_env",
    "key_passphrase_file",
    "display_utc_offset",
];

/// What each setting `hcmr init` writes means: (key, meaning), keyed `section.key` inside a
/// section. Written as a comment above it.
const MEANINGS: &[(&str, &str)] = &[
    ("province", "GB/T 2260 province-level code of this node"),
    ("listen", "gRPC listen address (port 0: any free port)"),
    ("data_dir", "sled database, relative to this file's folder"),
    ("key_file", "Ed25519 signing key, PKCS#8 PEM, mode 0600"),
    (
        "subject_key_file",
        "key of the keyed subject hash, mode 0600",
    ),
    (
        "sync_interval_secs",
        "how often peers' trust feeds are pulled, seconds (1 to 86400)",
    ),
    (
        "peer_timeout_secs",
        "longest wait for a peer: connect, TLS, each answer, seconds (1 to 300)",
    ),
    ("http_listen", "the checkpoint web page"),
    ("endpoint", "URL peers use to reach this node"),
    (
        "key_passphrase_env",
        "key files encrypted; passphrase from this variable",
    ),
    (
        "key_passphrase_file",
        "key files encrypted; passphrase from this file (mode 0600)",
    ),
    (
        "tls.cert_file",
        "node certificate (self-signed, with the node binding)",
    ),
    ("tls.key_file", "its key, PKCS#8 PEM, mode 0600"),
    (
        "replica.primary",
        "this verify replica follows the primary at this URL (docs/deploy.md)",
    ),
    ("replica.name", "the name it was enrolled under at the primary"),
    (
        "replica.max_lag_secs",
        "NOT_SERVING once the primary has been silent this long, seconds (2 to 86400)",
    ),
    (
        "limits.max_request_bytes",
        "largest gRPC request message, bytes",
    ),
    (
        "limits.max_concurrent_requests",
        "calls served at once, node-wide; more get RESOURCE_EXHAUSTED",
    ),
    (
        "limits.caller_requests_per_sec",
        "sustained rate per caller (token bucket), calls per second, at least 1",
    ),
    (
        "limits.caller_burst",
        "burst per caller, calls after a quiet period, at least 1",
    ),
    (
        "limits.request_timeout_secs",
        "longest a call may run, seconds (1 to 600)",
    ),
    (
        "limits.max_concurrent_per_caller",
        "calls in flight per caller token or peer province, at least 1; more get RESOURCE_EXHAUSTED",
    ),
    (
        "limits.max_concurrent_per_address",
        "calls in flight per remote IP address, whoever the caller, at least 1; more get RESOURCE_EXHAUSTED",
    ),
    (
        "limits.body_timeout_secs",
        "longest the request body of a call may take to arrive, seconds (1 to 60, under request_timeout_secs)",
    ),
    (
        "limits.max_connections",
        "TLS connections open at once on all ports (gRPC, page, metrics), at least 1; lowered to stay 256 under ulimit -n",
    ),
    (
        "limits.max_connections_per_address",
        "TLS connections open at once from one IP address, at least 1; more are closed",
    ),
    (
        "limits.idle_timeout_secs",
        "a connection with no call in flight for this long is closed, seconds (1 to 3600)",
    ),
    (
        "policy.clock_skew_secs",
        "tolerated clock difference for iat, seconds",
    ),
    (
        "policy.own_max_code_age_secs",
        "oldest own code accepted, seconds",
    ),
    (
        "policy.default_code_lifetime_secs",
        "code lifetime when a request gives none, seconds",
    ),
    (
        "retention.audit_days",
        "verification audit records kept, days (1 to 3650)",
    ),
    (
        "retention.access_days",
        "refused-call records kept, days (1 to 3650)",
    ),
    (
        "retention.issued_days_after_expiry",
        "issued-code log entries kept after the code expired, days (0 to 3650)",
    ),
    (
        "retention.trip_days",
        "trip data (trips, arrivals, check reports, receipts, exposure notices) kept after the planned arrival or receipt, days (1 to 3650)",
    ),
];

/// Top-level settings an operator may turn on that `hcmr init` leaves unset: written commented
/// out above the first section, as (key, example value, meaning).
const OPTIONAL_TOP_LEVEL: &[(&str, &str, &str)] = &[
    ("http_listen", "\"127.0.0.1:8510\"", "the checkpoint web page (HTTPS with [tls]); unset: no page"),
    ("metrics_listen", "\"127.0.0.1:9510\"", "Prometheus metrics, GET /metrics, no token: a management address; unset: none"),
    ("health_listen", "\"127.0.0.1:9511\"", "health port for probes and load balancers, plain HTTP even with [tls] (a status, no data): GET /healthz (200 while serving, 503 before and while draining), GET /readyz (200 when ready for verifications, else 503 and the reason); unset: none"),
    ("endpoint", "\"https://hcmr.sc.example:7510\"", "URL peers use to reach this node; unset: https:// (http:// without TLS) + the bound address"),
    ("key_passphrase_env", "\"HCMR_KEY_PASSPHRASE\"", "key files encrypted; passphrase from this environment variable"),
    ("key_passphrase_file", "\"/run/secrets/hcmr\"", "... or from this file (mode 0600)"),
    ("display_utc_offset", "\"+08:00\"", "time zone of times people read (CLI tables, page, cards, audit CSV), as an offset from UTC; the API, stored records and logs stay UTC; default +08:00 (Beijing time)"),
];

/// The text of hcmr.toml for `config`: its settings, each with its meaning, and every optional
/// top-level setting it leaves unset commented out above the first section, so an operator
/// turns one on where it belongs.
pub fn config_text(province: Province, config: &Config) -> String {
    let body = toml::to_string_pretty(config).expect("a Config always serializes");
    let mut out = format!(
        "# hcmr node of {} ({}), written by `hcmr init`.\n\
         # Top-level settings stay above the first [section]; a line uncommented below a section\n\
         # header belongs to that section.\n",
        province.name_en(),
        province
    );
    let mut section = String::new();
    let mut optional_written = false;
    let write_optional = |out: &mut String| {
        let table: toml::Table = toml::from_str(&body).unwrap_or_default();
        while out.ends_with("\n\n") {
            out.pop();
        }
        out.push_str("\n# Optional settings (uncomment to turn on):\n");
        for (key, example, meaning) in OPTIONAL_TOP_LEVEL {
            if !table.contains_key(*key) {
                out.push_str(&format!("# ({meaning})\n# {key} = {example}\n"));
            }
        }
        out.push('\n');
    };
    for line in body.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            if !optional_written {
                write_optional(&mut out);
                optional_written = true;
            }
            section = t.trim_matches(|c| c == '[' || c == ']').to_string();
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let key = t.split_once('=').map(|(k, _)| k.trim());
        let path = match key {
            Some(k) if section.is_empty() => k.to_string(),
            Some(k) => format!("{section}.{k}"),
            None => String::new(),
        };
        match MEANINGS.iter().find(|(k, _)| *k == path) {
            // The meaning goes above the line, so the setting's own line stays `key = value`.
            Some((_, meaning)) => out.push_str(&format!("# {meaning}\n{line}\n")),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if !optional_written {
        write_optional(&mut out);
    }
    out
}

/// For a section that holds a top-level setting (appended to the end of the file, it lands in
/// the last section): the error that says where it belongs. `None` when no such key is found.
pub(super) fn misplaced_top_level_key(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    let section_keys = |name: &str| -> Vec<String> {
        let v = match name {
            "tls" => toml::Table::try_from(TlsConfig {
                cert_file: PathBuf::new(),
                key_file: PathBuf::new(),
            }),
            "limits" => toml::Table::try_from(LimitsConfig::default()),
            "policy" => toml::Table::try_from(PolicyConfig::default()),
            "retention" => toml::Table::try_from(RetentionConfig::default()),
            "replica" => toml::Table::try_from(super::ReplicaConfig {
                primary: String::new(),
                name: String::new(),
                max_lag_secs: 0,
            }),
            _ => return Vec::new(),
        };
        v.map(|t| t.keys().cloned().collect()).unwrap_or_default()
    };
    for (name, value) in &table {
        let Some(inner) = value.as_table() else {
            continue;
        };
        let own = section_keys(name);
        if let Some(key) = inner
            .keys()
            .find(|k| !own.contains(k) && TOP_LEVEL_KEYS.contains(&k.as_str()))
        {
            return Some(format!(
                "[{name}] holds `{key}`: this is a top-level setting: put it above the first [section]"
            ));
        }
    }
    None
}

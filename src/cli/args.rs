//! Parsing the command line, and telling which values came from environment variables.
//!
//! A value from an environment variable (`HCMR_SYNC_INTERVAL_SECS=abc`) is configuration, not
//! something typed on this command line: its error names the variable and exits 78 (bad
//! configuration) as the README promises, while the same value given as a flag is bad usage (64).
//! clap's [`clap::ArgMatches::value_source`] says where each value came from.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use super::{Cli, CliError};

/// Why the command line could not be parsed.
#[derive(Debug)]
pub enum ParseError {
    /// clap's own error (help and version too): printed by clap, exit 64 or 0.
    Clap(clap::Error),
    /// A value from an environment variable that its flag refuses: exit 78.
    Env(CliError),
}

/// Where the values of the command being run came from, by clap's
/// [`clap::ArgMatches::value_source`]: for each command from `hcmr` down to the one run (e.g.
/// `hcmr`, `bench`, `scale`), its name and, for each of its args that has a value, the arg id,
/// the value's source and the arg's environment variable. Set once by [`parse`].
static SOURCES: OnceLock<Vec<Level>> = OnceLock::new();

/// One command of [`SOURCES`]: its name, then arg id to source and environment variable.
type Level = (String, BTreeMap<String, (ValueSource, Option<String>)>);

/// The environment variable that gave the value of the flag with arg id `id` (e.g. `node`,
/// `token_file`) of the command being run, if it came from one rather than from the command line.
pub fn env_source(id: &str) -> Option<&'static str> {
    match SOURCES.get()?.last()?.1.get(id)? {
        (ValueSource::EnvVariable, Some(var)) => Some(var.as_str()),
        _ => None,
    }
}

/// Whether the flag with arg id `id` of the (sub)command named `command` on the way to the one
/// run (e.g. `bench` in `hcmr bench ... scale`) was typed on the command line: a value from its
/// environment variable or its default does not count.
pub(super) fn on_command_line(command: &str, id: &str) -> bool {
    SOURCES.get().is_some_and(|levels| {
        levels.iter().any(|(name, args)| {
            name == command
                && args
                    .get(id)
                    .is_some_and(|(source, _)| *source == ValueSource::CommandLine)
        })
    })
}

/// Parses the process's command line into [`Cli`].
///
/// # Errors
/// [`ParseError::Env`] naming the environment variable when a value taken from one is refused by
/// its flag's parser; [`ParseError::Clap`] otherwise.
pub fn parse() -> Result<Cli, ParseError> {
    let mut cmd = command();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match cmd.clone().try_get_matches_from(&args) {
        Ok(m) => {
            let _ = SOURCES.set(sources(&cmd, &m));
            Cli::from_arg_matches(&m).map_err(|e| ParseError::Clap(e.format(&mut cmd)))
        }
        Err(e) => Err(match env_value_refused(&cmd, &args, &e) {
            Some(env) => ParseError::Env(env),
            None => ParseError::Clap(e),
        }),
    }
}

/// The command line's definition as `--help`, the manual pages and the completions show it:
/// [`Cli`] with the exit codes ([`super::EXIT_CODES`]) after every command's help.
pub fn command() -> clap::Command {
    fn with_exit_codes(c: clap::Command) -> clap::Command {
        let c = match c.get_after_help().map(ToString::to_string) {
            None => c.after_help(super::EXIT_CODES),
            Some(h) if !h.contains("Exit codes:") => {
                c.after_help(format!("{h}\n\n{}", super::EXIT_CODES))
            }
            Some(_) => c,
        };
        c.mut_subcommands(with_exit_codes)
    }
    with_exit_codes(Cli::command())
}

/// The leaf subcommand that `m` ran, with its matches.
fn leaf<'a>(
    mut cmd: &'a clap::Command,
    mut m: &'a clap::ArgMatches,
) -> (&'a clap::Command, &'a clap::ArgMatches) {
    while let Some((name, sub)) = m.subcommand() {
        match cmd.find_subcommand(name) {
            Some(c) => {
                cmd = c;
                m = sub;
            }
            None => break,
        }
    }
    (cmd, m)
}

/// The sources of the values in `m`, command by command from `cmd` down to the one run.
fn sources(mut cmd: &clap::Command, mut m: &clap::ArgMatches) -> Vec<Level> {
    let mut levels = Vec::new();
    loop {
        let args = cmd
            .get_arguments()
            .filter_map(|a| {
                let id = a.get_id().as_str();
                if !m.try_contains_id(id).unwrap_or(false) {
                    return None;
                }
                let var = a.get_env().map(|v| v.to_string_lossy().into_owned());
                Some((id.to_string(), (m.value_source(id)?, var)))
            })
            .collect();
        levels.push((cmd.get_name().to_string(), args));
        let Some((name, sub)) = m.subcommand() else {
            break;
        };
        let Some(c) = cmd.find_subcommand(name) else {
            break;
        };
        cmd = c;
        m = sub;
    }
    levels
}

/// `cmd` with every flag that has an environment variable taking any value: parsed with it,
/// a command line whose only fault is such a value still yields matches, which say where the
/// value came from.
fn lenient(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| {
        if a.get_env().is_some() {
            a.value_parser(clap::builder::ValueParser::os_string())
        } else {
            a
        }
    })
    .mut_subcommands(lenient)
}

/// When clap refused a value (`e`) that came from an environment variable, the error to give
/// instead: it names the variable and is bad configuration.
fn env_value_refused(
    cmd: &clap::Command,
    args: &[std::ffi::OsString],
    e: &clap::Error,
) -> Option<CliError> {
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    // "--sync-interval-secs <SYNC_INTERVAL_SECS>": the flag is the first word.
    let flag = match e.get(ContextKind::InvalidArg)? {
        ContextValue::String(s) => s.split_whitespace().next()?.to_string(),
        _ => return None,
    };
    let lenient_cmd = lenient(cmd.clone());
    let m = lenient_cmd.try_get_matches_from(args).ok()?;
    let (leaf_cmd, leaf_m) = leaf(cmd, &m);
    let is_flag = |a: &&clap::Arg| a.get_long().is_some_and(|l| format!("--{l}") == flag);
    // A global flag (--display-utc-offset) is defined on the top command only.
    let (arg, leaf_m) = match leaf_cmd.get_arguments().find(is_flag) {
        Some(a) => (a, leaf_m),
        None => (cmd.get_arguments().find(is_flag)?, &m),
    };
    let id = arg.get_id().as_str();
    if leaf_m.value_source(id) != Some(ValueSource::EnvVariable) {
        return None;
    }
    let var = arg.get_env()?.to_string_lossy();
    let value = leaf_m
        .get_raw(id)
        .and_then(|mut v| v.next())
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let why = match (std::error::Error::source(e), e.get(ContextKind::ValidValue)) {
        (Some(s), _) => s.to_string(),
        (None, Some(ContextValue::Strings(valid))) => {
            format!("expected one of {}", valid.join(", "))
        }
        _ => "not a valid value".to_string(),
    };
    Some(CliError::Config(format!(
        "environment variable {var}={value:?} (the value of {flag}): {why}"
    )))
}

/// A duration as an operator writes it (`30s`, `5m`, `12h`, `14d`, `1h 30m`), in whole seconds
/// or 0 (clap value parser). Refusals say what to write, not humantime's own words.
pub(super) fn duration(s: &str) -> Result<std::time::Duration, String> {
    use humantime::DurationError as E;
    let t = s.trim();
    // Months and years have no fixed length (humantime takes a year as 365.25 days): only the
    // units the help names.
    const UNITS: &[&str] = &[
        "s", "sec", "secs", "second", "seconds", "m", "min", "mins", "minute", "minutes", "h",
        "hr", "hrs", "hour", "hours", "d", "day", "days",
        // Parts of a second parse, to be refused as such below ("must be at least 1s").
        "ms", "msec", "us", "usec", "ns", "nsec",
    ];
    if let Some(unit) = t
        .split(|c: char| !c.is_alphabetic())
        .find(|u| !u.is_empty() && !UNITS.contains(u))
    {
        return Err(format!(
            "unknown unit {unit:?}: use s, m, h or d, e.g. 30s, 5m, 12h, 365d"
        ));
    }
    let d = humantime::parse_duration(t).map_err(|e| match e {
        E::UnknownUnit { unit, value, .. } if unit.is_empty() => {
            format!("{value} needs its unit: e.g. {value}s, {value}m, {value}h or {value}d")
        }
        E::UnknownUnit { unit, .. } => {
            format!("unknown unit {unit:?}: use s, m, h or d, e.g. 30s, 5m, 12h, 14d")
        }
        E::NumberOverflow => "too long".to_string(),
        E::Empty => "empty: give a duration such as 30s, 5m, 12h or 14d".to_string(),
        E::InvalidCharacter(_) | E::NumberExpected(_) => {
            "not a duration: write it as 30s, 5m, 12h, 14d or 1h 30m".to_string()
        }
    })?;
    if d.subsec_nanos() != 0 {
        return Err(match d.as_secs() {
            0 => "must be at least 1s".to_string(),
            n => format!("give whole seconds, e.g. {n}s"),
        });
    }
    Ok(d)
}

/// `secs` the way [`duration`] reads it back: `7d`, `12h`, `5m` or `90s`.
pub fn short_duration(secs: u64) -> String {
    match secs {
        0 => "0s".to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A [`duration`] from `min` to `max` seconds.
fn duration_in(s: &str, min: u64, max: u64, why_max: &str) -> Result<std::time::Duration, String> {
    let d = duration(s)?;
    if d.as_secs() < min {
        return Err(format!("must be at least {}", short_duration(min)));
    }
    if d.as_secs() > max {
        return Err(format!("at most {}{why_max}", short_duration(max)));
    }
    Ok(d)
}

/// `issue --lifetime`: 1s to the node's limit (clap value parser).
pub(super) fn code_lifetime(s: &str) -> Result<std::time::Duration, String> {
    duration_in(
        s,
        1,
        crate::node::MAX_CODE_LIFETIME_SECS,
        ", the longest a code may be valid",
    )
}

/// `issue --status-valid-for`: 1s to the node's limit (clap value parser).
pub(super) fn status_validity(s: &str) -> Result<std::time::Duration, String> {
    duration_in(
        s,
        1,
        crate::node::MAX_STATUS_VALIDITY_SECS,
        ": a health status is re-assessed long before that",
    )
}

/// The node's request fields and the flags that set them, for its INVALID_ARGUMENT messages
/// ("code_lifetime_secs: ..."), which name the field.
const FIELD_FLAGS: &[(&str, &str)] = &[
    ("subject.document_number", "--doc-number"),
    ("document_number", "--doc-number"),
    ("subject.document_type", "--doc-type"),
    ("document_type", "--doc-type"),
    ("subject.name", "--name"),
    ("status", "--status"),
    ("status_valid_until", "--status-valid-for"),
    ("code_lifetime_secs", "--lifetime"),
    ("max_trust_age_secs", "--max-trust-age"),
    ("max_code_age_secs", "--max-code-age"),
    ("effective_until", "--for"),
    ("effective_from", "--from"),
    ("expected_peer_kid", "--peer-kid"),
    ("peer_endpoint", "--peer"),
    ("amends", "--amends"),
    ("issued_before", "--before"),
    ("effective_at", "--at"),
    ("issuer_province", "--issuer"),
    ("page_token", "--page-token"),
    ("roles", "--role"),
    ("checkpoint_id", "--checkpoint"),
    ("peer_codes_here", "--peer-codes"),
    ("our_codes_there", "--our-codes"),
];

/// A node's INVALID_ARGUMENT message with its leading request field replaced by the flag that
/// sets it, when there is one.
pub(super) fn in_flags(message: &str) -> String {
    message
        .split_once(": ")
        .and_then(|(field, rest)| {
            FIELD_FLAGS
                .iter()
                .find(|(f, _)| *f == field)
                .map(|(_, flag)| {
                    // "subject.name: name: ..." says the field twice: once is enough.
                    let last = field.rsplit('.').next().unwrap_or(field);
                    let rest = rest.strip_prefix(&format!("{last}: ")).unwrap_or(rest);
                    format!("{flag}: {rest}")
                })
        })
        .unwrap_or_else(|| message.to_string())
}

#[cfg(test)]
mod tests {
    use super::in_flags;

    #[test]
    fn node_messages_name_the_flag_once() {
        assert_eq!(
            in_flags("checkpoint_id: character U+001B at position 1 is a control character"),
            "--checkpoint: character U+001B at position 1 is a control character"
        );
        assert_eq!(
            in_flags("subject.name: name: must have 1 to 64 characters"),
            "--name: must have 1 to 64 characters"
        );
        assert_eq!(
            in_flags("peer_codes_here: green is mapped twice"),
            "--peer-codes: green is mapped twice"
        );
        assert_eq!(in_flags("unknown_field: as is"), "unknown_field: as is");
    }

    #[test]
    fn durations_take_only_units_of_fixed_length() {
        use super::duration;
        assert_eq!(duration("1h 30m").unwrap().as_secs(), 5400);
        assert_eq!(duration("14days").unwrap().as_secs(), 14 * 86_400);
        for bad in ["1y", "2months", "1w", "3M"] {
            let e = duration(bad).unwrap_err();
            assert!(e.starts_with("unknown unit"), "{bad}: {e}");
        }
    }
}

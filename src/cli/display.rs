//! Times and statuses for the person at the terminal: the display offset of this run
//! (`--display-utc-offset`, else the `--dir` folder's, else +08:00).

use crate::node::convert;
use crate::status::HealthStatus;
use crate::UnixTime;

/// RFC 3339 (UTC, seconds) of a time in seconds since the Unix epoch.
pub fn rfc3339(t: u64) -> String {
    crate::rfc3339(t)
}

/// The offset this run shows times in: `--display-utc-offset` (or its variable), else the
/// `display_utc_offset` of the `--dir` folder's hcmr.toml (set when it is read), else +08:00.
pub(super) static DISPLAY_OFFSET: std::sync::OnceLock<crate::display::DisplayOffset> =
    std::sync::OnceLock::new();

/// A message for the person at the terminal (an error the node sent, in its UTC words): its
/// times shown in this run's display offset ([`crate::display::localize_times`]).
pub fn for_people(text: &str) -> String {
    crate::display::localize_times(text, DISPLAY_OFFSET.get().copied().unwrap_or_default())
}

/// A time for the person at the terminal: [`crate::display::display_time`] in this run's offset.
pub(super) fn local_time(t: UnixTime) -> String {
    crate::display::display_time(t, DISPLAY_OFFSET.get().copied().unwrap_or_default())
}

/// [`local_time`] of a time as the API carries it (`uint64` seconds since the Unix epoch).
pub(super) fn api_time(t: u64) -> String {
    local_time(UnixTime::from_secs(t))
}

/// A proto status as people write it (`green`), `-` for none.
pub(super) fn status_name(v: i32) -> &'static str {
    convert::status_from_proto(v).map_or("-", HealthStatus::as_str)
}

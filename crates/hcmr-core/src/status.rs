//! Health status colours (GB/T 38961): green, yellow, red.
//!
//! Not every province uses all three (Guangdong's scheme had only green and red), so a status as
//! issued and a status as it counts at a verifier are the same type but different values: an
//! agreement maps one to the other, per direction. A status number that is not assigned here is
//! never treated as any colour.

use std::fmt;
use std::str::FromStr;

/// A health status colour. The discriminant is the integer used in the code format and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthStatus {
    /// 1: no abnormality found.
    Green = 1,
    /// 2: on-site check abnormal or isolation required (e.g. up to 7 days).
    Yellow = 2,
    /// 3: confirmed or suspected case, or close contact (e.g. 14 days).
    Red = 3,
}

impl HealthStatus {
    /// All colours, in code order.
    pub const ALL: [HealthStatus; 3] =
        [HealthStatus::Green, HealthStatus::Yellow, HealthStatus::Red];

    /// The colour for an integer of the code format; `None` for any unassigned number.
    pub fn from_u64(v: u64) -> Option<Self> {
        match v {
            1 => Some(HealthStatus::Green),
            2 => Some(HealthStatus::Yellow),
            3 => Some(HealthStatus::Red),
            _ => None,
        }
    }

    /// The integer of the code format.
    pub fn to_u64(self) -> u64 {
        self as u64
    }

    /// Lower-case English name: `green`, `yellow`, `red`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Green => "green",
            HealthStatus::Yellow => "yellow",
            HealthStatus::Red => "red",
        }
    }

    /// Chinese name: 绿码, 黄码, 红码.
    pub fn name_zh(self) -> &'static str {
        match self {
            HealthStatus::Green => "绿码",
            HealthStatus::Yellow => "黄码",
            HealthStatus::Red => "红码",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a string that names no colour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a health status: use green, yellow or red")]
pub struct UnknownStatus(pub String);

impl FromStr for HealthStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "green" | "g" => Ok(HealthStatus::Green),
            "yellow" | "y" => Ok(HealthStatus::Yellow),
            "red" | "r" => Ok(HealthStatus::Red),
            _ => Err(UnknownStatus(s.to_string())),
        }
    }
}

//! The scenario: who travels from which province to which, with what status, and what the
//! verifying province must answer.

use super::{ANHUI, GUANGDONG, JIANGSU, SICHUAN, ZHEJIANG};
use crate::proto;
use crate::status::HealthStatus;
use crate::synthetic::Resident;

/// How a code is altered before it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Twist {
    /// Shown as issued.
    None,
    /// Its status edited to green after signing, the signature kept.
    EditedToGreen,
    /// Issued with a one-second lifetime and shown after it ran out.
    Expired,
}

/// One row of the scenario.
pub(super) struct Case {
    /// The worker's full name.
    pub(super) name: &'static str,
    /// The GB/T 2260 address code of the worker's document number.
    pub(super) address: &'static str,
    /// The birth date of the document number, `YYYYMMDD`.
    pub(super) birth: &'static str,
    /// The sequence number of the document number.
    pub(super) seq: u16,
    /// The issuing province.
    pub(super) from: u32,
    /// The province whose checkpoint verifies the code.
    pub(super) to: u32,
    /// The status issued.
    pub(super) status: HealthStatus,
    /// How the code is altered before it is shown.
    pub(super) twist: Twist,
    /// The status the verifier counts it as, or the reason it refuses it.
    pub(super) expect: Result<HealthStatus, proto::Reason>,
}

impl Case {
    /// The worker as a synthetic resident.
    pub(super) fn resident(&self) -> Resident<'static> {
        Resident {
            name: self.name,
            address: self.address,
            birth: self.birth,
            seq: self.seq,
        }
    }
}

/// Every person of the scenario and of its trip: (full name, GB 11643 document number). For the privacy check,
/// which searches the demo's data and logs for them.
pub fn people() -> Vec<(String, String)> {
    cases()
        .iter()
        .map(|c| (c.name.to_string(), c.resident().document_number()))
        .chain(super::trip::people())
        .collect()
}

/// The scenario's rows, in the order the table shows them.
pub(super) fn cases() -> Vec<Case> {
    use HealthStatus::*;
    let c = |name, address, birth, seq, from, to, status, twist, expect| Case {
        name,
        address,
        birth,
        seq,
        from,
        to,
        status,
        twist,
        expect,
    };
    use proto::Reason as R;
    use Twist::*;
    vec![
        c(
            "王建国",
            "510104",
            "19850312",
            131,
            SICHUAN,
            GUANGDONG,
            Green,
            None,
            Ok(Green),
        ),
        c(
            "李秀英",
            "511302",
            "19900721",
            242,
            SICHUAN,
            GUANGDONG,
            Yellow,
            None,
            Ok(Red),
        ),
        c(
            "张伟",
            "510802",
            "19780105",
            311,
            SICHUAN,
            GUANGDONG,
            Red,
            None,
            Ok(Red),
        ),
        c(
            "刘洋",
            "511602",
            "19951130",
            57,
            SICHUAN,
            ZHEJIANG,
            Green,
            None,
            Ok(Green),
        ),
        c(
            "陈静",
            "510104",
            "19881018",
            426,
            SICHUAN,
            ZHEJIANG,
            Yellow,
            None,
            Ok(Yellow),
        ),
        c(
            "杨帆",
            "341202",
            "19920203",
            173,
            ANHUI,
            ZHEJIANG,
            Green,
            None,
            Ok(Green),
        ),
        c(
            "赵敏",
            "340102",
            "19870614",
            288,
            ANHUI,
            ZHEJIANG,
            Yellow,
            None,
            Ok(Yellow),
        ),
        c(
            "黄磊",
            "341602",
            "19830909",
            95,
            ANHUI,
            ZHEJIANG,
            Red,
            None,
            Ok(Red),
        ),
        c(
            "周杰",
            "341202",
            "19960427",
            139,
            ANHUI,
            GUANGDONG,
            Green,
            None,
            Err(R::NoAgreement),
        ),
        c(
            "吴芳",
            "320102",
            "19910816",
            264,
            JIANGSU,
            ZHEJIANG,
            Green,
            None,
            Err(R::NoAgreement),
        ),
        c(
            "徐强",
            "510104",
            "19800222",
            35,
            SICHUAN,
            GUANGDONG,
            Yellow,
            EditedToGreen,
            Err(R::BadSignature),
        ),
        c(
            "孙丽",
            "511302",
            "19930505",
            148,
            SICHUAN,
            GUANGDONG,
            Green,
            Expired,
            Err(R::Expired),
        ),
        c(
            "马超",
            "440106",
            "19890101",
            77,
            GUANGDONG,
            SICHUAN,
            Green,
            None,
            Ok(Green),
        ),
        c(
            "朱琳",
            "510104",
            "19970319",
            182,
            SICHUAN,
            SICHUAN,
            Yellow,
            None,
            Ok(Yellow),
        ),
    ]
}

//! What checkpoint staff read about a vehicle's verdict: Chinese, then English, like
//! [`crate::verify::Reason::explain`] for a person's code.

use super::{ManifestReason, ManifestVerdict};

/// The explanation of a PASS (the green lane).
pub const PASS_EXPLANATION: &str = "核验通过，请清点人数 / PASS: count heads against the manifest";

impl ManifestReason {
    /// What checkpoint staff read for this reason: Chinese, then English.
    pub fn explain(self) -> &'static str {
        use ManifestReason::*;
        match self {
            Malformed => "无法识别的行程单 / not a readable trip manifest",
            UnknownIssuer => "始发地不明 / unknown origin province",
            UnknownKey => "始发地密钥未获认可 / origin key not recognized",
            BadSignature => "签名无效，疑似伪造 / invalid signature, possibly forged",
            KeyWithdrawn => "始发地密钥已撤回 / origin key withdrawn",
            KeyRetired => "始发地密钥已更换 / origin key retired before this seal",
            NoAgreement => "两省未签互认协议 / no agreement with the origin province",
            AgreementNotInForce => "互认协议不在有效期内 / agreement not in force",
            AgreementTerminated => "互认协议已终止 / agreement terminated",
            ManifestsNotAgreed => "协议未约定互认行程单 / agreement does not cover manifests",
            TrustStale => "始发地信任数据过旧 / origin trust data too old here",
            BeforeWindow => "早于计划出发时间 / before the trip's window",
            AfterWindow => "晚于计划到达时间 / after the trip's window",
            Superseded => "行程单已有更新版本 / a newer version of the manifest was seen",
            Revoked => "乘员健康码已被撤销 / a person's code was revoked since boarding",
        }
    }
}

impl ManifestVerdict {
    /// The whole verdict for checkpoint staff: [`PASS_EXPLANATION`], or `停车检查 / STOP: `
    /// followed by each distinct reason's explanation (a revocation once, however many seats),
    /// separated by `; `, in the order of the reasons.
    pub fn explain(&self) -> String {
        let reasons = self.reasons();
        if reasons.is_empty() {
            return PASS_EXPLANATION.to_string();
        }
        let mut seen: Vec<ManifestReason> = Vec::new();
        for r in reasons {
            if !seen.contains(&r.reason) {
                seen.push(r.reason);
            }
        }
        let parts: Vec<&str> = seen.iter().map(|r| r.explain()).collect();
        format!("停车检查 / STOP: {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ManifestStop, StopReason};

    fn reason(reason: ManifestReason, seat: Option<usize>) -> StopReason {
        StopReason {
            reason,
            seat,
            issuer: None,
            detail: String::new(),
        }
    }

    #[test]
    fn every_reason_has_chinese_then_english() {
        for r in ManifestReason::ALL {
            let (zh, en) = r.explain().split_once(" / ").unwrap();
            assert!(!zh.is_ascii(), "{r:?}");
            assert!(en.is_ascii() && !en.is_empty(), "{r:?}");
        }
        let distinct: std::collections::BTreeSet<&str> =
            ManifestReason::ALL.iter().map(|r| r.explain()).collect();
        assert_eq!(distinct.len(), ManifestReason::ALL.len());
    }

    #[test]
    fn a_stop_names_each_reason_once_in_order() {
        let v = ManifestVerdict::Stop(ManifestStop {
            trip_id: None,
            version: None,
            reasons: vec![
                reason(ManifestReason::Superseded, None),
                reason(ManifestReason::Revoked, Some(3)),
                reason(ManifestReason::Revoked, Some(7)),
            ],
        });
        assert_eq!(
            v.explain(),
            "停车检查 / STOP: 行程单已有更新版本 / a newer version of the manifest was seen; \
             乘员健康码已被撤销 / a person's code was revoked since boarding"
        );
    }
}

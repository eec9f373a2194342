//! The verification decision (GB/T 38963's code-verification request): a pure function of the
//! code string, the trust snapshot and the time. No I/O, no clock: the caller passes `now`.
//!
//! The checks, in order; the first that fails gives the reason:
//! 1. the string decodes ([`Reason::Malformed`], with the stage's error);
//! 2. `iss` is a GB/T 2260 province ([`Reason::UnknownIssuer`]);
//! 3. for a peer's code: a concluded agreement with the issuer exists ([`Reason::NoAgreement`])
//!    and its newest version is in force for the issuer->here direction
//!    ([`Reason::AgreementTerminated`], [`Reason::AgreementNotYetInForce`],
//!    [`Reason::AgreementExpired`]);
//! 4. a key with the code's kid is trusted for the issuer (pinned by the agreement, or added by
//!    a rotation in the issuer's synced trust feed; [`Reason::UnknownKey`]) and one such key
//!    verifies the signature ([`Reason::BadSignature`]); that key is not withdrawn
//!    ([`Reason::KeyWithdrawn`]) nor retired before the code was issued ([`Reason::KeyRetired`]);
//! 5. the issuer has not revoked the code or its subject ([`Reason::Revoked`]), and for a peer,
//!    this node's copy of the issuer's trust state is not older than the agreement allows
//!    ([`Reason::TrustStale`]);
//! 6. `iat` is not in the future beyond the clock skew ([`Reason::NotYetValid`]), `exp` has not
//!    passed ([`Reason::Expired`]), the code is not older than allowed ([`Reason::CodeTooOld`]);
//! 7. the issued status maps to a local status ([`Reason::StatusNotRecognized`]; an unassigned
//!    status number never maps) and still holds ([`Reason::StatusExpired`]).
//!
//! Only when every check passes is the verdict recognized; a not-recognized verdict carries no
//! local status, so nothing unrecognized can ever show as green.

use std::collections::BTreeMap;

use crate::agreement::AgreementId;
use crate::code::{Claims, CodeError, HealthCode};
use crate::feed::{FeedState, KeyState};
use crate::keys::PublicKey;
use crate::province::Province;
use crate::status::HealthStatus;
use crate::time::UnixTime;
use crate::trust::{NotInForce, TrustSnapshot};

/// Why a code was or was not recognized. The integers match `hcmr.v1.Reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Every check passed.
    Ok = 1,
    /// The string does not decode; the verdict's detail names the stage and fault.
    Malformed = 2,
    /// `iss` is not a GB/T 2260 province-level code.
    UnknownIssuer = 3,
    /// No concluded agreement with the issuing province.
    NoAgreement = 4,
    /// The agreement's window for this direction has not begun.
    AgreementNotYetInForce = 5,
    /// The agreement's window for this direction has ended.
    AgreementExpired = 6,
    /// No key with the code's kid is pinned for the issuer.
    UnknownKey = 7,
    /// The signature does not verify under any pinned key with that kid.
    BadSignature = 8,
    /// `iat` is later than now plus the allowed clock skew.
    NotYetValid = 9,
    /// `exp` has passed.
    Expired = 10,
    /// The code is older (`now - iat`) than the agreement accepts.
    CodeTooOld = 11,
    /// The issued status is not one the agreement recognizes (or not a known colour).
    StatusNotRecognized = 12,
    /// The status's own validity (`status_valid_until`) has passed.
    StatusExpired = 13,
    /// A party terminated the agreement.
    AgreementTerminated = 14,
    /// The issuer revoked the code, or its subject's codes issued before a later time.
    Revoked = 15,
    /// The signing key was withdrawn by its province.
    KeyWithdrawn = 16,
    /// The signing key was retired by a rotation before the code was issued.
    KeyRetired = 17,
    /// This node's copy of the issuer's trust state is older than the agreement allows.
    TrustStale = 18,
}

impl Reason {
    /// Every reason, in number order.
    pub const ALL: [Reason; 18] = [
        Reason::Ok,
        Reason::Malformed,
        Reason::UnknownIssuer,
        Reason::NoAgreement,
        Reason::AgreementNotYetInForce,
        Reason::AgreementExpired,
        Reason::UnknownKey,
        Reason::BadSignature,
        Reason::NotYetValid,
        Reason::Expired,
        Reason::CodeTooOld,
        Reason::StatusNotRecognized,
        Reason::StatusExpired,
        Reason::AgreementTerminated,
        Reason::Revoked,
        Reason::KeyWithdrawn,
        Reason::KeyRetired,
        Reason::TrustStale,
    ];

    /// The reason with this number (`Reason as u8`).
    pub fn from_u8(v: u8) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| *r as u8 == v)
    }

    /// A stable lower-case identifier, e.g. `no_agreement`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::Malformed => "malformed",
            Reason::UnknownIssuer => "unknown_issuer",
            Reason::NoAgreement => "no_agreement",
            Reason::AgreementNotYetInForce => "agreement_not_yet_in_force",
            Reason::AgreementExpired => "agreement_expired",
            Reason::UnknownKey => "unknown_key",
            Reason::BadSignature => "bad_signature",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Expired => "expired",
            Reason::CodeTooOld => "code_too_old",
            Reason::StatusNotRecognized => "status_not_recognized",
            Reason::StatusExpired => "status_expired",
            Reason::AgreementTerminated => "agreement_terminated",
            Reason::Revoked => "revoked",
            Reason::KeyWithdrawn => "key_withdrawn",
            Reason::KeyRetired => "key_retired",
            Reason::TrustStale => "trust_stale",
        }
    }

    /// What checkpoint staff read: Chinese, then English.
    pub fn explain(self) -> &'static str {
        match self {
            Reason::Ok => "互认通过 / recognized",
            Reason::Malformed => "无法识别的健康码 / not a readable health code",
            Reason::UnknownIssuer => "签发地不明 / unknown issuing province",
            Reason::NoAgreement => "两省未签互认协议 / no agreement with the issuing province",
            Reason::AgreementNotYetInForce => "互认协议尚未生效 / agreement not yet in force",
            Reason::AgreementExpired => "互认协议已到期 / agreement has expired",
            Reason::UnknownKey => "签发密钥未获认可 / issuer key not recognized",
            Reason::BadSignature => "签名无效，疑似伪造 / invalid signature, possibly forged",
            Reason::NotYetValid => "签发时间在未来 / issued in the future",
            Reason::Expired => "健康码已过期，请刷新 / code expired, refresh it",
            Reason::CodeTooOld => "健康码签发过久 / code too old for this agreement",
            Reason::StatusNotRecognized => "该颜色不在互认范围 / status not recognized here",
            Reason::StatusExpired => "健康状态已过有效期 / health status no longer valid",
            Reason::AgreementTerminated => "互认协议已终止 / agreement terminated",
            Reason::Revoked => "健康码已被签发地撤销 / revoked by the issuing province",
            Reason::KeyWithdrawn => "签发密钥已撤回 / issuer key withdrawn",
            Reason::KeyRetired => "签发密钥已更换 / issuer key retired before this code",
            Reason::TrustStale => "签发地信任数据过旧 / issuer trust data too old here",
        }
    }
}

/// The outcome of verifying one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Why; [`Reason::Ok`] exactly when recognized.
    pub reason: Reason,
    /// More detail for a human (the decode error, the window), never personal data.
    pub detail: String,
    /// The decoded claims, when the string decoded (possibly not authentic: see
    /// `signature_verified`).
    pub claims: Option<Claims>,
    /// The code id ([`HealthCode::cti`], derived from the signature), when the string decoded.
    pub cti: Option<crate::code::Cti>,
    /// The issuing province, when `iss` is one.
    pub issuer: Option<Province>,
    /// Whether the signature was verified under a trusted key.
    pub signature_verified: bool,
    /// The status as it counts here: set only when recognized.
    pub local_status: Option<HealthStatus>,
    /// The agreement the decision used, for a peer's code.
    pub agreement: Option<AgreementId>,
    /// When the issuer's trust state was last synced here; `None` for own codes, or a peer
    /// never synced.
    pub issuer_synced_at: Option<UnixTime>,
}

impl Verdict {
    /// Whether the code is recognized.
    pub fn recognized(&self) -> bool {
        self.reason == Reason::Ok
    }

    /// The status as issued, when it is a known colour.
    pub fn issued_status(&self) -> Option<HealthStatus> {
        self.claims
            .as_ref()
            .and_then(|c| HealthStatus::from_u64(c.status))
    }

    fn fail(mut self, reason: Reason, detail: impl Into<String>) -> Self {
        self.reason = reason;
        self.detail = detail.into();
        self.local_status = None;
        self
    }
}

/// Decides whether `code` is recognized at the node whose trust is `trust`, at `now`. Pure: same
/// inputs, same verdict.
pub fn verify(code: &str, trust: &TrustSnapshot, now: UnixTime) -> Verdict {
    match HealthCode::decode(code) {
        Ok(hc) => verify_decoded(&hc, trust, now),
        Err(e) => malformed(&e),
    }
}

fn malformed(e: &CodeError) -> Verdict {
    Verdict {
        reason: Reason::Malformed,
        detail: format!("{}: {e}", e.code()),
        claims: None,
        cti: None,
        issuer: None,
        signature_verified: false,
        local_status: None,
        agreement: None,
        issuer_synced_at: None,
    }
}

/// As [`verify`], for a code already decoded.
pub fn verify_decoded(code: &HealthCode, trust: &TrustSnapshot, now: UnixTime) -> Verdict {
    verify_decoded_with(code, trust, now, &mut |key| code.signature_valid(key))
}

/// The decision with the signature check supplied by the caller: `signature_valid(key)` says
/// whether the code's COSE_Sign1 signature verifies under `key`. It is asked at most once per
/// candidate key (keys of the issuer with the code's kid), in order, and not at all when an
/// earlier check decides. [`verify_decoded`] passes a single strict check; [`batch`] passes
/// a presumption that it confirms afterwards with one batch verification.
pub(crate) fn verify_decoded_with(
    code: &HealthCode,
    trust: &TrustSnapshot,
    now: UnixTime,
    signature_valid: &mut dyn FnMut(&PublicKey) -> bool,
) -> Verdict {
    let c = &code.claims;
    let v = Verdict {
        reason: Reason::Ok,
        detail: String::new(),
        claims: Some(c.clone()),
        cti: Some(code.cti()),
        issuer: None,
        signature_verified: false,
        local_status: None,
        agreement: None,
        issuer_synced_at: None,
    };
    let issuer: Province = match c.iss.parse() {
        Ok(p) => p,
        Err(e) => return v.fail(Reason::UnknownIssuer, e.to_string()),
    };
    let mut v = Verdict {
        issuer: Some(issuer),
        ..v
    };

    // Rules: own codes under local policy, a peer's under the agreement in force.
    let own = issuer == trust.local();
    let rules = if own {
        Rules {
            keys: trust.own().keys().to_vec(),
            status_map: None,
            max_code_age_secs: trust.policy().own_max_code_age_secs,
            max_trust_age_secs: 0,
            revocations: Some(trust.own()),
        }
    } else {
        // How old this node's copy of the issuer's trust state is matters on every path, also
        // when no agreement is in force (terminated, expired): it says what the answer rests on.
        if !trust.agreements_with(issuer).is_empty() {
            v.issuer_synced_at = trust.peer_feed(issuer).map(|p| p.synced_at);
        }
        let agreement = match trust.agreement_in_force(issuer, now) {
            Ok(a) => a,
            Err(why) => {
                v.agreement = trust
                    .agreements_with(issuer)
                    .first()
                    .map(|a| a.agreement.body().id);
                return match why {
                    NotInForce::NoAgreement => v.fail(
                        Reason::NoAgreement,
                        format!("no agreement between {issuer} and {}", trust.local()),
                    ),
                    NotInForce::Terminated(t) => {
                        v.fail(Reason::AgreementTerminated, format!("terminated at {t}"))
                    }
                    NotInForce::NotYet(t) => {
                        v.fail(Reason::AgreementNotYetInForce, format!("in force from {t}"))
                    }
                    NotInForce::Ended(t) => {
                        v.fail(Reason::AgreementExpired, format!("ended at {t}"))
                    }
                };
            }
        };
        v.agreement = Some(agreement.agreement.body().id);
        let terms = agreement
            .direction(issuer, trust.local())
            .expect("checked by in_force");
        let peer = trust.peer_feed(issuer);
        Rules {
            keys: trust.issuer_keys(issuer, agreement),
            status_map: Some(&terms.status_map),
            max_code_age_secs: terms.max_code_age_secs,
            max_trust_age_secs: terms.max_trust_age_secs,
            revocations: peer.map(|p| p.state.as_ref()),
        }
    };

    let candidates: Vec<_> = rules
        .keys
        .iter()
        .filter(|k| k.key.kid == code.kid)
        .collect();
    if candidates.is_empty() {
        return v.fail(
            Reason::UnknownKey,
            format!("kid {} is not a key of {issuer} trusted here", code.kid),
        );
    }
    let Some(signer) = candidates.into_iter().find(|k| signature_valid(&k.key)) else {
        return v.fail(Reason::BadSignature, format!("kid {}", code.kid));
    };
    v.signature_verified = true;
    if let Some(t) = signer.withdrawn_at {
        return v.fail(
            Reason::KeyWithdrawn,
            format!("kid {} withdrawn at {t}", code.kid),
        );
    }
    if let Some(t) = signer.retired_at.filter(|t| c.iat > *t) {
        return v.fail(
            Reason::KeyRetired,
            format!("kid {} retired at {t}, code issued at {}", code.kid, c.iat),
        );
    }
    if rules
        .revocations
        .is_some_and(|r| r.is_revoked(&code.cti(), &c.subject.subject_hash, c.iat))
    {
        return v.fail(Reason::Revoked, format!("cti {}", hex::encode(code.cti())));
    }
    let max_trust_age = rules.max_trust_age_secs;
    if max_trust_age > 0 {
        match v.issuer_synced_at {
            None => {
                return v.fail(
                    Reason::TrustStale,
                    format!("the trust state of {issuer} was never synced here"),
                )
            }
            Some(t) if now.saturating_since(t) > max_trust_age => {
                return v.fail(
                    Reason::TrustStale,
                    format!(
                        "the trust state of {issuer} is {} s old; the agreement allows {max_trust_age} s",
                        now.saturating_since(t)
                    ),
                )
            }
            Some(_) => {}
        }
    }

    if c.iat > now.saturating_add(trust.policy().clock_skew_secs) {
        return v.fail(
            Reason::NotYetValid,
            format!("issued {} s in the future", c.iat.saturating_since(now)),
        );
    }
    if now >= c.exp {
        return v.fail(
            Reason::Expired,
            format!("expired {} s ago", now.saturating_since(c.exp)),
        );
    }
    let max_age = rules.max_code_age_secs;
    if now.saturating_since(c.iat) > max_age {
        return v.fail(
            Reason::CodeTooOld,
            format!(
                "issued {} s ago; at most {max_age} s accepted",
                now.saturating_since(c.iat)
            ),
        );
    }

    let issued = HealthStatus::from_u64(c.status);
    let local = match (issued, rules.status_map) {
        (None, _) => None,
        (Some(s), None) => Some(s),
        (Some(s), Some(map)) => map.get(&s).copied(),
    };
    let Some(local) = local else {
        return v.fail(
            Reason::StatusNotRecognized,
            match issued {
                Some(s) => format!("{s} codes of {issuer} are not recognized here"),
                None => format!("status number {} is not a colour", c.status),
            },
        );
    };
    if now >= c.status_valid_until {
        return v.fail(
            Reason::StatusExpired,
            format!("status held until {}", c.status_valid_until),
        );
    }
    v.local_status = Some(local);
    v
}

/// What a code is judged by: the local policy for own codes, the agreement in force for a
/// peer's.
struct Rules<'a> {
    /// The issuer's keys that may have signed it, with their retirement and withdrawal times.
    keys: Vec<KeyState>,
    /// Issued status -> status here; `None` for own codes, whose status counts as issued.
    status_map: Option<&'a BTreeMap<HealthStatus, HealthStatus>>,
    /// The oldest code accepted (`now - iat`), in seconds.
    max_code_age_secs: u64,
    /// How old this node's copy of the issuer's trust state may be, in seconds; 0: no limit.
    max_trust_age_secs: u64,
    /// The issuer's revocations as known here; `None` for a peer never synced.
    revocations: Option<&'a FeedState>,
}

pub mod batch;

#[cfg(test)]
mod tests;

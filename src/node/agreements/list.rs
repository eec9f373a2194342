//! The agreements operators list (ListAgreements, a page at a time) and those a peer pulls at
//! its sync (GetAgreements).

use super::super::convert;
use super::super::error::ApiError;
use super::Agreements;
use crate::agreement::{SignedAgreement, Termination};
use crate::proto;
use crate::province::Province;

/// Agreement versions in a ListAgreements page when the request does not say.
const DEFAULT_AGREEMENT_PAGE: u32 = 100;
/// Most agreement versions in one ListAgreements page: 500 of the largest (8 keys a party, every
/// status mapped) stay well under a client's default 4 MiB message limit.
const MAX_AGREEMENT_PAGE: u32 = 500;
/// Length of a ListAgreements cursor: created_at (8) ‖ id (16) ‖ version (4), big-endian.
const AGREEMENT_CURSOR_LEN: usize = 28;

/// The order of ListAgreements (oldest first) as bytes that sort the same way.
fn agreement_cursor(a: &SignedAgreement) -> [u8; AGREEMENT_CURSOR_LEN] {
    let b = a.body();
    let mut c = [0u8; AGREEMENT_CURSOR_LEN];
    c[..8].copy_from_slice(&b.created_at.secs().to_be_bytes());
    c[8..24].copy_from_slice(&b.id.0);
    c[24..].copy_from_slice(&b.version.to_be_bytes());
    c
}

impl Agreements<'_> {
    /// One page of the agreement versions stored here, oldest first (creation time, id,
    /// version), in `r.state` if set.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for a `page_token` that is not one or was made for another state.
    pub(crate) fn list_agreements(
        &self,
        r: &proto::ListAgreementsRequest,
    ) -> Result<proto::ListAgreementsResponse, ApiError> {
        let size = match r.page_size {
            0 => DEFAULT_AGREEMENT_PAGE,
            n => n.min(MAX_AGREEMENT_PAGE),
        } as usize;
        let after = match r.page_token.as_str() {
            "" => None,
            t => {
                let raw = hex::decode(t)
                    .ok()
                    .filter(|b| b.len() == AGREEMENT_CURSOR_LEN + 4)
                    .ok_or_else(|| {
                        ApiError::invalid("page_token", "not a next_page_token of ListAgreements")
                    })?;
                let (cursor, state) = raw.split_at(AGREEMENT_CURSOR_LEN);
                if state != r.state.to_be_bytes() {
                    return Err(ApiError::invalid(
                        "page_token",
                        "made for another state: `state` must be that of the call that returned it",
                    ));
                }
                Some(cursor.to_vec())
            }
        };
        let mut all = self.store.agreements()?;
        all.sort_by_key(agreement_cursor);
        let mut page = Vec::new();
        let mut next = None;
        for a in all.iter().filter(|a| {
            after
                .as_ref()
                .is_none_or(|c| agreement_cursor(a).as_slice() > c.as_slice())
        }) {
            let v = self.view(a)?;
            if r.state != 0 && v.state != r.state {
                continue;
            }
            if page.len() == size {
                // More follow: continue after the last one shown.
                next = page.last().map(|(c, _): &([u8; AGREEMENT_CURSOR_LEN], _)| {
                    let mut t = c.to_vec();
                    t.extend_from_slice(&r.state.to_be_bytes());
                    hex::encode(t)
                });
                break;
            }
            page.push((agreement_cursor(a), v));
        }
        Ok(proto::ListAgreementsResponse {
            agreements: page.into_iter().map(|(_, v)| v).collect(),
            next_page_token: next.unwrap_or_default(),
        })
    }

    /// Concluded agreements and terminations with `province`, for its sync.
    pub(crate) fn agreements_for(
        &self,
        province: &str,
    ) -> Result<proto::GetAgreementsResponse, ApiError> {
        let p: Province = province
            .parse()
            .map_err(|e| ApiError::invalid("province", e))?;
        let mut agreements = Vec::new();
        let mut terminations = Vec::new();
        for a in self.store.agreements()? {
            if a.is_concluded() && a.body().peer_of(self.province).map(|x| x.province) == Some(p) {
                if let Some(t) = self.store.termination(a.body().id)? {
                    if !terminations.iter().any(|x: &Termination| x.id == t.id) {
                        terminations.push(t);
                    }
                }
                agreements.push(convert::signed_to_proto(&a));
            }
        }
        Ok(proto::GetAgreementsResponse {
            agreements,
            terminations: terminations
                .iter()
                .map(convert::termination_to_proto)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::{AgreementBody, AgreementId, DirectionTerms, ManifestTerms, Party};
    use crate::keys::NodeKey;
    use crate::province::Province;
    use crate::status::HealthStatus::{Green, Red, Yellow};
    use prost::Message;

    /// A full ListAgreements page of the largest agreement views (8 keys a party, every status
    /// mapped both ways, manifests in both roles, terminated, the longest next_page_token) fits
    /// a client's default 4 MiB message limit.
    #[test]
    fn a_full_page_of_the_largest_agreements_fits_the_default_message_limit() {
        let keys =
            |n: u8| -> Vec<NodeKey> { (0..8).map(|i| NodeKey::from_seed(&[n + i; 32])).collect() };
        let (a_keys, b_keys) = (keys(1), keys(100));
        let (a, b) = (
            Province::from_code(510000).unwrap(),
            Province::from_code(440000).unwrap(),
        );
        let dir = |issuer, verifier| DirectionTerms {
            issuer,
            verifier,
            status_map: [(Green, Green), (Yellow, Red), (Red, Red)]
                .into_iter()
                .collect(),
            max_code_age_secs: crate::code::MAX_TIME,
            max_trust_age_secs: crate::code::MAX_TIME,
            manifests: ManifestTerms::both(),
            tracing: false,
            effective_from: crate::UnixTime::from_secs(crate::code::MAX_TIME / 2),
            effective_until: crate::UnixTime::MAX,
        };
        let body = AgreementBody {
            id: AgreementId([0xff; 16]),
            version: u32::MAX,
            created_at: crate::UnixTime::from_secs(crate::code::MAX_TIME / 2),
            proposer: Party {
                province: a,
                keys: a_keys.iter().map(NodeKey::public).collect(),
            },
            acceptor: Party {
                province: b,
                keys: b_keys.iter().map(NodeKey::public).collect(),
            },
            directions: vec![dir(a, b), dir(b, a)],
        };
        let mut signed = SignedAgreement::propose(body, &a_keys[0]).unwrap();
        signed.accept(&b_keys[0]).unwrap();
        let t = crate::agreement::Termination::sign(
            signed.body().id,
            b,
            crate::UnixTime::MAX,
            crate::UnixTime::MAX,
            &b_keys[0],
        );
        let view = convert::agreement_view(
            &signed,
            a,
            convert::Standing {
                superseded: false,
                termination: Some(&t),
                now: crate::UnixTime::MAX,
            },
        );
        let page = proto::ListAgreementsResponse {
            agreements: vec![view; MAX_AGREEMENT_PAGE as usize],
            next_page_token: "f".repeat(2 * (AGREEMENT_CURSOR_LEN + 4)),
        };
        let len = page.encoded_len();
        assert!(len < 4 * 1024 * 1024, "{len} bytes");
    }
}

//! The caller RPCs of the OperatorService: add, list and remove callers; read refused calls.

use crate::UnixTime;
use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::error::ApiError;
use super::NodeState;
use crate::callers::{Caller, Role, Roles};
use crate::proto;
use crate::store::{Store, DENIAL_KEY_LEN};

/// Most refused calls one ListAccessDenials page holds: at most about 650 bytes each (a
/// 128-character RPC path, a 64-character caller name and an IPv6 address), 5,000 stay under
/// the 4 MiB a gRPC client takes by default.
pub(crate) const MAX_DENIALS_PAGE: u32 = 5_000;

pub(crate) fn role_from_proto(v: i32) -> Result<Role, ApiError> {
    match proto::CallerRole::try_from(v) {
        Ok(proto::CallerRole::Issuer) => Ok(Role::Issuer),
        Ok(proto::CallerRole::Verifier) => Ok(Role::Verifier),
        Ok(proto::CallerRole::Admin) => Ok(Role::Admin),
        Ok(proto::CallerRole::Organizer) => Ok(Role::Organizer),
        Ok(proto::CallerRole::Receiver) => Ok(Role::Receiver),
        Ok(proto::CallerRole::Tracer) => Ok(Role::Tracer),
        _ => Err(ApiError::invalid(
            "roles",
            format!("{v} is not ISSUER, VERIFIER or ADMIN"),
        )),
    }
}

/// The proto enum value of a role.
pub(crate) fn role_to_proto(r: Role) -> i32 {
    match r {
        Role::Issuer => proto::CallerRole::Issuer as i32,
        Role::Verifier => proto::CallerRole::Verifier as i32,
        Role::Admin => proto::CallerRole::Admin as i32,
        Role::Organizer => proto::CallerRole::Organizer as i32,
        Role::Receiver => proto::CallerRole::Receiver as i32,
        Role::Tracer => proto::CallerRole::Tracer as i32,
    }
}

/// The view of a stored caller.
pub(crate) fn caller_view(c: &Caller) -> proto::CallerView {
    proto::CallerView {
        name: c.name.clone(),
        roles: c.roles.list().into_iter().map(role_to_proto).collect(),
        created: c.created.secs(),
    }
}

/// What the caller workflows need: the store (callers, refused calls), the cache of callers
/// the auth layer reads, and the clock (a caller's creation time).
pub(crate) struct CallerAdmin<'a> {
    store: &'a Store,
    callers: &'a ArcSwap<HashMap<[u8; 32], Arc<Caller>>>,
    clock: &'a crate::clock::Clock,
    /// Woken after the table is reloaded (replicas follow the callers).
    trust: &'a super::TrustState,
}

impl NodeState {
    /// The caller workflows' part of the node.
    pub(crate) fn caller_admin(&self) -> CallerAdmin<'_> {
        CallerAdmin {
            store: &self.store,
            callers: &self.callers,
            clock: &self.clock,
            trust: &self.trust,
        }
    }
}

impl CallerAdmin<'_> {
    /// Replaces the in-memory caller table from the store.
    pub(crate) fn reload_callers(&self) -> Result<(), crate::store::StoreError> {
        let table: HashMap<[u8; 32], Arc<Caller>> = self
            .store
            .callers()?
            .into_iter()
            .map(|c| (c.token_hash, Arc::new(c)))
            .collect();
        self.callers.store(Arc::new(table));
        self.trust.notify_changed();
        Ok(())
    }

    /// Adds a caller, or replaces one of that name when `r.replace` asks for it; the token is
    /// in the answer only.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for a bad name or no role; ALREADY_EXISTS for an existing name without
    /// `replace`; FAILED_PRECONDITION for replacing the last admin by a non-admin.
    pub(crate) async fn add_caller(
        &self,
        r: proto::AddCallerRequest,
    ) -> Result<proto::AddCallerResponse, ApiError> {
        let roles = r
            .roles
            .iter()
            .map(|v| role_from_proto(*v))
            .collect::<Result<Vec<_>, _>>()?;
        let (caller, token) =
            Caller::new(&r.name, Roles::of(&roles), self.clock.now()).map_err(|e| match e {
                crate::callers::CallerError::NoRole => ApiError::invalid("roles", e.to_string()),
                other => ApiError::invalid("name", other.to_string()),
            })?;
        crate::callers::check_add(&self.store.callers()?, &r.name, caller.roles, r.replace)
            .map_err(|e| match e {
                crate::callers::AddRefusal::Exists(_) => ApiError::AlreadyExists(format!(
                    "name: {e}: set replace (hcmr caller add --replace)"
                )),
                crate::callers::AddRefusal::LastAdmin(_) => {
                    ApiError::FailedPrecondition(e.to_string())
                }
            })?;
        self.store.put_caller(&caller).await?;
        self.reload_callers()?;
        tracing::info!(caller = %caller.name, roles = %caller.roles, replaced = r.replace, "caller added");
        Ok(proto::AddCallerResponse {
            caller: Some(caller_view(&caller)),
            token: token.to_string(),
        })
    }

    /// Every caller.
    pub(crate) fn list_callers(&self) -> Result<proto::ListCallersResponse, ApiError> {
        Ok(proto::ListCallersResponse {
            callers: self.store.callers()?.iter().map(caller_view).collect(),
        })
    }

    /// Removes a caller. Refuses to remove the last admin, so the node stays manageable.
    pub(crate) async fn remove_caller(
        &self,
        name: &str,
        by: Option<&Arc<Caller>>,
    ) -> Result<proto::RemoveCallerResponse, ApiError> {
        let callers = self.store.callers()?;
        let Some(target) = callers.iter().find(|c| c.name == name) else {
            return Err(ApiError::NotFound(format!("name: no caller {name:?}")));
        };
        let admins = callers.iter().filter(|c| c.roles.has(Role::Admin)).count();
        if target.roles.has(Role::Admin) && admins == 1 {
            return Err(ApiError::FailedPrecondition(format!(
                "caller {name} is the last admin: add another admin first"
            )));
        }
        self.store.remove_caller(name).await?;
        self.reload_callers()?;
        tracing::warn!(caller = %name, by = by.map(|c| c.name.as_str()).unwrap_or("-"), "caller removed");
        Ok(proto::RemoveCallerResponse {})
    }

    /// Refused calls from a time, or after an earlier page (its token is the hex of the last
    /// record's key).
    ///
    /// At most [`MAX_DENIALS_PAGE`] a page; a larger `limit` is lowered to it (AIP-158).
    ///
    /// # Errors
    /// INVALID_ARGUMENT for a `page_token` that is not one.
    pub(crate) fn list_denials(
        &self,
        r: &proto::ListAccessDenialsRequest,
    ) -> Result<proto::ListAccessDenialsResponse, ApiError> {
        let limit = match r.limit {
            0 => 1000,
            n => n.min(MAX_DENIALS_PAGE),
        } as usize;
        let after = match r.page_token.as_str() {
            "" => None,
            t => Some(
                hex::decode(t)
                    .ok()
                    .and_then(|k| <[u8; DENIAL_KEY_LEN]>::try_from(k).ok())
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "page_token",
                            "not a next_page_token of ListAccessDenials",
                        )
                    })?,
            ),
        };
        let (denials, next) = self
            .store
            .denials_page(UnixTime::from_secs(r.from), after, limit)?;
        Ok(proto::ListAccessDenialsResponse {
            next_page_token: next.map(hex::encode).unwrap_or_default(),
            denials: denials
                .into_iter()
                .map(|d| proto::AccessDenial {
                    time: d.time.secs(),
                    rpc: d.rpc,
                    outcome: d.outcome,
                    who: d.who,
                    remote: d.remote,
                    count: d.count,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn a_full_page_of_the_largest_refusals_fits_a_default_client() {
        let largest = proto::AccessDenial {
            time: u64::MAX,
            // The recorded path is cut at 128 characters; 4 bytes each at most in UTF-8.
            rpc: "𠀀".repeat(128),
            outcome: "RESOURCE_EXHAUSTED".into(),
            who: format!("caller {}", "c".repeat(crate::callers::MAX_NAME)),
            remote: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".into(),
            count: u64::MAX,
        };
        let page = proto::ListAccessDenialsResponse {
            denials: vec![largest; MAX_DENIALS_PAGE as usize],
            next_page_token: "f".repeat(2 * DENIAL_KEY_LEN),
        };
        let len = page.encoded_len();
        assert!(len < 4 * 1024 * 1024, "{len} bytes");
    }
}

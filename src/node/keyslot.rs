//! The province's secrets as a node holds them: the signing key and the subject key on a
//! primary; nothing on a verify replica, whose every attempt to use one is refused with
//! FAILED_PRECONDITION naming the primary (the routing in `auth` refuses such calls before they
//! get here; this is the second fence).

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::error::ApiError;
use crate::identity::SubjectKey;
use crate::keys::NodeKey;

/// Why a replica has no key: the refusal's words, naming the primary.
fn no_key(what: &str, primary: &str) -> ApiError {
    ApiError::FailedPrecondition(format!(
        "this node is a verify replica and holds no {what}: call the primary at {primary}"
    ))
}

/// The current signing key (Ed25519), replaced by a rotation; absent on a replica.
pub(crate) struct SigningKey {
    key: ArcSwapOption<NodeKey>,
    /// The primary's URL, on a replica.
    primary: Option<String>,
}

impl SigningKey {
    /// A primary's key.
    pub(crate) fn primary(key: NodeKey) -> Self {
        SigningKey {
            key: ArcSwapOption::from_pointee(key),
            primary: None,
        }
    }

    /// A replica's: none, refusals name `primary`.
    pub(crate) fn replica(primary: &str) -> Self {
        SigningKey {
            key: ArcSwapOption::empty(),
            primary: Some(primary.to_string()),
        }
    }

    /// The current key.
    ///
    /// # Errors
    /// FAILED_PRECONDITION on a replica.
    pub(crate) fn load(&self) -> Result<Arc<NodeKey>, ApiError> {
        self.key
            .load_full()
            .ok_or_else(|| no_key("signing key", self.primary.as_deref().unwrap_or("?")))
    }

    /// As [`SigningKey::load`] (the name the callers of an `ArcSwap` used).
    ///
    /// # Errors
    /// FAILED_PRECONDITION on a replica.
    pub(crate) fn load_full(&self) -> Result<Arc<NodeKey>, ApiError> {
        self.load()
    }

    /// The current key, when this node holds one (a primary).
    pub(crate) fn get(&self) -> Option<Arc<NodeKey>> {
        self.key.load_full()
    }

    /// Replaces the key (a rotation).
    pub(crate) fn store(&self, key: Arc<NodeKey>) {
        self.key.store(Some(key));
    }
}

/// The key of the keyed subject hash; absent on a replica.
pub(crate) struct SubjectKeySlot {
    key: Option<SubjectKey>,
    primary: Option<String>,
}

impl SubjectKeySlot {
    /// A primary's key.
    pub(crate) fn primary(key: SubjectKey) -> Self {
        SubjectKeySlot {
            key: Some(key),
            primary: None,
        }
    }

    /// A replica's: none, refusals name `primary`.
    pub(crate) fn replica(primary: &str) -> Self {
        SubjectKeySlot {
            key: None,
            primary: Some(primary.to_string()),
        }
    }

    /// The key.
    ///
    /// # Errors
    /// FAILED_PRECONDITION on a replica.
    pub(crate) fn get(&self) -> Result<&SubjectKey, ApiError> {
        self.key
            .as_ref()
            .ok_or_else(|| no_key("subject key", self.primary.as_deref().unwrap_or("?")))
    }
}

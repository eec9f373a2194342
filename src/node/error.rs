//! Errors of the gRPC services and their gRPC status codes.

use tonic::{Code, Status};

use crate::agreement::AgreementError;
use crate::store::StoreError;

/// An error answered to a gRPC caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field is wrong: INVALID_ARGUMENT. The message starts with the field's name.
    #[error("{field}: {detail}")]
    InvalidArgument {
        /// The field, e.g. `subject.document_number`.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A field of one element of a repeated request field is wrong: INVALID_ARGUMENT. The
    /// message starts with the field's path, index included (`records[3].checkpoint_id`).
    #[error("{field}: {detail}")]
    InvalidElement {
        /// The field's path, e.g. `records[3].checkpoint_id`.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The named thing does not exist: NOT_FOUND.
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already (and replacing it was not asked for): ALREADY_EXISTS.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is well-formed but the state does not allow it: FAILED_PRECONDITION.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A signature on a received agreement does not verify: UNAUTHENTICATED.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// A peer node could not be reached or answered with an error: UNAVAILABLE.
    #[error("peer {endpoint}: {detail}")]
    PeerUnavailable {
        /// The peer's endpoint URL.
        endpoint: String,
        /// What happened.
        detail: String,
    },
    /// A verify replica that is not ready (not synced, or its primary silent too long) does
    /// not verify: UNAVAILABLE, so that a client asks another node.
    #[error("{0}")]
    NotReady(String),
    /// Too many attempts (e.g. identity matches for one code): RESOURCE_EXHAUSTED.
    #[error("{0}")]
    TooManyAttempts(String),
    /// The database failed: UNAVAILABLE (the caller may retry; nothing was acknowledged).
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A fault of this node's own (a bug), logged where it happened: INTERNAL.
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl ApiError {
    /// An INVALID_ARGUMENT error for `field`.
    pub fn invalid(field: &'static str, detail: impl ToString) -> Self {
        ApiError::InvalidArgument {
            field,
            detail: detail.to_string(),
        }
    }

    /// The gRPC status code.
    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidArgument { .. } | ApiError::InvalidElement { .. } => {
                Code::InvalidArgument
            }
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::AlreadyExists(_) => Code::AlreadyExists,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::PermissionDenied(_) => Code::PermissionDenied,
            ApiError::PeerUnavailable { .. } | ApiError::Store(_) | ApiError::NotReady(_) => {
                Code::Unavailable
            }
            ApiError::TooManyAttempts(_) => Code::ResourceExhausted,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    /// Classifies an error about a received agreement: signature faults are UNAUTHENTICATED,
    /// anything else about its content INVALID_ARGUMENT on `field`.
    pub fn agreement(field: &'static str, e: AgreementError) -> Self {
        match e {
            AgreementError::BadSignature(_)
            | AgreementError::SignerNotPinned(_)
            | AgreementError::Unsigned(_) => ApiError::Unauthenticated(format!("{field}: {e}")),
            other => ApiError::invalid(field, other),
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        if let ApiError::Store(inner) = &e {
            tracing::error!(error = %inner, "storage failure");
        }
        Status::new(e.code(), e.to_string())
    }
}

//! At a primary: enrolling verify replicas (OperatorService EnrollReplica, ListReplicas,
//! RemoveReplica). Enrolling certifies the replica's TLS key with the primary's signing key
//! (a version 2 node binding, [`crate::tls::certify_replica`]) and records the key's hash, so
//! that only that key, presented with that certification, may follow this primary; removing
//! the record ends that at once, whatever the certificate says.

use super::super::error::ApiError;
use super::super::NodeState;
use crate::proto;
use crate::store::EnrolledReplica;

/// Longest SubjectPublicKeyInfo accepted, in bytes (a P-256 key's is 91).
const MAX_SPKI_BYTES: usize = 1024;

impl NodeState {
    /// Enrolls a replica: checks the name and key, certifies the key, stores the record.
    /// Enrolling the same name with the same key again answers the same (a repeated command);
    /// another key under a taken name is ALREADY_EXISTS (remove the old one first).
    ///
    /// # Errors
    /// INVALID_ARGUMENT naming `name` or `spki`; ALREADY_EXISTS; FAILED_PRECONDITION on a
    /// replica; the store's error.
    pub(crate) async fn enroll_replica(
        &self,
        r: proto::EnrollReplicaRequest,
    ) -> Result<proto::EnrollReplicaResponse, ApiError> {
        let key = self.key.load()?;
        crate::callers::check_name(&r.name).map_err(|e| ApiError::invalid("name", e))?;
        if r.spki.is_empty() || r.spki.len() > MAX_SPKI_BYTES {
            return Err(ApiError::invalid(
                "spki",
                format!("{} bytes: a SubjectPublicKeyInfo (DER) of 1 to {MAX_SPKI_BYTES} bytes is expected", r.spki.len()),
            ));
        }
        use x509_parser::prelude::FromDer as _;
        if !matches!(
            x509_parser::x509::SubjectPublicKeyInfo::from_der(&r.spki),
            Ok((rest, _)) if rest.is_empty()
        ) {
            return Err(ApiError::invalid(
                "spki",
                "not a SubjectPublicKeyInfo in DER (RFC 5280)",
            ));
        }
        let spki_sha256: [u8; 32] = sha2::Sha256::digest(&r.spki).into();
        use sha2::Digest as _;
        let existing = self
            .store
            .replicas()?
            .into_iter()
            .find(|e| e.name == r.name);
        let record = match existing {
            Some(e) if e.spki_sha256 == spki_sha256 => e,
            Some(_) => {
                return Err(ApiError::AlreadyExists(format!(
                    "a replica named {} is enrolled with another TLS key: remove it first (`hcmr replica remove {}`)",
                    r.name, r.name
                )))
            }
            None => {
                let e = EnrolledReplica {
                    name: r.name.clone(),
                    spki_sha256,
                    enrolled_at: self.now(),
                    audit_records: 0,
                };
                self.store.put_replica(&e).await?;
                tracing::info!(replica = %e.name, spki_sha256 = %hex::encode(spki_sha256), "verify replica enrolled");
                e
            }
        };
        let c = crate::tls::certify_replica(&key, self.province, &r.spki);
        Ok(proto::EnrollReplicaResponse {
            replica: Some(self.replica_view(&record)),
            certifying_key: c.key.to_bytes().to_vec(),
            certification: c.signature.to_vec(),
        })
    }

    /// Every enrolled replica.
    ///
    /// # Errors
    /// The store's error.
    pub(crate) fn list_replicas(&self) -> Result<proto::ListReplicasResponse, ApiError> {
        Ok(proto::ListReplicasResponse {
            replicas: self
                .store
                .replicas()?
                .iter()
                .map(|r| self.replica_view(r))
                .collect(),
        })
    }

    /// Removes a replica: it can no longer follow; its streams end at their next message.
    ///
    /// # Errors
    /// INVALID_ARGUMENT naming `name`; NOT_FOUND; the store's error.
    pub(crate) async fn remove_replica(&self, name: &str) -> Result<(), ApiError> {
        crate::callers::check_name(name).map_err(|e| ApiError::invalid("name", e))?;
        if !self.store.remove_replica(name).await? {
            return Err(ApiError::NotFound(format!(
                "no replica named {name} is enrolled here"
            )));
        }
        tracing::info!(replica = %name, "verify replica removed");
        // Its FollowState streams see it at once.
        self.trust.notify_changed();
        Ok(())
    }

    fn replica_view(&self, r: &EnrolledReplica) -> proto::ReplicaView {
        proto::ReplicaView {
            name: r.name.clone(),
            spki_sha256: hex::encode(r.spki_sha256),
            enrolled_at: r.enrolled_at.secs(),
            last_seen: self
                .replicas_seen
                .last_seen(&r.name)
                .map_or(0, |t| t.secs()),
            audit_records: r.audit_records,
        }
    }
}

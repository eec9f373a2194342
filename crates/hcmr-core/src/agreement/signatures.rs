//! Signing, accepting and checking an agreement, and its storage record.

use super::*;

fn signing_message(encoded: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + encoded.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(encoded);
    m
}

impl SignedAgreement {
    /// The terms (decoded from, and always equal to, [`SignedAgreement::encoded`]).
    pub fn body(&self) -> &AgreementBody {
        &self.body
    }

    /// The canonical body bytes the signatures cover.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// Validates a new body and signs it as the proposer.
    ///
    /// # Errors
    /// A validation error, or [`AgreementError::SignerNotPinned`] when `key` is not pinned for the
    /// proposer.
    pub fn propose(body: AgreementBody, key: &NodeKey) -> Result<Self, AgreementError> {
        body.validate()?;
        if !body.proposer.keys.contains(&key.public()) {
            return Err(AgreementError::SignerNotPinned("proposer"));
        }
        let encoded = body.encode();
        let signature = AgreementSignature {
            kid: key.kid(),
            signature: key.sign(&signing_message(&encoded)),
        };
        Ok(SignedAgreement {
            body,
            encoded,
            proposer_signature: Some(signature),
            acceptor_signature: None,
        })
    }

    /// Adds the acceptor's signature after checking the proposer's.
    ///
    /// # Errors
    /// A proposer signature error, or [`AgreementError::SignerNotPinned`] when `key` is not
    /// pinned for the acceptor.
    pub fn accept(&mut self, key: &NodeKey) -> Result<(), AgreementError> {
        self.check_signature(Role::Proposer)?;
        if !self.body.acceptor.keys.contains(&key.public()) {
            return Err(AgreementError::SignerNotPinned("acceptor"));
        }
        self.acceptor_signature = Some(AgreementSignature {
            kid: key.kid(),
            signature: key.sign(&signing_message(&self.encoded)),
        });
        Ok(())
    }

    /// Builds from received parts: decodes and validates the body; does not check signatures.
    ///
    /// # Errors
    /// As [`AgreementBody::decode`].
    pub fn from_parts(
        encoded: Vec<u8>,
        proposer_signature: Option<AgreementSignature>,
        acceptor_signature: Option<AgreementSignature>,
    ) -> Result<Self, AgreementError> {
        let body = AgreementBody::decode(&encoded)?;
        Ok(SignedAgreement {
            body,
            encoded,
            proposer_signature,
            acceptor_signature,
        })
    }

    /// Checks one party's signature: present, by a key pinned for that party, and valid.
    ///
    /// # Errors
    /// [`AgreementError::Unsigned`], [`AgreementError::SignerNotPinned`] or
    /// [`AgreementError::BadSignature`].
    pub fn check_signature(&self, role: Role) -> Result<(), AgreementError> {
        let (sig, party, name) = match role {
            Role::Proposer => (&self.proposer_signature, &self.body.proposer, "proposer"),
            Role::Acceptor => (&self.acceptor_signature, &self.body.acceptor, "acceptor"),
        };
        let sig = sig.as_ref().ok_or(AgreementError::Unsigned(name))?;
        let msg = signing_message(&self.encoded);
        let mut pinned = party.keys.iter().filter(|k| k.kid == sig.kid).peekable();
        if pinned.peek().is_none() {
            return Err(AgreementError::SignerNotPinned(name));
        }
        // Kids may collide: any pinned key with this kid that verifies will do.
        if pinned.any(|k| crate::keys::verify_signature(k, &msg, &sig.signature)) {
            Ok(())
        } else {
            Err(AgreementError::BadSignature(name))
        }
    }

    /// Whether `role`'s signature verifies under one of `keys` (keys trusted here for that
    /// party, whatever the body pins): an amendment must be signed by a key the agreement in
    /// force pins, not only by one its own body names.
    pub fn signed_by_any(&self, role: Role, keys: &[PublicKey]) -> bool {
        let sig = match role {
            Role::Proposer => &self.proposer_signature,
            Role::Acceptor => &self.acceptor_signature,
        };
        let Some(sig) = sig else {
            return false;
        };
        let msg = signing_message(&self.encoded);
        keys.iter()
            .filter(|k| k.kid == sig.kid)
            .any(|k| crate::keys::verify_signature(k, &msg, &sig.signature))
    }

    /// Checks both signatures: the agreement is concluded.
    ///
    /// # Errors
    /// The first signature error.
    pub fn check_both(&self) -> Result<(), AgreementError> {
        self.check_signature(Role::Proposer)?;
        self.check_signature(Role::Acceptor)
    }

    /// Whether both parties have signed (signatures not checked).
    pub fn is_concluded(&self) -> bool {
        self.proposer_signature.is_some() && self.acceptor_signature.is_some()
    }

    /// The storage encoding: a CBOR array `[body: bstr, proposer_sig, acceptor_sig]`, each
    /// signature `null` or `[kid: bstr .size 8, sig: bstr .size 64]`.
    pub fn to_record(&self) -> Vec<u8> {
        let sig = |s: &Option<AgreementSignature>| match s {
            None => Value::Null,
            Some(s) => Value::Array(vec![
                Value::Bytes(s.kid.0.to_vec()),
                Value::Bytes(s.signature.to_vec()),
            ]),
        };
        crate::cbor::encode(&Value::Array(vec![
            Value::Bytes(self.encoded.clone()),
            sig(&self.proposer_signature),
            sig(&self.acceptor_signature),
        ]))
    }

    /// Reads [`SignedAgreement::to_record`] bytes.
    ///
    /// # Errors
    /// [`AgreementError::Decode`] or a body error.
    pub fn from_record(bytes: &[u8]) -> Result<Self, AgreementError> {
        let v =
            crate::cbor::decode_exact(bytes).map_err(|e| AgreementError::Decode(e.to_string()))?;
        let a = arr(v, "record", Some(3)).map_err(AgreementError::Decode)?;
        let sig = |v: &Value| -> Result<Option<AgreementSignature>, AgreementError> {
            match v {
                Value::Null => Ok(None),
                Value::Array(p) => match p.as_slice() {
                    [Value::Bytes(k), Value::Bytes(s)] => Ok(Some(AgreementSignature {
                        kid: Kid::from_slice(k).ok_or_else(|| {
                            AgreementError::Decode("signature kid: expected 8 bytes".into())
                        })?,
                        signature: s.as_slice().try_into().map_err(|_| {
                            AgreementError::Decode("signature: expected 64 bytes".into())
                        })?,
                    })),
                    _ => Err(AgreementError::Decode(SIGNATURE_SHAPE.into())),
                },
                _ => Err(AgreementError::Decode(SIGNATURE_SHAPE.into())),
            }
        };
        let Value::Bytes(encoded) = &a[0] else {
            return Err(AgreementError::Decode(
                "record body: expected a byte string".into(),
            ));
        };
        Self::from_parts(encoded.clone(), sig(&a[1])?, sig(&a[2])?)
    }
}

//! The body: its consistency checks and its one canonical encoding (and the strict decoder).

use super::*;

impl AgreementBody {
    /// Checks the body's own consistency (not signatures).
    ///
    /// # Errors
    /// [`AgreementError::SameProvince`], [`AgreementError::BadKeys`],
    /// [`AgreementError::BadDirections`], [`AgreementError::BadWindow`],
    /// [`AgreementError::BadMaxAge`] or [`AgreementError::TimeTooLarge`].
    pub fn validate(&self) -> Result<(), AgreementError> {
        let (p, a) = (self.proposer.province, self.acceptor.province);
        // Times are shown as RFC 3339 (agreement lists, verdicts): none after the year 9999.
        if self.created_at > UnixTime::MAX {
            return Err(AgreementError::TimeTooLarge("created_at"));
        }
        for d in &self.directions {
            if d.effective_from > UnixTime::MAX {
                return Err(AgreementError::TimeTooLarge("effective_from"));
            }
            if d.effective_until > UnixTime::MAX {
                return Err(AgreementError::TimeTooLarge("effective_until"));
            }
        }
        if p == a {
            return Err(AgreementError::SameProvince);
        }
        for party in [&self.proposer, &self.acceptor] {
            let mut kids: Vec<[u8; 32]> = party.keys.iter().map(PublicKey::to_bytes).collect();
            kids.sort_unstable();
            kids.dedup();
            if party.keys.is_empty()
                || party.keys.len() > MAX_KEYS_PER_PARTY
                || kids.len() != party.keys.len()
            {
                return Err(AgreementError::BadKeys(party.province));
            }
        }
        let dirs: Vec<(Province, Province)> = self
            .directions
            .iter()
            .map(|d| (d.issuer, d.verifier))
            .collect();
        if dirs.len() != 2 || !dirs.contains(&(p, a)) || !dirs.contains(&(a, p)) {
            return Err(AgreementError::BadDirections);
        }
        for d in &self.directions {
            if d.effective_from >= d.effective_until {
                return Err(AgreementError::BadWindow(d.issuer, d.verifier));
            }
            if d.max_code_age_secs == 0 {
                return Err(AgreementError::BadMaxAge(d.issuer, d.verifier));
            }
            if let Some((from, to)) = d.status_map.iter().find(|(from, to)| to < from) {
                return Err(AgreementError::LowersSeverity(
                    d.issuer, d.verifier, *from, *to,
                ));
            }
        }
        Ok(())
    }

    /// The canonical encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let party = |p: &Party| {
            Value::Array(vec![
                uint(u64::from(p.province.code())),
                Value::Array(
                    p.keys
                        .iter()
                        .map(|k| Value::Bytes(k.to_bytes().to_vec()))
                        .collect(),
                ),
            ])
        };
        let direction = |d: &DirectionTerms| {
            let mut elements = vec![
                uint(u64::from(d.issuer.code())),
                uint(u64::from(d.verifier.code())),
                Value::Array(
                    d.status_map
                        .iter()
                        .map(|(from, to)| {
                            Value::Array(vec![uint(from.to_u64()), uint(to.to_u64())])
                        })
                        .collect(),
                ),
                uint(d.max_code_age_secs),
                uint(d.effective_from.secs()),
                uint(d.effective_until.secs()),
                uint(d.max_trust_age_secs),
            ];
            // Absent when empty, so every direction made before the term keeps its bytes (and
            // its signatures); 0 is therefore never written.
            if !d.manifests.is_none() || d.tracing {
                elements.push(uint(u64::from(d.manifests.bits())));
            }
            // Likewise the tracing term (docs/tracing.md section 4): absent when off, 1 when on;
            // a ninth element needs the eighth, so manifests 0 is written before it.
            if d.tracing {
                elements.push(uint(1));
            }
            Value::Array(elements)
        };
        let v = Value::Array(vec![
            Value::Text(MAGIC.into()),
            uint(FORMAT),
            Value::Bytes(self.id.0.to_vec()),
            uint(u64::from(self.version)),
            uint(self.created_at.secs()),
            party(&self.proposer),
            party(&self.acceptor),
            Value::Array(self.directions.iter().map(direction).collect()),
        ]);
        crate::cbor::encode(&v)
    }

    /// Decodes canonical body bytes and validates the body.
    ///
    /// # Errors
    /// [`AgreementError::Decode`], [`AgreementError::NotCanonical`], or a validation error.
    pub fn decode(bytes: &[u8]) -> Result<Self, AgreementError> {
        let v =
            crate::cbor::decode_exact(bytes).map_err(|e| AgreementError::Decode(e.to_string()))?;
        let body = decode_body(v).map_err(AgreementError::Decode)?;
        if body.encode() != bytes {
            return Err(AgreementError::NotCanonical);
        }
        body.validate()?;
        Ok(body)
    }

    /// The terms for codes of `issuer` verified at `verifier`, if this agreement has them.
    pub fn direction(&self, issuer: Province, verifier: Province) -> Option<&DirectionTerms> {
        self.directions
            .iter()
            .find(|d| d.issuer == issuer && d.verifier == verifier)
    }

    /// The party of `province`, if it is one.
    pub fn party(&self, province: Province) -> Option<&Party> {
        [&self.proposer, &self.acceptor]
            .into_iter()
            .find(|p| p.province == province)
    }

    /// The other party, seen from `province`.
    pub fn peer_of(&self, province: Province) -> Option<&Party> {
        if self.proposer.province == province {
            Some(&self.acceptor)
        } else if self.acceptor.province == province {
            Some(&self.proposer)
        } else {
            None
        }
    }
}

pub(super) type D<T> = Result<T, String>;

/// What a record's signature slot holds, for the error when it holds something else.
pub(super) const SIGNATURE_SHAPE: &str =
    "signature: expected null or an array of kid and signature bytes";

pub(super) fn arr(v: Value, what: &str, len: Option<usize>) -> D<Vec<Value>> {
    match v {
        Value::Array(a) if len.is_none_or(|n| a.len() == n) => Ok(a),
        _ => Err(format!(
            "{what}: expected an array{}",
            len.map(|n| format!(" of {n}")).unwrap_or_default()
        )),
    }
}

pub(super) fn u(v: &Value, what: &str) -> D<u64> {
    match v {
        Value::Integer(i) => u64::try_from(*i).map_err(|_| format!("{what}: negative")),
        _ => Err(format!("{what}: expected an unsigned integer")),
    }
}

/// A time: an unsigned integer of seconds since the Unix epoch.
pub(super) fn time(v: &Value, what: &str) -> D<UnixTime> {
    u(v, what).map(UnixTime::from_secs)
}

pub(super) fn province(v: &Value, what: &str) -> D<Province> {
    let c = u(v, what)?;
    let c = u32::try_from(c).map_err(|_| format!("{what}: out of range"))?;
    Province::from_code(c).map_err(|e| format!("{what}: {e}"))
}

fn status(v: &Value, what: &str) -> D<HealthStatus> {
    HealthStatus::from_u64(u(v, what)?).ok_or_else(|| format!("{what}: unassigned status"))
}

fn decode_party(v: Value, what: &str) -> D<Party> {
    let mut a = arr(v, what, Some(2))?.into_iter();
    let province = province(&a.next().unwrap_or(Value::Null), what)?;
    let keys = arr(a.next().unwrap_or(Value::Null), what, None)?
        .into_iter()
        .map(|k| match k {
            Value::Bytes(b) => PublicKey::from_bytes(&b).map_err(|e| format!("{what}: {e}")),
            _ => Err(format!("{what}: key is not a byte string")),
        })
        .collect::<D<Vec<_>>>()?;
    Ok(Party { province, keys })
}

fn decode_direction(v: Value) -> D<DirectionTerms> {
    let a = arr(v, "direction", None)?;
    if !(7..=9).contains(&a.len()) {
        return Err("direction: expected an array of 7, 8 or 9".into());
    }
    // An explicit 0 decodes, then fails the round trip in `AgreementBody::decode` (NotCanonical):
    // the one encoding of "no manifests" is the absent element.
    let manifests = match a.get(7) {
        None => ManifestTerms::none(),
        Some(m) => ManifestTerms::from_bits(u(m, "manifests")?)
            .ok_or("manifests: expected 0 to 3 (1 transit, 2 arrival)")?,
    };
    // An explicit 0 decodes as off, then fails the round trip (NotCanonical): the one encoding
    // of "no tracing" is the absent element.
    let tracing = match a.get(8) {
        None => false,
        Some(t) => match u(t, "tracing")? {
            0 => false,
            1 => true,
            _ => return Err("tracing: expected 1 (on); off is the absent element".into()),
        },
    };
    let mut status_map = BTreeMap::new();
    for pair in arr(a[2].clone(), "status map", None)? {
        let p = arr(pair, "status map entry", Some(2))?;
        let from = status(&p[0], "issued status")?;
        if status_map
            .insert(from, status(&p[1], "local status")?)
            .is_some()
        {
            return Err("status map: issued status appears twice".into());
        }
    }
    Ok(DirectionTerms {
        issuer: province(&a[0], "issuer")?,
        verifier: province(&a[1], "verifier")?,
        status_map,
        max_code_age_secs: u(&a[3], "max_code_age")?,
        effective_from: time(&a[4], "effective_from")?,
        effective_until: time(&a[5], "effective_until")?,
        max_trust_age_secs: u(&a[6], "max_trust_age")?,
        manifests,
        tracing,
    })
}

pub(super) fn decode_body(v: Value) -> D<AgreementBody> {
    let mut a = arr(v, "body", Some(8))?.into_iter();
    let mut next = || a.next().unwrap_or(Value::Null);
    if next() != Value::Text(MAGIC.into()) {
        return Err("not an hcmr agreement".into());
    }
    if u(&next(), "format")? != FORMAT {
        return Err("unsupported agreement format".into());
    }
    let id = match next() {
        Value::Bytes(b) => AgreementId(b.try_into().map_err(|_| "id: expected 16 bytes")?),
        _ => return Err("id: expected a byte string".into()),
    };
    let version = u32::try_from(u(&next(), "version")?).map_err(|_| "version: out of range")?;
    let created_at = time(&next(), "created_at")?;
    let proposer = decode_party(next(), "proposer")?;
    let acceptor = decode_party(next(), "acceptor")?;
    let directions = arr(next(), "directions", None)?
        .into_iter()
        .map(decode_direction)
        .collect::<D<Vec<_>>>()?;
    Ok(AgreementBody {
        id,
        version,
        created_at,
        proposer,
        acceptor,
        directions,
    })
}

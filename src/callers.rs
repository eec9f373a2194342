//! Callers of a node's API and their roles.
//!
//! Provincial platforms, checkpoint devices, the checkpoint page and operators authenticate
//! with an API token: `hcmr_` followed by 43 base64url characters (32 random bytes). The node
//! stores only SHA-256 of the token, with the caller's name and roles, so a copy of the database
//! does not let anyone call the node. The token is shown once, when the caller is added.
//!
//! Roles:
//! - [`Role::Issuer`]: issue health codes (code-making requests, GB/T 38963) and revoke them;
//! - [`Role::Verifier`]: verify codes (code-verification requests) and match a document to a
//!   code's subject; the checkpoint page logs in as a verifier;
//! - [`Role::Admin`]: manage agreements, keys, callers, sync, bundles and read the audit log;
//! - [`Role::Organizer`]: create trips, board people, seal and list manifests at their origin
//!   (the labour department's or the transport company's platform; docs/transport.md);
//! - [`Role::Receiver`]: check arriving trips in, confirm people, sign handover receipts or
//!   refusals at their destination (the employer or the reception station);
//! - [`Role::Tracer`]: read trips' chains, trace cases to their fellow travellers and read the
//!   exposure notices for the province's residents (the health-code platform; docs/tracing.md).
//!
//! Peer nodes are not callers: they authenticate with their node certificate (mutual TLS, see
//! [`crate::tls`]).
//!
//! Storage encoding (value of the `callers` tree, keyed by name): CBOR
//! `[roles: uint (bit 0 issuer, bit 1 verifier, bit 2 admin, bit 3 organizer, bit 4 receiver,
//! bit 5 tracer),
//! token_sha256: bstr(32), created: uint]`.

use ciborium::value::{Integer, Value};
use sha2::{Digest, Sha256};

use crate::UnixTime;

/// Prefix of every API token.
pub const TOKEN_PREFIX: &str = "hcmr_";

/// Longest caller name, in characters.
pub const MAX_NAME: usize = 64;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Issue and revoke health codes.
    Issuer,
    /// Verify health codes and match documents.
    Verifier,
    /// Manage agreements, keys, callers; sync; export bundles; read the audit log.
    Admin,
    /// Create trips, board people, seal and list manifests (docs/transport.md).
    Organizer,
    /// Check arriving trips in, confirm people, sign handover receipts or refusals.
    Receiver,
    /// Trace trips and cases, read exposure notices (docs/tracing.md).
    Tracer,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Issuer,
        Role::Verifier,
        Role::Admin,
        Role::Organizer,
        Role::Receiver,
        Role::Tracer,
    ];

    /// The lower-case name: `issuer`, `verifier`, `admin`, `organizer`, `receiver`,
    /// `tracer`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Issuer => "issuer",
            Role::Verifier => "verifier",
            Role::Admin => "admin",
            Role::Organizer => "organizer",
            Role::Receiver => "receiver",
            Role::Tracer => "tracer",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Role::Issuer => 1,
            Role::Verifier => 2,
            Role::Admin => 4,
            Role::Organizer => 8,
            Role::Receiver => 16,
            Role::Tracer => 32,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Role {
    type Err = CallerError;

    fn from_str(s: &str) -> Result<Role, CallerError> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| CallerError::BadRole(s.to_string()))
    }
}

/// A set of roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles(u8);

impl Roles {
    /// The set of `roles`.
    pub fn of(roles: &[Role]) -> Roles {
        Roles(roles.iter().fold(0, |a, r| a | r.bit()))
    }

    /// Whether the set holds `role`.
    pub fn has(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The roles, in the order of [`Role::ALL`].
    pub fn list(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.has(*r)).collect()
    }
}

impl std::fmt::Display for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.list().iter().map(|r| r.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// Errors of caller records and tokens.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallerError {
    /// A caller name that is empty, too long or has characters other than letters, digits,
    /// `.`, `_` and `-`.
    #[error("caller name {0:?}: 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    BadName(String),
    /// A role name that is not issuer, verifier, admin, organizer or receiver.
    #[error("role {0:?}: expected issuer, verifier, admin, organizer or receiver")]
    BadRole(String),
    /// No role given.
    #[error("roles: at least one of issuer, verifier, admin, organizer, receiver")]
    NoRole,
    /// A stored record that does not decode.
    #[error("stored caller record: {0}")]
    BadRecord(String),
}

/// Why adding a caller named like an existing one is refused ([`check_add`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddRefusal {
    /// A caller of that name exists and replacing it was not asked for: replacing gives it a
    /// new token and new roles, and its old token stops working at once.
    #[error("caller {0} exists; replacing it gives it a new token (its old one stops working at once) and must be asked for")]
    Exists(String),
    /// The caller is the last admin and the new roles lack admin: the node would be left
    /// without an admin.
    #[error("caller {0} is the last admin: replacing it without the admin role would leave the node with no admin; add another admin first")]
    LastAdmin(String),
}

/// Checks adding the caller `name` with `roles` to the stored `callers`: a new name is
/// always fine; an existing one only with `replace`, and never so that no admin is left (the
/// rule `caller remove` keeps).
///
/// # Errors
/// [`AddRefusal`].
pub fn check_add(
    callers: &[Caller],
    name: &str,
    roles: Roles,
    replace: bool,
) -> Result<(), AddRefusal> {
    let Some(old) = callers.iter().find(|c| c.name == name) else {
        return Ok(());
    };
    if !replace {
        return Err(AddRefusal::Exists(name.to_string()));
    }
    let admins = callers.iter().filter(|c| c.roles.has(Role::Admin)).count();
    if old.roles.has(Role::Admin) && admins == 1 && !roles.has(Role::Admin) {
        return Err(AddRefusal::LastAdmin(name.to_string()));
    }
    Ok(())
}

/// Checks a caller name.
///
/// # Errors
/// [`CallerError::BadName`].
pub fn check_name(name: &str) -> Result<(), CallerError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CallerError::BadName(name.to_string()))
    }
}

/// SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// A new random token (`hcmr_` + 43 base64url characters, 256 bits from the OS generator).
pub fn new_token() -> zeroize::Zeroizing<String> {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    zeroize::Zeroizing::new(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
    ))
}

/// A stored caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its name (see [`check_name`]).
    pub name: String,
    /// What it may do.
    pub roles: Roles,
    /// SHA-256 of its token.
    pub token_hash: [u8; 32],
    /// When it was added.
    pub created: UnixTime,
}

impl Caller {
    /// A caller with a fresh token; returns the record and the token (shown once).
    ///
    /// # Errors
    /// [`CallerError::BadName`] or [`CallerError::NoRole`].
    pub fn new(
        name: &str,
        roles: Roles,
        now: UnixTime,
    ) -> Result<(Caller, zeroize::Zeroizing<String>), CallerError> {
        check_name(name)?;
        if roles.is_empty() {
            return Err(CallerError::NoRole);
        }
        let token = new_token();
        Ok((
            Caller {
                name: name.to_string(),
                roles,
                token_hash: token_hash(&token),
                created: now,
            },
            token,
        ))
    }

    /// The storage encoding of everything but the name (the key).
    pub fn to_record(&self) -> Vec<u8> {
        crate::cbor::encode(&Value::Array(vec![
            Value::Integer(Integer::from(self.roles.0)),
            Value::Bytes(self.token_hash.to_vec()),
            Value::Integer(Integer::from(self.created.secs())),
        ]))
    }

    /// Decodes a stored record.
    ///
    /// # Errors
    /// [`CallerError::BadRecord`].
    pub fn from_record(name: &str, bytes: &[u8]) -> Result<Caller, CallerError> {
        let bad = |s: &str| CallerError::BadRecord(format!("{name}: {s}"));
        let v = crate::cbor::decode_exact(bytes).map_err(|e| bad(&e.to_string()))?;
        let Value::Array(items) = v else {
            return Err(bad("not an array"));
        };
        let [roles, hash, created] = items.as_slice() else {
            return Err(bad("not [roles, hash, created]"));
        };
        let roles = roles
            .as_integer()
            .and_then(|i| u8::try_from(i).ok())
            .filter(|r| *r != 0 && *r < 64)
            .ok_or_else(|| bad("roles"))?;
        let token_hash: [u8; 32] = hash
            .as_bytes()
            .and_then(|h| h.as_slice().try_into().ok())
            .ok_or_else(|| bad("token hash"))?;
        let created = created
            .as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .map(UnixTime::from_secs)
            .ok_or_else(|| bad("created"))?;
        Ok(Caller {
            name: name.to_string(),
            roles: Roles(roles),
            token_hash,
            created,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_an_existing_name_needs_replace_and_keeps_an_admin() {
        let c = |name: &str, roles: &[Role]| {
            Caller::new(name, Roles::of(roles), UnixTime::from_secs(0))
                .unwrap()
                .0
        };
        let admin = Roles::of(&[Role::Admin]);
        let verifier = Roles::of(&[Role::Verifier]);
        let one = [c("admin", &[Role::Admin]), c("gate", &[Role::Verifier])];
        assert_eq!(check_add(&one, "new", verifier, false), Ok(()));
        assert_eq!(
            check_add(&one, "gate", verifier, false),
            Err(AddRefusal::Exists("gate".into()))
        );
        assert_eq!(check_add(&one, "gate", admin, true), Ok(()));
        assert_eq!(
            check_add(&one, "admin", verifier, true),
            Err(AddRefusal::LastAdmin("admin".into()))
        );
        assert_eq!(check_add(&one, "admin", admin, true), Ok(()));
        let two = [c("admin", &[Role::Admin]), c("ops", &[Role::Admin])];
        assert_eq!(check_add(&two, "admin", verifier, true), Ok(()));
    }

    #[test]
    fn roles_parse_and_print() {
        assert_eq!("issuer".parse::<Role>(), Ok(Role::Issuer));
        assert_eq!(" Admin".parse::<Role>(), Ok(Role::Admin));
        assert_eq!(
            "root".parse::<Role>(),
            Err(CallerError::BadRole("root".to_string()))
        );
        let r = Roles::of(&[Role::Verifier, Role::Issuer]);
        assert!(r.has(Role::Issuer) && r.has(Role::Verifier) && !r.has(Role::Admin));
        assert_eq!(r.to_string(), "issuer,verifier");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("guangzhou-south.gate_3").is_ok());
        for bad in ["", "a b", "名字", "x;y", &"a".repeat(65)] {
            assert_eq!(check_name(bad), Err(CallerError::BadName(bad.to_string())));
        }
    }

    #[test]
    fn token_shape_and_hash() {
        let (c, token) = Caller::new(
            "gate-1",
            Roles::of(&[Role::Verifier]),
            UnixTime::from_secs(1_600_000_000),
        )
        .unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(c.token_hash, token_hash(&token));
        // Known answer: SHA-256("abc").
        assert_eq!(
            hex::encode(token_hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (_, other) = Caller::new(
            "gate-1",
            Roles::of(&[Role::Verifier]),
            UnixTime::from_secs(0),
        )
        .unwrap();
        assert_ne!(*token, *other);
    }

    #[test]
    fn record_round_trip_and_refusals() {
        let (c, _) = Caller::new(
            "platform",
            Roles::of(&[Role::Issuer]),
            UnixTime::from_secs(1_700_000_000),
        )
        .unwrap();
        let back = Caller::from_record("platform", &c.to_record()).unwrap();
        assert_eq!(back, c);
        assert!(Caller::from_record("x", &[0xff]).is_err());
        assert_eq!(
            Caller::new("x", Roles::default(), UnixTime::from_secs(0)).unwrap_err(),
            CallerError::NoRole
        );
    }
}

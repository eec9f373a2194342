//! Tests of key files: PEM files, encryption at rest, passphrases, subject keys.

use super::*;
use crate::keys::NodeKey;

#[test]
fn pem_round_trip_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let k = NodeKey::generate();
    k.write_pem(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let back = NodeKey::read_pem(&path).unwrap();
    assert_eq!(back.public(), k.public());
    assert!(k.write_pem(&path).is_err(), "never overwrites a key");
}

/// RFC 8032 section 7.1 test 1 secret key.
const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

fn seed() -> [u8; 32] {
    hex::decode(RFC8032_SEED).unwrap().try_into().unwrap()
}

fn pass(p: &str) -> KeyProtection {
    KeyProtection::Passphrase(Zeroizing::new(p.as_bytes().to_vec()))
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Writes `data` to `path` with the given Unix mode (set explicitly, whatever the umask).
fn write_with_mode(path: &Path, data: &[u8], mode: u32) {
    std::fs::write(path, data).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
}

#[test]
fn encrypted_round_trip_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let k = NodeKey::generate();
    let p = pass("correct horse battery staple");
    assert!(p.is_encrypted());
    k.write_pem_protected(&path, &p).unwrap();
    #[cfg(unix)]
    assert_eq!(mode_of(&path), 0o600);
    let back = NodeKey::read_pem_protected(&path, &p).unwrap();
    assert_eq!(back.public(), k.public());
    assert_eq!(back.sign(b"m"), k.sign(b"m"));
    assert!(
        matches!(
            k.write_pem_protected(&path, &p),
            Err(KeyFileError::Io { .. })
        ),
        "never overwrites a key"
    );
}

#[test]
fn plain_protection_is_the_old_format() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.key"), dir.path().join("b.key"));
    let k = NodeKey::from_seed(&seed());
    assert!(!KeyProtection::Plain.is_encrypted());
    k.write_pem(&a).unwrap();
    k.write_pem_protected(&b, &KeyProtection::Plain).unwrap();
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b).unwrap());
    // Byte for byte what `write_pem` wrote before encryption existed (ed25519-dalek's PKCS#8
    // v2, RFC 5958 with the public key).
    let before = {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        ed25519_dalek::SigningKey::from_bytes(&seed())
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
    };
    assert_eq!(text, before.as_str());
    assert_eq!(NodeKey::read_pem(&a).unwrap().public(), k.public());
    // OpenSSL's PKCS#8 v1 form of the same key (`openssl pkey`, RFC 8410) reads too.
    let v1 = dir.path().join("v1.key");
    write_with_mode(
        &v1,
        b"-----BEGIN PRIVATE KEY-----\n\
          MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n\
          -----END PRIVATE KEY-----\n",
        0o600,
    );
    assert_eq!(
        NodeKey::read_pem_protected(&v1, &KeyProtection::Plain)
            .unwrap()
            .public(),
        k.public()
    );
}

#[test]
fn wrong_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    NodeKey::generate()
        .write_pem_protected(&path, &pass("right passphrase"))
        .unwrap();
    for wrong in ["Tr0ub4dor&3", "right passphrasE", "right passphrase "] {
        let err = NodeKey::read_pem_protected(&path, &pass(wrong)).unwrap_err();
        assert!(
            matches!(err, KeyFileError::WrongPassphrase { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!msg.contains(wrong) && !format!("{err:?}").contains(wrong));
    }
}

#[test]
fn encrypted_file_without_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    NodeKey::generate()
        .write_pem_protected(&path, &pass("s3cret"))
        .unwrap();
    for err in [
        NodeKey::read_pem(&path).unwrap_err(),
        NodeKey::read_pem_protected(&path, &KeyProtection::Plain).unwrap_err(),
        read_pkcs8_der(&path, &KeyProtection::Plain).unwrap_err(),
    ] {
        assert!(matches!(err, KeyFileError::Encrypted { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains("key_passphrase_env or key_passphrase_file"),
            "{msg}"
        );
    }
}

#[test]
fn plain_file_with_passphrase_configured_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    NodeKey::generate().write_pem(&path).unwrap();
    let err = NodeKey::read_pem_protected(&path, &pass("s3cret")).unwrap_err();
    assert!(matches!(err, KeyFileError::NotEncrypted { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert!(matches!(
        read_pkcs8_der(&path, &pass("s3cret")),
        Err(KeyFileError::NotEncrypted { .. })
    ));
}

#[test]
fn encrypted_file_hides_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, enc) = (dir.path().join("plain.key"), dir.path().join("enc.key"));
    let k = NodeKey::from_seed(&seed());
    k.write_pem(&plain).unwrap();
    k.write_pem_protected(&enc, &pass("s3cret")).unwrap();
    let text = std::fs::read_to_string(&enc).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
        "{text}"
    );
    assert!(
        text.ends_with("-----END ENCRYPTED PRIVATE KEY-----\n"),
        "{text}"
    );
    assert!(!text.contains("BEGIN PRIVATE KEY"));
    let plain_text = std::fs::read_to_string(&plain).unwrap();
    let plain_body = plain_text.lines().nth(1).unwrap();
    assert!(!text.contains(plain_body));
    assert!(!text.to_lowercase().contains(RFC8032_SEED));
    let (label, doc) = SecretDocument::from_pem(&text).unwrap();
    assert_eq!(label, "ENCRYPTED PRIVATE KEY");
    assert!(!doc.as_bytes().windows(32).any(|w| w == seed()));
    // PBES2 (RFC 8018) with scrypt at the documented cost and AES-256-CBC.
    let info = EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).unwrap();
    let pkcs8::pkcs5::EncryptionScheme::Pbes2(params) = info.encryption_algorithm else {
        panic!("not PBES2")
    };
    let kdf = params.kdf.scrypt().expect("scrypt");
    assert_eq!(kdf.cost_parameter, 1 << SCRYPT_LOG_N);
    assert_eq!((kdf.block_size, kdf.parallelization), (8, 1));
    assert_eq!(kdf.salt.len(), 16);
    assert!(matches!(
        params.encryption,
        pbes2::EncryptionScheme::Aes256Cbc { .. }
    ));
    // Fresh salt and IV each time: the same key twice gives different files.
    let again = dir.path().join("again.key");
    k.write_pem_protected(&again, &pass("s3cret")).unwrap();
    assert_ne!(std::fs::read_to_string(&again).unwrap(), text);
}

/// Files OpenSSL 3.0 wrote for the RFC 8032 key with passphrase "correct-horse-battery":
/// `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 2048` and
/// `openssl pkcs8 -topk8 -scrypt` (N = 16384, r = 8, p = 1).
#[test]
fn reads_openssl_encrypted_keys() {
    const PBKDF2: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgacspNnURZFAICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEDKcML9YKugcJCq86Dp2iJUEQElB
BJTZs7AAuvaeFuFK+YmYqhQk417GMtaCqombz6p8cUohk/Vz8494wy4KhilqxM5g
DvZ9ZWJkob92TcshpR4=
-----END ENCRYPTED PRIVATE KEY-----
";
    const SCRYPT: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----
MIGTME8GCSqGSIb3DQEFDTBCMCEGCSsGAQQB2kcECzAUBAh/MVv6REYjzQICQAAC
AQgCAQEwHQYJYIZIAWUDBAEqBBCAhl2DxskHRaK2kAX/f1IFBEDk+AN9ddS/nTS3
aSqaBdtJGe34UI5UxiZW3fw2rdMPuzoxnyFmk/Gogo4P+lkxYF1Y1pbXDI4e/Sg/
/0lzVU2o
-----END ENCRYPTED PRIVATE KEY-----
";
    let dir = tempfile::tempdir().unwrap();
    let expected = NodeKey::from_seed(&seed()).public();
    for (name, pem) in [("pbkdf2.key", PBKDF2), ("scrypt.key", SCRYPT)] {
        let path = dir.path().join(name);
        write_with_mode(&path, pem.as_bytes(), 0o600);
        let k = NodeKey::read_pem_protected(&path, &pass("correct-horse-battery")).unwrap();
        assert_eq!(k.public(), expected, "{name}");
        assert!(matches!(
            NodeKey::read_pem_protected(&path, &pass("correct-horse-batter")),
            Err(KeyFileError::WrongPassphrase { .. })
        ));
    }
}

#[test]
fn passphrase_from_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pass");
    write_with_mode(&file, b"from the file\n", 0o600);
    // Names unique to this test: tests run in parallel in one process.
    let set = "HCMR_TEST_KEYS_PASSPHRASE_ENV_SET";
    let unset = "HCMR_TEST_KEYS_PASSPHRASE_ENV_UNSET";
    let empty = "HCMR_TEST_KEYS_PASSPHRASE_ENV_EMPTY";
    std::env::set_var(set, "from the environment");
    std::env::remove_var(unset);
    std::env::set_var(empty, "");

    let got = |env, file| match KeyProtection::from_sources(env, file).unwrap() {
        KeyProtection::Passphrase(p) => Some(String::from_utf8(p.to_vec()).unwrap()),
        KeyProtection::Plain => None,
    };
    assert_eq!(
        got(Some(set), None).as_deref(),
        Some("from the environment")
    );
    // The variable wins over the file; an unset variable falls back to the file.
    assert_eq!(
        got(Some(set), Some(&file)).as_deref(),
        Some("from the environment")
    );
    assert_eq!(
        got(Some(unset), Some(&file)).as_deref(),
        Some("from the file")
    );
    assert_eq!(got(None, None), None);
    // A configured variable that is not set (and no file) is an error, never plain keys.
    let err = KeyProtection::from_sources(Some(unset), None).unwrap_err();
    assert!(
        matches!(err, KeyFileError::PassphraseUnset { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("{unset} (key_passphrase_env) is not set")),
        "{err}"
    );

    let err = KeyProtection::from_sources(Some(empty), Some(&file)).unwrap_err();
    assert!(
        matches!(err, KeyFileError::EmptyPassphrase { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(empty), "{err}");

    // And it decrypts what it encrypted.
    let key_file = dir.path().join("node.key");
    let p = KeyProtection::from_sources(Some(set), None).unwrap();
    let k = NodeKey::generate();
    k.write_pem_protected(&key_file, &p).unwrap();
    assert_eq!(
        NodeKey::read_pem_protected(&key_file, &pass("from the environment"))
            .unwrap()
            .public(),
        k.public()
    );
    std::env::remove_var(set);
    std::env::remove_var(empty);
}

#[test]
fn passphrase_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pass");
    for (content, expected) in [
        (&b"hunter2 hunter2\n"[..], &b"hunter2 hunter2"[..]),
        (b"hunter2\r\n", b"hunter2"),
        (b"hunter2\n\n", b"hunter2"),
        (b"no newline", b"no newline"),
        (b" spaces kept \n", b" spaces kept "),
        (b"\xff\xfe not utf-8\n", b"\xff\xfe not utf-8"),
    ] {
        let _ = std::fs::remove_file(&f);
        write_with_mode(&f, content, 0o600);
        match KeyProtection::from_sources(None, Some(&f)).unwrap() {
            KeyProtection::Passphrase(p) => assert_eq!(p.as_slice(), expected),
            KeyProtection::Plain => panic!("plain"),
        }
    }
    // Owner read-only is fine too.
    std::fs::remove_file(&f).unwrap();
    write_with_mode(&f, b"read only\n", 0o400);
    assert!(KeyProtection::from_sources(None, Some(&f))
        .unwrap()
        .is_encrypted());

    let empty = dir.path().join("empty");
    write_with_mode(&empty, b"\n", 0o600);
    let err = KeyProtection::from_sources(None, Some(&empty)).unwrap_err();
    assert!(
        matches!(err, KeyFileError::EmptyPassphrase { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&empty.display().to_string()),
        "{err}"
    );

    let missing = dir.path().join("missing");
    let err = KeyProtection::from_sources(None, Some(&missing)).unwrap_err();
    assert!(matches!(err, KeyFileError::PassphraseIo { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let long = dir.path().join("long");
    write_with_mode(&long, &[b'a'; 5000], 0o600);
    assert!(matches!(
        KeyProtection::from_sources(None, Some(&long)),
        Err(KeyFileError::PassphraseIo { .. })
    ));
}

#[cfg(unix)]
#[test]
fn passphrase_file_open_to_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pass");
    for mode in [0o644, 0o640, 0o604, 0o620, 0o660] {
        let _ = std::fs::remove_file(&f);
        write_with_mode(&f, b"hunter2\n", mode);
        let err = KeyProtection::from_sources(None, Some(&f)).unwrap_err();
        match &err {
            KeyFileError::PassphraseFileMode { mode: m, .. } => assert_eq!(*m, mode),
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&f.display().to_string()), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }
}

#[test]
fn passphrase_never_shown() {
    let p = pass("do-not-print-me");
    assert_eq!(format!("{p:?}"), "Passphrase(<redacted>)");
    assert_eq!(format!("{:?}", KeyProtection::Plain), "Plain");
}

/// A PKCS#8 v1 ECDSA P-256 key (RFC 5915 inside RFC 5958) with an `attributes` field, built by
/// hand: the generic functions must store and return these exact bytes.
fn arbitrary_pkcs8() -> Vec<u8> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 128);
        let mut v = vec![tag, content.len() as u8];
        v.extend_from_slice(content);
        v
    }
    let ec_public_key = tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
    let prime256v1 = tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    let algorithm = tlv(0x30, &[ec_public_key, prime256v1].concat());
    let ec_private_key = tlv(0x30, &[tlv(0x02, &[1]), tlv(0x04, &[0x5a; 32])].concat());
    let attributes = tlv(0xa0, &[]);
    tlv(
        0x30,
        &[
            tlv(0x02, &[0]),
            algorithm,
            tlv(0x04, &ec_private_key),
            attributes,
        ]
        .concat(),
    )
}

#[test]
fn generic_pkcs8_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let der = arbitrary_pkcs8();
    for (name, p) in [
        ("plain.key", KeyProtection::Plain),
        ("enc.key", pass("tls key pass")),
    ] {
        let path = dir.path().join(name);
        write_pkcs8_pem(&path, &der, &p).unwrap();
        #[cfg(unix)]
        assert_eq!(mode_of(&path), 0o600, "{name}");
        let text = std::fs::read_to_string(&path).unwrap();
        let label = if p.is_encrypted() {
            "ENCRYPTED PRIVATE KEY"
        } else {
            "PRIVATE KEY"
        };
        assert!(
            text.starts_with(&format!("-----BEGIN {label}-----\n")),
            "{text}"
        );
        let back = read_pkcs8_der(&path, &p).unwrap();
        assert_eq!(back.as_slice(), der.as_slice(), "{name}");
        assert!(matches!(
            write_pkcs8_pem(&path, &der, &p),
            Err(KeyFileError::Io { .. })
        ));
        // Not an Ed25519 key: the node-key reader says so.
        assert!(matches!(
            NodeKey::read_pem_protected(&path, &p),
            Err(KeyFileError::BadKeyFile { .. })
        ));
    }
    // Only PKCS#8 is written, and nothing is created otherwise.
    let bad = dir.path().join("bad.key");
    assert!(matches!(
        write_pkcs8_pem(&bad, b"\x30\x03\x02\x01\x05", &KeyProtection::Plain),
        Err(KeyFileError::BadPkcs8File { .. })
    ));
    assert!(!bad.exists());
}

#[test]
fn other_pem_and_garbage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    write_with_mode(
        &cert,
        b"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
        0o600,
    );
    let garbage = dir.path().join("garbage.key");
    write_with_mode(&garbage, b"not a key\n", 0o600);
    for path in [&cert, &garbage] {
        for p in [KeyProtection::Plain, pass("x")] {
            let err = read_pkcs8_der(path, &p).unwrap_err();
            assert!(matches!(err, KeyFileError::BadPkcs8File { .. }), "{err:?}");
            assert!(err.to_string().contains(&path.display().to_string()));
        }
    }
    let missing = dir.path().join("missing.key");
    assert!(matches!(
        NodeKey::read_pem(&missing),
        Err(KeyFileError::Io { .. })
    ));
}

#[test]
fn subject_keys_are_hex_in_plain_and_encrypted_pkcs8_under_a_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let key = crate::identity::SubjectKey::from_bytes([0x5a; 32]);
    let hash = |k: &crate::identity::SubjectKey| {
        k.subject_hash(
            crate::identity::DocumentType::ResidentIdentityCard,
            "11010519491231002X",
        )
    };
    let (plain, sealed) = (dir.path().join("plain.key"), dir.path().join("sealed.key"));

    // Plain: 64 hex digits and a line break, as hcmr has always written it.
    write_subject_key(&plain, &key, &KeyProtection::Plain).unwrap();
    assert_eq!(
        std::fs::read_to_string(&plain).unwrap(),
        format!("{}\n", "5a".repeat(32))
    );
    let (read, form) = read_subject_key(&plain, &KeyProtection::Plain).unwrap();
    assert_eq!((hash(&read), form), (hash(&key), SubjectKeyForm::Hex));
    // A hex file reads under a passphrase too (the node then rewrites it encrypted).
    let (_, form) = read_subject_key(&plain, &pass("pw")).unwrap();
    assert_eq!(form, SubjectKeyForm::Hex);
    assert!(matches!(
        write_subject_key(&plain, &key, &KeyProtection::Plain),
        Err(KeyFileError::Io { .. })
    ));

    // Under a passphrase: ENCRYPTED PRIVATE KEY; inside, a PKCS#8 hmacWithSHA256 key.
    write_subject_key(&sealed, &key, &pass("pw")).unwrap();
    let text = std::fs::read_to_string(&sealed).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
        "{text}"
    );
    assert!(!text.contains(&"5a".repeat(32)));
    let der = read_pkcs8_der(&sealed, &pass("pw")).unwrap();
    let info = PrivateKeyInfo::from_der(&der).unwrap();
    assert_eq!(info.algorithm.oid.to_string(), "1.2.840.113549.2.9");
    assert_eq!(info.private_key, [0x5a; 32]);
    let (read, form) = read_subject_key(&sealed, &pass("pw")).unwrap();
    assert_eq!((hash(&read), form), (hash(&key), SubjectKeyForm::Pkcs8));
    assert!(matches!(
        read_subject_key(&sealed, &pass("wrong")),
        Err(KeyFileError::WrongPassphrase { .. })
    ));
    assert!(matches!(
        read_subject_key(&sealed, &KeyProtection::Plain),
        Err(KeyFileError::Encrypted { .. })
    ));

    // Not a subject key: an Ed25519 key, short hex, a PEM of another kind.
    let ed = dir.path().join("ed.key");
    NodeKey::from_seed(&seed()).write_pem(&ed).unwrap();
    let e = read_subject_key(&ed, &KeyProtection::Plain)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected hmacWithSHA256"), "{e}");
    for (name, body) in [
        ("short.key", "5a5a\n".to_string()),
        (
            "cert.key",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
        ),
    ] {
        let f = dir.path().join(name);
        write_with_mode(&f, body.as_bytes(), 0o600);
        assert!(
            matches!(
                read_subject_key(&f, &KeyProtection::Plain),
                Err(KeyFileError::BadPkcs8File { .. })
            ),
            "{name}"
        );
    }
}

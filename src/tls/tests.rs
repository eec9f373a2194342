use arc_swap::ArcSwap;
use rustls::pki_types::UnixTime;

use super::config::{spki_of, unix};
use super::*;

fn key(n: u8) -> NodeKey {
    NodeKey::from_seed(&[n; 32])
}

fn sichuan() -> Province {
    Province::from_code(510000).unwrap()
}

const NOW: i64 = 1_800_000_000;

fn names() -> Vec<String> {
    certificate_names(Some("https://hcmr.sc.example:7510"))
}

#[test]
fn names_hold_loopback_and_the_endpoint_host() {
    assert_eq!(
        names(),
        vec!["localhost", "127.0.0.1", "::1", "hcmr.sc.example"]
    );
    assert_eq!(certificate_names(None).len(), 3);
    assert_eq!(certificate_names(Some("https://127.0.0.1:1")).len(), 3);
}

#[test]
fn binding_message_known_answer() {
    // context || "510000" || SHA-256("") (FIPS 180-2).
    let m = binding_message(sichuan(), b"");
    assert_eq!(&m[..20], b"hcmr-tls-binding-v1\0");
    assert_eq!(&m[20..26], b"510000");
    assert_eq!(
        hex::encode(&m[26..]),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn binding_round_trip_and_refusals() {
    let b = Binding {
        replica: false,
        province: sichuan(),
        certifications: vec![certify(&key(1), sichuan(), b"spki")],
    };
    assert_eq!(Binding::decode(&b.encode()).unwrap(), b);
    // Not an array; wrong version; no certification; a short signature.
    for bad in [
        vec![0x01],
        crate::cbor::encode(&Value::Array(vec![
            Value::Integer(2.into()),
            Value::Text("510000".into()),
            Value::Array(vec![]),
        ])),
        crate::cbor::encode(&Value::Array(vec![
            Value::Integer(1.into()),
            Value::Text("510000".into()),
            Value::Array(vec![]),
        ])),
        crate::cbor::encode(&Value::Array(vec![
            Value::Integer(1.into()),
            Value::Text("510000".into()),
            Value::Array(vec![Value::Array(vec![
                Value::Bytes(key(1).public().to_bytes().to_vec()),
                Value::Bytes(vec![0; 63]),
            ])]),
        ])),
    ] {
        assert!(matches!(
            Binding::decode(&bad),
            Err(TlsError::BadBinding(_))
        ));
    }
}

#[test]
fn a_generated_certificate_proves_its_province_and_key() {
    let id = TlsIdentity::generate(sichuan(), &key(1), &names(), NOW).unwrap();
    let peer = check_node_certificate(id.certificate_der(), NOW).unwrap();
    assert_eq!(peer.province, sichuan());
    assert_eq!(peer.keys, vec![key(1).public()]);
    assert!(peer.certified_by_any(&[key(2).public(), key(1).public()]));
    assert!(!peer.certified_by_any(&[key(2).public()]));
    // Valid for five years from a day before.
    assert!(matches!(
        check_node_certificate(id.certificate_der(), NOW + 6 * 365 * 86_400),
        Err(TlsError::Expired { .. })
    ));
    assert!(matches!(
        check_node_certificate(id.certificate_der(), NOW - 2 * 86_400),
        Err(TlsError::Expired { .. })
    ));
    // rustls takes the key.
    id.certified_key().unwrap();
}

#[test]
fn a_certification_over_another_tls_key_is_refused() {
    // Copy the binding of one certificate into a certificate for another TLS key: the
    // certification no longer matches the SubjectPublicKeyInfo.
    let a = TlsIdentity::generate(sichuan(), &key(1), &names(), NOW).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(a.certificate_der()).unwrap();
    let oid = x509_parser::oid_registry::Oid::from(BINDING_OID).unwrap();
    let ext = parsed.extensions().iter().find(|e| e.oid == oid).unwrap();
    let stolen = Binding::decode(ext.value).unwrap();
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let der = self_sign(&other, sichuan(), &names(), &stolen, NOW).unwrap();
    match check_node_certificate(&der, NOW) {
        Err(TlsError::ForgedCertification { kid }) => assert_eq!(kid, key(1).kid().to_string()),
        other => panic!("expected ForgedCertification, got {other:?}"),
    }
}

#[test]
fn a_certificate_without_binding_or_garbage_is_refused() {
    let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let plain = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&k)
        .unwrap();
    assert!(matches!(
        check_node_certificate(plain.der(), 1_800_000_000),
        Err(TlsError::NoBinding { .. }) | Err(TlsError::Expired { .. })
    ));
    assert!(matches!(
        check_node_certificate(b"\x30\x03\x02\x01\x00", NOW),
        Err(TlsError::BadCertificate(_))
    ));
    assert!(matches!(
        check_node_certificate(&vec![0x30; MAX_CERT_BYTES + 1], NOW),
        Err(TlsError::BadCertificate(_))
    ));
    let id = TlsIdentity::generate(sichuan(), &key(1), &names(), NOW).unwrap();
    let mut trailing = id.certificate_der().to_vec();
    trailing.push(0);
    assert!(matches!(
        check_node_certificate(&trailing, NOW),
        Err(TlsError::BadCertificate(_))
    ));
}

#[test]
fn recertification_adds_the_new_key_and_keeps_the_newest_eight() {
    let id = TlsIdentity::generate(sichuan(), &key(1), &names(), NOW).unwrap();
    let rotated = id.recertified(&key(2), NOW + 10).unwrap();
    let peer = check_node_certificate(rotated.certificate_der(), NOW + 10).unwrap();
    assert_eq!(peer.keys, vec![key(1).public(), key(2).public()]);
    // Same TLS key, same names.
    let spki = |d: &[u8]| spki_of(d).unwrap();
    assert_eq!(spki(id.certificate_der()), spki(rotated.certificate_der()));
    let (_, c) = x509_parser::parse_x509_certificate(rotated.certificate_der()).unwrap();
    let san = c.subject_alternative_name().unwrap().unwrap();
    assert_eq!(san.value.general_names.len(), names().len());
    // Re-certifying by the same key does not duplicate it; ten rotations keep eight.
    let again = rotated.recertified(&key(2), NOW + 20).unwrap();
    let peer = check_node_certificate(again.certificate_der(), NOW + 20).unwrap();
    assert_eq!(peer.keys, vec![key(1).public(), key(2).public()]);
    let mut id = again;
    for n in 3..=12 {
        id = id.recertified(&key(n), NOW + 30).unwrap();
    }
    let peer = check_node_certificate(id.certificate_der(), NOW + 30).unwrap();
    assert_eq!(peer.keys.len(), 8);
    assert_eq!(peer.keys.last(), Some(&key(12).public()));
}

#[test]
fn save_and_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let id = TlsIdentity::generate(sichuan(), &key(1), &names(), NOW).unwrap();
    let (c, k) = (dir.path().join("node.crt"), dir.path().join("node.key"));
    id.save(&c, Some(&k), &KeyProtection::Plain).unwrap();
    let back = TlsIdentity::load(&c, &k, &KeyProtection::Plain).unwrap();
    assert_eq!(back.certificate_der(), id.certificate_der());
    assert_eq!(
        read_certificates(&c).unwrap(),
        vec![id.certificate_der().to_vec()]
    );
    pinned_client_config(&c).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

/// A TLS pair on loopback, both ends wrapped in `stream::Coalesced`: writes of every size,
/// large ones past the high water mark and rustls' own buffer limit, arrive whole and in order
/// after a flush, in both directions.
#[tokio::test]
async fn coalesced_streams_carry_every_byte_in_order() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let id = TlsIdentity::generate(sichuan(), &key(1), &names(), unix(UnixTime::now())).unwrap();
    let c = dir.path().join("node.crt");
    id.save(&c, None, &KeyProtection::Plain).unwrap();
    let source = Arc::new(CertSource(ArcSwap::new(id.certified_key().unwrap())));
    let server_config = server_config(source, &[b"h2"]).unwrap();
    let client_config = pinned_client_config(&c).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // 1 MiB and a few odd sizes, with a pattern that shows reordering or loss.
    let sizes = [1usize, 7, 16_384, 70_000, 1 << 20, 3];
    let message: Vec<u8> = (0..sizes.iter().sum::<usize>())
        .map(|i| (i % 251) as u8)
        .collect();
    let expect = message.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = tokio_rustls::TlsAcceptor::from(server_config)
            .accept(tcp)
            .await
            .unwrap();
        let mut s = stream::Coalesced::new(tls);
        let mut got = vec![0u8; expect.len()];
        s.read_exact(&mut got).await.unwrap();
        assert!(
            got == expect,
            "the server read other bytes than were written"
        );
        // Echo back in one write, then close.
        s.write_all(&got).await.unwrap();
        s.flush().await.unwrap();
        s.shutdown().await.unwrap();
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config)
        .connect(name, tcp)
        .await
        .unwrap();
    let mut s = stream::Coalesced::new(tls);
    let mut at = 0;
    for n in sizes {
        s.write_all(&message[at..at + n]).await.unwrap();
        at += n;
    }
    s.flush().await.unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.unwrap();
    assert_eq!(back.len(), message.len());
    assert!(back == message, "the echo differs");
    server.await.unwrap();
}

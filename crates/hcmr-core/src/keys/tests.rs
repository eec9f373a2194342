//! Tests of the key types: known answers, weak keys.

use super::*;

#[test]
fn kid_is_sha256_prefix() {
    // RFC 8032 section 7.1 test 1 key pair.
    let seed: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
    let k = NodeKey::from_seed(&seed);
    assert_eq!(
        hex::encode(k.public().to_bytes()),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    let digest = Sha256::digest(k.public().to_bytes());
    assert_eq!(k.kid().0, digest[..8]);
    let sig = k.sign(b"");
    assert_eq!(hex::encode(sig), "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    assert!(verify_signature(&k.public(), b"", &sig));
    assert!(!verify_signature(&k.public(), b"x", &sig));
    assert!(!verify_signature(&k.public(), b"", &sig[..63]));
}

#[test]
fn rejects_bad_public_keys() {
    assert!(PublicKey::from_bytes(&[0u8; 31]).is_err());
    // The identity point is small-order (weak).
    let mut id = [0u8; 32];
    id[0] = 1;
    assert!(PublicKey::from_bytes(&id).is_err());
}

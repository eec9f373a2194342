//! Validation of agreement bodies: provinces, keys, directions, windows, ages, ids.

use super::*;

#[test]
fn validate_same_province() {
    let mut b = body();
    b.acceptor.province = prov(SC);
    assert_eq!(b.validate(), Err(AgreementError::SameProvince));
}

#[test]
fn validate_bad_keys() {
    let mut b = body();
    b.proposer.keys.clear();
    assert_eq!(b.validate(), Err(AgreementError::BadKeys(prov(SC))));

    let nine: Vec<PublicKey> = (1..=9).map(|n| key(n).public()).collect();
    let b = body_with(vec![sc_key().public()], nine.clone());
    assert_eq!(b.validate(), Err(AgreementError::BadKeys(prov(GD))));
    // Eight distinct keys are the most allowed.
    let b = body_with(vec![sc_key().public()], nine[..8].to_vec());
    assert_eq!(b.validate(), Ok(()));

    let b = body_with(
        vec![sc_key().public(), key(7).public(), sc_key().public()],
        vec![gd_key().public()],
    );
    assert_eq!(b.validate(), Err(AgreementError::BadKeys(prov(SC))));
    assert_eq!(
        SignedAgreement::propose(b, &sc_key()).unwrap_err(),
        AgreementError::BadKeys(prov(SC))
    );
}

#[test]
fn validate_bad_directions() {
    let mut b = body();
    b.directions.pop();
    assert_eq!(b.validate(), Err(AgreementError::BadDirections));

    let mut b = body();
    b.directions[1] = b.directions[0].clone();
    assert_eq!(b.validate(), Err(AgreementError::BadDirections));

    let mut b = body();
    b.directions.clear();
    assert_eq!(b.validate(), Err(AgreementError::BadDirections));

    let mut b = body();
    let extra = b.directions[0].clone();
    b.directions.push(extra);
    assert_eq!(b.validate(), Err(AgreementError::BadDirections));

    // A direction involving a third province.
    let mut b = body();
    b.directions[1].issuer = prov(JS);
    assert_eq!(b.validate(), Err(AgreementError::BadDirections));
}

#[test]
fn validate_bad_window() {
    let mut b = body();
    b.directions[1].effective_until = b.directions[1].effective_from;
    assert_eq!(
        b.validate(),
        Err(AgreementError::BadWindow(prov(GD), prov(SC)))
    );
    let mut b = body();
    b.directions[0].effective_from = UNTIL + 1;
    assert_eq!(
        b.validate(),
        Err(AgreementError::BadWindow(prov(SC), prov(GD)))
    );
    // A one-second window is fine.
    let mut b = body();
    b.directions[0].effective_until = FROM + 1;
    assert_eq!(b.validate(), Ok(()));
}

#[test]
fn validate_bad_max_age() {
    let mut b = body();
    b.directions[1].max_code_age_secs = 0;
    assert_eq!(
        b.validate(),
        Err(AgreementError::BadMaxAge(prov(GD), prov(SC)))
    );
}

// --- signatures ---

// --- windows and ids ---

#[test]
fn window_edges() {
    let d = &body().directions[0];
    assert_eq!(d.window(UnixTime::EPOCH), Window::NotYetInForce);
    assert_eq!(d.window(FROM - 1), Window::NotYetInForce);
    assert_eq!(d.window(FROM), Window::InForce);
    assert_eq!(d.window(UNTIL - 1), Window::InForce);
    assert_eq!(d.window(UNTIL), Window::Expired);
    assert_eq!(d.window(UnixTime::from_secs(u64::MAX)), Window::Expired);
}

#[test]
fn agreement_ids() {
    let id = AgreementId::from_hex(" 00112233445566778899AABBCCDDEEFF\n").unwrap();
    assert_eq!(id.0[15], 0xff);
    assert_eq!(id.to_string(), "00112233445566778899aabbccddeeff");
    assert_eq!(
        format!("{id:?}"),
        "AgreementId(00112233445566778899aabbccddeeff)"
    );
    for bad in [
        "",
        "0011",
        "00112233445566778899aabbccddeeff00",
        "zz112233445566778899aabbccddeeff",
    ] {
        assert_eq!(
            AgreementId::from_hex(bad),
            Err(AgreementError::BadId(bad.to_string()))
        );
    }
    assert_ne!(AgreementId::generate(), AgreementId::generate());
}

#[test]
fn validate_refuses_a_mapping_that_lowers_severity() {
    use crate::status::HealthStatus::{Green, Red, Yellow};
    let mut b = kat_body();
    b.directions[0].status_map = [(Green, Green), (Red, Green)].into();
    let (issuer, verifier) = (b.directions[0].issuer, b.directions[0].verifier);
    assert_eq!(
        b.validate(),
        Err(AgreementError::LowersSeverity(issuer, verifier, Red, Green))
    );
    b.directions[0].status_map = [(Yellow, Green)].into();
    assert_eq!(
        b.validate(),
        Err(AgreementError::LowersSeverity(
            issuer, verifier, Yellow, Green
        ))
    );
    // Keeping or raising is fine (Guangdong counts yellow as red).
    b.directions[0].status_map = [(Green, Green), (Yellow, Red), (Red, Red)].into();
    assert_eq!(b.validate(), Ok(()));
}

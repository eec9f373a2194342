//! Hostile-input corpus: a table of named, generated inputs, each with the exact error or
//! verification reason it must produce, run through the public API only. Every case runs inside
//! `catch_unwind`; stateful cases (FeedState, TrustSnapshot) also check that nothing changed.

use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use ciborium::value::{Integer, Value};

use hcmr::agreement::{
    AgreementBody, AgreementError, AgreementId, AgreementSignature, DirectionTerms, Party,
    SignedAgreement,
};
use hcmr::bundle::{BundleContent, BundleError, TrustAnchor};
use hcmr::code::{transport, Claims, HealthCode, Subject};
use hcmr::feed::{proof_of_possession, FeedEntry, FeedError, FeedState, Statement};
use hcmr::identity::{DocumentType, SubjectHash};
use hcmr::keys::{NodeKey, PublicKey};
use hcmr::province::Province;
use hcmr::status::HealthStatus::{self, Green, Red, Yellow};
use hcmr::trust::{Policy, TrustSnapshot};
use hcmr::verify::verify;

const NOW: u64 = 1_750_000_000;
const DAY: u64 = 86_400;
const SC: u32 = 510000;
const GD: u32 = 440000;

fn prov(code: u32) -> Province {
    Province::from_code(code).unwrap()
}
fn sc_key() -> NodeKey {
    NodeKey::from_seed(&[0x51; 32])
}
fn sc_key2() -> NodeKey {
    NodeKey::from_seed(&[0x52; 32])
}
fn gd_key() -> NodeKey {
    NodeKey::from_seed(&[0x44; 32])
}
fn stranger() -> NodeKey {
    NodeKey::from_seed(&[0x99; 32])
}

// ---------------------------------------------------------------- trust fixtures

fn direction(
    issuer: u32,
    verifier: u32,
    status_map: BTreeMap<HealthStatus, HealthStatus>,
) -> DirectionTerms {
    DirectionTerms {
        issuer: prov(issuer),
        verifier: prov(verifier),
        status_map,
        max_code_age_secs: DAY,
        max_trust_age_secs: 0,
        effective_from: NOW - 30 * DAY,
        effective_until: NOW + 365 * DAY,
    }
}

/// Sichuan proposes, Guangdong accepts. Version 1 maps Sichuan's yellow to yellow; version 2
/// (an amendment) no longer recognizes Sichuan's yellow at all.
fn body(version: u32, sc_keys: Vec<PublicKey>) -> AgreementBody {
    let sc_gd: BTreeMap<_, _> = if version == 1 {
        [(Green, Green), (Yellow, Yellow), (Red, Red)].into()
    } else {
        [(Green, Green), (Red, Red)].into()
    };
    AgreementBody {
        id: AgreementId([0x5c; 16]),
        version,
        created_at: NOW - 31 * DAY + u64::from(version),
        proposer: Party {
            province: prov(SC),
            keys: sc_keys,
        },
        acceptor: Party {
            province: prov(GD),
            keys: vec![gd_key().public()],
        },
        directions: vec![
            direction(SC, GD, sc_gd),
            direction(GD, SC, [(Green, Green), (Red, Red)].into()),
        ],
    }
}

fn conclude(b: AgreementBody) -> SignedAgreement {
    let mut a = SignedAgreement::propose(b, &sc_key()).unwrap();
    a.accept(&gd_key()).unwrap();
    a
}

fn agreement(version: u32) -> SignedAgreement {
    conclude(body(version, vec![sc_key().public()]))
}

fn genesis(p: u32, key: &NodeKey) -> FeedEntry {
    FeedEntry::sign(
        prov(p),
        None,
        NOW - 40 * DAY,
        Statement::Genesis { key: key.public() },
        key,
    )
}

fn feed_of(p: u32, key: &NodeKey) -> FeedState {
    let mut f = FeedState::new(prov(p));
    f.apply(&genesis(p, key)).unwrap();
    f
}

fn gd_node(agreements: Vec<SignedAgreement>) -> TrustSnapshot {
    let mut t = TrustSnapshot::new(
        prov(GD),
        Arc::new(feed_of(GD, &gd_key())),
        Policy::default(),
    );
    for a in agreements {
        t.add_agreement(a).unwrap();
    }
    t
}

/// What a TrustSnapshot exposes about its agreements with Sichuan, for before/after comparison.
fn snapshot_view(t: &TrustSnapshot) -> Vec<(u32, Vec<u8>, bool)> {
    t.agreements_with(prov(SC))
        .iter()
        .map(|a| {
            (
                a.agreement.body().version,
                a.agreement.encoded().to_vec(),
                a.termination.is_some(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- code builders

fn claims() -> Claims {
    Claims {
        iss: "510000".into(),
        iat: NOW - 60,
        exp: NOW + 300,
        status: 1,
        status_valid_until: NOW + DAY,
        subject: Subject {
            masked_name: "张*三".into(),
            document_type: DocumentType::ResidentIdentityCard,
            masked_document_number: "5101*1234".into(),
            subject_hash: SubjectHash([0xa5; 8]),
        },
    }
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}
fn int(v: i64) -> Value {
    Value::Integer(Integer::from(v))
}
fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
/// `HCMR1:` + Base45 of raw bytes, built by hand.
fn b45(data: &[u8]) -> String {
    format!("HCMR1:{}", base45::encode(data))
}
/// `HCMR1:` + Base45 of COSE bytes (the transport; no compression).
fn wrap(cose: &[u8]) -> String {
    transport::wrap(cose)
}

fn std_protected(kid: &[u8]) -> Vec<(Value, Value)> {
    vec![(int(1), int(-8)), (int(4), bytes(kid))]
}

/// An untagged COSE_Sign1 (as hcmr writes it) with a protected header map of `prot` entries, signed by `key` over the
/// real Sig_structure.
fn sign1_with(
    prot: Vec<(Value, Value)>,
    unprot: Vec<(Value, Value)>,
    payload: &[u8],
    key: &NodeKey,
) -> Vec<u8> {
    let prot_bytes = cbor(&Value::Map(prot));
    sign1_raw(&prot_bytes, unprot, Some(payload), key, None)
}

fn sign1_raw(
    prot_bytes: &[u8],
    unprot: Vec<(Value, Value)>,
    payload: Option<&[u8]>,
    key: &NodeKey,
    sig_override: Option<Vec<u8>>,
) -> Vec<u8> {
    let tbs = cbor(&Value::Array(vec![
        Value::Text("Signature1".into()),
        bytes(prot_bytes),
        bytes(b""),
        bytes(payload.unwrap_or(b"")),
    ]));
    let sig = sig_override.unwrap_or_else(|| key.sign(&tbs).to_vec());
    cbor(&Value::Array(vec![
        bytes(prot_bytes),
        Value::Map(unprot),
        payload.map_or(Value::Null, bytes),
        bytes(&sig),
    ]))
}

/// A standard, correctly signed code of `payload` by the Sichuan key.
fn signed_payload(payload: &[u8]) -> String {
    let k = sc_key();
    wrap(&sign1_with(std_protected(&k.kid().0), vec![], payload, &k))
}

fn good_cose() -> Vec<u8> {
    hcmr::code::cose::sign(claims().to_cbor(), &sc_key()).bytes
}
fn good_code() -> String {
    hcmr::code::encode(&claims(), &sc_key())
}

fn claims_map() -> Vec<(Value, Value)> {
    let v: Value = ciborium::from_reader(claims().to_cbor().as_slice()).unwrap();
    match v {
        Value::Map(m) => m,
        _ => unreachable!(),
    }
}
fn set(map: &mut [(Value, Value)], key: i64, v: Value) {
    for (k, old) in map.iter_mut() {
        if *k == int(key) {
            *old = v;
            return;
        }
    }
    panic!("no key {key}");
}
/// Claims with the top-level claim `key` set to `v`.
fn with_claim(key: i64, v: Value) -> String {
    let mut m = claims_map();
    set(&mut m, key, v);
    signed_payload(&cbor(&Value::Map(m)))
}
/// Claims with element `i` of the body array set to `v`: 0 status, 1 status valid until,
/// 2 masked name, 3 document type, 4 masked document number, 5 subject hash.
fn with_body(i: usize, v: Value) -> String {
    with_body_items(|items| items[i] = v)
}
/// Claims whose body array `edit` changed.
fn with_body_items(edit: impl FnOnce(&mut Vec<Value>)) -> String {
    let mut m = claims_map();
    let body = m
        .iter_mut()
        .find_map(|(k, v)| match v {
            Value::Array(items) if *k == int(-38962) => Some(items),
            _ => None,
        })
        .expect("the body array");
    edit(body);
    signed_payload(&cbor(&Value::Map(m)))
}

/// A correctly signed code whose protected header marks `label` critical (and carries it).
fn crit_code(label: Value) -> String {
    let k = sc_key();
    let mut p = std_protected(&k.kid().0);
    p.push((int(2), Value::Array(vec![label.clone()])));
    if label != int(4) {
        p.push((label, int(1)));
    }
    wrap(&sign1_with(p, vec![], &claims().to_cbor(), &k))
}

/// Flips bit 0 of COSE byte `i` and re-wraps.
fn flip(mut cose: Vec<u8>, i: usize) -> String {
    cose[i] ^= 0x01;
    wrap(&cose)
}
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("sub-slice present")
}

// ---------------------------------------------------------------- outcomes

fn decode_outcome(s: &str) -> String {
    match HealthCode::decode(s) {
        Ok(_) => "decoded".into(),
        Err(e) => e.code().into(),
    }
}

/// The verdict at Guangdong's node (concluded v1 agreement with Sichuan). Never recognized
/// with a status unless the reason is ok.
fn verify_outcome_at(s: &str, node: &TrustSnapshot) -> String {
    let v = verify(s, node, NOW);
    assert_eq!(v.recognized(), v.local_status.is_some());
    if v.reason == hcmr::verify::Reason::Malformed {
        assert!(!v.signature_verified);
    }
    v.reason.as_str().into()
}
fn verify_outcome(s: &str) -> String {
    verify_outcome_at(s, &gd_node(vec![agreement(1)]))
}

fn agreement_err(r: Result<(), AgreementError>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn feed_err(e: &FeedError) -> String {
    match e {
        FeedError::Decode(_) => "Decode".into(),
        FeedError::WrongProvince { .. } => "WrongProvince".into(),
        FeedError::Gap { expected, got } => format!("Gap({expected},{got})"),
        FeedError::BrokenChain(s) => format!("BrokenChain({s})"),
        FeedError::BadSignature(s) => format!("BadSignature({s})"),
        FeedError::BadGenesis(s) => format!("BadGenesis({s})"),
        FeedError::BadRotation(s) => format!("BadRotation({s})"),
        FeedError::BadWithdrawal(s) => format!("BadWithdrawal({s})"),
        FeedError::TimeWentBack(s) => format!("TimeWentBack({s})"),
        FeedError::BadStatement(s, _) => format!("BadStatement({s})"),
        FeedError::NotAnchored(_) => "NotAnchored".into(),
    }
}

/// Applies `entries` as one batch to Sichuan's genesis-only feed (plus `pre` applied first);
/// reports the error, and "STATE CHANGED" if a refused batch altered the state.
fn feed_outcome(pre: &[FeedEntry], entries: &[FeedEntry]) -> String {
    let mut state = feed_of(SC, &sc_key());
    state.apply_all(pre).unwrap();
    let before = state.clone();
    match state.apply_all(entries) {
        Ok(()) => "ok".into(),
        Err(e) => {
            if state != before {
                return format!("{} STATE CHANGED", feed_err(&e));
            }
            feed_err(&e)
        }
    }
}

fn bundle_err(r: Result<(BundleContent, TrustSnapshot), BundleError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(BundleError::Malformed(_)) => "Malformed".into(),
        Err(BundleError::Truncated(_)) => "Truncated".into(),
        Err(BundleError::UntrustedSigner { .. }) => "UntrustedSigner".into(),
        Err(BundleError::BadSignature) => "BadSignature".into(),
        Err(BundleError::TooOld { .. }) => "TooOld".into(),
        Err(BundleError::FromTheFuture) => "FromTheFuture".into(),
        Err(BundleError::BadContent(_)) => "BadContent".into(),
    }
}

fn gd_bundle_content() -> BundleContent {
    BundleContent {
        province: prov(GD),
        exported_at: NOW - 60,
        policy: Policy::default(),
        own_feed: vec![genesis(GD, &gd_key())],
        peers: vec![(prov(SC), NOW - 120, vec![genesis(SC, &sc_key())])],
        agreements: vec![agreement(1)],
        terminations: vec![],
    }
}
fn open_gd(bytes: &[u8]) -> String {
    bundle_err(hcmr::bundle::open(
        bytes,
        TrustAnchor::Key(gd_key().public()),
        NOW,
        DAY,
    ))
}

/// An agreement whose given signature is replaced; the other is genuine.
fn forge(
    a: &SignedAgreement,
    proposer: Option<AgreementSignature>,
    acceptor: Option<AgreementSignature>,
) -> SignedAgreement {
    SignedAgreement::from_parts(
        a.encoded().to_vec(),
        proposer.or(a.proposer_signature),
        acceptor.or(a.acceptor_signature),
    )
    .unwrap()
}

/// Adds a hostile agreement to Guangdong's node: the result, plus "STATE CHANGED" if the
/// snapshot's agreements or the verdict of a Sichuan yellow code changed.
fn add_to_gd(base: Vec<SignedAgreement>, hostile: SignedAgreement) -> String {
    let mut node = gd_node(base);
    let yellow = hcmr::code::encode(
        &Claims {
            status: 2,
            ..claims()
        },
        &sc_key(),
    );
    let before = (snapshot_view(&node), verify(&yellow, &node, NOW));
    let r = agreement_err(node.add_agreement(hostile));
    let after = (snapshot_view(&node), verify(&yellow, &node, NOW));
    if before != after {
        return format!("{r} STATE CHANGED");
    }
    r
}

// ---------------------------------------------------------------- the table

type Run = Box<dyn Fn() -> String>;

fn case(
    name: &'static str,
    expected: &'static str,
    run: impl Fn() -> String + 'static,
) -> (&'static str, &'static str, Run) {
    (name, expected, Box::new(run))
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<(&'static str, &'static str, Run)> {
    let mut v = Vec::new();

    // --- prefix ---
    v.push(case("prefix: empty", "prefix.empty", || decode_outcome("")));
    v.push(case("prefix: only CR LF tab", "prefix.empty", || {
        decode_outcome("\r\n\t")
    }));
    v.push(case("prefix: missing", "prefix.missing", || {
        decode_outcome(&good_code()["HCMR1:".len()..])
    }));
    v.push(case("prefix: lower case", "prefix.missing", || {
        decode_outcome(&good_code().replacen("HCMR1:", "hcmr1:", 1))
    }));
    v.push(case("prefix: EU DCC HC1", "prefix.foreign", || {
        decode_outcome(&good_code().replacen("HCMR1:", "HC1:", 1))
    }));
    v.push(case("prefix: other hcmr version", "prefix.foreign", || {
        decode_outcome(&good_code().replacen("HCMR1:", "HCMR2:", 1))
    }));
    v.push(case("prefix: SMART health card", "prefix.foreign", || {
        decode_outcome("shc:/5676290952432060346029243740446031222959532654603460292540772804")
    }));
    v.push(case(
        "prefix: appears later in the string",
        "prefix.missing",
        || decode_outcome(&format!("X{}", good_code())),
    ));

    // --- oversized ---
    v.push(case("size: 4097 characters", "prefix.too_long", || {
        decode_outcome(&format!("HCMR1:{}", "0".repeat(4097 - 6)))
    }));
    v.push(case(
        "size: 1 MB of multibyte characters",
        "prefix.too_long",
        || decode_outcome(&format!("HCMR1:{}", "码".repeat(1 << 18))),
    ));

    // --- Base45 ---
    v.push(case(
        "base45: lower-case letter",
        "base45.character",
        || decode_outcome("HCMR1:abc"),
    ));
    v.push(case(
        "base45: non-ASCII character",
        "base45.character",
        || decode_outcome("HCMR1:00Ä"),
    ));
    v.push(case("base45: NUL byte", "base45.character", || {
        decode_outcome("HCMR1:00\0")
    }));
    v.push(case(
        "base45: invalid char deep in a valid code",
        "base45.character",
        || {
            let mut s = good_code();
            s.replace_range(40..41, "=");
            decode_outcome(&s)
        },
    ));
    v.push(case("base45: length % 3 == 1", "base45.length", || {
        decode_outcome("HCMR1:0000")
    }));
    v.push(case(
        "base45: triplet GGW = 65536",
        "base45.overflow",
        || decode_outcome("HCMR1:GGW"),
    ));
    v.push(case(
        "base45: triplet ::: = 91124",
        "base45.overflow",
        || decode_outcome("HCMR1:000:::"),
    ));
    v.push(case(
        "base45: final pair :: > 255",
        "base45.overflow",
        || decode_outcome("HCMR1:000::"),
    ));
    v.push(case(
        "base45: bytes > 0x7F decode, then not CBOR",
        "cbor.malformed",
        || decode_outcome(&b45(&[0xff, 0xfe, 0x80, 0x81])),
    ));
    v.push(case(
        "size: 1025 decoded bytes, just over the cap",
        "base45.too_large",
        || decode_outcome(&b45(&[0u8; 1025])),
    ));
    v.push(case(
        "size: valid code with 1024 bytes appended",
        "base45.too_large",
        || decode_outcome(&wrap(&[good_cose(), vec![0u8; 1024]].concat())),
    ));

    // --- truncation ---
    v.push(case("cut: string loses 1 char", "base45.length", || {
        let s = good_code();
        let mut cut = s.len() - 1;
        while (cut - 6) % 3 != 1 {
            cut -= 1;
        }
        decode_outcome(&s[..cut])
    }));
    v.push(case(
        "cut: string loses its last byte (2 chars)",
        "cbor.malformed",
        || {
            let s = good_code();
            assert_eq!((s.len() - 6) % 3, 2, "141 COSE bytes end in a pair");
            let cut = s.len() - 2;
            decode_outcome(&s[..cut])
        },
    ));
    v.push(case("cut: prefix without colon", "prefix.foreign", || {
        decode_outcome("HCMR1")
    }));
    v.push(case("cut: prefix, no body", "cbor.malformed", || {
        decode_outcome("HCMR1:")
    }));
    v.push(case(
        "cut: COSE cut (signature short)",
        "cbor.malformed",
        || {
            let c = good_cose();
            decode_outcome(&wrap(&c[..c.len() - 10]))
        },
    ));
    v.push(case("cut: COSE cut to tag only", "cbor.malformed", || {
        decode_outcome(&wrap(&[0xd2]))
    }));
    v.push(case(
        "cut: COSE cut to array head",
        "cbor.malformed",
        || decode_outcome(&wrap(&good_cose()[..1])),
    ));
    v.push(case(
        "cut: claims cut, signed as is",
        "cbor.malformed",
        || {
            let p = claims().to_cbor();
            decode_outcome(&signed_payload(&p[..p.len() - 5]))
        },
    ));

    // --- zlib: the first draft's compression is not part of the format ---
    v.push(case(
        "zlib: a valid code compressed is refused",
        "cbor.malformed",
        || decode_outcome(&b45(&zlib(&good_cose()))),
    ));
    v.push(case(
        "zlib: bomb (1 MiB of zeros), never inflated",
        "base45.too_large",
        || decode_outcome(&b45(&zlib(&vec![0u8; 1 << 20]))),
    ));
    v.push(case(
        "zlib: small stream of zeros, never inflated",
        "cbor.malformed",
        || decode_outcome(&b45(&zlib(&[0u8; 8193]))),
    ));

    // --- CBOR / COSE structure ---
    v.push(case(
        "cbor: trailing byte after COSE",
        "cbor.trailing",
        || {
            let mut c = good_cose();
            c.push(0x00);
            decode_outcome(&wrap(&c))
        },
    ));
    v.push(case("cbor: nesting 40 deep", "cbor.malformed", || {
        let mut c = vec![0x81u8; 40];
        c.push(0x00);
        decode_outcome(&wrap(&c))
    }));
    v.push(case(
        "cbor: reserved additional info 0x1c",
        "cbor.malformed",
        || decode_outcome(&wrap(&[0x1c])),
    ));
    v.push(case(
        "cbor: indefinite COSE array without break",
        "cbor.malformed",
        || {
            let c = good_cose();
            // 84 ... -> 9f ... (no 0xff break)
            let mut x = c.clone();
            x[0] = 0x9f;
            decode_outcome(&wrap(&x))
        },
    ));
    v.push(case(
        "cbor: huge declared bstr length",
        "cbor.malformed",
        || {
            decode_outcome(&wrap(&[
                0xd2, 0x84, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ]))
        },
    ));
    v.push(case("cose: tag 61 around untagged", "cose.tag", || {
        let c = good_cose();
        let mut x = vec![0xd8, 0x3d];
        x.extend_from_slice(&c);
        decode_outcome(&wrap(&x))
    }));
    v.push(case("cose: tag 98 (COSE_Sign)", "cose.tag", || {
        let c = good_cose();
        let mut x = vec![0xd8, 0x62];
        x.extend_from_slice(&c);
        decode_outcome(&wrap(&x))
    }));
    // --- other encodings of a valid code (issue 15 fault 7): one code, one string ---
    v.push(case(
        "canonical: tag 18 (COSE_Sign1) around a valid code",
        "cose.tag",
        || decode_outcome(&wrap(&[&[0xd2][..], &good_cose()].concat())),
    ));
    v.push(case(
        "canonical: tag 61(18) (CWT) around a valid code",
        "cose.tag",
        || decode_outcome(&wrap(&[&[0xd8, 0x3d, 0xd2][..], &good_cose()].concat())),
    ));
    v.push(case(
        "canonical: tag 18 around a valid code is not recognized",
        "malformed",
        || verify_outcome(&wrap(&[&[0xd2][..], &good_cose()].concat())),
    ));
    let indefinite = |b: &[u8], head: u8| [&[head][..], &b[1..], &[0xff]].concat();
    v.push(case(
        "canonical: indefinite-length COSE array",
        "cbor.not_canonical",
        move || decode_outcome(&wrap(&indefinite(&good_cose(), 0x9f))),
    ));
    v.push(case(
        "canonical: chunked payload",
        "cbor.not_canonical",
        || {
            let c = good_cose();
            let p = claims().to_cbor();
            // The payload's head is at byte 16 (array head, 14-byte protected, unprotected).
            let head = cbor(&Value::Bytes(p.clone())).len() - p.len();
            let mut x = c[..16].to_vec();
            x.push(0x5f);
            x.extend_from_slice(&cbor(&Value::Bytes(p[..10].to_vec())));
            x.extend_from_slice(&cbor(&Value::Bytes(p[10..].to_vec())));
            x.push(0xff);
            x.extend_from_slice(&c[16 + head + p.len()..]);
            decode_outcome(&wrap(&x))
        },
    ));
    v.push(case(
        "canonical: signature length in a longer head",
        "cbor.not_canonical",
        || {
            let c = good_cose();
            let at = c.len() - 66;
            let x = [&c[..at], &[0x59, 0x00, 0x40], &c[at + 2..]].concat();
            decode_outcome(&wrap(&x))
        },
    ));
    v.push(case(
        "canonical: unprotected kid equal to the protected one",
        "cose.unprotected_not_empty",
        || {
            let k = sc_key();
            let unprotected = vec![(int(4), Value::Bytes(k.kid().0.to_vec()))];
            let x = sign1_with(
                std_protected(&k.kid().0),
                unprotected,
                &claims().to_cbor(),
                &k,
            );
            decode_outcome(&wrap(&x))
        },
    ));
    v.push(case(
        "canonical: indefinite-length claims map, signed",
        "cbor.not_canonical",
        move || decode_outcome(&signed_payload(&indefinite(&claims().to_cbor(), 0xbf))),
    ));
    v.push(case(
        "canonical: indefinite-length body, signed",
        "cbor.not_canonical",
        || {
            let p = claims().to_cbor();
            let at = 3 + p.windows(3).position(|w| w == [0x39, 0x98, 0x31]).unwrap();
            let x = [&p[..at], &[0x9f], &p[at + 1..], &[0xff]].concat();
            decode_outcome(&signed_payload(&x))
        },
    ));
    v.push(case(
        "canonical: chunked name, signed",
        "cbor.not_canonical",
        || {
            let p = claims().to_cbor();
            let name = cbor(&Value::Text(claims().subject.masked_name));
            let at = p.windows(name.len()).position(|w| w == name).unwrap();
            let x = [&p[..at], &[0x7f], &name, &[0xff], &p[at + name.len()..]].concat();
            decode_outcome(&signed_payload(&x))
        },
    ));
    v.push(case("cose: array of 3", "cose.structure", || {
        let c = good_cose();
        let mut x = c.clone();
        x[0] = 0x83;
        // drop the signature item: the last 66 bytes (58 40 + 64)
        x.truncate(x.len() - 66);
        decode_outcome(&wrap(&x))
    }));
    v.push(case("cose: a map, not an array", "cose.structure", || {
        decode_outcome(&wrap(&cbor(&Value::Map(vec![(int(1), int(2))]))))
    }));
    v.push(case(
        "cose: duplicate alg label in protected",
        "cose.structure",
        || {
            let k = sc_key();
            let mut p = std_protected(&k.kid().0);
            p.push((int(1), int(-8)));
            decode_outcome(&wrap(&sign1_with(p, vec![], &claims().to_cbor(), &k)))
        },
    ));
    v.push(case("cose: empty crit array", "cose.structure", || {
        let k = sc_key();
        let mut p = std_protected(&k.kid().0);
        p.push((int(2), Value::Array(vec![])));
        decode_outcome(&wrap(&sign1_with(p, vec![], &claims().to_cbor(), &k)))
    }));
    v.push(case(
        "cose: critical private-use header",
        "cose.crit",
        || decode_outcome(&crit_code(int(-65537))),
    ));
    v.push(case(
        "cose: critical text-label header",
        "cose.crit",
        || decode_outcome(&crit_code(Value::Text("x-hcmr".into()))),
    ));
    v.push(case(
        "cose: critical registered header (kid)",
        "cose.crit",
        || decode_outcome(&crit_code(int(4))),
    ));
    v.push(case("cose: wrong alg ES256", "cose.alg", || {
        let k = sc_key();
        let p = vec![(int(1), int(-7)), (int(4), bytes(&k.kid().0))];
        decode_outcome(&wrap(&sign1_with(p, vec![], &claims().to_cbor(), &k)))
    }));
    v.push(case("cose: alg as text 'EdDSA'", "cose.alg", || {
        let k = sc_key();
        let p = vec![
            (int(1), Value::Text("EdDSA".into())),
            (int(4), bytes(&k.kid().0)),
        ];
        decode_outcome(&wrap(&sign1_with(p, vec![], &claims().to_cbor(), &k)))
    }));
    v.push(case(
        "cose: alg only unprotected",
        "cose.alg_missing",
        || {
            let k = sc_key();
            let p = vec![(int(4), bytes(&k.kid().0))];
            decode_outcome(&wrap(&sign1_with(
                p,
                vec![(int(1), int(-8))],
                &claims().to_cbor(),
                &k,
            )))
        },
    ));
    v.push(case(
        "cose: kid only unprotected",
        "cose.kid_unprotected",
        || {
            let k = sc_key();
            let p = vec![(int(1), int(-8))];
            let u = vec![(int(4), bytes(&k.kid().0))];
            decode_outcome(&wrap(&sign1_with(p, u, &claims().to_cbor(), &k)))
        },
    ));
    v.push(case(
        "cose: conflicting unprotected kid",
        "cose.kid_conflict",
        || {
            let k = sc_key();
            let u = vec![(int(4), bytes(&stranger().kid().0))];
            decode_outcome(&wrap(&sign1_with(
                std_protected(&k.kid().0),
                u,
                &claims().to_cbor(),
                &k,
            )))
        },
    ));
    v.push(case(
        "cose: equal unprotected kid, not recognized (issue 15 fault 7)",
        "malformed",
        || {
            let k = sc_key();
            let u = vec![(int(4), bytes(&k.kid().0))];
            verify_outcome(&wrap(&sign1_with(
                std_protected(&k.kid().0),
                u,
                &claims().to_cbor(),
                &k,
            )))
        },
    ));
    v.push(case("cose: no kid anywhere", "cose.kid_missing", || {
        let k = sc_key();
        decode_outcome(&wrap(&sign1_with(
            vec![(int(1), int(-8))],
            vec![],
            &claims().to_cbor(),
            &k,
        )))
    }));
    v.push(case("cose: 7-byte kid", "cose.kid_length", || {
        let k = sc_key();
        decode_outcome(&wrap(&sign1_with(
            std_protected(&k.kid().0[..7]),
            vec![],
            &claims().to_cbor(),
            &k,
        )))
    }));
    v.push(case(
        "cose: 32-byte kid (whole key)",
        "cose.kid_length",
        || {
            let k = sc_key();
            decode_outcome(&wrap(&sign1_with(
                std_protected(&k.public().to_bytes()),
                vec![],
                &claims().to_cbor(),
                &k,
            )))
        },
    ));
    v.push(case("cose: empty kid", "cose.structure", || {
        let k = sc_key();
        decode_outcome(&wrap(&sign1_with(
            std_protected(b""),
            vec![],
            &claims().to_cbor(),
            &k,
        )))
    }));
    v.push(case(
        "cose: detached payload (nil)",
        "cose.payload_missing",
        || {
            let k = sc_key();
            let p = cbor(&Value::Map(std_protected(&k.kid().0)));
            decode_outcome(&wrap(&sign1_raw(&p, vec![], None, &k, None)))
        },
    ));
    v.push(case("cose: empty payload", "cose.payload_missing", || {
        decode_outcome(&signed_payload(b""))
    }));
    v.push(case(
        "cose: 63-byte signature",
        "cose.signature_length",
        || {
            let k = sc_key();
            let p = cbor(&Value::Map(std_protected(&k.kid().0)));
            decode_outcome(&wrap(&sign1_raw(
                &p,
                vec![],
                Some(&claims().to_cbor()),
                &k,
                Some(vec![7; 63]),
            )))
        },
    ));
    v.push(case(
        "cose: empty signature",
        "cose.signature_length",
        || {
            let k = sc_key();
            let p = cbor(&Value::Map(std_protected(&k.kid().0)));
            decode_outcome(&wrap(&sign1_raw(
                &p,
                vec![],
                Some(&claims().to_cbor()),
                &k,
                Some(vec![]),
            )))
        },
    ));

    // --- bit flips: never recognized ---
    v.push(case("flip: protected alg -8 -> -7", "malformed", || {
        let c = good_cose();
        let i = find(&c, &[0x01, 0x27]) + 1;
        verify_outcome(&flip(c, i))
    }));
    v.push(case("flip: protected kid byte", "unknown_key", || {
        let c = good_cose();
        let i = find(&c, &sc_key().kid().0);
        verify_outcome(&flip(c, i))
    }));
    v.push(case(
        "flip: protected map header A2 -> A3",
        "malformed",
        || {
            let c = good_cose();
            let i = find(&c, &[0xa2, 0x01, 0x27]);
            verify_outcome(&flip(c, i))
        },
    ));
    v.push(case(
        "flip: payload subject hash byte",
        "bad_signature",
        || {
            let c = good_cose();
            let i = find(&c, &[0xa5; 8]) + 3;
            verify_outcome(&flip(c, i))
        },
    ));
    v.push(case(
        "flip: payload status green -> red-ish (1 -> 0)",
        "bad_signature",
        || {
            // Status 1 -> 0 would be unrecognized anyway; flip 'valid until' low byte instead.
            let c = good_cose();
            let until = (NOW + DAY) as u32;
            let i = find(&c, &until.to_be_bytes()) + 3;
            verify_outcome(&flip(c, i))
        },
    ));
    v.push(case(
        "flip: payload iss 510000 -> 510001 (iss checked first)",
        "unknown_issuer",
        || {
            // iss is the uint 510000 = 0x1a 0007c830.
            let c = good_cose();
            let i = find(&c, &[0x01, 0x1a, 0x00, 0x07, 0xc8, 0x30]) + 5;
            verify_outcome(&flip(c, i))
        },
    ));
    v.push(case("flip: signature first byte", "bad_signature", || {
        let c = good_cose();
        let n = c.len();
        verify_outcome(&flip(c, n - 64))
    }));
    v.push(case(
        "flip: signature last byte (S half)",
        "bad_signature",
        || {
            let c = good_cose();
            let n = c.len();
            verify_outcome(&flip(c, n - 1))
        },
    ));
    v.push(case(
        "flip: every signature bit, none recognized",
        "bad_signature",
        || {
            let c = good_cose();
            let n = c.len();
            let node = gd_node(vec![agreement(1)]);
            let mut seen = std::collections::BTreeSet::new();
            for i in n - 64..n {
                for bit in 0..8 {
                    let mut x = c.clone();
                    x[i] ^= 1 << bit;
                    seen.insert(verify_outcome_at(&wrap(&x), &node));
                }
            }
            seen.into_iter().collect::<Vec<_>>().join(",")
        },
    ));
    v.push(case(
        "flip: every COSE byte, none recognized",
        "never ok",
        || {
            let c = good_cose();
            let node = gd_node(vec![agreement(1)]);
            for i in 0..c.len() {
                let mut x = c.clone();
                x[i] ^= 0x01;
                if verify(&wrap(&x), &node, NOW).recognized() {
                    return format!("recognized after flipping byte {i}");
                }
            }
            "never ok".into()
        },
    ));

    // --- keys ---
    v.push(case(
        "key: signed by a stranger, own kid",
        "unknown_key",
        || verify_outcome(&hcmr::code::encode(&claims(), &stranger())),
    ));
    v.push(case(
        "key: stranger signs under Sichuan's kid",
        "bad_signature",
        || {
            let k = sc_key();
            verify_outcome(&wrap(&sign1_with(
                std_protected(&k.kid().0),
                vec![],
                &claims().to_cbor(),
                &stranger(),
            )))
        },
    ));
    v.push(case(
        "key: Guangdong's own key signs a Sichuan code",
        "unknown_key",
        || verify_outcome(&hcmr::code::encode(&claims(), &gd_key())),
    ));
    v.push(case(
        "key: Sichuan's key signs a Guangdong (own) code",
        "unknown_key",
        || {
            verify_outcome(&hcmr::code::encode(
                &Claims {
                    iss: "440000".into(),
                    ..claims()
                },
                &sc_key(),
            ))
        },
    ));
    v.push(case(
        "key: kid collides with a second pinned key; stranger signs",
        "bad_signature",
        || {
            // Sichuan pins two keys, the second given the first's kid (an 8-byte collision).
            let mut colliding = sc_key2().public();
            colliding.kid = sc_key().kid();
            let node = gd_node(vec![conclude(body(1, vec![sc_key().public(), colliding]))]);
            let k = sc_key();
            verify_outcome_at(
                &wrap(&sign1_with(
                    std_protected(&k.kid().0),
                    vec![],
                    &claims().to_cbor(),
                    &stranger(),
                )),
                &node,
            )
        },
    ));
    v.push(case(
        "key: kid collision, the genuine key still verifies (control)",
        "ok",
        || {
            let mut colliding = sc_key2().public();
            colliding.kid = sc_key().kid();
            let node = gd_node(vec![conclude(body(1, vec![colliding, sc_key().public()]))]);
            verify_outcome_at(&good_code(), &node)
        },
    ));
    v.push(case(
        "key: kid of a pinned key, unpinned key signs",
        "bad_signature",
        || {
            let k = sc_key();
            verify_outcome(&wrap(&sign1_with(
                std_protected(&k.kid().0),
                vec![],
                &claims().to_cbor(),
                &sc_key2(),
            )))
        },
    ));

    // --- claims ---
    v.push(case(
        "claims: payload is an array",
        "claims.not_map",
        || decode_outcome(&signed_payload(&cbor(&Value::Array(vec![int(1)])))),
    ));
    v.push(case(
        "claims: duplicate iss",
        "claims.duplicate_key",
        || {
            let mut m = claims_map();
            m.push((int(1), Value::Text("440000".into())));
            decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
        },
    ));
    v.push(case(
        "claims: duplicate key via non-shortest integer",
        "claims.duplicate_key",
        || {
            // {1: "510000", 0x18 0x01: "440000", ...rest}: the same key 1 in two encodings.
            let mut p = claims().to_cbor();
            let n = p[0] & 0x1f;
            p[0] = 0xa0 | (n + 1);
            let mut extra = vec![0x18, 0x01, 0x66];
            extra.extend_from_slice(b"440000");
            p.splice(1..1, extra);
            decode_outcome(&signed_payload(&p))
        },
    ));
    v.push(case(
        "claims: duplicate unknown key",
        "claims.duplicate_key",
        || {
            let mut m = claims_map();
            m.push((int(99), int(1)));
            m.push((int(99), int(2)));
            decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
        },
    ));
    v.push(case(
        "claims: duplicate hcode",
        "claims.duplicate_key",
        || {
            let mut m = claims_map();
            m.push((int(-38962), Value::Array(vec![])));
            decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
        },
    ));
    v.push(case(
        "claims: duplicate old cti claim (ignored, still a map error)",
        "claims.duplicate_key",
        || {
            let mut m = claims_map();
            m.push((int(7), bytes(&[1; 16])));
            m.push((int(7), bytes(&[2; 16])));
            decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
        },
    ));
    v.push(case(
        "claims: indefinite map without break",
        "cbor.malformed",
        || {
            let mut p = claims().to_cbor();
            p[0] = 0xbf;
            decode_outcome(&signed_payload(&p))
        },
    ));
    v.push(case(
        "claims: indefinite map with break, signed, not recognized (issue 15 fault 7)",
        "malformed",
        || {
            let mut p = claims().to_cbor();
            p[0] = 0xbf;
            p.push(0xff);
            verify_outcome(&signed_payload(&p))
        },
    ));
    v.push(case("claims: missing hcode", "claims.missing", || {
        let mut m = claims_map();
        m.retain(|(k, _)| *k != int(-38962));
        decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
    }));
    v.push(case("claims: missing iat", "claims.missing", || {
        let mut m = claims_map();
        m.retain(|(k, _)| *k != int(6));
        decode_outcome(&signed_payload(&cbor(&Value::Map(m))))
    }));
    v.push(case("claims: iss is a byte string", "claims.type", || {
        decode_outcome(&with_claim(1, bytes(b"510000")))
    }));
    v.push(case("claims: iss negative", "claims.type", || {
        decode_outcome(&with_claim(1, int(-510000)))
    }));
    v.push(case(
        "claims: iss as the old six-digit text, signed (lenient)",
        "ok",
        || verify_outcome(&with_claim(1, Value::Text("510000".into()))),
    ));
    v.push(case("claims: iss 65 characters", "claims.type", || {
        decode_outcome(&with_claim(1, Value::Text("5".repeat(65))))
    }));
    v.push(case(
        "claims: an old cti claim, signed (ignored)",
        "ok",
        || {
            let mut m = claims_map();
            m.push((int(7), Value::Text("abc".into())));
            verify_outcome(&signed_payload(&cbor(&Value::Map(m))))
        },
    ));
    v.push(case("claims: hcode is a map", "claims.type", || {
        decode_outcome(&with_claim(-38962, Value::Map(vec![])))
    }));
    v.push(case("claims: body of 5 elements", "claims.type", || {
        decode_outcome(&with_body_items(|items| {
            items.pop();
        }))
    }));
    v.push(case(
        "claims: body of 7 elements (an old version field)",
        "claims.type",
        || decode_outcome(&with_body_items(|items| items.insert(0, int(1)))),
    ));
    v.push(case("claims: status as text", "claims.type", || {
        decode_outcome(&with_body(0, Value::Text("green".into())))
    }));
    v.push(case("claims: status negative", "claims.type", || {
        decode_outcome(&with_body(0, int(-1)))
    }));
    v.push(case(
        "claims: unassigned status 9, signed",
        "status_not_recognized",
        || verify_outcome(&with_body(0, int(9))),
    ));
    v.push(case(
        "claims: masked number is a map",
        "claims.type",
        || decode_outcome(&with_body(4, Value::Map(vec![]))),
    ));
    v.push(case(
        "claims: unassigned document type 7",
        "claims.type",
        || decode_outcome(&with_body(3, int(7))),
    ));
    v.push(case("claims: subject hash 7 bytes", "claims.type", || {
        decode_outcome(&with_body(5, bytes(&[0; 7])))
    }));
    v.push(case(
        "claims: subject hash 16 bytes (the old size)",
        "claims.type",
        || decode_outcome(&with_body(5, bytes(&[0; 16]))),
    ));
    v.push(case("claims: masked name as bytes", "claims.type", || {
        decode_outcome(&with_body(2, bytes(b"x")))
    }));

    // --- times ---
    v.push(case("time: iat NaN", "claims.time_not_finite", || {
        decode_outcome(&with_claim(6, Value::Float(f64::NAN)))
    }));
    v.push(case(
        "time: exp +infinity",
        "claims.time_not_finite",
        || decode_outcome(&with_claim(4, Value::Float(f64::INFINITY))),
    ));
    v.push(case(
        "time: status until -infinity",
        "claims.time_not_finite",
        || decode_outcome(&with_body(1, Value::Float(f64::NEG_INFINITY))),
    ));
    v.push(case(
        "time: iat negative integer",
        "claims.time_negative",
        || decode_outcome(&with_claim(6, int(-1))),
    ));
    v.push(case(
        "time: exp negative float",
        "claims.time_negative",
        || decode_outcome(&with_claim(4, Value::Float(-5.0))),
    ));
    v.push(case(
        "time: iat most negative CBOR integer",
        "claims.time_negative",
        || {
            // 0x3b ff..ff = -2^64
            let mut m = claims_map();
            set(&mut m, 6, int(0));
            let mut p = cbor(&Value::Map(m));
            let i = find(&p, &[0x06, 0x00]) + 1;
            p.splice(
                i..=i,
                [0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            );
            decode_outcome(&signed_payload(&p))
        },
    ));
    v.push(case(
        "time: exp fractional",
        "claims.time_not_whole",
        || decode_outcome(&with_claim(4, Value::Float(1_750_000_300.5))),
    ));
    v.push(case(
        "time: exp after 9999",
        "claims.time_too_large",
        || decode_outcome(&with_claim(4, int(253_402_300_800))),
    ));
    v.push(case("time: exp u64::MAX", "claims.time_too_large", || {
        decode_outcome(&with_claim(4, Value::Integer(Integer::from(u64::MAX))))
    }));
    v.push(case(
        "time: exp 1e300 float",
        "claims.time_too_large",
        || decode_outcome(&with_claim(4, Value::Float(1e300))),
    ));
    v.push(case("time: exp as bignum tag 2", "claims.type", || {
        decode_outcome(&with_claim(
            4,
            Value::Tag(2, Box::new(bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 0]))),
        ))
    }));
    v.push(case("time: iat as tag-1 date", "claims.type", || {
        decode_outcome(&with_claim(6, Value::Tag(1, Box::new(int(1_749_999_940)))))
    }));
    v.push(case("time: iat as text", "claims.type", || {
        decode_outcome(&with_claim(6, Value::Text("2025-06-15".into())))
    }));
    v.push(case(
        "time: whole float iat, signed (control, accepted)",
        "ok",
        || verify_outcome(&with_claim(6, Value::Float((NOW - 60) as f64))),
    ));
    v.push(case(
        "time: iat far in the future, signed",
        "not_yet_valid",
        || verify_outcome(&with_claim(6, int(253_402_300_799))),
    ));

    // --- agreements ---
    v.push(case(
        "agreement: acceptor signature forged (bit flip)",
        "BadSignature(\"acceptor\")",
        || {
            let a = agreement(1);
            let mut s = a.acceptor_signature.unwrap();
            s.signature[5] ^= 1;
            agreement_err(forge(&a, None, Some(s)).check_both())
        },
    ));
    v.push(case(
        "agreement: proposer signature by a stranger under the pinned kid",
        "BadSignature(\"proposer\")",
        || {
            let a = agreement(1);
            let mut msg = b"hcmr-agreement-v1\0".to_vec();
            msg.extend_from_slice(a.encoded());
            let s = AgreementSignature {
                kid: sc_key().kid(),
                signature: stranger().sign(&msg),
            };
            agreement_err(forge(&a, Some(s), None).check_both())
        },
    ));
    v.push(case(
        "agreement: acceptor signed by the proposer's key",
        "SignerNotPinned(\"acceptor\")",
        || {
            let a = agreement(1);
            let mut msg = b"hcmr-agreement-v1\0".to_vec();
            msg.extend_from_slice(a.encoded());
            let s = AgreementSignature {
                kid: sc_key().kid(),
                signature: sc_key().sign(&msg),
            };
            agreement_err(forge(&a, None, Some(s)).check_both())
        },
    ));
    v.push(case(
        "agreement: acceptor signature missing",
        "Unsigned(\"acceptor\")",
        || {
            let a = agreement(1);
            agreement_err(
                SignedAgreement::from_parts(a.encoded().to_vec(), a.proposer_signature, None)
                    .unwrap()
                    .check_both(),
            )
        },
    ));
    v.push(case(
        "agreement: signatures swapped",
        "SignerNotPinned(\"proposer\")",
        || {
            let a = agreement(1);
            agreement_err(
                SignedAgreement::from_parts(
                    a.encoded().to_vec(),
                    a.acceptor_signature,
                    a.proposer_signature,
                )
                .unwrap()
                .check_both(),
            )
        },
    ));
    v.push(case(
        "agreement: v1 signatures on v2 body",
        "BadSignature(\"proposer\")",
        || {
            let a1 = agreement(1);
            let a2 = agreement(2);
            agreement_err(
                SignedAgreement::from_parts(
                    a2.encoded().to_vec(),
                    a1.proposer_signature,
                    a1.acceptor_signature,
                )
                .unwrap()
                .check_both(),
            )
        },
    ));
    v.push(case("agreement: body bytes truncated", "Decode", || {
        let a = agreement(1);
        let e = a.encoded();
        match SignedAgreement::from_parts(e[..e.len() - 3].to_vec(), None, None) {
            Err(AgreementError::Decode(_)) => "Decode".into(),
            other => format!("{other:?}"),
        }
    }));
    v.push(case(
        "agreement: forged one signature, added to snapshot",
        "BadSignature(\"acceptor\")",
        || {
            let a = agreement(2);
            let mut s = a.acceptor_signature.unwrap();
            s.signature[63] ^= 0x10;
            add_to_gd(vec![agreement(1)], forge(&a, None, Some(s)))
        },
    ));
    v.push(case(
        "agreement: replayed older version after newer",
        "ok",
        || {
            // v2 (no yellow) then a replayed v1 (yellow->yellow): v2 must stay in force.
            let mut node = gd_node(vec![agreement(2)]);
            let yellow = hcmr::code::encode(
                &Claims {
                    status: 2,
                    ..claims()
                },
                &sc_key(),
            );
            let before = (snapshot_view(&node), verify(&yellow, &node, NOW));
            let r = agreement_err(node.add_agreement(agreement(1)));
            let after = (snapshot_view(&node), verify(&yellow, &node, NOW));
            if before != after {
                return format!("{r} STATE CHANGED");
            }
            if after.0[0].0 != 2 || after.1.reason.as_str() != "status_not_recognized" {
                return format!(
                    "{r} but terms are v{} ({})",
                    after.0[0].0,
                    after.1.reason.as_str()
                );
            }
            r
        },
    ));
    v.push(case("agreement: replayed same version", "ok", || {
        add_to_gd(vec![agreement(2)], agreement(2))
    }));
    v.push(case(
        "agreement: not naming this province",
        "BadDirections",
        || {
            // A Sichuan-Guangdong agreement offered to a Jiangsu node.
            let mut js = TrustSnapshot::new(
                prov(320000),
                Arc::new(feed_of(320000, &stranger())),
                Policy::default(),
            );
            let r = agreement_err(js.add_agreement(agreement(1)));
            if js.agreement_count() != 0 {
                return format!("{r} STATE CHANGED");
            }
            r
        },
    ));

    // --- feeds ---
    v.push(case(
        "feed: revocation with a flipped signature",
        "BadSignature(2)",
        || {
            let g = genesis(SC, &sc_key());
            let e = FeedEntry::sign(
                prov(SC),
                Some(&g),
                NOW,
                Statement::RevokeCode { cti: [0xc7; 16] },
                &sc_key(),
            );
            let mut sig = *e.signature();
            sig[0] ^= 1;
            feed_outcome(
                &[],
                &[FeedEntry::from_parts(e.encoded().to_vec(), e.signer(), sig).unwrap()],
            )
        },
    ));
    v.push(case(
        "feed: revocation re-signed by a stranger",
        "BadSignature(2)",
        || {
            let g = genesis(SC, &sc_key());
            feed_outcome(
                &[],
                &[FeedEntry::sign(
                    prov(SC),
                    Some(&g),
                    NOW,
                    Statement::RevokeCode { cti: [1; 16] },
                    &stranger(),
                )],
            )
        },
    ));
    v.push(case(
        "feed: stranger's signature under Sichuan's kid",
        "BadSignature(2)",
        || {
            let g = genesis(SC, &sc_key());
            let e = FeedEntry::sign(
                prov(SC),
                Some(&g),
                NOW,
                Statement::RevokeCode { cti: [1; 16] },
                &stranger(),
            );
            feed_outcome(
                &[],
                &[
                    FeedEntry::from_parts(e.encoded().to_vec(), sc_key().kid(), *e.signature())
                        .unwrap(),
                ],
            )
        },
    ));
    v.push(case("feed: gap (entry 3 after 1)", "Gap(2,3)", || {
        let g = genesis(SC, &sc_key());
        let e2 = FeedEntry::sign(
            prov(SC),
            Some(&g),
            NOW,
            Statement::RevokeCode { cti: [1; 16] },
            &sc_key(),
        );
        let e3 = FeedEntry::sign(
            prov(SC),
            Some(&e2),
            NOW,
            Statement::RevokeCode { cti: [2; 16] },
            &sc_key(),
        );
        feed_outcome(&[], &[e3])
    }));
    v.push(case(
        "feed: replayed entry 2 after entry 2",
        "Gap(3,2)",
        || {
            let g = genesis(SC, &sc_key());
            let e2 = FeedEntry::sign(
                prov(SC),
                Some(&g),
                NOW,
                Statement::RevokeCode { cti: [1; 16] },
                &sc_key(),
            );
            feed_outcome(std::slice::from_ref(&e2), std::slice::from_ref(&e2))
        },
    ));
    v.push(case(
        "feed: broken chain (prev of another genesis)",
        "BrokenChain(2)",
        || {
            let other = FeedEntry::sign(
                prov(SC),
                None,
                NOW - 41 * DAY,
                Statement::Genesis {
                    key: sc_key().public(),
                },
                &sc_key(),
            );
            feed_outcome(
                &[],
                &[FeedEntry::sign(
                    prov(SC),
                    Some(&other),
                    NOW,
                    Statement::RevokeCode { cti: [1; 16] },
                    &sc_key(),
                )],
            )
        },
    ));
    v.push(case("feed: wrong province", "WrongProvince", || {
        let g = genesis(GD, &sc_key());
        feed_outcome(
            &[],
            &[FeedEntry::sign(
                prov(GD),
                Some(&g),
                NOW,
                Statement::RevokeCode { cti: [1; 16] },
                &sc_key(),
            )],
        )
    }));
    v.push(case("feed: second genesis", "BadGenesis(2)", || {
        let g = genesis(SC, &sc_key());
        feed_outcome(
            &[],
            &[FeedEntry::sign(
                prov(SC),
                Some(&g),
                NOW,
                Statement::Genesis {
                    key: stranger().public(),
                },
                &stranger(),
            )],
        )
    }));
    v.push(case("feed: time went back", "TimeWentBack(2)", || {
        let g = genesis(SC, &sc_key());
        feed_outcome(
            &[],
            &[FeedEntry::sign(
                prov(SC),
                Some(&g),
                NOW - 50 * DAY,
                Statement::RevokeCode { cti: [1; 16] },
                &sc_key(),
            )],
        )
    }));
    v.push(case(
        "feed: RevokeCodes with 4,097 code ids",
        "BadStatement(2)",
        || {
            let g = genesis(SC, &sc_key());
            feed_outcome(
                &[],
                &[FeedEntry::sign(
                    prov(SC),
                    Some(&g),
                    NOW,
                    Statement::RevokeCodes {
                        ctis: vec![[1; 16]; 4097],
                    },
                    &sc_key(),
                )],
            )
        },
    ));
    v.push(case(
        "feed: good entry then forged one (batch all or nothing)",
        "BadSignature(3)",
        || {
            let g = genesis(SC, &sc_key());
            let e2 = FeedEntry::sign(
                prov(SC),
                Some(&g),
                NOW,
                Statement::RevokeCode { cti: [1; 16] },
                &sc_key(),
            );
            let e3 = FeedEntry::sign(
                prov(SC),
                Some(&e2),
                NOW,
                Statement::RevokeSubject {
                    subject_hash: SubjectHash([0xa5; 8]),
                    before: NOW,
                },
                &stranger(),
            );
            feed_outcome(&[], &[e2, e3])
        },
    ));
    v.push(case(
        "feed: rotation signed by the wrong key",
        "BadSignature(2)",
        || {
            let g = genesis(SC, &sc_key());
            let new = stranger();
            let s = Statement::KeyRotation {
                key: new.public(),
                pop: proof_of_possession(prov(SC), &new),
            };
            feed_outcome(&[], &[FeedEntry::sign(prov(SC), Some(&g), NOW, s, &new)])
        },
    ));
    v.push(case(
        "feed: rotation with another key's proof",
        "BadRotation(2)",
        || {
            let g = genesis(SC, &sc_key());
            let s = Statement::KeyRotation {
                key: stranger().public(),
                pop: proof_of_possession(prov(SC), &sc_key2()),
            };
            feed_outcome(
                &[],
                &[FeedEntry::sign(prov(SC), Some(&g), NOW, s, &sc_key())],
            )
        },
    ));
    v.push(case(
        "feed: rotation by a retired key",
        "BadSignature(3)",
        || {
            let g = genesis(SC, &sc_key());
            let k2 = sc_key2();
            let r = FeedEntry::sign(
                prov(SC),
                Some(&g),
                NOW - DAY,
                Statement::KeyRotation {
                    key: k2.public(),
                    pop: proof_of_possession(prov(SC), &k2),
                },
                &sc_key(),
            );
            let k3 = stranger();
            let s = Statement::KeyRotation {
                key: k3.public(),
                pop: proof_of_possession(prov(SC), &k3),
            };
            feed_outcome(
                std::slice::from_ref(&r),
                &[FeedEntry::sign(prov(SC), Some(&r), NOW, s, &sc_key())],
            )
        },
    ));
    v.push(case(
        "feed: withdrawal of the last key",
        "BadWithdrawal(2)",
        || {
            let g = genesis(SC, &sc_key());
            feed_outcome(
                &[],
                &[FeedEntry::sign(
                    prov(SC),
                    Some(&g),
                    NOW,
                    Statement::KeyWithdrawal {
                        key: sc_key().public(),
                    },
                    &sc_key(),
                )],
            )
        },
    ));
    v.push(case("feed: entry bytes not canonical", "Decode", || {
        let g = genesis(SC, &sc_key());
        let e = FeedEntry::sign(
            prov(SC),
            Some(&g),
            NOW,
            Statement::RevokeCode { cti: [1; 16] },
            &sc_key(),
        );
        let mut b = e.encoded().to_vec();
        b.push(0x00);
        match FeedEntry::from_parts(b, e.signer(), *e.signature()) {
            Err(err) => feed_err(&err),
            Ok(_) => "accepted".into(),
        }
    }));

    // --- bundles ---
    v.push(case("bundle: genuine (control)", "ok", || {
        open_gd(&hcmr::bundle::export(&gd_bundle_content(), &gd_key()))
    }));
    v.push(case("bundle: signature flipped", "BadSignature", || {
        let mut b = hcmr::bundle::export(&gd_bundle_content(), &gd_key());
        let n = b.len();
        b[n - 1] ^= 1;
        open_gd(&b)
    }));
    v.push(case("bundle: signed by a stranger", "BadSignature", || {
        open_gd(&hcmr::bundle::export(&gd_bundle_content(), &stranger()))
    }));
    v.push(case(
        "bundle: anchor is another key",
        "UntrustedSigner",
        || {
            bundle_err(hcmr::bundle::open(
                &hcmr::bundle::export(&gd_bundle_content(), &gd_key()),
                TrustAnchor::Key(stranger().public()),
                NOW,
                DAY,
            ))
        },
    ));
    v.push(case("bundle: truncated", "Truncated", || {
        let b = hcmr::bundle::export(&gd_bundle_content(), &gd_key());
        open_gd(&b[..b.len() / 2])
    }));
    v.push(case("bundle: too old", "TooOld", || {
        let c = BundleContent {
            exported_at: NOW - 2 * DAY,
            ..gd_bundle_content()
        };
        open_gd(&hcmr::bundle::export(&c, &gd_key()))
    }));
    v.push(case("bundle: from the future", "FromTheFuture", || {
        let c = BundleContent {
            exported_at: NOW + DAY,
            ..gd_bundle_content()
        };
        open_gd(&hcmr::bundle::export(&c, &gd_key()))
    }));
    v.push(case(
        "bundle: holds an agreement with one forged signature",
        "BadContent",
        || {
            let a = agreement(1);
            let mut s = a.acceptor_signature.unwrap();
            s.signature[1] ^= 1;
            let c = BundleContent {
                agreements: vec![forge(&a, None, Some(s))],
                ..gd_bundle_content()
            };
            open_gd(&hcmr::bundle::export(&c, &gd_key()))
        },
    ));
    v.push(case(
        "bundle: holds a peer feed with a stranger's revocation",
        "BadContent",
        || {
            let g = genesis(SC, &sc_key());
            let e = FeedEntry::sign(
                prov(SC),
                Some(&g),
                NOW,
                Statement::RevokeCode { cti: [0xc7; 16] },
                &stranger(),
            );
            let c = BundleContent {
                peers: vec![(prov(SC), NOW - 120, vec![g, e])],
                ..gd_bundle_content()
            };
            open_gd(&hcmr::bundle::export(&c, &gd_key()))
        },
    ));
    v.push(case(
        "bundle: peer feed not anchored in the agreement",
        "BadContent",
        || {
            let c = BundleContent {
                peers: vec![(prov(SC), NOW - 120, vec![genesis(SC, &stranger())])],
                ..gd_bundle_content()
            };
            open_gd(&hcmr::bundle::export(&c, &gd_key()))
        },
    ));
    v.push(case("bundle: random bytes", "Malformed", || {
        open_gd(&[0xff; 64])
    }));

    v
}

#[test]
fn hostile_corpus() {
    let cases = cases();
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for (name, expected, run) in &cases {
        assert!(names.insert(*name), "duplicate case name {name}");
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(got) if got == *expected => {}
            Ok(got) => failures.push(format!("{name}: expected {expected:?}, got {got:?}")),
            Err(_) => failures.push(format!("{name}: PANICKED")),
        }
    }
    let ok = cases.len() - failures.len();
    println!("hostile: {} cases, {} as expected", cases.len(), ok);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 60, "only {} cases", cases.len());
}

// Found by this corpus and fixed: docs/code-format.md section 8.6 says any `crit` parameter
// gives `cose.crit`, and only a
// malformed header (a label twice, an empty `crit` array, an empty kid) gives `cose.structure`.
// A `crit` array naming an unregistered, non-private integer label (e.g. 99) is well-formed
// (RFC 9052: `crit => [+ label]`, label = int / tstr). coset alone refuses to parse it
// (UnregisteredIanaNonPrivateValue); the decoder checks `crit` first, so it is `cose.crit`.
#[test]
fn crit_with_unregistered_label_is_cose_crit() {
    let got = decode_outcome(&crit_code(int(99)));
    assert_eq!(got, "cose.crit");
}

#[test]
fn crit_with_unregistered_label_is_refused_anyway() {
    // Whatever the code, the input never decodes.
    let got = catch_unwind(|| decode_outcome(&crit_code(int(99)))).expect("no panic");
    assert_ne!(got, "decoded");
}

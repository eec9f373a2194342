//! The parts of a verification and an issue, and the limits they are compared with: one raw
//! Ed25519 verify and sign (ed25519-dalek) over a message of the same size as a code's signed
//! structure, and an empty gRPC call (grpc.health.v1 Check) through a real node on loopback.
//! The `batch64` and `batch16` groups: ed25519-dalek `verify_batch` and hcmr's batch decision
//! on 64 and 16 codes, reported per signature. The node's allocator (mimalloc), as in `hcmr`.
//! `cargo bench --bench core`; BENCHMARKS.md records the results as ratios.

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::{Signer, SigningKey, Verifier};

use hcmr::agreement::{AgreementBody, AgreementId, DirectionTerms, Party, SignedAgreement};
use hcmr::code::{Claims, HealthCode, Subject};
use hcmr::feed::{FeedEntry, FeedState, Statement};
use hcmr::identity::{DocumentType, SubjectHash};
use hcmr::keys::NodeKey;
use hcmr::province::Province;
use hcmr::status::HealthStatus::{Green, Red, Yellow};
use hcmr::trust::{Policy, TrustSnapshot};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: u64 = 1_750_000_000;
const DAY: u64 = 86_400;

fn prov(c: u32) -> Province {
    Province::from_code(c).unwrap()
}

fn sc_key() -> NodeKey {
    NodeKey::from_seed(&[0x51; 32])
}

fn gd_key() -> NodeKey {
    NodeKey::from_seed(&[0x44; 32])
}

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

/// Guangdong's snapshot with a concluded agreement with Sichuan.
fn snapshot() -> TrustSnapshot {
    let dir = |i: u32, v: u32| DirectionTerms {
        issuer: prov(i),
        verifier: prov(v),
        status_map: BTreeMap::from([(Green, Green), (Yellow, Red), (Red, Red)]),
        max_code_age_secs: DAY,
        max_trust_age_secs: 0,
        effective_from: NOW - DAY,
        effective_until: NOW + 365 * DAY,
    };
    let body = AgreementBody {
        id: AgreementId([0x5c; 16]),
        version: 1,
        created_at: NOW - DAY,
        proposer: Party {
            province: prov(510000),
            keys: vec![sc_key().public()],
        },
        acceptor: Party {
            province: prov(440000),
            keys: vec![gd_key().public()],
        },
        directions: vec![dir(510000, 440000), dir(440000, 510000)],
    };
    let mut a = SignedAgreement::propose(body, &sc_key()).unwrap();
    a.accept(&gd_key()).unwrap();
    let mut own = FeedState::new(prov(440000));
    own.apply(&FeedEntry::sign(
        prov(440000),
        None,
        NOW - 2 * DAY,
        Statement::Genesis {
            key: gd_key().public(),
        },
        &gd_key(),
    ))
    .unwrap();
    let mut t = TrustSnapshot::new(prov(440000), Arc::new(own), Policy::default());
    t.add_agreement(a).unwrap();
    t
}

fn parts(c: &mut Criterion) {
    let code = hcmr::code::encode(&claims(), &sc_key());
    let snap = snapshot();
    assert!(hcmr::verify::verify(&code, &snap, NOW).recognized());
    let decoded = HealthCode::decode(&code).unwrap();
    // The size of what a code's signature covers (COSE Sig_structure): about the payload.
    let msg = vec![0x5a; hcmr::code::transport::unwrap(&code).unwrap().len() - 64];
    let sk = SigningKey::from_bytes(&[0x51; 32]);
    let vk = sk.verifying_key();
    let sig = sk.sign(&msg);

    let mut g = c.benchmark_group("parts");
    g.bench_function("decode", |b| b.iter(|| HealthCode::decode(&code).unwrap()));
    g.bench_function("verify_decision", |b| {
        b.iter(|| hcmr::verify::verify(&code, &snap, NOW))
    });
    g.bench_function("verify_decision_decoded", |b| {
        b.iter(|| hcmr::verify::verify_decoded(&decoded, &snap, NOW))
    });
    g.bench_function("issue_encode", |b| {
        let k = sc_key();
        let cl = claims();
        b.iter(|| hcmr::code::encode(&cl, &k))
    });
    g.bench_function("ed25519_verify_raw", |b| {
        b.iter(|| vk.verify(&msg, &sig).unwrap())
    });
    g.bench_function("ed25519_verify_strict_raw", |b| {
        b.iter(|| vk.verify_strict(&msg, &sig).unwrap())
    });
    g.bench_function("ed25519_sign_raw", |b| b.iter(|| sk.sign(&msg)));
    g.finish();

    // Batches of 64, reported per signature / per code (Throughput::Elements).
    let mut g = c.benchmark_group("batch64");
    g.throughput(criterion::Throughput::Elements(64));
    let msgs: Vec<Vec<u8>> = (0..64u8)
        .map(|i| {
            let mut m = msg.clone();
            m[0] = i;
            m
        })
        .collect();
    let sigs: Vec<_> = msgs.iter().map(|m| sk.sign(m)).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let vks = vec![vk; 64];
    g.bench_function("ed25519_verify_batch_raw", |b| {
        b.iter(|| ed25519_dalek::verify_batch(&refs, &sigs, &vks).unwrap())
    });
    let codes: Vec<String> = (0..64u64)
        .map(|i| {
            let mut cl = claims();
            cl.iat -= i;
            hcmr::code::encode(&cl, &sc_key())
        })
        .collect();
    let code_refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    assert!(hcmr::verify::batch::verify_batch(&code_refs, &snap, NOW)
        .iter()
        .all(|v| v.recognized()));
    g.bench_function("verify_decision_batch", |b| {
        b.iter(|| hcmr::verify::batch::verify_batch(&code_refs, &snap, NOW))
    });
    g.finish();

    // Batches of 16: what a verifier thread takes at most (the node's MAX_CODES_PER_TAKE).
    let mut g = c.benchmark_group("batch16");
    g.throughput(criterion::Throughput::Elements(16));
    g.bench_function("ed25519_verify_batch_raw", |b| {
        b.iter(|| ed25519_dalek::verify_batch(&refs[..16], &sigs[..16], &vks[..16]).unwrap())
    });
    g.bench_function("verify_decision_batch", |b| {
        b.iter(|| hcmr::verify::batch::verify_batch(&code_refs[..16], &snap, NOW))
    });
    g.finish();
}

fn empty_call(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = rt.block_on(async {
        let path = hcmr::node::init(
            prov(510000),
            &dir.path().join("sc"),
            "127.0.0.1:0".parse().unwrap(),
            None,
        )
        .await
        .unwrap();
        hcmr::node::spawn(&hcmr::node::Config::load(&path).unwrap())
            .await
            .unwrap()
    });
    let ch = rt
        .block_on(hcmr::client::connect(
            &node.endpoint,
            node.tls_cert.as_deref(),
            None,
        ))
        .unwrap();
    let mut g = c.benchmark_group("grpc");
    g.bench_function("empty_call_health_check", |b| {
        b.iter(|| {
            rt.block_on(async {
                tonic_health::pb::health_client::HealthClient::new(ch.clone())
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .unwrap()
            })
        })
    });
    g.finish();
    rt.block_on(node.shutdown()).unwrap();
}

criterion_group!(benches, parts, empty_call);
criterion_main!(benches);

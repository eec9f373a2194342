//! The parts of a verification and an issue, and the limits they are compared with: one raw
//! Ed25519 verify and sign (ed25519-dalek) over a message of the same size as a code's signed
//! structure, and an empty gRPC call (grpc.health.v1 Check) through a real node on loopback.
//! The `batch64` and `batch16` groups: ed25519-dalek `verify_batch` and hcmr's batch decision
//! on 64 and 16 codes, reported per signature. The node's allocator (mimalloc), as in `hcmr`.
//! `manifest_check_55`: a checkpoint's decision on a 55-person trip manifest.
//! `cargo bench --bench core`; BENCHMARKS.md records the results as ratios.

use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::{Signer, SigningKey, Verifier};

use hcmr::code::{Claims, HealthCode};
use hcmr::status::HealthStatus::{Green, Red, Yellow};
use hcmr::trust::TrustSnapshot;
use hcmr_core::testkit::{concluded, gd_key, prov, sc_key, GD, NOW, SC};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sichuan's green code's claims.
fn claims() -> Claims {
    hcmr_core::testkit::claims("510000", 1)
}

/// Guangdong's snapshot with a concluded agreement with Sichuan (each side's yellow counts as
/// red at the other).
fn snapshot() -> TrustSnapshot {
    let pairs = [(Green, Green), (Yellow, Red), (Red, Red)];
    let a = concluded((SC, &sc_key()), (GD, &gd_key()), &pairs, &pairs);
    hcmr_core::testkit::snapshot(GD, &gd_key(), vec![a])
}

fn parts(c: &mut Criterion) {
    let code = hcmr_core::testkit::code(&claims(), &sc_key());
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
    // A checkpoint's decision on a 55-person manifest (docs/transport.md section 5): decode,
    // one signature, the agreement's terms, 55 revocation lookups.
    let manifest =
        hcmr::manifest::sign(&hcmr_core::testkit::trip(55), &hcmr_core::testkit::sc_key());
    let checkpoint = hcmr_core::testkit::transit_checkpoint();
    assert!(hcmr::manifest::check(&manifest, &checkpoint, NOW, None).passed());
    g.bench_function("manifest_check_55", |b| {
        b.iter(|| hcmr::manifest::check(&manifest, &checkpoint, NOW, None))
    });
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
            prov(SC),
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

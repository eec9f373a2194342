//! The entry encoding and storage record, and decoding of hostile bytes.

use super::*;

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

#[test]
fn records_and_parts_round_trip() {
    let chain = every_statement();
    state_of(&chain);
    for e in &chain {
        let rec = e.to_record();
        // [bstr entry, bstr .size 8 kid, bstr .size 64 signature]
        assert_eq!(rec[0], 0x83);
        assert_eq!(FeedEntry::from_record(&rec).unwrap(), *e);
        let parts =
            FeedEntry::from_parts(e.encoded().to_vec(), e.signer(), *e.signature()).unwrap();
        assert_eq!(parts, *e);
        assert_eq!(parts.hash(), e.hash());
    }
    let g = &chain[0];
    let rec = g.to_record();
    assert_eq!(&rec[1..3], &[0x58, 93]);
    assert_eq!(&rec[3..96], g.encoded());
    assert_eq!(
        &rec[96..105],
        [&[0x48][..], &g.signer().0[..]].concat().as_slice()
    );
    assert_eq!(&rec[105..107], &[0x58, 0x40]);
    assert_eq!(&rec[107..], g.signature());
}

fn decode_err(bytes: Vec<u8>) -> FeedError {
    let g = genesis(&key(0x11));
    FeedEntry::from_parts(bytes, g.signer(), *g.signature()).unwrap_err()
}

fn is_decode(e: &FeedError) -> bool {
    matches!(e, FeedError::Decode(_))
}

#[test]
fn non_canonical_bytes_are_refused() {
    let kat = hex::decode(KAT_ENTRY).unwrap();
    let splice = |at: usize, len: usize, with: &[u8]| {
        let mut b = kat.clone();
        b.splice(at..at + len, with.iter().copied());
        b
    };
    let cases = [
        // seq 1 as a 1-byte-argument integer (0x18 0x01) instead of 0x01.
        splice(17, 1, &[0x18, 0x01]),
        // format 1 as 0x18 0x01.
        splice(11, 1, &[0x18, 0x01]),
        // province in the 8-byte form.
        splice(12, 5, &[0x1b, 0, 0, 0, 0, 0x00, 0x07, 0xc8, 0x30]),
        // time in the 8-byte form.
        splice(52, 5, &[0x1b, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00]),
        // the statement type 0 as 0x18 0x00.
        splice(58, 1, &[0x18, 0x00]),
        // prev's length as a 2-byte argument.
        splice(18, 2, &[0x59, 0x00, 0x20]),
        // an indefinite-length outer array.
        [&[0x9f][..], &kat[1..], &[0xff]].concat(),
        // the magic as an indefinite-length text of two chunks.
        splice(
            1,
            10,
            &[&[0x7f, 0x64][..], b"hcmr", &[0x65], b"-feed", &[0xff]].concat(),
        ),
    ];
    for (i, bytes) in cases.into_iter().enumerate() {
        // Each decodes to the same values: only the re-encoding check refuses it.
        let want = FeedError::Decode("not in canonical encoding".into());
        assert_eq!(decode_err(bytes), want, "case {i}");
    }
    // The canonical bytes themselves decode.
    let g = genesis(&key(0x11));
    FeedEntry::from_parts(kat, g.signer(), *g.signature()).unwrap();
}

#[test]
fn trailing_and_truncated_bytes_are_refused() {
    let g = genesis(&key(0x11));
    let mut trailing = g.encoded().to_vec();
    trailing.push(0x00);
    assert!(is_decode(&decode_err(trailing)));
    let truncated = g.encoded()[..g.encoded().len() - 1].to_vec();
    assert!(is_decode(&decode_err(truncated)));
    assert!(is_decode(&decode_err(Vec::new())));

    let mut rec = g.to_record();
    rec.push(0xf6);
    assert!(is_decode(&FeedEntry::from_record(&rec).unwrap_err()));
    let rec = g.to_record();
    assert!(is_decode(
        &FeedEntry::from_record(&rec[..rec.len() - 1]).unwrap_err()
    ));
    // A record whose entry has trailing bytes (inside the bstr).
    let mut inner = g.encoded().to_vec();
    inner.push(0x00);
    let rec = crate::cbor::encode(&Value::Array(vec![
        Value::Bytes(inner),
        Value::Bytes(g.signer().0.to_vec()),
        Value::Bytes(g.signature().to_vec()),
    ]));
    assert!(is_decode(&FeedEntry::from_record(&rec).unwrap_err()));
}

#[test]
fn malformed_fields_are_refused() {
    let g = genesis(&key(0x11));
    let entry = |fields: Vec<Value>| crate::cbor::encode(&Value::Array(fields));
    let base = || -> Vec<Value> {
        match crate::cbor::decode_exact(g.encoded()).unwrap() {
            Value::Array(a) => a,
            _ => unreachable!(),
        }
    };
    let set = |i: usize, v: Value| {
        let mut a = base();
        a[i] = v;
        entry(a)
    };
    let stmt = |items: Vec<Value>| set(6, Value::Array(items));
    let key32 = Value::Bytes(key(1).public().to_bytes().to_vec());
    const MAGIC_OR_FORMAT: &str = "not an hcmr feed entry of format 1";
    const KEY_POINT: &str = "not a valid Ed25519 public key (32 bytes, RFC 8032)";
    let cases: [(Vec<u8>, &str); 25] = [
        (set(0, Value::Text("hcmr-feeds".into())), MAGIC_OR_FORMAT),
        (set(1, uint(2)), MAGIC_OR_FORMAT),
        (
            set(2, uint(510001)),
            "province must be a GB/T 2260 province code",
        ), // not a GB/T 2260 province
        (
            set(2, uint(1u64 << 40)),
            "province must be a GB/T 2260 province code",
        ), // out of u32
        (
            set(3, Value::Integer(ciborium::value::Integer::from(-1))),
            "seq must be an unsigned integer",
        ),
        (set(4, Value::Bytes(vec![0; 31])), "prev must be 32 bytes"),
        (
            set(5, Value::Float(1.7e9)),
            "time must be an unsigned integer",
        ),
        (stmt(vec![uint(6), key32.clone()]), "unknown statement"),
        (stmt(vec![uint(0)]), "unknown statement"), // genesis without its key
        (
            stmt(vec![uint(0), Value::Bytes(vec![0; 33])]),
            "key must be 32 bytes",
        ),
        (stmt(vec![uint(0), Value::Bytes(vec![0; 32])]), KEY_POINT), // small order
        (
            stmt(vec![uint(1), key32.clone(), Value::Bytes(vec![0; 63])]),
            "pop must be 64 bytes",
        ),
        (
            stmt(vec![uint(3), Value::Bytes(Vec::new())]),
            "cti must be 16 bytes",
        ),
        (
            stmt(vec![uint(3), Value::Bytes(vec![1; 15])]),
            "cti must be 16 bytes",
        ),
        (
            stmt(vec![uint(3), Value::Bytes(vec![1; 65])]),
            "cti must be 16 bytes",
        ),
        // RevokeCodes: 1 to 4,096 ids of 16 bytes each, in an array.
        (
            stmt(vec![uint(5), Value::Array(Vec::new())]),
            "1 to 4096 ctis in one entry",
        ),
        (
            stmt(vec![
                uint(5),
                Value::Array(vec![Value::Bytes(vec![1; 16]); 4097]),
            ]),
            "1 to 4096 ctis in one entry",
        ),
        (
            stmt(vec![
                uint(5),
                Value::Array(vec![Value::Bytes(vec![1; 16]), Value::Bytes(vec![2; 17])]),
            ]),
            "every cti must be 16 bytes",
        ),
        (
            stmt(vec![uint(5), Value::Array(vec![uint(7)])]),
            "every cti must be 16 bytes",
        ),
        (stmt(vec![uint(5), key32.clone()]), "ctis must be an array"),
        (
            stmt(vec![
                uint(4),
                Value::Bytes(vec![0; 8]),
                Value::Integer(ciborium::value::Integer::from(-5)),
            ]),
            "before must be an unsigned integer",
        ),
        (
            stmt(vec![uint(4), Value::Bytes(vec![0; 7]), uint(1)]),
            "subject hash must be 8 bytes",
        ),
        (entry(base()[..6].to_vec()), MAGIC_OR_FORMAT),
        (entry([base(), vec![Value::Null]].concat()), MAGIC_OR_FORMAT),
        (
            crate::cbor::encode(&Value::Map(Vec::new())),
            "an entry must be an array",
        ),
    ];
    for (i, (bytes, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            decode_err(bytes),
            FeedError::Decode(want.into()),
            "case {i}"
        );
    }
    // Records: wrong shapes and sizes.
    let rec = |items: Vec<Value>| crate::cbor::encode(&Value::Array(items));
    let (e, kid, sig) = (
        Value::Bytes(g.encoded().to_vec()),
        Value::Bytes(g.signer().0.to_vec()),
        Value::Bytes(g.signature().to_vec()),
    );
    for r in [
        rec(vec![e.clone(), kid.clone()]),
        rec(vec![e.clone(), Value::Bytes(vec![0; 7]), sig.clone()]),
        rec(vec![e.clone(), kid.clone(), Value::Bytes(vec![0; 65])]),
        rec(vec![Value::Text("x".into()), kid, sig]),
    ] {
        assert!(is_decode(&FeedEntry::from_record(&r).unwrap_err()));
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile bytes
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        kid in any::<[u8; 8]>(),
        sig in proptest::collection::vec(any::<u8>(), 64),
    ) {
        let sig: [u8; 64] = sig.try_into().unwrap();
        if let Ok(e) = FeedEntry::from_parts(bytes.clone(), Kid(kid), sig) {
            // Whatever decodes is canonical.
            prop_assert_eq!(e.encoded(), bytes.as_slice());
        }
        let _ = FeedEntry::from_record(&bytes);
    }

    #[test]
    fn cbor_shaped_bytes_never_panic(
        // Starting like an entry or a record makes the decoder go deeper than random bytes do.
        head in prop_oneof![Just(vec![0x87u8, 0x69]), Just(vec![0x83u8, 0x58]), Just(vec![0x9fu8])],
        tail in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let bytes = [head, tail].concat();
        let _ = FeedEntry::from_parts(bytes.clone(), Kid([0; 8]), [0; 64]);
        let _ = FeedEntry::from_record(&bytes);
    }

    #[test]
    fn any_change_to_a_signed_entry_is_refused(
        which in 0usize..5,
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        // The chain and the state before each of its entries, made once.
        static FIXTURE: std::sync::OnceLock<(Vec<FeedEntry>, Vec<FeedState>)> =
            std::sync::OnceLock::new();
        let (chain, states) = FIXTURE.get_or_init(|| {
            let chain = every_statement();
            let states = (0..chain.len()).map(|n| state_of(&chain[..n])).collect();
            (chain, states)
        });
        let target = &chain[which];
        let mut bytes = target.encoded().to_vec();
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        // Decoding may fail; if it succeeds, the chain refuses the entry.
        if let Ok(e) = FeedEntry::from_parts(bytes, target.signer(), *target.signature()) {
            let mut s = states[which].clone();
            let before = s.clone();
            prop_assert!(s.apply(&e).is_err());
            prop_assert_eq!(s, before);
        }
    }
}

/// The general (reference) decoders: a CBOR `Value` and a re-encode, as before the fast reader.
fn general_parts(bytes: &[u8], e: &FeedEntry) -> Result<FeedEntry, FeedError> {
    FeedEntry::from_parts_general(bytes.to_vec(), e.signer(), *e.signature())
}

fn general_record(bytes: &[u8]) -> Result<FeedEntry, FeedError> {
    FeedEntry::from_record_general(bytes, FeedEntry::from_parts_general)
}

/// A chain with a RevokeCodes entry of the most ids one entry takes, besides every statement.
fn every_statement_and_a_full_revoke_codes() -> Vec<FeedEntry> {
    let mut chain = every_statement();
    let ctis: Vec<Cti> = (0..MAX_CTIS_PER_ENTRY as u32)
        .map(|i| {
            let mut c = [0x5a; 16];
            c[..4].copy_from_slice(&i.to_be_bytes());
            c
        })
        .collect();
    let last = chain.last().unwrap().clone();
    chain.push(next(&last, 6, Statement::RevokeCodes { ctis }, &key(2)));
    chain
}

#[test]
fn the_fast_reader_reads_every_statement_as_the_general_decoder_does() {
    let chain = every_statement_and_a_full_revoke_codes();
    state_of(&chain);
    for e in &chain {
        // The fast reader takes the canonical bytes (the general decoder is not consulted).
        let fast = wire::read_entry(e.encoded()).expect("canonical bytes take the fast path");
        assert_eq!(fast.province, e.province());
        assert_eq!(fast.seq, e.seq());
        assert_eq!(fast.prev, e.prev);
        assert_eq!(fast.time, e.time());
        assert_eq!(&fast.statement, e.statement());
        assert_eq!(general_parts(e.encoded(), e).unwrap(), *e);
        let rec = e.to_record();
        let (bytes, kid, sig) = wire::read_record(&rec).expect("canonical record");
        assert_eq!(
            (bytes, kid, &sig),
            (e.encoded(), e.signer().0, e.signature())
        );
        assert_eq!(FeedEntry::from_record(&rec).unwrap(), *e);
        assert_eq!(general_record(&rec).unwrap(), *e);
    }
    let Statement::RevokeCodes { ctis } = chain[6].statement() else {
        panic!("entry 7 is a RevokeCodes entry");
    };
    assert_eq!(ctis.len(), 4096);
    assert_eq!(ctis[4095][..4], [0, 0, 0x0f, 0xff]);
    assert_eq!(ctis[4095][4..], [0x5a; 12]);
}

#[test]
fn the_fast_reader_refuses_what_is_not_exactly_canonical() {
    let chain = every_statement_and_a_full_revoke_codes();
    let many = &chain[5]; // [5, [3 ctis]]
    let full = &chain[6];
    let enc = many.encoded();
    // Statement 5's id list as an indefinite-length array: the general decoder refuses it as not
    // canonical, and the fast reader leaves it to it.
    let at = enc.len() - 3 * 17 - 1;
    assert_eq!(enc[at], 0x83);
    let indefinite = [&enc[..at], &[0x9f], &enc[at + 1..], &[0xff]].concat();
    assert!(wire::read_entry(&indefinite).is_none());
    assert_eq!(
        FeedEntry::from_parts(indefinite.clone(), many.signer(), *many.signature()),
        Err(FeedError::Decode("not in canonical encoding".into()))
    );
    // The list's length in a longer form than needed (0x98 0x03 for 3).
    let long_len = [&enc[..at], &[0x98, 0x03], &enc[at + 1..]].concat();
    assert!(wire::read_entry(&long_len).is_none());
    assert_eq!(
        FeedEntry::from_parts(long_len, many.signer(), *many.signature()),
        Err(FeedError::Decode("not in canonical encoding".into()))
    );
    // One cti of 17 bytes in the full entry: refused by both.
    let f = full.encoded();
    let first_cti = f.len() - 4096 * 17;
    assert_eq!(f[first_cti], 0x50);
    let long_cti = [
        &f[..first_cti],
        &[0x51],
        &f[first_cti + 1..first_cti + 17],
        &[0],
        &f[first_cti + 17..],
    ]
    .concat();
    assert!(wire::read_entry(&long_cti).is_none());
    assert_eq!(
        FeedEntry::from_parts(long_cti, full.signer(), *full.signature()),
        Err(FeedError::Decode("every cti must be 16 bytes".into()))
    );
    // 4,097 ids: refused by both.
    let mut over = f.to_vec();
    let list = f.len() - 4096 * 17 - 3;
    assert_eq!(&over[list..list + 3], &[0x99, 0x10, 0x00]);
    over[list + 2] = 0x01;
    over.extend_from_slice(&[0x50; 17]);
    assert!(wire::read_entry(&over).is_none());
    assert_eq!(
        FeedEntry::from_parts(over, full.signer(), *full.signature()),
        Err(FeedError::Decode("1 to 4096 ctis in one entry".into()))
    );
    // A record with a non-canonical head (the kid's length as 0x58 0x08) is not the fast
    // reader's, and decodes through the general path as before.
    let rec = many.to_record();
    let kid_at = rec.len() - 9 - 66;
    assert_eq!(rec[kid_at], 0x48);
    let odd = [&rec[..kid_at], &[0x58, 0x08], &rec[kid_at + 1..]].concat();
    assert!(wire::read_record(&odd).is_none());
    assert_eq!(FeedEntry::from_record(&odd).unwrap(), *many);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The decoders with the fast reader decide exactly as the general ones, on changed, cut,
    /// lengthened and spliced entries and records of every statement.
    #[test]
    fn the_fast_reader_decides_as_the_general_decoder(
        which in 0usize..6,
        edits in proptest::collection::vec(
            (0u8..4, any::<prop::sample::Index>(), any::<u8>()), 1..4),
        on_record in any::<bool>(),
    ) {
        static CHAIN: std::sync::OnceLock<Vec<FeedEntry>> = std::sync::OnceLock::new();
        let chain = CHAIN.get_or_init(every_statement);
        let e = &chain[which];
        let mut bytes = if on_record { e.to_record() } else { e.encoded().to_vec() };
        for (op, at, b) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] ^= b.max(1),
                1 => bytes.insert(i, b),
                2 if i < bytes.len() => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        if on_record {
            prop_assert_eq!(FeedEntry::from_record(&bytes), general_record(&bytes));
        } else {
            let got = FeedEntry::from_parts(bytes.clone(), e.signer(), *e.signature());
            prop_assert_eq!(got, general_parts(&bytes, e));
        }
    }
}

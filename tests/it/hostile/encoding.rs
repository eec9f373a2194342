//! Inputs that are not a code: the prefix, the size cap, Base45, truncation at every stage,
//! and the first draft's zlib compression.

use super::*;

/// The encoding family of the hostile table: (name, expected outcome, run).
#[allow(clippy::too_many_lines)]
pub(super) fn cases() -> Vec<(&'static str, &'static str, Run)> {
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

    v
}

#[test]
fn every_case_gives_its_expected_outcome() {
    run_cases("encoding", &cases());
}

//! Unit tests of the windshield card: the QR symbol read back from the PNG is the manifest
//! string (1 and 55 people), the text of the SVG and of the PDF, and the refusal of what is not
//! a manifest. The A4 sizes of the PDF and the PNG are checked in tests/it/qr.rs.

use super::*;
use crate::card::font_status;
use crate::manifest::sign;
use hcmr_core::testkit::{sc_key, trip};

/// The characters the PDF's /ToUnicode CMaps give for its glyphs: the text a reader extracts.
fn pdf_text_chars(pdf: &[u8]) -> Vec<char> {
    let text = String::from_utf8_lossy(pdf);
    let mut out = Vec::new();
    for section in text.split("beginbfchar").skip(1) {
        let section = section.split("endbfchar").next().unwrap_or("");
        // Pairs "<glyph> <UTF-16BE hex>": every second hex string is the text.
        let hexes: Vec<&str> = section
            .split('<')
            .skip(1)
            .filter_map(|h| h.split('>').next())
            .collect();
        for h in hexes.iter().skip(1).step_by(2) {
            let units: Vec<u16> = (0..h.len() / 4)
                .map(|i| u16::from_str_radix(&h[4 * i..4 * i + 4], 16).unwrap())
                .collect();
            out.extend(char::decode_utf16(units).map(|c| c.unwrap()));
        }
    }
    out
}

#[test]
fn the_png_symbol_reads_back_as_the_manifest_for_1_and_55_people() {
    for (people, version) in [(1, 10), (55, 25)] {
        let s = sign(&trip(people), &sc_key());
        assert_eq!(qr::matrix_at(&s, EcLevel::M).unwrap().version, version);
        let (pdf, png) = windshield_card(&s, DisplayOffset::default()).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{people} people");
        println!(
            "{people} people: {} characters, QR version {version}-M; PDF {} bytes, PNG {} bytes",
            s.len(),
            pdf.len(),
            png.len()
        );
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (2480, 3508), "{people} people");
        assert_eq!(qr::decode_image(&png).unwrap(), s, "{people} people");
    }
}

#[test]
fn the_pdf_holds_the_plate_as_text() {
    // The A4 page size and the 300 dpi PNG: tests/it/qr.rs.
    let s = sign(&trip(20), &sc_key());
    let Rendered {
        pdf,
        missing_glyphs: missing,
        ..
    } = render_with(&s, DisplayOffset::default(), fonts()).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    // The plate is real text: each of its characters that an installed font has (all of them
    // with a CJK font; `川` is left out without one) is among the PDF's text.
    let chars = pdf_text_chars(&pdf);
    let drawn: Vec<char> = "川R·12345"
        .chars()
        .filter(|c| !missing.contains(c))
        .collect();
    assert!(drawn.len() >= 7, "{missing:?}");
    for c in drawn {
        assert!(
            chars.contains(&c),
            "{c:?} is not in the PDF's text {chars:?}"
        );
    }
    if font_status().cjk_family.is_some() {
        assert_eq!(missing, Vec::<char>::new());
    }
}

#[test]
fn the_svg_has_route_place_times_headcount_trip_and_version() {
    let s = sign(&trip(55), &sc_key());
    let svg = windshield_svg(&s, DisplayOffset::default()).unwrap();
    for needle in [
        "width=\"210mm\" height=\"297mm\"",
        "viewBox=\"0 0 2480 3508\"",
        "川R·12345",
        "四川省 → 安徽省 → 浙江省",
        "Sichuan → Anhui → Zhejiang",
        "宁波市某电子厂",
        "浙江省 Zhejiang · 330200",
        "2025-06-16T00:06:40+08:00",
        "2025-06-17T02:06:40+08:00",
        "共 55 人：乘客 54 · 工作人员 1",
        "55 people: 54 passengers, 1 crew",
        "7e7e7e7e7e7e7e7e · v1",
        "Planned departure",
        "Headcount",
    ] {
        assert!(svg.contains(needle), "no {needle:?}");
    }
    // The escort's masked name and the people's prefixes are not printed.
    assert!(!svg.contains("张*三"));
    // In another display offset, the times follow it.
    let utc = windshield_svg(&s, DisplayOffset::UTC).unwrap();
    assert!(utc.contains("2025-06-15T16:06:40+00:00"));
    assert!(utc.contains("2025-06-16T18:06:40+00:00"));
}

#[test]
fn the_svg_escapes_the_texts_of_the_manifest() {
    let mut m = trip(1);
    m.place = crate::manifest::Place::new("<b>&厂").unwrap();
    let svg = windshield_svg(&sign(&m, &sc_key()), DisplayOffset::default()).unwrap();
    assert!(!svg.contains("<b>"));
    assert!(svg.contains("&lt;b&gt;&amp;厂"));
}

#[test]
fn what_is_not_a_manifest_is_refused_with_the_decoders_reason() {
    let code = "HCMR1:NCF+90L10FFWTWGSLK/-4U5929J/7SMVPHT6.7BV%KK-C$966467367F3PRAKP57F3";
    for (s, id) in [(code, "prefix.foreign"), ("", "prefix.empty")] {
        match windshield_card(s, DisplayOffset::default()) {
            Err(CardError::Manifest(e)) => assert_eq!(e.code(), id, "{e}"),
            other => panic!("{s:?}: {other:?}"),
        }
    }
    let truncated = sign(&trip(3), &sc_key());
    let truncated = &truncated[..truncated.len() - 9];
    match windshield_svg(truncated, DisplayOffset::default()) {
        Err(CardError::Manifest(e)) => assert!(
            e.code().starts_with("cbor.") || e.code().starts_with("cose."),
            "{e}"
        ),
        other => panic!("truncated: {other:?}"),
    }
}

#[test]
fn without_any_font_the_symbol_is_whole_and_the_missing_text_is_reported() {
    let s = sign(&trip(1), &sc_key());
    let Rendered {
        pdf,
        png,
        missing_glyphs: missing,
    } = render_with(
        &s,
        DisplayOffset::default(),
        &Fonts::from_db(resvg::usvg::fontdb::Database::new()),
    )
    .unwrap();
    for c in ['川', '省', 'R', 'S'] {
        assert!(missing.contains(&c), "{c:?} should be missing");
    }
    assert!(pdf.starts_with(b"%PDF-"));
    assert_eq!(qr::decode_image(&png).unwrap(), s);
}

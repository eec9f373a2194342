//! Unit tests of the card: text helpers, the SVG's content and escaping, rendering with and
//! without fonts, and the `pHYs` chunk. The round trip from a real signed code is in
//! tests/it/qr.rs.

use super::*;

fn info(status: HealthStatus) -> CardInfo {
    CardInfo {
        code: "HCMR1:NCF+90L10FFWTWGSLK/-4U5929J/7SMVPHT6.7BV%KK-C$966467367F3PRAKP57F3".into(),
        masked_name: "张*三".into(),
        masked_document_number: "5101*1234".into(),
        issuer: Province::from_code(440000).unwrap(),
        status,
        exp: UnixTime::from_secs(1_700_000_300),
        status_valid_until: UnixTime::from_secs(1_701_000_000),
        cti_hex: "000102030405060708090a0b0c0d0e0f".into(),
        utc_offset: crate::display::DisplayOffset::default(),
    }
}

#[test]
fn xml_escape_escapes_markup_and_drops_controls() {
    assert_eq!(
        xml_escape("<a href=\"x\">&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
    );
    assert_eq!(xml_escape("李*英"), "李*英");
    assert_eq!(
        xml_escape("a\u{0}b\u{1b}c\td\u{ffff}"),
        "a\u{fffd}b\u{fffd}c d\u{fffd}"
    );
}

#[test]
fn fitted_size_shrinks_long_text_only() {
    assert_eq!(fitted_size("李*英", 46.0, 740.0), 46.0);
    // 32 hex digits at 0.62 em: 19.84 em in 740 units -> 37.
    assert_eq!(fitted_size(&"a".repeat(32), 40.0, 740.0), 37.0);
    // 60 CJK characters: 740 / 60 = 12.
    assert_eq!(fitted_size(&"中".repeat(60), 46.0, 740.0), 12.0);
    assert_eq!(fitted_size("", 46.0, 740.0), 46.0);
}

#[test]
fn svg_has_every_field_and_the_status_colour() {
    for (status, colour, zh, en) in [
        (HealthStatus::Green, "#1b9e4b", "绿码", "GREEN"),
        (HealthStatus::Yellow, "#f5c518", "黄码", "YELLOW"),
        (HealthStatus::Red, "#d32f2f", "红码", "RED"),
    ] {
        let svg = card_svg(&info(status)).unwrap();
        for needle in [
            "张*三",
            "5101*1234",
            "广东省 健康码",
            "Guangdong Health Code",
            zh,
            en,
            colour,
            "2023-11-15T06:18:20+08:00",
            "2023-11-26T20:00:00+08:00",
            "000102030405060708090a0b0c0d0e0f",
            "viewBox=\"0 0 1240 1748\"",
        ] {
            assert!(svg.contains(needle), "{status}: no {needle:?}");
        }
    }
}

#[test]
fn svg_escapes_hostile_text() {
    // A peer province's code could carry anything in the masked name: it must stay text.
    let mut i = info(HealthStatus::Green);
    i.masked_name = "</text><image href=\"file:///etc/passwd\"/><text>".into();
    i.cti_hex = "&amp;".into();
    let svg = card_svg(&i).unwrap();
    assert!(!svg.contains("<image"));
    assert!(svg.contains("&lt;/text&gt;&lt;image href=&quot;file:///etc/passwd&quot;/&gt;"));
    assert!(svg.contains("&amp;amp;"));
    // Still well-formed: it parses.
    usvg::Tree::from_str(&svg, &usvg::Options::default()).unwrap();
}

#[test]
fn svg_refuses_a_code_that_is_not_alphanumeric() {
    let mut i = info(HealthStatus::Green);
    i.code = "hcmr1:lower".into();
    assert!(matches!(
        card_svg(&i),
        Err(CardError::Qr(QrError::NotAlphanumeric { position: 0, .. }))
    ));
}

#[test]
fn from_code_rejects_what_is_not_a_code() {
    assert!(matches!(
        CardInfo::from_code("HCMR1:ABC"),
        Err(CardError::Code(_))
    ));
}

#[test]
fn missing_glyphs_with_no_fonts_at_all() {
    let db = fontdb::Database::new();
    assert_eq!(missing_in(&db, "李* 英"), vec!['*', '李', '英']);
    assert_eq!(missing_in(&db, "  "), Vec::<char>::new());
}

#[test]
fn png_without_any_font_still_renders_and_reports_the_missing_text() {
    let fonts = Fonts::from_db(fontdb::Database::new());
    assert_eq!(fonts.cjk_family, None);
    let i = info(HealthStatus::Red);
    let r = render_png_with(&i, &fonts).unwrap();
    for c in ['张', '三', '广', 'G', '5', '*'] {
        assert!(r.missing_glyphs.contains(&c), "{c:?} should be missing");
    }
    let img = image::load_from_memory(&r.bytes).unwrap().into_rgb8();
    assert_eq!(img.dimensions(), (WIDTH_PX, HEIGHT_PX));
    // The header band is drawn in the status colour all the same.
    assert_eq!(img.get_pixel(620, 30).0, [0xd3, 0x2f, 0x2f]);
    // And the PDF too.
    let pdf = render_pdf_with(&i, &fonts).unwrap();
    assert!(pdf.bytes.starts_with(b"%PDF-"));
    assert_eq!(pdf.missing_glyphs, r.missing_glyphs);
}

#[test]
fn png_with_system_fonts_has_the_band_colour_and_size() {
    let i = info(HealthStatus::Green);
    let r = render_png(&i).unwrap();
    let img = image::load_from_memory(&r.bytes).unwrap().into_rgb8();
    assert_eq!(img.dimensions(), (1240, 1748));
    assert_eq!(img.get_pixel(100, 30).0, [0x1b, 0x9e, 0x4b]);
    // Outside the dashed cut line: white.
    assert_eq!(img.get_pixel(1, 1).0, [255, 255, 255]);
    if font_status().cjk_family.is_some() {
        assert_eq!(r.missing_glyphs, Vec::<char>::new());
    }
}

#[test]
fn phys_chunk_is_valid() {
    let png = tiny_skia::Pixmap::new(2, 2).unwrap().encode_png().unwrap();
    let out = with_phys_dpi(png.clone(), 300);
    assert_eq!(out.len(), png.len() + 21);
    // Length 9, "pHYs", 11811 px/m twice, unit 1, then the CRC-32 of type and data.
    assert_eq!(
        &out[33..54],
        &[
            0, 0, 0, 9, b'p', b'H', b'Y', b's', 0, 0, 0x2e, 0x23, 0, 0, 0x2e, 0x23, 1, 0x78, 0xa5,
            0x3f, 0x76
        ]
    );
    // Still a PNG that decoders accept.
    assert_eq!(image::load_from_memory(&out).unwrap().width(), 2);
    // Not a PNG: unchanged.
    assert_eq!(with_phys_dpi(b"nope".to_vec(), 300), b"nope");
}

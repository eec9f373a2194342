//! QR round trips with real health codes: `hcmr::code::encode` -> `qr::encode_png` -> an image
//! changed the way a phone camera or a screenshot changes it -> `qr::decode_image`, which must
//! give back exactly the code string. Plus the decoder's errors, the QR version of a typical
//! code, and the printable card (its QR must scan; its size must be A6 at 300 dpi).

use std::io::Cursor;

use hcmr::card::{self, CardInfo};
use hcmr::code::{self, Claims, HealthCode, Subject};
use hcmr::identity::{DocumentType, SubjectKey};
use hcmr::province::Province;
use hcmr::qr::{self, QrError};
use hcmr::status::HealthStatus;
use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, ImageFormat, Luma, Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Module size of the PNGs under test, in pixels (a phone screen shows about 6 to 10).
const MODULE_PX: u32 = 6;

/// A typical code as a Sichuan node issues it (the README's example person, synthetic).
fn typical_claims() -> Claims {
    let subject_key = SubjectKey::from_bytes([0x11; 32]);
    Claims {
        iss: "510000".into(),
        iat: hcmr::UnixTime::from_secs(1_767_225_600), // 2026-01-01T00:00:00Z
        exp: hcmr::UnixTime::from_secs(1_767_225_900), // + 5 min
        status_valid_until: hcmr::UnixTime::from_secs(1_768_435_200), // + 14 days
        status: HealthStatus::Yellow.to_u64(),
        subject: Subject {
            masked_name: "李*英".into(),
            document_type: DocumentType::ResidentIdentityCard,
            masked_document_number: "5113*242X".into(),
            subject_hash: subject_key
                .subject_hash(DocumentType::ResidentIdentityCard, "51130219900721242X"),
        },
    }
}

/// The signed code string of [`typical_claims`] under a fixed Sichuan key.
fn typical_code() -> String {
    let key = hcmr_core::testkit::key(0x42);
    let code = code::encode(&typical_claims(), &key);
    // It is a real code: it decodes and its signature verifies.
    let hc = HealthCode::decode(&code).expect("a well-formed code");
    assert!(hc.signature_valid(&key.public()));
    code
}

fn png_of(img: &DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg_of(img: &DynamicImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    img.to_rgb8().write_with_encoder(enc).unwrap();
    out
}

/// The code's QR symbol as a grayscale image, as `encode_png` writes it.
fn qr_gray(code: &str, module_px: u32) -> GrayImage {
    let png = qr::encode_png(code, module_px).unwrap();
    image::load_from_memory(&png).unwrap().into_luma8()
}

fn scaled(img: &GrayImage, factor: f64) -> GrayImage {
    let w = (f64::from(img.width()) * factor).round() as u32;
    let h = (f64::from(img.height()) * factor).round() as u32;
    imageops::resize(img, w, h, FilterType::Triangle)
}

/// Rotation by `degrees` (counter-clockwise) about the centre, bilinear, onto a canvas large
/// enough for the whole turned image, the corners filled with `fill`.
fn rotated(img: &GrayImage, degrees: f64, fill: u8) -> GrayImage {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let (s, c) = degrees.to_radians().sin_cos();
    let nw = (w * c.abs() + h * s.abs()).ceil();
    let nh = (w * s.abs() + h * c.abs()).ceil();
    let (cx, cy, ncx, ncy) = (w / 2.0, h / 2.0, nw / 2.0, nh / 2.0);
    GrayImage::from_fn(nw as u32, nh as u32, |x, y| {
        // Inverse map: the source point that lands on (x, y).
        let (dx, dy) = (f64::from(x) + 0.5 - ncx, f64::from(y) + 0.5 - ncy);
        let sx = c * dx - s * dy + cx - 0.5;
        let sy = s * dx + c * dy + cy - 0.5;
        let at = |ix: f64, iy: f64| -> f64 {
            if ix < 0.0 || iy < 0.0 || ix >= w || iy >= h {
                f64::from(fill)
            } else {
                f64::from(img.get_pixel(ix as u32, iy as u32).0[0])
            }
        };
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let v = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
            + at(x0 + 1.0, y0) * fx * (1.0 - fy)
            + at(x0, y0 + 1.0) * (1.0 - fx) * fy
            + at(x0 + 1.0, y0 + 1.0) * fx * fy;
        Luma([v.round().clamp(0.0, 255.0) as u8])
    })
}

fn decode_gray(img: &GrayImage) -> Result<String, QrError> {
    qr::decode_image(&png_of(&DynamicImage::ImageLuma8(img.clone())))
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Issue 7: a code for a typical subject fits QR version 10 or lower at level Q. The COSE bytes
/// are 141 (docs/code-format.md section 2), Base45 makes 212 characters of them, and the prefix
/// 6 more: 218 of the 221 alphanumeric characters version 10-Q holds.
#[test]
fn typical_code_version_at_level_q() {
    let code = typical_code();
    let version = qr::version_for(&code).unwrap();
    println!(
        "typical code: {} characters, QR version {version} at level Q ({} modules a side)",
        code.len(),
        17 + 4 * u32::from(version)
    );
    assert_eq!(code.len(), 218, "{code}");
    assert_eq!(code.chars().count(), 218);
    assert_eq!(hcmr::code::transport::unwrap(&code).unwrap().len(), 141);
    assert!(version <= 10, "version {version} is above 10 at level Q");
    assert_eq!(version, 10);
    // Version 10-Q holds 221 alphanumeric characters; one more needs version 11.
    assert_eq!(qr::version_for(&"A".repeat(221)).unwrap(), 10);
    assert_eq!(qr::version_for(&"A".repeat(222)).unwrap(), 11);
    // The PNG is exactly (modules + 2 x quiet zone) x module size on a side.
    let img = qr_gray(&code, MODULE_PX);
    let side = (17 + 4 * u32::from(version) + 2 * qr::QUIET_ZONE) * MODULE_PX;
    assert_eq!(img.dimensions(), (side, side));
}

#[test]
fn png_round_trip_gives_back_the_exact_code() {
    let code = typical_code();
    for module_px in [2, 4, MODULE_PX, 10] {
        let png = qr::encode_png(&code, module_px).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(
            qr::decode_image(&png).unwrap(),
            code,
            "module_px {module_px}"
        );
    }
}

#[test]
fn svg_round_trip_through_a_rasterizer() {
    let code = typical_code();
    let svg = qr::encode_svg(&code).unwrap();
    let tree = resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::identity(),
        &mut pixmap.as_mut(),
    );
    let png = pixmap.encode_png().unwrap();
    assert_eq!(qr::decode_image(&png).unwrap(), code);
}

#[test]
fn encode_refuses_what_is_not_alphanumeric() {
    let lower = "hcmr1:abc";
    assert!(matches!(
        qr::encode_png(lower, 4),
        Err(QrError::NotAlphanumeric {
            position: 0,
            found: 'h'
        })
    ));
    assert!(matches!(
        qr::encode_svg("HCMR1:李"),
        Err(QrError::NotAlphanumeric {
            position: 6,
            found: '李'
        })
    ));
    assert!(matches!(qr::version_for(""), Err(QrError::Empty)));
}

// ---------------------------------------------------------------------------------------------
// Decoding photos and screenshots
// ---------------------------------------------------------------------------------------------

#[test]
fn scaled_down_to_60_percent() {
    let code = typical_code();
    let img = scaled(&qr_gray(&code, MODULE_PX), 0.6);
    assert_eq!(decode_gray(&img).unwrap(), code);
}

#[test]
fn scaled_up_to_150_percent() {
    let code = typical_code();
    let img = scaled(&qr_gray(&code, MODULE_PX), 1.5);
    assert_eq!(decode_gray(&img).unwrap(), code);
}

#[test]
fn rotated_by_90_degrees() {
    let code = typical_code();
    let img = imageops::rotate90(&qr_gray(&code, MODULE_PX));
    assert_eq!(decode_gray(&img).unwrap(), code);
    let img = imageops::rotate270(&qr_gray(&code, MODULE_PX));
    assert_eq!(decode_gray(&img).unwrap(), code);
}

#[test]
fn rotated_by_7_degrees() {
    let code = typical_code();
    let img = rotated(&qr_gray(&code, MODULE_PX), 7.0, 255);
    assert_eq!(decode_gray(&img).unwrap(), code);
    let img = rotated(&qr_gray(&code, MODULE_PX), -7.0, 255);
    assert_eq!(decode_gray(&img).unwrap(), code);
}

#[test]
fn light_gaussian_blur() {
    let code = typical_code();
    let img = imageops::blur(&qr_gray(&code, MODULE_PX), 1.0);
    assert_eq!(decode_gray(&img).unwrap(), code);
}

#[test]
fn jpeg_re_encoding() {
    let code = typical_code();
    let img = DynamicImage::ImageLuma8(qr_gray(&code, MODULE_PX));
    for quality in [85, 50] {
        let jpeg = jpeg_of(&img, quality);
        assert_eq!(&jpeg[..2], b"\xff\xd8", "a JPEG");
        assert_eq!(qr::decode_image(&jpeg).unwrap(), code, "quality {quality}");
    }
}

/// A photo of a phone showing the code: a large, noisy, unevenly lit scene; a dark phone body;
/// a screen that is not pure white; the symbol scaled and slightly turned; sensor noise over
/// everything; saved as a JPEG.
fn phone_photo(code: &str, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (w, h) = (1600u32, 1200u32);
    let mut scene = RgbImage::from_fn(w, h, |x, y| {
        // A warm table top lit from the left, with grain.
        let light = 200.0 - 90.0 * f64::from(x) / f64::from(w) - 30.0 * f64::from(y) / f64::from(h);
        Rgb([
            (light * 0.9) as u8,
            (light * 0.75) as u8,
            (light * 0.55) as u8,
        ])
    });
    // Some clutter: random dark and light blocks (keys, paper, a pen).
    for _ in 0..40 {
        let (bx, by) = (rng.gen_range(0..w - 80), rng.gen_range(0..h - 80));
        let (bw, bh) = (rng.gen_range(10..80), rng.gen_range(10..80));
        let v: u8 = rng.gen_range(0..255);
        for y in by..by + bh {
            for x in bx..bx + bw {
                scene.put_pixel(x, y, Rgb([v, v, v.saturating_sub(20)]));
            }
        }
    }
    // The phone body and its screen.
    let (px, py, pw, ph) = (520u32, 160u32, 520u32, 900u32);
    for y in py..py + ph {
        for x in px..px + pw {
            scene.put_pixel(x, y, Rgb([25, 25, 30]));
        }
    }
    let (sx, sy, sw, sh) = (px + 20, py + 60, pw - 40, ph - 120);
    for y in sy..sy + sh {
        for x in sx..sx + sw {
            scene.put_pixel(x, y, Rgb([228, 232, 236]));
        }
    }
    // The symbol on the screen, as the camera sees it: smaller, turned 4 degrees, slightly grey.
    let symbol = rotated(&scaled(&qr_gray(code, MODULE_PX), 0.75), 4.0, 255);
    let (qx, qy) = (sx + (sw - symbol.width()) / 2, sy + 120);
    for (x, y, p) in symbol.enumerate_pixels() {
        let v = 30 + (u32::from(p.0[0]) * 198 / 255) as u8;
        scene.put_pixel(
            qx + x,
            qy + y,
            Rgb([v, v.saturating_add(4), v.saturating_add(8)]),
        );
    }
    // Sensor noise.
    for p in scene.pixels_mut() {
        for ch in p.0.iter_mut() {
            let n: i16 = rng.gen_range(-18..=18);
            *ch = (i16::from(*ch) + n).clamp(0, 255) as u8;
        }
    }
    let blurred = imageops::blur(&scene, 0.8);
    jpeg_of(&DynamicImage::ImageRgb8(blurred), 80)
}

#[test]
fn photo_of_a_phone_screen_on_a_noisy_background() {
    let code = typical_code();
    for seed in [1, 3] {
        let photo = phone_photo(&code, seed);
        assert_eq!(qr::decode_image(&photo).unwrap(), code, "seed {seed}");
    }
}

#[test]
fn dark_mode_screenshot_light_modules_on_dark() {
    let code = typical_code();
    let mut img = qr_gray(&code, MODULE_PX);
    imageops::invert(&mut img);
    assert_eq!(decode_gray(&img).unwrap(), code);
}

#[test]
fn transparent_png_counts_as_white_paper() {
    // Dark modules opaque black, light modules fully transparent (as many apps export).
    let code = typical_code();
    let gray = qr_gray(&code, MODULE_PX);
    let rgba = image::RgbaImage::from_fn(gray.width(), gray.height(), |x, y| {
        if gray.get_pixel(x, y).0[0] < 128 {
            image::Rgba([0, 0, 0, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let png = png_of(&DynamicImage::ImageRgba8(rgba));
    assert_eq!(qr::decode_image(&png).unwrap(), code);
}

#[test]
fn decode_file_reads_a_png_from_disk() {
    let code = typical_code();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("code.png");
    std::fs::write(&path, qr::encode_png(&code, MODULE_PX).unwrap()).unwrap();
    assert_eq!(qr::decode_file(&path).unwrap(), code);
    let missing = dir.path().join("missing.png");
    assert!(matches!(qr::decode_file(&missing), Err(QrError::Io { .. })));
}

// ---------------------------------------------------------------------------------------------
// Decoder errors
// ---------------------------------------------------------------------------------------------

#[test]
fn image_without_a_qr_code() {
    // A noisy photo-like picture with no symbol in it.
    let mut rng = StdRng::seed_from_u64(9);
    let img = GrayImage::from_fn(640, 480, |x, y| {
        let base = (x / 4 + y / 3) as i32 % 200;
        Luma([(base + rng.gen_range(0..40)).clamp(0, 255) as u8])
    });
    let err = decode_gray(&img).unwrap_err();
    assert!(matches!(err, QrError::NoQrCode), "{err:?}");
    assert_eq!(err.to_string(), "no QR code found in the image");
    // A blank white image and a JPEG too.
    let white = DynamicImage::ImageLuma8(GrayImage::from_pixel(300, 300, Luma([255])));
    assert!(matches!(
        qr::decode_image(&png_of(&white)),
        Err(QrError::NoQrCode)
    ));
    assert!(matches!(
        qr::decode_image(&jpeg_of(&white, 90)),
        Err(QrError::NoQrCode)
    ));
}

#[test]
fn garbage_bytes_are_not_an_image() {
    let err = qr::decode_image(b"HCMR1:this is text, not a picture").unwrap_err();
    assert!(matches!(err, QrError::NotAnImage(_)), "{err:?}");
    assert!(err.to_string().starts_with("not an image"), "{err}");
    assert!(matches!(qr::decode_image(&[]), Err(QrError::NotAnImage(_))));
    // A PNG signature followed by garbage: recognised, but corrupt.
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend_from_slice(&[0x5a; 64]);
    assert!(matches!(
        qr::decode_image(&broken),
        Err(QrError::NotAnImage(_))
    ));
    // A truncated real PNG.
    let png = qr::encode_png(&typical_code(), 4).unwrap();
    assert!(matches!(
        qr::decode_image(&png[..png.len() / 2]),
        Err(QrError::NotAnImage(_))
    ));
}

#[test]
fn other_image_formats_are_unsupported() {
    // A GIF header: a real image format, not read by this build.
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    let err = qr::decode_image(gif).unwrap_err();
    assert!(matches!(err, QrError::UnsupportedFormat(_)), "{err:?}");
}

#[test]
fn damaged_symbol_is_found_but_unreadable() {
    // Wipe a band through the middle of the data area: the finder patterns survive, the data
    // cannot be corrected.
    let code = typical_code();
    let mut img = qr_gray(&code, MODULE_PX);
    let (w, h) = img.dimensions();
    let mut rng = StdRng::seed_from_u64(5);
    for y in h * 35 / 100..h * 65 / 100 {
        for x in w * 10 / 100..w * 90 / 100 {
            img.put_pixel(x, y, Luma([if rng.gen_bool(0.5) { 0 } else { 255 }]));
        }
    }
    let err = decode_gray(&img).unwrap_err();
    assert!(matches!(err, QrError::Unreadable(_)), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("a QR code was found in the image but could not be read"));
}

#[test]
fn symbol_holding_non_utf8_bytes_is_not_text() {
    // A byte-mode symbol of bytes that are not UTF-8, made with the qrcode crate's own API
    // through a small hand-rendered image.
    let matrix = byte_mode_symbol(&[0xff, 0xfe, 0x80, 0x81, 0xc3]);
    let err = decode_gray(&matrix).unwrap_err();
    assert!(matches!(err, QrError::NotText), "{err:?}");
}

/// Renders a byte-mode QR symbol of `data` (not a health code), 8 px a module, quiet zone 4.
fn byte_mode_symbol(data: &[u8]) -> GrayImage {
    let q = qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M).unwrap();
    let n = q.width() as u32;
    let colors = q.to_colors();
    let px = 8u32;
    let side = (n + 8) * px;
    GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / px, y / px);
        let dark = (4..n + 4).contains(&mx)
            && (4..n + 4).contains(&my)
            && colors[((my - 4) * n + (mx - 4)) as usize] == qrcode::Color::Dark;
        Luma([if dark { 0 } else { 255 }])
    })
}

// ---------------------------------------------------------------------------------------------
// The printable card
// ---------------------------------------------------------------------------------------------

fn typical_card() -> CardInfo {
    let code = typical_code();
    let info = CardInfo::from_code(&code).unwrap();
    assert_eq!(
        info,
        CardInfo {
            code: code.clone(),
            masked_name: "李*英".into(),
            masked_document_number: "5113*242X".into(),
            issuer: Province::from_code(510000).unwrap(),
            status: HealthStatus::Yellow,
            exp: hcmr::UnixTime::from_secs(1_767_225_900),
            status_valid_until: hcmr::UnixTime::from_secs(1_768_435_200),
            cti_hex: hex::encode(HealthCode::decode(&code).unwrap().cti()),
            utc_offset: hcmr::display::DisplayOffset::default(),
        }
    );
    info
}

#[test]
fn card_png_is_a6_at_300_dpi_and_its_qr_scans() {
    let info = typical_card();
    let png = card::card_png(&info).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!((img.width(), img.height()), (1240, 1748));
    assert_eq!((card::WIDTH_PX, card::HEIGHT_PX), (1240, 1748));
    assert_300_dpi(&png);
    // The symbol on the card scans back to the exact code string.
    assert_eq!(qr::decode_image(&png).unwrap(), info.code);
}

/// The pHYs chunk of `png` says 11811 pixels a metre (300 dpi) on both axes.
fn assert_300_dpi(png: &[u8]) {
    let phys = png
        .windows(4)
        .position(|w| w == b"pHYs")
        .expect("a pHYs chunk");
    assert_eq!(
        &png[phys + 4..phys + 13],
        &[0, 0, 0x2e, 0x23, 0, 0, 0x2e, 0x23, 1]
    );
}

/// `pdf` is a PDF of one page of `width` x `height` points (1 pt = 1/72 in).
fn assert_one_page(pdf: &[u8], width: f64, height: f64) {
    assert!(pdf.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(pdf);
    let mediabox = text
        .split("/MediaBox")
        .nth(1)
        .expect("a MediaBox")
        .split(']')
        .next()
        .unwrap()
        .trim()
        .trim_start_matches('[')
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(mediabox.len(), 4, "{mediabox:?}");
    assert!(
        (mediabox[2] - mediabox[0] - width).abs() < 0.1,
        "{mediabox:?}"
    );
    assert!(
        (mediabox[3] - mediabox[1] - height).abs() < 0.1,
        "{mediabox:?}"
    );
    assert_eq!(text.matches("/Type /Page\n").count(), 1, "one page");
}

#[test]
fn card_svg_carries_the_masked_subject_and_the_province() {
    let info = typical_card();
    let svg = card::card_svg(&info).unwrap();
    for needle in [
        "李*英",
        "5113*242X",
        "四川省",
        "Sichuan",
        "黄码",
        "YELLOW",
        // Times in Beijing time, with the offset (issue 14: not UTC for a holder in China).
        "2026-01-15T08:00:00+08:00", // status valid until
        "2026-01-01T08:05:00+08:00", // code valid until
        info.cti_hex.as_str(),
        "width=\"105mm\" height=\"148mm\"",
    ] {
        assert!(svg.contains(needle), "the card SVG lacks {needle:?}");
    }
    // Nothing of the full identity is on the card.
    assert!(!svg.contains("51130219900721242X"));
    assert!(!svg.contains("李秀英"));
}

#[test]
fn card_pdf_is_one_a6_page() {
    let info = typical_card();
    let pdf = card::card_pdf(&info).unwrap();
    // 105 x 148 mm in points: 297.6377 x 419.5276.
    assert_one_page(&pdf, 297.6377, 419.5276);
}

/// The windshield card of a trip manifest (issue 17): one A4 page, and a PNG of A4 at 300 dpi
/// whose symbol scans back to the manifest string (20 people, version 17-M).
#[test]
fn windshield_card_is_one_a4_page_and_a_300_dpi_png() {
    use hcmr_core::testkit::{sc_key, trip};
    let manifest = hcmr::manifest::sign(&trip(20), &sc_key());
    let (pdf, png) =
        card::windshield_card(&manifest, hcmr::display::DisplayOffset::default()).unwrap();
    // 210 x 297 mm in points: 595.2756 x 841.8898.
    assert_one_page(&pdf, 595.2756, 841.8898);
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!((img.width(), img.height()), (2480, 3508));
    assert_eq!((card::A4_WIDTH_PX, card::A4_HEIGHT_PX), (2480, 3508));
    assert_300_dpi(&png);
    assert_eq!(qr::decode_image(&png).unwrap(), manifest);
}

#[test]
fn card_fonts_cover_the_text_when_a_cjk_font_is_installed() {
    let status = card::font_status();
    let info = typical_card();
    let rendered = card::render_png(&info).unwrap();
    println!(
        "card fonts: {status:?}; missing glyphs: {}",
        rendered.missing_glyphs.len()
    );
    match status.cjk_family {
        // With a CJK font, every character of the card is drawn.
        Some(_) => assert_eq!(rendered.missing_glyphs, Vec::<char>::new()),
        // Without one, the Chinese characters are reported missing, and the card still scans.
        None => {
            assert!(rendered.missing_glyphs.contains(&'李'));
            assert_eq!(qr::decode_image(&rendered.bytes).unwrap(), info.code);
        }
    }
}

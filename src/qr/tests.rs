//! Unit tests of the QR encoder's choices (mode, level, version, rendering) and of the decoder's
//! image variants. Round trips through real photos and screenshots are in tests/it/qr.rs.

use super::*;

/// RFC 9285's Base45 alphabet, which is the QR alphanumeric set.
const BASE45: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

#[test]
fn alphanumeric_set_is_the_base45_alphabet() {
    for c in (0u8..=127).map(char::from) {
        assert_eq!(is_qr_alphanumeric(c), BASE45.contains(c), "{c:?}");
    }
    assert!(!is_qr_alphanumeric('李'));
    assert!(!is_qr_alphanumeric('ａ'));
}

#[test]
fn not_alphanumeric_names_the_character_and_its_position() {
    let err = version_for("HCMR1:AB\u{e4}C").unwrap_err();
    assert!(matches!(
        err,
        QrError::NotAlphanumeric {
            position: 8,
            found: '\u{e4}'
        }
    ));
    assert_eq!(
        err.to_string(),
        "character '\u{e4}' at position 8 is not QR alphanumeric (0-9, A-Z, space and \
         $%*+-./: only); a health code string never contains it"
    );
    assert!(matches!(
        version_for("HCMR1:abc"),
        Err(QrError::NotAlphanumeric {
            position: 6,
            found: 'a'
        })
    ));
    assert!(matches!(encode_svg(""), Err(QrError::Empty)));
}

#[test]
fn smallest_version_at_level_q_by_capacity() {
    // ISO/IEC 18004 table 7, alphanumeric at level Q: version 1 holds 16, version 2 holds 29,
    // version 40 holds 2420 characters (1852 is level H).
    let s = |n: usize| "A".repeat(n);
    assert_eq!(version_for(&s(1)).unwrap(), 1);
    assert_eq!(version_for(&s(16)).unwrap(), 1);
    assert_eq!(version_for(&s(17)).unwrap(), 2);
    assert_eq!(version_for(&s(29)).unwrap(), 2);
    assert_eq!(version_for(&s(30)).unwrap(), 3);
    assert_eq!(version_for(&s(2420)).unwrap(), 40);
    assert!(matches!(
        version_for(&s(2421)),
        Err(QrError::TooLong { chars: 2421 })
    ));
    assert!(matches!(
        version_for(&s(100_000)),
        Err(QrError::TooLong { chars: 100_000 })
    ));
}

#[test]
fn matrix_has_the_size_and_finder_patterns_of_its_version() {
    let m = matrix("HCMR1:ABC").unwrap();
    assert_eq!(m.version, 1);
    assert_eq!(m.width, 21);
    assert_eq!(m.total_width(), 29);
    // The top-left finder pattern: a dark 7x7 ring, a light ring, a dark 3x3 centre.
    for i in 0..7 {
        assert!(m.is_dark(i, 0) && m.is_dark(0, i) && m.is_dark(i, 6) && m.is_dark(6, i));
    }
    for i in 1..6 {
        assert!(!m.is_dark(i, 1) && !m.is_dark(1, i));
    }
    for (x, y) in [(2, 2), (3, 3), (4, 4), (2, 4), (4, 2)] {
        assert!(m.is_dark(x, y));
    }
    // The separator beside it is light.
    assert!((0..8).all(|i| !m.is_dark(7, i) && !m.is_dark(i, 7)));
}

#[test]
fn png_has_quiet_zone_and_exact_size() {
    let code = "HCMR1:ABC";
    let png = encode_png(code, 3).unwrap();
    let img = image::load_from_memory(&png).unwrap().into_luma8();
    assert_eq!(img.dimensions(), (29 * 3, 29 * 3));
    // The quiet zone (4 modules = 12 px) is white all round; the first finder module is black.
    for i in 0..img.width() {
        for j in 0..12 {
            assert_eq!(img.get_pixel(i, j).0[0], 255);
            assert_eq!(img.get_pixel(j, i).0[0], 255);
            assert_eq!(img.get_pixel(i, img.height() - 1 - j).0[0], 255);
            assert_eq!(img.get_pixel(img.width() - 1 - j, i).0[0], 255);
        }
    }
    assert_eq!(img.get_pixel(12, 12).0[0], 0);
    assert_eq!(img.get_pixel(14, 14).0[0], 0);
    assert_eq!(img.get_pixel(15, 15).0[0], 255);
    // Only black and white.
    assert!(img.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
}

#[test]
fn png_module_size_is_bounded() {
    assert!(matches!(encode_png("A", 0), Err(QrError::ModuleSize(0))));
    assert!(matches!(encode_png("A", 33), Err(QrError::ModuleSize(33))));
    assert!(encode_png("A", MAX_MODULE_PX).is_ok());
}

#[test]
fn svg_draws_each_dark_run_once() {
    let code = "HCMR1:ABC";
    let m = matrix(code).unwrap();
    let svg = encode_svg(code).unwrap();
    assert!(svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "));
    assert!(svg.contains("viewBox=\"0 0 29 29\""));
    assert!(svg.contains("width=\"232\" height=\"232\""));
    assert!(svg.contains("shape-rendering=\"crispEdges\""));
    // One `M` per horizontal run of dark modules, and as many dark modules as the matrix has.
    let runs: usize = (0..m.width)
        .map(|y| {
            (0..m.width)
                .filter(|&x| m.is_dark(x, y) && (x == 0 || !m.is_dark(x - 1, y)))
                .count()
        })
        .sum();
    let d = m.svg_path_data(4);
    assert_eq!(d.matches('M').count(), runs);
    let dark_in_path: usize = d
        .split('h')
        .skip(1)
        .step_by(2)
        .map(|n| n.split('v').next().unwrap().parse::<usize>().unwrap())
        .sum();
    let dark = (0..m.width)
        .flat_map(|y| (0..m.width).map(move |x| (x, y)))
        .filter(|&(x, y)| m.is_dark(x, y))
        .count();
    assert_eq!(dark_in_path, dark);
    // The first run starts at the quiet-zone offset: the finder pattern's top row.
    assert!(d.starts_with("M4,4h7v1h-7z"), "{}", &d[..20]);
}

#[test]
fn transparency_is_composited_over_white() {
    let la = image::GrayAlphaImage::from_fn(3, 1, |x, _| match x {
        0 => image::LumaA([0, 0]),     // fully transparent black: paper
        1 => image::LumaA([0, 255]),   // opaque black
        _ => image::LumaA([100, 128]), // half-transparent grey
    });
    let g = to_gray_on_white(DynamicImage::ImageLumaA8(la));
    // (100 x 128 + 255 x 127 + 127) / 255 = 177.
    assert_eq!(g.as_raw(), &vec![255, 0, 177]);
}

#[test]
fn otsu_separates_a_two_level_image() {
    let img = GrayImage::from_fn(10, 10, |x, _| Luma([if x < 4 { 40 } else { 200 }]));
    let level = otsu_level(&img);
    assert!((40..200).contains(&level), "{level}");
    let b = binarize(&img);
    assert_eq!(b.pixels().filter(|p| p.0[0] == 0).count(), 40);
    assert_eq!(b.pixels().filter(|p| p.0[0] == 255).count(), 60);
}

#[test]
fn stretch_maps_the_used_range_to_full_contrast() {
    // Values 100..=150, evenly: the 1st and 99th percentiles are 100 and 150.
    let img = GrayImage::from_fn(51, 4, |x, _| Luma([100 + x as u8]));
    let s = stretch(&img);
    assert_eq!(s.get_pixel(0, 0).0[0], 0);
    assert_eq!(s.get_pixel(50, 0).0[0], 255);
    assert_eq!(s.get_pixel(25, 0).0[0], 127);
    // A flat image is left alone.
    let flat = GrayImage::from_pixel(5, 5, Luma([77]));
    assert_eq!(stretch(&flat), flat);
}

#[test]
fn downscaled_and_upscaled_variants_apply_by_size() {
    let small = GrayImage::new(150, 100);
    assert!(downscale(&small).is_none());
    assert_eq!(
        Variant::Upscaled.apply(&small).unwrap().dimensions(),
        (300, 200)
    );
    let mid = GrayImage::new(400, 300);
    assert_eq!(downscale(&mid).unwrap().dimensions(), (200, 150));
    let photo = GrayImage::new(3000, 2000);
    assert_eq!(downscale(&photo).unwrap().dimensions(), (1000, 666));
    assert!(Variant::Upscaled.apply(&photo).is_none());
}

#[test]
fn blank_image_shows_no_symbol() {
    let white = GrayImage::from_pixel(200, 200, Luma([255]));
    assert!(matches!(read_first(white), Attempt::Nothing));
}

#[test]
fn decoder_error_messages() {
    assert_eq!(
        QrError::NoQrCode.to_string(),
        "no QR code found in the image"
    );
    assert_eq!(
        QrError::NotText.to_string(),
        "the QR code was read, but its content is not text (not valid UTF-8)"
    );
    assert_eq!(
        QrError::UnsupportedFormat("Gif".into()).to_string(),
        "unsupported image format Gif: only PNG and JPEG are read"
    );
}

/// The smallest version that holds `s` as one alphanumeric segment at level `ec`.
fn version_at(s: &str, ec: EcLevel) -> Option<i16> {
    (1..=40i16).find(|v| {
        let mut bits = Bits::new(Version::Normal(*v));
        bits.push_alphanumeric_data(s.as_bytes()).is_ok() && bits.push_terminator(ec).is_ok()
    })
}

/// docs/transport.md section 3.2: the typical trip manifest (hcmr_core::testkit::trip) of 1, 20
/// and 55 people needs QR version 10, 17 and 25 at level M; 55 people fit version 25-M, with
/// the largest fields too.
#[test]
fn trip_manifests_fit_the_versions_of_the_transport_doc() {
    use hcmr_core::testkit::{sc_key, trip};
    for (people, version) in [(1, 10), (20, 17), (55, 25)] {
        let s = hcmr_core::manifest::sign(&trip(people), &sc_key());
        check_alphanumeric(&s).unwrap();
        assert_eq!(version_at(&s, EcLevel::M), Some(version), "{people} people");
        let qr = QrCode::with_version(s.as_bytes(), Version::Normal(version), EcLevel::M);
        assert!(qr.is_ok(), "{people} people");
    }
    // The largest fields (hcmr_core::testkit::largest_trip); 99 people, the most a manifest
    // holds, need version 32-M (typical) and 33-M (largest).
    for (people, typical, largest) in [(1, 10, 11), (20, 17, 18), (55, 25, 25), (99, 32, 33)] {
        let t = hcmr_core::manifest::sign(&trip(people), &sc_key());
        let l = hcmr_core::manifest::sign(&hcmr_core::testkit::largest_trip(people), &sc_key());
        assert_eq!(version_at(&t, EcLevel::M), Some(typical), "{people} people");
        assert_eq!(version_at(&l, EcLevel::M), Some(largest), "{people} people");
    }
}

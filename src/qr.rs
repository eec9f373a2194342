//! QR codes out and in: a health code string as a QR symbol (PNG or SVG), and the text of the
//! first QR symbol in a photo or screenshot (PNG or JPEG) or an SVG that hcmr wrote.
//!
//! **Out.** A code string (`HCMR1:...`, docs/code-format.md section 2) uses only the 45 QR
//! alphanumeric characters, so it is written as one alphanumeric segment (5.5 bits a character
//! instead of 8 in byte mode), at error-correction level **Q** (about 25 % of the codewords may be
//! damaged), in the smallest version that holds it, with the standard quiet zone of
//! [`QUIET_ZONE`] = 4 modules on every side. A string with any other character is refused
//! ([`QrError::NotAlphanumeric`]) rather than silently written in byte mode. Encoding uses the
//! `qrcode` crate; rendering (PNG through `image`, SVG as one path) is done here.
//!
//! **In.** [`decode_image`] decodes PNG or JPEG bytes (or draws an SVG with `resvg`), flattens them to grayscale (transparent
//! pixels count as white paper), and runs the `rqrr` detector (a port of quirc) on a short list of
//! variants, stopping at the first that yields text: the image as it is; a downscaled copy (phone
//! photos are large and noisy, and quirc's thresholding works better on fewer pixels); a
//! contrast-stretched copy (washed-out photos of screens); an Otsu-binarized copy; a 2x enlarged
//! copy of a small image (modules of one or two pixels); and an inverted copy (dark-mode screens
//! show light modules on a dark ground). Its errors say which of these failed: the bytes are not an
//! image ([`QrError::NotAnImage`], [`QrError::UnsupportedFormat`], [`QrError::ImageTooLarge`]),
//! there is no QR symbol in it ([`QrError::NoQrCode`]), a symbol was found but could not be read
//! ([`QrError::Unreadable`]), or it holds bytes that are not UTF-8 text ([`QrError::NotText`]).
//! The text is returned as it is: checking that it is a health code is
//! [`crate::code::HealthCode::decode`]'s job.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageFormat, Luma};
use qrcode::bits::Bits;
use qrcode::{EcLevel, QrCode, Version};

/// Quiet zone (light margin) around the symbol, in modules, on every side (ISO/IEC 18004: 4).
pub const QUIET_ZONE: u32 = 4;

/// Largest module size accepted by [`encode_png`], in pixels. At 32 px a version-40 symbol is
/// already 5 888 px wide.
pub const MAX_MODULE_PX: u32 = 32;

/// Largest width or height of an image accepted by [`decode_image`], in pixels (a 100-megapixel
/// camera is about 12 000 x 9 000).
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Most memory the image decoder may allocate for one image, in bytes (256 MiB).
pub const MAX_IMAGE_ALLOC: u64 = 256 * 1024 * 1024;
/// Largest image file [`decode_file`] reads, in bytes (32 MiB; a phone photo is a few MB).
/// Checked before the file is read.
pub const MAX_IMAGE_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Most alphanumeric characters a version-40 symbol holds at level Q (ISO/IEC 18004 table 7).
pub const MAX_ALPHANUMERIC_CHARS_Q: usize = 2420;

/// The error-correction level of every symbol hcmr writes.
const EC: EcLevel = EcLevel::Q;

/// Above this width or height (pixels), the downscaled variant is shrunk to it; below, it is half
/// the size.
const DOWNSCALE_TARGET: u32 = 1000;

/// Images whose larger side is below this (pixels) are also tried enlarged 2x.
const UPSCALE_BELOW: u32 = 700;

/// An error of QR encoding or decoding.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// Encoding: the string to encode is empty.
    #[error("nothing to encode: the code string is empty")]
    Empty,
    /// Encoding: the string has a character outside the QR alphanumeric set, so it would need
    /// byte mode (a health code never does; see docs/code-format.md section 2).
    #[error(
        "character {found:?} at position {position} is not QR alphanumeric \
         (0-9, A-Z, space and $%*+-./: only); a health code string never contains it"
    )]
    NotAlphanumeric {
        /// Position of the character, counted in characters from 0.
        position: usize,
        /// The character.
        found: char,
    },
    /// Encoding: the string does not fit the largest QR symbol.
    #[error(
        "the string has {chars} characters; a QR symbol (version 40, level Q) holds at most \
         {MAX_ALPHANUMERIC_CHARS_Q} alphanumeric characters"
    )]
    TooLong {
        /// Length of the string, in characters.
        chars: usize,
    },
    /// Encoding: the module size for a PNG is out of range.
    #[error("module size {0} px is out of range: use 1 to {MAX_MODULE_PX} pixels a module")]
    ModuleSize(u32),
    /// Encoding: the PNG encoder failed (should not happen for an in-memory image).
    #[error("could not write the PNG: {0}")]
    PngEncode(String),
    /// Decoding: the bytes are not a PNG, JPEG or SVG image, or the image data is corrupt.
    #[error("not an image (PNG, JPEG or SVG expected): {0}")]
    NotAnImage(String),
    /// Decoding: the bytes are an image in a format this build does not read.
    #[error("unsupported image format {0}: only PNG and JPEG are read")]
    UnsupportedFormat(String),
    /// Decoding: the image is larger than [`MAX_IMAGE_SIDE`] or needs more than
    /// [`MAX_IMAGE_ALLOC`] bytes.
    #[error(
        "image too large: at most {MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE} pixels and \
         {MAX_IMAGE_ALLOC} bytes decoded ({0})"
    )]
    ImageTooLarge(String),
    /// Decoding: no QR symbol (no set of finder patterns) was found in the image.
    #[error("no QR code found in the image")]
    NoQrCode,
    /// Decoding: a QR symbol was found, but it could not be read (too damaged, blurred or
    /// distorted; the detail is the reader's).
    #[error("a QR code was found in the image but could not be read: {0}")]
    Unreadable(String),
    /// Decoding: the QR symbol was read, but its content is not UTF-8 text.
    #[error("the QR code was read, but its content is not text (not valid UTF-8)")]
    NotText,
    /// [`decode_file`]: the file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Whether `c` is one of the 45 QR alphanumeric characters (`0-9 A-Z`, space, `$%*+-./:`), the
/// same set as the Base45 alphabet (RFC 9285).
pub fn is_qr_alphanumeric(c: char) -> bool {
    matches!(c, '0'..='9' | 'A'..='Z' | ' ' | '$' | '%' | '*' | '+' | '-' | '.' | '/' | ':')
}

/// A QR symbol as a square of modules, without the quiet zone.
#[derive(Debug, Clone)]
pub(crate) struct Matrix {
    /// Modules on a side (17 + 4 x version).
    pub(crate) width: usize,
    /// The QR version, 1 to 40.
    pub(crate) version: u8,
    /// Row-major, `true` for a dark module.
    dark: Vec<bool>,
}

impl Matrix {
    /// Whether the module at column `x`, row `y` is dark.
    pub(crate) fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.width + x]
    }

    /// Modules on a side including the quiet zone on both sides.
    pub(crate) fn total_width(&self) -> usize {
        self.width + 2 * QUIET_ZONE as usize
    }

    /// SVG path data drawing every dark module as a unit square, with the top left module at
    /// (`origin`, `origin`) in module units: one closed rectangle per horizontal run.
    pub(crate) fn svg_path_data(&self, origin: usize) -> String {
        let mut d = String::new();
        for y in 0..self.width {
            let mut x = 0;
            while x < self.width {
                if !self.is_dark(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < self.width && self.is_dark(x, y) {
                    x += 1;
                }
                let run = x - start;
                d.push_str(&format!(
                    "M{},{}h{run}v1h-{run}z",
                    start + origin,
                    y + origin
                ));
            }
        }
        d
    }
}

/// Checks that `code` can be written as one alphanumeric segment.
fn check_alphanumeric(code: &str) -> Result<(), QrError> {
    if code.is_empty() {
        return Err(QrError::Empty);
    }
    if let Some((position, found)) = code
        .chars()
        .enumerate()
        .find(|(_, c)| !is_qr_alphanumeric(*c))
    {
        return Err(QrError::NotAlphanumeric { position, found });
    }
    let chars = code.len(); // all ASCII now
    if chars > MAX_ALPHANUMERIC_CHARS_Q {
        return Err(QrError::TooLong { chars });
    }
    Ok(())
}

/// Builds the QR symbol of `code`: one alphanumeric segment, level Q, smallest version.
pub(crate) fn matrix(code: &str) -> Result<Matrix, QrError> {
    matrix_at(code, EC)
}

/// As [`matrix`], at error-correction level `ec`: a trip manifest's windshield card uses M, so
/// that 55 people fit version 25 (docs/transport.md section 3.2). Strings longer than
/// [`MAX_ALPHANUMERIC_CHARS_Q`] are refused at every level (a manifest has at most 2,278).
pub(crate) fn matrix_at(code: &str, ec: EcLevel) -> Result<Matrix, QrError> {
    check_alphanumeric(code)?;
    for v in 1..=40i16 {
        let mut bits = Bits::new(Version::Normal(v));
        if bits.push_alphanumeric_data(code.as_bytes()).is_err()
            || bits.push_terminator(ec).is_err()
        {
            continue;
        }
        let qr = QrCode::with_bits(bits, ec).map_err(|_| QrError::TooLong { chars: code.len() })?;
        debug_assert_eq!(qr.error_correction_level(), ec);
        let width = qr.width();
        let dark = qr
            .to_colors()
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect();
        return Ok(Matrix {
            width,
            version: v as u8,
            dark,
        });
    }
    Err(QrError::TooLong { chars: code.len() })
}

/// The QR version (1 to 40) that [`encode_png`] and [`encode_svg`] use for `code`: the smallest
/// that holds it as one alphanumeric segment at level Q. A symbol has 17 + 4 x version modules on
/// a side, plus the quiet zone.
///
/// # Errors
/// [`QrError::Empty`], [`QrError::NotAlphanumeric`] or [`QrError::TooLong`].
pub fn version_for(code: &str) -> Result<u8, QrError> {
    Ok(matrix(code)?.version)
}

/// The QR symbol of `code` as an 8-bit grayscale PNG: black modules of `module_px` x `module_px`
/// pixels on white, with a quiet zone of [`QUIET_ZONE`] modules, so the image is
/// `(17 + 4 x version + 8) x module_px` pixels on a side.
///
/// # Errors
/// [`QrError::ModuleSize`] unless `1 <= module_px <= MAX_MODULE_PX`; the errors of
/// [`version_for`].
pub fn encode_png(code: &str, module_px: u32) -> Result<Vec<u8>, QrError> {
    if !(1..=MAX_MODULE_PX).contains(&module_px) {
        return Err(QrError::ModuleSize(module_px));
    }
    let m = matrix(code)?;
    let side = m.total_width() as u32 * module_px;
    let q = QUIET_ZONE as usize;
    let img = GrayImage::from_fn(side, side, |px, py| {
        let x = (px / module_px) as usize;
        let y = (py / module_px) as usize;
        let dark =
            x >= q && y >= q && x < q + m.width && y < q + m.width && m.is_dark(x - q, y - q);
        Luma([if dark { 0 } else { 255 }])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| QrError::PngEncode(e.to_string()))?;
    Ok(out.into_inner())
}

/// The QR symbol of `code` as a standalone SVG document: a white square and one black path, in
/// module units (`viewBox` `0 0 N N` with N = 17 + 4 x version + 8, quiet zone included), drawn
/// 8 px a module by default (`width`/`height`), with `shape-rendering="crispEdges"`.
///
/// # Errors
/// The errors of [`version_for`].
pub fn encode_svg(code: &str) -> Result<String, QrError> {
    let m = matrix(code)?;
    let n = m.total_width();
    let px = n * 8;
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{px}\" height=\"{px}\" \
         viewBox=\"0 0 {n} {n}\" shape-rendering=\"crispEdges\">\n\
         <rect width=\"{n}\" height=\"{n}\" fill=\"#ffffff\"/>\n\
         <path fill=\"#000000\" d=\"{}\"/>\n\
         </svg>\n",
        m.svg_path_data(QUIET_ZONE as usize)
    ))
}

/// Reads the first QR symbol in a PNG or JPEG image (photo or screenshot), or an SVG document
/// such as [`encode_svg`] writes (drawn with `resvg`), and returns its text.
///
/// See the module documentation for the variants tried. When several symbols are readable, the
/// first that the detector reports is returned.
///
/// # Errors
/// [`QrError::NotAnImage`], [`QrError::UnsupportedFormat`] or [`QrError::ImageTooLarge`] for
/// the bytes; [`QrError::NoQrCode`] when no variant shows a QR symbol; [`QrError::Unreadable`]
/// when one was found but none could be read; [`QrError::NotText`] when the content read is not
/// UTF-8.
pub fn decode_image(bytes: &[u8]) -> Result<String, QrError> {
    let gray = load_gray(bytes)?;
    let mut failure: Option<rqrr::DeQRError> = None;
    for variant in Variant::ALL {
        let Some(img) = variant.apply(&gray) else {
            continue;
        };
        match read_first(img) {
            Attempt::Text(text) => return Ok(text),
            Attempt::Failed(e) => {
                // Keep the most telling failure: "not text" means the symbol itself was read.
                if failure.is_none() || e == rqrr::DeQRError::EncodingError {
                    failure = Some(e);
                }
            }
            Attempt::Nothing => {}
        }
    }
    match failure {
        None => Err(QrError::NoQrCode),
        Some(rqrr::DeQRError::EncodingError) => Err(QrError::NotText),
        Some(e) => Err(QrError::Unreadable(e.to_string())),
    }
}

/// [`decode_image`] on the contents of a file.
///
/// # Errors
/// [`QrError::Io`] when the file cannot be read or has more than [`MAX_IMAGE_FILE_BYTES`], then
/// those of [`decode_image`].
pub fn decode_file(path: impl AsRef<Path>) -> Result<String, QrError> {
    let path = path.as_ref();
    let bytes =
        crate::fsutil::read_capped(path, MAX_IMAGE_FILE_BYTES).map_err(|source| QrError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    decode_image(&bytes)
}

/// Whether the bytes look like an SVG document (XML whose root is `<svg`), as `hcmr issue --qr
/// code.svg` writes it.
fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let head = String::from_utf8_lossy(head);
    let t = head.trim_start_matches('\u{feff}').trim_start();
    (t.starts_with("<?xml") || t.starts_with("<svg") || t.starts_with("<!--")) && t.contains("<svg")
}

/// Renders an SVG document (such as [`encode_svg`] writes) with `resvg` on white, its larger
/// side between 400 and 2,000 pixels, as 8-bit grayscale.
fn load_svg_gray(bytes: &[u8]) -> Result<GrayImage, QrError> {
    use resvg::{tiny_skia, usvg};
    let not_svg = |e: String| {
        QrError::NotAnImage(format!(
            "SVG that cannot be drawn ({e}); give the PNG instead"
        ))
    };
    // Only what the document holds: no file it names is read.
    let opt = usvg::Options {
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: usvg::ImageHrefResolver::default_data_resolver(),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_data(bytes, &opt).map_err(|e| not_svg(e.to_string()))?;
    let size = tree.size();
    let side = size.width().max(size.height());
    if !side.is_finite() || side <= 0.0 {
        return Err(not_svg("it has no size".into()));
    }
    let scale = side.clamp(400.0, 2000.0) / side;
    // Rounded up and at least 1; at most 2,000 x 2,000 by the scale above.
    let px = |v: f32| ((v * scale).ceil() as u32).clamp(1, 2000);
    let mut pixmap = tiny_skia::Pixmap::new(px(size.width()), px(size.height()))
        .ok_or_else(|| not_svg("no room to draw it".into()))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    // Opaque after the white fill: premultiplied and plain values are the same.
    let (w, h) = (pixmap.width(), pixmap.height());
    let data = pixmap.data();
    Ok(GrayImage::from_fn(w, h, |x, y| {
        let i = ((y * w + x) * 4) as usize;
        let (r, g, b) = (
            u32::from(data[i]),
            u32::from(data[i + 1]),
            u32::from(data[i + 2]),
        );
        // ITU-R BT.601 luma, as `image` computes it.
        Luma([((r * 299 + g * 587 + b * 114 + 500) / 1000) as u8])
    }))
}

/// Decodes PNG, JPEG or SVG bytes to 8-bit grayscale, compositing any transparency over white.
fn load_gray(bytes: &[u8]) -> Result<GrayImage, QrError> {
    if looks_like_svg(bytes) {
        return load_svg_gray(bytes);
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| QrError::NotAnImage(e.to_string()))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        Some(other) => return Err(QrError::UnsupportedFormat(format!("{other:?}"))),
        None => {
            return Err(QrError::NotAnImage(
                "the data does not start with a known image signature".into(),
            ))
        }
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => QrError::ImageTooLarge(l.to_string()),
        image::ImageError::Unsupported(u) => QrError::UnsupportedFormat(u.to_string()),
        other => QrError::NotAnImage(other.to_string()),
    })?;
    Ok(to_gray_on_white(img))
}

/// Grayscale of an image; transparent pixels become white, as if printed on paper.
fn to_gray_on_white(img: DynamicImage) -> GrayImage {
    if !img.color().has_alpha() {
        return img.into_luma8();
    }
    let la = img.into_luma_alpha8();
    GrayImage::from_fn(la.width(), la.height(), |x, y| {
        let [l, a] = la.get_pixel(x, y).0;
        let (l, a) = (u32::from(l), u32::from(a));
        Luma([((l * a + 255 * (255 - a) + 127) / 255) as u8])
    })
}

/// The outcome of one detection pass.
enum Attempt {
    /// A symbol was read.
    Text(String),
    /// At least one symbol was found; none could be read; the first reader error.
    Failed(rqrr::DeQRError),
    /// No symbol was found.
    Nothing,
}

/// Runs rqrr on one image and reads the grids it finds, in order. A panic inside the reader (a
/// fault of the library on a malformed picture) counts as an unreadable symbol, so a hostile
/// upload cannot take down a server that calls this.
fn read_first(img: GrayImage) -> Attempt {
    let run = catch_unwind(AssertUnwindSafe(move || {
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        if grids.is_empty() {
            return Attempt::Nothing;
        }
        let mut first_error = None;
        for grid in &grids {
            match grid.decode() {
                Ok((_meta, text)) => return Attempt::Text(text),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Attempt::Failed(first_error.unwrap_or(rqrr::DeQRError::DataEcc))
    }));
    run.unwrap_or(Attempt::Failed(rqrr::DeQRError::DataEcc))
}

/// The image variants [`decode_image`] tries, in order.
#[derive(Debug, Clone, Copy)]
enum Variant {
    /// The grayscale image as decoded.
    AsIs,
    /// Shrunk to [`DOWNSCALE_TARGET`] on its larger side, or to half size if already smaller.
    Downscaled,
    /// Levels stretched so the 1st and 99th percentiles become black and white.
    Stretched,
    /// Thresholded at Otsu's level.
    Binarized,
    /// Downscaled, then thresholded at Otsu's level (noise averaged out first).
    DownscaledBinarized,
    /// Enlarged 2x (only for images under [`UPSCALE_BELOW`] pixels).
    Upscaled,
    /// Light and dark swapped (light modules on a dark ground).
    Inverted,
}

impl Variant {
    const ALL: [Variant; 7] = [
        Variant::AsIs,
        Variant::Downscaled,
        Variant::Stretched,
        Variant::Binarized,
        Variant::DownscaledBinarized,
        Variant::Upscaled,
        Variant::Inverted,
    ];

    /// The variant of `img`, or `None` where it does not apply (too small to shrink, large
    /// enough not to enlarge).
    fn apply(self, img: &GrayImage) -> Option<GrayImage> {
        match self {
            Variant::AsIs => Some(img.clone()),
            Variant::Downscaled => downscale(img),
            Variant::Stretched => Some(stretch(img)),
            Variant::Binarized => Some(binarize(img)),
            Variant::DownscaledBinarized => downscale(img).map(|small| binarize(&small)),
            Variant::Upscaled => {
                if img.width().max(img.height()) >= UPSCALE_BELOW {
                    return None;
                }
                Some(image::imageops::resize(
                    img,
                    img.width() * 2,
                    img.height() * 2,
                    image::imageops::FilterType::Triangle,
                ))
            }
            Variant::Inverted => {
                let mut inv = img.clone();
                image::imageops::invert(&mut inv);
                Some(inv)
            }
        }
    }
}

/// A smaller copy of `img`, or `None` when it is already under 200 pixels on its larger side.
fn downscale(img: &GrayImage) -> Option<GrayImage> {
    let (w, h) = img.dimensions();
    let longest = w.max(h);
    if longest < 200 {
        return None;
    }
    let target = if longest > DOWNSCALE_TARGET {
        DOWNSCALE_TARGET
    } else {
        longest / 2
    };
    let nw = ((u64::from(w) * u64::from(target)) / u64::from(longest)).max(1) as u32;
    let nh = ((u64::from(h) * u64::from(target)) / u64::from(longest)).max(1) as u32;
    Some(image::imageops::resize(
        img,
        nw,
        nh,
        image::imageops::FilterType::Triangle,
    ))
}

/// Histogram of an 8-bit image.
fn histogram(img: &GrayImage) -> [u64; 256] {
    let mut h = [0u64; 256];
    for p in img.pixels() {
        h[usize::from(p.0[0])] += 1;
    }
    h
}

/// Linear contrast stretch: the 1st percentile maps to 0 and the 99th to 255.
fn stretch(img: &GrayImage) -> GrayImage {
    let h = histogram(img);
    let total: u64 = h.iter().sum();
    let cut = total / 100;
    let mut acc = 0;
    let lo = (0..256usize)
        .find(|&i| {
            acc += h[i];
            acc > cut
        })
        .unwrap_or(0);
    acc = 0;
    let hi = (0..256usize)
        .rev()
        .find(|&i| {
            acc += h[i];
            acc > cut
        })
        .unwrap_or(255);
    if hi <= lo {
        return img.clone();
    }
    let (lo, span) = (lo as i32, hi as i32 - lo as i32);
    let mut out = img.clone();
    for p in out.pixels_mut() {
        let v = (i32::from(p.0[0]) - lo) * 255 / span;
        p.0[0] = v.clamp(0, 255) as u8;
    }
    out
}

/// Otsu's threshold of an image: the level that best separates its histogram into two classes.
fn otsu_level(img: &GrayImage) -> u8 {
    let h = histogram(img);
    let total: f64 = h.iter().sum::<u64>() as f64;
    let sum_all: f64 = h
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w_b, mut sum_b, mut best, mut level) = (0.0f64, 0.0f64, -1.0f64, 127u8);
    for (t, &count) in h.iter().enumerate() {
        w_b += count as f64;
        if w_b == 0.0 {
            continue;
        }
        let w_f = total - w_b;
        if w_f == 0.0 {
            break;
        }
        sum_b += t as f64 * count as f64;
        let m_b = sum_b / w_b;
        let m_f = (sum_all - sum_b) / w_f;
        let between = w_b * w_f * (m_b - m_f) * (m_b - m_f);
        if between > best {
            best = between;
            level = t as u8;
        }
    }
    level
}

/// Black and white at Otsu's level.
fn binarize(img: &GrayImage) -> GrayImage {
    let level = otsu_level(img);
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0[0] = if p.0[0] > level { 255 } else { 0 };
    }
    out
}

#[cfg(test)]
mod tests;

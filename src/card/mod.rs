//! The printable health-code card: an A6 sheet (105 x 148 mm) for people without a smartphone,
//! issued by a province node or a community office and shown at checkpoints like a phone screen.
//!
//! The card carries the QR symbol of the code string (see [`crate::qr`]), the masked name and
//! masked document number (never the full ones), the issuing province in Chinese and English, the
//! status colour (as the header band, a frame around the symbol and a label), when the code and
//! when the status expire, and the code id (`cti`) for revocation by phone. A checkpoint scans
//! the symbol and verifies the code as usual; the printed text is for the person and for comparing
//! with their ID card.
//!
//! # Output
//! [`card_svg`] builds the card as SVG (width and height in millimetres, a `viewBox` of
//! 1240 x 1748 user units = pixels at 300 dpi). [`card_png`] rasterizes it with `resvg` at 300 dpi
//! to exactly [`WIDTH_PX`] x [`HEIGHT_PX`] = 1240 x 1748 pixels, with a `pHYs` chunk saying
//! 300 dpi so that printing at "actual size" gives A6. [`card_pdf`] converts it with `svg2pdf` to
//! a one-page PDF of 105 x 148 mm with the text as real (embedded, subset) fonts.
//!
//! # Fonts
//! The masked name, the province name and the labels are Chinese, so rendering needs a font with
//! CJK glyphs. The system fonts are loaded once per process (`fontdb`'s `load_system_fonts`:
//! `/usr/share/fonts`, `/usr/local/share/fonts`, `~/.local/share/fonts` on Linux); the first
//! face found that covers common CJK characters (preferring Noto Sans CJK SC, Source Han Sans SC,
//! WenQuanYi Micro Hei, WenQuanYi Zen Hei) becomes the `sans-serif` family. **A CJK font must be
//! installed** on a machine that prints cards. On Debian or Ubuntu:
//!
//! ```sh
//! apt-get install fonts-noto-cjk        # or the smaller fonts-wqy-microhei
//! ```
//!
//! Without one, rendering still succeeds, with whatever fonts there are: the QR symbol, which is
//! all a checkpoint needs, is drawn without any font, but characters that no installed font has
//! are left out of the text. [`render_png`] and [`render_pdf`] return those characters
//! ([`RenderedCard::missing_glyphs`]); [`card_png`] and [`card_pdf`] log a `tracing` warning
//! giving their number and the package to install (never the characters, which may come from the
//! masked name: nodes keep no personal data in logs). [`font_status`] tells at start-up whether a
//! CJK font was found.

use std::sync::{Arc, OnceLock};

use resvg::tiny_skia;
use resvg::usvg::{self, fontdb};

use crate::code::{CodeError, HealthCode};
use crate::province::Province;
use crate::qr::{self, QrError};
use crate::status::HealthStatus;
use crate::UnixTime;

/// Card width, in millimetres (ISO 216 A6).
pub const WIDTH_MM: u32 = 105;
/// Card height, in millimetres (ISO 216 A6).
pub const HEIGHT_MM: u32 = 148;
/// Resolution of the PNG, in dots per inch.
pub const DPI: u32 = 300;
/// Width of the PNG, in pixels: 105 mm at 300 dpi.
pub const WIDTH_PX: u32 = 1240;
/// Height of the PNG, in pixels: 148 mm at 300 dpi.
pub const HEIGHT_PX: u32 = 1748;

/// Font families named in the SVG, in order of preference; `sans-serif` is mapped to the CJK
/// family found on the system when rendering.
const FONT_FAMILY: &str = "'Noto Sans CJK SC', 'Source Han Sans SC', 'WenQuanYi Micro Hei', \
                           'WenQuanYi Zen Hei', 'Microsoft YaHei', 'PingFang SC', sans-serif";
/// Monospace families for the code id.
const MONO_FAMILY: &str = "'DejaVu Sans Mono', 'Noto Sans Mono', 'Liberation Mono', monospace";
/// Families preferred as the CJK `sans-serif`, if installed.
const PREFERRED_CJK: [&str; 5] = [
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans SC",
];
/// Characters a face must have to count as a CJK font (common ones; 省 and 码 are on every card).
const CJK_PROBE: [char; 4] = ['省', '码', '有', '效'];
/// The Debian packages named in the warning.
const FONT_PACKAGES: &str = "fonts-noto-cjk or fonts-wqy-microhei";

/// Everything printed on a card. Build it from the values the node issued, or with
/// [`CardInfo::from_code`] from the code string itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInfo {
    /// The health code string (`HCMR1:...`), drawn as the QR symbol. QR alphanumeric characters
    /// only (any code hcmr issues is).
    pub code: String,
    /// Masked name, e.g. `李*英`.
    pub masked_name: String,
    /// Masked document number, e.g. `5113*242X`.
    pub masked_document_number: String,
    /// The issuing province (its Chinese and English names are printed).
    pub issuer: Province,
    /// The health status colour.
    pub status: HealthStatus,
    /// When the code expires (`exp`). A printed card needs a code issued with a long lifetime,
    /// not a five-minute display code.
    pub exp: UnixTime,
    /// Until when the status holds.
    pub status_valid_until: UnixTime,
    /// The code id (`cti`) in lower-case hexadecimal, 32 digits for a code hcmr issues.
    pub cti_hex: String,
    /// The offset from UTC the card's times are printed in, with the offset written out
    /// (`display_utc_offset`, `+08:00` by default: [`crate::display`]).
    pub utc_offset: crate::display::DisplayOffset,
}

impl CardInfo {
    /// The card information read from a code string. **Does not verify the signature**: use it
    /// for a code this node has just issued, or one already verified.
    ///
    /// # Errors
    /// [`CardError::Code`] when the string is not a well-formed code,
    /// [`CardError::UnknownIssuer`] or [`CardError::UnknownStatus`] for claims that name no
    /// province or no colour.
    pub fn from_code(code: &str) -> Result<Self, CardError> {
        let hc = HealthCode::decode(code)?;
        let c = hc.claims.clone();
        let issuer = c
            .iss
            .parse::<Province>()
            .map_err(|_| CardError::UnknownIssuer(c.iss.clone()))?;
        let status = HealthStatus::from_u64(c.status).ok_or(CardError::UnknownStatus(c.status))?;
        Ok(CardInfo {
            code: code.to_string(),
            masked_name: c.subject.masked_name,
            masked_document_number: c.subject.masked_document_number,
            issuer,
            status,
            exp: c.exp,
            status_valid_until: c.status_valid_until,
            cti_hex: hex::encode(hc.cti()),
            utc_offset: crate::display::DisplayOffset::default(),
        })
    }
}

/// An error while making a card.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The code string cannot be drawn as a QR symbol.
    #[error("cannot draw the code as a QR symbol: {0}")]
    Qr(#[from] QrError),
    /// [`CardInfo::from_code`]: the string is not a well-formed code.
    #[error("not a health code: {0}")]
    Code(#[from] CodeError),
    /// [`CardInfo::from_code`]: the `iss` claim names no province.
    #[error("the code's issuer {0:?} is not a province code")]
    UnknownIssuer(String),
    /// [`CardInfo::from_code`]: the status number names no colour.
    #[error("the code's status number {0} is not a colour")]
    UnknownStatus(u64),
    /// The SVG could not be parsed or rasterized (a bug if it happens).
    #[error("cannot render the card: {0}")]
    Render(String),
    /// The PDF conversion failed.
    #[error("cannot make the card PDF: {0}")]
    Pdf(String),
}

/// A rendered card and what could not be drawn.
#[derive(Debug, Clone)]
pub struct RenderedCard {
    /// The PNG or PDF file.
    pub bytes: Vec<u8>,
    /// Characters of the card's text that no installed font has, so they are missing from the
    /// picture (empty when a CJK font is installed). Sorted, without duplicates.
    pub missing_glyphs: Vec<char>,
}

/// What fonts the card renderer found on this system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FontStatus {
    /// Number of font faces loaded.
    pub faces: usize,
    /// The family used for Chinese text, or `None` when no installed font has CJK glyphs.
    pub cjk_family: Option<String>,
}

/// The system fonts, loaded once.
struct Fonts {
    db: Arc<fontdb::Database>,
    cjk_family: Option<String>,
}

impl Fonts {
    /// Fonts from a database: finds the CJK family and makes it the `sans-serif` one.
    fn from_db(mut db: fontdb::Database) -> Fonts {
        let cjk_family = find_cjk_family(&db);
        if let Some(family) = &cjk_family {
            db.set_sans_serif_family(family.clone());
        }
        Fonts {
            db: Arc::new(db),
            cjk_family,
        }
    }
}

/// The system fonts, loaded on first use.
fn fonts() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| {
        let mut db = fontdb::Database::new();
        db.load_system_fonts();
        Fonts::from_db(db)
    })
}

/// Whether face `id` has a glyph for every character of `chars`.
fn face_has_all(db: &fontdb::Database, id: fontdb::ID, chars: &[char]) -> bool {
    db.with_face_data(id, |data, index| {
        ttf_parser::Face::parse(data, index)
            .map(|face| chars.iter().all(|&c| face.glyph_index(c).is_some()))
            .unwrap_or(false)
    })
    .unwrap_or(false)
}

/// The family of a face covering [`CJK_PROBE`], preferring [`PREFERRED_CJK`].
fn find_cjk_family(db: &fontdb::Database) -> Option<String> {
    let covering: Vec<String> = db
        .faces()
        .filter(|f| face_has_all(db, f.id, &CJK_PROBE))
        .filter_map(|f| f.families.first().map(|(name, _)| name.clone()))
        .collect();
    PREFERRED_CJK
        .iter()
        .find(|p| covering.iter().any(|c| c == *p))
        .map(|p| p.to_string())
        .or_else(|| covering.into_iter().next())
}

/// The fonts the renderer found: call at start-up to warn early that cards will lack Chinese
/// text. Loads the system fonts on first use.
pub fn font_status() -> FontStatus {
    let f = fonts();
    FontStatus {
        faces: f.db.len(),
        cjk_family: f.cjk_family.clone(),
    }
}

/// Characters of `text` (white space aside) that no face in `db` has.
fn missing_in(db: &fontdb::Database, text: &str) -> Vec<char> {
    let mut needed: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    needed.sort_unstable();
    needed.dedup();
    for face in db.faces() {
        if needed.is_empty() {
            break;
        }
        let _ = db.with_face_data(face.id, |data, index| {
            if let Ok(f) = ttf_parser::Face::parse(data, index) {
                needed.retain(|&c| f.glyph_index(c).is_none());
            }
        });
    }
    needed
}

/// Characters of the card's text that no installed font has (see [`RenderedCard::missing_glyphs`]).
pub fn missing_glyphs(info: &CardInfo) -> Vec<char> {
    missing_in(&fonts().db, &Layout::of(info).all_text())
}

/// Escapes text for XML character data and attribute values; control characters that XML 1.0
/// forbids become U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Longest a printed card's code is valid, in seconds: 7 days, the most a node issues a code
/// for. A card is a static code that cannot refresh itself: reprint it at least weekly, and
/// whenever the status changes.
pub const CARD_MAX_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// The lifetime of a printed card's code when none is asked for, in seconds: as long as its
/// status holds (`status_valid_secs` from now), at most [`CARD_MAX_LIFETIME_SECS`], at least 1.
/// Not the display code's default (minutes): a card must still scan when it is handed over.
pub fn card_default_lifetime(status_valid_secs: u64) -> u64 {
    status_valid_secs.clamp(1, CARD_MAX_LIFETIME_SECS)
}

/// Colours of a status: band, text on the band.
fn status_colours(s: HealthStatus) -> (&'static str, &'static str) {
    match s {
        HealthStatus::Green => ("#1b9e4b", "#ffffff"),
        HealthStatus::Yellow => ("#f5c518", "#1a1a1a"),
        HealthStatus::Red => ("#d32f2f", "#ffffff"),
    }
}

/// Estimated advance of `s` in em: CJK and other wide characters 1, the rest 0.62 (generous for
/// Latin digits and capitals in DejaVu or Noto).
fn estimated_em(s: &str) -> f64 {
    s.chars()
        .map(|c| if (c as u32) >= 0x2E80 { 1.0 } else { 0.62 })
        .sum()
}

/// A font size no larger than `base` at which `s` fits in `max_width` (user units).
fn fitted_size(s: &str, base: f64, max_width: f64) -> f64 {
    let em = estimated_em(s);
    if em <= 0.0 {
        return base;
    }
    (max_width / em).min(base).floor().max(8.0)
}

/// The card's text lines, laid out once for both the SVG and the glyph check.
struct Layout {
    title_zh: String,
    title_en: String,
    status_label: String,
    rows: [(&'static str, &'static str, String, bool); 5],
    footer: &'static str,
}

impl Layout {
    fn of(info: &CardInfo) -> Self {
        let p = info.issuer;
        Layout {
            title_zh: format!("{} 健康码", p.name_zh()),
            title_en: format!("{} Health Code", p.name_en()),
            status_label: format!(
                "{}  {}",
                info.status.name_zh(),
                info.status.as_str().to_ascii_uppercase()
            ),
            rows: [
                ("姓名", "Name", info.masked_name.clone(), false),
                (
                    "证件号码",
                    "ID number",
                    info.masked_document_number.clone(),
                    false,
                ),
                (
                    "状态有效期至",
                    "Status valid until",
                    crate::display::display_time(info.status_valid_until, info.utc_offset),
                    false,
                ),
                (
                    "本码有效期至",
                    "Code valid until",
                    crate::display::display_time(info.exp, info.utc_offset),
                    false,
                ),
                ("码号", "Code ID (cti)", info.cti_hex.clone(), true),
            ],
            footer: "请与本人身份证件一同出示 · Show together with your ID card",
        }
    }

    /// Every piece of text on the card.
    fn all_text(&self) -> String {
        let mut s = format!(
            "{}{}{}{}",
            self.title_zh, self.title_en, self.status_label, self.footer
        );
        for (zh, en, value, _) in &self.rows {
            s.push_str(zh);
            s.push_str(en);
            s.push_str(value);
        }
        s
    }
}

/// The card as an SVG document: 105 x 148 mm, `viewBox` 1240 x 1748 (pixels at 300 dpi). All
/// text is XML-escaped. The fonts named are CJK families, then `sans-serif`.
///
/// # Errors
/// [`CardError::Qr`] when the code string cannot be drawn as a QR symbol.
pub fn card_svg(info: &CardInfo) -> Result<String, CardError> {
    let m = qr::matrix(&info.code)?;
    let l = Layout::of(info);
    let (band, on_band) = status_colours(info.status);
    let w = f64::from(WIDTH_PX);
    let cx = w / 2.0;
    let e = xml_escape;

    // The QR symbol: an integer number of pixels a module, so edges fall on pixel boundaries.
    let total = m.total_width() as u32;
    let module_px = (780 / total).max(1);
    let qr_side = total * module_px;
    let qr_x = (WIDTH_PX - qr_side) / 2;
    let qr_y = 250u32;
    let frame = 14u32;

    let mut s = String::with_capacity(16 * 1024);
    s.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" \
         width=\"{WIDTH_MM}mm\" height=\"{HEIGHT_MM}mm\" viewBox=\"0 0 {WIDTH_PX} {HEIGHT_PX}\" \
         font-family=\"{FONT_FAMILY}\">\n\
         <title>{}</title>\n\
         <rect width=\"{WIDTH_PX}\" height=\"{HEIGHT_PX}\" fill=\"#ffffff\"/>\n\
         <rect x=\"6\" y=\"6\" width=\"{}\" height=\"{}\" rx=\"36\" fill=\"none\" stroke=\"#9e9e9e\" \
         stroke-width=\"3\" stroke-dasharray=\"18 12\"/>\n",
        e(&l.title_zh),
        WIDTH_PX - 12,
        HEIGHT_PX - 12
    ));

    // Header band in the status colour: province and title.
    s.push_str(&format!(
        "<path d=\"M6,42a36,36 0 0 1 36,-36H{}a36,36 0 0 1 36,36V220H6z\" fill=\"{band}\"/>\n\
         <text x=\"{cx}\" y=\"112\" font-size=\"{}\" font-weight=\"bold\" fill=\"{on_band}\" \
         text-anchor=\"middle\">{}</text>\n\
         <text x=\"{cx}\" y=\"182\" font-size=\"{}\" fill=\"{on_band}\" \
         text-anchor=\"middle\">{}</text>\n",
        WIDTH_PX - 42,
        fitted_size(&l.title_zh, 68.0, w - 120.0),
        e(&l.title_zh),
        fitted_size(&l.title_en, 46.0, w - 120.0),
        e(&l.title_en),
    ));

    // The QR symbol in a frame of the status colour.
    s.push_str(&format!(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"12\" fill=\"{band}\"/>\n\
         <g transform=\"translate({qr_x},{qr_y}) scale({module_px})\" shape-rendering=\"crispEdges\">\n\
         <rect width=\"{total}\" height=\"{total}\" fill=\"#ffffff\"/>\n\
         <path fill=\"#000000\" d=\"{}\"/>\n\
         </g>\n",
        qr_x - frame,
        qr_y - frame,
        qr_side + 2 * frame,
        qr_side + 2 * frame,
        m.svg_path_data(qr::QUIET_ZONE as usize),
    ));

    // Status label.
    let pill_y = qr_y + qr_side + frame + 24;
    s.push_str(&format!(
        "<rect x=\"{}\" y=\"{pill_y}\" width=\"560\" height=\"96\" rx=\"48\" fill=\"{band}\"/>\n\
         <text x=\"{cx}\" y=\"{}\" font-size=\"60\" font-weight=\"bold\" fill=\"{on_band}\" \
         text-anchor=\"middle\">{}</text>\n",
        (WIDTH_PX - 560) / 2,
        pill_y + 69,
        e(&l.status_label),
    ));

    // Rows: label in Chinese over English on the left, value on the right.
    let (label_x, value_x, right) = (70.0, 440.0, w - 60.0);
    let mut row_y = f64::from(pill_y + 96 + 24);
    for (zh, en, value, mono) in &l.rows {
        let base = if *mono { 40.0 } else { 46.0 };
        let size = fitted_size(value, base, right - value_x);
        let family = if *mono {
            format!(" font-family=\"{MONO_FAMILY}\"")
        } else {
            String::new()
        };
        s.push_str(&format!(
            "<text x=\"{label_x}\" y=\"{}\" font-size=\"30\" font-weight=\"bold\" \
             fill=\"#424242\">{}</text>\n\
             <text x=\"{label_x}\" y=\"{}\" font-size=\"24\" fill=\"#757575\">{}</text>\n\
             <text x=\"{value_x}\" y=\"{}\" font-size=\"{size}\" fill=\"#000000\"{family}>{}</text>\n\
             <line x1=\"{label_x}\" y1=\"{}\" x2=\"{right}\" y2=\"{}\" stroke=\"#e0e0e0\" \
             stroke-width=\"2\"/>\n",
            row_y + 36.0,
            e(zh),
            row_y + 68.0,
            e(en),
            row_y + 58.0,
            e(value),
            row_y + 86.0,
            row_y + 86.0,
        ));
        row_y += 92.0;
    }

    s.push_str(&format!(
        "<text x=\"{cx}\" y=\"{}\" font-size=\"{}\" fill=\"#616161\" \
         text-anchor=\"middle\">{}</text>\n</svg>\n",
        f64::from(HEIGHT_PX) - 48.0,
        fitted_size(l.footer, 28.0, w - 120.0),
        e(l.footer),
    ));
    Ok(s)
}

/// Parses the card SVG with the system fonts, at 300 dpi (so the millimetre size is 1240 x 1748
/// user units).
fn parse_tree(info: &CardInfo, f: &Fonts) -> Result<(usvg::Tree, Vec<char>), CardError> {
    let svg = card_svg(info)?;
    let opt = usvg::Options {
        dpi: DPI as f32,
        fontdb: f.db.clone(),
        languages: vec!["zh-CN".into(), "en".into()],
        font_family: f.cjk_family.clone().unwrap_or_else(|| "sans-serif".into()),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(&svg, &opt).map_err(|e| CardError::Render(e.to_string()))?;
    let missing = missing_in(&f.db, &Layout::of(info).all_text());
    Ok((tree, missing))
}

/// Logs the warning for characters no font has: their count only (they may be from the name).
fn warn_missing(missing: &[char]) {
    if !missing.is_empty() {
        tracing::warn!(
            missing_characters = missing.len(),
            "health-code card: no installed font has glyphs for {} character(s) of the card's \
             text, which are left out (the QR symbol is complete); install a CJK font \
             ({FONT_PACKAGES})",
            missing.len()
        );
    }
}

/// The card as a PNG of [`WIDTH_PX`] x [`HEIGHT_PX`] (RGBA, 300 dpi recorded in `pHYs`), with
/// the characters no installed font has.
///
/// # Errors
/// [`CardError::Qr`] for a code that cannot be a QR symbol; [`CardError::Render`] on a
/// rendering failure.
pub fn render_png(info: &CardInfo) -> Result<RenderedCard, CardError> {
    render_png_with(info, fonts())
}

/// [`render_png`] with the given fonts.
fn render_png_with(info: &CardInfo, fonts: &Fonts) -> Result<RenderedCard, CardError> {
    let (tree, missing_glyphs) = parse_tree(info, fonts)?;
    let mut pixmap = tiny_skia::Pixmap::new(WIDTH_PX, HEIGHT_PX)
        .ok_or_else(|| CardError::Render("cannot allocate the pixmap".into()))?;
    let size = tree.size();
    let transform = tiny_skia::Transform::from_scale(
        WIDTH_PX as f32 / size.width(),
        HEIGHT_PX as f32 / size.height(),
    );
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    let png = pixmap
        .encode_png()
        .map_err(|e| CardError::Render(e.to_string()))?;
    Ok(RenderedCard {
        bytes: with_phys_dpi(png, DPI),
        missing_glyphs,
    })
}

/// The card as a PNG (see [`render_png`]); logs a warning when characters are missing for lack
/// of a CJK font.
///
/// # Errors
/// As [`render_png`].
pub fn card_png(info: &CardInfo) -> Result<Vec<u8>, CardError> {
    let r = render_png(info)?;
    warn_missing(&r.missing_glyphs);
    Ok(r.bytes)
}

/// The card as a one-page PDF of 105 x 148 mm, vector QR and embedded font subsets, with the
/// characters no installed font has.
///
/// # Errors
/// [`CardError::Qr`]; [`CardError::Pdf`] when the conversion fails.
pub fn render_pdf(info: &CardInfo) -> Result<RenderedCard, CardError> {
    render_pdf_with(info, fonts())
}

/// [`render_pdf`] with the given fonts.
fn render_pdf_with(info: &CardInfo, fonts: &Fonts) -> Result<RenderedCard, CardError> {
    let (tree, missing_glyphs) = parse_tree(info, fonts)?;
    let pdf = svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        svg2pdf::PageOptions { dpi: DPI as f32 },
    )
    .map_err(|e| CardError::Pdf(e.to_string()))?;
    Ok(RenderedCard {
        bytes: pdf,
        missing_glyphs,
    })
}

/// The card as a PDF (see [`render_pdf`]); logs a warning when characters are missing for lack
/// of a CJK font.
///
/// # Errors
/// As [`render_pdf`].
pub fn card_pdf(info: &CardInfo) -> Result<Vec<u8>, CardError> {
    let r = render_pdf(info)?;
    warn_missing(&r.missing_glyphs);
    Ok(r.bytes)
}

/// Inserts a `pHYs` chunk (pixels per metre, both axes) after the `IHDR` of a PNG, so that the
/// image prints at its physical size. Returns the PNG unchanged if it is not one.
fn with_phys_dpi(png: Vec<u8>, dpi: u32) -> Vec<u8> {
    // Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC).
    const IHDR_END: usize = 8 + 25;
    if png.len() < IHDR_END || &png[12..16] != b"IHDR" {
        return png;
    }
    let ppm = (f64::from(dpi) / 0.0254).round() as u32;
    let mut chunk = Vec::with_capacity(21);
    chunk.extend_from_slice(&9u32.to_be_bytes());
    let mut body = Vec::with_capacity(13);
    body.extend_from_slice(b"pHYs");
    body.extend_from_slice(&ppm.to_be_bytes());
    body.extend_from_slice(&ppm.to_be_bytes());
    body.push(1); // unit: metre
    let mut crc = flate2::Crc::new();
    crc.update(&body);
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(&crc.sum().to_be_bytes());
    let mut out = Vec::with_capacity(png.len() + chunk.len());
    out.extend_from_slice(&png[..IHDR_END]);
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&png[IHDR_END..]);
    out
}

#[cfg(test)]
mod tests;

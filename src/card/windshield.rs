//! The windshield card of a trip manifest (issue 17, docs/transport.md section 1): an A4 sheet
//! (210 x 297 mm) behind the windshield of a point-to-point bus, so that a checkpoint scans the
//! whole vehicle once.
//!
//! The card carries the manifest's QR symbol (one alphanumeric segment at level **M**, so that 55
//! people fit version 25: docs/transport.md section 3.2), and for the people at the checkpoint,
//! in Chinese and English: the plate (or train and carriage), the route (origin, transit and
//! destination provinces), the destination place, the planned departure and arrival (in the
//! node's display offset, as the health-code card), the headcount (passengers and crew, to count
//! against the people on board), the trip id and the manifest version. Nothing else of the
//! people: a manifest holds no names.
//!
//! Rendering is the health-code card's ([`super`]): SVG laid out in pixels at 300 dpi
//! ([`A4_WIDTH_PX`] x [`A4_HEIGHT_PX`]), rasterized with `resvg` to a PNG carrying 300 dpi, and
//! converted with `svg2pdf` to a one-page PDF with embedded font subsets. The same fonts are
//! needed (a CJK font for the Chinese text; without one the text lacks those characters and a
//! warning is logged, the QR symbol is complete).

use qrcode::EcLevel;

use super::{
    fitted_size, fonts, parse_svg, pdf_of, qr_symbol_svg, rasterize, warn_missing, xml_escape,
    CardError, Fonts, FONT_FAMILY, MONO_FAMILY,
};
use crate::display::{display_time, DisplayOffset};
use crate::manifest::{Manifest, SignedManifest};
use crate::province::Province;
use crate::qr;

/// Width of the windshield card, in millimetres (ISO 216 A4).
const A4_WIDTH_MM: u32 = 210;
/// Height of the windshield card, in millimetres (ISO 216 A4).
const A4_HEIGHT_MM: u32 = 297;
/// Width of the windshield card's PNG, in pixels: 210 mm at 300 dpi.
pub const A4_WIDTH_PX: u32 = 2480;
/// Height of the windshield card's PNG, in pixels: 297 mm at 300 dpi.
pub const A4_HEIGHT_PX: u32 = 3508;

/// Widest the QR symbol is drawn, quiet zone included, in pixels at 300 dpi (about 138 mm: a
/// version-25 symbol gets 13 px, 1.1 mm, a module, readable through a windshield).
const QR_MAX_PX: u32 = 1640;
/// Colour of the header band and the frame of the symbol: not a status colour, since a vehicle
/// has no colour of its own.
const BAND: &str = "#0d47a1";

/// One row of the card: label in Chinese, label in English, then one or two value lines
/// (text, base font size, monospace).
type Row = (&'static str, &'static str, Vec<(String, f64, bool)>);

/// The card's text, laid out once for both the SVG and the glyph check.
struct Layout {
    title_zh: &'static str,
    title_en: &'static str,
    vehicle_label: &'static str,
    plate: String,
    rows: Vec<Row>,
    footer: [&'static str; 2],
}

/// `四川省 → 安徽省 → 浙江省` and `Sichuan → Anhui → Zhejiang`.
fn route(provinces: &[Province]) -> (String, String) {
    let zh: Vec<&str> = provinces.iter().map(|p| p.name_zh()).collect();
    let en: Vec<&str> = provinces.iter().map(|p| p.name_en()).collect();
    (zh.join(" → "), en.join(" → "))
}

impl Layout {
    fn of(m: &Manifest, offset: DisplayOffset) -> Result<Self, CardError> {
        let origin = m.origin_province()?;
        let destination = m.destination_province()?;
        let mut stops = vec![origin];
        stops.extend(m.transit.iter().copied());
        stops.push(destination);
        let (route_zh, route_en) = route(&stops);
        let (passengers, crew) = m.headcount();
        let total = passengers + crew;
        Ok(Layout {
            title_zh: "点对点运输 · 车辆通行卡",
            title_en: "Point-to-point transport · Vehicle card",
            vehicle_label: "车牌 / 车次  Vehicle",
            plate: m.vehicle.as_str().to_string(),
            rows: vec![
                (
                    "线路",
                    "Route",
                    vec![(route_zh, 52.0, false), (route_en, 44.0, false)],
                ),
                (
                    "目的地",
                    "Destination",
                    vec![
                        (m.place.as_str().to_string(), 52.0, false),
                        (
                            format!(
                                "{} {} · {}",
                                destination.name_zh(),
                                destination.name_en(),
                                m.destination
                            ),
                            44.0,
                            false,
                        ),
                    ],
                ),
                (
                    "计划出发",
                    "Planned departure",
                    vec![(display_time(m.departure, offset), 52.0, false)],
                ),
                (
                    "计划到达",
                    "Planned arrival",
                    vec![(display_time(m.arrival, offset), 52.0, false)],
                ),
                (
                    "人数",
                    "Headcount",
                    vec![
                        (
                            format!("共 {total} 人：乘客 {passengers} · 工作人员 {crew}"),
                            52.0,
                            false,
                        ),
                        (
                            format!("{total} people: {passengers} passengers, {crew} crew"),
                            44.0,
                            false,
                        ),
                    ],
                ),
                (
                    "行程号 · 版本",
                    "Trip ID · version",
                    vec![(format!("{} · v{}", m.trip_id, m.version), 48.0, true)],
                ),
            ],
            footer: [
                "检查站扫码一次核验整车；结果为“停车”时再逐人扫健康码",
                "Checkpoints scan once for the whole vehicle; people's own codes only on STOP",
            ],
        })
    }

    /// Every piece of text on the card.
    fn all_text(&self) -> String {
        let mut s = format!(
            "{}{}{}{}{}{}",
            self.title_zh,
            self.title_en,
            self.vehicle_label,
            self.plate,
            self.footer[0],
            self.footer[1]
        );
        for (zh, en, values) in &self.rows {
            s.push_str(zh);
            s.push_str(en);
            for (v, _, _) in values {
                s.push_str(v);
            }
        }
        s
    }
}

/// The windshield card of `manifest` (an `HCMRT1:` string, signature not checked) as an SVG
/// document: 210 x 297 mm, `viewBox` 2480 x 3508 (pixels at 300 dpi), times in `offset`. All
/// text is XML-escaped.
///
/// # Errors
/// [`CardError::Manifest`] when the string is not a well-formed manifest; [`CardError::Qr`] when
/// it cannot be drawn as a QR symbol.
pub fn windshield_svg(manifest: &str, offset: DisplayOffset) -> Result<String, CardError> {
    let (l, m) = prepare(manifest, offset)?;
    Ok(layout_svg(&l, &m))
}

/// The layout and QR symbol (level M) of a manifest string, decoded without checking the
/// signature. Surrounding white space (a scanner's line end) is not part of the symbol.
fn prepare(manifest: &str, offset: DisplayOffset) -> Result<(Layout, qr::Matrix), CardError> {
    let manifest = manifest.trim();
    let decoded = SignedManifest::decode(manifest)?.manifest;
    Ok((
        Layout::of(&decoded, offset)?,
        qr::matrix_at(manifest, EcLevel::M)?,
    ))
}

fn layout_svg(l: &Layout, m: &qr::Matrix) -> String {
    let w = f64::from(A4_WIDTH_PX);
    let cx = w / 2.0;
    let e = xml_escape;
    let mut s = String::with_capacity(64 * 1024);
    s.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" \
         width=\"{A4_WIDTH_MM}mm\" height=\"{A4_HEIGHT_MM}mm\" \
         viewBox=\"0 0 {A4_WIDTH_PX} {A4_HEIGHT_PX}\" font-family=\"{FONT_FAMILY}\">\n\
         <title>{}</title>\n\
         <rect width=\"{A4_WIDTH_PX}\" height=\"{A4_HEIGHT_PX}\" fill=\"#ffffff\"/>\n\
         <rect x=\"0\" y=\"0\" width=\"{A4_WIDTH_PX}\" height=\"300\" fill=\"{BAND}\"/>\n\
         <text x=\"{cx}\" y=\"140\" font-size=\"{}\" font-weight=\"bold\" fill=\"#ffffff\" \
         text-anchor=\"middle\">{}</text>\n\
         <text x=\"{cx}\" y=\"240\" font-size=\"{}\" fill=\"#ffffff\" \
         text-anchor=\"middle\">{}</text>\n",
        e(l.title_zh),
        fitted_size(l.title_zh, 100.0, w - 200.0),
        e(l.title_zh),
        fitted_size(l.title_en, 64.0, w - 200.0),
        e(l.title_en),
    ));

    // The plate, as large as fits: what a checkpoint compares with the vehicle.
    s.push_str(&format!(
        "<text x=\"{cx}\" y=\"380\" font-size=\"44\" fill=\"#616161\" \
         text-anchor=\"middle\">{}</text>\n\
         <text x=\"{cx}\" y=\"570\" font-size=\"{}\" font-weight=\"bold\" fill=\"#000000\" \
         text-anchor=\"middle\">{}</text>\n",
        e(l.vehicle_label),
        fitted_size(&l.plate, 190.0, w - 240.0),
        e(&l.plate),
    ));

    // The QR symbol, an integer number of pixels a module, in a frame of the band colour.
    let total = m.total_width() as u32;
    let module_px = (QR_MAX_PX / total).max(1);
    let qr_side = total * module_px;
    let (qr_x, qr_y, frame) = ((A4_WIDTH_PX - qr_side) / 2, 650u32, 16u32);
    s.push_str(&format!(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"16\" fill=\"{BAND}\"/>\n{}",
        qr_x - frame,
        qr_y - frame,
        qr_side + 2 * frame,
        qr_side + 2 * frame,
        qr_symbol_svg(m, qr_x, qr_y, module_px),
    ));

    // Rows: label in Chinese over English on the left, one or two value lines on the right.
    let (label_x, value_x, right) = (140.0, 760.0, w - 140.0);
    let mut y = f64::from(qr_y + qr_side + frame + 50);
    for (zh, en, values) in &l.rows {
        s.push_str(&format!(
            "<text x=\"{label_x}\" y=\"{}\" font-size=\"46\" font-weight=\"bold\" \
             fill=\"#424242\">{}</text>\n\
             <text x=\"{label_x}\" y=\"{}\" font-size=\"36\" fill=\"#757575\">{}</text>\n",
            y + 52.0,
            e(zh),
            y + 98.0,
            e(en),
        ));
        let mut line_y = y + 58.0;
        for (text, base, mono) in values {
            let family = if *mono {
                format!(" font-family=\"{MONO_FAMILY}\"")
            } else {
                String::new()
            };
            s.push_str(&format!(
                "<text x=\"{value_x}\" y=\"{line_y}\" font-size=\"{}\" fill=\"#000000\"{family}>{}</text>\n",
                fitted_size(text, *base, right - value_x),
                e(text),
            ));
            line_y += 58.0;
        }
        let height = if values.len() > 1 { 150.0 } else { 120.0 };
        s.push_str(&format!(
            "<line x1=\"{label_x}\" y1=\"{0}\" x2=\"{right}\" y2=\"{0}\" stroke=\"#e0e0e0\" \
             stroke-width=\"3\"/>\n",
            y + height - 12.0,
        ));
        y += height;
    }

    let h = f64::from(A4_HEIGHT_PX);
    for (i, line) in l.footer.iter().enumerate() {
        s.push_str(&format!(
            "<text x=\"{cx}\" y=\"{}\" font-size=\"{}\" fill=\"#616161\" \
             text-anchor=\"middle\">{}</text>\n",
            h - 150.0 + 70.0 * i as f64,
            fitted_size(line, 42.0, w - 240.0),
            e(line),
        ));
    }
    s.push_str("</svg>\n");
    s
}

/// The windshield card of `manifest` (an `HCMRT1:` string) as (PDF, PNG): a one-page A4 PDF
/// (210 x 297 mm, vector QR symbol, embedded font subsets) and a PNG of [`A4_WIDTH_PX`] x
/// [`A4_HEIGHT_PX`] carrying 300 dpi. Times are shown in `offset` (the node's
/// `display_utc_offset`). The manifest is decoded with [`SignedManifest::decode`] and its
/// signature is **not** checked: printing needs no trust, and a checkpoint checks it on every
/// scan. Logs a warning when characters are missing for lack of a CJK font.
///
/// # Errors
/// [`CardError::Manifest`] when the string is not a well-formed manifest; [`CardError::Qr`],
/// [`CardError::Render`] or [`CardError::Pdf`] when drawing fails.
pub fn windshield_card(
    manifest: &str,
    offset: DisplayOffset,
) -> Result<(Vec<u8>, Vec<u8>), CardError> {
    let r = render_with(manifest, offset, fonts())?;
    warn_missing("windshield card", &r.missing_glyphs);
    Ok((r.pdf, r.png))
}

/// A rendered windshield card.
struct Rendered {
    pdf: Vec<u8>,
    png: Vec<u8>,
    /// Characters of the card's text that no face has (see [`super::RenderedCard`]).
    missing_glyphs: Vec<char>,
}

/// [`windshield_card`] with the given fonts, and the characters no face of them has.
fn render_with(
    manifest: &str,
    offset: DisplayOffset,
    fonts: &Fonts,
) -> Result<Rendered, CardError> {
    let (l, m) = prepare(manifest, offset)?;
    let (tree, missing_glyphs) = parse_svg(&layout_svg(&l, &m), &l.all_text(), fonts)?;
    Ok(Rendered {
        pdf: pdf_of(&tree)?,
        png: rasterize(&tree, A4_WIDTH_PX, A4_HEIGHT_PX)?,
        missing_glyphs,
    })
}

#[cfg(test)]
mod tests;

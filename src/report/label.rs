//! The bag label: product, batch number, expiry, storage, recipient, and the
//! donation's DIN as an ISBT 128 Code 128 barcode (`=` + DIN + flags) with
//! its eye-readable text and the boxed check character. The bars come from
//! `barcoders` and are drawn as filled rectangles, so the symbol is exact at
//! any printer resolution.

use barcoders::sym::code128::Code128;
use printpdf::{
    Color, Line, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfDocument, PdfPage, PdfSaveOptions,
    Point, Polygon, PolygonRing, Rgb, WindingOrder,
};

/// What the label shows, each line in the label's language(s).
#[derive(Debug, Clone, Default)]
pub struct LabelData {
    /// `UCMSC-INJ – Umbilical-cord MSC injection`.
    pub product: String,
    /// `Batch UCMSC-2026-001`.
    pub batch: String,
    /// `Expires 2026-12-20 14:05 UTC`.
    pub expires: String,
    /// `Store at 2 to 8 °C`.
    pub storage: String,
    /// `For recipient PT-0042`, or empty.
    pub recipient: String,
    /// What is printed in the barcode's place for a batch without a DIN.
    pub no_din: String,
    /// The barcode's content (`=G12349865432100`), or empty without a DIN.
    pub din_barcode: String,
    /// `G1234 98 654321 00`.
    pub din_text: String,
    /// The DIN's check character.
    pub din_check: String,
}

/// Label size, mm (a common 100 x 60 bag label).
const W: f32 = 100.0;
const H: f32 = 60.0;
const X0: f32 = 5.0;
/// Width of the narrowest bar, mm (ISBT 128 asks for at least 0.17 mm).
const MODULE: f32 = 0.25;

fn black() -> Color {
    Color::Rgb(Rgb {
        r: 0.0,
        g: 0.0,
        b: 0.0,
        icc_profile: None,
    })
}

fn rect(x: f32, y: f32, w: f32, h: f32, mode: PaintMode) -> Op {
    let p = |x: f32, y: f32| LinePoint {
        p: Point::new(Mm(x), Mm(y)),
        bezier: false,
    };
    Op::DrawPolygon {
        polygon: Polygon {
            rings: vec![PolygonRing {
                points: vec![p(x, y), p(x + w, y), p(x + w, y + h), p(x, y + h)],
            }],
            mode,
            winding_order: WindingOrder::NonZero,
        },
    }
}

/// The bars of a Code 128 symbol of `data` (character set B), as module
/// flags (1 = bar).
pub fn code128_modules(data: &str) -> Result<Vec<u8>, String> {
    Code128::new(format!("\u{0181}{data}"))
        .map(|c| c.encode())
        .map_err(|e| format!("the barcode can't encode {data:?}: {e}"))
}

/// Renders the label as a one-page PDF.
pub fn render(d: &LabelData) -> Result<Vec<u8>, String> {
    let mut warnings = Vec::new();
    let regular = ParsedFont::from_bytes(super::coa::REGULAR, 0, &mut warnings)
        .ok_or("the regular font did not parse")?;
    let bold = ParsedFont::from_bytes(super::coa::BOLD, 0, &mut warnings)
        .ok_or("the bold font did not parse")?;
    let mut doc = PdfDocument::new(&d.batch);
    // Chinese words need the CJK glyphs (parsed only then).
    let lines = [&d.product, &d.batch, &d.expires, &d.storage, &d.recipient];
    let cjk = if lines.iter().any(|l| super::coa::has_cjk(l)) || super::coa::has_cjk(&d.no_din) {
        let font = ParsedFont::from_bytes(super::coa::CJK, 0, &mut warnings)
            .ok_or("the CJK font did not parse")?;
        doc.add_font(&font)
    } else {
        doc.add_font(&regular)
    };
    let (regular, bold) = (doc.add_font(&regular), doc.add_font(&bold));
    let mut ops: Vec<Op> = Vec::new();
    let text = |ops: &mut Vec<Op>, x: f32, y: f32, size: f32, strong: bool, s: &str| {
        ops.push(Op::StartTextSection);
        let latin = if strong { &bold } else { &regular };
        // A long line (a product's two names, a bilingual label) gets
        // smaller rather than running off the label.
        let size = super::coa::size_to_fit(s, W - x - X0, size, strong);
        super::coa::show_text(ops, latin, &cjk, x, y, size, s);
        ops.push(Op::EndTextSection);
    };
    ops.push(Op::SetFillColor { col: black() });
    ops.push(Op::SetOutlineColor { col: black() });
    text(&mut ops, X0, H - 8.0, 9.0, false, &d.product);
    text(&mut ops, X0, H - 15.0, 14.0, true, &d.batch);
    text(&mut ops, X0, H - 21.0, 9.0, false, &d.expires);
    text(&mut ops, X0, H - 26.0, 9.0, false, &d.storage);
    if !d.recipient.is_empty() {
        text(&mut ops, X0, H - 31.0, 9.0, true, &d.recipient);
    }
    if d.din_barcode.is_empty() {
        text(&mut ops, X0, 10.0, 9.0, false, &d.no_din);
    } else {
        let modules = code128_modules(&d.din_barcode)?;
        // Quiet zone of ten modules before the symbol.
        let mut x = X0 + 10.0 * MODULE;
        let (y, h) = (11.0, 12.0);
        for m in modules {
            if m == 1 {
                ops.push(rect(x, y, MODULE, h, PaintMode::Fill));
            }
            x += MODULE;
        }
        text(&mut ops, X0 + 2.5, 6.5, 9.0, false, &d.din_text);
        // The check character, boxed, beside the eye-readable text.
        let bx = X0 + 48.0;
        ops.push(rect(bx, 5.5, 5.0, 4.8, PaintMode::Stroke));
        text(&mut ops, bx + 1.3, 6.5, 9.0, true, &d.din_check);
    }
    let border = Line {
        points: [
            (1.0, 1.0),
            (W - 1.0, 1.0),
            (W - 1.0, H - 1.0),
            (1.0, H - 1.0),
        ]
        .iter()
        .map(|(x, y)| LinePoint {
            p: Point::new(Mm(*x), Mm(*y)),
            bezier: false,
        })
        .collect(),
        is_closed: true,
    };
    ops.push(Op::DrawLine { line: border });
    let opts = PdfSaveOptions {
        subset_fonts: true,
        ..PdfSaveOptions::default()
    };
    Ok(doc
        .with_pages(vec![PdfPage::new(Mm(W), Mm(H), ops)])
        .save(&opts, &mut Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_din_barcode_is_code_128_with_start_b_and_the_stop_pattern() {
        let m = code128_modules("=G12349865432100").unwrap();
        // Start B: 11010010000; stop: 1100011101011.
        assert_eq!(m.get(..11).unwrap(), [1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(
            m.get(m.len() - 13..).unwrap(),
            [1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1]
        );
        // Start, 16 characters, the check symbol (11 modules each), stop (13).
        assert_eq!(m.len(), 11 + 16 * 11 + 11 + 13);
    }

    #[test]
    fn the_label_prints_batch_expiry_storage_recipient_and_the_eye_readable_din() {
        let pdf = render(&LabelData {
            product: "UCMSC-INJ – Umbilical-cord MSC injection".into(),
            batch: "Batch UCMSC-2026-001".into(),
            expires: "Expires 2026-12-20 14:05 UTC".into(),
            storage: "Store at 2 to 8 °C".into(),
            recipient: "For recipient PT-0042".into(),
            no_din: String::new(),
            din_barcode: "=G12349865432100".into(),
            din_text: "G1234 98 654321 00".into(),
            din_check: "H".into(),
        })
        .unwrap();
        let text = pdf_extract::extract_text_from_mem(&pdf).unwrap();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in [
            "Batch UCMSC-2026-001",
            "Expires 2026-12-20 14:05 UTC",
            "Store at 2 to 8 °C",
            "For recipient PT-0042",
            "G1234 98 654321 00",
            "H",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
    }
}

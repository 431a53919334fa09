//! The Certificate of Analysis PDF: product, batch, donor DIN, dates,
//! specification version, each test with method, limit, result, unit and
//! outcome, who performed and reviewed it, every release signature as printed
//! name, UTC date/time and meaning (21 CFR 11.50), "CONDITIONAL" when so, page
//! numbers, and the SHA-256 of the batch record. DejaVu Sans is embedded and
//! subset (only the glyphs used).

use printpdf::{
    Color, FontId, Line, LinePoint, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rgb, TextItem,
};

pub(crate) const REGULAR: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
pub(crate) const BOLD: &[u8] = include_bytes!("fonts/DejaVuSans-Bold.ttf");

/// One test row.
#[derive(Debug, Clone, Default)]
pub struct CoaTest {
    pub code: String,
    pub name: String,
    pub method: String,
    pub limit: String,
    /// The current result's value, or `PENDING` for a result still to come.
    pub result: String,
    pub unit: String,
    pub outcome: String,
    pub performed_by: String,
    pub reviewed_by: String,
}

/// One signature.
#[derive(Debug, Clone, Default)]
pub struct CoaSignature {
    /// Printed name (and username).
    pub name: String,
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub signed_at: String,
    /// Meaning and the statement signed.
    pub meaning: String,
    pub reason: String,
}

/// A result that is not current: superseded, rejected in review or
/// invalidated, with what replaced it or the investigation that decided it.
#[derive(Debug, Clone, Default)]
pub struct CoaEarlier {
    /// `VIAB 61.0 % (FAIL)`.
    pub result: String,
    /// `invalidated`, `superseded`, `review rejected`.
    pub status: String,
    /// Why, in words.
    pub note: String,
}

/// A deviation of the batch with its conclusion.
#[derive(Debug, Clone, Default)]
pub struct CoaDeviation {
    /// Title (kind, severity).
    pub title: String,
    /// `open`, or `closed: invalid test` with the root cause.
    pub outcome: String,
}

/// Everything the certificate shows.
#[derive(Debug, Clone, Default)]
pub struct CoaData {
    pub product: String,
    pub product_type: String,
    pub batch_number: String,
    pub donor_din: String,
    pub intended_recipient: String,
    pub manufactured_at: String,
    pub expires_at: String,
    pub specification: String,
    pub status: String,
    pub conditional: bool,
    pub parents: String,
    pub tests: Vec<CoaTest>,
    pub earlier: Vec<CoaEarlier>,
    pub deviations: Vec<CoaDeviation>,
    pub signatures: Vec<CoaSignature>,
    pub record_sha256: String,
    pub chain_head: String,
    pub generated: String,
}

const PAGE_W: f32 = 297.0;
const PAGE_H: f32 = 210.0;
const MARGIN: f32 = 14.0;
const BOTTOM: f32 = 18.0;
/// Millimetres per character per point of font size (DejaVu Sans, mixed text, generous).
const CHAR_MM_PER_PT: f32 = 0.2;

/// Column starts and widths of the results table, mm.
const COLUMNS: [(f32, f32); 8] = [
    (MARGIN, 40.0),
    (MARGIN + 40.0, 48.0),
    (MARGIN + 88.0, 34.0),
    (MARGIN + 122.0, 26.0),
    (MARGIN + 148.0, 22.0),
    (MARGIN + 170.0, 16.0),
    (MARGIN + 186.0, 41.0),
    (MARGIN + 227.0, 42.0),
];

struct Writer {
    regular: FontId,
    bold: FontId,
    /// Finished pages.
    done: Vec<Vec<Op>>,
    /// The page being written.
    page: Vec<Op>,
    y: f32,
}

fn rgb(r: f32, g: f32, b: f32) -> Color {
    Color::Rgb(Rgb {
        r,
        g,
        b,
        icc_profile: None,
    })
}

/// Splits `text` into lines of at most `width_mm` at `size` points.
fn wrap(text: &str, width_mm: f32, size: f32) -> Vec<String> {
    let per_line = ((width_mm / (size * CHAR_MM_PER_PT)).floor() as usize).max(4);
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_owned();
        while word.chars().count() > per_line {
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            let head: String = word.chars().take(per_line).collect();
            word = word.chars().skip(per_line).collect();
            lines.push(head);
        }
        let needed =
            current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if needed > per_line && !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

impl Writer {
    fn ops(&mut self) -> &mut Vec<Op> {
        &mut self.page
    }

    fn text_at(&mut self, x: f32, y: f32, size: f32, bold: bool, color: Option<Color>, text: &str) {
        let font = if bold {
            self.bold.clone()
        } else {
            self.regular.clone()
        };
        let coloured = color.is_some();
        let ops = self.ops();
        ops.push(Op::StartTextSection);
        if let Some(c) = color {
            ops.push(Op::SetFillColor { col: c });
        }
        ops.push(Op::SetFont {
            font: PdfFontHandle::External(font),
            size: Pt(size),
        });
        ops.push(Op::SetTextCursor {
            pos: Point::new(Mm(x), Mm(y)),
        });
        ops.push(Op::ShowText {
            items: vec![TextItem::Text(text.to_owned())],
        });
        ops.push(Op::EndTextSection);
        if coloured {
            ops.push(Op::SetFillColor {
                col: rgb(0.0, 0.0, 0.0),
            });
        }
    }

    fn rule(&mut self, y: f32) {
        let line = Line {
            points: vec![
                LinePoint {
                    p: Point::new(Mm(MARGIN), Mm(y)),
                    bezier: false,
                },
                LinePoint {
                    p: Point::new(Mm(PAGE_W - MARGIN), Mm(y)),
                    bezier: false,
                },
            ],
            is_closed: false,
        };
        let ops = self.ops();
        ops.push(Op::SetOutlineThickness { pt: Pt(0.5) });
        ops.push(Op::DrawLine { line });
    }

    fn new_page(&mut self) {
        self.done.push(std::mem::take(&mut self.page));
        self.y = PAGE_H - MARGIN;
    }

    /// Makes room for `height` mm, starting a page when needed.
    fn room(&mut self, height: f32) {
        if self.y - height < BOTTOM {
            self.new_page();
        }
    }

    fn heading(&mut self, text: &str) {
        // A heading never ends a page: keep room for a few lines under it.
        self.room(26.0);
        self.y -= 6.0;
        self.text_at(MARGIN, self.y, 11.0, true, None, text);
        self.y -= 2.0;
        self.rule(self.y);
        self.y -= 4.0;
    }

    /// A wrapped line of 9 pt text.
    fn paragraph(&mut self, text: &str) {
        for line in wrap(text, PAGE_W - 2.0 * MARGIN, 9.0) {
            self.room(5.0);
            self.text_at(MARGIN, self.y, 9.0, false, None, &line);
            self.y -= 4.4;
        }
    }

    fn field(&mut self, label: &str, value: &str) {
        self.room(5.0);
        self.text_at(MARGIN, self.y, 9.0, true, None, label);
        self.text_at(MARGIN + 48.0, self.y, 9.0, false, None, value);
        self.y -= 4.6;
    }

    fn row(&mut self, cells: &[&str; 8], bold: bool, size: f32) {
        let wrapped: Vec<Vec<String>> = cells
            .iter()
            .zip(COLUMNS)
            .map(|(c, (_, w))| wrap(c, w - 1.5, size))
            .collect();
        let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1);
        let line_h = size * 0.45;
        let height = line_h * lines as f32 + 1.5;
        self.room(height);
        for (cell, (x, _)) in wrapped.iter().zip(COLUMNS) {
            for (i, text) in cell.iter().enumerate() {
                let y = self.y - line_h * i as f32;
                self.text_at(x, y, size, bold, None, text);
            }
        }
        self.y -= height;
    }
}

/// Renders the certificate.
pub fn render(d: &CoaData) -> Result<Vec<u8>, String> {
    let mut warnings = Vec::new();
    let regular = ParsedFont::from_bytes(REGULAR, 0, &mut warnings)
        .ok_or("the regular font did not parse")?;
    let bold =
        ParsedFont::from_bytes(BOLD, 0, &mut warnings).ok_or("the bold font did not parse")?;
    let mut doc = PdfDocument::new(&format!("Certificate of Analysis {}", d.batch_number));
    let mut w = Writer {
        regular: doc.add_font(&regular),
        bold: doc.add_font(&bold),
        done: Vec::new(),
        page: Vec::new(),
        y: PAGE_H - MARGIN,
    };
    w.y -= 6.0;
    w.text_at(MARGIN, w.y, 18.0, true, None, "Certificate of Analysis");
    if d.conditional {
        w.text_at(
            MARGIN + 120.0,
            w.y,
            18.0,
            true,
            Some(rgb(0.75, 0.0, 0.0)),
            "CONDITIONAL RELEASE",
        );
    }
    w.y -= 5.0;
    w.text_at(
        MARGIN,
        w.y,
        9.0,
        false,
        None,
        &format!("Batch {} · {}", d.batch_number, d.product),
    );
    w.y -= 3.0;
    if d.conditional {
        w.y -= 4.0;
        w.text_at(
            MARGIN,
            w.y,
            9.0,
            true,
            Some(rgb(0.75, 0.0, 0.0)),
            "CONDITIONAL: released before every result was in; results marked PENDING follow. \
             Final certification is a further release signature.",
        );
    }
    w.heading("Batch");
    w.field("Product", &d.product);
    w.field("Product type", &d.product_type);
    w.field("Batch number", &d.batch_number);
    w.field("Donor DIN", &d.donor_din);
    w.field("Intended recipient", &d.intended_recipient);
    w.field("Parent batches", &d.parents);
    w.field("Manufactured (UTC)", &d.manufactured_at);
    w.field("Expires (UTC)", &d.expires_at);
    w.field("Specification", &d.specification);
    w.field("Status", &d.status);

    w.heading("Results");
    w.row(
        &[
            "Test",
            "Method",
            "Limit",
            "Result",
            "Unit",
            "Outcome",
            "Performed by",
            "Reviewed by",
        ],
        true,
        8.0,
    );
    for t in &d.tests {
        let test = format!("{} {}", t.code, t.name);
        w.row(
            &[
                &test,
                &t.method,
                &t.limit,
                &t.result,
                &t.unit,
                &t.outcome,
                &t.performed_by,
                &t.reviewed_by,
            ],
            false,
            8.0,
        );
    }

    w.heading("Results not counted (superseded, rejected in review, invalidated)");
    if d.earlier.is_empty() {
        w.field("", "none");
    }
    for e in &d.earlier {
        w.paragraph(&format!("{} · {} · {}", e.result, e.status, e.note));
    }

    w.heading("Deviations and investigations");
    if d.deviations.is_empty() {
        w.field("", "none");
    }
    for dv in &d.deviations {
        w.paragraph(&format!("{} · {}", dv.title, dv.outcome));
    }

    w.heading("Release signatures (21 CFR 11.50)");
    if d.signatures.is_empty() {
        w.field("", "none");
    }
    for s in &d.signatures {
        w.room(14.0);
        w.text_at(MARGIN, w.y, 9.0, true, None, &s.name);
        w.text_at(MARGIN + 90.0, w.y, 9.0, false, None, &s.signed_at);
        w.y -= 4.4;
        w.text_at(MARGIN, w.y, 9.0, false, None, &s.meaning);
        w.y -= 4.4;
        if !s.reason.is_empty() {
            for line in wrap(
                &format!("Comment: {}", s.reason),
                PAGE_W - 2.0 * MARGIN,
                9.0,
            ) {
                w.room(5.0);
                w.text_at(MARGIN, w.y, 9.0, false, None, &line);
                w.y -= 4.4;
            }
        }
        w.y -= 1.5;
    }

    w.heading("Integrity");
    w.field("Batch record SHA-256", &d.record_sha256);
    w.field("Audit chain head", &d.chain_head);
    w.field("Generated", &d.generated);

    let mut written = std::mem::take(&mut w.done);
    written.push(std::mem::take(&mut w.page));
    let total = written.len();
    let footer = format!("{} · Certificate of Analysis", d.batch_number);
    let mut pages = Vec::with_capacity(total);
    for (i, ops) in written.into_iter().enumerate() {
        w.page = ops;
        w.text_at(MARGIN, 8.0, 8.0, false, None, &footer);
        w.text_at(
            PAGE_W - MARGIN - 25.0,
            8.0,
            8.0,
            false,
            None,
            &format!("Page {} of {total}", i + 1),
        );
        pages.push(PdfPage::new(
            Mm(PAGE_W),
            Mm(PAGE_H),
            std::mem::take(&mut w.page),
        ));
    }
    let opts = PdfSaveOptions {
        subset_fonts: true,
        ..PdfSaveOptions::default()
    };
    Ok(doc.with_pages(pages).save(&opts, &mut Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_word_and_respects_the_width() {
        let lines = wrap("Ph. Eur. 2.6.1 / USP <71>, 14 days", 20.0, 8.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.join(" "), "Ph. Eur. 2.6.1 / USP <71>, 14 days");
        let long = wrap("abcdefghijklmnopqrstuvwxyz", 10.0, 8.0);
        assert_eq!(long.concat(), "abcdefghijklmnopqrstuvwxyz");
        assert_eq!(wrap("", 10.0, 8.0), vec![String::new()]);
    }
}

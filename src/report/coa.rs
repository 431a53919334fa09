//! The Certificate of Analysis PDF: product, batch, donor DIN, dates,
//! specification version, each test with method, limit, result, unit and
//! outcome, who performed and reviewed it, every release signature as printed
//! name, UTC date/time and meaning (21 CFR 11.50), "CONDITIONAL" when so, page
//! numbers, and the SHA-256 of the batch record. DejaVu Sans is embedded and
//! subset (only the glyphs used); Chinese text is set in Droid Sans Fallback,
//! subset the same way, so a Chinese or bilingual certificate stays small.
//! Every label is a message of `src/locales` (`coa-*`).

use crate::i18n::{Locale, Value as FluentValue};
use printpdf::{
    Color, FontId, Line, LinePoint, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rgb, TextItem,
};

pub(crate) const REGULAR: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
pub(crate) const BOLD: &[u8] = include_bytes!("fonts/DejaVuSans-Bold.ttf");
/// CJK glyphs (Apache-2.0, `fonts/LICENSE-DroidSansFallback.txt`).
pub(crate) const CJK: &[u8] = include_bytes!("fonts/DroidSansFallbackFull.ttf");

/// The language of a certificate (`?lang=`): English, Chinese, or both, each
/// label in Chinese then English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
pub enum CoaLang {
    /// English.
    #[default]
    #[serde(rename = "en")]
    En,
    /// Simplified Chinese.
    #[serde(rename = "zh-CN")]
    ZhCn,
    /// Chinese and English side by side.
    #[serde(rename = "bilingual")]
    Bilingual,
}

impl CoaLang {
    /// The certificate a reader of `locale` gets by default.
    pub fn of(locale: Locale) -> Self {
        match locale {
            Locale::En => CoaLang::En,
            Locale::ZhCn => CoaLang::ZhCn,
        }
    }

    /// The message `id` in the certificate's language(s).
    pub fn words(self, id: &str) -> String {
        self.words_with(id, &[])
    }

    /// The message `id` with its arguments.
    pub fn words_with(self, id: &str, args: &[(&'static str, FluentValue<'_>)]) -> String {
        self.say(|l| l.text_with(id, args))
    }

    /// A stored code in words ([`Locale::code_words`]).
    pub fn code_words(self, prefix: &str, code: &str) -> String {
        self.say(|l| l.code_words(prefix, code))
    }

    /// Words in each of the certificate's languages, Chinese first, joined
    /// by ` / `.
    fn say(self, words: impl Fn(Locale) -> String) -> String {
        self.locales()
            .iter()
            .map(|l| words(*l))
            .collect::<Vec<_>>()
            .join(" / ")
    }

    /// The languages the certificate is written in.
    pub fn locales(self) -> &'static [Locale] {
        match self {
            CoaLang::En => &[Locale::En],
            CoaLang::ZhCn => &[Locale::ZhCn],
            CoaLang::Bilingual => &[Locale::ZhCn, Locale::En],
        }
    }
}

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

/// A post-release correction of a result, with what it changed.
#[derive(Debug, Clone, Default)]
pub struct CoaCorrection {
    /// The line: title, result corrected, from -> to, reason, outcome.
    pub line: String,
}

/// Everything the certificate shows.
#[derive(Debug, Clone, Default)]
pub struct CoaData {
    /// The language of the labels (the values were gathered in it too).
    pub lang: CoaLang,
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
    pub corrections: Vec<CoaCorrection>,
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
    cjk: FontId,
    /// Finished pages.
    done: Vec<Vec<Op>>,
    /// The page being written.
    page: Vec<Op>,
    y: f32,
    /// Width of a field's label, mm (two languages need more).
    label_w: f32,
}

fn rgb(r: f32, g: f32, b: f32) -> Color {
    Color::Rgb(Rgb {
        r,
        g,
        b,
        icc_profile: None,
    })
}

/// Whether `c` is set in the CJK font: CJK ideographs, kana, CJK and
/// full-width punctuation (DejaVu Sans has none of them).
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x2E80..=0x2FDF | 0x3000..=0x30FF | 0x3100..=0x31FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF
        | 0x20000..=0x2FA1F)
}

/// Width in half-ems: a CJK character is as wide as two Latin ones.
fn units(text: &str) -> usize {
    text.chars().map(|c| if is_cjk(c) { 2 } else { 1 }).sum()
}

/// The pieces a word may be broken between: each CJK character alone (a
/// line of Chinese breaks between any two), Latin runs whole unless longer
/// than a line.
fn pieces(word: &str, per_line: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut run = String::new();
    for c in word.chars() {
        if is_cjk(c) {
            if !run.is_empty() {
                out.push(std::mem::take(&mut run));
            }
            out.push(c.to_string());
        } else {
            if units(&run) >= per_line {
                out.push(std::mem::take(&mut run));
            }
            run.push(c);
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

/// Splits `text` into lines of at most `width_mm` at `size` points.
fn wrap(text: &str, width_mm: f32, size: f32) -> Vec<String> {
    let per_line = ((width_mm / (size * CHAR_MM_PER_PT)).floor() as usize).max(4);
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        for (i, piece) in pieces(word, per_line).into_iter().enumerate() {
            // A space goes before a word, never inside one.
            let gap = usize::from(i == 0 && !current.is_empty());
            if !current.is_empty() && units(&current) + gap + units(&piece) > per_line {
                lines.push(std::mem::take(&mut current));
            } else if gap == 1 {
                current.push(' ');
            }
            current.push_str(&piece);
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// Writes `text` at `(x, y)` mm inside a text section, each run in its font
/// (the text position moves on after each run).
pub(crate) fn show_text(
    ops: &mut Vec<Op>,
    latin: &FontId,
    cjk: &FontId,
    x: f32,
    y: f32,
    size: f32,
    text: &str,
) {
    ops.push(Op::SetTextCursor {
        pos: Point::new(Mm(x), Mm(y)),
    });
    for (is_cjk, run) in font_runs(text) {
        ops.push(Op::SetFont {
            font: PdfFontHandle::External(if is_cjk { cjk.clone() } else { latin.clone() }),
            size: Pt(size),
        });
        ops.push(Op::ShowText {
            items: vec![TextItem::Text(run)],
        });
    }
}

/// The largest size up to `size` points at which `text` fits on one line of
/// `width_mm` (bold Latin is wider: capitals and digits of DejaVu Sans Bold
/// are about 0.7 em).
pub(crate) fn size_to_fit(text: &str, width_mm: f32, size: f32, strong: bool) -> f32 {
    let mm_per_unit_pt = if strong { 0.26 } else { 0.22 };
    let needed = units(text) as f32 * mm_per_unit_pt;
    if needed <= 0.0 {
        size
    } else {
        size.min(width_mm / needed)
    }
}

/// Whether any character of `text` needs the CJK font.
pub(crate) fn has_cjk(text: &str) -> bool {
    text.chars().any(is_cjk)
}

/// `text` cut into runs of one font: `(cjk, run)`.
fn font_runs(text: &str) -> Vec<(bool, String)> {
    let mut runs: Vec<(bool, String)> = Vec::new();
    for c in text.chars() {
        let cjk = is_cjk(c);
        match runs.last_mut() {
            Some((k, run)) if *k == cjk => run.push(c),
            _ => runs.push((cjk, c.to_string())),
        }
    }
    runs
}

impl Writer {
    fn ops(&mut self) -> &mut Vec<Op> {
        &mut self.page
    }

    fn text_at(&mut self, x: f32, y: f32, size: f32, bold: bool, color: Option<Color>, text: &str) {
        let latin = if bold {
            self.bold.clone()
        } else {
            self.regular.clone()
        };
        let cjk = self.cjk.clone();
        let coloured = color.is_some();
        let ops = self.ops();
        ops.push(Op::StartTextSection);
        if let Some(c) = color {
            ops.push(Op::SetFillColor { col: c });
        }
        show_text(ops, &latin, &cjk, x, y, size, text);
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
        self.text_at(MARGIN + self.label_w, self.y, 9.0, false, None, value);
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
    let l = d.lang;
    let mut warnings = Vec::new();
    let regular = ParsedFont::from_bytes(REGULAR, 0, &mut warnings)
        .ok_or("the regular font did not parse")?;
    let bold =
        ParsedFont::from_bytes(BOLD, 0, &mut warnings).ok_or("the bold font did not parse")?;
    let title = l.words("coa-title");
    let mut doc = PdfDocument::new(&format!("{title} {}", d.batch_number));
    // The CJK font is parsed only when a character needs it.
    let needs_cjk = l != CoaLang::En || coa_text(d).any(has_cjk);
    let cjk = if needs_cjk {
        let font =
            ParsedFont::from_bytes(CJK, 0, &mut warnings).ok_or("the CJK font did not parse")?;
        doc.add_font(&font)
    } else {
        doc.add_font(&regular)
    };
    let mut w = Writer {
        regular: doc.add_font(&regular),
        bold: doc.add_font(&bold),
        cjk,
        done: Vec::new(),
        page: Vec::new(),
        y: PAGE_H - MARGIN,
        label_w: if l == CoaLang::Bilingual { 82.0 } else { 48.0 },
    };
    w.y -= 6.0;
    w.text_at(MARGIN, w.y, 18.0, true, None, &title);
    if d.conditional {
        w.text_at(
            MARGIN + 150.0,
            w.y,
            18.0,
            true,
            Some(rgb(0.75, 0.0, 0.0)),
            &l.words("coa-conditional-release"),
        );
    }
    w.y -= 5.0;
    w.text_at(
        MARGIN,
        w.y,
        9.0,
        false,
        None,
        &format!(
            "{} {} · {}",
            l.words("coa-batch"),
            d.batch_number,
            d.product
        ),
    );
    w.y -= 3.0;
    if d.conditional {
        w.y -= 4.0;
        for line in wrap(&l.words("coa-conditional-note"), PAGE_W - 2.0 * MARGIN, 9.0) {
            w.text_at(MARGIN, w.y, 9.0, true, Some(rgb(0.75, 0.0, 0.0)), &line);
            w.y -= 4.4;
        }
    }
    w.heading(&l.words("coa-heading-batch"));
    w.field(&l.words("coa-product"), &d.product);
    w.field(&l.words("coa-product-type"), &d.product_type);
    w.field(&l.words("coa-batch-number"), &d.batch_number);
    w.field(&l.words("coa-donor-din"), &d.donor_din);
    w.field(&l.words("coa-intended-recipient"), &d.intended_recipient);
    w.field(&l.words("coa-parent-batches"), &d.parents);
    w.field(&l.words("coa-manufactured"), &d.manufactured_at);
    w.field(&l.words("coa-expires"), &d.expires_at);
    w.field(&l.words("coa-specification"), &d.specification);
    w.field(&l.words("coa-status"), &d.status);

    w.heading(&l.words("coa-heading-results"));
    let head = [
        "coa-col-test",
        "coa-col-method",
        "coa-col-limit",
        "coa-col-result",
        "coa-col-unit",
        "coa-col-outcome",
        "coa-col-performed-by",
        "coa-col-reviewed-by",
    ]
    .map(|id| l.words(id));
    w.row(&head.each_ref().map(String::as_str), true, 8.0);
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

    let none = l.words("none");
    w.heading(&l.words("coa-heading-earlier"));
    if d.earlier.is_empty() {
        w.field("", &none);
    }
    for e in &d.earlier {
        w.paragraph(&format!("{} · {} · {}", e.result, e.status, e.note));
    }

    w.heading(&l.words("coa-heading-deviations"));
    if d.deviations.is_empty() {
        w.field("", &none);
    }
    for dv in &d.deviations {
        w.paragraph(&format!("{} · {}", dv.title, dv.outcome));
    }

    if !d.corrections.is_empty() {
        w.heading(&l.words("coa-heading-corrections"));
        for c in &d.corrections {
            w.paragraph(&c.line);
        }
    }

    w.heading(&l.words("coa-heading-signatures"));
    if d.signatures.is_empty() {
        w.field("", &none);
    }
    let comment = l.words("coa-comment");
    for s in &d.signatures {
        w.room(14.0);
        w.text_at(MARGIN, w.y, 9.0, true, None, &s.name);
        w.text_at(MARGIN + 90.0, w.y, 9.0, false, None, &s.signed_at);
        w.y -= 4.4;
        for line in wrap(&s.meaning, PAGE_W - 2.0 * MARGIN, 9.0) {
            w.room(5.0);
            w.text_at(MARGIN, w.y, 9.0, false, None, &line);
            w.y -= 4.4;
        }
        if !s.reason.is_empty() {
            for line in wrap(
                &format!("{comment} {}", s.reason),
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

    w.heading(&l.words("coa-heading-integrity"));
    w.field(&l.words("coa-record-sha256"), &d.record_sha256);
    w.field(&l.words("coa-chain-head"), &d.chain_head);
    w.field(&l.words("coa-generated"), &d.generated);

    let mut written = std::mem::take(&mut w.done);
    written.push(std::mem::take(&mut w.page));
    let total = written.len();
    let footer = format!("{} · {title}", d.batch_number);
    let mut pages = Vec::with_capacity(total);
    for (i, ops) in written.into_iter().enumerate() {
        w.page = ops;
        w.text_at(MARGIN, 8.0, 8.0, false, None, &footer);
        w.text_at(
            PAGE_W - MARGIN - 45.0,
            8.0,
            8.0,
            false,
            None,
            &l.words_with(
                "page-of",
                &[("page", (i + 1).into()), ("total", total.into())],
            ),
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

/// Every value the certificate prints (to know whether any needs CJK glyphs:
/// an English certificate of a product named in Chinese).
fn coa_text(d: &CoaData) -> impl Iterator<Item = &str> {
    [
        &d.product,
        &d.product_type,
        &d.batch_number,
        &d.donor_din,
        &d.intended_recipient,
        &d.specification,
        &d.parents,
    ]
    .into_iter()
    .map(String::as_str)
    .chain(d.tests.iter().flat_map(|t| {
        [
            &t.name,
            &t.method,
            &t.limit,
            &t.result,
            &t.unit,
            &t.performed_by,
            &t.reviewed_by,
        ]
        .map(String::as_str)
    }))
    .chain(
        d.earlier
            .iter()
            .flat_map(|e| [e.result.as_str(), e.note.as_str()]),
    )
    .chain(
        d.deviations
            .iter()
            .flat_map(|v| [v.title.as_str(), v.outcome.as_str()]),
    )
    .chain(
        d.signatures
            .iter()
            .flat_map(|s| [s.name.as_str(), s.meaning.as_str(), s.reason.as_str()]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_too_long_for_the_label_is_set_smaller_and_a_short_one_is_not() {
        assert_eq!(size_to_fit("Batch UCMSC-2026-001", 90.0, 14.0, true), 14.0);
        let both = "批号 UCMSC-2026-Z31358 / Batch UCMSC-2026-Z31358";
        let size = size_to_fit(both, 90.0, 14.0, true);
        assert!(size < 14.0 && size > 6.0, "{size}");
        assert!(units(both) as f32 * 0.26 * size <= 90.0 + 1e-3);
    }

    #[test]
    fn wrapping_keeps_every_word_and_respects_the_width() {
        let lines = wrap("Ph. Eur. 2.6.1 / USP <71>, 14 days", 20.0, 8.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.join(" "), "Ph. Eur. 2.6.1 / USP <71>, 14 days");
        let long = wrap("abcdefghijklmnopqrstuvwxyz", 10.0, 8.0);
        assert_eq!(long.concat(), "abcdefghijklmnopqrstuvwxyz");
        assert_eq!(wrap("", 10.0, 8.0), vec![String::new()]);
    }

    #[test]
    fn chinese_wraps_between_characters_and_counts_double_width() {
        let text = "人脐带间充质干细胞注射液 UCMSC-2026-0001";
        let lines = wrap(text, 20.0, 8.0);
        assert!(lines.len() > 1, "{lines:?}");
        // Nothing lost: the characters in order.
        let joined: String = lines.concat();
        assert_eq!(joined.replace(' ', ""), text.replace(' ', ""));
        let per_line = (20.0_f32 / (8.0 * CHAR_MM_PER_PT)).floor() as usize;
        assert!(lines.iter().all(|l| units(l) <= per_line), "{lines:?}");
        assert_eq!(
            font_runs("批号 UCMSC（放行）"),
            vec![
                (true, "批号".to_owned()),
                (false, " UCMSC".to_owned()),
                (true, "（放行）".to_owned())
            ]
        );
    }

    #[test]
    fn a_chinese_certificate_embeds_only_the_glyphs_it_uses() {
        let data = CoaData {
            lang: CoaLang::Bilingual,
            product: "人脐带间充质干细胞注射液 (UCMSC-INJ)".to_owned(),
            batch_number: "UCMSC-2026-0001".to_owned(),
            tests: vec![CoaTest {
                code: "VIAB".to_owned(),
                name: "活率".to_owned(),
                result: "92.5".to_owned(),
                outcome: "合格 / PASS".to_owned(),
                ..CoaTest::default()
            }],
            ..CoaData::default()
        };
        let pdf = render(&data).unwrap_or_default();
        assert!(pdf.starts_with(b"%PDF"), "no PDF");
        // The whole CJK font is 4 MB; the subset keeps the file small.
        assert!(pdf.len() < 300 * 1024, "{} bytes", pdf.len());
    }
}

//! Reading an instrument's export: a table with a header row, as FlowJo,
//! FACSDiva or a cell counter writes it. The delimiter (`,`, `;` or tab)
//! is detected; where it is not a comma, a decimal comma (`92,5`) is a
//! decimal point. The batch's row is the one row that names the batch
//! number; each mapped column of it becomes one result's value, judged
//! afterwards by exactly the rules of a typed result.

use super::FieldError;
use std::collections::BTreeMap;

/// The largest export accepted (bytes, API.md: 5 MiB): a lab table is a
/// few kilobytes, a plate reader's or a cytometer's whole run a few
/// megabytes.
pub const MAX_EXPORT_BYTES: usize = 5 * 1024 * 1024;

/// The most data rows an export may have (API.md: 10 000).
pub const MAX_EXPORT_ROWS: usize = 10_000;

/// An export read into its header and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The detected delimiter.
    pub delimiter: Delimiter,
    /// The header row, trimmed.
    pub headers: Vec<String>,
    /// The data rows, each cell trimmed; `line` is the 1-based line of the file.
    pub rows: Vec<Row>,
}

/// One data row of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Its line in the file (the header is line 1).
    pub line: u64,
    /// Its cells, trimmed.
    pub cells: Vec<String>,
}

/// A delimiter the reader detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    /// `,`
    Comma,
    /// `;` (European exports, with decimal commas)
    Semicolon,
    /// A tab (FlowJo's and FACSDiva's text tables)
    Tab,
}

impl Delimiter {
    const ALL: [Delimiter; 3] = [Delimiter::Comma, Delimiter::Semicolon, Delimiter::Tab];

    fn byte(self) -> u8 {
        match self {
            Delimiter::Comma => b',',
            Delimiter::Semicolon => b';',
            Delimiter::Tab => b'\t',
        }
    }

    /// The media type a file with this delimiter is kept as.
    pub fn media_type(self) -> &'static str {
        match self {
            Delimiter::Tab => "text/tab-separated-values",
            Delimiter::Comma | Delimiter::Semicolon => "text/csv",
        }
    }

    /// How people call it.
    pub fn name(self) -> &'static str {
        match self {
            Delimiter::Comma => "comma",
            Delimiter::Semicolon => "semicolon",
            Delimiter::Tab => "tab",
        }
    }
}

/// The export's bytes as text: UTF-8, a byte-order mark ignored.
pub fn text_of(bytes: &[u8]) -> Result<&str, FieldError> {
    if bytes.is_empty() {
        return Err(FieldError::said("content", "fe-the-file-is-empty", &[]));
    }
    if bytes.len() > MAX_EXPORT_BYTES {
        return Err(FieldError::said(
            "content",
            "fe-file-bytes",
            &[
                ("bytes", bytes.len().to_string()),
                ("max", MAX_EXPORT_BYTES.to_string()),
                ("mib", (MAX_EXPORT_BYTES / (1024 * 1024)).to_string()),
            ],
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        FieldError::said(
            "content",
            "fe-file-not-utf8",
            &[("byte", (e.valid_up_to() + 1).to_string())],
        )
    })
}

/// Reads `text` with each candidate delimiter and keeps the one that splits
/// the header into the most columns with every row as wide as the header.
/// More than [`MAX_EXPORT_ROWS`] data rows are refused, whichever delimiter
/// reads them. Time and memory grow linearly with the text (each reading
/// stops one row past the limit).
pub fn read_table(text: &str) -> Result<Table, FieldError> {
    let mut best: Option<Table> = None;
    for d in Delimiter::ALL {
        let Ok(t) = read_with(text, d) else { continue };
        if t.rows.len() > MAX_EXPORT_ROWS {
            return Err(FieldError::said(
                "content",
                "fe-file-rows",
                &[("max", MAX_EXPORT_ROWS.to_string())],
            ));
        }
        let width = t.headers.len();
        let consistent = t.rows.iter().all(|r| r.cells.len() == width);
        if width > 1 && consistent && best.as_ref().is_none_or(|b| width > b.headers.len()) {
            best = Some(t);
        }
    }
    best.ok_or_else(|| {
        FieldError::said(
            "content",
            "fe-no-delimiter-comma-semicolon-or-tab-splits-the-file-into-a-h",
            &[],
        )
    })
}

/// The table as delimiter `d` reads it, at most one row past the limit.
fn read_with(text: &str, d: Delimiter) -> Result<Table, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(d.byte())
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut headers = None;
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut lines = LineCounter::new(text);
    loop {
        let from = usize::try_from(reader.position().byte()).unwrap_or(usize::MAX);
        if !reader.read_record(&mut record)? {
            break;
        }
        let line = lines.line_at(from);
        let cells: Vec<String> = record.iter().map(|c| c.trim().to_owned()).collect();
        // Blank lines (all cells empty) are not rows.
        if cells.iter().all(String::is_empty) {
            continue;
        }
        if headers.is_none() {
            headers = Some(cells);
        } else {
            rows.push(Row { line, cells });
            if rows.len() > MAX_EXPORT_ROWS {
                break;
            }
        }
    }
    Ok(Table {
        delimiter: d,
        headers: headers.unwrap_or_default(),
        rows,
    })
}

/// The 1-based line of each record, read from increasing byte offsets: the
/// reader's own count lags a CRLF and skipped blank lines, so it is counted
/// here, each byte once.
struct LineCounter<'t> {
    bytes: &'t [u8],
    /// Bytes counted so far.
    counted: usize,
    /// Newlines among them.
    newlines: u64,
}

impl<'t> LineCounter<'t> {
    fn new(text: &'t str) -> Self {
        LineCounter {
            bytes: text.as_bytes(),
            counted: 0,
            newlines: 0,
        }
    }

    /// The line of the record read from byte `from` (never before the last
    /// one asked about): its first byte that is not a line break.
    fn line_at(&mut self, from: usize) -> u64 {
        let from = from.clamp(self.counted, self.bytes.len());
        let rest = self.bytes.get(from..).unwrap_or_default();
        let start = from
            + rest
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
        let newly = self.bytes.get(self.counted..start).unwrap_or_default();
        self.newlines += newly.iter().filter(|b| **b == b'\n').count() as u64;
        self.counted = start;
        self.newlines + 1
    }
}

impl Table {
    /// The one row naming `batch_number` in one of its cells, alone or
    /// followed by a separator (`UCMSC-2026-027_VIAB.fcs`).
    pub fn batch_row(&self, batch_number: &str) -> Result<&Row, FieldError> {
        let found: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.cells.iter().any(|c| names_batch(c, batch_number)))
            .collect();
        match found.as_slice() {
            [row] => Ok(row),
            [] => Err(FieldError::said(
                "content",
                "fe-no-row-names-batch",
                &[("batch", batch_number.to_owned())],
            )),
            several => Err(FieldError::said(
                "content",
                "fe-rows-name-batch",
                &[
                    (
                        "lines",
                        several
                            .iter()
                            .map(|r| r.line.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    ("batch", batch_number.to_owned()),
                ],
            )),
        }
    }

    /// The column of `header`: exactly as written, else ignoring case.
    pub fn column(&self, header: &str) -> Option<usize> {
        let header = header.trim();
        self.headers.iter().position(|h| h == header).or_else(|| {
            self.headers
                .iter()
                .position(|h| h.to_lowercase() == header.to_lowercase())
        })
    }

    /// The value of `row` in column `index`, as a result's value text: a
    /// decimal comma becomes a point when the delimiter is not a comma.
    pub fn value(&self, row: &Row, index: usize) -> Option<String> {
        let cell = row.cells.get(index)?;
        if cell.is_empty() {
            return None;
        }
        Some(match self.delimiter {
            Delimiter::Comma => cell.clone(),
            Delimiter::Semicolon | Delimiter::Tab => decimal_point(cell),
        })
    }
}

/// `92,5` -> `92.5` and `1,07E+08` -> `1.07E+08`; anything else as it is.
fn decimal_point(cell: &str) -> String {
    let unsigned = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let mantissa = match unsigned.find(['e', 'E']) {
        Some(at) => {
            let exponent = unsigned.get(at + 1..).unwrap_or("");
            let exponent = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
            if exponent.is_empty() || !exponent.bytes().all(|b| b.is_ascii_digit()) {
                return cell.to_owned();
            }
            unsigned.get(..at).unwrap_or("")
        }
        None => unsigned,
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match mantissa.split_once(',') {
        Some((int, frac)) if digits(int) && digits(frac) => cell.replacen(',', ".", 1),
        _ => cell.to_owned(),
    }
}

fn names_batch(cell: &str, batch_number: &str) -> bool {
    let cell = cell.to_lowercase();
    let wanted = batch_number.to_lowercase();
    cell.match_indices(&wanted).any(|(at, _)| {
        let before = cell.get(..at).and_then(|s| s.chars().next_back());
        let after = cell.get(at + wanted.len()..).and_then(|s| s.chars().next());
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// A mapping of test codes to column headers, checked for form: at least
/// one test, each header named once.
pub fn check_mapping(mapping: &BTreeMap<String, String>) -> Result<(), FieldError> {
    if mapping.is_empty() {
        return Err(FieldError::said(
            "mapping",
            "fe-map-at-least-one-test-code-to-a-column-header",
            &[],
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (code, header) in mapping {
        if header.trim().is_empty() {
            return Err(FieldError::said(
                format!("mapping.{code}"),
                "fe-name-the-column-header",
                &[],
            ));
        }
        if !seen.insert(header.trim().to_lowercase()) {
            return Err(FieldError::said(
                format!("mapping.{code}"),
                "fe-column-mapped-twice",
                &[("column", header.trim().to_owned())],
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_semicolon_export_reads_decimal_commas_as_points() {
        let t = read_table("Sample;Viability (%);Cells/mL\nUCMSC-2026-027;92,5;1250000\n").unwrap();
        assert_eq!(t.delimiter, Delimiter::Semicolon);
        assert_eq!(t.headers, ["Sample", "Viability (%)", "Cells/mL"]);
        let row = t.batch_row("UCMSC-2026-027").unwrap();
        assert_eq!(t.value(row, 1).as_deref(), Some("92.5"));
        assert_eq!(t.value(row, 2).as_deref(), Some("1250000"));
    }

    #[test]
    fn a_comma_export_keeps_quoted_cells_and_never_reads_a_comma_as_a_point() {
        let t =
            read_table("Name,\"Live | Freq. of Parent (%)\",Note\nUCMSC-1_VIAB.fcs,93.1,\"a,b\"\n")
                .unwrap();
        assert_eq!(t.delimiter, Delimiter::Comma);
        let row = t.batch_row("ucmsc-1").unwrap();
        assert_eq!(t.value(row, 1).as_deref(), Some("93.1"));
        assert_eq!(t.value(row, 2).as_deref(), Some("a,b"));
        assert_eq!(t.column("live | freq. of parent (%)"), Some(1));
    }

    #[test]
    fn a_tab_export_is_detected() {
        let t = read_table("Name\tCD73\tCD90\nB-1\t98,7\t99.0\n").unwrap();
        assert_eq!(t.delimiter, Delimiter::Tab);
        assert_eq!(t.value(&t.rows[0], 1).as_deref(), Some("98.7"));
    }

    #[test]
    fn the_batch_row_is_the_one_naming_the_batch_as_a_whole_word() {
        let t = read_table("Name;V\nB-10;1\nB-1_tube.fcs;2\nMean;1,5\n").unwrap();
        assert_eq!(t.batch_row("B-1").unwrap().line, 3);
        let crlf = read_table("Name;V\r\n\r\nB-3;1\r\n").unwrap();
        assert_eq!(crlf.batch_row("B-3").unwrap().line, 3);
        assert!(t.batch_row("B-2").unwrap_err().message.contains("no row"));
        let twice = read_table("Name;V\nB-1 a;1\nB-1 b;2\n").unwrap();
        assert!(
            twice
                .batch_row("B-1")
                .unwrap_err()
                .message
                .contains("lines 2, 3")
        );
    }

    #[test]
    fn ragged_or_single_column_text_is_refused() {
        assert!(read_table("just one column\nB-1\n").is_err());
        assert!(read_table("a,b\n1,2,3\n").is_err());
        assert_eq!(text_of(b"").unwrap_err().field, "content");
        assert!(text_of(b"a;\xff\n").unwrap_err().message.contains("UTF-8"));
        assert_eq!(text_of(b"\xEF\xBB\xBFa;b").unwrap(), "a;b");
    }

    #[test]
    fn ten_thousand_rows_are_read_and_one_more_is_refused_naming_the_limit() {
        let export = |rows: usize| {
            let mut t = String::from("Name;V\r\n");
            for i in 0..rows {
                t.push_str(&format!("S-{i};{i},5\r\n"));
                if i % 1000 == 0 {
                    t.push_str("\r\n");
                }
            }
            t
        };
        let full = read_table(&export(MAX_EXPORT_ROWS)).unwrap();
        assert_eq!(full.rows.len(), MAX_EXPORT_ROWS);
        // Lines still counted right deep into the file: the header, the
        // rows before, and the blank line after every thousandth row.
        let last = full.batch_row("S-9999").unwrap();
        assert_eq!(last.line, 1 + 10_000 + 10);
        assert_eq!(full.batch_row("S-1").unwrap().line, 4);
        let over = read_table(&export(MAX_EXPORT_ROWS + 1)).unwrap_err();
        assert_eq!(over.field, "content");
        assert!(over.message.contains("10000"), "{}", over.message);
        assert!(text_of(&vec![b'a'; MAX_EXPORT_BYTES]).is_ok());
        let big = text_of(&vec![b'a'; MAX_EXPORT_BYTES + 1]).unwrap_err();
        assert!(
            big.message.contains("5242880") && big.message.contains("5 MiB"),
            "{}",
            big.message
        );
    }

    #[test]
    fn decimal_point_changes_only_a_plain_decimal_comma() {
        assert_eq!(decimal_point("92,5"), "92.5");
        assert_eq!(decimal_point("-0,25"), "-0.25");
        assert_eq!(decimal_point("1.250,5"), "1.250,5");
        assert_eq!(decimal_point("negative"), "negative");
        assert_eq!(decimal_point("1,2,3"), "1,2,3");
        assert_eq!(decimal_point("1,07E+08"), "1.07E+08");
        assert_eq!(decimal_point("2,5e-3"), "2.5e-3");
        assert_eq!(decimal_point("2,5e"), "2,5e");
    }

    #[test]
    fn a_mapping_names_each_column_once() {
        assert!(check_mapping(&BTreeMap::new()).is_err());
        let twice = BTreeMap::from([
            ("A".to_owned(), "x".to_owned()),
            ("B".to_owned(), "X".to_owned()),
        ]);
        assert_eq!(check_mapping(&twice).unwrap_err().field, "mapping.B");
    }
}

//! The one writer of every CSV the server sends (history, trends, the audit
//! search, where-used, import previews): a UTF-8 byte-order mark first, so
//! that spreadsheet programs read Chinese names as written, and every cell
//! a spreadsheet would read as a formula neutralised (OWASP CSV injection).

/// The byte-order mark every CSV starts with.
pub const BOM: &str = "\u{FEFF}";

/// The media type every CSV is sent with.
pub const MEDIA_TYPE: &str = "text/csv; charset=utf-8";

/// A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab or
/// carriage return first) gets a leading apostrophe, so it stays text.
pub fn neutral_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// A CSV being written: the header, then rows; [`Csv::finish`] gives the
/// bytes, byte-order mark first.
pub struct Csv {
    out: csv::Writer<Vec<u8>>,
}

/// Writing a CSV into memory failed (it never should).
#[derive(Debug, thiserror::Error)]
#[error("writing CSV: {0}")]
pub struct CsvError(String);

impl Csv {
    /// A CSV with these column names.
    pub fn new<I, S>(header: I) -> Result<Csv, CsvError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = csv::Writer::from_writer(BOM.as_bytes().to_vec());
        out.write_record(header.into_iter().map(|h| h.as_ref().to_owned()))
            .map_err(|e| CsvError(e.to_string()))?;
        Ok(Csv { out })
    }

    /// One row; each cell neutralised.
    pub fn row<I, S>(&mut self, cells: I) -> Result<(), CsvError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.out
            .write_record(
                cells
                    .into_iter()
                    .map(|c| neutral_cell(c.as_ref()).into_owned()),
            )
            .map_err(|e| CsvError(e.to_string()))
    }

    /// The bytes.
    pub fn finish(self) -> Result<Vec<u8>, CsvError> {
        self.out.into_inner().map_err(|e| CsvError(e.to_string()))
    }
}

impl From<CsvError> for crate::error::AppError {
    fn from(e: CsvError) -> Self {
        crate::error::AppError::Internal(anyhow::Error::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_csv_starts_with_the_mark_and_no_cell_is_a_formula() {
        let mut c = Csv::new(["batch_number", "value"]).unwrap();
        c.row(["=HYPERLINK(\"http://x\")", "95.0"]).unwrap();
        c.row(["-1+1", "人脐带间充质干细胞"]).unwrap();
        c.row(["@SUM(A1)", "\tx"]).unwrap();
        let text = String::from_utf8(c.finish().unwrap()).unwrap();
        assert!(text.starts_with('\u{FEFF}'));
        assert_eq!(
            text.trim_start_matches('\u{FEFF}'),
            "batch_number,value\n\"'=HYPERLINK(\"\"http://x\"\")\",95.0\n'-1+1,人脐带间充质干细胞\n'@SUM(A1),'\tx\n"
        );
        assert_eq!(neutral_cell("plain"), "plain");
    }
}

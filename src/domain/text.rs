//! Free text as records keep it: trimmed, bounded, and without control
//! characters that would hide content (a single line) or break a record.

use super::FieldError;
use super::value::{checked_code, checked_text};

fn required(
    field: &str,
    v: &str,
    max: usize,
    multiline: bool,
    errors: &mut Vec<FieldError>,
) -> String {
    checked_text(v, max, multiline).unwrap_or_else(|w| {
        errors.push(FieldError::worded(field, w));
        v.trim().to_owned()
    })
}

fn optional(
    field: &str,
    v: Option<&str>,
    max: usize,
    multiline: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let t = v.map(str::trim).filter(|t| !t.is_empty())?;
    Some(required(field, t, max, multiline, errors))
}

/// A required single-line text (a name, a code, a location).
pub fn line(field: &str, v: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    required(field, v, max, false, errors)
}

/// A required code (an asset number, a material code): letters, digits and
/// `. _ -`, starting with a letter or digit, at most `max` long (as the
/// tables' checks say).
pub fn code(field: &str, v: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    checked_code(v, max).unwrap_or_else(|w| {
        errors.push(FieldError::worded(field, w));
        v.trim().to_owned()
    })
}

/// An optional single-line text; blank counts as absent.
pub fn optional_line(
    field: &str,
    v: Option<&str>,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    optional(field, v, max, false, errors)
}

/// A required text that may span lines (a description, a root cause).
pub fn note(field: &str, v: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    required(field, v, max, true, errors)
}

/// An optional text that may span lines (a comment); blank counts as absent.
pub fn optional_note(
    field: &str,
    v: Option<&str>,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    optional(field, v, max, true, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_notes() {
        let mut e = Vec::new();
        assert_eq!(line("name", "  Tess  ", 10, &mut e), "Tess");
        assert!(e.is_empty());
        line("name", "a\nb", 10, &mut e);
        line("name", "", 10, &mut e);
        line("name", "abcdefghijk", 10, &mut e);
        assert_eq!(e.len(), 3);
        let mut e = Vec::new();
        assert_eq!(note("d", "line 1\nline 2", 100, &mut e), "line 1\nline 2");
        assert_eq!(optional_note("c", Some("   "), 100, &mut e), None);
        assert_eq!(optional_line("u", None, 100, &mut e), None);
        assert!(e.is_empty());
        note("d", "bell\u{7}", 100, &mut e);
        assert_eq!(e.len(), 1);
    }
}

//! Decimal values as a lab writes them: kept as the exact text entered
//! (`"95.0"` stays `"95.0"`, `1.0e8` stays `1.0e8`) and compared as exact
//! decimals. No binary floating point anywhere on this path.

use bigdecimal::{BigDecimal, RoundingMode};
use std::cmp::Ordering;
use std::str::FromStr;

/// Longest decimal text accepted.
const MAX_LEN: usize = 40;
/// Largest exponent magnitude accepted (keeps arithmetic bounded).
const MAX_EXPONENT: i64 = 40;

/// A decimal with the text it was entered as.
#[derive(Debug, Clone)]
pub struct Decimal {
    text: String,
    value: BigDecimal,
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Decimal {
    /// Parses decimal text: optional sign, digits with an optional fraction,
    /// optional exponent (`-1.5`, `95.0`, `1.0e8`). An error is the id of
    /// the message saying why (`fe-decimal-*`).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let text = raw.trim();
        if text.is_empty() {
            return Err("fe-decimal-empty");
        }
        if text.len() > MAX_LEN {
            return Err("fe-decimal-too-long");
        }
        if !well_formed(text) {
            return Err("fe-decimal-not");
        }
        if let Some((_, exp)) = text.split_once(['e', 'E']) {
            let e: i64 = exp.parse().map_err(|_| "fe-decimal-exponent")?;
            if e.abs() > MAX_EXPONENT {
                return Err("fe-decimal-exponent");
            }
        }
        let value = BigDecimal::from_str(text).map_err(|_| "fe-decimal-not")?;
        Ok(Decimal {
            text: text.to_owned(),
            value,
        })
    }

    /// Parses the raw JSON text of a value given as a number (`95.0`) or a
    /// decimal string (`"95.0"`).
    pub fn from_json(raw: &str) -> Result<Self, &'static str> {
        let raw = raw.trim();
        if raw.starts_with('"') {
            let s: String = serde_json::from_str(raw).map_err(|_| "fe-decimal-not")?;
            Decimal::parse(&s)
        } else if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            Decimal::parse(raw)
        } else {
            Err("fe-decimal-type")
        }
    }

    /// The text as entered (trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The exact value.
    pub fn value(&self) -> &BigDecimal {
        &self.value
    }

    /// Rebuilds a decimal from stored text (a value this type once parsed).
    pub fn from_stored(text: &str) -> Result<Self, &'static str> {
        Decimal::parse(text)
    }
}

fn well_formed(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int)
        && frac.is_none_or(digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// Rounds to `decimals` places, a half rounding up in magnitude, as labs
/// report values (`0.45` -> `0.5`, `-0.45` -> `-0.5`).
pub fn round_half_up(value: &BigDecimal, decimals: u32) -> BigDecimal {
    value.with_scale_round(i64::from(decimals), RoundingMode::HalfUp)
}

/// Compares two decimals exactly.
pub fn compare(a: &BigDecimal, b: &BigDecimal) -> Ordering {
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_text_as_entered() {
        assert_eq!(Decimal::parse("95.0").unwrap().text(), "95.0");
        assert_eq!(Decimal::from_json("95.0").unwrap().text(), "95.0");
        assert_eq!(Decimal::from_json("\"1.0e8\"").unwrap().text(), "1.0e8");
        assert_eq!(
            Decimal::parse("1.0e8").unwrap().value(),
            &BigDecimal::from(100_000_000)
        );
    }

    #[test]
    fn refuses_what_is_not_a_decimal() {
        for bad in [
            "", "abc", "1.2.3", "NaN", "inf", "1e", "e5", ".", "-", "1,5", "0x10", "1e999",
        ] {
            assert!(Decimal::parse(bad).is_err(), "{bad}");
        }
        assert!(Decimal::from_json("true").is_err());
        assert!(Decimal::from_json("[1]").is_err());
        assert!(Decimal::parse(".5").is_ok());
        assert!(Decimal::parse("5.").is_ok());
        assert!(Decimal::parse("-0.01").is_ok());
    }

    #[test]
    fn rounds_half_up() {
        let r = |s: &str, d| round_half_up(Decimal::parse(s).unwrap().value(), d).to_string();
        assert_eq!(r("79.95", 1), "80.0");
        assert_eq!(r("79.94", 1), "79.9");
        assert_eq!(r("0.45", 1), "0.5");
        assert_eq!(r("-0.45", 1), "-0.5");
        assert_eq!(r("2.5", 0), "3");
    }
}

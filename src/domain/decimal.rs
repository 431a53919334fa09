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

/// serde_json's name for a value read as its raw text (`RawValue`): asked
/// for by this name, serde_json hands over the number as written (`95.0`,
/// not the float `95`), and any other reader (a form, a query) the text.
const RAW_JSON: &str = "$serde_json::private::RawValue";

/// A decimal as sent, not yet read: the raw JSON text of a number or a
/// string (a form's text is quoted as a JSON string). A specification's
/// limits stay so until its tests are read together, so that every bad
/// limit of every test is named at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalText(String);

impl DecimalText {
    /// A form's text (quoted as the JSON string it stands for).
    pub fn typed(text: &str) -> Self {
        DecimalText(serde_json::Value::from(text).to_string())
    }

    /// The raw JSON text.
    pub fn raw(&self) -> &str {
        &self.0
    }

    /// The decimal it states.
    pub fn read(&self) -> Result<Decimal, &'static str> {
        Decimal::from_json(&self.0)
    }
}

/// Reads whatever a decimal field holds as JSON text: serde_json hands over
/// the number as written (`95.0`, not the float `95`), a form or a query
/// the text.
impl<'de> serde::Deserialize<'de> for DecimalText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Reader;
        impl<'de> serde::de::Visitor<'de> for Reader {
            type Value = DecimalText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a decimal number or a decimal string")
            }
            // serde_json: one entry, its value the raw JSON text.
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<DecimalText, A::Error> {
                match m.next_key::<serde::de::IgnoredAny>()? {
                    Some(_) => Ok(DecimalText(m.next_value()?)),
                    None => Ok(DecimalText("{}".into())),
                }
            }
            // A form or a query: the text.
            fn visit_newtype_struct<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<DecimalText, D::Error> {
                Ok(DecimalText::typed(&String::deserialize(d)?))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DecimalText, E> {
                Ok(DecimalText::typed(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DecimalText, E> {
                Ok(DecimalText(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DecimalText, E> {
                Ok(DecimalText(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DecimalText, E> {
                Ok(DecimalText(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<DecimalText, E> {
                Ok(DecimalText(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<DecimalText, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(DecimalText("[]".into()))
            }
        }
        use serde::Deserialize;
        d.deserialize_newtype_struct(RAW_JSON, Reader)
    }
}

/// Reads a decimal as JSON gives it (a number or a decimal string, kept as
/// written) or as a form gives it (the text); a value that is no decimal
/// is refused in the words of `fe-decimal-*`.
impl<'de> serde::Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <DecimalText as serde::Deserialize>::deserialize(d)?
            .read()
            .map_err(|id| super::value::refuse(super::Words::new(id)))
    }
}

impl utoipa::PartialSchema for Decimal {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .examples([serde_json::json!(95.0)]),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .examples([serde_json::json!("1.0e8")]),
            )
            .description(Some(
                "A decimal: a JSON number or a decimal string, kept exactly as written",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Decimal {
    fn name() -> std::borrow::Cow<'static, str> {
        "DecimalInput".into()
    }
}

impl utoipa::PartialSchema for DecimalText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <Decimal as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for DecimalText {
    fn name() -> std::borrow::Cow<'static, str> {
        <Decimal as utoipa::ToSchema>::name()
    }
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

    #[derive(Debug, serde::Deserialize)]
    struct Cmd {
        value: Decimal,
        #[serde(default)]
        limit: Option<Decimal>,
    }

    #[test]
    fn a_command_reads_a_decimal_as_written_from_json_and_from_a_form() {
        let json: Cmd = serde_json::from_str(r#"{"value": 95.0, "limit": "1.0e8"}"#).unwrap();
        assert_eq!(json.value.text(), "95.0", "a JSON number keeps its text");
        assert_eq!(json.limit.unwrap().text(), "1.0e8");
        let value: Cmd = serde_json::from_value(serde_json::json!({"value": 12})).unwrap();
        assert_eq!(value.value.text(), "12");
        assert!(value.limit.is_none());
        let form: Cmd = serde_html_form::from_str("value=95.10&limit=-0.5").unwrap();
        assert_eq!(form.value.text(), "95.10");
        assert_eq!(form.limit.unwrap().text(), "-0.5");
        for bad in [
            r#"{"value": true}"#,
            r#"{"value": [1]}"#,
            r#"{"value": "abc"}"#,
            r#"{"value": {"a": 1}}"#,
        ] {
            let e = serde_json::from_str::<Cmd>(bad).unwrap_err().to_string();
            let words = crate::domain::value::words_of(&e).unwrap_or_else(|| panic!("{bad}: {e}"));
            assert!(
                matches!(words.id.as_ref(), "fe-decimal-type" | "fe-decimal-not"),
                "{bad}: {e}"
            );
        }
        let e = serde_html_form::from_str::<Cmd>("value=1,5")
            .unwrap_err()
            .to_string();
        assert_eq!(
            crate::domain::value::words_of(&e).unwrap().id,
            "fe-decimal-not"
        );
    }
}

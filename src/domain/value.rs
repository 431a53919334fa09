//! The small value types commands are made of: a text that is what a record
//! keeps (trimmed, bounded, no hidden characters), a code, an integer in a
//! range, a list of distinct ids. Each is checked once, where it is read:
//! a JSON body and an HTML form deserialize into the same type, and the
//! OpenAPI document states its rule from the same type ([`utoipa::ToSchema`]),
//! so what the schema allows, the server accepts.
//!
//! A value that breaks its rule fails deserialization with its words (a
//! message id of `src/locales` and its arguments) carried in serde's error
//! message ([`refuse`], read back by [`words_of`]), so the face names the
//! field and says what is wrong in the reader's language.

use super::Words;
use serde::de::{self, Deserialize, Deserializer};
use serde::{Serialize, Serializer};
use std::borrow::Cow;
use std::collections::BTreeSet;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, schema::AnyOfBuilder};
use utoipa::{PartialSchema, ToSchema};

/// Marks serde's error message as carrying [`Words`].
const MARK: char = '\u{1e}';
/// Separates the message id and its arguments.
const SEP: char = '\u{1f}';
/// The argument names [`words_of`] reads back (the words' arguments are
/// `&'static str`).
const ARGS: &[&str] = &["max", "min", "options"];

/// The deserialization error whose message carries `words`.
pub fn refuse<E: de::Error>(words: Words) -> E {
    let mut msg = format!("{MARK}{}", words.id);
    for (k, v) in &words.args {
        msg.push(SEP);
        msg.push_str(k);
        msg.push('=');
        msg.push_str(v);
    }
    E::custom(msg)
}

/// The words [`refuse`] put in a deserialization error's message.
pub fn words_of(message: &str) -> Option<Words> {
    let rest = message.strip_prefix(MARK)?;
    // serde_json may add " at line 1 column 9".
    let rest = rest.rsplit_once(" at line ").map_or(rest, |(r, _)| r);
    let mut parts = rest.split(SEP);
    let id = parts.next()?.to_owned();
    let mut args = Vec::new();
    for p in parts {
        let (k, v) = p.split_once('=')?;
        let k = ARGS.iter().find(|a| **a == k)?;
        args.push((*k, v.to_owned()));
    }
    Some(Words {
        id: Cow::Owned(id),
        args,
    })
}

/// What `str::trim` removes (`char::is_whitespace`), spelled out: a regex
/// `\s` means more in some engines (U+001C to U+001F) and less in others.
pub const BLANK: &str =
    r"[\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";
/// A character that is neither blank nor a control character.
pub const SOLID: &str =
    r"[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";
/// Characters refused on one line (`char::is_control`).
pub const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";
/// ... and in a text that may span lines (tab, LF and CR allowed).
pub const CONTROL_MULTILINE: &str = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F";

/// A text whose trimmed part holds 1 to `max` characters, none a `control`
/// character; blanks around it are trimmed, so the bound is on the trimmed
/// part (in the pattern, not `maxLength`). `optional`: blank as a whole is
/// also accepted (it counts as absent).
pub fn text_pattern(control: &str, max: usize, optional: bool) -> String {
    let inner = max.saturating_sub(2);
    let body = format!("{SOLID}(?:[^{control}]{{0,{inner}}}{SOLID})?");
    let body = if optional {
        format!("(?:{body})?")
    } else {
        body
    };
    format!("^{BLANK}*{body}{BLANK}*$")
}

fn string_schema(pattern: String, nullable: bool, description: &str) -> RefOr<Schema> {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .min_length((!nullable).then_some(1))
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

fn is_hidden(c: char, multiline: bool) -> bool {
    c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'))
}

/// A text as records keep it: trimmed, 1 to `max` characters, none hidden.
pub fn checked_text(v: &str, max: usize, multiline: bool) -> Result<String, Words> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(|c| is_hidden(c, multiline)) {
        let id = if multiline {
            "field-text-length"
        } else {
            "field-line-length"
        };
        return Err(Words::with(id, &[("max", max.to_string())]));
    }
    Ok(t.to_owned())
}

/// A code as the tables' checks say: letters, digits and `. _ -`, starting
/// with a letter or digit, 1 to `max` long.
pub fn checked_code(v: &str, max: usize) -> Result<String, Words> {
    let code = checked_text(v, max, false)?;
    if !code.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(Words::new("field-code-form"));
    }
    Ok(code)
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $label:literal, $check:expr, $pattern:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name<const MAX: usize>(String);

        impl<const MAX: usize> $name<MAX> {
            /// Reads `v` by this type's rule.
            pub fn parse(v: &str) -> Result<Self, Words> {
                let check: fn(&str, usize) -> Result<String, Words> = $check;
                check(v, MAX).map(Self)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, owned.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl<const MAX: usize> std::ops::Deref for $name<MAX> {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl<const MAX: usize> std::fmt::Display for $name<MAX> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de, const MAX: usize> Deserialize<'de> for $name<MAX> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Cow::<'de, str>::deserialize(d)?;
                Self::parse(&s).map_err(refuse)
            }
        }

        impl<const MAX: usize> Serialize for $name<MAX> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<const MAX: usize> PartialSchema for $name<MAX> {
            fn schema() -> RefOr<Schema> {
                let pattern: fn(usize) -> String = $pattern;
                string_schema(pattern(MAX), false, &format!($label, MAX))
            }
        }

        impl<const MAX: usize> ToSchema for $name<MAX> {
            fn name() -> Cow<'static, str> {
                Cow::Owned(format!("{}{}", stringify!($name), MAX))
            }
        }
    };
}

text_type!(
    /// A required single line (a name, a location, a lot number).
    Line,
    "1 to {} printable characters on one line (blanks around it are trimmed)",
    |v, max| checked_text(v, max, false),
    |max| text_pattern(CONTROL, max, false)
);

text_type!(
    /// A required text that may span lines (a reason, a root cause).
    Note,
    "1 to {} characters; lines allowed (blanks around it are trimmed)",
    |v, max| checked_text(v, max, true),
    |max| text_pattern(CONTROL_MULTILINE, max, false)
);

text_type!(
    /// A code (an asset number, a material code): letters, digits and
    /// `. _ -`, starting with a letter or digit.
    Code,
    "a code of 1 to {} letters, digits, '.', '_' or '-', starting with a letter or digit",
    checked_code,
    |max| format!(
        "^{BLANK}*[A-Za-z0-9][A-Za-z0-9._-]{{0,{}}}{BLANK}*$",
        max.saturating_sub(1)
    )
);

text_type!(
    /// A product code: letters, digits and `. _ -` in any order.
    ProductCode,
    "a product code of 1 to {} letters, digits, '.', '_' or '-'",
    |v, max| {
        let code = checked_text(v, max, false)?;
        if code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            Ok(code)
        } else {
            Err(Words::new("fe-may-contain-only-letters-digits-and"))
        }
    },
    |max| format!("^{BLANK}*[A-Za-z0-9._-]{{1,{max}}}{BLANK}*$")
);

text_type!(
    /// A lower-case word of letters, digits and `_`, starting with a letter
    /// (an instrument kind), at most `MAX` long.
    Word,
    "a lower-case word of 1 to {} letters, digits or '_', starting with a letter",
    |v, max| {
        let w = checked_text(v, max, false)?;
        if w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            Ok(w)
        } else {
            Err(Words::new("field-word-form"))
        }
    },
    |max| format!(
        "^{BLANK}*[a-z][a-z0-9_]{{0,{}}}{BLANK}*$",
        max.saturating_sub(1)
    )
);

macro_rules! optional_text_type {
    ($(#[$doc:meta])* $name:ident, $inner:ident, $label:literal, $control:expr) => {
        $(#[$doc])*
        /// Blank, `null` or left out: absent (the field takes
        /// `#[serde(default)]`).
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name<const MAX: usize>(Option<$inner<MAX>>);

        impl<const MAX: usize> $name<MAX> {
            /// The text, if any.
            pub fn as_deref(&self) -> Option<&str> {
                self.0.as_ref().map(|t| t.as_str())
            }

            /// The text, owned, if any.
            pub fn into_inner(self) -> Option<String> {
                self.0.map($inner::into_inner)
            }

            /// Reads `v` by this type's rule (blank: absent).
            pub fn parse(v: Option<&str>) -> Result<Self, Words> {
                match v.map(str::trim).filter(|t| !t.is_empty()) {
                    None => Ok(Self(None)),
                    Some(t) => $inner::parse(t).map(|t| Self(Some(t))),
                }
            }
        }

        impl<'de, const MAX: usize> Deserialize<'de> for $name<MAX> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Option::<Cow<'de, str>>::deserialize(d)?;
                Self::parse(s.as_deref()).map_err(refuse)
            }
        }

        impl<const MAX: usize> Serialize for $name<MAX> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.as_deref().serialize(s)
            }
        }

        impl<const MAX: usize> PartialSchema for $name<MAX> {
            fn schema() -> RefOr<Schema> {
                string_schema(
                    text_pattern($control, MAX, true),
                    true,
                    &format!($label, MAX),
                )
            }
        }

        impl<const MAX: usize> ToSchema for $name<MAX> {
            fn name() -> Cow<'static, str> {
                Cow::Owned(format!("{}{}", stringify!($name), MAX))
            }
        }
    };
}

optional_text_type!(
    /// An optional single line.
    OptionalLine,
    Line,
    "at most {} printable characters on one line; blank counts as absent",
    CONTROL
);

optional_text_type!(
    /// An optional text that may span lines (a comment).
    OptionalNote,
    Note,
    "at most {} characters, lines allowed; blank counts as absent",
    CONTROL_MULTILINE
);

/// An integer from `MIN` to `MAX`, as JSON Schema reads `integer`: `2` and
/// `2.0` alike; in a form, its digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Between<const MIN: i64, const MAX: i64>(i64);

impl<const MIN: i64, const MAX: i64> Between<MIN, MAX> {
    /// The number.
    pub fn get(self) -> i64 {
        self.0
    }
}

struct Integral;

impl de::Visitor<'_> for Integral {
    type Value = i64;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom("the integer is too large"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(v as i64)
        } else {
            Err(E::invalid_type(de::Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim()
            .parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Between<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = d.deserialize_any(Integral)?;
        if (MIN..=MAX).contains(&n) {
            Ok(Self(n))
        } else if MAX == i64::MAX {
            Err(refuse(Words::with(
                "field-at-least",
                &[("min", MIN.to_string())],
            )))
        } else {
            Err(refuse(Words::with(
                "field-between",
                &[("min", MIN.to_string()), ("max", MAX.to_string())],
            )))
        }
    }
}

impl<const MIN: i64, const MAX: i64> Serialize for Between<MIN, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<const MIN: i64, const MAX: i64> PartialSchema for Between<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(MIN))
            .maximum(Some(MAX))
            .into()
    }
}

impl<const MIN: i64, const MAX: i64> ToSchema for Between<MIN, MAX> {
    fn name() -> Cow<'static, str> {
        if MAX == i64::MAX {
            Cow::Owned(format!("AtLeast{MIN}"))
        } else {
            Cow::Owned(format!("Between{MIN}And{MAX}"))
        }
    }
}

/// 1 to `MAX` distinct items (one signing act's results, a user's roles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distinct<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> Distinct<T, MAX> {
    /// The items, in the order sent.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const MAX: usize> std::ops::Deref for Distinct<T, MAX> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<'de, T: Deserialize<'de> + Ord, const MAX: usize> Deserialize<'de> for Distinct<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(d)?;
        let distinct: BTreeSet<&T> = items.iter().collect();
        if items.is_empty() || items.len() > MAX || distinct.len() != items.len() {
            return Err(refuse(Words::with(
                "field-distinct-items",
                &[("max", MAX.to_string())],
            )));
        }
        Ok(Self(items))
    }
}

impl<T: Serialize, const MAX: usize> Serialize for Distinct<T, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<const MAX: usize> PartialSchema for Distinct<uuid::Uuid, MAX> {
    fn schema() -> RefOr<Schema> {
        let id = ObjectBuilder::new().schema_type(Type::String).format(Some(
            utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid),
        ));
        ArrayBuilder::new()
            .items(id)
            .min_items(Some(1))
            .max_items(Some(MAX))
            .unique_items(true)
            .into()
    }
}

impl<const MAX: usize> ToSchema for Distinct<uuid::Uuid, MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("DistinctIdsUpTo{MAX}"))
    }
}

/// A list of at least one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonEmpty<T>(Vec<T>);

impl<T> NonEmpty<T> {
    /// The items, if there is one.
    pub fn of(items: Vec<T>) -> Result<Self, Words> {
        if items.is_empty() {
            Err(Words::new("field-at-least-one"))
        } else {
            Ok(Self(items))
        }
    }

    /// The items.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T> std::ops::Deref for NonEmpty<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NonEmpty<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::of(Vec::<T>::deserialize(d)?).map_err(refuse)
    }
}

impl<T: ToSchema> PartialSchema for NonEmpty<T> {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(utoipa::openapi::Ref::from_schema_name(T::name()))
            .min_items(Some(1))
            .into()
    }
}

impl<T: ToSchema> ToSchema for NonEmpty<T> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("NonEmpty{}", T::name()))
    }
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

/// A filter that is a choice or, when blank, any (a search form sends an
/// empty status for "any status").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnyOr<T> {
    /// No filter.
    #[default]
    Any,
    /// Only this one.
    Only(T),
}

impl<T: Copy> AnyOr<T> {
    /// The choice, if one was made.
    pub fn only(self) -> Option<T> {
        match self {
            AnyOr::Any => None,
            AnyOr::Only(t) => Some(t),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for AnyOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(AnyOr::Any);
        }
        T::deserialize(de::value::StrDeserializer::<D::Error>::new(&s)).map(AnyOr::Only)
    }
}

impl<T: ToSchema> PartialSchema for AnyOr<T> {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(RefOr::Ref(
                utoipa::openapi::Ref::from_schema_name(T::name()),
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([""]))
                    .description(Some("any")),
            )
            .into()
    }
}

impl<T: ToSchema> ToSchema for AnyOr<T> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("AnyOr{}", T::name()))
    }
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words<T: for<'de> Deserialize<'de>>(json: &str) -> Option<Words> {
        match serde_json::from_str::<T>(json) {
            Ok(_) => None,
            Err(e) => words_of(&e.to_string()),
        }
    }

    #[test]
    fn texts_are_trimmed_bounded_and_visible() {
        let l: Line<10> = serde_json::from_str(r#""  Tess  ""#).unwrap();
        assert_eq!(l.as_str(), "Tess");
        let too_long = words::<Line<10>>(r#""abcdefghijk""#).unwrap();
        assert_eq!(too_long.id, "field-line-length");
        assert_eq!(too_long.args, vec![("max", "10".to_owned())]);
        assert!(words::<Line<10>>(r#""a\nb""#).is_some());
        assert!(words::<Line<10>>(r#""   ""#).is_some());
        let n: Note<100> = serde_json::from_str(r#""line 1\nline 2""#).unwrap();
        assert_eq!(&*n, "line 1\nline 2");
        assert!(words::<Note<100>>(r#""bell\u0007""#).is_some());
        let o: OptionalNote<100> = serde_json::from_str(r#""   ""#).unwrap();
        assert_eq!(o.as_deref(), None);
        let o: OptionalLine<5> = serde_json::from_str("null").unwrap();
        assert_eq!(o.as_deref(), None);
        assert_eq!(
            words::<OptionalLine<5>>(r#""toolong""#).unwrap().id,
            "field-line-length"
        );
    }

    #[test]
    fn codes_words_and_product_codes() {
        assert_eq!(
            serde_json::from_str::<Code<40>>(r#"" FC-01 ""#)
                .unwrap()
                .as_str(),
            "FC-01"
        );
        assert_eq!(words::<Code<40>>(r#""-FC""#).unwrap().id, "field-code-form");
        assert_eq!(
            words::<Word<40>>(r#""Flow""#).unwrap().id,
            "field-word-form"
        );
        assert!(serde_json::from_str::<Word<40>>(r#""flow_cytometer""#).is_ok());
        assert!(serde_json::from_str::<ProductCode<40>>(r#""-MSC.1""#).is_ok());
        assert!(words::<ProductCode<40>>(r#""MSC 1""#).is_some());
    }

    #[test]
    fn integers_lists_and_filters() {
        assert_eq!(
            serde_json::from_str::<Between<1, 2>>("2.0").unwrap().get(),
            2
        );
        assert_eq!(words::<Between<1, 2>>("3").unwrap().id, "field-between");
        assert_eq!(
            words::<Between<1, { i64::MAX }>>("0").unwrap().id,
            "field-at-least"
        );
        assert!(serde_json::from_str::<Between<1, 2>>("1.5").is_err());
        assert_eq!(
            words::<Distinct<u8, 2>>("[1, 1]").unwrap().id,
            "field-distinct-items"
        );
        assert!(words::<Distinct<u8, 2>>("[1, 2, 3]").is_some());
        assert!(words::<Distinct<u8, 2>>("[]").is_some());
        assert!(serde_json::from_str::<Distinct<u8, 2>>("[2, 1]").is_ok());
        assert_eq!(
            words::<NonEmpty<u8>>("[]").unwrap().id,
            "field-at-least-one"
        );
        #[derive(serde::Deserialize, Clone, Copy, PartialEq, Debug)]
        #[serde(rename_all = "snake_case")]
        enum Pick {
            One,
        }
        assert_eq!(
            serde_json::from_str::<AnyOr<Pick>>(r#""""#).unwrap(),
            AnyOr::Any
        );
        assert_eq!(
            serde_json::from_str::<AnyOr<Pick>>(r#""one""#)
                .unwrap()
                .only(),
            Some(Pick::One)
        );
        assert!(serde_json::from_str::<AnyOr<Pick>>(r#""two""#).is_err());
    }

    #[test]
    fn every_word_a_value_says_exists_in_both_languages() {
        for id in [
            "field-line-length",
            "field-text-length",
            "field-code-form",
            "field-word-form",
            "fe-may-contain-only-letters-digits-and",
            "field-between",
            "field-at-least",
            "field-distinct-items",
            "field-at-least-one",
            "field-required",
        ] {
            for loc in [crate::i18n::Locale::En, crate::i18n::Locale::ZhCn] {
                let said = Words::with(
                    id,
                    &[
                        ("max", "2".to_owned()),
                        ("min", "1".to_owned()),
                        ("options", "a".to_owned()),
                    ],
                )
                .in_locale(loc);
                assert_ne!(said, id, "{id} has no words in {loc:?}");
            }
        }
    }
}

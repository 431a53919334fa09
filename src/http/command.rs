//! Reading a command from a request, the same way for both faces: a JSON
//! body ([`from_json`]), an HTML form ([`from_form`]) or a query string
//! ([`from_query`]) deserializes into the one command type of the domain,
//! and a value that breaks its rule is refused naming its field, in the
//! words its value type gave (`domain::value`). Every invalid field is
//! named, not only the first: after a field fails, it is left out and the
//! rest is read again (serde stops at the first failure; a missing field is
//! found only after every field sent was read).

use crate::domain::value::words_of;
use crate::domain::{FieldError, Words};
use crate::error::{AppError, Code};
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// How many fields one request may have refused before reading stops.
const MAX_REFUSED: usize = 64;

/// A field that failed: its path and serde's message.
struct Failure {
    path: String,
    message: String,
}

impl<E: std::fmt::Display> From<serde_path_to_error::Error<E>> for Failure {
    fn from(e: serde_path_to_error::Error<E>) -> Self {
        Failure {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        }
    }
}

/// serde's message without serde_json's " at line 1 column 9".
fn without_position(msg: &str) -> &str {
    msg.rfind(" at line ")
        .map_or(msg, |i| msg.get(..i).unwrap_or(msg))
}

/// The names in backticks in serde's message (`unknown variant `x`,
/// expected one of `a`, `b``), after the word "expected".
fn expected(msg: &str) -> Option<Vec<&str>> {
    let (_, after) = msg.split_once("expected")?;
    let names: Vec<&str> = after.split('`').skip(1).step_by(2).collect();
    (!names.is_empty()).then_some(names)
}

/// `missing field `x``: the field.
fn missing(msg: &str) -> Option<&str> {
    msg.strip_prefix("missing field `")?.split('`').next()
}

fn join(parent: &str, name: &str) -> String {
    if parent == "." || parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// A required field left out, in the words of what it asks for where there
/// are some (`field-required-decision`: "choose whether you accept or
/// reject"), else "is required".
fn required(field: String) -> FieldError {
    // The message id is this prefix and the field's name.
    let specific = ["field", "-required-", field.as_str()].concat();
    let words = if crate::i18n::Locale::En.has(&specific) {
        Words {
            id: specific.into(),
            args: Vec::new(),
        }
    } else {
        Words::new("field-required")
    };
    FieldError::worded(field, words)
}

/// The refusal of one failed field, in its value type's words where it gave
/// them; `whole` names the input as a whole (`body`, `query`, `form`).
fn field_error(f: &Failure, whole: &str) -> FieldError {
    let msg = without_position(&f.message);
    if let Some(name) = missing(msg) {
        return required(join(&f.path, name));
    }
    let field = if f.path == "." {
        whole.to_owned()
    } else {
        f.path.clone()
    };
    if let Some(words) = words_of(msg) {
        return FieldError::worded(field, words);
    }
    if msg.starts_with("unknown variant") {
        if let Some(options) = expected(msg) {
            return FieldError::said(
                field,
                "field-not-an-option",
                &[("options", options.join(", "))],
            );
        }
    }
    FieldError::new(field, msg.to_owned())
}

/// Every refused field: `first`, then what reading again without each
/// refused top-level field finds (`again(path)` leaves `path` out and reads
/// again: `None` once the rest reads).
///
/// `absent` are the required fields the input lacks (from the command's
/// schema): serde names only the first, and only once every field sent has
/// been read.
fn every_refusal(
    first: Failure,
    whole: &str,
    absent: &[String],
    mut again: impl FnMut(&str) -> Option<Failure>,
) -> AppError {
    let mut errors = Vec::new();
    let mut left_out: Vec<String> = Vec::new();
    let mut next = Some(first);
    while let Some(f) = next.take() {
        let msg = without_position(&f.message);
        if let Some(name) = missing(msg) {
            // A field this reading left out is not missing; the schema
            // names the ones that are.
            let ours = f.path == "." && left_out.iter().any(|l| l == name);
            if !ours && absent.is_empty() {
                errors.push(field_error(&f, whole));
            }
            break;
        }
        errors.push(field_error(&f, whole));
        let top_level = f.path != "." && !f.path.contains(['.', '[']);
        if !top_level || errors.len() >= MAX_REFUSED {
            break;
        }
        left_out.push(f.path.clone());
        next = again(&f.path);
    }
    for name in absent {
        if !errors.iter().any(|e| &e.field == name) {
            errors.push(required(name.clone()));
        }
    }
    AppError::validation(errors)
}

/// The required fields of `T`'s schema that `present` lacks.
fn absent<T: PartialSchema>(present: impl Fn(&str) -> bool) -> Vec<String> {
    match T::schema() {
        RefOr::T(Schema::Object(o)) => o
            .required
            .iter()
            .filter(|name| !present(name))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// The path of the first string holding a NUL character, which PostgreSQL
/// can't store in text (a 500 otherwise).
fn nul_path(v: &serde_json::Value, path: &str) -> Option<String> {
    match v {
        serde_json::Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, &format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, item)| {
            let p = join(path, k);
            if k.contains('\0') {
                Some(p)
            } else {
                nul_path(item, &p)
            }
        }),
        _ => None,
    }
}

/// A JSON body: syntax errors are 400 `malformed_json`, fields that break
/// their rule 422 naming each.
pub fn from_json<T: DeserializeOwned + PartialSchema>(body: &[u8]) -> Result<T, AppError> {
    // A NUL can only arrive escaped; look closer only when the escape is there.
    if body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Some(path) = nul_path(&v, "") {
                let field = if path.is_empty() {
                    "body".to_owned()
                } else {
                    path
                };
                return Err(AppError::invalid_field_said(
                    field,
                    "fe-must-not-contain-the-nul-character",
                ));
            }
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let e = match serde_path_to_error::deserialize(de) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    match e.inner().classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            return Err(AppError::refused(
                Code::MalformedJson,
                format!("the body is not valid JSON: {}", e.inner()),
            ));
        }
        Category::Data => {}
    }
    let mut value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let absent = absent::<T>(|name| value.get(name).is_some());
    Err(every_refusal(e.into(), "body", &absent, |left_out| {
        if let Some(map) = value.as_object_mut() {
            map.remove(left_out);
        }
        serde_path_to_error::deserialize::<_, T>(&value)
            .err()
            .map(Failure::from)
    }))
}

/// The fields of a form a face reads for itself (its CSRF token, its
/// one-time key, the batch a page goes back to, the person a page acts on:
/// the API has them in its path), not part of the command.
const FORM_ONLY: &[&str] = &["csrf", "form_key", "batch_id", "user"];

/// The pairs of a form as the command reads them: blank fields are absent
/// (an empty input, a select left on "choose"), and the form's own fields
/// are not the command's.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .filter(|(k, v)| !v.trim().is_empty() && !FORM_ONLY.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn read_pairs<T: DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, Failure> {
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let de = serde_html_form::Deserializer::from_bytes(encoded.as_bytes());
    serde_path_to_error::deserialize(de).map_err(Failure::from)
}

/// A form's pairs (see [`form_pairs`]) read into a command: 422 naming
/// each field that breaks its rule.
pub fn from_form<T: DeserializeOwned + PartialSchema>(
    pairs: Vec<(String, String)>,
) -> Result<T, AppError> {
    if let Some((name, _)) = pairs
        .iter()
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(AppError::invalid_field_said(
            name.replace('\0', ""),
            "fe-must-not-contain-the-nul-character",
        ));
    }
    let first = match read_pairs(&pairs) {
        Ok(t) => return Ok(t),
        Err(f) => f,
    };
    let absent = absent::<T>(|name| pairs.iter().any(|(k, _)| k == name));
    let mut pairs = pairs;
    Err(every_refusal(first, "form", &absent, |left_out| {
        pairs.retain(|(k, _)| k != left_out);
        read_pairs::<T>(&pairs).err()
    }))
}

/// Query parameters: 422 naming each parameter that breaks its rule.
pub fn from_query<T: DeserializeOwned>(raw: &[u8]) -> Result<T, AppError> {
    if let Some((name, _)) =
        form_urlencoded::parse(raw).find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(AppError::invalid_field_said(
            name.replace('\0', ""),
            "fe-must-not-contain-the-nul-character",
        ));
    }
    let read = |pairs: &[(String, String)]| {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(encoded.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de)
            .err()
            .map(Failure::from)
    };
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw));
    let first = match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(t) => return Ok(t),
        Err(e) => Failure::from(e),
    };
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Err(every_refusal(first, "query", &[], |left_out| {
        pairs.retain(|(k, _)| k != left_out);
        read(&pairs)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::value::{Line, OptionalNote};
    use serde::Deserialize;

    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    struct Cmd {
        name: Line<5>,
        place: Line<5>,
        #[serde(default)]
        note: OptionalNote<5>,
        pick: Pick,
    }

    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    enum Pick {
        Accept,
        Reject,
    }

    fn fields(e: AppError) -> Vec<(String, String)> {
        match e {
            AppError::Problem(p) => p
                .errors
                .iter()
                .map(|e| {
                    (
                        e.field.clone(),
                        e.words
                            .as_ref()
                            .map(|w| w.id.to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect(),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn every_invalid_field_is_named_in_json_and_forms_alike() {
        let e = from_json::<Cmd>(br#"{"name":"toolong","place":"  ","pick":"maybe"}"#).unwrap_err();
        assert_eq!(
            fields(e),
            vec![
                ("name".into(), "field-line-length".into()),
                ("pick".into(), "field-not-an-option".into()),
                ("place".into(), "field-line-length".into()),
            ]
        );
        let e =
            from_form::<Cmd>(form_pairs(b"csrf=x&name=toolong&place=Lab&note=&pick=")).unwrap_err();
        assert_eq!(
            fields(e),
            vec![
                ("name".into(), "field-line-length".into()),
                ("pick".into(), "field-required".into()),
            ]
        );
        let ok: Cmd = from_form(form_pairs(
            b"csrf=x&form_key=k&name=Tess&place=Lab&note=&pick=reject",
        ))
        .unwrap();
        assert!(matches!(ok.pick, Pick::Reject));
        assert_eq!((ok.name.as_str(), ok.place.as_str()), ("Tess", "Lab"));
        assert_eq!(ok.note.as_deref(), None);
        let e = from_json::<Cmd>(br#"{"name":"a","place":"b","pick":"accept","x":1}"#).unwrap_err();
        assert_eq!(fields(e).first().map(|f| f.0.as_str()), Some("x"));
        assert!(from_json::<Cmd>(b"{").is_err());
    }
}

//! Pure rules a QA person would recognise: no actix, no diesel, no IO.
//!
//! Everything here is deterministic and unit-tested on its own; the services
//! load facts from the database, ask these functions, and write the outcome.

pub mod anchor;
pub mod audit;
pub mod audit_event;
pub mod audit_review;
pub mod batch;
pub mod custody;
pub mod decimal;
pub mod deviation;
pub mod din;
pub mod hashing;
pub mod import;
pub mod instrument;
pub mod material;
pub mod qualification;
pub mod record;
pub mod refusal;
pub mod release;
pub mod result;
pub mod roles;
pub mod signature;
pub mod spec;
pub mod text;
pub mod trend;
pub mod users;
pub mod value;

use serde::Serialize;

/// The name a domain enum is stored and shown with: its snake_case variant
/// name, from the `strum::IntoStaticStr` every stored enum derives (statuses,
/// outcomes, meanings, kinds, events). Parsing back is `TryFrom<&str>`.
pub trait StoredName: Copy + Into<&'static str> {
    /// The stored name.
    fn as_str(self) -> &'static str {
        self.into()
    }
}

impl<T: Copy + Into<&'static str>> StoredName for T {}

/// One invalid field of a request, named by its JSON path (`tests[2].min`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field.
    pub field: String,
    /// What is wrong with it, in English (`Accept-Language` may ask for
    /// another language).
    pub message: String,
    /// The message's id and arguments, to say it in the reader's language.
    #[serde(skip)]
    pub words: Option<Words>,
}

/// A message of `src/locales` with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    /// The message id.
    pub id: std::borrow::Cow<'static, str>,
    /// Its arguments.
    pub args: Vec<(&'static str, String)>,
}

impl Words {
    /// The message `id` with no arguments.
    pub fn new(id: &'static str) -> Self {
        Words {
            id: id.into(),
            args: Vec::new(),
        }
    }

    /// The message `id` with `args`.
    pub fn with(id: &'static str, args: &[(&'static str, String)]) -> Self {
        Words {
            id: id.into(),
            args: args.to_vec(),
        }
    }

    /// The words in English (logs, stored text, the `message` of an error).
    pub fn english(&self) -> String {
        self.in_locale(crate::i18n::Locale::En)
    }

    /// The words in `loc`.
    pub fn in_locale(&self, loc: crate::i18n::Locale) -> String {
        let args: Vec<(&'static str, crate::i18n::Value<'_>)> = self
            .args
            .iter()
            .map(|(k, v)| (*k, v.as_str().into()))
            .collect();
        loc.text_with(&self.id, &args)
    }
}

impl FieldError {
    /// A field error in English words only.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
            words: None,
        }
    }

    /// A field error whose words are the message `id` with `args`: in
    /// English in `message`, in the reader's language where one is known.
    pub fn said(
        field: impl Into<String>,
        id: &'static str,
        args: &[(&'static str, String)],
    ) -> Self {
        Self::worded(field, Words::with(id, args))
    }

    /// A field error whose words are `words`.
    pub fn worded(field: impl Into<String>, words: Words) -> Self {
        FieldError {
            field: field.into(),
            message: words.english(),
            words: Some(words),
        }
    }

    /// What is wrong, in `loc` when the words are known, else in English.
    pub fn message_in(&self, loc: crate::i18n::Locale) -> String {
        self.words
            .as_ref()
            .map_or_else(|| self.message.clone(), |w| w.in_locale(loc))
    }
}

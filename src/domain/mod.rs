//! Pure rules a QA person would recognise: no actix, no diesel, no IO.
//!
//! Everything here is deterministic and unit-tested on its own; the services
//! load facts from the database, ask these functions, and write the outcome.

pub mod anchor;
pub mod audit;
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
pub mod release;
pub mod result;
pub mod roles;
pub mod signature;
pub mod spec;
pub mod text;
pub mod trend;
pub mod users;

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
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

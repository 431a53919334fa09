//! The one HTTP layer both faces (`api`, `web`) use: the application state
//! and the request's database plumbing ([`state`]), the extractors that say
//! who may call a handler ([`auth`]), and a refusal's status and response
//! ([`problem`]). The cryptography stays in [`crate::auth`]; the server is
//! assembled in [`crate::server`].

pub mod auth;
pub mod command;
pub mod download;
pub mod problem;
pub mod state;

pub use state::{
    AppState, Db, Held, HeldConnection, ImportTurn, ImportTurns, MAX_BODY_BYTES, ReadDatabase,
    ReportDb,
};

//! Pure rules a QA person would recognise: no actix, no diesel, no IO.
//!
//! Everything here is deterministic and unit-tested on its own; the services
//! load facts from the database, ask these functions, and write the outcome.

pub mod audit;
pub mod hashing;
pub mod roles;
pub mod users;

//! Integration tests: the real server on port 0 against a real PostgreSQL.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod audit;
mod auth;
mod cli;
mod embedded;
mod errors;
mod support;
mod users;

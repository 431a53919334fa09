//! Integration tests: the real server on port 0 against a real PostgreSQL.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests fail loudly: a panic is the test's failure"
)]

mod anchors;
mod audit;
mod audit_review;
mod auth;
mod backup;
mod batches;
mod browser;
mod certificate;
mod cli;
mod corrections;
mod csv;
mod custody;
mod deployment;
mod deviations;
mod email;
mod embedded;
mod errors;
mod flow;
mod hostile;
mod imports;
mod instruments;
mod integrity;
mod lab;
mod locale;
mod materials;
mod narrowing;
mod openapi;
mod qualifications;
mod release;
mod reports;
mod results;
mod roles;
mod round_trips;
mod specs;
mod support;
mod trends;
mod users;
mod walk;
mod web;

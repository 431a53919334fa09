//! cellqc: GMP quality-control tracking for cell-therapy batches.
//!
//! Layers (dependencies point one way): [`server`] (assembles) -> the faces
//! [`api`] (JSON) and [`web`] (pages) -> [`http`] (state, extractors, a
//! refusal's status) -> [`services`] (one use case, one transaction, its
//! audit entry) -> [`domain`] (pure rules) and [`db`] (schema, pool,
//! migrations, embedded PostgreSQL).

pub mod api;
pub mod auth;
pub mod backup;
pub mod config;
pub mod database;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod i18n;
pub mod notify;
pub mod observability;
pub mod periodic;
pub mod progress;
pub mod report;
pub mod server;
pub mod services;
pub mod telemetry;
pub mod upgrade;
pub mod web;

//! Prometheus metrics: requests by route and status, a latency histogram,
//! database pool use, the email outbox's backlog and failures, and where
//! reports were read (`cellqc_report_reads_total{database="replica"|"primary"}`
//! when a read database is configured; `cellqc_report_replica_behind_total`
//! counts reports of a batch read again on the primary because the replica
//! was behind).
//!
//! Counters are recorded as things happen; the pool and outbox gauges are
//! read when `/metrics` is scraped.

use crate::db::pool::DbPool;
use crate::db::schema::email_outbox;
use crate::error::AppError;
use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use diesel::prelude::*;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Latency buckets, seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process's recorder, installed on first use.
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("cellqc_http_request_duration_seconds".to_owned()),
                    &LATENCY_BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Middleware: counts each request by route pattern, method and status, and
/// records its latency. The pattern (`/api/v1/batches/{id}`), never the raw
/// path, keeps the number of series bounded.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    metrics::counter!("cellqc_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("cellqc_http_request_duration_seconds", "route" => route)
        .record(start.elapsed().as_secs_f64());
    Ok(res)
}

/// Reads the gauges and renders every metric as Prometheus text.
/// `reads` is the read database's pool, when there is one.
pub fn render(
    pool: &DbPool,
    reads: Option<&DbPool>,
    conn: &mut PgConnection,
) -> Result<String, AppError> {
    let state = pool.state();
    metrics::gauge!("cellqc_db_pool_connections").set(f64::from(state.connections));
    metrics::gauge!("cellqc_db_pool_in_use").set(f64::from(
        state.connections.saturating_sub(state.idle_connections),
    ));
    if let Some(reads) = reads {
        let state = reads.state();
        metrics::gauge!("cellqc_read_db_pool_connections").set(f64::from(state.connections));
    }
    let backlog: i64 = email_outbox::table
        .filter(email_outbox::sent_at.is_null())
        .count()
        .get_result(conn)?;
    let failing: i64 = email_outbox::table
        .filter(email_outbox::sent_at.is_null())
        .filter(email_outbox::last_error.is_not_null())
        .count()
        .get_result(conn)?;
    // Counts of rows: exact in f64 far beyond any realistic outbox.
    #[expect(clippy::cast_precision_loss, reason = "row counts fit an f64 exactly")]
    {
        metrics::gauge!("cellqc_email_outbox_backlog").set(backlog as f64);
        metrics::gauge!("cellqc_email_outbox_failing").set(failing as f64);
    }
    handle()
        .map(PrometheusHandle::render)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the metrics recorder is not installed")))
}

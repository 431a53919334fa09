//! Reports read from a read database (`CELLQC_READ_DATABASE_URL`), and
//! fall back to the primary when it is away. Here the read database is the
//! same PostgreSQL reached as another role, so PostgreSQL's own statistics
//! (pg_stat_statements, per role) show which pool ran each statement; the
//! fault test `.ci/fault-tests replica` does the same with a streaming
//! standby.

use crate::lab::Lab;
use crate::support::TestApp;
use actix_web::http::StatusCode;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::json;

/// Every report the read database serves, for a released batch.
fn report_paths(lab: &Lab, batch: &str) -> Vec<String> {
    vec![
        format!("/api/v1/batches/{batch}/history"),
        format!("/api/v1/batches/{batch}/history?format=csv"),
        format!("/api/v1/batches/{batch}/certificate"),
        "/api/v1/audit?limit=50".to_owned(),
        "/api/v1/audit/verify".to_owned(),
        format!("/api/v1/products/{}/trends?test_code=VIAB", lab.product_id),
        format!(
            "/api/v1/products/{}/trends?test_code=VIAB&format=csv",
            lab.product_id
        ),
    ]
}

async fn released_batch(lab: &Lab, number: &str) -> String {
    let b = lab.tested_batch(number, &[]).await;
    let r = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    b
}

#[derive(QueryableByName, Debug)]
struct RoleStatement {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    query: String,
    #[diesel(sql_type = BigInt)]
    calls: i64,
}

/// The statements each role sent since `reset`, from pg_stat_statements
/// (those a client sent: not the ones triggers run inside them, nor the
/// commit-time checks, which name the row they check as `NEW`).
fn by_role(lab: &Lab) -> Vec<RoleStatement> {
    diesel::sql_query(
        "SELECT r.rolname::text AS role, s.query, s.calls FROM pg_stat_statements s \
           JOIN pg_roles r ON r.oid = s.userid \
          WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
            AND s.toplevel AND s.query NOT LIKE '%NEW.%' AND s.query NOT LIKE '%pg_stat_statements%'",
    )
    .load(&mut lab.app.conn())
    .unwrap()
}

fn reset(lab: &Lab) {
    diesel::sql_query(
        "SELECT pg_stat_statements_reset(0, \
           (SELECT oid FROM pg_database WHERE datname = current_database()), 0)",
    )
    .execute(&mut lab.app.conn())
    .unwrap();
}

fn ran(stats: &[RoleStatement], role_is_reader: bool, reader: &str, needle: &str) -> i64 {
    stats
        .iter()
        .filter(|s| (s.role == reader) == role_is_reader && s.query.contains(needle))
        .map(|s| s.calls)
        .sum()
}

#[actix_web::test]
async fn reports_run_on_the_read_database_and_decisions_and_writes_on_the_primary() {
    let app = TestApp::spawn_with_urls(|s, superuser| {
        s.read_database_url = Some(superuser.to_owned());
    })
    .await;
    let reader: String = diesel::select(diesel::dsl::sql::<Text>("current_user::text"))
        .get_result(&mut app.conn())
        .unwrap();
    let lab = Lab::on(app, cellqc::demo::msc_product(), cellqc::demo::msc_spec()).await;
    let (_, auditor) = lab.app.signed_in(&["auditor"]).await;
    let b = released_batch(&lab, "UCMSC-RD-1").await;

    reset(&lab);
    for path in report_paths(&lab, &b) {
        let r = lab.app.get(&path, &auditor).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
    let stats = by_role(&lab);
    // The reports' own reads ran as the read database's role ...
    for needle in [
        "FROM trend_points",
        "FROM \"audit_entries\"",
        "FROM batches b",
    ] {
        assert!(
            ran(&stats, true, &reader, needle) > 0,
            "no `{needle}` on the read database: {stats:#?}"
        );
        assert_eq!(
            ran(&stats, false, &reader, needle),
            0,
            "`{needle}` ran on the primary: {stats:#?}"
        );
    }
    // ... and the primary answered only the session checks and, for each
    // report of one batch, its chain head (is the replica behind?).
    let on_primary: Vec<&RoleStatement> = stats.iter().filter(|s| s.role != reader).collect();
    assert!(
        on_primary.iter().all(|s| s.query.contains("sessions")
            || s.query.contains("audit_chain_heads")
            || s.query.starts_with("BEGIN")
            || s.query.starts_with("COMMIT")
            || s.query.starts_with("SET ")
            || s.query.starts_with("SELECT $1")),
        "the primary ran report statements: {on_primary:#?}"
    );

    // What decides or writes stays on the primary: the batch page just
    // after a write, readiness and the write itself.
    reset(&lab);
    let next = lab.batch("UCMSC-RD-2").await;
    lab.recorded(&next, "VIAB", json!("93.0")).await;
    let page = lab
        .app
        .get(&format!("/api/v1/batches/{next}"), &lab.tech)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["results"].as_array().unwrap().len(), 1);
    let ready = lab
        .app
        .get(
            &format!("/api/v1/batches/{next}/release-readiness"),
            &lab.qa,
        )
        .await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let stats = by_role(&lab);
    assert_eq!(
        ran(&stats, true, &reader, ""),
        0,
        "the read database was used for a write or a decision: {stats:#?}"
    );
    assert!(ran(&stats, false, &reader, "INSERT INTO \"results\"") > 0);
}

#[actix_web::test]
async fn reports_are_read_on_the_primary_when_the_read_database_is_away() {
    // Nothing listens on port 1: every connection to the read database fails.
    let app = TestApp::spawn_with(|s| {
        s.read_database_url =
            Some("postgres://cellqc_app@127.0.0.1:1/cellqc?connect_timeout=1".to_owned());
    })
    .await;
    let lab = Lab::on(app, cellqc::demo::msc_product(), cellqc::demo::msc_spec()).await;
    let (_, auditor) = lab.app.signed_in(&["auditor"]).await;
    let b = released_batch(&lab, "UCMSC-RD-3").await;
    for path in report_paths(&lab, &b) {
        let r = lab.app.get(&path, &auditor).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
    // The history read on the primary holds the release.
    let actions = lab.history_actions(&b, &auditor).await;
    assert!(actions.iter().any(|a| a == "batch.released"), "{actions:?}");
    let metrics = lab.app.get("/metrics", &auditor).await;
    let text = metrics.body.as_str().unwrap_or_default().to_owned();
    let fell_back = text
        .lines()
        .find(|l| l.starts_with("cellqc_report_reads_total{database=\"primary\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        fell_back >= 8.0,
        "reports read on the primary: {fell_back}\n{text}"
    );
}

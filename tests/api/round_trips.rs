//! Round trips: the statements PostgreSQL receives for one request of the
//! hot endpoints, counted by PostgreSQL itself (pg_stat_statements). The
//! session check is included; transaction control (BEGIN, COMMIT) is counted
//! apart, and so is the set-up of a connection the pool opens in the
//! background to keep one idle (diesel's `SET TIME ZONE` and
//! `SET CLIENT_ENCODING`), which no request waits for.

use crate::lab::Lab;
use actix_web::http::StatusCode;
use serde_json::json;

/// (statements, transaction control and connection set-up) of a request's statistics.
fn split(stats: &[(String, i64)]) -> (i64, i64) {
    let control = |q: &str| {
        let q = q.trim_start().to_ascii_uppercase();
        [
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            "SAVEPOINT",
            "RELEASE",
            "SET TIME ZONE 'UTC'",
            "SET CLIENT_ENCODING TO 'UTF8'",
        ]
        .iter()
        .any(|c| q.starts_with(c))
    };
    stats.iter().fold(
        (0, 0),
        |(s, c), (q, n)| {
            if control(q) { (s, c + n) } else { (s + n, c) }
        },
    )
}

#[expect(
    clippy::print_stdout,
    reason = "the counts are the test's report (cargo test -- --nocapture)"
)]
fn show(what: &str, stats: &[(String, i64)]) -> (i64, i64) {
    let (statements, control) = split(stats);
    println!(
        "{what}: {statements} statements and {control} transaction-control or connection set-up statements"
    );
    for (q, n) in stats {
        println!(
            "  {n} x {}",
            q.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    (statements, control)
}

#[actix_web::test]
async fn recording_a_passing_result_sends_at_most_five_statements_and_one_more_for_fitness() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-RT-1").await;
    // Warm: the server's pool holds its connections before the count.
    lab.recorded(&b, "CD73", json!("99.1")).await;
    // Potency names no qualification, instrument or lot.
    let stats = lab
        .app
        .statements_during(async {
            let r = lab.record(&b, "POT", json!("35")).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        })
        .await;
    let (statements, _) = show("record-result", &stats);
    assert!(
        statements <= 5,
        "record-result sent {statements} statements (at most 5): {stats:?}"
    );
    // CD90 requires a qualified analyst on a calibrated cytometer, with a
    // reagent lot: the facts of all three come in one more statement.
    let lot = lab.released_lot("CD90-AB").await;
    let stats = lab
        .app
        .statements_during(async {
            let r = lab
                .record_with(
                    &b,
                    json!({"test_code": "CD90", "value": "98.0", "material_ids": [lot]}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        })
        .await;
    let (statements, _) = show("record-result with fitness", &stats);
    let fitness = stats
        .iter()
        .filter(|(q, _)| q.contains("FROM qualifications q"))
        .map(|(_, n)| n)
        .sum::<i64>();
    assert_eq!(fitness, 1, "{stats:?}");
    // The lot's use is one more INSERT.
    assert!(
        statements <= 7,
        "record-result sent {statements} statements (at most 7): {stats:?}"
    );
}

#[actix_web::test]
async fn the_batch_record_is_read_in_at_most_four_statements() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-RT-2").await;
    for (code, value) in cellqc::demo::msc_passing_values() {
        lab.recorded(&b, code, value).await;
    }
    lab.app
        .get(&format!("/api/v1/batches/{b}"), &lab.tech)
        .await;
    let stats = lab
        .app
        .statements_during(async {
            let r = lab
                .app
                .get(&format!("/api/v1/batches/{b}"), &lab.tech)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert_eq!(r.body["results"].as_array().unwrap().len(), 14);
        })
        .await;
    let (statements, _) = show("batch detail", &stats);
    assert!(
        statements <= 4,
        "batch detail sent {statements} statements (at most 4): {stats:?}"
    );
}

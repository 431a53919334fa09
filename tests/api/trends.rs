//! Trends across batches (continued process verification): one point per
//! batch, its current result, charted as DOMAIN.md "Trends" defines it.

use crate::lab::Lab;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

#[actix_web::test]
async fn a_test_is_charted_across_the_products_batches_with_its_current_results() {
    let lab = Lab::msc().await;
    let app = &lab.app;
    // Twenty batches in turn at 90.0 and 91.128: center 90.564, sigma 1.
    for i in 0..20 {
        let b = lab.batch(&format!("TR-{i:02}")).await;
        let v = if i % 2 == 0 { "90.0" } else { "91.128" };
        lab.recorded(&b, "VIAB", json!(v)).await;
    }
    // Exactly 3 sigma above: in trend. Then beyond: out of trend.
    let at_limit = lab.batch("TR-20").await;
    lab.recorded(&at_limit, "VIAB", json!("93.564")).await;
    let beyond = lab.batch("TR-21").await;
    lab.recorded(&beyond, "VIAB", json!("93.6")).await;
    // A result corrected by its replacement: the replacement is the point.
    let corrected = lab.batch("TR-22").await;
    let first = lab.recorded(&corrected, "VIAB", json!("99.9")).await;
    let r = lab
        .record_with(
            &corrected,
            json!({"test_code": "VIAB", "value": "90.5", "replaces_result_id": first,
                   "reason": "transcription error: 90.5 on the instrument printout"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Another test's results are not points.
    lab.recorded(&corrected, "CD73", json!("97.0")).await;

    let path = format!("/api/v1/products/{}/trends?test_code=VIAB", lab.product_id);
    let t = app.get(&path, &lab.reviewer).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let b = &t.body;
    assert_eq!(b["test_code"], "VIAB");
    assert_eq!(b["unit"], "%");
    assert_eq!(b["spec"], json!({"min": "80", "max": null}));
    assert_eq!(b["baseline_n"], 20);
    assert_eq!(b["center"], 90.564);
    assert_eq!(b["sigma"], 1.0);
    assert_eq!(b["lcl"], 87.564);
    assert_eq!(b["ucl"], 93.564);
    // One side: (90.564 - 80) / 3.
    assert!(
        (b["cpk"].as_f64().unwrap() - 3.521333).abs() < 1e-6,
        "{}",
        b["cpk"]
    );
    assert_eq!(
        b["rules"],
        json!(["nelson_1", "nelson_2", "nelson_3", "nelson_5"])
    );
    let points = b["points"].as_array().unwrap();
    assert_eq!(points.len(), 23, "one per batch");
    let numbers: Vec<&str> = points
        .iter()
        .map(|p| p["batch_number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.first(), Some(&"TR-00"), "in performed_at order");
    let point = |n: &str| -> &Value { points.iter().find(|p| p["batch_number"] == n).unwrap() };
    assert_eq!(
        point("TR-20")["violations"],
        json!([]),
        "at 3 sigma: in trend"
    );
    assert_eq!(
        point("TR-21")["violations"],
        json!(["nelson_1", "nelson_5"])
    );
    assert_eq!(
        point("TR-21")["outcome"],
        "pass",
        "out of trend, yet within specification"
    );
    assert_eq!(point("TR-22")["value"], "90.5", "the current result");
    assert_eq!(point("TR-22")["batch_id"], corrected.as_str());

    // Release readiness warns of the same points, never blocks on them.
    let readiness = |b: String| {
        let path = format!("/api/v1/batches/{b}/release-readiness");
        let token = lab.qa.clone();
        async move { app.get(&path, &token).await }
    };
    let r = readiness(beyond.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let warned: Vec<(&str, &str, &str)> = r.body["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["code"].as_str().unwrap(),
                w["test_code"].as_str().unwrap(),
                w["rule"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        warned,
        [
            ("out_of_trend", "VIAB", "nelson_1"),
            ("out_of_trend", "VIAB", "nelson_5")
        ]
    );
    assert!(
        r.body["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["code"] != "out_of_trend"),
        "a warning is not a blocker"
    );
    assert_eq!(
        readiness(at_limit.clone()).await.body["warnings"],
        json!([])
    );
    // A batch out of trend, otherwise complete, is released with its warning.
    let rel = lab.tested_batch("TR-REL", &["VIAB"]).await;
    let v = lab.recorded(&rel, "VIAB", json!("93.7")).await;
    assert_eq!(lab.review(&v, "accept").await.status, StatusCode::OK);
    let before_release = readiness(rel.clone()).await;
    assert_eq!(
        before_release.body["releasable"], true,
        "{}",
        before_release.body
    );
    assert_eq!(before_release.body["warnings"][0]["rule"], "nelson_1");
    let released = lab.release(&rel, &lab.qa2, json!({})).await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
    assert_eq!(
        readiness(corrected.clone()).await.body["warnings"],
        json!([])
    );

    // CSV: the byte-order mark, a header and one row per point.
    let csv = app.get(&format!("{path}&format=csv"), &lab.reviewer).await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = csv.body.as_str().unwrap().to_owned();
    let text = text.strip_prefix('\u{feff}').unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "batch_number,batch_id,performed_at,test_code,value,unit,outcome,violations,center,lcl,ucl"
        )
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 24, "and TR-REL since");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("TR-21,")
                && r.contains(",nelson_1 nelson_5,90.564,87.564,93.564")),
        "{text}"
    );

    // A time window.
    let later = app
        .get(
            &format!(
                "{path}&from={}",
                urlencoding(point("TR-20")["performed_at"].as_str().unwrap())
            ),
            &lab.tech,
        )
        .await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.body);
    assert_eq!(later.body["points"].as_array().unwrap().len(), 4);
    assert_eq!(
        later.body["center"],
        Value::Null,
        "fewer than 8 points: no limits"
    );

    // Refusals name the field.
    for (query, field) in [
        ("test_code=STER", "test_code"),
        ("test_code=NOPE", "test_code"),
        ("", "test_code"),
        ("test_code=VIAB&format=pdf", "format"),
        (
            "test_code=VIAB&from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
            "to",
        ),
    ] {
        let r = app
            .get(
                &format!("/api/v1/products/{}/trends?{query}", lab.product_id),
                &lab.tech,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            r.body
        );
        assert_eq!(r.body["errors"][0]["field"], field, "{query}");
    }
    let unknown = app
        .get(
            &format!(
                "/api/v1/products/{}/trends?test_code=VIAB",
                uuid::Uuid::now_v7()
            ),
            &lab.tech,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "product_not_found");
}

fn urlencoding(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[actix_web::test]
async fn a_result_rejected_in_review_or_invalidated_leaves_the_series_and_what_replaces_it_enters()
{
    let lab = Lab::msc().await;
    let series = || async {
        let t = lab
            .app
            .get(
                &format!("/api/v1/products/{}/trends?test_code=VIAB", lab.product_id),
                &lab.tech,
            )
            .await;
        assert_eq!(t.status, StatusCode::OK, "{}", t.body);
        t.body["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p["batch_number"].as_str().unwrap(),
                    p["value"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    let a = lab.batch("TP-A").await;
    let first = lab.recorded(&a, "VIAB", json!("91.0")).await;
    let b = lab.batch("TP-B").await;
    let failed = lab.recorded(&b, "VIAB", json!("75.0")).await;
    let c = lab.batch("TP-C").await;
    lab.recorded(&c, "CD73", json!("97.0")).await;
    assert_eq!(series().await, ["TP-A 91.0", "TP-B 75.0"]);

    // Rejected in review: no longer the batch's result.
    let rejected = lab.review(&first, "reject").await;
    assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.body);
    assert_eq!(series().await, ["TP-B 75.0"]);
    // Its replacement is.
    let r = lab
        .record_with(
            &a,
            json!({"test_code": "VIAB", "value": "91.2", "replaces_result_id": first,
                   "reason": "rejected in review: wrong gate; re-analysed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(series().await, ["TP-B 75.0", "TP-A 91.2"]);

    // Invalidated by its OOS investigation: gone; the retest counts.
    let record = lab.batch_record(&b).await;
    let oos = record["deviations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["result_id"] == json!(failed))
        .expect("the OOS investigation")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(lab.close(&oos, "invalid_test").await.status, StatusCode::OK);
    assert_eq!(series().await, ["TP-A 91.2"]);
    lab.recorded(&b, "VIAB", json!("90.4")).await;
    assert_eq!(series().await, ["TP-A 91.2", "TP-B 90.4"]);
    // The list behind the series holds exactly these results.
    assert_eq!(lab.count("trend_points WHERE test_code = 'VIAB'"), 2);
}

/// A test whose baseline does not vary (every moving range 0) gets no
/// control limits and no rule flags: limits of zero width would call every
/// later departure out of trend. The page says why no limits are drawn.
#[actix_web::test]
async fn a_baseline_without_variation_draws_no_limits_and_flags_nothing() {
    let lab = Lab::msc().await;
    let app = &lab.app;
    // The baseline: the first twenty points, all alike.
    for i in 0..20 {
        let b = lab.batch(&format!("FLAT-{i:02}")).await;
        lab.recorded(&b, "VIAB", json!("92.0")).await;
    }
    let after = lab.batch("FLAT-20").await;
    lab.recorded(&after, "VIAB", json!("92.5")).await;
    let path = format!("/api/v1/products/{}/trends?test_code=VIAB", lab.product_id);
    let t = app.get(&path, &lab.reviewer).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(t.body["no_variation"], true);
    for line in ["center", "sigma", "lcl", "ucl", "cpk"] {
        assert!(t.body[line].is_null(), "{line}: {}", t.body);
    }
    let points = t.body["points"].as_array().unwrap();
    assert_eq!(points.len(), 21);
    assert!(
        points.iter().all(|p| p["violations"] == json!([])),
        "{}",
        t.body
    );
    let readiness = app
        .get(
            &format!("/api/v1/batches/{after}/release-readiness"),
            &lab.tech,
        )
        .await;
    assert_eq!(readiness.status, StatusCode::OK, "{}", readiness.body);
    assert_eq!(readiness.body["warnings"], json!([]), "{}", readiness.body);
    let mut reviewer = crate::web::Browser::signed_in_as(&lab, &lab.reviewer).await;
    let page = reviewer
        .get(&format!(
            "/products/{}/trends?test_code=VIAB",
            lab.product_id
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("id=\"no-variation\"")
            && page.body.contains("not enough variation to chart"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("UCL +3σ"), "no control lines drawn");
}

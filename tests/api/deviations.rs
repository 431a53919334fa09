//! Manual deviations and closing rules.

use crate::lab::Lab;
use actix_web::http::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn a_manual_deviation_defaults_to_minor_and_closes_with_a_root_cause() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let r = lab
        .app
        .post(&format!("/api/v1/batches/{b}/deviations"), &lab.reviewer,
              json!({"title": "Incubator door alarm", "description": "Door open 4 min during passage 3"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["kind"], "manual");
    assert_eq!(r.body["severity"], "minor");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let invalid = lab.close(&id, "invalid_test").await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.body["errors"][0]["field"], "conclusion");
    let no_cause = lab
        .app
        .post(&format!("/api/v1/deviations/{id}/close"), &lab.qa,
              json!({"conclusion": "no_impact", "root_cause": "  ", "password": crate::support::USER_PASSWORD}))
        .await;
    assert_eq!(no_cause.body["errors"][0]["field"], "root_cause");
    let tech = lab
        .app
        .post(&format!("/api/v1/deviations/{id}/close"), &lab.tech,
              json!({"conclusion": "no_impact", "root_cause": "x", "password": crate::support::USER_PASSWORD}))
        .await;
    assert_eq!(tech.status, StatusCode::FORBIDDEN);
    let ok = lab.close(&id, "no_impact").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["conclusion"], "no_impact");
    let critical = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/deviations"),
            &lab.tech,
            json!({"title": "t", "description": "d", "severity": "critical"}),
        )
        .await;
    assert_eq!(critical.body["severity"], "critical");
    let bad = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/deviations"),
            &lab.tech,
            json!({"title": "t", "description": "d", "severity": "catastrophic"}),
        )
        .await;
    assert_eq!(bad.body["errors"][0]["field"], "severity");
}

#[actix_web::test]
async fn the_database_refuses_to_edit_results_signatures_and_closed_deviations() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let id = lab.recorded(&b, "ENDO", json!("0.7")).await;
    lab.review(&id, "accept").await;
    let rec = lab.batch_record(&b).await;
    let dev = rec["deviations"][0]["id"].as_str().unwrap().to_owned();
    lab.close(&dev, "confirmed_oos").await;
    use diesel::RunQueryDsl;
    let mut conn = lab.app.conn();
    for sql in [
        format!("UPDATE results SET value_text = '0.1' WHERE id = '{id}'"),
        format!("DELETE FROM results WHERE id = '{id}'"),
        "UPDATE signatures SET signer_full_name = 'Someone Else'".to_owned(),
        format!("UPDATE deviations SET conclusion = 'invalid_test' WHERE id = '{dev}'"),
        format!("UPDATE batches SET batch_number = 'OTHER' WHERE id = '{b}'"),
        format!("DELETE FROM batches WHERE id = '{b}'"),
        "UPDATE spec_tests SET min_text = '1'".to_owned(),
    ] {
        assert!(diesel::sql_query(&sql).execute(&mut conn).is_err(), "{sql}");
    }
}

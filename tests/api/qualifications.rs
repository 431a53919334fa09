//! Qualified analysts (21 CFR 211.25, 11.10(i)): a test that requires a
//! qualification is recorded only by someone QA qualified for it, valid at
//! `performed_at`; QA grants and withdraws with a signature, never for
//! themselves.

use crate::lab::{Lab, uncontrolled};
use crate::support::USER_PASSWORD;
use actix_web::http::StatusCode;
use chrono::{Duration, Utc};
use serde_json::{Value, json};

/// The MSC panel with viability and CD73 for qualified analysts only.
fn spec_with_qualified_tests() -> Value {
    let mut spec = uncontrolled(cellqc::demo::msc_spec());
    for t in spec["tests"].as_array_mut().unwrap() {
        if t["code"] == "VIAB" || t["code"] == "CD73" {
            t["qualification_required"] = json!(true);
        }
    }
    spec
}

#[actix_web::test]
async fn only_an_analyst_qualified_at_performed_at_records_a_test_that_requires_it() {
    let lab = Lab::bare(cellqc::demo::msc_product(), spec_with_qualified_tests()).await;
    let app = &lab.app;
    let spec = app
        .get(&format!("/api/v1/specifications/{}", lab.spec_id), &lab.qa)
        .await;
    let viab = spec.body["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "VIAB")
        .unwrap()
        .clone();
    assert_eq!(viab["qualification_required"], true);
    let batch = lab.batch("QUAL-1").await;
    let now = || Utc::now().to_rfc3339();

    let refused = lab
        .record_with(
            &batch,
            json!({"test_code": "VIAB", "value": "91.0", "performed_at": now()}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.code(), "analyst_not_qualified");
    assert!(refused.body["detail"].as_str().unwrap().contains("VIAB"));
    assert_eq!(lab.count("results"), 0, "nothing recorded");
    // A test that doesn't ask needs nothing.
    lab.recorded(&batch, "CD90", json!("98.0")).await;

    // Who may grant, and what.
    let grant = |token: &str, user: &str, body: Value| {
        let path = format!("/api/v1/users/{user}/qualifications");
        let token = token.to_owned();
        async move { app.post(&path, &token, body).await }
    };
    let until = (Utc::now() + Duration::days(180)).to_rfc3339();
    let good = json!({"test_code": "VIAB", "valid_until": until, "password": USER_PASSWORD,
                      "reason": "training record TR-114, observed assay"});
    let r = grant(&lab.tech, &lab.tech_id, good.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "forbidden_role");
    let qa_id = app.get("/api/v1/auth/me", &lab.qa).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = grant(&lab.qa, &qa_id, good.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "own_account");
    let past = json!({"test_code": "VIAB", "valid_until": (Utc::now() - Duration::days(1)).to_rfc3339(), "password": USER_PASSWORD});
    let r = grant(&lab.qa, &lab.tech_id, past).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "valid_until");
    let unknown = json!({"test_code": "NOPE", "valid_until": until, "password": USER_PASSWORD});
    let r = grant(&lab.qa, &lab.tech_id, unknown).await;
    assert_eq!(r.body["errors"][0]["field"], "test_code", "{}", r.body);
    let wrong = json!({"test_code": "VIAB", "valid_until": until, "password": "not-the-password"});
    let r = grant(&lab.qa, &lab.tech_id, wrong).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "signature_failed");
    assert_eq!(lab.count("qualifications"), 0);

    let granted = grant(&lab.qa, &lab.tech_id, good).await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.body);
    assert_eq!(granted.body["status"], "valid");
    let qid = granted.body["id"].as_str().unwrap().to_owned();
    assert_eq!(app.audit_actions("qualification.granted").len(), 1);
    let signed: i64 = {
        use cellqc::db::schema::signatures;
        use diesel::prelude::*;
        signatures::table
            .filter(signatures::meaning.eq("qualification_granted"))
            .count()
            .get_result(&mut app.conn())
            .unwrap()
    };
    assert_eq!(signed, 1);
    let listed = app
        .get(
            &format!("/api/v1/users/{}/qualifications", lab.tech_id),
            &lab.reviewer,
        )
        .await;
    assert_eq!(listed.body[0]["test_code"], "VIAB");

    // Qualified from the grant on: a result performed before it is still refused.
    let before = lab
        .record_with(&batch, json!({"test_code": "VIAB", "value": "91.0",
                                     "performed_at": (Utc::now() - Duration::hours(2)).to_rfc3339()}))
        .await;
    assert_eq!(before.code(), "analyst_not_qualified");
    let ok = lab
        .record_with(
            &batch,
            json!({"test_code": "VIAB", "value": "91.0", "performed_at": now()}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    // VIAB only: CD73 still refused.
    let other = lab
        .record_with(
            &batch,
            json!({"test_code": "CD73", "value": "97.0", "performed_at": now()}),
        )
        .await;
    assert_eq!(other.code(), "analyst_not_qualified");

    // Withdrawn: from then on refused; withdrawn once.
    let revoke = |password: &str| {
        let path = format!("/api/v1/qualifications/{qid}/revoke");
        let body = json!({"reason": "failed the proficiency test PT-2026-4", "password": password});
        let token = lab.qa2.clone();
        async move { app.post(&path, &token, body).await }
    };
    let r = revoke(USER_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "revoked");
    assert_eq!(revoke(USER_PASSWORD).await.code(), "already_revoked");
    assert_eq!(app.audit_actions("qualification.revoked").len(), 1);
    let batch2 = lab.batch("QUAL-2").await;
    let after = lab
        .record_with(
            &batch2,
            json!({"test_code": "VIAB", "value": "91.0", "performed_at": now()}),
        )
        .await;
    assert_eq!(after.code(), "analyst_not_qualified");

    // The database keeps a grant as granted: only a withdrawal, once.
    use diesel::connection::SimpleConnection;
    let e = app
        .conn()
        .batch_execute(&format!(
            "UPDATE qualifications SET valid_until = valid_until + interval '1 year' WHERE id = '{qid}'"
        ))
        .unwrap_err();
    assert!(e.to_string().contains("only ever revoked, once"), "{e}");
}

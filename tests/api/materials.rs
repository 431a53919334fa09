//! Materials released, in date and traceable (21 CFR 211.84, 211.194(a)):
//! a lot is usable only released, not rejected and in date when used; where
//! it was used is one call; rejecting a used lot opens an impact deviation
//! on every batch that used it, critical and emailed when released.

use crate::lab::{Lab, uncontrolled};
use crate::support::USER_PASSWORD;
use actix_web::http::StatusCode;
use cellqc::db::schema::email_outbox;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};

fn in_days(n: i64) -> String {
    (Utc::now() + Duration::days(n)).to_rfc3339()
}

async fn receive(lab: &Lab, lot: &str, expires: String) -> String {
    let r = lab
        .app
        .post(
            "/api/v1/materials",
            &lab.tech,
            json!({"code": "7AAD", "name": "7-AAD viability dye", "lot_number": lot,
                   "supplier": "BD Biosciences", "kind": "reagent", "expires_at": expires}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "quarantine");
    r.body["id"].as_str().unwrap().to_owned()
}

async fn release(lab: &Lab, id: &str) -> Value {
    lab.app
        .post(
            &format!("/api/v1/materials/{id}/release"),
            &lab.qa,
            json!({"password": USER_PASSWORD}),
        )
        .await
        .body
}

#[actix_web::test]
async fn a_lot_is_used_only_released_and_in_date_and_its_rejection_reaches_every_batch() {
    // Only the material rules: the results are backdated to before a release.
    let lab = Lab::with(
        cellqc::demo::msc_product(),
        uncontrolled(cellqc::demo::msc_spec()),
    )
    .await;
    let app = &lab.app;
    async fn viab(lab: &Lab, batch: &str, lots: Value, performed: String) -> crate::support::Resp {
        lab.record_with(
            batch,
            json!({"test_code": "VIAB", "value": "91.0", "performed_at": performed, "material_ids": lots}),
        )
        .await
    }

    // Received into quarantine by the lab; nobody else.
    let r = app
        .post(
            "/api/v1/materials",
            &lab.reviewer,
            json!({"code": "X", "name": "x", "lot_number": "1", "kind": "reagent", "expires_at": in_days(9)}),
        )
        .await;
    assert_eq!(r.code(), "forbidden_role");
    let lot = receive(&lab, "L-2026-042", in_days(100)).await;
    let again = app
        .post(
            "/api/v1/materials",
            &lab.tech,
            json!({"code": "7AAD", "name": "7-AAD", "lot_number": "L-2026-042", "kind": "reagent", "expires_at": in_days(100)}),
        )
        .await;
    assert_eq!(again.code(), "material_lot_exists");
    let bad = app
        .post(
            "/api/v1/materials",
            &lab.tech,
            json!({"code": "7AAD", "name": "7-AAD", "lot_number": "L9", "kind": "magic", "expires_at": in_days(100)}),
        )
        .await;
    assert_eq!(bad.body["errors"][0]["field"], "kind");

    // In quarantine: refused, nothing recorded.
    let b_rel = lab.tested_batch("MAT-REL", &["VIAB"]).await;
    let r = viab(&lab, &b_rel, json!([lot]), Utc::now().to_rfc3339()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "material_not_usable");
    assert!(r.body["detail"].as_str().unwrap().contains("quarantine"));

    // QA releases it, signed; from then on it is usable.
    let r = app
        .post(
            &format!("/api/v1/materials/{lot}/release"),
            &lab.tech,
            json!({"password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(r.code(), "forbidden_role");
    assert_eq!(release(&lab, &lot).await["status"], "released");
    assert_eq!(
        release(&lab, &lot).await["code"],
        "material_not_in_quarantine"
    );
    let before_release = viab(
        &lab,
        &b_rel,
        json!([lot]),
        (Utc::now() - Duration::hours(3)).to_rfc3339(),
    )
    .await;
    assert!(
        before_release.body["detail"]
            .as_str()
            .unwrap()
            .contains("released only on"),
        "{}",
        before_release.body
    );
    let ok = viab(&lab, &b_rel, json!([lot]), Utc::now().to_rfc3339()).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["material_ids"], json!([lot]));
    let rid = ok.body["id"].as_str().unwrap().to_owned();
    assert_eq!(lab.review(&rid, "accept").await.status, StatusCode::OK);
    assert_eq!(
        lab.release(&b_rel, &lab.qa2, json!({})).await.status,
        StatusCode::OK
    );

    // An expired lot is refused, saying so.
    let old = receive(&lab, "L-2025-001", in_days(-1)).await;
    release(&lab, &old).await;
    let b_q = lab.batch("MAT-Q").await;
    let late = viab(&lab, &b_q, json!([old]), Utc::now().to_rfc3339()).await;
    assert_eq!(late.code(), "material_not_usable");
    assert!(
        late.body["detail"].as_str().unwrap().contains("expired on"),
        "{}",
        late.body
    );

    // Into manufacture, on the batch's chain.
    let used = app
        .post(
            &format!("/api/v1/batches/{b_q}/materials"),
            &lab.tech,
            json!({"material_id": lot, "used_at": Utc::now().to_rfc3339(), "quantity": "2.5", "unit": "mL"}),
        )
        .await;
    assert_eq!(used.status, StatusCode::CREATED, "{}", used.body);
    let audited = app.audit_actions("material.used");
    assert_eq!(audited.len(), 1);
    let neg = app
        .post(
            &format!("/api/v1/batches/{b_q}/materials"),
            &lab.tech,
            json!({"material_id": lot, "used_at": Utc::now().to_rfc3339(), "quantity": "-1"}),
        )
        .await;
    assert_eq!(neg.body["errors"][0]["field"], "quantity");

    // Where used: one call.
    let w = app
        .get(
            &format!("/api/v1/materials/{lot}/where-used"),
            &lab.reviewer,
        )
        .await;
    assert_eq!(w.status, StatusCode::OK);
    let batches = w.body["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 2, "{}", w.body);
    assert!(batches.iter().any(|b| b["batch_id"] == b_rel.as_str()
        && b["via"] == "result"
        && b["result_ids"] == json!([rid])));
    assert!(
        batches
            .iter()
            .any(|b| b["batch_id"] == b_q.as_str() && b["via"] == "batch")
    );

    // Rejected: every batch that used it gets an impact deviation.
    let r = app
        .post(&format!("/api/v1/materials/{lot}/reject"), &lab.qa, json!({"password": USER_PASSWORD, "reason": "supplier recall notice SRN-77: contaminated"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "rejected");
    let devs = |b: &str| {
        let path = format!("/api/v1/batches/{b}");
        let qa = lab.qa.clone();
        async move {
            app.get(&path, &qa).await.body["deviations"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"] == "material")
                .cloned()
                .collect::<Vec<Value>>()
        }
    };
    let on_rel = devs(&b_rel).await;
    assert_eq!(on_rel.len(), 1);
    assert_eq!(on_rel[0]["severity"], "critical");
    assert_eq!(on_rel[0]["result_ids"], json!([rid]));
    assert!(
        on_rel[0]["description"]
            .as_str()
            .unwrap()
            .contains("SRN-77")
    );
    let on_q = devs(&b_q).await;
    assert_eq!(on_q.len(), 1);
    assert_eq!(on_q[0]["severity"], "major");
    assert!(
        on_q[0]["description"]
            .as_str()
            .unwrap()
            .contains("used it in manufacture")
    );
    let mails: i64 = email_outbox::table
        .filter(email_outbox::kind.eq("impact_on_released"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(mails, 1, "QA told at once about the released batch");
    let after = viab(&lab, &b_q, json!([lot]), Utc::now().to_rfc3339()).await;
    assert!(
        after.body["detail"].as_str().unwrap().contains("rejected"),
        "{}",
        after.body
    );
    assert_eq!(app.audit_actions("material.rejected").len(), 1);

    // The database keeps a lot's identity and only moves its status forward.
    use diesel::connection::SimpleConnection;
    let e = app
        .conn()
        .batch_execute(&format!("UPDATE material_lots SET status = 'released', rejected_at = NULL, rejected_by = NULL, reject_reason = NULL WHERE id = '{lot}'"))
        .unwrap_err();
    assert!(e.to_string().contains("only moves"), "{e}");
}

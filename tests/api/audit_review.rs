//! Audit-trail review before release: QA reads the exceptions of the batch's
//! hash chain and signs over its last position; a product may require it.

use crate::lab::{Lab, days_ago};
use crate::support::USER_PASSWORD;
use actix_web::http::StatusCode;
use cellqc::domain::signature::{Meaning, SignedTable, record_hash, signed_row};
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

fn kinds(view: &Value) -> Vec<String> {
    view["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn qa_signs_a_review_of_the_exceptions_over_the_chains_last_position_before_release() {
    let mut product = cellqc::demo::msc_product();
    product["audit_review_required"] = json!(true);
    let lab = Lab::with(product, cellqc::demo::msc_spec()).await;
    let app = &lab.app;
    let p = app
        .get(&format!("/api/v1/products/{}", lab.product_id), &lab.tech)
        .await;
    assert_eq!(p.body["audit_review_required"], true, "{}", p.body);
    let (_, auditor) = app.signed_in(&["auditor"]).await;
    // A QA person who also reviews results: not independent of the batch.
    let (_, reviewing_qa) = app.signed_in(&["reviewer", "qa"]).await;

    let b = lab.tested_batch("AR-1", &["VIAB", "DOSE", "CD73"]).await;
    // A correction: 85.0 replaced by 91.5, with the reason.
    let first = lab.recorded(&b, "VIAB", json!("85.0")).await;
    let viab = lab
        .record_with(
            &b,
            json!({"test_code": "VIAB", "value": "91.5", "replaces_result_id": first,
                   "reason": "transcription error: 91.5 on the cytometer printout"}),
        )
        .await;
    assert_eq!(viab.status, StatusCode::CREATED, "{}", viab.body);
    // A late entry: performed four days before it was recorded.
    let dose = lab
        .record_with(
            &b,
            json!({"test_code": "DOSE", "value": "1.1e8", "performed_at": days_ago(4)}),
        )
        .await;
    assert_eq!(dose.status, StatusCode::CREATED, "{}", dose.body);
    let cd73 = lab.recorded(&b, "CD73", json!("98.0")).await;
    for id in [
        viab.body["id"].as_str().unwrap(),
        dose.body["id"].as_str().unwrap(),
    ] {
        assert_eq!(lab.review(id, "accept").await.status, StatusCode::OK);
    }
    let r = app
        .post(
            &format!("/api/v1/results/{cd73}/review"),
            &reviewing_qa,
            json!({"decision": "accept", "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Everything else is in: only the review stands in the way.
    assert_eq!(lab.blockers(&b).await, ["audit_trail_not_reviewed"]);
    let refused = lab.release(&b, &lab.qa, json!({})).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.code(), "not_releasable");

    let path = format!("/api/v1/batches/{b}/audit-review");
    assert_eq!(
        app.get(&path, &lab.tech).await.code(),
        "forbidden_role",
        "a technician does not read the trail"
    );
    let view = app.get(&path, &auditor).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    let v = &view.body;
    assert_eq!(v["state"], "not_reviewed");
    assert_eq!(v["required"], true);
    assert_eq!(v["reviews"], json!([]));
    // Routine entries (creation, first results in time, accepted reviews)
    // are left out: the correction (new result and the one it supersedes)
    // and the late entry remain, in chain order.
    assert_eq!(kinds(v), ["replacement", "replacement", "late_entry"]);
    let head = v["up_to_seq"].as_i64().unwrap();
    assert_eq!(v["entries"].as_i64().unwrap(), head);
    assert_eq!(v["head_hash"].as_str().unwrap().len(), 64);
    let correction = v["exceptions"][0]["summary"].as_str().unwrap();
    assert!(
        correction.contains("VIAB 85.0 % -> VIAB 91.5 %")
            && correction.contains("transcription error: 91.5 on the cytometer printout"),
        "{correction}"
    );
    let late = v["exceptions"][2]["summary"].as_str().unwrap();
    assert!(
        late.contains("DOSE 1.1e8 cells") && late.contains(" 96 h after it was performed"),
        "{late}"
    );
    assert_eq!(v["exceptions"][2]["actor"]["id"], json!(lab.tech_id));

    let sign = |token: &str, body: Value| {
        let path = path.clone();
        let token = token.to_owned();
        async move { app.post(&path, &token, body).await }
    };
    let ok_body =
        json!({"password": USER_PASSWORD, "up_to_seq": head, "comment": "corrections justified"});
    // Who may sign, what they name, and their password: each refusal
    // writes nothing.
    assert_eq!(
        sign(&lab.reviewer, ok_body.clone()).await.code(),
        "forbidden_role"
    );
    let stale = sign(
        &lab.qa,
        json!({"password": USER_PASSWORD, "up_to_seq": head - 1}),
    )
    .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert_eq!(stale.code(), "stale_review");
    let zero = sign(&lab.qa, json!({"password": USER_PASSWORD, "up_to_seq": 0})).await;
    assert_eq!(zero.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(zero.body["errors"][0]["field"], "up_to_seq");
    let dependent = sign(&reviewing_qa, ok_body.clone()).await;
    assert_eq!(
        dependent.status,
        StatusCode::FORBIDDEN,
        "{}",
        dependent.body
    );
    assert_eq!(dependent.code(), "not_independent");
    let wrong = sign(
        &lab.qa,
        json!({"password": "not the password", "up_to_seq": head}),
    )
    .await;
    assert_eq!(wrong.code(), "signature_failed");
    assert_eq!(lab.count("audit_reviews"), 0);
    assert_eq!(
        app.get(&path, &auditor).await.body["up_to_seq"].as_i64(),
        Some(head),
        "no entry in the batch's chain"
    );

    let signed = sign(&lab.qa, ok_body).await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
    let s = &signed.body;
    assert_eq!(s["state"], "reviewed");
    assert_eq!(s["up_to_seq"].as_i64(), Some(head + 1), "its own entry");
    let review = &s["reviews"][0];
    assert_eq!(review["meaning"], "audit_trail_reviewed");
    assert_eq!(review["up_to_seq"].as_i64(), Some(head));
    assert_eq!(review["head_hash"], v["head_hash"]);
    assert_eq!(review["exceptions"], 3);
    assert_eq!(review["reason"], "corrections justified");
    // The signature signs the chain position: the entry reviewed up to,
    // whose hash covers every entry before it (and so every exception read).
    let position: Uuid = {
        use cellqc::db::schema::{audit_chain_heads as h, audit_entries as e};
        e::table
            .inner_join(h::table)
            .filter(h::chain.eq(format!("batch:{b}")))
            .filter(e::seq.eq(head))
            .select(e::id)
            .first(&mut app.conn())
            .unwrap()
    };
    let head_hash = v["head_hash"].as_str().unwrap();
    let record = signed_row(SignedTable::AuditEntries, position, head_hash);
    let signer = review["signer"]["id"].as_str().unwrap().parse().unwrap();
    let at = review["signed_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        review["record_hash"].as_str().unwrap(),
        record_hash(&record, signer, Meaning::AuditTrailReviewed, at).unwrap()
    );
    let moved = signed_row(SignedTable::AuditEntries, Uuid::now_v7(), head_hash);
    assert_ne!(
        review["record_hash"].as_str().unwrap(),
        record_hash(&moved, signer, Meaning::AuditTrailReviewed, at).unwrap()
    );
    assert_eq!(lab.count("audit_reviews"), 1);
    let last = &s["exceptions"].as_array().unwrap().last().unwrap();
    assert_eq!(last["kind"], "audit_review");
    assert_eq!(last["action"], "batch.audit_reviewed");
    assert_eq!(lab.blockers(&b).await, Vec::<String>::new());

    // A new exception (a deviation opened and closed) makes it stale.
    let d = app
        .post(
            &format!("/api/v1/batches/{b}/deviations"),
            &lab.tech,
            json!({"title": "Incubator door alarm", "description": "Door open 4 min during harvest"}),
        )
        .await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.body);
    let closed = lab.close(d.body["id"].as_str().unwrap(), "no_impact").await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    assert_eq!(lab.blockers(&b).await, ["audit_trail_not_reviewed"]);
    let again = app.get(&path, &lab.qa2).await.body;
    assert_eq!(again["state"], "stale");
    let fresh: Vec<(&str, bool)> = again["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["after_last_review"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fresh,
        [
            ("replacement", false),
            ("replacement", false),
            ("late_entry", false),
            ("audit_review", false),
            ("deviation_opened", true),
            ("deviation_closed", true),
        ]
    );
    let second = sign(
        &lab.qa2,
        json!({"password": USER_PASSWORD, "up_to_seq": again["up_to_seq"]}),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["reviews"].as_array().unwrap().len(), 2);
    // A custody event without excursion is routine: the review stands.
    let c = lab
        .custody(&b, json!({"event": "received", "temperature_c": "-180"}))
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    assert_eq!(lab.blockers(&b).await, Vec::<String>::new());
    let released = lab.release(&b, &lab.qa, json!({})).await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
    assert_eq!(released.body["status"], "released");
    let verify = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!(verify.body["ok"], true, "{}", verify.body);
}

#[actix_web::test]
async fn a_product_that_does_not_require_it_still_shows_the_exceptions() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("AR-2", &[]).await;
    assert_eq!(lab.blockers(&b).await, Vec::<String>::new());
    let v = lab
        .app
        .get(&format!("/api/v1/batches/{b}/audit-review"), &lab.qa)
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    assert_eq!(v.body["required"], false);
    assert_eq!(v.body["exceptions"], json!([]), "a clean batch is routine");
    let missing = lab
        .app
        .get(
            &format!("/api/v1/batches/{}/audit-review", uuid::Uuid::now_v7()),
            &lab.qa,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "batch_not_found");
}

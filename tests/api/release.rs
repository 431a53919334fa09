//! The release gate: one test per blocker, independence, signatures,
//! conditional release, reject and recall.

use crate::lab::{Lab, days_ago};
use crate::support::USER_PASSWORD;
use actix_web::http::StatusCode;
use cellqc::db::schema::{email_outbox, signatures};
use diesel::prelude::*;
use serde_json::json;

/// Asserts that release is refused with `code` among the blockers, and that
/// nothing changed.
async fn assert_blocked(lab: &Lab, batch: &str, code: &str) {
    assert!(
        lab.blockers(batch).await.contains(&code.to_owned()),
        "{code} not in {:?}",
        lab.blockers(batch).await
    );
    let sigs_before = lab.count("signatures");
    let r = lab.release(batch, &lab.qa2, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "not_releasable");
    let codes: Vec<&str> = r.body["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&code), "{codes:?}");
    assert_eq!(lab.status(batch), "quarantine");
    assert_eq!(
        lab.count("signatures"),
        sigs_before,
        "a refused release signs nothing"
    );
}

#[actix_web::test]
async fn a_missing_result_blocks_release() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-1", &["POT"]).await;
    assert_eq!(lab.blockers(&b).await, ["missing_result"]);
    assert_blocked(&lab, &b, "missing_result").await;
}

#[actix_web::test]
async fn a_failed_result_blocks_release() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-1", &["VIAB"]).await;
    let id = lab.recorded(&b, "VIAB", json!("79.4")).await;
    lab.review(&id, "accept").await;
    let blockers = lab.blockers(&b).await;
    assert_eq!(blockers, ["result_failed", "open_deviation"]);
    assert_blocked(&lab, &b, "result_failed").await;
}

#[actix_web::test]
async fn an_unreviewed_result_blocks_release() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-1", &["ENDO"]).await;
    lab.recorded(&b, "ENDO", json!("0.05")).await;
    assert_eq!(lab.blockers(&b).await, ["result_not_reviewed"]);
    assert_blocked(&lab, &b, "result_not_reviewed").await;
}

#[actix_web::test]
async fn an_open_deviation_blocks_release() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-1", &[]).await;
    lab.app
        .post(
            &format!("/api/v1/batches/{b}/deviations"),
            &lab.tech,
            json!({"title": "HEPA alarm", "description": "d"}),
        )
        .await;
    assert_eq!(lab.blockers(&b).await, ["open_deviation"]);
    assert_blocked(&lab, &b, "open_deviation").await;
}

#[actix_web::test]
async fn a_confirmed_oos_blocks_release_for_good() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-1", &["MYCO"]).await;
    let id = lab.recorded(&b, "MYCO", json!("detected")).await;
    lab.review(&id, "accept").await;
    let dev = lab.batch_record(&b).await["deviations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    lab.close(&dev, "confirmed_oos").await;
    assert_eq!(lab.blockers(&b).await, ["result_failed", "confirmed_oos"]);
    assert_blocked(&lab, &b, "confirmed_oos").await;
    // It can still be rejected.
    let r = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/reject"),
            &lab.qa,
            json!({"password": USER_PASSWORD, "reason": "confirmed mycoplasma"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "rejected");
}

#[actix_web::test]
async fn a_batch_in_transit_is_not_releasable() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-1", &[]).await;
    let s = lab
        .custody(
            &b,
            json!({"event": "shipped", "internal": true, "party": "QC courier"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    assert_eq!(lab.blockers(&b).await, ["in_transit"]);
    assert_blocked(&lab, &b, "in_transit").await;
    lab.custody(&b, json!({"event": "delivered", "party": "QC lab"}))
        .await;
    assert!(lab.blockers(&b).await.is_empty());
}

#[actix_web::test]
async fn an_expired_batch_is_not_releasable() {
    let lab = Lab::msc().await;
    let r = lab
        .create_batch(json!({"batch_number": "MSC-OLD", "expires_at": days_ago(2)}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let b = r.body["id"].as_str().unwrap().to_owned();
    for (code, value) in cellqc::demo::msc_passing_values() {
        let id = lab
            .record_with(
                &b,
                json!({"test_code": code, "value": value, "performed_at": days_ago(5)}),
            )
            .await;
        lab.review(id.body["id"].as_str().unwrap(), "accept").await;
    }
    assert_eq!(lab.blockers(&b).await, ["expired"]);
    assert_blocked(&lab, &b, "expired").await;
}

#[actix_web::test]
async fn an_unreleased_parent_blocks_its_drug_product() {
    let lab = Lab::msc().await;
    let parent = lab.tested_batch("WCB-1", &[]).await;
    let r = lab
        .create_batch(json!({"batch_number": "DP-1", "parent_batch_ids": [parent]}))
        .await;
    let child = r.body["id"].as_str().unwrap().to_owned();
    for (code, value) in cellqc::demo::msc_passing_values() {
        let id = lab.recorded(&child, code, value).await;
        lab.review(&id, "accept").await;
    }
    assert_eq!(lab.blockers(&child).await, ["parent_not_released"]);
    assert_blocked(&lab, &child, "parent_not_released").await;
    assert_eq!(
        lab.release(&parent, &lab.qa2, json!({})).await.status,
        StatusCode::OK
    );
    assert!(lab.blockers(&child).await.is_empty());
    assert_eq!(
        lab.release(&child, &lab.qa2, json!({})).await.body["status"],
        "released"
    );
}

#[actix_web::test]
async fn an_independent_qa_releases_with_a_signature_and_the_trail_shows_it() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-1", &[]).await;
    let r = lab.release(&b, &lab.tech, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only QA releases");
    let wrong = lab
        .release(&b, &lab.qa2, json!({"password": "not-the-password"}))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "signature_failed");
    assert_eq!(lab.status(&b), "quarantine");
    let ok = lab
        .release(
            &b,
            &lab.qa2,
            json!({"comment": "all results within specification"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["status"], "released");
    let sig = &ok.body["signatures"][0];
    assert_eq!(sig["meaning"], "released");
    assert_eq!(sig["statement"], "I approve this batch for release");
    assert_eq!(sig["reason"], "all results within specification");
    assert_eq!(lab.status(&b), "released");
    assert_eq!(lab.app.audit_actions("batch.released").len(), 1);
    let again = lab.release(&b, &lab.qa, json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "invalid_transition");
    let mails: Vec<String> = email_outbox::table
        .select(email_outbox::kind)
        .load(&mut lab.app.conn())
        .unwrap();
    assert!(mails.contains(&"batch_released".to_owned()));
}

#[actix_web::test]
async fn qa_who_reviewed_a_result_may_not_release_the_batch() {
    let lab = Lab::msc().await;
    let (_, qa_reviewer) = lab.app.signed_in(&["qa", "reviewer"]).await;
    let b = lab.tested_batch("MSC-1", &["CD73"]).await;
    let id = lab.recorded(&b, "CD73", json!("97.5")).await;
    let r = lab
        .app
        .post(
            &format!("/api/v1/results/{id}/review"),
            &qa_reviewer,
            json!({"decision": "accept", "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let refused = lab.release(&b, &qa_reviewer, json!({})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "not_independent");
    assert_eq!(lab.status(&b), "quarantine");
    let (_, qa_tech) = lab.app.signed_in(&["qa", "technician"]).await;
    let b2 = lab.tested_batch("MSC-2", &["POT"]).await;
    lab.app
        .post(
            &format!("/api/v1/batches/{b2}/results"),
            &qa_tech,
            json!({"test_code": "POT", "value": "35", "performed_at": days_ago(1)}),
        )
        .await;
    let rec = lab.batch_record(&b2).await;
    let pot = rec["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["test_code"] == "POT")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    lab.review(&pot, "accept").await;
    assert_eq!(
        lab.release(&b2, &qa_tech, json!({})).await.code(),
        "not_independent"
    );
}

#[actix_web::test]
async fn two_signatures_from_two_different_qa_users_release_a_dual_signature_product() {
    let mut product = cellqc::demo::msc_product();
    product["release_signatures_required"] = json!(2);
    let lab = Lab::with(product, cellqc::demo::msc_spec()).await;
    let b = lab.tested_batch("MSC-1", &[]).await;
    let first = lab.release(&b, &lab.qa, json!({})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["status"], "quarantine");
    assert_eq!(first.body["signatures"].as_array().unwrap().len(), 1);
    let same = lab.release(&b, &lab.qa, json!({})).await;
    assert_eq!(same.status, StatusCode::CONFLICT);
    assert_eq!(same.code(), "already_signed");
    let second = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(second.body["status"], "released");
    let meanings: Vec<String> = signatures::table
        .filter(signatures::entity_type.eq("batch"))
        .select(signatures::meaning)
        .load(&mut lab.app.conn())
        .unwrap();
    assert_eq!(meanings, ["released", "released"]);
    assert_eq!(lab.app.audit_actions("batch.release_signed").len(), 1);
}

#[actix_web::test]
async fn conditional_release_waits_only_for_pending_allowed_tests_and_needs_a_justification() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-1", &["STER"]).await;
    let rd = lab
        .app
        .get(&format!("/api/v1/batches/{b}/release-readiness"), &lab.tech)
        .await;
    assert_eq!(rd.body["releasable"], false);
    assert_eq!(rd.body["conditionally_releasable"], true);
    assert_eq!(rd.body["blockers"][0]["test_code"], "STER");
    let full = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(full.code(), "not_releasable");
    let no_reason = lab
        .release(&b, &lab.qa2, json!({"conditional": true}))
        .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_reason.body["errors"][0]["field"], "justification");
    let cond = lab
        .release(&b, &lab.qa2, json!({"conditional": true, "justification": "14-day sterility pending; 6 h shelf life"}))
        .await;
    assert_eq!(cond.status, StatusCode::OK, "{}", cond.body);
    assert_eq!(cond.body["status"], "conditionally_released");
    assert_eq!(
        cond.body["signatures"][0]["meaning"],
        "conditionally_released"
    );
    // Sterility passes and is reviewed; a further signature certifies the batch.
    let id = lab.recorded(&b, "STER", json!("no growth")).await;
    assert_eq!(
        lab.release(&b, &lab.qa2, json!({})).await.code(),
        "not_releasable"
    );
    lab.review(&id, "accept").await;
    let fin = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(fin.body["status"], "released", "{}", fin.body);

    // Another batch missing viability as well: no conditional release.
    let b2 = lab.tested_batch("MSC-2", &["STER", "VIAB"]).await;
    let r = lab
        .release(
            &b2,
            &lab.qa2,
            json!({"conditional": true, "justification": "x"}),
        )
        .await;
    assert_eq!(r.code(), "not_releasable");
}

#[actix_web::test]
async fn a_late_sterility_failure_opens_a_critical_deviation_and_alerts_qa_at_once() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-1", &["STER"]).await;
    lab.release(
        &b,
        &lab.qa2,
        json!({"conditional": true, "justification": "sterility pending"}),
    )
    .await;
    let r = lab.record(&b, "STER", json!("growth")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let rec = lab.batch_record(&b).await;
    let dev = rec["deviations"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(dev["kind"], "oos");
    assert_eq!(dev["severity"], "critical");
    let urgent: Vec<(String, Vec<String>)> = email_outbox::table
        .filter(email_outbox::urgent.eq(true))
        .select((email_outbox::kind, email_outbox::recipients))
        .load(&mut lab.app.conn())
        .unwrap();
    assert_eq!(urgent.len(), 1);
    assert_eq!(urgent[0].0, "late_oos");
    assert_eq!(urgent[0].1.len(), 2, "every active QA user");
    // The QP may recall it; a recall needs a reason.
    let no_reason = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/recall"),
            &lab.qa2,
            json!({"password": USER_PASSWORD, "reason": ""}),
        )
        .await;
    assert_eq!(no_reason.body["errors"][0]["field"], "reason");
    let recall = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/recall"),
            &lab.qa2,
            json!({"password": USER_PASSWORD, "reason": "late sterility failure"}),
        )
        .await;
    assert_eq!(recall.body["status"], "recalled", "{}", recall.body);
}

#[actix_web::test]
async fn reject_and_recall_only_from_the_states_that_allow_them() {
    let lab = Lab::msc().await;
    let q = lab.batch("MSC-Q").await;
    let recall = lab
        .app
        .post(
            &format!("/api/v1/batches/{q}/recall"),
            &lab.qa,
            json!({"password": USER_PASSWORD, "reason": "r"}),
        )
        .await;
    assert_eq!(recall.status, StatusCode::CONFLICT);
    assert_eq!(recall.code(), "invalid_transition");
    let released = lab.tested_batch("MSC-R", &[]).await;
    lab.release(&released, &lab.qa2, json!({})).await;
    let reject = lab
        .app
        .post(
            &format!("/api/v1/batches/{released}/reject"),
            &lab.qa,
            json!({"password": USER_PASSWORD, "reason": "r"}),
        )
        .await;
    assert_eq!(
        reject.status,
        StatusCode::CONFLICT,
        "a released batch is recalled, not rejected"
    );
    assert_eq!(lab.status(&released), "released");
    let ok = lab
        .app
        .post(
            &format!("/api/v1/batches/{q}/reject"),
            &lab.qa,
            json!({"password": USER_PASSWORD, "reason": "failed environmental monitoring"}),
        )
        .await;
    assert_eq!(ok.body["status"], "rejected");
    assert_eq!(ok.body["signatures"][0]["meaning"], "rejected");
    let again = lab
        .app
        .post(
            &format!("/api/v1/batches/{q}/reject"),
            &lab.qa,
            json!({"password": USER_PASSWORD, "reason": "r"}),
        )
        .await;
    assert_eq!(again.code(), "invalid_transition");
    assert_eq!(lab.app.audit_actions("batch.rejected").len(), 1);
}

#[actix_web::test]
async fn refused_releases_and_refused_signatures_appear_in_the_batch_history() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("UCMSC-HIST", &["STER"]).await;
    let (_, auditor) = lab.app.signed_in(&["auditor"]).await;
    let signatures_before = lab.count("signatures");
    // Blocked: refused and audited, nothing signed.
    let blocked = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(blocked.code(), "not_releasable");
    // The missing result, then a wrong password.
    let id = lab.recorded(&b, "STER", json!("no growth")).await;
    lab.review(&id, "accept").await;
    let wrong = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/release"),
            &lab.qa2,
            json!({"password": "not-the-password"}),
        )
        .await;
    assert_eq!(wrong.code(), "signature_failed");
    assert_eq!(
        lab.count("signatures"),
        signatures_before + 1,
        "only the STER review"
    );

    let history = lab
        .app
        .get(&format!("/api/v1/batches/{b}/history"), &auditor)
        .await;
    let items = history.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let refused = actions
        .iter()
        .position(|a| *a == "batch.release_refused")
        .expect("the refused release");
    let failed = actions
        .iter()
        .position(|a| *a == "auth.password_failed")
        .expect("the refused signature");
    let ster = actions
        .iter()
        .rposition(|a| *a == "result.recorded")
        .unwrap();
    assert!(
        refused < ster && ster < failed,
        "in the order they happened: {actions:?}"
    );
    assert_eq!(items[refused]["after"]["code"], "not_releasable");
    assert_eq!(items[refused]["chain"], "system");
    let csv = lab
        .app
        .get(&format!("/api/v1/batches/{b}/history?format=csv"), &auditor)
        .await;
    let text = csv.body.as_str().unwrap();
    assert!(text.contains("A release was refused"), "{text}");
    assert!(text.contains("A signature was refused: wrong password"));
    // The batch's own chain still verifies.
    let v = lab.app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
}

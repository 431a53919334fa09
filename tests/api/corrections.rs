//! The decided record is closed (API v1.2): a released, rejected or
//! recalled batch takes no result, a conditionally released one only its
//! pending tests; after release, a result changes only under a post-release
//! correction QA opens and closes with signatures.

use crate::lab::Lab;
use crate::support::USER_PASSWORD;
use actix_web::http::StatusCode;
use cellqc::db::schema::email_outbox;
use diesel::prelude::*;
use serde_json::{Value, json};

/// A released batch of the lab, and its current VIAB result's id.
async fn released(lab: &Lab, number: &str) -> (String, String) {
    let b = lab.tested_batch(number, &[]).await;
    let r = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let viab = current(lab, &b, "VIAB").await;
    (b, viab["id"].as_str().unwrap().to_owned())
}

async fn current(lab: &Lab, batch: &str, code: &str) -> Value {
    lab.batch_record(batch).await["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["test_code"] == code)
        .find(|r| r["status"] == "reviewed" || r["status"] == "recorded")
        .unwrap()
        .clone()
}

async fn open_correction(lab: &Lab, batch: &str, token: &str, body: Value) -> crate::support::Resp {
    lab.app
        .post(&format!("/api/v1/batches/{batch}/deviations"), token, body)
        .await
}

fn correction_body(result: &str) -> Value {
    json!({"kind": "post_release_correction", "result_id": result,
           "title": "Viability transcribed wrongly",
           "reason": "the counter printout reads 93.0; 91.0 was typed",
           "password": USER_PASSWORD})
}

async fn ship(lab: &Lab, batch: &str) -> crate::support::Resp {
    lab.custody(batch, json!({"event": "shipped"})).await
}

#[actix_web::test]
async fn a_released_batch_takes_no_result_until_qa_opens_a_correction_of_one() {
    let lab = Lab::msc().await;
    let (b, viab) = released(&lab, "CLOSED-1").await;

    // Closed: a new result, a replacement, an import.
    let new = lab.record(&b, "VIAB", json!("93.0")).await;
    assert_eq!(new.status, StatusCode::CONFLICT, "{}", new.body);
    assert_eq!(new.code(), "record_closed");
    let replaced = lab
        .record_with(
            &b,
            json!({"test_code": "VIAB", "value": "93.0", "replaces_result_id": viab, "reason": "typo"}),
        )
        .await;
    assert_eq!(replaced.code(), "record_closed", "{}", replaced.body);
    let imported = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/results/import"),
            &lab.tech,
            json!({"filename": "counter.csv", "content": "Sample,Viab\nCLOSED-1,93.0\n",
                   "mapping": {"VIAB": "Viab"}, "performed_at": crate::lab::days_ago(0)}),
        )
        .await;
    assert_eq!(imported.status, StatusCode::CONFLICT, "{}", imported.body);
    assert_eq!(imported.code(), "record_closed");

    // Only QA opens a correction, with a signature and a reason.
    let by_tech = open_correction(&lab, &b, &lab.tech, correction_body(&viab)).await;
    assert_eq!(by_tech.status, StatusCode::FORBIDDEN, "{}", by_tech.body);
    let mut no_reason = correction_body(&viab);
    no_reason["reason"] = json!(" ");
    let refused = open_correction(&lab, &b, &lab.qa, no_reason).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.body["errors"][0]["field"], "reason");
    let mut wrong = correction_body(&viab);
    wrong["password"] = json!("not-the-password-1");
    let refused = open_correction(&lab, &b, &lab.qa, wrong).await;
    assert_eq!(refused.code(), "signature_failed");
    let opened = open_correction(&lab, &b, &lab.qa, correction_body(&viab)).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    assert_eq!(opened.body["kind"], "post_release_correction");
    assert_eq!(opened.body["status"], "open");
    assert_eq!(opened.body["subject_id"], viab.as_str());
    assert_eq!(opened.body["signatures"][0]["meaning"], "correction_opened");
    let correction = opened.body["id"].as_str().unwrap().to_owned();
    let again = open_correction(&lab, &b, &lab.qa, correction_body(&viab)).await;
    assert_eq!(again.code(), "correction_open");

    // While it is open, the batch stays in the facility...
    let shipped = ship(&lab, &b).await;
    assert_eq!(shipped.status, StatusCode::CONFLICT, "{}", shipped.body);
    assert_eq!(shipped.code(), "not_released");
    assert!(
        shipped.body["detail"]
            .as_str()
            .unwrap()
            .contains("correction")
    );
    // ... and only the corrected result may be replaced.
    let other = lab.record(&b, "CD73", json!("99.0")).await;
    assert_eq!(other.code(), "record_closed");
    let replacement = lab
        .record_with(
            &b,
            json!({"test_code": "VIAB", "value": "93.0", "replaces_result_id": viab,
                   "reason": "transcription error, counter printout attached"}),
        )
        .await;
    assert_eq!(
        replacement.status,
        StatusCode::CREATED,
        "{}",
        replacement.body
    );
    let replacement_id = replacement.body["id"].as_str().unwrap().to_owned();

    // Concluded only when the replacement is reviewed and passes.
    let close = |conclusion: &'static str| {
        let lab = &lab;
        let correction = correction.clone();
        async move {
            lab.app
                .post(
                    &format!("/api/v1/deviations/{correction}/close"),
                    &lab.qa,
                    json!({"conclusion": conclusion, "root_cause": "typing error at the bench",
                           "password": USER_PASSWORD}),
                )
                .await
        }
    };
    let early = close("meets_specification").await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    assert_eq!(early.code(), "correction_unresolved");
    let wrong_kind = close("no_impact").await;
    assert_eq!(wrong_kind.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_kind.body["errors"][0]["field"], "conclusion");
    assert_eq!(
        lab.review(&replacement_id, "accept").await.status,
        StatusCode::OK
    );
    let closed = close("meets_specification").await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    assert_eq!(closed.body["conclusion"], "meets_specification");

    // Closed again, the batch leaves; its record is closed again.
    assert_eq!(ship(&lab, &b).await.status, StatusCode::CREATED);
    let after = lab.record(&b, "VIAB", json!("94.0")).await;
    assert_eq!(after.code(), "record_closed");
    assert_eq!(lab.status(&b), "released");
    let history = lab.history_actions(&b, &lab.qa).await;
    assert!(history.iter().filter(|a| *a == "deviation.opened").count() >= 1);
    assert!(
        history.iter().any(|a| a == "deviation.closed"),
        "{history:?}"
    );
    let auditor = lab.app.signed_in(&["auditor"]).await.1;
    let v = lab.app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
}

#[actix_web::test]
async fn a_correction_that_finds_the_batch_out_of_specification_blocks_it_and_tells_qa_at_once() {
    let lab = Lab::msc().await;
    let (b, viab) = released(&lab, "CLOSED-2").await;
    let opened = open_correction(&lab, &b, &lab.qa, correction_body(&viab)).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let correction = opened.body["id"].as_str().unwrap().to_owned();
    let replaced = lab
        .record_with(
            &b,
            json!({"test_code": "VIAB", "value": "71.0", "replaces_result_id": viab,
                   "reason": "the counter printout reads 71.0"}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::CREATED, "{}", replaced.body);
    assert_eq!(replaced.body["outcome"], "fail");
    let closed = lab
        .app
        .post(
            &format!("/api/v1/deviations/{correction}/close"),
            &lab.qa,
            json!({"conclusion": "does_not_meet_specification",
                   "root_cause": "viability below the limit", "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    let blockers = lab.blockers(&b).await;
    assert!(
        blockers.contains(&"correction_failed".to_owned()),
        "{blockers:?}"
    );
    let urgent: Vec<(Vec<String>, bool)> = email_outbox::table
        .filter(email_outbox::kind.eq("correction_failed"))
        .select((email_outbox::recipients, email_outbox::urgent))
        .load(&mut lab.app.conn())
        .unwrap();
    assert_eq!(urgent.len(), 1);
    assert!(urgent[0].1, "at once");
    assert_eq!(urgent[0].0.len(), 2, "every active QA user");
    // The certificate lists the correction.
    let pdf = lab
        .app
        .get_bytes(&format!("/api/v1/batches/{b}/certificate"), &lab.tech)
        .await;
    let text = pdf_extract::extract_text_from_mem(&pdf).unwrap();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("Post-release corrections"), "{text}");
    assert!(text.contains("VIAB 91.5 → 71.0"), "{text}");
}

#[actix_web::test]
async fn a_conditionally_released_batch_takes_its_pending_tests_and_keeps_what_was_reviewed() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("CLOSED-3", &["STER"]).await;
    let cond = lab
        .release(
            &b,
            &lab.qa2,
            json!({"conditional": true, "justification": "14-day sterility pending"}),
        )
        .await;
    assert_eq!(cond.status, StatusCode::OK, "{}", cond.body);
    let viab = current(&lab, &b, "VIAB").await;
    let replaced = lab
        .record_with(
            &b,
            json!({"test_code": "VIAB", "value": "93.0", "replaces_result_id": viab["id"],
                   "reason": "typo"}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::CONFLICT, "{}", replaced.body);
    assert_eq!(replaced.code(), "record_closed");
    let ster = lab.record(&b, "STER", json!("no growth")).await;
    assert_eq!(ster.status, StatusCode::CREATED, "{}", ster.body);
    // Not yet reviewed, the pending result is still corrected as before.
    let corrected = lab
        .record_with(
            &b,
            json!({"test_code": "STER", "value": "no growth", "replaces_result_id": ster.body["id"],
                   "reason": "wrong reading day entered"}),
        )
        .await;
    assert_eq!(corrected.status, StatusCode::CREATED, "{}", corrected.body);
}

//! Results evaluated against limits, replacement, OOS, no testing into
//! compliance, second-person review, idempotent recording.

use crate::lab::{Lab, days_ago};
use crate::support::USER_PASSWORD;
use actix_web::http::StatusCode;
use cellqc::db::schema::email_outbox;
use diesel::prelude::*;
use serde_json::json;

#[actix_web::test]
async fn values_come_back_exactly_as_entered_and_are_evaluated() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let r = lab.record(&b, "CD105", json!("95.0")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["value"], "95.0");
    assert_eq!(r.body["unit"], "%");
    assert_eq!(r.body["outcome"], "pass");
    assert_eq!(r.body["status"], "recorded");
    assert_eq!(r.body["performed_by"]["id"], lab.tech_id.as_str());
    let dose = lab.record(&b, "DOSE", json!(1.0e8)).await;
    assert_eq!(dose.body["outcome"], "pass", "{}", dose.body);
    let raw = lab
        .app
        .raw(
            "POST",
            &format!("/api/v1/batches/{b}/results"),
            Some(&lab.tech),
            "application/json",
            format!(
                r#"{{"test_code":"VIAB","value":79.95,"performed_at":"{}","instrument_id":"{}"}}"#,
                chrono::Utc::now().to_rfc3339(),
                lab.instrument_for("VIAB").unwrap()
            )
            .into_bytes(),
        )
        .await;
    assert_eq!(raw.body["value"], "79.95", "a JSON number keeps its digits");
    assert_eq!(
        raw.body["outcome"], "pass",
        "79.95 rounds to 80.0 at one decimal"
    );
    let ster = lab.record(&b, "STER", json!("  No Growth ")).await;
    assert_eq!(ster.body["value"], "No Growth");
    assert_eq!(ster.body["outcome"], "pass");
}

#[actix_web::test]
async fn invalid_results_are_422_naming_the_field_and_write_nothing() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let before = (lab.count("results"), lab.count("audit_entries"));
    let cases = [
        (json!({"test_code": "CD999", "value": "1"}), "test_code"),
        (
            json!({"test_code": "VIAB", "value": "91", "unit": "fraction"}),
            "unit",
        ),
        (json!({"test_code": "VIAB", "value": "high"}), "value"),
        (json!({"test_code": "VIAB", "value": true}), "value"),
        (json!({"test_code": "STER", "value": 0}), "value"),
        (json!({"test_code": "STER", "value": "cloudy"}), "value"),
        (
            json!({"test_code": "VIAB", "value": "91", "performed_at": days_ago(-1)}),
            "performed_at",
        ),
        (
            json!({"test_code": "VIAB", "value": "91", "performed_at": days_ago(11)}),
            "performed_at",
        ),
    ];
    for (body, field) in cases {
        let r = lab.record_with(&b, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        assert_eq!(r.body["errors"][0]["field"], field, "{body}: {}", r.body);
    }
    let missing = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/results"),
            &lab.tech,
            json!({"test_code": "VIAB", "performed_at": days_ago(1)}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((lab.count("results"), lab.count("audit_entries")), before);
}

#[actix_web::test]
async fn only_technicians_record_results() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    for token in [&lab.qa, &lab.reviewer] {
        let r = lab
            .app
            .post(
                &format!("/api/v1/batches/{b}/results"),
                token,
                json!({"test_code": "VIAB", "value": "91", "performed_at": days_ago(1)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let ghost = uuid::Uuid::now_v7();
    let r = lab.record(&ghost.to_string(), "VIAB", json!("91")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_failing_result_opens_an_oos_deviation_and_emails_every_qa_user() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let r = lab.record(&b, "STER", json!("growth")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["outcome"], "fail");
    let rec = lab.batch_record(&b).await;
    let devs = rec["deviations"].as_array().unwrap();
    assert_eq!(devs.len(), 1);
    assert_eq!(devs[0]["kind"], "oos");
    assert_eq!(devs[0]["severity"], "major");
    assert_eq!(devs[0]["status"], "open");
    assert_eq!(devs[0]["result_id"], r.body["id"]);
    let mails: Vec<(String, Vec<String>, bool)> = email_outbox::table
        .select((
            email_outbox::kind,
            email_outbox::recipients,
            email_outbox::urgent,
        ))
        .load(&mut lab.app.conn())
        .unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0, "oos_recorded");
    assert_eq!(mails[0].1.len(), 2, "both QA users");
    assert_eq!(lab.app.audit_actions("deviation.opened").len(), 1);
}

#[actix_web::test]
async fn a_second_result_must_name_the_current_one_with_a_reason() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let first = lab.recorded(&b, "VIAB", json!("85.0")).await;
    let again = lab.record(&b, "VIAB", json!("86.0")).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "result_exists");
    let no_reason = lab
        .record_with(
            &b,
            json!({"test_code": "VIAB", "value": "86.0", "replaces_result_id": first}),
        )
        .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_reason.body["errors"][0]["field"], "reason");
    assert_eq!(lab.count("results"), 1);
    let ok = lab
        .record_with(
            &b,
            json!({"test_code": "VIAB", "value": "86.0", "replaces_result_id": first,
                                "reason": "transcription error: 86.0 on the printout"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let rec = lab.batch_record(&b).await;
    let statuses: Vec<(&str, &str)> = rec["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["value"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, [("85.0", "superseded"), ("86.0", "recorded")]);
    let superseded = lab.app.audit_actions("result.superseded");
    assert_eq!(superseded[0].0.unwrap().to_string(), first);
}

#[actix_web::test]
async fn a_failing_result_cannot_be_retested_until_qa_invalidates_it() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let failed = lab.recorded(&b, "ENDO", json!("0.5")).await;
    let results_before = lab.count("results");
    // Neither a retest nor a replacement naming it.
    let retest = lab.record(&b, "ENDO", json!("0.1")).await;
    assert_eq!(retest.status, StatusCode::CONFLICT);
    assert_eq!(retest.code(), "oos_unresolved");
    let replace = lab
        .record_with(&b, json!({"test_code": "ENDO", "value": "0.1", "replaces_result_id": failed, "reason": "retest"}))
        .await;
    assert_eq!(replace.code(), "oos_unresolved");
    assert_eq!(
        lab.count("results"),
        results_before,
        "a refused retest writes nothing"
    );

    let rec = lab.batch_record(&b).await;
    let dev = rec["deviations"][0]["id"].as_str().unwrap().to_owned();
    let closed = lab.close(&dev, "invalid_test").await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    assert_eq!(closed.body["status"], "closed");
    assert_eq!(closed.body["signatures"][0]["meaning"], "deviation_closed");
    let rec = lab.batch_record(&b).await;
    assert_eq!(rec["results"][0]["status"], "invalidated");
    assert_eq!(lab.app.audit_actions("result.invalidated").len(), 1);
    let retest = lab.record(&b, "ENDO", json!("0.10")).await;
    assert_eq!(retest.status, StatusCode::CREATED, "{}", retest.body);
    assert_eq!(retest.body["outcome"], "pass");
}

#[actix_web::test]
async fn a_confirmed_oos_blocks_retesting_for_good() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    lab.recorded(&b, "MYCO", json!("detected")).await;
    let rec = lab.batch_record(&b).await;
    let dev = rec["deviations"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        lab.close(&dev, "confirmed_oos").await.status,
        StatusCode::OK
    );
    let again = lab.close(&dev, "invalid_test").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "deviation_closed");
    let retest = lab.record(&b, "MYCO", json!("not detected")).await;
    assert_eq!(retest.code(), "oos_unresolved");
}

#[actix_web::test]
async fn no_result_is_recorded_on_a_rejected_batch() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let rejected = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/reject"),
            &lab.qa,
            json!({"password": USER_PASSWORD, "reason": "bag damaged at thaw"}),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.body);
    let r = lab.record(&b, "VIAB", json!("91")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "record_closed");
}

#[actix_web::test]
async fn a_reviewer_accepts_with_a_signature_but_never_their_own_result() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let id = lab.recorded(&b, "VIAB", json!("91.5")).await;
    let r = lab.review(&id, "accept").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "reviewed");
    let sig = &r.body["signatures"][0];
    assert_eq!(sig["meaning"], "reviewed");
    assert_eq!(sig["signer"]["id"], lab.reviewer_id.as_str());
    assert_eq!(sig["record_hash"].as_str().unwrap().len(), 64);
    let twice = lab.review(&id, "accept").await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.code(), "not_reviewable");

    // A user who is both technician and reviewer may not review their own result.
    let (_, both) = lab.app.signed_in(&["technician", "reviewer"]).await;
    let own = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/results"),
            &both,
            json!({"test_code": "POT", "value": "35", "performed_at": days_ago(1)}),
        )
        .await;
    let own_id = own.body["id"].as_str().unwrap();
    let r = lab
        .app
        .post(
            &format!("/api/v1/results/{own_id}/review"),
            &both,
            json!({"decision": "accept", "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "self_review");
    assert_eq!(
        lab.count("signatures WHERE meaning <> 'qualification_granted'"),
        2,
        "spec approval and one review"
    );
}

#[actix_web::test]
async fn a_rejected_review_needs_a_reason_and_a_replacement() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let id = lab.recorded(&b, "CD73", json!("97.0")).await;
    let no_reason = lab
        .app
        .post(
            &format!("/api/v1/results/{id}/review"),
            &lab.reviewer,
            json!({"decision": "reject", "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_reason.body["errors"][0]["field"], "comment");
    let r = lab.review(&id, "reject").await;
    assert_eq!(r.body["status"], "review_rejected");
    let replacement = lab
        .record_with(&b, json!({"test_code": "CD73", "value": "96.0", "replaces_result_id": id, "reason": "re-gated"}))
        .await;
    assert_eq!(
        replacement.status,
        StatusCode::CREATED,
        "{}",
        replacement.body
    );
    let rec = lab.batch_record(&b).await;
    let statuses: Vec<&str> = rec["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["review_rejected", "recorded"]);
}

#[actix_web::test]
async fn a_wrong_review_password_is_refused_audited_and_locks_after_five() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let id = lab.recorded(&b, "VIAB", json!("91.5")).await;
    let path = format!("/api/v1/results/{id}/review");
    for i in 1..=5 {
        let r = lab
            .app
            .post(
                &path,
                &lab.reviewer,
                json!({"decision": "accept", "password": "wrong-password-1"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        assert_eq!(r.code(), "signature_failed", "attempt {i}");
    }
    assert_eq!(lab.app.audit_actions("auth.password_failed").len(), 5);
    assert_eq!(lab.app.audit_actions("auth.account_locked").len(), 1);
    // The lock ended the reviewer's session.
    let after = lab
        .app
        .post(
            &path,
            &lab.reviewer,
            json!({"decision": "accept", "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.code(), "token_revoked");
    let rec = lab.batch_record(&b).await;
    assert_eq!(
        rec["results"][0]["status"], "recorded",
        "nothing was signed"
    );
}

#[actix_web::test]
async fn a_retried_result_with_the_same_key_is_recorded_once() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-1").await;
    let body = serde_json::to_vec(&lab.result_body(json!({"test_code": "VIAB", "value": "91.5"})))
        .unwrap();
    let path = format!("/api/v1/batches/{b}/results");
    let send = |bytes: Vec<u8>, key: &'static str| {
        let app = &lab.app;
        let path = path.clone();
        let token = lab.tech.clone();
        async move {
            let client = awc::Client::default();
            let mut res = client
                .post(format!("{}{path}", app.address))
                .insert_header(("Authorization", format!("Bearer {token}")))
                .insert_header(("Content-Type", "application/json"))
                .insert_header(("Idempotency-Key", key))
                .send_body(bytes)
                .await
                .unwrap();
            let status = res.status();
            let replayed = res.headers().get("idempotent-replayed").is_some();
            let body: serde_json::Value =
                serde_json::from_slice(&res.body().await.unwrap()).unwrap();
            (status, replayed, body)
        }
    };
    let (s1, r1, b1) = send(body.clone(), "retry-1").await;
    let (s2, r2, b2) = send(body.clone(), "retry-1").await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert!(!r1 && r2);
    assert_eq!(b1, b2, "the first response, replayed");
    assert_eq!(lab.count("results"), 1);
    let other = serde_json::to_vec(&lab.result_body(json!({"test_code": "VIAB", "value": "92.0"})))
        .unwrap();
    let (s3, _, b3) = send(other, "retry-1").await;
    assert_eq!(s3, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b3["code"], "idempotency_key_reused");
    assert_eq!(lab.count("results"), 1);
}

/// The reviewers' work list (kept by triggers) against the facts: what the
/// queue shows, and what scanning every result would find, agree at each step.
#[actix_web::test]
async fn the_review_queue_follows_reviews_replacements_and_invalidations() {
    use cellqc::services::results::review_queue;
    use std::collections::BTreeSet;
    use uuid::Uuid;
    let lab = Lab::msc().await;
    let reviewer: Uuid = lab.reviewer_id.parse().unwrap();
    let tech: Uuid = lab.tech_id.parse().unwrap();
    let queue = |who: Uuid| -> BTreeSet<String> {
        let mut c = lab.app.conn();
        review_queue(&mut c, who, 200)
            .unwrap()
            .into_iter()
            .map(|a| a.result.result.id.to_string())
            .collect()
    };
    let ids = |sql: &str| -> BTreeSet<String> {
        let mut c = lab.app.conn();
        diesel::sql_query(sql)
            .load::<Id>(&mut c)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    // The list, and what scanning every result finds awaiting review.
    let listed = || ids("SELECT result_id::text AS id FROM results_awaiting_review");
    let by_scan = || {
        ids("SELECT r.id::text AS id FROM results r \
             WHERE NOT EXISTS (SELECT 1 FROM signatures s WHERE s.entity_id = r.id \
                               AND s.meaning IN ('reviewed', 'review_rejected')) \
               AND NOT EXISTS (SELECT 1 FROM results n WHERE n.replaces_result_id = r.id) \
               AND NOT EXISTS (SELECT 1 FROM deviations d WHERE d.result_id = r.id \
                               AND d.conclusion = 'invalid_test')")
    };
    let set = |ids: &[&String]| ids.iter().map(|s| (*s).clone()).collect::<BTreeSet<_>>();

    let b = lab.batch("MSC-Q").await;
    let accepted = lab.recorded(&b, "CD73", json!("97.0")).await;
    let rejected = lab.recorded(&b, "CD90", json!("99.0")).await;
    let failed = lab.recorded(&b, "VIAB", json!("40.0")).await;
    assert_eq!(queue(reviewer), set(&[&accepted, &rejected, &failed]));
    assert_eq!(listed(), by_scan());
    assert!(queue(tech).is_empty(), "nobody reviews their own results");

    assert_eq!(lab.review(&accepted, "accept").await.status, StatusCode::OK);
    assert_eq!(lab.review(&rejected, "reject").await.status, StatusCode::OK);
    assert_eq!(queue(reviewer), set(&[&failed]));
    let replacement = lab
        .record_with(&b, json!({"test_code": "CD90", "value": "98.5", "replaces_result_id": rejected, "reason": "re-gated"}))
        .await;
    assert_eq!(
        replacement.status,
        StatusCode::CREATED,
        "{}",
        replacement.body
    );
    let replacement = replacement.body["id"].as_str().unwrap().to_owned();
    assert_eq!(queue(reviewer), set(&[&failed, &replacement]));
    assert_eq!(listed(), by_scan());

    let rec = lab.batch_record(&b).await;
    let dev = rec["deviations"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(lab.close(&dev, "invalid_test").await.status, StatusCode::OK);
    assert_eq!(queue(reviewer), set(&[&replacement]));
    assert_eq!(listed(), by_scan());
    assert_eq!(listed(), set(&[&replacement]));
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

#[actix_web::test]
async fn several_results_are_reviewed_with_one_signing_act_all_or_nothing() {
    let lab = Lab::msc().await;
    let b1 = lab.batch("MSC-1").await;
    let b2 = lab.batch("MSC-2").await;
    let a = lab.recorded(&b1, "VIAB", json!("91.5")).await;
    let c = lab.recorded(&b1, "CD73", json!("97.0")).await;
    let d = lab.recorded(&b2, "VIAB", json!("93.0")).await;
    let signatures_before = lab.count("signatures");
    let bulk = |ids: serde_json::Value, password: &str| json!({"result_ids": ids, "decision": "accept", "password": password});

    // A result the reviewer performed refuses the whole list and names it.
    let (_, both) = lab.app.signed_in(&["technician", "reviewer"]).await;
    let own = lab
        .app
        .post(
            &format!("/api/v1/batches/{b2}/results"),
            &both,
            json!({"test_code": "POT", "value": "35", "performed_at": days_ago(1)}),
        )
        .await;
    let own_id = own.body["id"].as_str().unwrap().to_owned();
    let r = lab
        .app
        .post(
            "/api/v1/results/review",
            &both,
            bulk(json!([a, own_id]), USER_PASSWORD),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "self_review");
    assert_eq!(r.body["errors"][0]["field"], "result_ids[1]");
    assert!(r.body["detail"].as_str().unwrap().contains(&own_id));
    assert_eq!(lab.count("signatures"), signatures_before, "nothing signed");

    // A wrong password signs nothing; an unknown result, a duplicate and an
    // empty list are refused before any signing.
    let r = lab
        .app
        .post(
            "/api/v1/results/review",
            &lab.reviewer,
            bulk(json!([a, c]), "wrong-password-1"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "signature_failed");
    let unknown = uuid::Uuid::now_v7().to_string();
    let r = lab
        .app
        .post(
            "/api/v1/results/review",
            &lab.reviewer,
            bulk(json!([a, unknown]), USER_PASSWORD),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["errors"][0]["field"], "result_ids[1]");
    for (ids, field) in [(json!([a, a]), "result_ids"), (json!([]), "result_ids")] {
        let r = lab
            .app
            .post(
                "/api/v1/results/review",
                &lab.reviewer,
                bulk(ids, USER_PASSWORD),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.body["errors"][0]["field"], field);
    }
    assert_eq!(lab.count("signatures"), signatures_before, "nothing signed");

    // One act over two batches: one signature row and audit entry per result.
    let r = lab
        .app
        .post(
            "/api/v1/results/review",
            &lab.reviewer,
            bulk(json!([a, c, d]), USER_PASSWORD),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body.as_array().unwrap();
    assert_eq!(items.len(), 3);
    let mut hashes = std::collections::HashSet::new();
    for (item, id) in items.iter().zip([&a, &c, &d]) {
        assert_eq!(item["id"], id.as_str());
        assert_eq!(item["status"], "reviewed");
        assert_eq!(item["signatures"][0]["meaning"], "reviewed");
        hashes.insert(
            item["signatures"][0]["record_hash"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(hashes.len(), 3, "each result signed over its own record");
    assert_eq!(lab.count("signatures"), signatures_before + 3);
    let audited: Vec<String> = lab
        .app
        .audit_actions("result.reviewed")
        .into_iter()
        .map(|(id, _)| id.unwrap().to_string())
        .collect();
    for id in [&a, &c, &d] {
        assert!(audited.contains(id), "audit entry for {id}");
    }
    // Reviewed once: a second act over one of them refuses the list.
    let r = lab
        .app
        .post(
            "/api/v1/results/review",
            &lab.reviewer,
            bulk(json!([own_id, d]), USER_PASSWORD),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "not_reviewable");
    assert_eq!(r.body["errors"][0]["field"], "result_ids[1]");
    assert_eq!(lab.count("signatures"), signatures_before + 3);
}

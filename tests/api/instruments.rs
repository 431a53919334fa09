//! Instruments fit for use (21 CFR 211.68, 211.160(b)(4)): a test that names
//! an instrument kind is recorded only on an instrument of that kind that
//! was in service when the result was performed; the history decides.

use crate::lab::{Lab, days_ago, uncontrolled};
use crate::support::USER_PASSWORD;
use actix_web::http::StatusCode;
use chrono::{Duration, Utc};
use serde_json::{Value, json};

fn in_days(n: i64) -> String {
    (Utc::now() + Duration::days(n)).to_rfc3339()
}

async fn instrument(lab: &Lab, code: &str, kind: &str) -> String {
    let r = lab
        .app
        .post(
            "/api/v1/instruments",
            &lab.qa,
            json!({"code": code, "name": format!("{code} analyser"), "kind": kind, "location": "QC lab 2"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "calibration_due");
    r.body["id"].as_str().unwrap().to_owned()
}

async fn calibrate(lab: &Lab, id: &str, performed: String, outcome: &str, until: String) -> Value {
    let r = lab
        .app
        .post(
            &format!("/api/v1/instruments/{id}/calibrations"),
            &lab.tech,
            json!({"performed_at": performed, "outcome": outcome, "valid_until": until, "certificate": "CAL-2026-118"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

#[actix_web::test]
async fn a_result_is_measured_on_an_instrument_of_its_kind_in_service_when_performed() {
    let mut spec = uncontrolled(cellqc::demo::msc_spec());
    for t in spec["tests"].as_array_mut().unwrap() {
        if t["code"] == "CD73" {
            t["instrument_kind"] = json!("flow_cytometer");
        }
    }
    let lab = Lab::bare(cellqc::demo::msc_product(), spec).await;
    let app = &lab.app;
    let batch = lab.batch("INSTR-1").await;
    let cd73 = |instrument: Option<&str>, performed: String| {
        let mut body = json!({"test_code": "CD73", "value": "97.0", "performed_at": performed});
        if let Some(i) = instrument {
            body["instrument_id"] = json!(i);
        }
        lab.record_with(&batch, body)
    };

    // The registry: QA only, codes never reused, kinds as words.
    let r = app
        .post(
            "/api/v1/instruments",
            &lab.tech,
            json!({"code": "X", "name": "x", "kind": "flow_cytometer"}),
        )
        .await;
    assert_eq!(r.code(), "forbidden_role");
    let fc = instrument(&lab, "FC-01", "flow_cytometer").await;
    let again = app
        .post(
            "/api/v1/instruments",
            &lab.qa,
            json!({"code": "FC-01", "name": "again", "kind": "flow_cytometer"}),
        )
        .await;
    assert_eq!(again.code(), "instrument_code_taken");
    let bad = app
        .post(
            "/api/v1/instruments",
            &lab.qa,
            json!({"code": "FC-09", "name": "x", "kind": "Flow Cytometer"}),
        )
        .await;
    assert_eq!(bad.body["errors"][0]["field"], "kind");

    // The test names a kind: the result must name an instrument.
    let r = cd73(None, days_ago(1)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "instrument_id");
    let r = cd73(Some(&fc), days_ago(1)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "instrument_not_qualified");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("never been calibrated"),
        "{}",
        r.body
    );

    // Calibrated 30 days ago, valid until 3 days ago: fit 5 days ago, not yesterday.
    calibrate(&lab, &fc, days_ago(30), "pass", days_ago(3)).await;
    let r = cd73(Some(&fc), days_ago(1)).await;
    assert_eq!(r.code(), "instrument_not_qualified");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("calibration expired on"),
        "{}",
        r.body
    );
    let ok = cd73(Some(&fc), days_ago(5)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["instrument_id"], fc.as_str(), "the result shows it");
    let stored: Option<uuid::Uuid> = {
        use cellqc::db::schema::results;
        use diesel::prelude::*;
        results::table
            .find(uuid::Uuid::parse_str(ok.body["id"].as_str().unwrap()).unwrap())
            .select(results::instrument_id)
            .first(&mut app.conn())
            .unwrap()
    };
    assert_eq!(stored.map(|u| u.to_string()), Some(fc.clone()));

    // Another kind is refused, naming the field.
    let cc = instrument(&lab, "CC-01", "cell_counter").await;
    calibrate(&lab, &cc, days_ago(2), "pass", in_days(100)).await;
    let batch2 = lab.batch("INSTR-2").await;
    let r = lab
        .record_with(&batch2, json!({"test_code": "CD73", "value": "97.0", "performed_at": days_ago(1), "instrument_id": cc}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "instrument_id");

    // Out of service: refused from then on; only QA returns it, signed.
    calibrate(&lab, &fc, days_ago(2), "pass", in_days(180)).await;
    let listed = app
        .get("/api/v1/instruments?status=in_service", &lab.reviewer)
        .await;
    assert!(listed.body.to_string().contains("FC-01"), "{}", listed.body);
    let out = app
        .post(
            &format!("/api/v1/instruments/{fc}/out-of-service"),
            &lab.tech,
            json!({"reason": "laser alignment drift seen in QC beads"}),
        )
        .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    assert_eq!(out.body["status"], "out_of_service");
    let now = Utc::now().to_rfc3339();
    let r = lab
        .record_with(
            &batch2,
            json!({"test_code": "CD73", "value": "97.0", "performed_at": now, "instrument_id": fc}),
        )
        .await;
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("out of service"),
        "{}",
        r.body
    );
    let back = |token: &str, password: &str| {
        let path = format!("/api/v1/instruments/{fc}/return-to-service");
        let body = json!({"password": password, "reason": "realigned, QC beads within limits"});
        let token = token.to_owned();
        async move { app.post(&path, &token, body).await }
    };
    assert_eq!(
        back(&lab.tech, USER_PASSWORD).await.code(),
        "forbidden_role"
    );
    assert_eq!(
        back(&lab.qa, "wrong-password").await.code(),
        "signature_failed"
    );
    let r = back(&lab.qa, USER_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "in_service");

    // A failed calibration takes it out; a passing one alone doesn't bring it back.
    calibrate(&lab, &fc, Utc::now().to_rfc3339(), "fail", in_days(180)).await;
    let one = app
        .get(&format!("/api/v1/instruments/{fc}"), &lab.tech)
        .await;
    assert_eq!(one.body["status"], "failed_calibration");
    assert_eq!(
        back(&lab.qa, USER_PASSWORD).await.code(),
        "calibration_failed"
    );
    calibrate(&lab, &fc, Utc::now().to_rfc3339(), "pass", in_days(180)).await;
    let one = app
        .get(&format!("/api/v1/instruments/{fc}"), &lab.tech)
        .await;
    assert_eq!(one.body["status"], "out_of_service", "{}", one.body);
    assert_eq!(back(&lab.qa, USER_PASSWORD).await.status, StatusCode::OK);
    let one = app
        .get(&format!("/api/v1/instruments/{fc}"), &lab.tech)
        .await;
    assert_eq!(one.body["status"], "in_service");
    assert_eq!(one.body["history"].as_array().unwrap().len(), 7);

    for action in [
        "instrument.registered",
        "instrument.calibrated",
        "instrument.calibration_failed",
        "instrument.out_of_service",
        "instrument.returned",
    ] {
        assert!(!app.audit_actions(action).is_empty(), "{action} is audited");
    }
}

#[actix_web::test]
async fn a_failed_calibration_opens_an_impact_deviation_on_every_batch_it_measured_critical_when_released()
 {
    use cellqc::db::schema::email_outbox;
    use diesel::prelude::*;
    let mut spec = uncontrolled(cellqc::demo::msc_spec());
    for t in spec["tests"].as_array_mut().unwrap() {
        if t["code"] == "CD73" {
            t["instrument_kind"] = json!("flow_cytometer");
        }
    }
    let lab = Lab::bare(cellqc::demo::msc_product(), spec).await;
    let app = &lab.app;
    let fc = instrument(&lab, "FC-IMP", "flow_cytometer").await;
    let other = instrument(&lab, "FC-OTHER", "flow_cytometer").await;
    calibrate(&lab, &fc, days_ago(9), "pass", in_days(200)).await;
    calibrate(&lab, &other, days_ago(9), "pass", in_days(200)).await;
    async fn cd73(lab: &Lab, batch: &str, on: &str) -> String {
        let body = json!({"test_code": "CD73", "value": "97.0", "performed_at": days_ago(1), "instrument_id": on});
        let r = lab.record_with(batch, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    // Released: every result in, reviewed, certified.
    let released = lab.tested_batch("IMP-REL", &["CD73"]).await;
    let r1 = cd73(&lab, &released, &fc).await;
    assert_eq!(lab.review(&r1, "accept").await.status, StatusCode::OK);
    let rel = lab.release(&released, &lab.qa2, json!({})).await;
    assert_eq!(rel.status, StatusCode::OK, "{}", rel.body);
    assert_eq!(lab.status(&released), "released");
    // In quarantine, measured on it; another measured elsewhere; a rejected one.
    let quarantined = lab.batch("IMP-Q").await;
    let r2 = cd73(&lab, &quarantined, &fc).await;
    let elsewhere = lab.batch("IMP-ELSE").await;
    cd73(&lab, &elsewhere, &other).await;
    let mails_before: i64 = email_outbox::table
        .filter(email_outbox::kind.eq("impact_on_released"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(mails_before, 0);

    calibrate(&lab, &fc, Utc::now().to_rfc3339(), "fail", in_days(200)).await;

    let qa = lab.qa.clone();
    let deviations = |batch: &str| {
        let path = format!("/api/v1/batches/{batch}");
        let qa = qa.clone();
        async move { app.get(&path, &qa).await.body["deviations"].clone() }
    };
    let on_released = deviations(&released).await;
    let d = on_released
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "instrument")
        .unwrap_or_else(|| panic!("{on_released}"))
        .clone();
    assert_eq!(d["severity"], "critical");
    assert_eq!(d["subject_id"], fc.as_str());
    assert_eq!(d["result_ids"], json!([r1]));
    assert!(d["description"].as_str().unwrap().contains("FC-IMP"));
    let on_quarantined = deviations(&quarantined).await;
    let d2 = on_quarantined
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "instrument")
        .unwrap()
        .clone();
    assert_eq!(d2["severity"], "major");
    assert_eq!(d2["result_ids"], json!([r2]));
    let on_elsewhere = deviations(&elsewhere).await;
    assert!(
        on_elsewhere
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["kind"] != "instrument"),
        "not measured on it: {on_elsewhere}"
    );
    // QA is told at once about the released batch only.
    let mails: Vec<(Vec<String>, bool, String)> = email_outbox::table
        .filter(email_outbox::kind.eq("impact_on_released"))
        .select((
            email_outbox::recipients,
            email_outbox::urgent,
            email_outbox::subject,
        ))
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].1, "urgent");
    assert_eq!(mails[0].0.len(), 2, "every active QA user");
    assert!(mails[0].2.contains("IMP-REL"), "{}", mails[0].2);
    // The quarantined batch can't be released until it is closed.
    assert!(
        lab.blockers(&quarantined)
            .await
            .contains(&"open_deviation".to_owned())
    );
    // Opened in each batch's own chain.
    let opened = app.audit_actions("deviation.opened");
    assert_eq!(
        opened
            .iter()
            .filter(|(_, after)| after.as_ref().is_some_and(|a| a["kind"] == "instrument"))
            .count(),
        2
    );
}

#[actix_web::test]
async fn a_result_waits_for_a_calibration_being_recorded_and_is_then_judged_by_it() {
    use diesel::connection::SimpleConnection;
    let lab = Lab::msc().await;
    let batch = lab.batch("INSTR-RACE").await;
    let fc = lab.instrument_for("CD73").unwrap().to_owned();
    // A calibration being recorded: its transaction holds the instrument's
    // row, as services::instruments does before it writes the event.
    let mut c = lab.app.conn();
    c.batch_execute(&format!(
        "BEGIN; SELECT id FROM instruments WHERE id = '{fc}' FOR UPDATE;"
    ))
    .unwrap();
    let body = lab.result_body(json!({"test_code": "CD73", "value": "97.0"}));
    let url = format!("{}/api/v1/batches/{batch}/results", lab.app.address);
    let token = lab.tech.clone();
    let pending = actix_web::rt::spawn(async move {
        let mut r = awc::Client::default()
            .post(url)
            .bearer_auth(token)
            .send_json(&body)
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        (status, body)
    });
    actix_web::rt::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(
        !pending.is_finished(),
        "the result waits for the instrument's row"
    );
    // The calibration failed, as found a minute ago; it commits. (Written
    // here as the race needs it, by the superuser, without the audit entry
    // the use case would bind it with.)
    let tech = lab.tech_id.clone();
    c.batch_execute(&format!(
        "SET LOCAL session_replication_role = replica;
         INSERT INTO instrument_events (id, instrument_id, kind, at, outcome, valid_until, certificate, recorded_by, recorded_at)
         VALUES (gen_random_uuid(), '{fc}', 'calibration', now() - interval '1 minute', 'fail',
                 now() + interval '1 day', 'CAL-RACE', '{tech}', now());
         COMMIT;"
    ))
    .unwrap();
    let (status, body) = pending.await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "instrument_not_qualified", "{body}");
    assert_eq!(
        lab.count("results"),
        0,
        "nothing recorded on the failed instrument"
    );
}

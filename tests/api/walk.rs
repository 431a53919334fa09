//! Whole journeys: an MSC batch from creation to its patient, an iPSC drug
//! product whose working cell bank must be released first, and simultaneous
//! release requests through two server instances.

use crate::lab::{Lab, approved_spec};
use crate::support::USER_PASSWORD;
use actix_web::http::StatusCode;
use cellqc::db::schema::signatures;
use diesel::prelude::*;
use serde_json::json;

#[actix_web::test]
async fn an_msc_batch_goes_from_creation_to_its_intended_recipient() {
    let lab = Lab::msc().await;
    let r = lab
        .create_batch(json!({"batch_number": "UCMSC-2026-0042", "donor_din": "G123498654321H",
                             "intended_recipient": "PT-0042", "quantity": "1.1e8", "unit": "cells"}))
        .await;
    let b = r.body["id"].as_str().unwrap().to_owned();
    lab.custody(&b, json!({"event": "received", "location": "GMP facility, goods-in", "party": "Tess Technician"})).await;
    lab.custody(
        &b,
        json!({"event": "stored", "location": "LN2 vapour tank 3", "temperature_c": "-185"}),
    )
    .await;
    for (code, value) in cellqc::demo::msc_passing_values() {
        let id = lab.recorded(&b, code, value).await;
        assert_eq!(lab.review(&id, "accept").await.status, StatusCode::OK);
    }
    let rd = lab
        .app
        .get(&format!("/api/v1/batches/{b}/release-readiness"), &lab.tech)
        .await;
    assert_eq!(
        rd.body,
        json!({"releasable": true, "conditionally_releasable": false, "blockers": [], "warnings": []})
    );
    let released = lab
        .release(&b, &lab.qa2, json!({"comment": "meets specification 1.0"}))
        .await;
    assert_eq!(released.body["status"], "released", "{}", released.body);
    for (event, extra) in [
        (
            "shipped",
            json!({"party": "Cryo courier", "container_id": "DS-7781", "temperature_c": "-175"}),
        ),
        (
            "delivered",
            json!({"location": "Hospital pharmacy", "party": "Pharmacist on duty", "temperature_c": "-170"}),
        ),
        (
            "administered",
            json!({"location": "Haematology ward", "party": "Dr. Ward", "recipient_id": "PT-0042"}),
        ),
    ] {
        let mut body = extra.clone();
        body["event"] = json!(event);
        let r = lab.custody(&b, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{event}: {}", r.body);
    }
    let rec = lab.batch_record(&b).await;
    let events: Vec<&str> = rec["custody"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["received", "stored", "shipped", "delivered", "administered"]
    );
    assert_eq!(rec["custody"][4]["recipient_id"], "PT-0042");
    assert_eq!(rec["donor_din"], "G123498654321H");
    assert_eq!(
        lab.custody(&b, json!({"event": "stored"})).await.code(),
        "custody_closed"
    );
    let auditor = lab.app.signed_in(&["auditor"]).await.1;
    let actions = lab.history_actions(&b, &auditor).await;
    assert_eq!(actions.first().map(String::as_str), Some("batch.created"));
    assert!(actions.iter().any(|a| a == "batch.released"));
    assert_eq!(actions.last().map(String::as_str), Some("custody.recorded"));
    assert_eq!(
        lab.app.get("/api/v1/audit/verify", &auditor).await.body["ok"],
        true
    );
}

#[actix_web::test]
async fn an_ipsc_drug_product_waits_for_its_working_cell_bank() {
    let mut lab = Lab::with(
        cellqc::demo::ipsc_bank_product(),
        cellqc::demo::ipsc_bank_spec(),
    )
    .await;
    let dp = lab
        .app
        .post("/api/v1/products", &lab.qa, cellqc::demo::ipsc_product())
        .await;
    let dp_product = dp.body["id"].as_str().unwrap().to_owned();
    approved_spec(
        &lab.app,
        &lab.qa,
        &lab.qa2,
        &dp_product,
        cellqc::demo::ipsc_spec(),
    )
    .await;
    lab.prepare_for(&cellqc::demo::ipsc_spec()).await;
    let (_, qa3) = lab.app.signed_in(&["qa"]).await;

    let wcb = lab.batch("WCB-2026-01").await;
    for (code, value) in [
        ("VIAB", json!("88.0")),
        ("KARYO", json!("normal")),
        ("STER", json!("no growth")),
        ("MYCO", json!("not detected")),
    ] {
        let id = lab.recorded(&wcb, code, value).await;
        lab.review(&id, "accept").await;
    }
    let r = lab.create_batch(json!({"batch_number": "DAP-2026-01", "product_id": dp_product, "parent_batch_ids": [wcb]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let b = r.body["id"].as_str().unwrap().to_owned();
    for (code, value) in [
        ("VIAB", json!("92.4")),
        ("FOXA2", json!("85.1")),
        ("OCT4", json!("0.004")),
        ("TRA160", json!("0.01")),
        ("KARYO", json!("normal")),
        ("STER", json!("no growth")),
        ("MYCO", json!("not detected")),
        ("ENDO", json!("0.3")),
    ] {
        let r = lab.record(&b, code, value.clone()).await;
        assert_eq!(r.body["outcome"], "pass", "{code} {value}");
        lab.review(r.body["id"].as_str().unwrap(), "accept").await;
    }
    // The drug product also requires QA's signed review of its audit trail.
    assert_eq!(
        lab.blockers(&b).await,
        ["parent_not_released", "audit_trail_not_reviewed"]
    );
    let trail = lab
        .app
        .get(&format!("/api/v1/batches/{b}/audit-review"), &lab.qa)
        .await;
    assert_eq!(trail.body["exceptions"], json!([]), "{}", trail.body);
    let reviewed = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/audit-review"),
            &lab.qa,
            json!({"password": USER_PASSWORD, "up_to_seq": trail.body["up_to_seq"]}),
        )
        .await;
    assert_eq!(reviewed.status, StatusCode::OK, "{}", reviewed.body);
    assert_eq!(lab.blockers(&b).await, ["parent_not_released"]);
    assert_eq!(
        lab.release(&b, &lab.qa2, json!({})).await.code(),
        "not_releasable"
    );
    assert_eq!(
        lab.release(&wcb, &lab.qa2, json!({})).await.body["status"],
        "released"
    );
    // The drug product needs two QA signatures.
    let first = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(first.body["status"], "quarantine");
    let second = lab.release(&b, &qa3, json!({})).await;
    assert_eq!(second.body["status"], "released", "{}", second.body);
}

#[actix_web::test]
async fn twenty_simultaneous_releases_through_two_instances_release_once() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-RACE", &[]).await;
    let other = lab.app.another_instance().await;
    let mut qa_tokens = vec![lab.qa.clone(), lab.qa2.clone()];
    for _ in 0..3 {
        qa_tokens.push(lab.app.signed_in(&["qa"]).await.1);
    }
    let requests = (0..20).map(|i| {
        let target = if i % 2 == 0 {
            lab.app.address.clone()
        } else {
            other.address.clone()
        };
        let token = qa_tokens[i % qa_tokens.len()].clone();
        let b = b.clone();
        async move {
            let res = awc::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .finish()
                .post(format!("{target}/api/v1/batches/{b}/release"))
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send_json(&json!({"password": USER_PASSWORD}))
                .await
                .unwrap();
            res.status()
        }
    });
    let statuses = futures::future::join_all(requests).await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let conflict = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((ok, conflict), (1, 19), "{statuses:?}");
    let released: i64 = signatures::table
        .filter(signatures::entity_type.eq("batch"))
        .filter(signatures::meaning.eq("released"))
        .count()
        .get_result(&mut lab.app.conn())
        .unwrap();
    assert_eq!(released, 1);
    assert_eq!(lab.app.audit_actions("batch.released").len(), 1);
    let auditor = lab.app.signed_in(&["auditor"]).await.1;
    assert_eq!(
        other.get("/api/v1/audit/verify", &auditor).await.body["ok"],
        true
    );
}

#[actix_web::test]
async fn a_dual_signature_race_yields_exactly_two_distinct_signatures() {
    let mut product = cellqc::demo::msc_product();
    product["release_signatures_required"] = json!(2);
    let lab = Lab::with(product, cellqc::demo::msc_spec()).await;
    let b = lab.tested_batch("MSC-DUAL", &[]).await;
    let other = lab.app.another_instance().await;
    let (_, qa3) = lab.app.signed_in(&["qa"]).await;
    let tokens = [lab.qa.clone(), lab.qa2.clone(), qa3];
    // Each of three QA users fires four requests, through both instances.
    let requests = (0..12).map(|i| {
        let target = if i % 2 == 0 {
            lab.app.address.clone()
        } else {
            other.address.clone()
        };
        let token = tokens[i % 3].clone();
        let b = b.clone();
        async move {
            awc::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .finish()
                .post(format!("{target}/api/v1/batches/{b}/release"))
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send_json(&json!({"password": USER_PASSWORD}))
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(requests).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        2,
        "{statuses:?}"
    );
    let signers: Vec<uuid::Uuid> = signatures::table
        .filter(signatures::entity_type.eq("batch"))
        .select(signatures::signer_id)
        .load(&mut lab.app.conn())
        .unwrap();
    assert_eq!(signers.len(), 2);
    assert_ne!(signers[0], signers[1]);
    assert_eq!(lab.status(&b), "released");
    let auditor = lab.app.signed_in(&["auditor"]).await.1;
    assert_eq!(
        lab.app.get("/api/v1/audit/verify", &auditor).await.body["ok"],
        true
    );
}

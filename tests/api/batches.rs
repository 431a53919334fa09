//! Batches: binding the effective specification, DIN, genealogy, lists.

use crate::lab::{Lab, days_ago};
use crate::support::TestApp;
use actix_web::http::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn a_batch_binds_the_effective_spec_and_starts_in_quarantine() {
    let lab = Lab::msc().await;
    let r = lab
        .create_batch(json!({"batch_number": "MSC-24-001", "donor_din": "G1234 98 654321 H",
                             "intended_recipient": "PT-0042", "quantity": "1.1e8", "unit": "cells"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "quarantine");
    assert_eq!(r.body["specification_id"], lab.spec_id.as_str());
    assert_eq!(r.body["donor_din"], "G123498654321H");
    assert_eq!(r.body["quantity"], "1.1e8");
    let id = r.body["id"].as_str().unwrap();
    let created = lab.app.audit_actions("batch.created");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].0.unwrap().to_string(), id);
}

#[actix_web::test]
async fn a_product_without_an_effective_spec_takes_no_batch() {
    let app = TestApp::spawn().await;
    let (_, qa) = app.signed_in(&["qa"]).await;
    let p = app
        .post("/api/v1/products", &qa, cellqc::demo::msc_product())
        .await;
    let r = app
        .post(
            "/api/v1/batches",
            &qa,
            json!({"batch_number": "B1", "product_id": p.body["id"],
              "manufactured_at": days_ago(3), "expires_at": days_ago(-30)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "no_effective_specification");
}

#[actix_web::test]
async fn a_duplicate_batch_number_is_409() {
    let lab = Lab::msc().await;
    lab.batch("MSC-DUP").await;
    let r = lab.create_batch(json!({"batch_number": "MSC-DUP"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "batch_number_taken");
    assert_eq!(lab.count("batches"), 1);
}

#[actix_web::test]
async fn a_din_with_a_wrong_check_character_is_422() {
    let lab = Lab::msc().await;
    let r = lab
        .create_batch(json!({"batch_number": "B1", "donor_din": "G123498654321J"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "donor_din");
    let said = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(said.contains("check character J does not match"), "{said}");
    assert!(
        !r.body.to_string().contains('H'),
        "the right check character is not said: {}",
        r.body
    );
    let no_check = lab
        .create_batch(json!({"batch_number": "B1", "donor_din": "G123498654321"}))
        .await;
    assert_eq!(no_check.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(lab.count("batches"), 0);
}

#[actix_web::test]
async fn parents_must_exist_and_expiry_must_follow_manufacture() {
    let lab = Lab::msc().await;
    let parent = lab.batch("WCB-1").await;
    let ghost = uuid::Uuid::now_v7().to_string();
    let r = lab
        .create_batch(json!({"batch_number": "DP-1", "parent_batch_ids": [parent, ghost]}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "parent_batch_ids[1]");
    let r = lab
        .create_batch(json!({"batch_number": "DP-1", "expires_at": days_ago(20)}))
        .await;
    assert_eq!(r.body["errors"][0]["field"], "expires_at");
    let ok = lab
        .create_batch(json!({"batch_number": "DP-1", "parent_batch_ids": [parent]}))
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    assert_eq!(ok.body["parent_batch_ids"], json!([parent]));
    let bad_product = lab
        .create_batch(json!({"batch_number": "DP-2", "product_id": ghost}))
        .await;
    assert_eq!(bad_product.body["errors"][0]["field"], "product_id");
}

#[actix_web::test]
async fn batch_lists_filter_search_and_page_by_keyset() {
    let lab = Lab::msc().await;
    for n in 1..=5 {
        lab.batch(&format!("MSC-L-{n}")).await;
    }
    let din = lab
        .create_batch(json!({"batch_number": "OTHER-1", "donor_din": "A999917123456 9"}))
        .await;
    assert_eq!(din.status, StatusCode::CREATED);
    let first = lab.app.get("/api/v1/batches?limit=2", &lab.tech).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let mut seen: Vec<String> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["batch_number"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = first.body["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let page = lab
            .app
            .get(&format!("/api/v1/batches?limit=2&cursor={c}"), &lab.tech)
            .await;
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["batch_number"].as_str().unwrap().to_owned()),
        );
        cursor = page.body["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(
        seen,
        [
            "MSC-L-1", "MSC-L-2", "MSC-L-3", "MSC-L-4", "MSC-L-5", "OTHER-1"
        ]
    );
    let search = lab.app.get("/api/v1/batches?q=msc-l", &lab.tech).await;
    assert_eq!(search.body["items"].as_array().unwrap().len(), 5);
    let by_din = lab
        .app
        .get("/api/v1/batches?q=A9999171234569", &lab.tech)
        .await;
    assert_eq!(by_din.body["items"][0]["batch_number"], "OTHER-1");
    // As a scanner reads the label: the barcode's content (with its two
    // flag digits) and the eye-readable line; a wrong check character finds
    // nothing.
    for (scanned, found) in [
        ("%3DA99991712345600", 1),
        ("A9999%2017%20123456%2000", 1),
        ("A9999171234568", 0),
    ] {
        let r = lab
            .app
            .get(&format!("/api/v1/batches?q={scanned}"), &lab.tech)
            .await;
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items.len(), found, "{scanned}: {}", r.body);
        if found == 1 {
            assert_eq!(items[0]["batch_number"], "OTHER-1");
        }
    }
    let released = lab
        .app
        .get("/api/v1/batches?status=released", &lab.tech)
        .await;
    assert_eq!(released.body["items"], json!([]));
    let bad = lab.app.get("/api/v1/batches?status=sold", &lab.tech).await;
    assert_eq!(bad.body["errors"][0]["field"], "status");
    let auditor = lab.app.signed_in(&["auditor"]).await.1;
    assert_eq!(
        lab.app.get("/api/v1/batches", &auditor).await.status,
        StatusCode::OK
    );
    let write = lab.app.post("/api/v1/batches", &auditor, json!({})).await;
    assert_eq!(
        write.status,
        StatusCode::FORBIDDEN,
        "an auditor writes nothing"
    );
}

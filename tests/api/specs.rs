//! Products and versioned specifications.

use crate::lab::{Lab, approved_spec};
use crate::support::{TestApp, USER_PASSWORD};
use actix_web::http::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn an_approved_spec_is_effective_with_a_signature_naming_its_approver() {
    let lab = Lab::msc().await;
    let s = lab
        .app
        .get(
            &format!("/api/v1/specifications/{}", lab.spec_id),
            &lab.tech,
        )
        .await;
    assert_eq!(s.body["status"], "effective");
    assert_eq!(s.body["tests"].as_array().unwrap().len(), 14);
    let viab = s.body["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "VIAB")
        .unwrap();
    assert_eq!(viab["min"], "80", "limits come back as entered");
    assert_eq!(viab["limit"], ">= 80 %");
    let sig = &s.body["signatures"][0];
    assert_eq!(sig["meaning"], "spec_approved");
    assert_eq!(sig["record_hash"].as_str().unwrap().len(), 64);
    assert!(
        sig["signer"]["full_name"]
            .as_str()
            .unwrap()
            .starts_with("Test qa-")
    );
    assert_eq!(lab.app.audit_actions("specification.approved").len(), 1);
}

#[actix_web::test]
async fn spec_validation_refuses_empty_duplicate_inverted_and_limitless_specs() {
    let lab = Lab::msc().await;
    let before = lab.count("specifications");
    let path = format!("/api/v1/products/{}/specifications", lab.product_id);
    let numeric = |code: &str, min: serde_json::Value, max: serde_json::Value| json!({"code": code, "name": "n", "method": "m", "kind": "numeric", "unit": "%", "min": min, "max": max});
    for (tests, field) in [
        (json!([]), "tests"),
        (
            json!([
                numeric("VIAB", json!(80), json!(null)),
                numeric("VIAB", json!(70), json!(null))
            ]),
            "tests[1].code",
        ),
        (
            json!([numeric("DOSE", json!("1.2e8"), json!("1.0e8"))]),
            "tests[0].min",
        ),
        (
            json!([numeric("VIAB", json!(null), json!(null))]),
            "tests[0].min",
        ),
        (
            json!([numeric("VIAB", json!("ninety"), json!(null))]),
            "tests[0].min",
        ),
    ] {
        let r = lab
            .app
            .post(&path, &lab.qa, json!({"version": "2.0", "tests": tests}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.body
        );
        assert_eq!(r.body["errors"][0]["field"], field, "{}", r.body);
    }
    assert_eq!(lab.count("specifications"), before, "nothing was written");
}

#[actix_web::test]
async fn the_author_of_a_spec_cannot_approve_it() {
    let lab = Lab::msc().await;
    let mut v2 = cellqc::demo::msc_spec();
    v2["version"] = json!("2.0");
    let s = lab
        .app
        .post(
            &format!("/api/v1/products/{}/specifications", lab.product_id),
            &lab.qa,
            v2,
        )
        .await;
    assert_eq!(s.body["status"], "draft");
    let id = s.body["id"].as_str().unwrap();
    let r = lab
        .app
        .post(
            &format!("/api/v1/specifications/{id}/approve"),
            &lab.qa,
            json!({"password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "self_approval");
    let after = lab
        .app
        .get(&format!("/api/v1/specifications/{id}"), &lab.qa)
        .await;
    assert_eq!(after.body["status"], "draft");
    assert_eq!(after.body["signatures"], json!([]));
    let tech = lab
        .app
        .post(
            &format!("/api/v1/specifications/{id}/approve"),
            &lab.tech,
            json!({"password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(tech.status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_new_version_supersedes_the_old_and_existing_batches_keep_theirs() {
    let lab = Lab::msc().await;
    let old_batch = lab.batch("MSC-0001").await;
    let mut v2 = cellqc::demo::msc_spec();
    v2["version"] = json!("2.0");
    let v2_id = approved_spec(&lab.app, &lab.qa, &lab.qa2, &lab.product_id, v2).await;
    let old = lab
        .app
        .get(&format!("/api/v1/specifications/{}", lab.spec_id), &lab.qa)
        .await;
    assert_eq!(old.body["status"], "superseded");
    assert!(old.body["superseded_at"].is_string());
    let record = lab.batch_record(&old_batch).await;
    assert_eq!(record["specification_id"], lab.spec_id.as_str());
    let new_batch = lab.batch("MSC-0002").await;
    let record = lab.batch_record(&new_batch).await;
    assert_eq!(record["specification_id"], v2_id.as_str());
    // Approving the old one again is refused: only a draft can be approved.
    let again = lab
        .app
        .post(
            &format!("/api/v1/specifications/{}/approve", lab.spec_id),
            &lab.qa2,
            json!({"password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "spec_not_draft");
    assert_eq!(lab.app.audit_actions("specification.superseded").len(), 1);
}

#[actix_web::test]
async fn a_wrong_password_signs_nothing_and_is_audited() {
    let lab = Lab::msc().await;
    let mut v2 = cellqc::demo::msc_spec();
    v2["version"] = json!("2.0");
    let s = lab
        .app
        .post(
            &format!("/api/v1/products/{}/specifications", lab.product_id),
            &lab.qa,
            v2,
        )
        .await;
    let id = s.body["id"].as_str().unwrap();
    let r = lab
        .app
        .post(
            &format!("/api/v1/specifications/{id}/approve"),
            &lab.qa2,
            json!({"password": "not-my-password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "signature_failed");
    let after = lab
        .app
        .get(&format!("/api/v1/specifications/{id}"), &lab.qa)
        .await;
    assert_eq!(after.body["status"], "draft");
    let failed = lab.app.audit_actions("auth.password_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1.as_ref().unwrap()["purpose"], "signature");
}

#[actix_web::test]
async fn only_qa_creates_products_and_codes_are_unique() {
    let app = TestApp::spawn().await;
    let (_, tech) = app.signed_in(&["technician"]).await;
    let (_, qa) = app.signed_in(&["qa"]).await;
    let r = app
        .post("/api/v1/products", &tech, cellqc::demo::msc_product())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ok = app
        .post("/api/v1/products", &qa, cellqc::demo::msc_product())
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    assert_eq!(ok.body["storage_max_c"], "-150");
    assert_eq!(ok.body["release_signatures_required"], 1);
    let dup = app
        .post("/api/v1/products", &qa, cellqc::demo::msc_product())
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "product_code_taken");
    let bad = app
        .post(
            "/api/v1/products",
            &qa,
            json!({"code": "X", "name": "x", "product_type": "t",
            "storage_min_c": "-100", "storage_max_c": "-150", "release_signatures_required": 3}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = bad.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    // A rule between two fields is judged once each field reads on its own.
    assert_eq!(fields, ["release_signatures_required"]);
    let inverted = app
        .post(
            "/api/v1/products",
            &qa,
            json!({"code": "X", "name": "x", "product_type": "t",
            "storage_min_c": "-100", "storage_max_c": "-150", "release_signatures_required": 2}),
        )
        .await;
    assert_eq!(inverted.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(inverted.body["errors"][0]["field"], "storage_min_c");
    assert_eq!(app.count("products"), 1, "nothing was saved");
}

//! The Certificate of Analysis PDF.

use crate::lab::Lab;
use actix_web::http::StatusCode;
use serde_json::json;

async fn pdf(lab: &Lab, batch: &str) -> (StatusCode, Vec<u8>) {
    let client = awc::Client::default();
    let mut res = client
        .get(format!(
            "{}/api/v1/batches/{batch}/certificate",
            lab.app.address
        ))
        .insert_header(("Authorization", format!("Bearer {}", lab.tech)))
        .send()
        .await
        .unwrap();
    let status = res.status();
    if status == StatusCode::OK {
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/pdf"
        );
    }
    (status, res.body().limit(10 << 20).await.unwrap().to_vec())
}

fn text_of(bytes: &[u8]) -> String {
    let text = pdf_extract::extract_text_from_mem(bytes).unwrap();
    // Collapse the extractor's spacing so phrases can be matched.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[actix_web::test]
async fn a_released_batch_has_a_certificate_with_every_result_signature_and_the_record_hash() {
    let lab = Lab::msc().await;
    let r = lab
        .create_batch(json!({"batch_number": "UCMSC-COA-1", "donor_din": "G123498654321H", "intended_recipient": "PT-0042"}))
        .await;
    let b = r.body["id"].as_str().unwrap().to_owned();
    for (code, value) in cellqc::demo::msc_passing_values() {
        let id = lab.recorded(&b, code, value).await;
        lab.review(&id, "accept").await;
    }
    let (status, _) = pdf(&lab, &b).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "no certificate before release"
    );
    let released = lab
        .release(&b, &lab.qa2, json!({"comment": "meets specification"}))
        .await;
    assert_eq!(released.status, StatusCode::OK);

    // The record hash printed is the canonical JSON hash of GET /batches/{id}.
    let record = lab.batch_record(&b).await;
    let expected_hash = cellqc::domain::hashing::sha256_hex(&[
        &cellqc::domain::hashing::canonical_json(&record).unwrap(),
    ]);
    let (status, bytes) = pdf(&lab, &b).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes.starts_with(b"%PDF"));
    assert!(
        bytes.len() < 150_000,
        "fonts are subset, not embedded whole: {} bytes",
        bytes.len()
    );
    let text = text_of(&bytes);
    for needle in [
        "Certificate of Analysis",
        "Umbilical-cord MSC injection 人脐带间充质干细胞注射液 (UCMSC-INJ)",
        "UCMSC-COA-1",
        "G123498654321H",
        "PT-0042",
        "version 1.0",
        "CD105",
        "7-AAD flow cytometry",
        ">= 95 %",
        "< 0.5 EU/mL",
        "98.2",
        "1.1e8",
        "no growth",
        "PASS",
        "released",
        "I approve this batch for release",
        "meets specification",
        "Page 1 of",
        &expected_hash,
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
    let tech_name = record["results"][0]["performed_by"]["full_name"]
        .as_str()
        .unwrap();
    let reviewer_name = record["results"][0]["signatures"][0]["signer"]["full_name"]
        .as_str()
        .unwrap();
    let qp_name = record["signatures"][0]["signer"]["full_name"]
        .as_str()
        .unwrap();
    for name in [tech_name, reviewer_name, qp_name] {
        assert!(text.contains(name), "missing {name}");
    }
    assert!(!text.contains("CONDITIONAL"));
    let signed_at = record["signatures"][0]["signed_at"].as_str().unwrap();
    let printed = chrono::DateTime::parse_from_rfc3339(signed_at)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    assert!(text.contains(&printed), "signature time {printed}");
}

#[actix_web::test]
async fn a_conditional_certificate_says_so_and_marks_pending_results() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("UCMSC-COA-2", &["STER"]).await;
    lab.release(
        &b,
        &lab.qa2,
        json!({"conditional": true, "justification": "sterility pending, 6 h shelf life"}),
    )
    .await;
    let (status, bytes) = pdf(&lab, &b).await;
    assert_eq!(status, StatusCode::OK);
    let text = text_of(&bytes);
    assert!(text.contains("CONDITIONAL RELEASE"), "{text}");
    assert!(text.contains("PENDING"));
    assert!(text.contains("conditionally_released"));
    assert!(text.contains("sterility pending, 6 h shelf life"));
}

#[actix_web::test]
async fn no_certificate_for_a_rejected_or_quarantined_batch() {
    let lab = Lab::msc().await;
    let b = lab.batch("UCMSC-COA-3").await;
    let r = lab
        .app
        .get(&format!("/api/v1/batches/{b}/certificate"), &lab.tech)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "not_released");
    let ghost = uuid::Uuid::now_v7();
    assert_eq!(
        lab.app
            .get(&format!("/api/v1/batches/{ghost}/certificate"), &lab.tech)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn an_invalidated_oos_stays_on_the_batch_page_the_review_page_and_the_certificate() {
    let lab = Lab::msc().await;
    let b = lab.batch("UCMSC-OOS").await;
    lab.recorded(&b, "ENDO", json!("0.5")).await;
    let rec = lab.batch_record(&b).await;
    let dev = rec["deviations"][0]["id"].as_str().unwrap().to_owned();
    let closed = lab.close(&dev, "invalid_test").await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    let mut retest = None;
    for (code, value) in cellqc::demo::msc_passing_values() {
        let id = lab.recorded(&b, code, value).await;
        if code == "ENDO" {
            retest = Some(id.clone());
        }
        if code != "ENDO" {
            lab.review(&id, "accept").await;
        }
    }
    let retest = retest.unwrap();

    // The reviewer sees that ENDO is a retest after the deviation.
    let (_, reviewer_name) = lab.app.user_with(&["reviewer"]).await;
    let mut reviewer = crate::web::Browser::new(&lab.app);
    reviewer
        .sign_in(&reviewer_name, crate::support::USER_PASSWORD)
        .await;
    let review = reviewer.get(&format!("/batches/{b}/review")).await;
    assert!(
        review.body.contains("a retest after deviation"),
        "{}",
        review.body
    );
    assert!(review.body.contains("concluded invalid test"));
    let r = lab.review(&retest, "accept").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let page = reviewer.get(&format!("/batches/{b}")).await;
    assert!(page.body.contains("Results not counted"), "{}", page.body);
    assert!(page.body.contains("status invalidated"));
    assert!(page.body.contains("Investigated in"));
    assert!(page.body.contains("Replaced by "), "the retest is named");

    let released = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
    let (status, bytes) = pdf(&lab, &b).await;
    assert_eq!(status, StatusCode::OK);
    let text = text_of(&bytes);
    for needle in [
        "Results not counted",
        "ENDO 0.5",
        "(FAIL) · invalidated",
        "concluded invalid test",
        "Deviations and investigations",
        "closed: invalid test. Root cause: pipetting error",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
}

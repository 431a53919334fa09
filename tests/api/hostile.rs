//! Hostile text: formula cells in the CSV export, unbounded or control
//! characters in free text, NUL bytes from forms and queries, a quote in a
//! file name, and the documents' security headers.

use crate::lab::Lab;
use crate::support::USER_PASSWORD;
use crate::web::Browser;
use actix_web::http::StatusCode;
use serde_json::json;

#[actix_web::test]
async fn formula_cells_in_the_history_csv_stay_text() {
    let lab = Lab::msc().await;
    let b = lab.batch("UCMSC-CSV").await;
    let id = lab.recorded(&b, "VIAB", json!("91.5")).await;
    let r = lab
        .app
        .post(
            &format!("/api/v1/results/{id}/review"),
            &lab.reviewer,
            json!({"decision": "reject", "password": USER_PASSWORD, "comment": "=HYPERLINK(\"http://evil.example\",\"x\")"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let again = lab
        .record_with(&b, json!({"test_code": "VIAB", "value": "92.0", "replaces_result_id": id, "reason": "@SUM(1+1)"}))
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    let (_, auditor) = lab.app.signed_in(&["auditor"]).await;
    let csv = lab
        .app
        .get(&format!("/api/v1/batches/{b}/history?format=csv"), &auditor)
        .await;
    let text = csv.body.as_str().unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let cells: Vec<String> = reader
        .records()
        .flat_map(|r| r.unwrap().iter().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(
        cells.iter().any(|c| c.starts_with("'=HYPERLINK(")),
        "{text}"
    );
    assert!(cells.iter().any(|c| c == "'@SUM(1+1)"), "{text}");
    for c in &cells {
        assert!(
            !c.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a live formula cell: {c:?}"
        );
    }
}

#[actix_web::test]
async fn comments_are_bounded_and_refuse_control_characters() {
    let lab = Lab::msc().await;
    let b = lab.batch("UCMSC-TXT").await;
    let id = lab.recorded(&b, "VIAB", json!("91.5")).await;
    let signatures = lab.count("signatures");
    for comment in [
        "x".repeat(500_000),
        "looks fine\u{0007}".to_owned(),
        "a\u{0000}b".to_owned(),
    ] {
        let r = lab
            .app
            .post(
                &format!("/api/v1/results/{id}/review"),
                &lab.reviewer,
                json!({"decision": "accept", "password": USER_PASSWORD, "comment": comment}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.body["errors"][0]["field"], "comment");
    }
    assert_eq!(lab.count("signatures"), signatures, "nothing signed");
    let tested = lab.tested_batch("UCMSC-TXT-2", &[]).await;
    let r = lab
        .release(&tested, &lab.qa2, json!({"comment": "ok\u{001b}[2J"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "comment");
}

#[actix_web::test]
async fn a_nul_from_a_form_or_a_query_is_refused_in_words_not_a_server_error() {
    let lab = Lab::msc().await;
    let mut b = Browser::new(&lab.app);
    let refused = b.sign_in("te\u{0000}ch", "whatever-password").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    let (_, tech) = lab.app.user_with(&["technician"]).await;
    b.sign_in(&tech, USER_PASSWORD).await;
    let search = b.get("/batches?q=UC%00MSC").await;
    assert_eq!(
        search.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        search.body
    );
    assert!(search.body.contains("<main"));
    let api = lab.app.get("/api/v1/batches?q=UC%00MSC", &lab.tech).await;
    assert_eq!(api.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", api.body);
    assert_eq!(api.body["errors"][0]["field"], "q");
    let (_, auditor) = lab.app.signed_in(&["auditor"]).await;
    let audit = lab.app.get("/api/v1/audit?actor=a%00b", &auditor).await;
    assert_eq!(
        audit.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        audit.body
    );
}

#[actix_web::test]
async fn a_quote_in_a_batch_number_stays_inside_the_certificates_file_name() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("UC\"MSC;x=y", &[]).await;
    let r = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let client = awc::Client::default();
    let res = client
        .get(format!(
            "{}/api/v1/batches/{b}/certificate",
            lab.app.address
        ))
        .insert_header(("Authorization", format!("Bearer {}", lab.tech)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cd = res
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cd.starts_with("inline; filename=\"CoA-UC_MSC;x=y.pdf\""),
        "{cd}"
    );
    let parsed = actix_web::http::header::ContentDisposition::from_raw(
        res.headers().get("content-disposition").unwrap(),
    )
    .unwrap();
    assert_eq!(
        parsed.parameters.len(),
        2,
        "only the file name, twice: {cd}"
    );
}

#[actix_web::test]
async fn the_api_documents_carry_the_security_headers() {
    let lab = Lab::msc().await;
    let client = awc::Client::default();
    let res = client
        .get(format!("{}/docs/", lab.app.address))
        .send()
        .await
        .unwrap();
    let csp = res
        .headers()
        .get("content-security-policy")
        .expect("a CSP on /docs/");
    assert!(csp.to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(res.headers().get("x-frame-options").unwrap(), "DENY");
}

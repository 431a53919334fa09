//! Every CSV the server writes is safe to open (API v1.2): a byte-order mark
//! first, no cell a formula; a download is named by its base name only.

use crate::lab::Lab;
use actix_web::http::StatusCode;
use chrono::Utc;
use serde_json::json;

const BOM: &str = "\u{FEFF}";
const FORMULA: &str = "=HYPERLINK(\"http://evil.example\",\"click\")";

/// A CSV download: its text and Content-Disposition.
async fn download(lab: &Lab, path: &str, token: &str) -> (String, String) {
    let mut res = lab
        .app
        .request("GET", path, Some(token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "GET {path}");
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "text/csv; charset=utf-8",
        "{path}"
    );
    let disposition = res
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.body().limit(64 << 20).await.unwrap();
    (String::from_utf8(body.to_vec()).unwrap(), disposition)
}

fn assert_safe(csv: &str, what: &str) {
    assert!(
        csv.starts_with(BOM),
        "{what} starts with the byte-order mark"
    );
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.trim_start_matches(BOM).as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{what}: a formula cell {cell:?}"
            );
        }
    }
}

#[actix_web::test]
async fn every_csv_starts_with_a_byte_order_mark_and_no_cell_is_a_formula() {
    let lab = Lab::msc().await;
    let auditor = lab.app.signed_in(&["auditor"]).await.1;
    // A batch number a spreadsheet would run as a formula, and Chinese text.
    let made = lab
        .create_batch(json!({"batch_number": FORMULA, "intended_recipient": "患者-张三"}))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let b = made.body["id"].as_str().unwrap().to_owned();
    lab.recorded(&b, "VIAB", json!("91.5")).await;

    let (trend, name) = download(
        &lab,
        &format!(
            "/api/v1/products/{}/trends?test_code=VIAB&format=csv",
            lab.product_id
        ),
        &lab.tech,
    )
    .await;
    assert_safe(&trend, "trends");
    assert!(
        trend.contains(&format!("'{}", FORMULA.replace('"', "\"\""))),
        "{trend}"
    );
    assert!(name.contains("filename=\"trend-"), "{name}");

    let (history, _) = download(
        &lab,
        &format!("/api/v1/batches/{b}/history?format=csv"),
        &auditor,
    )
    .await;
    assert_safe(&history, "history");
    assert!(history.contains("患者-张三"), "Chinese as written");

    let (audit, _) = download(
        &lab,
        &format!("/api/v1/audit?entity_id={b}&format=csv"),
        &auditor,
    )
    .await;
    assert_safe(&audit, "audit search");
    assert!(audit.lines().count() > 1, "{audit}");

    let lot = lab.released_lot("MEDIUM").await;
    let used = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/materials"),
            &lab.tech,
            json!({"material_id": lot, "used_at": Utc::now().to_rfc3339()}),
        )
        .await;
    assert_eq!(used.status, StatusCode::CREATED, "{}", used.body);
    let (where_used, _) = download(
        &lab,
        &format!("/api/v1/materials/{lot}/where-used?format=csv"),
        &lab.tech,
    )
    .await;
    assert_safe(&where_used, "where-used");
    assert!(where_used.contains(&b), "{where_used}");

    let preview = lab
        .app
        .request(
            "POST",
            &format!("/api/v1/batches/{b}/results/import?format=csv"),
            Some(&lab.tech),
        )
        .insert_header(("Content-Type", "application/json"))
        .send_json(&json!({
            "filename": "counter.csv", "dry_run": true,
            "content": format!("Sample,Dose\n\"{}\",=1+1\n", FORMULA.replace('"', "\"\"")),
            "mapping": {"DOSE": "Dose"}, "performed_at": Utc::now().to_rfc3339(),
        }))
        .await;
    let mut preview = preview.unwrap();
    let status = preview.status();
    let text = String::from_utf8(preview.body().await.unwrap().to_vec()).unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_safe(&text, "import preview");
    assert!(text.contains("'=1+1"), "{text}");
}

#[actix_web::test]
async fn a_kept_file_is_named_by_its_base_name_never_by_the_path_it_was_sent_with() {
    let lab = Lab::msc().await;
    let b = lab.batch("UCMSC-NAME-1").await;
    let imported = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/results/import"),
            &lab.tech,
            json!({"filename": "../../etc/passwd", "content": "Sample,Dose\nUCMSC-NAME-1,1.1e8\n",
                   "mapping": {"DOSE": "Dose"}, "performed_at": Utc::now().to_rfc3339()}),
        )
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.body);
    let file = imported.body["source_file"]["id"].as_str().unwrap();
    let got = lab
        .app
        .request(
            "GET",
            &format!("/api/v1/source-files/{file}"),
            Some(&lab.tech),
        )
        .send()
        .await
        .unwrap();
    let disposition = got
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.contains("filename=\"passwd\""), "{disposition}");
    assert!(
        !disposition.contains('/') && !disposition.contains(".."),
        "{disposition}"
    );
}

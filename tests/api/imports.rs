//! Results imported from instruments' exports: all or nothing, by the rules
//! of a typed result, the file kept byte for byte as a true copy (21 CFR
//! 11.10(b)) with its SHA-256 in the batch's audit entry.

use crate::lab::Lab;
use crate::support::Resp;
use actix_web::http::StatusCode;
use chrono::Utc;
use diesel::RunQueryDsl;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const FLOWJO: &[u8] = include_bytes!("../data/flowjo-msc-panel.csv");
const COUNTER: &[u8] = include_bytes!("../data/cell-counter-nc200.csv");

/// The FlowJo columns of the MSC panel's flow tests (the demo's saved mapping).
fn flow_mapping() -> Value {
    json!(cellqc::demo::flowjo_msc_mapping())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn import(lab: &Lab, batch: &str, body: Value) -> Resp {
    let mut b = json!({"performed_at": Utc::now().to_rfc3339(), "filename": "export.csv"});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    lab.app
        .post(
            &format!("/api/v1/batches/{batch}/results/import"),
            &lab.tech,
            b,
        )
        .await
}

fn flow_import(lab: &Lab, content: &str, dry_run: bool) -> Value {
    json!({
        "filename": "MSC panel 2026-12-01.csv",
        "content": content,
        "mapping": flow_mapping(),
        "instrument_id": lab.instrument_for("CD73").unwrap(),
        "dry_run": dry_run,
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[actix_rt::test]
async fn an_export_with_one_refused_value_records_nothing_and_after_the_fix_records_every_result_with_its_file()
 {
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-2026-9001").await;
    let broken = text(FLOWJO).replace(
        "UCMSC-2026-9001_MSC panel_001.fcs,93.1,98.7,99.2",
        "UCMSC-2026-9001_MSC panel_001.fcs,93.1,98.7,n/a",
    );
    assert_ne!(broken, text(FLOWJO));
    let results_before = lab.count("results");
    let entries_before = lab.count("audit_entries");

    // The dry run previews every row, the refused one with its reason.
    let preview = import(&lab, &batch, flow_import(&lab, &broken, true)).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.body["would_record"], json!(false));
    assert_eq!(preview.body["delimiter"], json!("comma"));
    assert_eq!(preview.body["line"], json!(2));
    let rows = preview.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 9);
    assert_eq!(
        rows[0]["test_code"],
        json!("VIAB"),
        "in the file's column order"
    );
    let cd90 = rows.iter().find(|r| r["test_code"] == "CD90").unwrap();
    assert_eq!(cd90["value"], json!("n/a"));
    assert_eq!(cd90["outcome"], Value::Null);
    assert!(cd90["error"].as_str().unwrap().contains("value"), "{cd90}");
    let cd73 = rows.iter().find(|r| r["test_code"] == "CD73").unwrap();
    assert_eq!(cd73["outcome"], json!("pass"));
    assert_eq!(cd73["value"], json!("98.7"));

    // Strict: the import refuses the whole file and keeps nothing.
    let refused = import(&lab, &batch, flow_import(&lab, &broken, false)).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.code(), "validation_failed");
    let fields: Vec<&str> = refused.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["CD90"]);
    assert_eq!(lab.count("results"), results_before);
    assert_eq!(lab.count("source_files"), 0);
    assert_eq!(
        lab.count("audit_entries"),
        entries_before,
        "a dry run and a refusal write no entry"
    );

    // The corrected export records all nine, each naming the kept file.
    let ok = import(&lab, &batch, flow_import(&lab, &text(FLOWJO), false)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let file = &ok.body["source_file"];
    let file_id = file["id"].as_str().unwrap();
    assert_eq!(file["sha256"], json!(sha256_hex(FLOWJO)));
    assert_eq!(file["size"], json!(FLOWJO.len()));
    assert_eq!(file["media_type"], json!("text/csv"));
    let results = ok.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 9);
    for r in results {
        assert_eq!(r["source_file_id"], json!(file_id), "{r}");
        assert_eq!(r["outcome"], json!("pass"), "{r}");
        assert_eq!(
            r["instrument_id"],
            json!(lab.instrument_for("CD73").unwrap())
        );
    }
    assert_eq!(lab.count("results"), results_before + 9);
    let record = lab.batch_record(&batch).await;
    let hladr = record["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["test_code"] == "HLADR")
        .unwrap();
    assert_eq!(hladr["value"], json!("0.6"));
    assert_eq!(hladr["source_file_id"], json!(file_id));

    // The file comes back byte for byte, its digest in the headers.
    let mut got = lab
        .app
        .request(
            "GET",
            &format!("/api/v1/source-files/{file_id}"),
            Some(&lab.reviewer),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    let bytes = got.body().await.unwrap();
    assert_eq!(
        &bytes[..],
        FLOWJO,
        "the kept bytes are the uploaded bytes, CRLF and all"
    );
    let header = |name: &str| {
        got.headers()
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("etag"), format!("\"{}\"", sha256_hex(FLOWJO)));
    assert!(header("repr-digest").starts_with("sha-256=:"));
    assert!(header("content-type").starts_with("text/csv"));

    // The batch's chain holds the file's SHA-256, then each result naming it.
    let stored = lab.app.audit_actions("source_file.stored");
    assert_eq!(stored.len(), 1);
    let after = stored[0].1.as_ref().unwrap();
    assert_eq!(after["sha256"], json!(sha256_hex(FLOWJO)));
    assert_eq!(after["filename"], json!("MSC panel 2026-12-01.csv"));
    let recorded = lab.app.audit_actions("result.recorded");
    let from_file = recorded
        .iter()
        .filter(|(_, a)| a.as_ref().unwrap()["source_file_id"] == json!(file_id))
        .count();
    assert_eq!(from_file, 9);
    let verify = lab.app.get("/api/v1/audit/verify", &lab.qa).await;
    assert_eq!(verify.status, StatusCode::OK, "{}", verify.body);
    assert_eq!(verify.body["ok"], json!(true), "{}", verify.body);

    // The same export again: every test has a result; the first rule's
    // status, each test named, nothing kept.
    let again = import(&lab, &batch, flow_import(&lab, &text(FLOWJO), false)).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.code(), "result_exists");
    assert_eq!(again.body["errors"].as_array().unwrap().len(), 9);
    assert_eq!(lab.count("source_files"), 1);
}

#[actix_rt::test]
async fn a_european_cell_counter_export_is_read_with_semicolons_and_decimal_commas_through_a_saved_mapping()
 {
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-2026-9003").await;
    let mappings = format!("/api/v1/products/{}/import-mappings", lab.product_id);
    let body = json!({"name": "NC-200 dose", "mapping": {"DOSE": "Viable cells per bag"}});

    // Only QA keeps mappings; a code must be one of the product's tests.
    let tech = lab.app.post(&mappings, &lab.tech, body.clone()).await;
    assert_eq!(tech.status, StatusCode::FORBIDDEN);
    let unknown = lab
        .app
        .post(
            &mappings,
            &lab.qa,
            json!({"name": "x", "mapping": {"NOPE": "Viability (%)"}}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.body["errors"][0]["field"], json!("mapping.NOPE"));
    let saved = lab.app.post(&mappings, &lab.qa, body.clone()).await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.body);
    let mapping_id = saved.body["id"].as_str().unwrap().to_owned();
    let twice = lab.app.post(&mappings, &lab.qa, body).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.code(), "import_mapping_exists");
    let created = lab.app.audit_actions("import_mapping.created");
    assert_eq!(created.len(), 1);
    let listed = lab.app.get(&mappings, &lab.tech).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);

    let content = text(COUNTER);
    let preview = import(
        &lab,
        &batch,
        json!({"content": content, "mapping_id": mapping_id, "dry_run": true,
               "filename": "NC-200 2026-12-01.csv"}),
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.body["delimiter"], json!("semicolon"));
    assert_eq!(preview.body["rows"][0]["value"], json!("1.07E+08"));
    assert_eq!(preview.body["rows"][0]["outcome"], json!("pass"));

    let ok = import(
        &lab,
        &batch,
        json!({"content": content, "mapping_id": mapping_id, "filename": "NC-200 2026-12-01.csv"}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["results"][0]["test_code"], json!("DOSE"));
    assert_eq!(ok.body["results"][0]["value"], json!("1.07E+08"));

    // A retired mapping is kept but no longer accepted.
    let replaced = lab
        .app
        .call(
            "PUT",
            &format!("/api/v1/import-mappings/{mapping_id}"),
            Some(&lab.qa),
            json!({"name": "NC-200 dose", "mapping": {"DOSE": "Viable cells per bag", "VIAB": "Viability (%)"}}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    let entry = lab.app.audit_actions("import_mapping.replaced");
    assert_eq!(entry.len(), 1);
    let retired = lab
        .app
        .call_empty(
            "DELETE",
            &format!("/api/v1/import-mappings/{mapping_id}"),
            Some(&lab.qa),
        )
        .await;
    assert_eq!(retired.status, StatusCode::NO_CONTENT);
    let other = lab.batch("UCMSC-2026-9004").await;
    let gone = import(
        &lab,
        &other,
        json!({"content": content, "mapping_id": mapping_id}),
    )
    .await;
    assert_eq!(gone.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(gone.body["errors"][0]["field"], json!("mapping_id"));
    assert_eq!(lab.count("import_mappings"), 1, "retired, not deleted");
}

#[actix_rt::test]
async fn an_import_is_judged_by_every_rule_of_a_typed_result() {
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-2026-9001").await;
    let content = text(FLOWJO);

    // Reviewers do not record results.
    let r = lab
        .app
        .post(
            &format!("/api/v1/batches/{batch}/results/import"),
            &lab.reviewer,
            json!({"filename": "a.csv", "content": content, "mapping": flow_mapping(),
                   "performed_at": Utc::now().to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Flow tests need their cytometer: the refusal names the field per test.
    let no_instrument = import(
        &lab,
        &batch,
        json!({"content": content, "mapping": {"CD73": "MSC/Single Cells/Live/CD73+ | Freq. of Parent (%)"}}),
    )
    .await;
    assert_eq!(no_instrument.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_instrument.body["errors"][0]["field"], json!("CD73"));
    assert!(
        no_instrument.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("instrument_id")
    );

    // An analyst without the qualification: the rule's own status.
    let (_, other_tech) = lab.app.signed_in(&["technician"]).await;
    let unqualified = lab
        .app
        .post(
            &format!("/api/v1/batches/{batch}/results/import"),
            &other_tech,
            json!({"filename": "a.csv", "content": content, "performed_at": Utc::now().to_rfc3339(),
                   "mapping": flow_mapping(), "instrument_id": lab.instrument_for("CD73").unwrap()}),
        )
        .await;
    assert_eq!(
        unqualified.status,
        StatusCode::FORBIDDEN,
        "{}",
        unqualified.body
    );
    assert_eq!(unqualified.code(), "analyst_not_qualified");

    // A column the file does not have; two rows naming the batch; a file
    // with no row for it; a mapping of nothing.
    let missing = import(
        &lab,
        &batch,
        json!({"content": content, "mapping": {"CD73": "CD73 %"}}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.body["errors"][0]["field"], json!("mapping.CD73"));
    let doubled = format!("{content}UCMSC-2026-9001 repeat,1,1,1,1,1,1,1,1,1,1\r\n");
    let twice = import(
        &lab,
        &batch,
        json!({"content": doubled, "mapping": {"VIAB": "MSC/Single Cells/Live | Freq. of Parent (%)"}}),
    )
    .await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(twice.body["errors"][0]["field"], json!("content"));
    let unnamed = lab.batch("UCMSC-2026-9999").await;
    let none = import(
        &lab,
        &unnamed,
        json!({"content": content, "mapping": {"VIAB": "MSC/Single Cells/Live | Freq. of Parent (%)"}}),
    )
    .await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        none.body["detail"]
            .as_str()
            .unwrap()
            .contains("UCMSC-2026-9999")
    );
    let empty = import(&lab, &batch, json!({"content": content, "mapping": {}})).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty.body["errors"][0]["field"], json!("mapping"));
    assert_eq!(lab.count("source_files"), 0);
    assert_eq!(lab.count("results"), 0);

    // A value out of specification is no refusal: it is recorded and opens
    // its OOS investigation, as when typed.
    let oos = content.replace(
        "UCMSC-2026-9001_MSC panel_001.fcs,93.1,98.7",
        "UCMSC-2026-9001_MSC panel_001.fcs,93.1,90.2",
    );
    let ok = import(&lab, &batch, flow_import(&lab, &oos, false)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let cd73 = ok.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["test_code"] == "CD73")
        .unwrap()
        .clone();
    assert_eq!(cd73["outcome"], json!("fail"));
    let record = lab.batch_record(&batch).await;
    let deviation = record["deviations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["result_id"] == cd73["id"])
        .unwrap()
        .clone();
    assert_eq!(deviation["kind"], json!("oos"));
}

#[actix_rt::test]
async fn the_database_keeps_a_source_file_as_it_was_stored_and_its_hash_true() {
    use diesel::RunQueryDsl;
    use diesel::connection::SimpleConnection;
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-2026-9001").await;
    let ok = import(&lab, &batch, flow_import(&lab, &text(FLOWJO), false)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let id = ok.body["source_file"]["id"].as_str().unwrap().to_owned();
    let mut conn = lab.app.conn();
    for sql in [
        format!(
            "UPDATE source_files SET content = 'x'::bytea, sha256 = sha256('x'::bytea), size = 1 WHERE id = '{id}'"
        ),
        format!("DELETE FROM source_files WHERE id = '{id}'"),
        "TRUNCATE source_files CASCADE".to_owned(),
    ] {
        assert!(conn.batch_execute(&sql).is_err(), "{sql} must be refused");
    }
    let forged = diesel::sql_query(format!(
        "INSERT INTO source_files (id, batch_id, filename, media_type, content, sha256, size, uploaded_by, uploaded_at)
         SELECT gen_random_uuid(), batch_id, 'f.csv', 'text/csv', 'a;b'::bytea, sha256('other'::bytea), 3, uploaded_by, now()
           FROM source_files WHERE id = '{id}'"
    ))
    .execute(&mut conn);
    assert!(forged.is_err(), "a hash that is not the bytes' is refused");
    assert_eq!(lab.count("source_files"), 1);
}

#[actix_rt::test]
async fn a_technician_uploads_an_export_previews_every_row_and_confirms_once_on_the_import_page() {
    use crate::web::Browser;
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-2026-9001").await;
    let mut tech = Browser::as_tech(&lab).await;
    let batch_page = tech.get(&format!("/batches/{batch}")).await;
    assert!(
        batch_page
            .body
            .contains(&format!("/batches/{batch}/results/import"))
    );
    let path = format!("/batches/{batch}/results/import");
    let form = tech.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("name=\"map.CD73\""),
        "a column field per test"
    );
    let csrf = Browser::csrf(&form);
    let instrument = lab.instrument_for("CD73").unwrap().to_owned();
    let performed = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let mapping = flow_mapping();
    let mut fields: Vec<(String, String)> = vec![
        ("csrf".into(), csrf.clone()),
        ("performed_at".into(), performed.clone()),
        ("instrument_id".into(), instrument.clone()),
    ];
    for (code, header) in mapping.as_object().unwrap() {
        fields.push((format!("map.{code}"), header.as_str().unwrap().to_owned()));
    }
    let with = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut f = fields.clone();
        f.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        f
    };

    // A file with one unreadable value: the preview says which, in words,
    // and offers no confirm.
    let broken = text(FLOWJO).replace(",98.7,99.2,", ",98.7,n/a,");
    let f = with(&[("step", "preview")]);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let preview = tech
        .post_multipart(
            &path,
            &pairs,
            Some(("file", "panel.csv", broken.as_bytes())),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(preview.body.contains("REFUSED"), "{}", preview.body);
    assert!(preview.body.contains("nothing can be recorded"));
    assert!(!preview.body.contains("id=\"confirm\""));
    assert_eq!(lab.count("results"), 0);

    // The corrected file: every row passes; one confirm records them all.
    let preview = tech
        .post_multipart(&path, &pairs, Some(("file", "panel.csv", FLOWJO)))
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(preview.body.contains("id=\"confirm\""), "{}", preview.body);
    assert!(preview.body.contains("Record these 9 results"));
    assert!(preview.body.contains(&sha256_hex(FLOWJO)));
    assert_eq!(lab.count("results"), 0, "a preview records nothing");
    let content = Browser::hidden(&preview, "content_b64");
    let sha = Browser::hidden(&preview, "sha256");
    let key = Browser::hidden(&preview, "form_key");

    // Bytes other than those previewed are refused.
    let tampered = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        broken.as_bytes(),
    );
    let f = with(&[
        ("step", "confirm"),
        ("content_b64", &tampered),
        ("sha256", &sha),
        ("filename", "panel.csv"),
    ]);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refused = tech.post_multipart(&path, &pairs, None).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("not the one previewed"));
    assert_eq!(lab.count("results"), 0);

    let f = with(&[
        ("step", "confirm"),
        ("form_key", &key),
        ("content_b64", &content),
        ("sha256", &sha),
        ("filename", "panel.csv"),
    ]);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let done = tech.post_multipart(&path, &pairs, None).await;
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.body);
    assert!(
        done.body.contains("9 results recorded from"),
        "{}",
        done.body
    );
    assert_eq!(lab.count("results"), 9);
    // Confirmed twice (a double click): recorded once, the same answer.
    let again = tech.post_multipart(&path, &pairs, None).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert!(again.body.contains("9 results recorded from"));
    assert!(again.body.contains(&sha256_hex(FLOWJO)));
    assert_eq!(lab.count("results"), 9, "recorded once");
    assert_eq!(lab.count("source_files"), 1);

    // The batch page links each imported value to its file, which comes
    // back as uploaded.
    let batch_page = tech.get(&format!("/batches/{batch}")).await;
    assert_eq!(batch_page.body.matches("from its export file").count(), 9);
    let at = batch_page.body.find("/source-files/").unwrap();
    let link = &batch_page.body[at..at + "/source-files/".len() + 36];
    let file = tech.get(link).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body.as_bytes(), FLOWJO);
}

#[actix_rt::test]
async fn qa_keeps_a_products_import_mappings_on_its_page_and_the_import_page_fills_the_columns_from_one()
 {
    use crate::support::USER_PASSWORD;
    use crate::web::Browser;
    let lab = Lab::msc().await;
    let qa_name = lab.app.get("/api/v1/auth/me", &lab.qa).await.body["username"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut qa = Browser::new(&lab.app);
    qa.sign_in(&qa_name, USER_PASSWORD).await;
    let path = format!("/products/{}/import-mappings", lab.product_id);
    let page = qa.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No mapping saved"));
    let csrf = Browser::csrf(&page);

    // Nothing mapped: refused in words, nothing saved.
    let empty = qa
        .post(
            &path,
            &[("csrf", &csrf), ("name", "NC-200"), ("map.DOSE", " ")],
        )
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty.body.contains("map at least one test code"),
        "{}",
        empty.body
    );
    assert_eq!(lab.count("import_mappings"), 0);

    let saved = qa
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("name", "NC-200"),
                ("map.DOSE", "Viable cells per bag"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let listed = lab.app.get(&format!("/api/v1{path}"), &lab.tech).await;
    let id = listed.body[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        listed.body[0]["mapping"]["DOSE"],
        json!("Viable cells per bag")
    );

    // The technician sees it, may not change it, and loads it on the import page.
    let mut tech = Browser::as_tech(&lab).await;
    let seen = tech.get(&path).await;
    assert!(seen.body.contains("Viable cells per bag"));
    assert!(!seen.body.contains("Retire this mapping"));
    let forbidden = tech
        .post(
            &format!("/import-mappings/{id}/retire"),
            &[("csrf", &Browser::csrf(&seen))],
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let batch = lab.batch("UCMSC-2026-9003").await;
    let form = tech
        .get(&format!("/batches/{batch}/results/import?mapping_id={id}"))
        .await;
    assert!(
        form.body
            .contains("name=\"map.DOSE\" value=\"Viable cells per bag\""),
        "{}",
        form.body
    );

    // QA retires it: kept in the database and the trail, no longer offered.
    let retired = qa
        .post(&format!("/import-mappings/{id}/retire"), &[("csrf", &csrf)])
        .await;
    assert_eq!(retired.status, StatusCode::SEE_OTHER);
    assert_eq!(lab.count("import_mappings"), 1);
    assert_eq!(lab.app.audit_actions("import_mapping.retired").len(), 1);
    let after = qa.get(&path).await;
    assert!(after.body.contains("No mapping saved"));
}

#[actix_rt::test]
async fn a_retired_import_mapping_never_changes_and_none_changes_product() {
    use diesel::connection::SimpleConnection;
    let lab = Lab::msc().await;
    let saved = lab
        .app
        .post(
            &format!("/api/v1/products/{}/import-mappings", lab.product_id),
            &lab.qa,
            json!({"name": "dose", "mapping": {"DOSE": "Viable cells per bag"}}),
        )
        .await;
    let id = saved.body["id"].as_str().unwrap().to_owned();
    let mut conn = lab.app.conn();
    let other = uuid::Uuid::now_v7();
    assert!(
        conn.batch_execute(&format!(
            "UPDATE import_mappings SET product_id = '{other}' WHERE id = '{id}'"
        ))
        .is_err()
    );
    let retired = lab
        .app
        .call_empty(
            "DELETE",
            &format!("/api/v1/import-mappings/{id}"),
            Some(&lab.qa),
        )
        .await;
    assert_eq!(retired.status, StatusCode::NO_CONTENT);
    assert!(
        conn.batch_execute(&format!(
            "UPDATE import_mappings SET retired_at = NULL WHERE id = '{id}'"
        ))
        .is_err(),
        "a retired mapping stays retired"
    );
    let again = lab
        .app
        .call(
            "PUT",
            &format!("/api/v1/import-mappings/{id}"),
            Some(&lab.qa),
            json!({"name": "dose", "mapping": {"DOSE": "x"}}),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.code(), "import_mapping_not_found");
}

/// A counter's export of `rows` data rows, the batch's the last: viable
/// cells per bag and potency (tests that need no qualification).
fn counter_export(batch_number: &str, rows: usize) -> String {
    let mut t = String::from("Sample,Viable cells per bag,Potency\n");
    for i in 1..rows {
        t.push_str(&format!("OTHER-{i:05},1.05e8,30\n"));
    }
    t.push_str(&format!("{batch_number},1.1e8,35\n"));
    t
}

fn counter_import(content: &str) -> Value {
    json!({
        "filename": "counter.csv",
        "content": content,
        "mapping": {"DOSE": "Viable cells per bag", "POT": "Potency"},
    })
}

#[actix_rt::test]
async fn an_export_of_ten_thousand_rows_is_imported_and_one_over_a_limit_is_refused_naming_it() {
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-2026-9101").await;

    // 10 001 rows: 422 naming the row limit; nothing kept.
    let over = import(
        &lab,
        &batch,
        counter_import(&counter_export("UCMSC-2026-9101", 10_001)),
    )
    .await;
    assert_eq!(
        over.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        over.body
    );
    assert_eq!(over.body["errors"][0]["field"], "content");
    let said = over.body["errors"][0]["message"].as_str().unwrap();
    assert!(said.contains("at most 10000 rows"), "{said}");

    // Over 5 MiB (in rows few enough): 422 naming the byte limit.
    let mut wide = counter_export("UCMSC-2026-9101", 10);
    wide.push_str(&format!("# {}\n", "x".repeat(5 * 1024 * 1024)));
    let big = import(&lab, &batch, counter_import(&wide)).await;
    assert_eq!(big.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", big.body);
    let said = big.body["errors"][0]["message"].as_str().unwrap();
    assert!(said.contains("at most 5242880 bytes (5 MiB)"), "{said}");

    // A body over the import's 16 MiB: 413, read no further.
    let huge = import(&lab, &batch, counter_import(&"y".repeat(17 * 1024 * 1024))).await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", huge.body);
    assert!(huge.body["detail"].as_str().unwrap().contains("16 MiB"));
    assert_eq!(lab.count("source_files"), 0);
    assert_eq!(lab.count("results"), 0);

    // Exactly 10 000 rows (about 280 KB): the batch's row, the last, is
    // recorded, its line named, the file kept whole.
    let export = counter_export("UCMSC-2026-9101", 10_000);
    let preview = import(
        &lab,
        &batch,
        json!({"dry_run": true, "content": export.clone(), "filename": "counter.csv",
               "mapping": {"DOSE": "Viable cells per bag", "POT": "Potency"}}),
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.body["line"], 10_001);
    assert_eq!(preview.body["would_record"], true);
    let done = import(&lab, &batch, counter_import(&export)).await;
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.body);
    assert_eq!(done.body["results"].as_array().unwrap().len(), 2);
    assert_eq!(done.body["source_file"]["size"], export.len());
    assert_eq!(lab.count("results"), 2);

    // The page says the limit too.
    use crate::web::Browser;
    let mut tech = Browser::as_tech(&lab).await;
    let path = format!("/batches/{batch}/results/import");
    let form = tech.get(&path).await;
    let csrf = Browser::csrf(&form);
    let performed = Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let page = tech
        .post_multipart(
            &path,
            &[
                ("csrf", csrf.as_str()),
                ("step", "preview"),
                ("performed_at", performed.as_str()),
                ("map.DOSE", "Viable cells per bag"),
            ],
            Some((
                "file",
                "counter.csv",
                counter_export("UCMSC-2026-9101", 10_001).as_bytes(),
            )),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("at most 10000 rows"), "{}", page.body);
    assert_eq!(lab.count("results"), 2);
}

/// An import whose body is sent in two parts, the second only when `go`
/// fires: until then the server is reading its upload.
async fn slow_import(
    lab: &Lab,
    token: &str,
    batch: &str,
    content: &str,
    go: futures::channel::oneshot::Receiver<()>,
) -> Resp {
    use futures::StreamExt;
    let body = serde_json::to_vec(&json!({
        "filename": "counter.csv",
        "content": content,
        "mapping": {"DOSE": "Viable cells per bag", "POT": "Potency"},
        "performed_at": Utc::now().to_rfc3339(),
    }))
    .unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    let first = actix_web::web::Bytes::copy_from_slice(first);
    let rest = actix_web::web::Bytes::copy_from_slice(rest);
    let parts = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(
        futures::stream::once(async move {
            let _ = go.await;
            Ok::<_, std::io::Error>(rest)
        }),
    );
    let req = lab
        .app
        .request(
            "POST",
            &format!("/api/v1/batches/{batch}/results/import"),
            Some(token),
        )
        .content_type("application/json");
    let mut res = req.send_stream(parts).await.unwrap();
    let bytes = res.body().limit(1 << 20).await.unwrap();
    Resp {
        status: res.status(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers: res.headers().clone(),
    }
}

#[actix_rt::test]
async fn six_imports_uploading_hold_no_connection_and_each_user_imports_one_at_a_time() {
    // Four pooled connections (the harness's server), six imports.
    let lab = Lab::msc().await;
    let mut techs = Vec::new();
    for i in 0..6 {
        let number = format!("UCMSC-2026-92{i:02}");
        let batch = lab.batch(&number).await;
        let (id, token) = lab.app.signed_in(&["technician"]).await;
        techs.push((id, token, batch, counter_export(&number, 2_000)));
    }
    let (_, reader) = lab.app.signed_in(&["auditor"]).await;
    let mut gos = Vec::new();
    let mut uploads = Vec::new();
    for (_, token, batch, content) in &techs {
        let (go, wait) = futures::channel::oneshot::channel();
        gos.push(go);
        uploads.push(slow_import(&lab, token, batch, content, wait));
    }
    let meanwhile = async {
        actix_rt::time::sleep(std::time::Duration::from_millis(800)).await;
        // While the six upload (longer than the pool's 5 s wait), others
        // are answered, at once.
        let mut answered = Vec::new();
        for _ in 0..7 {
            let started = std::time::Instant::now();
            let r = lab
                .app
                .get(&format!("/api/v1/batches/{}", techs[0].2), &reader)
                .await;
            answered.push((r.status, started.elapsed()));
            actix_rt::time::sleep(std::time::Duration::from_millis(800)).await;
        }
        // The same technician's second import: 429 while the first runs.
        let again = import_as(&lab, &techs[0].1, &techs[0].2, &techs[0].3).await;
        for go in gos {
            let _ = go.send(());
        }
        (answered, again)
    };
    let (done, (answered, again)) = futures::join!(futures::future::join_all(uploads), meanwhile);
    for (status, took) in &answered {
        assert_eq!(
            *status,
            StatusCode::OK,
            "others are answered while imports upload"
        );
        assert!(took.as_secs_f64() < 2.0, "answered in {took:?}");
    }
    assert_eq!(
        again.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        again.body
    );
    assert_eq!(again.code(), "import_in_progress");
    assert_eq!(again.headers.get("retry-after").unwrap(), "5");
    for r in &done {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    assert_eq!(lab.count("source_files"), 6);
    assert_eq!(lab.count("results"), 12);

    // After its answer, the technician's next import is taken (and refused
    // for what it is: the batch already has these results).
    let next = import_as(&lab, &techs[0].1, &techs[0].2, &techs[0].3).await;
    assert_ne!(next.status, StatusCode::TOO_MANY_REQUESTS, "{}", next.body);

    // Across servers the database holds the rule: while the user's import
    // lock is held elsewhere, an import is 429 and keeps nothing.
    let (tech_id, token, _, _) = &techs[1];
    let fresh = lab.batch("UCMSC-2026-9299").await;
    let other = counter_export("UCMSC-2026-9299", 3);
    let mut elsewhere = lab.app.conn();
    diesel::sql_query("SELECT pg_advisory_lock(7208433, hashtext($1))")
        .bind::<diesel::sql_types::Text, _>(tech_id)
        .execute(&mut elsewhere)
        .unwrap();
    let held = import_as(&lab, token, &fresh, &other).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS, "{}", held.body);
    assert_eq!(held.code(), "import_in_progress");
    assert_eq!(lab.count("source_files"), 6);
    diesel::sql_query("SELECT pg_advisory_unlock_all()")
        .execute(&mut elsewhere)
        .unwrap();
    let freed = import_as(&lab, token, &fresh, &other).await;
    assert_eq!(freed.status, StatusCode::CREATED, "{}", freed.body);
}

async fn import_as(lab: &Lab, token: &str, batch: &str, content: &str) -> Resp {
    let mut b = counter_import(content);
    b["performed_at"] = json!(Utc::now().to_rfc3339());
    lab.app
        .post(&format!("/api/v1/batches/{batch}/results/import"), token, b)
        .await
}

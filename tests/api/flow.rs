//! The whole QC workflow through HTTP, the batch history, and the demo data.

use crate::lab::Lab;
use crate::support::TestApp;
use actix_web::http::StatusCode;
use cellqc::demo::{DEMO_PASSWORD, msc_passing_values};
use serde_json::{Value, json};

#[actix_web::test]
async fn the_msc_panel_is_recorded_reviewed_and_traced_in_a_verifying_history() {
    let lab = Lab::msc().await;
    let b = lab.batch("UCMSC-2026-0001").await;
    let mut ids = Vec::new();
    for (code, value) in msc_passing_values() {
        let r = lab.record(&b, code, value.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{code}: {}", r.body);
        assert_eq!(r.body["outcome"], "pass", "{code} {value}");
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let r = lab.review(id, "accept").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let rec = lab.batch_record(&b).await;
    assert_eq!(rec["status"], "quarantine");
    let results = rec["results"].as_array().unwrap();
    assert_eq!(results.len(), 14);
    for r in results {
        assert_eq!(r["status"], "reviewed");
        assert_eq!(r["outcome"], "pass");
        let sig = &r["signatures"][0];
        assert_eq!(sig["meaning"], "reviewed");
        assert_ne!(sig["signer"]["id"], r["performed_by"]["id"]);
        assert!(sig["signer"]["full_name"].is_string() && sig["signed_at"].is_string());
    }
    assert_eq!(results[0]["value"], "98.2");
    assert_eq!(results[1]["value"], "99.1");
    assert_eq!(rec["deviations"], json!([]));

    let (_, auditor) = lab.app.signed_in(&["auditor"]).await;
    let h = lab
        .app
        .get(&format!("/api/v1/batches/{b}/history"), &auditor)
        .await;
    assert_eq!(h.status, StatusCode::OK);
    let items = h.body["items"].as_array().unwrap();
    // created + 14 recorded + 14 reviewed
    assert_eq!(items.len(), 29);
    let seqs: Vec<i64> = items.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=29).collect::<Vec<_>>());
    assert_eq!(items[0]["action"], "batch.created");
    assert_eq!(items[1]["action"], "result.recorded");
    assert_eq!(items[28]["action"], "result.reviewed");
    assert_eq!(items[1]["prev_hash"], items[0]["hash"]);
    assert!(items.iter().all(|e| e["batch_id"] == b.as_str()));

    let csv = lab
        .app
        .call_empty(
            "GET",
            &format!("/api/v1/batches/{b}/history?format=csv"),
            Some(&auditor),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.body.as_str().unwrap().to_owned();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "seq");
    assert_eq!(&headers[5], "action");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 29);
    assert_eq!(&rows[28][12], items[28]["hash"].as_str().unwrap());

    let v = lab.app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
    assert_eq!(v.body["chains"], 2, "the system chain and the batch's own");

    assert_eq!(
        lab.app
            .get(&format!("/api/v1/batches/{b}/history"), &lab.tech)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let bad = lab
        .app
        .get(&format!("/api/v1/batches/{b}/history?format=xml"), &auditor)
        .await;
    assert_eq!(bad.body["errors"][0]["field"], "format");
}

#[actix_web::test]
async fn cellqc_demo_loads_reference_products_and_a_user_per_role() {
    let app = TestApp::spawn().await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cellqc"))
            .arg("demo")
            .env("DATABASE_URL", &app.db_url)
            .env("CELLQC_DATA_DIR", app.data_dir.path())
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("product UCMSC-INJ"), "{stdout}");
    assert!(stdout.contains(DEMO_PASSWORD));
    // Running it again adds nothing.
    let again = run();
    assert!(!String::from_utf8_lossy(&again.stdout).contains("created product"));

    let tech = app.login("tech", DEMO_PASSWORD).await;
    let products = app.get("/api/v1/products", &tech).await;
    let items = products.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for p in items {
        let specs = app
            .get(
                &format!(
                    "/api/v1/products/{}/specifications",
                    p["id"].as_str().unwrap()
                ),
                &tech,
            )
            .await;
        assert_eq!(specs.body["items"][0]["status"], "effective");
    }
    // The demo lab: a calibrated flow cytometer, a released 7-AAD lot, and
    // the technician qualified for the flow and compendial tests.
    assert!(stdout.contains("instrument FC-01, calibrated"), "{stdout}");
    assert!(!String::from_utf8_lossy(&again.stdout).contains("instrument FC-01"));
    let fc = app
        .get("/api/v1/instruments?kind=flow_cytometer", &tech)
        .await;
    assert_eq!(fc.body[0]["code"], "FC-01");
    assert_eq!(fc.body[0]["status"], "in_service");
    let lots = app.get("/api/v1/materials?code=7AAD", &tech).await;
    assert_eq!(lots.body[0]["status"], "released");
    // The MSC product's saved import mappings, once however often it runs.
    assert!(stdout.contains("import mappings of UCMSC-INJ"), "{stdout}");
    assert!(!String::from_utf8_lossy(&again.stdout).contains("import mappings"));
    let msc = items.iter().find(|p| p["code"] == "UCMSC-INJ").unwrap();
    let maps = app
        .get(
            &format!(
                "/api/v1/products/{}/import-mappings",
                msc["id"].as_str().unwrap()
            ),
            &tech,
        )
        .await;
    let names: Vec<&str> = maps
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["FlowJo MSC panel table", "NucleoCounter dose"]);
    let me = app.get("/api/v1/auth/me", &tech).await;
    let quals = app
        .get(
            &format!(
                "/api/v1/users/{}/qualifications",
                me.body["id"].as_str().unwrap()
            ),
            &tech,
        )
        .await;
    // One per test code the reference panels require a qualification for.
    let mut codes: Vec<String> = [
        cellqc::demo::msc_spec(),
        cellqc::demo::ipsc_bank_spec(),
        cellqc::demo::ipsc_spec(),
    ]
    .iter()
    .flat_map(cellqc::demo::controlled_tests)
    .map(|(code, _)| code)
    .collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 15);
    let mut held: Vec<&str> = quals
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["test_code"].as_str().unwrap())
        .collect();
    held.sort_unstable();
    assert_eq!(held, codes);
    // Thirty released MSC batches: the trend charts show something, and
    // one batch's viability is out of trend (inside its specification).
    assert!(
        stdout.contains("30 released batches of UCMSC-INJ"),
        "{stdout}"
    );
    let msc = items.iter().find(|p| p["code"] == "UCMSC-INJ").unwrap();
    let trend = |code: &'static str| {
        let path = format!(
            "/api/v1/products/{}/trends?test_code={code}",
            msc["id"].as_str().unwrap()
        );
        let (app, tech) = (&app, &tech);
        async move { app.get(&path, tech).await.body }
    };
    let viab = trend("VIAB").await;
    assert_eq!(viab["points"].as_array().unwrap().len(), 30);
    let flagged: Vec<(&str, &Value)> = viab["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["violations"] != json!([]))
        .map(|p| (p["batch_number"].as_str().unwrap(), &p["violations"]))
        .collect();
    assert_eq!(flagged, [("UCMSC-2026-027", &json!(["nelson_1"]))]);
    assert!(
        viab["points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["outcome"] == "pass")
    );
    let pot = trend("POT").await;
    assert_eq!(pot["points"].as_array().unwrap().len(), 30);
    assert!(
        pot["points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["violations"] == json!([])),
        "{pot}"
    );
    let released = app
        .get("/api/v1/batches?status=released&limit=100", &tech)
        .await;
    assert_eq!(
        released.body["items"].as_array().unwrap().len(),
        30,
        "{}",
        released.body
    );
    for user in ["reviewer", "qa", "qa2", "auditor"] {
        app.login(user, DEMO_PASSWORD).await;
    }
    // A QA person who also reviews, so that independence can be seen.
    let both = app.login("qarev", DEMO_PASSWORD).await;
    let me = app.get("/api/v1/auth/me", &both).await;
    assert_eq!(me.body["roles"], serde_json::json!(["reviewer", "qa"]));

    // `serve --demo` prints where the pages are and who can sign in.
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_cellqc"))
        .args(["serve", "--demo"])
        .env("DATABASE_URL", &app.db_url)
        .env("CELLQC_DATA_DIR", app.data_dir.path())
        .env("CELLQC_BIND", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(serve.stdout.take().unwrap()));
    let mut printed = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("is serving http://") {
            break;
        }
    }
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert!(printed.contains("qarev"), "{printed}");
    assert!(printed.contains("qa, reviewer"), "{printed}");
    assert!(
        printed.contains("cellqc is serving http://127.0.0.1:"),
        "{printed}"
    );
}

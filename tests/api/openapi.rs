//! The OpenAPI description and the offline docs.

use crate::support::TestApp;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

/// Every route of the HTTP contract (API.md).
const CONTRACT: [(&str, &str); 68] = [
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/me"),
    ("post", "/api/v1/auth/password"),
    ("post", "/api/v1/auth/locale"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users"),
    ("patch", "/api/v1/users/{id}"),
    ("post", "/api/v1/users/{id}/unlock"),
    ("post", "/api/v1/users/{id}/password"),
    ("post", "/api/v1/audit/anchors"),
    ("post", "/api/v1/users/{id}/qualifications"),
    ("get", "/api/v1/users/{id}/qualifications"),
    ("post", "/api/v1/qualifications/{id}/revoke"),
    ("post", "/api/v1/instruments"),
    ("get", "/api/v1/instruments"),
    ("get", "/api/v1/instruments/{id}"),
    ("post", "/api/v1/instruments/{id}/calibrations"),
    ("post", "/api/v1/instruments/{id}/out-of-service"),
    ("post", "/api/v1/instruments/{id}/return-to-service"),
    ("post", "/api/v1/materials"),
    ("get", "/api/v1/materials"),
    ("get", "/api/v1/materials/{id}"),
    ("post", "/api/v1/materials/{id}/release"),
    ("post", "/api/v1/materials/{id}/reject"),
    ("post", "/api/v1/batches/{id}/materials"),
    ("get", "/api/v1/materials/{id}/where-used"),
    ("get", "/api/v1/audit/anchors"),
    ("get", "/api/v1/audit/anchor-key"),
    ("post", "/api/v1/products"),
    ("get", "/api/v1/products"),
    ("get", "/api/v1/products/{id}"),
    ("get", "/api/v1/products/{id}/trends"),
    ("post", "/api/v1/products/{id}/specifications"),
    ("post", "/api/v1/specifications/{id}/approve"),
    ("get", "/api/v1/specifications/{id}"),
    ("post", "/api/v1/batches"),
    ("get", "/api/v1/batches"),
    ("get", "/api/v1/batches/{id}"),
    ("post", "/api/v1/batches/{id}/results"),
    ("post", "/api/v1/batches/{id}/results/import"),
    ("get", "/api/v1/source-files/{id}"),
    ("get", "/api/v1/products/{id}/import-mappings"),
    ("post", "/api/v1/products/{id}/import-mappings"),
    ("put", "/api/v1/import-mappings/{id}"),
    ("delete", "/api/v1/import-mappings/{id}"),
    ("post", "/api/v1/results/{id}/review"),
    ("post", "/api/v1/results/review"),
    ("post", "/api/v1/batches/{id}/deviations"),
    ("post", "/api/v1/deviations/{id}/close"),
    ("get", "/api/v1/batches/{id}/release-readiness"),
    ("get", "/api/v1/batches/{id}/audit-review"),
    ("post", "/api/v1/batches/{id}/audit-review"),
    ("post", "/api/v1/batches/{id}/release"),
    ("post", "/api/v1/batches/{id}/reject"),
    ("post", "/api/v1/batches/{id}/recall"),
    ("post", "/api/v1/batches/{id}/custody"),
    ("get", "/api/v1/batches/{id}/custody"),
    ("get", "/api/v1/batches/{id}/history"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/audit/verify"),
    ("get", "/api/v1/batches/{id}/certificate"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/users/{id}"),
    ("get", "/api/v1/results/{id}"),
    ("get", "/api/v1/products/{id}/specifications"),
];

#[actix_web::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let app = TestApp::spawn().await;
    let doc = app.call_empty("GET", "/api/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc.body["paths"].as_object().unwrap();
    for (method, path) in CONTRACT {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    let token = app.admin_token().await;
    let mut operations = 0;
    let mut operation_ids = std::collections::HashSet::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
            let r = app
                .raw(
                    &method.to_uppercase(),
                    &concrete,
                    Some(&token),
                    "application/json",
                    b"{}".to_vec(),
                )
                .await;
            assert_ne!(
                r.code(),
                "route_not_found",
                "{method} {path} is documented but not served"
            );
            let op = &item[method];
            // OpenAPI requires a description on every response, and a client
            // generator names each method by its operationId.
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.trim().is_empty()),
                    "{method} {path} {status}: no description"
                );
            }
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(
                !id.is_empty() && operation_ids.insert(id.clone()),
                "{method} {path}: operationId `{id}` missing or not unique"
            );
            if path != "/healthz" {
                assert!(
                    op["responses"].as_object().unwrap().contains_key("422"),
                    "{method} {path}: problems documented"
                );
            }
        }
    }
    assert_eq!(
        operations,
        CONTRACT.len(),
        "no undocumented extra and no missing operation"
    );
    // Links lead from a create to the operations that take its id.
    let links = &paths["/api/v1/batches/{id}/results"]["post"]["responses"]["201"]["links"];
    for op in ["get_result", "review_result"] {
        assert_eq!(links[op]["operationId"], op, "{links}");
        assert_eq!(links[op]["parameters"]["id"], "$response.body#/id");
    }
    assert!(
        paths["/api/v1/batches"]["post"]["responses"]["201"]["links"]["release_batch"].is_object()
    );
    // A material's use is not a material: no link to the lot's operations.
    assert!(paths["/api/v1/batches/{id}/materials"]["post"]["responses"]["201"]["links"].is_null());
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(
        paths["/api/v1/auth/login"]["post"]["security"],
        serde_json::json!([{}])
    );
}

#[actix_web::test]
async fn the_interactive_docs_are_served_without_the_internet() {
    let app = TestApp::spawn().await;
    let page = app.call_empty("GET", "/docs/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.body.as_str().unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "nothing is loaded from another host"
    );
    let js = app
        .call_empty("GET", "/docs/swagger-ui-bundle.js", None)
        .await;
    assert_eq!(js.status, StatusCode::OK);
    let init = app
        .call_empty("GET", "/docs/swagger-initializer.js", None)
        .await;
    assert!(init.body.as_str().unwrap().contains("/api/openapi.json"));
}

/// What the schema allows, the server accepts; what it forbids, the server
/// refuses: the document states the field rules, and the server keeps them.
#[actix_web::test]
async fn the_document_states_the_rules_the_server_applies_to_each_field() {
    let lab = crate::lab::Lab::msc().await;
    let app = &lab.app;
    let doc = app.call_empty("GET", "/api/openapi.json", None).await.body;
    // A field's own schema: its value type's (a `$ref`), or for an
    // optional one, the type beside `null`.
    let resolve = |v: &Value| match v["$ref"].as_str() {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap().clone(),
        None => v.clone(),
    };
    let prop = |schema: &str, field: &str| {
        let p = &doc["components"]["schemas"][schema]["properties"][field];
        match p["oneOf"].as_array() {
            Some(items) => resolve(items.iter().find(|i| i["type"] != "null").unwrap()),
            None => resolve(p),
        }
    };
    let title = prop("OpenDeviation", "title");
    // At most 200 characters once trimmed: the bound is in the pattern.
    assert!(
        title["pattern"].as_str().unwrap().contains("{0,198}"),
        "{title}"
    );
    assert_eq!(title["minLength"], 1);
    assert_eq!(
        prop("OpenDeviation", "severity")["enum"],
        json!(["minor", "major", "critical"])
    );
    let ids = prop("ReviewResults", "result_ids");
    assert_eq!(
        (&ids["minItems"], &ids["maxItems"], &ids["uniqueItems"]),
        (
            &json!(1),
            &json!(cellqc::services::results::MAX_REVIEW_AT_ONCE),
            &json!(true)
        )
    );
    assert_eq!(
        prop("ReviewResult", "decision")["enum"],
        json!(["accept", "reject"])
    );
    assert_eq!(prop("LoginRequest", "password")["pattern"], r"^[^\u0000]*$");
    let params = |path: &str, method: &str| doc["paths"][path][method]["parameters"].clone();
    let find = |ps: &Value, name: &str| {
        ps.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["schema"]
            .clone()
    };
    let batches = params("/api/v1/batches", "get");
    // The server reads an empty status as any, and the document says so.
    assert_eq!(find(&batches, "status")["enum"][0], "");
    let any = app.get("/api/v1/batches?status=", &lab.tech).await;
    assert_eq!(any.status, StatusCode::OK);
    let none = app
        .get("/api/v1/batches?status=quarantined", &lab.tech)
        .await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(find(&batches, "limit")["maximum"], 500);
    assert!(find(&batches, "cursor")["pattern"].is_string());
    // A body is read only where one is declared.
    let get = &doc["paths"]["/api/v1/batches"]["get"]["responses"];
    assert!(get["413"].is_null() && get["415"].is_null() && get["422"].is_object());
    assert!(doc["paths"]["/api/v1/batches"]["post"]["responses"]["415"].is_object());
    let key = find(&params("/api/v1/batches", "post"), "Idempotency-Key");
    assert_eq!(key["pattern"], r"^[!-~]{1,255}$");

    // The server keeps them: each pattern, checked with the same regex
    // semantics on both sides of its boundary.
    let batch = lab.batch("UCMSC-2026-8101").await;
    let open = |title: &str| json!({"title": title, "description": "seen at the bench", "severity": "minor"});
    for (t, ok) in [
        ("Label torn", true),
        ("  padded  ", true),
        (" ", false),
        ("tab\tinside", false),
        ("\u{85}trimmed like a space", true),
        ("\u{1c}a control", false),
        (&"x".repeat(201), false),
    ] {
        let r = app
            .post(
                &format!("/api/v1/batches/{batch}/deviations"),
                &lab.tech,
                open(t),
            )
            .await;
        assert_eq!(r.status.is_success(), ok, "{t:?}: {}", r.body);
    }
}

/// Every `$ref` of the served document names something the document holds
/// (a schema named only by a query parameter is not collected by itself).
#[actix_web::test]
async fn every_reference_in_the_document_resolves() {
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
            _ => {}
        }
    }
    let app = TestApp::spawn().await;
    let doc = app.call_empty("GET", "/api/openapi.json", None).await.body;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 50, "only {} references", found.len());
    let dangling: Vec<&str> = found
        .into_iter()
        .filter(|r| {
            let path = r.strip_prefix("#/").unwrap_or(r);
            let mut at = &doc;
            for part in path.split('/') {
                match at.get(part) {
                    Some(next) => at = next,
                    None => return true,
                }
            }
            false
        })
        .collect();
    assert!(dangling.is_empty(), "dangling references: {dangling:?}");
}

//! Every error is problem+json with a stable code (API.md "Conventions").

use crate::support::TestApp;
use actix_web::http::StatusCode;
use serde_json::json;

fn assert_problem(r: &crate::support::Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.code(), code, "{}", r.body);
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    assert_eq!(r.body["status"], status.as_u16());
    assert!(r.body["type"].as_str().unwrap().ends_with(code));
    assert!(r.body["title"].is_string() && r.body["detail"].is_string());
}

#[actix_web::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let r = app
        .raw(
            "POST",
            "/api/v1/auth/login",
            None,
            "application/json",
            b"{\"username\": ".to_vec(),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "malformed_json");
}

#[actix_web::test]
async fn a_body_over_one_mebibyte_is_413() {
    let app = TestApp::spawn().await;
    let big = format!(
        "{{\"username\":\"{}\",\"password\":\"x\"}}",
        "a".repeat(1024 * 1024 + 10)
    );
    let r = app
        .raw(
            "POST",
            "/api/v1/auth/login",
            None,
            "application/json",
            big.into_bytes(),
        )
        .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[actix_web::test]
async fn a_field_of_the_wrong_shape_is_422_naming_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "dave", "full_name": "Dave", "email": "d@lab.example",
                   "roles": ["qa", 7], "password": "a-good-long-password"}),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "roles[1]");
    let missing = app
        .call("POST", "/api/v1/auth/login", None, json!({"username": "x"}))
        .await;
    assert_problem(
        &missing,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(missing.body["errors"][0]["field"], "password");
    assert_eq!(missing.body["errors"][0]["message"], "is required");
    let unknown = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            json!({"username": "x", "password": "y", "pasword": "z"}),
        )
        .await;
    assert_problem(
        &unknown,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[actix_web::test]
async fn unknown_routes_bad_ids_and_bad_queries_are_problems() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    assert_problem(
        &app.get("/api/v1/nowhere", &admin).await,
        StatusCode::NOT_FOUND,
        "route_not_found",
    );
    assert_problem(
        &app.get("/api/v1/users/not-a-uuid", &admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    );
    // A documented path under a method it does not serve: 405 with Allow.
    for (method, path, allow) in [
        ("TRACE", "/api/v1/batches".to_owned(), "GET, POST"),
        (
            "DELETE",
            format!("/api/v1/batches/{}", uuid::Uuid::now_v7()),
            "GET",
        ),
        // The literal path wins over `/results/{id}` (GET).
        ("PUT", "/api/v1/results/review".to_owned(), "POST"),
        // Routed to `GET /results/{id}`, where `review` is no id: still 405.
        ("GET", "/api/v1/results/review".to_owned(), "POST"),
    ] {
        let r = app.call_empty(method, &path, Some(&admin)).await;
        assert_problem(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(
            r.headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
    }
    let r = app.get("/api/v1/users?limit=501", &admin).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "limit");
    let r = app.get("/api/v1/users?limit=ten", &admin).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "limit");
    let r = app.get("/api/v1/users?cursor=zzz", &admin).await;
    assert_eq!(r.body["errors"][0]["field"], "cursor");
    let r = app
        .raw(
            "POST",
            "/api/v1/auth/login",
            None,
            "text/plain",
            b"hello".to_vec(),
        )
        .await;
    assert_problem(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}

#[actix_web::test]
async fn health_and_readiness_need_no_token() {
    let app = TestApp::spawn().await;
    let h = app.call_empty("GET", "/healthz", None).await;
    assert_eq!(h.status, StatusCode::OK);
    let r = app.call_empty("GET", "/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ready");
}

#[actix_web::test]
async fn a_lost_database_is_503_not_500() {
    let app = TestApp::spawn_with(|s| s.db_pool_size = 1).await;
    let admin = app.admin_token().await;
    // Terminate every connection of this database and forbid new ones.
    let db = app
        .db_url
        .split('/')
        .nth(3)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let admin_url = app.db_url.replacen(&format!("/{db}"), "/postgres", 1);
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let mut pg = PgConnection::establish(&admin_url).unwrap();
    diesel::sql_query(format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false"))
        .execute(&mut pg)
        .unwrap();
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
    ))
    .execute(&mut pg)
    .unwrap();
    let r = app.get("/api/v1/auth/me", &admin).await;
    assert_problem(&r, StatusCode::SERVICE_UNAVAILABLE, "database_unavailable");
    assert!(
        !r.body["detail"]
            .as_str()
            .unwrap()
            .contains("ALLOW_CONNECTIONS")
    );
    let ready = app.call_empty("GET", "/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    diesel::sql_query(format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS true"))
        .execute(&mut pg)
        .unwrap();
    let back = app.get("/api/v1/auth/me", &admin).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
}

#[actix_web::test]
async fn many_requests_on_a_small_pool_all_complete_none_waits_forever() {
    // Two connections, one worker: requests that hold a connection between
    // their session check and their use case must never wait for a thread
    // that requests waiting for a connection occupy.
    let app = TestApp::spawn_with(|s| s.db_pool_size = 2).await;
    let admin = app.admin_token().await;
    let calls = (0..40).map(|i| {
        let path = if i % 2 == 0 {
            "/api/v1/auth/me"
        } else {
            "/api/v1/batches"
        };
        app.get(path, &admin)
    });
    // A stall would end in the pool's checkout timeout: a 503.
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
}

#[actix_web::test]
async fn authorization_is_decided_before_the_body_is_judged() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/batches", "/api/v1/products", "/api/v1/users"] {
        let r = app
            .raw(
                "POST",
                path,
                None,
                "application/json",
                b"{not json".to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        let r = app
            .raw("POST", path, None, "text/plain", b"x".to_vec())
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (_, auditor) = app.signed_in(&["auditor"]).await;
    let r = app
        .raw(
            "POST",
            "/api/v1/products",
            Some(&auditor),
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_nul_character_is_422_naming_the_field_never_a_500() {
    // Found by the fuzzer: PostgreSQL can't store NUL in text.
    let app = TestApp::spawn().await;
    let r = app
        .raw(
            "POST",
            "/api/v1/auth/login",
            None,
            "application/json",
            br#"{"username":"\u0000x","password":"p"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "username");
    let admin = app.admin_token().await;
    let r = app
        .raw("POST", "/api/v1/users", Some(&admin), "application/json",
             br#"{"username":"ok","full_name":"F","email":"f@lab.example","roles":["qa"],"password":"long enough \u0000 password"}"#.to_vec())
        .await;
    assert_eq!(r.body["errors"][0]["field"], "password");
    let q = app.get("/api/v1/audit?actor=%00", &admin).await;
    assert_eq!(q.status, StatusCode::FORBIDDEN, "role checks first");
    let q = app.get("/api/v1/users?cursor=%00", &admin).await;
    assert_eq!(q.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(q.body["errors"][0]["field"], "cursor");
}

/// Record-result and batch detail check the session, the temporary
/// password rule and the role in the use case's own task (one thread hop):
/// still 401 before 403 before 422, a revoked or idle session refused, a
/// temporary password writing nothing and the refusal kept.
#[actix_web::test]
async fn the_one_hop_routes_decide_the_caller_before_the_body_as_every_route_does() {
    use diesel::RunQueryDsl;
    let lab = crate::lab::Lab::msc().await;
    let app = &lab.app;
    let batch = lab.batch("UCMSC-ONE-HOP").await;
    let path = format!("/api/v1/batches/{batch}/results");
    let bad = b"{not json".to_vec();
    for token in [None, Some("not-a-token")] {
        let r = app
            .raw("POST", &path, token, "application/json", bad.clone())
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    let (_, auditor) = app.signed_in(&["auditor"]).await;
    let r = app
        .raw(
            "POST",
            &path,
            Some(&auditor),
            "application/json",
            bad.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "forbidden_role");
    let r = app
        .raw(
            "POST",
            &path,
            Some(&lab.tech),
            "application/json",
            bad.clone(),
        )
        .await;
    assert_eq!(r.code(), "malformed_json", "{}", r.body);
    let r = app
        .post(&path, &lab.tech, serde_json::json!({"test_code": "POT"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    // Any signed-in user reads the batch; nobody without a live session.
    let detail = format!("/api/v1/batches/{batch}");
    assert_eq!(app.get(&detail, &auditor).await.status, StatusCode::OK);
    let (_, gone) = app.signed_in(&["technician"]).await;
    diesel::sql_query(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' \
         WHERE id = (SELECT id FROM sessions ORDER BY created_at DESC LIMIT 1)",
    )
    .execute(&mut app.conn())
    .unwrap();
    let r = app.get(&detail, &gone).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "token_revoked");
    let r = app
        .raw("POST", &path, Some(&gone), "application/json", bad.clone())
        .await;
    assert_eq!(r.code(), "token_revoked", "before the body");

    // A temporary password reads, and records nothing; the refusal is kept.
    let (id, name) = app.user_with(&["technician"]).await;
    let admin = app.admin_token().await;
    let reset = app
        .post(
            &format!("/api/v1/users/{id}/password"),
            &admin,
            serde_json::json!({"password": crate::support::TEMPORARY_PASSWORD}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    let temporary = app.login(&name, crate::support::TEMPORARY_PASSWORD).await;
    assert_eq!(app.get(&detail, &temporary).await.status, StatusCode::OK);
    let results = lab.count("results");
    let r = app
        .post(
            &path,
            &temporary,
            serde_json::json!({"test_code": "POT", "value": "35",
                               "performed_at": chrono::Utc::now().to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "password_change_required");
    assert_eq!(lab.count("results"), results);
    let kept = app.audit_actions("auth.write_refused");
    assert_eq!(kept.last().unwrap().1.as_ref().unwrap()["path"], path);
}

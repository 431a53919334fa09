//! User management: admin only, password policy, usernames never reused.

use crate::support::{TEMPORARY_PASSWORD, TestApp, USER_PASSWORD};
use actix_web::http::StatusCode;
use cellqc::db::schema::users;
use diesel::prelude::*;
use serde_json::json;

#[actix_web::test]
async fn the_admin_creates_users_of_every_role_and_each_is_audited() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for role in ["technician", "reviewer", "qa", "auditor", "admin"] {
        let r = app
            .post(
                "/api/v1/users",
                &admin,
                json!({
                    "username": format!("new-{role}"),
                    "full_name": format!("New {role}"),
                    "email": format!("{role}@lab.example"),
                    "roles": [role],
                    "password": "a-good-long-password",
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{role}: {}", r.body);
        assert_eq!(r.body["roles"], json!([role]));
        assert_eq!(r.body["active"], true);
        app.login(&format!("new-{role}"), "a-good-long-password")
            .await;
    }
    let created = app.audit_actions("user.created");
    // the first admin (system) and the five above
    assert_eq!(created.len(), 6);
    let after = created[1].1.as_ref().unwrap();
    assert_eq!(after["username"], "new-technician");
    assert!(
        after.get("password_hash").is_none(),
        "no secret in the trail"
    );
    let list = app.get("/api/v1/users?limit=2", &admin).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    let cursor = list.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = app
        .get(&format!("/api/v1/users?limit=500&cursor={cursor}"), &admin)
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 4);
    assert!(rest.body["next_cursor"].is_null());
}

#[actix_web::test]
async fn every_admin_endpoint_is_forbidden_to_every_other_role() {
    let app = TestApp::spawn().await;
    let (target, _) = app.user_with(&["technician"]).await;
    for role in ["technician", "reviewer", "qa", "auditor"] {
        let (_, token) = app.signed_in(&[role]).await;
        let attempts = [
            app.post(
                "/api/v1/users",
                &token,
                json!({"username": "sneaky", "full_name": "S", "email": "s@lab.example",
                       "roles": ["admin"], "password": "a-good-long-password"}),
            )
            .await,
            app.get("/api/v1/users", &token).await,
            app.get(&format!("/api/v1/users/{target}"), &token).await,
            app.call(
                "PATCH",
                &format!("/api/v1/users/{target}"),
                Some(&token),
                json!({"active": false}),
            )
            .await,
            app.call_empty(
                "POST",
                &format!("/api/v1/users/{target}/unlock"),
                Some(&token),
            )
            .await,
            app.post(
                &format!("/api/v1/users/{target}/password"),
                &token,
                json!({"password": "a-good-long-password"}),
            )
            .await,
        ];
        for (i, r) in attempts.iter().enumerate() {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{role} endpoint {i}");
            assert_eq!(r.code(), "forbidden_role");
        }
    }
    let sneaky: i64 = users::table
        .filter(users::username.eq("sneaky"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(sneaky, 0);
    let active: bool = users::table
        .find(uuid::Uuid::parse_str(&target).unwrap())
        .select(users::active)
        .first(&mut app.conn())
        .unwrap();
    assert!(active);
}

#[actix_web::test]
async fn the_password_policy_names_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let base = json!({"username": "carol", "full_name": "Carol", "email": "carol@lab.example",
                      "roles": ["qa"]});
    for (password, why) in [
        ("elevenchars", "too short"),
        ("x".repeat(129).as_str(), "too long"),
        ("my-name-is-carol!", "contains the username"),
    ] {
        let mut body = base.clone();
        body["password"] = json!(password);
        let r = app.post("/api/v1/users", &admin, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        assert_eq!(r.body["errors"][0]["field"], "password", "{why}");
    }
    let bad = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "x y", "full_name": " ", "email": "nope", "roles": ["qp"],
                   "password": "a-good-long-password"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = bad.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["username", "full_name", "email", "roles"]);
    let count: i64 = users::table.count().get_result(&mut app.conn()).unwrap();
    assert_eq!(count, 1, "nothing was created");
}

#[actix_web::test]
async fn usernames_are_never_reused_even_after_deactivation() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, username) = app.user_with(&["technician"]).await;
    app.call(
        "PATCH",
        &format!("/api/v1/users/{id}"),
        Some(&admin),
        json!({"active": false}),
    )
    .await;
    let again = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": username.to_uppercase(), "full_name": "Someone Else",
                   "email": "else@lab.example", "roles": ["qa"], "password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "username_taken");
    // The database itself refuses deleting a user (which would free the name).
    let deleted =
        diesel::delete(users::table.filter(users::username.eq(&username))).execute(&mut app.conn());
    assert!(deleted.is_err());
    let renamed = diesel::update(users::table.filter(users::username.eq(&username)))
        .set(users::username.eq("recycled"))
        .execute(&mut app.conn());
    assert!(renamed.is_err());
}

#[actix_web::test]
async fn a_patch_records_before_and_after_and_the_last_admin_stays() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, _) = app.user_with(&["technician"]).await;
    let r = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            json!({"roles": ["technician", "reviewer"], "full_name": "Renamed Person"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["roles"], json!(["technician", "reviewer"]));
    let updated = app.audit_actions("user.updated");
    assert_eq!(updated.len(), 1);
    // The entry holds what changed, not the whole account: the earlier
    // values of the two fields, their new values and the account's id.
    let (before, after): (Option<serde_json::Value>, Option<serde_json::Value>) = {
        use cellqc::db::schema::audit_entries::dsl as a;
        use diesel::prelude::*;
        a::audit_entries
            .filter(a::action.eq("user.updated"))
            .select((a::before, a::after))
            .first(&mut app.conn())
            .unwrap()
    };
    let before = before.unwrap();
    assert_eq!(before["roles"], json!(["technician"]));
    assert_eq!(
        before.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["full_name", "id", "roles"]
    );
    assert_eq!(
        after,
        Some(json!({"id": id, "full_name": "Renamed Person", "roles": ["technician", "reviewer"]}))
    );

    let me = app.get("/api/v1/auth/me", &admin).await;
    let admin_id = me.body["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{admin_id}"),
            Some(&admin),
            json!({"roles": ["qa"]}),
        )
        .await;
    // API v1.1: nobody changes their own roles or active flag (before the
    // last-admin rule is even asked).
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "own_account");
    let unknown = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{}", uuid::Uuid::now_v7()),
            Some(&admin),
            json!({"active": false}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn creating_a_user_is_idempotent_with_a_key() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let body = json!({"username": "idem", "full_name": "I D", "email": "i@lab.example",
                      "roles": ["qa"], "password": "a-good-long-password"});
    let bytes = serde_json::to_vec(&body).unwrap();
    let send = |b: Vec<u8>| {
        let client = awc::Client::default();
        let url = format!("{}/api/v1/users", app.address);
        let token = admin.clone();
        async move {
            let mut r = client
                .post(url)
                .insert_header(("Authorization", format!("Bearer {token}")))
                .insert_header(("Content-Type", "application/json"))
                .insert_header(("Idempotency-Key", "create-idem-1"))
                .send_body(b)
                .await
                .unwrap();
            (r.status(), r.body().await.unwrap())
        }
    };
    let (s1, b1) = send(bytes.clone()).await;
    let (s2, b2) = send(bytes).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(b1, b2);
    let count: i64 = users::table
        .filter(users::username.eq("idem"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(count, 1);
}

#[actix_web::test]
async fn an_admin_is_independent_of_the_record_and_never_changes_their_own_account() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let users_before = {
        let r = app.get("/api/v1/users", &admin).await;
        r.body["items"].as_array().unwrap().len()
    };
    for other in ["technician", "reviewer", "qa"] {
        let r = app
            .post(
                "/api/v1/users",
                &admin,
                json!({"username": format!("mixed{other}"), "full_name": "Mixed Roles", "email": "m@lab.example",
                       "roles": ["admin", other], "password": "a-long-enough-password"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.code(), "role_conflict");
        assert_eq!(r.body["errors"][0]["field"], "roles");
    }
    let after = app.get("/api/v1/users", &admin).await;
    assert_eq!(
        after.body["items"].as_array().unwrap().len(),
        users_before,
        "nothing created"
    );
    let (tech_id, _) = app.user_with(&["technician"]).await;
    let r = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{tech_id}"),
            Some(&admin),
            json!({"roles": ["technician", "admin"]}),
        )
        .await;
    assert_eq!(r.code(), "role_conflict");
    // An admin with auditor is allowed: auditors write nothing.
    let r = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{tech_id}"),
            Some(&admin),
            json!({"roles": ["auditor"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let me = app.get("/api/v1/auth/me", &admin).await;
    let my_id = me.body["id"].as_str().unwrap().to_owned();
    for body in [json!({"roles": ["admin", "qa"]}), json!({"active": false})] {
        let r = app
            .call(
                "PATCH",
                &format!("/api/v1/users/{my_id}"),
                Some(&admin),
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert_eq!(r.code(), "own_account");
    }
    let renamed = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{my_id}"),
            Some(&admin),
            json!({"full_name": "Site Administrator"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "one's own name may change");
    let me = app.get("/api/v1/auth/me", &admin).await;
    assert_eq!(me.body["roles"], json!(["admin"]));
}

#[actix_web::test]
async fn a_password_set_by_an_admin_signs_nothing_until_its_holder_changes_it() {
    use crate::lab::Lab;
    use crate::support::TEMPORARY_PASSWORD;
    use cellqc::db::schema::{email_outbox, signatures};
    let lab = Lab::msc().await;
    let app = &lab.app;
    let admin = app.admin_token().await;
    let batch = lab.batch("TMP-PW-1").await;
    let result = lab.recorded(&batch, "VIAB", json!("92.0")).await;
    let review = |token: String| {
        let path = format!("/api/v1/results/{result}/review");
        async move {
            app.post(
                &path,
                &token,
                json!({"decision": "accept", "password": USER_PASSWORD}),
            )
            .await
        }
    };

    // The admin resets the lab reviewer's password: their session ends, the
    // reset is audited without the secret and the reviewer is emailed.
    let r = app
        .post(
            &format!("/api/v1/users/{}/password", lab.reviewer_id),
            &admin,
            json!({"password": TEMPORARY_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["password_change_required"], true);
    let gone = app.get("/api/v1/auth/me", &lab.reviewer).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
    assert_eq!(gone.code(), "token_revoked");
    let resets = app.audit_actions("user.password_reset");
    assert_eq!(resets.len(), 1);
    assert_eq!(
        resets[0].0.map(|u| u.to_string()),
        Some(lab.reviewer_id.clone())
    );
    let after = resets[0].1.clone().unwrap();
    assert_eq!(after["password_temporary"], true);
    assert!(!after.to_string().contains(TEMPORARY_PASSWORD));
    let mails: Vec<(String, Vec<String>, String)> = email_outbox::table
        .filter(email_outbox::kind.eq("password_reset"))
        .select((
            email_outbox::kind,
            email_outbox::recipients,
            email_outbox::body,
        ))
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(mails.len(), 1);
    let me = app
        .get(&format!("/api/v1/users/{}", lab.reviewer_id), &admin)
        .await;
    assert_eq!(
        mails[0].1,
        vec![me.body["email"].as_str().unwrap().to_owned()]
    );
    assert!(
        !mails[0].2.contains(TEMPORARY_PASSWORD),
        "never the password itself"
    );

    // With the temporary password they sign in and read, and sign nothing.
    let username = me.body["username"].as_str().unwrap().to_owned();
    let first = app.try_login(&username, TEMPORARY_PASSWORD).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["password_change_required"], true);
    let token = first.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get(&format!("/api/v1/batches/{batch}"), &token)
            .await
            .status,
        StatusCode::OK
    );
    let refused = app
        .post(
            &format!("/api/v1/results/{result}/review"),
            &token,
            json!({"decision": "accept", "password": TEMPORARY_PASSWORD}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.code(), "password_change_required");
    let signed: i64 = signatures::table
        .count()
        .filter(signatures::meaning.eq("reviewed"))
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(signed, 0, "nothing was signed");
    let refusals = app.audit_actions("auth.write_refused");
    assert_eq!(refusals.len(), 1, "the refusal is kept");
    assert_eq!(
        refusals[0].1.as_ref().unwrap()["path"],
        format!("/api/v1/results/{result}/review")
    );

    // Their own password, then they sign.
    let changed = app
        .post(
            "/api/v1/auth/password",
            &token,
            json!({"current_password": TEMPORARY_PASSWORD, "new_password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    let again = app.try_login(&username, USER_PASSWORD).await;
    assert_eq!(again.body["password_change_required"], false);
    let ok = review(again.body["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    // Nobody resets their own password this way; only admins reset; the
    // policy names the field.
    let admin_id = app.get("/api/v1/auth/me", &admin).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let own = app
        .post(
            &format!("/api/v1/users/{admin_id}/password"),
            &admin,
            json!({"password": TEMPORARY_PASSWORD}),
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    assert_eq!(own.code(), "own_account");
    let by_qa = app
        .post(
            &format!("/api/v1/users/{}/password", lab.tech_id),
            &lab.qa,
            json!({"password": TEMPORARY_PASSWORD}),
        )
        .await;
    assert_eq!(by_qa.status, StatusCode::FORBIDDEN);
    assert_eq!(by_qa.code(), "forbidden_role");
    let short = app
        .post(
            &format!("/api/v1/users/{}/password", lab.tech_id),
            &admin,
            json!({"password": "short"}),
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(short.body["errors"][0]["field"], "password");
    assert_eq!(
        app.get("/api/v1/auth/me", &lab.tech).await.status,
        StatusCode::OK,
        "a refused reset ends nothing"
    );
}

#[actix_web::test]
async fn a_temporary_password_reads_signs_out_and_changes_itself_and_writes_nothing_else() {
    let lab = crate::lab::Lab::msc().await;
    let app = &lab.app;
    let batch = lab.batch("TEMP-1").await;
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "tess", "full_name": "Tess Temporary", "email": "tess@lab.example",
                   "roles": ["technician", "qa"], "password": TEMPORARY_PASSWORD}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = app.login("tess", TEMPORARY_PASSWORD).await;
    let instrument = lab.instrument_for("VIAB").unwrap().to_owned();
    let before = lab.count("batches");
    // Reads.
    for path in [
        "/api/v1/batches".to_owned(),
        format!("/api/v1/batches/{batch}"),
        "/api/v1/auth/me".to_owned(),
    ] {
        assert_eq!(
            app.get(&path, &token).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    // Writes, every one refused the same way, and kept.
    let writes = [
        (
            "/api/v1/batches".to_owned(),
            json!({"batch_number": "TEMP-2", "product_id": lab.product_id,
                   "manufactured_at": crate::lab::days_ago(1), "expires_at": crate::lab::days_ago(-30)}),
        ),
        (
            format!("/api/v1/batches/{batch}/results"),
            lab.result_body(json!({"test_code": "VIAB", "value": "91.0"})),
        ),
        (
            format!("/api/v1/batches/{batch}/custody"),
            json!({"event": "received", "occurred_at": crate::lab::days_ago(0),
                   "location": "QC lab", "party": "Tess"}),
        ),
        (
            format!("/api/v1/instruments/{instrument}/out-of-service"),
            json!({"reason": "dropped"}),
        ),
        ("/api/v1/auth/locale".to_owned(), json!({"locale": "zh-CN"})),
    ];
    for (path, body) in &writes {
        let r = app.post(path, &token, body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
        assert_eq!(r.code(), "password_change_required", "{path}");
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("choose your own")
        );
    }
    assert_eq!(lab.count("batches"), before);
    assert_eq!(lab.count("results"), 0);
    assert_eq!(lab.count("custody_events"), 0);
    let kept = app.audit_actions("auth.write_refused");
    assert_eq!(kept.len(), writes.len(), "each refusal is kept");
    let instrument_page = app
        .get(&format!("/api/v1/instruments/{instrument}"), &token)
        .await;
    assert_eq!(instrument_page.body["status"], "in_service");
    // Its own password, then it writes.
    let changed = app
        .post(
            "/api/v1/auth/password",
            &token,
            json!({"current_password": TEMPORARY_PASSWORD, "new_password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    let r = app.post(&writes[0].0, &token, writes[0].1.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // And signs out, as anyone.
    assert_eq!(
        app.call_empty("POST", "/api/v1/auth/logout", Some(&token))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

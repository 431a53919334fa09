//! Sign-in, lockout, sessions and tokens (21 CFR 11.10(g), 11.300).

use crate::support::{ADMIN_PASSWORD, JWT_SECRET, Resp, TestApp, USER_PASSWORD};
use actix_web::http::StatusCode;
use cellqc::db::schema::{email_outbox, sessions, users};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

#[actix_web::test]
async fn login_returns_a_bearer_token_and_the_user() {
    let app = TestApp::spawn().await;
    let r = app.try_login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 480 * 60);
    assert_eq!(r.body["user"]["username"], "admin");
    assert_eq!(r.body["user"]["roles"], json!(["admin"]));
    let token = r.body["access_token"].as_str().unwrap();
    let me = app.get("/api/v1/auth/me", token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "admin");
    assert!(me.body.get("password_hash").is_none());
    let logins = app.audit_actions("auth.login");
    assert_eq!(logins.len(), 1);
    let live: i64 = sessions::table
        .filter(sessions::revoked_at.is_null())
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(live, 1);
}

#[actix_web::test]
async fn wrong_password_and_unknown_user_are_the_same_401_and_both_audited() {
    let app = TestApp::spawn().await;
    let wrong = app.try_login("admin", "not-the-password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "invalid_credentials");
    let unknown = app.try_login("nobody", "not-the-password").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.code(), "invalid_credentials");
    assert_eq!(wrong.body["detail"], unknown.body["detail"]);
    let failed = app.audit_actions("auth.login_failed");
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0].1.as_ref().unwrap()["cause"], "wrong_password");
    assert_eq!(failed[1].1.as_ref().unwrap()["username"], "nobody");
    assert_eq!(failed[1].1.as_ref().unwrap()["cause"], "unknown_user");
    assert_eq!(failed[1].1.as_ref().unwrap()["address"], "127.0.0.1");
    // Guesses at sign-in are not counted against the account.
    let (count, until): (i32, Option<chrono::DateTime<Utc>>) = users::table
        .filter(users::username.eq("admin"))
        .select((users::failed_logins, users::locked_until))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!((count, until), (0, None));
}

/// Signs in as `username` through a trusted load balancer that saw `client`.
async fn login_from(app: &TestApp, client: &str, username: &str, password: &str) -> Resp {
    let req = app
        .request("POST", "/api/v1/auth/login", None)
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("X-Forwarded-For", client.to_owned()));
    let body = serde_json::to_vec(&json!({"username": username, "password": password})).unwrap();
    app.send(req, Some(body)).await
}

#[actix_web::test]
async fn five_failed_sign_ins_hold_that_address_off_that_account_and_never_lock_it() {
    let app = TestApp::spawn_with(|s| s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let (second_admin, _) = app.user_with(&["admin"]).await;
    let (_, victim) = app.user_with(&["technician"]).await;
    let guesser = "198.51.100.7";
    for i in 1..=5 {
        let r = login_from(&app, guesser, &victim, "wrong-password-xx").await;
        assert_eq!(r.code(), "invalid_credentials", "attempt {i}");
    }
    // Held off: even the right password from that address waits.
    let held = login_from(&app, guesser, &victim, USER_PASSWORD).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS, "{}", held.body);
    assert_eq!(held.code(), "sign_in_held_off");
    let wait: u64 = held
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((55..=60).contains(&wait), "a minute first: {wait}");
    // The account is not locked: its holder signs in from the bench.
    let bench = login_from(&app, "192.0.2.10", &victim, USER_PASSWORD).await;
    assert_eq!(bench.status, StatusCode::OK, "{}", bench.body);
    let (count, until): (i32, Option<chrono::DateTime<Utc>>) = users::table
        .filter(users::username.eq(&victim))
        .select((users::failed_logins, users::locked_until))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!((count, until), (0, None));

    // A name that is nobody's is held off the same way: the answers tell
    // nothing of who exists.
    for _ in 1..=5 {
        let r = login_from(&app, guesser, "nobody-here", "wrong-password-xx").await;
        assert_eq!(r.code(), "invalid_credentials");
    }
    let unknown = login_from(&app, guesser, "nobody-here", "wrong-password-xx").await;
    assert_eq!(unknown.status, held.status);
    assert_eq!(unknown.code(), held.code());
    assert_eq!(unknown.body["detail"], held.body["detail"]);
    assert!(unknown.headers.get("retry-after").is_some());

    // Reported at once to every active admin (21 CFR 11.300(d)), once a hold.
    let holds = app.audit_actions("auth.sign_in_held_off");
    assert_eq!(holds.len(), 2);
    assert_eq!(holds[0].1.as_ref().unwrap()["address"], guesser);
    assert_eq!(holds[0].1.as_ref().unwrap()["username"], victim.as_str());
    let mails: Vec<(String, Vec<String>, String, bool)> = email_outbox::table
        .select((
            email_outbox::kind,
            email_outbox::recipients,
            email_outbox::subject,
            email_outbox::urgent,
        ))
        .load(&mut app.conn())
        .unwrap();
    let held_mails: Vec<_> = mails.iter().filter(|m| m.0 == "sign_in_held_off").collect();
    assert_eq!(held_mails.len(), 2);
    assert!(held_mails[0].3, "urgent");
    assert!(held_mails[0].2.contains(&victim) && held_mails[0].2.contains(guesser));
    let mut recipients = held_mails[0].1.clone();
    recipients.sort();
    let second_admin_email: String = users::table
        .find(Uuid::parse_str(&second_admin).unwrap())
        .select(users::email)
        .first(&mut app.conn())
        .unwrap();
    let mut expected = vec!["admin@localhost".to_owned(), second_admin_email];
    expected.sort();
    assert_eq!(recipients, expected);

    // Each failure past the hold doubles it.
    diesel::sql_query(
        "UPDATE sign_in_throttle SET blocked_until = now() - interval '1 second', \
                last_failure_at = now() - interval '70 seconds'",
    )
    .execute(&mut app.conn())
    .unwrap();
    let again = login_from(&app, guesser, &victim, "wrong-password-xx").await;
    assert_eq!(again.code(), "invalid_credentials");
    let held = login_from(&app, guesser, &victim, USER_PASSWORD).await;
    let wait: u64 = held
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((115..=120).contains(&wait), "doubled: {wait}");
    // An admin's unlock lets the address try again.
    let admin = app.admin_token().await;
    let victim_id = app
        .get("/api/v1/auth/me", &app.login(&victim, USER_PASSWORD).await)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call_empty(
            "POST",
            &format!("/api/v1/users/{victim_id}/unlock"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        login_from(&app, guesser, &victim, USER_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
}

/// Locks `username`'s account the way that still locks it: wrong passwords
/// through a session of theirs (here, changing the password).
async fn lock_by_guesses_at_signing(app: &TestApp, username: &str) -> String {
    let token = app.login(username, USER_PASSWORD).await;
    for _ in 0..5 {
        let r = app
            .post(
                "/api/v1/auth/password",
                &token,
                json!({"current_password": "wrong-password-xx", "new_password": "a-brand-new-password"}),
            )
            .await;
        assert!(r.status.is_client_error());
    }
    token
}

#[actix_web::test]
async fn an_account_locked_by_guesses_at_signing_says_so_only_to_its_right_password() {
    let app = TestApp::spawn().await;
    let (_, victim) = app.user_with(&["qa"]).await;
    let token = lock_by_guesses_at_signing(&app, &victim).await;
    assert_eq!(app.audit_actions("auth.account_locked").len(), 1);
    // The session the guesses came through is ended.
    assert_eq!(
        app.get("/api/v1/auth/me", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let sessions_of = |app: &TestApp| -> i64 {
        sessions::table
            .inner_join(users::table)
            .filter(users::username.eq(&victim))
            .filter(sessions::revoked_at.is_null())
            .count()
            .get_result(&mut app.conn())
            .unwrap()
    };
    let right = app.try_login(&victim, USER_PASSWORD).await;
    assert_eq!(right.status, StatusCode::UNAUTHORIZED);
    assert_eq!(right.code(), "account_locked");
    assert_eq!(app.audit_actions("auth.refused_locked").len(), 1);
    assert_eq!(sessions_of(&app), 0, "no session for the locked account");
    // A wrong password is answered as for anyone else.
    let wrong = app.try_login(&victim, "another-wrong-one").await;
    assert_eq!(wrong.code(), "invalid_credentials");
}

#[actix_web::test]
async fn the_lock_lapses_after_its_duration() {
    let app = TestApp::spawn().await;
    let (_, victim) = app.user_with(&["technician"]).await;
    lock_by_guesses_at_signing(&app, &victim).await;
    assert_eq!(
        app.try_login(&victim, USER_PASSWORD).await.code(),
        "account_locked"
    );
    // Fifteen minutes pass.
    diesel::update(users::table.filter(users::username.eq(&victim)))
        .set(users::locked_until.eq(Utc::now() - Duration::seconds(1)))
        .execute(&mut app.conn())
        .unwrap();
    app.login(&victim, USER_PASSWORD).await;
}

#[actix_web::test]
async fn admin_unlock_lets_a_locked_user_sign_in_and_is_audited() {
    let app = TestApp::spawn().await;
    let (victim_id, victim) = app.user_with(&["reviewer"]).await;
    lock_by_guesses_at_signing(&app, &victim).await;
    let admin = app.admin_token().await;
    let r = app
        .call_empty(
            "POST",
            &format!("/api/v1/users/{victim_id}/unlock"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.login(&victim, USER_PASSWORD).await;
    let unlocked = app.audit_actions("user.unlocked");
    assert_eq!(unlocked.len(), 1);
    assert_eq!(unlocked[0].0.unwrap().to_string(), victim_id);
}

#[actix_web::test]
async fn a_token_is_refused_after_logout() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let r = app
        .call_empty("POST", "/api/v1/auth/logout", Some(&token))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let after = app.get("/api/v1/auth/me", &token).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.code(), "token_revoked");
    assert_eq!(app.audit_actions("auth.logout").len(), 1);
}

#[actix_web::test]
async fn deactivation_revokes_the_users_tokens_at_once() {
    let app = TestApp::spawn().await;
    let (id, token) = app.signed_in(&["technician"]).await;
    assert_eq!(
        app.get("/api/v1/auth/me", &token).await.status,
        StatusCode::OK
    );
    let admin = app.admin_token().await;
    let r = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            json!({"active": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["active"], false);
    let after = app.get("/api/v1/auth/me", &token).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let (reason,): (Option<String>,) = sessions::table
        .filter(sessions::user_id.eq(Uuid::parse_str(&id).unwrap()))
        .select((sessions::revoked_reason,))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(reason.as_deref(), Some("deactivated"));
    assert_eq!(app.audit_actions("user.deactivated").len(), 1);
    assert_eq!(app.audit_actions("auth.sessions_revoked").len(), 1);
}

#[actix_web::test]
async fn an_idle_session_times_out_and_is_revoked() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    diesel::update(sessions::table)
        .set(sessions::last_seen_at.eq(Utc::now() - Duration::minutes(31)))
        .execute(&mut app.conn())
        .unwrap();
    let r = app.get("/api/v1/auth/me", &token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "session_timed_out");
    let reason: Option<String> = sessions::table
        .select(sessions::revoked_reason)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(reason.as_deref(), Some("idle_timeout"));
    assert_eq!(app.audit_actions("auth.session_timed_out").len(), 1);
}

fn forge(secret: &[u8], alg: jsonwebtoken::Algorithm, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[actix_web::test]
async fn forged_none_and_expired_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let claims = claims_of(&token);

    let forged = forge(
        b"another-secret-another-secret-0123456",
        jsonwebtoken::Algorithm::HS256,
        &claims,
    );
    let r = app.get("/api/v1/auth/me", &forged).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "forged signature");

    // `alg: none`: header {"alg":"none"}, the real claims, no signature.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(serde_json::to_vec(&claims).unwrap())
    );
    let r = app.get("/api/v1/auth/me", &none).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "alg none");

    let hs512 = forge(
        JWT_SECRET.as_bytes(),
        jsonwebtoken::Algorithm::HS512,
        &claims,
    );
    assert_eq!(
        app.get("/api/v1/auth/me", &hs512).await.status,
        StatusCode::UNAUTHORIZED,
        "other alg"
    );

    let mut old = claims.clone();
    old["iat"] = json!(Utc::now().timestamp() - 7200);
    old["exp"] = json!(Utc::now().timestamp() - 3600);
    let expired = forge(JWT_SECRET.as_bytes(), jsonwebtoken::Algorithm::HS256, &old);
    let r = app.get("/api/v1/auth/me", &expired).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "expired");
    assert_eq!(r.code(), "invalid_token");

    assert_eq!(
        app.call_empty("GET", "/api/v1/auth/me", None).await.code(),
        "missing_token"
    );
    // The genuine token still works: the refusals were about the tokens.
    assert_eq!(
        app.get("/api/v1/auth/me", &token).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn sign_in_is_rate_limited_per_client_address() {
    let app = TestApp::spawn_with(|s| s.login_rate_per_minute = 3).await;
    for _ in 0..3 {
        let r = app.try_login("nobody", "whatever-password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.try_login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "rate_limited");
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
}

#[actix_web::test]
async fn behind_a_trusted_load_balancer_the_sign_in_limit_counts_the_forwarded_client() {
    let app = TestApp::spawn_with(|s| {
        s.login_rate_per_minute = 2;
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let attempt = |client: &'static str| {
        let req = app
            .request("POST", "/api/v1/auth/login", None)
            .insert_header(("Content-Type", "application/json"))
            // A client's own X-Forwarded-For comes first; the balancer adds
            // the address it saw last.
            .insert_header(("X-Forwarded-For", format!("10.9.9.9, {client}")));
        let body = br#"{"username":"nobody","password":"whatever-password"}"#.to_vec();
        app.send(req, Some(body))
    };
    for _ in 0..2 {
        assert_eq!(attempt("192.0.2.1").await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        attempt("192.0.2.1").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same balancer has its own allowance, even
    // though it claims the first one's address first.
    assert_eq!(attempt("192.0.2.2").await.status, StatusCode::UNAUTHORIZED);

    // A peer that is not trusted is counted by its own address, whatever
    // X-Forwarded-For it sends.
    let direct = TestApp::spawn_with(|s| s.login_rate_per_minute = 2).await;
    let attempt = |client: &'static str| {
        let req = direct
            .request("POST", "/api/v1/auth/login", None)
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("X-Forwarded-For", client));
        let body = br#"{"username":"nobody","password":"whatever-password"}"#.to_vec();
        direct.send(req, Some(body))
    };
    assert_eq!(attempt("192.0.2.1").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("192.0.2.2").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        attempt("192.0.2.3").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[actix_web::test]
async fn password_change_needs_the_current_password_and_revokes_other_sessions() {
    let app = TestApp::spawn().await;
    let (_, username) = app.user_with(&["technician"]).await;
    let first = app.login(&username, USER_PASSWORD).await;
    let second = app.login(&username, USER_PASSWORD).await;

    let wrong = app
        .post(
            "/api/v1/auth/password",
            &first,
            json!({"current_password": "nope-nope-nope", "new_password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "invalid_credentials");

    let weak = app
        .post(
            "/api/v1/auth/password",
            &first,
            json!({"current_password": USER_PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak.body["errors"][0]["field"], "new_password");

    let ok = app
        .post(
            "/api/v1/auth/password",
            &first,
            json!({"current_password": USER_PASSWORD, "new_password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.body);
    assert_eq!(
        app.get("/api/v1/auth/me", &first).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/auth/me", &second).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.try_login(&username, USER_PASSWORD).await.code(),
        "invalid_credentials"
    );
    app.login(&username, "a-brand-new-password").await;
    let changes = app.audit_actions("auth.password_changed");
    // The first change replaced the admin's temporary password.
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].1.as_ref().unwrap()["was_temporary"], true);
    assert_eq!(changes[1].1.as_ref().unwrap()["was_temporary"], false);
}

#[actix_web::test]
async fn guesses_at_sign_in_lock_nothing_and_leave_the_live_sessions() {
    let app = TestApp::spawn().await;
    let (_, victim) = app.user_with(&["technician"]).await;
    let token = app.login(&victim, USER_PASSWORD).await;
    for _ in 0..5 {
        app.try_login(&victim, "wrong-password-xx").await;
    }
    assert_eq!(
        app.try_login(&victim, USER_PASSWORD).await.code(),
        "sign_in_held_off",
        "this address waits"
    );
    assert_eq!(app.audit_actions("auth.account_locked").len(), 0);
    // The person at the bench keeps working.
    assert_eq!(
        app.get("/api/v1/auth/me", &token).await.status,
        StatusCode::OK
    );
    assert_eq!(app.audit_actions("auth.sessions_revoked").len(), 0);
}

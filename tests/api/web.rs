//! The web interface over HTTP: sign-in with cookies and CSRF, security
//! headers, pages showing what the record says.

use crate::lab::{Lab, uncontrolled};
use crate::support::{ADMIN_PASSWORD, TestApp, USER_PASSWORD};
use actix_web::http::StatusCode;
use serde_json::json;

/// A browser: keeps cookies between requests.
pub struct Browser<'a> {
    app: &'a TestApp,
    cookies: std::collections::BTreeMap<String, String>,
    client: awc::Client,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: String,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            cookies: Default::default(),
            client: awc::Client::builder().disable_redirects().finish(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&mut self, headers: &actix_web::http::header::HeaderMap) {
        for v in headers.get_all("set-cookie") {
            let c = actix_web::cookie::Cookie::parse(v.to_str().unwrap().to_owned()).unwrap();
            if c.value().is_empty() {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_owned(), c.value().to_owned());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let (status, headers, bytes) = self.get_raw(path).await;
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// The bytes of a download (a PDF), with its status.
    pub async fn get_bytes(&mut self, path: &str) -> (StatusCode, Vec<u8>) {
        let (status, _, bytes) = self.get_raw(path).await;
        (status, bytes)
    }

    async fn get_raw(
        &mut self,
        path: &str,
    ) -> (StatusCode, actix_web::http::header::HeaderMap, Vec<u8>) {
        let mut res = self
            .client
            .get(format!("{}{path}", self.app.address))
            .insert_header(("Cookie", self.cookie_header()))
            .send()
            .await
            .unwrap();
        self.remember(res.headers());
        let bytes = res.body().limit(10 << 20).await.unwrap().to_vec();
        (res.status(), res.headers().clone(), bytes)
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut res = self
            .client
            .post(format!("{}{path}", self.app.address))
            .insert_header(("Cookie", self.cookie_header()))
            .send_form(&form)
            .await
            .unwrap();
        self.remember(res.headers());
        let body = String::from_utf8_lossy(&res.body().await.unwrap()).into_owned();
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body,
        }
    }

    /// Posts a form whose fields may repeat (checkboxes).
    pub async fn post_pairs(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut res = self
            .client
            .post(format!("{}{path}", self.app.address))
            .insert_header(("Cookie", self.cookie_header()))
            .content_type("application/x-www-form-urlencoded")
            .send_body(body)
            .await
            .unwrap();
        self.remember(res.headers());
        let body = String::from_utf8_lossy(&res.body().await.unwrap()).into_owned();
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body,
        }
    }

    /// Posts a `multipart/form-data` form, as a browser sends a file upload.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, &[u8])>,
    ) -> Page {
        let boundary = "----cellqc-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        if let Some((name, filename, bytes)) = file {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let mut res = self
            .client
            .post(format!("{}{path}", self.app.address))
            .insert_header(("Cookie", self.cookie_header()))
            .content_type(format!("multipart/form-data; boundary={boundary}"))
            .send_body(body)
            .await
            .unwrap();
        self.remember(res.headers());
        let body = String::from_utf8_lossy(&res.body().limit(10 << 20).await.unwrap()).into_owned();
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body,
        }
    }

    /// The value of the hidden field `name` of the page.
    pub fn hidden(page: &Page, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let at = page
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("a {name} field"));
        let rest = &page.body[at + marker.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// Sets a cookie as the page's script would.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    /// The value of the hidden `csrf` field of the page.
    pub fn csrf(page: &Page) -> String {
        let at = page
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field");
        let rest = &page.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// A browser signed in as the lab's technician.
    pub async fn as_tech(lab: &'a Lab) -> Browser<'a> {
        Self::signed_in_as(lab, &lab.tech).await
    }

    /// A browser signed in as the user whose token is `token`.
    pub async fn signed_in_as(lab: &'a Lab, token: &str) -> Browser<'a> {
        let me = lab.app.get("/api/v1/auth/me", token).await;
        let mut b = Browser::new(&lab.app);
        b.sign_in(me.body["username"].as_str().unwrap(), USER_PASSWORD)
            .await;
        b
    }

    pub async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let token = Self::csrf(&form);
        self.post(
            "/login",
            &[
                ("csrf", &token),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }
}

#[actix_web::test]
async fn pages_need_a_session_and_carry_security_headers() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let r = b.get("/batches").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers.get("location").unwrap(), "/login?next=%2Fbatches");
    let login = b.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    let csp = login
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(login.headers.get("referrer-policy").unwrap(), "same-origin");
    assert!(
        login.body.contains("<label>Username<input"),
        "every input has a label"
    );
    assert!(!login.body.contains("<script>"), "no inline script");
    // The icon every browser asks for: nothing, and no error.
    let icon = b.get("/favicon.ico").await;
    assert_eq!(icon.status, StatusCode::NO_CONTENT);
}

#[actix_web::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_sign_out_revokes_it() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let r = b.sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let set = r
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        set.contains("cellqc_session=")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict"),
        "{set}"
    );
    let list = b.get("/batches").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body
            .contains(r#"title="Signed in as admin: change your password">Administrator</a>"#),
        "who is signed in, in the header: {}",
        list.body
    );
    let token = Browser::csrf(&list);
    // A form without the right token is refused.
    let forged = b.post("/logout", &[("csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("reload the page"));
    let out = b.post("/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/batches").await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.audit_actions("auth.logout").len(), 1);
}

#[actix_web::test]
async fn a_wrong_password_and_held_off_sign_ins_are_explained_on_the_form() {
    let app = TestApp::spawn().await;
    let (_, user) = app.user_with(&["technician"]).await;
    let mut b = Browser::new(&app);
    let wrong = b.sign_in(&user, "not-the-password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong username or password."));
    for _ in 0..4 {
        b.sign_in(&user, "not-the-password").await;
    }
    let held = b.sign_in(&user, USER_PASSWORD).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        held.body
            .contains("Too many failed sign-ins for this account from this address"),
        "{}",
        held.body
    );
    assert!(held.headers.get("retry-after").is_some());
    let no_csrf = b
        .post(
            "/login",
            &[
                ("csrf", "x"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn the_batch_page_shows_limits_results_and_every_blocker_in_words() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("UCMSC-WEB-1", &["STER"]).await;
    lab.app
        .post(
            &format!("/api/v1/batches/{b}/deviations"),
            &lab.tech,
            json!({"title": "Door alarm", "description": "d"}),
        )
        .await;
    let mut br = Browser::new(&lab.app);
    br.sign_in("admin", ADMIN_PASSWORD).await;
    let list = br.get("/batches?q=ucmsc-web").await;
    assert!(list.body.contains("UCMSC-WEB-1"));
    let page = br.get(&format!("/batches/{b}")).await;
    assert_eq!(page.status, StatusCode::OK);
    for needle in [
        "Batch UCMSC-WEB-1",
        "Results still to record (1)",
        "☐ STER",
        "A deviation is still open",
        "&gt;= 95 %",
        "98.2",
        "PASS",
        "Door alarm",
    ] {
        assert!(page.body.contains(needle), "missing {needle}");
    }
    assert!(
        page.body.contains("<time datetime="),
        "times carry their UTC value"
    );
    let ghost = br.get(&format!("/batches/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND);
    assert!(ghost.body.contains("no batch"));
}

#[actix_web::test]
async fn technician_reviewer_qa_and_auditor_walk_the_forms() {
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-WEB-2").await;
    let (tech_id, tech_name) = lab.app.user_with(&["technician"]).await;
    lab.qualify_all(&tech_id).await;
    let (_, reviewer_name) = lab.app.user_with(&["reviewer"]).await;
    let (_, both_name) = lab.app.user_with(&["technician", "reviewer"]).await;
    let (_, qa_name) = lab.app.user_with(&["qa"]).await;
    let (_, auditor_name) = lab.app.user_with(&["auditor"]).await;
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M").to_string();

    // The technician records the whole MSC panel through the form.
    let mut tech = Browser::new(&lab.app);
    tech.sign_in(&tech_name, USER_PASSWORD).await;
    for (code, value) in cellqc::demo::msc_passing_values() {
        let form = tech.get(&format!("/batches/{batch}/results/new")).await;
        assert!(
            form.body.contains("limit &gt;= 95 %"),
            "the picker shows limits"
        );
        let token = Browser::csrf(&form);
        let v = value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        let mut fields = vec![
            ("csrf", token.as_str()),
            ("test_code", code),
            ("value", &v),
            ("performed_at", &now),
        ];
        if let Some(i) = lab.instrument_for(code) {
            // The form offers the lab's calibrated cytometer.
            assert!(form.body.contains(i), "{code}: the instrument is offered");
            fields.push(("instrument_id", i));
        }
        let r = tech
            .post(&format!("/batches/{batch}/results"), &fields)
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{code}: {}", r.body);
        let shown = tech
            .get(r.headers.get("location").unwrap().to_str().unwrap())
            .await;
        assert!(
            shown.body.contains("Result recorded:") && shown.body.contains("PASS"),
            "{code}"
        );
        // The next test (CD90 after CD73; DOSE after VIAB) keeps the
        // cytometer chosen only when it is measured on one.
        let i = lab.instrument_for("CD73").unwrap();
        let kept = shown.body.contains(&format!("value=\"{i}\" selected"));
        match code {
            "CD73" => assert!(kept, "CD90 keeps the cytometer"),
            "VIAB" => assert!(!kept, "DOSE is not measured on it"),
            _ => {}
        }
    }
    let bad = tech.get(&format!("/batches/{batch}/results/new")).await;
    let token = Browser::csrf(&bad);
    let refused = tech
        .post(
            &format!("/batches/{batch}/results"),
            &[
                ("csrf", &token),
                ("test_code", "VIAB"),
                ("value", "high"),
                ("performed_at", &now),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.body.matches("this test is numeric").count(),
        1,
        "the refusal appears once: {}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("<span class=\"field-error\" id=\"error-value\">Value: this test is numeric"),
        "under the field, with its label: {}",
        refused.body
    );

    // A user who is technician and reviewer may not review their own result.
    let mut both = Browser::new(&lab.app);
    both.sign_in(&both_name, USER_PASSWORD).await;
    let b2 = lab.batch("UCMSC-WEB-3").await;
    let form = both.get(&format!("/batches/{b2}/results/new")).await;
    let token = Browser::csrf(&form);
    let r = both
        .post(
            &format!("/batches/{b2}/results"),
            &[
                ("csrf", &token),
                ("test_code", "POT"),
                ("value", "35"),
                ("performed_at", &now),
            ],
        )
        .await;
    let own_id = r
        .headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .rsplit('=')
        .next()
        .unwrap()
        .to_owned();
    let form = both.get(&format!("/results/{own_id}/review")).await;
    assert!(
        form.body.contains("By signing you state"),
        "the meaning is shown before the password"
    );
    let token = Browser::csrf(&form);
    let own = both
        .post(
            &format!("/results/{own_id}/review"),
            &[
                ("csrf", &token),
                ("decision", "accept"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    assert!(
        own.body.contains("you performed this result"),
        "{}",
        own.body
    );

    // The reviewer works through the queue.
    let mut reviewer = Browser::new(&lab.app);
    reviewer.sign_in(&reviewer_name, USER_PASSWORD).await;
    loop {
        let queue = reviewer.get("/review").await;
        let Some(at) = queue.body.find("/review\">Review</a>") else {
            break;
        };
        let start = queue.body[..at].rfind("/results/").unwrap();
        let path = queue.body[start..at + 7].to_owned();
        let form = reviewer.get(&path).await;
        let token = Browser::csrf(&form);
        let r = reviewer
            .post(
                &path,
                &[
                    ("csrf", &token),
                    ("decision", "accept"),
                    ("password", USER_PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    }

    // QA signs the release.
    let mut qa = Browser::new(&lab.app);
    qa.sign_in(&qa_name, USER_PASSWORD).await;
    let page = qa.get(&format!("/batches/{batch}/release")).await;
    assert!(page.body.contains("I approve this batch for release"));
    let token = Browser::csrf(&page);
    let r = qa
        .post(
            &format!("/batches/{batch}/release"),
            &[
                ("csrf", &token),
                ("password", USER_PASSWORD),
                ("comment", "meets specification"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(lab.status(&batch), "released");

    // The auditor reads the verified history and downloads it.
    let mut auditor = Browser::new(&lab.app);
    auditor.sign_in(&auditor_name, USER_PASSWORD).await;
    let h = auditor.get(&format!("/batches/{batch}/history")).await;
    assert!(h.body.contains("hash chain verifies"), "{}", h.body);
    let csv = auditor.get(&format!("/batches/{batch}/history.csv")).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.starts_with("\u{feff}seq,at,actor_id"));
    assert!(csv.body.contains("batch.released"));
    assert_eq!(
        auditor
            .get(&format!("/batches/{batch}/release"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn custody_deviations_and_users_are_managed_from_their_pages() {
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-WEB-4").await;
    let (_, tech_name) = lab.app.user_with(&["technician"]).await;
    let (_, qa_name) = lab.app.user_with(&["qa"]).await;
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M").to_string();
    let mut tech = Browser::new(&lab.app);
    tech.sign_in(&tech_name, USER_PASSWORD).await;
    let form = tech.get(&format!("/batches/{batch}/custody/new")).await;
    let token = Browser::csrf(&form);
    let shipped = tech
        .post(
            &format!("/batches/{batch}/custody"),
            &[
                ("csrf", &token),
                ("event", "shipped"),
                ("occurred_at", &now),
                ("location", "Dock 7"),
                ("party", "Courier"),
            ],
        )
        .await;
    assert_eq!(shipped.status, StatusCode::CONFLICT);
    assert!(
        shipped.body.contains("can&#39;t leave the facility")
            || shipped.body.contains("can't leave the facility"),
        "{}",
        shipped.body
    );
    // The refused form comes back as it was typed.
    for typed in [
        r#"value="shipped" selected"#,
        r#"value="Dock 7""#,
        r#"value="Courier""#,
        &format!(r#"value="{now}""#),
    ] {
        assert!(shipped.body.contains(typed), "{typed} in {}", shipped.body);
    }
    let stored = tech
        .post(
            &format!("/batches/{batch}/custody"),
            &[
                ("csrf", &token),
                ("event", "stored"),
                ("occurred_at", &now),
                ("location", "LN2 tank 3"),
                ("party", "Tess"),
                ("temperature_c", "-120"),
            ],
        )
        .await;
    assert_eq!(stored.status, StatusCode::SEE_OTHER, "{}", stored.body);
    let page = tech.get(&format!("/batches/{batch}")).await;
    assert!(page.body.contains("EXCURSION"));

    let mut qa = Browser::new(&lab.app);
    qa.sign_in(&qa_name, USER_PASSWORD).await;
    let devs = qa.get(&format!("/batches/{batch}/deviations")).await;
    assert!(devs.body.contains("Temperature excursion"));
    let token = Browser::csrf(&devs);
    let at = devs.body.find("/close\"").unwrap();
    let start = devs.body[..at].rfind("/deviations/").unwrap();
    let path = devs.body[start..at + 6].to_owned();
    let wrong = qa
        .post(
            &path,
            &[
                ("csrf", &token),
                ("batch_id", &batch),
                ("conclusion", "no_impact"),
                ("root_cause", "logger fault"),
                ("password", "wrong-password-1"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("nothing was signed"));
    let ok = qa
        .post(
            &path,
            &[
                ("csrf", &token),
                ("batch_id", &batch),
                ("conclusion", "no_impact"),
                ("root_cause", "logger fault, probe replaced"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);

    let mut admin = Browser::new(&lab.app);
    admin.sign_in("admin", crate::support::ADMIN_PASSWORD).await;
    let users = admin.get("/users").await;
    let token = Browser::csrf(&users);
    let created = admin
        .post(
            "/users",
            &[
                ("csrf", &token),
                ("username", "newtech"),
                ("full_name", "New Tech"),
                ("email", "n@lab.example"),
                ("roles", "technician"),
                ("roles", "reviewer"),
                ("password", "a-long-enough-pw"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let weak = admin
        .post(
            "/users",
            &[
                ("csrf", &token),
                ("username", "weak"),
                ("full_name", "W"),
                ("email", "w@lab.example"),
                ("roles", "qa"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        weak.body
            .contains("Initial password must be at least 12 characters"),
        "the field's label, under the field"
    );
    assert!(
        weak.body.contains("value=\"weak\""),
        "what was typed is kept"
    );
    assert_eq!(tech.get("/users").await.status, StatusCode::FORBIDDEN);
    let me = lab.app.login("newtech", "a-long-enough-pw").await;
    assert_eq!(
        lab.app.get("/api/v1/auth/me", &me).await.body["roles"],
        json!(["technician", "reviewer"])
    );
}

#[actix_web::test]
async fn behind_tls_the_session_cookie_is_secure() {
    let app = TestApp::spawn_with(|s| s.public_url = "https://cellqc.lab.example".to_owned()).await;
    let mut b = Browser::new(&app);
    let r = b.sign_in("admin", ADMIN_PASSWORD).await;
    let set = r
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        set.contains("cellqc_session=") && set.contains("Secure"),
        "{set}"
    );
}

#[actix_web::test]
async fn a_reviewer_signs_several_results_of_a_batch_on_one_page() {
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-WEB-REV").await;
    let viab = lab.recorded(&batch, "VIAB", json!("91.5")).await;
    let cd73 = lab.recorded(&batch, "CD73", json!("97.0")).await;
    let cd90 = lab.recorded(&batch, "CD90", json!("98.0")).await;
    let (_, reviewer_name) = lab.app.user_with(&["reviewer"]).await;
    let mut reviewer = Browser::new(&lab.app);
    reviewer.sign_in(&reviewer_name, USER_PASSWORD).await;

    let queue = reviewer.get("/review").await;
    assert!(queue.body.contains(&format!("/batches/{batch}/review")));
    assert!(
        queue.body.contains("UCMSC-WEB-REV (3 results)"),
        "{}",
        queue.body
    );
    let form = reviewer.get(&format!("/batches/{batch}/review")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("limit &gt;= 80 %"),
        "each result's limit"
    );
    let token = Browser::csrf(&form);
    let before = lab.count("signatures");

    // A wrong password: nothing signed, the ticks and the comment kept.
    let refused = reviewer
        .post_pairs(
            &format!("/batches/{batch}/review"),
            &[
                ("csrf", &token),
                ("result_ids", &viab),
                ("result_ids", &cd90),
                ("decision", "accept"),
                ("comment", "gating checked"),
                ("password", "not-my-password"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert_eq!(lab.count("signatures"), before);
    assert!(refused.body.contains("gating checked"));
    assert!(refused.body.contains(&format!("value=\"{viab}\" checked")));
    assert!(!refused.body.contains(&format!("value=\"{cd73}\" checked")));
    // Nothing ticked is refused in words.
    let none = reviewer
        .post_pairs(
            &format!("/batches/{batch}/review"),
            &[
                ("csrf", &token),
                ("decision", "accept"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.body.contains("tick at least one result"));

    // Two ticked, one signing act: two signatures, the third still waits.
    let signed = reviewer
        .post_pairs(
            &format!("/batches/{batch}/review"),
            &[
                ("csrf", &token),
                ("result_ids", &viab),
                ("result_ids", &cd90),
                ("decision", "accept"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(lab.count("signatures"), before + 2);
    let shown = reviewer
        .get(signed.headers.get("location").unwrap().to_str().unwrap())
        .await;
    assert!(
        shown
            .body
            .contains("2 results reviewed under your signature")
    );
    let rec = lab.batch_record(&batch).await;
    let status_of = |id: &str| {
        rec["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status_of(&viab), "reviewed");
    assert_eq!(status_of(&cd90), "reviewed");
    assert_eq!(status_of(&cd73), "recorded");
}

#[actix_web::test]
async fn a_technician_starts_a_batch_from_the_list_and_sees_its_checklist() {
    let lab = Lab::msc().await;
    let parent = lab.batch("WCB-001").await;
    let (_, tech_name) = lab.app.user_with(&["technician"]).await;
    let mut tech = Browser::new(&lab.app);
    tech.sign_in(&tech_name, USER_PASSWORD).await;
    let list = tech.get("/batches").await;
    assert!(
        list.body.contains("href=\"/batches/new\""),
        "a start button"
    );
    let form = tech.get("/batches/new").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let token = Browser::csrf(&form);
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let later = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let before = lab.count("batches");

    // Wrong input: each error once, under its label, what was typed kept.
    let refused = tech
        .post(
            "/batches",
            &[
                ("csrf", &token),
                ("product_id", &lab.product_id),
                ("batch_number", "UC MSC 7"),
                ("manufactured_at", &now),
                ("expires_at", &now),
                ("donor_din", "A9999 26 123456 X"),
            ],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(lab.count("batches"), before, "nothing saved");
    assert!(
        refused.body.contains("value=\"UC MSC 7\""),
        "typed value kept"
    );
    assert!(refused.body.contains("value=\"A9999 26 123456 X\""));
    assert_eq!(
        refused.body.matches("Batch number must be 1 to 64").count(),
        1
    );
    assert!(
        refused
            .body
            .contains("Expires at must be after “manufactured at”"),
        "labels, not internal names: {}",
        refused.body
    );
    assert!(
        !refused.body.contains("manufactured_at:"),
        "no internal names"
    );
    let unknown_parent = tech
        .post(
            "/batches",
            &[
                ("csrf", &token),
                ("product_id", &lab.product_id),
                ("batch_number", "UCMSC-007"),
                ("manufactured_at", &now),
                ("expires_at", &later),
                ("parents", "WCB-001, WCB-404"),
            ],
        )
        .await;
    assert_eq!(unknown_parent.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown_parent
            .body
            .contains("Parent batches names no batch: WCB-404")
    );
    assert_eq!(lab.count("batches"), before, "nothing saved");

    let started = tech
        .post(
            "/batches",
            &[
                ("csrf", &token),
                ("product_id", &lab.product_id),
                ("batch_number", "UCMSC-007"),
                ("manufactured_at", &now),
                ("expires_at", &later),
                ("quantity", "2.0"),
                ("unit", "bags"),
                ("parents", "WCB-001"),
            ],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert_eq!(lab.count("batches"), before + 1);
    let page = tech
        .get(started.headers.get("location").unwrap().to_str().unwrap())
        .await;
    assert!(page.body.contains("Results still to record"), "a checklist");
    assert!(page.body.contains("/results/new?test=VIAB"));
    assert!(
        !page.body.contains("A required result is missing"),
        "not an alarm"
    );
    let id = started.headers.get("location").unwrap().to_str().unwrap()[9..45].to_owned();
    let rec = lab.batch_record(&id).await;
    assert_eq!(rec["quantity"], "2.0");
    assert_eq!(rec["parent_batch_ids"][0], parent.as_str());
    let created = lab.app.audit_actions("batch.created");
    assert!(created.iter().any(|(e, _)| e.unwrap().to_string() == id));

    // A long field under 1 MiB is judged by its rule (422), not by size.
    let long = "x".repeat(100_000);
    let judged = tech
        .post(
            "/batches",
            &[
                ("csrf", &token),
                ("product_id", &lab.product_id),
                ("batch_number", &long),
                ("manufactured_at", &now),
                ("expires_at", &later),
            ],
        )
        .await;
    assert_eq!(
        judged.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        &judged.body[..300.min(judged.body.len())]
    );
    // A form over 1 MiB is a page in words, not plain text.
    let huge = "x".repeat(1_200_000);
    let big = tech
        .post("/batches", &[("csrf", &token), ("batch_number", &huge)])
        .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        big.body.contains("larger than 1 MiB, so nothing was saved"),
        "{}",
        big.body
    );
    assert!(big.body.contains("<main"));

    // An unknown page and a malformed id are pages, not JSON.
    for path in ["/no-such-page", "/batches/not-an-id"] {
        let p = tech.get(path).await;
        assert!(p.status.is_client_error(), "{path}");
        assert!(
            p.headers
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(p.body.contains("<main"), "{path} in the layout");
    }
}

#[actix_web::test]
async fn the_start_page_lists_what_waits_for_each_role() {
    let lab = Lab::msc().await;
    let ready = lab.tested_batch("UCMSC-READY", &[]).await;
    let open = lab.batch("UCMSC-OPEN").await;
    let rejected = lab.recorded(&open, "VIAB", json!("91.5")).await;
    let r = lab
        .app
        .post(
            &format!("/api/v1/results/{rejected}/review"),
            &lab.reviewer,
            json!({"decision": "reject", "password": USER_PASSWORD, "comment": "wrong gate"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    lab.recorded(&open, "CD73", json!("97.0")).await;
    lab.app
        .post(
            &format!("/api/v1/batches/{open}/deviations"),
            &lab.tech,
            json!({"title": "Incubator door alarm", "description": "d", "severity": "major"}),
        )
        .await;
    let mut spec = cellqc::demo::msc_spec();
    spec["version"] = json!("9.0");
    let draft = lab
        .app
        .post(
            &format!("/api/v1/products/{}/specifications", lab.product_id),
            &lab.qa,
            spec,
        )
        .await;
    assert_eq!(draft.status, StatusCode::CREATED, "{}", draft.body);
    let draft_id = draft.body["id"].as_str().unwrap();

    let (_, tech_name) = lab.app.user_with(&["technician"]).await;
    let mut tech = Browser::new(&lab.app);
    let signed_in = tech.sign_in(&tech_name, USER_PASSWORD).await;
    assert_eq!(
        signed_in.headers.get("location").unwrap(),
        "/",
        "sign-in leads to the work list"
    );
    let home = tech.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("UCMSC-OPEN"),
        "a batch with results to record"
    );
    assert!(
        !home.body.contains("UCMSC-READY"),
        "nothing to record on a complete batch"
    );
    assert!(
        home.body.contains(&format!("replaces={rejected}")),
        "the rejected result to replace"
    );
    assert!(home.body.contains("wrong gate"));
    assert!(!home.body.contains("id=\"qa\""), "QA's lists are QA's");

    let (_, reviewer_name) = lab.app.user_with(&["reviewer"]).await;
    let mut reviewer = Browser::new(&lab.app);
    reviewer.sign_in(&reviewer_name, USER_PASSWORD).await;
    let home = reviewer.get("/").await;
    assert!(
        home.body.contains(&format!("/batches/{open}/review")),
        "CD73 waits"
    );
    assert!(home.body.contains("Review batch UCMSC-OPEN (1 result)"));
    assert!(!home.body.contains("id=\"technician\""));

    let (_, qa_name) = lab.app.user_with(&["qa"]).await;
    let mut qa = Browser::new(&lab.app);
    qa.sign_in(&qa_name, USER_PASSWORD).await;
    let home = qa.get("/").await;
    assert!(
        home.body.contains(&format!("/batches/{ready}/release")),
        "ready for release"
    );
    assert!(home.body.contains("Incubator door alarm"));
    assert!(home.body.contains("severity major"));
    assert!(
        home.body.contains(&format!("/specifications/{draft_id}")),
        "spec to approve"
    );
    assert!(
        !home.body.contains(&format!("/batches/{open}/release")),
        "not ready"
    );
}

#[actix_web::test]
async fn qa_defines_a_product_and_a_specification_and_another_qa_approves_it() {
    let app = TestApp::spawn().await;
    let (_, author_name) = app.user_with(&["qa"]).await;
    let (_, approver_name) = app.user_with(&["qa"]).await;
    let mut author = Browser::new(&app);
    author.sign_in(&author_name, USER_PASSWORD).await;
    let list = author.get("/products").await;
    assert!(list.body.contains("href=\"/products/new\""));
    let form = author.get("/products/new").await;
    let token = Browser::csrf(&form);
    let refused = author
        .post(
            "/products",
            &[
                ("csrf", &token),
                ("code", "UC MSC"),
                ("name", "Umbilical-cord MSC"),
                ("product_type", "allogeneic MSC"),
                ("storage_min_c", "8"),
                ("storage_max_c", "2"),
                ("release_signatures_required", "1"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("value=\"UC MSC\""), "kept as typed");
    assert!(
        refused.body.contains("id=\"error-code\""),
        "{}",
        refused.body
    );
    // A rule between two fields is judged once each field reads on its own.
    let inverted = author
        .post(
            "/products",
            &[
                ("csrf", &token),
                ("code", "UCMSC-WEB"),
                ("name", "Umbilical-cord MSC"),
                ("product_type", "allogeneic MSC"),
                ("storage_min_c", "8"),
                ("storage_max_c", "2"),
                ("release_signatures_required", "1"),
            ],
        )
        .await;
    assert_eq!(inverted.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(inverted.body.contains("value=\"8\""), "kept as typed");
    assert!(
        inverted
            .body
            .contains("Lowest storage temperature is above “highest storage temperature”"),
        "{}",
        inverted.body
    );
    let made = author
        .post(
            "/products",
            &[
                ("csrf", &token),
                ("code", "UCMSC-WEB"),
                ("name", "Umbilical-cord MSC"),
                ("product_type", "allogeneic MSC"),
                ("storage_min_c", "2"),
                ("storage_max_c", "8"),
                ("release_signatures_required", "1"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let product_path = made
        .headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let product = author.get(&product_path).await;
    assert!(product.body.contains("New specification version"));

    // A draft with a wrong row is refused naming the row; the rows come back.
    let spec_path = format!("{product_path}/specifications");
    let row = |code: &str, min: &str, max: &str| {
        let filled = |v: String| if code.is_empty() { String::new() } else { v };
        vec![
            ("code", code.to_owned()),
            ("name", filled(format!("{code} test"))),
            ("method", filled("flow cytometry".to_owned())),
            ("kind", "numeric".to_owned()),
            ("unit", filled("%".to_owned())),
            ("min", min.to_owned()),
            ("min_inclusive", "yes".to_owned()),
            ("max", max.to_owned()),
            ("max_inclusive", "no".to_owned()),
            ("decimals", String::new()),
            ("options", String::new()),
            ("allowed", String::new()),
            ("required", "yes".to_owned()),
            ("pending_release_allowed", "no".to_owned()),
        ]
    };
    let mut fields: Vec<(&str, String)> = vec![("csrf", token.clone()), ("version", "1.0".into())];
    fields.extend(row("VIAB", "70", "100"));
    fields.extend(row("CD73", "99", "95"));
    fields.extend(row("", "", ""));
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = author.post_pairs(&spec_path, &pairs).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("Test row 2, lowest limit"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"CD73\""), "rows kept");
    let mut fields: Vec<(&str, String)> = vec![("csrf", token.clone()), ("version", "1.0".into())];
    fields.extend(row("VIAB", "70", "100"));
    fields.extend(row("CD73", "95", "100"));
    fields.extend(row("", "", ""));
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = author.post_pairs(&spec_path, &pairs).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let spec_page = saved
        .headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let own = author.get(&spec_page).await;
    assert!(own.body.contains("another QA person must approve it"));
    assert!(
        own.body.contains("&lt; 100 %"),
        "an exclusive limit stays exclusive: {}",
        own.body
    );

    let mut approver = Browser::new(&app);
    approver.sign_in(&approver_name, USER_PASSWORD).await;
    let page = approver.get(&spec_page).await;
    assert!(page.body.contains("Sign the approval"));
    let token = Browser::csrf(&page);
    let approve = format!("{spec_page}/approve");
    let wrong = approver
        .post(
            &approve,
            &[("csrf", &token), ("password", "not-the-password")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let signed = approver
        .post(
            &approve,
            &[
                ("csrf", &token),
                ("password", USER_PASSWORD),
                ("reason", "reviewed with QC"),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let page = approver.get(&spec_page).await;
    assert!(page.body.contains("status effective"), "{}", page.body);
    assert!(page.body.contains("reviewed with QC"));
    assert_eq!(app.audit_actions("specification.approved").len(), 1);
    assert_eq!(app.audit_actions("product.created").len(), 1);
}

#[actix_web::test]
async fn an_admin_changes_roles_and_deactivates_only_after_confirming() {
    let app = TestApp::spawn().await;
    let (tech_id, tech_name) = app.user_with(&["technician"]).await;
    let mut tech = Browser::new(&app);
    tech.sign_in(&tech_name, USER_PASSWORD).await;
    let mut admin = Browser::new(&app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let users = admin.get("/users").await;
    assert!(users.body.contains(&format!("href=\"/users/{tech_id}\"")));
    let edit = admin.get(&format!("/users/{tech_id}")).await;
    assert_eq!(edit.status, StatusCode::OK);
    let token = Browser::csrf(&edit);
    let path = format!("/users/{tech_id}");
    let roles_before = |app: &TestApp| app.audit_actions("user.updated").len();

    // Adding a role shows what changes and changes nothing yet.
    let confirm = admin
        .post_pairs(
            &path,
            &[
                ("csrf", &token),
                ("full_name", &format!("Test {tech_name}")),
                ("email", &format!("{tech_name}@lab.example")),
                ("roles", "technician"),
                ("roles", "reviewer"),
                ("active", "yes"),
            ],
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(
        confirm.body.contains("Nothing is changed yet"),
        "{}",
        confirm.body
    );
    assert!(
        confirm
            .body
            .contains("<strong>reviewer, technician</strong>"),
        "{}",
        confirm.body
    );
    assert_eq!(roles_before(&app), 0, "not applied before confirmation");
    let done = admin
        .post_pairs(
            &path,
            &[
                ("csrf", &token),
                ("full_name", &format!("Test {tech_name}")),
                ("email", &format!("{tech_name}@lab.example")),
                ("roles", "technician"),
                ("roles", "reviewer"),
                ("active", "yes"),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(roles_before(&app), 1);
    let me = app
        .get(
            &format!("/api/v1/users/{tech_id}"),
            &app.admin_token().await,
        )
        .await;
    assert_eq!(me.body["roles"], json!(["technician", "reviewer"]));

    // "Deactivate" from the list asks first; the session ends only after.
    let asked = admin
        .post(&format!("/users/{tech_id}/deactivate"), &[("csrf", &token)])
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asked.body.contains("Deactivating ends every session"));
    assert_eq!(
        tech.get("/batches").await.status,
        StatusCode::OK,
        "still signed in"
    );
    let confirmed = admin
        .post(
            &format!("/users/{tech_id}/deactivate"),
            &[("csrf", &token), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        confirmed.body
    );
    assert_eq!(app.audit_actions("user.deactivated").len(), 1);
    // Their own account: name and email only.
    let token = app.admin_token().await;
    let me = app.get("/api/v1/auth/me", &token).await;
    let own = admin
        .get(&format!("/users/{}", me.body["id"].as_str().unwrap()))
        .await;
    assert!(
        own.body
            .contains("Nobody changes their own roles or account")
    );
    assert!(!own.body.contains("type=\"checkbox\" name=\"roles\""));
    assert_eq!(
        tech.get("/batches").await.status,
        StatusCode::SEE_OTHER,
        "signed out"
    );
}

#[actix_web::test]
async fn a_person_changes_their_own_password_on_the_account_page() {
    let app = TestApp::spawn().await;
    let (_, name) = app.user_with(&["technician"]).await;
    let mut me = Browser::new(&app);
    me.sign_in(&name, USER_PASSWORD).await;
    let form = me.get("/account/password").await;
    assert_eq!(form.status, StatusCode::OK);
    let token = Browser::csrf(&form);
    let new = "a-brand-new-bench-password";
    let mismatch = me
        .post(
            "/account/password",
            &[
                ("csrf", &token),
                ("current_password", USER_PASSWORD),
                ("new_password", new),
                ("repeat", "something-else-entirely"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        mismatch
            .body
            .contains("New password again is not the same as the new password")
    );
    assert!(
        !mismatch.body.contains(new),
        "a password is never sent back"
    );
    let wrong = me
        .post(
            "/account/password",
            &[
                ("csrf", &token),
                ("current_password", "not-my-password"),
                ("new_password", new),
                ("repeat", new),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("the current password is wrong"));
    let ok = me
        .post(
            "/account/password",
            &[
                ("csrf", &token),
                ("current_password", USER_PASSWORD),
                ("new_password", new),
                ("repeat", new),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(ok.body.contains("Your password was changed"));
    assert_eq!(app.try_login(&name, new).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn an_auditor_searches_the_trail_reads_sentences_and_verifies_every_chain() {
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-AUD").await;
    let viab = lab.recorded(&batch, "VIAB", json!("91.5")).await;
    lab.review(&viab, "accept").await;
    let (_, auditor_name) = lab.app.user_with(&["auditor"]).await;
    let mut auditor = Browser::new(&lab.app);
    auditor.sign_in(&auditor_name, USER_PASSWORD).await;

    let found = auditor
        .get(&format!("/audit?entity_type=result&entity_id={viab}"))
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(
        found.body.contains("Result VIAB 91.5 % recorded (PASS)"),
        "{}",
        found.body
    );
    assert!(
        found
            .body
            .contains(&format!("/batches/{batch}/history#entry-"))
    );
    let bad = auditor
        .get("/audit?entity_id=not-an-id&from=yesterday")
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("Record id is not a record id"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"not-an-id\""), "kept as typed");

    let history = auditor.get(&format!("/batches/{batch}/history")).await;
    assert!(
        history
            .body
            .contains("Result VIAB 91.5 % accepted in second-person review (signed).")
    );
    let csv = auditor.get(&format!("/batches/{batch}/history.csv")).await;
    assert!(
        csv.body
            .lines()
            .next()
            .unwrap()
            .contains(",hash,what,changes,")
    );
    assert!(
        !csv.body.contains("{\""),
        "no JSON in the cells: {}",
        csv.body
    );
    assert!(csv.body.contains("test_code: VIAB"));

    let verify = auditor.get("/audit/verify").await;
    assert!(verify.body.contains("No verification has been run"));
    let token = Browser::csrf(&verify);
    // Without an anchor there is nothing to verify against: said, not passed.
    let ran = auditor.post("/audit/verify", &[("csrf", &token)]).await;
    assert_eq!(ran.status, StatusCode::OK);
    assert!(
        ran.body.contains("No anchor to check against"),
        "{}",
        ran.body
    );
    auditor.post("/audit/anchors", &[("csrf", &token)]).await;
    let ran = auditor.post("/audit/verify", &[("csrf", &token)]).await;
    assert_eq!(ran.status, StatusCode::OK);
    assert!(ran.body.contains("Every chain verifies"), "{}", ran.body);
    assert_eq!(lab.app.audit_actions("audit.verified").len(), 2);
    let home = auditor.get("/").await;
    assert!(home.body.contains("Last verification:"), "{}", home.body);
    assert!(home.body.contains("every chain and anchor verified"));
}

#[actix_web::test]
async fn the_release_page_says_first_whether_you_may_sign_and_offers_only_what_the_status_allows() {
    let lab = Lab::msc().await;
    let (_, qa_reviewer_name) = lab.app.user_with(&["qa", "reviewer"]).await;
    let qa_reviewer = lab.app.login(&qa_reviewer_name, USER_PASSWORD).await;
    // The QA person reviews one of the batch's results: not independent.
    let b = lab.batch("UCMSC-REL").await;
    for (code, value) in cellqc::demo::msc_passing_values() {
        let id = lab.recorded(&b, code, value).await;
        let who = if code == "VIAB" {
            &qa_reviewer
        } else {
            &lab.reviewer
        };
        let r = lab
            .app
            .post(
                &format!("/api/v1/results/{id}/review"),
                who,
                json!({"decision": "accept", "password": USER_PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let mut dependent = Browser::new(&lab.app);
    dependent.sign_in(&qa_reviewer_name, USER_PASSWORD).await;
    let page = dependent.get(&format!("/batches/{b}/release")).await;
    assert!(
        page.body
            .contains("You may not sign: you performed or reviewed"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("Sign the release"),
        "no release form for them"
    );
    let home = dependent.get("/").await;
    assert!(
        home.body.contains("you took part in its testing"),
        "{}",
        home.body
    );
    assert!(
        !home.body.contains(&format!("/batches/{b}/release")),
        "no release offered to them"
    );
    assert!(
        !page.body.contains("Sign the recall"),
        "no recall of a quarantined batch"
    );
    assert!(page.body.contains("Sign the rejection"));

    let (_, qa_name) = lab.app.user_with(&["qa"]).await;
    let mut qa = Browser::new(&lab.app);
    qa.sign_in(&qa_name, USER_PASSWORD).await;
    let page = qa.get(&format!("/batches/{b}/release")).await;
    assert!(
        page.body.contains("You may sign the release"),
        "{}",
        page.body
    );
    let token = Browser::csrf(&page);
    let wrong = qa
        .post(
            &format!("/batches/{b}/release"),
            &[
                ("csrf", &token),
                ("password", "not-it"),
                ("comment", "all in order"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("value=\"all in order\""),
        "the comment is kept"
    );
    let signed = qa
        .post(
            &format!("/batches/{b}/release"),
            &[
                ("csrf", &token),
                ("password", USER_PASSWORD),
                ("comment", "all in order"),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let page = qa.get(&format!("/batches/{b}/release")).await;
    assert!(
        page.body.contains("The batch is <strong>released</strong>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!("Test {qa_name}")),
        "who released it"
    );
    assert!(!page.body.contains("Sign the release"));
    assert!(page.body.contains("Sign the recall"));
    let batch_page = qa.get(&format!("/batches/{b}")).await;
    assert!(
        !batch_page.body.contains("can be released"),
        "no readiness once released"
    );
}

#[actix_web::test]
async fn forms_read_and_pages_show_times_in_the_browsers_zone() {
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-TZ").await;
    let (tech_id, tech_name) = lab.app.user_with(&["technician"]).await;
    lab.qualify_all(&tech_id).await;
    let mut tech = Browser::new(&lab.app);
    tech.set_cookie("tz", "Europe/Berlin");
    tech.sign_in(&tech_name, USER_PASSWORD).await;
    let form = tech.get(&format!("/batches/{batch}/results/new")).await;
    assert!(
        form.body
            .contains("Performed at (your time, Europe/Berlin)"),
        "{}",
        form.body
    );
    let token = Browser::csrf(&form);
    let berlin = chrono_tz::Europe::Berlin;
    // One hour ago in Berlin, typed as a Berlin clock shows it.
    let utc = chrono::Utc::now() - chrono::Duration::hours(1);
    let typed = utc
        .with_timezone(&berlin)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let r = tech
        .post(
            &format!("/batches/{batch}/results"),
            &[
                ("csrf", &token),
                ("test_code", "VIAB"),
                ("value", "91.5"),
                ("performed_at", &typed),
                ("instrument_id", lab.instrument_for("VIAB").unwrap()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let rec = lab.batch_record(&batch).await;
    let stored: chrono::DateTime<chrono::Utc> = rec["results"][0]["performed_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(stored.timestamp(), utc.timestamp(), "stored in UTC");
    let page = tech.get(&format!("/batches/{batch}")).await;
    let shown = utc
        .with_timezone(&berlin)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string();
    assert!(page.body.contains(&shown), "{shown} in {}", page.body);
    assert!(
        page.body
            .contains(&utc.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        "UTC on hover"
    );
    // A time the clocks skip is refused in words.
    let r = tech
        .post(
            &format!("/batches/{batch}/results"),
            &[
                ("csrf", &token),
                ("test_code", "CD73"),
                ("value", "97"),
                ("performed_at", "2026-03-29T02:30"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("does not exist in Europe/Berlin"),
        "{}",
        r.body
    );
}

#[actix_web::test]
async fn an_admin_resets_a_password_on_the_user_page_and_its_holder_is_sent_to_change_it() {
    use crate::support::TEMPORARY_PASSWORD;
    let app = TestApp::spawn().await;
    let (tech_id, tech_name) = app.user_with(&["technician"]).await;
    let mut tech = Browser::new(&app);
    tech.sign_in(&tech_name, USER_PASSWORD).await;
    let mut admin = Browser::new(&app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let edit = admin.get(&format!("/users/{tech_id}")).await;
    assert!(edit.body.contains("Reset the password"), "{}", edit.body);
    let token = Browser::csrf(&edit);
    let path = format!("/users/{tech_id}/password");

    let short = admin
        .post(&path, &[("csrf", &token), ("password", "short")])
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        short.body.contains("New temporary password"),
        "{}",
        short.body
    );
    assert_eq!(tech.get("/batches").await.status, StatusCode::OK);

    let done = admin
        .post(&path, &[("csrf", &token), ("password", TEMPORARY_PASSWORD)])
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("was reset"), "{}", done.body);
    assert_eq!(app.audit_actions("user.password_reset").len(), 1);
    assert_eq!(
        tech.get("/batches").await.status,
        StatusCode::SEE_OTHER,
        "the reset ended the session"
    );

    let mut again = Browser::new(&app);
    let signed = again.sign_in(&tech_name, TEMPORARY_PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(signed.headers.get("location").unwrap(), "/account/password");
    let home = again.get("/").await;
    assert!(
        home.body.contains("you sign nothing until you"),
        "{}",
        home.body
    );

    // An admin's own page offers no reset: their own goes through the account page.
    let me = app.get("/api/v1/auth/me", &app.admin_token().await).await;
    let own = admin
        .get(&format!("/users/{}", me.body["id"].as_str().unwrap()))
        .await;
    assert!(!own.body.contains("Reset the password"));
}

#[actix_web::test]
async fn an_auditor_anchors_the_trail_and_the_verification_page_names_a_cut_chain() {
    use diesel::connection::SimpleConnection;
    let lab = crate::lab::Lab::msc().await;
    let batch = lab.batch("WEB-ANCHOR-1").await;
    lab.recorded(&batch, "VIAB", json!("91.0")).await;
    let (_, auditor) = lab.app.user_with(&["auditor"]).await;
    let mut b = Browser::new(&lab.app);
    b.sign_in(&auditor, USER_PASSWORD).await;
    let page = b.get("/audit/verify").await;
    assert!(
        page.body.contains("No anchor has been made yet"),
        "{}",
        page.body
    );
    let token = Browser::csrf(&page);
    let made = b.post("/audit/anchors", &[("csrf", &token)]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let page = b.get("/audit/verify").await;
    assert!(page.body.contains("id=\"latest-anchor\""), "{}", page.body);

    let chain = format!("batch:{batch}");
    lab.app
        .conn()
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             DELETE FROM audit_entries e USING audit_chain_heads h
              WHERE h.chain = '{chain}' AND e.chain_id = h.id AND e.seq = h.seq;
             UPDATE audit_chain_heads h SET seq = e.seq, hash = e.hash, last_at = e.at
               FROM audit_entries e WHERE e.chain_id = h.id AND e.seq = h.seq - 1 AND h.chain = '{chain}';
             SET session_replication_role = origin;"
        ))
        .unwrap();
    let run = b.post("/audit/verify", &[("csrf", &token)]).await;
    assert_eq!(run.status, StatusCode::OK);
    assert!(
        run.body.contains("The audit trail is BROKEN"),
        "{}",
        run.body
    );
    assert!(run.body.contains(&chain), "{}", run.body);
    assert!(run.body.contains("cut back"), "{}", run.body);
}

#[actix_web::test]
async fn qa_qualifies_an_analyst_on_the_matrix_and_the_result_form_refuses_until_then() {
    let mut spec = uncontrolled(cellqc::demo::msc_spec());
    for t in spec["tests"].as_array_mut().unwrap() {
        if t["code"] == "VIAB" {
            t["qualification_required"] = json!(true);
        }
    }
    let lab = Lab::bare(cellqc::demo::msc_product(), spec).await;
    let batch = lab.batch("WEB-QUAL-1").await;
    let mut tech = Browser::as_tech(&lab).await;
    async fn record(tech: &mut Browser<'_>, batch: &str) -> Page {
        let form = tech.get(&format!("/batches/{batch}/results/new")).await;
        let token = Browser::csrf(&form);
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        tech.post(
            &format!("/batches/{batch}/results"),
            &[
                ("csrf", &token),
                ("test_code", "VIAB"),
                ("value", "91.0"),
                ("performed_at", &now),
            ],
        )
        .await
    }
    let refused = record(&mut tech, &batch).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("you hold no qualification for VIAB"),
        "{}",
        refused.body
    );

    let (_, qa_name) = lab.app.user_with(&["qa"]).await;
    let mut qa = Browser::new(&lab.app);
    qa.sign_in(&qa_name, USER_PASSWORD).await;
    let matrix = qa.get("/qualifications").await;
    assert!(matrix.body.contains("not qualified"), "{}", matrix.body);
    let token = Browser::csrf(&matrix);
    let until = (chrono::Utc::now() + chrono::Duration::days(10))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let wrong = qa
        .post(
            "/qualifications",
            &[
                ("csrf", &token),
                ("user", &lab.tech_id),
                ("test_code", "VIAB"),
                ("valid_until", &until),
                ("password", "not-my-password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let done = qa
        .post(
            "/qualifications",
            &[
                ("csrf", &token),
                ("user", &lab.tech_id),
                ("test_code", "VIAB"),
                ("valid_until", &until),
                ("reason", "TR-7, observed run"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("is qualified for VIAB"), "{}", done.body);
    assert!(
        done.body.contains("qual soon"),
        "expires within 30 days: amber"
    );
    let home = qa.get("/").await;
    assert!(
        home.body
            .contains("Qualifications expiring within 30 days (1)"),
        "{}",
        home.body
    );
    // Qualified from the grant's moment on; the form reads whole seconds.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1100)).await;
    let ok = record(&mut tech, &batch).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
}

#[actix_web::test]
async fn instruments_are_kept_on_their_pages_and_the_result_form_offers_only_usable_ones() {
    let mut spec = uncontrolled(cellqc::demo::msc_spec());
    for t in spec["tests"].as_array_mut().unwrap() {
        if t["code"] == "CD73" {
            t["instrument_kind"] = json!("flow_cytometer");
        }
    }
    let lab = Lab::bare(cellqc::demo::msc_product(), spec).await;
    let batch = lab.batch("WEB-INSTR-1").await;
    let (_, qa_name) = lab.app.user_with(&["qa"]).await;
    let mut qa = Browser::new(&lab.app);
    qa.sign_in(&qa_name, USER_PASSWORD).await;
    let list = qa.get("/instruments").await;
    assert!(list.body.contains("No instrument is registered yet"));
    let token = Browser::csrf(&list);
    let bad = qa
        .post(
            "/instruments",
            &[
                ("csrf", &token),
                ("code", "FC-7"),
                ("name", "Flow 7"),
                ("kind", "Flow!"),
                ("location", "QC 2"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The refused form comes back as it was typed.
    for typed in [
        "value=\"FC-7\"",
        "value=\"Flow 7\"",
        "value=\"Flow!\"",
        "value=\"QC 2\"",
    ] {
        assert!(bad.body.contains(typed), "{typed}: {}", bad.body);
    }
    let made = qa
        .post(
            "/instruments",
            &[
                ("csrf", &token),
                ("code", "FC-7"),
                ("name", "Flow 7"),
                ("kind", "flow_cytometer"),
                ("location", "QC 2"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let page_path = made
        .headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let one = qa.get(&page_path).await;
    assert!(one.body.contains("calibration due"), "{}", one.body);

    // The result form offers nothing until it is calibrated.
    let mut tech = Browser::as_tech(&lab).await;
    let form = tech.get(&format!("/batches/{batch}/results/new")).await;
    assert!(!form.body.contains("FC-7 – Flow 7"), "not usable yet");
    let performed = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let until = (chrono::Utc::now() + chrono::Duration::days(200))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    // Valid until a time before it was performed: refused, kept as typed.
    let refused = tech
        .post(
            &format!("{page_path}/calibrations"),
            &[
                ("csrf", &Browser::csrf(&form)),
                ("performed_at", &performed),
                ("outcome", "fail"),
                ("valid_until", "2020-01-01T00:00:00"),
                ("certificate", "CAL-9"),
                ("notes", "bead lot 4411"),
            ],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    for typed in [
        format!("value=\"{performed}\""),
        "value=\"2020-01-01T00:00:00\"".to_owned(),
        "value=\"CAL-9\"".to_owned(),
        ">bead lot 4411</textarea>".to_owned(),
        "<option value=\"fail\" selected>".to_owned(),
    ] {
        assert!(refused.body.contains(&typed), "{typed}: {}", refused.body);
    }
    let cal = tech
        .post(
            &format!("{page_path}/calibrations"),
            &[
                ("csrf", &Browser::csrf(&form)),
                ("performed_at", &performed),
                ("outcome", "pass"),
                ("valid_until", &until),
                ("certificate", "CAL-9"),
            ],
        )
        .await;
    assert_eq!(cal.status, StatusCode::SEE_OTHER, "{}", cal.body);
    let form = tech.get(&format!("/batches/{batch}/results/new")).await;
    assert!(form.body.contains("FC-7 – Flow 7"), "{}", form.body);
    let id = page_path.rsplit('/').next().unwrap().to_owned();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let missing = tech
        .post(
            &format!("/batches/{batch}/results"),
            &[
                ("csrf", &Browser::csrf(&form)),
                ("test_code", "CD73"),
                ("value", "97.0"),
                ("performed_at", &now),
                ("instrument_id", ""),
            ],
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        missing.body.contains("name the instrument"),
        "{}",
        missing.body
    );
    let ok = tech
        .post(
            &format!("/batches/{batch}/results"),
            &[
                ("csrf", &Browser::csrf(&form)),
                ("test_code", "CD73"),
                ("value", "97.0"),
                ("performed_at", &now),
                ("instrument_id", &id),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);

    // Out of service from its page; back only with QA's signature.
    let out = tech
        .post(
            &format!("{page_path}/out-of-service"),
            &[("csrf", &Browser::csrf(&form)), ("reason", "fluidics clog")],
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let list = qa.get("/instruments").await;
    assert!(list.body.contains("out of service"), "{}", list.body);
    let one = qa.get(&page_path).await;
    let back = qa
        .post(
            &format!("{page_path}/return-to-service"),
            &[
                ("csrf", &Browser::csrf(&one)),
                ("reason", "unclogged, beads in range"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert!(qa.get(&page_path).await.body.contains("in service"));
}

#[actix_web::test]
async fn a_material_lot_is_received_released_traced_and_rejected_from_its_pages() {
    let lab = Lab::msc().await;
    let batch = lab.batch("WEB-MAT-1").await;
    let mut tech = Browser::as_tech(&lab).await;
    let list = tech.get("/materials").await;
    assert!(list.body.contains("No material lot is received yet"));
    let token = Browser::csrf(&list);
    let expires = (chrono::Utc::now() + chrono::Duration::days(90))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let bad = tech
        .post(
            "/materials",
            &[
                ("csrf", &token),
                ("code", "7AAD"),
                ("name", "7-AAD"),
                ("lot_number", "L1"),
                ("kind", "magic"),
                ("expires_at", &expires),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let made = tech
        .post(
            "/materials",
            &[
                ("csrf", &token),
                ("code", "7AAD"),
                ("name", "7-AAD viability dye"),
                ("lot_number", "L1"),
                ("kind", "reagent"),
                ("expires_at", &expires),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let lot_page = made
        .headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let lot_id = lot_page.rsplit('/').next().unwrap().to_owned();
    assert!(tech.get(&lot_page).await.body.contains("quarantine"));

    let (_, qa_name) = lab.app.user_with(&["qa"]).await;
    let mut qa = Browser::new(&lab.app);
    qa.sign_in(&qa_name, USER_PASSWORD).await;
    let page = qa.get(&lot_page).await;
    let qa_token = Browser::csrf(&page);
    let released = qa
        .post(
            &format!("{lot_page}/release"),
            &[("csrf", &qa_token), ("password", USER_PASSWORD)],
        )
        .await;
    assert_eq!(released.status, StatusCode::SEE_OTHER, "{}", released.body);
    // The result form offers the released lot, and records it with the result
    // (used from the release on; the form reads whole seconds).
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1100)).await;
    let form = tech.get(&format!("/batches/{batch}/results/new")).await;
    assert!(form.body.contains("7AAD lot L1"), "{}", form.body);
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let recorded = tech
        .post(
            &format!("/batches/{batch}/results"),
            &[
                ("csrf", &Browser::csrf(&form)),
                ("test_code", "VIAB"),
                ("value", "91.0"),
                ("performed_at", &now),
                ("instrument_id", lab.instrument_for("VIAB").unwrap()),
                ("material_ids", &lot_id),
            ],
        )
        .await;
    assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
    let used = lab
        .app
        .post(
            &format!("/api/v1/batches/{batch}/materials"),
            &lab.tech,
            json!({"material_id": lot_id, "used_at": chrono::Utc::now().to_rfc3339()}),
        )
        .await;
    assert_eq!(used.status, StatusCode::CREATED, "{}", used.body);
    let page = qa.get(&lot_page).await;
    assert!(
        page.body.contains("Where used (2)") && page.body.contains("WEB-MAT-1"),
        "{}",
        page.body
    );
    let rejected = qa
        .post(
            &format!("{lot_page}/reject"),
            &[
                ("csrf", &qa_token),
                ("reason", "supplier recall"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(rejected.status, StatusCode::SEE_OTHER, "{}", rejected.body);
    let page = qa.get(&lot_page).await;
    assert!(
        page.body.contains("Rejected: supplier recall"),
        "{}",
        page.body
    );
    assert!(
        lab.blockers(&batch)
            .await
            .contains(&"open_deviation".to_owned())
    );
}

#[actix_web::test]
async fn qa_reviews_a_batchs_audit_trail_on_its_page() {
    let mut product = cellqc::demo::msc_product();
    product["audit_review_required"] = json!(true);
    let lab = Lab::with(product, cellqc::demo::msc_spec()).await;
    let b = lab.tested_batch("WEB-AR-1", &["VIAB"]).await;
    let first = lab.recorded(&b, "VIAB", json!("85.0")).await;
    let fixed = lab
        .record_with(
            &b,
            json!({"test_code": "VIAB", "value": "91.5", "replaces_result_id": first,
                   "reason": "transcription error"}),
        )
        .await;
    assert_eq!(fixed.status, StatusCode::CREATED, "{}", fixed.body);
    lab.review(fixed.body["id"].as_str().unwrap(), "accept")
        .await;
    let path = format!("/batches/{b}/audit-review");

    let mut tech = Browser::as_tech(&lab).await;
    assert_eq!(tech.get(&path).await.status, StatusCode::FORBIDDEN);

    let (_, qa_name) = lab.app.user_with(&["qa"]).await;
    let mut qa = Browser::new(&lab.app);
    qa.sign_in(&qa_name, USER_PASSWORD).await;
    let home = qa.get("/").await;
    assert!(
        home.body
            .contains("Audit trail to review before release (1)")
            && home.body.contains("Review the trail of WEB-AR-1"),
        "{}",
        home.body
    );
    let page = qa.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("Nobody has signed a review")
            && page
                .body
                .contains("The product requires this review before release."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("VIAB 85.0 % -&gt; VIAB 91.5 %")
            && page.body.contains("transcription error"),
        "{}",
        page.body
    );
    // Each exception links to its row in the batch's history.
    let api = lab.app.get(&format!("/api/v1{path}"), &lab.qa).await.body;
    let entry = api["exceptions"][0]["entry_id"].as_str().unwrap();
    assert!(
        page.body
            .contains(&format!("/batches/{b}/history#entry-{entry}")),
        "{}",
        page.body
    );
    let history = qa.get(&format!("/batches/{b}/history")).await;
    assert!(history.body.contains(&format!("id=\"entry-{entry}\"")));
    let last = api["up_to_seq"].as_i64().unwrap().to_string();
    assert!(
        page.body
            .contains(&format!("name=\"up_to_seq\" value=\"{last}\""))
    );
    let token = Browser::csrf(&page);

    let wrong = qa
        .post(
            &path,
            &[
                ("csrf", &token),
                ("up_to_seq", &last),
                ("password", "not-mine"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    let older = (api["up_to_seq"].as_i64().unwrap() - 1).to_string();
    let stale = qa
        .post(
            &path,
            &[
                ("csrf", &token),
                ("up_to_seq", &older),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(
        stale
            .body
            .contains(&format!("the audit trail ends at entry {last}")),
        "{}",
        stale.body
    );
    assert_eq!(lab.count("audit_reviews"), 0);
    let signed = qa
        .post(
            &path,
            &[
                ("csrf", &token),
                ("up_to_seq", &last),
                ("comment", "correction justified by the printout"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let after = qa.get(&path).await;
    assert!(
        after
            .body
            .contains("Every exception that counts is covered by a signed review.")
            && after.body.contains(&format!("entries up to #{last}"))
            && after.body.contains("correction justified by the printout"),
        "{}",
        after.body
    );
    assert!(
        qa.get("/")
            .await
            .body
            .contains("Audit trail to review before release (0)")
    );
    assert_eq!(lab.blockers(&b).await, Vec::<String>::new());
}

#[actix_web::test]
async fn the_trend_page_draws_the_chart_and_the_batch_page_warns() {
    let lab = Lab::msc().await;
    for i in 0..20 {
        let b = lab.batch(&format!("WEB-TR-{i:02}")).await;
        let v = if i % 2 == 0 { "90.0" } else { "91.128" };
        lab.recorded(&b, "VIAB", json!(v)).await;
    }
    let out = lab.batch("WEB-TR-OUT").await;
    lab.recorded(&out, "VIAB", json!("95.0")).await;
    let mut tech = Browser::as_tech(&lab).await;
    let trends = format!("/products/{}/trends", lab.product_id);
    let page = tech.get(&format!("{trends}?test_code=VIAB")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let svg = &page.body[page.body.find("<svg").unwrap()..page.body.find("</svg>").unwrap()];
    assert_eq!(svg.matches("<circle").count(), 20);
    assert_eq!(svg.matches("<polygon").count(), 1, "the flagged point");
    assert_eq!(svg.matches("<a href=\"/batches/").count(), 21);
    assert!(svg.contains(&format!("<a href=\"/batches/{out}\"")));
    assert!(svg.contains("UCL +3σ 93.564") && svg.contains("spec min 80"));
    // Drawn on the server: no script in the chart, and the page loads only
    // its own file.
    assert!(!svg.contains("<script"));
    assert_eq!(
        page.body.matches("<script").count(),
        page.body.matches("<script src=\"/static/").count(),
        "no script from elsewhere"
    );
    let flagged = &page.body[page.body.find("id=\"flagged\"").unwrap()..];
    assert!(flagged.contains("WEB-TR-OUT") && flagged.contains("nelson_1"));
    // Wrong input is named, not a server error.
    let qualitative = tech.get(&format!("{trends}?test_code=STER")).await;
    assert_eq!(qualitative.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(qualitative.body.contains("only numeric tests have a trend"));
    let bad_day = tech
        .get(&format!("{trends}?test_code=VIAB&from=2026-13-01"))
        .await;
    assert_eq!(bad_day.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_day.body.contains("must be a date"), "{}", bad_day.body);
    let csv = tech
        .get(&format!(
            "/products/{}/trends.csv?test_code=VIAB",
            lab.product_id
        ))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.body.lines().count(), 22, "a header and 21 points");
    // The batch page shows the warning next to the result; it links back.
    let batch = tech.get(&format!("/batches/{out}")).await;
    assert!(
        batch
            .body
            .contains("out of trend: beyond 3 sigma from the center (nelson_1)")
            && batch.body.contains(&format!("{trends}?test_code=VIAB")),
        "{}",
        batch.body
    );
    let quiet = tech
        .get(&format!("/batches/{}", lab.batch("WEB-TR-NONE").await))
        .await;
    assert!(!quiet.body.contains("out of trend"));
}

/// A browser signed in as the user whose token is `token`.
async fn as_user<'a>(lab: &'a Lab, token: &str) -> Browser<'a> {
    Browser::signed_in_as(lab, token).await
}

#[actix_web::test]
async fn a_result_of_a_released_batch_is_corrected_only_through_qas_signed_correction_pages() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("UCMSC-WEB-CORR", &[]).await;
    assert_eq!(
        lab.release(&b, &lab.qa2, json!({})).await.status,
        StatusCode::OK
    );
    let record = lab.batch_record(&b).await;
    let viab = record["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["test_code"] == "VIAB")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The technician: the record is closed, said in words, no form.
    let mut tech = Browser::as_tech(&lab).await;
    let form = tech
        .get(&format!("/batches/{b}/results/new?test=VIAB"))
        .await;
    assert!(form.body.contains("id=\"record-closed\""), "{}", form.body);
    assert!(!form.body.contains("name=\"value\""));
    let token = Browser::csrf(&form);
    let refused = tech
        .post(
            &format!("/batches/{b}/results"),
            &[
                ("csrf", &token),
                ("test_code", "VIAB"),
                ("value", "93.0"),
                ("performed_at", "2026-12-01T10:00"),
                ("replaces_result_id", &viab),
                ("reason", "typo"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body.contains("its record is decided"),
        "{}",
        refused.body
    );
    // ... and the deviations page offers them no correction.
    let page = tech.get(&format!("/batches/{b}/deviations")).await;
    assert!(!page.body.contains("id=\"correction\""));

    // QA opens the correction: nothing chosen for them, a statement to sign.
    let mut qa = as_user(&lab, &lab.qa).await;
    let page = qa.get(&format!("/batches/{b}/deviations")).await;
    assert!(page.body.contains("id=\"correction\""), "{}", page.body);
    assert!(
        page.body
            .contains("I open a controlled correction of this result")
    );
    let form_html = &page.body[page.body.find("id=\"correction\"").unwrap()..];
    let form_html = &form_html[..form_html.find("</form>").unwrap()];
    assert!(
        !form_html.contains("selected"),
        "nothing preselected: {form_html}"
    );
    let token = Browser::csrf(&page);
    let opened = qa
        .post(
            &format!("/batches/{b}/corrections"),
            &[
                ("csrf", &token),
                ("result_id", &viab),
                ("title", "Viability transcribed wrongly"),
                ("reason", "the counter printout reads 93.0"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    let page = qa.get(&format!("/batches/{b}/deviations")).await;
    assert!(
        page.body.contains("post-release correction"),
        "{}",
        page.body
    );
    assert!(page.body.contains("choose the conclusion"));
    assert!(page.body.contains("does not meet specification"));
    assert!(
        !page.body.contains("value=\"invalid_test\""),
        "a correction's conclusions only"
    );

    // The technician now sees the correction and records the replacement.
    let form = tech
        .get(&format!("/batches/{b}/results/new?test=VIAB"))
        .await;
    assert!(
        form.body.contains("id=\"correction-under-way\""),
        "{}",
        form.body
    );
    let token = Browser::csrf(&form);
    let instrument = lab.instrument_for("VIAB").unwrap().to_owned();
    let recorded = tech
        .post(
            &format!("/batches/{b}/results"),
            &[
                ("csrf", &token),
                ("test_code", "VIAB"),
                ("value", "93.0"),
                ("performed_at", &tech_now(&lab).await),
                ("instrument_id", &instrument),
                ("replaces_result_id", &viab),
                ("reason", "transcription error"),
            ],
        )
        .await;
    assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
    let current = lab.batch_record(&b).await["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["test_code"] == "VIAB" && r["status"] == "recorded")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(lab.review(&current, "accept").await.status, StatusCode::OK);

    // QA closes it: the batch meets its specification.
    let dev = lab.batch_record(&b).await["deviations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "post_release_correction")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = qa.get(&format!("/batches/{b}/deviations")).await;
    let token = Browser::csrf(&page);
    let closed = qa
        .post(
            &format!("/deviations/{dev}/close"),
            &[
                ("csrf", &token),
                ("batch_id", &b),
                ("conclusion", "meets_specification"),
                ("root_cause", "typing error at the bench"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.body);
    let page = qa.get(&format!("/batches/{b}/deviations")).await;
    assert!(
        page.body.contains("the batch meets its specification"),
        "{}",
        page.body
    );
}

/// Now, as the technician's forms take it (their zone, to the minute).
async fn tech_now(_lab: &Lab) -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M").to_string()
}

#[actix_web::test]
async fn a_temporary_password_reads_the_pages_and_is_told_what_to_do_before_any_write() {
    use crate::support::TEMPORARY_PASSWORD;
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-WEB-TEMP").await;
    let admin = lab.app.admin_token().await;
    let created = lab
        .app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "tom", "full_name": "Tom Temporary", "email": "tom@lab.example",
                   "roles": ["technician"], "password": TEMPORARY_PASSWORD}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let mut tom = Browser::new(&lab.app);
    let landed = tom.sign_in("tom", TEMPORARY_PASSWORD).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        landed.headers.get("location").unwrap(),
        "/account/password",
        "first, their own password"
    );
    let page = tom.get(&format!("/batches/{batch}")).await;
    assert_eq!(page.status, StatusCode::OK, "reads");
    let token = Browser::csrf(&page);
    let refused = tom
        .post(
            &format!("/batches/{batch}/deviations"),
            &[
                ("csrf", &token),
                ("title", "Bag seal"),
                ("description", "loose"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("choose your own (Account, Password)"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("href=\"/account/password\""));
    assert_eq!(lab.count("deviations"), 0);
    assert_eq!(lab.app.audit_actions("auth.write_refused").len(), 1);
    // Their own password, and the same form is taken.
    let form = tom.get("/account/password").await;
    let token = Browser::csrf(&form);
    let changed = tom
        .post(
            "/account/password",
            &[
                ("csrf", &token),
                ("current_password", TEMPORARY_PASSWORD),
                ("new_password", USER_PASSWORD),
                ("repeat", USER_PASSWORD),
            ],
        )
        .await;
    assert!(
        changed.status.is_redirection() || changed.status == StatusCode::OK,
        "{}",
        changed.body
    );
    let page = tom.get(&format!("/batches/{batch}")).await;
    let token = Browser::csrf(&page);
    let opened = tom
        .post(
            &format!("/batches/{batch}/deviations"),
            &[
                ("csrf", &token),
                ("title", "Bag seal"),
                ("description", "loose"),
            ],
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
}

/// A review is what the reviewer chose: posted without a decision (both
/// review pages) it is refused naming the decision, the form comes back as
/// sent; a decision no page offers is an unreadable form; nothing is signed
/// either way, and the pages offer no decision already chosen.
#[actix_web::test]
async fn a_review_without_a_chosen_decision_signs_nothing() {
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-NO-DECISION").await;
    let result = lab.recorded(&batch, "VIAB", json!("91.0")).await;
    let mut reviewer = Browser::signed_in_as(&lab, &lab.reviewer).await;
    let signatures = lab.count("signatures");
    let one = format!("/results/{result}/review");
    let all = format!("/batches/{batch}/review");
    for path in [&one, &all] {
        let form = reviewer.get(path).await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(!form.body.contains(" checked"), "{path}: nothing is chosen");
        let token = Browser::csrf(&form);
        let mut fields = vec![
            ("csrf", token.as_str()),
            ("comment", "looked at the raw data"),
            ("password", USER_PASSWORD),
        ];
        if path == &all {
            fields.push(("result_ids", result.as_str()));
        }
        let refused = reviewer.post(path, &fields).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(
            refused.body.contains("choose whether you accept or reject"),
            "{path}: {}",
            refused.body
        );
        assert!(
            refused.body.contains("looked at the raw data"),
            "{path}: the comment is kept"
        );
        // A value not offered is refused naming the field and what it may
        // be, the typed comment kept.
        fields.push(("decision", "approve"));
        let unknown = reviewer.post(path, &fields).await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(
            unknown.body.contains("must be one of: accept, reject")
                && unknown.body.contains("looked at the raw data"),
            "{path}: {}",
            unknown.body
        );
    }
    assert_eq!(lab.count("signatures"), signatures, "nothing signed");
    let r = lab
        .app
        .get(&format!("/api/v1/results/{result}"), &lab.reviewer)
        .await;
    assert_eq!(r.body["status"], "recorded", "still awaiting review");
}

/// Forms post codes: a technician reading Chinese chooses each kind of
/// material in Chinese and the form posts its code, so every kind is
/// received; a refused form comes back as typed, the kind still chosen.
#[actix_web::test]
async fn a_chinese_technician_receives_every_kind_of_material_and_a_refused_form_keeps_what_was_typed()
 {
    let lab = Lab::msc().await;
    let r = lab
        .app
        .post("/api/v1/auth/locale", &lab.tech, json!({"locale": "zh-CN"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut tech = Browser::as_tech(&lab).await;
    let list = tech.get("/materials").await;
    for (code, words) in [
        ("reagent", "试剂"),
        ("consumable", "耗材"),
        ("raw_material", "原材料"),
    ] {
        assert!(
            list.body
                .contains(&format!("<option value=\"{code}\">{words}</option>")),
            "{code}: {}",
            list.body
        );
    }
    let token = Browser::csrf(&list);
    let expires = (chrono::Utc::now() + chrono::Duration::days(90))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    for (n, kind) in ["reagent", "consumable", "raw_material"].iter().enumerate() {
        let lot = format!("L{n}");
        let made = tech
            .post(
                "/materials",
                &[
                    ("csrf", &token),
                    ("code", "CD73-PE"),
                    ("name", "CD73 PE 抗体"),
                    ("lot_number", &lot),
                    ("kind", kind),
                    ("expires_at", &expires),
                ],
            )
            .await;
        assert_eq!(made.status, StatusCode::SEE_OTHER, "{kind}: {}", made.body);
    }
    let refused = tech
        .post(
            "/materials",
            &[
                ("csrf", &token),
                ("code", "CD90-FITC"),
                ("name", "CD90 FITC 抗体"),
                ("lot_number", "L-2026-7"),
                ("supplier", "BD Biosciences"),
                ("kind", "consumable"),
                ("expires_at", "next spring"),
            ],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    for typed in [
        "value=\"CD90-FITC\"",
        "value=\"CD90 FITC 抗体\"",
        "value=\"L-2026-7\"",
        "value=\"BD Biosciences\"",
        "<option value=\"consumable\" selected>",
    ] {
        assert!(refused.body.contains(typed), "{typed}: {}", refused.body);
    }
    let posted_word = tech
        .post(
            "/materials",
            &[
                ("csrf", &token),
                ("code", "CD105"),
                ("name", "CD105"),
                ("lot_number", "L9"),
                ("kind", "试剂"),
                ("expires_at", &expires),
            ],
        )
        .await;
    assert_eq!(posted_word.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(lab.count("material_lots"), 3);
}

/// A page's form and the API's JSON body are read into the same command
/// (`ReceiveMaterial`): the same fields are refused with the same words, every
/// refused field is named at once, and nothing is received.
#[actix_web::test]
async fn a_form_and_a_json_body_are_read_into_one_command_and_refused_alike() {
    let lab = Lab::msc().await;
    let mut tech = Browser::as_tech(&lab).await;
    let list = tech.get("/materials").await;
    let token = Browser::csrf(&list);
    let long = "x".repeat(201);
    let form = tech
        .post(
            "/materials",
            &[
                ("csrf", &token),
                ("code", "-CD73"),
                ("name", &long),
                ("lot_number", "L1"),
                ("kind", "reagent"),
                ("expires_at", "2031-01-01T10:00"),
            ],
        )
        .await;
    assert_eq!(
        form.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        form.body
    );
    let api = lab
        .app
        .post(
            "/api/v1/materials",
            &lab.tech,
            json!({"code": "-CD73", "name": long, "lot_number": "L1",
                   "expires_at": "2031-01-01T10:00:00Z"}),
        )
        .await;
    assert_eq!(api.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", api.body);
    let mut named: Vec<(String, String)> = api.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        vec![
            (
                "code".to_owned(),
                "letters, digits, . _ - only, starting with a letter or digit".to_owned()
            ),
            ("kind".to_owned(), "is required".to_owned()),
            (
                "name".to_owned(),
                "must be 1 to 200 printable characters on one line".to_owned()
            ),
        ]
    );
    // The page names the same two typed fields in the same words.
    for (_, words) in named.iter().filter(|(f, _)| f != "kind") {
        assert!(form.body.contains(words.as_str()), "{words}: {}", form.body);
    }
    assert_eq!(lab.count("material_lots"), 0);
}

/// A creating form carries a one-time key: the same custody form sent twice
/// records one event and answers both with the first outcome (a form shown
/// again carries a new key); so do the new-batch and record-result forms.
#[actix_web::test]
async fn a_creating_form_sent_twice_creates_once() {
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-TWICE").await;
    let mut tech = Browser::as_tech(&lab).await;
    let path = format!("/batches/{batch}/custody/new");
    let form = tech.get(&path).await;
    let key = between(&form.body, "name=\"form_key\" value=\"", "\"");
    let token = Browser::csrf(&form);
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let fields = [
        ("csrf", token.as_str()),
        ("form_key", key.as_str()),
        ("event", "received"),
        ("occurred_at", now.as_str()),
        ("location", "QC store"),
        ("party", "QC"),
        ("scanned_din", ""),
    ];
    let post = format!("/batches/{batch}/custody");
    let first = tech.post(&post, &fields).await;
    let again = tech.post(&post, &fields).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert_eq!(first.headers.get("location"), again.headers.get("location"));
    assert_eq!(lab.count("custody_events"), 1, "recorded once");
    let next = tech.get(&path).await;
    assert_ne!(
        between(&next.body, "name=\"form_key\" value=\"", "\""),
        key,
        "a new key each time the form is shown"
    );

    // The new-batch and record-result forms alike.
    let form = tech.get("/batches/new").await;
    let key = between(&form.body, "name=\"form_key\" value=\"", "\"");
    let later = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let batches = lab.count("batches");
    let fields = [
        ("csrf", token.as_str()),
        ("form_key", key.as_str()),
        ("product_id", lab.product_id.as_str()),
        ("batch_number", "UCMSC-TWICE-2"),
        ("manufactured_at", now.as_str()),
        ("expires_at", later.as_str()),
    ];
    let first = tech.post("/batches", &fields).await;
    let again = tech.post("/batches", &fields).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert_eq!(first.headers.get("location"), again.headers.get("location"));
    assert_eq!(lab.count("batches"), batches + 1, "started once");
    let form = tech.get(&format!("/batches/{batch}/results/new")).await;
    let key = between(&form.body, "name=\"form_key\" value=\"", "\"");
    let fields = [
        ("csrf", token.as_str()),
        ("form_key", key.as_str()),
        ("test_code", "POT"),
        ("value", "35"),
        ("performed_at", now.as_str()),
    ];
    let post = format!("/batches/{batch}/results");
    let first = tech.post(&post, &fields).await;
    let again = tech.post(&post, &fields).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert_eq!(first.headers.get("location"), again.headers.get("location"));
    assert_eq!(lab.count("results"), 1, "recorded once");

    // And a material lot received.
    let form = tech.get("/materials").await;
    let key = between(&form.body, "name=\"form_key\" value=\"", "\"");
    let fields = [
        ("csrf", token.as_str()),
        ("form_key", key.as_str()),
        ("code", "7AAD"),
        ("name", "7-AAD"),
        ("lot_number", "L-TWICE"),
        ("kind", "reagent"),
        ("expires_at", later.as_str()),
    ];
    let first = tech.post("/materials", &fields).await;
    let again = tech.post("/materials", &fields).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert_eq!(first.headers.get("location"), again.headers.get("location"));
    assert_eq!(lab.count("material_lots"), 1, "received once");
}

/// Sends a form twice with its one-time key, as a double click does: both
/// answers are the first one's.
async fn twice(b: &mut Browser<'_>, page: &str, post: &str, fields: &[(&str, &str)]) -> Page {
    let form = b.get(page).await;
    let key = between(&form.body, "name=\"form_key\" value=\"", "\"");
    let token = Browser::csrf(&form);
    let mut sent = vec![("csrf", token.as_str()), ("form_key", key.as_str())];
    sent.extend_from_slice(fields);
    let first = b.post_pairs(post, &sent).await;
    let again = b.post_pairs(post, &sent).await;
    assert!(
        first.status == StatusCode::SEE_OTHER || first.status == StatusCode::OK,
        "{post}: {}",
        first.body
    );
    assert_eq!(first.status, again.status, "{post}");
    assert_eq!(
        first.headers.get("location"),
        again.headers.get("location"),
        "{post}"
    );
    first
}

#[actix_web::test]
async fn deviation_correction_product_draft_qualification_and_account_forms_sent_twice_create_once()
{
    let lab = Lab::msc().await;
    let batch = lab.batch("UCMSC-TWICE-QA").await;
    let mut tech = Browser::as_tech(&lab).await;
    let deviations = lab.count("deviations");
    twice(
        &mut tech,
        &format!("/batches/{batch}/deviations"),
        &format!("/batches/{batch}/deviations"),
        &[
            ("title", "Incubator door left ajar"),
            ("description", "Found open for 3 minutes"),
            ("severity", "minor"),
        ],
    )
    .await;
    assert_eq!(lab.count("deviations"), deviations + 1, "opened once");

    let mut qa = Browser::signed_in_as(&lab, &lab.qa).await;
    let products = lab.count("products");
    twice(
        &mut qa,
        "/products/new",
        "/products",
        &[
            ("code", "UCMSC-TWICE"),
            ("name", "Umbilical-cord MSC"),
            ("product_type", "allogeneic MSC"),
            ("storage_min_c", "2"),
            ("storage_max_c", "8"),
            ("release_signatures_required", "1"),
        ],
    )
    .await;
    assert_eq!(lab.count("products"), products + 1, "defined once");
    let specs = lab.count("specifications");
    let product = format!("/products/{}", lab.product_id);
    twice(
        &mut qa,
        &product,
        &format!("{product}/specifications"),
        &[
            ("version", "9.0"),
            ("code", "VIAB"),
            ("name", "viability"),
            ("method", "7-AAD flow cytometry"),
            ("kind", "numeric"),
            ("unit", "%"),
            ("min", "70"),
            ("min_inclusive", "yes"),
            ("max", ""),
            ("max_inclusive", "no"),
            ("decimals", ""),
            ("options", ""),
            ("allowed", ""),
            ("required", "yes"),
            ("pending_release_allowed", "no"),
        ],
    )
    .await;
    assert_eq!(lab.count("specifications"), specs + 1, "drafted once");
    let mappings = lab.count("import_mappings");
    twice(
        &mut qa,
        &format!("{product}/import-mappings"),
        &format!("{product}/import-mappings"),
        &[("name", "FlowJo panel"), ("map.CD73", "CD73+ %")],
    )
    .await;
    assert_eq!(lab.count("import_mappings"), mappings + 1, "saved once");

    // A signed grant: one qualification, one signature.
    let (other_id, _) = lab.app.user_with(&["technician"]).await;
    let (qualifications, signatures) = (lab.count("qualifications"), lab.count("signatures"));
    let until = (chrono::Utc::now() + chrono::Duration::days(90))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let granted = twice(
        &mut qa,
        "/qualifications",
        "/qualifications",
        &[
            ("user", other_id.as_str()),
            ("test_code", "VIAB"),
            ("valid_until", until.as_str()),
            ("reason", "TR-9, observed run"),
            ("password", USER_PASSWORD),
        ],
    )
    .await;
    assert!(
        granted.body.contains("is qualified for VIAB"),
        "{}",
        granted.body
    );
    assert_eq!(lab.count("qualifications"), qualifications + 1);
    assert_eq!(lab.count("signatures"), signatures + 1, "signed once");

    let mut admin = Browser::new(&lab.app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let users = lab.count("users");
    twice(
        &mut admin,
        "/users",
        "/users",
        &[
            ("username", "twicetech"),
            ("full_name", "Twice Tech"),
            ("email", "twice@lab.example"),
            ("roles", "technician"),
            ("password", "a-long-enough-pw"),
        ],
    )
    .await;
    assert_eq!(lab.count("users"), users + 1, "created once");
}

/// The text of `page` between `start` and the next `end`.
fn between(page: &str, start: &str, end: &str) -> String {
    let from = page
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {page}"))
        + start.len();
    let len = page[from..].find(end).unwrap();
    page[from..from + len].to_owned()
}

/// Ends every session of the test's users as the idle timeout does.
fn idle_out(app: &TestApp) {
    use diesel::RunQueryDsl;
    diesel::sql_query("UPDATE sessions SET last_seen_at = now() - interval '2 days'")
        .execute(&mut app.conn())
        .unwrap();
}

#[actix_web::test]
async fn a_form_sent_after_the_session_ended_leads_to_sign_in_and_back_to_its_page() {
    let app = TestApp::spawn().await;
    let (_, tech) = app.user_with(&["technician"]).await;
    let mut b = Browser::new(&app);
    b.sign_in(&tech, USER_PASSWORD).await;
    let form = b.get("/batches/new").await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = Browser::csrf(&form);
    idle_out(&app);
    let batches = app.count("batches");
    let send = |referer: String| {
        let cookie = format!("cellqc_session={}", b.cookies["cellqc_session"]);
        let (client, address, csrf) = (b.client.clone(), app.address.clone(), csrf.clone());
        async move {
            client
                .post(format!("{address}/batches"))
                .insert_header(("Cookie", cookie))
                .insert_header(("Referer", referer))
                .send_form(&[("csrf", csrf.as_str()), ("batch_number", "B-HELD-1")])
                .await
                .unwrap()
        }
    };
    // Sent from the form's page: to sign in, then back to that page, the
    // typed values held by the browser; nothing was created.
    let r = send(format!("{}/batches/new?product=x", app.address)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers().get("location").unwrap(),
        "/login?next=%2Fbatches%2Fnew%3Fproduct%3Dx&held=1"
    );
    assert_eq!(app.count("batches"), batches);
    // Another site's page, or the post's own address, is never named.
    let r = send("http://elsewhere.example/batches/new".to_owned()).await;
    assert_eq!(r.headers().get("location").unwrap(), "/login?held=1");
    let r = send(format!("{}/batches", app.address)).await;
    assert_eq!(r.headers().get("location").unwrap(), "/login?held=1");
    // A page asked for: back to it.
    let r = b.get("/batches?q=UC%20MSC").await;
    assert_eq!(
        r.headers.get("location").unwrap(),
        "/login?next=%2Fbatches%3Fq%3DUC%2520MSC"
    );

    // The sign-in page says why, and carries the way back.
    let login = b.get("/login?next=%2Fbatches%2Fnew&held=1").await;
    assert!(
        login
            .body
            .contains("Your session ended before your form was sent"),
        "{}",
        login.body
    );
    assert_eq!(Browser::hidden(&login, "next"), "/batches/new");
    let token = Browser::csrf(&login);
    let sign_in = |next: &'static str| {
        let (token, tech) = (token.clone(), tech.clone());
        let mut b = Browser::new(&app);
        b.cookies
            .insert("cellqc_login_csrf".to_owned(), token.clone());
        async move {
            b.post(
                "/login",
                &[
                    ("csrf", token.as_str()),
                    ("username", tech.as_str()),
                    ("password", USER_PASSWORD),
                    ("next", next),
                    ("held", "1"),
                ],
            )
            .await
        }
    };
    let back = sign_in("/batches/new").await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert_eq!(back.headers.get("location").unwrap(), "/batches/new");
    for elsewhere in [
        "//elsewhere.example/x",
        "https://elsewhere.example/",
        "/\\elsewhere.example",
    ] {
        let home = sign_in(elsewhere).await;
        assert_eq!(home.headers.get("location").unwrap(), "/", "{elsewhere}");
    }
    // The idle session's end is on the trail.
    assert!(!app.audit_actions("auth.session_timed_out").is_empty());
}

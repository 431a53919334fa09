//! Language: a user's locale, the words of refusals, pages, emails, the
//! statement recorded with a signature, and the certificate in Chinese.

use crate::lab::Lab;
use crate::support::TestApp;
use actix_web::http::StatusCode;
use diesel::prelude::*;
use serde_json::json;

async fn certificate(lab: &Lab, batch: &str, token: &str, query: &str) -> (StatusCode, Vec<u8>) {
    let client = awc::Client::default();
    let mut res = client
        .get(format!(
            "{}/api/v1/batches/{batch}/certificate{query}",
            lab.app.address
        ))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.body().limit(10 << 20).await.unwrap().to_vec())
}

fn text_of(bytes: &[u8]) -> String {
    let text = pdf_extract::extract_text_from_mem(bytes).unwrap();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn set_locale(app: &TestApp, token: &str, locale: &str) -> crate::support::Resp {
    app.post("/api/v1/auth/locale", token, json!({ "locale": locale }))
        .await
}

#[actix_web::test]
async fn a_user_chooses_their_language_and_an_admin_may_set_it() {
    let app = TestApp::spawn().await;
    let (id, token) = app.signed_in(&["technician"]).await;
    let me = app.get("/api/v1/auth/me", &token).await;
    assert_eq!(me.body["locale"], "en", "the default: {}", me.body);

    let set = set_locale(&app, &token, "zh-CN").await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["locale"], "zh-CN");
    let me = app.get("/api/v1/auth/me", &token).await;
    assert_eq!(me.body["locale"], "zh-CN");
    let changed = app.audit_actions("user.locale_changed");
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].0.map(|u| u.to_string()), Some(id.clone()));
    assert_eq!(changed[0].1.as_ref().unwrap()["locale"], "zh-CN");
    // The same language again changes nothing and is not audited.
    set_locale(&app, &token, "zh-CN").await;
    assert_eq!(app.audit_actions("user.locale_changed").len(), 1);

    // A language cellqc does not speak is refused, naming the field.
    let bad = set_locale(&app, &token, "fr").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.body["errors"][0]["field"], "locale", "{}", bad.body);
    let stored: String = cellqc::db::schema::users::table
        .find(uuid::Uuid::parse_str(&id).unwrap())
        .select(cellqc::db::schema::users::locale)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(stored, "zh-CN");

    // The admin's fields: on creation and by PATCH.
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "wang2", "full_name": "王芳", "email": "wang2@lab.example",
                   "roles": ["technician"], "password": "a-temporary-password-1", "locale": "zh-CN"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["locale"], "zh-CN");
    let patched = app
        .call(
            "PATCH",
            &format!("/api/v1/users/{}", created.body["id"].as_str().unwrap()),
            Some(&admin),
            json!({"locale": "en"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["locale"], "en");
    let updated = app.audit_actions("user.updated");
    let last = updated.last().unwrap().1.as_ref().unwrap();
    assert_eq!(last["locale"], "en");
}

#[actix_web::test]
async fn a_refusal_speaks_the_language_asked_for_and_keeps_its_code() {
    let app = TestApp::spawn().await;
    let (_, token) = app.signed_in(&["technician"]).await;
    let path = format!("/api/v1/batches/{}", uuid::Uuid::now_v7());
    let english = app.get(&path, &token).await;
    assert_eq!(english.status, StatusCode::NOT_FOUND);
    assert_eq!(english.body["title"], "Not Found");
    assert_eq!(english.body["code"], "batch_not_found");

    let req = app
        .request("GET", &path, Some(&token))
        .insert_header(("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.8"));
    let chinese = app.send(req, None).await;
    assert_eq!(chinese.status, StatusCode::NOT_FOUND);
    assert_eq!(chinese.body["title"], "未找到", "{}", chinese.body);
    assert_eq!(chinese.body["code"], "batch_not_found");
    let detail = chinese.body["detail"].as_str().unwrap();
    assert!(detail.starts_with("没有该批次。"), "{detail}");
    // The specific words stay, so nothing the English said is lost.
    assert!(
        detail.contains(english.body["detail"].as_str().unwrap()),
        "{detail}"
    );

    // A validation refusal: the field names never change.
    let req = app
        .request("POST", "/api/v1/auth/locale", Some(&token))
        .insert_header(("Accept-Language", "zh-CN"));
    let bad = app
        .send(req, Some(json!({"locale": "xx"}).to_string().into_bytes()))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["title"], "内容无效");
    assert_eq!(bad.body["errors"][0]["field"], "locale");
}

#[actix_web::test]
async fn a_chinese_reviewer_and_qp_sign_in_chinese_and_the_certificate_reads_in_chinese() {
    let lab = Lab::msc().await;
    set_locale(&lab.app, &lab.reviewer, "zh-CN").await;
    set_locale(&lab.app, &lab.qa2, "zh-CN").await;

    // An OOS reaches each QA person in their own language.
    let oos = lab.batch("UCMSC-ZH-OOS").await;
    lab.record(&oos, "STER", json!("growth")).await;
    let mails: Vec<(String, Vec<String>)> = cellqc::db::schema::email_outbox::table
        .filter(cellqc::db::schema::email_outbox::kind.eq("oos_recorded"))
        .select((
            cellqc::db::schema::email_outbox::subject,
            cellqc::db::schema::email_outbox::recipients,
        ))
        .load(&mut lab.app.conn())
        .unwrap();
    assert_eq!(mails.len(), 2, "{mails:?}");
    let subjects: Vec<&str> = mails.iter().map(|(s, _)| s.as_str()).collect();
    assert!(
        subjects.contains(&"[cellqc] OOS on batch UCMSC-ZH-OOS: STER failed"),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"[cellqc] 批次 UCMSC-ZH-OOS 出现超标（OOS）：STER 不合格"),
        "{subjects:?}"
    );

    let b = lab.tested_batch("UCMSC-ZH-1", &[]).await;
    let released = lab
        .release(&b, &lab.qa2, json!({"comment": "符合质量标准"}))
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);

    // Each signature keeps the statement its signer read, in their language.
    let record = lab.batch_record(&b).await;
    let release = &record["signatures"][0];
    assert_eq!(release["meaning"], "released");
    assert_eq!(release["statement"], "我批准此批次放行");
    assert_eq!(release["statement_locale"], "zh-CN");
    let review = &record["results"][0]["signatures"][0];
    assert_eq!(review["meaning"], "reviewed");
    assert_eq!(review["statement"], "我已审核此结果并予以接受");
    let stored: Vec<(String, Option<String>, Option<String>)> =
        cellqc::db::schema::signatures::table
            .filter(cellqc::db::schema::signatures::meaning.eq("released"))
            .select((
                cellqc::db::schema::signatures::meaning,
                cellqc::db::schema::signatures::statement,
                cellqc::db::schema::signatures::statement_locale,
            ))
            .load(&mut lab.app.conn())
            .unwrap();
    assert_eq!(
        stored,
        vec![(
            "released".to_owned(),
            Some("我批准此批次放行".to_owned()),
            Some("zh-CN".to_owned())
        )]
    );

    // The certificate follows the reader: Chinese for the Chinese QP.
    let (status, zh) = certificate(&lab, &b, &lab.qa2, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(zh.len() < 300 * 1024, "{} bytes", zh.len());
    let text = text_of(&zh);
    for needle in [
        "检验报告书",
        "批号",
        "UCMSC-ZH-1",
        "检测项目",
        "合格",
        "已放行",
        "我批准此批次放行",
        "符合质量标准",
        "第 1 页",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
    assert!(!text.contains("Certificate of Analysis"), "{text}");

    // Bilingual: both; the English reader's statement next to the signer's.
    let (status, both) = certificate(&lab, &b, &lab.tech, "?lang=bilingual").await;
    assert_eq!(status, StatusCode::OK);
    assert!(both.len() < 300 * 1024, "{} bytes", both.len());
    let text = text_of(&both);
    for needle in [
        "检验报告书 / Certificate of Analysis",
        "批号 / Batch number",
        "UCMSC-ZH-1",
        "我批准此批次放行",
        "I approve this batch for release",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }

    // English for an English reader, the Chinese-signed statement kept.
    let (_, en) = certificate(&lab, &b, &lab.tech, "").await;
    let text = text_of(&en);
    assert!(text.contains("Certificate of Analysis"), "{text}");
    assert!(text.contains("我批准此批次放行"), "{text}");

    // A language that isn't offered is refused, naming it.
    let (status, body) = certificate(&lab, &b, &lab.tech, "?lang=fr").await;
    assert!(status.is_client_error(), "{status}");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(body.to_string().contains("lang"), "{body}");
}

#[actix_web::test]
async fn pages_before_sign_in_follow_the_browser_and_refusals_after_it_follow_the_user() {
    let app = TestApp::spawn().await;
    let client = awc::Client::default();
    let page = |path: &str, lang: &str| {
        client
            .get(format!("{}{path}", app.address))
            .insert_header(("Accept-Language", lang.to_owned()))
    };
    let mut res = page("/login", "zh-CN,zh;q=0.9,en;q=0.8")
        .send()
        .await
        .unwrap();
    let html = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(html.contains("<html lang=\"zh-CN\">"), "{html}");
    assert!(html.contains("用户名") && html.contains("登录"), "{html}");
    let mut res = page("/login", "en-GB,en;q=0.9").send().await.unwrap();
    let html = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(
        html.contains("Username") && !html.contains("用户名"),
        "{html}"
    );
    // An unknown page, in the browser's language.
    let mut res = page("/no-such-page", "zh-CN").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let html = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(
        html.contains("未找到") && html.contains("没有该页面或记录"),
        "{html}"
    );
}

#[actix_web::test]
async fn a_chinese_readers_refusals_are_in_chinese_on_every_page() {
    let lab = Lab::msc().await;
    set_locale(&lab.app, &lab.tech, "zh-CN").await;
    let mut b = crate::web::Browser::as_tech(&lab).await;
    // A page the technician may not use: the error page in Chinese.
    let page = b.get("/users").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("<html lang=\"zh-CN\">"), "{}", page.body);
    assert!(
        page.body.contains("不允许") && page.body.contains("您的角色不允许此操作"),
        "{}",
        page.body
    );
    // A record that does not exist.
    let page = b.get(&format!("/batches/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("没有该批次"), "{}", page.body);
    // An address refused before the page knows its reader (a malformed
    // id): still in the signed-in user's language, whatever the browser says.
    let page = b.get("/products/new-ish/trends").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("<html lang=\"zh-CN\">"), "{}", page.body);
    // A refused form: the field's label and its message both in Chinese.
    let b_id = lab.batch("UCMSC-ZH-FORM").await;
    let form = b.get(&format!("/batches/{b_id}/results/new")).await;
    let csrf = crate::web::Browser::csrf(&form);
    let refused = b
        .post(
            &format!("/batches/{b_id}/results"),
            &[
                ("csrf", &csrf),
                ("test_code", "VIAB"),
                ("value", "n/a"),
                ("performed_at", "2020-01-01T00:00"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    for words in [
        "未保存任何内容",
        "数值：此检测项目为数值型：数值不是十进制数",
        "检测时间：早于批次的生产时间",
    ] {
        assert!(refused.body.contains(words), "{words}: {}", refused.body);
    }
}

#[actix_web::test]
async fn refusals_with_specifics_and_the_bag_label_are_in_chinese_for_a_chinese_reader() {
    let lab = Lab::msc().await;
    set_locale(&lab.app, &lab.tech, "zh-CN").await;
    let mut b = crate::web::Browser::as_tech(&lab).await;
    let at = |days: i64| {
        (chrono::Utc::now() + chrono::Duration::days(days))
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let (made, expires) = (at(-3), at(30));
    let before = lab.count("batches");

    // A DIN with the wrong check character: the reason and its specifics
    // in Chinese on the page.
    let form = b.get("/batches/new").await;
    let csrf = crate::web::Browser::csrf(&form);
    let refused = b
        .post(
            "/batches",
            &[
                ("csrf", &csrf),
                ("product_id", &lab.product_id),
                ("batch_number", "UCMSC-ZH-DIN"),
                ("manufactured_at", &made),
                ("expires_at", &expires),
                ("donor_din", "G123498654321J"),
                ("quantity", "abc"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    for words in ["校验字符 J 与编号不符", "不是十进制数"] {
        assert!(refused.body.contains(words), "{words}: {}", refused.body);
    }
    assert!(
        !refused.body.contains("check character is"),
        "{}",
        refused.body
    );
    assert_eq!(lab.count("batches"), before, "nothing was created");

    // The API keeps its English message and says it in Chinese when asked.
    let body = json!({
        "product_id": lab.product_id,
        "batch_number": "UCMSC-ZH-DIN",
        "manufactured_at": chrono::Utc::now() - chrono::Duration::days(3),
        "expires_at": chrono::Utc::now() + chrono::Duration::days(30),
        "donor_din": "G123498654321J",
    });
    let english = lab
        .app
        .post("/api/v1/batches", &lab.tech, body.clone())
        .await;
    assert_eq!(english.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = |r: &crate::support::Resp, field: &str| {
        r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"] == field)
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no error for {field}: {}", r.body))
    };
    assert_eq!(
        message(&english, "donor_din"),
        "check character J does not match the number: check the DIN as typed or scanned (ISO 7064 Mod 37-2)"
    );
    let req = lab
        .app
        .request("POST", "/api/v1/batches", Some(&lab.tech))
        .insert_header(("Accept-Language", "zh-CN"));
    let chinese = lab.app.send(req, Some(body.to_string().into_bytes())).await;
    assert_eq!(chinese.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        message(&chinese, "donor_din"),
        "校验字符 J 与编号不符：请核对输入或扫描的 DIN（ISO 7064 Mod 37-2）"
    );
    // A parent that is not a batch: the words carry its id in both.
    let mut body = body;
    body["donor_din"] = json!("G1234 98 654321 H");
    body["parent_batch_ids"] = json!([uuid::Uuid::now_v7()]);
    let english = lab
        .app
        .post("/api/v1/batches", &lab.tech, body.clone())
        .await;
    assert!(message(&english, "parent_batch_ids[0]").starts_with("no batch "));
    let req = lab
        .app
        .request("POST", "/api/v1/batches", Some(&lab.tech))
        .insert_header(("Accept-Language", "zh-CN"));
    let chinese = lab.app.send(req, Some(body.to_string().into_bytes())).await;
    assert!(message(&chinese, "parent_batch_ids[0]").starts_with("没有批次 "));

    // The bag label: in the reader's language by default, English or both
    // when asked.
    let made = lab
        .create_batch(json!({
            "batch_number": "UCMSC-ZH-LABEL",
            "donor_din": "G1234 98 654321 H",
            "intended_recipient": "PT-0042",
        }))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let id = made.body["id"].as_str().unwrap();
    let (status, pdf) = b.get_bytes(&format!("/batches/{id}/label")).await;
    assert_eq!(status, StatusCode::OK);
    let zh = text_of(&pdf);
    for words in [
        "批号 UCMSC-ZH-LABEL",
        "指定受者 PT-0042",
        "有效期至",
        "G1234 98 654321",
    ] {
        assert!(zh.contains(words), "{words}: {zh}");
    }
    assert!(!zh.contains("Batch UCMSC"), "{zh}");
    let (_, pdf) = b.get_bytes(&format!("/batches/{id}/label?lang=en")).await;
    let en = text_of(&pdf);
    assert!(
        en.contains("Batch UCMSC-ZH-LABEL") && en.contains("For recipient PT-0042"),
        "{en}"
    );
    let (_, pdf) = b
        .get_bytes(&format!("/batches/{id}/label?lang=bilingual"))
        .await;
    let both = text_of(&pdf);
    assert!(
        both.contains("批号 UCMSC-ZH-LABEL") && both.contains("Batch UCMSC-ZH-LABEL"),
        "{both}"
    );
}

//! What people read is what was signed (API v1.2): every GMP row is bound to
//! the trail, so a row changed outside cellqc is named by verification, and
//! the app's own database role can't change a row, or a status a signature
//! decides, without the entry and the signature that go with it.

use crate::lab::Lab;
use crate::support::TestApp;
use actix_web::http::StatusCode;
use cellqc::db::schema::{batches, deviations, signatures, users};
use cellqc::domain::audit::SYSTEM_CHAIN;
use cellqc::services::audit::{AuditRecord, append};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// What verification reported broken, as JSON items.
async fn broken(lab: &Lab, query: &str) -> (bool, Vec<Value>) {
    let auditor = lab.app.signed_in(&["auditor"]).await.1;
    let v = lab
        .app
        .get(&format!("/api/v1/audit/verify{query}"), &auditor)
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    (
        v.body["ok"].as_bool().unwrap(),
        v.body["broken"].as_array().unwrap().clone(),
    )
}

/// The app role's connection, as the server has it.
fn as_app(app: &TestApp) -> PgConnection {
    let mut c = PgConnection::establish(&app.app_url).unwrap();
    cellqc::db::pool::session_defaults(&mut c).unwrap();
    c
}

/// Runs `sql` as one transaction; the error when it is refused.
fn refused(conn: &mut PgConnection, sql: &str) -> String {
    match conn.transaction::<(), diesel::result::Error, _>(|c| c.batch_execute(sql)) {
        Ok(()) => panic!("`{sql}` committed"),
        Err(e) => e.to_string(),
    }
}

#[actix_web::test]
async fn a_superuser_rewrite_of_a_released_result_is_named_by_verification() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("REWRITE-1", &[]).await;
    let released = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
    let (ok, none) = broken(&lab, "").await;
    assert!(ok, "{none:?}");
    // An anchor taken now: the rewrite comes after it.
    let made = lab
        .app
        .post("/api/v1/audit/anchors", &lab.qa, json!({}))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);

    let record = lab.batch_record(&b).await;
    let viab = record["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["test_code"] == "VIAB")
        .unwrap()
        .clone();
    let result_id = viab["id"].as_str().unwrap().to_owned();
    let review_id = viab["signatures"][0]["id"].as_str().unwrap().to_owned();
    // The superuser silences the triggers and changes the value.
    lab.app
        .conn()
        .batch_execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica;
             UPDATE results SET value_text = '45', value_numeric = 45 WHERE id = '{result_id}';
             COMMIT;"
        ))
        .unwrap();

    for query in ["", "?anchors=true"] {
        let (ok, broken) = broken(&lab, query).await;
        assert!(!ok);
        let altered = broken
            .iter()
            .find(|x| x["kind"] == "row_altered")
            .unwrap_or_else(|| panic!("{broken:?}"));
        assert_eq!(altered["table"], "results");
        assert_eq!(altered["id"], result_id.as_str());
        assert_eq!(altered["chain"], format!("batch:{b}"));
        assert!(altered["seq"].as_i64().unwrap() > 1, "{altered}");
        let mismatch = broken
            .iter()
            .find(|x| x["kind"] == "signature_mismatch")
            .unwrap_or_else(|| panic!("{broken:?}"));
        assert_eq!(mismatch["signature_id"], review_id.as_str());
        assert_eq!(mismatch["table"], "results");
        assert_eq!(mismatch["id"], result_id.as_str());
        assert_eq!(broken.len(), 2, "nothing else: {broken:?}");
    }

    // Nobody prints it: the certificate names what differs.
    let coa = lab
        .app
        .get(&format!("/api/v1/batches/{b}/certificate"), &lab.qa)
        .await;
    assert_eq!(coa.status, StatusCode::CONFLICT, "{}", coa.body);
    assert_eq!(coa.code(), "record_altered");
    let said = coa.body["detail"].as_str().unwrap();
    assert!(said.contains(&format!("results row {result_id}")), "{said}");
    assert!(said.contains(&format!("signature {review_id}")), "{said}");

    // The command line names the same, and fails.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cellqc"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", &lab.app.db_url)
        .env("CELLQC_DATA_DIR", lab.app.data_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "BROKEN: results row {result_id}, chain batch:{b}, entry"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "BROKEN: signature {review_id}, results row {result_id}"
        )),
        "{stdout}"
    );
}

#[actix_web::test]
async fn the_app_role_can_not_release_close_promote_or_copy_a_password_without_the_record() {
    let lab = Lab::msc().await;
    let b = lab.batch("APPROLE-1").await;
    lab.recorded(&b, "VIAB", json!("91.0")).await;
    let opened = lab
        .app
        .post(
            &format!("/api/v1/batches/{b}/deviations"),
            &lab.tech,
            json!({"title": "Bag seal", "description": "seal looked loose"}),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let dev = opened.body["id"].as_str().unwrap().to_owned();
    let tech = lab.tech_id.clone();
    let qa_id = lab.app.get("/api/v1/auth/me", &lab.qa).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut app = as_app(&lab.app);

    for (sql, expect) in [
        (
            format!("UPDATE batches SET status = 'released' WHERE id = '{b}'"),
            "without its released signature",
        ),
        (
            format!(
                "UPDATE deviations SET status = 'closed', conclusion = 'no_impact', root_cause = 'none', \
                 closed_by = '{qa_id}', closed_at = now() WHERE id = '{dev}'"
            ),
            "without its deviation_closed signature",
        ),
        (
            format!("UPDATE users SET roles = '{{technician,qa}}' WHERE id = '{tech}'"),
            "without the audit entry that covers it",
        ),
        (
            format!(
                "UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE username = 'admin') \
                 WHERE id = '{tech}'"
            ),
            "without the audit entry that covers it",
        ),
        (
            format!(
                "INSERT INTO results (id, batch_id, test_code, value_text, outcome, performed_by, performed_at, recorded_at) \
                 VALUES (gen_random_uuid(), '{b}', 'STER', 'no growth', 'pass', '{tech}', now(), now())"
            ),
            "without the audit entry that covers it",
        ),
    ] {
        let e = refused(&mut app, &sql);
        assert!(e.contains(expect), "`{sql}`: {e}");
    }
    assert_eq!(lab.status(&b), "quarantine");
    let mut c = lab.app.conn();
    let dev_status: String = deviations::table
        .find(Uuid::parse_str(&dev).unwrap())
        .select(deviations::status)
        .first(&mut c)
        .unwrap();
    assert_eq!(dev_status, "open");
    let roles: Vec<String> = users::table
        .find(Uuid::parse_str(&tech).unwrap())
        .select(users::roles)
        .first(&mut c)
        .unwrap();
    assert_eq!(roles, ["technician"]);
    assert_eq!(lab.count("results"), 1);
    let (ok, none) = broken(&lab, "").await;
    assert!(ok, "nothing was written: {none:?}");

    // With the trail's own writer the change commits, and the trail says so:
    // a change the app's credentials make is never a silent one.
    app.transaction::<(), cellqc::error::AppError, _>(|c| {
        c.batch_execute(&format!(
            "UPDATE users SET roles = '{{technician,qa}}' WHERE id = '{tech}'"
        ))?;
        append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                None,
                cellqc::domain::audit_event::AuditEvent::UserUpdated,
                "user",
                Some(Uuid::parse_str(&tech).unwrap()),
            )
            .after(json!({"roles": ["technician", "qa"]})),
        )?;
        Ok(())
    })
    .unwrap();
    let listed = lab
        .app
        .get(
            &format!("/api/v1/audit?entity_id={tech}&limit=500"),
            &lab.qa,
        )
        .await;
    let last = listed.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "user.updated");
    assert!(last["actor"].is_null(), "{last}");

    // A release with a signature row of its own making, and its entry: the
    // database takes it, verification finds the signature unsealed and names
    // the batch whose status rests on it.
    let b2 = lab.batch("APPROLE-2").await;
    let batch2 = Uuid::parse_str(&b2).unwrap();
    app.transaction::<(), cellqc::error::AppError, _>(|c| {
        c.batch_execute(&format!(
            "INSERT INTO signatures (id, signer_id, signer_username, signer_full_name, meaning, signed_at, \
                 record_hash, entity_type, entity_id, batch_id) \
             VALUES (gen_random_uuid(), '{qa_id}', 'someone', 'Some One', 'released', now(), \
                 sha256('forged'), 'batch', '{b2}', '{b2}');
             SELECT id FROM batches WHERE id = '{b2}' FOR UPDATE;
             UPDATE batches SET status = 'released', updated_at = now() WHERE id = '{b2}';"
        ))?;
        append(
            c,
            AuditRecord::on_batch(
                &cellqc::domain::audit::batch_chain(batch2),
                batch2,
                None,
                cellqc::domain::audit_event::AuditEvent::BatchReleased,
                "batch",
                batch2,
            ),
        )?;
        Ok(())
    })
    .unwrap();
    assert_eq!(lab.status(&b2), "released");
    let (ok, broken) = broken(&lab, "").await;
    assert!(!ok);
    let unsealed: Vec<&Value> = broken
        .iter()
        .filter(|x| x["kind"] == "signature_unsealed")
        .collect();
    assert_eq!(unsealed.len(), 1, "{broken:?}");
    assert_eq!(unsealed[0]["table"], "batches");
    assert_eq!(unsealed[0]["id"], b2.as_str());
    assert!(
        unsealed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("released of batch"),
        "{}",
        unsealed[0]
    );
    let forged: i64 = signatures::table
        .filter(signatures::entity_id.eq(batch2))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(forged, 1);
    let status: String = batches::table
        .find(batch2)
        .select(batches::status)
        .first(&mut c)
        .unwrap();
    assert_eq!(status, "released");
}

#[actix_web::test]
async fn verification_against_anchors_when_there_is_none_is_not_ok() {
    let app = TestApp::spawn().await;
    let auditor = app.signed_in(&["auditor"]).await.1;
    let plain = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!(plain.body["ok"], true, "{}", plain.body);
    let v = app.get("/api/v1/audit/verify?anchors=true", &auditor).await;
    assert_eq!(v.status, StatusCode::OK);
    assert_eq!(v.body["ok"], false, "{}", v.body);
    assert_eq!(
        v.body["broken"],
        json!([{"kind": "no_anchors",
        "reason": "no anchor exists: the database keeps none and no anchor file was found"}])
    );
    // One made, it verifies; every copy deleted by a superuser, it does not.
    let made = app.post("/api/v1/audit/anchors", &auditor, json!({})).await;
    assert_eq!(made.status, StatusCode::CREATED);
    let v = app.get("/api/v1/audit/verify?anchors=true", &auditor).await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
    app.conn()
        .batch_execute(
            "BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM audit_anchors; COMMIT;",
        )
        .unwrap();
    std::fs::remove_dir_all(app.data_dir.path().join("anchors")).unwrap();
    let v = app.get("/api/v1/audit/verify?anchors=true", &auditor).await;
    assert_eq!(v.body["ok"], false, "{}", v.body);
    assert_eq!(v.body["broken"][0]["kind"], "no_anchors");
}

#[actix_web::test]
async fn a_specification_limit_changed_by_a_superuser_no_longer_matches_its_approval() {
    let lab = Lab::msc().await;
    lab.app
        .conn()
        .batch_execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica;
             UPDATE spec_tests SET min_text = '70', min_value = 70 WHERE spec_id = '{}' AND code = 'VIAB';
             COMMIT;",
            lab.spec_id
        ))
        .unwrap();
    let (ok, broken) = broken(&lab, "").await;
    assert!(!ok);
    let kinds: Vec<(&str, &str)> = broken
        .iter()
        .map(|b| (b["kind"].as_str().unwrap(), b["table"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("row_altered", "spec_tests"),
            ("signature_mismatch", "specifications")
        ],
        "{broken:?}"
    );
    assert_eq!(broken[1]["id"], lab.spec_id.as_str());
}

#[actix_web::test]
async fn the_code_and_the_database_bind_the_same_tables_the_same_way() {
    #[derive(QueryableByName, Debug, PartialEq)]
    struct Bound {
        #[diesel(sql_type = diesel::sql_types::Text)]
        tbl: String,
        #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
        unbound: Vec<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        batch_column: Option<String>,
    }
    let app = TestApp::spawn().await;
    let in_db: Vec<Bound> =
        diesel::sql_query("SELECT tbl, unbound, batch_column FROM audit_bound_tables ORDER BY tbl")
            .load(&mut app.conn())
            .unwrap();
    let in_code: Vec<Bound> = cellqc::db::binding::BOUND_TABLES
        .iter()
        .map(|t| Bound {
            tbl: t.name.to_owned(),
            unbound: t.unbound.iter().map(|c| (*c).to_owned()).collect(),
            batch_column: t.batch_column.map(str::to_owned),
        })
        .collect();
    assert_eq!(in_db, in_code);
    // And each has its binding trigger.
    let triggers: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM pg_trigger t JOIN audit_bound_tables b \
            ON t.tgrelid = b.tbl::regclass AND t.tgname = b.tbl || '_bound')",
    ))
    .get_result(&mut app.conn())
    .unwrap();
    assert_eq!(triggers, i64::try_from(in_code.len()).unwrap());
}

#[actix_web::test]
async fn a_seal_altered_among_many_is_named_alone() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("SEAL-1", &[]).await;
    let (ok, none) = broken(&lab, "").await;
    assert!(ok, "{none:?}");
    let mut conn = lab.app.conn();
    let sealed: i64 = signatures::table
        .filter(signatures::seal.is_not_null())
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert!(sealed > 20, "the seals are checked in batches: {sealed}");
    let one: Uuid = signatures::table
        .filter(signatures::batch_id.eq(Uuid::parse_str(&b).unwrap()))
        .select(signatures::id)
        .order(signatures::signed_at.desc())
        .first(&mut conn)
        .unwrap();
    // The superuser flips one bit of one seal.
    conn.batch_execute(&format!(
        "BEGIN; SET LOCAL session_replication_role = replica;
         UPDATE signatures SET seal = set_bit(seal, 9, 1 - get_bit(seal, 9)) WHERE id = '{one}';
         COMMIT;"
    ))
    .unwrap();
    let (ok, broken) = broken(&lab, "").await;
    assert!(!ok);
    // The signature's row is no longer what its entry covers, and its seal
    // does not hold; nothing else is said.
    assert_eq!(broken.len(), 2, "that signature alone: {broken:?}");
    let row = broken.iter().find(|x| x["kind"] == "row_altered").unwrap();
    assert_eq!(row["table"], "signatures");
    assert_eq!(row["id"], one.to_string());
    let seal = broken
        .iter()
        .find(|x| x["kind"] == "signature_unsealed")
        .unwrap();
    assert_eq!(seal["signature_id"], one.to_string());
    assert!(
        seal["reason"]
            .as_str()
            .unwrap()
            .contains("the seal does not match"),
        "{seal}"
    );
}

#[actix_web::test]
async fn a_record_changed_before_release_is_not_signed() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("REWRITE-2", &[]).await;
    let dose = lab.batch_record(&b).await["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["test_code"] == "DOSE")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    lab.app
        .conn()
        .batch_execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica;
             UPDATE results SET value_text = '1.19e8', value_numeric = 1.19e8 WHERE id = '{dose}';
             COMMIT;"
        ))
        .unwrap();
    let refused = lab.release(&b, &lab.qa2, json!({})).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.code(), "record_altered");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("results row {dose}")),
        "{}",
        refused.body
    );
    assert_eq!(lab.status(&b), "quarantine");
    let signed: i64 = signatures::table
        .filter(signatures::batch_id.eq(Uuid::parse_str(&b).unwrap()))
        .filter(signatures::meaning.eq("released"))
        .count()
        .get_result(&mut lab.app.conn())
        .unwrap();
    assert_eq!(signed, 0, "nothing was signed");
    // The page says so in words, and signs nothing either.
    let mut qa = crate::web::Browser::signed_in_as(&lab, &lab.qa2).await;
    let form = qa.get(&format!("/batches/{b}/release")).await;
    let token = crate::web::Browser::csrf(&form);
    let page = qa
        .post(
            &format!("/batches/{b}/release"),
            &[
                ("csrf", &token),
                ("password", crate::support::USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(
        page.body.contains("neither signed nor printed"),
        "{}",
        page.body
    );
    assert_eq!(lab.status(&b), "quarantine");
}

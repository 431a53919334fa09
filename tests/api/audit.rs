//! The audit trail: append-only in the database, hash-chained, verifiable
//! (21 CFR 11.10(e), EU Annex 11 §9).

use crate::support::TestApp;
use actix_web::http::StatusCode;
use cellqc::db::pool::build_pool;
use cellqc::db::schema::audit_entries;
use cellqc::domain::audit::SYSTEM_CHAIN;
use cellqc::domain::audit_event::AuditEvent;
use cellqc::services::audit::{self, AuditRecord};
use diesel::prelude::*;
use serde_json::json;

#[actix_web::test]
async fn the_database_refuses_update_delete_and_truncate_of_the_audit_trail() {
    let app = TestApp::spawn().await;
    app.admin_token().await;
    let mut conn = app.conn();
    let update = diesel::update(audit_entries::table)
        .set(audit_entries::action.eq("tampered"))
        .execute(&mut conn);
    let msg = update.unwrap_err().to_string();
    assert!(msg.contains("refused"), "{msg}");
    assert!(
        diesel::delete(audit_entries::table)
            .execute(&mut conn)
            .is_err()
    );
    assert!(
        diesel::sql_query("TRUNCATE audit_entries CASCADE")
            .execute(&mut conn)
            .is_err()
    );
    let tampered: i64 = audit_entries::table
        .filter(audit_entries::action.eq("tampered"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(tampered, 0);
}

/// Edits entry `seq` of the system chain the way a superuser could: with
/// the append-only trigger switched off.
fn tamper(app: &TestApp, seq: i64) {
    let mut conn = app.conn();
    conn.transaction::<_, diesel::result::Error, _>(|c| {
        diesel::sql_query("SET LOCAL session_replication_role = replica").execute(c)?;
        diesel::sql_query(
            "UPDATE audit_entries SET after = jsonb_set(after, '{email}', '\"mallory@evil.example\"') \
             WHERE chain_id = 0 AND seq = $1",
        )
        .bind::<diesel::sql_types::BigInt, _>(seq)
        .execute(c)?;
        Ok(())
    })
    .unwrap();
}

#[actix_web::test]
async fn verify_names_an_audit_entry_edited_with_sql() {
    let app = TestApp::spawn().await;
    app.user_with(&["qa"]).await;
    let auditor = app.signed_in(&["auditor"]).await.1;
    let ok = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["ok"], true, "{}", ok.body);
    assert_eq!(ok.body["chains"], 1);
    assert!(ok.body["events"].as_i64().unwrap() >= 4);
    assert_eq!(ok.body["broken"], json!([]));

    // Entry 1 is the first admin's creation.
    tamper(&app, 1);
    let bad = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!(bad.body["ok"], false);
    let broken = bad.body["broken"].as_array().unwrap();
    assert_eq!(broken.len(), 1, "{}", bad.body);
    assert_eq!(broken[0]["chain"], SYSTEM_CHAIN);
    assert_eq!(broken[0]["seq"], 1);
    assert!(broken[0]["reason"].as_str().unwrap().contains("altered"));
}

#[actix_web::test]
async fn cli_audit_verify_exits_1_naming_the_edited_entry() {
    let app = TestApp::spawn().await;
    app.user_with(&["technician"]).await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cellqc"))
            .args(["audit", "verify"])
            .env("DATABASE_URL", &app.db_url)
            .env("CELLQC_DATA_DIR", app.data_dir.path())
            .output()
            .unwrap()
    };
    let clean = run();
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    tamper(&app, 2);
    let out = run();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("BROKEN: chain system, entry 2:"),
        "{stdout}"
    );
}

#[actix_web::test]
async fn deleting_the_newest_entries_is_detected() {
    let app = TestApp::spawn().await;
    app.user_with(&["technician"]).await;
    let auditor = app.signed_in(&["auditor"]).await.1;
    {
        let mut conn = app.conn();
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            diesel::sql_query("SET LOCAL session_replication_role = replica").execute(c)?;
            diesel::sql_query(
                "DELETE FROM audit_entries WHERE chain_id = 0 \
                 AND seq = (SELECT max(seq) FROM audit_entries WHERE chain_id = 0)",
            )
            .execute(c)?;
            Ok(())
        })
        .unwrap();
    }
    let bad = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!(bad.body["ok"], false);
    assert!(
        bad.body["broken"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("missing")
    );
}

/// Writes a copy of the system chain's entry `from`, at position `seq`, with
/// a new id, the way a writer that skipped the head's lock could.
fn copy_entry(conn: &mut PgConnection, from: i64, seq: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO audit_entries (id, chain_id, seq, at, actor_id, actor_username, actor_full_name, \
             action, entity_type, entity_id, batch_id, reason, before, after, prev_hash, hash) \
         SELECT gen_random_uuid(), chain_id, $2, at, actor_id, actor_username, actor_full_name, \
             action, entity_type, entity_id, batch_id, reason, before, after, prev_hash, hash \
           FROM audit_entries WHERE chain_id = 0 AND seq = $1",
    )
    .bind::<diesel::sql_types::BigInt, _>(from)
    .bind::<diesel::sql_types::BigInt, _>(seq)
    .execute(conn)
}

#[actix_web::test]
async fn a_forked_entry_is_unwritable_and_a_stray_one_is_reported() {
    let app = TestApp::spawn().await;
    app.admin_token().await;
    let auditor = app.signed_in(&["auditor"]).await.1;
    let mut conn = app.conn();
    // A second successor of entry 1 stands at position 2, where the first
    // one is: UNIQUE (chain_id, seq) refuses it.
    let err = copy_entry(&mut conn, 2, 2).unwrap_err();
    assert!(
        err.to_string().contains("audit_entries_chain_id_seq"),
        "{err}"
    );
    assert_eq!(
        app.get("/api/v1/audit/verify", &auditor).await.body["ok"],
        true
    );
    // An entry written past the head, outside the chain's order, is not
    // refused by an index but named by verification.
    copy_entry(&mut conn, 1, 99).unwrap();
    let bad = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!(bad.body["ok"], false, "{}", bad.body);
    assert_eq!(bad.body["broken"][0]["chain"], SYSTEM_CHAIN);
    assert_eq!(bad.body["broken"][0]["seq"], 99, "{}", bad.body);
}

fn append_with(conn: &mut PgConnection, repeatable_read: bool, writer: usize, i: usize) {
    let run = |c: &mut PgConnection| {
        audit::append(
            c,
            AuditRecord::new(SYSTEM_CHAIN, None, AuditEvent::AuditVerified, "test", None)
                .after(json!({"writer": writer, "i": i})),
        )
        .map(|_| ())
    };
    // A REPEATABLE READ writer that loses the race to the chain head gets a
    // serialization failure and retries, with a growing, jittered pause so
    // that it is not starved by the others.
    for attempt in 0..1000u64 {
        let outcome = if repeatable_read {
            conn.build_transaction().repeatable_read().run(run)
        } else {
            conn.build_transaction().read_committed().run(run)
        };
        match outcome {
            Ok(()) => return,
            Err(e) if e.is_retryable() => {
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 5;
                std::thread::sleep(std::time::Duration::from_millis(attempt.min(20) + jitter));
            }
            Err(e) => panic!("append failed: {e}"),
        }
    }
    panic!("no progress after 1000 retries");
}

#[actix_web::test]
async fn concurrent_writers_never_fork_a_chain_under_read_committed_or_repeatable_read() {
    let app = TestApp::spawn().await;
    let pool = build_pool(&app.db_url, 8).unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                for i in 0..25 {
                    append_with(&mut conn, w % 2 == 1, w, i);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut conn = app.conn();
    let seqs: Vec<i64> = audit_entries::table
        .filter(audit_entries::chain_id.eq(cellqc::domain::audit::SYSTEM_CHAIN_ID))
        .order(audit_entries::seq)
        .select(audit_entries::seq)
        .load(&mut conn)
        .unwrap();
    let n = i64::try_from(seqs.len()).unwrap();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "no gap, no duplicate");
    let concurrent: i64 = audit_entries::table
        .filter(audit_entries::entity_type.eq("test"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(concurrent, 200);
    let key = app.site_key();
    let report = cellqc::services::verification::verify(&mut conn, &key).unwrap();
    assert!(report.ok, "{:?}", report.broken);
    // Time never runs backwards along the chain.
    let times: Vec<chrono::DateTime<chrono::Utc>> = audit_entries::table
        .order(audit_entries::seq)
        .select(audit_entries::at)
        .load(&mut conn)
        .unwrap();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[actix_web::test]
async fn the_audit_list_filters_and_is_for_auditors_and_qa_only() {
    let app = TestApp::spawn().await;
    let (tech_id, _) = app.user_with(&["technician"]).await;
    let (_, qa) = app.signed_in(&["qa"]).await;
    let r = app
        .get(
            &format!("/api/v1/audit?entity_type=user&entity_id={tech_id}"),
            &qa,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let items = r.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    // Created by the admin, then the user chose their own password.
    assert_eq!(actions, ["user.created", "auth.password_changed"]);
    let entry = &items[0];
    assert_eq!(entry["actor"]["username"], "admin");
    assert!(entry["seq"].as_i64().unwrap() > 1);
    assert_eq!(entry["hash"].as_str().unwrap().len(), 64);
    let by_actor = app.get("/api/v1/audit?actor=admin&limit=1", &qa).await;
    assert_eq!(by_actor.body["items"].as_array().unwrap().len(), 1);
    assert!(by_actor.body["next_cursor"].is_string());
    let bad = app.get("/api/v1/audit?from=yesterday", &qa).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["errors"][0]["field"], "from");
    let (_, tech) = app.signed_in(&["technician"]).await;
    assert_eq!(
        app.get("/api/v1/audit", &tech).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/v1/audit/verify", &tech).await.status,
        StatusCode::FORBIDDEN
    );
}

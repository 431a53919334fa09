//! Signed anchors: a chain cut back with superuser rights, heads moved so
//! that every link still holds, is named by verification with anchors,
//! through the API and the command line, even when the anchor rows in the
//! database are removed too. (Plain verification finds such a cut only
//! through the rows the cut entries covered.)

use crate::lab::Lab;
use actix_web::http::StatusCode;
use cellqc::auth::anchor_key::PublicKey;
use cellqc::db::schema::{audit_anchors, email_outbox};
use cellqc::domain::anchor::{AnchorBody, AnchoredHead};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{Value, json};

fn body_of(anchor: &Value) -> AnchorBody {
    AnchorBody {
        id: anchor["id"].as_str().unwrap().parse().unwrap(),
        created_at: anchor["created_at"].as_str().unwrap().to_owned(),
        chains: anchor["chains"].as_i64().unwrap(),
        entries: anchor["entries"].as_i64().unwrap(),
        root: anchor["root"].as_str().unwrap().to_owned(),
        key_id: anchor["key_id"].as_str().unwrap().to_owned(),
        heads: serde_json::from_value::<Vec<AnchoredHead>>(anchor["heads"].clone()).unwrap(),
    }
}

#[actix_web::test]
async fn a_chain_cut_back_by_a_superuser_keeps_its_links_and_fails_against_its_rows_and_the_anchors()
 {
    let lab = Lab::msc().await;
    let app = &lab.app;
    let batch = lab.batch("ANCHOR-1").await;
    lab.recorded(&batch, "VIAB", json!("91.0")).await;
    lab.recorded(&batch, "CD73", json!("97.0")).await;

    // Only QA and auditors anchor; anyone signed in reads the public key.
    let refused = app
        .post("/api/v1/audit/anchors", &lab.tech, json!(null))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let key = app.get("/api/v1/audit/anchor-key", &lab.tech).await;
    assert_eq!(key.status, StatusCode::OK);
    assert_eq!(key.body["algorithm"], "ed25519");
    let public = PublicKey::from_hex(key.body["public_key"].as_str().unwrap()).unwrap();

    let made = app
        .post("/api/v1/audit/anchors", &lab.qa, json!(null))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let anchor = made.body.clone();
    assert_eq!(anchor["key_id"], key.body["key_id"]);
    let body = body_of(&anchor);
    assert!(
        body.is_consistent(),
        "root and counts follow from the heads"
    );
    assert!(public.verifies(
        &body.signed_bytes().unwrap(),
        anchor["signature"].as_str().unwrap()
    ));
    let chain = format!("batch:{batch}");
    let head = body
        .heads
        .iter()
        .find(|h| h.chain == chain)
        .unwrap()
        .clone();
    assert!(head.seq >= 3, "created and two results: {head:?}");

    // Kept three ways: the database, a file, an email to QA.
    let dir = app.data_dir.path().join("anchors");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let on_disk: Value = serde_json::from_slice(&std::fs::read(files[0].path()).unwrap()).unwrap();
    assert_eq!(on_disk, anchor);
    let mails: Vec<(Vec<String>, String)> = email_outbox::table
        .filter(email_outbox::kind.eq("audit_anchor"))
        .select((email_outbox::recipients, email_outbox::body))
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0.len(), 2, "to every active QA user");
    assert!(mails[0].1.contains(anchor["root"].as_str().unwrap()));
    let listed = app.get("/api/v1/audit/anchors", &lab.qa).await;
    assert_eq!(listed.body["items"][0]["root"], anchor["root"]);

    let plain = app.get("/api/v1/audit/verify", &lab.qa).await;
    assert_eq!(plain.body["ok"], true);
    let anchored = app.get("/api/v1/audit/verify?anchors=true", &lab.qa).await;
    assert_eq!(anchored.body["ok"], true, "{}", anchored.body);
    assert_eq!(
        anchored.body["anchors"]["anchors"], 2,
        "the row and the file"
    );

    // A superuser cuts the batch's chain back by one entry, consistently:
    // triggers silenced, the tail deleted, the head moved to the entry before.
    let cut = format!(
        "SET session_replication_role = replica;
         DELETE FROM audit_entries WHERE seq = {seq}
            AND chain_id = (SELECT id FROM audit_chain_heads WHERE chain = '{chain}');
         UPDATE audit_chain_heads h SET seq = e.seq, hash = e.hash, last_at = e.at
           FROM audit_entries e WHERE e.chain_id = h.id AND e.seq = {prev} AND h.chain = '{chain}';
         SET session_replication_role = origin;",
        seq = head.seq,
        prev = head.seq - 1
    );
    app.conn().batch_execute(&cut).unwrap();

    // Every link holds; what plain verification still sees is the result
    // whose entry is gone.
    let plain = app.get("/api/v1/audit/verify", &lab.qa).await;
    assert_eq!(plain.body["ok"], false, "{}", plain.body);
    let plain_broken = plain.body["broken"].as_array().unwrap();
    assert!(
        plain_broken
            .iter()
            .all(|b| b["kind"] == "row_altered" && b["table"] == "results"),
        "no link is broken, a row lost its entry: {}",
        plain.body
    );
    let anchored = app.get("/api/v1/audit/verify?anchors=true", &lab.qa).await;
    assert_eq!(anchored.status, StatusCode::OK);
    assert_eq!(anchored.body["ok"], false);
    let broken = anchored.body["broken"].as_array().unwrap();
    assert!(
        broken
            .iter()
            .any(|b| b["chain"] == chain.as_str() && b["seq"] == head.seq),
        "{}",
        anchored.body
    );
    assert!(anchored.body["broken"].to_string().contains("cut back"));

    // The superuser removes the anchor rows too: the file still names it.
    app.conn()
        .batch_execute(
            "SET session_replication_role = replica; DELETE FROM audit_anchors; \
             SET session_replication_role = origin;",
        )
        .unwrap();
    let left: i64 = audit_anchors::table
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(left, 0);
    let anchored = app.get("/api/v1/audit/verify?anchors=true", &lab.qa).await;
    assert_eq!(anchored.body["ok"], false);
    assert!(anchored.body["broken"].to_string().contains(&chain));

    // The command line, from the anchors kept elsewhere, with the published key.
    let kept = tempfile::tempdir().unwrap();
    std::fs::copy(files[0].path(), kept.path().join("emailed.json")).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cellqc"))
            .args(args)
            .env("DATABASE_URL", &app.db_url)
            .env("CELLQC_DATA_DIR", app.data_dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "plain: {stdout}");
    assert!(stdout.contains("BROKEN: results row"), "plain: {stdout}");
    let public_hex = key.body["public_key"].as_str().unwrap();
    let out = run(&[
        "audit",
        "verify",
        "--anchors",
        kept.path().to_str().unwrap(),
        "--public-key",
        public_hex,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("BROKEN: chain {chain}, entry {}", head.seq)),
        "{text}"
    );

    // An altered anchor file is named as such, never trusted.
    let mut forged = anchor.clone();
    forged["heads"][0]["seq"] = json!(1);
    std::fs::write(kept.path().join("emailed.json"), forged.to_string()).unwrap();
    let out = run(&[
        "audit",
        "verify",
        "--anchors",
        kept.path().to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("the anchor was altered"), "{text}");
}

#[actix_web::test]
async fn the_periodic_anchor_is_written_only_when_the_trail_grew() {
    let lab = Lab::msc().await;
    let app = &lab.app;
    let state = cellqc::http::AppState::new(
        &cellqc::config::Settings::defaults(app.data_dir.path().to_path_buf()),
        app.pool.clone(),
    )
    .unwrap();
    let count = || -> i64 {
        audit_anchors::table
            .count()
            .get_result(&mut app.conn())
            .unwrap()
    };
    let worker = cellqc::services::anchors::start_periodic(
        app.pool.clone(),
        state.anchors.clone(),
        std::time::Duration::from_millis(100),
    )
    .unwrap();
    let wait_for = |n: i64| async move {
        for _ in 0..100 {
            if count() >= n {
                return;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no anchor number {n}");
    };
    wait_for(1).await;
    actix_web::rt::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(count(), 1, "nothing new to anchor: no new anchor");
    lab.batch("ANCHOR-2").await;
    wait_for(2).await;
    worker.stop();
    let files = std::fs::read_dir(app.data_dir.path().join("anchors"))
        .unwrap()
        .count();
    assert_eq!(files, 2);
}

#[actix_web::test]
async fn an_anchor_too_large_to_email_is_emailed_as_its_summary_naming_its_file() {
    let lab = Lab::bare(
        cellqc::demo::msc_product(),
        crate::lab::uncontrolled(cellqc::demo::msc_spec()),
    )
    .await;
    let app = &lab.app;
    // A site with thousands of chains: their heads, as the trail's writers
    // leave them (only the heads count for an anchor).
    app.conn()
        .batch_execute(
            "INSERT INTO audit_chain_heads (chain, seq, hash)
             SELECT 'batch:' || gen_random_uuid(), 1 + n % 20, sha256(n::text::bytea)
               FROM generate_series(1, 3000) n",
        )
        .unwrap();
    let made = app
        .post("/api/v1/audit/anchors", &lab.qa, json!(null))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let anchor = made.body;
    assert!(anchor["chains"].as_i64().unwrap() > 3000);
    let whole = serde_json::to_string_pretty(&anchor).unwrap();
    assert!(whole.len() > cellqc::services::anchors::EMAILED_ANCHOR_MAX_BYTES);
    let (body,): (String,) = email_outbox::table
        .filter(email_outbox::kind.eq("audit_anchor"))
        .select((email_outbox::body,))
        .first(&mut app.conn())
        .unwrap();
    assert!(body.len() < 16 * 1024, "a summary: {} bytes", body.len());
    assert!(body.contains(anchor["root"].as_str().unwrap()));
    assert!(body.contains(anchor["signature"].as_str().unwrap()));
    assert!(!body.contains("\"heads\""), "no heads in the email");
    // It names the file, which holds the whole anchor.
    let dir = app.data_dir.path().join("anchors");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|f| f.file_name().to_string_lossy().ends_with(".json"))
        .unwrap();
    assert!(
        body.contains(&*file.file_name().to_string_lossy()),
        "{body}"
    );
    let on_disk: Value = serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
    assert_eq!(on_disk, anchor);
}

//! The trail's narrower storage (hashes as bytes, chains by key): the
//! migration converts a filled database without altering a single hash, and
//! every chain verifies before and after it. Going back past the binding of
//! rows (000024) and forward again binds the rows anew, as found.

use crate::lab::Lab;
use actix_web::http::StatusCode;
use cellqc::db::MIGRATIONS;
use cellqc::domain::audit::{ActorRef, ChainCursor, EntryContent};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_migrations::MigrationHarness;
use serde_json::{Value, json};
use uuid::Uuid;

/// An entry as the earlier layout stores it: the chain by name, hashes as hex.
#[derive(QueryableByName)]
struct EarlierEntry {
    #[diesel(sql_type = Text)]
    chain: String,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    actor_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    actor_username: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    actor_full_name: Option<String>,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    entity_type: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    entity_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    batch_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    before: Option<Value>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    after: Option<Value>,
    #[diesel(sql_type = Text)]
    prev_hash: String,
    #[diesel(sql_type = Text)]
    hash: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    rows: Option<Value>,
}

/// Verifies every chain of the earlier layout with the chain's definition
/// (`ChainCursor`), heads included; returns the entries checked.
fn verify_earlier(conn: &mut PgConnection) -> usize {
    let rows: Vec<EarlierEntry> = diesel::sql_query(
        "SELECT chain, seq, at, actor_id, actor_username, actor_full_name, action, entity_type, \
                entity_id, batch_id, reason, before, after, prev_hash, hash, rows \
           FROM audit_entries ORDER BY chain, seq",
    )
    .load(conn)
    .unwrap();
    let heads: std::collections::HashMap<String, (i64, String)> =
        diesel::sql_query("SELECT chain, seq, hash FROM audit_chain_heads")
            .load::<Head>(conn)
            .unwrap()
            .into_iter()
            .map(|h| (h.chain, (h.seq, h.hash)))
            .collect();
    let mut walks: Vec<(String, ChainCursor)> = Vec::new();
    for r in &rows {
        if walks.last().is_none_or(|(c, _)| *c != r.chain) {
            walks.push((r.chain.clone(), ChainCursor::default()));
        }
        let actor = r.actor_id.map(|id| ActorRef {
            id,
            username: r.actor_username.clone().unwrap(),
            full_name: r.actor_full_name.clone().unwrap(),
        });
        let content = EntryContent {
            chain: &r.chain,
            seq: r.seq,
            at: r.at,
            actor: actor.as_ref(),
            action: &r.action,
            entity_type: &r.entity_type,
            entity_id: r.entity_id,
            batch_id: r.batch_id,
            reason: r.reason.as_deref(),
            before: r.before.as_ref(),
            after: r.after.as_ref(),
            rows: r.rows.as_ref(),
        };
        let (_, cursor) = walks.last_mut().unwrap();
        assert_eq!(
            cursor.check(&content, &r.prev_hash, &r.hash).unwrap(),
            None,
            "{} entry {}",
            r.chain,
            r.seq
        );
    }
    for (chain, cursor) in &walks {
        let (seq, hash) = &heads[chain];
        assert_eq!(cursor.finish(*seq, hash), None, "{chain}");
    }
    rows.len()
}

#[derive(QueryableByName)]
struct Head {
    #[diesel(sql_type = Text)]
    chain: String,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    hash: String,
}

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct Stored {
    #[diesel(sql_type = Text)]
    what: String,
    #[diesel(sql_type = Text)]
    hash: String,
}

/// Every stored hash, as hex, named by what holds it. `hex` turns a column
/// of the layout read into hex text; `custody` is how a custody event's
/// entry's hash is read (the event keeps a copy in the earlier layout).
fn every_hash(
    conn: &mut PgConnection,
    hex: &str,
    chain: &str,
    join: &str,
    custody: &str,
) -> Vec<Stored> {
    let h = |col: &str| hex.replace("{}", col);
    diesel::sql_query(format!(
        "SELECT 'entry ' || {chain} || ' ' || e.seq AS what, {} || ' ' || {} AS hash \
           FROM audit_entries e {join} \
         UNION ALL SELECT 'head ' || chain, {} FROM audit_chain_heads WHERE seq > 0 \
         UNION ALL SELECT 'signature ' || id, {} FROM signatures \
         UNION ALL SELECT 'custody ' || c.id, {} || ' ' || {custody} FROM custody_events c \
         UNION ALL SELECT 'review ' || id, {} FROM audit_reviews \
         ORDER BY 1",
        h("e.prev_hash"),
        h("e.hash"),
        h("hash"),
        h("record_hash"),
        h("c.prev_hash"),
        h("head_hash"),
    ))
    .load(conn)
    .unwrap()
}

fn now_hashes(conn: &mut PgConnection) -> Vec<Stored> {
    every_hash(
        conn,
        "encode({}, 'hex')",
        "h.chain",
        "JOIN audit_chain_heads h ON h.id = e.chain_id",
        "(SELECT encode(x.hash, 'hex') FROM audit_entries x WHERE x.id = c.audit_entry_id)",
    )
}

fn earlier_hashes(conn: &mut PgConnection) -> Vec<Stored> {
    every_hash(conn, "{}", "e.chain", "", "c.hash")
}

#[actix_web::test]
async fn the_narrowing_migration_keeps_every_hash_and_every_chain_verifies_before_and_after() {
    // A filled trail: two batches tested and reviewed, one released and
    // shipped; the other's release refused for a missing result (an entry of
    // the system chain naming the batch).
    let lab = Lab::msc().await;
    let app = &lab.app;
    let released = lab.tested_batch("NARROW-1", &[]).await;
    let other = lab.tested_batch("NARROW-2", &["CD73"]).await;
    let refused = lab.release(&other, &lab.qa, json!({})).await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
    let ok = lab.release(&released, &lab.qa, json!({})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        lab.custody(&released, json!({"event": "shipped"}))
            .await
            .status,
        StatusCode::CREATED
    );
    let verified = app.get("/api/v1/audit/verify", &lab.qa).await;
    assert_eq!(verified.body["ok"], true, "{}", verified.body);
    let events = verified.body["events"].as_i64().unwrap();
    assert!(events > 40, "{events}");
    let history_before = lab.history_actions(&other, &lab.qa).await;
    assert!(
        history_before.iter().any(|a| a == "batch.release_refused"),
        "{history_before:?}"
    );

    let mut conn = app.conn();
    let narrow = now_hashes(&mut conn);
    assert!(narrow.iter().any(|s| s.what.starts_with("custody ")));
    assert!(narrow.iter().any(|s| s.what.starts_with("signature ")));

    // Back to the earlier layout: the same hashes, as hex text, and every
    // chain verifies there too.
    let mut reverted = Vec::new();
    loop {
        let v = conn.revert_last_migration(MIGRATIONS).unwrap().to_string();
        reverted.push(v.clone());
        if v == "20261202000022" {
            break;
        }
    }
    assert_eq!(
        reverted[reverted.len() - 4..],
        [
            "20261207000025",
            "20261207000024",
            "20261202000023",
            "20261202000022"
        ],
        "every later one, the binding of rows, the indexes, then the narrowing"
    );
    assert_eq!(earlier_hashes(&mut conn), narrow);
    assert_eq!(
        i64::try_from(verify_earlier(&mut conn)).unwrap(),
        events,
        "every entry checked in the earlier layout"
    );

    // Forward again, converting the earlier layout's data; the rows of then
    // are bound again, one entry per chain, as found.
    assert_eq!(
        cellqc::db::run_migrations(&mut conn).unwrap(),
        reverted.len()
    );
    let key = cellqc::auth::anchor_key::AnchorKey::load_or_create(
        &app.data_dir.path().join("anchor.key"),
    )
    .unwrap();
    let bound = cellqc::upgrade::bind_existing(&mut conn, &key).unwrap();
    assert!(bound.chains >= 3 && bound.sealed > 0, "{bound:?}");
    assert_eq!(
        cellqc::upgrade::bind_existing(&mut conn, &key).unwrap(),
        cellqc::upgrade::Bound::default(),
        "bound once"
    );
    // Every entry, signature, custody event and review as it was; only the
    // heads moved on, past the entries that bound the rows again.
    let kept = |v: Vec<Stored>| -> Vec<Stored> {
        v.into_iter()
            .filter(|s| !s.what.starts_with("head ") && narrow.iter().any(|n| n.what == s.what))
            .collect()
    };
    let unchanged = kept(now_hashes(&mut conn))
        == kept(
            narrow
                .iter()
                .map(|s| Stored {
                    what: s.what.clone(),
                    hash: s.hash.clone(),
                })
                .collect(),
        );
    assert!(unchanged, "no hash altered");
    let system: i64 = diesel::sql_query(
        "SELECT id AS seq, chain, encode(hash, 'hex') AS hash FROM audit_chain_heads WHERE chain = 'system'",
    )
    .get_result::<Head>(&mut conn)
    .unwrap()
    .seq;
    assert_eq!(system, cellqc::domain::audit::SYSTEM_CHAIN_ID);
    let after = app.get("/api/v1/audit/verify", &lab.qa).await;
    assert_eq!(after.body["ok"], true, "{}", after.body);
    assert_eq!(
        after.body["events"].as_i64().unwrap(),
        events + i64::try_from(bound.chains).unwrap()
    );
    let mut history_after = history_before.clone();
    history_after.push("record.bound_at_upgrade".to_owned());
    assert_eq!(lab.history_actions(&other, &lab.qa).await, history_after);
    // The trail goes on after the conversion, on both kinds of chain.
    lab.recorded(&other, "CD73", json!("99.0")).await;
    let last = app.get("/api/v1/audit/verify", &lab.qa).await;
    assert_eq!(last.body["ok"], true, "{}", last.body);
    assert!(last.body["events"].as_i64().unwrap() > events);
}

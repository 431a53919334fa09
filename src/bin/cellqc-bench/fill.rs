//! The scale generator: fills the database with COPY, the way a site would
//! look after years of use. Per batch: the batch row, ten passing results,
//! nine review signatures and the batch's hash chain of twenty audit entries
//! (created, ten recorded, nine reviewed); besides, one sign-in entry per
//! batch on the system chain. A million batches are ten million results and
//! twenty-one million audit entries, every chain valid: `cellqc audit verify`
//! passes on the result.
//!
//! Rows are built with the same hashing functions the services use, and
//! written in chunks, one transaction each, so an interrupted fill resumes
//! where it stopped (batch numbers `FILL-0000001` onwards). Ids are UUIDv7 and
//! times grow with the batch number, so every index is appended to, as in
//! real use.

use anyhow::Context;
use cellqc::db::models::{BatchRow, ResultRow, SignatureRow};
use cellqc::db::schema::{
    audit_chain_heads, audit_entries, batches, products, results, signatures, users,
};
use cellqc::demo::msc_passing_values;
use cellqc::domain::StoredName;
use cellqc::domain::audit::{ActorRef, EntryContent, SYSTEM_CHAIN, batch_chain};
use cellqc::domain::signature::{Meaning, record_hash};
use cellqc::services::batch_record::result_of;
use cellqc::services::results::result_record;
use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, TimeZone, Utc};
use diesel::pg::CopyFormat;
use diesel::prelude::*;
use serde_json::{Value, json};
use std::io::Write;
use std::time::Instant;
use uuid::Uuid;

/// Results per generated batch (the first ten tests of the MSC panel).
const RESULTS: usize = 10;
/// Of which reviewed.
const REVIEWED: usize = 9;
/// Batches per transaction.
const CHUNK: usize = 5_000;
/// Seconds between generated batches: a million batches span about three years.
const SPACING_S: i64 = 90;

/// One COPY line in PostgreSQL's text format.
#[derive(Default)]
struct Line(String);

impl Line {
    fn field(&mut self, v: Option<&str>) -> &mut Self {
        if !self.0.is_empty() {
            self.0.push('\t');
        }
        match v {
            None => self.0.push_str("\\N"),
            Some(s) => {
                for ch in s.chars() {
                    match ch {
                        '\\' => self.0.push_str("\\\\"),
                        '\t' => self.0.push_str("\\t"),
                        '\n' => self.0.push_str("\\n"),
                        '\r' => self.0.push_str("\\r"),
                        c => self.0.push(c),
                    }
                }
            }
        }
        self
    }
    fn text(&mut self, v: &str) -> &mut Self {
        self.field(Some(v))
    }
    fn opt<T: ToString>(&mut self, v: Option<T>) -> &mut Self {
        self.field(v.map(|x| x.to_string()).as_deref())
    }
    fn at(&mut self, v: DateTime<Utc>) -> &mut Self {
        self.text(&v.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
    fn end(&mut self, out: &mut String) {
        out.push_str(&self.0);
        out.push('\n');
        self.0.clear();
    }
}

struct Actors {
    tech: ActorRef,
    reviewer: ActorRef,
}

fn actor(conn: &mut PgConnection, username: &str) -> anyhow::Result<ActorRef> {
    let (id, full_name): (Uuid, String) = users::table
        .filter(users::username.eq(username))
        .select((users::id, users::full_name))
        .first(conn)
        .with_context(|| format!("the demo user {username} is missing"))?;
    Ok(ActorRef {
        id,
        username: username.to_owned(),
        full_name,
    })
}

/// A chain being written: its next position and last hash.
struct Chain {
    name: String,
    seq: i64,
    hash: String,
    at: DateTime<Utc>,
}

/// The text of one chunk's COPY streams.
#[derive(Default)]
struct Chunk {
    batches: String,
    heads: String,
    results: String,
    signatures: String,
    audit: String,
}

struct Entry<'a> {
    at: DateTime<Utc>,
    actor: &'a ActorRef,
    action: &'a str,
    entity_type: &'a str,
    entity_id: Uuid,
    batch_id: Option<Uuid>,
    after: Value,
}

impl Chain {
    fn push(&mut self, out: &mut String, e: Entry<'_>) -> anyhow::Result<()> {
        let seq = self.seq + 1;
        let content = EntryContent {
            chain: &self.name,
            seq,
            at: e.at,
            actor: Some(e.actor),
            action: e.action,
            entity_type: e.entity_type,
            entity_id: Some(e.entity_id),
            batch_id: e.batch_id,
            reason: None,
            before: None,
            after: Some(&e.after),
        };
        let hash = content.hash(&self.hash)?;
        Line::default()
            .text(&Uuid::now_v7().to_string())
            .text(&self.name)
            .text(&seq.to_string())
            .at(e.at)
            .text(&e.actor.id.to_string())
            .text(&e.actor.username)
            .text(&e.actor.full_name)
            .text(e.action)
            .text(e.entity_type)
            .text(&e.entity_id.to_string())
            .opt(e.batch_id)
            .field(None)
            .field(None)
            .text(&e.after.to_string())
            .text(&self.hash)
            .text(&hash)
            .end(out);
        self.seq = seq;
        self.hash = hash;
        self.at = e.at;
        Ok(())
    }
}

struct Plan {
    product: Uuid,
    spec: Uuid,
    start: DateTime<Utc>,
    tests: Vec<(&'static str, String)>,
    actors: Actors,
}

fn batch_rows(plan: &Plan, n: usize, system: &mut Chain, chunk: &mut Chunk) -> anyhow::Result<()> {
    let made = plan.start + ChronoDuration::seconds(SPACING_S * n as i64);
    let at = |s: i64| made + ChronoDuration::seconds(s);
    let status = match n % 20 {
        0 => "rejected",
        1 | 2 => "quarantine",
        _ => "released",
    };
    let batch = BatchRow {
        id: Uuid::now_v7(),
        batch_number: format!("FILL-{n:07}"),
        product_id: plan.product,
        spec_id: plan.spec,
        manufactured_at: made,
        expires_at: made + ChronoDuration::days(60),
        donor_din: None,
        intended_recipient: None,
        quantity: Some("1".to_owned()),
        unit: Some("bag".to_owned()),
        status: status.to_owned(),
        created_by: plan.actors.tech.id,
        created_at: at(1),
        updated_at: at(40),
    };
    Line::default()
        .text(&batch.id.to_string())
        .text(&batch.batch_number)
        .text(&batch.product_id.to_string())
        .text(&batch.spec_id.to_string())
        .at(batch.manufactured_at)
        .at(batch.expires_at)
        .field(None)
        .field(None)
        .opt(batch.quantity.as_deref())
        .opt(batch.unit.as_deref())
        .text(&batch.status)
        .text(&batch.created_by.to_string())
        .at(batch.created_at)
        .at(batch.updated_at)
        .end(&mut chunk.batches);
    let mut chain = Chain {
        name: batch_chain(batch.id),
        seq: 0,
        hash: cellqc::domain::audit::GENESIS_HASH.to_owned(),
        at: batch.created_at,
    };
    let (tech, reviewer) = (&plan.actors.tech, &plan.actors.reviewer);
    chain.push(
        &mut chunk.audit,
        Entry {
            at: batch.created_at,
            actor: tech,
            action: "batch.created",
            entity_type: "batch",
            entity_id: batch.id,
            batch_id: Some(batch.id),
            after: json!({"id": batch.id, "batch_number": batch.batch_number,
                "product_id": batch.product_id, "spec_id": batch.spec_id, "status": "quarantine"}),
        },
    )?;
    let mut recorded = Vec::with_capacity(RESULTS);
    for (k, (code, value)) in plan.tests.iter().enumerate() {
        let r = ResultRow {
            id: Uuid::now_v7(),
            batch_id: batch.id,
            test_code: (*code).to_owned(),
            value_text: value.clone(),
            value_numeric: None,
            unit: None,
            outcome: "pass".to_owned(),
            performed_by: tech.id,
            performed_at: at(2),
            recorded_at: at(3 + k as i64),
            instrument: None,
            comment: None,
            replaces_result_id: None,
            reason: None,
            instrument_id: None,
        };
        Line::default()
            .text(&r.id.to_string())
            .text(&r.batch_id.to_string())
            .text(&r.test_code)
            .text(&r.value_text)
            // Every generated value is a plain decimal: PostgreSQL parses it.
            .text(&r.value_text)
            .field(None)
            .text(&r.outcome)
            .text(&r.performed_by.to_string())
            .at(r.performed_at)
            .at(r.recorded_at)
            .field(None)
            .field(None)
            .field(None)
            .field(None)
            .field(None)
            .end(&mut chunk.results);
        let record = result_record(batch.id, &result_of(r.clone(), tech.clone())?);
        chain.push(
            &mut chunk.audit,
            Entry {
                at: r.recorded_at,
                actor: tech,
                action: "result.recorded",
                entity_type: "result",
                entity_id: r.id,
                batch_id: Some(batch.id),
                after: record.clone(),
            },
        )?;
        recorded.push((r, record));
    }
    for (k, (r, record)) in recorded.iter().take(REVIEWED).enumerate() {
        let signed_at = at(20 + k as i64);
        let s = SignatureRow {
            id: Uuid::now_v7(),
            signer_id: reviewer.id,
            signer_username: reviewer.username.clone(),
            signer_full_name: reviewer.full_name.clone(),
            meaning: Meaning::Reviewed.as_str().to_owned(),
            signed_at,
            reason: None,
            record_hash: record_hash(record, reviewer.id, Meaning::Reviewed, signed_at)?,
            entity_type: "result".to_owned(),
            entity_id: r.id,
            batch_id: Some(batch.id),
        };
        Line::default()
            .text(&s.id.to_string())
            .text(&s.signer_id.to_string())
            .text(&s.signer_username)
            .text(&s.signer_full_name)
            .text(&s.meaning)
            .at(s.signed_at)
            .field(None)
            .text(&s.record_hash)
            .text(&s.entity_type)
            .text(&s.entity_id.to_string())
            .opt(s.batch_id)
            .end(&mut chunk.signatures);
        chain.push(
            &mut chunk.audit,
            Entry {
                at: signed_at,
                actor: reviewer,
                action: "result.reviewed",
                entity_type: "result",
                entity_id: r.id,
                batch_id: Some(batch.id),
                after: json!({"signature_id": s.id, "meaning": s.meaning,
                    "signed_at": s.signed_at, "record_hash": s.record_hash}),
            },
        )?;
    }
    Line::default()
        .text(&chain.name)
        .text(&chain.seq.to_string())
        .text(&chain.hash)
        .at(chain.at)
        .end(&mut chunk.heads);
    system.push(
        &mut chunk.audit,
        Entry {
            at: at(45),
            actor: reviewer,
            action: "auth.login",
            entity_type: "user",
            entity_id: reviewer.id,
            batch_id: None,
            after: json!({"session": "generated"}),
        },
    )?;
    Ok(())
}

/// `COPY table FROM STDIN` (text format) with `data`.
macro_rules! copy_text {
    ($conn:expr, $table:expr, $data:expr) => {{
        let data: &str = $data;
        diesel::copy_from($table)
            .from_raw_data($table, |w: &mut dyn Write| {
                w.write_all(data.as_bytes())
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
            })
            .with_format(CopyFormat::Text)
            .execute($conn)
            .with_context(|| format!("COPY into {}", stringify!($table)))?;
    }};
}

/// Fills the database up to `target` generated batches; returns how many it added.
pub fn fill(conn: &mut PgConnection, target: usize) -> anyhow::Result<usize> {
    let have: i64 = batches::table
        .filter(batches::batch_number.like("FILL-%"))
        .count()
        .get_result(conn)?;
    let have = usize::try_from(have)?;
    if have >= target {
        return Ok(0);
    }
    let (product, spec): (Uuid, Uuid) = products::table
        .inner_join(cellqc::db::schema::specifications::table)
        .filter(products::code.eq("UCMSC-INJ"))
        .filter(cellqc::db::schema::specifications::status.eq("effective"))
        .select((products::id, cellqc::db::schema::specifications::id))
        .first(conn)
        .context("the demo product UCMSC-INJ is missing: load the demo first")?;
    let plan = Plan {
        product,
        spec,
        start: Utc
            .with_ymd_and_hms(2023, 1, 2, 8, 0, 0)
            .single()
            .context("start")?,
        tests: msc_passing_values()
            .into_iter()
            .take(RESULTS)
            .map(|(c, v)| (c, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect(),
        actors: Actors {
            tech: actor(conn, "tech")?,
            reviewer: actor(conn, "reviewer")?,
        },
    };
    diesel::sql_query("SET synchronous_commit = off").execute(conn)?;
    let started = Instant::now();
    let mut n = have;
    while n < target {
        let end = (n + CHUNK).min(target);
        conn.transaction(|c| -> anyhow::Result<()> {
            let (seq, hash, at): (i64, String, DateTime<Utc>) = audit_chain_heads::table
                .find(SYSTEM_CHAIN)
                .select((
                    audit_chain_heads::seq,
                    audit_chain_heads::hash,
                    audit_chain_heads::last_at,
                ))
                .for_update()
                .first(c)
                .context("the system chain has no head")?;
            let mut system = Chain {
                name: SYSTEM_CHAIN.to_owned(),
                seq,
                hash,
                at,
            };
            let mut chunk = Chunk::default();
            for i in n..end {
                batch_rows(&plan, i + 1, &mut system, &mut chunk)?;
            }
            copy_text!(c, batches::table, &chunk.batches);
            copy_text!(c, audit_chain_heads::table, &chunk.heads);
            copy_text!(c, results::table, &chunk.results);
            copy_text!(c, signatures::table, &chunk.signatures);
            copy_text!(c, audit_entries::table, &chunk.audit);
            diesel::update(audit_chain_heads::table.find(SYSTEM_CHAIN))
                .set((
                    audit_chain_heads::seq.eq(system.seq),
                    audit_chain_heads::hash.eq(&system.hash),
                    audit_chain_heads::last_at.eq(system.at.max(at)),
                ))
                .execute(c)?;
            Ok(())
        })?;
        n = end;
        if n % 50_000 == 0 || n == target {
            let rate = (n - have) as f64 / started.elapsed().as_secs_f64();
            eprintln!("filled {n} of {target} batches ({rate:.0} batches/s)");
        }
    }
    diesel::sql_query("ANALYZE").execute(conn)?;
    Ok(target - have)
}

//! The scale generator: fills the database with COPY, the way a site would
//! look after years of use. Per batch: the batch row, ten passing results,
//! nine review signatures and the batch's hash chain of twenty-one audit
//! entries (created, the culture medium used, ten recorded, nine reviewed);
//! besides, one sign-in entry per batch on the system chain. The lab behind
//! it: four flow cytometers measure the flow results in turn, each
//! calibrated before every 400 batches; a new 7-AAD lot (used by each
//! viability result) every 100 batches and a new culture-medium lot (used in
//! manufacture) every 250, each received and released by QA with a
//! signature. A million batches are ten million results, two million
//! material uses and twenty-two million audit entries, every chain valid:
//! `cellqc audit verify` passes on the result.
//!
//! Rows are built with the same hashing functions the services use, and
//! written in chunks, one transaction each, so an interrupted fill resumes
//! where it stopped (batch numbers `FILL-0000001` onwards). Ids are UUIDv7 and
//! times grow with the batch number, so every index is appended to, as in
//! real use.
//!
//! The generated site is one that kept its records with an earlier version
//! and was upgraded (docs/architecture.md "What was signed is what is
//! read"): its signatures name no row, and are sealed as found; each batch
//! chain ends with the `record.bound_at_upgrade` entry that binds its rows,
//! their hashes read back from the database (the forms are PostgreSQL's);
//! the system chain's generated rows are bound by `upgrade::bind_existing`
//! after each chunk. COPY needs the row triggers off (they would hold every
//! row pending for an entry the fill writes itself): the chunks are written
//! on a superuser's connection with `session_replication_role = replica`.

use anyhow::Context;
use cellqc::auth::anchor_key::AnchorKey;
use cellqc::db::digest::HexDigest;
use cellqc::db::models::{BatchRow, ResultRow, SignatureRow};
use cellqc::db::schema::{
    audit_chain_heads, audit_entries, batches, instrument_events, instruments, material_lots,
    material_uses, products, results, signatures, users,
};
use cellqc::demo::msc_passing_values;
use cellqc::domain::StoredName;
use cellqc::domain::audit::{ActorRef, EntryContent, SYSTEM_CHAIN, SYSTEM_CHAIN_ID, batch_chain};
use cellqc::domain::audit_event::AuditEvent;
use cellqc::domain::signature::{Meaning, record_hash};
use cellqc::services::batch_record::result_of;
use cellqc::services::results::result_record;
use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, TimeZone, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::CopyFormat;
use diesel::prelude::*;
use serde_json::{Value, json};
use std::io::Write;
use uuid::Uuid;

/// Results per generated batch (the first ten tests of the MSC panel).
const RESULTS: usize = 10;
/// Of which reviewed.
const REVIEWED: usize = 9;
/// Batches per transaction.
const CHUNK: usize = 5_000;
/// Seconds between generated batches: a million batches span about three years.
const SPACING_S: i64 = 90;
/// Flow cytometers the flow results are measured on, batch by batch in turn.
const CYTOMETERS: usize = 4;
/// Every cytometer is calibrated before every this many batches (time is
/// compressed, as batches are 90 s apart: each calibration window covers a
/// hundred batches per cytometer, as a site's year might).
const CALIBRATE_EVERY: usize = 400;
/// A new 7-AAD lot every this many batches.
const REAGENT_LOT_EVERY: usize = 100;
/// A new culture-medium lot every this many batches.
const MEDIUM_LOT_EVERY: usize = 250;

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
    /// A hex hash into a `bytea` column (its `\x` input form).
    fn digest(&mut self, hex: &str) -> &mut Self {
        self.text(&format!("\\x{hex}"))
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
    qa: ActorRef,
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

/// A chain being written: its key, next position and last hash.
struct Chain {
    id: i64,
    name: String,
    seq: i64,
    hash: String,
    at: DateTime<Utc>,
}

/// The text of one chunk's COPY streams.
#[derive(Default)]
struct Chunk {
    batches: String,
    lots: String,
    events: String,
    results: String,
    uses: String,
    signatures: String,
    audit: String,
    /// The batch chains, to be bound once their rows are written.
    chains: Vec<(Uuid, Chain)>,
    /// The system chain's rows: (table, id).
    system_rows: Vec<(&'static str, Uuid)>,
}

struct Entry<'a> {
    at: DateTime<Utc>,
    actor: Option<&'a ActorRef>,
    action: AuditEvent,
    entity_type: &'a str,
    entity_id: Uuid,
    batch_id: Option<Uuid>,
    reason: Option<&'a str>,
    after: Value,
    rows: Option<Value>,
}

impl Chain {
    fn push(&mut self, out: &mut String, e: Entry<'_>) -> anyhow::Result<()> {
        let seq = self.seq + 1;
        let content = EntryContent {
            chain: &self.name,
            seq,
            at: e.at,
            actor: e.actor,
            action: e.action.as_str(),
            entity_type: e.entity_type,
            entity_id: Some(e.entity_id),
            batch_id: e.batch_id,
            reason: e.reason,
            before: None,
            after: Some(&e.after),
            rows: e.rows.as_ref(),
        };
        let hash = content.hash(&self.hash)?;
        Line::default()
            .text(&Uuid::now_v7().to_string())
            .text(&self.id.to_string())
            .text(&seq.to_string())
            .at(e.at)
            .opt(e.actor.map(|a| a.id))
            .opt(e.actor.map(|a| a.username.as_str()))
            .opt(e.actor.map(|a| a.full_name.as_str()))
            .text(e.action.as_str())
            .text(e.entity_type)
            .text(&e.entity_id.to_string())
            .opt(e.batch_id)
            .opt(e.reason)
            .field(None)
            .text(&e.after.to_string())
            .digest(&self.hash)
            .digest(&hash)
            .opt(e.rows.as_ref().map(Value::to_string))
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
    /// The tests measured on a flow cytometer.
    flow: Vec<String>,
    cytometers: Vec<Uuid>,
    actors: Actors,
    /// The site's key: every generated signature is sealed with it.
    key: std::sync::Arc<AnchorKey>,
}

/// The lots in use: (lot number, id) of the current 7-AAD and medium lots.
#[derive(Default)]
struct Lots {
    reagent: Option<(String, Uuid)>,
    medium: Option<(String, Uuid)>,
}

fn reagent_lot(n: usize) -> String {
    format!("FILL-7AAD-{:06}", (n - 1) / REAGENT_LOT_EVERY + 1)
}

fn medium_lot(n: usize) -> String {
    format!("FILL-MED-{:06}", (n - 1) / MEDIUM_LOT_EVERY + 1)
}

/// A lot received and released (signed) just before `at`, in date for a year.
fn lot_rows(
    plan: &Plan,
    (code, name, kind): (&str, &str, &str),
    lot_number: &str,
    at: DateTime<Utc>,
    system: &mut Chain,
    chunk: &mut Chunk,
) -> anyhow::Result<Uuid> {
    let id = Uuid::now_v7();
    let qa = &plan.actors.qa;
    let (received, released) = (
        at - ChronoDuration::seconds(50),
        at - ChronoDuration::seconds(40),
    );
    let expires = at + ChronoDuration::days(365);
    Line::default()
        .text(&id.to_string())
        .text(code)
        .text(name)
        .text(lot_number)
        .text("Generated Supplier")
        .text(kind)
        .at(expires)
        .text("released")
        .at(received)
        .text(&plan.actors.tech.id.to_string())
        .at(released)
        .text(&qa.id.to_string())
        .field(None)
        .field(None)
        .field(None)
        .end(&mut chunk.lots);
    let record = json!({"id": id, "code": code, "name": name, "lot_number": lot_number,
        "supplier": "Generated Supplier", "kind": kind, "expires_at": expires});
    system.push(
        &mut chunk.audit,
        Entry {
            at: received,
            actor: Some(&plan.actors.tech),
            action: AuditEvent::MaterialReceived,
            entity_type: "material",
            entity_id: id,
            batch_id: None,
            after: record.clone(),
            reason: None,
            rows: None,
        },
    )?;
    let s = SignatureRow {
        id: Uuid::now_v7(),
        signer_id: qa.id,
        signer_username: qa.username.clone(),
        signer_full_name: qa.full_name.clone(),
        meaning: Meaning::MaterialReleased.as_str().to_owned(),
        signed_at: released,
        reason: None,
        record_hash: record_hash(&record, qa.id, Meaning::MaterialReleased, released)?,
        entity_type: "material".to_owned(),
        entity_id: id,
        batch_id: None,
        // The statement columns stay empty: read as the English statement.
        statement: None,
        statement_locale: None,
        record_table: None,
        record_id: None,
        seal: None,
        xact: None,
    };
    signature_line(&s, &plan.key, &mut chunk.signatures)?;
    chunk.system_rows.push(("material_lots", id));
    chunk.system_rows.push(("signatures", s.id));
    system.push(
        &mut chunk.audit,
        Entry {
            at: released,
            actor: Some(qa),
            action: AuditEvent::MaterialReleased,
            entity_type: "material",
            entity_id: id,
            batch_id: None,
            after: json!({"status": "released", "signature_id": s.id, "record_hash": s.record_hash}),
            reason: None,
            rows: None,
        },
    )?;
    Ok(id)
}

/// A signature as an earlier version wrote it (naming no row), sealed as
/// the upgrade seals such signatures.
fn signature_line(s: &SignatureRow, key: &AnchorKey, out: &mut String) -> anyhow::Result<()> {
    let seal = key.seal(&s.sealed_content().canonical()?);
    Line::default()
        .text(&s.id.to_string())
        .text(&s.signer_id.to_string())
        .text(&s.signer_username)
        .text(&s.signer_full_name)
        .text(&s.meaning)
        .at(s.signed_at)
        .opt(s.reason.as_deref())
        .digest(&s.record_hash)
        .text(&s.entity_type)
        .text(&s.entity_id.to_string())
        .opt(s.batch_id)
        .opt(s.statement.as_deref())
        .opt(s.statement_locale.as_deref())
        .field(None)
        .field(None)
        .digest(&hex::encode(seal))
        .field(None)
        .end(out);
    Ok(())
}

/// One material use (of a result, or of the batch's manufacture).
fn use_line(
    lot: Uuid,
    batch: Uuid,
    result: Option<Uuid>,
    at: DateTime<Utc>,
    by: Uuid,
    out: &mut String,
) -> Uuid {
    let id = Uuid::now_v7();
    Line::default()
        .text(&id.to_string())
        .text(&lot.to_string())
        .text(&batch.to_string())
        .opt(result)
        .at(at)
        .field(None)
        .field(None)
        .text(&by.to_string())
        .at(at)
        .end(out);
    id
}

/// The lab's state before batch `n`: calibrations and new lots when due.
fn lab_rows(
    plan: &Plan,
    n: usize,
    lots: &mut Lots,
    system: &mut Chain,
    chunk: &mut Chunk,
) -> anyhow::Result<()> {
    let made = plan.start + ChronoDuration::seconds(SPACING_S * n as i64);
    if (n - 1) % CALIBRATE_EVERY == 0 {
        for (k, cytometer) in plan.cytometers.iter().enumerate() {
            let at = made - ChronoDuration::seconds(30 - k as i64);
            let id = Uuid::now_v7();
            let valid_until = at + ChronoDuration::days(3);
            let certificate = format!("FILL-CAL-{n:07}-{k}");
            Line::default()
                .text(&id.to_string())
                .text(&cytometer.to_string())
                .text("calibration")
                .at(at)
                .text("pass")
                .at(valid_until)
                .text(&certificate)
                .field(None)
                .field(None)
                .text(&plan.actors.tech.id.to_string())
                .at(at)
                .end(&mut chunk.events);
            chunk.system_rows.push(("instrument_events", id));
            system.push(
                &mut chunk.audit,
                Entry {
                    at,
                    actor: Some(&plan.actors.tech),
                    action: AuditEvent::InstrumentCalibrated,
                    entity_type: "instrument",
                    entity_id: *cytometer,
                    batch_id: None,
                    after: json!({"event_id": id, "performed_at": at, "outcome": "pass",
                        "valid_until": valid_until, "certificate": certificate}),
                    reason: None,
                    rows: None,
                },
            )?;
        }
    }
    let reagent = reagent_lot(n);
    if lots.reagent.as_ref().is_none_or(|(l, _)| *l != reagent) {
        let id = lot_rows(
            plan,
            ("7AAD", "7-AAD viability staining solution", "reagent"),
            &reagent,
            made,
            system,
            chunk,
        )?;
        lots.reagent = Some((reagent, id));
    }
    let medium = medium_lot(n);
    if lots.medium.as_ref().is_none_or(|(l, _)| *l != medium) {
        let id = lot_rows(
            plan,
            (
                "MSC-MEDIUM",
                "MSC culture medium, xeno-free",
                "raw_material",
            ),
            &medium,
            made,
            system,
            chunk,
        )?;
        lots.medium = Some((medium, id));
    }
    Ok(())
}

fn batch_rows(
    plan: &Plan,
    n: usize,
    chain_id: i64,
    lots: &Lots,
    system: &mut Chain,
    chunk: &mut Chunk,
) -> anyhow::Result<()> {
    let (Some((_, reagent)), Some((medium_number, medium))) = (&lots.reagent, &lots.medium) else {
        anyhow::bail!("batch {n}: no lots in use");
    };
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
        id: chain_id,
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
            actor: Some(tech),
            action: AuditEvent::BatchCreated,
            entity_type: "batch",
            entity_id: batch.id,
            batch_id: Some(batch.id),
            after: json!({"id": batch.id, "batch_number": batch.batch_number,
                "product_id": batch.product_id, "spec_id": batch.spec_id, "status": "quarantine"}),
            reason: None,
            rows: None,
        },
    )?;
    let use_id = use_line(*medium, batch.id, None, made, tech.id, &mut chunk.uses);
    chain.push(
        &mut chunk.audit,
        Entry {
            at: at(1),
            actor: Some(tech),
            action: AuditEvent::MaterialUsed,
            entity_type: "material",
            entity_id: *medium,
            batch_id: Some(batch.id),
            after: json!({"use_id": use_id, "material_id": medium, "code": "MSC-MEDIUM",
                "lot_number": medium_number, "used_at": made, "quantity": null, "unit": null}),
            reason: None,
            rows: None,
        },
    )?;
    let cytometer = plan
        .cytometers
        .get(n % plan.cytometers.len().max(1))
        .copied()
        .context("no cytometer")?;
    let mut recorded = Vec::with_capacity(RESULTS);
    for (k, (code, value)) in plan.tests.iter().enumerate() {
        let instrument_id = plan.flow.iter().any(|f| f == code).then_some(cytometer);
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
            instrument_id,
            source_file_id: None,
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
            .opt(r.instrument_id)
            .opt(r.source_file_id)
            .end(&mut chunk.results);
        let mut recorded_result = result_of(r.clone(), tech.clone())?;
        if *code == "VIAB" {
            use_line(
                *reagent,
                batch.id,
                Some(r.id),
                r.performed_at,
                tech.id,
                &mut chunk.uses,
            );
            recorded_result.material_ids = vec![*reagent];
        }
        let record = result_record(batch.id, &recorded_result)?;
        chain.push(
            &mut chunk.audit,
            Entry {
                at: r.recorded_at,
                actor: Some(tech),
                action: AuditEvent::ResultRecorded,
                entity_type: "result",
                entity_id: r.id,
                batch_id: Some(batch.id),
                after: record.clone(),
                reason: None,
                rows: None,
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
            statement: None,
            statement_locale: None,
            record_table: None,
            record_id: None,
            seal: None,
            xact: None,
        };
        signature_line(&s, &plan.key, &mut chunk.signatures)?;
        chain.push(
            &mut chunk.audit,
            Entry {
                at: signed_at,
                actor: Some(reviewer),
                action: AuditEvent::ResultReviewed,
                entity_type: "result",
                entity_id: r.id,
                batch_id: Some(batch.id),
                after: json!({"signature_id": s.id, "meaning": s.meaning,
                    "signed_at": s.signed_at, "record_hash": s.record_hash}),
                reason: None,
                rows: None,
            },
        )?;
    }
    chunk.chains.push((batch.id, chain));
    system.push(
        &mut chunk.audit,
        Entry {
            at: at(45),
            actor: Some(reviewer),
            action: AuditEvent::AuthLogin,
            entity_type: "user",
            entity_id: reviewer.id,
            batch_id: None,
            after: json!({"session": "generated"}),
            reason: None,
            rows: None,
        },
    )?;
    Ok(())
}

/// The generated lab's flow cytometers, registered through the service (on
/// the system chain) the first time.
fn cytometers(conn: &mut PgConnection) -> anyhow::Result<Vec<Uuid>> {
    let qa_row = users::table
        .filter(users::username.eq("qa"))
        .select(cellqc::db::models::UserRow::as_select())
        .first(conn)
        .context("the demo user qa is missing")?;
    let qa = cellqc::services::Actor::try_from(&qa_row).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut ids = Vec::with_capacity(CYTOMETERS);
    for k in 1..=CYTOMETERS {
        let code = format!("FILL-FC-{k}");
        let id: Option<Uuid> = instruments::table
            .filter(instruments::code.eq(&code))
            .select(instruments::id)
            .first(conn)
            .optional()?;
        let id = match id {
            Some(id) => id,
            None => {
                cellqc::services::instruments::register(
                    conn,
                    &qa,
                    &serde_json::from_value(serde_json::json!({
                        "code": code,
                        "name": format!("Generated flow cytometer {k}"),
                        "kind": cellqc::demo::FLOW_CYTOMETER,
                        "location": "QC laboratory 1",
                    }))?,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .id
            }
        };
        ids.push(id);
    }
    Ok(ids)
}

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    key: i64,
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

/// The current rows of some batch chains with their forms' hashes.
#[derive(QueryableByName)]
struct BoundRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    tbl: String,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    batch_id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    hash: Vec<u8>,
}

/// Ends each of the chunk's batch chains with the entry binding its rows as
/// the database holds them, and writes the chains' heads.
fn bind_batch_chains(c: &mut PgConnection, chunk: &mut Chunk) -> anyhow::Result<()> {
    let ids: Vec<Uuid> = chunk.chains.iter().map(|(id, _)| *id).collect();
    let rows: Vec<BoundRow> = diesel::sql_query(cellqc::db::binding::batch_rows_sql())
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&ids)
        .load(c)
        .context("reading the generated rows' forms")?;
    let mut by_batch: std::collections::HashMap<Uuid, Vec<BoundRow>> =
        std::collections::HashMap::new();
    for r in rows {
        if let Some(b) = r.batch_id {
            by_batch.entry(b).or_default().push(r);
        }
    }
    let mut audit = String::new();
    let mut heads = String::new();
    for (batch, chain) in &mut chunk.chains {
        let mut rows = by_batch.remove(batch).unwrap_or_default();
        // The order the database lists a transaction's rows in.
        rows.sort_by(|a, b| (a.tbl.as_bytes(), a.id).cmp(&(b.tbl.as_bytes(), b.id)));
        let n = rows.len();
        let listed: Vec<Value> = rows
            .into_iter()
            .map(|r| json!({"hash": hex::encode(r.hash), "id": r.id, "table": r.tbl}))
            .collect();
        let at = chain.at;
        chain.push(
            &mut audit,
            Entry {
                at,
                actor: None,
                action: AuditEvent::RecordBoundAtUpgrade,
                entity_type: "batch",
                entity_id: *batch,
                batch_id: Some(*batch),
                reason: Some(
                    "rows written before rows were bound to the trail, bound as found at the upgrade",
                ),
                after: json!({"rows": n, "signatures_sealed": REVIEWED}),
                rows: Some(Value::Array(listed)),
            },
        )?;
        Line::default()
            .text(&chain.name)
            .text(&chain.seq.to_string())
            .digest(&chain.hash)
            .at(chain.at)
            .text(&chain.id.to_string())
            .end(&mut heads);
    }
    copy_text!(c, audit_entries::table, &audit);
    copy_text!(c, audit_chain_heads::table, &heads);
    Ok(())
}

/// Fills the database up to `target` generated batches; returns how many it
/// added. `conn` is the schema owner's (the services' work, the binding of
/// the system chain's rows); `copier` a superuser's, on which the chunks are
/// copied with the row triggers off.
pub fn fill(
    conn: &mut PgConnection,
    copier: &mut PgConnection,
    key: std::sync::Arc<AnchorKey>,
    target: usize,
) -> anyhow::Result<usize> {
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
        flow: cellqc::demo::controlled_tests(&cellqc::demo::msc_spec())
            .into_iter()
            .filter(|(_, kind)| kind.is_some())
            .map(|(code, _)| code)
            .collect(),
        cytometers: cytometers(conn)?,
        actors: Actors {
            tech: actor(conn, "tech")?,
            reviewer: actor(conn, "reviewer")?,
            qa: actor(conn, "qa")?,
        },
        key,
    };
    // Resuming: the lots the next batch uses exist when it is not the
    // first of its lot.
    let mut lots = Lots::default();
    let next = have + 1;
    for (number, slot) in [
        (reagent_lot(next), &mut lots.reagent),
        (medium_lot(next), &mut lots.medium),
    ] {
        let id: Option<Uuid> = material_lots::table
            .filter(material_lots::lot_number.eq(&number))
            .select(material_lots::id)
            .first(conn)
            .optional()?;
        *slot = id.map(|id| (number, id));
    }
    copier
        .batch_execute(
            "SET synchronous_commit = off; SET session_replication_role = replica; \
             SET TimeZone TO 'UTC'; SET bytea_output TO 'hex'",
        )
        .context("the fill needs a superuser's connection (session_replication_role)")?;
    let progress = cellqc::progress::Progress::new(
        &format!("fill (from {have})"),
        u64::try_from(target - have)?,
        "batches",
    );
    let mut n = have;
    while n < target {
        let end = (n + CHUNK).min(target);
        copier.transaction(|c| -> anyhow::Result<()> {
            let (seq, hash, at): (i64, HexDigest, DateTime<Utc>) = audit_chain_heads::table
                .find(SYSTEM_CHAIN_ID)
                .select((
                    audit_chain_heads::seq,
                    audit_chain_heads::hash,
                    audit_chain_heads::last_at,
                ))
                .for_update()
                .first(c)
                .context("the system chain has no head")?;
            let hash = hash.0;
            // The keys of this chunk's batch chains, from the heads' identity.
            let keys: Vec<i64> = diesel::sql_query(format!(
                "SELECT nextval(pg_get_serial_sequence('audit_chain_heads', 'id')) AS key \
                   FROM generate_series(1, {})",
                end - n
            ))
            .load::<Key>(c)?
            .into_iter()
            .map(|k| k.key)
            .collect();
            let mut system = Chain {
                id: SYSTEM_CHAIN_ID,
                name: SYSTEM_CHAIN.to_owned(),
                seq,
                hash,
                at,
            };
            let mut chunk = Chunk::default();
            for (i, key) in (n..end).zip(keys) {
                lab_rows(&plan, i + 1, &mut lots, &mut system, &mut chunk)?;
                batch_rows(&plan, i + 1, key, &lots, &mut system, &mut chunk)?;
            }
            copy_text!(c, batches::table, &chunk.batches);
            copy_text!(c, material_lots::table, &chunk.lots);
            copy_text!(c, instrument_events::table, &chunk.events);
            copy_text!(c, results::table, &chunk.results);
            copy_text!(c, material_uses::table, &chunk.uses);
            copy_text!(c, signatures::table, &chunk.signatures);
            copy_text!(c, audit_entries::table, &chunk.audit);
            bind_batch_chains(c, &mut chunk)?;
            // The system chain's rows, bound after the commit.
            let (tables, ids): (Vec<&str>, Vec<Uuid>) = chunk.system_rows.iter().copied().unzip();
            diesel::sql_query(
                "INSERT INTO audit_rows_to_bind (tbl, id, batch_id) \
                 SELECT t, i, NULL FROM unnest($1::text[], $2::uuid[]) AS u(t, i)",
            )
            .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&tables)
            .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&ids)
            .execute(c)?;
            // The head moves forward one entry at a time (a trigger refuses
            // a jump), in one server-side loop over the entries just copied.
            diesel::sql_query(format!(
                "DO $$ BEGIN FOR i IN 1..{} LOOP \
                   UPDATE audit_chain_heads h SET seq = e.seq, hash = e.hash, \
                          last_at = GREATEST(h.last_at, e.at) \
                     FROM audit_entries e \
                    WHERE h.id = {SYSTEM_CHAIN_ID} AND e.chain_id = h.id AND e.seq = h.seq + 1; \
                 END LOOP; END $$",
                system.seq - seq
            ))
            .execute(c)?;
            let (moved, head): (i64, HexDigest) = audit_chain_heads::table
                .find(SYSTEM_CHAIN_ID)
                .select((audit_chain_heads::seq, audit_chain_heads::hash))
                .first(c)?;
            anyhow::ensure!(
                moved == system.seq && head.0 == system.hash,
                "the system chain's head is at {moved}, not {}",
                system.seq
            );
            Ok(())
        })?;
        cellqc::upgrade::bind_existing(conn, &plan.key)
            .context("binding the system chain's generated rows")?;
        n = end;
        progress.set(u64::try_from(n - have)?);
    }
    progress.finish();
    diesel::sql_query("ANALYZE").execute(copier)?;
    Ok(target - have)
}

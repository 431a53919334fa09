//! Material lots (21 CFR 211.84, 211.194(a); EU GMP Ch. 5): received into
//! quarantine (technician, QA), released or rejected by QA with a
//! signature, on the system chain. Their use by a batch is recorded on the
//! batch's chain; "where used" answers from `material_uses` by index. The
//! rule at each use is `domain::material::check_usable`.

use super::audit::{self, AuditRecord};
use super::batch_record::LockedBatch;
use super::batch_record::fitness::usable_lot;
use super::signatures::{self, Signing, SigningRules};
use super::{Actor, in_transaction};
use crate::db::models::MaterialLotRow;
use crate::db::schema::{batches, material_lots, material_uses};
use crate::domain::StoredName;
use crate::domain::audit::SYSTEM_CHAIN;
use crate::domain::audit_event::AuditEvent;
use crate::domain::material::{LotStatus, ReceiveMaterial, RejectMaterial};
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::Code;
use crate::error::{AppError, FieldError};
use bigdecimal::BigDecimal;
use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use std::str::FromStr;
use uuid::Uuid;

/// A material lot as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MaterialView {
    /// Id.
    pub id: Uuid,
    /// Material code.
    pub code: String,
    /// Name.
    pub name: String,
    /// The supplier's lot number.
    pub lot_number: String,
    /// Supplier.
    pub supplier: Option<String>,
    /// `reagent`, `consumable` or `raw_material`.
    pub kind: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// `quarantine`, `released` or `rejected`.
    pub status: String,
    /// Received at.
    pub created_at: DateTime<Utc>,
    /// When QA released it.
    pub released_at: Option<DateTime<Utc>>,
    /// When QA rejected it.
    pub rejected_at: Option<DateTime<Utc>>,
    /// Why.
    pub reject_reason: Option<String>,
}

impl From<&MaterialLotRow> for MaterialView {
    fn from(m: &MaterialLotRow) -> Self {
        MaterialView {
            id: m.id,
            code: m.code.clone(),
            name: m.name.clone(),
            lot_number: m.lot_number.clone(),
            supplier: m.supplier.clone(),
            kind: m.kind.clone(),
            expires_at: m.expires_at,
            status: m.status.clone(),
            created_at: m.created_at,
            released_at: m.released_at,
            rejected_at: m.rejected_at,
            reject_reason: m.reject_reason.clone(),
        }
    }
}

fn record_of(m: &MaterialLotRow) -> Value {
    json!({
        "id": m.id,
        "code": m.code,
        "lot_number": m.lot_number,
        "kind": m.kind,
        "expires_at": m.expires_at,
        "status": m.status,
    })
}

fn lock(c: &mut PgConnection, id: Uuid) -> Result<MaterialLotRow, AppError> {
    material_lots::table
        .find(id)
        .select(MaterialLotRow::as_select())
        .for_update()
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::refused(Code::MaterialNotFound, format!("no material lot {id}")))
}

/// Receives a lot into quarantine (technician, QA).
pub fn receive(
    conn: &mut PgConnection,
    actor: &Actor,
    input: &ReceiveMaterial,
) -> Result<MaterialView, AppError> {
    actor.authorize(Action::ReceiveMaterials)?;
    let (code, lot_number) = (input.code.as_str(), input.lot_number.as_str());
    in_transaction(conn, |c| {
        let taken: bool = diesel::select(diesel::dsl::exists(
            material_lots::table
                .filter(material_lots::code.eq(&code))
                .filter(material_lots::lot_number.eq(&lot_number)),
        ))
        .get_result(c)?;
        if taken {
            return Err(AppError::refused(
                Code::MaterialLotExists,
                format!("lot {lot_number} of {code} is received already"),
            ));
        }
        let row = MaterialLotRow {
            id: Uuid::now_v7(),
            code: code.to_owned(),
            name: input.name.to_string(),
            lot_number: lot_number.to_owned(),
            supplier: input.supplier.as_deref().map(str::to_owned),
            kind: input.kind.as_str().to_owned(),
            expires_at: input.expires_at.trunc_subsecs(6),
            status: LotStatus::Quarantine.as_str().to_owned(),
            created_at: Utc::now().trunc_subsecs(6),
            created_by: actor.id,
            released_at: None,
            released_by: None,
            rejected_at: None,
            rejected_by: None,
            reject_reason: None,
        };
        diesel::insert_into(material_lots::table)
            .values(&row)
            .execute(c)?;
        audit::append(
            c,
            AuditRecord::new(
                SYSTEM_CHAIN,
                Some(actor),
                AuditEvent::MaterialReceived,
                "material",
                Some(row.id),
            )
            .after(record_of(&row)),
        )?;
        Ok(MaterialView::from(&row))
    })
}

/// Lots by code and lot number, filtered.
pub fn list(
    conn: &mut PgConnection,
    code: Option<&str>,
    status: Option<LotStatus>,
    q: Option<&str>,
) -> Result<Vec<MaterialView>, AppError> {
    let mut query = material_lots::table
        .select(MaterialLotRow::as_select())
        .order((material_lots::code, material_lots::lot_number))
        .limit(500)
        .into_boxed();
    if let Some(c) = code {
        query = query.filter(material_lots::code.eq(c.to_owned()));
    }
    if let Some(s) = status {
        query = query.filter(material_lots::status.eq(s.as_str()));
    }
    if let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) {
        let like = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        query = query.filter(
            material_lots::name
                .ilike(like.clone())
                .or(material_lots::lot_number.ilike(like.clone()))
                .or(material_lots::code.ilike(like)),
        );
    }
    Ok(query.load(conn)?.iter().map(MaterialView::from).collect())
}

/// One lot.
pub fn get(conn: &mut PgConnection, id: Uuid) -> Result<MaterialView, AppError> {
    material_lots::table
        .find(id)
        .select(MaterialLotRow::as_select())
        .first(conn)
        .optional()?
        .map(|m| MaterialView::from(&m))
        .ok_or_else(|| AppError::refused(Code::MaterialNotFound, format!("no material lot {id}")))
}

/// QA releases a lot from quarantine (signed `material_released`).
pub fn release(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    id: Uuid,
    password: &str,
) -> Result<MaterialView, AppError> {
    actor.authorize(Action::Sign(Meaning::MaterialReleased))?;
    in_transaction(conn, |c| {
        let before = lock(c, id)?;
        if before.status != LotStatus::Quarantine.as_str() {
            return Err(AppError::refused(
                Code::MaterialNotInQuarantine,
                format!(
                    "lot {} is {}, not in quarantine",
                    before.lot_number, before.status
                ),
            ));
        }
        if let Err(refusal) = signatures::verify_signer(c, rules.lockout, actor, password)? {
            return Ok(Err(refusal));
        }
        let now = Utc::now().trunc_subsecs(6);
        let after: MaterialLotRow = diesel::update(material_lots::table.find(id))
            .set((
                material_lots::status.eq(LotStatus::Released.as_str()),
                material_lots::released_at.eq(now),
                material_lots::released_by.eq(actor.id),
            ))
            .returning(MaterialLotRow::as_returning())
            .get_result(c)?;
        sign_and_audit(
            c,
            rules,
            actor,
            &before,
            &after,
            Meaning::MaterialReleased,
            None,
        )?;
        Ok(Ok(MaterialView::from(&after)))
    })?
}

/// QA rejects a lot (signed `material_rejected`).
pub fn reject(
    conn: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    id: Uuid,
    input: &RejectMaterial,
) -> Result<MaterialView, AppError> {
    actor.authorize(Action::Sign(Meaning::MaterialRejected))?;
    let (reason, password) = (input.reason.to_string(), input.password.as_str());
    in_transaction(conn, |c| {
        let before = lock(c, id)?;
        if before.status == LotStatus::Rejected.as_str() {
            return Err(AppError::refused(
                Code::MaterialRejectedAlready,
                format!("lot {} is rejected already", before.lot_number),
            ));
        }
        if let Err(refusal) = signatures::verify_signer(c, rules.lockout, actor, password)? {
            return Ok(Err(refusal));
        }
        let now = Utc::now().trunc_subsecs(6);
        let after: MaterialLotRow = diesel::update(material_lots::table.find(id))
            .set((
                material_lots::status.eq(LotStatus::Rejected.as_str()),
                material_lots::rejected_at.eq(now),
                material_lots::rejected_by.eq(actor.id),
                material_lots::reject_reason.eq(&reason),
            ))
            .returning(MaterialLotRow::as_returning())
            .get_result(c)?;
        sign_and_audit(
            c,
            rules,
            actor,
            &before,
            &after,
            Meaning::MaterialRejected,
            Some(&reason),
        )?;
        assess_impact(c, &after, &reason)?;
        Ok(Ok(MaterialView::from(&after)))
    })?
}

fn sign_and_audit(
    c: &mut PgConnection,
    rules: &SigningRules,
    actor: &Actor,
    before: &MaterialLotRow,
    after: &MaterialLotRow,
    meaning: Meaning,
    reason: Option<&str>,
) -> Result<(), AppError> {
    let action = match meaning {
        Meaning::MaterialRejected => AuditEvent::MaterialRejected,
        _ => AuditEvent::MaterialReleased,
    };
    let record = record_of(after);
    let sig = signatures::record(
        c,
        rules,
        actor,
        &Signing {
            meaning,
            entity_type: "material",
            entity_id: after.id,
            batch_id: None,
            reason,
            signs: after.id,
        },
    )?;
    let mut after_json = record.clone();
    if let Value::Object(f) = &mut after_json {
        f.insert("signature_id".into(), json!(sig.id));
    }
    let mut rec = AuditRecord::new(
        SYSTEM_CHAIN,
        Some(actor),
        action,
        "material",
        Some(after.id),
    )
    .signed_change(&record_of(before), after_json);
    rec.reason = reason;
    audit::append(c, rec)?;
    Ok(())
}

/// What went into a batch's manufacture.
#[derive(Debug, Clone)]
pub struct BatchUse {
    /// The lot.
    pub material_id: Uuid,
    /// When it was used.
    pub used_at: DateTime<Utc>,
    /// How much (as entered).
    pub quantity: Option<String>,
    /// Unit.
    pub unit: Option<String>,
}

/// A use as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UseView {
    /// Id.
    pub id: Uuid,
    /// The lot.
    pub material_id: Uuid,
    /// The batch.
    pub batch_id: Uuid,
    /// The result, when used in a test.
    pub result_id: Option<Uuid>,
    /// When.
    pub used_at: DateTime<Utc>,
    /// How much.
    pub quantity: Option<String>,
    /// Unit.
    pub unit: Option<String>,
}

/// Records a lot used in a batch's manufacture (technician), on the batch's chain.
pub fn use_in_batch(
    conn: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
    input: &BatchUse,
) -> Result<UseView, AppError> {
    actor.authorize(Action::RecordResult)?;
    let mut errors = Vec::new();
    let quantity = match input
        .quantity
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
    {
        None => None,
        Some(q) => match BigDecimal::from_str(q) {
            Ok(v) if v > 0 => Some(v),
            _ => {
                errors.push(FieldError::said("quantity", "fe-is-a-positive-number", &[]));
                None
            }
        },
    };
    let unit = crate::domain::text::optional_line("unit", input.unit.as_deref(), 20, &mut errors);
    if input.used_at > Utc::now() {
        errors.push(FieldError::said("used_at", "field-in-future", &[]));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    in_transaction(conn, |c| {
        let mut lb = LockedBatch::lock_using(c, batch_id, None, &[input.material_id])?;
        let lot = usable_lot(c, input.material_id, input.used_at, "material_id")?;
        let id = Uuid::now_v7();
        diesel::insert_into(material_uses::table)
            .values((
                material_uses::id.eq(id),
                material_uses::material_id.eq(lot.id),
                material_uses::batch_id.eq(batch_id),
                material_uses::used_at.eq(input.used_at.trunc_subsecs(6)),
                material_uses::quantity.eq(&quantity),
                material_uses::unit.eq(&unit),
                material_uses::recorded_by.eq(actor.id),
                material_uses::recorded_at.eq(Utc::now()),
            ))
            .execute(c)?;
        let chain = lb.chain();
        lb.append(
            c,
            AuditRecord::on_batch(
                &chain,
                batch_id,
                Some(actor),
                AuditEvent::MaterialUsed,
                "material",
                lot.id,
            )
            .after(json!({
                "use_id": id,
                "material_id": lot.id,
                "code": lot.code,
                "lot_number": lot.lot_number,
                "used_at": input.used_at,
                "quantity": quantity.as_ref().map(ToString::to_string),
                "unit": unit,
            })),
        )?;
        Ok(UseView {
            id,
            material_id: lot.id,
            batch_id,
            result_id: None,
            used_at: input.used_at,
            quantity: quantity.as_ref().map(ToString::to_string),
            unit: unit.clone(),
        })
    })
}

/// One batch a lot went into.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WhereUsed {
    /// The batch.
    pub batch_id: Uuid,
    /// Its number.
    pub batch_number: String,
    /// Its status now.
    pub status: String,
    /// `batch` (manufacture) or `result` (a test).
    pub via: &'static str,
    /// The results, when used in tests.
    pub result_ids: Vec<Uuid>,
}

/// Where a lot went, as CSV (the one CSV writer): one row per batch.
pub fn where_used_csv(used: &[WhereUsed]) -> Result<Vec<u8>, AppError> {
    let mut w =
        crate::report::csv::Csv::new(["batch_number", "batch_id", "status", "via", "result_ids"])?;
    for u in used {
        let results: Vec<String> = u.result_ids.iter().map(Uuid::to_string).collect();
        w.row([
            u.batch_number.clone(),
            u.batch_id.to_string(),
            u.status.clone(),
            u.via.to_owned(),
            results.join(" "),
        ])?;
    }
    Ok(w.finish()?)
}

/// Every batch a lot went into, from the index on `material_uses`.
pub fn where_used(conn: &mut PgConnection, id: Uuid) -> Result<Vec<WhereUsed>, AppError> {
    get(conn, id)?;
    let rows: Vec<(Uuid, String, String, Option<Uuid>)> = material_uses::table
        .inner_join(batches::table.on(batches::id.eq(material_uses::batch_id)))
        .filter(material_uses::material_id.eq(id))
        .order((batches::batch_number, material_uses::id))
        .select((
            batches::id,
            batches::batch_number,
            batches::status,
            material_uses::result_id,
        ))
        .load(conn)?;
    let mut out: Vec<WhereUsed> = Vec::new();
    for (batch_id, number, status, result) in rows {
        let via = if result.is_some() { "result" } else { "batch" };
        match out
            .iter_mut()
            .find(|w| w.batch_id == batch_id && w.via == via)
        {
            Some(w) => w.result_ids.extend(result),
            None => out.push(WhereUsed {
                batch_id,
                batch_number: number,
                status,
                via,
                result_ids: result.into_iter().collect(),
            }),
        }
    }
    Ok(out)
}

#[derive(QueryableByName)]
struct Affected {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    batch_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Uuid>)]
    result_ids: Vec<Uuid>,
}

/// Every batch, not rejected or recalled, that used the lot, in manufacture
/// or in a test (with those results): the `material_uses_where` index.
const AFFECTED: &str = "SELECT mu.batch_id, \
       COALESCE(array_agg(mu.result_id ORDER BY mu.result_id) \
                FILTER (WHERE mu.result_id IS NOT NULL), '{}') AS result_ids \
     FROM material_uses mu JOIN batches b ON b.id = mu.batch_id \
     WHERE mu.material_id = $1 AND b.status NOT IN ('rejected', 'recalled') \
     GROUP BY mu.batch_id ORDER BY mu.batch_id";

/// Rejecting a used lot opens a material deviation on every batch that used
/// it (`batch_record::open_impact`), batches locked in id order.
fn assess_impact(
    c: &mut PgConnection,
    lot: &MaterialLotRow,
    reason: &str,
) -> Result<usize, AppError> {
    use super::batch_record::{Impact, open_impact};
    use crate::domain::deviation::DeviationKind;
    let affected: Vec<Affected> = diesel::sql_query(AFFECTED)
        .bind::<diesel::sql_types::Uuid, _>(lot.id)
        .load(c)?;
    let impact = Impact {
        kind: DeviationKind::Material,
        subject_id: lot.id,
        title: format!("Material {} lot {} was rejected", lot.code, lot.lot_number),
        cause: format!(
            "QA rejected {} ({}) lot {}{}: {reason}",
            lot.code,
            lot.name,
            lot.lot_number,
            lot.supplier
                .as_deref()
                .map(|s| format!(" from {s}"))
                .unwrap_or_default(),
        ),
    };
    for a in &affected {
        open_impact(c, &impact, a.batch_id, &a.result_ids)?;
    }
    Ok(affected.len())
}

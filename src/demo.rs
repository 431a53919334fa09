//! Demo data: the reference products and release panels of the domain
//! contract (ISCT minimal criteria, Ph. Eur./USP methods) with effective
//! specifications, and one demo user per role, so a newcomer can walk the
//! whole flow at once. The panels are also the tests' reference data.

use crate::db::models::UserRow;
use crate::db::schema::{products, users};
use crate::domain::spec::{CreateProduct, CreateSpecification};
use crate::error::AppError;
use crate::i18n::Locale;
use crate::services::Actor;
use crate::services::products::{approve_spec, create_product, create_spec};
use crate::services::signatures::SigningRules;
use crate::services::users::{NewUserInput, create_user};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// Password of every demo user.
pub const DEMO_PASSWORD: &str = "cellqc-demo-pass";

/// Demo users: (username, full name, role).
pub const DEMO_USERS: [(&str, &str, &[&str], Locale); 9] = [
    ("tech", "Tess Technician", &["technician"], Locale::En),
    ("reviewer", "Rui Reviewer", &["reviewer"], Locale::En),
    ("qa", "Quinn Quality", &["qa"], Locale::En),
    ("qa2", "Petra Qualified-Person", &["qa"], Locale::En),
    // QA who also reviews results: once they review one of a batch's
    // results, they may not release that batch (independence, visible).
    ("qarev", "Remy Reviewer-QA", &["qa", "reviewer"], Locale::En),
    ("auditor", "Aud Itor", &["auditor"], Locale::En),
    // A Chinese-speaking technician, reviewer and QA person: the whole
    // lifecycle in Chinese (pages, emails, certificate, signing statements).
    ("wang", "王芳", &["technician"], Locale::ZhCn),
    ("liu", "刘洋", &["reviewer"], Locale::ZhCn),
    ("chen", "陈静", &["qa"], Locale::ZhCn),
];

/// The demo technicians, each qualified for every test that requires it.
const DEMO_TECHNICIANS: [&str; 2] = ["tech", "wang"];

/// The instrument kind of the flow-cytometry tests.
pub const FLOW_CYTOMETER: &str = "flow_cytometer";

/// Test codes that the reference panels mark `qualification_required`, and
/// the instrument kind each names (flow tests only).
pub fn controlled_tests(spec: &Value) -> Vec<(String, Option<String>)> {
    spec["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["qualification_required"] == json!(true) || t["instrument_kind"].is_string())
        .map(|t| {
            (
                t["code"].as_str().unwrap_or_default().to_owned(),
                t["instrument_kind"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// A command built as a request sends it, read by the same rules.
fn command<C: serde::de::DeserializeOwned>(v: Value) -> Result<C, AppError> {
    serde_json::from_value(v)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("the demo data breaks a rule: {e}")))
}

/// A command read from JSON text (which keeps a decimal as written).
fn command_text<C: serde::de::DeserializeOwned>(text: &str) -> Result<C, AppError> {
    serde_json::from_str(text)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("the demo data breaks a rule: {e}")))
}

fn flow(
    code: &str,
    name: &str,
    min: Option<&str>,
    max: Option<&str>,
    min_inc: bool,
    max_inc: bool,
) -> Value {
    json!({
        "code": code, "name": name, "method": "flow cytometry", "kind": "numeric", "unit": "%",
        "min": min, "max": max, "min_inclusive": min_inc, "max_inclusive": max_inc, "decimals": 1,
        "qualification_required": true, "instrument_kind": FLOW_CYTOMETER,
    })
}

fn sterility() -> Value {
    json!({"code": "STER", "name": "sterility", "method": "Ph. Eur. 2.6.1 / USP <71>, 14 days",
           "kind": "qualitative", "options": ["no growth", "growth"], "allowed": ["no growth"],
           "pending_release_allowed": true, "qualification_required": true})
}

fn mycoplasma() -> Value {
    json!({"code": "MYCO", "name": "mycoplasma", "method": "Ph. Eur. 2.6.7 NAT",
           "kind": "qualitative", "options": ["not detected", "detected"], "allowed": ["not detected"],
           "qualification_required": true})
}

/// The UC-MSC / MSC injection product.
pub fn msc_product() -> Value {
    json!({"code": "UCMSC-INJ", "name": "Umbilical-cord MSC injection 人脐带间充质干细胞注射液", "product_type": "UC-MSC",
           "storage_min_c": "-196", "storage_max_c": "-150"})
}

/// The MSC release panel (DOMAIN.md): ISCT markers, viability, dose,
/// sterility (may be pending at release), mycoplasma, endotoxin, potency.
pub fn msc_spec() -> Value {
    let mut tests = vec![
        flow("CD73", "CD73 positive", Some("95"), None, true, true),
        flow("CD90", "CD90 positive", Some("95"), None, true, true),
        flow("CD105", "CD105 positive", Some("95"), None, true, true),
    ];
    for code in ["CD45", "CD34", "CD14", "CD19", "HLADR"] {
        tests.push(flow(
            code,
            &format!("{code} negative"),
            None,
            Some("2"),
            true,
            true,
        ));
    }
    tests.extend([
        json!({"code": "VIAB", "name": "viability", "method": "7-AAD flow cytometry", "kind": "numeric",
               "unit": "%", "min": "80", "decimals": 1,
               "qualification_required": true, "instrument_kind": FLOW_CYTOMETER}),
        json!({"code": "DOSE", "name": "viable cells per bag", "method": "automated count",
               "kind": "numeric", "unit": "cells", "min": "1.0e8", "max": "1.2e8"}),
        sterility(),
        mycoplasma(),
        json!({"code": "ENDO", "name": "endotoxin", "method": "Ph. Eur. 2.6.14 / USP <85>",
               "kind": "numeric", "unit": "EU/mL", "max": "0.5", "max_inclusive": false, "decimals": 2,
               "qualification_required": true}),
        json!({"code": "POT", "name": "potency: IFN-g induced IDO activity", "method": "kynurenine assay",
               "kind": "numeric", "unit": "pmol/h/1e6 cells", "min": "20"}),
    ]);
    json!({"version": "1.0", "tests": tests})
}

/// Passing values for every test of the MSC panel, as a technician enters them.
pub fn msc_passing_values() -> Vec<(&'static str, Value)> {
    vec![
        ("CD73", json!("98.2")),
        ("CD90", json!(99.1)),
        ("CD105", json!("95.0")),
        ("CD45", json!("0.4")),
        ("CD34", json!("0.3")),
        ("CD14", json!("1.1")),
        ("CD19", json!("0.2")),
        ("HLADR", json!("2.0")),
        ("VIAB", json!("91.5")),
        ("DOSE", json!("1.1e8")),
        ("STER", json!("no growth")),
        ("MYCO", json!("not detected")),
        ("ENDO", json!("0.12")),
        ("POT", json!("35")),
    ]
}

/// The iPSC working cell bank (parent of the drug product).
pub fn ipsc_bank_product() -> Value {
    json!({"code": "IPSC-WCB", "name": "iPSC working cell bank 人诱导多能干细胞工作细胞库", "product_type": "iPSC cell bank",
           "storage_min_c": "-196", "storage_max_c": "-150"})
}

/// The working cell bank's release panel.
pub fn ipsc_bank_spec() -> Value {
    json!({"version": "1.0", "tests": [
        json!({"code": "VIAB", "name": "post-thaw viability", "method": "trypan blue", "kind": "numeric",
               "unit": "%", "min": "70", "decimals": 1}),
        json!({"code": "KARYO", "name": "karyotype", "method": "G-banding, >= 20 metaphases",
               "kind": "qualitative", "options": ["normal", "abnormal"], "allowed": ["normal"]}),
        sterility(),
        mycoplasma(),
    ]})
}

/// The iPSC-derived dopaminergic progenitor product.
pub fn ipsc_product() -> Value {
    json!({"code": "IPSC-DAP", "name": "iPSC-derived dopaminergic progenitors 人诱导多能干细胞来源多巴胺能神经前体细胞",
           "product_type": "iPSC-derived neural progenitors",
           "storage_min_c": "-196", "storage_max_c": "-150", "release_signatures_required": 2,
           "audit_review_required": true})
}

/// The iPSC neural/dopaminergic progenitor panel (DOMAIN.md).
pub fn ipsc_spec() -> Value {
    json!({"version": "1.0", "tests": [
        json!({"code": "VIAB", "name": "viability", "method": "flow cytometry", "kind": "numeric",
               "unit": "%", "min": "90", "min_inclusive": false, "decimals": 1,
               "qualification_required": true, "instrument_kind": FLOW_CYTOMETER}),
        json!({"code": "FOXA2", "name": "identity, FOXA2+/TUJ1+", "method": "flow cytometry",
               "kind": "numeric", "unit": "%", "min": "80", "min_inclusive": false, "decimals": 1,
               "qualification_required": true, "instrument_kind": FLOW_CYTOMETER}),
        json!({"code": "OCT4", "name": "residual undifferentiated cells (OCT4)", "method": "flow cytometry",
               "kind": "numeric", "unit": "%", "max": "0.01", "decimals": 3,
               "qualification_required": true, "instrument_kind": FLOW_CYTOMETER}),
        json!({"code": "TRA160", "name": "residual undifferentiated cells (TRA-1-60)",
               "method": "flow cytometry", "kind": "numeric", "unit": "%", "max": "0.01", "decimals": 3,
               "qualification_required": true, "instrument_kind": FLOW_CYTOMETER}),
        json!({"code": "KARYO", "name": "karyotype", "method": "G-banding, >= 20 metaphases",
               "kind": "qualitative", "options": ["normal", "abnormal"], "allowed": ["normal"]}),
        sterility(),
        mycoplasma(),
        json!({"code": "ENDO", "name": "endotoxin (intrathecal, K = 0.2 EU/kg)", "method": "Ph. Eur. 2.6.14",
               "kind": "numeric", "unit": "EU/mL", "max": "1", "qualification_required": true}),
    ]})
}

fn demo_actor(conn: &mut PgConnection, username: &str) -> Result<Actor, AppError> {
    let row: UserRow = users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)?;
    Actor::try_from(&row)
}

/// Loads the demo users and reference products (skipping what exists).
/// Returns what it created, one line each.
pub fn load(conn: &mut PgConnection, rules: &SigningRules) -> Result<Vec<String>, AppError> {
    let mut created = Vec::new();
    for (username, full_name, roles, locale) in DEMO_USERS {
        let exists: i64 = users::table
            .filter(users::username.eq(username))
            .count()
            .get_result(conn)?;
        if exists == 0 {
            create_user(
                conn,
                None,
                &NewUserInput {
                    username: username.to_owned(),
                    full_name: full_name.to_owned(),
                    email: format!("{username}@demo.cellqc.invalid"),
                    roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                    password: DEMO_PASSWORD.to_owned(),
                    // Demonstration accounts whose password the README prints:
                    // a demo that could not sign would show nothing.
                    temporary: false,
                    locale,
                },
                Some("demo data"),
            )?;
            created.push(format!("user {username} ({})", roles.join(", ")));
        }
    }
    let author = demo_actor(conn, "qa")?;
    let approver = demo_actor(conn, "qa2")?;
    for (product, spec) in [
        (msc_product(), msc_spec()),
        (ipsc_bank_product(), ipsc_bank_spec()),
        (ipsc_product(), ipsc_spec()),
    ] {
        let input: CreateProduct = command_text(&product.to_string())?;
        let exists: i64 = products::table
            .filter(products::code.eq(input.code.as_str()))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            continue;
        }
        let p = create_product(conn, &author, &input)?;
        // Through text: a decimal is kept as the JSON it was written as.
        let cmd: CreateSpecification = command_text(&spec.to_string())?;
        let version = cmd.version.as_str().to_owned();
        let draft = create_spec(conn, &author, p.id, &cmd)?;
        approve_spec(
            conn,
            rules,
            &approver,
            draft.id,
            &command(json!({"password": DEMO_PASSWORD, "reason": "demo reference panel"}))?,
        )?;
        created.push(format!(
            "product {} with effective specification {version}",
            p.code
        ));
    }
    created.extend(load_lab(conn, rules)?);
    created.extend(load_history(conn, rules)?);
    Ok(created)
}

/// Post-thaw viability (%) of the 30 released demo MSC batches, in order:
/// a stable process around 92 %, and batch 27 at 86.1 %, inside the
/// specification (at least 80 %) but beyond 3 sigma of the first 20.
pub const HISTORY_VIABILITY: [&str; 30] = [
    "92.4", "91.8", "93.1", "92.0", "90.9", "92.7", "91.5", "93.4", "92.2", "91.1", "92.8", "91.9",
    "92.5", "90.7", "93.0", "92.3", "91.6", "92.9", "91.3", "92.1", "92.6", "91.7", "93.2", "92.0",
    "91.4", "92.8", "86.1", "92.2", "91.9", "92.5",
];

/// Potency (IFN-γ induced IDO activity, pmol/h/1e6 cells) of the same
/// batches: in trend throughout.
pub const HISTORY_POTENCY: [&str; 30] = [
    "38", "41", "36", "39", "43", "37", "40", "35", "42", "38", "39", "44", "36", "40", "37", "41",
    "38", "42", "39", "36", "40", "38", "43", "37", "39", "41", "34", "40", "38", "42",
];

/// The batch number of demo history batch `i` (1-based).
pub fn history_batch_number(i: usize) -> String {
    format!("UCMSC-2026-{i:03}")
}

/// Thirty released batches of the MSC product, each through the use cases a
/// lab uses (created, every test recorded on the demo cytometer, reviewed
/// in one signing act, released by QA), so the product's trend charts show
/// something on first start (skipped when the first one exists).
fn load_history(conn: &mut PgConnection, rules: &SigningRules) -> Result<Vec<String>, AppError> {
    use crate::db::schema::{batches, instruments, material_lots};
    use crate::services::batches::{NewBatchInput, create_batch};
    use crate::services::release::release;
    use crate::services::results::{NewResultInput, record_result, review_results};
    use chrono::{Duration, Utc};
    let exists: i64 = batches::table
        .filter(batches::batch_number.eq(history_batch_number(1)))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(Vec::new());
    }
    let code = msc_product()
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let product: uuid::Uuid = products::table
        .filter(products::code.eq(&code))
        .select(products::id)
        .first(conn)?;
    let cytometer: uuid::Uuid = instruments::table
        .filter(instruments::code.eq("FC-01"))
        .select(instruments::id)
        .first(conn)?;
    let stain: uuid::Uuid = material_lots::table
        .filter(material_lots::lot_number.eq("DEMO-7AAD-001"))
        .select(material_lots::id)
        .first(conn)?;
    let tech = demo_actor(conn, "tech")?;
    let reviewer = demo_actor(conn, "reviewer")?;
    let qa = demo_actor(conn, "qa")?;
    let flow: Vec<String> = controlled_tests(&msc_spec())
        .into_iter()
        .filter(|(_, kind)| kind.as_deref() == Some(FLOW_CYTOMETER))
        .map(|(c, _)| c)
        .collect();
    let now = Utc::now();
    for (i, (viability, potency)) in HISTORY_VIABILITY.iter().zip(HISTORY_POTENCY).enumerate() {
        let made = now - Duration::days(2 * (30 - i as i64) + 4);
        let batch = create_batch(
            conn,
            &tech,
            &NewBatchInput {
                batch_number: history_batch_number(i + 1),
                product_id: product,
                manufactured_at: made,
                expires_at: made + Duration::days(730),
                donor_din: None,
                intended_recipient: None,
                parent_batch_ids: Vec::new(),
                quantity: None,
                unit: None,
            },
        )?;
        let mut ids = Vec::new();
        for (test, value) in msc_passing_values() {
            let value = match test {
                "VIAB" => json!(viability),
                "POT" => json!(potency),
                _ => value,
            };
            let on_cytometer = flow.iter().any(|f| f == test);
            let r = record_result(
                conn,
                &tech,
                batch.id,
                &NewResultInput {
                    test_code: test.to_owned(),
                    value: value.to_string(),
                    unit: None,
                    performed_at: Utc::now(),
                    instrument: None,
                    instrument_id: on_cytometer.then_some(cytometer),
                    material_ids: if test == "VIAB" {
                        vec![stain]
                    } else {
                        Vec::new()
                    },
                    comment: None,
                    replaces_result_id: None,
                    reason: None,
                },
            )?;
            ids.push(r.result.id);
        }
        review_results(
            conn,
            rules,
            &reviewer,
            &command(json!({
                "result_ids": ids,
                "decision": "accept",
                "password": DEMO_PASSWORD,
                "comment": "demo history: checked against the raw data",
            }))?,
        )?;
        release(
            conn,
            rules,
            &qa,
            batch.id,
            &command(json!({
                "password": DEMO_PASSWORD,
                "comment": "demo history",
            }))?,
        )?;
    }
    Ok(vec![format!(
        "30 released batches of {code} ({} to {}), one out of trend",
        history_batch_number(1),
        history_batch_number(30)
    )])
}

/// The demo lab's instruments, a released reagent lot and the demo
/// technician's qualifications (skipping what exists).
fn load_lab(conn: &mut PgConnection, rules: &SigningRules) -> Result<Vec<String>, AppError> {
    use crate::db::schema::{instruments, material_lots, qualifications};
    use crate::services::{instruments as inst, materials as mat, qualifications as qual};
    use chrono::{Duration, Utc};
    let mut created = Vec::new();
    let qa = demo_actor(conn, "qa")?;
    let tech = demo_actor(conn, "tech")?;
    let now = Utc::now();
    for (code, name, kind) in [
        ("FC-01", "BD FACSLyric flow cytometer", FLOW_CYTOMETER),
        ("CC-01", "NucleoCounter NC-202 cell counter", "cell_counter"),
    ] {
        let exists: i64 = instruments::table
            .filter(instruments::code.eq(code))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            continue;
        }
        let i = inst::register(
            conn,
            &qa,
            &command(json!({
                "code": code, "name": name, "kind": kind, "location": "QC laboratory 2",
            }))?,
        )?;
        inst::calibrate(
            conn,
            &tech,
            i.id,
            &command(json!({
                "performed_at": now - Duration::days(30),
                "outcome": "pass",
                "valid_until": now + Duration::days(335),
                "certificate": format!("CAL-{code}-2026"),
            }))?,
        )?;
        created.push(format!("instrument {code}, calibrated"));
    }
    let lot: i64 = material_lots::table
        .filter(material_lots::code.eq("7AAD"))
        .count()
        .get_result(conn)?;
    if lot == 0 {
        let m = mat::receive(
            conn,
            &tech,
            &command(json!({
                "code": "7AAD",
                "name": "7-AAD viability staining solution",
                "lot_number": "DEMO-7AAD-001",
                "supplier": "BD Biosciences",
                "kind": "reagent",
                "expires_at": now + Duration::days(365),
            }))?,
        )?;
        mat::release(conn, rules, &qa, m.id, DEMO_PASSWORD)?;
        created.push("material 7AAD lot DEMO-7AAD-001, released".to_owned());
    }
    for username in DEMO_TECHNICIANS {
        let tech = demo_actor(conn, username)?;
        let granted: i64 = qualifications::table
            .filter(qualifications::user_id.eq(tech.id))
            .count()
            .get_result(conn)?;
        if granted > 0 {
            continue;
        }
        let mut codes: Vec<String> = [msc_spec(), ipsc_bank_spec(), ipsc_spec()]
            .iter()
            .flat_map(controlled_tests)
            .map(|(code, _)| code)
            .collect();
        codes.sort();
        codes.dedup();
        for code in codes {
            qual::grant(
                conn,
                rules,
                &qa,
                tech.id,
                &command(json!({
                    "test_code": code,
                    "valid_until": now + Duration::days(365),
                    "password": DEMO_PASSWORD,
                    "reason": "demo training record",
                }))?,
            )?;
        }
        created.push(format!(
            "qualifications of {username} for every test that requires one"
        ));
    }
    created.extend(load_mappings(conn, &qa)?);
    Ok(created)
}

/// The FlowJo table columns of the MSC panel's flow tests (gate path and
/// statistic, as FlowJo names a table column).
pub fn flowjo_msc_mapping() -> std::collections::BTreeMap<String, String> {
    let gate = |g: &str| format!("MSC/Single Cells/Live/{g} | Freq. of Parent (%)");
    [
        (
            "VIAB",
            "MSC/Single Cells/Live | Freq. of Parent (%)".to_owned(),
        ),
        ("CD73", gate("CD73+")),
        ("CD90", gate("CD90+")),
        ("CD105", gate("CD105+")),
        ("CD45", gate("CD45+")),
        ("CD34", gate("CD34+")),
        ("CD14", gate("CD14+")),
        ("CD19", gate("CD19+")),
        ("HLADR", gate("HLA-DR+")),
    ]
    .into_iter()
    .map(|(code, header)| (code.to_owned(), header))
    .collect()
}

/// The MSC product's saved import mappings: the FlowJo panel table and the
/// cell counter's dose column, saved by the demo QA.
fn load_mappings(conn: &mut PgConnection, qa: &Actor) -> Result<Vec<String>, AppError> {
    use crate::services::import_mappings as maps;
    let product: Uuid = products::table
        .filter(products::code.eq("UCMSC-INJ"))
        .select(products::id)
        .first(conn)?;
    if !maps::list(conn, product)?.is_empty() {
        return Ok(Vec::new());
    }
    for (name, mapping) in [
        ("FlowJo MSC panel table", flowjo_msc_mapping()),
        (
            "NucleoCounter dose",
            [("DOSE".to_owned(), "Viable cells per bag".to_owned())].into(),
        ),
    ] {
        maps::create(
            conn,
            qa,
            product,
            &maps::MappingInput {
                name: name.to_owned(),
                mapping,
            },
        )?;
    }
    Ok(vec![
        "import mappings of UCMSC-INJ: FlowJo MSC panel table, NucleoCounter dose".to_owned(),
    ])
}

//! Products and their specifications for QA: the product list, a new
//! product, a product with its versions and a new version (its tests as a
//! table, prefilled from the newest version), and a specification with its
//! signed approval by a QA person who did not write it.

use super::layout::{Refusal, csrf, html_page, meaning_box, page, refusal, see_other, status};
use super::session::{WebError, WebUser};
use crate::app::AppState;
use crate::domain::StoredName;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::domain::spec::{SpecStatus, TestDefInput};
use crate::error::{AppError, Problem};
use crate::services::PageRequest;
use crate::services::products::{self as svc, NewProductInput, TestDefView};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

/// The product list.
#[get("/products")]
pub async fn product_list(
    state: web::Data<AppState>,
    user: WebUser,
) -> Result<HttpResponse, WebError> {
    let products = state
        .db(|c| {
            svc::list_products(
                c,
                PageRequest {
                    limit: 500,
                    after: None,
                },
            )
        })
        .await?;
    let body = html! {
        @if user.may(Action::DefineProducts) { p { a.button href="/products/new" { "New product" } } }
        @if products.items.is_empty() { p.muted { "No product yet." } } @else {
            table {
                thead { tr { th { "Code" } th { "Name" } th { "Type" } th { "Storage" } th { "Release signatures" } } }
                tbody { @for p in &products.items { tr {
                    td { a href={"/products/" (p.id)} { (p.code) } }
                    td { (p.name) }
                    td { (p.product_type) }
                    td { (storage(p.storage_min_c.as_deref(), p.storage_max_c.as_deref())) }
                    td { (p.release_signatures_required) }
                } } }
            }
        }
    };
    Ok(html_page(
        StatusCode::OK,
        page("Products", Some(&user), body),
    ))
}

fn storage(min: Option<&str>, max: Option<&str>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!("{lo} to {hi} °C"),
        (Some(lo), None) => format!("at least {lo} °C"),
        (None, Some(hi)) => format!("at most {hi} °C"),
        (None, None) => "not set".to_owned(),
    }
}

const PRODUCT_LABELS: &[(&str, &str)] = &[
    ("code", "label-code"),
    ("name", "label-name"),
    ("product_type", "label-product-type"),
    ("storage_min_c", "label-lowest-storage-temperature"),
    ("storage_max_c", "label-highest-storage-temperature"),
    ("release_signatures_required", "label-release-signatures"),
];

/// The new-product form's fields, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProductForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    product_type: String,
    #[serde(default)]
    storage_min_c: String,
    #[serde(default)]
    storage_max_c: String,
    #[serde(default)]
    release_signatures_required: String,
    #[serde(default)]
    audit_review_required: Option<String>,
}

fn product_form(user: &WebUser, problem: Option<&Problem>, f: &ProductForm) -> Markup {
    let r = Refusal::new(problem, PRODUCT_LABELS, user.lang());
    page(
        "New product",
        Some(user),
        html! {
            (r.summary())
            form.stack.card method="post" action="/products" {
                (csrf(user))
                label { "Code" input type="text" name="code" required maxlength="40" value=(f.code); (r.at("code")) }
                label { "Name" input type="text" name="name" required value=(f.name); (r.at("name")) }
                label { "Product type" input type="text" name="product_type" required value=(f.product_type) placeholder="e.g. allogeneic MSC suspension"; (r.at("product_type")) }
                label { "Lowest storage temperature, °C (optional)" input type="text" name="storage_min_c" inputmode="decimal" value=(f.storage_min_c); (r.at("storage_min_c")) }
                label { "Highest storage temperature, °C (optional)" input type="text" name="storage_max_c" inputmode="decimal" value=(f.storage_max_c); (r.at("storage_max_c")) }
                label { "Release signatures"
                    select name="release_signatures_required" {
                        option value="1" selected[f.release_signatures_required != "2"] { "1 (one Qualified Person)" }
                        option value="2" selected[f.release_signatures_required == "2"] { "2 (two different QA people)" }
                    }
                    (r.at("release_signatures_required"))
                }
                label { input type="checkbox" name="audit_review_required" value="on" checked[f.audit_review_required.is_some()]; " QA signs a review of each batch's audit trail before release" }
                button type="submit" { "Create the product" }
            }
        },
    )
}

/// The new-product form.
#[get("/products/new")]
pub async fn new_product_form(user: WebUser) -> Result<HttpResponse, WebError> {
    user.require(Action::DefineProducts)?;
    Ok(html_page(
        StatusCode::OK,
        product_form(&user, None, &ProductForm::default()),
    ))
}

/// A decimal typed on a form, as the JSON text the services read.
fn typed_decimal(s: &str) -> Result<Option<String>, AppError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::to_string(s)?))
}

/// Creates a product and shows it.
#[post("/products")]
pub async fn create_product(
    state: web::Data<AppState>,
    user: WebUser,
    form: web::Form<ProductForm>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::DefineProducts)?;
    user.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let input = NewProductInput {
        code: f.code.clone(),
        name: f.name.clone(),
        product_type: f.product_type.clone(),
        storage_min_c: typed_decimal(&f.storage_min_c)?,
        storage_max_c: typed_decimal(&f.storage_max_c)?,
        release_signatures_required: Some(if f.release_signatures_required == "2" {
            2
        } else {
            1
        }),
        audit_review_required: f.audit_review_required.is_some(),
    };
    let actor = user.0.actor.clone();
    match state
        .db(move |c| svc::create_product(c, &actor, &input))
        .await
    {
        Ok(p) => Ok(see_other(format!("/products/{}", p.id))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(p.status, product_form(&user, Some(&p), &f)))
        }
    }
}

/// The new-version form's columns, one value per row of tests.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SpecForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    code: Vec<String>,
    #[serde(default)]
    name: Vec<String>,
    #[serde(default)]
    method: Vec<String>,
    #[serde(default)]
    kind: Vec<String>,
    #[serde(default)]
    unit: Vec<String>,
    #[serde(default)]
    min: Vec<String>,
    #[serde(default)]
    min_inclusive: Vec<String>,
    #[serde(default)]
    max: Vec<String>,
    #[serde(default)]
    max_inclusive: Vec<String>,
    #[serde(default)]
    decimals: Vec<String>,
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    allowed: Vec<String>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    pending_release_allowed: Vec<String>,
    #[serde(default)]
    qualification_required: Vec<String>,
    #[serde(default)]
    instrument_kind: Vec<String>,
}

/// One row of the tests table, as text.
#[derive(Debug, Clone, Default)]
struct Row {
    code: String,
    name: String,
    method: String,
    kind: String,
    unit: String,
    min: String,
    min_inclusive: bool,
    max: String,
    max_inclusive: bool,
    decimals: String,
    options: String,
    allowed: String,
    required: bool,
    pending_release_allowed: bool,
    qualification_required: bool,
    instrument_kind: String,
}

impl Row {
    fn blank() -> Row {
        Row {
            kind: "numeric".into(),
            min_inclusive: true,
            max_inclusive: true,
            required: true,
            ..Row::default()
        }
    }

    fn of(t: &TestDefView) -> Row {
        Row {
            code: t.code.clone(),
            name: t.name.clone(),
            method: t.method.clone(),
            kind: t.kind.as_str().to_owned(),
            unit: t.unit.clone().unwrap_or_default(),
            min: t.min.clone().unwrap_or_default(),
            min_inclusive: t.min_inclusive,
            max: t.max.clone().unwrap_or_default(),
            max_inclusive: t.max_inclusive,
            decimals: t.decimals.map(|d| d.to_string()).unwrap_or_default(),
            options: t.options.clone().map(|o| o.join(", ")).unwrap_or_default(),
            allowed: t.allowed.join(", "),
            required: t.required,
            pending_release_allowed: t.pending_release_allowed,
            qualification_required: t.qualification_required,
            instrument_kind: t.instrument_kind.clone().unwrap_or_default(),
        }
    }

    fn is_blank(&self) -> bool {
        [
            &self.code,
            &self.name,
            &self.method,
            &self.unit,
            &self.min,
            &self.max,
        ]
        .iter()
        .all(|s| s.trim().is_empty())
    }

    fn input(&self) -> Result<TestDefInput, AppError> {
        let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let list = |s: &str| {
            let v: Vec<String> = s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            Some(v).filter(|v| !v.is_empty())
        };
        Ok(TestDefInput {
            code: self.code.clone(),
            name: self.name.clone(),
            method: self.method.clone(),
            kind: self.kind.clone(),
            unit: opt(&self.unit),
            min: typed_decimal(&self.min)?,
            max: typed_decimal(&self.max)?,
            min_inclusive: Some(self.min_inclusive),
            max_inclusive: Some(self.max_inclusive),
            // Not a number reads as out of range: "must be 0 to 12".
            decimals: opt(&self.decimals).map(|d| d.parse::<i64>().unwrap_or(-1)),
            options: list(&self.options),
            allowed: list(&self.allowed),
            required: Some(self.required),
            pending_release_allowed: Some(self.pending_release_allowed),
            qualification_required: Some(self.qualification_required),
            instrument_kind: opt(&self.instrument_kind),
        })
    }
}

impl SpecForm {
    fn rows(&self) -> Vec<Row> {
        let at = |v: &Vec<String>, i: usize| v.get(i).cloned().unwrap_or_default();
        let yes = |v: &Vec<String>, i: usize| v.get(i).is_some_and(|s| s == "yes");
        (0..self.code.len())
            .map(|i| Row {
                code: at(&self.code, i),
                name: at(&self.name, i),
                method: at(&self.method, i),
                kind: at(&self.kind, i),
                unit: at(&self.unit, i),
                min: at(&self.min, i),
                min_inclusive: yes(&self.min_inclusive, i),
                max: at(&self.max, i),
                max_inclusive: yes(&self.max_inclusive, i),
                decimals: at(&self.decimals, i),
                options: at(&self.options, i),
                allowed: at(&self.allowed, i),
                required: yes(&self.required, i),
                pending_release_allowed: yes(&self.pending_release_allowed, i),
                qualification_required: yes(&self.qualification_required, i),
                instrument_kind: at(&self.instrument_kind, i),
            })
            .collect()
    }
}

const SPEC_LABELS: &[(&str, &str)] = &[("version", "label-version")];

/// `tests[2].min` as "Row 3, lowest limit".
fn test_field_words(field: &str) -> Option<String> {
    if field == "tests" {
        return Some("Tests".to_owned());
    }
    let rest = field.strip_prefix("tests[")?;
    let (i, col) = rest.split_once("].")?;
    let row = i.parse::<usize>().ok()? + 1;
    let col = match col {
        "code" => "code",
        "name" => "name",
        "method" => "method",
        "kind" => "kind",
        "unit" => "unit",
        "min" => "lowest limit",
        "max" => "highest limit",
        "decimals" => "decimals",
        "options" => "options",
        "allowed" => "passing values",
        "instrument_kind" => "instrument kind",
        other => other,
    };
    Some(format!("Test row {row}, {col}"))
}

fn yes_no(name: &str, yes: bool) -> Markup {
    html! {
        select name=(name) {
            option value="yes" selected[yes] { "yes" }
            option value="no" selected[!yes] { "no" }
        }
    }
}

async fn product_markup(
    state: &AppState,
    user: &WebUser,
    product_id: Uuid,
    problem: Option<&Problem>,
    typed: Option<&SpecForm>,
) -> Result<Markup, WebError> {
    let (product, specs) = state
        .db(move |c| {
            Ok((
                svc::get_product(c, product_id)?,
                svc::list_specs(c, product_id)?,
            ))
        })
        .await?;
    let rows: Vec<Row> = match typed {
        Some(f) => f.rows(),
        None => {
            let mut rows: Vec<Row> = specs
                .last()
                .map(|s| s.tests.iter().map(Row::of).collect())
                .unwrap_or_default();
            rows.extend((0..3).map(|_| Row::blank()));
            rows
        }
    };
    let r = Refusal::new(problem, SPEC_LABELS, user.lang()).naming(test_field_words);
    Ok(page(
        &format!("Product {}", product.code),
        Some(user),
        html! {
            div.card { dl.facts {
                dt { "Name" } dd { (product.name) }
                dt { "Type" } dd { (product.product_type) }
                dt { "Storage" } dd { (storage(product.storage_min_c.as_deref(), product.storage_max_c.as_deref())) }
                dt { "Release signatures" } dd { (product.release_signatures_required) }
                dt { "Audit-trail review" } dd { @if product.audit_review_required { "required before release" } @else { "not required" } }
                dt { "Trends" } dd { a href={"/products/" (product.id) "/trends"} { "Each numeric test across batches (control chart)" } }
                dt { "Instrument exports" } dd { a href={"/products/" (product.id) "/import-mappings"} { "Saved import mappings (columns to tests)" } }
                dt { "Created" } dd { (user.time(product.created_at)) }
            } }
            h2 { "Specifications" }
            @if specs.is_empty() { p.muted { "None yet: a batch can be started once a version is approved." } }
            table { tbody { @for s in specs.iter().rev() { tr {
                td { a href={"/specifications/" (s.id)} { "version " (s.version) } }
                td { (status(s.status.as_str(), user.lang())) }
                td { (s.tests.len()) " tests" }
                td { "written " (user.time(s.created_at)) @if let Some(a) = s.approved_at { br; "approved " (user.time(a)) } }
            } } } }
            @if user.may(Action::DefineProducts) {
                h2 { "New specification version" }
                (r.summary())
                form.card method="post" action={"/products/" (product_id) "/specifications"} {
                    (csrf(user))
                    label.narrow { "Version" input type="text" name="version" required value=(typed.map(|f| f.version.clone()).unwrap_or_default()); (r.at("version")) }
                    p.muted { "The tests below start as the newest version's; change them, add rows, or clear a row's code, name and limits to leave it out. A draft takes effect when another QA person approves it." }
                    div.scroll { table.tests {
                        thead { tr {
                            th { "Code" } th { "Name" } th { "Method" } th { "Kind" } th { "Unit" }
                            th { "Lowest" } th { "incl." } th { "Highest" } th { "incl." } th { "Decimals" }
                            th { "Options (qualitative)" } th { "Passing values" } th { "Required" } th { "May be pending at release" } th { "Qualified analysts only" } th { "Instrument kind" }
                        } }
                        tbody { @for (i, row) in rows.iter().enumerate() { tr {
                            td { input type="text" name="code" value=(row.code) size="8" aria-label={"Row " (i + 1) " code"}; }
                            td { input type="text" name="name" value=(row.name) aria-label={"Row " (i + 1) " name"}; }
                            td { input type="text" name="method" value=(row.method) aria-label={"Row " (i + 1) " method"}; }
                            td { select name="kind" {
                                option value="numeric" selected[row.kind != "qualitative"] { "numeric" }
                                option value="qualitative" selected[row.kind == "qualitative"] { "qualitative" }
                            } }
                            td { input type="text" name="unit" value=(row.unit) size="5"; }
                            td { input type="text" name="min" value=(row.min) size="6" inputmode="decimal"; }
                            td { (yes_no("min_inclusive", row.min_inclusive)) }
                            td { input type="text" name="max" value=(row.max) size="6" inputmode="decimal"; }
                            td { (yes_no("max_inclusive", row.max_inclusive)) }
                            td { input type="text" name="decimals" value=(row.decimals) size="2" inputmode="numeric"; }
                            td { input type="text" name="options" value=(row.options); }
                            td { input type="text" name="allowed" value=(row.allowed); }
                            td { (yes_no("required", row.required)) }
                            td { (yes_no("pending_release_allowed", row.pending_release_allowed)) }
                            td { (yes_no("qualification_required", row.qualification_required)) }
                            td { input type="text" name="instrument_kind" value=(row.instrument_kind) size="12" aria-label={"Row " (i + 1) " instrument kind"}; }
                        } } }
                    } }
                    button type="submit" { "Save the draft version" }
                }
            }
            p { a href="/products" { "Back to the products" } }
        },
    ))
}

/// A product, its versions and (for QA) a new version.
#[get("/products/{id}")]
pub async fn product_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    let markup = product_markup(&state, &user, id.into_inner(), None, None).await?;
    Ok(html_page(StatusCode::OK, markup))
}

/// Saves a draft version and shows it.
#[post("/products/{id}/specifications")]
pub async fn create_spec(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::DefineProducts)?;
    let f: SpecForm = serde_html_form::from_bytes(&body).unwrap_or_default();
    user.check_csrf(&f.csrf)?;
    let product_id = id.into_inner();
    let tests: Result<Vec<TestDefInput>, AppError> = f
        .rows()
        .iter()
        .filter(|r| !r.is_blank())
        .map(Row::input)
        .collect();
    let actor = user.0.actor.clone();
    let version = f.version.clone();
    let attempt = match tests {
        Err(e) => Err(e),
        Ok(tests) => {
            state
                .db(move |c| svc::create_spec(c, &actor, product_id, &version, &tests))
                .await
        }
    };
    match attempt {
        Ok(s) => Ok(see_other(format!("/specifications/{}", s.id))),
        Err(e) => {
            let p = refusal(e)?;
            // Row numbers in the errors count the rows sent, blank ones left out.
            let mut kept = f.clone();
            let rows: Vec<Row> = f.rows().into_iter().filter(|r| !r.is_blank()).collect();
            kept.code = rows.iter().map(|r| r.code.clone()).collect();
            let keep = |pick: fn(&Row) -> String| rows.iter().map(pick).collect::<Vec<_>>();
            let flag = |pick: fn(&Row) -> bool| {
                rows.iter()
                    .map(|r| {
                        if pick(r) {
                            "yes".to_owned()
                        } else {
                            "no".to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
            };
            kept.name = keep(|r| r.name.clone());
            kept.method = keep(|r| r.method.clone());
            kept.kind = keep(|r| r.kind.clone());
            kept.unit = keep(|r| r.unit.clone());
            kept.min = keep(|r| r.min.clone());
            kept.max = keep(|r| r.max.clone());
            kept.decimals = keep(|r| r.decimals.clone());
            kept.options = keep(|r| r.options.clone());
            kept.allowed = keep(|r| r.allowed.clone());
            kept.min_inclusive = flag(|r| r.min_inclusive);
            kept.max_inclusive = flag(|r| r.max_inclusive);
            kept.required = flag(|r| r.required);
            kept.pending_release_allowed = flag(|r| r.pending_release_allowed);
            kept.qualification_required = flag(|r| r.qualification_required);
            kept.instrument_kind = keep(|r| r.instrument_kind.clone());
            let markup = product_markup(&state, &user, product_id, Some(&p), Some(&kept)).await?;
            Ok(html_page(p.status, markup))
        }
    }
}

async fn spec_markup(
    state: &AppState,
    user: &WebUser,
    spec_id: Uuid,
    problem: Option<&Problem>,
) -> Result<Markup, WebError> {
    let (spec, product) = state
        .db(move |c| {
            let spec = svc::get_spec(c, spec_id)?;
            let product = svc::get_product(c, spec.product_id)?;
            Ok((spec, product))
        })
        .await?;
    let own = spec.author_id == user.0.actor.id;
    let r = Refusal::new(
        problem,
        &[("password", "label-password"), ("reason", "label-comment")],
        user.lang(),
    );
    Ok(page(
        &format!("{} specification version {}", product.code, spec.version),
        Some(user),
        html! {
            (r.summary())
            p { "Product " a href={"/products/" (product.id)} { (product.code) " – " (product.name) } " · " (status(spec.status.as_str(), user.lang())) }
            table {
                thead { tr { th { "Test" } th { "Method" } th { "Limit" } th { "Required" } th { "May be pending" } th { "Qualified analysts only" } th { "Instrument kind" } } }
                tbody { @for t in &spec.tests { tr {
                    td { strong { (t.code) } " " (t.name) }
                    td { (t.method) }
                    td { (t.limit) }
                    td { (if t.required { "yes" } else { "no" }) }
                    td { (if t.pending_release_allowed { "yes" } else { "no" }) }
                    td { (if t.qualification_required { "yes" } else { "no" }) }
                    td { (t.instrument_kind.as_deref().unwrap_or("none")) }
                } } }
            }
            h2 { "Signatures" }
            @if spec.signatures.is_empty() { p.muted { "Not approved yet." } }
            ul { @for s in &spec.signatures { li { strong { (s.signer.full_name) } " · " (user.time(s.signed_at)) " · " (s.statement) @if let Some(why) = &s.reason { " · " (why) } } } }
            @if spec.status == SpecStatus::Draft && user.may(Action::Sign(Meaning::SpecApproved)) {
                @if own {
                    div.notice { "You wrote this version: another QA person must approve it." }
                } @else {
                    form.stack.card method="post" action={"/specifications/" (spec_id) "/approve"} {
                        h2 { "Approve" }
                        (csrf(user))
                        label { "Comment (optional)" input type="text" name="reason"; (r.at("reason")) }
                        (meaning_box(Meaning::SpecApproved, user.lang()))
                        label { "Your password (electronic signature)" input type="password" name="password" required autocomplete="current-password"; (r.at("password")) }
                        button type="submit" { "Sign the approval" }
                    }
                }
            }
        },
    ))
}

/// A specification, with its approval for QA.
#[get("/specifications/{id}")]
pub async fn spec_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    let markup = spec_markup(&state, &user, id.into_inner(), None).await?;
    Ok(html_page(StatusCode::OK, markup))
}

/// The approval form's fields.
#[derive(Debug, Deserialize)]
pub struct ApproveForm {
    csrf: String,
    password: String,
    reason: Option<String>,
}

/// Signs the approval; a refusal is shown on the page.
#[post("/specifications/{id}/approve")]
pub async fn approve_spec(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<ApproveForm>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::SpecApproved))?;
    user.check_csrf(&form.csrf)?;
    let spec_id = id.into_inner();
    let f = form.into_inner();
    let lockout = state.auth.lockout;
    let actor = user.0.actor.clone();
    let attempt = state
        .db(move |c| {
            let reason = f.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
            svc::approve_spec(c, lockout, &actor, spec_id, &f.password, reason)
        })
        .await;
    match attempt {
        Ok(_) => Ok(see_other(format!("/specifications/{spec_id}"))),
        Err(e) => {
            let p = refusal(e)?;
            if p.code == "token_revoked" {
                return Err(WebError::SignIn);
            }
            let markup = spec_markup(&state, &user, spec_id, Some(&p)).await?;
            Ok(html_page(p.status, markup))
        }
    }
}

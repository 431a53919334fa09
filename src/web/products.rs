//! Products and their specifications for QA: the product list, a new
//! product, a product with its versions and a new version (its tests as a
//! table, prefilled from the newest version), and a specification with its
//! signed approval by a QA person who did not write it.

use super::layout::{Refusal, csrf, html_page, meaning_box, page, refusal, see_other, status};
use super::session::{WebError, WebUser};
use crate::domain::FieldError;
use crate::domain::StoredName;
use crate::domain::decimal::DecimalText;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::domain::spec::{
    ApproveSpecification, CreateProduct, CreateSpecification, SpecStatus, TestDefInput,
    validate_tests,
};
use crate::domain::value::{Line, NonEmpty};
use crate::error::{AppError, Problem};
use crate::http::AppState;
use crate::i18n::Locale;
use crate::services::PageRequest;
use crate::services::products::{self as svc, TestDefView};
use crate::tr;
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
        @if user.may(Action::DefineProducts) { p { a.button href="/products/new" { (tr!(user.lang(), "product-new")) } } }
        @if products.items.is_empty() { p.muted { (tr!(user.lang(), "product-none")) } } @else {
            table {
                thead { tr { th { (tr!(user.lang(), "label-code")) } th { (tr!(user.lang(), "label-name")) } th { (tr!(user.lang(), "product-col-type")) } th { (tr!(user.lang(), "product-col-storage")) } th { (tr!(user.lang(), "label-release-signatures")) } } }
                tbody { @for p in &products.items { tr {
                    td { a href={"/products/" (p.id)} { (p.code) } }
                    td { (p.name) }
                    td { (p.product_type) }
                    td { (storage(p.storage_min_c.as_deref(), p.storage_max_c.as_deref(), user.lang())) }
                    td { (p.release_signatures_required) }
                } } }
            }
        }
    };
    Ok(html_page(
        StatusCode::OK,
        page(&tr!(user.lang(), "nav-products"), Some(&user), body),
    ))
}

fn storage(min: Option<&str>, max: Option<&str>, loc: Locale) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => tr!(loc, "storage-range", min = lo, max = hi),
        (Some(lo), None) => tr!(loc, "storage-min", min = lo),
        (None, Some(hi)) => tr!(loc, "storage-max", max = hi),
        (None, None) => tr!(loc, "storage-not-set"),
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
    form_key: Option<String>,
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
        &tr!(user.lang(), "product-new"),
        Some(user),
        html! {
            (r.summary())
            form.stack.card method="post" action="/products" {
                (csrf(user))
                (super::layout::form_key())
                label { (tr!(user.lang(), "label-code")) input type="text" name="code" required maxlength="40" value=(f.code); (r.at("code")) }
                label { (tr!(user.lang(), "label-name")) input type="text" name="name" required value=(f.name); (r.at("name")) }
                label { (tr!(user.lang(), "label-product-type")) input type="text" name="product_type" required value=(f.product_type) placeholder=(tr!(user.lang(), "product-type-example")); (r.at("product_type")) }
                label { (tr!(user.lang(), "product-storage-min")) input type="text" name="storage_min_c" inputmode="decimal" value=(f.storage_min_c); (r.at("storage_min_c")) }
                label { (tr!(user.lang(), "product-storage-max")) input type="text" name="storage_max_c" inputmode="decimal" value=(f.storage_max_c); (r.at("storage_max_c")) }
                label { (tr!(user.lang(), "label-release-signatures"))
                    select name="release_signatures_required" {
                        option value="1" selected[f.release_signatures_required != "2"] { (tr!(user.lang(), "product-one-qp")) }
                        option value="2" selected[f.release_signatures_required == "2"] { (tr!(user.lang(), "product-two-qp")) }
                    }
                    (r.at("release_signatures_required"))
                }
                label { input type="checkbox" name="audit_review_required" value="true" checked[f.audit_review_required.is_some()]; " " (tr!(user.lang(), "product-audit-review-check")) }
                button type="submit" { (tr!(user.lang(), "product-create")) }
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

/// Creates a product and shows it.
#[post("/products")]
pub async fn create_product(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::DefineProducts)?;
    let f: ProductForm = super::layout::read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    // A double submit defines the product once.
    let once = super::layout::form_once(f.form_key.as_deref(), "/products", &body);
    let outcome = user
        .run(&state, &body, &[], move |c, actor, input: CreateProduct| {
            let created = super::layout::once_for_form(c, actor.id, once.as_ref(), |c| {
                svc::create_product(c, actor, &input)
            })?;
            super::layout::created_id(&created)
        })
        .await;
    match outcome {
        Ok(id) => Ok(see_other(format!("/products/{id}"))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(p.status(), product_form(&user, Some(&p), &f)))
        }
    }
}

/// The new-version form's columns, one value per row of tests.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SpecForm {
    #[serde(default)]
    csrf: String,
    form_key: Option<String>,
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

    fn input(&self) -> TestDefInput {
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
        TestDefInput {
            code: self.code.clone(),
            name: self.name.clone(),
            method: self.method.clone(),
            kind: self.kind.clone(),
            unit: opt(&self.unit),
            min: opt(&self.min).map(|t| DecimalText::typed(&t)),
            max: opt(&self.max).map(|t| DecimalText::typed(&t)),
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
        }
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
fn test_field_words(field: &str, loc: Locale) -> Option<String> {
    if field == "tests" {
        return Some(tr!(loc, "spec-field-tests"));
    }
    let rest = field.strip_prefix("tests[")?;
    let (i, col) = rest.split_once("].")?;
    let row = i.parse::<usize>().ok()? + 1;
    let col = loc.code_words("spec-col", col);
    Some(tr!(loc, "spec-field-row", row = row, column = col))
}

fn yes_no(name: &str, yes: bool, loc: Locale) -> Markup {
    html! {
        select name=(name) {
            option value="yes" selected[yes] { (tr!(loc, "yes")) }
            option value="no" selected[!yes] { (tr!(loc, "no")) }
        }
    }
}

fn yes_no_words(yes: bool, loc: Locale) -> String {
    if yes { tr!(loc, "yes") } else { tr!(loc, "no") }
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
        &tr!(user.lang(), "product-title", code = product.code.as_str()),
        Some(user),
        html! {
            div.card { dl.facts {
                dt { (tr!(user.lang(), "label-name")) } dd { (product.name) }
                dt { (tr!(user.lang(), "product-col-type")) } dd { (product.product_type) }
                dt { (tr!(user.lang(), "product-col-storage")) } dd { (storage(product.storage_min_c.as_deref(), product.storage_max_c.as_deref(), user.lang())) }
                dt { (tr!(user.lang(), "label-release-signatures")) } dd { (product.release_signatures_required) }
                dt { (tr!(user.lang(), "batch-audit-review")) } dd { @if product.audit_review_required { (tr!(user.lang(), "product-review-required")) } @else { (tr!(user.lang(), "product-review-not-required")) } }
                dt { (tr!(user.lang(), "product-trends")) } dd { a href={"/products/" (product.id) "/trends"} { (tr!(user.lang(), "product-trends-link")) } }
                dt { (tr!(user.lang(), "product-exports")) } dd { a href={"/products/" (product.id) "/import-mappings"} { (tr!(user.lang(), "product-mappings-link")) } }
                dt { (tr!(user.lang(), "product-created")) } dd { (user.time(product.created_at)) }
            } }
            h2 { (tr!(user.lang(), "product-specs")) }
            @if specs.is_empty() { p.muted { (tr!(user.lang(), "product-no-specs")) } }
            table { tbody { @for s in specs.iter().rev() { tr {
                td { a href={"/specifications/" (s.id)} { (tr!(user.lang(), "spec-version", version = s.version.as_str())) } }
                td { (status(s.status.as_str(), user.lang())) }
                td { (tr!(user.lang(), "product-tests", n = s.tests.len())) }
                td { (tr!(user.lang(), "product-written")) " " (user.time(s.created_at)) @if let Some(a) = s.approved_at { br; (tr!(user.lang(), "product-approved")) " " (user.time(a)) } }
            } } } }
            @if user.may(Action::DefineProducts) {
                h2 { (tr!(user.lang(), "product-new-spec")) }
                (r.summary())
                form.card method="post" action={"/products/" (product_id) "/specifications"} {
                    (csrf(user))
                    (super::layout::form_key())
                    label.narrow { (tr!(user.lang(), "label-version")) input type="text" name="version" required value=(typed.map(|f| f.version.clone()).unwrap_or_default()); (r.at("version")) }
                    p.muted { (tr!(user.lang(), "product-spec-note")) }
                    div.scroll { table.tests {
                        thead { tr {
                            th { (tr!(user.lang(), "label-code")) } th { (tr!(user.lang(), "label-name")) } th { (tr!(user.lang(), "col-method")) } th { (tr!(user.lang(), "label-kind")) } th { (tr!(user.lang(), "label-unit")) }
                            th { (tr!(user.lang(), "product-lowest")) } th { (tr!(user.lang(), "product-incl")) } th { (tr!(user.lang(), "product-highest")) } th { (tr!(user.lang(), "product-incl")) } th { (tr!(user.lang(), "product-decimals")) }
                            th { (tr!(user.lang(), "product-options")) } th { (tr!(user.lang(), "product-passing")) } th { (tr!(user.lang(), "product-required")) } th { (tr!(user.lang(), "product-may-pend")) } th { (tr!(user.lang(), "product-qualified-only")) } th { (tr!(user.lang(), "product-instrument-kind")) }
                        } }
                        tbody { @for (i, row) in rows.iter().enumerate() { tr {
                            td { input type="text" name="code" value=(row.code) size="8" aria-label={"Row " (i + 1) " code"}; }
                            td { input type="text" name="name" value=(row.name) aria-label={"Row " (i + 1) " name"}; }
                            td { input type="text" name="method" value=(row.method) aria-label={"Row " (i + 1) " method"}; }
                            td { select name="kind" {
                                option value="numeric" selected[row.kind != "qualitative"] { (tr!(user.lang(), "product-numeric")) }
                                option value="qualitative" selected[row.kind == "qualitative"] { (tr!(user.lang(), "product-qualitative")) }
                            } }
                            td { input type="text" name="unit" value=(row.unit) size="5"; }
                            td { input type="text" name="min" value=(row.min) size="6" inputmode="decimal"; }
                            td { (yes_no("min_inclusive", row.min_inclusive, user.lang())) }
                            td { input type="text" name="max" value=(row.max) size="6" inputmode="decimal"; }
                            td { (yes_no("max_inclusive", row.max_inclusive, user.lang())) }
                            td { input type="text" name="decimals" value=(row.decimals) size="2" inputmode="numeric"; }
                            td { input type="text" name="options" value=(row.options); }
                            td { input type="text" name="allowed" value=(row.allowed); }
                            td { (yes_no("required", row.required, user.lang())) }
                            td { (yes_no("pending_release_allowed", row.pending_release_allowed, user.lang())) }
                            td { (yes_no("qualification_required", row.qualification_required, user.lang())) }
                            td { input type="text" name="instrument_kind" value=(row.instrument_kind) size="12" aria-label={"Row " (i + 1) " instrument kind"}; }
                        } } }
                    } }
                    button type="submit" { (tr!(user.lang(), "product-save-draft")) }
                }
            }
            p { a href="/products" { (tr!(user.lang(), "product-back")) } }
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
    let f: SpecForm = super::layout::read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let product_id = id.into_inner();
    // A double submit saves the draft once.
    let once = super::layout::form_once(
        f.form_key.as_deref(),
        &format!("/products/{product_id}/specifications"),
        &body,
    );
    let tests: Vec<TestDefInput> = f
        .rows()
        .iter()
        .filter(|r| !r.is_blank())
        .map(Row::input)
        .collect();
    // The page's rows are read as the API reads its tests: every broken
    // rule of every row is named at once, with the version's.
    let cmd = match (Line::parse(&f.version), NonEmpty::of(tests.clone())) {
        (Ok(version), Ok(tests)) => Ok(CreateSpecification { version, tests }),
        (version, _) => {
            let mut errors = version
                .err()
                .map(|w| FieldError::worded("version", w))
                .into_iter()
                .collect::<Vec<_>>();
            if let Err(mut e) = validate_tests(&tests) {
                errors.append(&mut e);
            }
            Err(AppError::validation(errors))
        }
    };
    let actor = user.0.actor.clone();
    let attempt = match cmd {
        Err(e) => Err(e),
        Ok(cmd) => {
            state
                .db(move |c| {
                    let created = super::layout::once_for_form(c, actor.id, once.as_ref(), |c| {
                        svc::create_spec(c, &actor, product_id, &cmd)
                    })?;
                    super::layout::created_id(&created)
                })
                .await
        }
    };
    match attempt {
        Ok(id) => Ok(see_other(format!("/specifications/{id}"))),
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
            Ok(html_page(p.status(), markup))
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
        &tr!(
            user.lang(),
            "spec-title",
            code = product.code.as_str(),
            version = spec.version.as_str()
        ),
        Some(user),
        html! {
            (r.summary())
            p { (tr!(user.lang(), "col-product")) " " a href={"/products/" (product.id)} { (product.code) " – " (product.name) } " · " (status(spec.status.as_str(), user.lang())) }
            table {
                thead { tr { th { (tr!(user.lang(), "col-test")) } th { (tr!(user.lang(), "col-method")) } th { (tr!(user.lang(), "col-limit")) } th { (tr!(user.lang(), "product-required")) } th { (tr!(user.lang(), "product-may-pend-short")) } th { (tr!(user.lang(), "product-qualified-only")) } th { (tr!(user.lang(), "product-instrument-kind")) } } }
                tbody { @for t in &spec.tests { tr {
                    td { strong { (t.code) } " " (t.name) }
                    td { (t.method) }
                    td { (t.limit) }
                    td { (yes_no_words(t.required, user.lang())) }
                    td { (yes_no_words(t.pending_release_allowed, user.lang())) }
                    td { (yes_no_words(t.qualification_required, user.lang())) }
                    td { (t.instrument_kind.clone().unwrap_or_else(|| tr!(user.lang(), "none"))) }
                } } }
            }
            h2 { (tr!(user.lang(), "batch-signatures")) }
            @if spec.signatures.is_empty() { p.muted { (tr!(user.lang(), "product-not-approved")) } }
            ul { @for s in &spec.signatures { li { strong { (s.signer.full_name) } " · " (user.time(s.signed_at)) " · " (s.statement) @if let Some(why) = &s.reason { " · " (why) } } } }
            @if spec.status == SpecStatus::Draft && user.may(Action::Sign(Meaning::SpecApproved)) {
                @if own {
                    div.notice { (tr!(user.lang(), "product-own-spec")) }
                } @else {
                    form.stack.card method="post" action={"/specifications/" (spec_id) "/approve"} {
                        h2 { (tr!(user.lang(), "product-approve")) }
                        (csrf(user))
                        label { (tr!(user.lang(), "comment-optional")) input type="text" name="reason"; (r.at("reason")) }
                        (meaning_box(Meaning::SpecApproved, user.lang()))
                        label { (tr!(user.lang(), "signature-password")) input type="password" name="password" required autocomplete="current-password"; (r.at("password")) }
                        button type="submit" { (tr!(user.lang(), "product-sign-approval")) }
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

/// The approval form's own field (the command is read by
/// `WebUser::command`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ApproveForm {
    csrf: String,
}

/// Signs the approval; a refusal is shown on the page.
#[post("/specifications/{id}/approve")]
pub async fn approve_spec(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::SpecApproved))?;
    let f: ApproveForm = super::layout::read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let spec_id = id.into_inner();
    let rules = state.signing.clone();
    let attempt = user
        .run(
            &state,
            &body,
            &[],
            move |c, actor, cmd: ApproveSpecification| {
                svc::approve_spec(c, &rules, actor, spec_id, &cmd)
            },
        )
        .await;
    match attempt {
        Ok(_) => Ok(see_other(format!("/specifications/{spec_id}"))),
        Err(e) => {
            let p = refusal(e)?;
            let markup = spec_markup(&state, &user, spec_id, Some(&p)).await?;
            Ok(html_page(p.status(), markup))
        }
    }
}

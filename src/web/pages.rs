//! The pages. Each handler extracts, calls the same service as the API, and
//! renders; a refusal is shown in words next to what was refused.

use super::layout::{html_page, outcome, page, see_other, status, time};
use super::session::{
    LOGIN_CSRF_COOKIE, SESSION_COOKIE, WebError, WebUser, constant_time_eq, protected_cookie,
    removal,
};
use crate::app::AppState;
use crate::domain::batch::BatchStatus;
use crate::domain::release::BlockerCode;
use crate::error::AppError;
use crate::services::PageRequest;
use crate::services::auth::{self as auth_svc, random_token};
use crate::services::batches::{self as batch_svc, BatchFilter};
use crate::services::products::{self as product_svc, TestDefView};
use crate::services::release;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

fn secure(state: &AppState, req: &HttpRequest) -> bool {
    state.secure_cookies || req.connection_info().scheme() == "https"
}

fn login_markup(token: &str, username: &str, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            @if let Some(e) = error { div.notice.error role="alert" id="login-error" { (e) } }
            form.stack.card method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                label { "Username" input type="text" name="username" value=(username) autocomplete="username" required autofocus; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The sign-in form.
#[get("/login")]
pub async fn login_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let token = random_token();
    let mut res = html_page(
        actix_web::http::StatusCode::OK,
        login_markup(&token, "", None),
    );
    let _ = res.add_cookie(&protected_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        secure(&state, &req),
        3600,
    ));
    res
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    username: String,
    password: String,
}

/// Signs in and sets the session cookie; a refusal (wrong password, locked
/// account, too many attempts) is shown on the form.
#[post("/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    let expected = req
        .cookie(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return Err(WebError::Refused(AppError::forbidden(
            "csrf_failed",
            "the sign-in form is out of date: reload the page and sign in again",
        )));
    }
    let attempt = match state.check_login_rate(&req) {
        Ok(()) => {
            let cfg = state.auth.clone();
            let (u, p) = (form.username.clone(), form.password.clone());
            state.db(move |c| auth_svc::login(c, &cfg, &u, &p)).await
        }
        Err(e) => Err(e),
    };
    match attempt {
        Ok(ok) => {
            let mut res = see_other("/batches".to_owned());
            let max_age = ok.expires_in;
            res.add_cookie(&protected_cookie(
                SESSION_COOKIE,
                ok.access_token,
                secure(&state, &req),
                max_age,
            ))
            .map_err(|e| AppError::Internal(anyhow::anyhow!("setting the cookie: {e}")))?;
            res.add_cookie(&removal(LOGIN_CSRF_COOKIE))
                .map_err(|e| AppError::Internal(anyhow::anyhow!("removing the cookie: {e}")))?;
            Ok(res)
        }
        Err(AppError::Problem(p)) if p.status.is_client_error() => {
            let message = match p.code {
                "account_locked" => "This account is locked after repeated failed attempts. \
                                     Wait 15 minutes or ask an administrator to unlock it."
                    .to_owned(),
                "rate_limited" => p.detail.clone(),
                _ => "Wrong username or password.".to_owned(),
            };
            let mut res = HttpResponse::build(p.status)
                .content_type("text/html; charset=utf-8")
                .body(login_markup(&form.csrf, &form.username, Some(&message)).into_string());
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            Ok(res)
        }
        Err(e) => Err(WebError::Refused(e)),
    }
}

/// A form with only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// Signs out: the session is revoked at once.
#[post("/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    user: WebUser,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    user.check_csrf(&form.csrf)?;
    let who = user.0.clone();
    state.db(move |c| auth_svc::logout(c, &who)).await?;
    let mut res = see_other("/login".to_owned());
    res.add_cookie(&removal(SESSION_COOKIE))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("removing the cookie: {e}")))?;
    Ok(res)
}

/// The batch list's filters.
#[derive(Debug, Deserialize)]
pub struct BatchListQuery {
    status: Option<String>,
    product_id: Option<String>,
    q: Option<String>,
    cursor: Option<Uuid>,
}

const STATUSES: [&str; 5] = [
    "quarantine",
    "conditionally_released",
    "released",
    "rejected",
    "recalled",
];

/// Batches, with filters and one search box for batch number or donor DIN
/// (a barcode scanner types into it and presses Enter).
#[get("/batches")]
pub async fn batch_list(
    state: web::Data<AppState>,
    user: WebUser,
    query: web::Query<BatchListQuery>,
) -> Result<HttpResponse, WebError> {
    let q = query.into_inner();
    let status_filter = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(BatchStatus::parse);
    let product_filter = q
        .product_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|p| Uuid::parse_str(p).ok());
    let filter = BatchFilter {
        status: status_filter,
        product_id: product_filter,
        q: q.q.clone(),
    };
    let page_req = PageRequest {
        limit: 50,
        after: q.cursor,
    };
    let (list, products) = state
        .db(move |c| {
            Ok((
                batch_svc::list_batches(c, &filter, page_req)?,
                product_svc::list_products(
                    c,
                    PageRequest {
                        limit: 500,
                        after: None,
                    },
                )?,
            ))
        })
        .await?;
    let product_code = |id: Uuid| {
        products
            .items
            .iter()
            .find(|p| p.id == id)
            .map_or_else(String::new, |p| p.code.clone())
    };
    let next = list.next_cursor.as_ref().map(|c| {
        format!(
            "/batches?status={}&product_id={}&q={}&cursor={c}",
            q.status.clone().unwrap_or_default(),
            q.product_id.clone().unwrap_or_default(),
            q.q.clone().unwrap_or_default()
        )
    });
    let body = html! {
        form.inline.card method="get" action="/batches" role="search" {
            label { "Batch number or donor DIN"
                input type="search" name="q" value=(q.q.clone().unwrap_or_default()) autofocus; }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for s in STATUSES { option value=(s) selected[q.status.as_deref() == Some(s)] { (s.replace('_', " ")) } }
                }
            }
            label { "Product"
                select name="product_id" {
                    option value="" { "any" }
                    @for p in &products.items {
                        option value=(p.id) selected[product_filter == Some(p.id)] { (p.code) " – " (p.name) }
                    }
                }
            }
            button type="submit" { "Search" }
        }
        @if list.items.is_empty() { p.muted { "No batch matches." } } @else {
            table {
                thead { tr { th { "Batch" } th { "Product" } th { "Status" } th { "Donor DIN" } th { "Manufactured" } th { "Expires" } } }
                tbody {
                    @for b in &list.items {
                        tr {
                            td { a href={"/batches/" (b.id)} { (b.batch_number) } }
                            td { (product_code(b.product_id)) }
                            td { (status(&b.status)) }
                            td { (b.donor_din.clone().unwrap_or_default()) }
                            td { (time(b.manufactured_at)) }
                            td { (time(b.expires_at)) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next { p { a href=(n) { "Next page" } } }
    };
    Ok(html_page(
        actix_web::http::StatusCode::OK,
        page("Batches", Some(&user), body),
    ))
}

fn blocker_words(code: BlockerCode) -> &'static str {
    match code {
        BlockerCode::MissingResult => "A required result is missing",
        BlockerCode::ResultFailed => "A result is out of specification",
        BlockerCode::ResultNotReviewed => "A result has not been reviewed by a second person",
        BlockerCode::OpenDeviation => "A deviation is still open",
        BlockerCode::ConfirmedOos => {
            "An out-of-specification result was confirmed: the batch can only be rejected"
        }
        BlockerCode::InTransit => "The batch is in transit",
        BlockerCode::Expired => "The batch has expired",
        BlockerCode::ParentNotReleased => "A parent batch is not released",
    }
}

/// The batch page's query: the result just recorded, to show its outcome.
#[derive(Debug, Deserialize)]
pub struct BatchPageQuery {
    recorded: Option<Uuid>,
}

/// The batch page: specification with limits, results, signatures,
/// deviations, custody and release readiness with every blocker in words.
#[get("/batches/{id}")]
pub async fn batch_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    query: web::Query<BatchPageQuery>,
) -> Result<HttpResponse, WebError> {
    let id = id.into_inner();
    let recorded = query.recorded;
    let (detail, spec, readiness, product) = state
        .db(move |c| {
            let detail = batch_svc::get_batch(c, id)?;
            let spec = product_svc::get_spec(c, detail.batch.specification_id)?;
            let readiness = release::release_readiness(c, id)?;
            let product = product_svc::get_product(c, detail.batch.product_id)?;
            Ok((detail, spec, readiness, product))
        })
        .await?;
    let b = &detail.batch;
    // The latest result of the test whose status counts as current (the
    // domain's rule; results are listed oldest first).
    let current = |t: &TestDefView| {
        detail
            .results
            .iter()
            .rev()
            .find(|r| r.test_code == t.code && r.status.counts_as_current())
    };
    let just_recorded = recorded.and_then(|r| detail.results.iter().find(|x| x.id == r));
    let roles = &user.0.actor;
    let body = html! {
        @if let Some(r) = just_recorded {
            div class={"notice " (if r.outcome == "pass" { "ok" } else { "error" })} role="status" id="recorded" {
                "Result recorded: " strong { (r.test_code) " " (r.value) " " (r.unit.clone().unwrap_or_default()) } " — " (outcome(&r.outcome))
                @if r.outcome == "fail" { ". An OOS investigation was opened and QA notified." }
            }
        }
        nav.card aria-label="Actions" {
            @if roles.has(crate::domain::roles::Role::Technician) { a href={"/batches/" (id) "/results/new"} { "Record a result" } " · " }
            @if roles.has(crate::domain::roles::Role::Qa) { a href={"/batches/" (id) "/release"} { "Release, reject or recall" } " · " }
            @if roles.has(crate::domain::roles::Role::Technician) || roles.has(crate::domain::roles::Role::Qa) { a href={"/batches/" (id) "/custody/new"} { "Custody event" } " · " }
            @if roles.roles.contains_any(&[crate::domain::roles::Role::Technician, crate::domain::roles::Role::Reviewer, crate::domain::roles::Role::Qa]) { a href={"/batches/" (id) "/deviations"} { "Deviations" } " · " }
            @if roles.has(crate::domain::roles::Role::Qa) || roles.has(crate::domain::roles::Role::Auditor) { a href={"/batches/" (id) "/history"} { "History" } }
        }
        div.card {
            dl.facts {
                dt { "Status" } dd { (status(&b.status)) }
                dt { "Product" } dd { (product.name) " (" (product.code) ")" }
                dt { "Specification" } dd { "version " (spec.version) }
                dt { "Donor DIN" } dd { (b.donor_din.clone().unwrap_or_else(|| "none".into())) }
                dt { "Intended recipient" } dd { (b.intended_recipient.clone().unwrap_or_else(|| "none".into())) }
                dt { "Manufactured" } dd { (time(b.manufactured_at)) }
                dt { "Expires" } dd { (time(b.expires_at)) }
            }
        }
        h2 { "Release readiness" }
        @if readiness.releasable {
            div.notice.ok { "Every rule holds: the batch can be released." }
        } @else {
            div.notice.error {
                @if readiness.conditionally_releasable { p { "Only results allowed to be pending are missing: a conditional release is possible." } }
                ul.blockers { @for bl in &readiness.blockers { li { strong { (blocker_words(bl.code)) } ": " (bl.message) } } }
            }
        }
        h2 { "Specification and current results" }
        table {
            thead { tr { th { "Test" } th { "Method" } th { "Limit" } th { "Result" } th { "Outcome" } th { "Status" } th { "Performed by" } th { "Reviewed by" } } }
            tbody {
                @for t in &spec.tests {
                    @let r = current(t);
                    tr {
                        td { strong { (t.code) } " " (t.name) }
                        td { (t.method) }
                        td { (t.limit) }
                        td { @if let Some(r) = r { (r.value) " " (r.unit.clone().unwrap_or_default()) } @else { span.muted { "none" } } }
                        td { @if let Some(r) = r { (outcome(&r.outcome)) } }
                        td { @if let Some(r) = r { (format!("{:?}", r.status).to_lowercase()) } }
                        td { @if let Some(r) = r { (r.performed_by.full_name) br; (time(r.performed_at)) } }
                        td { @if let Some(r) = r { @for s in &r.signatures { (s.signer.full_name) br; (time(s.signed_at)) } } }
                    }
                }
            }
        }
        h2 { "Signatures" }
        @if detail.signatures.is_empty() { p.muted { "No release, rejection or recall signature yet." } }
        ul { @for s in &detail.signatures { li { strong { (s.signer.full_name) } " · " (time(s.signed_at)) " · " (s.statement) @if let Some(r) = &s.reason { " · " (r) } } } }
        h2 { "Deviations" }
        @if detail.deviations.is_empty() { p.muted { "None." } }
        table { tbody { @for d in &detail.deviations {
            tr { td { (d.kind) " · " (d.severity) } td { (d.title) } td { (status(&d.status)) } td { (d.conclusion.clone().unwrap_or_default()) } }
        } } }
        h2 { "Chain of custody" }
        @if detail.custody.is_empty() { p.muted { "No custody event yet." } }
        ol { @for e in &detail.custody {
            li { strong { (e.event) } " · " (time(e.occurred_at)) " · " (e.location) " · " (e.party)
                @if let Some(t) = &e.temperature_c { " · " (t) " °C" @if e.excursion { " " span.fail { "EXCURSION" } } }
                @if let Some(r) = &e.recipient_id { " · recipient " (r) } }
        } }
        @if BatchStatus::parse(&b.status).is_some_and(BatchStatus::is_released) {
            p { a href={"/batches/" (b.id) "/certificate"} { "Certificate of Analysis (PDF)" } }
        }
    };
    Ok(html_page(
        actix_web::http::StatusCode::OK,
        page(&format!("Batch {}", b.batch_number), Some(&user), body),
    ))
}

/// The Certificate of Analysis, for the browser (the same PDF as the API's).
#[get("/batches/{id}/certificate")]
pub async fn certificate(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    let id = id.into_inner();
    let actor = user.0.actor.clone();
    let data = state
        .db(move |c| crate::services::certificate::coa_data(c, id, &actor))
        .await?;
    let number = data.batch_number.clone();
    let pdf = web::block(move || crate::report::coa::render(&data))
        .await
        .map_err(AppError::from)?
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering the certificate: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"CoA-{number}.pdf\""),
        ))
        .body(pdf))
}

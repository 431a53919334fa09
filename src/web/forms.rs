//! Pages that change the record: recording a result, the review queue and
//! review, release / conditional release / reject / recall, the history.
//! Signed actions show what the signature means before asking for the
//! password again (21 CFR 11.50, 11.200); a refusal is shown in words next to
//! the form, never as a raw error page.

use super::layout::{
    csrf, html_page, meaning_box, outcome, page, refusal, refusal_box, see_other, status, time,
};
use super::session::{WebError, WebUser};
use crate::app::AppState;
use crate::domain::roles::Role;
use crate::domain::signature::Meaning;
use crate::error::{AppError, Problem};
use crate::services::batches as batch_svc;
use crate::services::products as product_svc;
use crate::services::release::{self, Disposition, ReleaseRequest};
use crate::services::results::{self as result_svc, Decision, NewResultInput};
use actix_web::{HttpResponse, get, post, web};
use chrono::{NaiveDateTime, TimeZone, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

/// Reads a `datetime-local` value given in UTC.
fn utc_from_form(field: &str, v: &str) -> Result<chrono::DateTime<Utc>, AppError> {
    NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
        .map(|n| Utc.from_utc_datetime(&n))
        .map_err(|_| {
            AppError::invalid_field(field, "is not a date and time (YYYY-MM-DDTHH:MM, UTC)")
        })
}

fn now_for_form() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M").to_string()
}

async fn record_form_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    problem: Option<&Problem>,
    previous: Option<&RecordForm>,
) -> Result<Markup, WebError> {
    let (detail, spec) = state
        .db(move |c| {
            let detail = batch_svc::get_batch(c, batch_id)?;
            let spec = product_svc::get_spec(c, detail.batch.specification_id)?;
            Ok((detail, spec))
        })
        .await?;
    let chosen = previous.map(|p| p.test_code.clone()).unwrap_or_default();
    Ok(page(
        &format!("Record a result · {}", detail.batch.batch_number),
        Some(user),
        html! {
            (refusal_box(problem))
            form.stack.card method="post" action={"/batches/" (batch_id) "/results"} {
                (csrf(user))
                label { "Test"
                    select name="test_code" required {
                        @for t in &spec.tests {
                            option value=(t.code) selected[t.code == chosen] {
                                (t.code) " – " (t.name) " (limit " (t.limit) ")"
                            }
                        }
                    }
                }
                label { "Value (unit as in the specification)"
                    input type="text" name="value" required value=(previous.map(|p| p.value.clone()).unwrap_or_default()); }
                label { "Performed at (UTC)"
                    input type="datetime-local" name="performed_at" required
                        value=(previous.map(|p| p.performed_at.clone()).unwrap_or_else(now_for_form)); }
                label { "Instrument" input type="text" name="instrument"; }
                label { "Comment" textarea name="comment" {} }
                label { "Replaces result (only to correct or retest)"
                    select name="replaces_result_id" {
                        option value="" { "none" }
                        @for r in &detail.results {
                            option value=(r.id) { (r.test_code) " " (r.value) " (" (format!("{:?}", r.status).to_lowercase()) ")" }
                        }
                    }
                }
                label { "Reason for the replacement" input type="text" name="reason"; }
                button type="submit" { "Save result" }
            }
            p { a href={"/batches/" (batch_id)} { "Back to the batch" } }
        },
    ))
}

/// The record-result form (technicians).
#[get("/batches/{id}/results/new")]
pub async fn record_result_form(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Technician])?;
    let markup = record_form_markup(&state, &user, id.into_inner(), None, None).await?;
    Ok(html_page(actix_web::http::StatusCode::OK, markup))
}

/// The record-result form's fields.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordForm {
    csrf: String,
    test_code: String,
    value: String,
    performed_at: String,
    instrument: Option<String>,
    comment: Option<String>,
    replaces_result_id: Option<String>,
    reason: Option<String>,
}

/// Records a result and shows its outcome on the batch page.
#[post("/batches/{id}/results")]
pub async fn record_result(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<RecordForm>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Technician])?;
    user.check_csrf(&form.csrf)?;
    let batch_id = id.into_inner();
    let f = form.into_inner();
    let attempt = async {
        let performed_at = utc_from_form("performed_at", &f.performed_at)?;
        let replaces =
            match f.replaces_result_id.as_deref().filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => Some(Uuid::parse_str(s).map_err(|_| {
                    AppError::invalid_field("replaces_result_id", "is not a result")
                })?),
            };
        let input = NewResultInput {
            test_code: f.test_code.clone(),
            // The form sends text; as a JSON string it is read exactly as typed.
            value: serde_json::to_string(&f.value)?,
            unit: None,
            performed_at,
            instrument: f.instrument.clone(),
            comment: f.comment.clone(),
            replaces_result_id: replaces,
            reason: f.reason.clone(),
        };
        let actor = user.0.actor.clone();
        state
            .db(move |c| result_svc::record_result(c, &actor, batch_id, &input))
            .await
    }
    .await;
    match attempt {
        Ok(r) => Ok(see_other(format!("/batches/{batch_id}?recorded={}", r.id))),
        Err(e) => {
            let p = refusal(e)?;
            let markup = record_form_markup(&state, &user, batch_id, Some(&p), Some(&f)).await?;
            Ok(html_page(p.status, markup))
        }
    }
}

/// Results awaiting review, other people's only.
#[get("/review")]
pub async fn review_queue(
    state: web::Data<AppState>,
    user: WebUser,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Reviewer])?;
    let me = user.0.actor.id;
    let queue = state
        .db(move |c| result_svc::review_queue(c, me, 200))
        .await?;
    let body = html! {
        @if queue.is_empty() { p.muted { "Nothing awaits your review." } } @else {
            table {
                thead { tr { th { "Batch" } th { "Test" } th { "Value" } th { "Outcome" } th { "Performed by" } th {} } }
                tbody { @for a in &queue {
                    tr {
                        td { a href={"/batches/" (a.result.batch_id)} { (a.batch_number) } }
                        td { (a.result.test_code) }
                        td { (a.result.value) " " (a.result.unit.clone().unwrap_or_default()) }
                        td { (outcome(&a.result.outcome)) }
                        td { (a.result.performed_by.full_name) br; (time(a.result.performed_at)) }
                        td { a href={"/results/" (a.result.id) "/review"} { "Review" } }
                    }
                } }
            }
        }
    };
    Ok(html_page(
        actix_web::http::StatusCode::OK,
        page("Review queue", Some(&user), body),
    ))
}

async fn review_markup(
    state: &AppState,
    user: &WebUser,
    result_id: Uuid,
    problem: Option<&Problem>,
) -> Result<Markup, WebError> {
    let r = state
        .db(move |c| result_svc::get_result(c, result_id))
        .await?;
    Ok(page(
        &format!("Review {} {}", r.test_code, r.value),
        Some(user),
        html! {
            (refusal_box(problem))
            div.card { dl.facts {
                dt { "Test" } dd { (r.test_code) }
                dt { "Value" } dd { (r.value) " " (r.unit.clone().unwrap_or_default()) }
                dt { "Outcome" } dd { (outcome(&r.outcome)) }
                dt { "Status" } dd { (format!("{:?}", r.status).to_lowercase()) }
                dt { "Performed by" } dd { (r.performed_by.full_name) ", " (time(r.performed_at)) }
            } }
            form.stack.card method="post" action={"/results/" (result_id) "/review"} {
                (csrf(user))
                fieldset {
                    legend { "Decision" }
                    label { input type="radio" name="decision" value="accept" checked; (Meaning::Reviewed.statement()) }
                    label { input type="radio" name="decision" value="reject"; (Meaning::ReviewRejected.statement()) }
                }
                label { "Comment (required to reject)" textarea name="comment" {} }
                (meaning_box(Meaning::Reviewed))
                label { "Your password (electronic signature)" input type="password" name="password" required autocomplete="current-password"; }
                button type="submit" { "Sign the review" }
            }
        },
    ))
}

/// The review form.
#[get("/results/{id}/review")]
pub async fn review_form(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Reviewer])?;
    let markup = review_markup(&state, &user, id.into_inner(), None).await?;
    Ok(html_page(actix_web::http::StatusCode::OK, markup))
}

/// The review form's fields.
#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    csrf: String,
    decision: String,
    comment: Option<String>,
    password: String,
}

/// Signs a review; a refusal (own result, wrong password) is shown on the form.
#[post("/results/{id}/review")]
pub async fn review(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<ReviewForm>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Reviewer])?;
    user.check_csrf(&form.csrf)?;
    let result_id = id.into_inner();
    let f = form.into_inner();
    let decision = if f.decision == "reject" {
        Decision::Reject
    } else {
        Decision::Accept
    };
    let lockout = state.auth.lockout;
    let actor = user.0.actor.clone();
    let attempt = state
        .db(move |c| {
            result_svc::review_result(
                c,
                lockout,
                &actor,
                result_id,
                decision,
                &f.password,
                f.comment.as_deref(),
            )
        })
        .await;
    match attempt {
        Ok(_) => Ok(see_other("/review".to_owned())),
        Err(e) => {
            let p = refusal(e)?;
            if p.code == "token_revoked" {
                return Err(WebError::SignIn);
            }
            let markup = review_markup(&state, &user, result_id, Some(&p)).await?;
            Ok(html_page(p.status, markup))
        }
    }
}

async fn release_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    problem: Option<&Problem>,
) -> Result<Markup, WebError> {
    let (detail, readiness) = state
        .db(move |c| {
            Ok((
                batch_svc::get_batch(c, batch_id)?,
                release::release_readiness(c, batch_id)?,
            ))
        })
        .await?;
    let b = &detail.batch;
    let password = html! { label { "Your password (electronic signature)" input type="password" name="password" required autocomplete="current-password"; } };
    Ok(page(
        &format!("Release · {}", b.batch_number),
        Some(user),
        html! {
            (refusal_box(problem))
            p { "Status: " (status(&b.status)) }
            @if readiness.releasable { div.notice.ok { "Every rule holds." } } @else {
                div.notice.error { ul { @for bl in &readiness.blockers { li { (bl.message) } } } }
            }
            div.grid {
                form.stack.card method="post" action={"/batches/" (batch_id) "/release"} {
                    h2 { "Release" }
                    (csrf(user))
                    label { "Comment" input type="text" name="comment"; }
                    (meaning_box(Meaning::Released))
                    (password)
                    button type="submit" { "Sign the release" }
                }
                @if readiness.conditionally_releasable {
                    form.stack.card method="post" action={"/batches/" (batch_id) "/release"} {
                        h2 { "Conditional release" }
                        (csrf(user))
                        input type="hidden" name="conditional" value="true";
                        label { "Justification (required)" textarea name="justification" required {} }
                        (meaning_box(Meaning::ConditionallyReleased))
                        (password)
                        button type="submit" { "Sign the conditional release" }
                    }
                }
                form.stack.card method="post" action={"/batches/" (batch_id) "/reject"} {
                    h2 { "Reject" }
                    (csrf(user))
                    label { "Reason (required)" textarea name="reason" required {} }
                    (meaning_box(Meaning::Rejected))
                    (password)
                    button.danger type="submit" { "Sign the rejection" }
                }
                form.stack.card method="post" action={"/batches/" (batch_id) "/recall"} {
                    h2 { "Recall" }
                    (csrf(user))
                    label { "Reason (required)" textarea name="reason" required {} }
                    (meaning_box(Meaning::Recalled))
                    (password)
                    button.danger type="submit" { "Sign the recall" }
                }
            }
            p { a href={"/batches/" (batch_id)} { "Back to the batch" } }
        },
    ))
}

/// The QP's page: readiness, release (or conditional), reject, recall.
#[get("/batches/{id}/release")]
pub async fn release_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Qa])?;
    let markup = release_markup(&state, &user, id.into_inner(), None).await?;
    Ok(html_page(actix_web::http::StatusCode::OK, markup))
}

/// The release form's fields.
#[derive(Debug, Deserialize)]
pub struct ReleaseForm {
    csrf: String,
    password: String,
    comment: Option<String>,
    conditional: Option<String>,
    justification: Option<String>,
}

async fn after_decision(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    attempt: Result<batch_svc::BatchDetail, AppError>,
) -> Result<HttpResponse, WebError> {
    match attempt {
        Ok(_) => Ok(see_other(format!("/batches/{batch_id}"))),
        Err(e) => {
            let p = refusal(e)?;
            if p.code == "token_revoked" {
                return Err(WebError::SignIn);
            }
            let markup = release_markup(state, user, batch_id, Some(&p)).await?;
            Ok(html_page(p.status, markup))
        }
    }
}

/// Signs a release or conditional release.
#[post("/batches/{id}/release")]
pub async fn release_batch(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<ReleaseForm>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Qa])?;
    user.check_csrf(&form.csrf)?;
    let batch_id = id.into_inner();
    let f = form.into_inner();
    let req = ReleaseRequest {
        password: f.password,
        comment: f.comment,
        conditional: f.conditional.as_deref() == Some("true"),
        justification: f.justification,
    };
    let lockout = state.auth.lockout;
    let actor = user.0.actor.clone();
    let attempt = state
        .db(move |c| release::release(c, lockout, &actor, batch_id, &req))
        .await;
    after_decision(&state, &user, batch_id, attempt).await
}

/// The reject / recall form's fields.
#[derive(Debug, Deserialize)]
pub struct DispositionForm {
    csrf: String,
    password: String,
    reason: String,
}

async fn dispose(
    state: web::Data<AppState>,
    user: WebUser,
    batch_id: Uuid,
    form: DispositionForm,
    what: Disposition,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Qa])?;
    user.check_csrf(&form.csrf)?;
    let lockout = state.auth.lockout;
    let actor = user.0.actor.clone();
    let attempt = state
        .db(move |c| {
            release::dispose(
                c,
                lockout,
                &actor,
                batch_id,
                what,
                &form.password,
                &form.reason,
            )
        })
        .await;
    after_decision(&state, &user, batch_id, attempt).await
}

/// Signs a rejection.
#[post("/batches/{id}/reject")]
pub async fn reject_batch(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<DispositionForm>,
) -> Result<HttpResponse, WebError> {
    dispose(
        state,
        user,
        id.into_inner(),
        form.into_inner(),
        Disposition::Reject,
    )
    .await
}

/// Signs a recall.
#[post("/batches/{id}/recall")]
pub async fn recall_batch(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<DispositionForm>,
) -> Result<HttpResponse, WebError> {
    dispose(
        state,
        user,
        id.into_inner(),
        form.into_inner(),
        Disposition::Recall,
    )
    .await
}

/// The auditor's view: every entry of the batch's chain, its verification,
/// and the JSON / CSV downloads.
#[get("/batches/{id}/history")]
pub async fn history_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Auditor, Role::Qa])?;
    let batch_id = id.into_inner();
    let (batch, entries, report) = state
        .db(move |c| {
            let batch = batch_svc::find_batch(c, batch_id)?;
            let entries = batch_svc::history(c, batch_id)?;
            let chain = crate::domain::audit::batch_chain(batch_id);
            let report = crate::services::audit::verify_chains(c, Some(&chain))?;
            Ok((batch, entries, report))
        })
        .await?;
    let body = html! {
        @if report.ok {
            div.notice.ok id="chain-status" { "The batch's hash chain verifies: " (report.events) " entries, none altered." }
        } @else {
            div.notice.error id="chain-status" role="alert" {
                "The batch's hash chain is BROKEN:"
                ul { @for b in &report.broken { li { "entry " (b.seq) ": " (b.reason) } } }
            }
        }
        p {
            a href={"/batches/" (batch_id) "/history.csv"} download { "Download CSV" } " · "
            a href={"/batches/" (batch_id) "/history.json"} download { "Download JSON" }
        }
        table {
            thead { tr { th { "#" } th { "When" } th { "Who" } th { "What" } th { "Reason" } th { "Hash" } } }
            tbody { @for e in &entries {
                tr {
                    td { (e.seq) }
                    td { (time(e.at)) }
                    td { @if let Some(a) = &e.actor { (a.full_name) } @else { span.muted { "system" } } }
                    td { (e.action) }
                    td { (e.reason.clone().unwrap_or_default()) }
                    td { code { (e.hash.get(..12).unwrap_or_default()) "…" } }
                }
            } }
        }
    };
    Ok(html_page(
        actix_web::http::StatusCode::OK,
        page(
            &format!("History · {}", batch.batch_number),
            Some(&user),
            body,
        ),
    ))
}

async fn history_download(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    csv: bool,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Auditor, Role::Qa])?;
    let entries = state.db(move |c| batch_svc::history(c, batch_id)).await?;
    let (body, kind, ext) = if csv {
        (
            batch_svc::history_csv(&entries)?,
            "text/csv; charset=utf-8",
            "csv",
        )
    } else {
        (
            serde_json::to_vec_pretty(&entries).map_err(AppError::from)?,
            "application/json",
            "json",
        )
    };
    Ok(HttpResponse::Ok()
        .content_type(kind)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"batch-{batch_id}-history.{ext}\""),
        ))
        .body(body))
}

/// The history as CSV.
#[get("/batches/{id}/history.csv")]
pub async fn history_csv(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    history_download(&state, &user, id.into_inner(), true).await
}

/// The history as JSON.
#[get("/batches/{id}/history.json")]
pub async fn history_json(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    history_download(&state, &user, id.into_inner(), false).await
}

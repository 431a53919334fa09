//! The Qualified Person's page: readiness, release (or conditional
//! release), reject, recall. Signed actions show what the signature means
//! before asking for the password again (21 CFR 11.50, 11.200).

use super::layout::{csrf, html_page, meaning_box, page, refusal, refusal_box, see_other, status};
use super::session::{WebError, WebUser};
use crate::app::AppState;
use crate::domain::StoredName;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::{AppError, Problem};
use crate::services::batch_record::views::BatchDetail;
use crate::services::batches as batch_svc;
use crate::services::release::{self, Disposition, ReleaseRequest};
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

async fn release_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    problem: Option<&Problem>,
) -> Result<Markup, WebError> {
    let record = state.db(move |c| batch_svc::record(c, batch_id)).await?;
    let (detail, readiness) = (BatchDetail::from(&record), record.readiness());
    let b = &detail.batch;
    let password = html! { label { "Your password (electronic signature)" input type="password" name="password" required autocomplete="current-password"; } };
    Ok(page(
        &format!("Release · {}", b.batch_number),
        Some(user),
        html! {
            (refusal_box(problem))
            p { "Status: " (status(b.status.as_str())) }
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
    user.require(Action::Sign(Meaning::Released))?;
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
    attempt: Result<BatchDetail, AppError>,
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
    user.require(Action::Sign(Meaning::Released))?;
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
    user.require(Action::Sign(what.meaning()))?;
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

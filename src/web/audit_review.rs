//! QA's review of a batch's audit trail by exception: only the entries that
//! are not routine, each linked to its row in the batch's history, the
//! reviews signed so far, and one signing step over the chain's last
//! position (PIC/S PI 041 §9.8).

use super::layout::{csrf, html_page, meaning_box, page, refusal, refusal_box, see_other};
use super::session::{WebError, WebUser};
use crate::app::AppState;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::Problem;
use crate::services::audit_review::{self as svc, AuditReviewView, ReviewRequest};
use crate::services::batches as batch_svc;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

fn kind_words(kind: crate::domain::audit_review::ExceptionKind) -> &'static str {
    use crate::domain::audit_review::ExceptionKind as K;
    match kind {
        K::Replacement => "correction",
        K::LateEntry => "late entry",
        K::ReviewRejected => "rejected in review",
        K::Invalidation => "invalidated",
        K::DeviationOpened => "deviation opened",
        K::DeviationClosed => "deviation closed",
        K::Excursion => "temperature excursion",
        K::ReleaseSignature => "release signature",
        K::Disposition => "status decision",
        K::AuditReview => "earlier review",
        K::Other => "other",
    }
}

async fn review_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    problem: Option<&Problem>,
    comment: &str,
) -> Result<Markup, WebError> {
    let actor = user.0.actor.clone();
    let (view, took_part): (AuditReviewView, bool) = state
        .db(move |c| {
            let view = svc::audit_review(c, &actor, batch_id)?;
            let record = batch_svc::record(c, batch_id)?;
            Ok((view, record.took_part(actor.id)))
        })
        .await?;
    let may_sign = user.may(Action::Sign(Meaning::AuditTrailReviewed));
    let (notice, words) = match view.state {
        "reviewed" => (
            "ok",
            "Every exception that counts is covered by a signed review.".to_owned(),
        ),
        "stale" => (
            "error",
            "Exceptions were written after the last signed review: they are marked new below and need a review."
                .to_owned(),
        ),
        _ => (
            "error",
            "Nobody has signed a review of this audit trail yet.".to_owned(),
        ),
    };
    let required = if view.required {
        "The product requires this review before release."
    } else {
        "The product does not require this review before release."
    };
    Ok(page(
        &format!("Audit-trail review · {}", view.batch_number),
        Some(user),
        html! {
            (refusal_box(problem, user.lang()))
            div class={"notice " (notice)} id="review-state" role="status" { (words) " " (required) }
            div.card { dl.facts {
                dt { "Batch" } dd { a href={"/batches/" (batch_id)} { (view.batch_number) } }
                dt { "Entries in its chain" } dd { (view.entries) " (last: #" (view.up_to_seq) ", hash " code title=(view.head_hash) { (view.head_hash.get(..12).unwrap_or_default()) "…" } ")" }
                dt { "Exceptions to read" } dd { (view.exceptions.len()) " — routine entries (creation, first results within 72 h, accepted reviews, custody without excursion, material uses) are left out" }
                dt { "Full trail" } dd { a href={"/batches/" (batch_id) "/history"} { "Every entry of the batch's history" } }
            } }
            h2 { "Exceptions (" (view.exceptions.len()) ")" }
            @if view.exceptions.is_empty() { p.muted { "None: every entry of this trail is routine." } } @else {
                table id="exceptions" {
                    thead { tr { th { "#" } th { "When" } th { "Who" } th { "Kind" } th { "What happened" } } }
                    tbody { @for e in &view.exceptions {
                        tr class=[(e.after_last_review && !view.reviews.is_empty()).then_some("new")] {
                            td { a href={"/batches/" (batch_id) "/history#entry-" (e.entry_id)} title="Open the entry in the batch's history" { "#" (e.seq) } }
                            td { (user.time(e.at)) }
                            td { @if let Some(a) = &e.actor { (a.full_name) br; span.muted { (a.username) } } @else { span.muted { "system" } } }
                            td { span.badge { (kind_words(e.kind)) } @if e.after_last_review && !view.reviews.is_empty() { br; strong { "new since the last review" } } }
                            td { (e.summary) }
                        }
                    } }
                }
            }
            h2 { "Signed reviews (" (view.reviews.len()) ")" }
            @if view.reviews.is_empty() { p.muted { "None yet." } } @else {
                ul id="reviews" { @for r in &view.reviews {
                    li {
                        (r.signature.signer.full_name) ", " (user.time(r.signature.signed_at)) ": entries up to #" (r.up_to_seq)
                        ", " (r.exceptions) " exception(s) read"
                        @if let Some(c) = &r.signature.reason { " — “" (c) "”" }
                        br; span.muted { "“" (r.signature.statement) "” · record hash " code { (r.signature.record_hash.get(..12).unwrap_or_default()) "…" } }
                    }
                } }
            }
            @if may_sign && view.state == "reviewed" {
                p.muted id="you" { "Nothing to sign: the last review covers every exception that counts. A new exception reopens the review here." }
            } @else if may_sign {
                @if took_part {
                    div.notice.error id="you" { "You may not sign this review: you performed or reviewed a current result of this batch. Another QA person must review its trail." }
                } @else {
                    form.stack.card method="post" action={"/batches/" (batch_id) "/audit-review"} {
                        h2 { "Sign the review" }
                        (csrf(user))
                        input type="hidden" name="up_to_seq" value=(view.up_to_seq);
                        p { "Your signature covers entries #1 to #" (view.up_to_seq) " and the " (view.exceptions.len()) " exception(s) listed above." }
                        label { "Comment (optional)" textarea name="comment" { (comment) } }
                        (meaning_box(Meaning::AuditTrailReviewed, user.lang()))
                        label { "Your password (electronic signature)" input type="password" name="password" required autocomplete="current-password"; }
                        button type="submit" { "Sign the audit-trail review" }
                    }
                }
            }
            p { a href={"/batches/" (batch_id)} { "Back to the batch" } }
        },
    ))
}

/// The review page (QA, auditor).
#[get("/batches/{id}/audit-review")]
pub async fn review_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ReadAuditTrail)?;
    let markup = review_markup(&state, &user, id.into_inner(), None, "").await?;
    Ok(html_page(StatusCode::OK, markup))
}

/// The signing form's fields.
#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    csrf: String,
    password: String,
    up_to_seq: String,
    comment: Option<String>,
}

/// Signs the review; a refusal shows the page again with the reason.
#[post("/batches/{id}/audit-review")]
pub async fn sign_review(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<ReviewForm>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::AuditTrailReviewed))?;
    user.check_csrf(&form.csrf)?;
    let batch_id = id.into_inner();
    let f = form.into_inner();
    let comment = f.comment.clone().unwrap_or_default();
    let req = ReviewRequest {
        password: f.password,
        // Not a number: 0, which the use case refuses with the field named.
        up_to_seq: f.up_to_seq.trim().parse().unwrap_or(0),
        comment: f.comment.filter(|c| !c.trim().is_empty()),
    };
    let lockout = state.auth.lockout;
    let actor = user.0.actor.clone();
    let attempt = state
        .db(move |c| svc::sign_review(c, lockout, &actor, batch_id, &req))
        .await;
    match attempt {
        Ok(_) => Ok(see_other(format!("/batches/{batch_id}/audit-review"))),
        Err(e) => {
            let p = refusal(e)?;
            if p.code == "token_revoked" {
                return Err(WebError::SignIn);
            }
            let markup = review_markup(&state, &user, batch_id, Some(&p), &comment).await?;
            Ok(html_page(p.status, markup))
        }
    }
}

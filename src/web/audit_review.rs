//! QA's review of a batch's audit trail by exception: only the entries that
//! are not routine, each linked to its row in the batch's history, the
//! reviews signed so far, and one signing step over the chain's last
//! position (PIC/S PI 041 §9.8).

use super::layout::{
    csrf, html_page, meaning_box, page, read_form, refusal, refusal_box, see_other,
};
use super::session::{WebError, WebUser};
use crate::domain::audit_review::SignAuditReview;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::Problem;
use crate::http::AppState;
use crate::i18n::Locale;
use crate::services::audit_review::{self as svc, AuditReviewView};
use crate::services::batches as batch_svc;
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

fn kind_words(kind: crate::domain::audit_review::ExceptionKind, loc: Locale) -> String {
    use crate::domain::audit_review::ExceptionKind as K;
    match kind {
        K::Replacement => tr!(loc, "exception-replacement"),
        K::LateEntry => tr!(loc, "exception-late-entry"),
        K::ReviewRejected => tr!(loc, "exception-review-rejected"),
        K::Invalidation => tr!(loc, "exception-invalidation"),
        K::DeviationOpened => tr!(loc, "exception-deviation-opened"),
        K::DeviationClosed => tr!(loc, "exception-deviation-closed"),
        K::Excursion => tr!(loc, "exception-excursion"),
        K::ReleaseSignature => tr!(loc, "exception-release-signature"),
        K::Disposition => tr!(loc, "exception-disposition"),
        K::AuditReview => tr!(loc, "exception-audit-review"),
        K::Other => tr!(loc, "exception-other"),
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
        "reviewed" => ("ok", tr!(user.lang(), "trail-reviewed")),
        "stale" => ("error", tr!(user.lang(), "trail-stale")),
        _ => ("error", tr!(user.lang(), "trail-none")),
    };
    let required = if view.required {
        tr!(user.lang(), "trail-required")
    } else {
        tr!(user.lang(), "trail-not-required")
    };
    Ok(page(
        &tr!(
            user.lang(),
            "trail-title",
            batch = view.batch_number.as_str()
        ),
        Some(user),
        html! {
            (refusal_box(problem, user.lang()))
            div class={"notice " (notice)} id="review-state" role="status" { (words) " " (required) }
            div.card { dl.facts {
                dt { (tr!(user.lang(), "col-batch")) } dd { a href={"/batches/" (batch_id)} { (view.batch_number) } }
                dt { (tr!(user.lang(), "trail-entries-label")) } dd { (tr!(user.lang(), "trail-entries", n = view.entries, seq = view.up_to_seq)) " " code title=(view.head_hash) { (view.head_hash.get(..12).unwrap_or_default()) "…" } ")" }
                dt { (tr!(user.lang(), "trail-to-read")) } dd { (tr!(user.lang(), "trail-exceptions-to-read", n = view.exceptions.len())) }
                dt { (tr!(user.lang(), "trail-full")) } dd { a href={"/batches/" (batch_id) "/history"} { (tr!(user.lang(), "trail-every-entry")) } }
            } }
            h2 { (tr!(user.lang(), "trail-exceptions", n = view.exceptions.len())) }
            @if view.exceptions.is_empty() { p.muted { (tr!(user.lang(), "trail-no-exceptions")) } } @else {
                table id="exceptions" {
                    thead { tr { th { "#" } th { (tr!(user.lang(), "col-when")) } th { (tr!(user.lang(), "col-who")) } th { (tr!(user.lang(), "label-kind")) } th { (tr!(user.lang(), "col-what")) } } }
                    tbody { @for e in &view.exceptions {
                        tr class=[(e.after_last_review && !view.reviews.is_empty()).then_some("new")] {
                            td { a href={"/batches/" (batch_id) "/history#entry-" (e.entry_id)} title=(tr!(user.lang(), "trail-open-entry")) { "#" (e.seq) } }
                            td { (user.time(e.at)) }
                            td { @if let Some(a) = &e.actor { (a.full_name) br; span.muted { (a.username) } } @else { span.muted { (tr!(user.lang(), "system")) } } }
                            td { span.badge { (kind_words(e.kind, user.lang())) } @if e.after_last_review && !view.reviews.is_empty() { br; strong { (tr!(user.lang(), "trail-new")) } } }
                            td { (e.summary) }
                        }
                    } }
                }
            }
            h2 { (tr!(user.lang(), "trail-signed-reviews", n = view.reviews.len())) }
            @if view.reviews.is_empty() { p.muted { (tr!(user.lang(), "none-yet")) } } @else {
                ul id="reviews" { @for r in &view.reviews {
                    li {
                        (r.signature.signer.full_name) ", " (user.time(r.signature.signed_at)) (tr!(user.lang(), "colon"))
                        (tr!(user.lang(), "trail-review-covered", seq = r.up_to_seq, n = r.exceptions))
                        @if let Some(c) = &r.signature.reason { " — “" (c) "”" }
                        br; span.muted { "“" (r.signature.statement) "” · " (tr!(user.lang(), "trail-record-hash")) " " code { (r.signature.record_hash.get(..12).unwrap_or_default()) "…" } }
                    }
                } }
            }
            @if may_sign && view.state == "reviewed" {
                p.muted id="you" { (tr!(user.lang(), "trail-nothing-to-sign")) }
            } @else if may_sign {
                @if took_part {
                    div.notice.error id="you" { (tr!(user.lang(), "trail-took-part")) }
                } @else {
                    form.stack.card method="post" action={"/batches/" (batch_id) "/audit-review"} {
                        h2 { (tr!(user.lang(), "trail-sign-heading")) }
                        (csrf(user))
                        input type="hidden" name="up_to_seq" value=(view.up_to_seq);
                        p { (tr!(user.lang(), "trail-covers", seq = view.up_to_seq, n = view.exceptions.len())) }
                        label { (tr!(user.lang(), "comment-optional")) textarea name="comment" { (comment) } }
                        (meaning_box(Meaning::AuditTrailReviewed, user.lang()))
                        label { (tr!(user.lang(), "signature-password")) input type="password" name="password" required autocomplete="current-password"; }
                        button type="submit" { (tr!(user.lang(), "trail-sign")) }
                    }
                }
            }
            p { a href={"/batches/" (batch_id)} { (tr!(user.lang(), "back-to-batch")) } }
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

/// What the signing form keeps when refused (the command itself is read
/// by `WebUser::command`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReviewForm {
    csrf: String,
    comment: String,
}

/// Signs the review; a refusal shows the page again with the reason.
#[post("/batches/{id}/audit-review")]
pub async fn sign_review(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::AuditTrailReviewed))?;
    let f: ReviewForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let batch_id = id.into_inner();
    let comment = f.comment;
    let rules = state.signing.clone();
    let attempt = user
        .run(&state, &body, &[], move |c, actor, req: SignAuditReview| {
            svc::sign_review(c, &rules, actor, batch_id, &req)
        })
        .await;
    match attempt {
        Ok(_) => Ok(see_other(format!("/batches/{batch_id}/audit-review"))),
        Err(e) => {
            let p = refusal(e)?;
            let markup = review_markup(&state, &user, batch_id, Some(&p), &comment).await?;
            Ok(html_page(p.status(), markup))
        }
    }
}

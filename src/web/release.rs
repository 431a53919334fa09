//! The Qualified Person's page: readiness, release (or conditional
//! release), reject, recall. Signed actions show what the signature means
//! before asking for the password again (21 CFR 11.50, 11.200).

use super::layout::{
    blocker_words, csrf, html_page, meaning_box, page, read_form, refusal, refusal_box, see_other,
    status, status_words,
};
use super::session::{WebError, WebUser};
use crate::domain::StoredName;
use crate::domain::batch::BatchStatus;
use crate::domain::deviation::DeviationStatus;
use crate::domain::record::BatchRecord;
use crate::domain::release::{
    Certification, DisposeBatch, ReleaseBatch, ReleaseRefusal, ReleaseStep, check_recall,
    check_reject,
};
use crate::domain::result::ResultStatus;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::domain::spec::Outcome;
use crate::error::{AppError, Problem};
use crate::http::AppState;
use crate::i18n::Locale;
use crate::services::batch_record::views::BatchDetail;
use crate::services::batches as batch_svc;
use crate::services::release::{self, Disposition};
use crate::tr;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

/// Whether `me` may sign a release of the batch now, in words.
fn may_sign_words(record: &BatchRecord, me: Uuid, loc: Locale) -> (bool, String) {
    match record.check_release(Certification::Full, me) {
        Ok(ReleaseStep::Certified(_)) => (true, tr!(loc, "release-may-sign")),
        Ok(ReleaseStep::Awaiting { signed, required }) => (
            true,
            tr!(
                loc,
                "release-may-sign-nth",
                signed = signed,
                required = required
            ),
        ),
        Err(refusal) => {
            let conditional = record.check_release(Certification::Conditional, me).is_ok();
            let why = match refusal {
                ReleaseRefusal::NotIndependent => tr!(loc, "release-not-independent"),
                ReleaseRefusal::AlreadySigned => tr!(loc, "release-already-signed"),
                ReleaseRefusal::WrongStatus(s) => tr!(
                    loc,
                    "release-wrong-status",
                    status = status_words(s.as_str(), loc)
                ),
                ReleaseRefusal::NotReleasable(b) if conditional => {
                    tr!(loc, "release-conditional-possible", n = b.len())
                }
                ReleaseRefusal::NotReleasable(b) => tr!(loc, "release-blocked", n = b.len()),
                ReleaseRefusal::NothingPending => tr!(loc, "release-nothing-pending"),
            };
            (conditional, why)
        }
    }
}

async fn release_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    problem: Option<&Problem>,
    typed: Option<&Typed>,
) -> Result<Markup, WebError> {
    let (record, warnings) = state
        .db(move |c| {
            let record = batch_svc::record(c, batch_id)?;
            let warnings = release::out_of_trend(c, &record)?;
            Ok((record, warnings))
        })
        .await?;
    let (detail, readiness) = (BatchDetail::from(&record), record.readiness());
    let b = &detail.batch;
    let me = user.0.actor.id;
    let (may, words) = may_sign_words(&record, me, user.lang());
    let conditional_ok = record.check_release(Certification::Conditional, me).is_ok();
    let full_ok = record.check_release(Certification::Full, me).is_ok();
    let may_reject = check_reject(b.status).is_ok();
    let may_recall = check_recall(b.status).is_ok();
    let kept = |pick: fn(&Typed) -> &str| typed.map(pick).unwrap_or_default().to_owned();
    let current = record.current_results();
    let reviewed = detail
        .results
        .iter()
        .filter(|r| {
            current.iter().any(|c| c.id == r.result.id) && r.status == ResultStatus::Reviewed
        })
        .count();
    let failed = current
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .count();
    let open = detail
        .deviations
        .iter()
        .filter(|d| d.deviation.status == DeviationStatus::Open)
        .count();
    let password = html! { label { (tr!(user.lang(), "signature-password")) input type="password" name="password" required autocomplete="current-password"; } };
    Ok(page(
        &tr!(
            user.lang(),
            "release-title",
            batch = b.batch_number.as_str()
        ),
        Some(user),
        html! {
            (refusal_box(problem, user.lang()))
            @if b.status.is_released() || b.status == BatchStatus::Rejected || b.status == BatchStatus::Recalled {
                div class={"notice " (if b.status.is_released() { "ok" } else { "error" })} id="you" {
                    (tr!(user.lang(), "release-batch-is")) " " strong { (status_words(b.status.as_str(), user.lang())) } (tr!(user.lang(), "sentence-end"))
                    @for s in &detail.signatures { " " (s.meaning.statement(user.lang())) " — " (s.signer.full_name) ", " (user.time(s.signed_at)) @if let Some(r) = &s.reason { " (" (r) ")" } (tr!(user.lang(), "sentence-end")) }
                }
            }
            @if b.status == BatchStatus::Quarantine || b.status == BatchStatus::ConditionallyReleased {
                div class={"notice " (if may { "ok" } else { "error" })} id="you" role="status" { (words) }
            }
            h2 { (tr!(user.lang(), "release-summary")) }
            div.card { dl.facts {
                dt { (tr!(user.lang(), "col-status")) } dd { (status(b.status.as_str(), user.lang())) }
                dt { (tr!(user.lang(), "col-product")) } dd { (record.product.name) " · " (tr!(user.lang(), "spec-version", version = record.spec.version.to_string())) }
                dt { (tr!(user.lang(), "release-current")) } dd { (tr!(user.lang(), "release-current-results", current = current.len(), tests = record.spec.tests.len(), reviewed = reviewed, failed = failed)) }
                dt { (tr!(user.lang(), "release-deviations-label")) } dd { (tr!(user.lang(), "release-deviations", all = detail.deviations.len(), open = open)) }
                dt { (tr!(user.lang(), "col-expires")) } dd { (user.time(b.expires_at)) }
            } }
            @if !readiness.blockers.is_empty() && !b.status.is_released() {
                div.notice.error { ul { @for bl in &readiness.blockers { li { (blocker_words(bl, user.lang())) } } } }
            }
            @if !warnings.is_empty() && !b.status.is_released() {
                div.notice.warn id="warnings" {
                    p { strong { (tr!(user.lang(), "release-look")) } }
                    ul { @for w in &warnings { li {
                        (w.test_code) (tr!(user.lang(), "release-out-of-trend")) (user.lang().code_words("rule", w.rule.as_str())) " (" (w.rule.as_str()) "). "
                        a href={"/products/" (record.product.id) "/trends?test_code=" (w.test_code)} { (tr!(user.lang(), "release-trend-chart")) }
                    } } }
                }
            }
            div.grid {
                @if full_ok {
                    form.stack.card method="post" action={"/batches/" (batch_id) "/release"} {
                        h2 { (tr!(user.lang(), "release-heading")) }
                        (csrf(user))
                        label { (tr!(user.lang(), "col-comment")) input type="text" name="comment" value=(kept(|t| &t.comment)); }
                        (meaning_box(Meaning::Released, user.lang()))
                        (password)
                        button type="submit" { (tr!(user.lang(), "release-sign")) }
                    }
                }
                @if conditional_ok {
                    form.stack.card method="post" action={"/batches/" (batch_id) "/release"} {
                        h2 { (tr!(user.lang(), "release-conditional-heading")) }
                        (csrf(user))
                        input type="hidden" name="conditional" value="true";
                        label { (tr!(user.lang(), "release-justification")) textarea name="justification" required { (kept(|t| &t.justification)) } }
                        (meaning_box(Meaning::ConditionallyReleased, user.lang()))
                        (password)
                        button type="submit" { (tr!(user.lang(), "release-conditional-sign")) }
                    }
                }
                @if may_reject {
                    form.stack.card method="post" action={"/batches/" (batch_id) "/reject"} {
                        h2 { (tr!(user.lang(), "release-reject-heading")) }
                        (csrf(user))
                        label { (tr!(user.lang(), "reason-required")) textarea name="reason" required { (kept(|t| &t.reject_reason)) } }
                        (meaning_box(Meaning::Rejected, user.lang()))
                        (password)
                        button.danger type="submit" { (tr!(user.lang(), "release-reject-sign")) }
                    }
                }
                @if may_recall {
                    form.stack.card method="post" action={"/batches/" (batch_id) "/recall"} {
                        h2 { (tr!(user.lang(), "release-recall-heading")) }
                        (csrf(user))
                        label { (tr!(user.lang(), "reason-required")) textarea name="reason" required { (kept(|t| &t.recall_reason)) } }
                        (meaning_box(Meaning::Recalled, user.lang()))
                        (password)
                        button.danger type="submit" { (tr!(user.lang(), "release-recall-sign")) }
                    }
                }
            }
            p { a href={"/batches/" (batch_id)} { (tr!(user.lang(), "back-to-batch")) } }
        },
    ))
}

/// What a refused form had typed (never the password).
#[derive(Debug, Default)]
struct Typed {
    comment: String,
    justification: String,
    reject_reason: String,
    recall_reason: String,
}

/// The QP's page: readiness, release (or conditional), reject, recall.
#[get("/batches/{id}/release")]
pub async fn release_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::Released))?;
    let markup = release_markup(&state, &user, id.into_inner(), None, None).await?;
    Ok(html_page(actix_web::http::StatusCode::OK, markup))
}

/// What the release and disposition forms keep when refused (the
/// command itself is read by `WebUser::command`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DecisionForm {
    csrf: String,
    comment: String,
    justification: String,
    reason: String,
}

async fn after_decision(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    attempt: Result<BatchDetail, AppError>,
    typed: Typed,
) -> Result<HttpResponse, WebError> {
    match attempt {
        Ok(_) => Ok(see_other(format!("/batches/{batch_id}"))),
        Err(e) => {
            let p = refusal(e)?;
            let markup = release_markup(state, user, batch_id, Some(&p), Some(&typed)).await?;
            Ok(html_page(p.status(), markup))
        }
    }
}

/// Signs a release or conditional release.
#[post("/batches/{id}/release")]
pub async fn release_batch(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::Released))?;
    let f: DecisionForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let batch_id = id.into_inner();
    let typed = Typed {
        comment: f.comment,
        justification: f.justification,
        ..Typed::default()
    };
    let rules = state.signing.clone();
    let key = rules.seal.verifying();
    let attempt = user
        .run(&state, &body, &[], move |c, actor, req: ReleaseBatch| {
            // Nobody signs a record changed outside cellqc.
            crate::services::verification::check_batch_record(c, &key, batch_id)?;
            release::release(c, &rules, actor, batch_id, &req)
        })
        .await;
    after_decision(&state, &user, batch_id, attempt, typed).await
}

async fn dispose(
    state: web::Data<AppState>,
    user: WebUser,
    batch_id: Uuid,
    body: web::Bytes,
    what: Disposition,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(what.meaning()))?;
    let f: DecisionForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let typed = match what {
        Disposition::Reject => Typed {
            reject_reason: f.reason,
            ..Typed::default()
        },
        Disposition::Recall => Typed {
            recall_reason: f.reason,
            ..Typed::default()
        },
    };
    let rules = state.signing.clone();
    let attempt = user
        .run(&state, &body, &[], move |c, actor, cmd: DisposeBatch| {
            release::dispose(c, &rules, actor, batch_id, what, &cmd)
        })
        .await;
    after_decision(&state, &user, batch_id, attempt, typed).await
}

/// Signs a rejection.
#[post("/batches/{id}/reject")]
pub async fn reject_batch(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    dispose(state, user, id.into_inner(), body, Disposition::Reject).await
}

/// Signs a recall.
#[post("/batches/{id}/recall")]
pub async fn recall_batch(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    dispose(state, user, id.into_inner(), body, Disposition::Recall).await
}

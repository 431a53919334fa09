//! Reviewing a batch's results with one signing act: each result with its
//! limit, instrument, comment and, for a retest, what it replaces and why;
//! a checkbox per result and one password.

use super::layout::{
    Refusal, csrf, html_page, meaning_choice, outcome, page, read_form, refusal, see_other,
    status_words,
};
use super::session::{WebError, WebUser};
use crate::domain::StoredName;
use crate::domain::record::RecordedResult;
use crate::domain::result::{ResultStatus, ReviewResults};
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::domain::spec::describe_limit;
use crate::error::Problem;
use crate::http::AppState;
use crate::services::batch_record::equipment::{self, Equipment};
use crate::services::batch_record::views::result_views;
use crate::services::batches as batch_svc;
use crate::services::results::{self as result_svc, Decision};
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

/// The form's fields and their labels.
const LABELS: &[(&str, &str)] = &[
    ("result_ids", "label-results"),
    ("decision", "label-decision"),
    ("comment", "label-comment"),
    ("password", "label-password"),
];

/// What the reviewer chose, kept when the signature is refused.
#[derive(Debug, Default, Deserialize)]
pub struct BatchReviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    result_ids: Vec<String>,
    #[serde(default, deserialize_with = "chosen")]
    decision: Option<Decision>,
    #[serde(default)]
    comment: String,
}

/// A choice as typed: one of the offered ones, else none.
fn chosen<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Decision>, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    Ok(s.parse().ok())
}

async fn batch_review_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    problem: Option<&Problem>,
    previous: Option<&BatchReviewForm>,
) -> Result<Markup, WebError> {
    let (record, used) = state
        .db(move |c| {
            let record = batch_svc::record(c, batch_id)?;
            let used = equipment::of(c, &record.results)?;
            Ok((record, used))
        })
        .await?;
    let me = user.0.actor.id;
    let awaiting: Vec<_> = result_views(&record)
        .into_iter()
        .filter(|v| v.status == ResultStatus::Recorded)
        .collect();
    // Nothing is ticked or chosen for the reviewer; a refused form comes
    // back as it was sent.
    let checked =
        |id: Uuid| previous.is_some_and(|p| p.result_ids.iter().any(|s| s == &id.to_string()));
    let chosen = previous.and_then(|p| p.decision);
    let number = &record.batch.batch_number;
    let r = Refusal::new(problem, LABELS, user.lang());
    Ok(page(
        &tr!(user.lang(), "review-batch-title", batch = number.as_str()),
        Some(user),
        html! {
            (r.summary())
            p { (tr!(user.lang(), "col-batch")) " " a href={"/batches/" (batch_id)} { (number) } " · " (record.product.name) " · " (tr!(user.lang(), "spec-version", version = record.spec.version.to_string())) }
            @if awaiting.is_empty() {
                p.muted { (tr!(user.lang(), "review-batch-none")) }
            } @else {
                form.stack.card.wide method="post" action={"/batches/" (batch_id) "/review"} {
                    (csrf(user))
                    (r.at("result_ids"))
                    table.review {
                        thead { tr { th { (tr!(user.lang(), "review-action")) } th { (tr!(user.lang(), "review-col-test-limit")) } th { (tr!(user.lang(), "col-result")) } th { (tr!(user.lang(), "col-performed")) } th { (tr!(user.lang(), "review-col-instrument")) } } }
                        tbody { @for v in &awaiting {
                            @let r = &v.result;
                            @let own = r.performed_by.id == me;
                            tr {
                                td {
                                    @if own {
                                        span.muted { (tr!(user.lang(), "review-own")) }
                                    } @else {
                                        label.check {
                                            input type="checkbox" name="result_ids" value=(r.id) checked[checked(r.id)];
                                            span.visually-hidden { (tr!(user.lang(), "review-action")) " " (r.test_code) }
                                        }
                                    }
                                }
                                td {
                                    strong { (r.test_code) }
                                    @if let Some(t) = record.test(&r.test_code) { " " (t.name) br; span.muted { (tr!(user.lang(), "review-limit")) " " (describe_limit(t)) } }
                                }
                                td { (r.value) " " (r.unit.clone().unwrap_or_default()) " " (outcome(r.outcome, user.lang()))
                                    @if let Some((earlier, deviation)) = record.replaced_by(r.id) {
                                        p.retest {
                                            (tr!(user.lang(), "review-replaces")) " " (earlier.test_code) " " (earlier.value) " · " (user.time(earlier.performed_at))
                                            @if let Some(d) = deviation {
                                                (tr!(user.lang(), "review-retest-after")) (d.title) "”"
                                                @if let Some(c) = d.conclusion { (tr!(user.lang(), "review-concluded")) (status_words(c.as_str(), user.lang())) }
                                                ")"
                                            }
                                            @if let Some(why) = &r.reason { ": " (why) }
                                        }
                                    }
                                }
                                td { (r.performed_by.full_name) br; (user.time(r.performed_at)) }
                                td {
                                    (used_by(r, &used, user))
                                    @if let Some(c) = &r.comment { br; q { (c) } }
                                }
                            }
                        } }
                    }
                    fieldset {
                        legend { (tr!(user.lang(), "review-decision-ticked")) }
                        (decision_choices(chosen, user))
                        (r.at("decision"))
                    }
                    label { (tr!(user.lang(), "review-comment")) textarea name="comment" { (previous.map(|p| p.comment.as_str()).unwrap_or_default()) } (r.at("comment")) }
                    (review_meaning(user))
                    label { (tr!(user.lang(), "signature-password")) input type="password" name="password" required autocomplete="current-password"; (r.at("password")) }
                    button type="submit" { (tr!(user.lang(), "review-sign-ticked")) }
                }
            }
            p { a href="/review" { (tr!(user.lang(), "review-back")) } }
        },
    ))
}

/// The instrument and the material lots a result was recorded with, as
/// stored: the registered instrument (else the name typed with the result),
/// and each lot.
pub(super) fn used_by(r: &RecordedResult, used: &Equipment, user: &WebUser) -> Markup {
    let instrument = match r.instrument_id.and_then(|id| used.instruments.get(&id)) {
        Some((code, name)) => format!("{code} – {name}"),
        None => r
            .instrument
            .clone()
            .unwrap_or_else(|| tr!(user.lang(), "review-no-instrument")),
    };
    html! {
        span.used-instrument { (instrument) }
        @for id in &r.material_ids {
            @if let Some((code, name, lot)) = used.lots.get(id) {
                br; span.used-lot { (code) (tr!(user.lang(), "record-lot-word")) (lot) " – " (name) }
            }
        }
    }
}

/// The two decisions, neither chosen unless `chosen` (a refused form).
pub(super) fn decision_choices(chosen: Option<Decision>, user: &WebUser) -> Markup {
    html! {
        @for d in Decision::ALL {
            label.choice { input type="radio" name="decision" value=(d.as_str()) required checked[chosen == Some(d)]; (d.meaning().statement(user.lang())) }
        }
    }
}

/// What signing states: the statement of the decision chosen.
pub(super) fn review_meaning(user: &WebUser) -> Markup {
    let choices: Vec<(&str, Meaning)> = Decision::ALL
        .iter()
        .map(|d| (d.as_str(), d.meaning()))
        .collect();
    meaning_choice("decision", &choices, user.lang())
}

/// The batch's review page (reviewers).
#[get("/batches/{id}/review")]
pub async fn batch_review_form(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::Reviewed))?;
    let markup = batch_review_markup(&state, &user, id.into_inner(), None, None).await?;
    Ok(html_page(StatusCode::OK, markup))
}

/// Signs the review of every ticked result at once; a refusal (own result,
/// wrong password, nothing ticked) comes back with the choices kept.
#[post("/batches/{id}/review")]
pub async fn batch_review(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::Reviewed))?;
    let f: BatchReviewForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let batch_id = id.into_inner();
    let rules = state.signing.clone();
    let actor = user.0.actor.clone();
    // Nothing ticked or chosen is refused by the command, never assumed.
    let attempt = match user.command::<ReviewResults>(&body, &[]) {
        Err(e) => Err(e),
        Ok(input) => {
            state
                .db(move |c| result_svc::review_results(c, &rules, &actor, &input))
                .await
        }
    };
    match attempt {
        Ok(done) => Ok(see_other(format!(
            "/batches/{batch_id}?reviewed={}",
            done.len()
        ))),
        Err(e) => {
            let p = refusal(e)?;
            let markup = batch_review_markup(&state, &user, batch_id, Some(&p), Some(&f)).await?;
            Ok(html_page(p.status(), markup))
        }
    }
}

//! Recording a result, the review queue and the signed review. A refusal
//! is shown in words next to the form, with what was typed kept.

use super::layout::once_for_form;
use super::layout::{
    Refusal, created_id, csrf, entered, form_key, form_once, html_page, outcome, page, read_form,
    recorded_notice, refusal, see_other, status_words,
};
use super::session::{WebError, WebUser};
use crate::domain::StoredName;
use crate::domain::release::BlockerCode;
use crate::domain::result::ReviewResult;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::domain::spec::describe_limit;
use crate::error::{AppError, Problem};
use crate::http::AppState;
use crate::services::batch_record::equipment;
use crate::services::batch_record::views::BatchDetail;
use crate::services::batches as batch_svc;
use crate::services::results::{self as result_svc, Decision, NewResultInput};
use crate::tr;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

/// The record form's fields and their labels.
const RECORD_LABELS: &[(&str, &str)] = &[
    ("test_code", "label-test"),
    ("value", "label-value"),
    ("unit", "label-unit"),
    ("performed_at", "label-performed-at"),
    ("instrument", "label-instrument"),
    ("instrument_id", "label-registered-instrument"),
    ("material_ids", "label-material-lots"),
    ("comment", "label-comment"),
    ("replaces_result_id", "label-replaces-result"),
    ("reason", "label-reason-for-the-replacement"),
];

async fn record_form_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    problem: Option<&Problem>,
    previous: Option<&RecordForm>,
    asked: &RecordFormQuery,
) -> Result<Markup, WebError> {
    let (record, (usable, lots)) = state
        .db(move |c| Ok((batch_svc::record(c, batch_id)?, usable_now(c)?)))
        .await?;
    let picked_lots: Vec<String> = previous.map(|p| p.material_ids.clone()).unwrap_or_default();
    let detail = BatchDetail::from(&record);
    // Ready for the next test: the one asked for, else the first missing one.
    let next_missing = record
        .readiness()
        .blockers
        .iter()
        .find(|b| b.code == BlockerCode::MissingResult)
        .and_then(|b| b.test_code.clone());
    let chosen = previous
        .map(|p| p.test_code.clone())
        .or_else(|| asked.test.clone())
        .or(next_missing)
        .unwrap_or_default();
    let r = Refusal::new(problem, RECORD_LABELS, user.lang());
    let just_recorded = asked
        .recorded
        .and_then(|r| detail.results.iter().find(|x| x.result.id == r));
    // The instrument as typed; else, when the next test is measured on the
    // kind of instrument the last result used, that instrument (a panel is
    // run on one cytometer). Never for a test of another kind.
    let chosen_kind = record
        .spec
        .tests
        .iter()
        .find(|t| t.code == chosen)
        .and_then(|t| t.instrument_kind.as_deref());
    let picked = match previous {
        Some(p) => p.instrument_id.clone().unwrap_or_default(),
        None => just_recorded
            .and_then(|r| r.result.instrument_id)
            .and_then(|id| usable.iter().find(|i| i.id == id))
            .filter(|i| Some(i.kind.as_str()) == chosen_kind)
            .map(|i| i.id.to_string())
            .unwrap_or_default(),
    };
    // A refused form comes back as it was typed.
    let text = |pick: fn(&RecordForm) -> Option<&str>| entered(previous, pick);
    let replaced = match previous {
        Some(_) => text(|p| p.replaces_result_id.as_deref()),
        None => asked.replaces.map(|r| r.to_string()).unwrap_or_default(),
    };
    // A decided record takes nothing, unless QA opened a correction.
    let corrected: Vec<&str> = record
        .corrected_results()
        .iter()
        .filter_map(|id| record.result(*id))
        .map(|r| r.test_code.as_str())
        .collect();
    let closed = match record.batch.status {
        crate::domain::batch::BatchStatus::Rejected
        | crate::domain::batch::BatchStatus::Recalled => true,
        crate::domain::batch::BatchStatus::Released => corrected.is_empty(),
        _ => false,
    };
    Ok(page(
        &tr!(
            user.lang(),
            "record-title",
            batch = detail.batch.batch_number.as_str()
        ),
        Some(user),
        html! {
            @if let Some(r) = just_recorded { (recorded_notice(&r.result, &tr!(user.lang(), "result-next-test-below"), user.lang())) }
            (r.summary())
            @for test in &corrected {
                div.notice id="correction-under-way" { (tr!(user.lang(), "correction-under-way", test = *test)) }
            }
            @if closed {
                div.notice.error id="record-closed" role="alert" { (user.lang().text("problem-record-closed")) }
            } @else {
            form.stack.card method="post" action={"/batches/" (batch_id) "/results"} {
                (csrf(user))
                (form_key())
                label { (tr!(user.lang(), "col-test"))
                    select name="test_code" required {
                        @for t in &record.spec.tests {
                            option value=(t.code) selected[t.code == chosen] {
                                (t.code) " – " (t.name) (tr!(user.lang(), "record-limit-open")) (describe_limit(t)) ")"
                            }
                        }
                    }
                    (r.at("test_code"))
                }
                // A measured test's value is typed; a test with options is
                // answered by choosing one, in the reader's words, posted as
                // the option itself (app.js follows the chosen test).
                @let with_options = record.spec.tests.iter().any(|t| t.code == chosen && t.options.is_some());
                label.value-text hidden[with_options] { (tr!(user.lang(), "record-value"))
                    input type="text" name="value" required autofocus disabled[with_options] value=(previous.map(|p| p.value.clone()).unwrap_or_default());
                    (r.at("value")) (r.at("unit")) }
                @for t in record.spec.tests.iter().filter(|t| t.options.is_some()) {
                    @let on = t.code == chosen;
                    fieldset.value-options data-test=(t.code) hidden[!on] disabled[!on] {
                        legend { (tr!(user.lang(), "record-value-choose", test = t.code.as_str())) }
                        @for o in t.options.as_deref().unwrap_or_default() {
                            label.choice { input type="radio" name="value_option" value=(o) required checked[on && previous.is_some_and(|p| p.value_option.as_deref() == Some(o.as_str()))]; (option_words(o, user.lang())) }
                        }
                        @if on { (r.at("value")) }
                    }
                }
                label { (tr!(user.lang(), "record-performed-at-open")) (user.zone_name()) ")"
                    input type="datetime-local" name="performed_at" step="1" required
                        value=(previous.map(|p| p.performed_at.clone()).unwrap_or_else(|| user.now_for_form()));
                    (r.at("performed_at")) }
                label { (tr!(user.lang(), "record-instrument"))
                    select name="instrument_id" {
                        option value="" { (tr!(user.lang(), "none")) }
                        @for i in &usable {
                            option value=(i.id) selected[picked == i.id.to_string()] {
                                (i.code) " – " (i.name) " (" (i.kind) ")"
                            }
                        }
                    }
                    (r.at("instrument_id"))
                }
                @if !lots.is_empty() {
                    fieldset { legend { (tr!(user.lang(), "record-lots")) }
                        @for m in &lots {
                            label { input type="checkbox" name="material_ids" value=(m.id) checked[picked_lots.iter().any(|p| *p == m.id.to_string())]; " " (m.code) (tr!(user.lang(), "record-lot-word")) (m.lot_number) " – " (m.name) }
                        }
                        (r.at("material_ids"))
                    }
                }
                label { (tr!(user.lang(), "record-instrument-text")) input type="text" name="instrument" value=(text(|p| p.instrument.as_deref())); (r.at("instrument")) }
                label { (tr!(user.lang(), "col-comment")) textarea name="comment" { (text(|p| p.comment.as_deref())) } (r.at("comment")) }
                label { (tr!(user.lang(), "record-replaces"))
                    select name="replaces_result_id" {
                        option value="" { (tr!(user.lang(), "none")) }
                        @for v in &detail.results {
                            option value=(v.result.id) selected[v.result.id.to_string() == replaced] { (v.result.test_code) " " (v.result.value) " (" (status_words(v.status.as_str(), user.lang())) ")" }
                        }
                    }
                    (r.at("replaces_result_id"))
                }
                label { (tr!(user.lang(), "label-reason-for-the-replacement")) input type="text" name="reason" value=(text(|p| p.reason.as_deref())); (r.at("reason")) }
                button type="submit" { (tr!(user.lang(), "record-save")) }
            }
            }
            p { a href={"/batches/" (batch_id)} { (tr!(user.lang(), "back-to-batch")) } }
        },
    ))
}

/// What a result form offers: the instruments in service now, and the
/// material lots released and in date now.
pub fn usable_now(
    c: &mut diesel::pg::PgConnection,
) -> Result<
    (
        Vec<crate::services::instruments::InstrumentView>,
        Vec<crate::services::materials::MaterialView>,
    ),
    AppError,
> {
    let now = chrono::Utc::now();
    Ok((
        crate::services::instruments::list(
            c,
            None,
            Some(crate::domain::instrument::Status::InService),
        )?,
        crate::services::materials::list(
            c,
            None,
            Some(crate::domain::material::LotStatus::Released),
            None,
        )?
        .into_iter()
        .filter(|m| m.expires_at > now)
        .collect(),
    ))
}

/// The record-result form's address: a test to preselect, the result just saved.
#[derive(Debug, Default, Deserialize)]
pub struct RecordFormQuery {
    test: Option<String>,
    recorded: Option<Uuid>,
    replaces: Option<Uuid>,
}

/// The record-result form (technicians).
#[get("/batches/{id}/results/new")]
pub async fn record_result_form(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    query: web::Query<RecordFormQuery>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::RecordResult)?;
    let markup = record_form_markup(&state, &user, id.into_inner(), None, None, &query).await?;
    Ok(html_page(actix_web::http::StatusCode::OK, markup))
}

/// A qualitative option in the reader's words (`result-option-no-growth`),
/// else as the specification names it.
fn option_words(option: &str, loc: crate::i18n::Locale) -> String {
    let id = format!(
        "result-option-{}",
        option.trim().to_lowercase().replace([' ', '_'], "-")
    );
    if loc.has(&id) {
        loc.text(&id)
    } else {
        option.to_owned()
    }
}

/// The record-result form's fields.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordForm {
    csrf: String,
    form_key: Option<String>,
    test_code: String,
    #[serde(default)]
    value: String,
    /// The option chosen for a test with options (its code).
    value_option: Option<String>,
    performed_at: String,
    instrument: Option<String>,
    instrument_id: Option<String>,
    #[serde(default)]
    material_ids: Vec<String>,
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
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::RecordResult)?;
    // Repeated `material_ids` fields (a checkbox per lot).
    let f: RecordForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let batch_id = id.into_inner();
    // A double submit records the result once and shows the first outcome.
    let once = form_once(
        f.form_key.as_deref(),
        &format!("/batches/{batch_id}/results"),
        &body,
    );
    let attempt = async {
        let performed_at = user.from_form("performed_at", &f.performed_at)?;
        let replaces = match f.replaces_result_id.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(Uuid::parse_str(s).map_err(|_| {
                AppError::invalid_field_said("replaces_result_id", "fe-is-not-a-result")
            })?),
        };
        let instrument_id = match f.instrument_id.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(Uuid::parse_str(s).map_err(|_| {
                AppError::invalid_field_said("instrument_id", "fe-is-not-an-instrument")
            })?),
        };
        let material_ids = f
            .material_ids
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                Uuid::parse_str(s).map_err(|_| {
                    AppError::invalid_field_said("material_ids", "fe-is-not-a-material-lot")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let input = NewResultInput {
            test_code: f.test_code.clone(),
            // The form sends text; as a JSON string it is read exactly as
            // typed. A chosen option is the value itself.
            value: serde_json::to_string(
                f.value_option
                    .as_deref()
                    .filter(|o| !o.is_empty())
                    .unwrap_or(&f.value),
            )?,
            unit: None,
            performed_at,
            instrument: f.instrument.clone(),
            instrument_id,
            material_ids,
            comment: f.comment.clone(),
            replaces_result_id: replaces,
            reason: f.reason.clone(),
        };
        let actor = user.0.actor.clone();
        state
            .db(move |c| {
                let created = once_for_form(c, actor.id, once.as_ref(), |c| {
                    result_svc::record_result(c, &actor, batch_id, &input)
                })?;
                let r = created_id(&created)?;
                let more = batch_svc::record(c, batch_id)?
                    .readiness()
                    .blockers
                    .iter()
                    .any(|b| b.code == BlockerCode::MissingResult);
                Ok((r, more))
            })
            .await
    }
    .await;
    match attempt {
        // At the bench: straight on to the next missing test, if any.
        Ok((r, more)) if more => Ok(see_other(format!(
            "/batches/{batch_id}/results/new?recorded={r}"
        ))),
        Ok((r, _)) => Ok(see_other(format!("/batches/{batch_id}?recorded={r}"))),
        Err(e) => {
            let p = refusal(e)?;
            let markup = record_form_markup(
                &state,
                &user,
                batch_id,
                Some(&p),
                Some(&f),
                &RecordFormQuery::default(),
            )
            .await?;
            Ok(html_page(p.status(), markup))
        }
    }
}

/// Results awaiting review, other people's only.
#[get("/review")]
pub async fn review_queue(
    state: web::Data<AppState>,
    user: WebUser,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::Reviewed))?;
    let me = user.0.actor.id;
    let queue = state
        .db(move |c| result_svc::review_queue(c, me, 200))
        .await?;
    // Batches in the order of their oldest waiting result.
    let mut batches: Vec<(Uuid, &str, usize)> = Vec::new();
    for a in &queue {
        match batches
            .iter_mut()
            .find(|(id, _, _)| *id == a.result.batch_id)
        {
            Some(b) => b.2 += 1,
            None => batches.push((a.result.batch_id, a.batch_number.as_str(), 1)),
        }
    }
    let body = html! {
        @if queue.is_empty() { p.muted { (tr!(user.lang(), "review-queue-empty")) } } @else {
            h2 { (tr!(user.lang(), "review-queue-by-batch")) }
            ul.worklist { @for (id, number, n) in &batches {
                li { a.button href={"/batches/" (id) "/review"} { (tr!(user.lang(), "review-batch-link", batch = *number, n = *n)) } }
            } }
            h2 { (tr!(user.lang(), "review-queue-oldest")) }
            table {
                thead { tr { th { (tr!(user.lang(), "col-batch")) } th { (tr!(user.lang(), "col-test")) } th { (tr!(user.lang(), "col-value")) } th { (tr!(user.lang(), "col-outcome")) } th { (tr!(user.lang(), "col-performed-by")) } th {} } }
                tbody { @for a in &queue {
                    tr {
                        td { a href={"/batches/" (a.result.batch_id)} { (a.batch_number) } }
                        td { (a.result.result.test_code) }
                        td { (a.result.result.value) " " (a.result.result.unit.clone().unwrap_or_default()) }
                        td { (outcome(a.result.result.outcome, user.lang())) }
                        td { (a.result.result.performed_by.full_name) br; (user.time(a.result.result.performed_at)) }
                        td { a href={"/results/" (a.result.result.id) "/review"} { (tr!(user.lang(), "review-action")) } }
                    }
                } }
            }
        }
    };
    Ok(html_page(
        actix_web::http::StatusCode::OK,
        page(&tr!(user.lang(), "nav-review-queue"), Some(&user), body),
    ))
}

async fn review_markup(
    state: &AppState,
    user: &WebUser,
    result_id: Uuid,
    problem: Option<&Problem>,
    comment: &str,
    chosen: Option<Decision>,
) -> Result<Markup, WebError> {
    let (r, used) = state
        .db(move |c| {
            let r = result_svc::get_result(c, result_id)?;
            let used = equipment::of(c, [&r.result])?;
            Ok((r, used))
        })
        .await?;
    let rf = Refusal::new(
        problem,
        &[
            ("decision", "label-decision"),
            ("comment", "label-comment"),
            ("password", "label-password"),
        ],
        user.lang(),
    );
    Ok(page(
        &tr!(
            user.lang(),
            "review-title",
            test = r.result.test_code.as_str(),
            value = r.result.value.as_str()
        ),
        Some(user),
        html! {
            (rf.summary())
            div.card { dl.facts {
                dt { (tr!(user.lang(), "col-test")) } dd { (r.result.test_code) }
                dt { (tr!(user.lang(), "col-value")) } dd { (r.result.value) " " (r.result.unit.clone().unwrap_or_default()) }
                dt { (tr!(user.lang(), "col-outcome")) } dd { (outcome(r.result.outcome, user.lang())) }
                dt { (tr!(user.lang(), "col-status")) } dd { (status_words(r.status.as_str(), user.lang())) }
                dt { (tr!(user.lang(), "col-performed-by")) } dd { (r.result.performed_by.full_name) ", " (user.time(r.result.performed_at)) }
                dt { (tr!(user.lang(), "review-col-used")) } dd { (super::review::used_by(&r.result, &used, user)) }
            } }
            form.stack.card method="post" action={"/results/" (result_id) "/review"} {
                (csrf(user))
                fieldset {
                    legend { (tr!(user.lang(), "col-decision")) }
                    (super::review::decision_choices(chosen, user))
                    (rf.at("decision"))
                }
                label { (tr!(user.lang(), "review-comment")) textarea name="comment" { (comment) } (rf.at("comment")) }
                (super::review::review_meaning(user))
                label { (tr!(user.lang(), "signature-password")) input type="password" name="password" required autocomplete="current-password"; (rf.at("password")) }
                button type="submit" { (tr!(user.lang(), "review-sign")) }
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
    user.require(Action::Sign(Meaning::Reviewed))?;
    let markup = review_markup(&state, &user, id.into_inner(), None, "", None).await?;
    Ok(html_page(actix_web::http::StatusCode::OK, markup))
}

/// The review form as typed, to show it again (the command is read from
/// the same body).
#[derive(Debug, Default, Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    csrf: String,
    /// None when nothing (or nothing known) was chosen.
    #[serde(default, deserialize_with = "chosen")]
    decision: Option<Decision>,
    #[serde(default)]
    comment: Option<String>,
}

/// A choice as typed: one of the offered ones, else none.
fn chosen<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Decision>, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    Ok(s.parse().ok())
}

/// Signs a review; a refusal (own result, wrong password) is shown on the form.
#[post("/results/{id}/review")]
pub async fn review(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::Reviewed))?;
    let f: ReviewForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let result_id = id.into_inner();
    let chosen = f.decision;
    let comment = f.comment.clone().unwrap_or_default();
    let rules = state.signing.clone();
    // Nothing chosen is refused by the command (`decision` is required),
    // never taken as an acceptance.
    let attempt = user
        .run(&state, &body, &[], move |c, actor, input: ReviewResult| {
            result_svc::review_result(c, &rules, actor, result_id, &input)
        })
        .await;
    match attempt {
        Ok(_) => Ok(see_other("/review".to_owned())),
        Err(e) => {
            let p = refusal(e)?;
            let markup =
                review_markup(&state, &user, result_id, Some(&p), &comment, chosen).await?;
            Ok(html_page(p.status(), markup))
        }
    }
}

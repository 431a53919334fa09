//! A batch's deviations: opening one by hand, opening a post-release
//! correction (QA, signed), closing one (QA, signed).

use super::layout::{
    csrf, form_key, form_once, html_page, meaning_box, once_for_form, page, read_form, refusal,
    refusal_box, see_other, status,
};
use super::session::{WebError, WebUser};
use crate::domain::StoredName;
use crate::domain::deviation::{CloseDeviation, OpenDeviation};
use crate::domain::deviation::{DeviationKind, DeviationStatus};
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::Problem;
use crate::http::AppState;
use crate::services::batches as batch_svc;
use crate::services::deviations::{self as dev_svc};
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

async fn deviation_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    problem: Option<&Problem>,
    typed: &Typed,
) -> Result<Markup, WebError> {
    let detail = state.db(move |c| batch_svc::get_batch(c, batch_id)).await?;
    let may_close = user.may(Action::Sign(Meaning::DeviationClosed));
    let may_correct =
        user.may(Action::Sign(Meaning::CorrectionOpened)) && detail.batch.status.is_released();
    let current: Vec<&crate::services::batch_record::views::ResultView> = detail
        .results
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                crate::domain::result::ResultStatus::Recorded
                    | crate::domain::result::ResultStatus::Reviewed
            )
        })
        .collect();
    Ok(page(
        &tr!(
            user.lang(),
            "deviations-title",
            batch = detail.batch.batch_number.as_str()
        ),
        Some(user),
        html! {
            (refusal_box(problem, user.lang()))
            @for d in &detail.deviations {
                div.card {
                    p { strong { (d.deviation.title) } " · " (user.lang().code_words("kind", d.deviation.kind.as_str())) " · " (user.lang().code_words("severity", d.deviation.severity.as_str())) " · " (status(d.deviation.status.as_str(), user.lang())) }
                    p { (d.deviation.description) }
                    @if let Some(c) = &d.deviation.conclusion { p { (tr!(user.lang(), "deviations-concluded")) " " (user.lang().code_words("status", c.as_str())) (tr!(user.lang(), "colon")) (d.deviation.root_cause.clone().unwrap_or_default()) } }
                    @if d.deviation.status == DeviationStatus::Open && may_close {
                        form.stack method="post" action={"/deviations/" (d.deviation.id) "/close"} {
                            (csrf(user))
                            input type="hidden" name="batch_id" value=(batch_id);
                            @let mine = typed.deviation == Some(d.deviation.id);
                            // A conclusion decides: none is chosen for QA.
                            label { (tr!(user.lang(), "label-conclusion")) select name="conclusion" required {
                                option value="" { (tr!(user.lang(), "deviations-choose-conclusion")) }
                                @if d.deviation.kind == DeviationKind::PostReleaseCorrection {
                                    option value="meets_specification" selected[mine && typed.conclusion == "meets_specification"] { (tr!(user.lang(), "deviations-meets")) }
                                    option value="does_not_meet_specification" selected[mine && typed.conclusion == "does_not_meet_specification"] { (tr!(user.lang(), "deviations-does-not-meet")) }
                                } @else {
                                    option value="invalid_test" selected[mine && typed.conclusion == "invalid_test"] { (tr!(user.lang(), "deviations-invalid-test")) }
                                    option value="confirmed_oos" selected[mine && typed.conclusion == "confirmed_oos"] { (tr!(user.lang(), "deviations-confirmed-oos")) }
                                    option value="no_impact" selected[mine && typed.conclusion == "no_impact"] { (tr!(user.lang(), "deviations-no-impact")) }
                                }
                            } }
                            label { (tr!(user.lang(), "deviations-root-cause")) textarea name="root_cause" required { @if mine { (typed.root_cause) } } }
                            (meaning_box(Meaning::DeviationClosed, user.lang()))
                            label { (tr!(user.lang(), "signature-password")) input type="password" name="password" required autocomplete="current-password"; }
                            button type="submit" { (tr!(user.lang(), "deviations-sign-close")) }
                        }
                    }
                }
            }
            @if may_correct {
                form.stack.card method="post" action={"/batches/" (batch_id) "/corrections"} id="correction" {
                    h2 { (tr!(user.lang(), "correction-open")) }
                    p.muted { (tr!(user.lang(), "correction-note")) }
                    (csrf(user))
                    (form_key())
                    label { (tr!(user.lang(), "correction-result")) select name="result_id" required {
                        option value="" { (tr!(user.lang(), "correction-choose")) }
                        @for r in &current {
                            option value=(r.result.id) selected[typed.result_id == Some(r.result.id)] {
                                (r.result.test_code) " = " (r.result.value) @if let Some(u) = &r.result.unit { " " (u) }
                            }
                        }
                    } }
                    label { (tr!(user.lang(), "label-title")) input type="text" name="title" required value=(typed.correction_title); }
                    label { (tr!(user.lang(), "correction-reason")) textarea name="reason" required { (typed.reason) } }
                    (meaning_box(Meaning::CorrectionOpened, user.lang()))
                    label { (tr!(user.lang(), "signature-password")) input type="password" name="password" required autocomplete="current-password"; }
                    button type="submit" { (tr!(user.lang(), "correction-sign")) }
                }
            }
            form.stack.card method="post" action={"/batches/" (batch_id) "/deviations"} {
                h2 { (tr!(user.lang(), "deviations-open")) }
                (csrf(user))
                (form_key())
                label { (tr!(user.lang(), "label-title")) input type="text" name="title" required value=(typed.title); }
                label { (tr!(user.lang(), "label-description")) textarea name="description" required { (typed.description) } }
                label { (tr!(user.lang(), "label-severity")) select name="severity" { @for s in ["minor", "major", "critical"] { option value=(s) selected[typed.severity == s] { (user.lang().code_words("severity", s)) } } } }
                button type="submit" { (tr!(user.lang(), "deviations-open-button")) }
            }
            p { a href={"/batches/" (batch_id)} { (tr!(user.lang(), "back-to-batch")) } }
        },
    ))
}

/// A batch's deviations: open one, or (QA) close one.
#[get("/batches/{id}/deviations")]
pub async fn deviations_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::OpenDeviation)?;
    Ok(html_page(
        StatusCode::OK,
        deviation_markup(&state, &user, id.into_inner(), None, &Typed::default()).await?,
    ))
}

/// The open-deviation form's fields.
#[derive(Debug, Deserialize)]
pub struct OpenForm {
    csrf: String,
    form_key: Option<String>,
    title: String,
    description: String,
    severity: Option<String>,
}

/// Opens a manual deviation.
#[post("/batches/{id}/deviations")]
pub async fn open_deviation(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::OpenDeviation)?;
    let f: OpenForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let batch_id = id.into_inner();
    // A double submit opens the deviation once.
    let once = form_once(
        f.form_key.as_deref(),
        &format!("/batches/{batch_id}/deviations"),
        &body,
    );
    let typed = Typed {
        title: f.title.clone(),
        description: f.description.clone(),
        severity: f.severity.clone().unwrap_or_default(),
        ..Typed::default()
    };
    let opened = user
        .run(&state, &body, &[], move |c, actor, input: OpenDeviation| {
            once_for_form(c, actor.id, once.as_ref(), |c| {
                dev_svc::open_manual(c, actor, batch_id, &input)
            })
        })
        .await;
    match opened {
        Ok(_) => Ok(see_other(format!("/batches/{batch_id}/deviations"))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status(),
                deviation_markup(&state, &user, batch_id, Some(&p), &typed).await?,
            ))
        }
    }
}

/// What a refused form had typed (never the password).
#[derive(Debug, Default)]
pub struct Typed {
    title: String,
    description: String,
    severity: String,
    deviation: Option<Uuid>,
    conclusion: String,
    root_cause: String,
    result_id: Option<Uuid>,
    correction_title: String,
    reason: String,
}

/// The correction form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct CorrectionForm {
    #[serde(default)]
    csrf: String,
    form_key: Option<String>,
    #[serde(default)]
    result_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    reason: String,
}

/// QA opens a post-release correction (signed `correction_opened`).
#[post("/batches/{id}/corrections")]
pub async fn open_correction(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::CorrectionOpened))?;
    let f: CorrectionForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let batch_id = id.into_inner();
    // A double submit opens the correction once, under one signature.
    let once = form_once(
        f.form_key.as_deref(),
        &format!("/batches/{batch_id}/corrections"),
        &body,
    );
    let result_id = Uuid::parse_str(f.result_id.trim()).ok();
    let typed = Typed {
        result_id,
        correction_title: f.title.clone(),
        reason: f.reason.clone(),
        ..Typed::default()
    };
    let rules = state.signing.clone();
    let opened = user
        .run(&state, &body, &[], move |c, actor, input: OpenDeviation| {
            once_for_form(c, actor.id, once.as_ref(), |c| {
                dev_svc::open_correction(c, &rules, actor, batch_id, &input)
            })
        })
        .await;
    match opened {
        Ok(_) => Ok(see_other(format!("/batches/{batch_id}/deviations"))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status(),
                deviation_markup(&state, &user, batch_id, Some(&p), &typed).await?,
            ))
        }
    }
}

/// The close-deviation form's fields, as typed (the command is read from
/// the same body).
#[derive(Debug, Deserialize)]
pub struct CloseForm {
    csrf: String,
    batch_id: Uuid,
    #[serde(default)]
    conclusion: String,
    #[serde(default)]
    root_cause: String,
}

/// Closes a deviation (QA, signed).
#[post("/deviations/{id}/close")]
pub async fn close_deviation(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::DeviationClosed))?;
    let f: CloseForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let dev_id = id.into_inner();
    let batch_id = f.batch_id;
    let typed = Typed {
        deviation: Some(dev_id),
        conclusion: f.conclusion.clone(),
        root_cause: f.root_cause.clone(),
        ..Typed::default()
    };
    let rules = state.signing.clone();
    let closed = user
        .run(
            &state,
            &body,
            &[],
            move |c, actor, input: CloseDeviation| dev_svc::close(c, &rules, actor, dev_id, &input),
        )
        .await;
    match closed {
        Ok(_) => Ok(see_other(format!("/batches/{batch_id}/deviations"))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status(),
                deviation_markup(&state, &user, batch_id, Some(&p), &typed).await?,
            ))
        }
    }
}

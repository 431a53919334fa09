//! `/instruments`: the registry with each instrument's status and due date,
//! one instrument's history, and the forms: register (QA), record a
//! calibration or take it out of service (technician, QA), return it to
//! service (QA, signed).

use super::layout::once_for_form;
use super::layout::{
    Refusal, created_id, csrf, form_key, form_once, html_page, meaning_box, page, read_form,
    refusal, see_other,
};
use super::session::{WebError, WebUser};
use crate::domain::StoredName;
use crate::domain::instrument::Status;
use crate::domain::instrument::{
    OutOfService, RecordCalibration, RegisterInstrument, ReturnToService,
};
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::{AppError, Problem};
use crate::http::AppState;
use crate::services::instruments::{self as svc};
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{Duration, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

fn status_badge(s: Status, loc: crate::i18n::Locale) -> Markup {
    html! { span class={"instrument " (s.as_str())} { (loc.code_words("status", s.as_str())) } }
}

const REGISTER_LABELS: &[(&str, &str)] = &[
    ("code", "label-code"),
    ("name", "label-name"),
    ("kind", "label-kind"),
    ("location", "label-location"),
];

async fn list_markup(
    state: &AppState,
    user: &WebUser,
    problem: Option<&Problem>,
    typed: Option<&RegisterForm>,
) -> Result<Markup, WebError> {
    let list = state.db(|c| svc::list(c, None, None)).await?;
    let soon = Utc::now() + Duration::days(30);
    let r = Refusal::new(problem, REGISTER_LABELS, user.lang());
    Ok(page(
        &tr!(user.lang(), "nav-instruments"),
        Some(user),
        html! {
            (r.summary())
            @if list.is_empty() { p.muted { (tr!(user.lang(), "instrument-none")) } } @else {
                table {
                    thead { tr { th { (tr!(user.lang(), "label-code")) } th { (tr!(user.lang(), "label-name")) } th { (tr!(user.lang(), "label-kind")) } th { (tr!(user.lang(), "label-location")) } th { (tr!(user.lang(), "col-status")) } th { (tr!(user.lang(), "instrument-col-valid")) } } }
                    tbody { @for i in &list { tr {
                        td { a href={"/instruments/" (i.id)} { (i.code) } }
                        td { (i.name) } td { (i.kind) } td { (i.location.as_deref().unwrap_or("")) }
                        td { (status_badge(i.status, user.lang())) }
                        td { @match i.calibration_valid_until {
                            Some(u) => span class=(if u < soon { "due soon" } else { "due" }) { (user.time(u)) },
                            None => span.muted { (tr!(user.lang(), "instrument-never")) },
                        } }
                    } } }
                }
            }
            @if user.may(Action::RegisterInstruments) {
                form.stack.card method="post" action="/instruments" {
                    h2 { (tr!(user.lang(), "instrument-register-heading")) }
                    (csrf(user))
                    (form_key())
                    // A refused form comes back as it was typed.
                    @let t = |pick: fn(&RegisterForm) -> &str| typed.map(pick).unwrap_or_default().to_owned();
                    label { (tr!(user.lang(), "instrument-code")) input type="text" name="code" required value=(t(|f| &f.code)); (r.at("code")) }
                    label { (tr!(user.lang(), "label-name")) input type="text" name="name" required value=(t(|f| &f.name)); (r.at("name")) }
                    label { (tr!(user.lang(), "instrument-kind")) input type="text" name="kind" required value=(t(|f| &f.kind)); (r.at("kind")) }
                    label { (tr!(user.lang(), "label-location")) input type="text" name="location" value=(t(|f| &f.location)); (r.at("location")) }
                    button type="submit" { (tr!(user.lang(), "instrument-register")) }
                }
            }
        },
    ))
}

/// The registry.
#[get("/instruments")]
pub async fn list_page(
    state: web::Data<AppState>,
    user: WebUser,
) -> Result<HttpResponse, WebError> {
    Ok(html_page(
        StatusCode::OK,
        list_markup(&state, &user, None, None).await?,
    ))
}

/// The register form.
#[derive(Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    form_key: Option<String>,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    location: String,
}

/// Registers an instrument (QA).
#[post("/instruments")]
pub async fn register(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::RegisterInstruments)?;
    let f: RegisterForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    // A double submit registers the instrument once and shows it.
    let once = form_once(f.form_key.as_deref(), "/instruments", &body);
    let registered = user
        .run(
            &state,
            &body,
            &[],
            move |c, actor, input: RegisterInstrument| {
                let created = once_for_form(c, actor.id, once.as_ref(), |c| {
                    svc::register(c, actor, &input)
                })?;
                created_id(&created)
            },
        )
        .await;
    match registered {
        Ok(id) => Ok(see_other(format!("/instruments/{id}"))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status(),
                list_markup(&state, &user, Some(&p), Some(&f)).await?,
            ))
        }
    }
}

const EVENT_LABELS: &[(&str, &str)] = &[
    ("performed_at", "label-performed-at"),
    ("outcome", "label-outcome"),
    ("valid_until", "label-valid-until"),
    ("certificate", "label-certificate"),
    ("notes", "label-notes"),
    ("reason", "label-reason"),
    ("password", "label-your-password"),
];

/// Which of an instrument's forms was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Calibration,
    OutOfService,
    ReturnToService,
}

async fn one_markup(
    state: &AppState,
    user: &WebUser,
    id: Uuid,
    problem: Option<&Problem>,
    typed: Option<(EventKind, &EventForm)>,
) -> Result<Markup, WebError> {
    let i = state.db(move |c| svc::get(c, id)).await?;
    // A refused form comes back as it was typed (the password aside).
    let t = |kind: EventKind, pick: fn(&EventForm) -> &str| -> String {
        typed
            .filter(|(k, _)| *k == kind)
            .map(|(_, f)| pick(f).to_owned())
            .unwrap_or_default()
    };
    let performed_at = Some(t(EventKind::Calibration, |f| &f.performed_at))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| user.now_for_form());
    let r = Refusal::new(problem, EVENT_LABELS, user.lang());
    let maintains = user.may(Action::MaintainInstruments);
    let out = matches!(i.status, Status::OutOfService | Status::FailedCalibration);
    Ok(page(
        &tr!(user.lang(), "instrument-title", code = i.code.as_str()),
        Some(user),
        html! {
            (r.summary())
            p { (i.name) " · " (i.kind) @if let Some(l) = &i.location { " · " (l) } " · " (status_badge(i.status, user.lang()))
                @if let Some(u) = i.calibration_valid_until { " · " (tr!(user.lang(), "instrument-valid-until")) " " (user.time(u)) } }
            h2 { (tr!(user.lang(), "batch-history")) }
            table {
                thead { tr { th { (tr!(user.lang(), "col-when")) } th { (tr!(user.lang(), "instrument-col-what")) } th { (tr!(user.lang(), "instrument-col-details")) } } }
                tbody { @for e in i.history.as_deref().unwrap_or_default() { tr {
                    td { (user.time(e.at)) }
                    td { @match (e.kind.as_str(), e.outcome.as_deref()) {
                        ("calibration", Some("pass")) => span.pass { (tr!(user.lang(), "instrument-cal-passed")) },
                        ("calibration", _) => span.fail { (tr!(user.lang(), "instrument-cal-failed")) },
                        ("out_of_service", _) => (tr!(user.lang(), "instrument-taken-out")),
                        _ => (tr!(user.lang(), "instrument-returned")),
                    } }
                    td {
                        @if let Some(u) = e.valid_until { (tr!(user.lang(), "home-until")) " " (user.time(u)) " " }
                        @if let Some(c) = &e.certificate { (tr!(user.lang(), "label-certificate")) " " (c) " " }
                        @if let Some(n) = &e.notes { (n) " " }
                        @if let Some(why) = &e.reason { (why) }
                    }
                } } }
            }
            @if maintains {
                form.stack.card method="post" action={"/instruments/" (i.id) "/calibrations"} {
                    h2 { (tr!(user.lang(), "instrument-record-cal")) }
                    (csrf(user))
                    (form_key())
                    label { (tr!(user.lang(), "instrument-performed-at", zone = user.zone_name())) input type="datetime-local" name="performed_at" step="1" required value=(performed_at); (r.at("performed_at")) }
                    label { (tr!(user.lang(), "col-outcome")) select name="outcome" { option value="pass" { (tr!(user.lang(), "instrument-passed")) } option value="fail" selected[t(EventKind::Calibration, |f| &f.outcome) == "fail"] { (tr!(user.lang(), "instrument-failed")) } } (r.at("outcome")) }
                    label { (tr!(user.lang(), "qual-valid-until", zone = user.zone_name())) input type="datetime-local" name="valid_until" step="1" required value=(t(EventKind::Calibration, |f| &f.valid_until)); (r.at("valid_until")) }
                    label { (tr!(user.lang(), "label-certificate")) input type="text" name="certificate" value=(t(EventKind::Calibration, |f| &f.certificate)); (r.at("certificate")) }
                    label { (tr!(user.lang(), "label-notes")) textarea name="notes" { (t(EventKind::Calibration, |f| &f.notes)) } (r.at("notes")) }
                    button type="submit" { (tr!(user.lang(), "instrument-record-cal-button")) }
                }
                @if !out {
                    form.stack.card method="post" action={"/instruments/" (i.id) "/out-of-service"} {
                        h2 { (tr!(user.lang(), "instrument-take-out")) }
                        (csrf(user))
                        label { (tr!(user.lang(), "label-reason")) textarea name="reason" required { (t(EventKind::OutOfService, |f| &f.reason)) } (r.at("reason")) }
                        button.danger type="submit" { (tr!(user.lang(), "instrument-take-out-now")) }
                    }
                }
            }
            @if out && user.may(Action::Sign(Meaning::InstrumentReturned)) {
                form.stack.card method="post" action={"/instruments/" (i.id) "/return-to-service"} {
                    h2 { (tr!(user.lang(), "instrument-return")) }
                    (csrf(user))
                    label { (tr!(user.lang(), "label-reason")) textarea name="reason" required { (t(EventKind::ReturnToService, |f| &f.reason)) } (r.at("reason")) }
                    (meaning_box(Meaning::InstrumentReturned, user.lang()))
                    label { (tr!(user.lang(), "label-your-password")) input type="password" name="password" required autocomplete="current-password"; (r.at("password")) }
                    button type="submit" { (tr!(user.lang(), "instrument-return-sign")) }
                }
            }
            p { a href="/instruments" { (tr!(user.lang(), "instrument-back")) } }
        },
    ))
}

/// One instrument.
#[get("/instruments/{id}")]
pub async fn one_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    Ok(html_page(
        StatusCode::OK,
        one_markup(&state, &user, id.into_inner(), None, None).await?,
    ))
}

/// Every instrument form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct EventForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    form_key: Option<String>,
    #[serde(default)]
    performed_at: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    valid_until: String,
    #[serde(default)]
    certificate: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    reason: String,
}

async fn after(
    state: &AppState,
    user: &WebUser,
    id: Uuid,
    sent: (EventKind, &EventForm),
    outcome: Result<(), AppError>,
) -> Result<HttpResponse, WebError> {
    match outcome {
        Ok(()) => Ok(see_other(format!("/instruments/{id}"))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status(),
                one_markup(state, user, id, Some(&p), Some(sent)).await?,
            ))
        }
    }
}

/// Records a calibration (technician, QA).
#[post("/instruments/{id}/calibrations")]
pub async fn calibrate(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::MaintainInstruments)?;
    let f: EventForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let id = id.into_inner();
    // A double submit records the calibration once.
    let once = form_once(
        f.form_key.as_deref(),
        &format!("/instruments/{id}/calibrations"),
        &body,
    );
    let outcome = user
        .run(
            &state,
            &body,
            &["performed_at", "valid_until"],
            move |c, actor, input: RecordCalibration| {
                once_for_form(c, actor.id, once.as_ref(), |c| {
                    svc::calibrate(c, actor, id, &input)
                })
            },
        )
        .await
        .map(|_| ());
    after(&state, &user, id, (EventKind::Calibration, &f), outcome).await
}

/// Takes an instrument out of service (technician, QA).
#[post("/instruments/{id}/out-of-service")]
pub async fn out_of_service(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::MaintainInstruments)?;
    let f: EventForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let id = id.into_inner();
    let outcome = user
        .run(&state, &body, &[], move |c, actor, cmd: OutOfService| {
            svc::take_out_of_service(c, actor, id, &cmd)
        })
        .await
        .map(|_| ());
    after(&state, &user, id, (EventKind::OutOfService, &f), outcome).await
}

/// Returns an instrument to service (QA, signed).
#[post("/instruments/{id}/return-to-service")]
pub async fn return_to_service(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::InstrumentReturned))?;
    let f: EventForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let (id, rules) = (id.into_inner(), state.signing.clone());
    let outcome = user
        .run(&state, &body, &[], move |c, actor, cmd: ReturnToService| {
            svc::return_to_service(c, &rules, actor, id, &cmd)
        })
        .await
        .map(|_| ());
    after(&state, &user, id, (EventKind::ReturnToService, &f), outcome).await
}

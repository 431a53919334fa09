//! Pages for custody events, deviations and user management.

use super::layout::{
    csrf, html_page, meaning_box, page, refusal, refusal_box, see_other, status, time,
};
use super::session::{WebError, WebUser};
use crate::app::AppState;
use crate::domain::roles::Role;
use crate::domain::signature::Meaning;
use crate::error::{AppError, Problem};
use crate::services::PageRequest;
use crate::services::batches as batch_svc;
use crate::services::custody::{self as custody_svc, NewCustodyInput};
use crate::services::deviations::{self as dev_svc, NewDeviationInput};
use crate::services::users::{self as user_svc, NewUserInput, UserPatch};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{NaiveDateTime, TimeZone, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

const EVENTS: [&str; 6] = [
    "received",
    "stored",
    "shipped",
    "delivered",
    "administered",
    "destroyed",
];

async fn custody_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    problem: Option<&Problem>,
) -> Result<Markup, WebError> {
    let detail = state.db(move |c| batch_svc::get_batch(c, batch_id)).await?;
    Ok(page(
        &format!("Custody · {}", detail.batch.batch_number),
        Some(user),
        html! {
            (refusal_box(problem))
            ol { @for e in &detail.custody { li { strong { (e.event) } " · " (time(e.occurred_at)) " · " (e.location) } } }
            form.stack.card method="post" action={"/batches/" (batch_id) "/custody"} {
                (csrf(user))
                label { "Event" select name="event" { @for e in EVENTS { option value=(e) { (e) } } } }
                label { "Occurred at (UTC)" input type="datetime-local" name="occurred_at" required value=(Utc::now().format("%Y-%m-%dT%H:%M")); }
                label { "Location" input type="text" name="location" required; }
                label { "Party (who holds it)" input type="text" name="party" required; }
                label { "Temperature (°C)" input type="text" name="temperature_c" inputmode="decimal"; }
                label { "Container id" input type="text" name="container_id"; }
                label { "Recipient id (administration only)" input type="text" name="recipient_id"; }
                label { input type="checkbox" name="internal" value="true"; " Internal move (within the facility)" }
                label { "Notes" textarea name="notes" {} }
                button type="submit" { "Record the event" }
            }
            p { a href={"/batches/" (batch_id)} { "Back to the batch" } }
        },
    ))
}

/// The custody event form (technicians, QA).
#[get("/batches/{id}/custody/new")]
pub async fn custody_form(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Technician, Role::Qa])?;
    Ok(html_page(
        StatusCode::OK,
        custody_markup(&state, &user, id.into_inner(), None).await?,
    ))
}

/// The custody form's fields.
#[derive(Debug, Deserialize)]
pub struct CustodyForm {
    csrf: String,
    event: String,
    occurred_at: String,
    location: String,
    party: String,
    temperature_c: Option<String>,
    container_id: Option<String>,
    recipient_id: Option<String>,
    internal: Option<String>,
    notes: Option<String>,
}

/// Records a custody event.
#[post("/batches/{id}/custody")]
pub async fn record_custody(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<CustodyForm>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Technician, Role::Qa])?;
    user.check_csrf(&form.csrf)?;
    let batch_id = id.into_inner();
    let f = form.into_inner();
    let attempt = async {
        let occurred_at = NaiveDateTime::parse_from_str(&f.occurred_at, "%Y-%m-%dT%H:%M")
            .map(|n| Utc.from_utc_datetime(&n))
            .map_err(|_| AppError::invalid_field("occurred_at", "is not a date and time (UTC)"))?;
        let input = NewCustodyInput {
            event: f.event.clone(),
            occurred_at,
            location: f.location.clone(),
            party: f.party.clone(),
            temperature_c: f
                .temperature_c
                .as_deref()
                .filter(|t| !t.trim().is_empty())
                .map(|t| serde_json::to_string(t.trim()))
                .transpose()?,
            container_id: f.container_id.clone(),
            recipient_id: f.recipient_id.clone(),
            internal: f.internal.as_deref() == Some("true"),
            notes: f.notes.clone(),
        };
        let actor = user.0.actor.clone();
        state
            .db(move |c| custody_svc::record_event(c, &actor, batch_id, &input))
            .await
    }
    .await;
    match attempt {
        Ok(_) => Ok(see_other(format!("/batches/{batch_id}"))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status,
                custody_markup(&state, &user, batch_id, Some(&p)).await?,
            ))
        }
    }
}

async fn deviation_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    problem: Option<&Problem>,
) -> Result<Markup, WebError> {
    let detail = state.db(move |c| batch_svc::get_batch(c, batch_id)).await?;
    let is_qa = user.0.actor.has(Role::Qa);
    Ok(page(
        &format!("Deviations · {}", detail.batch.batch_number),
        Some(user),
        html! {
            (refusal_box(problem))
            @for d in &detail.deviations {
                div.card {
                    p { strong { (d.title) } " · " (d.kind) " · " (d.severity) " · " (status(&d.status)) }
                    p { (d.description) }
                    @if let Some(c) = &d.conclusion { p { "Concluded " (c) ": " (d.root_cause.clone().unwrap_or_default()) } }
                    @if d.status == "open" && is_qa {
                        form.stack method="post" action={"/deviations/" (d.id) "/close"} {
                            (csrf(user))
                            input type="hidden" name="batch_id" value=(batch_id);
                            label { "Conclusion" select name="conclusion" {
                                option value="invalid_test" { "invalid test (an assignable cause invalidates the result)" }
                                option value="confirmed_oos" { "confirmed OOS (the batch can only be rejected)" }
                                option value="no_impact" { "no impact" }
                            } }
                            label { "Root cause (required)" textarea name="root_cause" required {} }
                            (meaning_box(Meaning::DeviationClosed))
                            label { "Your password (electronic signature)" input type="password" name="password" required autocomplete="current-password"; }
                            button type="submit" { "Sign and close" }
                        }
                    }
                }
            }
            form.stack.card method="post" action={"/batches/" (batch_id) "/deviations"} {
                h2 { "Open a deviation" }
                (csrf(user))
                label { "Title" input type="text" name="title" required; }
                label { "Description" textarea name="description" required {} }
                label { "Severity" select name="severity" { option { "minor" } option { "major" } option { "critical" } } }
                button type="submit" { "Open the deviation" }
            }
            p { a href={"/batches/" (batch_id)} { "Back to the batch" } }
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
    user.require(&[Role::Technician, Role::Reviewer, Role::Qa])?;
    Ok(html_page(
        StatusCode::OK,
        deviation_markup(&state, &user, id.into_inner(), None).await?,
    ))
}

/// The open-deviation form's fields.
#[derive(Debug, Deserialize)]
pub struct OpenForm {
    csrf: String,
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
    form: web::Form<OpenForm>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Technician, Role::Reviewer, Role::Qa])?;
    user.check_csrf(&form.csrf)?;
    let batch_id = id.into_inner();
    let f = form.into_inner();
    let input = NewDeviationInput {
        title: f.title,
        description: f.description,
        severity: f.severity,
    };
    let actor = user.0.actor.clone();
    match state
        .db(move |c| dev_svc::open_manual(c, &actor, batch_id, &input))
        .await
    {
        Ok(_) => Ok(see_other(format!("/batches/{batch_id}/deviations"))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status,
                deviation_markup(&state, &user, batch_id, Some(&p)).await?,
            ))
        }
    }
}

/// The close-deviation form's fields.
#[derive(Debug, Deserialize)]
pub struct CloseForm {
    csrf: String,
    batch_id: Uuid,
    conclusion: String,
    root_cause: String,
    password: String,
}

/// Closes a deviation (QA, signed).
#[post("/deviations/{id}/close")]
pub async fn close_deviation(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<CloseForm>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Qa])?;
    user.check_csrf(&form.csrf)?;
    let dev_id = id.into_inner();
    let f = form.into_inner();
    let batch_id = f.batch_id;
    let lockout = state.auth.lockout;
    let actor = user.0.actor.clone();
    match state
        .db(move |c| {
            dev_svc::close(
                c,
                lockout,
                &actor,
                dev_id,
                &f.conclusion,
                &f.root_cause,
                &f.password,
            )
        })
        .await
    {
        Ok(_) => Ok(see_other(format!("/batches/{batch_id}/deviations"))),
        Err(e) => {
            let p = refusal(e)?;
            if p.code == "token_revoked" {
                return Err(WebError::SignIn);
            }
            Ok(html_page(
                p.status,
                deviation_markup(&state, &user, batch_id, Some(&p)).await?,
            ))
        }
    }
}

async fn users_markup(
    state: &AppState,
    user: &WebUser,
    problem: Option<&Problem>,
) -> Result<Markup, WebError> {
    let list = state
        .db(|c| {
            user_svc::list_users(
                c,
                PageRequest {
                    limit: 500,
                    after: None,
                },
            )
        })
        .await?;
    Ok(page(
        "Users",
        Some(user),
        html! {
            (refusal_box(problem))
            table {
                thead { tr { th { "Username" } th { "Name" } th { "Email" } th { "Roles" } th { "State" } th {} } }
                tbody { @for u in &list.items {
                    tr {
                        td { (u.username) } td { (u.full_name) } td { (u.email) } td { (u.roles.join(", ")) }
                        td { @if !u.active { "deactivated" } @else if u.locked { "locked" } @else { "active" } }
                        td {
                            @if u.locked {
                                form method="post" action={"/users/" (u.id) "/unlock"} { (csrf(user)) button type="submit" { "Unlock" } }
                            }
                            @if u.active && u.id != user.0.actor.id {
                                form method="post" action={"/users/" (u.id) "/deactivate"} { (csrf(user)) button.danger type="submit" { "Deactivate" } }
                            }
                        }
                    }
                } }
            }
            form.stack.card method="post" action="/users" {
                h2 { "New user" }
                (csrf(user))
                label { "Username" input type="text" name="username" required; }
                label { "Full name (printed on signatures)" input type="text" name="full_name" required; }
                label { "Email" input type="email" name="email" required; }
                fieldset { legend { "Roles" }
                    @for r in Role::ALL { label { input type="checkbox" name="roles" value=(r.as_str()); " " (r.as_str()) } }
                }
                label { "Initial password (12 to 128 characters)" input type="password" name="password" required autocomplete="new-password"; }
                button type="submit" { "Create the user" }
            }
        },
    ))
}

/// User management (admins).
#[get("/users")]
pub async fn users_page(
    state: web::Data<AppState>,
    user: WebUser,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Admin])?;
    Ok(html_page(
        StatusCode::OK,
        users_markup(&state, &user, None).await?,
    ))
}

/// Creates a user. The roles arrive as repeated `roles=` fields.
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Admin])?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    user.check_csrf(&get("csrf"))?;
    let input = NewUserInput {
        username: get("username"),
        full_name: get("full_name"),
        email: get("email"),
        roles: pairs
            .iter()
            .filter(|(n, _)| n == "roles")
            .map(|(_, v)| v.clone())
            .collect(),
        password: get("password"),
    };
    let actor = user.0.actor.clone();
    match state
        .db(move |c| user_svc::create_user(c, Some(&actor), &input, None))
        .await
    {
        Ok(_) => Ok(see_other("/users".to_owned())),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status,
                users_markup(&state, &user, Some(&p)).await?,
            ))
        }
    }
}

/// A form with only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Unlocks a user.
#[post("/users/{id}/unlock")]
pub async fn unlock_user(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Admin])?;
    user.check_csrf(&form.csrf)?;
    let (target, actor) = (id.into_inner(), user.0.actor.clone());
    state
        .db(move |c| user_svc::unlock_user(c, &actor, target))
        .await?;
    Ok(see_other("/users".to_owned()))
}

/// Deactivates a user (their sessions end at once; the username is never reused).
#[post("/users/{id}/deactivate")]
pub async fn deactivate_user(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    user.require(&[Role::Admin])?;
    user.check_csrf(&form.csrf)?;
    let (target, actor) = (id.into_inner(), user.0.actor.clone());
    let patch = UserPatch {
        active: Some(false),
        ..UserPatch::default()
    };
    match state
        .db(move |c| user_svc::update_user(c, &actor, target, &patch))
        .await
    {
        Ok(_) => Ok(see_other("/users".to_owned())),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status,
                users_markup(&state, &user, Some(&p)).await?,
            ))
        }
    }
}

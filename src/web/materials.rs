//! `/materials`: lots with their status and expiry, where each was used,
//! and the forms: receive (technician, QA), release and reject (QA, signed).

use super::layout::{Refusal, csrf, html_page, meaning_box, page, refusal, see_other};
use super::session::{WebError, WebUser};
use crate::app::AppState;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::{AppError, Problem};
use crate::services::materials::{self as svc, NewMaterial};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

const LABELS: &[(&str, &str)] = &[
    ("code", "label-material-code"),
    ("name", "label-name"),
    ("lot_number", "label-lot-number"),
    ("supplier", "label-supplier"),
    ("kind", "label-kind"),
    ("expires_at", "label-expires"),
    ("reason", "label-reason"),
    ("password", "label-your-password"),
];

fn status_badge(s: &str) -> Markup {
    let class = match s {
        "released" => "in_service",
        "quarantine" => "calibration_due",
        _ => "out_of_service",
    };
    html! { span class={"instrument " (class)} { (s) } }
}

async fn list_markup(
    state: &AppState,
    user: &WebUser,
    problem: Option<&Problem>,
) -> Result<Markup, WebError> {
    let list = state.db(|c| svc::list(c, None, None, None)).await?;
    let r = Refusal::new(problem, LABELS, user.lang());
    Ok(page(
        "Materials",
        Some(user),
        html! {
            (r.summary())
            @if list.is_empty() { p.muted { "No material lot is received yet." } } @else {
                table {
                    thead { tr { th { "Material" } th { "Lot" } th { "Kind" } th { "Supplier" } th { "Expires" } th { "Status" } } }
                    tbody { @for m in &list { tr {
                        td { strong { (m.code) } " " (m.name) }
                        td { a href={"/materials/" (m.id)} { (m.lot_number) } }
                        td { (m.kind.replace('_', " ")) }
                        td { (m.supplier.as_deref().unwrap_or("")) }
                        td { (user.time(m.expires_at)) }
                        td { (status_badge(&m.status)) }
                    } } }
                }
            }
            @if user.may(Action::ReceiveMaterials) {
                form.stack.card method="post" action="/materials" {
                    h2 { "Receive a lot (into quarantine)" }
                    (csrf(user))
                    label { "Material code" input type="text" name="code" required; (r.at("code")) }
                    label { "Name" input type="text" name="name" required; (r.at("name")) }
                    label { "Lot number" input type="text" name="lot_number" required; (r.at("lot_number")) }
                    label { "Supplier" input type="text" name="supplier"; (r.at("supplier")) }
                    label { "Kind" select name="kind" { option value="reagent" { "reagent" } option value="consumable" { "consumable" } option value="raw_material" { "raw material" } } (r.at("kind")) }
                    label { "Expires (" (user.zone_name()) ")" input type="datetime-local" name="expires_at" step="1" required; (r.at("expires_at")) }
                    button type="submit" { "Receive" }
                }
            }
        },
    ))
}

/// The lots.
#[get("/materials")]
pub async fn list_page(
    state: web::Data<AppState>,
    user: WebUser,
) -> Result<HttpResponse, WebError> {
    Ok(html_page(
        StatusCode::OK,
        list_markup(&state, &user, None).await?,
    ))
}

/// Every material form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct MaterialForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    lot_number: String,
    #[serde(default)]
    supplier: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    expires_at: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    password: String,
}

/// Receives a lot (technician, QA).
#[post("/materials")]
pub async fn receive(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ReceiveMaterials)?;
    let f: MaterialForm = serde_html_form::from_bytes(&body).unwrap_or_default();
    user.check_csrf(&f.csrf)?;
    let actor = user.0.actor.clone();
    let outcome = match user.from_form("expires_at", &f.expires_at) {
        Err(e) => Err(e),
        Ok(expires_at) => {
            let input = NewMaterial {
                code: f.code,
                name: f.name,
                lot_number: f.lot_number,
                supplier: Some(f.supplier).filter(|s| !s.trim().is_empty()),
                kind: f.kind,
                expires_at,
            };
            state.db(move |c| svc::receive(c, &actor, &input)).await
        }
    };
    match outcome {
        Ok(m) => Ok(see_other(format!("/materials/{}", m.id))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status,
                list_markup(&state, &user, Some(&p)).await?,
            ))
        }
    }
}

async fn one_markup(
    state: &AppState,
    user: &WebUser,
    id: Uuid,
    problem: Option<&Problem>,
) -> Result<Markup, WebError> {
    let (m, used) = state
        .db(move |c| Ok((svc::get(c, id)?, svc::where_used(c, id)?)))
        .await?;
    let r = Refusal::new(problem, LABELS, user.lang());
    Ok(page(
        &format!("{} lot {}", m.code, m.lot_number),
        Some(user),
        html! {
            (r.summary())
            p { (m.name) " · " (m.kind.replace('_', " ")) @if let Some(s) = &m.supplier { " · " (s) } " · expires " (user.time(m.expires_at)) " · " (status_badge(&m.status)) }
            @if let Some(why) = &m.reject_reason { p.fail { "Rejected: " (why) } }
            h2 { "Where used (" (used.len()) ")" }
            @if used.is_empty() { p.muted { "Not used in any batch." } } @else {
                table {
                    thead { tr { th { "Batch" } th { "Status" } th { "How" } } }
                    tbody { @for w in &used { tr {
                        td { a href={"/batches/" (w.batch_id)} { (w.batch_number) } }
                        td { (w.status.replace('_', " ")) }
                        td { @if w.via == "batch" { "in manufacture" } @else { "in " (w.result_ids.len()) " test result(s)" } }
                    } } }
                }
            }
            @if m.status == "quarantine" && user.may(Action::Sign(Meaning::MaterialReleased)) {
                form.stack.card method="post" action={"/materials/" (m.id) "/release"} {
                    h2 { "Release" }
                    (csrf(user))
                    (meaning_box(Meaning::MaterialReleased, user.lang()))
                    label { "Your password" input type="password" name="password" required autocomplete="current-password"; (r.at("password")) }
                    button type="submit" { "Release and sign" }
                }
            }
            @if m.status != "rejected" && user.may(Action::Sign(Meaning::MaterialRejected)) {
                form.stack.card method="post" action={"/materials/" (m.id) "/reject"} {
                    h2 { "Reject" }
                    (csrf(user))
                    p.muted { "Every batch that used this lot gets an impact deviation; a released one is critical and QA is emailed at once." }
                    label { "Reason" textarea name="reason" required {} (r.at("reason")) }
                    (meaning_box(Meaning::MaterialRejected, user.lang()))
                    label { "Your password" input type="password" name="password" required autocomplete="current-password"; }
                    button.danger type="submit" { "Reject and sign" }
                }
            }
            p { a href="/materials" { "Back to the materials" } }
        },
    ))
}

/// One lot and where it was used.
#[get("/materials/{id}")]
pub async fn one_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    Ok(html_page(
        StatusCode::OK,
        one_markup(&state, &user, id.into_inner(), None).await?,
    ))
}

async fn after(
    state: &AppState,
    user: &WebUser,
    id: Uuid,
    outcome: Result<(), AppError>,
) -> Result<HttpResponse, WebError> {
    match outcome {
        Ok(()) => Ok(see_other(format!("/materials/{id}"))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status,
                one_markup(state, user, id, Some(&p)).await?,
            ))
        }
    }
}

/// Releases a lot (QA, signed).
#[post("/materials/{id}/release")]
pub async fn release(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::MaterialReleased))?;
    let f: MaterialForm = serde_html_form::from_bytes(&body).unwrap_or_default();
    user.check_csrf(&f.csrf)?;
    let (id, actor, lockout) = (id.into_inner(), user.0.actor.clone(), state.auth.lockout);
    let outcome = state
        .db(move |c| svc::release(c, lockout, &actor, id, &f.password))
        .await
        .map(|_| ());
    after(&state, &user, id, outcome).await
}

/// Rejects a lot (QA, signed).
#[post("/materials/{id}/reject")]
pub async fn reject(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::MaterialRejected))?;
    let f: MaterialForm = serde_html_form::from_bytes(&body).unwrap_or_default();
    user.check_csrf(&f.csrf)?;
    let (id, actor, lockout) = (id.into_inner(), user.0.actor.clone(), state.auth.lockout);
    let outcome = state
        .db(move |c| svc::reject(c, lockout, &actor, id, &f.reason, &f.password))
        .await
        .map(|_| ());
    after(&state, &user, id, outcome).await
}

//! `/materials`: lots with their status and expiry, where each was used,
//! and the forms: receive (technician, QA), release and reject (QA, signed).

use super::layout::{
    Refusal, created_id, csrf, form_key, form_once, html_page, meaning_box, once_for_form, page,
    read_form, refusal, see_other,
};
use super::session::{WebError, WebUser};
use crate::domain::material::MaterialKind;
use crate::domain::material::{ReceiveMaterial, RejectMaterial, ReleaseMaterial};
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::{AppError, Problem};
use crate::http::AppState;
use crate::services::materials::{self as svc};
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use strum::VariantArray;
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

fn status_badge(s: &str, loc: crate::i18n::Locale) -> Markup {
    let class = match s {
        "released" => "in_service",
        "quarantine" => "calibration_due",
        _ => "out_of_service",
    };
    html! { span class={"instrument " (class)} { (loc.code_words("status", s)) } }
}

async fn list_markup(
    state: &AppState,
    user: &WebUser,
    problem: Option<&Problem>,
    typed: Option<&MaterialForm>,
) -> Result<Markup, WebError> {
    let list = state.db(|c| svc::list(c, None, None, None)).await?;
    let r = Refusal::new(problem, LABELS, user.lang());
    Ok(page(
        &tr!(user.lang(), "nav-materials"),
        Some(user),
        html! {
            (r.summary())
            @if list.is_empty() { p.muted { (tr!(user.lang(), "material-none")) } } @else {
                table {
                    thead { tr { th { (tr!(user.lang(), "material-col")) } th { (tr!(user.lang(), "material-col-lot")) } th { (tr!(user.lang(), "label-kind")) } th { (tr!(user.lang(), "label-supplier")) } th { (tr!(user.lang(), "col-expires")) } th { (tr!(user.lang(), "col-status")) } } }
                    tbody { @for m in &list { tr {
                        td { strong { (m.code) } " " (m.name) }
                        td { a href={"/materials/" (m.id)} { (m.lot_number) } }
                        td { (user.lang().code_words("material-kind", &m.kind)) }
                        td { (m.supplier.as_deref().unwrap_or("")) }
                        td { (user.time(m.expires_at)) }
                        td { (status_badge(&m.status, user.lang())) }
                    } } }
                }
            }
            @if user.may(Action::ReceiveMaterials) {
                form.stack.card method="post" action="/materials" {
                    h2 { (tr!(user.lang(), "material-receive-heading")) }
                    (csrf(user))
                    (form_key())
                    // A refused form comes back as it was typed; the kind
                    // is chosen in the reader's words and posted as its code.
                    @let t = |pick: fn(&MaterialForm) -> &str| typed.map(pick).unwrap_or_default().to_owned();
                    label { (tr!(user.lang(), "label-material-code")) input type="text" name="code" required value=(t(|f| &f.code)); (r.at("code")) }
                    label { (tr!(user.lang(), "label-name")) input type="text" name="name" required value=(t(|f| &f.name)); (r.at("name")) }
                    label { (tr!(user.lang(), "label-lot-number")) input type="text" name="lot_number" required value=(t(|f| &f.lot_number)); (r.at("lot_number")) }
                    label { (tr!(user.lang(), "label-supplier")) input type="text" name="supplier" value=(t(|f| &f.supplier)); (r.at("supplier")) }
                    label { (tr!(user.lang(), "label-kind")) select name="kind" {
                        @for k in MaterialKind::VARIANTS { option value=(k.as_str()) selected[t(|f| &f.kind) == k.as_str()] { (user.lang().code_words("material-kind", k.as_str())) } }
                    } (r.at("kind")) }
                    label { (tr!(user.lang(), "material-expires", zone = user.zone_name())) input type="datetime-local" name="expires_at" step="1" required value=(t(|f| &f.expires_at)); (r.at("expires_at")) }
                    button type="submit" { (tr!(user.lang(), "material-receive")) }
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
        list_markup(&state, &user, None, None).await?,
    ))
}

/// Every material form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct MaterialForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    form_key: Option<String>,
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
}

/// Receives a lot (technician, QA).
#[post("/materials")]
pub async fn receive(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ReceiveMaterials)?;
    let f: MaterialForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    // A double submit receives the lot once and shows it.
    let once = form_once(f.form_key.as_deref(), "/materials", &body);
    let outcome = user
        .run(
            &state,
            &body,
            &["expires_at"],
            move |c, actor, input: ReceiveMaterial| {
                let created = once_for_form(c, actor.id, once.as_ref(), |c| {
                    svc::receive(c, actor, &input)
                })?;
                created_id(&created)
            },
        )
        .await;
    match outcome {
        Ok(id) => Ok(see_other(format!("/materials/{id}"))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status(),
                list_markup(&state, &user, Some(&p), Some(&f)).await?,
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
        &tr!(
            user.lang(),
            "material-title",
            code = m.code.as_str(),
            lot = m.lot_number.as_str()
        ),
        Some(user),
        html! {
            (r.summary())
            p { (m.name) " · " (m.kind.replace('_', " ")) @if let Some(s) = &m.supplier { " · " (s) } " · " (tr!(user.lang(), "col-expires")) " " (user.time(m.expires_at)) " · " (status_badge(&m.status, user.lang())) }
            @if let Some(why) = &m.reject_reason { p.fail { (tr!(user.lang(), "material-rejected")) (why) } }
            h2 { (tr!(user.lang(), "material-where-used", n = used.len())) }
            @if used.is_empty() { p.muted { (tr!(user.lang(), "material-unused")) } } @else {
                p { a href={"/materials/" (m.id) "/where-used.csv"} download { (tr!(user.lang(), "download-csv")) } }
                table {
                    thead { tr { th { (tr!(user.lang(), "col-batch")) } th { (tr!(user.lang(), "col-status")) } th { (tr!(user.lang(), "material-col-how")) } } }
                    tbody { @for w in &used { tr {
                        td { a href={"/batches/" (w.batch_id)} { (w.batch_number) } }
                        td { (w.status.replace('_', " ")) }
                        td { @if w.via == "batch" { (tr!(user.lang(), "material-in-manufacture")) } @else { (tr!(user.lang(), "material-in-results", n = w.result_ids.len())) } }
                    } } }
                }
            }
            @if m.status == "quarantine" && user.may(Action::Sign(Meaning::MaterialReleased)) {
                form.stack.card method="post" action={"/materials/" (m.id) "/release"} {
                    h2 { (tr!(user.lang(), "release-heading")) }
                    (csrf(user))
                    (meaning_box(Meaning::MaterialReleased, user.lang()))
                    label { (tr!(user.lang(), "label-your-password")) input type="password" name="password" required autocomplete="current-password"; (r.at("password")) }
                    button type="submit" { (tr!(user.lang(), "material-release-sign")) }
                }
            }
            @if m.status != "rejected" && user.may(Action::Sign(Meaning::MaterialRejected)) {
                form.stack.card method="post" action={"/materials/" (m.id) "/reject"} {
                    h2 { (tr!(user.lang(), "release-reject-heading")) }
                    (csrf(user))
                    p.muted { (tr!(user.lang(), "material-reject-note")) }
                    label { (tr!(user.lang(), "label-reason")) textarea name="reason" required {} (r.at("reason")) }
                    (meaning_box(Meaning::MaterialRejected, user.lang()))
                    label { (tr!(user.lang(), "label-your-password")) input type="password" name="password" required autocomplete="current-password"; }
                    button.danger type="submit" { (tr!(user.lang(), "material-reject-sign")) }
                }
            }
            p { a href="/materials" { (tr!(user.lang(), "material-back")) } }
        },
    ))
}

/// One lot and where it was used.
/// Where the lot went, as CSV (a recall's list).
#[get("/materials/{id}/where-used.csv")]
pub async fn where_used_csv(
    state: web::Data<AppState>,
    _user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    let id = id.into_inner();
    let body = state
        .db(move |c| svc::where_used_csv(&svc::where_used(c, id)?))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type(crate::report::csv::MEDIA_TYPE)
        .insert_header(crate::http::download::download(
            false,
            &format!("where-used-{id}.csv"),
        ))
        .body(body))
}

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
                p.status(),
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
    let f: MaterialForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let (id, rules) = (id.into_inner(), state.signing.clone());
    let outcome = user
        .run(&state, &body, &[], move |c, actor, cmd: ReleaseMaterial| {
            svc::release(c, &rules, actor, id, &cmd.password)
        })
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
    let f: MaterialForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let (id, rules) = (id.into_inner(), state.signing.clone());
    let outcome = user
        .run(&state, &body, &[], move |c, actor, cmd: RejectMaterial| {
            svc::reject(c, &rules, actor, id, &cmd)
        })
        .await
        .map(|_| ());
    after(&state, &user, id, outcome).await
}

//! Recording custody events from the browser.

use super::layout::once_for_form;
use super::layout::{
    self, Refusal, csrf, form_key, form_once, html_page, page, read_form, refusal, see_other,
};
use super::session::{WebError, WebUser};
use crate::domain::StoredName;
use crate::domain::custody::RecordCustody;
use crate::domain::roles::Action;
use crate::error::Problem;
use crate::http::AppState;
use crate::services::batches as batch_svc;
use crate::services::custody as custody_svc;
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

const LABELS: &[(&str, &str)] = &[
    ("scanned_din", "label-scanned-din"),
    ("event", "label-event"),
    ("occurred_at", "label-occurred-at"),
    ("location", "label-location"),
    ("party", "label-party"),
    ("temperature_c", "label-temperature"),
    ("container_id", "label-container-id"),
    ("recipient_id", "label-recipient-id"),
    ("notes", "label-notes"),
];

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
    entered: Option<&CustodyForm>,
) -> Result<Markup, WebError> {
    let detail = state.db(move |c| batch_svc::get_batch(c, batch_id)).await?;
    // A refused form comes back as it was typed.
    let text = |pick: fn(&CustodyForm) -> Option<&str>| layout::entered(entered, pick);
    let event = text(|f| Some(&f.event));
    let occurred_at = entered.map_or_else(|| user.now_for_form(), |f| f.occurred_at.clone());
    let r = Refusal::new(problem, LABELS, user.lang());
    Ok(page(
        &tr!(
            user.lang(),
            "custody-title",
            batch = detail.batch.batch_number.as_str()
        ),
        Some(user),
        html! {
            (r.summary())
            ol { @for e in &detail.custody { li { strong { (user.lang().code_words("event", e.event.as_str())) } " · " (user.time(e.occurred_at)) " · " (e.location) } } }
            form.stack.card method="post" action={"/batches/" (batch_id) "/custody"} {
                (csrf(user))
                (form_key())
                @if detail.batch.donor_din.is_some() {
                    label { (tr!(user.lang(), "custody-scan"))
                        input type="text" name="scanned_din" required autocomplete="off" autofocus data-scan value=(text(|f| f.scanned_din.as_deref()));
                        (r.at("scanned_din"))
                    }
                }
                label { (tr!(user.lang(), "label-event")) select name="event" { @for e in EVENTS { option value=(e) selected[e == event] { (user.lang().code_words("event", e)) } } } (r.at("event")) }
                label { (tr!(user.lang(), "custody-occurred-at", zone = user.zone_name())) input type="datetime-local" name="occurred_at" step="1" required value=(occurred_at); (r.at("occurred_at")) }
                label { (tr!(user.lang(), "label-location")) input type="text" name="location" required value=(text(|f| Some(&f.location))); (r.at("location")) }
                label { (tr!(user.lang(), "custody-party")) input type="text" name="party" required value=(text(|f| Some(&f.party))); (r.at("party")) }
                label { (tr!(user.lang(), "custody-temperature")) input type="text" name="temperature_c" inputmode="decimal" value=(text(|f| f.temperature_c.as_deref())); (r.at("temperature_c")) }
                label { (tr!(user.lang(), "label-container-id")) input type="text" name="container_id" value=(text(|f| f.container_id.as_deref())); (r.at("container_id")) }
                label { (tr!(user.lang(), "custody-recipient")) input type="text" name="recipient_id" autocomplete="off" data-scan value=(text(|f| f.recipient_id.as_deref())); (r.at("recipient_id")) }
                label { input type="checkbox" name="internal" value="true" checked[entered.is_some_and(|f| f.internal.as_deref() == Some("true"))]; " " (tr!(user.lang(), "custody-internal")) }
                label { (tr!(user.lang(), "label-notes")) textarea name="notes" { (text(|f| f.notes.as_deref())) } (r.at("notes")) }
                button type="submit" { (tr!(user.lang(), "custody-record")) }
            }
            p { a href={"/batches/" (batch_id)} { (tr!(user.lang(), "back-to-batch")) } }
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
    user.require(Action::RecordCustody)?;
    Ok(html_page(
        StatusCode::OK,
        custody_markup(&state, &user, id.into_inner(), None, None).await?,
    ))
}

/// The custody form's fields.
#[derive(Debug, Deserialize)]
pub struct CustodyForm {
    csrf: String,
    form_key: Option<String>,
    event: String,
    occurred_at: String,
    location: String,
    party: String,
    temperature_c: Option<String>,
    container_id: Option<String>,
    recipient_id: Option<String>,
    internal: Option<String>,
    notes: Option<String>,
    scanned_din: Option<String>,
}

/// Records a custody event.
#[post("/batches/{id}/custody")]
pub async fn record_custody(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::RecordCustody)?;
    let f: CustodyForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let batch_id = id.into_inner();
    // A double submit records the event once and shows the first outcome.
    let once = form_once(
        f.form_key.as_deref(),
        &format!("/batches/{batch_id}/custody"),
        &body,
    );
    let attempt = user
        .run(
            &state,
            &body,
            &["occurred_at"],
            move |c, actor, mut input: RecordCustody| {
                // The page asks for the bag's DIN: left empty, it is no match
                // (the batch's DIN must be scanned), not a check skipped.
                input.scanned_din.get_or_insert_default();
                once_for_form(c, actor.id, once.as_ref(), |c| {
                    custody_svc::record_event(c, actor, batch_id, &input)
                })
            },
        )
        .await;
    match attempt {
        Ok(_) => Ok(see_other(format!("/batches/{batch_id}"))),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status(),
                custody_markup(&state, &user, batch_id, Some(&p), Some(&f)).await?,
            ))
        }
    }
}

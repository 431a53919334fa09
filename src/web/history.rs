//! The auditor's view of a batch: every entry of its hash chain, the
//! chain's verification, and the JSON and CSV downloads.

use super::layout::{html_page, page};
use super::session::{WebError, WebUser};
use crate::domain::roles::Action;
use crate::error::AppError;
use crate::http::AppState;
use crate::report::history::{changes, result_names, sentence};
use crate::services::{batches as batch_svc, history, verification};
use crate::tr;
use actix_web::{HttpResponse, get, web};
use maud::html;
use uuid::Uuid;

/// The auditor's view: every entry of the batch's chain, its verification,
/// and the JSON / CSV downloads.
#[get("/batches/{id}/history")]
pub async fn history_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ReadAuditTrail)?;
    let batch_id = id.into_inner();
    let key = state.anchors.key.verifying();
    let (record, entries, report) = state
        .report_for_batch(batch_id, move |c| {
            let record = batch_svc::record(c, batch_id)?;
            let entries = history::history(c, batch_id)?;
            let chain = crate::domain::audit::batch_chain(batch_id);
            let report = verification::verify_chains(c, &key, Some(&chain))?;
            Ok((record, entries, report))
        })
        .await?;
    let names = result_names(&record);
    let batch = &record.batch;
    let body = html! {
        @if report.ok {
            div.notice.ok id="chain-status" { (tr!(user.lang(), "history-verifies", n = report.events, rows = report.rows, signatures = report.signatures)) }
        } @else {
            div.notice.error id="chain-status" role="alert" {
                (tr!(user.lang(), "history-broken"))
                (super::audit::broken_list(user.lang(), &report.broken))
            }
        }
        p {
            a href={"/batches/" (batch_id) "/history.csv"} download { (tr!(user.lang(), "history-csv")) } " · "
            a href={"/batches/" (batch_id) "/history.json"} download { (tr!(user.lang(), "history-json")) }
        }
        table {
            thead { tr { th { "#" } th { (tr!(user.lang(), "col-when")) } th { (tr!(user.lang(), "col-who")) } th { (tr!(user.lang(), "col-what")) } th { (tr!(user.lang(), "col-changes")) } th { (tr!(user.lang(), "col-hash")) } } }
            tbody { @for e in &entries {
                tr id={"entry-" (e.id)} {
                    td { (e.seq) }
                    td { (user.time(e.at)) }
                    td { @if let Some(a) = &e.actor { (a.full_name) br; span.muted { (a.username) } } @else { span.muted { (tr!(user.lang(), "system")) } } }
                    td { (sentence(e, &names, user.lang())) br; span.muted { code { (e.action) } } }
                    td { pre.changes { (changes(e)) } }
                    td { code title=(e.hash) { (e.hash.get(..12).unwrap_or_default()) "…" } }
                }
            } }
        }
    };
    Ok(html_page(
        actix_web::http::StatusCode::OK,
        page(
            &tr!(
                user.lang(),
                "history-title",
                batch = batch.batch_number.as_str()
            ),
            Some(&user),
            body,
        ),
    ))
}

async fn history_download(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    csv: bool,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ReadAuditTrail)?;
    let (body, kind, ext) = if csv {
        (
            state
                .report_for_batch(batch_id, move |c| history::csv_export(c, batch_id))
                .await?,
            crate::report::csv::MEDIA_TYPE,
            "csv",
        )
    } else {
        (
            serde_json::to_vec_pretty(
                &state
                    .report_for_batch(batch_id, move |c| history::history(c, batch_id))
                    .await?,
            )
            .map_err(AppError::from)?,
            "application/json",
            "json",
        )
    };
    Ok(HttpResponse::Ok()
        .content_type(kind)
        .insert_header(crate::http::download::download(
            false,
            &format!("batch-{batch_id}-history.{ext}"),
        ))
        .body(body))
}

/// The history as CSV.
#[get("/batches/{id}/history.csv")]
pub async fn history_csv(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    history_download(&state, &user, id.into_inner(), true).await
}

/// The history as JSON.
#[get("/batches/{id}/history.json")]
pub async fn history_json(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    history_download(&state, &user, id.into_inner(), false).await
}

//! The audit trail for auditors and QA: search by record, person and time,
//! each entry as a sentence linked to its batch's history; and verifying
//! every hash chain, with the last run remembered.

use super::layout::{Refusal, csrf, html_page, page, refusal, see_other};
use super::session::{WebError, WebUser};
use crate::app::AppState;
use crate::domain::roles::Action;
use crate::error::AppError;
use crate::report::history::{ResultNames, changes, sentence};
use crate::services::audit::{self as audit_svc, AuditFilter};
use crate::services::verification::{self, VerifyReport};
use crate::services::{PageRequest, anchors};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

/// The kinds of record the trail names.
const RECORD_KINDS: &[&str] = &[
    "batch",
    "result",
    "deviation",
    "custody_event",
    "specification",
    "product",
    "user",
    "audit_trail",
];

const LABELS: &[(&str, &str)] = &[
    ("entity_type", "label-kind-of-record"),
    ("entity_id", "label-record-id"),
    ("actor", "label-person"),
    ("from", "label-from"),
    ("to", "label-until"),
];

/// The search form, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct AuditSearch {
    #[serde(default)]
    entity_type: String,
    #[serde(default)]
    entity_id: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    cursor: Option<Uuid>,
}

fn filter_of(user: &WebUser, q: &AuditSearch) -> Result<AuditFilter, AppError> {
    let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let mut errors = Vec::new();
    let entity_id = some(&q.entity_id).and_then(|s| {
        Uuid::parse_str(&s)
            .map_err(|_| {
                errors.push(crate::error::FieldError::new(
                    "entity_id",
                    "is not a record id",
                ))
            })
            .ok()
    });
    let mut when = |field: &str, v: &str| {
        some(v).and_then(|v| {
            user.from_form(field, &v)
                .map_err(|e| {
                    if let AppError::Problem(p) = e {
                        errors.extend(p.errors);
                    }
                })
                .ok()
        })
    };
    let from = when("from", &q.from);
    let to = when("to", &q.to);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    Ok(AuditFilter {
        entity_type: some(&q.entity_type),
        entity_id,
        actor: some(&q.actor),
        from,
        to,
    })
}

/// Searches the trail.
#[get("/audit")]
pub async fn audit_search(
    state: web::Data<AppState>,
    user: WebUser,
    query: web::Query<AuditSearch>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ReadAuditTrail)?;
    let q = query.into_inner();
    let searched = match filter_of(&user, &q) {
        Err(e) => Err(e),
        Ok(filter) => {
            let page_req = PageRequest {
                limit: 100,
                after: q.cursor,
            };
            state
                .report(move |c| audit_svc::list(c, &filter, page_req))
                .await
        }
    };
    let (found, problem) = match searched {
        Ok(found) => (Some(found), None),
        Err(e) => (None, Some(refusal(e)?)),
    };
    let r = Refusal::new(problem.as_ref(), LABELS, user.lang()).searching();
    let names = ResultNames::new();
    let next = found.as_ref().and_then(|f| f.next_cursor.clone()).map(|c| {
        let qs = serde_urlencoded::to_string([
            ("entity_type", q.entity_type.as_str()),
            ("entity_id", q.entity_id.as_str()),
            ("actor", q.actor.as_str()),
            ("from", q.from.as_str()),
            ("to", q.to.as_str()),
            ("cursor", c.as_str()),
        ])
        .unwrap_or_default();
        format!("/audit?{qs}")
    });
    let body = html! {
        (r.summary())
        form.inline.card method="get" action="/audit" role="search" {
            label { "Kind of record"
                select name="entity_type" {
                    option value="" { "any" }
                    @for k in RECORD_KINDS { option value=(k) selected[q.entity_type == *k] { (k.replace('_', " ")) } }
                }
                (r.at("entity_type"))
            }
            label { "Record id" input type="text" name="entity_id" value=(q.entity_id) size="36"; (r.at("entity_id")) }
            label { "Person (username)" input type="text" name="actor" value=(q.actor); (r.at("actor")) }
            label { "From (" (user.zone_name()) ")" input type="datetime-local" name="from" step="1" value=(q.from); (r.at("from")) }
            label { "Until (" (user.zone_name()) ")" input type="datetime-local" name="to" step="1" value=(q.to); (r.at("to")) }
            button type="submit" { "Search" }
        }
        p { a.button.secondary href="/audit/verify" { "Verify every chain" } }
        @if let Some(found) = &found {
            @if found.items.is_empty() { p.muted { "No entry matches." } } @else {
                table {
                    thead { tr { th { "When" } th { "Who" } th { "What happened" } th { "Changes" } th { "Where" } } }
                    tbody { @for e in &found.items { tr {
                        td { (user.time(e.at)) }
                        td { @if let Some(a) = &e.actor { (a.full_name) br; span.muted { (a.username) } } @else { span.muted { "system" } } }
                        td { (sentence(e, &names)) br; span.muted { code { (e.action) } } }
                        td { pre.changes { (changes(e)) } }
                        td {
                            @if let Some(b) = e.batch_id {
                                a href={"/batches/" (b) "/history#entry-" (e.id)} { "batch history, entry " (e.seq) }
                            } @else { (e.chain) " #" (e.seq) }
                        }
                    } } }
                }
                @if let Some(n) = next { p { a.button.secondary href=(n) { "Next page" } } }
            }
        }
    };
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
    Ok(html_page(status, page("Audit trail", Some(&user), body)))
}

fn verify_markup(
    user: &WebUser,
    last: Option<&verification::LastVerification>,
    report: Option<&VerifyReport>,
    anchor: Option<&anchors::AnchorView>,
) -> Markup {
    html! {
        @if let Some(r) = report {
            @if r.ok {
                div.notice.ok id="verify-result" { "Every chain verifies: " (r.chains) " chains, " (r.events) " entries, none altered, none missing." }
            } @else {
                div.notice.error id="verify-result" role="alert" {
                    "The audit trail is BROKEN in " (r.broken.len()) @if r.broken.len() == 1 { " place:" } @else { " places:" }
                    ul { @for b in &r.broken { li { (b.chain) ", entry " (b.seq) ": " (b.reason) } } }
                }
            }
        }
        @if let Some(l) = last {
            p { "Last verification: " (user.time(l.at)) " by " (l.by) ", " (l.events) " entries, "
                @if l.ok { span.pass { "every chain and anchor verified" } } @else { span.fail { "BROKEN" } } "." }
        } @else { p.muted { "No verification has been run from these pages yet." } }
        form.stack method="post" action="/audit/verify" {
            (csrf(user))
            p.muted { "Recomputes every hash of every chain from the stored fields, then checks every signed anchor (the database's and the files in the anchor directory): each chain must still hold every anchored entry with its anchored hash. On a large trail this takes a while." }
            button type="submit" { "Verify every chain now" }
        }
        section.card {
            h2 { "Anchors" }
            @if let Some(a) = anchor {
                p id="latest-anchor" { "Latest anchor: "
                    @if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&a.created_at) { (user.time(at.with_timezone(&chrono::Utc))) } @else { (a.created_at) }
                    ", " (a.chains) " chains, " (a.entries) " entries, root " code { (a.root) } " (key " (a.key_id) ")." }
            } @else { p.muted { "No anchor has been made yet." } }
            p.muted { "An anchor is a signed Merkle root over every chain's head, written to a file and emailed to QA, so that a copy lives where the database's operators can't reach it. One is made every few minutes when the trail grew." }
            form method="post" action="/audit/anchors" {
                (csrf(user))
                button.secondary type="submit" { "Anchor the trail now" }
            }
        }
        p { a href="/audit" { "Search the audit trail" } }
    }
}

/// The verification page: the last run, and a button to run it again.
#[get("/audit/verify")]
pub async fn verify_page(
    state: web::Data<AppState>,
    user: WebUser,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ReadAuditTrail)?;
    let (last, anchor) = state
        .db(|c| Ok((verification::last_verification(c)?, anchors::latest(c)?)))
        .await?;
    Ok(html_page(
        StatusCode::OK,
        page(
            "Verify the audit trail",
            Some(&user),
            verify_markup(&user, last.as_ref(), None, anchor.as_ref()),
        ),
    ))
}

/// Makes an anchor now, then shows the verification page.
#[post("/audit/anchors")]
pub async fn make_anchor(
    state: web::Data<AppState>,
    user: WebUser,
    form: web::Form<VerifyForm>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ReadAuditTrail)?;
    user.check_csrf(&form.csrf)?;
    let (actor, sink) = (user.0.actor.clone(), state.anchors.clone());
    state
        .db(move |c| anchors::create(c, &sink, Some(&actor), false))
        .await?;
    Ok(see_other("/audit/verify".to_owned()))
}

/// The verification form's fields.
#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    csrf: String,
}

/// Runs the verification, records the run, and shows the outcome.
#[post("/audit/verify")]
pub async fn run_verification(
    state: web::Data<AppState>,
    user: WebUser,
    form: web::Form<VerifyForm>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ReadAuditTrail)?;
    user.check_csrf(&form.csrf)?;
    let (actor, sink) = (user.0.actor.clone(), state.anchors.clone());
    let (report, last, anchor) = state
        .db(move |c| {
            let check = anchors::check_kept(c, &sink)?;
            let report = verification::verify_and_record(c, &actor, check.broken)?;
            Ok((
                report,
                verification::last_verification(c)?,
                anchors::latest(c)?,
            ))
        })
        .await?;
    Ok(html_page(
        StatusCode::OK,
        page(
            "Verify the audit trail",
            Some(&user),
            verify_markup(&user, last.as_ref(), Some(&report), anchor.as_ref()),
        ),
    ))
}

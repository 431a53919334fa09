//! The audit trail for auditors and QA: search by record, person and time,
//! each entry as a sentence linked to its batch's history; and verifying
//! every hash chain, with the last run remembered.

use super::layout::{Refusal, csrf, html_page, page, refusal, see_other};
use super::session::{WebError, WebUser};
use crate::domain::audit::BreakKind;
use crate::domain::roles::Action;
use crate::error::AppError;
use crate::http::AppState;
use crate::report::history::{ResultNames, changes, sentence};
use crate::services::audit::{self as audit_svc, AuditFilter};
use crate::services::verification::{self, BrokenLink, VerifyReport};
use crate::services::{PageRequest, anchors};
use crate::tr;
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
                errors.push(crate::error::FieldError::said(
                    "entity_id",
                    "fe-is-not-a-record-id",
                    &[],
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
/// The page of the search as CSV (up to 500 entries from its cursor).
#[get("/audit.csv")]
pub async fn audit_csv(
    state: web::Data<AppState>,
    user: WebUser,
    query: web::Query<AuditSearch>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ReadAuditTrail)?;
    let q = query.into_inner();
    let filter = filter_of(&user, &q)?;
    let page_req = PageRequest {
        limit: 500,
        after: q.cursor,
    };
    let body = state
        .report(move |c| audit_svc::list_csv(&audit_svc::list(c, &filter, page_req)?))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type(crate::report::csv::MEDIA_TYPE)
        .insert_header(crate::http::download::download(false, "audit.csv"))
        .body(body))
}

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
    let csv_query = serde_urlencoded::to_string([
        ("entity_type", q.entity_type.as_str()),
        ("entity_id", q.entity_id.as_str()),
        ("actor", q.actor.as_str()),
        ("from", q.from.as_str()),
        ("to", q.to.as_str()),
        (
            "cursor",
            &q.cursor.map(|c| c.to_string()).unwrap_or_default(),
        ),
    ])
    .unwrap_or_default();
    let body = html! {
        (r.summary())
        form.inline.card method="get" action="/audit" role="search" {
            label { (tr!(user.lang(), "label-kind-of-record"))
                select name="entity_type" {
                    option value="" { (tr!(user.lang(), "any")) }
                    @for k in RECORD_KINDS { option value=(k) selected[q.entity_type == *k] { (user.lang().code_words("record-kind", k)) } }
                }
                (r.at("entity_type"))
            }
            label { (tr!(user.lang(), "label-record-id")) input type="text" name="entity_id" value=(q.entity_id) size="36"; (r.at("entity_id")) }
            label { (tr!(user.lang(), "audit-person")) input type="text" name="actor" value=(q.actor); (r.at("actor")) }
            label { (tr!(user.lang(), "audit-from", zone = user.zone_name())) input type="datetime-local" name="from" step="1" value=(q.from); (r.at("from")) }
            label { (tr!(user.lang(), "audit-until", zone = user.zone_name())) input type="datetime-local" name="to" step="1" value=(q.to); (r.at("to")) }
            button type="submit" { (tr!(user.lang(), "search")) }
        }
        p { a.button.secondary href="/audit/verify" { (tr!(user.lang(), "home-verify")) } }
        @if let Some(found) = &found {
            @if found.items.is_empty() { p.muted { (tr!(user.lang(), "audit-none")) } } @else {
                table {
                    thead { tr { th { (tr!(user.lang(), "col-when")) } th { (tr!(user.lang(), "col-who")) } th { (tr!(user.lang(), "col-what")) } th { (tr!(user.lang(), "col-changes")) } th { (tr!(user.lang(), "audit-col-where")) } } }
                    tbody { @for e in &found.items { tr {
                        td { (user.time(e.at)) }
                        td { @if let Some(a) = &e.actor { (a.full_name) br; span.muted { (a.username) } } @else { span.muted { (tr!(user.lang(), "system")) } } }
                        td { (sentence(e, &names, user.lang())) br; span.muted { code { (e.action) } } }
                        td { pre.changes { (changes(e)) } }
                        td {
                            @if let Some(b) = e.batch_id {
                                a href={"/batches/" (b) "/history#entry-" (e.id)} { (tr!(user.lang(), "audit-batch-entry", seq = e.seq)) }
                            } @else { (e.chain) " #" (e.seq) }
                        }
                    } } }
                }
                @if let Some(n) = next { p { a.button.secondary href=(n) { (tr!(user.lang(), "next-page")) } } }
                p { a href={"/audit.csv?" (csv_query)} download { (tr!(user.lang(), "download-csv")) } }
            }
        }
    };
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status());
    Ok(html_page(
        status,
        page(&tr!(user.lang(), "nav-audit-trail"), Some(&user), body),
    ))
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
                div.notice.ok id="verify-result" { (tr!(user.lang(), "audit-verifies", chains = r.chains, n = r.events, rows = r.rows, signatures = r.signatures)) }
            } @else {
                div.notice.error id="verify-result" role="alert" {
                    (tr!(user.lang(), "audit-broken", n = r.broken.len()))
                    (broken_list(user.lang(), &r.broken))
                }
            }
        }
        @if let Some(l) = last {
            p { (tr!(user.lang(), "home-last-verification")) " " (user.time(l.at)) " · " (l.by) " · " (tr!(user.lang(), "home-entries", n = l.events)) " · "
                @if l.ok { span.pass { (tr!(user.lang(), "home-verified")) } } @else { span.fail { (tr!(user.lang(), "home-broken")) } } (tr!(user.lang(), "sentence-end")) }
        } @else { p.muted { (tr!(user.lang(), "home-no-verification")) } }
        form.stack method="post" action="/audit/verify" {
            (csrf(user))
            p.muted { (tr!(user.lang(), "audit-verify-note")) }
            button type="submit" { (tr!(user.lang(), "audit-verify-now")) }
        }
        section.card {
            h2 { (tr!(user.lang(), "audit-anchors")) }
            @if let Some(a) = anchor {
                p id="latest-anchor" { (tr!(user.lang(), "audit-latest-anchor")) " "
                    @if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&a.created_at) { (user.time(at.with_timezone(&chrono::Utc))) } @else { (a.created_at) }
                    " · " (tr!(user.lang(), "audit-anchor-counts", chains = a.chains, n = a.entries)) " · " (tr!(user.lang(), "audit-root")) " " code { (a.root) } " (" (tr!(user.lang(), "audit-key")) " " (a.key_id) ")" }
            } @else { p.muted { (tr!(user.lang(), "audit-no-anchor")) } }
            p.muted { (tr!(user.lang(), "audit-anchor-note")) }
            form method="post" action="/audit/anchors" {
                (csrf(user))
                button.secondary type="submit" { (tr!(user.lang(), "audit-anchor-now")) }
            }
        }
        p { a href="/audit" { (tr!(user.lang(), "home-search-trail")) } }
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
            &tr!(user.lang(), "audit-verify-title"),
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

/// What a verification found broken, one line each: the kind in the
/// reader's words, where, and the detail.
pub fn broken_list(lang: crate::i18n::Locale, broken: &[BrokenLink]) -> Markup {
    html! {
        ul { @for b in broken {
            li {
                strong { (lang.text(kind_message(b.kind))) } (tr!(lang, "colon"))
                @let place = b.place();
                @if !place.is_empty() { (place) (tr!(lang, "colon")) }
                (b.reason)
            }
        } }
    }
}

fn kind_message(kind: BreakKind) -> &'static str {
    match kind {
        BreakKind::Link => "verify-kind-link",
        BreakKind::Anchor => "verify-kind-anchor",
        BreakKind::RowAltered => "verify-kind-row-altered",
        BreakKind::SignatureMismatch => "verify-kind-signature-mismatch",
        BreakKind::SignatureUnsealed => "verify-kind-signature-unsealed",
        BreakKind::NoAnchors => "verify-kind-no-anchors",
    }
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
            let key = sink.key.verifying();
            let report = verification::verify_and_record(c, &key, &actor, check.broken)?;
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
            &tr!(user.lang(), "audit-verify-title"),
            Some(&user),
            verify_markup(&user, last.as_ref(), Some(&report), anchor.as_ref()),
        ),
    ))
}

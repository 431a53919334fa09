//! The batch list (filters, search by batch number or donor DIN), the
//! batch page (limits, results, signatures, deviations, custody, readiness
//! with every blocker in words) and its certificate.

use super::layout::{html_page, outcome, page, recorded_notice, status};
use super::session::{WebError, WebUser};
use crate::app::AppState;
use crate::domain::StoredName;
use crate::domain::batch::BatchStatus;
use crate::domain::release::BlockerCode;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::domain::spec::describe_limit;
use crate::error::AppError;
use crate::services::PageRequest;
use crate::services::batch_record::views::BatchDetail;
use crate::services::batches::{self as batch_svc, BatchFilter};
use actix_web::{HttpResponse, get, web};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

/// The batch list's filters.
#[derive(Debug, Deserialize)]
pub struct BatchListQuery {
    status: Option<String>,
    product_id: Option<String>,
    q: Option<String>,
    cursor: Option<Uuid>,
}

/// Batches, with filters and one search box for batch number or donor DIN
/// (a barcode scanner types into it and presses Enter).
#[get("/batches")]
pub async fn batch_list(
    state: web::Data<AppState>,
    user: WebUser,
    query: web::Query<BatchListQuery>,
) -> Result<HttpResponse, WebError> {
    let q = query.into_inner();
    let status_filter = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| BatchStatus::try_from(s).ok());
    let product_filter = q
        .product_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|p| Uuid::parse_str(p).ok());
    let filter = BatchFilter {
        status: status_filter,
        product_id: product_filter,
        q: q.q.clone(),
    };
    let page_req = PageRequest {
        limit: 50,
        after: q.cursor,
    };
    let (list, products) = state
        .db(move |c| {
            Ok((
                batch_svc::list_batches(c, &filter, page_req)?,
                crate::services::products::list_products(
                    c,
                    PageRequest {
                        limit: 500,
                        after: None,
                    },
                )?,
            ))
        })
        .await?;
    let product_code = |id: Uuid| {
        products
            .items
            .iter()
            .find(|p| p.id == id)
            .map_or_else(String::new, |p| p.code.clone())
    };
    let next = list.next_cursor.as_ref().map(|c| {
        format!(
            "/batches?status={}&product_id={}&q={}&cursor={c}",
            q.status.clone().unwrap_or_default(),
            q.product_id.clone().unwrap_or_default(),
            q.q.clone().unwrap_or_default()
        )
    });
    let body = html! {
        @if user.may(Action::CreateBatch) {
            p { a.button href="/batches/new" { "Start a batch" } }
        }
        form.inline.card method="get" action="/batches" role="search" {
            label { "Batch number or donor DIN"
                input type="search" name="q" value=(q.q.clone().unwrap_or_default()) autofocus; }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for s in <BatchStatus as strum::VariantArray>::VARIANTS { option value=(s.as_str()) selected[q.status.as_deref() == Some(s.as_str())] { (s.as_str().replace('_', " ")) } }
                }
            }
            label { "Product"
                select name="product_id" {
                    option value="" { "any" }
                    @for p in &products.items {
                        option value=(p.id) selected[product_filter == Some(p.id)] { (p.code) " – " (p.name) }
                    }
                }
            }
            button type="submit" { "Search" }
        }
        @if list.items.is_empty() { p.muted { "No batch matches." } } @else {
            table {
                thead { tr { th { "Batch" } th { "Product" } th { "Status" } th { "Donor DIN" } th { "Manufactured" } th { "Expires" } } }
                tbody {
                    @for b in &list.items {
                        tr {
                            td { a href={"/batches/" (b.id)} { (b.batch_number) } }
                            td { (product_code(b.product_id)) }
                            td { (status(b.status.as_str())) }
                            td { (b.donor_din.clone().unwrap_or_default()) }
                            td { (user.time(b.manufactured_at)) }
                            td { (user.time(b.expires_at)) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next { p { a href=(n) { "Next page" } } }
    };
    Ok(html_page(
        actix_web::http::StatusCode::OK,
        page("Batches", Some(&user), body),
    ))
}

fn blocker_words(code: BlockerCode) -> &'static str {
    match code {
        BlockerCode::MissingResult => "A required result is missing",
        BlockerCode::ResultFailed => "A result is out of specification",
        BlockerCode::ResultNotReviewed => "A result has not been reviewed by a second person",
        BlockerCode::OpenDeviation => "A deviation is still open",
        BlockerCode::ConfirmedOos => {
            "An out-of-specification result was confirmed: the batch can only be rejected"
        }
        BlockerCode::InTransit => "The batch is in transit",
        BlockerCode::Expired => "The batch has expired",
        BlockerCode::ParentNotReleased => "A parent batch is not released",
        BlockerCode::AuditTrailNotReviewed => "QA has not signed a review of the audit trail",
    }
}

/// The batch page's query: the result just recorded, to show its outcome.
#[derive(Debug, Deserialize)]
pub struct BatchPageQuery {
    recorded: Option<Uuid>,
    reviewed: Option<usize>,
}

/// The batch page: specification with limits, results, signatures,
/// deviations, custody and release readiness with every blocker in words.
#[get("/batches/{id}")]
pub async fn batch_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    query: web::Query<BatchPageQuery>,
) -> Result<HttpResponse, WebError> {
    let id = id.into_inner();
    let recorded = query.recorded;
    let (record, warnings) = state
        .db(move |c| {
            let record = batch_svc::record(c, id)?;
            let warnings = crate::services::release::out_of_trend(c, &record)?;
            Ok((record, warnings))
        })
        .await?;
    let detail = BatchDetail::from(&record);
    let readiness = record.readiness();
    let b = &detail.batch;
    // The current result of each test, as the domain decides it.
    let current = record.current_results();
    let current = |code: &str| {
        current
            .iter()
            .find(|r| r.test_code == code)
            .and_then(|r| detail.results.iter().find(|v| v.result.id == r.id))
    };
    // Results that no longer count stay visible, marked.
    let current_ids: Vec<Uuid> = record.current_results().iter().map(|r| r.id).collect();
    let earlier: Vec<_> = detail
        .results
        .iter()
        .filter(|r| !current_ids.contains(&r.result.id))
        .collect();
    // Missing results are the work still to do, not an alarm.
    let (missing, other): (Vec<_>, Vec<_>) = readiness
        .blockers
        .iter()
        .partition(|bl| bl.code == BlockerCode::MissingResult);
    let just_recorded = recorded.and_then(|r| detail.results.iter().find(|x| x.result.id == r));
    let body = html! {
        @if let Some(n) = query.reviewed {
            div.notice.ok role="status" id="reviewed" { (n) (if n == 1 { " result" } else { " results" }) " reviewed under your signature." }
        }
        @if let Some(r) = just_recorded { (recorded_notice(&r.result, "")) }
        nav.card.actions aria-label="Actions" {
            @for (path, label) in [
                (Action::RecordResult, "results/new", "Record a result"),
                (Action::RecordResult, "results/import", "Import from an export"),
                (Action::Sign(Meaning::Reviewed), "review", "Review results"),
                (Action::Sign(Meaning::Released), "release", "Release, reject or recall"),
                (Action::RecordCustody, "custody/new", "Custody event"),
                (Action::OpenDeviation, "deviations", "Deviations"),
                (Action::ReadAuditTrail, "history", "History"),
                (Action::ReadAuditTrail, "audit-review", "Audit-trail review"),
            ].into_iter().filter(|(a, _, _)| user.may(*a)).map(|(_, p, l)| (p, l)) {
                a.button href={"/batches/" (id) "/" (path)} { (label) }
            }
        }
        div.card {
            dl.facts {
                dt { "Status" } dd { (status(b.status.as_str())) }
                dt { "Product" } dd { (record.product.name) " (" (record.product.code) ")" }
                dt { "Specification" } dd { "version " (record.spec.version) }
                dt { "Donor DIN" } dd { (b.donor_din.clone().unwrap_or_else(|| "none".into())) }
                dt { "Intended recipient" } dd { (b.intended_recipient.clone().unwrap_or_else(|| "none".into())) }
                dt { "Manufactured" } dd { (user.time(b.manufactured_at)) }
                dt { "Expires" } dd { (user.time(b.expires_at)) }
            }
        }
        @if b.status == BatchStatus::Quarantine {
            h2 { "Release readiness" }
            @if !missing.is_empty() {
                div.card.checklist id="to-do" {
                    p { strong { "Results still to record (" (missing.len()) ")" } }
                    ul { @for bl in &missing {
                        li { "☐ " (bl.test_code.clone().unwrap_or_default())
                            @if let Some(t) = bl.test_code.as_deref().and_then(|c| record.test(c)) { " – " (t.name) }
                            @if user.may(Action::RecordResult) {
                                " " a.button.secondary href={"/batches/" (id) "/results/new?test=" (bl.test_code.clone().unwrap_or_default())} { "Record" }
                            }
                        }
                    } }
                }
            }
            @if readiness.releasable {
                div.notice.ok { "Every rule holds: a Qualified Person who took no part in the testing can release the batch." }
            } @else if !other.is_empty() {
                div.notice.error {
                    @if readiness.conditionally_releasable { p { "Only results allowed to be pending are missing: a conditional release is possible." } }
                    ul.blockers { @for bl in &other { li { strong { (blocker_words(bl.code)) } ": " (bl.message) } } }
                }
            } @else if readiness.conditionally_releasable {
                div.notice { "Only results allowed to be pending are missing: a conditional release is possible." }
            }
        } @else {
            h2 { "Status" }
            div class={"notice " (if b.status.is_released() { "ok" } else { "error" })} id="status-said" {
                "This batch is " strong { (b.status.as_str().replace('_', " ")) } "."
                @for s in &detail.signatures { " " (s.statement) " — " (s.signer.full_name) ", " (user.time(s.signed_at)) "." }
            }
        }
        h2 { "Specification and current results" }
        table {
            thead { tr { th { "Test" } th { "Method" } th { "Limit" } th { "Result" } th { "Outcome" } th { "Status" } th { "Performed by" } th { "Reviewed by" } } }
            tbody {
                @for t in &record.spec.tests {
                    @let r = current(&t.code);
                    tr {
                        td { strong { (t.code) } " " (t.name) }
                        td { (t.method) }
                        td { (describe_limit(t)) }
                        td {
                            @if let Some(r) = r { (r.result.value) " " (r.result.unit.clone().unwrap_or_default()) } @else { span.muted { "none" } }
                            @if let Some(f) = r.and_then(|r| r.result.source_file_id) {
                                br; a.source-file href={"/source-files/" (f)} title="The instrument export this value was imported from, kept as uploaded" { "from its export file" }
                            }
                            @for w in warnings.iter().filter(|w| w.test_code == t.code) {
                                br; a.out-of-trend href={"/products/" (record.product.id) "/trends?test_code=" (t.code)} title="Open the product's trend chart" {
                                    "⚠ out of trend: " (w.rule.words()) " (" (w.rule.as_str()) "); does not block release"
                                }
                            }
                        }
                        td { @if let Some(r) = r { (outcome(r.result.outcome)) } }
                        td { @if let Some(r) = r { (status(r.status.as_str())) } }
                        td { @if let Some(r) = r { (r.result.performed_by.full_name) br; (user.time(r.result.performed_at)) } }
                        td { @if let Some(r) = r { @for s in &r.signatures { (s.signer.full_name) br; (user.time(s.signed_at)) } } }
                    }
                }
            }
        }
        @if !earlier.is_empty() {
            h2 { "Results not counted (superseded, rejected in review, invalidated)" }
            table id="earlier" {
                thead { tr { th { "Test" } th { "Result" } th { "Status" } th { "Performed by" } th { "Why" } } }
                tbody { @for r in &earlier {
                    tr.earlier {
                        td { strong { (r.result.test_code) } }
                        td { (r.result.value) " " (r.result.unit.clone().unwrap_or_default()) " " (outcome(r.result.outcome)) }
                        td { (status(r.status.as_str())) }
                        td { (r.result.performed_by.full_name) br; (user.time(r.result.performed_at)) }
                        td {
                            @if let Some(d) = record.deviation_about(r.result.id) {
                                "Investigated in " a href={"/batches/" (id) "/deviations"} { "“" (d.title) "”" }
                                @if let Some(c) = d.conclusion { ", concluded " (c.as_str().replace('_', " ")) } @else { ", still open" }
                                ". "
                            }
                            @if let Some(n) = record.replacement_of(r.result.id) {
                                "Replaced by " (n.value) " " (n.unit.clone().unwrap_or_default())
                                @if let Some(why) = &n.reason { ": " (why) }
                                "."
                            }
                        }
                    }
                } }
            }
        }
        h2 { "Signatures" }
        @if detail.signatures.is_empty() { p.muted { "No release, rejection or recall signature yet." } }
        ul { @for s in &detail.signatures { li { strong { (s.signer.full_name) } " · " (user.time(s.signed_at)) " · " (s.statement) @if let Some(r) = &s.reason { " · " (r) } } } }
        h2 { "Deviations" }
        @if detail.deviations.is_empty() { p.muted { "None." } }
        table { tbody { @for d in &detail.deviations {
            tr { td { (d.deviation.kind.as_str().replace('_', " ")) " · " (d.deviation.severity.as_str()) } td { (d.deviation.title) } td { (status(d.deviation.status.as_str())) } td { @if let Some(c) = d.deviation.conclusion { (c.as_str().replace('_', " ")) @if let Some(rc) = &d.deviation.root_cause { br; span.muted { "Root cause: " (rc) } } } } }
        } } }
        h2 { "Chain of custody" }
        @if detail.custody.is_empty() { p.muted { "No custody event yet." } }
        ol { @for e in &detail.custody {
            li { strong { (e.event.as_str()) } " · " (user.time(e.occurred_at)) " · " (e.location) " · " (e.party)
                @if let Some(t) = &e.temperature_c { " · " (t) " °C" @if e.excursion { " " span.fail { "EXCURSION" } } }
                @if let Some(r) = &e.recipient_id { " · recipient " (r) } }
        } }
        p.actions {
            a.button.secondary href={"/batches/" (b.id) "/label"} { "Bag label (PDF)" } " "
            @if b.status.is_released() {
                a.button.secondary href={"/batches/" (b.id) "/certificate"} { "Certificate of Analysis (PDF)" }
            }
        }
    };
    Ok(html_page(
        actix_web::http::StatusCode::OK,
        page(&format!("Batch {}", b.batch_number), Some(&user), body),
    ))
}

/// The Certificate of Analysis, for the browser (the same PDF as the API's).
#[get("/batches/{id}/certificate")]
pub async fn certificate(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    let id = id.into_inner();
    let actor = user.0.actor.clone();
    let data = state
        .report_for_batch(id, move |c| {
            crate::services::certificate::coa_data(c, id, &actor)
        })
        .await?;
    let number = data.batch_number.clone();
    let pdf = web::block(move || crate::report::coa::render(&data))
        .await
        .map_err(AppError::from)?
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering the certificate: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(crate::report::download(false, &format!("CoA-{number}.pdf")))
        .body(pdf))
}

/// The bag label (PDF): product, batch, expiry, storage, recipient and the
/// donation's DIN as an ISBT 128 Code 128 barcode.
#[get("/batches/{id}/label")]
pub async fn bag_label(
    state: web::Data<AppState>,
    _user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    let id = id.into_inner();
    let data = state
        .db(move |c| crate::services::certificate::label_data(c, id))
        .await?;
    let pdf = web::block(move || crate::report::label::render(&data))
        .await
        .map_err(AppError::from)?
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering the label: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            "Content-Disposition",
            format!("inline; filename=\"label-{id}.pdf\""),
        ))
        .body(pdf))
}

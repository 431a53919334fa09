//! The batch list (filters, search by batch number or donor DIN), the
//! batch page (limits, results, signatures, deviations, custody, readiness
//! with every blocker in words) and its certificate.

use super::layout::{html_page, outcome, page, recorded_notice, status};
use super::session::{WebError, WebUser};
use crate::domain::StoredName;
use crate::domain::batch::BatchStatus;
use crate::domain::release::BlockerCode;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::domain::spec::describe_limit;
use crate::error::AppError;
use crate::http::AppState;
use crate::i18n::Locale;
use crate::report::coa::CoaLang;
use crate::services::PageRequest;
use crate::services::batch_record::views::BatchDetail;
use crate::services::batches::{self as batch_svc, BatchFilter};
use crate::tr;
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
            p { a.button href="/batches/new" { (tr!(user.lang(), "home-start-batch")) } }
        }
        form.inline.card method="get" action="/batches" role="search" {
            label { (tr!(user.lang(), "batches-search"))
                input type="search" name="q" value=(q.q.clone().unwrap_or_default()) autofocus; }
            label { (tr!(user.lang(), "col-status"))
                select name="status" {
                    option value="" { (tr!(user.lang(), "any")) }
                    @for s in <BatchStatus as strum::VariantArray>::VARIANTS { option value=(s.as_str()) selected[q.status.as_deref() == Some(s.as_str())] { (super::layout::status_words(s.as_str(), user.lang())) } }
                }
            }
            label { (tr!(user.lang(), "col-product"))
                select name="product_id" {
                    option value="" { (tr!(user.lang(), "any")) }
                    @for p in &products.items {
                        option value=(p.id) selected[product_filter == Some(p.id)] { (p.code) " – " (p.name) }
                    }
                }
            }
            button type="submit" { (tr!(user.lang(), "search")) }
        }
        @if list.items.is_empty() { p.muted { (tr!(user.lang(), "batches-none")) } } @else {
            table {
                thead { tr { th { (tr!(user.lang(), "col-batch")) } th { (tr!(user.lang(), "col-product")) } th { (tr!(user.lang(), "col-status")) } th { (tr!(user.lang(), "label-donor-din")) } th { (tr!(user.lang(), "col-manufactured")) } th { (tr!(user.lang(), "col-expires")) } } }
                tbody {
                    @for b in &list.items {
                        tr {
                            td { a href={"/batches/" (b.id)} { (b.batch_number) } }
                            td { (product_code(b.product_id)) }
                            td { (status(b.status.as_str(), user.lang())) }
                            td { (b.donor_din.clone().unwrap_or_default()) }
                            td { (user.time(b.manufactured_at)) }
                            td { (user.time(b.expires_at)) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next { p { a href=(n) { (tr!(user.lang(), "next-page")) } } }
    };
    Ok(html_page(
        actix_web::http::StatusCode::OK,
        page(&tr!(user.lang(), "nav-batches"), Some(&user), body),
    ))
}

fn blocker_title(code: BlockerCode, loc: Locale) -> String {
    match code {
        BlockerCode::MissingResult => tr!(loc, "blocker-title-missing-result"),
        BlockerCode::ResultFailed => tr!(loc, "blocker-title-result-failed"),
        BlockerCode::ResultNotReviewed => tr!(loc, "blocker-title-result-not-reviewed"),
        BlockerCode::OpenDeviation => tr!(loc, "blocker-title-open-deviation"),
        BlockerCode::ConfirmedOos => tr!(loc, "blocker-title-confirmed-oos"),
        BlockerCode::InTransit => tr!(loc, "blocker-title-in-transit"),
        BlockerCode::Expired => tr!(loc, "blocker-title-expired"),
        BlockerCode::ParentNotReleased => tr!(loc, "blocker-title-parent-not-released"),
        BlockerCode::AuditTrailNotReviewed => tr!(loc, "blocker-title-audit-trail-not-reviewed"),
        BlockerCode::CorrectionFailed => tr!(loc, "blocker-title-correction-failed"),
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
            div.notice.ok role="status" id="reviewed" { (tr!(user.lang(), "batch-reviewed-notice", n = n)) }
        }
        @if let Some(r) = just_recorded { (recorded_notice(&r.result, "", user.lang())) }
        nav.card.actions aria-label=(tr!(user.lang(), "batch-actions")) {
            @for (path, label) in [
                (Action::RecordResult, "results/new", (tr!(user.lang(), "batch-record"))),
                (Action::RecordResult, "results/import", (tr!(user.lang(), "batch-import"))),
                (Action::Sign(Meaning::Reviewed), "review", (tr!(user.lang(), "batch-review"))),
                (Action::Sign(Meaning::Released), "release", (tr!(user.lang(), "batch-release"))),
                (Action::RecordCustody, "custody/new", (tr!(user.lang(), "batch-custody"))),
                (Action::OpenDeviation, "deviations", (tr!(user.lang(), "release-deviations-label"))),
                (Action::ReadAuditTrail, "history", (tr!(user.lang(), "batch-history"))),
                (Action::ReadAuditTrail, "audit-review", (tr!(user.lang(), "batch-audit-review"))),
            ].into_iter().filter(|(a, _, _)| user.may(*a)).map(|(_, p, l)| (p, l)) {
                a.button href={"/batches/" (id) "/" (path)} { (label) }
            }
        }
        div.card {
            dl.facts {
                dt { (tr!(user.lang(), "col-status")) } dd { (status(b.status.as_str(), user.lang())) }
                dt { (tr!(user.lang(), "col-product")) } dd { (record.product.name) " (" (record.product.code) ")" }
                dt { (tr!(user.lang(), "col-specification")) } dd { (tr!(user.lang(), "spec-version", version = record.spec.version.to_string())) }
                dt { (tr!(user.lang(), "label-donor-din")) } dd { (b.donor_din.clone().unwrap_or_else(|| tr!(user.lang(), "none"))) }
                dt { (tr!(user.lang(), "label-intended-recipient")) } dd { (b.intended_recipient.clone().unwrap_or_else(|| tr!(user.lang(), "none"))) }
                dt { (tr!(user.lang(), "col-manufactured")) } dd { (user.time(b.manufactured_at)) }
                dt { (tr!(user.lang(), "col-expires")) } dd { (user.time(b.expires_at)) }
            }
        }
        @if b.status == BatchStatus::Quarantine {
            h2 { (tr!(user.lang(), "batch-readiness")) }
            @if !missing.is_empty() {
                div.card.checklist id="to-do" {
                    p { strong { (tr!(user.lang(), "batch-still-to-record", n = missing.len())) } }
                    ul { @for bl in &missing {
                        li { "☐ " (bl.test_code.clone().unwrap_or_default())
                            @if let Some(t) = bl.test_code.as_deref().and_then(|c| record.test(c)) { " – " (t.name) }
                            @if user.may(Action::RecordResult) {
                                " " a.button.secondary href={"/batches/" (id) "/results/new?test=" (bl.test_code.clone().unwrap_or_default())} { (tr!(user.lang(), "batch-record-one")) }
                            }
                        }
                    } }
                }
            }
            @if readiness.releasable {
                div.notice.ok { (tr!(user.lang(), "batch-releasable")) }
            } @else if !other.is_empty() {
                div.notice.error {
                    @if readiness.conditionally_releasable { p { (tr!(user.lang(), "batch-conditional")) } }
                    ul.blockers { @for bl in &other { li { strong { (blocker_title(bl.code, user.lang())) } ": " (super::layout::blocker_words(bl, user.lang())) } } }
                }
            } @else if readiness.conditionally_releasable {
                div.notice { (tr!(user.lang(), "batch-conditional")) }
            }
        } @else {
            h2 { (tr!(user.lang(), "col-status")) }
            div class={"notice " (if b.status.is_released() { "ok" } else { "error" })} id="status-said" {
                (tr!(user.lang(), "release-batch-is")) " " strong { (super::layout::status_words(b.status.as_str(), user.lang())) } (tr!(user.lang(), "sentence-end"))
                @for s in &detail.signatures { " " (s.statement) " — " (s.signer.full_name) ", " (user.time(s.signed_at)) (tr!(user.lang(), "sentence-end")) }
            }
        }
        h2 { (tr!(user.lang(), "batch-spec-results")) }
        table {
            thead { tr { th { (tr!(user.lang(), "col-test")) } th { (tr!(user.lang(), "col-method")) } th { (tr!(user.lang(), "col-limit")) } th { (tr!(user.lang(), "col-result")) } th { (tr!(user.lang(), "col-outcome")) } th { (tr!(user.lang(), "col-status")) } th { (tr!(user.lang(), "col-performed-by")) } th { (tr!(user.lang(), "col-reviewed-by")) } } }
            tbody {
                @for t in &record.spec.tests {
                    @let r = current(&t.code);
                    tr {
                        td { strong { (t.code) } " " (t.name) }
                        td { (t.method) }
                        td { (describe_limit(t)) }
                        td {
                            @if let Some(r) = r { (r.result.value) " " (r.result.unit.clone().unwrap_or_default()) } @else { span.muted { (tr!(user.lang(), "none")) } }
                            @if let Some(f) = r.and_then(|r| r.result.source_file_id) {
                                br; a.source-file href={"/source-files/" (f)} title=(tr!(user.lang(), "batch-source-file-title")) { (tr!(user.lang(), "batch-source-file")) }
                            }
                            @for w in warnings.iter().filter(|w| w.test_code == t.code) {
                                br; a.out-of-trend href={"/products/" (record.product.id) "/trends?test_code=" (t.code)} title=(tr!(user.lang(), "batch-trend-title")) {
                                    "⚠ " (tr!(user.lang(), "batch-out-of-trend", rule = user.lang().code_words("rule", w.rule.as_str()), code = w.rule.as_str()))
                                }
                            }
                        }
                        td { @if let Some(r) = r { (outcome(r.result.outcome, user.lang())) } }
                        td { @if let Some(r) = r { (status(r.status.as_str(), user.lang())) } }
                        td { @if let Some(r) = r { (r.result.performed_by.full_name) br; (user.time(r.result.performed_at)) } }
                        td { @if let Some(r) = r { @for s in &r.signatures { (s.signer.full_name) br; (user.time(s.signed_at)) } } }
                    }
                }
            }
        }
        @if !earlier.is_empty() {
            h2 { (tr!(user.lang(), "batch-earlier")) }
            table id="earlier" {
                thead { tr { th { (tr!(user.lang(), "col-test")) } th { (tr!(user.lang(), "col-result")) } th { (tr!(user.lang(), "col-status")) } th { (tr!(user.lang(), "col-performed-by")) } th { (tr!(user.lang(), "label-why")) } } }
                tbody { @for r in &earlier {
                    tr.earlier {
                        td { strong { (r.result.test_code) } }
                        td { (r.result.value) " " (r.result.unit.clone().unwrap_or_default()) " " (outcome(r.result.outcome, user.lang())) }
                        td { (status(r.status.as_str(), user.lang())) }
                        td { (r.result.performed_by.full_name) br; (user.time(r.result.performed_at)) }
                        td {
                            @if let Some(d) = record.deviation_about(r.result.id) {
                                (tr!(user.lang(), "batch-investigated-in")) a href={"/batches/" (id) "/deviations"} { "“" (d.title) "”" }
                                @if let Some(c) = d.conclusion { (tr!(user.lang(), "review-concluded")) (super::layout::status_words(c.as_str(), user.lang())) } @else { (tr!(user.lang(), "batch-still-open")) }
                                (tr!(user.lang(), "batch-sentence-gap"))
                            }
                            @if let Some(n) = record.replacement_of(r.result.id) {
                                (tr!(user.lang(), "batch-replaced-by")) (n.value) " " (n.unit.clone().unwrap_or_default())
                                @if let Some(why) = &n.reason { ": " (why) }
                                "."
                            }
                        }
                    }
                } }
            }
        }
        h2 { (tr!(user.lang(), "batch-signatures")) }
        @if detail.signatures.is_empty() { p.muted { (tr!(user.lang(), "batch-no-signatures")) } }
        ul { @for s in &detail.signatures { li { strong { (s.signer.full_name) } " · " (user.time(s.signed_at)) " · " (s.statement) @if let Some(r) = &s.reason { " · " (r) } } } }
        h2 { (tr!(user.lang(), "release-deviations-label")) }
        @if detail.deviations.is_empty() { p.muted { (tr!(user.lang(), "batch-none")) } }
        table { tbody { @for d in &detail.deviations {
            tr { td { (d.deviation.kind.as_str().replace('_', " ")) " · " (d.deviation.severity.as_str()) } td { (d.deviation.title) } td { (status(d.deviation.status.as_str(), user.lang())) } td { @if let Some(c) = d.deviation.conclusion { (super::layout::status_words(c.as_str(), user.lang())) @if let Some(rc) = &d.deviation.root_cause { br; span.muted { (tr!(user.lang(), "batch-root-cause")) (rc) } } } } }
        } } }
        h2 { (tr!(user.lang(), "batch-custody-chain")) }
        @if detail.custody.is_empty() { p.muted { (tr!(user.lang(), "batch-no-custody")) } }
        ol { @for e in &detail.custody {
            li { strong { (e.event.as_str()) } " · " (user.time(e.occurred_at)) " · " (e.location) " · " (e.party)
                @if let Some(t) = &e.temperature_c { " · " (t) " °C" @if e.excursion { " " span.fail { (tr!(user.lang(), "batch-excursion")) } } }
                @if let Some(r) = &e.recipient_id { (tr!(user.lang(), "batch-recipient")) (r) } }
        } }
        p.actions {
            a.button.secondary href={"/batches/" (b.id) "/label"} { (tr!(user.lang(), "batch-label")) } " "
            @if b.status.is_released() {
                a.button.secondary href={"/batches/" (b.id) "/certificate"} { (tr!(user.lang(), "batch-coa")) }
            }
        }
    };
    Ok(html_page(
        actix_web::http::StatusCode::OK,
        page(
            &tr!(user.lang(), "batch-title", batch = b.batch_number.as_str()),
            Some(&user),
            body,
        ),
    ))
}

/// The certificate's and the bag label's query: their language.
#[derive(Debug, Deserialize)]
pub struct CertificateQuery {
    lang: Option<CoaLang>,
}

/// The Certificate of Analysis, for the browser (the same PDF as the API's).
#[get("/batches/{id}/certificate")]
pub async fn certificate(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    query: web::Query<CertificateQuery>,
) -> Result<HttpResponse, WebError> {
    let id = id.into_inner();
    let actor = user.0.actor.clone();
    let lang = query.lang.unwrap_or(CoaLang::of(actor.locale));
    let key = state.signing.seal.verifying();
    let data = state
        .report_for_batch(id, move |c| {
            // Printed only as signed.
            crate::services::verification::check_batch_record(c, &key, id)?;
            crate::services::certificate::coa_data(c, id, &actor, lang)
        })
        .await?;
    let number = data.batch_number.clone();
    let pdf = web::block(move || crate::report::coa::render(&data))
        .await
        .map_err(AppError::from)?
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering the certificate: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(crate::http::download::download(
            false,
            &format!("CoA-{}.pdf", crate::report::name_part(&number)),
        ))
        .body(pdf))
}

/// The bag label (PDF): product, batch, expiry, storage, recipient and the
/// donation's DIN as an ISBT 128 Code 128 barcode.
#[get("/batches/{id}/label")]
pub async fn bag_label(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    query: web::Query<CertificateQuery>,
) -> Result<HttpResponse, WebError> {
    let id = id.into_inner();
    let lang = query.lang.unwrap_or(CoaLang::of(user.lang()));
    let data = state
        .db(move |c| crate::services::certificate::label_data(c, id, lang))
        .await?;
    let pdf = web::block(move || crate::report::label::render(&data))
        .await
        .map_err(AppError::from)?
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering the label: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(crate::http::download::download(
            true,
            &format!("label-{id}.pdf"),
        ))
        .body(pdf))
}

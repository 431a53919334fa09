//! `/`: the signed-in person's work list, by role. A technician sees what
//! is still to record or replace, a reviewer the queue by batch, QA what
//! waits for release, the open deviations and the specifications to
//! approve, an auditor the way into the trail.

use super::layout::{html_page, page};
use super::session::{WebError, WebUser};
use crate::app::AppState;
use crate::domain::StoredName;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::services::results as result_svc;
use crate::services::verification;
use crate::services::worklist::{self, BatchTodo, WorkList};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use chrono::Utc;
use maud::{Markup, html};
use uuid::Uuid;

fn batch_rows(list: &[BatchTodo], record: bool) -> Markup {
    html! {
        table { tbody { @for b in list {
            tr {
                td { a href={"/batches/" (b.id)} { (b.batch_number) } }
                td { @if !b.missing.is_empty() { "missing: " (b.missing.join(", ")) } }
                td { @if record { @if let Some(first) = b.missing.first() {
                    a.button href={"/batches/" (b.id) "/results/new?test=" (first)} { "Record " (first) }
                } } }
            }
        } } }
    }
}

fn age_words(at: chrono::DateTime<Utc>) -> String {
    let days = (Utc::now() - at).num_days();
    match days {
        0 => "today".to_owned(),
        1 => "1 day".to_owned(),
        n => format!("{n} days"),
    }
}

/// The start page.
#[get("/")]
pub async fn home(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, WebError> {
    let me = user.0.actor.id;
    let reviews = user.may(Action::Sign(Meaning::Reviewed));
    let qa = user.may(Action::Sign(Meaning::Released));
    let tech = user.may(Action::RecordResult);
    let audits = user.may(Action::ReadAuditTrail);
    let (list, queue, last, expiring) = state
        .db(move |c| {
            let last = if audits {
                verification::last_verification(c)?
            } else {
                None
            };
            let list = if tech || qa {
                worklist::work_list(c, me)?
            } else {
                WorkList::default()
            };
            let queue = if reviews {
                result_svc::review_queue(c, me, 200)?
            } else {
                Vec::new()
            };
            let expiring = if qa {
                crate::services::qualifications::expiring(c, 30)?
            } else {
                Vec::new()
            };
            Ok((list, queue, last, expiring))
        })
        .await?;
    let mut by_batch: Vec<(Uuid, String, usize)> = Vec::new();
    for a in &queue {
        match by_batch
            .iter_mut()
            .find(|(id, _, _)| *id == a.result.batch_id)
        {
            Some(b) => b.2 += 1,
            None => by_batch.push((a.result.batch_id, a.batch_number.clone(), 1)),
        }
    }
    let body = html! {
        @if tech {
            section id="technician" {
                h2 { "Results to record (" (list.to_record.len()) " batches)" }
                @if list.to_record.is_empty() { p.muted { "No batch in quarantine is missing a result." } } @else { (batch_rows(&list.to_record, true)) }
                h2 { "Results to replace after a rejected review" }
                @if list.to_replace.is_empty() { p.muted { "None." } } @else {
                    table { tbody { @for r in &list.to_replace { tr {
                        td { a href={"/batches/" (r.batch_id)} { (r.batch_number) } }
                        td { (r.test_code) " " (r.value) }
                        td { @if let Some(why) = &r.reason { "rejected: " (why) } }
                        td { a.button href={"/batches/" (r.batch_id) "/results/new?test=" (r.test_code) "&replaces=" (r.result_id)} { "Record the replacement" } }
                    } } } }
                }
                p { a.button.secondary href="/batches/new" { "Start a batch" } }
            }
        }
        @if reviews {
            section id="reviewer" {
                h2 { "Results awaiting your review (" (queue.len()) ")" }
                @if by_batch.is_empty() { p.muted { "Nothing awaits your review." } } @else {
                    ul.worklist { @for (id, number, n) in &by_batch {
                        li { a.button href={"/batches/" (id) "/review"} { "Review batch " (number) " (" (n) (if *n == 1 { " result" } else { " results" }) ")" } }
                    } }
                }
            }
        }
        @if qa {
            section id="qa" {
                h2 { "Ready for release (" (list.ready_for_release.len()) ")" }
                @if list.ready_for_release.is_empty() { p.muted { "No batch is ready for release." } } @else {
                    ul.worklist { @for b in &list.ready_for_release {
                        li {
                            @if b.you_may_release {
                                a.button href={"/batches/" (b.id) "/release"} { "Release " (b.batch_number) }
                            } @else {
                                a href={"/batches/" (b.id)} { (b.batch_number) }
                                span.muted { " — you took part in its testing: another QA person must release it" }
                            }
                        }
                    } }
                }
                h2 { "Audit trail to review before release (" (list.audit_review_waiting.len()) ")" }
                @if list.audit_review_waiting.is_empty() { p.muted { "No batch waits for an audit-trail review." } } @else {
                    ul.worklist id="audit-review-waiting" { @for b in &list.audit_review_waiting {
                        li {
                            @if b.you_may_release {
                                a.button href={"/batches/" (b.id) "/audit-review"} { "Review the trail of " (b.batch_number) }
                            } @else {
                                a href={"/batches/" (b.id) "/audit-review"} { (b.batch_number) }
                                span.muted { " — you took part in its testing: another QA person must review its trail" }
                            }
                            @if !b.missing.is_empty() { span.muted { " (results still missing: " (b.missing.join(", ")) ")" } }
                        }
                    } }
                }
                h2 { "Conditionally released, results pending (" (list.conditional_awaiting.len()) ")" }
                @if list.conditional_awaiting.is_empty() { p.muted { "None." } } @else { (batch_rows(&list.conditional_awaiting, false)) }
                h2 { "Open deviations (" (list.open_deviations.len()) ")" }
                @if list.open_deviations.is_empty() { p.muted { "None." } } @else {
                    table {
                        thead { tr { th { "Severity" } th { "Batch" } th { "Deviation" } th { "Open for" } } }
                        tbody { @for d in &list.open_deviations { tr {
                            td { span class={"severity " (d.severity.as_str())} { (d.severity.as_str()) } }
                            td { a href={"/batches/" (d.batch_id) "/deviations"} { (d.batch_number) } }
                            td { (d.title) }
                            td { (age_words(d.opened_at)) br; (user.time(d.opened_at)) }
                        } } }
                    }
                }
                h2 { "Qualifications expiring within 30 days (" (expiring.len()) ")" }
                @if expiring.is_empty() { p.muted { "None." } } @else {
                    table { tbody { @for q in &expiring { tr {
                        td { (q.username) } td { (q.test_code) } td { "until " (user.time(q.valid_until)) }
                    } } } }
                    p { a.button.secondary href="/qualifications" { "Requalify" } }
                }
                h2 { "Specifications awaiting approval (" (list.specs_awaiting.len()) ")" }
                @if list.specs_awaiting.is_empty() { p.muted { "None." } } @else {
                    table { tbody { @for s in &list.specs_awaiting { tr {
                        td { a href={"/specifications/" (s.id)} { (s.product_code) " version " (s.version) } }
                        td { "by " (s.author) ", " (user.time(s.created_at)) }
                    } } } }
                }
            }
        }
        @if user.may(Action::ReadAuditTrail) {
            section id="auditor" {
                h2 { "Audit trail" }
                @if let Some(l) = &last {
                    p { "Last verification: " (user.time(l.at)) " by " (l.by) ", " (l.events) " entries, "
                        @if l.ok { span.pass { "every chain and anchor verified" } } @else { span.fail { "BROKEN" } } "." }
                } @else { p.muted { "No verification has been run from these pages yet." } }
                p.actions {
                    a.button href="/audit" { "Search the audit trail" } " "
                    a.button.secondary href="/audit/verify" { "Verify every chain" }
                }
            }
        }
        @if user.may(Action::ManageUsers) {
            section id="admin" {
                h2 { "Accounts" }
                p { a.button href="/users" { "Manage users" } }
            }
        }
        p { a href="/batches" { "All batches" } }
    };
    Ok(html_page(
        StatusCode::OK,
        page("Your work", Some(&user), body),
    ))
}

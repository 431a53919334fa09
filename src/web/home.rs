//! `/`: the signed-in person's work list, by role. A technician sees what
//! is still to record or replace, a reviewer the queue by batch, QA what
//! waits for release, the open deviations and the specifications to
//! approve, an auditor the way into the trail.

use super::layout::{html_page, page};
use super::session::{WebError, WebUser};
use crate::domain::StoredName;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::http::AppState;
use crate::i18n::Locale;
use crate::services::results as result_svc;
use crate::services::verification;
use crate::services::worklist::{self, BatchTodo, WorkList};
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use chrono::Utc;
use maud::{Markup, html};
use uuid::Uuid;

fn batch_rows(list: &[BatchTodo], record: bool, loc: Locale) -> Markup {
    html! {
        table { tbody { @for b in list {
            tr {
                td { a href={"/batches/" (b.id)} { (b.batch_number) } }
                td { @if !b.missing.is_empty() { (tr!(loc, "home-missing")) " " (b.missing.join(", ")) } }
                td { @if record { @if let Some(first) = b.missing.first() {
                    a.button href={"/batches/" (b.id) "/results/new?test=" (first)} { (tr!(loc, "batch-record-one")) " " (first) }
                } } }
            }
        } } }
    }
}

fn age_words(at: chrono::DateTime<Utc>, loc: Locale) -> String {
    let days = (Utc::now() - at).num_days();
    match days {
        0 => tr!(loc, "home-today"),
        n => tr!(loc, "home-days", n = n),
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
                h2 { (tr!(user.lang(), "home-to-record", n = list.to_record.len())) }
                @if list.to_record.is_empty() { p.muted { (tr!(user.lang(), "home-none-to-record")) } } @else { (batch_rows(&list.to_record, true, user.lang())) }
                h2 { (tr!(user.lang(), "home-to-replace")) }
                @if list.to_replace.is_empty() { p.muted { (tr!(user.lang(), "batch-none")) } } @else {
                    table { tbody { @for r in &list.to_replace { tr {
                        td { a href={"/batches/" (r.batch_id)} { (r.batch_number) } }
                        td { (r.test_code) " " (r.value) }
                        td { @if let Some(why) = &r.reason { (tr!(user.lang(), "home-rejected")) " " (why) } }
                        td { a.button href={"/batches/" (r.batch_id) "/results/new?test=" (r.test_code) "&replaces=" (r.result_id)} { (tr!(user.lang(), "home-record-replacement")) } }
                    } } } }
                }
                p { a.button.secondary href="/batches/new" { (tr!(user.lang(), "home-start-batch")) } }
            }
        }
        @if reviews {
            section id="reviewer" {
                h2 { (tr!(user.lang(), "home-awaiting-review", n = queue.len())) }
                @if by_batch.is_empty() { p.muted { (tr!(user.lang(), "review-queue-empty")) } } @else {
                    ul.worklist { @for (id, number, n) in &by_batch {
                        li { a.button href={"/batches/" (id) "/review"} { (tr!(user.lang(), "review-batch-link", batch = number.as_str(), n = *n)) } }
                    } }
                }
            }
        }
        @if qa {
            section id="qa" {
                h2 { (tr!(user.lang(), "home-ready", n = list.ready_for_release.len())) }
                @if list.ready_for_release.is_empty() { p.muted { (tr!(user.lang(), "home-none-ready")) } } @else {
                    ul.worklist { @for b in &list.ready_for_release {
                        li {
                            @if b.you_may_release {
                                a.button href={"/batches/" (b.id) "/release"} { (tr!(user.lang(), "home-release-batch", batch = b.batch_number.as_str())) }
                            } @else {
                                a href={"/batches/" (b.id)} { (b.batch_number) }
                                span.muted { (tr!(user.lang(), "home-took-part-release")) }
                            }
                        }
                    } }
                }
                h2 { (tr!(user.lang(), "home-trail-to-review", n = list.audit_review_waiting.len())) }
                @if list.audit_review_waiting.is_empty() { p.muted { (tr!(user.lang(), "home-none-trail")) } } @else {
                    ul.worklist id="audit-review-waiting" { @for b in &list.audit_review_waiting {
                        li {
                            @if b.you_may_release {
                                a.button href={"/batches/" (b.id) "/audit-review"} { (tr!(user.lang(), "home-review-trail-of", batch = b.batch_number.as_str())) }
                            } @else {
                                a href={"/batches/" (b.id) "/audit-review"} { (b.batch_number) }
                                span.muted { (tr!(user.lang(), "home-took-part-trail")) }
                            }
                            @if !b.missing.is_empty() { span.muted { " " (tr!(user.lang(), "home-still-missing", tests = b.missing.join(", "))) } }
                        }
                    } }
                }
                h2 { (tr!(user.lang(), "home-conditional", n = list.conditional_awaiting.len())) }
                @if list.conditional_awaiting.is_empty() { p.muted { (tr!(user.lang(), "batch-none")) } } @else { (batch_rows(&list.conditional_awaiting, false, user.lang())) }
                h2 { (tr!(user.lang(), "home-open-deviations", n = list.open_deviations.len())) }
                @if list.open_deviations.is_empty() { p.muted { (tr!(user.lang(), "batch-none")) } } @else {
                    table {
                        thead { tr { th { (tr!(user.lang(), "label-severity")) } th { (tr!(user.lang(), "col-batch")) } th { (tr!(user.lang(), "home-col-deviation")) } th { (tr!(user.lang(), "home-col-open-for")) } } }
                        tbody { @for d in &list.open_deviations { tr {
                            td { span class={"severity " (d.severity.as_str())} { (user.lang().code_words("severity", d.severity.as_str())) } }
                            td { a href={"/batches/" (d.batch_id) "/deviations"} { (d.batch_number) } }
                            td { (d.title) }
                            td { (age_words(d.opened_at, user.lang())) br; (user.time(d.opened_at)) }
                        } } }
                    }
                }
                h2 { (tr!(user.lang(), "home-expiring", n = expiring.len())) }
                @if expiring.is_empty() { p.muted { (tr!(user.lang(), "batch-none")) } } @else {
                    table { tbody { @for q in &expiring { tr {
                        td { (q.username) } td { (q.test_code) } td { (tr!(user.lang(), "home-until")) " " (user.time(q.valid_until)) }
                    } } } }
                    p { a.button.secondary href="/qualifications" { (tr!(user.lang(), "home-requalify")) } }
                }
                h2 { (tr!(user.lang(), "home-specs-awaiting", n = list.specs_awaiting.len())) }
                @if list.specs_awaiting.is_empty() { p.muted { (tr!(user.lang(), "batch-none")) } } @else {
                    table { tbody { @for s in &list.specs_awaiting { tr {
                        td { a href={"/specifications/" (s.id)} { (s.product_code) " " (tr!(user.lang(), "spec-version", version = s.version.as_str())) } }
                        td { (tr!(user.lang(), "home-by", name = s.author.as_str())) ", " (user.time(s.created_at)) }
                    } } } }
                }
            }
        }
        @if user.may(Action::ReadAuditTrail) {
            section id="auditor" {
                h2 { (tr!(user.lang(), "nav-audit-trail")) }
                @if let Some(l) = &last {
                    p { (tr!(user.lang(), "home-last-verification")) " " (user.time(l.at)) " · " (l.by) " · " (tr!(user.lang(), "home-entries", n = l.events)) " · "
                        @if l.ok { span.pass { (tr!(user.lang(), "home-verified")) } } @else { span.fail { (tr!(user.lang(), "home-broken")) } } (tr!(user.lang(), "sentence-end")) }
                } @else { p.muted { (tr!(user.lang(), "home-no-verification")) } }
                p.actions {
                    a.button href="/audit" { (tr!(user.lang(), "home-search-trail")) } " "
                    a.button.secondary href="/audit/verify" { (tr!(user.lang(), "home-verify")) }
                }
            }
        }
        @if user.may(Action::ManageUsers) {
            section id="admin" {
                h2 { (tr!(user.lang(), "home-accounts")) }
                p { a.button href="/users" { (tr!(user.lang(), "home-manage-users")) } }
            }
        }
        p { a href="/batches" { (tr!(user.lang(), "home-all-batches")) } }
    };
    Ok(html_page(
        StatusCode::OK,
        page(&tr!(user.lang(), "nav-your-work"), Some(&user), body),
    ))
}

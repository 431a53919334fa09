//! The page shell, navigation and small view helpers shared by every page.

use super::session::{WebError, WebUser};
use crate::domain::StoredName;
use crate::domain::record::RecordedResult;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::domain::spec::Outcome;
use crate::error::{AppError, FieldError, Problem};
use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, html};

/// A timestamp in UTC (pages without a reader's zone).
pub fn time(at: DateTime<Utc>) -> Markup {
    time_in(at, Tz::UTC)
}

/// A timestamp in `zone` (`2026-11-20 14:05 CET`), to the second and in
/// UTC on hover.
pub fn time_in(at: DateTime<Utc>, zone: Tz) -> Markup {
    let utc = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let local = at
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string();
    html! { time datetime=(at.to_rfc3339()) title=(utc) { (local) } }
}

/// The day of `at` in `zone` (the whole time on hover), for dense tables.
pub fn day_in(at: DateTime<Utc>, zone: Tz) -> Markup {
    let whole = at
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string();
    let day = at.with_timezone(&zone).format("%Y-%m-%d").to_string();
    html! { time datetime=(at.to_rfc3339()) title=(whole) { (day) } }
}

/// Reads a `datetime-local` value typed in `zone`. A time the clocks skip
/// is refused; one they pass twice (the hour they go back) is read as the
/// first.
pub fn read_local(field: &str, v: &str, zone: Tz) -> Result<DateTime<Utc>, AppError> {
    let naive = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| AppError::invalid_field(field, "is not a date and time (YYYY-MM-DD HH:MM)"))?;
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err(AppError::invalid_field(
            field,
            format!("does not exist in {}: the clocks skip it", zone.name()),
        )),
    }
}

/// A status badge.
pub fn status(s: &str) -> Markup {
    html! { span class={"status " (s)} { (s.replace('_', " ")) } }
}

/// Pass or fail, coloured and in words.
pub fn outcome(o: Outcome) -> Markup {
    html! { span class=(o.as_str()) { (o.as_str().to_uppercase()) } }
}

/// The outcome of a result just saved, on the page that follows.
pub fn recorded_notice(r: &RecordedResult, then: &str) -> Markup {
    let pass = r.outcome == Outcome::Pass;
    html! {
        div class={"notice " (if pass { "ok" } else { "error" })} role="status" id="recorded" {
            "Result recorded: " strong { (r.test_code) " " (r.value) " " (r.unit.clone().unwrap_or_default()) } " — " (outcome(r.outcome))
            @if !pass { ". An OOS investigation was opened and QA notified." }
            (then)
        }
    }
}

/// A hidden CSRF field.
pub fn csrf(user: &WebUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.0.csrf_token); }
}

/// The full page.
pub fn page(title: &str, user: Option<&WebUser>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cellqc" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                header.top {
                    a href="/" { "cellqc" }
                    @if let Some(u) = user {
                        nav aria-label="Main" {
                            a href="/" { "Your work" }
                            a href="/batches" { "Batches" }
                            a href="/products" { "Products" }
                            a href="/qualifications" { "Qualifications" }
                            a href="/instruments" { "Instruments" }
                            a href="/materials" { "Materials" }
                            @if u.may(Action::Sign(Meaning::Reviewed)) { a href="/review" { "Review queue" } }
                            @if u.may(Action::ReadAuditTrail) { a href="/audit" { "Audit trail" } }
                            @if u.may(Action::ManageUsers) { a href="/users" { "Users" } }
                            a href="/docs/" { "API docs" }
                        }
                        span.who {
                            a href="/account/password" title={ "Signed in as " (u.0.actor.username) ": change your password" } { (u.0.actor.full_name) } " "
                            form method="post" action="/logout" {
                                (csrf(u))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    @if let Some(u) = user {
                        @if u.0.actor.password_change_required {
                            div.notice.warn role="alert" {
                                "Your password was set by an administrator. You can read, but you sign nothing until you "
                                a href="/account/password" { "choose your own password" } "."
                            }
                        }
                    }
                    (body)
                }
                script src="/static/app.js" {}
            }
        }
    }
}

/// A refusal or failure as a page.
pub fn error_page(p: &Problem) -> Markup {
    let title = match p.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::CONFLICT => "Not possible now",
        StatusCode::PAYLOAD_TOO_LARGE => "Too large",
        StatusCode::BAD_REQUEST => "Could not be read",
        StatusCode::UNPROCESSABLE_ENTITY => "Not saved",
        StatusCode::SERVICE_UNAVAILABLE => "Unavailable for a moment",
        s => s.canonical_reason().unwrap_or("Error"),
    };
    page(
        title,
        None,
        html! {
            (refusal_box(Some(p)))
            p { a href="/" { "Back to your work" } " · " a href="/batches" { "the batches" } }
        },
    )
}

/// A refusal that reached no page of ours (an unknown page, an unreadable
/// address or form, a body over the limit), in words.
pub fn status_problem(status: StatusCode, detail: Option<String>) -> Problem {
    let words = match status {
        StatusCode::NOT_FOUND => "There is no such page or record. Check the address, or start again from the batches.".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "What was sent is larger than 1 MiB, so nothing was saved. Shorten the text and send it again.".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "This page can't be used that way. Start again from the batches.".to_owned(),
        StatusCode::BAD_REQUEST => format!(
            "The address or the form could not be read, so nothing was saved{}",
            detail.map(|d| format!(" ({d}).")).unwrap_or_else(|| ".".to_owned())
        ),
        _ => detail.unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("The request was refused")
                .to_owned()
        }),
    };
    Problem {
        status,
        code: "refused",
        detail: words,
        errors: Vec::new(),
        blockers: None,
        retry_after: None,
    }
}

/// An HTML response.
pub fn html_page(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// A redirect after a successful form (POST, then GET).
pub fn see_other(to: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// A refusal to show above the form (4xx); anything else is an error page.
pub fn refusal(e: AppError) -> Result<Problem, WebError> {
    match e {
        AppError::Problem(p) if p.status.is_client_error() => Ok(*p),
        other => Err(WebError::Refused(other)),
    }
}

/// The refusal, in words, with each field named by its label.
pub fn refusal_box(p: Option<&Problem>) -> Markup {
    Refusal::new(p, COMMON_LABELS).all_above()
}

/// Labels of the fields the forms without a table of their own share: a
/// refusal names them in words, never by their internal names.
pub const COMMON_LABELS: &[(&str, &str)] = &[
    ("performed_at", "Performed at"),
    ("test_code", "Test"),
    ("value", "Value"),
    ("unit", "Unit"),
    ("instrument", "Instrument"),
    ("comment", "Comment"),
    ("replaces_result_id", "Replaces result"),
    ("reason", "Reason"),
    ("password", "Password"),
    ("result_ids", "Results"),
    ("justification", "Justification"),
    ("root_cause", "Root cause"),
    ("conclusion", "Conclusion"),
    ("title", "Title"),
    ("description", "Description"),
    ("severity", "Severity"),
    ("decision", "Decision"),
];

/// A refused form's errors, each shown once, in words, next to the field it
/// concerns and under the field's label; what concerns no field of the form
/// is shown above it.
pub struct Refusal<'a> {
    problem: Option<&'a Problem>,
    /// `(field, label)` of every field of the form.
    labels: &'a [(&'a str, &'a str)],
    /// Words for fields shown above the form (rows of a table).
    naming: Option<fn(&str) -> Option<String>>,
    /// What a refused form did not do.
    not_done: &'static str,
}

impl<'a> Refusal<'a> {
    /// The refusal of a form with these fields.
    pub fn new(problem: Option<&'a Problem>, labels: &'a [(&'a str, &'a str)]) -> Self {
        Refusal {
            problem,
            labels,
            naming: None,
            not_done: "Nothing was saved.",
        }
    }

    /// For a search form: nothing was searched (nothing is ever saved).
    pub fn searching(mut self) -> Self {
        self.not_done = "Nothing was searched.";
        self
    }

    /// Names the fields that have no label of their own (`tests[2].min`).
    pub fn naming(mut self, f: fn(&str) -> Option<String>) -> Self {
        self.naming = Some(f);
        self
    }

    fn label(&self, field: &str) -> Option<&'a str> {
        // `parent_batch_ids[1]` is the field `parent_batch_ids`.
        let base = field.split('[').next().unwrap_or(field);
        self.labels
            .iter()
            .find(|(f, _)| *f == base)
            .map(|(_, l)| *l)
    }

    /// A message with the form's internal field names replaced by labels.
    fn words(&self, message: &str) -> String {
        let mut m = message.to_owned();
        // Only internal names (`performed_at`); a plain word ("password",
        // "value") already reads as itself.
        for (f, l) in self.labels.iter().filter(|(f, _)| f.contains('_')) {
            if m.contains(f) {
                m = m.replace(f, &format!("“{}”", l.to_lowercase()));
            }
        }
        m
    }

    /// Above the form, every error in words (for forms that show no error
    /// under their fields).
    pub fn all_above(&self) -> Markup {
        let Some(p) = self.problem else {
            return html! {};
        };
        html! {
            div.notice.error role="alert" id="refusal" {
                @if p.errors.is_empty() {
                    p { (self.words(&p.detail)) }
                } @else {
                    p { (self.not_done) " Correct:" }
                    @for e in &p.errors {
                        p.field-error { (joined(&self.label(&e.field).map_or_else(|| e.field.clone(), str::to_owned), &self.words(&e.message))) }
                    }
                }
            }
        }
    }

    /// Above the form: what went wrong, and any error of no field shown.
    pub fn summary(&self) -> Markup {
        let Some(p) = self.problem else {
            return html! {};
        };
        let elsewhere: Vec<_> = p
            .errors
            .iter()
            .filter(|e| self.label(&e.field).is_none())
            .collect();
        html! {
            div.notice.error role="alert" id="refusal" {
                @if p.errors.is_empty() {
                    p { (self.words(&p.detail)) }
                } @else {
                    @if p.status == StatusCode::UNPROCESSABLE_ENTITY {
                        p { (self.not_done) " Correct what is marked below." }
                    } @else {
                        p { (self.words(&p.detail)) }
                    }
                    @for e in elsewhere {
                        p.field-error {
                            (self.naming.and_then(|n| n(&e.field)).unwrap_or_else(|| e.field.clone()))
                            ": " (self.words(&e.message))
                        }
                    }
                }
            }
        }
    }

    /// Under one field: its errors.
    pub fn at(&self, field: &str) -> Markup {
        let errors: Vec<&FieldError> = self
            .problem
            .map(|p| {
                p.errors
                    .iter()
                    .filter(|e| e.field.split('[').next() == Some(field))
                    .collect()
            })
            .unwrap_or_default();
        html! {
            @for e in errors {
                span.field-error id={"error-" (field)} {
                    (joined(self.label(field).unwrap_or(field), &self.words(&e.message)))
                }
            }
        }
    }
}

/// "Batch number must be ..." reads as a sentence; "Value: this test is
/// numeric" needs the colon.
fn joined(label: &str, message: &str) -> String {
    const VERBS: [&str; 9] = [
        "must ", "is ", "are ", "names ", "does ", "has ", "lists ", "may ", "can",
    ];
    if VERBS.iter().any(|v| message.starts_with(v)) {
        format!("{label} {message}")
    } else {
        format!("{label}: {message}")
    }
}

/// What a signature means, shown before the password is asked for.
pub fn meaning_box(m: Meaning) -> Markup {
    html! { p.meaning { "By signing you state: “" (m.statement()) "”" } }
}

/// A field of a refused form, to show it again as it was typed.
pub fn entered<F>(form: Option<&F>, pick: fn(&F) -> Option<&str>) -> String {
    form.and_then(pick).unwrap_or_default().to_owned()
}

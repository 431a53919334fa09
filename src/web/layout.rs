//! The page shell, navigation and small view helpers shared by every page.

use super::session::{WebError, WebUser};
use crate::domain::StoredName;
use crate::domain::hashing::sha256_hex;
use crate::domain::record::RecordedResult;
use crate::domain::release::Blocker;
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::domain::spec::Outcome;
use crate::error::Code;
use crate::error::{AppError, FieldError, Problem};
use crate::i18n::Locale;
use crate::services::idempotency::IdempotencyKey;
use crate::tr;
use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, html};

/// A timestamp in UTC (pages without a reader's zone).
pub fn time(at: DateTime<Utc>) -> Markup {
    time_in(at, Tz::UTC, Locale::En)
}

/// A timestamp in `zone`, in the reader's order (`2026-11-20 14:05 CET`,
/// `2026年11月20日 14:05 CST`), to the second and in UTC on hover.
pub fn time_in(at: DateTime<Utc>, zone: Tz, loc: Locale) -> Markup {
    let utc = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    html! { time datetime=(at.to_rfc3339()) title=(utc) { (loc.date_time(at, zone)) } }
}

/// The day of `at` in `zone` (the whole time on hover), for dense tables.
pub fn day_in(at: DateTime<Utc>, zone: Tz, loc: Locale) -> Markup {
    html! { time datetime=(at.to_rfc3339()) title=(loc.date_time(at, zone)) { (loc.day(at, zone)) } }
}

/// Reads a `datetime-local` value typed in `zone`. A time the clocks skip
/// is refused; one they pass twice (the hour they go back) is read as the
/// first.
pub fn read_local(field: &str, v: &str, zone: Tz) -> Result<DateTime<Utc>, AppError> {
    let naive = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| {
            AppError::invalid_field_said(field, "fe-is-not-a-date-and-time-yyyy-mm-dd-hh-mm")
        })?;
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err(AppError::invalid_field_with(
            field,
            "fe-clock-skips",
            &[("zone", zone.name().to_owned())],
        )),
    }
}

/// A stored status (`in_testing`) in the reader's words: the message
/// `status-<status>`, else the status itself with spaces.
pub fn status_words(s: &str, loc: Locale) -> String {
    loc.code_words("status", s)
}

/// A release blocker in the reader's words, its specifics (the test, a
/// deviation's title, a parent batch and its status, a time) included.
pub fn blocker_words(b: &Blocker, loc: Locale) -> String {
    b.words.in_locale(loc)
}

/// A status badge (the class stays the stored code).
pub fn status(s: &str, loc: Locale) -> Markup {
    html! { span class={"status " (s)} { (status_words(s, loc)) } }
}

/// Pass or fail, coloured and in words.
pub fn outcome(o: Outcome, loc: Locale) -> Markup {
    let words = match o {
        Outcome::Pass => tr!(loc, "outcome-pass"),
        Outcome::Fail => tr!(loc, "outcome-fail"),
    };
    html! { span class=(o.as_str()) { (words) } }
}

/// The outcome of a result just saved, on the page that follows.
pub fn recorded_notice(r: &RecordedResult, then: &str, loc: Locale) -> Markup {
    let pass = r.outcome == Outcome::Pass;
    html! {
        div class={"notice " (if pass { "ok" } else { "error" })} role="status" id="recorded" {
            (tr!(loc, "result-recorded")) " " strong { (r.test_code) " " (r.value) " " (r.unit.clone().unwrap_or_default()) } " — " (outcome(r.outcome, loc))
            @if !pass { (tr!(loc, "result-recorded-oos")) }
            (then)
        }
    }
}

/// A hidden CSRF field.
pub fn csrf(user: &WebUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.0.csrf_token); }
}

/// The full page, in the signed-in user's language (English before sign-in;
/// see [`page_in`]).
pub fn page(title: &str, user: Option<&WebUser>, body: Markup) -> Markup {
    page_in(user.map_or(Locale::En, WebUser::lang), title, user, body)
}

/// The full page in `loc`.
pub fn page_in(loc: Locale, title: &str, user: Option<&WebUser>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(loc.as_str()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cellqc" }
                link rel="stylesheet" href="/static/app.css";
            }
            // Who is signed in and the words for a form put back after
            // signing in again (app.js restores only the same user's form).
            body data-user=[user.map(|u| u.0.actor.id.to_string())]
                data-held-restored=[user.map(|_| tr!(loc, "form-held-restored"))] {
                header.top {
                    a href="/" { "cellqc" }
                    @if let Some(u) = user {
                        nav aria-label=(tr!(loc, "nav-label")) {
                            a href="/" { (tr!(loc, "nav-your-work")) }
                            a href="/batches" { (tr!(loc, "nav-batches")) }
                            a href="/products" { (tr!(loc, "nav-products")) }
                            a href="/qualifications" { (tr!(loc, "nav-qualifications")) }
                            a href="/instruments" { (tr!(loc, "nav-instruments")) }
                            a href="/materials" { (tr!(loc, "nav-materials")) }
                            @if u.may(Action::Sign(Meaning::Reviewed)) { a href="/review" { (tr!(loc, "nav-review-queue")) } }
                            @if u.may(Action::ReadAuditTrail) { a href="/audit" { (tr!(loc, "nav-audit-trail")) } }
                            @if u.may(Action::ManageUsers) { a href="/users" { (tr!(loc, "nav-users")) } }
                            a href="/docs/" { (tr!(loc, "nav-api-docs")) }
                        }
                        span.who {
                            a href="/account/password" title=(tr!(loc, "nav-signed-in-as", username = u.0.actor.username.as_str())) { (u.0.actor.full_name) } " "
                            form.lang method="post" action="/account/locale" {
                                (csrf(u))
                                label {
                                    span.visually-hidden { (tr!(loc, "nav-language")) }
                                    select name="locale" id="locale" {
                                        @for l in Locale::ALL {
                                            option value=(l.as_str()) lang=(l.as_str()) selected[l == loc] { (l.native_name()) }
                                        }
                                    }
                                }
                                button type="submit" { (tr!(loc, "nav-language-switch")) }
                            }
                            form method="post" action="/logout" {
                                (csrf(u))
                                button type="submit" { (tr!(loc, "nav-sign-out")) }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    @if let Some(u) = user {
                        @if u.0.actor.password_change_required {
                            div.notice.warn role="alert" {
                                (tr!(loc, "password-temporary-before")) " "
                                a href="/account/password" { (tr!(loc, "password-temporary-link")) } (tr!(loc, "password-temporary-after"))
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

/// A refusal or failure as a page, in the reader's language.
pub fn error_page(p: &Problem, loc: Locale) -> Markup {
    let title = match p.status() {
        StatusCode::NOT_FOUND => tr!(loc, "error-title-not-found"),
        StatusCode::FORBIDDEN => tr!(loc, "error-title-forbidden"),
        StatusCode::CONFLICT => tr!(loc, "error-title-conflict"),
        StatusCode::PAYLOAD_TOO_LARGE => tr!(loc, "error-title-too-large"),
        StatusCode::BAD_REQUEST => tr!(loc, "error-title-bad-request"),
        StatusCode::UNPROCESSABLE_ENTITY => tr!(loc, "error-title-not-saved"),
        StatusCode::SERVICE_UNAVAILABLE => tr!(loc, "error-title-unavailable"),
        _ => tr!(loc, "error-title-other"),
    };
    page_in(
        loc,
        &title,
        None,
        html! {
            (Refusal::new(Some(p), COMMON_LABELS, loc).all_above())
            @if p.code == Code::PasswordChangeRequired {
                p { a.button href="/account/password" { (tr!(loc, "error-choose-password")) } }
            }
            p { a href="/" { (tr!(loc, "error-back-to-work")) } " · " a href="/batches" { (tr!(loc, "error-the-batches")) } }
        },
    )
}

/// A refusal that reached no page of ours (an unknown page, an unreadable
/// address or form, a body over the limit), in words.
pub fn status_problem(status: StatusCode, detail: Option<String>, loc: Locale) -> Problem {
    let words = match status {
        StatusCode::NOT_FOUND => tr!(loc, "refused-no-such-page"),
        StatusCode::PAYLOAD_TOO_LARGE => tr!(loc, "refused-too-large"),
        StatusCode::METHOD_NOT_ALLOWED => tr!(loc, "refused-method"),
        StatusCode::BAD_REQUEST => match detail {
            Some(d) => tr!(loc, "refused-unreadable-because", detail = d),
            None => tr!(loc, "refused-unreadable"),
        },
        _ => detail.unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("The request was refused")
                .to_owned()
        }),
    };
    // The code whose kind is answered with this status.
    let code = match status {
        StatusCode::NOT_FOUND => Code::RouteNotFound,
        StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
        StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
        StatusCode::TOO_MANY_REQUESTS => Code::RateLimited,
        s if s.is_server_error() => Code::InternalError,
        _ => Code::Refused,
    };
    Problem {
        code,
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
        // The session ended while the form was filled in: sign in again.
        AppError::Problem(p) if p.code == Code::TokenRevoked => Err(WebError::SignIn),
        AppError::Problem(p) if p.status().is_client_error() => Ok(*p),
        other => Err(WebError::Refused(other)),
    }
}

/// The refusal, in words, with each field named by its label.
pub fn refusal_box(p: Option<&Problem>, loc: Locale) -> Markup {
    Refusal::new(p, COMMON_LABELS, loc).all_above()
}

/// Labels (message ids) of the fields the forms without a table of their
/// own share: a refusal names them in words, never by their internal names.
pub const COMMON_LABELS: &[(&str, &str)] = &[
    ("performed_at", "label-performed-at"),
    ("test_code", "label-test"),
    ("value", "label-value"),
    ("unit", "label-unit"),
    ("instrument", "label-instrument"),
    ("comment", "label-comment"),
    ("replaces_result_id", "label-replaces-result"),
    ("reason", "label-reason"),
    ("password", "label-password"),
    ("result_ids", "label-results"),
    ("justification", "label-justification"),
    ("root_cause", "label-root-cause"),
    ("conclusion", "label-conclusion"),
    ("title", "label-title"),
    ("description", "label-description"),
    ("severity", "label-severity"),
    ("decision", "label-decision"),
];

/// A refused form's errors, each shown once, in words, next to the field it
/// concerns and under the field's label; what concerns no field of the form
/// is shown above it.
pub struct Refusal<'a> {
    problem: Option<&'a Problem>,
    /// `(field, label message id)` of every field of the form.
    labels: &'a [(&'a str, &'a str)],
    /// The reader's language.
    loc: Locale,
    /// Words for fields shown above the form (rows of a table).
    naming: Option<fn(&str, Locale) -> Option<String>>,
    /// What a refused form did not do.
    not_done: String,
}

impl<'a> Refusal<'a> {
    /// The refusal of a form with these fields.
    pub fn new(
        problem: Option<&'a Problem>,
        labels: &'a [(&'a str, &'a str)],
        loc: Locale,
    ) -> Self {
        Refusal {
            problem,
            labels,
            loc,
            naming: None,
            not_done: tr!(loc, "refusal-nothing-saved"),
        }
    }

    /// For a search form: nothing was searched (nothing is ever saved).
    pub fn searching(mut self) -> Self {
        self.not_done = tr!(self.loc, "refusal-nothing-searched");
        self
    }

    /// Names the fields that have no label of their own (`tests[2].min`).
    pub fn naming(mut self, f: fn(&str, Locale) -> Option<String>) -> Self {
        self.naming = Some(f);
        self
    }

    fn label(&self, field: &str) -> Option<String> {
        // `parent_batch_ids[1]` is the field `parent_batch_ids`.
        let base = field.split('[').next().unwrap_or(field);
        self.labels
            .iter()
            .find(|(f, _)| *f == base)
            .map(|(_, l)| self.loc.text(l))
    }

    /// A message with the form's internal field names replaced by labels.
    fn words(&self, message: &str) -> String {
        let mut m = message.to_owned();
        // Only internal names (`performed_at`); a plain word ("password",
        // "value") already reads as itself.
        for (f, l) in self.labels.iter().filter(|(f, _)| f.contains('_')) {
            if m.contains(f) {
                m = m.replace(f, &format!("“{}”", self.loc.text(l).to_lowercase()));
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
                    p { (self.words(&p.in_locale(self.loc).detail)) }
                } @else {
                    p { (self.not_done) " " (tr!(self.loc, "refusal-correct")) }
                    @for e in &p.errors {
                        p.field-error { (joined(&self.label(&e.field).unwrap_or_else(|| e.field.clone()), &self.words(&e.message_in(self.loc)), self.loc)) }
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
                    p { (self.words(&p.in_locale(self.loc).detail)) }
                } @else {
                    @if p.status() == StatusCode::UNPROCESSABLE_ENTITY {
                        p { (self.not_done) " " (tr!(self.loc, "refusal-correct-below")) }
                    } @else {
                        p { (self.words(&p.in_locale(self.loc).detail)) }
                    }
                    @for e in elsewhere {
                        p.field-error {
                            (self.naming.and_then(|n| n(&e.field, self.loc)).unwrap_or_else(|| e.field.clone()))
                            ": " (self.words(&e.message_in(self.loc)))
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
                    (joined(&self.label(field).unwrap_or_else(|| field.to_owned()), &self.words(&e.message_in(self.loc)), self.loc))
                }
            }
        }
    }
}

/// "Batch number must be ..." reads as a sentence; "Value: this test is
/// numeric" needs the colon (in Chinese, always the full-width one).
fn joined(label: &str, message: &str, loc: Locale) -> String {
    if loc == Locale::ZhCn {
        return format!("{label}：{message}");
    }
    const VERBS: [&str; 9] = [
        "must ", "is ", "are ", "names ", "does ", "has ", "lists ", "may ", "can",
    ];
    if VERBS.iter().any(|v| message.starts_with(v)) {
        format!("{label} {message}")
    } else {
        format!("{label}: {message}")
    }
}

/// What a signature means, shown before the password is asked for, in the
/// reader's language (the words recorded with the signature).
pub fn meaning_box(m: Meaning, loc: Locale) -> Markup {
    html! { p.meaning { (tr!(loc, "signing-you-state", statement = m.statement(loc))) } }
}

/// What signing states when the signer chooses the meaning with the radio
/// buttons `name` (one per `(value, meaning)`): the statement of the one
/// chosen, and before a choice only that the chosen one is stated. The
/// style sheet shows the box of the checked button (`:has`); a browser
/// without it shows the neutral words, never a statement not chosen.
pub fn meaning_choice(name: &str, choices: &[(&str, Meaning)], loc: Locale) -> Markup {
    html! {
        div.meaning-choice data-for=(name) {
            p.meaning.meaning-unchosen { (tr!(loc, "signing-you-state-chosen")) }
            @for (value, m) in choices {
                p.meaning.meaning-chosen data-value=(value) { (tr!(loc, "signing-you-state", statement = m.statement(loc))) }
            }
        }
    }
}

/// A creating form's one-time key (hidden field `form_key`), new with each
/// form shown: what the form creates is created once for it.
pub fn form_key() -> Markup {
    html! { input type="hidden" name="form_key" value=(uuid::Uuid::now_v7()); }
}

/// The idempotency key of a creating form sent to `path`: its one-time key,
/// with the hash of the bytes sent (a double submit sends the same bytes
/// and is given the first outcome; the same key with other bytes is
/// refused). None for a form without a key.
pub fn form_once(form_key: Option<&str>, path: &str, body: &[u8]) -> Option<IdempotencyKey> {
    let key = form_key.and_then(|k| uuid::Uuid::parse_str(k.trim()).ok())?;
    Some(IdempotencyKey {
        key: format!("form:{key}"),
        request_hash: sha256_hex(&[path.as_bytes(), b"\n", body]),
    })
}

/// Runs a creating form's use case once for its one-time key (see
/// [`form_once`]): what it created, as the first submit created it.
pub fn once_for_form<T: serde::Serialize>(
    c: &mut diesel::PgConnection,
    user_id: uuid::Uuid,
    once: Option<&IdempotencyKey>,
    create: impl FnOnce(&mut diesel::PgConnection) -> Result<T, AppError>,
) -> Result<serde_json::Value, AppError> {
    crate::services::idempotency::create_once(c, user_id, once, |c| {
        Ok(serde_json::to_value(create(c)?)?)
    })
    .map(|created| created.body)
}

/// The id of what a creating form created (on a double submit, of what
/// the first one created).
pub fn created_id(created: &serde_json::Value) -> Result<uuid::Uuid, AppError> {
    created["id"]
        .as_str()
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a created record without its id")))
}

/// Reads a posted form. One that can't be read (a value no field takes) is
/// refused as a page saying why, never taken as an empty form.
pub fn read_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, WebError> {
    serde_html_form::from_bytes(body).map_err(|e| {
        WebError::Refused(AppError::refused(
            Code::InvalidForm,
            format!("the form could not be read, so nothing was saved ({e})"),
        ))
    })
}

/// A field of a refused form, to show it again as it was typed.
pub fn entered<F>(form: Option<&F>, pick: fn(&F) -> Option<&str>) -> String {
    form.and_then(pick).unwrap_or_default().to_owned()
}

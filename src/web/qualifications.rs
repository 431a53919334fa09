//! `/qualifications`: the qualification matrix (analysts × the tests that
//! require a qualification), and for QA the signed grant and withdrawal.

use super::layout::{Refusal, csrf, html_page, meaning_box, page, refusal};
use super::session::{WebError, WebUser};
use crate::domain::qualification::{GrantQualification, RevokeQualification};
use crate::domain::roles::Action;
use crate::domain::signature::Meaning;
use crate::error::Problem;
use crate::http::AppState;
use crate::services::qualifications as svc;
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{Duration, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

const GRANT_LABELS: &[(&str, &str)] = &[
    ("user", "label-analyst"),
    ("test_code", "label-test"),
    ("valid_until", "label-valid-until"),
    ("reason", "label-training-record"),
    ("password", "label-your-password"),
];

const REVOKE_LABELS: &[(&str, &str)] =
    &[("reason", "label-why"), ("password", "label-your-password")];

async fn matrix_markup(
    state: &AppState,
    user: &WebUser,
    problem: Option<&Problem>,
    done: Option<&str>,
) -> Result<Markup, WebError> {
    let m = state.db(svc::matrix).await?;
    let soon = Utc::now() + Duration::days(30);
    let grants = user.may(Action::Sign(Meaning::QualificationGranted));
    let r = Refusal::new(problem, GRANT_LABELS, user.lang());
    Ok(page(
        &tr!(user.lang(), "nav-qualifications"),
        Some(user),
        html! {
            @if let Some(d) = done { div.notice.ok role="status" { (d) } }
            (r.summary())
            p.muted { (tr!(user.lang(), "qual-intro")) }
            @if m.codes.is_empty() {
                p.muted { (tr!(user.lang(), "qual-none-required")) }
            } @else {
                div.scroll { table.matrix {
                    thead { tr { th { (tr!(user.lang(), "label-analyst")) } @for c in &m.codes { th { (c) } } } }
                    tbody { @for (id, username, name) in &m.analysts { tr {
                        td { strong { (name) } br; span.muted { (username) } }
                        @for c in &m.codes {
                            @match m.cell(*id, c) {
                                Some(q) => td class=(if q.valid_until < soon { "qual soon" } else { "qual ok" }) {
                                    (tr!(user.lang(), "home-until")) " " (user.day(q.valid_until))
                                    @if grants {
                                        details {
                                            summary { (tr!(user.lang(), "qual-withdraw")) }
                                            form.stack method="post" action={"/qualifications/" (q.id) "/revoke"} {
                                                (csrf(user))
                                                (meaning_box(Meaning::QualificationRevoked, user.lang()))
                                                label { (tr!(user.lang(), "label-why")) textarea name="reason" required {} }
                                                label { (tr!(user.lang(), "label-your-password")) input type="password" name="password" required autocomplete="current-password"; }
                                                button.danger type="submit" { (tr!(user.lang(), "qual-withdraw-sign")) }
                                            }
                                        }
                                    }
                                },
                                None => td.qual.none { (tr!(user.lang(), "qual-not-qualified")) },
                            }
                        }
                    } } }
                } }
            }
            @if grants {
                form.stack.card method="post" action="/qualifications" {
                    h2 { (tr!(user.lang(), "qual-heading")) }
                    (csrf(user))
                    (super::layout::form_key())
                    label { (tr!(user.lang(), "label-analyst"))
                        select name="user" required {
                            option value="" { (tr!(user.lang(), "choose")) }
                            @for (id, username, name) in &m.analysts { option value=(id) { (name) " (" (username) ")" } }
                        }
                        (r.at("user"))
                    }
                    label { (tr!(user.lang(), "col-test"))
                        select name="test_code" required {
                            option value="" { (tr!(user.lang(), "choose")) }
                            @for c in &m.codes { option value=(c) { (c) } }
                        }
                        (r.at("test_code"))
                    }
                    label { (tr!(user.lang(), "qual-valid-from", zone = user.zone_name())) input type="datetime-local" name="valid_from" step="1"; (r.at("valid_from")) }
                    label { (tr!(user.lang(), "qual-valid-until", zone = user.zone_name())) input type="datetime-local" name="valid_until" step="1" required; (r.at("valid_until")) }
                    label { (tr!(user.lang(), "qual-training")) textarea name="reason" {} (r.at("reason")) }
                    (meaning_box(Meaning::QualificationGranted, user.lang()))
                    label { (tr!(user.lang(), "label-your-password")) input type="password" name="password" required autocomplete="current-password"; (r.at("password")) }
                    p.muted { (tr!(user.lang(), "qual-note")) }
                    button type="submit" { (tr!(user.lang(), "qual-sign")) }
                }
            }
        },
    ))
}

/// The matrix.
#[get("/qualifications")]
pub async fn matrix_page(
    state: web::Data<AppState>,
    user: WebUser,
) -> Result<HttpResponse, WebError> {
    Ok(html_page(
        StatusCode::OK,
        matrix_markup(&state, &user, None, None).await?,
    ))
}

/// The grant form's own fields (the command is read by
/// `WebUser::command`).
#[derive(Debug, Default, Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    csrf: String,
    form_key: Option<String>,
    #[serde(default)]
    user: String,
}

/// QA qualifies an analyst (signed).
#[post("/qualifications")]
pub async fn grant(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::QualificationGranted))?;
    let f: GrantForm = super::layout::read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    // A double submit qualifies once, under one signature.
    let once = super::layout::form_once(f.form_key.as_deref(), "/qualifications", &body);
    let actor = user.0.actor.clone();
    let rules = state.signing.clone();
    let target = Uuid::parse_str(f.user.trim()).map_err(|_| {
        crate::error::AppError::invalid_field("user", tr!(user.lang(), "qual-choose-analyst"))
    });
    let outcome = match (
        target,
        user.command::<GrantQualification>(&body, &["valid_from", "valid_until"]),
    ) {
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(target), Ok(input)) => {
            state
                .db(move |c| {
                    super::layout::once_for_form(c, actor.id, once.as_ref(), |c| {
                        svc::grant(c, &rules, &actor, target, &input)
                    })
                })
                .await
        }
    };
    match outcome {
        Ok(q) => {
            let said = |field: &str| {
                q.get(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let done = tr!(
                user.lang(),
                "qual-granted",
                username = said("username"),
                test = said("test_code")
            );
            Ok(html_page(
                StatusCode::OK,
                matrix_markup(&state, &user, None, Some(&done)).await?,
            ))
        }
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status(),
                matrix_markup(&state, &user, Some(&p), None).await?,
            ))
        }
    }
}

/// The withdrawal form's own field (the command is read by
/// `WebUser::command`).
#[derive(Debug, Default, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
}

/// QA withdraws a qualification (signed).
#[post("/qualifications/{id}/revoke")]
pub async fn revoke(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::Sign(Meaning::QualificationRevoked))?;
    let f: RevokeForm = super::layout::read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let (id, rules) = (id.into_inner(), state.signing.clone());
    let outcome = user
        .run(
            &state,
            &body,
            &[],
            move |c, actor, cmd: RevokeQualification| svc::revoke(c, &rules, actor, id, &cmd),
        )
        .await;
    match outcome {
        Ok(q) => {
            let done = tr!(
                user.lang(),
                "qual-revoked",
                username = q.username.as_str(),
                test = q.test_code.as_str()
            );
            Ok(html_page(
                StatusCode::OK,
                matrix_markup(&state, &user, None, Some(&done)).await?,
            ))
        }
        Err(e) => {
            let p = refusal(e)?;
            let r = Refusal::new(Some(&p), REVOKE_LABELS, user.lang());
            let body = html! { (r.summary()) p { a href="/qualifications" { (tr!(user.lang(), "qual-back")) } } };
            Ok(html_page(
                p.status(),
                page(&tr!(user.lang(), "nav-qualifications"), Some(&user), body),
            ))
        }
    }
}

/// A person's qualifications, for their account page.
pub fn list_markup(user: &WebUser, list: &[svc::QualificationView]) -> Markup {
    html! {
        @if list.is_empty() { p.muted { (tr!(user.lang(), "qual-none")) } } @else {
            table {
                thead { tr { th { (tr!(user.lang(), "col-test")) } th { (tr!(user.lang(), "qual-col-valid")) } th { (tr!(user.lang(), "qual-col-state")) } } }
                tbody { @for q in list { tr {
                    td { (q.test_code) }
                    td { (user.time(q.valid_from)) " – " (user.time(q.valid_until)) }
                    td { (user.lang().code_words("status", q.status)) @if let Some(why) = &q.revoke_reason { ": " (why) } }
                } } }
            }
        }
    }
}

//! `/account/password`: changing one's own password (the current one
//! again, the new one twice). Every other session of the person ends.

use super::layout::{Refusal, csrf, html_page, page, refusal};
use super::session::{WebError, WebUser};
use crate::error::Code;
use crate::error::{AppError, Problem};
use crate::http::AppState;
use crate::i18n::Locale;
use crate::services::auth as auth_svc;
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;

const LABELS: &[(&str, &str)] = &[
    ("current_password", "label-current-password"),
    ("new_password", "label-new-password"),
    ("repeat", "label-new-password-again"),
];

fn form(user: &WebUser, problem: Option<&Problem>, done: bool) -> Markup {
    let r = Refusal::new(problem, LABELS, user.lang());
    page(
        &tr!(user.lang(), "account-password-title"),
        Some(user),
        html! {
            @if done { div.notice.ok role="status" { (tr!(user.lang(), "account-changed")) } }
            (r.summary())
            form.stack.card method="post" action="/account/password" {
                (csrf(user))
                label { (tr!(user.lang(), "label-current-password")) input type="password" name="current_password" required autocomplete="current-password"; (r.at("current_password")) }
                label { (tr!(user.lang(), "account-new-password")) input type="password" name="new_password" required minlength="12" maxlength="128" autocomplete="new-password"; (r.at("new_password")) }
                label { (tr!(user.lang(), "label-new-password-again")) input type="password" name="repeat" required autocomplete="new-password"; (r.at("repeat")) }
                button type="submit" { (tr!(user.lang(), "account-change")) }
            }
        },
    )
}

/// The form.
#[get("/account/password")]
pub async fn password_form(user: WebUser) -> Result<HttpResponse, WebError> {
    Ok(html_page(StatusCode::OK, form(&user, None, false)))
}

/// The form's fields.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
    repeat: String,
}

/// Changes the password; a refusal comes back on the form (passwords are
/// never sent back).
#[post("/account/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    user: WebUser,
    f: web::Form<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    user.check_csrf(&f.csrf)?;
    let f = f.into_inner();
    let attempt = if f.new_password != f.repeat {
        Err(AppError::invalid_field_said(
            "repeat",
            "fe-is-not-the-same-as-the-new-password",
        ))
    } else {
        let cfg = state.auth.clone();
        let who = user.0.clone();
        state
            .db(move |c| {
                auth_svc::change_password(c, &cfg, &who, &f.current_password, &f.new_password)
            })
            .await
    };
    match attempt {
        Ok(()) => {
            // The password is the user's own now: no more reminder.
            let mut user = user;
            user.0.actor.password_change_required = false;
            Ok(html_page(StatusCode::OK, form(&user, None, true)))
        }
        Err(e) => {
            let p = refusal(e)?;
            // Locked by wrong current passwords: the session ended with it.
            if p.code == Code::AccountLocked {
                return Err(WebError::SignIn);
            }
            Ok(html_page(p.status(), form(&user, Some(&p), false)))
        }
    }
}

/// The language switch's fields.
#[derive(Debug, Deserialize)]
pub struct LocaleForm {
    csrf: String,
    locale: String,
}

/// Sets the language one reads (the header's switch), then back to the page
/// the switch was on.
#[post("/account/locale")]
pub async fn set_locale(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    user: WebUser,
    f: web::Form<LocaleForm>,
) -> Result<HttpResponse, WebError> {
    user.check_csrf(&f.csrf)?;
    let locale = Locale::parse(&f.locale)
        .ok_or_else(|| AppError::invalid_field_said("locale", "fe-locale"))?;
    let actor = user.0.actor.clone();
    state
        .db(move |c| crate::services::users::set_own_locale(c, &actor, locale))
        .await?;
    // Back to the page the switch was on, when it was one of ours.
    let back = req
        .headers()
        .get(actix_web::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(url_path)
        .unwrap_or_else(|| "/".to_owned());
    Ok(super::layout::see_other(back))
}

/// The path (and query) of a referring address on this site; `None` for
/// anything that could lead elsewhere.
fn url_path(referer: &str) -> Option<String> {
    let after_scheme = referer.split_once("://").map_or(referer, |(_, r)| r);
    let path = after_scheme.find('/').map(|i| after_scheme.get(i..))??;
    (path.starts_with('/') && !path.starts_with("//")).then(|| path.to_owned())
}

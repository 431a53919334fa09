//! `/account/password`: changing one's own password (the current one
//! again, the new one twice). Every other session of the person ends.

use super::layout::{Refusal, csrf, html_page, page, refusal};
use super::session::{WebError, WebUser};
use crate::app::AppState;
use crate::error::{AppError, Problem};
use crate::services::auth as auth_svc;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;

const LABELS: &[(&str, &str)] = &[
    ("current_password", "Current password"),
    ("new_password", "New password"),
    ("repeat", "New password again"),
];

fn form(user: &WebUser, problem: Option<&Problem>, done: bool) -> Markup {
    let r = Refusal::new(problem, LABELS);
    page(
        "Change your password",
        Some(user),
        html! {
            @if done { div.notice.ok role="status" { "Your password was changed. Your other sessions were signed out." } }
            (r.summary())
            form.stack.card method="post" action="/account/password" {
                (csrf(user))
                label { "Current password" input type="password" name="current_password" required autocomplete="current-password"; (r.at("current_password")) }
                label { "New password (12 to 128 characters, not containing your username)" input type="password" name="new_password" required minlength="12" maxlength="128" autocomplete="new-password"; (r.at("new_password")) }
                label { "New password again" input type="password" name="repeat" required autocomplete="new-password"; (r.at("repeat")) }
                button type="submit" { "Change the password" }
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
        Err(AppError::invalid_field(
            "repeat",
            "is not the same as the new password",
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
            if p.code == "token_revoked" || p.code == "account_locked" {
                return Err(WebError::SignIn);
            }
            Ok(html_page(p.status, form(&user, Some(&p), false)))
        }
    }
}

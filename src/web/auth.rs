//! Signing in and out of the web interface.

use super::layout::{html_page, page_in, see_other};
use super::session::{
    CsrfForm, LOGIN_CSRF_COOKIE, SESSION_COOKIE, WebError, WebUser, constant_time_eq, local_path,
    protected_cookie, reader_locale, removal,
};
use crate::error::AppError;
use crate::error::Code;
use crate::http::AppState;
use crate::i18n::Locale;
use crate::services::auth::{self as auth_svc, random_token};
use crate::tr;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;

fn secure(state: &AppState, req: &HttpRequest) -> bool {
    state.secure_cookies || req.connection_info().scheme() == "https"
}

/// Where the reader is sent back to after signing in (only a path on this
/// site), and whether a form they sent waits in the browser (`held`).
#[derive(Debug, Default, Deserialize)]
pub struct Back {
    next: Option<String>,
    held: Option<String>,
}

impl Back {
    fn next(&self) -> Option<&str> {
        self.next.as_deref().filter(|n| local_path(n))
    }

    fn held(&self) -> bool {
        self.held.as_deref() == Some("1")
    }
}

fn login_markup(
    loc: Locale,
    token: &str,
    username: &str,
    back: &Back,
    error: Option<&str>,
) -> Markup {
    page_in(
        loc,
        &tr!(loc, "login-title"),
        None,
        html! {
            @if let Some(e) = error { div.notice.error role="alert" id="login-error" { (e) } }
            @else if back.held() { div.notice.warn role="status" id="session-ended" { (tr!(loc, "login-session-ended-held")) } }
            @else if back.next().is_some() { div.notice role="status" id="session-ended" { (tr!(loc, "login-session-ended")) } }
            form.stack.card method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                @if let Some(next) = back.next() { input type="hidden" name="next" value=(next); }
                @if back.held() { input type="hidden" name="held" value="1"; }
                label { (tr!(loc, "label-username")) input type="text" name="username" value=(username) autocomplete="username" required autofocus; }
                label { (tr!(loc, "label-password")) input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { (tr!(loc, "login-button")) }
            }
        },
    )
}

/// The sign-in form.
#[get("/login")]
pub async fn login_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    back: web::Query<Back>,
) -> HttpResponse {
    let token = random_token();
    let mut res = html_page(
        actix_web::http::StatusCode::OK,
        login_markup(reader_locale(&req), &token, "", &back, None),
    );
    let _ = res.add_cookie(&protected_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        secure(&state, &req),
        3600,
    ));
    res
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    username: String,
    password: String,
    #[serde(flatten)]
    back: Back,
}

/// Signs in and sets the session cookie; a refusal (wrong password, locked
/// account, too many attempts) is shown on the form.
#[post("/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    let expected = req
        .cookie(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return Err(WebError::Refused(AppError::refused(
            Code::CsrfFailed,
            "the sign-in form is out of date: reload the page and sign in again",
        )));
    }
    let attempt = match state.check_login_rate(&req) {
        Ok(address) => {
            let cfg = state.auth.clone();
            let (u, p) = (form.username.clone(), form.password.clone());
            state
                .db(move |c| auth_svc::login(c, &cfg, &u, &p, &address))
                .await
        }
        Err(e) => Err(e),
    };
    match attempt {
        Ok(ok) => {
            // A temporary password: straight to choosing one's own.
            // Else back where the session ended.
            let to = if ok.user.password_change_required {
                "/account/password"
            } else {
                form.back.next().unwrap_or("/")
            };
            let mut res = see_other(to.to_owned());
            let max_age = ok.expires_in;
            res.add_cookie(&protected_cookie(
                SESSION_COOKIE,
                ok.access_token,
                secure(&state, &req),
                max_age,
            ))
            .map_err(|e| AppError::Internal(anyhow::anyhow!("setting the cookie: {e}")))?;
            res.add_cookie(&removal(LOGIN_CSRF_COOKIE))
                .map_err(|e| AppError::Internal(anyhow::anyhow!("removing the cookie: {e}")))?;
            Ok(res)
        }
        Err(AppError::Problem(p)) if p.status().is_client_error() => {
            let loc = reader_locale(&req);
            let message = match p.code {
                Code::AccountLocked => tr!(loc, "login-locked"),
                Code::RateLimited => tr!(
                    loc,
                    "login-rate-limited",
                    seconds = p.retry_after.unwrap_or(60)
                ),
                Code::SignInHeldOff => {
                    tr!(loc, "login-held-off", seconds = p.retry_after.unwrap_or(60))
                }
                _ => tr!(loc, "login-wrong"),
            };
            let mut res = HttpResponse::build(p.status())
                .content_type("text/html; charset=utf-8")
                .body(
                    login_markup(loc, &form.csrf, &form.username, &form.back, Some(&message))
                        .into_string(),
                );
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            if let Some(wait) = p.retry_after {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(wait));
            }
            Ok(res)
        }
        Err(e) => Err(WebError::Refused(e)),
    }
}

/// Signs out: the session is revoked at once.
#[post("/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    user: WebUser,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    user.check_csrf(&form.csrf)?;
    let who = user.0.clone();
    state.db(move |c| auth_svc::logout(c, &who)).await?;
    let mut res = see_other("/login".to_owned());
    res.add_cookie(&removal(SESSION_COOKIE))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("removing the cookie: {e}")))?;
    Ok(res)
}

//! Browser sessions: the access token in an HttpOnly, SameSite=Strict cookie
//! (Secure behind TLS), on the same sessions table, idle timeout and
//! revocation as API tokens; and the per-session CSRF token every form posts.

use crate::domain::roles::Action;
use crate::error::AppError;
use crate::error::Code;
use crate::http::AppState;
use crate::i18n::Locale;
use crate::services::auth::{Authenticated, authenticate};
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures_util::future::LocalBoxFuture;
use maud::Markup;
use serde::Deserialize;
use std::fmt;

/// The session cookie.
pub const SESSION_COOKIE: &str = "cellqc_session";
/// The sign-in form's CSRF cookie (before there is a session).
pub const LOGIN_CSRF_COOKIE: &str = "cellqc_login_csrf";

/// A failure on a page: sign in first, or a refusal to show in words.
#[derive(Debug)]
pub enum WebError {
    /// Not signed in (or the session ended): go to the sign-in page.
    SignIn,
    /// Refused or failed: shown as a page with the reason.
    Refused(AppError),
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebError::SignIn => f.write_str("sign in first"),
            WebError::Refused(e) => write!(f, "{e}"),
        }
    }
}

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        WebError::Refused(e)
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::SignIn => StatusCode::SEE_OTHER,
            WebError::Refused(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebError::SignIn => {
                let mut res = HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/login"))
                    .cookie(removal(SESSION_COOKIE))
                    .finish();
                // `html_errors`, which sees the request, names the page to
                // come back to after signing in.
                res.extensions_mut().insert(SignInFirst);
                res
            }
            WebError::Refused(e) => {
                let p = e.to_problem();
                let mut res = HttpResponse::build(p.status())
                    .content_type("text/html; charset=utf-8")
                    .body(super::layout::error_page(&p, Locale::En).into_string());
                // `html_errors` renders it again in the reader's language.
                res.extensions_mut().insert(ErrorPage(p));
                res
            }
        }
    }
}

/// Marks the way to the sign-in page on a response, so that `html_errors`
/// can add where to come back to ([`sign_in_address`]).
#[derive(Debug, Clone, Copy)]
pub struct SignInFirst;

/// The sign-in address for a request refused for want of a session: back to
/// the page asked for (a GET), or to the page whose form was sent (a POST,
/// from the same site's `Referer`), marked `held` so the browser puts back
/// what was typed. Only a path on this site is ever named.
pub fn sign_in_address(req: &HttpRequest) -> String {
    let reading = matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    );
    let next = if reading {
        Some(match req.query_string() {
            "" => req.path().to_owned(),
            q => format!("{}?{q}", req.path()),
        })
    } else {
        let host = req.connection_info().host().to_owned();
        req.headers()
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.split_once("://").map(|(_, rest)| rest.to_owned()))
            .and_then(|rest| {
                let (at, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                (at == host).then(|| path.to_owned())
            })
            // A form re-shown at its own address after a refusal: that
            // address takes posts only; the browser finds the form again
            // when the reader opens it.
            .filter(|path| path.split('?').next() != Some(req.path()))
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(next) = next.filter(|n| local_path(n)) {
        query.append_pair("next", &next);
    }
    if !reading {
        query.append_pair("held", "1");
    }
    match query.finish() {
        q if q.is_empty() => "/login".to_owned(),
        q => format!("/login?{q}"),
    }
}

/// A path on this site (never another site's address, `//host` or `/\host`
/// included), not the sign-in page itself.
pub fn local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.starts_with("/login")
        && next.len() <= 2000
        && !next.chars().any(|c| c.is_control() || c == '\\')
}

/// A refusal rendered as a page, kept on the response so that the
/// `html_errors` middleware, which sees the request, can render it in the
/// reader's language.
#[derive(Debug, Clone)]
pub struct ErrorPage(pub crate::error::Problem);

/// The language of the person reading: the signed-in user's (put on the
/// request by [`WebUser`]), else the browser's `Accept-Language`, else the
/// site's default.
pub fn reader_locale(req: &HttpRequest) -> Locale {
    if let Some(l) = req.extensions().get::<Locale>() {
        return *l;
    }
    req.headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Locale::from_accept_language)
        .or_else(|| {
            req.app_data::<web::Data<AppState>>()
                .map(|s| s.default_locale)
        })
        .unwrap_or_default()
}

/// The reader's language for an error page: as [`reader_locale`], and when
/// the refusal came before the handler knew its user (a malformed address
/// is refused before the session is read), the signed-in user's from the
/// session all the same.
pub async fn page_reader_locale(req: &HttpRequest) -> Locale {
    let known = req.extensions().get::<Locale>().is_some();
    if !known && req.cookie(SESSION_COOKIE).is_some() {
        // Puts the user's language on the request when the session is good.
        let _ = WebUser::extract(req).await;
    }
    reader_locale(req)
}

/// A cookie that removes `name`.
pub fn removal(name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build(name, "").path("/").finish();
    c.make_removal();
    c
}

/// A session-scoped cookie with the protections every cellqc cookie has.
pub fn protected_cookie(
    name: &'static str,
    value: String,
    secure: bool,
    max_age_secs: i64,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

/// A form with only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    pub csrf: String,
}

/// The cookie in which the page's script keeps the browser's time zone.
pub const ZONE_COOKIE: &str = "tz";

/// The signed-in browser user, and the time zone their browser reports
/// (UTC until it has).
#[derive(Debug, Clone)]
pub struct WebUser(pub Authenticated, pub Tz);

impl WebUser {
    /// Refuses (403) unless the user's roles allow `action` (the one table
    /// in [`crate::domain::roles`]).
    pub fn require(&self, action: Action) -> Result<(), WebError> {
        Ok(self.0.actor.authorize(action)?)
    }

    /// Whether the user's roles allow `action` (to offer it on a page).
    pub fn may(&self, action: Action) -> bool {
        self.0.actor.roles.may(action)
    }

    /// The language the user reads.
    pub fn lang(&self) -> Locale {
        self.0.actor.locale
    }

    /// A timestamp in the reader's zone and order (`2026-11-20 14:05 CET`),
    /// UTC on hover.
    pub fn time(&self, at: DateTime<Utc>) -> Markup {
        super::layout::time_in(at, self.1, self.lang())
    }

    /// The day of `at` in the reader's zone (the whole time on hover).
    pub fn day(&self, at: DateTime<Utc>) -> Markup {
        super::layout::day_in(at, self.1, self.lang())
    }

    /// The zone forms are read in, for their labels.
    pub fn zone_name(&self) -> String {
        if self.1 == Tz::UTC {
            "UTC".to_owned()
        } else {
            crate::tr!(self.lang(), "zone-yours", zone = self.1.name())
        }
    }

    /// Now, as a `datetime-local` value in the reader's zone, to the second.
    pub fn now_for_form(&self) -> String {
        Utc::now()
            .with_timezone(&self.1)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    }

    /// Reads a `datetime-local` value typed in the reader's zone.
    pub fn from_form(&self, field: &str, v: &str) -> Result<DateTime<Utc>, AppError> {
        super::layout::read_local(field, v, self.1)
    }

    /// The command a form sends, read as the API reads its JSON body
    /// (`http::command::from_form`): the same type, the same rules, each
    /// refused field named. The `local_times` fields hold a
    /// `datetime-local` value typed in the reader's zone.
    pub fn command<C: serde::de::DeserializeOwned + utoipa::PartialSchema>(
        &self,
        body: &[u8],
        local_times: &[&str],
    ) -> Result<C, AppError> {
        let mut pairs = crate::http::command::form_pairs(body);
        let mut refused: Vec<crate::error::FieldError> = Vec::new();
        pairs.retain_mut(|(k, v)| {
            if !local_times.contains(&k.as_str()) {
                return true;
            }
            match self.from_form(k, v) {
                Ok(t) => {
                    *v = t.to_rfc3339();
                    true
                }
                Err(AppError::Problem(p)) => {
                    refused.extend(p.errors);
                    false
                }
                Err(_) => false,
            }
        });
        let read = crate::http::command::from_form::<C>(pairs);
        if refused.is_empty() {
            return read;
        }
        if let Err(AppError::Problem(p)) = read {
            for e in p.errors {
                if !refused.iter().any(|r| r.field == e.field) {
                    refused.push(e);
                }
            }
        }
        Err(AppError::validation(refused))
    }

    /// Reads the form's command (as [`WebUser::command`]) and runs the use
    /// case with it, as this user, on a connection: a form that breaks a
    /// rule is refused before any work, naming its fields.
    pub async fn run<C, T, F>(
        &self,
        state: &AppState,
        body: &[u8],
        local_times: &[&str],
        use_case: F,
    ) -> Result<T, AppError>
    where
        C: serde::de::DeserializeOwned + utoipa::PartialSchema + Send + 'static,
        T: Send + 'static,
        F: FnOnce(&mut diesel::PgConnection, &crate::services::Actor, C) -> Result<T, AppError>
            + Send
            + 'static,
    {
        let cmd = self.command::<C>(body, local_times)?;
        let actor = self.0.actor.clone();
        state.db(move |c| use_case(c, &actor, cmd)).await
    }

    /// Checks a form's CSRF token against the session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), WebError> {
        if !self.0.csrf_token.is_empty()
            && constant_time_eq(token.as_bytes(), self.0.csrf_token.as_bytes())
        {
            Ok(())
        } else {
            Err(WebError::Refused(AppError::refused(
                Code::CsrfFailed,
                "this form is out of date or was not sent from cellqc: reload the page and try again",
            )))
        }
    }
}

pub use crate::auth::secrets_equal as constant_time_eq;

impl FromRequest for WebUser {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let request = req.clone();
        let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let zone = req
            .cookie(ZONE_COOKIE)
            .and_then(|c| c.value().parse::<Tz>().ok())
            .unwrap_or(Tz::UTC);
        Box::pin(async move {
            let (Some(state), Some(token)) = (state, token) else {
                return Err(WebError::SignIn);
            };
            let cfg = state.auth.clone();
            match state.db(move |c| authenticate(c, &cfg, &token)).await {
                Ok(who) => {
                    // For the error page, rendered after the handler.
                    request.extensions_mut().insert(who.actor.locale);
                    // On a password someone else set: read, sign out, choose
                    // one's own, nothing else.
                    let writes = request.method() != actix_web::http::Method::GET
                        && request.method() != actix_web::http::Method::HEAD;
                    let own = matches!(request.path(), "/logout" | "/account/password");
                    if who.actor.password_change_required
                        && !crate::domain::users::temporary_password_allows(writes, own)
                    {
                        let (method, path) =
                            (request.method().to_string(), request.path().to_owned());
                        let refusal = state
                            .db(move |c| {
                                crate::services::auth::refuse_write_on_temporary_password(
                                    c, &who, &method, &path,
                                )
                            })
                            .await
                            .map_err(WebError::Refused)?;
                        return Err(WebError::Refused(refusal));
                    }
                    Ok(WebUser(who, zone))
                }
                Err(AppError::Problem(p)) if p.code.kind() == crate::error::Kind::NotSignedIn => {
                    Err(WebError::SignIn)
                }
                Err(e) => Err(WebError::Refused(e)),
            }
        })
    }
}

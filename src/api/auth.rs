//! `/auth`: sign-in, sign-out, who am I, password change.

use super::extract::Json;
use crate::error::AppError;
use crate::http::auth::CurrentUser;
use crate::http::{AppState, Db};
use crate::i18n::Locale;
use crate::services::UserView;
use crate::services::auth as svc;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

/// `POST /auth/login` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

/// `POST /auth/login` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    /// The password was set by someone else: change it before signing anything.
    password_change_required: bool,
    user: UserView,
}

/// Signs in with username and password.
#[utoipa::path(tag = "auth", security(()), request_body = LoginRequest, responses((status = 200, body = LoginResponse), crate::api::openapi::Problems))]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.parse()?;
    let address = state.check_login_rate(&req)?;
    let cfg = state.auth.clone();
    let ok = state
        .db(move |c| svc::login(c, &cfg, &body.username, &body.password, &address))
        .await?;
    Ok(HttpResponse::Ok().json(LoginResponse {
        access_token: ok.access_token,
        token_type: "Bearer",
        expires_in: ok.expires_in,
        password_change_required: ok.user.password_change_required,
        user: ok.user,
    }))
}

/// Ends the session; the token is refused from now on.
#[utoipa::path(tag = "auth", responses((status = 204, description = "The session is revoked"), crate::api::openapi::Problems))]
#[post("/auth/logout")]
pub async fn logout(db: Db, user: CurrentUser) -> Result<HttpResponse, AppError> {
    db.run(move |c| svc::logout(c, &user)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in user.
#[utoipa::path(tag = "auth", responses((status = 200, body = crate::services::UserView), crate::api::openapi::Problems))]
#[get("/auth/me")]
pub async fn me(db: Db, user: CurrentUser) -> Result<HttpResponse, AppError> {
    let view = db.run(move |c| svc::me(c, &user)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /auth/password` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes one's own password.
#[utoipa::path(tag = "auth", request_body = PasswordChange, responses((status = 204, description = "Changed; other sessions revoked"), crate::api::openapi::Problems))]
#[post("/auth/password")]
pub async fn change_password(
    db: Db,
    user: CurrentUser,
    body: Json<PasswordChange>,
) -> Result<HttpResponse, AppError> {
    let body = body.parse()?;
    let cfg = db.state().auth.clone();
    db.run(move |c| {
        svc::change_password(c, &cfg, &user, &body.current_password, &body.new_password)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /auth/locale` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocaleChange {
    /// `en` or `zh-CN`.
    locale: Locale,
}

/// Sets the language one reads: pages, emails, certificates and the
/// statement shown when signing. Codes and stored values never change.
#[utoipa::path(tag = "auth", request_body = LocaleChange, responses((status = 200, body = crate::services::UserView), crate::api::openapi::Problems))]
#[post("/auth/locale")]
pub async fn set_locale(
    db: Db,
    user: CurrentUser,
    body: Json<LocaleChange>,
) -> Result<HttpResponse, AppError> {
    let locale = body.parse()?.locale;
    let view = db
        .run(move |c| crate::services::users::set_own_locale(c, &user.actor, locale))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

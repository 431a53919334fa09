//! `/users`: account management, admin only.

use super::create;
use super::extract::{Creation, Json, PageQuery, Query};
use crate::error::AppError;
use crate::http::auth::{Authorized, ManagesUsers};
use crate::http::{AppState, Db};
use crate::i18n::Locale;
use crate::services::UserView;
use crate::services::users::{self as svc, NewUserInput, UserPatch};
use actix_web::{HttpResponse, get, patch, post, web};
use serde::Deserialize;
use uuid::Uuid;

/// `POST /users` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    full_name: String,
    email: String,
    roles: Vec<String>,
    password: String,
    /// The language the user reads (default: the site's, `CELLQC_DEFAULT_LOCALE`).
    locale: Option<Locale>,
}

/// Creates an account.
#[utoipa::path(tag = "users", request_body = CreateUser, params(crate::api::IdempotencyHeader), responses((status = 201, body = UserView), crate::api::openapi::Problems))]
#[post("/users")]
pub async fn create_user(
    db: Db,
    state: web::Data<AppState>,
    admin: Authorized<ManagesUsers>,
    req: Creation<CreateUser>,
) -> Result<HttpResponse, AppError> {
    let (body, idempotency) = req.parse()?;
    let input = NewUserInput {
        username: body.username,
        full_name: body.full_name,
        email: body.email,
        roles: body.roles,
        password: body.password,
        temporary: true,
        locale: body.locale.unwrap_or(state.default_locale),
    };
    let actor = admin.actor.clone();
    create(db, actor.id, idempotency, move |c| {
        svc::create_user(c, Some(&actor), &input, None)
    })
    .await
}

/// Lists accounts.
#[utoipa::path(tag = "users", params(PageQuery), responses((status = 200, body = crate::services::Page<UserView>), crate::api::openapi::Problems))]
#[get("/users")]
pub async fn list_users(
    db: Db,
    _admin: Authorized<ManagesUsers>,
    Query(page): Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let page = page.to_request()?;
    let list = db.run(move |c| svc::list_users(c, page)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One account.
#[utoipa::path(tag = "users", responses((status = 200, body = UserView), crate::api::openapi::Problems))]
#[get("/users/{id}")]
pub async fn get_user(
    db: Db,
    _admin: Authorized<ManagesUsers>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let user = db.run(move |c| svc::get_user(c, id)).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

/// `PATCH /users/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    full_name: Option<String>,
    email: Option<String>,
    roles: Option<Vec<String>>,
    active: Option<bool>,
    locale: Option<Locale>,
}

/// Changes name, email, roles or active state.
#[utoipa::path(tag = "users", request_body = PatchUser, responses((status = 200, body = UserView), crate::api::openapi::Problems))]
#[patch("/users/{id}")]
pub async fn update_user(
    db: Db,
    admin: Authorized<ManagesUsers>,
    id: web::Path<Uuid>,
    body: Json<PatchUser>,
) -> Result<HttpResponse, AppError> {
    let body = body.parse()?;
    let id = id.into_inner();
    let patch = UserPatch {
        full_name: body.full_name,
        email: body.email,
        roles: body.roles,
        active: body.active,
        locale: body.locale,
    };
    let user = db
        .run(move |c| svc::update_user(c, &admin.actor, id, &patch))
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Clears a lockout.
#[utoipa::path(tag = "users", responses((status = 204, description = "Unlocked"), crate::api::openapi::Problems))]
#[post("/users/{id}/unlock")]
pub async fn unlock_user(
    db: Db,
    admin: Authorized<ManagesUsers>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    db.run(move |c| svc::unlock_user(c, &admin.actor, id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /users/{id}/password` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// The new, temporary password (the password policy applies).
    password: String,
}

/// Sets a temporary password for someone else: their sessions end, they are
/// emailed, and they sign nothing until they change it.
#[utoipa::path(tag = "users", request_body = ResetPassword, responses((status = 200, body = UserView), crate::api::openapi::Problems))]
#[post("/users/{id}/password")]
pub async fn reset_password(
    db: Db,
    admin: Authorized<ManagesUsers>,
    id: web::Path<Uuid>,
    body: Json<ResetPassword>,
) -> Result<HttpResponse, AppError> {
    let body = body.parse()?;
    let id = id.into_inner();
    let user = db
        .run(move |c| svc::reset_password(c, &admin.actor, id, &body.password))
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

//! User management for admins: create, unlock, deactivate.

use super::layout::{csrf, html_page, page, refusal, refusal_box, see_other};
use super::session::{CsrfForm, WebError, WebUser};
use crate::app::AppState;
use crate::domain::roles::{Action, Role};
use crate::error::Problem;
use crate::services::PageRequest;
use crate::services::users::{self as user_svc, NewUserInput, UserPatch};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use uuid::Uuid;

async fn users_markup(
    state: &AppState,
    user: &WebUser,
    problem: Option<&Problem>,
) -> Result<Markup, WebError> {
    let list = state
        .db(|c| {
            user_svc::list_users(
                c,
                PageRequest {
                    limit: 500,
                    after: None,
                },
            )
        })
        .await?;
    Ok(page(
        "Users",
        Some(user),
        html! {
            (refusal_box(problem))
            table {
                thead { tr { th { "Username" } th { "Name" } th { "Email" } th { "Roles" } th { "State" } th {} } }
                tbody { @for u in &list.items {
                    tr {
                        td { (u.username) } td { (u.full_name) } td { (u.email) } td { (u.roles.join(", ")) }
                        td { @if !u.active { "deactivated" } @else if u.locked { "locked" } @else { "active" } }
                        td {
                            @if u.locked {
                                form method="post" action={"/users/" (u.id) "/unlock"} { (csrf(user)) button type="submit" { "Unlock" } }
                            }
                            @if u.active && u.id != user.0.actor.id {
                                form method="post" action={"/users/" (u.id) "/deactivate"} { (csrf(user)) button.danger type="submit" { "Deactivate" } }
                            }
                        }
                    }
                } }
            }
            form.stack.card method="post" action="/users" {
                h2 { "New user" }
                (csrf(user))
                label { "Username" input type="text" name="username" required; }
                label { "Full name (printed on signatures)" input type="text" name="full_name" required; }
                label { "Email" input type="email" name="email" required; }
                fieldset { legend { "Roles" }
                    @for r in Role::ALL { label { input type="checkbox" name="roles" value=(r.as_str()); " " (r.as_str()) } }
                }
                label { "Initial password (12 to 128 characters)" input type="password" name="password" required autocomplete="new-password"; }
                button type="submit" { "Create the user" }
            }
        },
    ))
}

/// User management (admins).
#[get("/users")]
pub async fn users_page(
    state: web::Data<AppState>,
    user: WebUser,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ManageUsers)?;
    Ok(html_page(
        StatusCode::OK,
        users_markup(&state, &user, None).await?,
    ))
}

/// Creates a user. The roles arrive as repeated `roles=` fields.
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ManageUsers)?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    user.check_csrf(&get("csrf"))?;
    let input = NewUserInput {
        username: get("username"),
        full_name: get("full_name"),
        email: get("email"),
        roles: pairs
            .iter()
            .filter(|(n, _)| n == "roles")
            .map(|(_, v)| v.clone())
            .collect(),
        password: get("password"),
    };
    let actor = user.0.actor.clone();
    match state
        .db(move |c| user_svc::create_user(c, Some(&actor), &input, None))
        .await
    {
        Ok(_) => Ok(see_other("/users".to_owned())),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status,
                users_markup(&state, &user, Some(&p)).await?,
            ))
        }
    }
}

/// Unlocks a user.
#[post("/users/{id}/unlock")]
pub async fn unlock_user(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ManageUsers)?;
    user.check_csrf(&form.csrf)?;
    let (target, actor) = (id.into_inner(), user.0.actor.clone());
    state
        .db(move |c| user_svc::unlock_user(c, &actor, target))
        .await?;
    Ok(see_other("/users".to_owned()))
}

/// Deactivates a user (their sessions end at once; the username is never reused).
#[post("/users/{id}/deactivate")]
pub async fn deactivate_user(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ManageUsers)?;
    user.check_csrf(&form.csrf)?;
    let (target, actor) = (id.into_inner(), user.0.actor.clone());
    let patch = UserPatch {
        active: Some(false),
        ..UserPatch::default()
    };
    match state
        .db(move |c| user_svc::update_user(c, &actor, target, &patch))
        .await
    {
        Ok(_) => Ok(see_other("/users".to_owned())),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status,
                users_markup(&state, &user, Some(&p)).await?,
            ))
        }
    }
}

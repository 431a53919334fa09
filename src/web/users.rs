//! User management for admins: create, unlock, and change an account
//! (name, email, roles, active) after a confirmation step that shows what
//! changes.

use super::layout::{Refusal, csrf, html_page, page, refusal, see_other};
use super::session::{CsrfForm, WebError, WebUser};
use crate::domain::roles::{Action, Role};
use crate::error::Problem;
use crate::http::AppState;
use crate::services::PageRequest;
use crate::services::users::{self as user_svc, NewUserInput, UserPatch};
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use uuid::Uuid;

/// What was typed into the new-user form (never the password).
#[derive(Debug, Default)]
struct Typed {
    username: String,
    full_name: String,
    email: String,
    roles: Vec<String>,
}

const NEW_USER_LABELS: &[(&str, &str)] = &[
    ("username", "label-username"),
    ("full_name", "label-full-name"),
    ("email", "label-email"),
    ("roles", "label-roles"),
    ("password", "label-initial-password"),
];

async fn users_markup(
    state: &AppState,
    user: &WebUser,
    problem: Option<&Problem>,
    typed: &Typed,
) -> Result<Markup, WebError> {
    let r = Refusal::new(problem, NEW_USER_LABELS, user.lang());
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
        &tr!(user.lang(), "nav-users"),
        Some(user),
        html! {
            (r.summary())
            table {
                thead { tr { th { (tr!(user.lang(), "label-username")) } th { (tr!(user.lang(), "label-name")) } th { (tr!(user.lang(), "label-email")) } th { (tr!(user.lang(), "label-roles")) } th { (tr!(user.lang(), "qual-col-state")) } th {} } }
                tbody { @for u in &list.items {
                    tr {
                        td { a href={"/users/" (u.id)} { (u.username) } } td { (u.full_name) } td { (u.email) } td { (u.roles.join(", ")) }
                        td {
                            @if !u.active { (tr!(user.lang(), "user-deactivated")) } @else if u.locked { (tr!(user.lang(), "user-locked")) } @else { (tr!(user.lang(), "user-active")) }
                            @if u.active && u.password_change_required { br; span.muted { (tr!(user.lang(), "user-temporary")) } }
                        }
                        td {
                            @if u.locked {
                                form method="post" action={"/users/" (u.id) "/unlock"} { (csrf(user)) button type="submit" { (tr!(user.lang(), "user-unlock")) } }
                            }
                            a.button.secondary href={"/users/" (u.id)} { (tr!(user.lang(), "user-change")) }
                        }
                    }
                } }
            }
            form.stack.card method="post" action="/users" {
                h2 { (tr!(user.lang(), "user-new")) }
                (csrf(user))
                (super::layout::form_key())
                label { (tr!(user.lang(), "label-username")) input type="text" name="username" required value=(typed.username); (r.at("username")) }
                label { (tr!(user.lang(), "user-full-name")) input type="text" name="full_name" required value=(typed.full_name); (r.at("full_name")) }
                label { (tr!(user.lang(), "label-email")) input type="email" name="email" required value=(typed.email); (r.at("email")) }
                fieldset { legend { (tr!(user.lang(), "label-roles")) }
                    @for role in Role::ALL { label { input type="checkbox" name="roles" value=(role.as_str()) checked[typed.roles.iter().any(|t| t == role.as_str())]; " " (role.as_str()) } }
                    (r.at("roles"))
                }
                label { (tr!(user.lang(), "user-initial-password")) input type="password" name="password" required autocomplete="new-password"; (r.at("password")) }
                label { (tr!(user.lang(), "nav-language"))
                    select name="locale" {
                        @for l in crate::i18n::Locale::ALL { option value=(l.as_str()) lang=(l.as_str()) selected[l == state.default_locale] { (l.native_name()) } }
                    }
                }
                button type="submit" { (tr!(user.lang(), "user-create")) }
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
        users_markup(&state, &user, None, &Typed::default()).await?,
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
    // A double submit creates the account once.
    let once = super::layout::form_once(Some(&get("form_key")), "/users", &body);
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
        // Chosen by the admin, not by the user.
        temporary: true,
        locale: crate::i18n::Locale::parse(&get("locale")).unwrap_or(state.default_locale),
    };
    let typed = Typed {
        username: input.username.clone(),
        full_name: input.full_name.clone(),
        email: input.email.clone(),
        roles: input.roles.clone(),
    };
    let actor = user.0.actor.clone();
    match state
        .db(move |c| {
            super::layout::once_for_form(c, actor.id, once.as_ref(), |c| {
                user_svc::create_user(c, Some(&actor), &input, None)
            })
        })
        .await
    {
        Ok(_) => Ok(see_other("/users".to_owned())),
        Err(e) => {
            let p = refusal(e)?;
            Ok(html_page(
                p.status(),
                users_markup(&state, &user, Some(&p), &typed).await?,
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

const EDIT_LABELS: &[(&str, &str)] = &[
    ("full_name", "label-full-name"),
    ("email", "label-email"),
    ("roles", "label-roles"),
    ("active", "label-account"),
    ("body", "label-change"),
];

/// The proposed change of one account, as the edit form sends it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    active: String,
    /// The user's language (`en`, `zh-CN`).
    #[serde(default)]
    locale: String,
    /// `yes` once the admin has seen what changes.
    #[serde(default)]
    confirmed: String,
}

async fn edit_markup(
    state: &AppState,
    user: &WebUser,
    target: Uuid,
    problem: Option<&Problem>,
    proposed: Option<&EditForm>,
) -> Result<Markup, WebError> {
    edit_markup_with(state, user, target, problem, proposed, None).await
}

const RESET_LABELS: &[(&str, &str)] = &[("password", "label-new-temporary-password")];

async fn edit_markup_with(
    state: &AppState,
    user: &WebUser,
    target: Uuid,
    problem: Option<&Problem>,
    proposed: Option<&EditForm>,
    reset: Option<Result<(), &Problem>>,
) -> Result<Markup, WebError> {
    let (u, quals) = state
        .db(move |c| {
            Ok((
                user_svc::get_user_view(c, target)?,
                crate::services::qualifications::of_user(c, target)?,
            ))
        })
        .await?;
    let r = Refusal::new(problem, EDIT_LABELS, user.lang());
    let own = target == user.0.actor.id;
    let f = proposed.cloned().unwrap_or_else(|| EditForm {
        full_name: u.full_name.clone(),
        email: u.email.clone(),
        roles: u.roles.clone(),
        active: if u.active { "yes".into() } else { "no".into() },
        locale: u.locale.as_str().to_owned(),
        ..EditForm::default()
    });
    Ok(page(
        &tr!(user.lang(), "user-title", username = u.username.as_str()),
        Some(user),
        html! {
            (r.summary())
            form.stack.card method="post" action={"/users/" (target)} {
                (csrf(user))
                label { (tr!(user.lang(), "user-full-name")) input type="text" name="full_name" required value=(f.full_name); (r.at("full_name")) }
                label { (tr!(user.lang(), "label-email")) input type="email" name="email" required value=(f.email); (r.at("email")) }
                @if own {
                    p.muted { (tr!(user.lang(), "user-own-roles", roles = u.roles.join(", "))) }
                    @for role in &u.roles { input type="hidden" name="roles" value=(role); }
                    input type="hidden" name="active" value="yes";
                } @else {
                fieldset { legend { (tr!(user.lang(), "user-roles-rule")) }
                    @for role in Role::ALL { label { input type="checkbox" name="roles" value=(role.as_str()) checked[f.roles.iter().any(|t| t == role.as_str())]; " " (role.as_str()) } }
                    (r.at("roles"))
                }
                label { (tr!(user.lang(), "label-account"))
                    select name="active" {
                        option value="yes" selected[f.active == "yes"] { (tr!(user.lang(), "user-active-may")) }
                        option value="no" selected[f.active != "yes"] { (tr!(user.lang(), "user-deactivated-long")) }
                    }
                    (r.at("active"))
                }
                }
                label { (tr!(user.lang(), "nav-language"))
                    select name="locale" {
                        @for l in crate::i18n::Locale::ALL { option value=(l.as_str()) lang=(l.as_str()) selected[l.as_str() == f.locale] { (l.native_name()) } }
                    }
                }
                button type="submit" { (tr!(user.lang(), "user-review-change")) }
            }
            @if !own {
                @let rr = Refusal::new(reset.and_then(Result::err), RESET_LABELS, user.lang());
                form.stack.card method="post" action={"/users/" (target) "/password"} {
                    h2 { (tr!(user.lang(), "user-reset")) }
                    @if let Some(Ok(())) = reset {
                        div.notice role="status" { (tr!(user.lang(), "user-reset-done", username = u.username.as_str())) }
                    }
                    @if u.password_change_required { p.muted { (tr!(user.lang(), "user-temporary-now", username = u.username.as_str())) } }
                    (rr.summary())
                    (csrf(user))
                    label { (tr!(user.lang(), "user-new-temporary")) input type="password" name="password" required autocomplete="new-password"; (rr.at("password")) }
                    p.muted { (tr!(user.lang(), "user-reset-note")) }
                    button.danger type="submit" { (tr!(user.lang(), "user-reset")) }
                }
            }
            h2 { (tr!(user.lang(), "nav-qualifications")) }
            (super::qualifications::list_markup(user, &quals))
            p { a href="/users" { (tr!(user.lang(), "user-back")) } }
        },
    ))
}

/// One account, to change (admins).
#[get("/users/{id}")]
pub async fn edit_user_form(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ManageUsers)?;
    let markup = edit_markup(&state, &user, id.into_inner(), None, None).await?;
    Ok(html_page(StatusCode::OK, markup))
}

fn words_of(roles: &[String], loc: crate::i18n::Locale) -> String {
    if roles.is_empty() {
        tr!(loc, "none")
    } else {
        roles.join(", ")
    }
}

/// First a confirmation page saying exactly what changes; applied only
/// when the admin confirms it.
#[post("/users/{id}")]
pub async fn edit_user(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ManageUsers)?;
    let f: EditForm = super::layout::read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    confirm_or_apply(&state, &user, id.into_inner(), f).await
}

/// Deactivation from the list: the same confirmation step as any change.
#[post("/users/{id}/deactivate")]
pub async fn deactivate_user(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ManageUsers)?;
    let sent: EditForm = super::layout::read_form(&body)?;
    user.check_csrf(&sent.csrf)?;
    let target = id.into_inner();
    let current = state
        .db(move |c| user_svc::get_user_view(c, target))
        .await?;
    let f = EditForm {
        csrf: sent.csrf,
        full_name: current.full_name,
        email: current.email,
        roles: current.roles,
        active: "no".into(),
        locale: current.locale.as_str().to_owned(),
        confirmed: sent.confirmed,
    };
    confirm_or_apply(&state, &user, target, f).await
}

async fn confirm_or_apply(
    state: &AppState,
    user: &WebUser,
    target: Uuid,
    f: EditForm,
) -> Result<HttpResponse, WebError> {
    let current = state
        .db(move |c| user_svc::get_user_view(c, target))
        .await?;
    let active = f.active == "yes";
    let mut roles = f.roles.clone();
    roles.sort();
    let mut had = current.roles.clone();
    had.sort();
    let loc = user.lang();
    let locale = crate::i18n::Locale::parse(&f.locale).unwrap_or(current.locale);
    let mut changes: Vec<(String, String, String)> = Vec::new();
    if f.full_name.trim() != current.full_name {
        changes.push((
            tr!(loc, "label-full-name"),
            current.full_name.clone(),
            f.full_name.trim().to_owned(),
        ));
    }
    if f.email.trim() != current.email {
        changes.push((
            tr!(loc, "label-email"),
            current.email.clone(),
            f.email.trim().to_owned(),
        ));
    }
    if roles != had {
        changes.push((
            tr!(loc, "label-roles"),
            words_of(&had, loc),
            words_of(&roles, loc),
        ));
    }
    if active != current.active {
        let w = |a: bool| {
            if a {
                tr!(loc, "user-active")
            } else {
                tr!(loc, "user-deactivated")
            }
        };
        changes.push((tr!(loc, "label-account"), w(current.active), w(active)));
    }
    if locale != current.locale {
        changes.push((
            tr!(loc, "nav-language"),
            current.locale.native_name().to_owned(),
            locale.native_name().to_owned(),
        ));
    }
    if changes.is_empty() {
        return Ok(see_other(format!("/users/{target}")));
    }
    if f.confirmed != "yes" {
        let body = html! {
            div.notice role="status" { (tr!(user.lang(), "user-nothing-yet")) }
            table {
                thead { tr { th { (tr!(user.lang(), "instrument-col-what")) } th { (tr!(user.lang(), "user-col-now")) } th { (tr!(user.lang(), "user-col-after")) } } }
                tbody { @for (what, before, after) in &changes { tr { td { (what) } td { (before) } td { strong { (after) } } } } }
            }
            @if !active && current.active { p.field-error { (tr!(user.lang(), "user-deactivating", username = current.username.as_str())) } }
            form.stack method="post" action={"/users/" (target)} {
                (csrf(user))
                input type="hidden" name="full_name" value=(f.full_name);
                input type="hidden" name="email" value=(f.email);
                @for role in &f.roles { input type="hidden" name="roles" value=(role); }
                input type="hidden" name="active" value=(f.active);
                input type="hidden" name="locale" value=(locale.as_str());
                input type="hidden" name="confirmed" value="yes";
                button.danger type="submit" { (tr!(user.lang(), "user-confirm")) }
            }
            p { a href={"/users/" (target)} { (tr!(user.lang(), "cancel")) } }
        };
        return Ok(html_page(
            StatusCode::OK,
            page(
                &tr!(
                    user.lang(),
                    "user-confirm-title",
                    username = current.username.as_str()
                ),
                Some(user),
                body,
            ),
        ));
    }
    // Only what changes: an admin may change their own name and email, never
    // their own roles or active flag (`own_account`).
    let patch = UserPatch {
        full_name: Some(f.full_name.clone()),
        email: Some(f.email.clone()),
        roles: (roles != had).then(|| f.roles.clone()),
        active: (active != current.active).then_some(active),
        locale: (locale != current.locale).then_some(locale),
    };
    let actor = user.0.actor.clone();
    match state
        .db(move |c| user_svc::update_user(c, &actor, target, &patch))
        .await
    {
        Ok(_) => Ok(see_other("/users".to_owned())),
        Err(e) => {
            let p = refusal(e)?;
            let markup = edit_markup(state, user, target, Some(&p), Some(&f)).await?;
            Ok(html_page(p.status(), markup))
        }
    }
}

/// The reset form of one account.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// An admin sets a temporary password for someone else.
#[post("/users/{id}/password")]
pub async fn reset_password(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::ManageUsers)?;
    let f: ResetForm = super::layout::read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let (target, actor) = (id.into_inner(), user.0.actor.clone());
    let outcome = state
        .db(move |c| user_svc::reset_password(c, &actor, target, &f.password))
        .await;
    let (status, problem) = match outcome {
        Ok(_) => (StatusCode::OK, None),
        Err(e) => {
            let p = refusal(e)?;
            (p.status(), Some(p))
        }
    };
    let reset = Some(problem.as_ref().map_or(Ok(()), Err));
    let markup = edit_markup_with(&state, &user, target, None, None, reset).await?;
    Ok(html_page(status, markup))
}

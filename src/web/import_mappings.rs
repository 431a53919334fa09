//! A product's saved import mappings, kept by QA: which column of an
//! instrument's export holds which test's value. Everyone who imports sees
//! them; QA creates, replaces and retires them (each change audited).

use super::layout::{Refusal, csrf, html_page, page, refusal, see_other};
use super::session::{WebError, WebUser};
use crate::domain::roles::Action;
use crate::error::{AppError, Problem};
use crate::http::AppState;
use crate::services::import_mappings::{self as svc, MappingInput};
use crate::services::products as product_svc;
use crate::tr;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use std::collections::BTreeMap;
use uuid::Uuid;

const LABELS: &[(&str, &str)] = &[("name", "label-name"), ("mapping", "label-columns")];

/// A mapping form as posted: its name and a `map.CODE` field per test.
#[derive(Debug, Clone, Default)]
struct MappingForm {
    csrf: String,
    form_key: Option<String>,
    name: String,
    mapping: BTreeMap<String, String>,
}

impl MappingForm {
    fn read(body: &[u8]) -> MappingForm {
        let mut f = MappingForm::default();
        for (k, v) in form_urlencoded::parse(body) {
            match k.as_ref() {
                "csrf" => f.csrf = v.into_owned(),
                "form_key" => f.form_key = Some(v.into_owned()),
                "name" => f.name = v.into_owned(),
                other => {
                    if let Some(code) = other.strip_prefix("map.") {
                        if !v.trim().is_empty() {
                            f.mapping.insert(code.to_owned(), v.trim().to_owned());
                        }
                    }
                }
            }
        }
        f
    }

    fn input(&self) -> MappingInput {
        MappingInput {
            name: self.name.clone(),
            mapping: self.mapping.clone(),
        }
    }
}

/// Which form a refusal belongs to: the new one, or an existing mapping's.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Editing {
    New,
    Existing(Uuid),
}

async fn mappings_markup(
    state: &AppState,
    user: &WebUser,
    product_id: Uuid,
    refused: Option<(Editing, &Problem, &MappingForm)>,
) -> Result<Markup, WebError> {
    let (product, specs, saved) = state
        .db(move |c| {
            Ok((
                product_svc::get_product(c, product_id)?,
                product_svc::list_specs(c, product_id)?,
                svc::list(c, product_id)?,
            ))
        })
        .await?;
    // Every test of any version, in the newest version's order first.
    let mut tests: Vec<(String, String)> = Vec::new();
    for s in specs.iter().rev() {
        for t in &s.tests {
            if !tests.iter().any(|(c, _)| *c == t.code) {
                tests.push((t.code.clone(), t.name.clone()));
            }
        }
    }
    let may = user.may(Action::DefineProducts);
    let fields = |action: String,
                  editing: Editing,
                  name: &str,
                  mapping: &BTreeMap<String, String>,
                  button: &str| {
        let (r, typed) = match refused {
            Some((e, p, f)) if e == editing => (
                Refusal::new(Some(p), LABELS, user.lang()).naming(column_words),
                Some(f),
            ),
            _ => (Refusal::new(None, LABELS, user.lang()), None),
        };
        let name = typed.map_or(name, |f| f.name.as_str()).to_owned();
        let mapping = typed.map_or(mapping, |f| &f.mapping).clone();
        html! {
            (r.summary())
            form.stack method="post" action=(action) {
                (csrf(user))
                @if editing == Editing::New { (super::layout::form_key()) }
                label { (tr!(user.lang(), "label-name")) input type="text" name="name" required maxlength="80" value=(name); (r.at("name")) }
                fieldset { legend { (tr!(user.lang(), "mappings-columns")) }
                    @for (code, test_name) in &tests {
                        label { (code) " – " (test_name)
                            input type="text" name={"map." (code)} value=(mapping.get(code).cloned().unwrap_or_default());
                            (r.at(&format!("mapping.{code}"))) }
                    }
                    (r.at("mapping"))
                }
                button type="submit" { (button) }
            }
        }
    };
    Ok(page(
        &tr!(user.lang(), "mappings-title", code = product.code.as_str()),
        Some(user),
        html! {
            p.muted { (tr!(user.lang(), "mappings-intro")) }
            @if saved.is_empty() { p.muted { (tr!(user.lang(), "mappings-none")) } }
            @for m in &saved {
                section.card id={"mapping-" (m.id)} {
                    h2 { (m.name) }
                    table { thead { tr { th { (tr!(user.lang(), "col-test")) } th { (tr!(user.lang(), "mappings-col-header")) } } }
                        tbody { @for (code, header) in &m.mapping { tr { td { strong { (code) } } td { code { (header) } } } } } }
                    p.muted { (tr!(user.lang(), "mappings-last-changed")) " " (user.time(m.updated_at)) }
                    @if may {
                        details open[matches!(refused, Some((Editing::Existing(id), _, _)) if id == m.id)] {
                            summary { (tr!(user.lang(), "mappings-change")) }
                            (fields(format!("/import-mappings/{}", m.id), Editing::Existing(m.id), &m.name, &m.mapping, &tr!(user.lang(), "mappings-save-changes")))
                        }
                        form.inline method="post" action={"/import-mappings/" (m.id) "/retire"} {
                            (csrf(user))
                            button.secondary type="submit" { (tr!(user.lang(), "mappings-retire")) }
                        }
                    }
                }
            }
            @if may {
                section.card {
                    h2 { (tr!(user.lang(), "mappings-new")) }
                    (fields(format!("/products/{product_id}/import-mappings"), Editing::New, "", &BTreeMap::new(), &tr!(user.lang(), "mappings-save")))
                }
            }
            p { a href={"/products/" (product_id)} { (tr!(user.lang(), "mappings-back")) } }
        },
    ))
}

fn column_words(field: &str, loc: crate::i18n::Locale) -> Option<String> {
    field
        .strip_prefix("mapping.")
        .map(|code| tr!(loc, "import-column-of", code = code))
}

/// The product's saved import mappings (everyone; QA may change them).
#[get("/products/{id}/import-mappings")]
pub async fn mappings_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    let markup = mappings_markup(&state, &user, id.into_inner(), None).await?;
    Ok(html_page(actix_web::http::StatusCode::OK, markup))
}

/// Saves a new mapping (QA).
#[post("/products/{id}/import-mappings")]
pub async fn create_mapping(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::DefineProducts)?;
    let f = MappingForm::read(&body);
    user.check_csrf(&f.csrf)?;
    let product_id = id.into_inner();
    let input = f.input();
    let actor = user.0.actor.clone();
    // A double submit saves the mapping once.
    let once = super::layout::form_once(
        f.form_key.as_deref(),
        &format!("/products/{product_id}/import-mappings"),
        &body,
    );
    let saved = state
        .db(move |c| {
            let created = super::layout::once_for_form(c, actor.id, once.as_ref(), |c| {
                svc::create(c, &actor, product_id, &input)
            })?;
            super::layout::created_id(&created)
        })
        .await;
    answer(&state, &user, product_id, Editing::New, &f, saved).await
}

/// Replaces a mapping (QA).
#[post("/import-mappings/{id}")]
pub async fn replace_mapping(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::DefineProducts)?;
    let f = MappingForm::read(&body);
    user.check_csrf(&f.csrf)?;
    let id = id.into_inner();
    let input = f.input();
    let actor = user.0.actor.clone();
    let product_id = product_of(&state, id).await?;
    let saved = state.db(move |c| svc::replace(c, &actor, id, &input)).await;
    answer(
        &state,
        &user,
        product_id,
        Editing::Existing(id),
        &f,
        saved.map(|m| m.id),
    )
    .await
}

/// Retires a mapping (QA).
#[post("/import-mappings/{id}/retire")]
pub async fn retire_mapping(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::DefineProducts)?;
    let f = MappingForm::read(&body);
    user.check_csrf(&f.csrf)?;
    let id = id.into_inner();
    let product_id = product_of(&state, id).await?;
    let actor = user.0.actor.clone();
    state.db(move |c| svc::retire(c, &actor, id)).await?;
    Ok(see_other(format!("/products/{product_id}/import-mappings")))
}

async fn product_of(state: &AppState, id: Uuid) -> Result<Uuid, WebError> {
    Ok(state.db(move |c| svc::get(c, id)).await?.product_id)
}

async fn answer(
    state: &AppState,
    user: &WebUser,
    product_id: Uuid,
    editing: Editing,
    f: &MappingForm,
    saved: Result<Uuid, AppError>,
) -> Result<HttpResponse, WebError> {
    match saved {
        Ok(id) => Ok(see_other(format!(
            "/products/{product_id}/import-mappings#mapping-{id}"
        ))),
        Err(e) => {
            let p = refusal(e)?;
            let markup = mappings_markup(state, user, product_id, Some((editing, &p, f))).await?;
            Ok(html_page(p.status(), markup))
        }
    }
}

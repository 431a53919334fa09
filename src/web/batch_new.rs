//! Starting a batch (technicians and QA): the product, its number, dates,
//! donor, recipient, quantity and parents, refused in words next to each
//! field and kept as typed.

use super::layout::once_for_form;
use super::layout::{
    Refusal, created_id, csrf, form_key, form_once, html_page, page, read_form, refusal, see_other,
};
use super::session::{WebError, WebUser};
use crate::domain::roles::Action;
use crate::error::{AppError, Problem};
use crate::http::AppState;
use crate::services::PageRequest;
use crate::services::batches::{self as batch_svc, NewBatchInput};
use crate::services::products as product_svc;
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

/// The form's fields and their labels (errors are shown under the label).
const LABELS: &[(&str, &str)] = &[
    ("product_id", "label-product"),
    ("batch_number", "label-batch-number"),
    ("manufactured_at", "label-manufactured-at"),
    ("expires_at", "label-expires-at"),
    ("donor_din", "label-donor-din"),
    ("intended_recipient", "label-intended-recipient"),
    ("quantity", "label-quantity"),
    ("unit", "label-unit"),
    ("parent_batch_ids", "label-parent-batches"),
];

/// The new-batch form's fields, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewBatchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    form_key: Option<String>,
    #[serde(default)]
    product_id: String,
    #[serde(default)]
    batch_number: String,
    #[serde(default)]
    manufactured_at: String,
    #[serde(default)]
    expires_at: String,
    #[serde(default)]
    donor_din: String,
    #[serde(default)]
    intended_recipient: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    parents: String,
}

async fn form_markup(
    state: &AppState,
    user: &WebUser,
    problem: Option<&Problem>,
    typed: &NewBatchForm,
) -> Result<Markup, WebError> {
    let products = state
        .db(|c| {
            product_svc::list_products(
                c,
                PageRequest {
                    limit: 500,
                    after: None,
                },
            )
        })
        .await?;
    let r = Refusal::new(problem, LABELS, user.lang());
    Ok(page(
        &tr!(user.lang(), "home-start-batch"),
        Some(user),
        html! {
            (r.summary())
            form.stack.card method="post" action="/batches" {
                (csrf(user))
                (form_key())
                label { (tr!(user.lang(), "col-product"))
                    select name="product_id" required {
                        @for p in &products.items {
                            option value=(p.id) selected[p.id.to_string() == typed.product_id] { (p.code) " – " (p.name) }
                        }
                    }
                    (r.at("product_id"))
                }
                label { (tr!(user.lang(), "label-batch-number"))
                    input type="text" name="batch_number" required maxlength="64" autocomplete="off" value=(typed.batch_number);
                    (r.at("batch_number"))
                }
                label { (tr!(user.lang(), "new-manufactured-at", zone = user.zone_name()))
                    input type="datetime-local" name="manufactured_at" step="1" required value=(typed.manufactured_at);
                    (r.at("manufactured_at"))
                }
                label { (tr!(user.lang(), "new-expires-at", zone = user.zone_name()))
                    input type="datetime-local" name="expires_at" step="1" required value=(typed.expires_at);
                    (r.at("expires_at"))
                }
                label { (tr!(user.lang(), "new-donor-din"))
                    input type="text" name="donor_din" autocomplete="off" value=(typed.donor_din);
                    (r.at("donor_din"))
                }
                label { (tr!(user.lang(), "new-recipient"))
                    input type="text" name="intended_recipient" autocomplete="off" value=(typed.intended_recipient);
                    (r.at("intended_recipient"))
                }
                label { (tr!(user.lang(), "new-quantity"))
                    input type="text" name="quantity" inputmode="decimal" value=(typed.quantity);
                    (r.at("quantity"))
                }
                label { (tr!(user.lang(), "new-unit"))
                    input type="text" name="unit" value=(typed.unit);
                    (r.at("unit"))
                }
                label { (tr!(user.lang(), "new-parents"))
                    input type="text" name="parents" autocomplete="off" value=(typed.parents);
                    (r.at("parent_batch_ids"))
                }
                button type="submit" { (tr!(user.lang(), "new-start")) }
            }
            p { a href="/batches" { (tr!(user.lang(), "back-to-batches")) } }
        },
    ))
}

/// The new-batch form.
#[get("/batches/new")]
pub async fn new_batch_form(
    state: web::Data<AppState>,
    user: WebUser,
) -> Result<HttpResponse, WebError> {
    user.require(Action::CreateBatch)?;
    let typed = NewBatchForm {
        manufactured_at: user.now_for_form(),
        ..NewBatchForm::default()
    };
    let markup = form_markup(&state, &user, None, &typed).await?;
    Ok(html_page(StatusCode::OK, markup))
}

fn optional(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Every field's error at once, as the API would list them.
fn batch_input(user: &WebUser, f: &NewBatchForm) -> Result<(NewBatchInput, Vec<String>), AppError> {
    let mut errors = Vec::new();
    let product_id = Uuid::parse_str(&f.product_id).unwrap_or_else(|_| {
        errors.push(crate::error::FieldError::new(
            "product_id",
            tr!(user.lang(), "new-choose-product"),
        ));
        Uuid::nil()
    });
    let mut when = |field: &str, v: &str| {
        user.from_form(field, v).unwrap_or_else(|e| {
            if let AppError::Problem(p) = e {
                errors.extend(p.errors);
            }
            chrono::DateTime::<chrono::Utc>::MIN_UTC
        })
    };
    let manufactured_at = when("manufactured_at", &f.manufactured_at);
    let expires_at = when("expires_at", &f.expires_at);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let parents: Vec<String> = f
        .parents
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let input = NewBatchInput {
        batch_number: f.batch_number.clone(),
        product_id,
        manufactured_at,
        expires_at,
        donor_din: optional(&f.donor_din),
        intended_recipient: optional(&f.intended_recipient),
        parent_batch_ids: Vec::new(),
        // The form sends text; as a JSON string it is read exactly as typed.
        quantity: optional(&f.quantity)
            .map(|q| serde_json::to_string(&q))
            .transpose()?,
        unit: optional(&f.unit),
    };
    Ok((input, parents))
}

/// Starts the batch and shows it, with its missing results as a checklist.
#[post("/batches")]
pub async fn create_batch(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    user.require(Action::CreateBatch)?;
    let f: NewBatchForm = read_form(&body)?;
    user.check_csrf(&f.csrf)?;
    let actor = user.0.actor.clone();
    // A double submit starts the batch once and shows it.
    let once = form_once(f.form_key.as_deref(), "/batches", &body);
    let attempt = match batch_input(&user, &f) {
        Err(e) => Err(e),
        Ok((mut input, parents)) => {
            state
                .db(move |c| {
                    let created = once_for_form(c, actor.id, once.as_ref(), |c| {
                        input.parent_batch_ids = batch_svc::ids_of_numbers(c, &parents)?;
                        batch_svc::create_batch(c, &actor, &input)
                    })?;
                    created_id(&created)
                })
                .await
        }
    };
    match attempt {
        Ok(id) => Ok(see_other(format!("/batches/{id}?started=1"))),
        Err(e) => {
            let p = refusal(e)?;
            let markup = form_markup(&state, &user, Some(&p), &f).await?;
            Ok(html_page(p.status(), markup))
        }
    }
}

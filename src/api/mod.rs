//! The JSON API under `/api/v1` (contract: API.md), plus `/healthz` and `/readyz`.
//!
//! Handlers are thin: extract, call one service on the blocking pool, map the
//! answer to JSON. Their signatures state who may call them.

pub mod audit;
pub mod auth;
pub mod batches;
pub mod constraints;
pub mod custody;
pub mod deviations;
pub mod extract;
pub mod health;
pub mod imports;
pub mod instruments;
pub mod materials;
pub mod openapi;
pub mod products;
pub mod qualifications;
pub mod release;
pub mod results;
pub mod users;

use crate::error::AppError;
use crate::error::Code;
use crate::http::Db;
use crate::services::idempotency::{IdempotencyKey, create_once};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use diesel::pg::PgConnection;
use serde::Serialize;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

/// `?format=`: `json` (the default) or `csv`; anything else is 422 naming
/// the field.
pub fn wants_csv(format: Option<&str>) -> Result<bool, crate::error::AppError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(_) => Err(crate::error::AppError::invalid_field_said(
            "format",
            "fe-must-be-json-or-csv",
        )),
    }
}

/// `?format=json|csv` of an operation that answers either.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `json` (the default) or `csv`.
    format: Option<String>,
}

impl FormatQuery {
    /// Whether CSV was asked for (422 naming `format` for anything else).
    pub fn csv(&self) -> Result<bool, crate::error::AppError> {
        wants_csv(self.format.as_deref())
    }
}

/// Middleware: a refusal's words (`title`, `detail`) in the language
/// `Accept-Language` asks for; its code, fields and values never change.
pub async fn problems_in_language(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let loc = req
        .headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::i18n::Locale::from_accept_language)
        .unwrap_or_default();
    let res = next.call(req).await?.map_into_boxed_body();
    if loc == crate::i18n::Locale::En {
        return Ok(res);
    }
    let answered = res
        .response()
        .extensions()
        .get::<crate::http::problem::AnsweredProblem>()
        .cloned();
    let Some(crate::http::problem::AnsweredProblem(problem)) = answered else {
        return Ok(res);
    };
    let mut localised = crate::http::problem::problem_response_in(&problem, loc);
    // Every other header the refusal carried (Allow, WWW-Authenticate, ...).
    for (name, value) in res.headers() {
        if !localised.headers().contains_key(name) {
            localised.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(res.into_response(localised))
}

/// Registers every route, and with it its OpenAPI description.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(
            scope("/api/v1")
                .wrap(actix_web::middleware::from_fn(
                    crate::http::auth::authenticate_first,
                ))
                .wrap(actix_web::middleware::from_fn(problems_in_language))
                .service(auth::login)
                .service(auth::logout)
                .service(auth::me)
                .service(auth::change_password)
                .service(auth::set_locale)
                .service(users::create_user)
                .service(users::list_users)
                .service(users::get_user)
                .service(users::update_user)
                .service(users::unlock_user)
                .service(users::reset_password)
                .service(qualifications::grant)
                .service(qualifications::of_user)
                .service(qualifications::revoke)
                .service(instruments::register)
                .service(instruments::list_instruments)
                .service(instruments::get_instrument)
                .service(instruments::calibrate)
                .service(instruments::out_of_service)
                .service(instruments::return_to_service)
                .service(materials::receive)
                .service(materials::list_materials)
                .service(materials::get_material)
                .service(materials::release)
                .service(materials::reject)
                .service(materials::use_in_batch)
                .service(materials::where_used)
                .service(products::create_product)
                .service(products::list_products)
                .service(products::get_product)
                .service(products::create_specification)
                .service(products::list_specifications)
                .service(products::get_specification)
                .service(products::approve_specification)
                .service(products::product_trends)
                .service(batches::create_batch)
                .service(batches::list_batches)
                .service(batches::get_batch)
                .service(batches::batch_history)
                .service(batches::batch_certificate)
                .service(results::record_result)
                .service(results::get_result)
                .service(results::review_results)
                .service(results::review_result)
                .service(imports::import_results)
                .service(imports::get_source_file)
                .service(imports::list_import_mappings)
                .service(imports::create_import_mapping)
                .service(imports::replace_import_mapping)
                .service(imports::retire_import_mapping)
                .service(release::release_readiness)
                .service(release::audit_review)
                .service(release::sign_audit_review)
                .service(release::release_batch)
                .service(release::reject_batch)
                .service(release::recall_batch)
                .service(custody::record_custody)
                .service(custody::list_custody)
                .service(deviations::open_deviation)
                .service(deviations::close_deviation)
                .service(audit::list_audit)
                .service(audit::verify_audit)
                .service(audit::create_anchor)
                .service(audit::list_anchors)
                .service(audit::anchor_key),
        );
}

/// The `Idempotency-Key` header of creating POSTs.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// A retry with the same key and body returns the first response
    /// (`Idempotent-Replayed: true`) and creates nothing; the same key with
    /// another body is 422 `idempotency_key_reused`.
    #[param(rename = "Idempotency-Key")]
    #[expect(dead_code, reason = "only describes the header")]
    idempotency_key: Option<String>,
}

/// Runs a creating use case once per `Idempotency-Key` and answers 201 with
/// its record (a replay carries `Idempotent-Replayed: true`).
pub async fn create<T, F>(
    db: Db,
    user_id: Uuid,
    key: Option<IdempotencyKey>,
    f: F,
) -> Result<HttpResponse, AppError>
where
    T: Serialize,
    F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
{
    let created = db
        .run(move |c| {
            create_once(c, user_id, key.as_ref(), |c| {
                Ok(serde_json::to_value(f(c)?)?)
            })
        })
        .await?;
    Ok(created_response(created))
}

/// A creating request's answer: 201 (or the first answer's status) with
/// `Idempotent-Replayed` on a replay.
fn created_response(created: crate::services::idempotency::Created) -> HttpResponse {
    let status = StatusCode::from_u16(created.status).unwrap_or(StatusCode::CREATED);
    let mut resp = HttpResponse::build(status);
    if created.replayed {
        resp.insert_header(("Idempotent-Replayed", "true"));
    }
    resp.json(created.body)
}

/// [`create`] for a one-hop route: the caller is decided in the use case's
/// own task, then the body (`parsed`, judged on the way in but refused only
/// now, so 401/403 come before 422), then the use case once per key.
pub async fn create_as<R, B, T, F>(
    db: Db,
    caller: crate::http::auth::Caller<R>,
    parsed: Result<(B, Option<IdempotencyKey>), AppError>,
    f: F,
) -> Result<HttpResponse, AppError>
where
    R: crate::http::auth::CallerRequirement + Send + 'static,
    B: Send + 'static,
    T: Serialize,
    F: FnOnce(&mut PgConnection, &crate::services::auth::Authenticated, B) -> Result<T, AppError>
        + Send
        + 'static,
{
    let created = db
        .run_as(caller, move |c, who| {
            let (body, key) = parsed?;
            create_once(c, who.actor.id, key.as_ref(), |c| {
                Ok(serde_json::to_value(f(c, who, body)?)?)
            })
        })
        .await?;
    Ok(created_response(created))
}

/// Any request no route matches: `405` with `Allow` when the path is a
/// documented operation's under another method (TRACE, or DELETE on a
/// record), else `404`.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, AppError> {
    if let Some(resp) = method_not_allowed(&req) {
        return Ok(resp);
    }
    Err(AppError::refused(
        Code::RouteNotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// `405 method_not_allowed` with `Allow` when the document's best match for
/// the path (the most literal template: `/results/review` before
/// `/results/{id}`) does not declare the request's method. A `GET
/// /results/review` is routed to `GET /results/{id}` and would otherwise
/// be refused as a malformed id.
pub fn method_not_allowed(req: &HttpRequest) -> Option<HttpResponse> {
    let allow = allowed_methods(req.path())?;
    if allow.split(", ").any(|m| m == req.method().as_str()) {
        return None;
    }
    let problem = crate::error::Problem {
        code: crate::error::Code::MethodNotAllowed,
        detail: format!(
            "{} {} is not served; allowed: {allow}",
            req.method(),
            req.path()
        ),
        errors: Vec::new(),
        blockers: None,
        retry_after: None,
    };
    let mut resp = crate::http::problem::problem_response(&problem);
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        resp.headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    Some(resp)
}

/// The methods the OpenAPI document declares for `path` (its templates'
/// `{...}` segments match any one segment), as an `Allow` value.
fn allowed_methods(path: &str) -> Option<String> {
    static ROUTES: std::sync::OnceLock<Vec<(Vec<String>, String)>> = std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        let doc = openapi::served();
        doc.get("paths")
            .and_then(serde_json::Value::as_object)
            .map(|paths| {
                paths
                    .iter()
                    .map(|(template, item)| {
                        let segments = template.split('/').map(str::to_owned).collect();
                        let methods: Vec<String> = item
                            .as_object()
                            .map(|m| m.keys().map(|k| k.to_uppercase()).collect())
                            .unwrap_or_default();
                        (segments, methods.join(", "))
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let wanted: Vec<&str> = path.split('/').collect();
    // The template with the most literal segments wins: `/results/review`
    // before `/results/{id}`.
    routes
        .iter()
        .filter(|(segments, _)| {
            segments.len() == wanted.len()
                && segments
                    .iter()
                    .zip(&wanted)
                    .all(|(t, w)| t == w || (t.starts_with('{') && !w.is_empty()))
        })
        .max_by_key(|(segments, _)| segments.iter().filter(|t| !t.starts_with('{')).count())
        .map(|(_, allow)| allow.clone())
}

//! `/products` and `/specifications`.

use super::create;
use super::extract::{Creation, Json, PageQuery, Query};
use crate::domain::spec::{ApproveSpecification, CreateProduct, CreateSpecification};
use crate::error::AppError;
use crate::http::auth::{ApprovesSpecs, Authorized, CurrentUser, DefinesProducts};
use crate::http::{Db, ReportDb};
use crate::services::products::{self as svc, ProductView};
use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use uuid::Uuid;

/// Creates a product (QA).
#[utoipa::path(tag = "products", request_body = CreateProduct, params(crate::api::IdempotencyHeader), responses((status = 201, body = ProductView), crate::api::openapi::Problems))]
#[post("/products")]
pub async fn create_product(
    db: Db,
    qa: Authorized<DefinesProducts>,
    req: Creation<CreateProduct>,
) -> Result<HttpResponse, AppError> {
    let (input, idempotency) = req.parse()?;
    let actor = qa.actor.clone();
    create(db, actor.id, idempotency, move |c| {
        svc::create_product(c, &actor, &input)
    })
    .await
}

/// Lists products.
#[utoipa::path(tag = "products", params(PageQuery), responses((status = 200, body = crate::services::Page<ProductView>), crate::api::openapi::Problems))]
#[get("/products")]
pub async fn list_products(
    db: Db,
    _user: CurrentUser,
    Query(page): Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let page = page.to_request()?;
    let list = db.run(move |c| svc::list_products(c, page)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One product.
#[utoipa::path(tag = "products", responses((status = 200, body = ProductView), crate::api::openapi::Problems))]
#[get("/products/{id}")]
pub async fn get_product(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let p = db.run(move |c| svc::get_product(c, id)).await?;
    Ok(HttpResponse::Ok().json(ProductView::from(&p)))
}

/// Creates a draft specification (QA).
#[utoipa::path(tag = "specifications", request_body = CreateSpecification, params(crate::api::IdempotencyHeader), responses((status = 201, body = crate::services::products::SpecView), crate::api::openapi::Problems))]
#[post("/products/{id}/specifications")]
pub async fn create_specification(
    db: Db,
    qa: Authorized<DefinesProducts>,
    id: web::Path<Uuid>,
    req: Creation<CreateSpecification>,
) -> Result<HttpResponse, AppError> {
    let (cmd, idempotency) = req.parse()?;
    let product_id = id.into_inner();
    let actor = qa.actor.clone();
    create(db, actor.id, idempotency, move |c| {
        svc::create_spec(c, &actor, product_id, &cmd)
    })
    .await
}

/// The specifications of a product.
#[utoipa::path(tag = "specifications", responses((status = 200, body = crate::services::Page<crate::services::products::SpecView>), crate::api::openapi::Problems))]
#[get("/products/{id}/specifications")]
pub async fn list_specifications(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let specs = db.run(move |c| svc::list_specs(c, id)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": specs, "next_cursor": null })))
}

/// One specification.
#[utoipa::path(tag = "specifications", responses((status = 200, body = crate::services::products::SpecView), crate::api::openapi::Problems))]
#[get("/specifications/{id}")]
pub async fn get_specification(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let spec = db.run(move |c| svc::get_spec(c, id)).await?;
    Ok(HttpResponse::Ok().json(spec))
}

/// Approves a draft (QA, not its author; signed).
#[utoipa::path(tag = "specifications", request_body = ApproveSpecification, responses((status = 200, body = crate::services::products::SpecView), crate::api::openapi::Problems))]
#[post("/specifications/{id}/approve")]
pub async fn approve_specification(
    db: Db,
    qa: Authorized<ApprovesSpecs>,
    id: web::Path<Uuid>,
    body: Json<ApproveSpecification>,
) -> Result<HttpResponse, AppError> {
    let body = body.parse()?;
    let id = id.into_inner();
    let rules = db.state().signing.clone();
    let spec = db
        .run(move |c| svc::approve_spec(c, &rules, &qa.actor, id, &body))
        .await?;
    Ok(HttpResponse::Ok().json(spec))
}

/// `GET /products/{id}/trends` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrendQuery {
    /// A numeric test of the product's effective specification.
    test_code: Option<String>,
    /// Points performed at or after this time.
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// Points performed at or before this time.
    to: Option<chrono::DateTime<chrono::Utc>>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// One test across the product's batches: an individuals chart with the
/// Nelson rules 1, 2, 3 and 5 and Cpk (DOMAIN.md "Trends").
#[utoipa::path(tag = "products", params(TrendQuery), responses((status = 200, description = "The chart as JSON, or its points as CSV with `format=csv`", content((crate::services::trends::Trend = "application/json"), (String = "text/csv"))), crate::api::openapi::Problems))]
#[get("/products/{id}/trends")]
pub async fn product_trends(
    db: ReportDb,
    _user: CurrentUser,
    id: web::Path<Uuid>,
    Query(q): Query<TrendQuery>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let csv = super::wants_csv(q.format.as_deref())?;
    let Some(code) = q.test_code.filter(|c| !c.trim().is_empty()) else {
        return Err(AppError::invalid_field_said(
            "test_code",
            "fe-is-required-the-numeric-test-to-chart",
        ));
    };
    let (from, to) = (q.from, q.to);
    let trend = db
        .run(move |c| crate::services::trends::trend(c, id, code.trim(), from, to))
        .await?;
    if csv {
        let body = crate::services::trends::csv(&trend)?;
        return Ok(HttpResponse::Ok()
            .content_type(crate::report::csv::MEDIA_TYPE)
            .insert_header(crate::http::download::download(
                false,
                &format!(
                    "trend-{}-{}.csv",
                    trend.product_id,
                    crate::report::name_part(&trend.test_code)
                ),
            ))
            .body(body));
    }
    Ok(HttpResponse::Ok().json(trend))
}

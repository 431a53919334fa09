//! The OpenAPI 3.1 description, assembled from the handlers' `#[utoipa::path]`
//! annotations by the same `service(...)` calls that route requests (see
//! [`super::configure`]), so a route can't exist without its documentation.
//! Served at `/api/openapi.json`; Swagger UI (vendored, works offline) at `/docs/`.

use serde::Serialize;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, ToSchema};

/// An RFC 9457 problem (every error response).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDoc {
    /// URI naming the problem type (`urn:cellqc:problem:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, in words.
    pub detail: String,
    /// Stable snake_case machine code.
    pub code: String,
    /// Each invalid field (422).
    #[schema(nullable = false)]
    pub errors: Option<Vec<crate::domain::FieldError>>,
    /// Release blockers (409 `not_releasable`).
    #[schema(nullable = false)]
    pub blockers: Option<Vec<crate::domain::release::Blocker>>,
}

/// A decimal value: a JSON number or a decimal string; returned as entered.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum DecimalInput {
    /// `95.0`
    Number(f64),
    /// `"95.0"`, `"1.0e8"`
    Text(String),
}

/// A file's bytes (the certificate's PDF).
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);

/// The error responses every operation may give.
#[derive(IntoResponses)]
pub enum Problems {
    /// Malformed JSON, path id or header.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(ProblemDoc),
    /// Missing, invalid, expired or revoked token; wrong password at signing.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(ProblemDoc),
    /// Role or separation-of-duties refusal.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(ProblemDoc),
    /// Unknown resource.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(ProblemDoc),
    /// The record exists but the action is not allowed now.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(ProblemDoc),
    /// Body over 1 MiB (an import's over 16 MiB).
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(ProblemDoc),
    /// The body is not JSON.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(ProblemDoc),
    /// Validation failure; `errors` names each field.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(ProblemDoc),
    /// Rate limited (sign-in), or another import of the same user running.
    #[response(status = 429, content_type = "application/problem+json")]
    TooManyRequests(ProblemDoc),
    /// The database is unavailable.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(ProblemDoc),
}

/// Adds the bearer scheme, applied to every operation that does not opt out.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Document-level information.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "cellqc",
        description = "GMP quality-control tracking for cell-therapy batches: specifications, \
                       results and review, deviations, release, chain of custody, audit trail. \
                       Errors are RFC 9457 problem+json with a stable `code`. Creating POSTs \
                       accept `Idempotency-Key`. Signed actions take the signer's `password`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ProblemDoc, DecimalInput, Binary))
)]
pub struct ApiDoc;

/// The complete description: document information plus every registered route.
pub fn document() -> OpenApi {
    use actix_web::App;
    use utoipa_actix_web::AppExt;
    let (_, paths) = App::new()
        .into_utoipa_app()
        .configure(super::configure)
        .split_for_parts();
    let mut api = <ApiDoc as utoipa::OpenApi>::openapi();
    api.merge(paths);
    describe_responses(&mut api);
    link_creates(&mut api);
    api
}

/// The served document: [`document`] with the rules the server applies to
/// each field stated (`super::constraints`), as JSON. Built once.
pub fn served() -> &'static serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(document()).unwrap_or_default();
        super::constraints::apply(&mut doc);
        doc
    })
}

/// `GET /api/openapi.json`.
pub async fn serve() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(served())
}

/// OpenAPI links from each create (`201`) to the operations that take the
/// created record's id: `POST /batches/{id}/results` links to
/// `GET /results/{id}` and `POST /results/{id}/review`, with `id` taken from
/// the answer's body. Client generators and stateful fuzzers follow them.
fn link_creates(api: &mut OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::link::LinkBuilder;
    // The JSON schema of a response's body, to compare what a create answers
    // with what reading the record answers.
    let body = |r: &utoipa::openapi::Response| {
        r.content
            .get("application/json")
            .and_then(|c| serde_json::to_value(c).ok())
    };
    let mut read_as = std::collections::BTreeMap::new(); // template -> body of GET
    let mut by_id: Vec<(String, String)> = Vec::new(); // (template, operationId)
    for (template, item) in &api.paths.paths {
        if let Some(RefOr::T(ok)) = item
            .get
            .as_ref()
            .and_then(|g| g.responses.responses.get("200"))
        {
            if let Some(schema) = body(ok) {
                read_as.insert(template.clone(), schema);
            }
        }
        let operations = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
        for op in operations.into_iter().flatten() {
            if let Some(id) = &op.operation_id {
                by_id.push((template.clone(), id.clone()));
            }
        }
    }
    for (template, item) in &mut api.paths.paths {
        let Some(post) = item.post.as_mut() else {
            continue;
        };
        let Some(RefOr::T(created)) = post.responses.responses.get_mut("201") else {
            continue;
        };
        let Some(resource) = template.rsplit('/').find(|s| !s.starts_with('{')) else {
            continue;
        };
        let own = format!("/api/v1/{resource}/{{id}}");
        // A create under another record (`/batches/{id}/materials`) links
        // only when it answers what reading the record answers: a material
        // use's id is not a material's.
        let nested = *template != format!("/api/v1/{resource}");
        if nested
            && read_as
                .get(&own)
                .is_some_and(|r| Some(r) != body(created).as_ref())
        {
            continue;
        }
        for (target, operation_id) in &by_id {
            if *target == own || target.starts_with(&format!("{own}/")) {
                created.links.insert(
                    operation_id.clone(),
                    RefOr::T(
                        LinkBuilder::new()
                            .operation_id(operation_id.clone())
                            .parameter("id", "$response.body#/id")
                            .build(),
                    ),
                );
            }
        }
    }
}

/// Gives every response the description OpenAPI requires: one declared with
/// only its body is described by its status and its operation's summary
/// (`200 OK: Lists batches.`), so a client generator names it.
fn describe_responses(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let summary = op
                .summary
                .clone()
                .or_else(|| op.description.clone())
                .unwrap_or_default();
            for (status, response) in &mut op.responses.responses {
                if let utoipa::openapi::RefOr::T(r) = response {
                    if r.description.trim().is_empty() {
                        let reason = status
                            .parse::<u16>()
                            .ok()
                            .and_then(|s| actix_web::http::StatusCode::from_u16(s).ok())
                            .and_then(|s| s.canonical_reason())
                            .unwrap_or("Response");
                        r.description = format!("{status} {reason}: {}", summary.trim());
                    }
                }
            }
        }
    }
}

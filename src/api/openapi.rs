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
    /// Body over 1 MiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(ProblemDoc),
    /// The body is not JSON.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(ProblemDoc),
    /// Validation failure; `errors` names each field.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(ProblemDoc),
    /// Rate limited.
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
    components(schemas(ProblemDoc, DecimalInput))
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
    api
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

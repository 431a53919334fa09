//! Results from an instrument's export: `POST /batches/{id}/results/import`
//! (with a dry run), the kept file at `GET /source-files/{id}`, and the
//! products' saved mappings of columns to tests.

use super::FormatQuery;
use super::create;
use super::extract::{Creation, Json, Query};
use crate::error::AppError;
use crate::http::auth::{AuthOutcome, Authorized, CurrentUser, DefinesProducts, RecordsResults};
use crate::http::{AppState, Db, HeldConnection, ImportTurn};
use crate::services::import_mappings::{self as mappings, ImportMappingView, MappingInput};
use crate::services::results::{self as svc, ImportInput, ImportOutcome};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The largest import body (413 above it): the export's 5 MiB as a JSON
/// string, room for its escapes (a tab is two bytes, a quote two), and the
/// other members. A file over 5 MiB that fits is 422 naming the limit.
pub const IMPORT_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The signed-in user's import turn, taken before the body is read (429
/// `import_in_progress` while another import of theirs runs). The
/// connection the session check used goes back to the pool here: an
/// import's upload holds none, and its work one (`Db`, checked out when the
/// work runs).
struct ImportSlot {
    /// Held until the answer; dropping it lets the user's next import in.
    _turn: Option<ImportTurn>,
}

impl FromRequest for ImportSlot {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let user = req
            .extensions()
            .get::<AuthOutcome>()
            .and_then(AuthOutcome::user_id);
        let state = req.app_data::<web::Data<AppState>>();
        let (Some(user), Some(state)) = (user, state) else {
            // No user: the authorization extractor before this one answers.
            return std::future::ready(Ok(ImportSlot { _turn: None }));
        };
        let turn = state.imports.take(user);
        if turn.is_ok() {
            req.extensions_mut().remove::<HeldConnection>();
        }
        std::future::ready(turn.map(|t| ImportSlot { _turn: Some(t) }))
    }
}

/// `POST /batches/{id}/results/import` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// The export's file name.
    #[schema(min_length = 1, max_length = 255)]
    filename: String,
    /// The export's text: a header row, then rows; `,`, `;` or tab
    /// delimited (detected); a decimal comma is read when the delimiter
    /// is not a comma. Kept byte for byte (its UTF-8).
    #[schema(min_length = 1)]
    content: String,
    /// Test code -> column header. Required unless `mapping_id` names a
    /// saved mapping of the batch's product.
    #[serde(default)]
    mapping: BTreeMap<String, String>,
    /// A saved mapping of the batch's product (`GET /products/{id}/import-mappings`).
    mapping_id: Option<Uuid>,
    /// When the measurements were made.
    performed_at: DateTime<Utc>,
    /// The registered instrument every value was measured on.
    instrument_id: Option<Uuid>,
    /// The lots every value used.
    #[serde(default)]
    material_ids: Vec<Uuid>,
    /// Preview every row and record nothing (200 with the rows).
    #[serde(default)]
    dry_run: bool,
}

/// Imports the batch's row of an instrument's export (technician): each
/// mapped column one result, by the rules of `POST /batches/{id}/results`,
/// all or nothing; the file is kept as a true copy. With `dry_run`, 200 and
/// the preview of every row, nothing kept.
#[utoipa::path(tag = "results", request_body = ImportBody, params(crate::api::IdempotencyHeader, FormatQuery), responses(
    (status = 200, description = "Dry run: every mapped column of the batch's row, with its value, outcome or refusal; nothing recorded (as CSV with `format=csv`).", content((crate::services::results::ImportPreview = "application/json"), (String = "text/csv"))),
    (status = 201, description = "Every row recorded, with the kept file.", body = crate::services::results::Imported),
    crate::api::openapi::Problems))]
#[post("/batches/{id}/results/import")]
pub async fn import_results(
    tech: Authorized<RecordsResults>,
    turn: ImportSlot,
    id: web::Path<Uuid>,
    format: Query<FormatQuery>,
    req: Creation<ImportBody, IMPORT_BODY_BYTES>,
    db: Db,
) -> Result<HttpResponse, AppError> {
    let _held = turn;
    let csv = format.0.csv()?;
    let (b, idempotency) = req.parse()?;
    let batch_id = id.into_inner();
    let input = ImportInput {
        filename: b.filename,
        content: b.content.into_bytes(),
        mapping: b.mapping,
        mapping_id: b.mapping_id,
        performed_at: b.performed_at,
        instrument_id: b.instrument_id,
        material_ids: b.material_ids,
        dry_run: b.dry_run,
    };
    let actor = tech.actor.clone();
    // Read on a blocking thread, before a connection is taken.
    let export = web::block(move || svc::read_export(input))
        .await
        .map_err(|e| AppError::Internal(e.into()))??;
    if export.dry_run() {
        let outcome = db
            .run(move |c| svc::import_results(c, &actor, batch_id, &export))
            .await?;
        return match outcome {
            ImportOutcome::Preview(p) if csv => Ok(HttpResponse::Ok()
                .content_type(crate::report::csv::MEDIA_TYPE)
                .insert_header(crate::http::download::download(false, "import-preview.csv"))
                .body(p.csv()?)),
            ImportOutcome::Preview(p) => Ok(HttpResponse::Ok().json(p)),
            ImportOutcome::Recorded(_) => Err(AppError::Internal(anyhow::anyhow!(
                "a dry run recorded results"
            ))),
        };
    }
    create(
        db,
        actor.id,
        idempotency,
        move |c| match svc::import_results(c, &actor, batch_id, &export)? {
            ImportOutcome::Recorded(imported) => Ok(imported),
            ImportOutcome::Preview(_) => Err(AppError::Internal(anyhow::anyhow!(
                "an import answered a preview"
            ))),
        },
    )
    .await
}

/// A kept instrument export, byte for byte as uploaded; `ETag` and
/// `Repr-Digest` carry its SHA-256.
#[utoipa::path(tag = "results", responses(
    (status = 200, description = "The file's bytes exactly as uploaded.", content_type = "text/csv", body = String,
     headers(("ETag" = String, description = "The SHA-256 of the bytes, hex, quoted"),
             ("Repr-Digest" = String, description = "RFC 9530: sha-256=:<base64>:"),
             ("Digest" = String, description = "RFC 3230: sha-256=<base64>"))),
    crate::api::openapi::Problems))]
#[get("/source-files/{id}")]
pub async fn get_source_file(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let (file, bytes) = db.run(move |c| svc::source_file(c, id)).await?;
    Ok(crate::http::download::kept_file(
        &file.filename,
        &file.media_type,
        &file.sha256,
        bytes,
    ))
}

/// `POST /products/{id}/import-mappings` and `PUT /import-mappings/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingBody {
    /// A name unique among the product's current mappings.
    #[schema(min_length = 1, max_length = 80)]
    name: String,
    /// Test code -> column header; each code a test of the product's
    /// specifications, each header named once.
    mapping: BTreeMap<String, String>,
}

impl From<MappingBody> for MappingInput {
    fn from(b: MappingBody) -> Self {
        MappingInput {
            name: b.name,
            mapping: b.mapping,
        }
    }
}

/// The product's current saved import mappings.
#[utoipa::path(tag = "products", responses((status = 200, body = Vec<ImportMappingView>), crate::api::openapi::Problems))]
#[get("/products/{id}/import-mappings")]
pub async fn list_import_mappings(
    db: Db,
    _user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let v = db.run(move |c| mappings::list(c, id)).await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Saves an import mapping for the product (QA).
#[utoipa::path(tag = "products", request_body = MappingBody, responses((status = 201, body = ImportMappingView), crate::api::openapi::Problems))]
#[post("/products/{id}/import-mappings")]
pub async fn create_import_mapping(
    db: Db,
    qa: Authorized<DefinesProducts>,
    id: web::Path<Uuid>,
    body: Json<MappingBody>,
) -> Result<HttpResponse, AppError> {
    let input = MappingInput::from(body.parse()?);
    let id = id.into_inner();
    let v = db
        .run(move |c| mappings::create(c, &qa.actor, id, &input))
        .await?;
    Ok(HttpResponse::Created().json(v))
}

/// Replaces an import mapping's name and columns (QA).
#[utoipa::path(tag = "products", request_body = MappingBody, responses((status = 200, body = ImportMappingView), crate::api::openapi::Problems))]
#[put("/import-mappings/{id}")]
pub async fn replace_import_mapping(
    db: Db,
    qa: Authorized<DefinesProducts>,
    id: web::Path<Uuid>,
    body: Json<MappingBody>,
) -> Result<HttpResponse, AppError> {
    let input = MappingInput::from(body.parse()?);
    let id = id.into_inner();
    let v = db
        .run(move |c| mappings::replace(c, &qa.actor, id, &input))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Retires an import mapping (QA): kept, no longer offered or accepted.
#[utoipa::path(tag = "products", responses((status = 204, description = "Retired."), crate::api::openapi::Problems))]
#[delete("/import-mappings/{id}")]
pub async fn retire_import_mapping(
    db: Db,
    qa: Authorized<DefinesProducts>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    db.run(move |c| mappings::retire(c, &qa.actor, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

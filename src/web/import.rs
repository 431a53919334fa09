//! Importing results from an instrument's export, at the bench: upload the
//! file, say which column holds which test (or load the product's saved
//! mapping), see the preview of every row with its outcome or its refusal
//! in words, then confirm once. The confirm step sends the very bytes that
//! were previewed (base64 in the form) and their SHA-256; the import then
//! runs through the same use case as the API, all or nothing.

use super::layout::{Refusal, csrf, html_page, outcome, page, refusal};
use super::session::{WebError, WebUser};
use crate::domain::roles::Action;
use crate::error::Code;
use crate::error::{AppError, FieldError, Problem};
use crate::http::AppState;
use crate::services::batches as batch_svc;
use crate::services::import_mappings::{self as mappings, ImportMappingView};
use crate::services::results::{self as result_svc, ImportInput, ImportOutcome, ImportPreview};
use crate::tr;
use actix_multipart::Multipart;
use actix_web::{HttpResponse, get, post, web};
use base64::Engine;
use futures_util::StreamExt;
use maud::{Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use uuid::Uuid;

const LABELS: &[(&str, &str)] = &[
    ("file", "label-export-file"),
    ("content", "label-export-file"),
    ("filename", "label-export-file"),
    ("mapping", "label-columns"),
    ("mapping_id", "label-saved-mapping"),
    ("performed_at", "label-performed-at"),
    ("instrument_id", "label-registered-instrument"),
    ("material_ids", "label-material-lots"),
];

/// The largest upload the page reads (the export itself is at most
/// `MAX_EXPORT_BYTES`; the rest is the form's other fields).
const MAX_FORM_BYTES: usize = 2 * crate::domain::import::MAX_EXPORT_BYTES;

/// What the import form holds, typed or carried from the preview.
#[derive(Debug, Clone, Default)]
struct ImportForm {
    csrf: String,
    form_key: String,
    step: String,
    filename: String,
    content: Vec<u8>,
    sha256: String,
    mapping: BTreeMap<String, String>,
    performed_at: String,
    instrument_id: String,
    material_ids: Vec<String>,
}

impl ImportForm {
    /// Reads the multipart form: the file, or the previewed bytes in base64.
    async fn read(mut payload: Multipart) -> Result<ImportForm, AppError> {
        let mut form = ImportForm::default();
        let mut total = 0usize;
        // A file chosen now wins over the bytes carried from a preview.
        let mut uploaded = false;
        while let Some(field) = payload.next().await {
            let mut field = field.map_err(|e| {
                AppError::refused(
                    Code::InvalidForm,
                    format!("the form could not be read: {e}"),
                )
            })?;
            let name = field.name().unwrap_or_default().to_owned();
            let filename = field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .map(str::to_owned);
            let mut bytes = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| {
                    AppError::refused(
                        Code::InvalidForm,
                        format!("the form could not be read: {e}"),
                    )
                })?;
                total += chunk.len();
                if total > MAX_FORM_BYTES {
                    return Err(AppError::invalid_field_with(
                        "file",
                        "fe-file-larger-than",
                        &[(
                            "kib",
                            (crate::domain::import::MAX_EXPORT_BYTES / 1024).to_string(),
                        )],
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            let text = || String::from_utf8_lossy(&bytes).into_owned();
            match name.as_str() {
                "file" => {
                    if let Some(f) = filename.filter(|f| !f.is_empty()) {
                        form.filename = f;
                        form.content = bytes;
                        uploaded = true;
                    }
                }
                "content_b64" if !bytes.is_empty() && !uploaded => {
                    form.content = base64::engine::general_purpose::STANDARD
                        .decode(&bytes)
                        .map_err(|_| {
                            AppError::invalid_field_said(
                                "file",
                                "fe-the-previewed-file-could-not-be-read-back",
                            )
                        })?;
                }
                "filename" if !uploaded => form.filename = text(),
                "csrf" => form.csrf = text(),
                "form_key" => form.form_key = text(),
                "step" => form.step = text(),
                "sha256" => form.sha256 = text(),
                "performed_at" => form.performed_at = text(),
                "instrument_id" => form.instrument_id = text(),
                "material_ids" => form.material_ids.push(text()),
                other => {
                    if let Some(code) = other.strip_prefix("map.") {
                        let header = text();
                        if !header.trim().is_empty() {
                            form.mapping
                                .insert(code.to_owned(), header.trim().to_owned());
                        }
                    }
                }
            }
        }
        Ok(form)
    }

    fn input(&self, user: &WebUser, dry_run: bool) -> Result<ImportInput, AppError> {
        let mut errors = Vec::new();
        if self.content.is_empty() {
            errors.push(FieldError::said(
                "file",
                "fe-choose-the-instrument-s-export-file",
                &[],
            ));
        }
        let performed_at = match user.from_form("performed_at", &self.performed_at) {
            Ok(at) => Some(at),
            Err(AppError::Problem(p)) if p.errors.is_empty() => {
                errors.push(FieldError::new("performed_at", p.detail));
                None
            }
            Err(AppError::Problem(p)) => {
                errors.extend(p.errors);
                None
            }
            Err(other) => return Err(other),
        };
        let uuid = |field: &str, s: &str| {
            Uuid::parse_str(s)
                .map_err(|_| FieldError::said(field, "fe-is-not-one-of-those-offered", &[]))
        };
        let instrument_id = match self.instrument_id.trim() {
            "" => None,
            s => uuid("instrument_id", s).map_err(|e| errors.push(e)).ok(),
        };
        let material_ids: Vec<Uuid> = self
            .material_ids
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| uuid("material_ids", s).map_err(|e| errors.push(e)).ok())
            .collect();
        let (Some(performed_at), true) = (performed_at, errors.is_empty()) else {
            return Err(AppError::validation(errors));
        };
        Ok(ImportInput {
            filename: self.filename.clone(),
            content: self.content.clone(),
            mapping: self.mapping.clone(),
            mapping_id: None,
            performed_at,
            instrument_id,
            material_ids,
            dry_run,
        })
    }
}

/// The page's address: a saved mapping to load into the column fields.
#[derive(Debug, Default, Deserialize)]
pub struct ImportQuery {
    mapping_id: Option<Uuid>,
}

/// The import page (technicians).
#[get("/batches/{id}/results/import")]
pub async fn import_form(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    query: web::Query<ImportQuery>,
) -> Result<HttpResponse, WebError> {
    user.require(Action::RecordResult)?;
    let batch_id = id.into_inner();
    let chosen = query.mapping_id;
    let mut form = ImportForm {
        performed_at: user.now_for_form(),
        ..ImportForm::default()
    };
    let saved = state
        .db(move |c| {
            let record = batch_svc::record(c, batch_id)?;
            mappings::list(c, record.product.id)
        })
        .await?;
    if let Some(m) = chosen.and_then(|id| saved.iter().find(|m| m.id == id)) {
        form.mapping = m.mapping.clone();
    }
    let markup = import_markup(&state, &user, batch_id, &form, None, None, chosen).await?;
    Ok(html_page(actix_web::http::StatusCode::OK, markup))
}

/// Previews (first step) or records (confirm step) an import.
#[post("/batches/{id}/results/import")]
pub async fn import_results(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    payload: Multipart,
) -> Result<HttpResponse, WebError> {
    user.require(Action::RecordResult)?;
    // One import per user at a time, from before the file is read.
    let _turn = state.imports.take(user.0.actor.id)?;
    let batch_id = id.into_inner();
    let form = match ImportForm::read(payload).await {
        Ok(f) => f,
        Err(e) => {
            let p = refusal(e)?;
            let blank = ImportForm {
                performed_at: user.now_for_form(),
                ..ImportForm::default()
            };
            let markup =
                import_markup(&state, &user, batch_id, &blank, None, Some(&p), None).await?;
            return Ok(html_page(p.status(), markup));
        }
    };
    user.check_csrf(&form.csrf)?;
    let confirm = form.step == "confirm";
    let attempt = async {
        if confirm {
            // The bytes confirmed are the bytes previewed.
            let sha = hex::encode(Sha256::digest(&form.content));
            if sha != form.sha256 {
                return Err(AppError::invalid_field_said(
                    "file",
                    "fe-the-file-is-not-the-one-previewed-preview-it-again",
                ));
            }
        }
        let input = form.input(&user, !confirm)?;
        let actor = user.0.actor.clone();
        // Read on a blocking thread, before a connection is taken.
        let export = web::block(move || result_svc::read_export(input))
            .await
            .map_err(|e| AppError::Internal(e.into()))??;
        if !confirm {
            return state
                .db(move |c| result_svc::import_results(c, &actor, batch_id, &export))
                .await
                .map(Answer::Preview);
        }
        // A double confirm records once and shows what the first recorded.
        let once = form.once(batch_id);
        state
            .db(move |c| {
                super::layout::once_for_form(c, actor.id, once.as_ref(), |c| {
                    match result_svc::import_results(c, &actor, batch_id, &export)? {
                        ImportOutcome::Recorded(imported) => Ok(imported),
                        ImportOutcome::Preview(_) => Err(AppError::Internal(anyhow::anyhow!(
                            "a confirmed import answered a preview"
                        ))),
                    }
                })
            })
            .await
            .and_then(|v| Ok(Answer::Recorded(serde_json::from_value(v)?)))
    }
    .await;
    match attempt {
        Ok(Answer::Preview(ImportOutcome::Preview(preview))) => {
            let markup =
                import_markup(&state, &user, batch_id, &form, Some(&preview), None, None).await?;
            Ok(html_page(actix_web::http::StatusCode::OK, markup))
        }
        Ok(Answer::Preview(ImportOutcome::Recorded(_))) => Err(WebError::Refused(
            AppError::Internal(anyhow::anyhow!("a preview recorded results")),
        )),
        Ok(Answer::Recorded(imported)) => {
            let markup = imported_markup(&state, &user, batch_id, &imported).await?;
            Ok(html_page(actix_web::http::StatusCode::CREATED, markup))
        }
        Err(e) => {
            let p = refusal(e)?;
            let markup =
                import_markup(&state, &user, batch_id, &form, None, Some(&p), None).await?;
            Ok(html_page(p.status(), markup))
        }
    }
}

/// The form, with the preview of the last upload when there is one.
async fn import_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    form: &ImportForm,
    preview: Option<&ImportPreview>,
    problem: Option<&Problem>,
    chosen_mapping: Option<Uuid>,
) -> Result<Markup, WebError> {
    let (record, saved, usable, lots) = state
        .db(move |c| {
            let record = batch_svc::record(c, batch_id)?;
            let saved: Vec<ImportMappingView> = mappings::list(c, record.product.id)?;
            let (usable, lots) = super::results::usable_now(c)?;
            Ok((record, saved, usable, lots))
        })
        .await?;
    let number = record.batch.batch_number.clone();
    let r = Refusal::new(problem, LABELS, user.lang()).naming(|field, loc| {
        field
            .strip_prefix("mapping.")
            .map(|code| tr!(loc, "import-column-of", code = code))
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(&form.content);
    Ok(page(
        &tr!(user.lang(), "import-title", batch = number.as_str()),
        Some(user),
        html! {
            p.muted { (tr!(user.lang(), "import-intro-1")) " " strong { (number) } " " (tr!(user.lang(), "import-intro-2")) " " code { (number) "_panel.fcs" } " " (tr!(user.lang(), "import-intro-3")) }
            (r.summary())
            @if let Some(p) = preview { (preview_markup(p, user)) }
            @if saved.is_empty() {
                p.muted { (tr!(user.lang(), "import-no-mapping")) " " a href={"/products/" (record.product.id) "/import-mappings"} { (tr!(user.lang(), "import-product-mappings")) } (tr!(user.lang(), "sentence-end")) }
            }
            @if !saved.is_empty() {
                form.inline.card method="get" action={"/batches/" (batch_id) "/results/import"} {
                    label { (tr!(user.lang(), "import-saved-mapping"))
                        select name="mapping_id" {
                            @for m in &saved { option value=(m.id) selected[Some(m.id) == chosen_mapping] { (m.name) } }
                        }
                    }
                    button.secondary type="submit" { (tr!(user.lang(), "import-fill")) }
                }
            }
            form.stack.card #import-form method="post" enctype="multipart/form-data" action={"/batches/" (batch_id) "/results/import"} {
                (csrf(user))
                (super::layout::form_key())
                @if let Some(p) = preview {
                    p { (tr!(user.lang(), "import-file")) " " strong { (form.filename) } ", " (tr!(user.lang(), "import-bytes", n = p.size)) ", SHA-256 " code.hash { (p.sha256) } (tr!(user.lang(), "sentence-end")) " " (tr!(user.lang(), "import-another")) }
                    input type="hidden" name="content_b64" value=(encoded);
                    input type="hidden" name="filename" value=(form.filename);
                    input type="hidden" name="sha256" value=(p.sha256);
                }
                label { (tr!(user.lang(), "import-export-file"))
                    input type="file" name="file" accept=".csv,.tsv,.txt,text/csv,text/plain" required[preview.is_none()];
                    (r.at("file")) (r.at("content")) (r.at("filename")) }
                fieldset { legend { (tr!(user.lang(), "import-columns")) }
                    @for t in &record.spec.tests {
                        label { (t.code) " – " (t.name)
                            input type="text" name={"map." (t.code)} value=(form.mapping.get(&t.code).cloned().unwrap_or_default());
                            (r.at(&format!("mapping.{}", t.code))) (r.at(&t.code)) }
                    }
                    (r.at("mapping")) (r.at("mapping_id"))
                }
                label { (tr!(user.lang(), "instrument-performed-at", zone = user.zone_name()))
                    input type="datetime-local" name="performed_at" step="1" required value=(form.performed_at);
                    (r.at("performed_at")) }
                label { (tr!(user.lang(), "import-instrument"))
                    select name="instrument_id" {
                        option value="" { (tr!(user.lang(), "none")) }
                        @for i in &usable {
                            option value=(i.id) selected[form.instrument_id == i.id.to_string()] { (i.code) " – " (i.name) " (" (i.kind) ")" }
                        }
                    }
                    (r.at("instrument_id")) }
                @if !lots.is_empty() {
                    fieldset { legend { (tr!(user.lang(), "record-lots")) }
                        @for m in &lots {
                            label { input type="checkbox" name="material_ids" value=(m.id) checked[form.material_ids.iter().any(|p| *p == m.id.to_string())]; " " (m.code) (tr!(user.lang(), "record-lot-word")) (m.lot_number) " – " (m.name) }
                        }
                        (r.at("material_ids"))
                    }
                }
                div.actions {
                    button type="submit" name="step" value="preview" class=[preview.map(|_| "secondary")] { (tr!(user.lang(), "import-preview-button")) }
                }
            }
            p { a href={"/batches/" (batch_id)} { (tr!(user.lang(), "back-to-batch")) } }
        },
    ))
}

/// The preview table: every row's value and outcome, or its refusal.
fn preview_markup(p: &ImportPreview, user: &WebUser) -> Markup {
    let refused = p.rows.iter().filter(|r| r.error.is_some()).count();
    html! {
        section.card id="preview" {
            h2 { (tr!(user.lang(), "import-preview", line = p.line, delimiter = p.delimiter.to_string())) }
            @if p.would_record {
                div.notice.ok role="status" { (tr!(user.lang(), "import-all-ok")) }
                // Submits the form below, with the very bytes previewed.
                p { button type="submit" form="import-form" name="step" value="confirm" id="confirm" {
                    (tr!(user.lang(), "import-record-these", n = p.rows.len()))
                } }
            } @else {
                div.notice.error role="alert" { (tr!(user.lang(), "import-refused-rows", refused = refused, n = p.rows.len())) }
            }
            table {
                thead { tr { th { (tr!(user.lang(), "col-test")) } th { (tr!(user.lang(), "import-col-column")) } th { (tr!(user.lang(), "col-value")) } th { (tr!(user.lang(), "col-outcome")) } } }
                tbody { @for row in &p.rows {
                    tr class=[row.error.as_ref().map(|_| "refused")] {
                        td { strong { (row.test_code) } }
                        td { (row.column) }
                        td { (row.value.clone().unwrap_or_else(|| (tr!(user.lang(), "import-empty")).to_owned())) }
                        td {
                            @if let Some(e) = &row.error { span.fail { (tr!(user.lang(), "import-refused")) } ": " (row.error_words.as_ref().map_or_else(|| e.clone(), |w| w.in_locale(user.lang()))) }
                            @else if let Some(o) = row.outcome {
                                (outcome(o, user.lang()))
                                @if o == crate::domain::spec::Outcome::Fail { (tr!(user.lang(), "import-oos-preview")) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

/// What was recorded, with the kept file.
/// A preview, or what a confirmed import recorded (as the first confirm
/// recorded it, on a double submit).
enum Answer {
    Preview(ImportOutcome),
    Recorded(Shown),
}

/// What the page shows of an import that recorded (the service's `Imported` as stored
/// with the form's key).
#[derive(Debug, Deserialize)]
struct Shown {
    source_file: ShownFile,
    results: Vec<ShownResult>,
}

#[derive(Debug, Deserialize)]
struct ShownFile {
    id: Uuid,
    filename: String,
    sha256: String,
}

#[derive(Debug, Deserialize)]
struct ShownResult {
    test_code: String,
    value: String,
    unit: Option<String>,
    outcome: crate::domain::spec::Outcome,
}

impl ImportForm {
    /// The confirm step's one-time key: the form's key over what decides
    /// the import (the bytes, their mapping, when, on what, with which lots).
    fn once(&self, batch_id: Uuid) -> Option<crate::services::idempotency::IdempotencyKey> {
        let decides = serde_json::json!({
            "sha256": hex::encode(Sha256::digest(&self.content)),
            "filename": self.filename,
            "mapping": self.mapping,
            "performed_at": self.performed_at,
            "instrument_id": self.instrument_id,
            "material_ids": self.material_ids,
        });
        super::layout::form_once(
            Some(&self.form_key),
            &format!("/batches/{batch_id}/results/import"),
            decides.to_string().as_bytes(),
        )
    }
}

async fn imported_markup(
    state: &AppState,
    user: &WebUser,
    batch_id: Uuid,
    imported: &Shown,
) -> Result<Markup, WebError> {
    let record = state.db(move |c| batch_svc::record(c, batch_id)).await?;
    let f = &imported.source_file;
    Ok(page(
        &tr!(
            user.lang(),
            "import-done-title",
            batch = record.batch.batch_number.as_str()
        ),
        Some(user),
        html! {
            div.notice.ok role="status" id="imported" {
                (tr!(user.lang(), "import-recorded-from", n = imported.results.len())) " " a href={"/source-files/" (f.id)} { (f.filename) } " (SHA-256 " code.hash { (f.sha256) } (tr!(user.lang(), "import-kept"))
            }
            table {
                thead { tr { th { (tr!(user.lang(), "col-test")) } th { (tr!(user.lang(), "col-value")) } th { (tr!(user.lang(), "col-outcome")) } } }
                tbody { @for v in &imported.results {
                    tr { td { strong { (v.test_code) } } td { (v.value) " " (v.unit.clone().unwrap_or_default()) } td { (outcome(v.outcome, user.lang()))
                        @if v.outcome == crate::domain::spec::Outcome::Fail { (tr!(user.lang(), "result-recorded-oos")) } } }
                } }
            }
            p { a.button href={"/batches/" (batch_id)} { (tr!(user.lang(), "back-to-batch")) } }
        },
    ))
}

/// A kept export, as uploaded (any signed-in user).
#[get("/source-files/{id}")]
pub async fn source_file(
    state: web::Data<AppState>,
    _user: WebUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, WebError> {
    let id = id.into_inner();
    let (file, bytes) = state.db(move |c| result_svc::source_file(c, id)).await?;
    Ok(crate::http::download::kept_file(
        &file.filename,
        &file.media_type,
        &file.sha256,
        bytes,
    ))
}

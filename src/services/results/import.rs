//! Results imported from an instrument's export (a FlowJo table, a cell
//! counter's CSV): the batch's row of the file, each mapped column one
//! result, each judged by [`super::record_on`], the very path of a typed
//! result. All or nothing: one refused value and nothing is recorded. The
//! file itself is kept byte for byte as an append-only `source_files` row
//! (a true copy, 21 CFR 11.10(b)), its SHA-256 in the batch's audit entry,
//! and every result it produced names it. A dry run does all of it in a
//! transaction that is rolled back, so its preview is what the import
//! would do, not an estimate.

use super::{NewResultInput, Notes, record_on};
use crate::db::schema::{import_mappings, source_files};
use crate::domain::audit_event::AuditEvent;
use crate::domain::import::{self as export, Table};
use crate::domain::result::check_accepts_results;
use crate::domain::roles::Action;
use crate::domain::spec::Outcome;
use crate::error::{AppError, FieldError, Problem};
use crate::error::{Code, Kind};
use crate::services::Actor;
use crate::services::audit::AuditRecord;
use crate::services::batch_record::LockedBatch;
use crate::services::batch_record::views::ResultView;
use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// An import as asked for.
#[derive(Debug, Clone)]
pub struct ImportInput {
    /// The export's file name, as the instrument wrote it.
    pub filename: String,
    /// The export's bytes, exactly as uploaded.
    pub content: Vec<u8>,
    /// Test code -> column header (empty when `mapping_id` names a saved one).
    pub mapping: BTreeMap<String, String>,
    /// A saved mapping of the batch's product.
    pub mapping_id: Option<Uuid>,
    /// When the measurements were made.
    pub performed_at: DateTime<Utc>,
    /// The instrument every value was measured on.
    pub instrument_id: Option<Uuid>,
    /// The lots every value used.
    pub material_ids: Vec<Uuid>,
    /// Preview only: record nothing.
    pub dry_run: bool,
}

/// What one mapped column of the batch's row would become, or why not.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportPreviewRow {
    /// The test it is a result of.
    pub test_code: String,
    /// The column it was read from.
    pub column: String,
    /// The value as read (a decimal comma made a point); none when the cell is empty.
    pub value: Option<String>,
    /// `pass` or `fail` against the specification (a failing value opens an
    /// OOS investigation, as a typed one does); none when refused.
    pub outcome: Option<Outcome>,
    /// Why it would be refused, in words.
    pub error: Option<String>,
    /// Those words in any language.
    #[serde(skip)]
    pub error_words: Option<crate::domain::Words>,
    /// The refusal's machine code (`validation_failed`, `analyst_not_qualified`, ...).
    pub error_code: Option<String>,
}

/// A kept export, as the API shows it (its bytes are `GET /source-files/{id}`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceFileView {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub filename: String,
    /// `text/csv` or `text/tab-separated-values`.
    pub media_type: String,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Bytes.
    pub size: i32,
    pub uploaded_by: Uuid,
    pub uploaded_at: DateTime<Utc>,
}

/// A dry run's answer: every mapped column of the batch's row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportPreview {
    pub rows: Vec<ImportPreviewRow>,
    /// Whether the import, sent as it is, would record every row.
    pub would_record: bool,
    /// The file's line the values were read from.
    pub line: u64,
    /// `comma`, `semicolon` or `tab`.
    pub delimiter: String,
    /// SHA-256 of the bytes, hex: the confirm step sends the same bytes.
    pub sha256: String,
    pub size: usize,
}

impl ImportPreview {
    /// The preview as CSV (the one CSV writer): one row per mapped column.
    pub fn csv(&self) -> Result<Vec<u8>, AppError> {
        let mut w =
            crate::report::csv::Csv::new(["test_code", "column", "value", "outcome", "error"])?;
        for r in &self.rows {
            w.row([
                r.test_code.as_str(),
                r.column.as_str(),
                r.value.as_deref().unwrap_or(""),
                r.outcome
                    .map(crate::domain::StoredName::as_str)
                    .unwrap_or(""),
                r.error.as_deref().unwrap_or(""),
            ])?;
        }
        Ok(w.finish()?)
    }
}

/// What an import recorded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Imported {
    pub source_file: SourceFileView,
    pub results: Vec<ResultView>,
}

/// A dry run's preview or what was recorded.
#[derive(Debug, Clone)]
pub enum ImportOutcome {
    /// Dry run: nothing was kept.
    Preview(ImportPreview),
    /// Every row recorded, with the file.
    Recorded(Imported),
}

/// Why the import's transaction ends without committing.
enum Halt {
    Preview(ImportPreview),
    Refused(AppError),
}

impl From<diesel::result::Error> for Halt {
    fn from(e: diesel::result::Error) -> Self {
        Halt::Refused(e.into())
    }
}

impl From<AppError> for Halt {
    fn from(e: AppError) -> Self {
        Halt::Refused(e)
    }
}

/// An export read and checked for form: the work done before any
/// connection is taken, so that parsing a large file holds none.
#[derive(Debug)]
pub struct ReadExport {
    input: ImportInput,
    upload: Upload,
}

impl ReadExport {
    /// Whether it is a dry run.
    pub fn dry_run(&self) -> bool {
        self.input.dry_run
    }
}

/// Reads `input`'s export (at most 5 MiB and 10 000 rows, linear in its
/// size) and checks the mapping's form: every field error at once.
pub fn read_export(input: ImportInput) -> Result<ReadExport, AppError> {
    let mut errors = Vec::new();
    let filename = crate::domain::text::line("filename", &input.filename, 255, &mut errors);
    let table = export::text_of(&input.content)
        .and_then(export::read_table)
        .map_err(|e| errors.push(e))
        .ok();
    match (input.mapping_id, input.mapping.is_empty()) {
        (Some(_), false) => errors.push(FieldError::said(
            "mapping",
            "fe-give-either-a-mapping-or-a-saved-mapping-id-not-both",
            &[],
        )),
        (None, _) => {
            if let Err(e) = export::check_mapping(&input.mapping) {
                errors.push(e);
            }
        }
        (Some(_), true) => {}
    }
    let (Some(table), true) = (table, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let sha256 = Sha256::digest(&input.content).to_vec();
    Ok(ReadExport {
        input,
        upload: Upload {
            filename,
            table,
            sha256,
        },
    })
}

/// Imports (or, `dry_run`, previews) the batch's row of a read export, in
/// one transaction on the one connection given. One import per user at a
/// time, across every server on the database: a second one while the first
/// runs is 429 `import_in_progress`.
pub fn import_results(
    conn: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
    export: &ReadExport,
) -> Result<ImportOutcome, AppError> {
    actor.authorize(Action::RecordResult)?;
    let (input, upload) = (&export.input, &export.upload);
    let mut attempt: u32 = 0;
    loop {
        match conn.transaction(|c| import_in(c, actor, batch_id, input, upload)) {
            Ok(imported) => return Ok(ImportOutcome::Recorded(imported)),
            Err(Halt::Preview(p)) => return Ok(ImportOutcome::Preview(p)),
            Err(Halt::Refused(e)) if e.is_retryable() && attempt < 5 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(u64::from(attempt) * 5));
            }
            Err(Halt::Refused(e)) => return Err(e),
        }
    }
}

/// The checked upload.
#[derive(Debug)]
struct Upload {
    filename: String,
    table: Table,
    sha256: Vec<u8>,
}

/// The advisory lock class of "an import of this user is running".
const IMPORT_LOCK_CLASS: i32 = 7_208_433;

/// Takes the user's import turn for this transaction, or 429.
fn take_turn(c: &mut PgConnection, user: Uuid) -> Result<(), AppError> {
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    let t: Taken =
        diesel::sql_query("SELECT pg_try_advisory_xact_lock($1, hashtext($2::text)) AS taken")
            .bind::<diesel::sql_types::Integer, _>(IMPORT_LOCK_CLASS)
            .bind::<diesel::sql_types::Uuid, _>(user)
            .get_result(c)?;
    if t.taken {
        Ok(())
    } else {
        Err(AppError::import_in_progress())
    }
}

fn import_in(
    c: &mut PgConnection,
    actor: &Actor,
    batch_id: Uuid,
    input: &ImportInput,
    upload: &Upload,
) -> Result<Imported, Halt> {
    take_turn(c, actor.id)?;
    let mut lb = LockedBatch::lock_using(c, batch_id, input.instrument_id, &input.material_ids)?;
    // An import never corrects a decided record: its rows name no result
    // they replace.
    check_accepts_results(lb.record.batch.status, false).map_err(AppError::from)?;
    let mapping = match input.mapping_id {
        Some(id) => saved_mapping(c, id, lb.record.batch.product_id)?,
        None => input.mapping.clone(),
    };
    let table = &upload.table;
    let row = table
        .batch_row(&lb.record.batch.batch_number)
        .map_err(|e| AppError::validation(vec![e]))?;
    let mut columns = Vec::new();
    let mut missing = Vec::new();
    for (code, header) in &mapping {
        match table.column(header) {
            Some(i) => columns.push((i, code.trim().to_owned())),
            None => missing.push(FieldError::said(
                format!("mapping.{code}"),
                "fe-column-not-in-file",
                &[
                    ("column", header.trim().to_owned()),
                    (
                        "columns",
                        table
                            .headers
                            .iter()
                            .map(|h| format!("\"{h}\""))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                ],
            )),
        }
    }
    if !missing.is_empty() {
        return Err(AppError::validation(missing).into());
    }
    columns.sort();

    let now = Utc::now().trunc_subsecs(6);
    let file = SourceFileView {
        id: Uuid::now_v7(),
        batch_id: lb.id(),
        filename: upload.filename.clone(),
        media_type: table.delimiter.media_type().to_owned(),
        sha256: hex::encode(&upload.sha256),
        size: i32::try_from(input.content.len())
            .map_err(|_| AppError::invalid_field_said("content", "fe-the-file-is-too-large"))?,
        uploaded_by: actor.id,
        uploaded_at: now,
    };
    diesel::insert_into(source_files::table)
        .values((
            source_files::id.eq(file.id),
            source_files::batch_id.eq(file.batch_id),
            source_files::filename.eq(&file.filename),
            source_files::media_type.eq(&file.media_type),
            source_files::content.eq(&input.content),
            source_files::sha256.eq(&upload.sha256),
            source_files::size.eq(file.size),
            source_files::uploaded_by.eq(file.uploaded_by),
            source_files::uploaded_at.eq(file.uploaded_at),
        ))
        .execute(c)?;
    let chain = lb.chain();
    lb.append(
        c,
        AuditRecord::on_batch(
            &chain,
            lb.id(),
            Some(actor),
            AuditEvent::SourceFileStored,
            "source_file",
            file.id,
        )
        .after(json!({
            "id": file.id,
            "filename": file.filename,
            "media_type": file.media_type,
            "sha256": file.sha256,
            "size": file.size,
            "line": row.line,
            "mapping": mapping,
        })),
    )?;

    let mut rows = Vec::new();
    let mut results = Vec::new();
    let mut refusals: Vec<(String, Problem)> = Vec::new();
    for (index, code) in columns {
        let column = table.headers.get(index).cloned().unwrap_or_default();
        let value = table.value(row, index);
        let outcome = match &value {
            None => Err(AppError::invalid_field_with(
                "value",
                "fe-cell-empty",
                &[("column", column.clone())],
            )),
            Some(v) => {
                let typed = NewResultInput {
                    test_code: code.clone(),
                    value: serde_json::to_string(v).map_err(|e| AppError::Internal(e.into()))?,
                    unit: None,
                    performed_at: input.performed_at,
                    instrument: None,
                    instrument_id: input.instrument_id,
                    material_ids: input.material_ids.clone(),
                    comment: None,
                    replaces_result_id: None,
                    reason: None,
                };
                record_on(c, actor, &mut lb, &typed, &Notes::of(&typed), Some(file.id))
            }
        };
        match outcome {
            Ok(view) => {
                rows.push(ImportPreviewRow {
                    test_code: code,
                    column,
                    value: Some(view.result.value.clone()),
                    outcome: Some(view.result.outcome),
                    error: None,
                    error_words: None,
                    error_code: None,
                });
                results.push(view);
            }
            Err(e) => {
                let p = e.to_problem();
                if p.status().is_server_error() {
                    return Err(e.into());
                }
                rows.push(ImportPreviewRow {
                    test_code: code.clone(),
                    column,
                    value,
                    outcome: None,
                    error: Some(in_words(&p)),
                    error_words: p.words(),
                    error_code: Some(p.code.as_str().to_owned()),
                });
                refusals.push((code, p));
            }
        }
    }
    if input.dry_run {
        return Err(Halt::Preview(ImportPreview {
            would_record: refusals.is_empty(),
            rows,
            line: row.line,
            delimiter: table.delimiter.name().to_owned(),
            sha256: file.sha256,
            size: input.content.len(),
        }));
    }
    if !refusals.is_empty() {
        return Err(refused(&refusals).into());
    }
    Ok(Imported {
        source_file: file,
        results,
    })
}

/// A refusal in words: its field errors, else its detail.
fn in_words(p: &Problem) -> String {
    if p.errors.is_empty() {
        p.detail.clone()
    } else {
        p.errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The import's refusal: `422 validation_failed` when every refused row
/// was a validation failure, else the first other rule's status and code;
/// `errors` names each refused test code either way.
fn refused(refusals: &[(String, Problem)]) -> AppError {
    let errors: Vec<FieldError> = refusals
        .iter()
        .map(|(code, p)| FieldError {
            field: code.clone(),
            message: in_words(p),
            words: p.words(),
        })
        .collect();
    // A rule's refusal (not allowed, not now) is answered as that rule's;
    // otherwise as an invalid request.
    let code = refusals
        .iter()
        .map(|(_, p)| p.code)
        .find(|c| c.kind() != Kind::Invalid)
        .unwrap_or(Code::ValidationFailed);
    AppError::Problem(Box::new(Problem {
        code,
        detail: format!(
            "nothing was recorded: {}",
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        errors,
        blockers: None,
        retry_after: None,
    }))
}

/// A current saved mapping of the batch's product.
fn saved_mapping(
    c: &mut PgConnection,
    id: Uuid,
    product_id: Uuid,
) -> Result<BTreeMap<String, String>, AppError> {
    let mapping: Option<serde_json::Value> = import_mappings::table
        .filter(import_mappings::id.eq(id))
        .filter(import_mappings::product_id.eq(product_id))
        .filter(import_mappings::retired_at.is_null())
        .select(import_mappings::mapping)
        .first(c)
        .optional()?;
    let Some(mapping) = mapping else {
        return Err(AppError::invalid_field_with(
            "mapping_id",
            "fe-not-a-saved-mapping",
            &[("id", id.to_string())],
        ));
    };
    serde_json::from_value(mapping)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored mapping {id}: {e}")))
}

/// A kept export and its bytes (any signed-in user may read it).
pub fn source_file(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<(SourceFileView, Vec<u8>), AppError> {
    type Row = (
        Uuid,
        Uuid,
        String,
        String,
        Vec<u8>,
        Vec<u8>,
        i32,
        Uuid,
        DateTime<Utc>,
    );
    let row: Option<Row> = source_files::table
        .find(id)
        .select((
            source_files::id,
            source_files::batch_id,
            source_files::filename,
            source_files::media_type,
            source_files::content,
            source_files::sha256,
            source_files::size,
            source_files::uploaded_by,
            source_files::uploaded_at,
        ))
        .first(conn)
        .optional()?;
    let Some((id, batch_id, filename, media_type, content, sha256, size, uploaded_by, uploaded_at)) =
        row
    else {
        return Err(AppError::refused(
            Code::SourceFileNotFound,
            format!("no source file {id}"),
        ));
    };
    Ok((
        SourceFileView {
            id,
            batch_id,
            filename,
            media_type,
            sha256: hex::encode(sha256),
            size,
            uploaded_by,
            uploaded_at,
        },
        content,
    ))
}

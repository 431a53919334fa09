//! The data of a batch's Certificate of Analysis: what the record says now,
//! for a batch that is released or conditionally released.

use super::Actor;
use super::batch_record::{self, views::BatchDetail};
use super::signatures::SignatureView;
use crate::domain::StoredName;
use crate::domain::batch::BatchStatus;
use crate::domain::deviation::DeviationKind;
use crate::domain::din::Din;
use crate::domain::hashing::{canonical_json, sha256_hex};
use crate::domain::result::ResultStatus;
use crate::domain::signature::Meaning;
use crate::domain::spec::describe_limit;
use crate::error::AppError;
use crate::error::Code;
use crate::report::coa::{
    CoaCorrection, CoaData, CoaDeviation, CoaEarlier, CoaLang, CoaSignature, CoaTest,
};
use crate::report::label::LabelData;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use uuid::Uuid;

/// A release signature's meaning on the certificate: the code, the
/// statement exactly as the signer read it, and, where the certificate is
/// (also) in another language, the statement in that language too.
fn signed_meaning(s: &SignatureView, lang: CoaLang) -> String {
    let mut words = format!("{}: \"{}\"", s.meaning.as_str(), s.statement);
    for other in lang.locales().iter().filter(|l| **l != s.statement_locale) {
        words.push(' ');
        words.push_str(&other.text_with(
            "coa-statement-translated",
            &[("statement", s.meaning.statement(*other).into())],
        ));
    }
    words
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// SHA-256 of the RFC 8785 canonical JSON of the batch record, exactly as
/// `GET /api/v1/batches/{id}` returns it: anyone can recompute it.
pub fn record_sha256(detail: &BatchDetail) -> Result<String, AppError> {
    let json = serde_json::to_value(detail)?;
    Ok(sha256_hex(&[&canonical_json(&json)?]))
}

/// Gathers the certificate of a released or conditionally released batch.
pub fn coa_data(
    conn: &mut PgConnection,
    batch_id: Uuid,
    viewer: &Actor,
    lang: CoaLang,
) -> Result<CoaData, AppError> {
    let (record, head) = batch_record::read_with_head(conn, batch_id)?;
    let status = record.batch.status;
    if !status.is_released() {
        return Err(AppError::refused(
            Code::NotReleased,
            format!(
                "the batch is {}: a certificate exists only for a released or conditionally released batch",
                status.as_str()
            ),
        ));
    }
    let detail = BatchDetail::from(&record);
    let current = record.current_results();
    let rows = record
        .spec
        .tests
        .iter()
        .map(|t| {
            let view = current
                .iter()
                .find(|c| c.test_code == t.code)
                .and_then(|c| detail.results.iter().find(|r| r.result.id == c.id));
            let reviewed_by = view
                .and_then(|v| v.signatures.iter().find(|s| s.meaning == Meaning::Reviewed))
                .map(|s| format!("{} {}", s.signer.full_name, utc(s.signed_at)))
                .unwrap_or_else(|| lang.words("coa-not-reviewed"));
            CoaTest {
                code: t.code.clone(),
                name: t.name.clone(),
                method: t.method.clone(),
                limit: describe_limit(t),
                result: view.map_or_else(|| lang.words("coa-pending"), |v| v.result.value.clone()),
                unit: t.unit.clone().unwrap_or_default(),
                outcome: view.map_or_else(
                    || lang.words("coa-pending-outcome"),
                    |v| lang.code_words("outcome", v.result.outcome.as_str()),
                ),
                performed_by: view
                    .map(|v| {
                        format!(
                            "{} {}",
                            v.result.performed_by.full_name,
                            utc(v.result.performed_at)
                        )
                    })
                    .unwrap_or_default(),
                reviewed_by: if view.is_some() {
                    reviewed_by
                } else {
                    String::new()
                },
            }
        })
        .collect();
    let signatures = detail
        .signatures
        .iter()
        .filter(|s| {
            matches!(
                s.meaning,
                Meaning::Released | Meaning::ConditionallyReleased
            )
        })
        .map(|s| CoaSignature {
            name: format!("{} ({})", s.signer.full_name, s.signer.username),
            signed_at: utc(s.signed_at),
            meaning: signed_meaning(s, lang),
            reason: s.reason.clone().unwrap_or_default(),
        })
        .collect();
    let earlier = detail
        .results
        .iter()
        .filter(|r| !current.iter().any(|c| c.id == r.result.id))
        .filter(|r| r.status != ResultStatus::Recorded && r.status != ResultStatus::Reviewed)
        .map(|r| {
            let replaced_by = record.replacement_of(r.result.id);
            let deviation = record.deviation_about(r.result.id);
            let mut note = Vec::new();
            if let Some(d) = deviation {
                note.push(format!(
                    "{}{}",
                    lang.words_with("coa-investigated-in", &[("title", d.title.as_str().into())]),
                    d.conclusion
                        .map(|c| lang.words_with(
                            "coa-concluded",
                            &[("conclusion", lang.code_words("status", c.as_str()).into())]
                        ))
                        .unwrap_or_default()
                ));
            }
            if let Some(n) = replaced_by {
                note.push(format!(
                    "{}{}",
                    lang.words_with(
                        "coa-replaced-by",
                        &[
                            ("test", n.test_code.as_str().into()),
                            ("value", n.value.as_str().into())
                        ]
                    ),
                    n.reason
                        .as_deref()
                        .map(|why| format!(" ({why})"))
                        .unwrap_or_default()
                ));
            }
            CoaEarlier {
                result: format!(
                    "{} {}{} ({})",
                    r.result.test_code,
                    r.result.value,
                    r.result
                        .unit
                        .as_deref()
                        .map(|u| format!(" {u}"))
                        .unwrap_or_default(),
                    lang.code_words("outcome", r.result.outcome.as_str())
                ),
                status: lang.code_words("status", r.status.as_str()),
                note: note.join("; "),
            }
        })
        .collect();
    let deviations = record
        .deviations
        .iter()
        .map(|d| CoaDeviation {
            title: format!(
                "{} ({}, {})",
                d.title,
                d.kind.as_str().replace('_', " "),
                d.severity.as_str()
            ),
            outcome: match (d.conclusion, &d.root_cause) {
                (Some(c), Some(rc)) => lang.words_with(
                    "coa-closed-root-cause",
                    &[
                        ("conclusion", lang.code_words("status", c.as_str()).into()),
                        ("root_cause", rc.as_str().into()),
                    ],
                ),
                (Some(c), None) => lang.words_with(
                    "coa-closed",
                    &[("conclusion", lang.code_words("status", c.as_str()).into())],
                ),
                _ => lang.words("coa-open"),
            },
        })
        .collect();
    let corrections = record
        .deviations
        .iter()
        .filter(|d| d.kind == DeviationKind::PostReleaseCorrection)
        .map(|d| {
            let corrected = d.subject_id.and_then(|id| record.result(id));
            let replacement = d.subject_id.and_then(|id| {
                record
                    .results
                    .iter()
                    .find(|r| r.replaces_result_id == Some(id))
            });
            let outcome = match (d.conclusion, &d.root_cause) {
                (Some(c), Some(rc)) => lang.words_with(
                    "coa-closed-root-cause",
                    &[
                        ("conclusion", lang.code_words("status", c.as_str()).into()),
                        ("root_cause", rc.as_str().into()),
                    ],
                ),
                _ => lang.words("coa-open"),
            };
            CoaCorrection {
                line: lang.words_with(
                    "coa-correction",
                    &[
                        ("title", d.title.as_str().into()),
                        (
                            "test",
                            corrected.map_or("", |r| r.test_code.as_str()).into(),
                        ),
                        ("from", corrected.map_or("", |r| r.value.as_str()).into()),
                        (
                            "to",
                            replacement
                                .map_or_else(|| lang.words("coa-not-replaced"), |r| r.value.clone())
                                .into(),
                        ),
                        ("reason", d.description.as_str().into()),
                        ("outcome", outcome.into()),
                    ],
                ),
            }
        })
        .collect();
    let parents: Vec<&str> = record
        .parents
        .iter()
        .map(|p| p.batch_number.as_str())
        .collect();
    let batch = &record.batch;
    let product = &record.product;
    Ok(CoaData {
        lang,
        product: format!("{} ({})", product.name, product.code),
        product_type: product.product_type.clone(),
        batch_number: batch.batch_number.clone(),
        donor_din: batch
            .donor_din
            .clone()
            .unwrap_or_else(|| lang.words("none")),
        intended_recipient: batch
            .intended_recipient
            .clone()
            .unwrap_or_else(|| lang.words("none")),
        manufactured_at: utc(batch.manufactured_at),
        expires_at: utc(batch.expires_at),
        specification: lang.words_with(
            "coa-specification-value",
            &[
                ("version", record.spec.version.to_string().into()),
                ("id", batch.spec_id.to_string().into()),
            ],
        ),
        status: lang.code_words("status", status.as_str()),
        conditional: status == BatchStatus::ConditionallyReleased,
        parents: if parents.is_empty() {
            lang.words("none")
        } else {
            parents.join(", ")
        },
        tests: rows,
        earlier,
        deviations,
        corrections,
        signatures,
        record_sha256: record_sha256(&detail)?,
        chain_head: head.map_or_else(String::new, |(seq, hash)| format!("entry {seq}, {hash}")),
        generated: format!(
            "{} by {} ({})",
            utc(Utc::now()),
            viewer.full_name,
            viewer.username
        ),
    })
}

/// The data of a batch's bag label in `lang` (any batch: a label is printed
/// at filling, before release).
pub fn label_data(
    conn: &mut PgConnection,
    batch_id: Uuid,
    lang: CoaLang,
) -> Result<LabelData, AppError> {
    let record = batch_record::read(conn, batch_id)?;
    let batch = &record.batch;
    let product = &record.product;
    let din = batch
        .donor_din
        .as_deref()
        .map(Din::parse)
        .transpose()
        .map_err(|m| {
            AppError::Internal(anyhow::anyhow!(
                "stored donor DIN of batch {batch_id} is invalid: {}",
                m.english()
            ))
        })?;
    let (lo, hi) = (&product.storage.min, &product.storage.max);
    let (lo, hi) = (
        lo.as_ref().map(|d| d.text().to_owned()),
        hi.as_ref().map(|d| d.text().to_owned()),
    );
    let storage = match (lo, hi) {
        (Some(lo), Some(hi)) => {
            lang.words_with("bag-store-between", &[("lo", lo.into()), ("hi", hi.into())])
        }
        (Some(lo), None) => lang.words_with("bag-store-above", &[("lo", lo.into())]),
        (None, Some(hi)) => lang.words_with("bag-store-below", &[("hi", hi.into())]),
        (None, None) => lang.words("bag-store-as-instructed"),
    };
    let expires = batch.expires_at.format("%Y-%m-%d %H:%M UTC").to_string();
    Ok(LabelData {
        product: format!("{} – {}", product.code, product.name),
        batch: lang.words_with(
            "bag-batch",
            &[("number", batch.batch_number.as_str().into())],
        ),
        expires: lang.words_with("bag-expires", &[("date", expires.into())]),
        storage,
        recipient: batch
            .intended_recipient
            .as_deref()
            .map(|r| lang.words_with("bag-for-recipient", &[("recipient", r.into())]))
            .unwrap_or_default(),
        no_din: lang.words("bag-no-din"),
        din_barcode: din.as_ref().map(Din::barcode_data).unwrap_or_default(),
        din_text: din.as_ref().map(Din::eye_readable).unwrap_or_default(),
        din_check: din
            .as_ref()
            .map(|d| d.check().to_string())
            .unwrap_or_default(),
    })
}

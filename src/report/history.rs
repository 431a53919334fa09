//! An audit entry as an inspector reads it: one sentence (what happened to
//! which test, with which value, before -> after, why), and its changes as
//! flat `field: before -> after` text for the CSV. Nothing here touches the
//! database: the caller passes what it knows of the batch's results.

use crate::domain::StoredName;
use crate::domain::audit_event::{
    AuditEvent, CustodyRecorded, Recorded, Refused, StatusChange, payload,
};
use crate::domain::record::BatchRecord;
use crate::i18n::Locale;
use crate::services::audit::AuditEntryView;
use crate::tr;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// What the history knows of each result: `VIAB 91.5 %`.
pub type ResultNames = HashMap<Uuid, String>;

/// The names of a batch's results.
pub fn result_names(record: &BatchRecord) -> ResultNames {
    record
        .results
        .iter()
        .map(|r| {
            let unit = r
                .unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            (r.id, format!("{} {}{unit}", r.test_code, r.value))
        })
        .collect()
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_owned()),
        other => Some(other.to_string()),
    }
}

fn field(entry: Option<&Value>, key: &str) -> Option<String> {
    text(entry.and_then(|v| v.get(key)))
}

/// A stored timestamp as `2026-11-20 14:05 UTC`.
fn when(entry: Option<&Value>, key: &str) -> String {
    let raw = field(entry, key).unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(&raw)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or(raw)
}

fn words(s: &str) -> String {
    s.replace('_', " ")
}

/// The result an entry concerns, in words.
fn result_words(e: &AuditEntryView, names: &ResultNames, loc: Locale) -> String {
    let after = e.after.as_ref();
    if let (Some(code), Some(value)) = (field(after, "test_code"), field(after, "value")) {
        let unit = field(after, "unit")
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        return format!("{code} {value}{unit}");
    }
    e.entity_id
        .and_then(|id| names.get(&id).cloned())
        .unwrap_or_else(|| tr!(loc, "hist-a-result"))
}

/// A refused action's words, as its entry keeps them.
fn refused(after: Option<&Value>) -> String {
    payload::<Refused>(after)
        .and_then(|r| r.detail)
        .unwrap_or_default()
}

/// The entry as one sentence, in `loc`.
pub fn sentence(e: &AuditEntryView, names: &ResultNames, loc: Locale) -> String {
    let before = e.before.as_ref();
    let after = e.after.as_ref();
    let why = e
        .reason
        .as_deref()
        .map(|r| {
            format!(
                " {}",
                tr!(loc, "hist-reason", reason = r.trim_end_matches('.'))
            )
        })
        .unwrap_or_default();
    let f = |entry: Option<&Value>, key: &str| field(entry, key).unwrap_or_default();
    use AuditEvent as A;
    let action = match AuditEvent::read(&e.action) {
        Recorded::Known(a) => a,
        // An action this build does not know: its name, in words.
        Recorded::Other(name) => return format!("{}.{why}", words(&name.replace('.', " "))),
    };
    let s = match action {
        A::BatchCreated => tr!(
            loc,
            "hist-batch-created",
            batch = f(after, "batch_number"),
            expires = when(after, "expires_at")
        ),
        A::ResultRecorded => {
            let outcome = loc.code_words("outcome", &f(after, "outcome"));
            let instrument = field(after, "instrument")
                .map(|i| tr!(loc, "hist-on-instrument", instrument = i))
                .unwrap_or_default();
            let replaces = if field(after, "replaces_result_id").is_some() {
                tr!(loc, "hist-replaces")
            } else {
                String::new()
            };
            tr!(
                loc,
                "hist-result-recorded",
                result = result_words(e, names, loc),
                outcome = outcome,
                performed = when(after, "performed_at"),
                instrument = instrument,
                replaces = replaces
            )
        }
        A::ResultSuperseded => tr!(
            loc,
            "hist-result-superseded",
            result = result_words(e, names, loc)
        ),
        A::ResultReviewed => tr!(
            loc,
            "hist-result-reviewed",
            result = result_words(e, names, loc)
        ),
        A::ResultReviewRejected => tr!(
            loc,
            "hist-result-review-rejected",
            result = result_words(e, names, loc)
        ),
        A::ResultInvalidated => tr!(
            loc,
            "hist-result-invalidated",
            result = result_words(e, names, loc),
            conclusion = loc.code_words("status", &f(after, "conclusion"))
        ),
        A::DeviationOpened => tr!(
            loc,
            "hist-deviation-opened",
            title = f(after, "title"),
            severity = loc.code_words("severity", &f(after, "severity")),
            kind = loc.code_words("kind", &f(after, "kind"))
        ),
        A::DeviationClosed => tr!(
            loc,
            "hist-deviation-closed",
            title = field(after, "title")
                .or_else(|| field(before, "title"))
                .unwrap_or_default(),
            conclusion = loc.code_words("status", &f(after, "conclusion"))
        ),
        A::CustodyRecorded => match payload::<CustodyRecorded>(after) {
            Some(c) => tr!(
                loc,
                "hist-custody",
                event = loc.code_words("event", c.event.as_str()),
                location = c.location,
                party = c.party,
                at = when(after, "occurred_at"),
                temp = c
                    .temperature_c
                    .map(|t| format!(", {t} °C"))
                    .unwrap_or_default(),
                excursion = if c.excursion {
                    tr!(loc, "hist-excursion")
                } else {
                    String::new()
                }
            ),
            None => format!("{}.", words(&action.as_str().replace('.', " "))),
        },
        A::BatchAuditReviewed => tr!(
            loc,
            "hist-audit-reviewed",
            seq = f(after, "up_to_seq"),
            n = f(after, "exceptions")
        ),
        A::BatchReleaseSigned => tr!(loc, "hist-release-signed"),
        A::BatchReleaseRefused => tr!(loc, "hist-release-refused", detail = refused(after)),
        A::CustodyIdentityRefused => tr!(
            loc,
            "hist-custody-identity-refused",
            event = loc.code_words("event", &field(after, "event").unwrap_or_default()),
            detail = refused(after)
        ),
        A::AuthPasswordFailed => tr!(
            loc,
            "hist-password-failed",
            purpose = loc.code_words(
                "purpose",
                &field(after, "purpose").unwrap_or_else(|| "signature".into())
            ),
            n = f(after, "consecutive_failures")
        ),
        A::AuthSignatureRefused => tr!(loc, "hist-signature-refused"),
        a if a.is_disposition() => {
            let status = |v| {
                payload::<StatusChange>(v)
                    .and_then(|s| s.status)
                    .unwrap_or_default()
            };
            let (from, to) = (status(before), status(after));
            tr!(
                loc,
                "hist-batch-status",
                from = loc.code_words("status", &from),
                to = loc.code_words("status", &to)
            )
        }
        other => format!("{}.", words(&other.as_str().replace('.', " "))),
    };
    format!("{s}{why}")
}

/// What an inspector reads of an exception of the audit-trail review: the
/// entry's sentence, then what it changed (a replaced value before -> after,
/// how late an entry came, a status before -> after), then the reason.
pub fn exception_summary(
    e: &AuditEntryView,
    kind: crate::domain::audit_review::ExceptionKind,
    names: &ResultNames,
    loc: Locale,
) -> String {
    use crate::domain::audit_review::ExceptionKind;
    let after = e.after.as_ref();
    let mut s = sentence(e, names, loc);
    match kind {
        ExceptionKind::Replacement
            if AuditEvent::read(&e.action) == Recorded::Known(AuditEvent::ResultRecorded) =>
        {
            let old = field(after, "replaces_result_id")
                .and_then(|id| id.parse::<Uuid>().ok())
                .and_then(|id| names.get(&id).cloned())
                .unwrap_or_else(|| tr!(loc, "hist-an-earlier-result"));
            s.push(' ');
            s.push_str(&tr!(
                loc,
                "hist-value-change",
                old = old,
                new = result_words(e, names, loc)
            ));
            if let Some(why) = field(after, "reason") {
                s.push(' ');
                s.push_str(&tr!(loc, "hist-reason-given", reason = why));
            }
        }
        ExceptionKind::LateEntry => {
            let hours = match (
                field(after, "performed_at")
                    .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok()),
                field(after, "recorded_at")
                    .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok()),
            ) {
                (Some(p), Some(r)) => format!("{} h", (r - p).num_hours()),
                _ => tr!(loc, "hist-unknown-time"),
            };
            s.push(' ');
            s.push_str(&tr!(
                loc,
                "hist-late",
                at = when(after, "recorded_at"),
                hours = hours,
                limit = crate::domain::audit_review::LATE_AFTER_HOURS
            ));
        }
        _ => {
            let before_after: Vec<String> = changes(e)
                .lines()
                .filter(|l| l.contains(" -> "))
                .map(str::to_owned)
                .collect();
            if !before_after.is_empty() {
                s.push(' ');
                s.push_str(&tr!(loc, "hist-changed", changes = before_after.join("; ")));
            }
        }
    }
    s
}

/// Flattens a JSON value into `key` -> text, nested keys joined by dots.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(|i| text(Some(i))).collect();
            out.push((prefix.to_owned(), parts.join(", ")));
        }
        Value::Null => {}
        other => out.push((prefix.to_owned(), text(Some(other)).unwrap_or_default())),
    }
}

/// A stored value as flat `field: value` lines (no JSON).
pub fn flat(v: Option<&Value>) -> String {
    let mut out = Vec::new();
    if let Some(v) = v {
        flatten("", v, &mut out);
    }
    out.into_iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What changed, as `field: before -> after` (or `field: value` for a new
/// record), one per line: flat text, no JSON.
pub fn changes(e: &AuditEntryView) -> String {
    let mut before = Vec::new();
    let mut after = Vec::new();
    if let Some(b) = &e.before {
        flatten("", b, &mut before);
    }
    if let Some(a) = &e.after {
        flatten("", a, &mut after);
    }
    let mut lines = Vec::new();
    for (k, a) in &after {
        match before.iter().find(|(bk, _)| bk == k) {
            Some((_, b)) if b == a => {}
            Some((_, b)) => lines.push(format!("{k}: {b} -> {a}")),
            None if e.before.is_some() => lines.push(format!("{k}: (none) -> {a}")),
            None => lines.push(format!("{k}: {a}")),
        }
    }
    for (k, b) in &before {
        if !after.iter().any(|(ak, _)| ak == k) {
            lines.push(format!("{k}: {b} -> (none)"));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(action: &str, before: Option<Value>, after: Option<Value>) -> AuditEntryView {
        AuditEntryView {
            id: Uuid::nil(),
            chain: "batch:x".into(),
            seq: 1,
            at: chrono::Utc::now(),
            actor: None,
            action: action.into(),
            entity_type: "result".into(),
            entity_id: Some(Uuid::from_u128(7)),
            batch_id: None,
            reason: Some("re-gated".into()),
            before,
            after,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn a_recorded_result_reads_with_its_test_value_and_outcome() {
        let e = entry(
            "result.recorded",
            None,
            Some(
                json!({"test_code": "VIAB", "value": "91.5", "unit": "%", "outcome": "pass",
                        "performed_at": "2026-11-20T14:05:00Z", "instrument": "FACS-2"}),
            ),
        );
        assert_eq!(
            sentence(&e, &ResultNames::new(), Locale::En),
            "Result VIAB 91.5 % recorded (PASS), performed 2026-11-20 14:05 UTC on FACS-2. Reason: re-gated."
        );
    }

    #[test]
    fn a_review_names_the_result_from_what_the_batch_knows() {
        let e = entry(
            "result.reviewed",
            None,
            Some(json!({"meaning": "reviewed"})),
        );
        let names = ResultNames::from([(Uuid::from_u128(7), "CD73 97.0 %".to_owned())]);
        assert!(sentence(&e, &names, Locale::En).starts_with("Result CD73 97.0 % accepted"));
    }

    #[test]
    fn a_change_as_kept_shows_only_its_fields() {
        let (before, after) = crate::domain::audit::change(
            &json!({"id": "u1", "full_name": "A", "email": "e@x"}),
            &json!({"id": "u1", "full_name": "B", "email": "e@x"}),
        );
        let e = entry("user.updated", Some(before), Some(after));
        assert_eq!(changes(&e), "full_name: A -> B");
    }

    #[test]
    fn changes_are_flat_before_and_after() {
        let e = entry(
            "batch.released",
            Some(json!({"status": "quarantine"})),
            Some(json!({"status": "released", "signature": {"meaning": "released"}})),
        );
        assert_eq!(
            changes(&e),
            "signature.meaning: (none) -> released\nstatus: quarantine -> released"
        );
        assert_eq!(
            sentence(&e, &ResultNames::new(), Locale::En),
            "Batch status quarantine -> released (signed). Reason: re-gated."
        );
    }
}

//! The rules the server applies to each field, stated in the OpenAPI
//! document so that what the schema allows, the server accepts, and what it
//! forbids, the server refuses: free text as `domain::text` reads it (trimmed,
//! bounded, no control characters; a blank optional text counts as absent),
//! codes, enumerations, list bounds, cursors, the `Idempotency-Key` header,
//! and no NUL character in any string (PostgreSQL can't store one); an
//! operation without a body answers no 413 or 415.
//!
//! Rules JSON Schema can't state (one date after another, a time not in the
//! future, a DIN's check character, a test of the batch's specification) are
//! in the operations' descriptions and answered `422` naming the field.

use serde_json::{Map, Value, json};

use crate::domain::value::{CONTROL, text_pattern};

/// How the server reads one field.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// A required single line: at least one printable character, at most `n`.
    Line(u32),
    /// An optional single line (blank: absent).
    OptionalLine(u32),
    /// One of these values.
    OneOf(&'static [&'static str]),
    /// A list of at least one item.
    NotEmpty,
    /// An object with at least one entry.
    SomeEntries,
    /// At most `n` characters, none a control character (a search box).
    Plain(u32),
}

/// (schema or operationId, field, rule). A request body's fields are found
/// by its component schema's name, a query parameter's by its operation.
const RULES: &[(&str, &str, Rule)] = &[
    ("ImportBody", "filename", Rule::Line(255)),
    ("MappingBody", "name", Rule::Line(80)),
    ("MappingBody", "mapping", Rule::SomeEntries),
    ("CreateUser", "roles", Rule::NotEmpty),
    ("PatchUser", "roles", Rule::NotEmpty),
    // Query parameters, by operation.
    ("list_audit", "entity_type", Rule::OptionalLine(100)),
    ("list_audit", "actor", Rule::OptionalLine(100)),
    // Empty: any status (the search form sends it so).
    (
        "list_batches",
        "status",
        Rule::OneOf(&[
            "",
            "quarantine",
            "released",
            "conditionally_released",
            "rejected",
            "recalled",
        ]),
    ),
    ("list_batches", "q", Rule::OptionalLine(100)),
    ("batch_history", "format", Rule::OneOf(&["json", "csv"])),
    ("product_trends", "format", Rule::OneOf(&["json", "csv"])),
    ("list_audit", "format", Rule::OneOf(&["json", "csv"])),
    ("where_used", "format", Rule::OneOf(&["json", "csv"])),
    ("import_results", "format", Rule::OneOf(&["json", "csv"])),
    (
        "list_instruments",
        "status",
        Rule::OneOf(&[
            "in_service",
            "calibration_due",
            "out_of_service",
            "failed_calibration",
        ]),
    ),
    ("list_materials", "code", Rule::Plain(200)),
    ("list_materials", "q", Rule::Plain(200)),
    (
        "list_materials",
        "status",
        Rule::OneOf(&["quarantine", "released", "rejected"]),
    ),
];

/// The schema keywords of a rule (merged into the field's schema).
fn keywords(rule: Rule) -> Value {
    match rule {
        Rule::Line(n) => {
            json!({"minLength": 1, "pattern": text_pattern(CONTROL, n as usize, false)})
        }
        Rule::OptionalLine(n) => json!({"pattern": text_pattern(CONTROL, n as usize, true)}),
        Rule::OneOf(values) => json!({"enum": values}),
        Rule::NotEmpty => json!({"minItems": 1}),
        Rule::SomeEntries => json!({"minProperties": 1}),
        Rule::Plain(n) => json!({"maxLength": n, "pattern": format!("^[^{CONTROL}]*$")}),
    }
}

/// Merges `extra` into `schema`; a nullable field (`type: [t, "null"]`)
/// keeps `null` allowed (an enum gains it).
fn merge(schema: &mut Value, extra: Value) {
    let nullable = schema
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|t| t == "null"));
    let (Some(target), Value::Object(extra)) = (schema.as_object_mut(), extra) else {
        return;
    };
    for (k, mut v) in extra {
        if k == "enum" && nullable {
            if let Value::Array(values) = &mut v {
                values.push(Value::Null);
            }
        }
        target.insert(k, v);
    }
}

/// No string anywhere may hold a NUL; a string with no rule of its own
/// (a password, a nested field) says so. Map keys likewise.
fn forbid_nul(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let is_string = match map.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
                _ => false,
            };
            if is_string
                && !map.contains_key("pattern")
                && !map.contains_key("format")
                && !map.contains_key("enum")
            {
                map.insert("pattern".to_owned(), json!(r"^[^\u0000]*$"));
            }
            if map.contains_key("additionalProperties") && !map.contains_key("propertyNames") {
                map.insert(
                    "propertyNames".to_owned(),
                    json!({"pattern": r"^[^\u0000]*$"}),
                );
            }
            for v in map.values_mut() {
                forbid_nul(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_nul),
        _ => {}
    }
}

fn field<'a>(properties: Option<&'a mut Map<String, Value>>, name: &str) -> Option<&'a mut Value> {
    properties?.get_mut(name)
}

/// The component schemas `value` refers to (`#/components/schemas/X`).
fn refs(value: &Value, found: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                found.insert(name.to_owned());
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

/// The component schemas requests use (bodies, and what those refer to).
fn request_schemas(doc: &Value) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for item in paths.values().filter_map(Value::as_object) {
            for op in item.values() {
                if let Some(body) = op.get("requestBody") {
                    refs(body, &mut found);
                }
            }
        }
    }
    loop {
        let mut more = found.clone();
        for name in &found {
            if let Some(s) = doc.pointer(&format!("/components/schemas/{name}")) {
                refs(s, &mut more);
            }
        }
        if more.len() == found.len() {
            return found;
        }
        found = more;
    }
}

/// States every rule above in `doc` (an OpenAPI document as JSON).
pub fn apply(doc: &mut Value) {
    for (owner, name, rule) in RULES {
        let schema = doc
            .pointer_mut(&format!("/components/schemas/{owner}/properties"))
            .and_then(Value::as_object_mut);
        if let Some(s) = field(schema, name) {
            merge(s, keywords(*rule));
        }
    }
    // No NUL in what a request sends (responses are what they are).
    for name in request_schemas(doc) {
        if let Some(s) = doc.pointer_mut(&format!("/components/schemas/{name}")) {
            forbid_nul(s);
        }
    }
    let uuid = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$";
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in item.values_mut().filter_map(Value::as_object_mut) {
                let id = op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                match op.get_mut("requestBody") {
                    Some(body) => forbid_nul(body),
                    // A body is read only where one is declared: no 413 or
                    // 415 without one.
                    None => {
                        if let Some(r) = op.get_mut("responses").and_then(Value::as_object_mut) {
                            r.remove("413");
                            r.remove("415");
                        }
                    }
                }
                let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                    continue;
                };
                for p in params.iter_mut() {
                    let pname = p
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let Some(schema) = p.get_mut("schema") else {
                        continue;
                    };
                    match pname.as_str() {
                        "limit" => merge(schema, json!({"minimum": 1, "maximum": 500})),
                        "cursor" => merge(schema, json!({"pattern": uuid})),
                        // 1 to 255 visible ASCII characters.
                        "Idempotency-Key" => {
                            *schema = json!({"type": "string", "pattern": r"^[!-~]{1,255}$"});
                        }
                        _ => {
                            if let Some((_, _, rule)) =
                                RULES.iter().find(|(o, n, _)| *o == id && *n == pname)
                            {
                                merge(schema, keywords(*rule));
                            }
                        }
                    }
                    forbid_nul(schema);
                }
            }
        }
    }
}

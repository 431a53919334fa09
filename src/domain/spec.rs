//! Specifications and the evaluation of a result against its test's limit.
//!
//! Numeric results are rounded half-up to the test's `decimals` (when given)
//! and then compared with the limits, inclusive or exclusive, in exact decimal
//! arithmetic. Qualitative results must be one of `options` (when given) and
//! pass when they are one of `allowed` (trimmed, case-insensitive).

use super::FieldError;
use super::decimal::{Decimal, DecimalText, round_half_up};
use super::value::{Between, Line, NonEmpty, OptionalNote, ProductCode};
use bigdecimal::BigDecimal;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use strum::{EnumString, IntoStaticStr};
use utoipa::ToSchema;

/// Numeric or qualitative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, EnumString, IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum TestKind {
    /// A number compared with limits.
    Numeric,
    /// A word compared with the allowed words.
    Qualitative,
}

/// Where a specification version stands: a draft is approved (signed, by a
/// QA user who did not write it) into the one effective version of its
/// product; approving the next version supersedes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, EnumString, IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SpecStatus {
    /// Written, not yet approved: no batch can be bound to it.
    Draft,
    /// Approved: new batches are bound to it.
    Effective,
    /// Replaced by a newer approved version.
    Superseded,
}

/// Why a specification can't be approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalRefusal {
    /// Only a draft is approved (409 `spec_not_draft`).
    NotDraft(SpecStatus),
    /// The author can't approve their own specification (403 `self_approval`).
    SelfApproval,
}

/// Checks approving a specification in `status`, written by `author`, by
/// `approver` (the draft -> effective step; the earlier effective version
/// becomes superseded in the same act).
pub fn check_approval(
    status: SpecStatus,
    author: uuid::Uuid,
    approver: uuid::Uuid,
) -> Result<(), ApprovalRefusal> {
    if status != SpecStatus::Draft {
        return Err(ApprovalRefusal::NotDraft(status));
    }
    if author == approver {
        return Err(ApprovalRefusal::SelfApproval);
    }
    Ok(())
}

/// One limit of a numeric test.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// The limit as entered.
    pub value: Decimal,
    /// Whether a result equal to the limit passes.
    pub inclusive: bool,
}

/// A test of a specification.
#[derive(Debug, Clone, PartialEq)]
pub struct TestDef {
    /// Test code, unique in the specification (e.g. `VIAB`).
    pub code: String,
    /// Test name.
    pub name: String,
    /// Method (e.g. `Ph. Eur. 2.6.1`).
    pub method: String,
    /// Numeric or qualitative.
    pub kind: TestKind,
    /// Unit of numeric results.
    pub unit: Option<String>,
    /// Lower limit.
    pub min: Option<Limit>,
    /// Upper limit.
    pub max: Option<Limit>,
    /// Decimal places a result is rounded to before comparison.
    pub decimals: Option<u32>,
    /// The values a qualitative result may take.
    pub options: Option<Vec<String>>,
    /// The qualitative values that pass.
    pub allowed: Vec<String>,
    /// Whether release needs this result.
    pub required: bool,
    /// Whether a conditional release may go ahead without this result.
    pub pending_release_allowed: bool,
    /// Whether only an analyst qualified for this test code records it.
    pub qualification_required: bool,
    /// The kind of instrument it is measured on (then a result names one).
    pub instrument_kind: Option<String>,
}

/// `POST /products` (and the new-product page): a product QA defines.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    /// Product code: letters, digits and `. _ -`.
    pub code: ProductCode<40>,
    /// Name.
    pub name: Line<200>,
    /// What it is (`MSC injection`).
    pub product_type: Line<100>,
    /// Lowest storage temperature, °C.
    #[serde(default)]
    pub storage_min_c: Option<Decimal>,
    /// Highest storage temperature, °C.
    #[serde(default)]
    pub storage_max_c: Option<Decimal>,
    /// Qualified Persons who sign each release (default 1).
    #[serde(default)]
    pub release_signatures_required: Option<Between<1, 2>>,
    /// QA must sign a review of each batch's audit trail before release
    /// (default false).
    #[serde(default)]
    pub audit_review_required: Option<bool>,
}

/// A test of a specification as submitted (`POST
/// /products/{id}/specifications`, the product page's rows), before its
/// rules are read: [`validate_tests`] reads every test together and names
/// each broken rule of each test at once.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestDefInput {
    /// 1 to 32 letters, digits or `_ - .`, unique in the specification.
    pub code: String,
    /// Name.
    pub name: String,
    /// Method (a pharmacopoeia chapter, an SOP).
    pub method: String,
    /// `numeric` or `qualitative`.
    pub kind: String,
    /// Unit of a numeric result.
    #[serde(default)]
    pub unit: Option<String>,
    /// Lower limit (a numeric test needs a limit).
    #[serde(default)]
    pub min: Option<DecimalText>,
    /// Upper limit.
    #[serde(default)]
    pub max: Option<DecimalText>,
    /// The lower limit itself passes (default true).
    #[serde(default)]
    pub min_inclusive: Option<bool>,
    /// The upper limit itself passes (default true).
    #[serde(default)]
    pub max_inclusive: Option<bool>,
    /// Decimals a result is rounded to before it is compared (0 to 12).
    #[serde(default)]
    pub decimals: Option<i64>,
    /// The words a qualitative result may be.
    #[serde(default)]
    pub options: Option<Vec<String>>,
    /// The words that pass.
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
    /// A required test (default true).
    #[serde(default)]
    pub required: Option<bool>,
    /// A required test whose result may follow a conditional release.
    #[serde(default)]
    pub pending_release_allowed: Option<bool>,
    /// Only an analyst qualified for this test code may record it (default false).
    #[serde(default)]
    pub qualification_required: Option<bool>,
    /// The kind of instrument it is measured on (`flow_cytometer`); results
    /// then name an instrument of that kind, in service when performed.
    #[serde(default)]
    pub instrument_kind: Option<String>,
}

/// `POST /products/{id}/specifications` (and the product page): a draft
/// version of a product's specification.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSpecification {
    /// The version's name (`v2`).
    pub version: Line<40>,
    /// Its tests, at least one.
    pub tests: SpecTests,
}

/// A specification's tests, at least one.
pub type SpecTests = NonEmpty<TestDefInput>;

/// `POST /specifications/{id}/approve` (and the specification's page): QA,
/// not its author, approves a draft (signed).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveSpecification {
    /// The signer's password.
    pub password: String,
    /// Optional comment.
    #[serde(default)]
    pub reason: OptionalNote<2000>,
}

fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Validates a specification's tests: at least one, unique codes, limits
/// consistent with the kind, `min <= max`, a numeric test with a limit.
pub fn validate_tests(inputs: &[TestDefInput]) -> Result<Vec<TestDef>, Vec<FieldError>> {
    let mut errors = Vec::new();
    if inputs.is_empty() {
        errors.push(FieldError::said(
            "tests",
            "fe-a-specification-needs-at-least-one-test",
            &[],
        ));
    }
    let mut defs = Vec::with_capacity(inputs.len());
    let mut seen = std::collections::HashSet::new();
    for (i, t) in inputs.iter().enumerate() {
        let at = |f: &str| format!("tests[{i}].{f}");
        let code = t.code.trim().to_owned();
        if code.is_empty()
            || code.len() > 32
            || !code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            errors.push(FieldError::said(
                at("code"),
                "fe-must-be-1-to-32-letters-digits-or",
                &[],
            ));
        } else if !seen.insert(code.to_uppercase()) {
            errors.push(FieldError::said(
                at("code"),
                "fe-duplicate-test-code",
                &[("code", code.clone())],
            ));
        }
        let name = super::text::line(&at("name"), &t.name, 200, &mut errors);
        let method = super::text::line(&at("method"), &t.method, 200, &mut errors);
        let Ok(kind) = TestKind::try_from(t.kind.as_str()) else {
            errors.push(FieldError::said(
                at("kind"),
                "fe-must-be-numeric-or-qualitative",
                &[],
            ));
            continue;
        };
        let mut limit = |raw: &Option<DecimalText>, inclusive: Option<bool>, field: &str| {
            raw.as_ref().and_then(|r| match r.read() {
                Ok(value) => Some(Limit {
                    value,
                    inclusive: inclusive.unwrap_or(true),
                }),
                Err(m) => {
                    errors.push(FieldError::said(at(field), m, &[]));
                    None
                }
            })
        };
        let min = limit(&t.min, t.min_inclusive, "min");
        let max = limit(&t.max, t.max_inclusive, "max");
        let decimals = match t.decimals {
            None => None,
            Some(d) if (0..=12).contains(&d) => u32::try_from(d).ok(),
            Some(_) => {
                errors.push(FieldError::said(at("decimals"), "fe-must-be-0-to-12", &[]));
                None
            }
        };
        let unit = t
            .unit
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        let options = t
            .options
            .as_ref()
            .map(|o| o.iter().map(|s| s.trim().to_owned()).collect::<Vec<_>>());
        let allowed: Vec<String> = t
            .allowed
            .as_ref()
            .map(|a| a.iter().map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default();
        match kind {
            TestKind::Numeric => {
                if t.min.is_none() && t.max.is_none() {
                    errors.push(FieldError::said(
                        at("min"),
                        "fe-a-numeric-test-needs-a-min-or-a-max-limit",
                        &[],
                    ));
                }
                if let (Some(lo), Some(hi)) = (&min, &max) {
                    if lo.value.value() > hi.value.value() {
                        errors.push(FieldError::said(
                            at("min"),
                            "fe-min-is-greater-than-max",
                            &[],
                        ));
                    } else if lo.value.value() == hi.value.value()
                        && !(lo.inclusive && hi.inclusive)
                    {
                        errors.push(FieldError::said(
                            at("min"),
                            "fe-no-value-can-lie-within-these-limits",
                            &[],
                        ));
                    }
                }
                if t.options.is_some() || t.allowed.is_some() {
                    errors.push(FieldError::said(
                        at("allowed"),
                        "fe-options-and-allowed-are-for-qualitative-tests",
                        &[],
                    ));
                }
            }
            TestKind::Qualitative => {
                if t.min.is_some() || t.max.is_some() || t.decimals.is_some() {
                    errors.push(FieldError::said(
                        at("min"),
                        "fe-limits-and-decimals-are-for-numeric-tests",
                        &[],
                    ));
                }
                if allowed.is_empty() || allowed.iter().any(String::is_empty) {
                    errors.push(FieldError::said(
                        at("allowed"),
                        "fe-a-qualitative-test-needs-the-values-that-pass",
                        &[],
                    ));
                }
                if let Some(opts) = &options {
                    if opts.is_empty() || opts.iter().any(String::is_empty) {
                        errors.push(FieldError::said(
                            at("options"),
                            "fe-options-must-be-non-empty-words",
                            &[],
                        ));
                    }
                    let known: std::collections::HashSet<String> =
                        opts.iter().map(|o| norm(o)).collect();
                    if allowed.iter().any(|a| !known.contains(&norm(a))) {
                        errors.push(FieldError::said(
                            at("allowed"),
                            "fe-every-allowed-value-must-be-one-of-options",
                            &[],
                        ));
                    }
                }
            }
        }
        if t.pending_release_allowed == Some(true) && t.required == Some(false) {
            errors.push(FieldError::said(
                at("pending_release_allowed"),
                "fe-only-a-required-test-can-be-pending-at-release",
                &[],
            ));
        }
        let instrument_kind = t
            .instrument_kind
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned);
        if instrument_kind
            .as_deref()
            .is_some_and(|k| !super::instrument::is_kind(k))
        {
            errors.push(FieldError::said(
                at("instrument_kind"),
                super::instrument::KIND_RULE,
                &[],
            ));
        }
        defs.push(TestDef {
            code,
            name,
            method,
            kind,
            unit,
            min,
            max,
            decimals,
            options,
            allowed,
            required: t.required.unwrap_or(true),
            pending_release_allowed: t.pending_release_allowed.unwrap_or(false),
            qualification_required: t.qualification_required.unwrap_or(false),
            instrument_kind,
        });
    }
    if errors.is_empty() {
        Ok(defs)
    } else {
        Err(errors)
    }
}

/// Pass or fail.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    ToSchema,
    EnumString,
    IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    /// Within specification.
    Pass,
    /// Out of specification.
    Fail,
}

/// Why a value can't be evaluated against a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// A numeric test got something that is not a decimal.
    NotANumber(&'static str),
    /// A qualitative test got something that is not a string.
    NotText,
    /// A qualitative value outside `options`.
    NotAnOption(Vec<String>),
}

/// The message of why a result's value is not a decimal, from the reason
/// [`Decimal::from_json`] gives (`fe-decimal-*`).
fn not_a_number_words(why: &str) -> &'static str {
    match why {
        "fe-decimal-empty" => "field-decimal-empty",
        "fe-decimal-too-long" => "field-decimal-too-long",
        "fe-decimal-exponent" => "field-decimal-exponent",
        "fe-decimal-type" => "field-decimal-type",
        _ => "field-decimal-not",
    }
}

impl ValueError {
    /// The `value` field's error, in words any language can say.
    pub fn field_error(&self) -> FieldError {
        match self {
            ValueError::NotANumber(m) => FieldError::said("value", not_a_number_words(m), &[]),
            ValueError::NotText => FieldError::said("value", "field-not-text", &[]),
            ValueError::NotAnOption(opts) => FieldError::said(
                "value",
                "field-not-an-option",
                &[("options", opts.join(", "))],
            ),
        }
    }
}

/// A result's value, parsed for its test.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    /// The value as entered (trimmed).
    pub text: String,
    /// The exact numeric value, for numeric tests.
    pub numeric: Option<BigDecimal>,
    /// Pass or fail.
    pub outcome: Outcome,
}

fn within(value: &BigDecimal, min: Option<&Limit>, max: Option<&Limit>) -> bool {
    let above_min = min.is_none_or(|l| match value.cmp(l.value.value()) {
        Ordering::Greater => true,
        Ordering::Equal => l.inclusive,
        Ordering::Less => false,
    });
    let below_max = max.is_none_or(|l| match value.cmp(l.value.value()) {
        Ordering::Less => true,
        Ordering::Equal => l.inclusive,
        Ordering::Greater => false,
    });
    above_min && below_max
}

/// Evaluates the raw JSON text of a value against `def`.
pub fn evaluate(def: &TestDef, raw_json: &str) -> Result<Evaluated, ValueError> {
    match def.kind {
        TestKind::Numeric => {
            let d = Decimal::from_json(raw_json).map_err(ValueError::NotANumber)?;
            let compared = match def.decimals {
                Some(places) => round_half_up(d.value(), places),
                None => d.value().clone(),
            };
            let outcome = if within(&compared, def.min.as_ref(), def.max.as_ref()) {
                Outcome::Pass
            } else {
                Outcome::Fail
            };
            Ok(Evaluated {
                text: d.text().to_owned(),
                numeric: Some(d.value().clone()),
                outcome,
            })
        }
        TestKind::Qualitative => {
            let s: String =
                serde_json::from_str(raw_json.trim()).map_err(|_| ValueError::NotText)?;
            let value = s.trim().to_owned();
            if let Some(opts) = &def.options {
                if !opts.iter().any(|o| norm(o) == norm(&value)) {
                    return Err(ValueError::NotAnOption(opts.clone()));
                }
            }
            let outcome = if def.allowed.iter().any(|a| norm(a) == norm(&value)) {
                Outcome::Pass
            } else {
                Outcome::Fail
            };
            Ok(Evaluated {
                text: value,
                numeric: None,
                outcome,
            })
        }
    }
}

/// A limit as the lab reads it: `>= 95.0 %`, `< 0.5 EU/mL`, `no growth`.
pub fn describe_limit(def: &TestDef) -> String {
    match def.kind {
        TestKind::Numeric => {
            let unit = def
                .unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            match (&def.min, &def.max) {
                (Some(lo), Some(hi)) => format!(
                    "{} {} to {} {}{unit}",
                    if lo.inclusive { ">=" } else { ">" },
                    lo.value.text(),
                    if hi.inclusive { "<=" } else { "<" },
                    hi.value.text()
                ),
                (Some(lo), None) => {
                    format!(
                        "{} {}{unit}",
                        if lo.inclusive { ">=" } else { ">" },
                        lo.value.text()
                    )
                }
                (None, Some(hi)) => {
                    format!(
                        "{} {}{unit}",
                        if hi.inclusive { "<=" } else { "<" },
                        hi.value.text()
                    )
                }
                (None, None) => "no limit".to_owned(),
            }
        }
        TestKind::Qualitative => def.allowed.join(" or "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn numeric(
        min: Option<(&str, bool)>,
        max: Option<(&str, bool)>,
        decimals: Option<u32>,
    ) -> TestDef {
        let lim = |l: Option<(&str, bool)>| {
            l.map(|(v, inclusive)| Limit {
                value: Decimal::parse(v).unwrap(),
                inclusive,
            })
        };
        TestDef {
            code: "T".into(),
            name: "t".into(),
            method: "m".into(),
            kind: TestKind::Numeric,
            unit: Some("%".into()),
            min: lim(min),
            max: lim(max),
            decimals,
            options: None,
            allowed: vec![],
            required: true,
            pending_release_allowed: false,
            qualification_required: false,
            instrument_kind: None,
        }
    }

    fn outcome(def: &TestDef, v: &str) -> Outcome {
        evaluate(def, v).unwrap().outcome
    }

    #[test]
    fn inclusive_minimum_boundary() {
        // CD73 >= 95 %
        let def = numeric(Some(("95", true)), None, None);
        assert_eq!(outcome(&def, "95"), Outcome::Pass);
        assert_eq!(outcome(&def, "\"95.0\""), Outcome::Pass);
        assert_eq!(outcome(&def, "94.999999"), Outcome::Fail);
        assert_eq!(outcome(&def, "100"), Outcome::Pass);
    }

    #[test]
    fn exclusive_maximum_boundary() {
        // ENDO < 0.5 EU/mL
        let def = numeric(None, Some(("0.5", false)), None);
        assert_eq!(outcome(&def, "0.5"), Outcome::Fail);
        assert_eq!(outcome(&def, "0.50"), Outcome::Fail);
        assert_eq!(outcome(&def, "0.4999"), Outcome::Pass);
    }

    #[test]
    fn exclusive_minimum_boundary() {
        // iPSC VIAB > 90 %
        let def = numeric(Some(("90", false)), None, None);
        assert_eq!(outcome(&def, "90"), Outcome::Fail);
        assert_eq!(outcome(&def, "90.0001"), Outcome::Pass);
    }

    #[test]
    fn inclusive_maximum_boundary() {
        // CD45 <= 2 %
        let def = numeric(None, Some(("2", true)), None);
        assert_eq!(outcome(&def, "2.0"), Outcome::Pass);
        assert_eq!(outcome(&def, "2.0001"), Outcome::Fail);
    }

    #[test]
    fn rounding_happens_before_comparison() {
        // VIAB >= 80 % reported to one decimal: 79.95 rounds to 80.0 and passes,
        // 79.94 rounds to 79.9 and fails.
        let def = numeric(Some(("80", true)), None, Some(1));
        assert_eq!(outcome(&def, "79.95"), Outcome::Pass);
        assert_eq!(outcome(&def, "79.94"), Outcome::Fail);
        // ENDO < 0.5 with two decimals: 0.495 rounds to 0.50 and fails.
        let endo = numeric(None, Some(("0.5", false)), Some(2));
        assert_eq!(outcome(&endo, "0.495"), Outcome::Fail);
        assert_eq!(outcome(&endo, "0.494"), Outcome::Pass);
    }

    #[test]
    fn a_range_with_scientific_notation() {
        // DOSE 1.0e8 to 1.2e8 cells
        let def = numeric(Some(("1.0e8", true)), Some(("1.2e8", true)), None);
        assert_eq!(outcome(&def, "1.0e8"), Outcome::Pass);
        assert_eq!(outcome(&def, "\"120000000\""), Outcome::Pass);
        assert_eq!(outcome(&def, "1.21e8"), Outcome::Fail);
        assert_eq!(outcome(&def, "99999999"), Outcome::Fail);
        assert_eq!(evaluate(&def, "1.0e8").unwrap().text, "1.0e8");
    }

    #[test]
    fn wrong_kinds_are_refused() {
        let def = numeric(Some(("95", true)), None, None);
        assert!(matches!(
            evaluate(&def, "\"high\""),
            Err(ValueError::NotANumber(_))
        ));
        assert!(matches!(
            evaluate(&def, "true"),
            Err(ValueError::NotANumber(_))
        ));
        let ster = qualitative(Some(&["no growth", "growth"]), &["no growth"]);
        assert_eq!(evaluate(&ster, "5"), Err(ValueError::NotText));
    }

    fn qualitative(options: Option<&[&str]>, allowed: &[&str]) -> TestDef {
        TestDef {
            kind: TestKind::Qualitative,
            unit: None,
            min: None,
            max: None,
            decimals: None,
            options: options.map(|o| o.iter().map(|s| (*s).to_owned()).collect()),
            allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
            ..numeric(None, None, None)
        }
    }

    #[test]
    fn qualitative_values_are_trimmed_and_case_insensitive() {
        let ster = qualitative(Some(&["no growth", "growth"]), &["no growth"]);
        assert_eq!(outcome(&ster, "\"  No Growth \""), Outcome::Pass);
        assert_eq!(outcome(&ster, "\"growth\""), Outcome::Fail);
        assert!(matches!(
            evaluate(&ster, "\"cloudy\""),
            Err(ValueError::NotAnOption(_))
        ));
        let free = qualitative(None, &["normal"]);
        assert_eq!(outcome(&free, "\"NORMAL\""), Outcome::Pass);
        assert_eq!(outcome(&free, "\"46,XX\""), Outcome::Fail);
    }

    fn input(code: &str, kind: &str) -> TestDefInput {
        TestDefInput {
            code: code.into(),
            name: "n".into(),
            method: "m".into(),
            kind: kind.into(),
            ..Default::default()
        }
    }

    fn fields(r: Result<Vec<TestDef>, Vec<FieldError>>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn spec_validation_refuses_the_four_classic_mistakes() {
        assert_eq!(fields(validate_tests(&[])), vec!["tests"]);
        let mut a = input("VIAB", "numeric");
        a.min = Some(crate::domain::decimal::DecimalText::typed("80"));
        let mut b = a.clone();
        b.code = "viab".into();
        assert_eq!(
            fields(validate_tests(&[a.clone(), b])),
            vec!["tests[1].code"]
        );
        let mut inverted = input("DOSE", "numeric");
        inverted.min = Some(crate::domain::decimal::DecimalText::typed("2"));
        inverted.max = Some(crate::domain::decimal::DecimalText::typed("1"));
        assert_eq!(fields(validate_tests(&[inverted])), vec!["tests[0].min"]);
        assert_eq!(
            fields(validate_tests(&[input("X", "numeric")])),
            vec!["tests[0].min"]
        );
        assert!(validate_tests(&[a]).is_ok());
    }

    #[test]
    fn qualitative_specs_need_allowed_values_within_options() {
        let mut q = input("STER", "qualitative");
        q.options = Some(vec!["no growth".into(), "growth".into()]);
        q.allowed = Some(vec!["sterile".into()]);
        assert_eq!(
            fields(validate_tests(&[q.clone()])),
            vec!["tests[0].allowed"]
        );
        q.allowed = Some(vec!["No Growth".into()]);
        assert!(validate_tests(&[q]).is_ok());
        assert_eq!(
            fields(validate_tests(&[input("KARYO", "qualitative")])),
            vec!["tests[0].allowed"]
        );
    }

    #[test]
    fn only_a_draft_is_approved_and_never_by_its_author() {
        let (author, other) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        assert_eq!(check_approval(SpecStatus::Draft, author, other), Ok(()));
        assert_eq!(
            check_approval(SpecStatus::Draft, author, author),
            Err(ApprovalRefusal::SelfApproval)
        );
        for done in [SpecStatus::Effective, SpecStatus::Superseded] {
            assert_eq!(
                check_approval(done, author, other),
                Err(ApprovalRefusal::NotDraft(done))
            );
        }
        assert_eq!(SpecStatus::try_from("effective"), Ok(SpecStatus::Effective));
    }

    #[test]
    fn describes_limits_as_the_lab_reads_them() {
        assert_eq!(
            describe_limit(&numeric(Some(("95", true)), None, None)),
            ">= 95 %"
        );
        assert_eq!(
            describe_limit(&numeric(None, Some(("0.5", false)), None)),
            "< 0.5 %"
        );
    }

    /// Values and limits as integers scaled by 10^4, so the expected outcome
    /// is computed with integer arithmetic, independent of the evaluator.
    fn scaled(n: i64) -> String {
        let sign = if n < 0 { "-" } else { "" };
        let a = n.unsigned_abs();
        format!("{sign}{}.{:04}", a / 10_000, a % 10_000)
    }

    proptest! {
        #[test]
        fn numeric_outcome_matches_integer_arithmetic(
            v in -2_000_000i64..2_000_000,
            lo in -1_000_000i64..1_000_000,
            span in 0i64..1_000_000,
            lo_inc: bool,
            hi_inc: bool,
        ) {
            let hi = lo + span;
            prop_assume!(lo != hi || (lo_inc && hi_inc));
            let def = numeric(Some((&scaled(lo), lo_inc)), Some((&scaled(hi), hi_inc)), None);
            let expected = (if lo_inc { v >= lo } else { v > lo }) && (if hi_inc { v <= hi } else { v < hi });
            let got = outcome(&def, &scaled(v)) == Outcome::Pass;
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn rounding_to_two_places_matches_integer_half_up(
            v in -2_000_000i64..2_000_000,
            lo in -1_000_000i64..1_000_000,
        ) {
            // Limit on a 0.01 grid; value rounded half-up (in magnitude) to 0.01.
            let lo = lo / 100 * 100;
            let def = numeric(Some((&scaled(lo), true)), None, Some(2));
            let a = v.abs();
            let rounded_abs = (a + 50) / 100 * 100;
            let rounded = if v < 0 { -rounded_abs } else { rounded_abs };
            let expected = rounded >= lo;
            prop_assert_eq!(outcome(&def, &scaled(v)) == Outcome::Pass, expected);
        }

        #[test]
        fn trailing_zeros_and_string_form_never_change_the_outcome(
            v in -2_000_000i64..2_000_000,
            lo in -1_000_000i64..1_000_000,
        ) {
            let def = numeric(Some((&scaled(lo), true)), None, Some(3));
            let plain = scaled(v);
            let padded = format!("\"{plain}000\"");
            prop_assert_eq!(outcome(&def, &plain), outcome(&def, &padded));
        }

        #[test]
        fn raising_the_value_never_turns_pass_into_fail_above_a_minimum(
            v in -2_000_000i64..2_000_000,
            d in 0i64..1_000_000,
            lo in -1_000_000i64..1_000_000,
            places in 0u32..5,
        ) {
            let def = numeric(Some((&scaled(lo), true)), None, Some(places));
            if outcome(&def, &scaled(v)) == Outcome::Pass {
                prop_assert_eq!(outcome(&def, &scaled(v + d)), Outcome::Pass);
            }
        }
    }

    #[test]
    fn every_reason_a_value_is_not_a_decimal_says_the_value_is_numeric() {
        let long = "9".repeat(41);
        let mut said = std::collections::HashSet::new();
        for raw in ["\"\"", "\"1e999\"", "\"abc\"", "true", long.as_str()] {
            let why = Decimal::from_json(raw).unwrap_err();
            let e = ValueError::NotANumber(why).field_error();
            assert!(
                e.message.starts_with("this test is numeric: the value "),
                "{raw}: {}",
                e.message
            );
            assert_ne!(e.message_in(crate::i18n::Locale::ZhCn), e.message, "{raw}");
            said.insert(e.message);
        }
        assert_eq!(said.len(), 5, "each reason has its own words: {said:?}");
    }
}

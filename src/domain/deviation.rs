//! Deviations, including OOS investigations: kinds, severities, conclusions
//! and the rule for closing one.

use serde::Serialize;

/// What opened the deviation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviationKind {
    /// A failing result (opened automatically).
    Oos,
    /// A temperature outside the product's storage range.
    Excursion,
    /// Opened by a person.
    Manual,
}

impl DeviationKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviationKind::Oos => "oos",
            DeviationKind::Excursion => "excursion",
            DeviationKind::Manual => "manual",
        }
    }
}

/// How serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Minor.
    Minor,
    /// Major (default of an OOS).
    Major,
    /// Critical (a failure after release).
    Critical,
}

impl Severity {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    /// From the request.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "minor" => Some(Severity::Minor),
            "major" => Some(Severity::Major),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// The severity of the OOS deviation a failing result opens: critical when
/// the batch was already (conditionally) released (EU GMP Part IV §11.3).
pub fn oos_severity(batch_released: bool) -> Severity {
    if batch_released {
        Severity::Critical
    } else {
        Severity::Major
    }
}

/// How an investigation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    /// An assignable cause invalidates the test: the result is invalidated.
    InvalidTest,
    /// The failure is real: the batch can only be rejected.
    ConfirmedOos,
    /// The deviation does not affect the batch.
    NoImpact,
}

impl Conclusion {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::InvalidTest => "invalid_test",
            Conclusion::ConfirmedOos => "confirmed_oos",
            Conclusion::NoImpact => "no_impact",
        }
    }

    /// From the request.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invalid_test" => Some(Conclusion::InvalidTest),
            "confirmed_oos" => Some(Conclusion::ConfirmedOos),
            "no_impact" => Some(Conclusion::NoImpact),
            _ => None,
        }
    }
}

/// Why a deviation can't be closed as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseRefusal {
    /// Already closed (409 `deviation_closed`).
    AlreadyClosed,
    /// `invalid_test` and `confirmed_oos` conclude an OOS investigation of a
    /// result; this deviation has none (422 on `conclusion`).
    NotAnOos,
}

/// Checks closing a deviation with `conclusion`.
pub fn check_close(
    open: bool,
    has_result: bool,
    conclusion: Conclusion,
) -> Result<(), CloseRefusal> {
    if !open {
        return Err(CloseRefusal::AlreadyClosed);
    }
    if matches!(
        conclusion,
        Conclusion::InvalidTest | Conclusion::ConfirmedOos
    ) && !has_result
    {
        return Err(CloseRefusal::NotAnOos);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_rules() {
        assert_eq!(check_close(true, true, Conclusion::InvalidTest), Ok(()));
        assert_eq!(
            check_close(false, true, Conclusion::NoImpact),
            Err(CloseRefusal::AlreadyClosed)
        );
        assert_eq!(
            check_close(true, false, Conclusion::InvalidTest),
            Err(CloseRefusal::NotAnOos)
        );
        assert_eq!(check_close(true, false, Conclusion::NoImpact), Ok(()));
        assert_eq!(oos_severity(true), Severity::Critical);
        assert_eq!(oos_severity(false), Severity::Major);
    }
}

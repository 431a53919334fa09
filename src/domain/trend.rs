//! Trends across batches (continued process verification, EU GMP Annex 15
//! §5.28, ICH Q10): the individuals chart and the Nelson rules exactly as
//! DOMAIN.md "Trends" defines them, in exact decimals (a point exactly at
//! 3 sigma is at it, not a rounding error beyond it).
//!
//! One point per batch, in `performed_at` order (the caller's order). The
//! baseline is the first 20 points (all when fewer); with fewer than 8 points
//! there are no limits and no violations. `center` is the baseline's mean,
//! `sigma` its mean moving range / 1.128, the limits center -/+ 3 sigma. Every
//! point, baseline included, is flagged with each rule it completes. A flagged
//! point is a warning for QA, never a blocker.

use bigdecimal::{BigDecimal, Zero};
use serde::Serialize;
use std::str::FromStr;
use strum::{EnumString, IntoStaticStr};
use utoipa::ToSchema;

/// Points in the baseline, at most.
pub const BASELINE: usize = 20;
/// Points needed before there are limits.
pub const MIN_POINTS: usize = 8;
/// d2 for moving ranges of two consecutive points.
const D2: &str = "1.128";

/// A run rule a point can complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, EnumString, IntoStaticStr)]
pub enum Rule {
    /// More than 3 sigma from the center.
    #[serde(rename = "nelson_1")]
    #[strum(serialize = "nelson_1")]
    Nelson1,
    /// It and the 8 points before it all above the center, or all below.
    #[serde(rename = "nelson_2")]
    #[strum(serialize = "nelson_2")]
    Nelson2,
    /// It and the 5 points before it strictly increasing, or strictly decreasing.
    #[serde(rename = "nelson_3")]
    #[strum(serialize = "nelson_3")]
    Nelson3,
    /// More than 2 sigma from the center, and so is at least one of the 2
    /// points before it, on the same side.
    #[serde(rename = "nelson_5")]
    #[strum(serialize = "nelson_5")]
    Nelson5,
}

/// Every rule, in the order they are reported.
pub const RULES: [Rule; 4] = [Rule::Nelson1, Rule::Nelson2, Rule::Nelson3, Rule::Nelson5];

/// The chart's lines, from the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Mean of the baseline.
    pub center: BigDecimal,
    /// Mean moving range of the baseline / 1.128.
    pub sigma: BigDecimal,
    /// center - 3 sigma.
    pub lcl: BigDecimal,
    /// center + 3 sigma.
    pub ucl: BigDecimal,
}

/// The individuals chart of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Points in the baseline.
    pub baseline_n: usize,
    /// None with fewer than [`MIN_POINTS`] points.
    pub limits: Option<Limits>,
    /// The rules each point completes, one list per point.
    pub violations: Vec<Vec<Rule>>,
    /// Process capability against the specification's limits (one side when
    /// it has one); none without limits, without a specification limit, or
    /// when sigma is zero.
    pub cpk: Option<BigDecimal>,
    /// The baseline has no spread (every moving range 0): no limits and no
    /// rule flags, "not enough variation to chart".
    pub no_variation: bool,
}

impl Chart {
    /// Whether point `i` is out of trend.
    pub fn flagged(&self, i: usize) -> bool {
        self.violations.get(i).is_some_and(|v| !v.is_empty())
    }
}

fn d2() -> BigDecimal {
    BigDecimal::from_str(D2).unwrap_or_else(|_| BigDecimal::from(1))
}

/// Whether a baseline has no spread: every moving range 0.
pub fn without_variation(baseline: &[BigDecimal]) -> bool {
    let baseline = baseline.get(..BASELINE).unwrap_or(baseline);
    baseline.windows(2).all(|w| matches!(w, [a, b] if a == b))
}

/// The chart's lines from the series' first points (the baseline: at most
/// [`BASELINE`]); none when the whole series has fewer than [`MIN_POINTS`],
/// or when the baseline has no spread (limits of zero width would call
/// every later departure, however small, out of trend).
pub fn limits(baseline: &[BigDecimal], series_len: usize) -> Option<Limits> {
    if series_len < MIN_POINTS || baseline.len() < 2 || without_variation(baseline) {
        return None;
    }
    let baseline = baseline.get(..BASELINE).unwrap_or(baseline);
    let n = BigDecimal::from(u64::try_from(baseline.len()).unwrap_or(u64::MAX));
    let center = baseline.iter().sum::<BigDecimal>() / &n;
    let ranges: BigDecimal = baseline
        .windows(2)
        .filter_map(|w| match w {
            [a, b] => Some((b - a).abs()),
            _ => None,
        })
        .sum();
    let moving = BigDecimal::from(u64::try_from(baseline.len() - 1).unwrap_or(u64::MAX));
    let sigma = ranges / moving / d2();
    let three = &sigma * BigDecimal::from(3);
    Some(Limits {
        lcl: &center - &three,
        ucl: &center + &three,
        center,
        sigma,
    })
}

/// The rules point `x` completes, given the points before it in order
/// (`before`: as many as there are, only the last 8 are looked at).
pub fn rules_at(l: &Limits, before: &[BigDecimal], x: &BigDecimal) -> Vec<Rule> {
    let c = &l.center;
    let three = &l.sigma * BigDecimal::from(3);
    let two = &l.sigma * BigDecimal::from(2);
    let mut hit = Vec::new();
    if (x - c).abs() > three {
        hit.push(Rule::Nelson1);
    }
    let last = |n: usize| -> Option<Vec<&BigDecimal>> {
        let from = before.len().checked_sub(n)?;
        let mut run: Vec<&BigDecimal> = before.get(from..)?.iter().collect();
        run.push(x);
        Some(run)
    };
    if let Some(run) = last(8) {
        if run.iter().all(|v| *v > c) || run.iter().all(|v| *v < c) {
            hit.push(Rule::Nelson2);
        }
    }
    if let Some(run) = last(5) {
        let up = run.windows(2).all(|w| matches!(w, [a, b] if b > a));
        let down = run.windows(2).all(|w| matches!(w, [a, b] if b < a));
        if up || down {
            hit.push(Rule::Nelson3);
        }
    }
    let beyond = |v: &BigDecimal, above: bool| {
        let d = v - c;
        if above { d > two } else { -d > two }
    };
    let recent = before
        .get(before.len().saturating_sub(2)..)
        .unwrap_or_default();
    for above in [true, false] {
        if beyond(x, above) && recent.iter().any(|v| beyond(v, above)) {
            hit.push(Rule::Nelson5);
        }
    }
    hit
}

/// Cpk against the specification's `min` and `max` (one side when it has one).
pub fn cpk(l: &Limits, min: Option<&BigDecimal>, max: Option<&BigDecimal>) -> Option<BigDecimal> {
    if l.sigma.is_zero() {
        return None;
    }
    let three = &l.sigma * BigDecimal::from(3);
    [
        max.map(|usl| (usl - &l.center) / &three),
        min.map(|lsl| (&l.center - lsl) / &three),
    ]
    .into_iter()
    .flatten()
    .min()
}

/// The chart of `values` (in order) against the specification's `min` and `max`.
pub fn chart(values: &[BigDecimal], min: Option<&BigDecimal>, max: Option<&BigDecimal>) -> Chart {
    let baseline_n = values.len().min(BASELINE);
    let baseline = values.get(..baseline_n).unwrap_or_default();
    let limits = limits(baseline, values.len());
    let no_variation =
        values.len() >= MIN_POINTS && baseline.len() >= 2 && without_variation(baseline);
    let violations = values
        .iter()
        .enumerate()
        .map(|(i, x)| match &limits {
            Some(l) => rules_at(l, values.get(..i).unwrap_or_default(), x),
            None => Vec::new(),
        })
        .collect();
    Chart {
        baseline_n,
        cpk: limits.as_ref().and_then(|l| cpk(l, min, max)),
        limits,
        violations,
        no_variation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).unwrap()
    }

    fn series(v: &[&str]) -> Vec<BigDecimal> {
        v.iter().map(|s| d(s)).collect()
    }

    /// 10 and 11.128 in turn, 20 points: every moving range 1.128, so
    /// sigma is exactly 1 and the center 10.564.
    fn alternating() -> Vec<&'static str> {
        ["10", "11.128"].repeat(10)
    }

    /// (index, rules) of every flagged point.
    fn flags(c: &Chart) -> Vec<(usize, Vec<Rule>)> {
        c.violations
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(i, v)| (i, v.clone()))
            .collect()
    }

    #[test]
    fn fewer_than_eight_points_have_no_limits_and_no_violations() {
        let c = chart(
            &series(&["10", "30", "10", "10", "10", "10", "10"]),
            None,
            None,
        );
        assert_eq!(c.baseline_n, 7);
        assert_eq!(c.limits, None);
        assert_eq!(c.cpk, None);
        assert_eq!(c.violations.len(), 7);
        assert!(flags(&c).is_empty());
    }

    #[test]
    fn the_baseline_is_the_first_twenty_points_and_a_point_exactly_at_three_sigma_is_not_flagged() {
        let mut v = alternating();
        v.extend(["13.564", "13.565", "10"]);
        let c = chart(&series(&v), Some(&d("8")), Some(&d("14")));
        assert_eq!(c.baseline_n, 20);
        let l = c.limits.clone().unwrap();
        assert_eq!(l.center, d("10.564"));
        assert_eq!(l.sigma, d("1"));
        assert_eq!(l.lcl, d("7.564"));
        assert_eq!(l.ucl, d("13.564"));
        // 13.564 lies exactly 3 sigma above: not beyond. 13.565 is, and
        // follows a point beyond 2 sigma on the same side.
        assert_eq!(flags(&c), vec![(21, vec![Rule::Nelson1, Rule::Nelson5])]);
        assert!(!c.flagged(20) && c.flagged(21));
        // cpk: the nearer limit, 8: (10.564 - 8) / 3.
        let cpk = c.cpk.unwrap().round(6);
        assert_eq!(cpk, d("0.854667"));
    }

    #[test]
    fn exactly_twenty_points_are_all_baseline() {
        let c = chart(&series(&alternating()), None, Some(&d("14")));
        assert_eq!(c.baseline_n, 20);
        assert!(flags(&c).is_empty());
        // One side: (14 - 10.564) / 3.
        assert_eq!(c.cpk.unwrap().round(6), d("1.145333"));
    }

    #[test]
    fn a_run_of_nine_on_one_side_is_flagged_even_when_it_begins_in_the_baseline() {
        // 14 alternating points, then 10 (below the center), then nine 9s:
        // the run below begins at point 14, inside the baseline.
        let mut v: Vec<&str> = ["10", "11.128"].repeat(7);
        v.push("10");
        v.extend(["9"; 9]);
        let c = chart(&series(&v), None, None);
        let l = c.limits.clone().unwrap();
        assert_eq!(l.center, d("10.1448"));
        assert_eq!(
            l.sigma.round(12),
            d("0.783501306458"),
            "mean moving range 0.8838... / 1.128"
        );
        assert_eq!(
            flags(&c),
            vec![(22, vec![Rule::Nelson2]), (23, vec![Rule::Nelson2])]
        );
        assert_eq!(c.cpk, None, "no specification limit");
    }

    #[test]
    fn six_points_strictly_rising_or_falling_are_flagged() {
        let mut up = alternating();
        up.extend(["10.1", "10.2", "10.3", "10.4", "10.5", "10.6"]);
        assert_eq!(
            flags(&chart(&series(&up), None, None)),
            vec![(25, vec![Rule::Nelson3])]
        );
        // Falling: the run begins at the baseline's last point, 11.128.
        let mut down = alternating();
        down.extend(["11", "10.9", "10.8", "10.7", "10.6", "10.5"]);
        assert_eq!(
            flags(&chart(&series(&down), None, None)),
            vec![(24, vec![Rule::Nelson3]), (25, vec![Rule::Nelson3])]
        );
        // Five rising points are not enough; equal neighbours break a run.
        let mut five = alternating();
        five.extend(["10.1", "10.2", "10.3", "10.3", "10.4", "10.5"]);
        assert!(flags(&chart(&series(&five), None, None)).is_empty());
    }

    #[test]
    fn two_of_three_beyond_two_sigma_on_the_same_side_are_flagged() {
        let mut v = alternating();
        v.extend(["12.9", "10", "12.9"]);
        assert_eq!(
            flags(&chart(&series(&v), None, None)),
            vec![(22, vec![Rule::Nelson5])]
        );
        // Opposite sides do not count.
        let mut w = alternating();
        w.extend(["12.9", "8.2"]);
        assert!(flags(&chart(&series(&w), None, None)).is_empty());
        // Three points apart: too far.
        let mut far = alternating();
        far.extend(["12.9", "10", "11", "12.9"]);
        assert!(flags(&chart(&series(&far), None, None)).is_empty());
    }

    #[test]
    fn a_baseline_without_spread_has_no_limits_and_flags_nothing() {
        let mut v = vec!["10"; 20];
        v.extend(["10.001", "10.002", "10.003", "10.004", "10.005", "10.006"]);
        let c = chart(&series(&v), Some(&d("9")), Some(&d("11")));
        assert!(c.no_variation);
        assert_eq!(c.limits, None);
        assert_eq!(c.cpk, None);
        assert!(
            (0..v.len()).all(|i| !c.flagged(i)),
            "no rule flags without limits"
        );
        // One moving range above zero is spread enough.
        let mut w = vec!["10"; 19];
        w.push("10.1");
        let c = chart(&series(&w), None, None);
        assert!(!c.no_variation);
        assert!(c.limits.is_some());
    }

    #[test]
    fn rules_are_named_as_stored() {
        use crate::domain::StoredName;
        let names: Vec<&str> = RULES.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["nelson_1", "nelson_2", "nelson_3", "nelson_5"]);
    }
}

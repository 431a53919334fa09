//! A product's trend page: one numeric test across its batches as an
//! individuals chart, drawn here as SVG (no script, nothing fetched from
//! elsewhere): the points, the center line, ±3 sigma, the specification
//! limits, and the points that complete a run rule in another shape. Each
//! point links to its batch.

use super::layout::{Refusal, html_page, page, refusal};
use super::session::{WebError, WebUser};
use crate::domain::StoredName;
use crate::error::{AppError, Problem};
use crate::http::AppState;
use crate::i18n::Locale;
use crate::services::trends::{self as svc, Charts, Trend};
use crate::tr;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, NaiveDate, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

const W: f64 = 920.0;
const H: f64 = 380.0;
const LEFT: f64 = 96.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 78.0;

/// A round step for about `n` ticks over `span`.
fn step(span: f64, n: f64) -> f64 {
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

fn num(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Shortest text for a tick or a line's value.
fn label(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// The most points a chart draws: a browser draws a few hundred links at
/// once, not a million. The numbers and the flags are always the whole
/// series'.
pub const MAX_DRAWN: usize = 500;

/// The most flagged batches the page lists.
const MAX_LISTED: usize = 200;

/// The least distance between two lines' labels, in the chart's units (a
/// label is 11 high).
const LABEL_GAP: f64 = 13.0;

/// Where to write the labels of lines at heights `ys`: at their lines, moved
/// down just enough that no two overlap, in the lines' order from the top.
fn apart(ys: &[f64]) -> Vec<f64> {
    let mut order: Vec<(usize, f64)> = ys.iter().copied().enumerate().collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut at = ys.to_vec();
    let mut last: Option<f64> = None;
    for (i, y) in order {
        let y = last.map_or(y, |prev| y.max(prev + LABEL_GAP));
        if let Some(slot) = at.get_mut(i) {
            *slot = y;
        }
        last = Some(y);
    }
    at
}

/// The chart as SVG, of the series' last [`MAX_DRAWN`] points. Points are
/// placed by their order (performed_at), one column per batch; the y range
/// covers the points, the control limits and the specification limits.
pub fn chart_svg(t: &Trend, loc: Locale) -> Markup {
    let skipped = t.points.len().saturating_sub(MAX_DRAWN);
    let points = t.points.get(skipped..).unwrap_or_default();
    let values: Vec<Option<f64>> = points.iter().map(|p| num(&p.value)).collect();
    let spec_min = t.spec.min.as_deref().and_then(num);
    let spec_max = t.spec.max.as_deref().and_then(num);
    let mut all: Vec<f64> = values.iter().flatten().copied().collect();
    all.extend([t.lcl, t.ucl, spec_min, spec_max].into_iter().flatten());
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.06;
        (lo - pad, hi + pad)
    } else if lo.is_finite() {
        (lo - 1.0, lo + 1.0)
    } else {
        (0.0, 1.0)
    };
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * plot_h;
    let n = points.len().max(1) as f64;
    let x = |i: usize| LEFT + (i as f64 + 0.5) * plot_w / n;
    let tick = step(hi - lo, 6.0);
    let ticks: Vec<f64> = {
        let mut v = (lo / tick).ceil() * tick;
        let mut out = Vec::new();
        while v <= hi + 1e-12 && out.len() < 20 {
            out.push(v);
            v += tick;
        }
        out
    };
    let every = (points.len() / 12).max(1);
    let unit = t.unit.clone().unwrap_or_default();
    let (spec_max_words, spec_min_words) = (tr!(loc, "chart-spec-max"), tr!(loc, "chart-spec-min"));
    let mut lines: Vec<(&str, &str, f64)> = Vec::new();
    if let Some(c) = t.center {
        lines.push(("center", "CL", c));
    }
    if let Some(v) = t.ucl {
        lines.push(("control", "UCL +3σ", v));
    }
    if let Some(v) = t.lcl {
        lines.push(("control", "LCL −3σ", v));
    }
    if let Some(v) = spec_max {
        lines.push(("spec", spec_max_words.as_str(), v));
    }
    if let Some(v) = spec_min {
        lines.push(("spec", spec_min_words.as_str(), v));
    }
    let label_at = apart(&lines.iter().map(|(_, _, v)| y(*v)).collect::<Vec<_>>());
    let path: String = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
        .collect::<Vec<_>>()
        .join(" ");
    let baseline_edge = (t.baseline_n > skipped && t.baseline_n < t.points.len())
        .then(|| LEFT + (t.baseline_n - skipped) as f64 * plot_w / n);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (W) " " (H)} role="img" aria-labelledby="chart-title chart-desc" {
            title id="chart-title" { (tr!(loc, "chart-title", code = t.test_code.as_str())) }
            desc id="chart-desc" {
                (tr!(loc, "chart-points", n = points.len()))
                @if skipped > 0 { (tr!(loc, "chart-last-of", n = t.points.len())) }
                "; "
                @if let (Some(c), Some(l), Some(u)) = (t.center, t.lcl, t.ucl) { (tr!(loc, "chart-center", c = label(c), l = label(l), u = label(u))) "; " }
                (tr!(loc, "chart-flagged", n = points.iter().filter(|p| !p.violations.is_empty()).count()))
            }
            @for v in &ticks {
                line.grid-line x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", y(*v))) y2=(format!("{:.1}", y(*v))) {}
                text x=(LEFT - 6.0) y=(format!("{:.1}", y(*v) + 4.0)) text-anchor="end" { (label(*v)) }
            }
            line.axis x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(H - BOTTOM) {}
            line.axis x1=(LEFT) x2=(W - RIGHT) y1=(H - BOTTOM) y2=(H - BOTTOM) {}
            text x="40" y=(format!("{:.1}", TOP + plot_h / 2.0)) transform=(format!("rotate(-90 40 {:.1})", TOP + plot_h / 2.0)) text-anchor="middle" { (t.test_code) @if !unit.is_empty() { " (" (unit) ")" } }
            @if let Some(edge) = baseline_edge {
                line.grid-line x1=(format!("{edge:.1}")) x2=(format!("{edge:.1}")) y1=(TOP) y2=(H - BOTTOM) {}
                text x=(format!("{:.1}", edge - 4.0)) y=(TOP - 5.0) text-anchor="end" { (tr!(loc, "chart-baseline", n = t.baseline_n)) }
            }
            @for ((class, name, v), at) in lines.iter().zip(&label_at) {
                line class=(class) x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", y(*v))) y2=(format!("{:.1}", y(*v))) {}
                text x=(W - RIGHT + 6.0) y=(format!("{:.1}", at + 4.0)) { (name) " " (label(*v)) }
            }
            polyline.series points=(path) {}
            @for (i, p) in points.iter().enumerate() {
                @if let Some(v) = values.get(i).copied().flatten() {
                    @let (cx, cy) = (x(i), y(v));
                    @let flagged = !p.violations.is_empty();
                    @let rules: Vec<&str> = p.violations.iter().map(|r| r.as_str()).collect();
                    a href={"/batches/" (p.batch_id)} {
                        title { (p.batch_number) ": " (p.value) " " (unit) ", " (p.performed_at.format("%Y-%m-%d %H:%M UTC")) @if flagged { (tr!(loc, "chart-out-of-trend", rules = rules.join(", "))) } @if p.outcome == "fail" { (tr!(loc, "chart-out-of-spec")) } }
                        @if flagged {
                            // A diamond: the flagged points differ by shape, not only colour.
                            polygon class={"point flagged" @if p.outcome == "fail" { " fail" }}
                                points=(format!("{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}", cx, cy - 8.0, cx + 8.0, cy, cx, cy + 8.0, cx - 8.0, cy)) {}
                        } @else {
                            circle class={"point" @if p.outcome == "fail" { " fail" }} cx=(format!("{cx:.1}")) cy=(format!("{cy:.1}")) r="5" {}
                        }
                    }
                }
                @if i % every == 0 {
                    @let lx = x(i);
                    text x=(format!("{lx:.1}")) y=(H - BOTTOM + 14.0) text-anchor="end" transform=(format!("rotate(-40 {:.1} {:.1})", lx, H - BOTTOM + 14.0)) { (p.batch_number) }
                }
            }
        }
    }
}

/// The specification's limits in words: `minimum 80 %`, `1.0e8 to 1.2e8 cells`.
fn spec_words(t: &Trend, loc: crate::i18n::Locale) -> String {
    let unit = t
        .unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    match (&t.spec.min, &t.spec.max) {
        (Some(lo), Some(hi)) => tr!(
            loc,
            "trend-spec-range",
            min = lo.as_str(),
            max = hi.as_str(),
            unit = unit
        ),
        (Some(lo), None) => tr!(loc, "trend-spec-min", min = lo.as_str(), unit = unit),
        (None, Some(hi)) => tr!(loc, "trend-spec-max", max = hi.as_str(), unit = unit),
        (None, None) => tr!(loc, "trend-spec-none"),
    }
}

/// The form's fields and their labels.
const LABELS: &[(&str, &str)] = &[
    ("test_code", "label-test"),
    ("from", "label-performed-from"),
    ("to", "label-performed-to"),
];

/// The page's query.
#[derive(Debug, Deserialize)]
pub struct TrendPageQuery {
    test_code: Option<String>,
    /// `YYYY-MM-DD`, from the start of that day (UTC).
    from: Option<String>,
    /// `YYYY-MM-DD`, to the end of that day (UTC).
    to: Option<String>,
}

fn day(field: &str, raw: Option<&str>, end: bool) -> Result<Option<DateTime<Utc>>, AppError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let d = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| AppError::invalid_field_said(field, "fe-must-be-a-date-yyyy-mm-dd"))?;
    let t = if end {
        d.and_hms_opt(23, 59, 59)
    } else {
        d.and_hms_opt(0, 0, 0)
    };
    Ok(t.map(|t| t.and_utc()))
}

fn trend_markup(
    user: &WebUser,
    product_id: Uuid,
    charts: &Charts,
    q: &TrendPageQuery,
    code: &str,
    shown: Result<&Trend, &Problem>,
) -> Markup {
    let flagged: Vec<_> = shown
        .ok()
        .map(|t| {
            t.points
                .iter()
                .filter(|p| !p.violations.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let csv_href = format!(
        "/products/{product_id}/trends.csv?test_code={code}&from={}&to={}",
        q.from.as_deref().unwrap_or(""),
        q.to.as_deref().unwrap_or("")
    );
    page(
        &tr!(
            user.lang(),
            "trend-title",
            product = charts.product_code.as_str(),
            code = code.to_string()
        ),
        Some(user),
        html! {
            p { a href={"/products/" (product_id)} { (charts.product_name) " (" (charts.product_code) ")" } }
            form.card method="get" action={"/products/" (product_id) "/trends"} {
                div.grid {
                    label { (tr!(user.lang(), "col-test"))
                        select name="test_code" {
                            @for (c, name) in &charts.tests { option value=(c) selected[c == code] { (c) " – " (name) } }
                        }
                    }
                    label { (tr!(user.lang(), "trend-from")) input type="date" name="from" value=(q.from.clone().unwrap_or_default()); }
                    label { (tr!(user.lang(), "trend-to")) input type="date" name="to" value=(q.to.clone().unwrap_or_default()); }
                }
                button type="submit" { (tr!(user.lang(), "trend-show")) }
            }
            @match shown {
                Err(p) => { (Refusal::new(Some(p), LABELS, user.lang()).searching().all_above()) }
                Ok(t) => {
                    @if t.points.len() < crate::domain::trend::MIN_POINTS {
                        div.notice.warn { (tr!(user.lang(), "trend-too-few", n = t.points.len(), min = crate::domain::trend::MIN_POINTS)) }
                    }
                    @if t.no_variation {
                        div.notice.warn id="no-variation" { (tr!(user.lang(), "trend-no-variation", n = t.baseline_n)) }
                    }
                    @if t.points.len() > MAX_DRAWN {
                        div.notice.warn id="drawn" { (tr!(user.lang(), "trend-drawn", shown = MAX_DRAWN, n = t.points.len())) }
                    }
                    div.chart id="chart" { (chart_svg(t, user.lang())) }
                    p.muted { (tr!(user.lang(), "trend-legend")) }
                    div.card { dl.facts {
                        dt { (tr!(user.lang(), "trend-points-label")) } dd { (tr!(user.lang(), "trend-points", n = t.points.len())) }
                        dt { (tr!(user.lang(), "trend-baseline-label")) } dd { (tr!(user.lang(), "trend-baseline", n = t.baseline_n)) }
                        dt { (tr!(user.lang(), "trend-center")) } dd { (t.center.map(label).unwrap_or_else(|| "—".into())) }
                        dt { (tr!(user.lang(), "trend-sigma")) } dd { (t.sigma.map(label).unwrap_or_else(|| "—".into())) (tr!(user.lang(), "trend-sigma-how")) }
                        dt { (tr!(user.lang(), "trend-limits")) } dd { (t.lcl.map(label).unwrap_or_else(|| "—".into())) " – " (t.ucl.map(label).unwrap_or_else(|| "—".into())) }
                        dt { (tr!(user.lang(), "col-specification")) } dd { (spec_words(t, user.lang())) }
                        dt { "Cpk" } dd { (t.cpk.map(|c| format!("{c:.2}")).unwrap_or_else(|| "—".into())) }
                        dt { (tr!(user.lang(), "trend-rules")) } dd { @for r in &t.rules { (r.as_str()) ": " (user.lang().code_words("rule", r.as_str())) br; } }
                    } }
                    h2 { (tr!(user.lang(), "trend-flagged", n = flagged.len())) }
                    @if flagged.len() > MAX_LISTED { p.muted { (tr!(user.lang(), "trend-listed", n = MAX_LISTED)) } }
                    @if flagged.is_empty() { p.muted { (tr!(user.lang(), "trend-none-flagged")) } } @else {
                        table id="flagged" {
                            thead { tr { th { (tr!(user.lang(), "col-batch")) } th { (tr!(user.lang(), "col-value")) } th { (tr!(user.lang(), "col-performed")) } th { (tr!(user.lang(), "trend-rules")) } } }
                            tbody { @for p in flagged.iter().skip(flagged.len().saturating_sub(MAX_LISTED)) { tr {
                                td { a href={"/batches/" (p.batch_id)} { (p.batch_number) } }
                                td { (p.value) " " (t.unit.clone().unwrap_or_default()) }
                                td { (user.time(p.performed_at)) }
                                td { @for r in &p.violations { (r.as_str()) ": " (user.lang().code_words("rule", r.as_str())) br; } }
                            } } }
                        }
                    }
                    p { a href=(csv_href) download { (tr!(user.lang(), "trend-csv")) } }
                }
            }
        },
    )
}

async fn load(
    state: &AppState,
    product_id: Uuid,
    q: &TrendPageQuery,
) -> Result<(Charts, String, Result<Trend, AppError>), AppError> {
    let code = q.test_code.clone().unwrap_or_default();
    let (from, to) = (q.from.clone(), q.to.clone());
    state
        .report(move |c| {
            let charts = svc::charts(c, product_id)?;
            let code = if code.trim().is_empty() {
                charts
                    .tests
                    .first()
                    .map(|t| t.0.clone())
                    .unwrap_or_default()
            } else {
                code.trim().to_owned()
            };
            let trend = day("from", from.as_deref(), false).and_then(|f| {
                let t = day("to", to.as_deref(), true)?;
                svc::trend(c, product_id, &code, f, t)
            });
            // A refusal is shown on the page; anything else is the server's.
            let trend = match trend {
                Err(e) if !e.to_problem().status().is_client_error() => return Err(e),
                t => t,
            };
            Ok((charts, code, trend))
        })
        .await
}

/// The trend page of a product and test (anyone signed in).
#[get("/products/{id}/trends")]
pub async fn trend_page(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<Uuid>,
    q: web::Query<TrendPageQuery>,
) -> Result<HttpResponse, WebError> {
    let product_id = id.into_inner();
    let (charts, code, trend) = load(&state, product_id, &q).await?;
    let (status, markup) = match trend {
        Ok(t) => (
            StatusCode::OK,
            trend_markup(&user, product_id, &charts, &q, &code, Ok(&t)),
        ),
        Err(e) => {
            let p = refusal(e)?;
            (
                p.status(),
                trend_markup(&user, product_id, &charts, &q, &code, Err(&p)),
            )
        }
    };
    Ok(html_page(status, markup))
}

/// The points as CSV, for a spreadsheet.
#[get("/products/{id}/trends.csv")]
pub async fn trend_csv(
    state: web::Data<AppState>,
    _user: WebUser,
    id: web::Path<Uuid>,
    q: web::Query<TrendPageQuery>,
) -> Result<HttpResponse, WebError> {
    let product_id = id.into_inner();
    let (_, code, trend) = load(&state, product_id, &q).await?;
    let t = trend?;
    let body = svc::csv(&t)?;
    Ok(HttpResponse::Ok()
        .content_type(crate::report::csv::MEDIA_TYPE)
        .insert_header(crate::http::download::download(
            false,
            &format!("trend-{product_id}-{}.csv", crate::report::name_part(&code)),
        ))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::trend::Rule;
    use crate::services::trends::{SpecLimits, TrendPoint};

    fn point(i: usize, value: &str, violations: Vec<Rule>) -> TrendPoint {
        TrendPoint {
            batch_id: Uuid::from_u128(i as u128 + 1),
            batch_number: format!("B-{i:02}"),
            value: value.to_owned(),
            performed_at: Utc::now(),
            outcome: "pass".to_owned(),
            violations,
        }
    }

    #[test]
    fn the_chart_draws_its_lines_links_every_point_and_flags_in_another_shape() {
        let mut points: Vec<TrendPoint> = (0..10)
            .map(|i| point(i, if i % 2 == 0 { "90" } else { "92" }, vec![]))
            .collect();
        points.push(point(10, "99", vec![Rule::Nelson1]));
        let t = Trend {
            product_id: Uuid::nil(),
            test_code: "VIAB".into(),
            unit: Some("%".into()),
            spec: SpecLimits {
                min: Some("80".into()),
                max: None,
            },
            points,
            baseline_n: 10,
            center: Some(91.0),
            sigma: Some(1.0),
            lcl: Some(88.0),
            ucl: Some(94.0),
            no_variation: false,
            cpk: Some(3.67),
            rules: crate::domain::trend::RULES.to_vec(),
        };
        let svg = chart_svg(&t, Locale::En).into_string();
        for text in ["CL 91", "UCL +3σ 94", "LCL −3σ 88", "spec min 80"] {
            assert!(svg.contains(text), "{text} in {svg}");
        }
        assert_eq!(svg.matches("<circle").count(), 10, "the points in trend");
        assert_eq!(svg.matches("<polygon").count(), 1, "the flagged point");
        assert_eq!(svg.matches("<a href=\"/batches/").count(), 11);
        assert!(svg.contains("B-10: 99 %") && svg.contains("out of trend (nelson_1)"));
        assert!(!svg.contains("<script"), "no script");
        // The flagged point is drawn above the upper control limit.
        let ucl_y = {
            let at = svg.find("class=\"control\"").unwrap();
            let rest = &svg[at..];
            let y1 = rest.find("y1=\"").unwrap() + 4;
            rest[y1..y1 + rest[y1..].find('"').unwrap()]
                .parse::<f64>()
                .unwrap()
        };
        let top_vertex: f64 = {
            let at = svg.find("<polygon").unwrap();
            let rest = &svg[at..];
            let p = rest.find("points=\"").unwrap() + 8;
            let pts = &rest[p..p + rest[p..].find('"').unwrap()];
            pts.split(' ')
                .next()
                .unwrap()
                .split(',')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(top_vertex + 8.0 < ucl_y, "{top_vertex} above {ucl_y}");
    }

    #[test]
    fn a_long_series_draws_its_last_points_with_the_whole_series_lines() {
        let t = Trend {
            product_id: Uuid::nil(),
            test_code: "VIAB".into(),
            unit: None,
            spec: SpecLimits {
                min: None,
                max: None,
            },
            points: (0..MAX_DRAWN + 100)
                .map(|i| point(i, "90", vec![]))
                .collect(),
            baseline_n: 20,
            center: Some(90.0),
            sigma: Some(0.0),
            lcl: Some(90.0),
            ucl: Some(90.0),
            no_variation: false,
            cpk: None,
            rules: crate::domain::trend::RULES.to_vec(),
        };
        let svg = chart_svg(&t, Locale::En).into_string();
        assert_eq!(svg.matches("<a href=\"/batches/").count(), MAX_DRAWN);
        assert!(svg.contains("(the last of 600)"), "{svg}");
        assert!(
            !svg.contains("B-99:") && svg.contains("B-100:"),
            "the first 100 left out"
        );
        assert!(
            !svg.contains("baseline (20)"),
            "the baseline is not among them"
        );
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(step(12.0, 6.0), 2.0);
        assert_eq!(step(0.9, 6.0), 0.2);
        assert_eq!(step(2.0e7, 6.0), 5.0e6);
        assert_eq!(label(91.5), "91.5");
        assert_eq!(label(88.0), "88");
    }

    #[test]
    fn line_labels_never_overlap_and_stay_beside_their_lines_when_apart() {
        let at = apart(&[100.0, 101.0, 99.5, 300.0, 100.0]);
        let mut sorted = at.clone();
        sorted.sort_by(f64::total_cmp);
        assert!(
            sorted.windows(2).all(|w| w[1] - w[0] >= LABEL_GAP),
            "{at:?}"
        );
        assert_eq!(at[2], 99.5, "the top one stays at its line");
        assert_eq!(at[3], 300.0, "a line far from the others keeps its label");
    }
}

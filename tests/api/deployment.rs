//! The deployment guide's files stay true to the code: every metric the
//! Grafana dashboard charts is one cellqc records.

use std::collections::BTreeSet;
use std::path::Path;

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("cellqc_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

fn sources(dir: &Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_metric_the_grafana_dashboard_charts_is_recorded_by_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard =
        std::fs::read_to_string(root.join("docs/deployment/grafana-dashboard.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert!(!parsed["panels"].as_array().unwrap().is_empty());
    let mut code = String::new();
    sources(&root.join("src"), &mut code);
    let recorded: BTreeSet<String> = metric_names(&code)
        .into_iter()
        .filter(|n| code.contains(&format!("\"{n}\"")))
        .collect();
    let charted: BTreeSet<String> = metric_names(&dashboard)
        .into_iter()
        .filter(|n| n != "cellqc_" && !n.starts_with("cellqc_overview"))
        .map(|n| n.strip_suffix("_bucket").map_or(n.clone(), str::to_owned))
        .collect();
    assert!(charted.len() >= 8, "{charted:?}");
    let unknown: Vec<&String> = charted.difference(&recorded).collect();
    assert!(
        unknown.is_empty(),
        "charted but never recorded: {unknown:?}"
    );
}

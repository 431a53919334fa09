//! Words meant for people, in the reader's language.
//!
//! Every page, form, refusal in words, email and certificate label lives in
//! the Fluent message files under `src/locales/<locale>/` (compiled into the
//! binary by `fluent-templates`), never in the code. Codes, field names and
//! stored values never change with the language: only what a person reads.
//!
//! Look a message up with [`tr!`](crate::tr): `tr!(loc, "nav-batches")`, or
//! with arguments `tr!(loc, "batch-count", n = 3)`. A unit test checks that
//! both languages hold the same messages, and that every `tr!` in the code
//! names one that exists.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid, static_loader};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;

pub use fluent_templates::fluent_bundle::FluentValue as Value;

static_loader! {
    static LOCALES = {
        locales: "./src/locales",
        fallback_language: "en",
        // No Unicode isolation marks around arguments: pages, emails and the
        // PDF show the words as written (a batch number stays searchable).
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

static EN: LanguageIdentifier = langid!("en");
static ZH_CN: LanguageIdentifier = langid!("zh-CN");

/// A language cellqc speaks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum Locale {
    /// English.
    #[default]
    #[serde(rename = "en")]
    En,
    /// Simplified Chinese, as used in mainland China.
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Locale {
    /// Every language, in the order the language switch offers them.
    pub const ALL: [Locale; 2] = [Locale::En, Locale::ZhCn];

    /// The stored and JSON name (`en`, `zh-CN`).
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhCn => "zh-CN",
        }
    }

    /// The language's own name, for the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Locale::En => "English",
            Locale::ZhCn => "中文",
        }
    }

    /// Reads a stored or sent name (`en`, `zh-CN`; the case of the region
    /// as a browser may send it).
    pub fn parse(s: &str) -> Option<Locale> {
        match s.trim() {
            "en" => Some(Locale::En),
            s if s.eq_ignore_ascii_case("zh-CN") => Some(Locale::ZhCn),
            _ => None,
        }
    }

    fn id(self) -> &'static LanguageIdentifier {
        match self {
            Locale::En => &EN,
            Locale::ZhCn => &ZH_CN,
        }
    }

    /// The message `id` in this language.
    pub fn text(self, id: &str) -> String {
        self.lookup(id, None)
    }

    /// The message `id` with its arguments.
    pub fn text_with(self, id: &str, args: &[(&'static str, FluentValue<'_>)]) -> String {
        let map: HashMap<Cow<'static, str>, FluentValue<'_>> = args
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), v.clone()))
            .collect();
        self.lookup(id, Some(&map))
    }

    fn lookup(
        self,
        id: &str,
        args: Option<&HashMap<Cow<'static, str>, FluentValue<'_>>>,
    ) -> String {
        LOCALES
            .try_lookup_complete(self.id(), id, args)
            .unwrap_or_else(|| {
                // The unit tests make this unreachable for every literal id;
                // a computed one (a status, a meaning) shows itself, never a
                // blank.
                tracing::error!(message_id = id, locale = self.as_str(), "no such message");
                id.to_owned()
            })
    }

    /// A stored code in words: the message `<prefix>-<code>` (underscores
    /// as hyphens), else the code itself with spaces.
    pub fn code_words(self, prefix: &str, code: &str) -> String {
        let id = format!("{prefix}-{}", code.replace('_', "-"));
        if self.has(&id) {
            self.text(&id)
        } else {
            code.replace('_', " ")
        }
    }

    /// Whether the message exists (for ids computed from a code).
    pub fn has(self, id: &str) -> bool {
        LOCALES.try_lookup(self.id(), id).is_some()
    }

    /// The language an `Accept-Language` header prefers among ours, by its
    /// quality values (RFC 9110 §12.5.4); `None` when it names neither.
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut best: Option<(f32, usize, Locale)> = None;
        for (i, part) in header.split(',').enumerate() {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim();
            let q = pieces
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q <= 0.0 {
                continue;
            }
            let primary = tag.split(['-', '_']).next().unwrap_or("");
            let locale = if primary.eq_ignore_ascii_case("zh") {
                // Simplified Chinese is the only Chinese we have: zh, zh-CN,
                // zh-Hans, zh-SG read it; zh-TW and zh-HK readers too would
                // rather have it than English.
                Locale::ZhCn
            } else if primary.eq_ignore_ascii_case("en") {
                Locale::En
            } else {
                continue;
            };
            // The highest quality wins; between equals, the first listed.
            if best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
                best = Some((q, i, locale));
            }
        }
        best.map(|(_, _, l)| l)
    }

    /// A date and time in `zone`, in this language's order:
    /// `2026-11-20 14:05 CET` or `2026年11月20日 14:05 CST`.
    pub fn date_time(self, at: DateTime<Utc>, zone: Tz) -> String {
        let local = at.with_timezone(&zone);
        match self {
            Locale::En => local.format("%Y-%m-%d %H:%M %Z").to_string(),
            Locale::ZhCn => local.format("%Y年%-m月%-d日 %H:%M %Z").to_string(),
        }
    }

    /// A day in `zone`: `2026-11-20` or `2026年11月20日`.
    pub fn day(self, at: DateTime<Utc>, zone: Tz) -> String {
        let local = at.with_timezone(&zone);
        match self {
            Locale::En => local.format("%Y-%m-%d").to_string(),
            Locale::ZhCn => local.format("%Y年%-m月%-d日").to_string(),
        }
    }
}

impl std::str::FromStr for Locale {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Locale::parse(s).ok_or_else(|| "must be \"en\" or \"zh-CN\"".to_owned())
    }
}

/// A message in a language: `tr!(loc, "id")`, or with arguments
/// `tr!(loc, "id", n = 3, code = "VIAB")`.
#[macro_export]
macro_rules! tr {
    ($loc:expr, $id:literal) => {
        $crate::i18n::Locale::text($loc, $id)
    };
    ($loc:expr, $id:literal, $($name:ident = $value:expr),+ $(,)?) => {
        $crate::i18n::Locale::text_with(
            $loc,
            $id,
            &[$((stringify!($name), $crate::i18n::Value::from($value))),+],
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluent_syntax::ast::Entry;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn ids(locale: &str) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/locales")
            .join(locale);
        let mut ids = BTreeSet::new();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            let src = std::fs::read_to_string(&file).unwrap_or_default();
            let res = fluent_syntax::parser::parse(src.as_str())
                .unwrap_or_else(|(_, errs)| panic!("{}: {errs:?}", file.display()));
            for entry in res.body {
                if let Entry::Message(m) = entry {
                    assert!(
                        ids.insert(m.id.name.to_owned()),
                        "{} is defined twice in {locale}",
                        m.id.name
                    );
                }
            }
        }
        ids
    }

    #[test]
    fn every_message_exists_in_both_languages() {
        let en = ids("en");
        let zh = ids("zh-CN");
        assert!(en.len() > 100, "only {} messages", en.len());
        let only_en: Vec<_> = en.difference(&zh).collect();
        let only_zh: Vec<_> = zh.difference(&en).collect();
        assert!(only_en.is_empty(), "missing in zh-CN: {only_en:?}");
        assert!(only_zh.is_empty(), "missing in en: {only_zh:?}");
    }

    /// Every `tr!(loc, "id"` in the code names a message that exists.
    #[test]
    fn every_message_the_code_asks_for_exists() {
        let en = ids("en");
        let mut missing = Vec::new();
        let mut asked = 0;
        let mut check = |path: &Path, id: &str| {
            asked += 1;
            if !en.contains(id) {
                missing.push(format!("{}: {id}", path.display()));
            }
        };
        for (path, src) in rust_sources() {
            for (at, _) in src.match_indices("tr!(") {
                // `include_str!(` is not ours.
                let before = src.get(..at).and_then(|b| b.chars().next_back());
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                // The first string literal after the locale argument.
                let rest = src.get(at + 4..).unwrap_or("");
                let Some(open) = rest.find('"') else { continue };
                let after = rest.get(open + 1..).unwrap_or("");
                let Some(close) = after.find('"') else {
                    continue;
                };
                check(&path, after.get(..close).unwrap_or(""));
            }
            // Field messages are named where the refusal is made.
            for prefix in ["\"fe-", "\"field-"] {
                for (at, _) in src.match_indices(prefix) {
                    let rest = src.get(at + 1..).unwrap_or("");
                    check(&path, rest.split('"').next().unwrap_or(""));
                }
            }
        }
        assert!(asked > 100, "only {asked} lookups found");
        assert!(missing.is_empty(), "no such message: {missing:?}");
    }

    /// Every Rust file under `src` but this one, with its text.
    fn rust_sources() -> Vec<(std::path::PathBuf, String)> {
        let mut found = Vec::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("i18n.rs")
                {
                    let src = std::fs::read_to_string(&path).unwrap_or_default();
                    found.push((path, src));
                }
            }
        }
        found
    }

    #[test]
    fn a_message_reads_in_each_language_with_its_arguments() {
        assert_eq!(tr!(Locale::En, "nav-batches"), "Batches");
        assert_eq!(tr!(Locale::ZhCn, "nav-batches"), "批次");
        // No isolation marks around the argument.
        let s = tr!(Locale::ZhCn, "page-of", page = 1, total = 2);
        assert_eq!(s, "第 1 页，共 2 页");
    }

    #[test]
    fn accept_language_picks_our_language_by_quality() {
        assert_eq!(
            Locale::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Locale::ZhCn)
        );
        assert_eq!(
            Locale::from_accept_language("en-GB,en;q=0.9,zh-CN;q=0.5"),
            Some(Locale::En)
        );
        assert_eq!(
            Locale::from_accept_language("de-DE, zh-Hans;q=0.7, en;q=0.3"),
            Some(Locale::ZhCn)
        );
        assert_eq!(
            Locale::from_accept_language("zh;q=0, en;q=0.1"),
            Some(Locale::En)
        );
        assert_eq!(Locale::from_accept_language("fr, de"), None);
        assert_eq!(Locale::from_accept_language(""), None);
    }

    #[test]
    fn dates_follow_the_language() {
        let at = DateTime::parse_from_rfc3339("2026-11-20T06:05:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap_or(Tz::UTC);
        assert_eq!(
            Locale::ZhCn.date_time(at, shanghai),
            "2026年11月20日 14:05 CST"
        );
        assert_eq!(Locale::En.date_time(at, Tz::UTC), "2026-11-20 06:05 UTC");
        assert_eq!(Locale::ZhCn.day(at, shanghai), "2026年11月20日");
    }

    #[test]
    fn locales_parse_as_stored() {
        assert_eq!(Locale::parse("zh-cn"), Some(Locale::ZhCn));
        assert_eq!(Locale::parse("en"), Some(Locale::En));
        assert_eq!(Locale::parse("fr"), None);
        for l in Locale::ALL {
            assert_eq!(Locale::parse(l.as_str()), Some(l));
        }
    }
}

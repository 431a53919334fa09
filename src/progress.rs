//! Progress of long command-line work (`audit verify`, `backup`, `restore`,
//! `cellqc-bench --fill`): an indicatif bar with the rate and the time left
//! when standard error is a terminal, else a plain line at most every
//! [`PLAIN_EVERY`] (a log or a CI job gets lines, not escape codes).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a plain progress line is written when not on a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// One long task's progress, counted in `unit`s out of a known total.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    what: String,
    unit: &'static str,
    total: u64,
    started: Instant,
    bar: Option<ProgressBar>,
    /// Plain mode: the position and when the last line was written.
    plain: Mutex<(u64, Instant)>,
}

impl Progress {
    /// `what` (e.g. "audit verify") over `total` `unit`s (e.g. "entries").
    pub fn new(what: &str, total: u64, unit: &'static str) -> Self {
        Self::to(what, total, unit, std::io::stderr().is_terminal())
    }

    /// As [`Progress::new`], with a bar only when `terminal`.
    pub fn to(what: &str, total: u64, unit: &'static str, terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = format!(
                "{{msg}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} · {{per_sec:0}} · {{eta}} left"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            inner: Arc::new(Inner {
                what: what.to_owned(),
                unit,
                total,
                started: now,
                bar,
                plain: Mutex::new((0, now)),
            }),
        }
    }

    /// Moves to `pos` units done.
    pub fn set(&self, pos: u64) {
        let i = &self.inner;
        if let Some(bar) = &i.bar {
            bar.set_position(pos);
            return;
        }
        let Ok(mut plain) = i.plain.lock() else {
            return;
        };
        plain.0 = pos;
        if plain.1.elapsed() >= PLAIN_EVERY {
            plain.1 = Instant::now();
            eprintln!("{}", self.line(pos));
        }
    }

    /// The units done so far.
    pub fn position(&self) -> u64 {
        match &self.inner.bar {
            Some(bar) => bar.position(),
            None => self.inner.plain.lock().map_or(0, |p| p.0),
        }
    }

    /// The task ended: the bar is cleared, and one last line says how long
    /// it took.
    pub fn finish(&self) {
        let i = &self.inner;
        if let Some(bar) = &i.bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "{}: {} {} in {:.1} s",
            i.what,
            i.total,
            i.unit,
            i.started.elapsed().as_secs_f64()
        );
    }

    /// The plain line for `pos`: count, share, rate and time left.
    pub fn line(&self, pos: u64) -> String {
        let i = &self.inner;
        let secs = i.started.elapsed().as_secs_f64();
        #[expect(
            clippy::cast_precision_loss,
            reason = "a rate and a share for people to read"
        )]
        let (rate, share) = (
            if secs > 0.0 { pos as f64 / secs } else { 0.0 },
            if i.total > 0 {
                100.0 * pos as f64 / i.total as f64
            } else {
                100.0
            },
        );
        #[expect(clippy::cast_precision_loss, reason = "a time left for people to read")]
        let left = if rate > 0.0 {
            format!("{:.0} s left", i.total.saturating_sub(pos) as f64 / rate)
        } else {
            "time left unknown".to_owned()
        };
        format!(
            "{}: {pos} of {} {} ({share:.1} %), {rate:.0} {}/s, {left}",
            i.what, i.total, i.unit, i.unit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_gives_the_count_the_share_the_rate_and_the_time_left() {
        let p = Progress::to("audit verify", 1000, "entries", false);
        std::thread::sleep(Duration::from_millis(50));
        let line = p.line(250);
        assert!(
            line.starts_with("audit verify: 250 of 1000 entries (25.0 %), "),
            "{line}"
        );
        assert!(
            line.contains(" entries/s, ") && line.ends_with(" s left"),
            "{line}"
        );
        // Nothing done yet: no rate, so no time left is made up.
        let fresh = Progress::to("backup", 10, "rows", false);
        assert!(
            fresh.line(0).ends_with("time left unknown"),
            "{}",
            fresh.line(0)
        );
    }
}

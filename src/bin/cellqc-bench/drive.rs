//! The two load shapes: a closed loop (`clients` connections, each sending
//! its next request when the last one is answered: the maximum throughput),
//! driven by wrk, a C load generator much lighter on two shared cores than
//! an HTTP client written here; and an open loop (requests at a fixed
//! arrival rate, whatever the answers do: the latency a lab sees at a given
//! load). Open-loop latency counts from the moment a request was due, so a
//! stalled server can't hide its queue.

use crate::Figures;
use anyhow::Context;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What a closed loop sends: one request at a time per connection.
pub enum Requests<'a> {
    /// GET each path in turn.
    Get {
        /// The paths.
        paths: &'a [String],
    },
    /// POST `{test_code, value, instrument_id?, performed_at}` to a batch's results: the
    /// i-th request records test `i / batches` of batch `i % batches`, so no
    /// two requests record the same test of the same batch, and consecutive
    /// requests go to different batches (as pgbench's random targets do)
    /// instead of queueing on one batch's row lock.
    Record {
        /// Batches without results.
        batches: &'a [uuid::Uuid],
        /// Test code of each test, and the body's other members (the JSON
        /// value, and the instrument when the test names a kind).
        tests: &'a [(String, String)],
        /// `performed_at`.
        performed_at: &'a str,
    },
}

/// wrk's threads.
const THREADS: usize = 2;

/// wrk's report, written by the script's `done`: requests, non-2xx/3xx
/// answers and socket errors, seconds, and the p50/p95/p99 latency in µs.
const DONE: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("CELLQC %d %d %d %.6f %d %d %d\n", summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"#;

fn lua_list(items: impl IntoIterator<Item = String>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| format!("{s:?}")).collect();
    format!("{{{}}}", quoted.join(", "))
}

impl Requests<'_> {
    fn script(&self, token: &str) -> String {
        // wrk's threads take turns: thread k sends requests k, k + THREADS,
        // k + 2 * THREADS, ...
        let common = format!(
            "wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             local thread_no = 0\n\
             function setup(thread) thread:set(\"first\", thread_no); thread_no = thread_no + 1 end\n\
             local i = 0\n\
             function init(args) i = first end\n"
        );
        let request = match self {
            Requests::Get { paths } => format!(
                "local paths = {}\n\
                 request = function()\n  i = i + {THREADS}\n  return wrk.format(\"GET\", paths[i % #paths + 1])\nend\n",
                lua_list(paths.iter().cloned())
            ),
            Requests::Record {
                batches,
                tests,
                performed_at,
            } => format!(
                "local batches = {}\nlocal codes = {}\nlocal members = {}\n\
                 request = function()\n  local n = i\n  i = i + {THREADS}\n\
                   local b = batches[n % #batches + 1]\n\
                   local t = math.floor(n / #batches) % #codes + 1\n\
                   local body = '{{\"test_code\":\"' .. codes[t] .. '\",' .. members[t] .. ',\"performed_at\":\"{performed_at}\"}}'\n\
                   return wrk.format(\"POST\", \"/api/v1/batches/\" .. b .. \"/results\", nil, body)\nend\n",
                lua_list(batches.iter().map(ToString::to_string)),
                lua_list(tests.iter().map(|(c, _)| c.clone())),
                lua_list(tests.iter().map(|(_, v)| v.clone())),
            ),
        };
        format!("{common}{request}{DONE}")
    }
}

/// Drives `clients` connections with wrk for `seconds`.
pub fn closed(
    base: &str,
    token: &str,
    clients: usize,
    seconds: u64,
    requests: &Requests<'_>,
) -> anyhow::Result<Figures> {
    let dir = std::env::temp_dir().join(format!("cellqc-wrk-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("load.lua");
    std::fs::write(&script, requests.script(token))?;
    let out = std::process::Command::new("wrk")
        .args([
            "-t",
            "2",
            "-c",
            &clients.to_string(),
            "-d",
            &format!("{seconds}s"),
        ])
        .arg("-s")
        .arg(&script)
        .arg(base)
        .output()
        .context("running wrk (Debian package `wrk`)")?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("CELLQC "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .with_context(|| format!("wrk said: {text}{}", String::from_utf8_lossy(&out.stderr)))?;
    let [requests, status_errors, socket_errors, secs, p50, p95, p99] = fields[..] else {
        anyhow::bail!("wrk's report is not understood: {text}");
    };
    let errors = (status_errors + socket_errors) as usize;
    let requests = requests as usize;
    let us = |v: f64| Duration::from_micros(v as u64);
    Ok(Figures {
        requests,
        errors,
        per_second: requests.saturating_sub(errors) as f64 / secs,
        p50: us(p50),
        p95: us(p95),
        p99: us(p99),
    })
}

/// Sends `rate` requests per second for `seconds`, each at its due time.
pub async fn open<F, Fut>(rate: f64, seconds: u64, request: F) -> Figures
where
    F: Fn(usize) -> Fut + 'static,
    Fut: Future<Output = bool> + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let total = (rate * seconds as f64).round() as usize;
    let start = Instant::now();
    let done: Rc<RefCell<(Vec<Duration>, usize)>> = Rc::default();
    let mut pending = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        actix_web::rt::time::sleep_until(due.into()).await;
        let answer = request(i);
        let done = done.clone();
        pending.push(actix_web::rt::spawn(async move {
            let ok = answer.await;
            let mut d = done.borrow_mut();
            if ok {
                d.0.push(due.elapsed());
            } else {
                d.1 += 1;
            }
        }));
    }
    futures_util::future::join_all(pending).await;
    let elapsed = start.elapsed();
    let (latencies, errors) = done.take();
    Figures::new(latencies, errors, elapsed)
}

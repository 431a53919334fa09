//! The two load shapes: a closed loop (`clients` clients, each sending its
//! next request when the last one is answered: the maximum throughput) and
//! an open loop (requests at a fixed arrival rate, whatever the answers do:
//! the latency a lab sees at a given load). Open-loop latency counts from
//! the moment a request was due, so a stalled server can't hide its queue.

use crate::Figures;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Drives `clients` loops until the deadline; `request(i)` makes the i-th
/// request and says whether it was answered as expected.
pub async fn closed<F, Fut>(clients: usize, seconds: u64, request: F) -> Figures
where
    F: Fn(usize) -> Fut + Clone + 'static,
    Fut: Future<Output = bool>,
{
    let counter = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let loops = (0..clients).map(|_| {
        let counter = counter.clone();
        let request = request.clone();
        async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                if request(i).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }
    });
    let results = futures_util::future::join_all(loops).await;
    let mut all: Vec<Duration> = Vec::new();
    let mut errors = 0;
    for (lat, e) in results {
        all.extend(lat);
        errors += e;
    }
    Figures::new(all, errors, start.elapsed())
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

//! Background work that repeats: the email outbox and the periodic anchor.
//! One thread each, a pooled connection per pass, and a prompt stop.

use crate::db::pool::{DbConn, DbPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running background thread; stops when stopped or dropped.
pub struct Worker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    /// Runs `pass` on a pooled connection, then waits `every`, until stopped.
    /// A failed pass is logged and the next one runs as usual.
    pub fn start(
        name: &str,
        pool: DbPool,
        every: Duration,
        mut pass: impl FnMut(&mut DbConn) -> anyhow::Result<()> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let label = name.to_owned();
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let outcome = pool
                        .get()
                        .map_err(anyhow::Error::from)
                        .and_then(|mut c| pass(&mut c));
                    if let Err(e) = outcome {
                        tracing::warn!(worker = %label, error = %e, "background pass failed");
                    }
                    // Sleep in short steps so that stopping is prompt.
                    let mut slept = Duration::ZERO;
                    while slept < every && !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                        slept += Duration::from_millis(50);
                    }
                }
            })?;
        Ok(Worker {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops the worker after its current pass.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.halt();
    }
}

//! Password hashing with argon2id (the crate's default algorithm and the
//! OWASP-recommended parameters it ships with).
//!
//! Hashing costs tens of milliseconds and 19 MiB on purpose. It runs on one
//! thread of its own ([`on_hasher`]): a storm of sign-ins then holds one
//! hash's memory at a time, however many wait, so the server stays within
//! its memory bound (sixteen sign-ins at once took it from 53 to 100 MiB
//! with two at a time; docs/performance.md), and the other core keeps
//! serving. Sixteen sign-ins at once wait at most about a second. Callers
//! wait on the blocking pool, never on an async worker thread.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, LazyLock, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// Hashes computed at once.
const HASHING_THREADS: usize = 1;

/// The hashing threads' queue.
static HASHERS: LazyLock<Option<SyncSender<Job>>> = LazyLock::new(|| {
    let (jobs, queue) = mpsc::sync_channel::<Job>(0);
    let queue: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(queue));
    let mut started = 0;
    for i in 0..HASHING_THREADS {
        let queue = queue.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("password-{i}"))
            .spawn(move || {
                loop {
                    // The lock is held while waiting: one thread waits for the
                    // next job, the others for the lock.
                    let next = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    match next {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        started += usize::from(spawned.is_ok());
    }
    (started > 0).then_some(jobs)
});

/// Runs `f` on a hashing thread and waits for its answer (on the caller's
/// thread when no hashing thread runs); none when the thread failed.
fn on_hasher<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, answer) = mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(f());
    });
    match HASHERS.as_ref() {
        Some(jobs) => {
            if let Err(mpsc::SendError(job)) = jobs.send(job) {
                job();
            }
        }
        None => job(),
    }
    answer.recv().ok()
}

/// Hashes a password into a PHC string (`$argon2id$v=19$...`) with a fresh salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let password = password.to_owned();
    on_hasher(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .unwrap_or_else(|| Err(anyhow::anyhow!("the password hashing thread failed")))
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let (password, stored) = (password.to_owned(), stored.to_owned());
    on_hasher(move || {
        PasswordHash::new(&stored).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    // A hash that could not be computed never matches.
    .unwrap_or(false)
}

/// A hash of a random password, verified against when the username is
/// unknown so that a wrong name takes as long as a wrong password.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash_password(&uuid::Uuid::new_v4().to_string()).ok());

/// Spends the time of one verification and always fails.
pub fn verify_against_dummy(password: &str) -> bool {
    if let Some(h) = DUMMY_HASH.as_deref() {
        let _ = verify_password(password, h);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterx", &a));
        assert!(!verify_password("anything", "not a hash"));
        assert!(!verify_against_dummy("anything"));
    }

    #[test]
    fn many_callers_at_once_each_get_their_own_answer() {
        let stored = hash_password("the one password").unwrap();
        let callers: Vec<_> = (0..12)
            .map(|i| {
                let stored = stored.clone();
                std::thread::spawn(move || {
                    let tried = if i % 2 == 0 {
                        "the one password"
                    } else {
                        "another"
                    };
                    (i, verify_password(tried, &stored))
                })
            })
            .collect();
        for c in callers {
            let (i, ok) = c.join().unwrap();
            assert_eq!(ok, i % 2 == 0, "caller {i}");
        }
    }
}

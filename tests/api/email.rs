//! Email delivery against a real SMTP server process (aiosmtpd), the `.eml`
//! fallback, retries, and metrics.

use crate::lab::Lab;
use crate::support::TestApp;
use actix_web::http::StatusCode;
use cellqc::db::schema::email_outbox;
use cellqc::notify::{MailConfig, OutboxWorker};
use diesel::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Python that imports aiosmtpd, and the `PYTHONPATH` it needs: the
/// system's (Debian `python3-aiosmtpd`, named in the README's prerequisites,
/// also when another `python3` comes first on `PATH`), else a private install
/// from PyPI into the target directory.
fn aiosmtpd_python() -> (&'static str, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pydeps");
    let importable = |python: &str, path: &Path| {
        Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .env("PYTHONPATH", path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    for python in ["python3", "/usr/bin/python3"] {
        if importable(python, &dir) {
            return (python, dir);
        }
    }
    let ok = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&dir)
        .arg("aiosmtpd")
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok && importable("python3", &dir),
        "aiosmtpd could not be installed from PyPI"
    );
    ("python3", dir)
}

/// A real SMTP server writing what it receives into a Maildir.
struct SmtpSink {
    child: Child,
    maildir: tempfile::TempDir,
}

impl SmtpSink {
    fn start(port: u16) -> SmtpSink {
        let maildir = tempfile::tempdir().unwrap();
        let (python, pythonpath) = aiosmtpd_python();
        let child = Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir.path().join("box"))
            .env("PYTHONPATH", pythonpath)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink { child, maildir }
    }

    /// The messages received so far.
    fn messages(&self) -> Vec<String> {
        let new = self.maildir.path().join("box").join("new");
        let mut out: Vec<String> = std::fs::read_dir(new)
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mail_config(smtp_port: Option<u16>, dir: &Path) -> MailConfig {
    MailConfig {
        smtp_url: smtp_port.map(|p| format!("smtp://127.0.0.1:{p}")),
        from: "cellqc <cellqc@lab.example>".to_owned(),
        public_url: "https://cellqc.lab.example".to_owned(),
        mail_dir: dir.join("mail"),
        poll: Duration::from_millis(100),
        retry_base: Duration::from_millis(200),
    }
}

/// The message with its quoted-printable body decoded (soft breaks joined,
/// `=XX` turned back into bytes).
fn decoded(msg: &str) -> String {
    let joined = msg.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
        .collect()
}

#[actix_web::test]
async fn an_oos_email_reaches_every_qa_user_through_smtp() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-MAIL-1").await;
    lab.record(&b, "STER", json!("growth")).await;
    let port = free_port();
    let sink = SmtpSink::start(port);
    let worker = OutboxWorker::start(
        lab.app.pool.clone(),
        mail_config(Some(port), lab.app.data_dir.path()),
    )
    .unwrap();
    let msgs = sink.wait_for(1);
    worker.stop();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    let subject = header(m, "Subject");
    assert_eq!(subject, ["[cellqc] OOS on batch MSC-MAIL-1: STER failed"]);
    let rcpt = header(m, "X-RcptTo").join(",");
    let qa_emails: Vec<String> = cellqc::db::schema::users::table
        .filter(cellqc::db::schema::users::roles.contains(vec!["qa".to_owned()]))
        .select(cellqc::db::schema::users::email)
        .load(&mut lab.app.conn())
        .unwrap();
    assert_eq!(qa_emails.len(), 2);
    for e in &qa_emails {
        assert!(rcpt.contains(e.as_str()), "{rcpt} lacks {e}");
    }
    let text = decoded(m);
    assert!(
        text.contains(&format!("Open: https://cellqc.lab.example/batches/{b}")),
        "{text}"
    );
    assert!(text.contains("\nTest: STER\n"), "real line breaks: {text}");
    let sent: Option<chrono::DateTime<chrono::Utc>> = email_outbox::table
        .select(email_outbox::sent_at)
        .first(&mut lab.app.conn())
        .unwrap();
    assert!(sent.is_some());
}

#[actix_web::test]
async fn a_message_queued_while_smtp_is_down_arrives_exactly_once_when_it_is_up() {
    let app = TestApp::spawn().await;
    let (_, victim) = app.user_with(&["technician"]).await;
    for _ in 0..5 {
        app.try_login(&victim, "wrong-password-x").await;
    }
    let port = free_port();
    let worker = OutboxWorker::start(
        app.pool.clone(),
        mail_config(Some(port), app.data_dir.path()),
    )
    .unwrap();
    // Nothing listens: the attempt fails, the error is kept, a retry is planned.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (attempts, error): (i32, Option<String>) = email_outbox::table
            .select((email_outbox::attempts, email_outbox::last_error))
            .first(&mut app.conn())
            .unwrap();
        if attempts >= 1 && error.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no failed attempt recorded");
        std::thread::sleep(Duration::from_millis(100));
    }
    let sink = SmtpSink::start(port);
    let msgs = sink.wait_for(1);
    std::thread::sleep(Duration::from_millis(1500));
    worker.stop();
    let msgs_after = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs_after.len(), 1, "delivered exactly once");
    assert!(msgs_after[0].contains(&format!("Sign-in guesses: {victim}")));
    let (attempts, sent): (i32, Option<chrono::DateTime<chrono::Utc>>) = email_outbox::table
        .select((email_outbox::attempts, email_outbox::sent_at))
        .first(&mut app.conn())
        .unwrap();
    assert!(attempts >= 2 && sent.is_some());
}

#[actix_web::test]
async fn two_workers_never_send_one_message_twice() {
    let app = TestApp::spawn().await;
    let mut conn = app.conn();
    for i in 0..20 {
        let letter = |_| cellqc::services::outbox::Letter {
            subject: format!("message {i}"),
            body: "b".to_owned(),
        };
        cellqc::services::outbox::queue(
            &mut conn,
            vec![format!("qa{i}@lab.example")],
            cellqc::i18n::Locale::En,
            &cellqc::services::outbox::Email {
                kind: "test",
                letter: &letter,
                urgent: false,
                link_path: None,
            },
        )
        .unwrap();
    }
    let port = free_port();
    let sink = SmtpSink::start(port);
    let w1 = OutboxWorker::start(
        app.pool.clone(),
        mail_config(Some(port), app.data_dir.path()),
    )
    .unwrap();
    let w2 = OutboxWorker::start(
        cellqc::db::pool::build_pool(&app.db_url, 2).unwrap(),
        mail_config(Some(port), app.data_dir.path()),
    )
    .unwrap();
    let msgs = sink.wait_for(20);
    std::thread::sleep(Duration::from_millis(500));
    w1.stop();
    w2.stop();
    assert_eq!(msgs.len(), 20);
    assert_eq!(sink.messages().len(), 20);
}

#[actix_web::test]
async fn without_smtp_messages_are_written_as_eml_files() {
    let lab = Lab::msc().await;
    let b = lab.batch("MSC-EML").await;
    lab.record(&b, "ENDO", json!("0.9")).await;
    let cfg = mail_config(None, lab.app.data_dir.path());
    let dir = cfg.mail_dir.clone();
    let worker = OutboxWorker::start(lab.app.pool.clone(), cfg).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let files = loop {
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if !files.is_empty() || Instant::now() > deadline {
            break files;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    worker.stop();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].extension().unwrap(), "eml");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("OOS on batch MSC-EML: ENDO failed"));
}

#[actix_web::test]
async fn the_last_review_announces_that_the_batch_is_ready_for_release() {
    let lab = Lab::msc().await;
    let b = lab.tested_batch("MSC-READY", &[]).await;
    let ready: Vec<String> = email_outbox::table
        .filter(email_outbox::kind.eq("batch_ready"))
        .select(email_outbox::subject)
        .load(&mut lab.app.conn())
        .unwrap();
    assert_eq!(ready, ["[cellqc] Batch MSC-READY is ready for release"]);
    lab.release(&b, &lab.qa2, json!({})).await;
    let kinds: Vec<String> = email_outbox::table
        .select(email_outbox::kind)
        .load(&mut lab.app.conn())
        .unwrap();
    assert!(kinds.contains(&"batch_released".to_owned()));
}

#[actix_web::test]
async fn metrics_are_prometheus_text_for_a_signed_in_user_or_the_scrape_token() {
    let app = TestApp::spawn_with(|s| s.metrics_token = Some("scrape-token-123".to_owned())).await;
    let token = app.admin_token().await;
    assert_eq!(
        app.call_empty("GET", "/metrics", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.get("/api/v1/auth/me", &token).await;
    let r = app.get("/metrics", &token).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap().to_owned();
    for needle in [
        "cellqc_http_requests_total{route=\"/api/v1/auth/me\",method=\"GET\",status=\"200\"}",
        "cellqc_http_request_duration_seconds_bucket{route=\"/api/v1/auth/me\"",
        "cellqc_db_pool_in_use",
        "cellqc_email_outbox_backlog",
        "cellqc_email_outbox_failing",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
    let scraped = app.get("/metrics", "scrape-token-123").await;
    assert_eq!(scraped.status, StatusCode::OK);
    assert_eq!(
        app.get("/metrics", "wrong-token").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn a_message_too_large_to_send_is_set_aside_and_the_urgent_ones_go() {
    use cellqc::db::schema::email_outbox;
    use diesel::prelude::*;
    let lab = Lab::msc().await;
    // Queued first and due first: a body over the limit.
    let huge = "x".repeat(cellqc::notify::MAX_BODY_BYTES + 1);
    diesel::insert_into(email_outbox::table)
        .values((
            email_outbox::id.eq(uuid::Uuid::now_v7()),
            email_outbox::kind.eq("audit_anchor"),
            email_outbox::recipients.eq(vec!["qa@lab.example".to_owned()]),
            email_outbox::subject.eq("too large"),
            email_outbox::body.eq(&huge),
            email_outbox::next_attempt_at.eq(chrono::Utc::now() - chrono::Duration::minutes(5)),
        ))
        .execute(&mut lab.app.conn())
        .unwrap();
    let b = lab.batch("MSC-BIG").await;
    lab.record(&b, "ENDO", json!("0.9")).await;
    let cfg = mail_config(None, lab.app.data_dir.path());
    let dir = cfg.mail_dir.clone();
    let worker = OutboxWorker::start(lab.app.pool.clone(), cfg).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let files = loop {
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if !files.is_empty() || Instant::now() > deadline {
            break files;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    worker.stop();
    assert!(!files.is_empty(), "the OOS emails went");
    let (sent, error): (Option<chrono::DateTime<chrono::Utc>>, Option<String>) =
        email_outbox::table
            .filter(email_outbox::subject.eq("too large"))
            .select((email_outbox::sent_at, email_outbox::last_error))
            .first(&mut lab.app.conn())
            .unwrap();
    assert_eq!(sent, None, "kept unsent, in the backlog");
    assert!(error.unwrap().contains("over the"), "with the reason");
}

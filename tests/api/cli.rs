//! The `cellqc` binary itself: `serve` on the embedded default, `user create`.

use crate::support::TestApp;
use actix_web::http::StatusCode;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[actix_web::test]
async fn serve_runs_on_the_embedded_default_and_sigterm_stops_postgres_too() {
    let dir = tempfile::Builder::new()
        .prefix("cellqc-serve")
        .tempdir_in("/tmp")
        .unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cellqc"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("CELLQC_DATA_DIR", dir.path())
        .env("CELLQC_BIND", format!("127.0.0.1:{port}"))
        .env("CELLQC_ADMIN_PASSWORD", "first-start-secret-1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = awc::Client::default();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(res) = client.get(format!("{base}/readyz")).send().await {
            if res.status() == StatusCode::OK {
                break;
            }
        }
        assert!(Instant::now() < deadline, "serve did not become ready");
        assert!(child.try_wait().unwrap().is_none(), "serve exited early");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    let login = client
        .post(format!("{base}/api/v1/auth/login"))
        .send_json(&json!({"username": "admin", "password": "first-start-secret-1"}))
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);

    let pidfile = dir.path().join("pg").join("postmaster.pid");
    let pg_pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!pidfile.exists(), "PostgreSQL shut down cleanly");
    assert!(!std::path::Path::new(&format!("/proc/{pg_pid}")).exists());
    let secret = dir.path().join("jwt-secret");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[actix_web::test]
async fn user_create_on_the_command_line_makes_a_user_who_can_sign_in() {
    let app = TestApp::spawn().await;
    let out = Command::new(env!("CARGO_BIN_EXE_cellqc"))
        .args([
            "user",
            "create",
            "--username",
            "quinn",
            "--full-name",
            "Quinn QA",
        ])
        .args([
            "--email",
            "quinn@lab.example",
            "--role",
            "qa",
            "--role",
            "reviewer",
        ])
        .env("DATABASE_URL", &app.db_url)
        .env("CELLQC_DATA_DIR", app.data_dir.path())
        .env("CELLQC_PASSWORD", "lead-reviewer-pass-99")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = app.login("quinn", "lead-reviewer-pass-99").await;
    let me = app.get("/api/v1/auth/me", &token).await;
    assert_eq!(me.body["roles"], json!(["reviewer", "qa"]));
    let created = app.audit_actions("user.created");
    assert_eq!(created.len(), 2);

    let weak = Command::new(env!("CARGO_BIN_EXE_cellqc"))
        .args(["user", "create", "--username", "rae", "--full-name", "Rae"])
        .args(["--email", "rae@lab.example", "--role", "qa"])
        .env("DATABASE_URL", &app.db_url)
        .env("CELLQC_DATA_DIR", app.data_dir.path())
        .env("CELLQC_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"));
}

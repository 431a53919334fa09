//! The test harness: one private PostgreSQL cluster per test process (unless
//! `DATABASE_URL` names a server), a migrated template database, and for each
//! test its own database cloned from the template (`STRATEGY = FILE_COPY`)
//! with the real HTTP server on port 0.
//!
//! The cluster is a child of a supervisor thread with a parent-death signal:
//! when the test process exits, PostgreSQL shuts down with it.

use actix_web::http::StatusCode;
use cellqc::config::Settings;
use cellqc::db::embedded::{ClusterOptions, EmbeddedPostgres, quote_ident};
use cellqc::db::pool::{DbPool, build_pool};
use cellqc::db::run_migrations;
use cellqc::services::users::ensure_initial_admin;
use cellqc::{http::AppState, server::build_server};
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::OnceLock;
use uuid::Uuid;

/// The first admin's password in every test database.
pub const ADMIN_PASSWORD: &str = "first-boot-secret-pw1";
/// The JWT secret of every test server.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// Password of users made by [`TestApp::user_with`].
pub const USER_PASSWORD: &str = "correct-horse-battery";
/// What an admin gives a new user; it signs nothing until changed.
pub const TEMPORARY_PASSWORD: &str = "given-by-the-admin-1";

struct Cluster {
    /// Kept alive for the whole process; never dropped (a static).
    _server: Option<EmbeddedPostgres>,
    /// URL of a database by name.
    url_template: UrlTemplate,
    template_db: String,
}

enum UrlTemplate {
    Embedded(String),
    External { base: String, query: String },
}

impl UrlTemplate {
    fn url(&self, db: &str) -> String {
        match self {
            UrlTemplate::Embedded(socket_dir) => {
                format!("postgres://postgres@/{db}?host={socket_dir}")
            }
            UrlTemplate::External { base, query } => format!("{base}/{db}{query}"),
        }
    }

    /// The URL the server under test connects with: the least-privileged
    /// `cellqc_app` role on the embedded cluster, so that every test runs
    /// with the rights production has. (An external `DATABASE_URL` is used
    /// as given.)
    fn app_url(&self, db: &str) -> String {
        match self {
            UrlTemplate::Embedded(socket_dir) => {
                format!("postgres://cellqc_app@/{db}?host={socket_dir}")
            }
            UrlTemplate::External { .. } => self.url(db),
        }
    }
}

/// Removes the directories of earlier test processes that no longer run.
fn remove_stale_test_dirs(parent: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("cellqc-test-") {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let template_db = format!("cellqc_template_{}", std::process::id());
        let (server, url_template) = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => {
                let (without_query, query) = match url.split_once('?') {
                    Some((a, q)) => (a.to_owned(), format!("?{q}")),
                    None => (url.clone(), String::new()),
                };
                let base = without_query
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .unwrap_or(without_query);
                (None, UrlTemplate::External { base, query })
            }
            _ => {
                let parent = std::env::temp_dir();
                remove_stale_test_dirs(&parent);
                let root: PathBuf = parent.join(format!("cellqc-test-{}", std::process::id()));
                let server = EmbeddedPostgres::start(&ClusterOptions {
                    root: root.clone(),
                    bindir: None,
                    durable: false,
                    statement_stats: true,
                    sizing: None,
                })
                .expect("start the test PostgreSQL cluster");
                let socket = root.canonicalize().unwrap().join("run");
                (
                    Some(server),
                    UrlTemplate::Embedded(socket.to_string_lossy().into_owned()),
                )
            }
        };
        let mut admin = PgConnection::establish(&url_template.url("postgres")).expect("connect");
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS {}",
            quote_ident(&template_db)
        ))
        .execute(&mut admin)
        .unwrap();
        diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(&template_db)))
            .execute(&mut admin)
            .unwrap();
        {
            let mut conn = PgConnection::establish(&url_template.url(&template_db)).unwrap();
            run_migrations(&mut conn).unwrap();
            // The migration creates the app role without a login; the
            // servers under test sign in with it.
            if matches!(url_template, UrlTemplate::Embedded(_)) {
                diesel::sql_query("ALTER ROLE cellqc_app LOGIN")
                    .execute(&mut conn)
                    .unwrap();
            }
            // Every test database can count the statements its requests send.
            diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&mut conn)
                .expect("pg_stat_statements (loaded by the test cluster; an external DATABASE_URL needs shared_preload_libraries=pg_stat_statements)");
        }
        Cluster {
            _server: server,
            url_template,
            template_db,
        }
    })
}

/// A fresh, migrated database of this test's own; returns its URL (as the
/// cluster's superuser) and the URL the server connects with (`cellqc_app`).
pub fn fresh_database_for_app() -> (String, String) {
    let url = fresh_database();
    let before_query = url.split('?').next().unwrap_or(&url);
    let name = before_query.rsplit_once('/').unwrap().1.to_owned();
    (url, cluster().url_template.app_url(&name))
}

/// A fresh, migrated database of this test's own; returns its URL.
pub fn fresh_database() -> String {
    let c = cluster();
    let name = format!("t_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(&c.url_template.url("postgres")).unwrap();
    diesel::sql_query(format!(
        "CREATE DATABASE {} TEMPLATE {} STRATEGY = FILE_COPY",
        quote_ident(&name),
        quote_ident(&c.template_db)
    ))
    .execute(&mut admin)
    .unwrap();
    c.url_template.url(&name)
}

/// A running cellqc on its own database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The database URL, as the cluster's superuser (the tests' own checks).
    pub db_url: String,
    /// The URL the server connects with (`cellqc_app`).
    pub app_url: String,
    /// A pool on the same database, for the tests' own checks.
    pub pool: DbPool,
    /// The data directory (generated secret, mail files).
    pub data_dir: tempfile::TempDir,
    client: awc::Client,
}

/// A response: status and JSON body (null when empty).
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: actix_web::http::header::HeaderMap,
}

impl Resp {
    /// The problem code of an error response.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    /// A server with the default settings.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A server with settings changed by `tweak`.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
        Self::spawn_with_urls(|s, _| tweak(s)).await
    }

    /// A server with settings changed by `tweak`, which also gets the
    /// superuser's URL of the server's fresh database.
    pub async fn spawn_with_urls(tweak: impl FnOnce(&mut Settings, &str)) -> TestApp {
        let (db_url, app_url) = fresh_database_for_app();
        let data_dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults(data_dir.path().to_path_buf());
        settings.database_url = Some(app_url.clone());
        settings.jwt_secret = Some(JWT_SECRET.to_owned());
        settings.login_rate_per_minute = 10_000;
        settings.db_pool_size = 4;
        settings.workers = Some(1);
        tweak(&mut settings, &db_url);
        let pool = build_pool(&db_url, 4).unwrap();
        let served = build_pool(
            settings.database_url.as_deref().unwrap_or(&app_url),
            settings.db_pool_size,
        )
        .unwrap();
        {
            let mut conn = served.get().unwrap();
            ensure_initial_admin(&mut conn, Some(ADMIN_PASSWORD)).unwrap();
        }
        let mut state = AppState::new(&settings, served).unwrap();
        if let Some(url) = settings.read_database_url.as_deref() {
            state = state.with_reads(cellqc::http::ReadDatabase::new(
                cellqc::db::pool::build_read_pool(url, 2),
            ));
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = build_server(state, listener, settings.workers).unwrap();
        actix_web::rt::spawn(server);
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            db_url,
            app_url,
            pool,
            data_dir,
            client: awc::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .finish(),
        }
    }

    /// A second server on the same database (another instance behind a
    /// load balancer): tokens of one are valid on the other.
    pub async fn another_instance(&self) -> TestApp {
        let data_dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults(data_dir.path().to_path_buf());
        // One site, one key: every instance seals and anchors with it.
        settings.anchor_key_file = Some(self.data_dir.path().join("anchor.key"));
        settings.database_url = Some(self.app_url.clone());
        settings.jwt_secret = Some(JWT_SECRET.to_owned());
        settings.login_rate_per_minute = 10_000;
        settings.db_pool_size = 8;
        settings.workers = Some(2);
        let pool = build_pool(&self.db_url, 4).unwrap();
        let served = build_pool(&self.app_url, settings.db_pool_size).unwrap();
        let state = AppState::new(&settings, served).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        actix_web::rt::spawn(build_server(state, listener, settings.workers).unwrap());
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            db_url: self.db_url.clone(),
            app_url: self.app_url.clone(),
            pool,
            data_dir,
            client: awc::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .finish(),
        }
    }

    /// The public half of the server's key (seals signatures, signs anchors).
    pub fn site_key(&self) -> cellqc::auth::anchor_key::PublicKey {
        cellqc::auth::anchor_key::AnchorKey::public_of(&self.data_dir.path().join("anchor.key"))
            .unwrap()
    }

    /// A direct database connection.
    /// The rows of `table` now.
    pub fn count(&self, table: &str) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let rows: Vec<N> = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .load(&mut self.conn())
            .unwrap();
        rows[0].n
    }

    pub fn conn(&self) -> cellqc::db::pool::DbConn {
        self.pool.get().unwrap()
    }

    pub async fn send(&self, req: awc::ClientRequest, body: Option<Vec<u8>>) -> Resp {
        let mut res = match body {
            Some(b) => req.send_body(b).await.unwrap(),
            None => req.send().await.unwrap(),
        };
        let bytes = res.body().limit(64 * 1024 * 1024).await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp {
            status: res.status(),
            body,
            headers: res.headers().clone(),
        }
    }

    pub fn request(&self, method: &str, path: &str, token: Option<&str>) -> awc::ClientRequest {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(t) = token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        req
    }

    /// A request with a raw body and content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        let req = self
            .request(method, path, token)
            .insert_header(("Content-Type", content_type.to_owned()));
        self.send(req, Some(body)).await
    }

    /// A request with a JSON body.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Value) -> Resp {
        let bytes = serde_json::to_vec(&body).unwrap();
        self.raw(method, path, token, "application/json", bytes)
            .await
    }

    /// A request with no body.
    pub async fn call_empty(&self, method: &str, path: &str, token: Option<&str>) -> Resp {
        self.send(self.request(method, path, token), None).await
    }

    /// GET.
    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call_empty("GET", path, Some(token)).await
    }

    /// GET of a file's bytes (a PDF, a CSV), asserting 200.
    pub async fn get_bytes(&self, path: &str, token: &str) -> Vec<u8> {
        let mut res = self.request("GET", path, Some(token)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.body().limit(64 * 1024 * 1024).await.unwrap().to_vec()
    }

    /// POST with JSON.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call("POST", path, Some(token), body).await
    }

    /// Signs in; returns the response.
    pub async fn try_login(&self, username: &str, password: &str) -> Resp {
        self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            json!({"username": username, "password": password}),
        )
        .await
    }

    /// Signs in; returns the token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self.try_login(username, password).await;
        assert_eq!(r.status, StatusCode::OK, "login of {username}: {}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// The first admin's token.
    pub async fn admin_token(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates a user with `roles`; returns (id, username).
    pub async fn user_with(&self, roles: &[&str]) -> (String, String) {
        let admin = self.admin_token().await;
        let username = format!(
            "{}-{}",
            roles.join("-"),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let r = self
            .post(
                "/api/v1/users",
                &admin,
                json!({
                    "username": username,
                    "full_name": format!("Test {username}"),
                    "email": format!("{username}@lab.example"),
                    "roles": roles,
                    "password": TEMPORARY_PASSWORD,
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        // The admin's password is temporary: the user chooses their own, as
        // a person does at first sign-in, before they can sign anything.
        let first = self.try_login(&username, TEMPORARY_PASSWORD).await;
        assert_eq!(
            first.body["password_change_required"], true,
            "{}",
            first.body
        );
        let token = first.body["access_token"].as_str().unwrap().to_owned();
        let changed = self
            .post(
                "/api/v1/auth/password",
                &token,
                json!({"current_password": TEMPORARY_PASSWORD, "new_password": USER_PASSWORD}),
            )
            .await;
        assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
        (r.body["id"].as_str().unwrap().to_owned(), username)
    }

    /// Creates a user with `roles` and signs them in; returns (id, token).
    pub async fn signed_in(&self, roles: &[&str]) -> (String, String) {
        let (id, username) = self.user_with(roles).await;
        let token = self.login(&username, USER_PASSWORD).await;
        (id, token)
    }

    /// The statements PostgreSQL received on this test's database while
    /// `during` ran, as (statement, calls), most frequent first. The
    /// statistics are PostgreSQL's own (pg_stat_statements), so what is
    /// counted is every round trip, transaction control included (and not
    /// the statements triggers run inside them, nor the commit-time checks,
    /// which name the row they check as `NEW`).
    pub async fn statements_during<F: std::future::Future<Output = ()>>(
        &self,
        during: F,
    ) -> Vec<(String, i64)> {
        use diesel::prelude::*;
        use diesel::sql_types::{BigInt, Text};
        #[derive(QueryableByName)]
        struct Stat {
            #[diesel(sql_type = Text)]
            query: String,
            #[diesel(sql_type = BigInt)]
            calls: i64,
        }
        const OWN_DB: &str = "(SELECT oid FROM pg_database WHERE datname = current_database())";
        // A connection of its own, opened before the count starts: its set-up
        // statements and the pool's checks are not the request's.
        let mut own = PgConnection::establish(&self.db_url).unwrap();
        diesel::sql_query(format!("SELECT pg_stat_statements_reset(0, {OWN_DB}, 0)"))
            .execute(&mut own)
            .unwrap();
        during.await;
        let stats: Vec<Stat> = diesel::sql_query(format!(
            "SELECT query, calls FROM pg_stat_statements WHERE dbid = {OWN_DB} \
               AND toplevel AND query NOT LIKE '%NEW.%' \
               AND query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC, query"
        ))
        .load(&mut own)
        .unwrap();
        stats.into_iter().map(|s| (s.query, s.calls)).collect()
    }

    /// Audit entries with `action`, oldest first.
    pub fn audit_actions(&self, action: &str) -> Vec<(Option<Uuid>, Option<Value>)> {
        use cellqc::db::schema::audit_entries::dsl as a;
        use diesel::prelude::*;
        a::audit_entries
            .filter(a::action.eq(action))
            .order(a::id)
            .select((a::entity_id, a::after))
            .load(&mut self.conn())
            .unwrap()
    }
}

//! Least privilege in the database (ARCHITECTURE "Database roles"): the
//! server's role reads and appends, and can't rewrite, remove or silence the
//! trail; migrations run as the schema's owner; a data directory of the first
//! version is taken over by the owner when it is upgraded.

use crate::lab::Lab;
use crate::support::TestApp;
use actix_web::http::StatusCode;
use cellqc::database::Database;
use cellqc::db::MIGRATIONS;
use cellqc::db::embedded::{ClusterOptions, EmbeddedPostgres};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_migrations::MigrationHarness;
use serde_json::json;

fn refused(conn: &mut PgConnection, sql: &str) -> String {
    let outcome = conn.transaction::<(), diesel::result::Error, _>(|c| {
        c.batch_execute(sql)?;
        Ok(())
    });
    match outcome {
        Ok(()) => panic!("`{sql}` was allowed to the app role"),
        Err(e) => e.to_string(),
    }
}

#[actix_web::test]
async fn the_app_role_can_neither_rewrite_nor_remove_nor_silence_the_trail() {
    let lab = Lab::msc().await;
    let batch = lab.batch("ROLE-1").await;
    lab.recorded(&batch, "VIAB", json!("91.0")).await;
    let mut app = PgConnection::establish(&lab.app.app_url).unwrap();
    let who: String = diesel::select(diesel::dsl::sql::<Text>("current_user::text"))
        .get_result(&mut app)
        .unwrap();
    assert_eq!(
        who, "cellqc_app",
        "the server under test connects as the app role"
    );

    for (sql, expect) in [
        (
            "UPDATE audit_entries SET reason = 'rewritten'",
            "permission denied",
        ),
        ("DELETE FROM audit_entries", "permission denied"),
        ("TRUNCATE audit_entries", "permission denied"),
        (
            "UPDATE results SET value_text = '99.9'",
            "permission denied",
        ),
        ("DELETE FROM signatures", "permission denied"),
        ("TRUNCATE custody_events", "permission denied"),
        ("DELETE FROM results_awaiting_review", "permission denied"),
        (
            "ALTER TABLE audit_entries DISABLE TRIGGER USER",
            "must be owner",
        ),
        ("ALTER TABLE results DISABLE TRIGGER ALL", "must be owner"),
        (
            "SET session_replication_role = replica",
            "permission denied",
        ),
        ("CREATE TABLE shadow (v int)", "permission denied"),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "permission denied",
        ),
        ("DROP TABLE audit_entries", "must be owner"),
        (
            "UPDATE audit_chain_heads SET seq = seq - 1 WHERE seq > 1",
            "moves forward by one entry only",
        ),
        (
            "UPDATE audit_chain_heads SET seq = seq + 2",
            "moves forward by one entry only",
        ),
        ("DELETE FROM audit_chain_heads", "permission denied"),
    ] {
        let e = refused(&mut app, sql);
        assert!(e.contains(expect), "`{sql}`: {e}");
    }

    // What it holds, table by table: SELECT and INSERT on the records,
    // UPDATE on state only, nothing else anywhere.
    #[derive(QueryableByName, Debug)]
    struct Grant {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        privilege_type: String,
    }
    let grants: Vec<Grant> = diesel::sql_query(
        "SELECT table_name::text, privilege_type::text FROM information_schema.role_table_grants \
         WHERE grantee = 'cellqc_app' ORDER BY 1, 2",
    )
    .load(&mut lab.app.conn())
    .unwrap();
    let mutable = [
        "audit_chain_heads",
        "batches",
        "deviations",
        "email_outbox",
        "idempotency_keys",
        // QA replaces and retires a saved mapping; a trigger keeps its
        // product and creation, and a retired one as it was.
        "import_mappings",
        "material_lots",
        "qualifications",
        "sessions",
        // Sign-in guesses per account and address: state, not record.
        "sign_in_throttle",
        "specifications",
        "users",
    ];
    for g in &grants {
        match g.privilege_type.as_str() {
            "SELECT" => {}
            "INSERT" => assert!(
                !["results_awaiting_review", "__diesel_schema_migrations"]
                    .contains(&g.table_name.as_str()),
                "{g:?}"
            ),
            "UPDATE" => assert!(mutable.contains(&g.table_name.as_str()), "{g:?}"),
            other => panic!("the app role holds {other} on {}", g.table_name),
        }
    }
    let updatable: Vec<&str> = grants
        .iter()
        .filter(|g| g.privilege_type == "UPDATE")
        .map(|g| g.table_name.as_str())
        .collect();
    assert_eq!(updatable, mutable);
    #[derive(QueryableByName, Debug, PartialEq)]
    struct ColumnGrant {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Text)]
        privilege_type: String,
    }
    let columns: Vec<ColumnGrant> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, privilege_type::text          FROM information_schema.role_column_grants c WHERE grantee = 'cellqc_app'          AND NOT EXISTS (SELECT FROM information_schema.role_table_grants t WHERE t.grantee = c.grantee              AND t.table_name = c.table_name AND t.privilege_type = c.privilege_type)",
    )
    .load(&mut lab.app.conn())
    .unwrap();
    // Only row locks: an approval's of its product, a result's and a
    // calibration's of the instrument; neither row ever changes.
    let lock = |table: &str| ColumnGrant {
        table_name: table.into(),
        column_name: "id".into(),
        privilege_type: "UPDATE".into(),
    };
    let mut columns = columns;
    columns.sort_by(|a, b| a.table_name.cmp(&b.table_name));
    assert_eq!(columns, [lock("instruments"), lock("products")]);
    for table in ["products", "instruments"] {
        let e = refused(&mut app, &format!("UPDATE {table} SET id = id"));
        assert!(e.contains("is refused"), "{table}: {e}");
    }

    // The server says so; a server on a superuser says that it could.
    let ready = lab.app.call("GET", "/readyz", None, json!(null)).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["database_role"]["role"], "cellqc_app");
    assert_eq!(ready.body["database_role"]["can_rewrite_trail"], false);
    let db_url = lab.app.db_url.clone();
    let superuser = TestApp::spawn_with(move |s| s.database_url = Some(db_url)).await;
    let ready = superuser.call("GET", "/readyz", None, json!(null)).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["database_role"]["can_rewrite_trail"], true);
    let risks = ready.body["database_role"]["risks"].to_string();
    assert!(risks.contains("superuser"), "{risks}");
}

#[derive(QueryableByName)]
struct Owned {
    #[diesel(sql_type = Text)]
    owner: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

#[test]
fn a_first_version_data_directory_is_taken_over_by_the_owner_when_upgraded() {
    let dir = tempfile::Builder::new()
        .prefix("cellqc-roles")
        .tempdir_in("/tmp")
        .unwrap();
    // The first version: migrations 1 to 7, run by the cluster's superuser,
    // which owned everything and served.
    {
        let pg = EmbeddedPostgres::start(&ClusterOptions {
            root: dir.path().to_path_buf(),
            bindir: None,
            durable: false,
            statement_stats: false,
            sizing: None,
        })
        .unwrap();
        pg.ensure_database("cellqc").unwrap();
        let mut c = PgConnection::establish(&pg.database_url("cellqc")).unwrap();
        let mut all =
            diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS).unwrap();
        all.sort_by_key(|m| m.name().to_string());
        // Creates diesel's own table of applied migrations.
        assert!(c.has_pending_migration(MIGRATIONS).unwrap());
        for m in all.iter().take(FIRST_VERSION_MIGRATIONS) {
            c.run_migration(&**m).unwrap();
        }
        c.batch_execute(
            "INSERT INTO users (id, username, full_name, email, roles, password_hash) \
             VALUES (gen_random_uuid(), 'legacy', 'Legacy User', 'l@lab.example', '{qa}', '$argon2id$v=19$x')",
        )
        .unwrap();
        pg.stop().unwrap();
    }
    // This version opens it: the roles are made, the owner adopts the
    // schema and migrates, and the app role reads what was there.
    let mut settings = cellqc::config::Settings::defaults(dir.path().to_path_buf());
    settings.database_url = None;
    let db = Database::open(&settings).unwrap();
    let applied = cellqc::db::run_migrations(&mut db.connect_owner().unwrap()).unwrap();
    let total = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .unwrap()
        .len();
    assert_eq!(applied, total - FIRST_VERSION_MIGRATIONS);
    let mut app = db.connect().unwrap();
    let owners: Vec<Owned> = diesel::sql_query(
        "SELECT pg_get_userbyid(c.relowner)::text AS owner, count(*) AS n FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind = 'r' GROUP BY 1",
    )
    .load(&mut app)
    .unwrap();
    assert_eq!(owners.len(), 1, "one owner");
    assert_eq!(owners[0].owner, "cellqc_owner");
    assert!(owners[0].n >= 15);
    let legacy: i64 = diesel::sql_query(
        "SELECT count(*) AS n, 'x'::text AS owner FROM users WHERE username = 'legacy'",
    )
    .get_result::<Owned>(&mut app)
    .unwrap()
    .n;
    assert_eq!(
        legacy, 1,
        "the first version's rows are read by the app role"
    );
    let check = cellqc::db::roles::check(&mut app).unwrap();
    assert_eq!(check.role, "cellqc_app");
    assert!(!check.can_rewrite_trail, "{:?}", check.risks);
    let owner_is_plain: Flag = diesel::sql_query(
        "SELECT NOT (rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls) AS flag \
         FROM pg_roles WHERE rolname = 'cellqc_owner'",
    )
    .get_result(&mut app)
    .unwrap();
    assert!(owner_is_plain.flag, "the owner holds no special attribute");
    let e = refused(&mut app, "DELETE FROM users");
    assert!(e.contains("permission denied"), "{e}");
    drop(app);
    db.close().unwrap();
}

/// The first version's migrations.
const FIRST_VERSION_MIGRATIONS: usize = 7;

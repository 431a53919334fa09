//! The embedded private cluster: data survives a restart, a stale
//! postmaster.pid from a crash is handled, nothing keeps running after stop.

use cellqc::db::embedded::{ClusterOptions, EmbeddedPostgres};
use diesel::{Connection, PgConnection, RunQueryDsl};

#[test]
fn data_survives_a_restart_and_a_stale_pid_file_is_removed() {
    let dir = tempfile::Builder::new()
        .prefix("cellqc-emb")
        .tempdir_in("/tmp")
        .unwrap();
    let opts = ClusterOptions {
        root: dir.path().to_path_buf(),
        bindir: None,
        durable: false,
        statement_stats: false,
    };
    let pg = EmbeddedPostgres::start(&opts).unwrap();
    pg.ensure_database("keep").unwrap();
    let url = pg.database_url("keep");
    {
        let mut c = PgConnection::establish(&url).unwrap();
        diesel::sql_query("CREATE TABLE kept (v int)")
            .execute(&mut c)
            .unwrap();
        diesel::sql_query("INSERT INTO kept VALUES (42)")
            .execute(&mut c)
            .unwrap();
    }
    pg.stop().unwrap();

    // A crash leaves postmaster.pid behind, naming a process that is gone.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let pgdata = dir.path().join("pg");
    std::fs::write(
        pgdata.join("postmaster.pid"),
        format!("{dead_pid}\n{}\n", pgdata.canonicalize().unwrap().display()),
    )
    .unwrap();

    let pg = EmbeddedPostgres::start(&opts).unwrap();
    let mut c = PgConnection::establish(&pg.database_url("keep")).unwrap();
    #[derive(diesel::QueryableByName)]
    struct V {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        v: i32,
    }
    let rows: Vec<V> = diesel::sql_query("SELECT v FROM kept")
        .load(&mut c)
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].v, 42);
    drop(c);
    let pidfile = pgdata.join("postmaster.pid");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    pg.stop().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "postgres stopped"
    );
    assert!(!pidfile.exists());
}

#[test]
fn missing_binaries_are_one_clear_error() {
    let err =
        cellqc::db::embedded::find_bindir(Some(std::path::Path::new("/nonexistent"))).unwrap_err();
    assert!(err.to_string().contains("CELLQC_PG_BINDIR"), "{err}");
}

//! The embedded private cluster: data survives a restart, a stale
//! postmaster.pid from a crash is handled, nothing keeps running after stop.

use cellqc::db::embedded::{ClusterOptions, EmbeddedPostgres, ServerSizing, SizingOverrides};
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
        sizing: None,
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

#[test]
fn the_server_runs_with_the_sizing_of_the_machine_and_its_overrides() {
    let dir = tempfile::Builder::new()
        .prefix("cellqc-size")
        .tempdir_in("/tmp")
        .unwrap();
    let machine = ServerSizing::for_machine(&SizingOverrides::default()).unwrap();
    // The test keeps shared memory small; everything else is the machine's.
    let sizing = ServerSizing::for_machine(&SizingOverrides {
        shared_buffers: Some("96MB".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(sizing.effective_cache_size, machine.effective_cache_size);
    assert_eq!(sizing.max_wal_size, machine.max_wal_size);
    let pg = EmbeddedPostgres::start(&ClusterOptions {
        root: dir.path().to_path_buf(),
        bindir: None,
        durable: false,
        statement_stats: false,
        sizing: Some(sizing.clone()),
    })
    .unwrap();
    let mut c = PgConnection::establish(&pg.database_url("postgres")).unwrap();
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        setting: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        unit: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Text)]
        source: String,
    }
    let rows: Vec<Setting> = diesel::sql_query(
        "SELECT name, setting, unit, source FROM pg_settings WHERE name = ANY \
         (ARRAY['shared_buffers','effective_cache_size','wal_compression','checkpoint_timeout','max_wal_size']) \
         ORDER BY name",
    )
    .load(&mut c)
    .unwrap();
    assert_eq!(rows.len(), 5);
    let mb = |s: &Setting| -> u64 {
        let n: u64 = s.setting.parse().unwrap();
        match s.unit.as_deref() {
            Some("8kB") => n * 8 / 1024,
            Some("MB") => n,
            other => panic!("unit {other:?} of {}", s.name),
        }
    };
    let given_mb = |v: &str| -> u64 { v.trim_end_matches("MB").parse().unwrap() };
    for row in &rows {
        assert_eq!(row.source, "command line", "{}", row.name);
        match row.name.as_str() {
            "shared_buffers" => assert_eq!(mb(row), 96),
            "effective_cache_size" => assert_eq!(mb(row), given_mb(&sizing.effective_cache_size)),
            "max_wal_size" => assert_eq!(mb(row), given_mb(&sizing.max_wal_size)),
            // `on` is pglz from PostgreSQL 15 on.
            "wal_compression" => assert!(
                matches!(row.setting.as_str(), "on" | "pglz"),
                "{}",
                row.setting
            ),
            "checkpoint_timeout" => assert_eq!(row.setting, "900"),
            other => panic!("{other}"),
        }
    }
    drop(c);
    pg.stop().unwrap();
}

#[test]
fn a_sizing_override_that_is_not_a_setting_value_is_refused() {
    let err = ServerSizing::for_machine(&SizingOverrides {
        max_wal_size: Some("4GB -c fsync=off".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("max_wal_size"), "{err}");
}

//! The embedded default: a private PostgreSQL cluster under the data
//! directory, started from the server binaries found on the machine.
//!
//! - Binaries: `CELLQC_PG_BINDIR`, then `PATH`, then `pg_config --bindir`,
//!   then the newest `/usr/lib/postgresql/*/bin`.
//! - Layout: `<data>/pg` (the cluster), `<data>/run` (the Unix socket; no TCP
//!   listener), `<data>/postgres.log`.
//! - PostgreSQL refuses to run as root, so as root the cluster belongs to the
//!   `postgres` system user and the server runs as that user.
//! - The server is a child of a supervisor thread that lives exactly as long
//!   as it runs. It gets SIGINT (fast shutdown) if cellqc dies without stopping
//!   it (parent-death signal), so a killed cellqc leaves no server behind; a
//!   stale `postmaster.pid` left by a crash is removed before starting.

use anyhow::{Context, bail};
use diesel::{Connection, PgConnection, RunQueryDsl};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid, User};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the cluster is set up.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Directory that holds `pg/`, `run/` and `postgres.log`.
    pub root: PathBuf,
    /// Explicit directory of `initdb` and `postgres`.
    pub bindir: Option<PathBuf>,
    /// fsync on (production) or off (throw-away test clusters only).
    pub durable: bool,
    /// Load `pg_stat_statements`, so a test can count the statements a
    /// request sends (the round trips of a use case).
    pub statement_stats: bool,
    /// Memory and WAL settings given to the server at every start; `None`
    /// keeps PostgreSQL's defaults (throw-away test clusters).
    pub sizing: Option<ServerSizing>,
}

/// The memory and WAL settings of the embedded server, sized from the
/// machine's memory (PostgreSQL's own advice: `shared_buffers` about a
/// quarter of RAM, `effective_cache_size` what the kernel can cache besides).
/// They are given on the server's command line at every start, so a
/// machine with more memory, or a changed override, takes effect at the
/// next start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSizing {
    /// `shared_buffers`, e.g. `6144MB`.
    pub shared_buffers: String,
    /// `effective_cache_size`, e.g. `18432MB`.
    pub effective_cache_size: String,
    /// `wal_compression`: `on` compresses full-page images in the WAL.
    pub wal_compression: String,
    /// `checkpoint_timeout`: the longest time between checkpoints.
    pub checkpoint_timeout: String,
    /// `max_wal_size`: the WAL written before a checkpoint is forced.
    pub max_wal_size: String,
}

/// What the machine's memory makes of each setting; an override replaces
/// one, given in PostgreSQL's own units (`8GB`, `30min`).
#[derive(Debug, Clone, Default)]
pub struct SizingOverrides {
    pub shared_buffers: Option<String>,
    pub effective_cache_size: Option<String>,
    pub wal_compression: Option<String>,
    pub checkpoint_timeout: Option<String>,
    pub max_wal_size: Option<String>,
}

const MIB: u64 = 1024 * 1024;

impl ServerSizing {
    /// The settings for a machine with `memory` bytes: shared_buffers a
    /// quarter (at least 128 MB), effective_cache_size three quarters,
    /// WAL compression on, a checkpoint at most every 15 minutes or after
    /// an eighth of memory in WAL (1 to 16 GB), so that a bulk load does
    /// not checkpoint every few seconds.
    pub fn for_memory(memory: u64) -> Self {
        let mb = |bytes: u64| format!("{}MB", bytes / MIB);
        ServerSizing {
            shared_buffers: mb((memory / 4).max(128 * MIB)),
            effective_cache_size: mb((memory / 4 * 3).max(512 * MIB)),
            wal_compression: "on".to_owned(),
            checkpoint_timeout: "15min".to_owned(),
            max_wal_size: mb((memory / 8).clamp(1024 * MIB, 16 * 1024 * MIB)),
        }
    }

    /// The machine's settings with `overrides` applied; an override that
    /// is not a plain PostgreSQL value (a word, a number with a unit) is
    /// refused before the server sees it.
    pub fn for_machine(overrides: &SizingOverrides) -> anyhow::Result<Self> {
        let mut s = Self::for_memory(machine_memory());
        for (name, slot, given) in [
            (
                "shared_buffers",
                &mut s.shared_buffers,
                &overrides.shared_buffers,
            ),
            (
                "effective_cache_size",
                &mut s.effective_cache_size,
                &overrides.effective_cache_size,
            ),
            (
                "wal_compression",
                &mut s.wal_compression,
                &overrides.wal_compression,
            ),
            (
                "checkpoint_timeout",
                &mut s.checkpoint_timeout,
                &overrides.checkpoint_timeout,
            ),
            ("max_wal_size", &mut s.max_wal_size, &overrides.max_wal_size),
        ] {
            let Some(value) = given.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
                continue;
            };
            if value.len() > 32 || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                bail!("{name} = {value:?} is not a PostgreSQL setting value (e.g. 8GB, 30min, on)");
            }
            value.clone_into(slot);
        }
        Ok(s)
    }

    /// The settings as `name=value` pairs, in the order given to the server.
    pub fn pairs(&self) -> [(&'static str, &str); 5] {
        [
            ("shared_buffers", &self.shared_buffers),
            ("effective_cache_size", &self.effective_cache_size),
            ("wal_compression", &self.wal_compression),
            ("checkpoint_timeout", &self.checkpoint_timeout),
            ("max_wal_size", &self.max_wal_size),
        ]
    }
}

/// The memory this process may use: the machine's (`MemTotal`), or the
/// container's limit (cgroup v2 `memory.max`, v1 `limit_in_bytes`) when
/// that is lower. 1 GiB when neither can be read.
pub fn machine_memory() -> u64 {
    let total = fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let limit = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|p| fs::read_to_string(p).ok()?.trim().parse::<u64>().ok());
    match (total, limit) {
        (Some(t), Some(l)) => t.min(l),
        (Some(t), None) => t,
        (None, Some(l)) => l,
        (None, None) => 1024 * MIB,
    }
}

/// A running private PostgreSQL server.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    pid: Pid,
    socket_dir: PathBuf,
    supervisor: Option<JoinHandle<std::io::Result<ExitStatus>>>,
}

const SUPERUSER: &str = "postgres";

impl EmbeddedPostgres {
    /// Initialises the cluster on first use and starts the server; returns
    /// once it accepts connections.
    pub fn start(opts: &ClusterOptions) -> anyhow::Result<Self> {
        let bindir = find_bindir(opts.bindir.as_deref())?;
        let owner = cluster_owner()?;
        fs::create_dir_all(&opts.root)
            .with_context(|| format!("creating data directory {}", opts.root.display()))?;
        let root = opts.root.canonicalize()?;
        let pgdata = root.join("pg");
        let socket_dir = root.join("run");
        prepare_dirs(&root, &pgdata, &socket_dir, owner.as_ref())?;
        check_reachable(&bindir, &socket_dir, owner.as_ref())?;
        if !pgdata.join("PG_VERSION").exists() {
            init_cluster(&bindir, &pgdata, owner.as_ref(), opts.durable)?;
        }
        remove_stale_pid(&pgdata)?;
        let log_path = root.join("postgres.log");
        let (pid, supervisor, exited) = spawn_server(
            &bindir,
            &pgdata,
            &socket_dir,
            &log_path,
            owner.as_ref(),
            opts,
        )?;
        let server = EmbeddedPostgres {
            pid,
            socket_dir,
            supervisor: Some(supervisor),
        };
        server.wait_ready(&exited, &log_path)?;
        Ok(server)
    }

    /// Connection URL of database `db` over the private socket, as the
    /// cluster's superuser.
    pub fn database_url(&self, db: &str) -> String {
        self.database_url_as(SUPERUSER, db)
    }

    /// Connection URL of database `db` over the private socket, as `role`.
    pub fn database_url_as(&self, role: &str, db: &str) -> String {
        socket_url(&self.socket_dir, role, db)
    }

    /// The socket directory of a cluster under `root` that another process
    /// (a running `cellqc serve`) has started, if one runs.
    pub fn running_socket(root: &Path) -> Option<PathBuf> {
        let root = root.canonicalize().ok()?;
        live_postmaster(&root.join("pg")).map(|_| root.join("run"))
    }

    /// Creates database `db` unless it exists.
    pub fn ensure_database(&self, db: &str) -> anyhow::Result<()> {
        ensure_database(&self.database_url("postgres"), db)
    }

    /// Fast shutdown (SIGINT) and wait for the server to exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> anyhow::Result<()> {
        let Some(handle) = self.supervisor.take() else {
            return Ok(());
        };
        // ESRCH: it already exited; joining below reports how.
        let _ = kill(self.pid, Signal::SIGINT);
        match handle.join() {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => bail!("PostgreSQL exited with {status}"),
            Ok(Err(e)) => Err(e).context("waiting for PostgreSQL to stop"),
            Err(_) => bail!("the PostgreSQL supervisor thread panicked"),
        }
    }

    fn wait_ready(&self, exited: &mpsc::Receiver<()>, log: &Path) -> anyhow::Result<()> {
        let url = self.database_url("postgres");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if exited.try_recv().is_ok() {
                bail!(
                    "PostgreSQL exited during start-up; its log ({}) ends with:\n{}",
                    log.display(),
                    log_tail(log)
                );
            }
            if PgConnection::establish(&url).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "PostgreSQL did not accept connections within 60 s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            tracing::warn!(error = %e, "stopping the embedded PostgreSQL");
        }
    }
}

/// Creates database `db` through the maintenance database at `admin_url`.
pub fn ensure_database(admin_url: &str, db: &str) -> anyhow::Result<()> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        #[expect(dead_code, reason = "only the row's presence matters")]
        one: i32,
    }
    let mut conn = PgConnection::establish(admin_url).context("connecting to PostgreSQL")?;
    let found: Vec<Found> =
        diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(db)
            .load(&mut conn)?;
    if found.is_empty() {
        diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(db))).execute(&mut conn)?;
    }
    Ok(())
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("postgres").is_file()
}

/// Finds the directory holding `initdb` and `postgres`.
pub fn find_bindir(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        if has_server_binaries(dir) {
            return Ok(dir.to_path_buf());
        }
        bail!(
            "CELLQC_PG_BINDIR={} holds no initdb and postgres binaries",
            dir.display()
        );
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_server_binaries(&dir) {
                // Through the symlink to the real directory, where `postgres`
                // finds its share/ and lib/ files.
                let real = dir.join("postgres").canonicalize()?;
                return Ok(real.parent().map_or(dir, Path::to_path_buf));
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server_binaries(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_server_binaries(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    bail!(
        "no PostgreSQL server binaries (initdb, postgres) found: install them \
         (Debian/Ubuntu: apt-get install postgresql), set CELLQC_PG_BINDIR to their \
         directory, or set DATABASE_URL to use an existing server"
    )
}

/// The system user the cluster runs as: none (the current user) unless root.
fn cluster_owner() -> anyhow::Result<Option<User>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name(SUPERUSER)? {
        Some(user) => Ok(Some(user)),
        None => bail!(
            "running as root, the embedded PostgreSQL must run as the `postgres` system user, \
             which does not exist: install PostgreSQL's server package (it creates the user), \
             run cellqc as an ordinary user, or set DATABASE_URL"
        ),
    }
}

fn prepare_dirs(
    root: &Path,
    pgdata: &Path,
    socket_dir: &Path,
    owner: Option<&User>,
) -> anyhow::Result<()> {
    // As root the data directory stays root's, but the postgres user must be
    // able to pass through it (0711: enter, not list).
    let root_mode = if owner.is_some() { 0o711 } else { 0o700 };
    fs::set_permissions(root, fs::Permissions::from_mode(root_mode))?;
    for dir in [pgdata, socket_dir] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some(user) = owner {
            chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .with_context(|| format!("giving {} to the postgres user", dir.display()))?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Fails clearly when the server's user cannot reach the directory (for
/// example a data directory under root's home, mode 0700).
fn check_reachable(bindir: &Path, socket_dir: &Path, owner: Option<&User>) -> anyhow::Result<()> {
    let Some(user) = owner else { return Ok(()) };
    let status = Command::new(bindir.join("postgres"))
        .arg("--version")
        .current_dir(socket_dir)
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .stdout(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => bail!(
            "the postgres system user cannot reach {}: set CELLQC_DATA_DIR to a directory \
             outside any private (mode 0700) directory, such as /var/lib/cellqc",
            socket_dir.display()
        ),
    }
}

fn as_owner(cmd: &mut Command, owner: Option<&User>) {
    if let Some(user) = owner {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        // Run with the postgres user's own HOME, not root's.
        cmd.env("HOME", &user.dir);
    }
}

fn init_cluster(
    bindir: &Path,
    pgdata: &Path,
    owner: Option<&User>,
    durable: bool,
) -> anyhow::Result<()> {
    if fs::read_dir(pgdata)?.next().is_some() {
        bail!(
            "{} is not empty but holds no PostgreSQL cluster: move it away or choose another CELLQC_DATA_DIR",
            pgdata.display()
        );
    }
    let mut cmd = Command::new(bindir.join("initdb"));
    cmd.arg("-D")
        .arg(pgdata)
        .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"]);
    if !durable {
        cmd.arg("--no-sync");
    }
    as_owner(&mut cmd, owner);
    let out = cmd.output().context("running initdb")?;
    if !out.status.success() {
        bail!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A `postmaster.pid` whose process is gone (a crash, a reboot) would stop
/// PostgreSQL from starting if its pid now belongs to another process.
/// Connection URL of database `db` over the socket in `socket_dir`, as `role`.
pub fn socket_url(socket_dir: &Path, role: &str, db: &str) -> String {
    format!(
        "postgres://{role}@/{db}?host={}",
        percent_encode(&socket_dir.to_string_lossy())
    )
}

/// The pid of the postmaster running on `pgdata`, from its postmaster.pid,
/// when that process is alive and is PostgreSQL on this directory.
fn live_postmaster(pgdata: &Path) -> Option<i32> {
    let text = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid = text.lines().next()?.trim().parse::<i32>().ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let is_postgres = String::from_utf8_lossy(&cmdline).contains("postgres");
    let data_dir = text.lines().nth(1).map(str::trim).unwrap_or_default();
    (is_postgres && Path::new(data_dir) == pgdata).then_some(pid)
}

fn remove_stale_pid(pgdata: &Path) -> anyhow::Result<()> {
    let pidfile = pgdata.join("postmaster.pid");
    if !pidfile.exists() {
        return Ok(());
    }
    if let Some(pid) = live_postmaster(pgdata) {
        bail!(
            "PostgreSQL is already running on {} (pid {pid}): is another cellqc using this data directory?",
            pgdata.display()
        );
    }
    tracing::warn!(file = %pidfile.display(), "removing a stale postmaster.pid left by a crash");
    fs::remove_file(&pidfile)?;
    Ok(())
}

type Spawned = (
    Pid,
    JoinHandle<std::io::Result<ExitStatus>>,
    mpsc::Receiver<()>,
);

fn spawn_server(
    bindir: &Path,
    pgdata: &Path,
    socket_dir: &Path,
    log_path: &Path,
    owner: Option<&User>,
    opts: &ClusterOptions,
) -> anyhow::Result<Spawned> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut cmd = Command::new(bindir.join("postgres"));
    cmd.arg("-D").arg(pgdata).arg("-k").arg(socket_dir).args([
        "-c",
        "listen_addresses=",
        "-c",
        "unix_socket_permissions=0700",
    ]);
    if opts.statement_stats {
        cmd.args(["-c", "shared_preload_libraries=pg_stat_statements"]);
    }
    if let Some(sizing) = &opts.sizing {
        for (name, value) in sizing.pairs() {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        tracing::info!(?sizing, "embedded PostgreSQL sized for the machine");
    }
    if opts.durable {
        cmd.args(["-c", "fsync=on"]);
    } else {
        // Throw-away test clusters: durability buys nothing there.
        cmd.args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=1000",
        ]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        // Its own process group: a Ctrl-C at the terminal reaches cellqc,
        // which then stops PostgreSQL in order, after the HTTP server.
        .process_group(0);
    as_owner(&mut cmd, owner);
    set_parent_death_signal(&mut cmd);

    let (pid_tx, pid_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel();
    // The spawning thread is the server's parent for the parent-death signal,
    // so it must live exactly as long as the server: it waits on it.
    let supervisor = std::thread::Builder::new()
        .name("postgres-supervisor".into())
        .spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = pid_tx.send(Err(e));
                    return Err(std::io::Error::other("spawn failed"));
                }
            };
            let _ = pid_tx.send(Ok(child.id()));
            let status = child.wait();
            let _ = exit_tx.send(());
            status
        })?;
    let pid = pid_rx
        .recv()
        .context("the PostgreSQL supervisor thread ended early")?
        .context("starting postgres")?;
    let pid = Pid::from_raw(i32::try_from(pid)?);
    Ok((pid, supervisor, exit_rx))
}

#[expect(
    unsafe_code,
    reason = "pre_exec runs between fork and exec; it only calls prctl"
)]
fn set_parent_death_signal(cmd: &mut Command) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no
    // memory of the parent. It runs after the uid change, which would
    // otherwise clear it.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)
        });
    }
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(10);
    lines.get(from..).unwrap_or_default().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_24_gib_machine_gets_a_quarter_for_buffers_and_three_quarters_for_the_cache() {
        let s = ServerSizing::for_memory(24 * 1024 * MIB);
        assert_eq!(s.shared_buffers, "6144MB");
        assert_eq!(s.effective_cache_size, "18432MB");
        assert_eq!(s.max_wal_size, "3072MB");
        assert_eq!(s.checkpoint_timeout, "15min");
        assert_eq!(s.wal_compression, "on");
        // A small machine keeps PostgreSQL's floor; a large one's WAL is capped.
        assert_eq!(ServerSizing::for_memory(256 * MIB).shared_buffers, "128MB");
        assert_eq!(
            ServerSizing::for_memory(512 * 1024 * MIB).max_wal_size,
            "16384MB"
        );
    }

    #[test]
    fn the_machine_has_memory() {
        assert!(machine_memory() >= 256 * MIB);
    }
}

//! The store the black-box tests run on: SQLite files (the default), or
//! PostgreSQL when `TEST_STORE=postgres`: `TEST_POSTGRES_URL` (a server's
//! URL without a database) if given, otherwise one throw-away cluster per
//! test binary, started on first use (initdb in a temporary directory,
//! fsync off, a Unix socket and 127.0.0.1 on a free port). `pg_ctl stop`
//! runs when the binary exits: a watcher shell waits for the end of a pipe
//! only this process holds, so no postgres is left behind even on a panic.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Whether the tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("TEST_STORE").is_ok_and(|s| s == "postgres")
}

/// Whether PostgreSQL is there to test on, whatever `TEST_STORE` says (for
/// what only several replicas show); a missing one fails under `CI=true`,
/// else the caller skips with a message.
pub fn available() -> bool {
    if std::env::var_os("TEST_POSTGRES_URL").is_some() || bindir().is_some() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: the replica tests need PostgreSQL (apt install postgresql)"
    );
    eprintln!("skipped: the replica tests need PostgreSQL's server programs (initdb)");
    false
}

/// A server to make databases on: `postgres://…` without a database name.
struct Server {
    base_url: String,
    bindir: PathBuf,
    host: String,
    port: u16,
    /// The watcher's stdin; dropped only when the process exits.
    _watcher: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// The directory of PostgreSQL's server programs, if installed.
pub fn bindir() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    versions.sort();
    from_pg_config
        .into_iter()
        .chain(versions.into_iter().rev())
        .find(|dir| dir.join("initdb").is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Run `program` as the `postgres` user when we are root (initdb refuses
/// root), as ourselves otherwise.
fn as_cluster_owner(program: &Path) -> Command {
    if rustix::process::geteuid().is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn start_cluster() -> Server {
    let bindir =
        bindir().expect("TEST_STORE=postgres needs PostgreSQL's initdb (apt install postgresql)");
    let dir = tempfile::Builder::new()
        .prefix("sb-pg")
        .tempdir_in("/tmp")
        .expect("a temp dir");
    if rustix::process::geteuid().is_root() {
        let status = Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "chown the cluster directory"
        );
    }
    let data = dir.path().join("data");
    let out = as_cluster_owner(&bindir.join("initdb"))
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
        .arg(&data)
        .output()
        .expect("initdb runs");
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let socket = dir.path().display().to_string();
    let options = format!(
        "-k {socket} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    );
    let out = as_cluster_owner(&bindir.join("pg_ctl"))
        .args(["-w", "-l"])
        .arg(dir.path().join("log"))
        .arg("-D")
        .arg(&data)
        .args(["-o", &options, "start"])
        .output()
        .expect("pg_ctl runs");
    assert!(
        out.status.success(),
        "pg_ctl start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Stops the cluster once our end of its stdin closes: at our exit.
    let watcher = as_cluster_owner(Path::new("/bin/sh"))
        .arg("-c")
        .arg(r#"read _; "$0" -D "$1" -m immediate stop"#)
        .arg(bindir.join("pg_ctl"))
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the cluster's watcher starts");
    Server {
        base_url: format!("postgres://postgres@127.0.0.1:{port}"),
        bindir,
        host: "127.0.0.1".into(),
        port,
        _watcher: Some(watcher),
        _dir: Some(dir),
    }
}

fn server() -> &'static Server {
    SERVER.get_or_init(|| match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) => {
            let parsed = url::Url::parse(&url).expect("TEST_POSTGRES_URL is a URL");
            Server {
                base_url: url.trim_end_matches('/').to_owned(),
                bindir: bindir().unwrap_or_default(),
                host: parsed.host_str().unwrap_or("127.0.0.1").to_owned(),
                port: parsed.port().unwrap_or(5432),
                _watcher: None,
                _dir: None,
            }
        }
        Err(_) => start_cluster(),
    })
}

/// The URL of the database for `dir` (the same for the same directory, so
/// a restarted app finds its data again), created on first use.
pub fn database_url_for(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let server = server();
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("t{name}");
    let psql = if server.bindir.join("psql").is_file() {
        server.bindir.join("psql")
    } else {
        PathBuf::from("psql")
    };
    let out = Command::new(psql)
        .arg(format!("{}/postgres", server.base_url))
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("psql runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("already exists"),
        "CREATE DATABASE on {}:{}: {stderr}",
        server.host,
        server.port
    );
    format!("{}/{name}", server.base_url)
}

/// The database URL for a test app keeping its files in `dir`.
pub fn database_url(dir: &Path) -> String {
    if on_postgres() {
        database_url_for(dir)
    } else {
        format!("sqlite://{}", dir.join("stackbinder.db").display())
    }
}

//! The Tandem server under test: a `tandem serve` child process on a free
//! loopback port with a fresh database and its own integration key, or a
//! server that is already running. A started child is always stopped
//! (SIGTERM, then SIGKILL), also when the benchmark fails or is dropped.

use anyhow::{bail, Context};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database the server runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// PostgreSQL, with the database's name and whether it is on this machine.
    Postgres {
        database: String,
        local: bool,
    },
    /// A server this tool did not start.
    Unknown,
}

impl Backend {
    /// Reads the backend from a database URL.
    pub fn of_url(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("sqlite:") {
            return Ok(Backend::Sqlite);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let parsed = url::Url::parse(url).context("the PostgreSQL URL does not parse")?;
            let database = parsed.path().trim_start_matches('/').to_string();
            if database.is_empty() {
                bail!("the PostgreSQL URL names no database: give a fresh one, e.g. postgres://postgres@127.0.0.1:5432/bench_x");
            }
            let local = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]" | "::1") | None);
            return Ok(Backend::Postgres { database, local });
        }
        bail!("--database-url must start with sqlite:// or postgres://")
    }

    /// A short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
            Backend::Unknown => "unknown",
        }
    }
}

/// A server to benchmark.
pub struct Server {
    /// Base URL, e.g. `http://127.0.0.1:43121`.
    pub base: String,
    /// Its process id, when known (CPU and memory are read from `/proc`).
    pub pid: Option<u32>,
    pub integration_key: String,
    pub backend: Backend,
    child: Option<Child>,
    /// The scratch directory this tool created (working directory, SQLite file, log).
    scratch: Option<PathBuf>,
}

/// How to start a server.
pub struct Launch<'a> {
    pub bin: &'a Path,
    /// `None`: a fresh SQLite file in a scratch directory.
    pub database_url: Option<&'a str>,
}

/// A random 32-byte key, base64 (test data only; the database is fresh).
fn random_secret_key() -> anyhow::Result<String> {
    use base64::Engine;
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key))
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// The command with the environment the server is benchmarked with; inherited
/// `TANDEM_*` variables are dropped so the run does not depend on the shell.
fn tandem_command(bin: &Path, dir: &Path, db: &str, key: &str) -> Command {
    let mut c = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TANDEM_") {
            c.env_remove(k);
        }
    }
    c.current_dir(dir).env("TANDEM_DATABASE_URL", db).env("TANDEM_SECRET_KEY", key).env("TANDEM_LOG__LEVEL", "warn");
    c
}

impl Server {
    /// Creates an integration key with the binary, then starts `serve` and waits until `/readyz` answers.
    pub async fn launch(launch: Launch<'_>) -> anyhow::Result<Server> {
        let bin = std::fs::canonicalize(launch.bin).with_context(|| {
            format!("no Tandem binary at {} (build it: cargo build --release -p tandem)", launch.bin.display())
        })?;
        let scratch = std::env::temp_dir().join(format!("tandem-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
        let mut server = Server {
            base: String::new(),
            pid: None,
            integration_key: String::new(),
            backend: Backend::Sqlite,
            child: None,
            scratch: Some(scratch.clone()),
        };
        let db = match launch.database_url {
            Some(url) => url.to_string(),
            None => format!("sqlite://{}", scratch.join("tandem.db").display()),
        };
        server.backend = Backend::of_url(&db)?;
        if let Backend::Postgres { database, .. } = &server.backend {
            eprintln!(
                "PostgreSQL database {database:?}: it must be fresh and empty; the benchmark migrates and fills it and does not drop it"
            );
        }
        let key = random_secret_key()?;

        let out = tandem_command(&bin, &scratch, &db, &key)
            .args(["integration-key", "create", "--name", "bench"])
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {} integration-key create", bin.display()))?;
        if !out.status.success() {
            bail!("`tandem integration-key create` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        server.integration_key = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if server.integration_key.is_empty() {
            bail!("`tandem integration-key create` printed no key");
        }

        let port = free_port()?;
        let bind = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(scratch.join("tandem.log"))?;
        let child = tandem_command(&bin, &scratch, &db, &key)
            .args(["serve", "--bind", &bind])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} serve", bin.display()))?;
        server.pid = Some(child.id());
        server.child = Some(child);
        server.base = format!("http://{bind}");
        server.wait_ready().await?;
        Ok(server)
    }

    /// A server that is already running at `base`.
    pub fn external(base: &str, integration_key: &str, pid: Option<u32>) -> Server {
        Server {
            base: base.trim_end_matches('/').to_string(),
            pid,
            integration_key: integration_key.to_string(),
            backend: Backend::Unknown,
            child: None,
            scratch: None,
        }
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let url = format!("{}/readyz", self.base);
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("the server exited during start-up ({status}); its log ends:\n{}", self.log_tail(20));
                }
            }
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!("{url} did not answer 200 within {READY_TIMEOUT:?}; the log ends:\n{}", self.log_tail(20));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `lines` lines of the server's log (started servers only).
    pub fn log_tail(&self, lines: usize) -> String {
        let Some(path) = self.scratch.as_ref().map(|d| d.join("tandem.log")) else { return String::new() };
        let mut text = String::new();
        if std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text)).is_err() {
            return String::new();
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops a started server: SIGTERM, then SIGKILL after a grace period.
    /// Idempotent. Returns why a started server did not shut down cleanly
    /// (it was already gone, exited with an error or a signal, or had to be
    /// killed); `None` when it exited with status 0 or was not started here.
    pub fn stop(&mut self) -> Option<String> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(format!("the server had exited before the end of the run ({status})"));
        }
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return None,
                Ok(Some(status)) => return Some(format!("the server's shutdown after SIGTERM ended with {status}")),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Some(format!("the server did not exit within {STOP_TIMEOUT:?} of SIGTERM; it was killed"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(why) = self.stop() {
            eprintln!("{why}");
        }
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts `sh -c script` and returns once the script has printed a line
    /// (it prints "ready" after installing its trap) or has closed its output
    /// by exiting: on a busy machine the shell can take well over a fixed pause
    /// to start, and a SIGTERM sent before its trap is set would kill it outright.
    fn running(script: &str) -> Server {
        use std::io::BufRead;
        let mut child =
            Command::new("sh").args(["-c", script]).stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        Server {
            base: String::new(),
            pid: Some(child.id()),
            integration_key: String::new(),
            backend: Backend::Sqlite,
            child: Some(child),
            scratch: None,
        }
    }

    #[test]
    fn a_clean_shutdown_passes_and_a_crash_at_shutdown_is_reported() {
        // Each trap also ends the background sleep (started first, so `$!` is
        // set whenever the signal comes), and no process outlives the test.
        assert_eq!(running("sleep 60 & trap 'kill $!; exit 0' TERM; echo ready; wait").stop(), None);
        let crashed =
            running("sleep 60 & trap 'kill $!; kill -ABRT $$' TERM; echo ready; wait").stop().unwrap_or_default();
        assert!(crashed.contains("after SIGTERM") && crashed.contains("SIGABRT"), "{crashed}");
        let failed = running("sleep 60 & trap 'kill $!; exit 3' TERM; echo ready; wait").stop().unwrap_or_default();
        assert!(failed.contains("exit status: 3"), "{failed}");
        let mut gone = running("exit 1");
        // The shell has closed its output but may not have exited yet on a busy
        // machine: wait until it has, so stop() finds it gone (the child keeps the
        // status it reaped) rather than sending it SIGTERM.
        let deadline = Instant::now() + Duration::from_secs(60);
        while gone.child.as_mut().unwrap().try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the shell did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gone.stop().unwrap_or_default().contains("before the end of the run"));
        assert_eq!(gone.stop(), None, "stopping twice is a no-op");
    }

    #[test]
    fn backend_comes_from_the_url() {
        assert_eq!(Backend::of_url("sqlite:///tmp/x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgres://postgres@127.0.0.1:5432/bench_x").unwrap(),
            Backend::Postgres { database: "bench_x".into(), local: true }
        );
        assert_eq!(
            Backend::of_url("postgres://u@db.internal/b").unwrap(),
            Backend::Postgres { database: "b".into(), local: false }
        );
        assert!(Backend::of_url("postgres://postgres@127.0.0.1:5432/").is_err());
        assert!(Backend::of_url("mysql://x/y").is_err());
    }
}

//! The real `tandem` executable: configuration errors at start, the secret
//! key check, graceful shutdown on SIGTERM, and no secrets in its logs.

use crate::helpers::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tandem(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("TANDEM_") {
            cmd.env_remove(k);
        }
    }
    if let Some(pg) = postgres_url() {
        cmd.env("TANDEM_DATABASE_URL", pg).env("TANDEM_SECRET_KEY", SUITE_SECRET_KEY);
        // No webhook deliveries, as in every test server but the webhook
        // tests': a node delivers every endpoint of its database, and one
        // stopped by a signal mid-delivery would abandon a request to
        // another test's receiver (its events are then sent again).
        cmd.env("TANDEM_WEBHOOKS__POLL_INTERVAL_MS", "0");
    }
    cmd
}

/// Starts `serve` on `db` with `key` (empty: the key file), which must
/// refuse to start; its standard error.
fn refused_start(dir: &std::path::Path, db: &str, key: &str) -> String {
    let out = tandem(dir)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("TANDEM_DATABASE_URL", db)
        .env("TANDEM_SECRET_KEY", key)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "started: {err}");
    err
}

/// Runs a command that must succeed; its standard output.
fn run_ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out = tandem(dir).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A `tandem` process that is killed if the test ends without stopping it.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Served {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Served {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Runs `tandem serve` until it logs "listening"; returns the child, its address and the log lines so far.
fn serve(dir: &std::path::Path, extra_env: &[(&str, &str)]) -> (Served, String, std::sync::mpsc::Receiver<String>) {
    let (child, addr, rx, _) = serve_keeping(dir, extra_env);
    (child, addr, rx)
}

/// Like [`serve`], also returning the log lines written before it listened.
fn serve_keeping(
    dir: &std::path::Path,
    extra_env: &[(&str, &str)],
) -> (Served, String, std::sync::mpsc::Receiver<String>, Vec<String>) {
    let mut cmd = tandem(dir);
    cmd.args(["serve", "--bind", "127.0.0.1:0"])
        .env("TANDEM_LOG__LEVEL", "debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = Served(cmd.spawn().expect("spawn tandem"));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut early = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            // Tandem's own line (text or JSON), not actix's "listening on:", which comes first.
            if line.contains(" listening addr=") || line.contains("\"message\":\"listening\"") {
                let start = line.find("127.0.0.1:").expect("address in the listening line");
                let addr: String =
                    line[start..].chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
                return (child, addr, rx, early);
            }
            early.push(line);
        }
    }
    panic!("tandem did not start");
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "tandem did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn unknown_config_key_stops_start_up_naming_the_key() {
    let dir = scratch_dir();
    let out = tandem(&dir).args(["serve"]).env("TANDEM_SCIM__KEY_LIFETIME", "3").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.to_lowercase().contains("key_lifetime"), "{err}");
}

/// Variables that are no setting are ignored (a Kubernetes Service named
/// tandem adds `TANDEM_PORT`), but one that reads like a setting with one
/// `_` too few is named at start with the name meant.
#[test]
fn a_misspelled_setting_variable_is_named_at_start() {
    let dir = scratch_dir();
    let (mut child, _addr, _log, early) =
        serve_keeping(&dir, &[("TANDEM_OIDC_LOGIN_TTL_SECS", "60"), ("TANDEM_PORT", "tcp://10.0.0.1:80")]);
    let warned: Vec<&String> = early.iter().filter(|l| l.contains("is no setting")).collect();
    assert_eq!(warned.len(), 1, "{early:#?}");
    assert!(warned[0].contains("TANDEM_OIDC__LOGIN_TTL_SECS"), "{}", warned[0]);
    sigterm(&child);
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status:?}");
}

#[test]
fn malformed_config_value_stops_start_up_naming_the_key() {
    let dir = scratch_dir();
    std::fs::write(dir.join("bad.toml"), "[server]\nworkers = \"many\"\n").unwrap();
    let out = tandem(&dir).args(["serve", "--config", "bad.toml"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.workers") && err.contains("bad.toml"), "{err}");
    // A syntax error gives the line and column, not the line's text (a secret, unquoted).
    std::fs::write(dir.join("syntax.toml"), "[secrets]\nkey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    let out = tandem(&dir).args(["migrate", "--config", "syntax.toml"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("line 2"), "{err}");
    assert!(!err.contains("AAECAwQF"), "{err}");
    // A directory is refused, and a file that is no regular file (a pipe) is read.
    let out = tandem(&dir).args(["migrate", "--config", "."]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("is a directory"), "{err}");
    let mut piped = tandem(&dir)
        .args(["migrate", "--config", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    piped.stdin.take().unwrap().write_all(b"[server]\nworkers = \"many\"\n").unwrap();
    let out = piped.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("server.workers"), "{err}");
}

#[test]
fn wrong_secret_key_is_a_clear_start_up_error() {
    let dir = scratch_dir();
    // A database of its own: the shared PostgreSQL one holds the suite's key check.
    let db = format!("sqlite://{}", dir.join("k.db").display());
    let key_a = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let key_b = "HxwdHhscGxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwI=";
    let out = tandem(&dir).args(["migrate", "--database-url", &db]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // It says what it did: every migration on a new database, none the second time.
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.starts_with("applied ") && said.contains(" migrations; the database is up to date (sqlite)"),
        "{said}"
    );
    let again = tandem(&dir).args(["migrate", "--database-url", &db]).output().unwrap();
    let said = String::from_utf8_lossy(&again.stdout).to_string();
    assert_eq!(said.trim(), "no migrations pending; the database is up to date (sqlite)");
    let (mut child, _, _) = serve(&dir, &[("TANDEM_DATABASE_URL", &db), ("TANDEM_SECRET_KEY", key_a)]);
    sigterm(&child);
    wait_exit(&mut child);
    // A start with key B is refused, naming the cause.
    let refused_with_b = || {
        let err = refused_start(&dir, &db, key_b);
        assert!(err.contains("not the key this database"), "{err}");
    };
    refused_with_b();
    // The key is checked before migrations: with one pending (the newest
    // unrecorded, so running it again would fail on what it made), the wrong
    // key is refused and the migrations are left alone.
    let file = db.trim_start_matches("sqlite://").to_string();
    let recorded = |sql: &str| -> i64 {
        use diesel::{Connection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut c = diesel::SqliteConnection::establish(&file).unwrap();
        diesel::sql_query(sql).execute(&mut c).unwrap();
        diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations").get_result::<N>(&mut c).unwrap().n
    };
    let before = recorded(
        "DELETE FROM __diesel_schema_migrations WHERE version = (SELECT max(version) FROM __diesel_schema_migrations)",
    );
    refused_with_b();
    assert_eq!(recorded("SELECT 1"), before, "no migration ran");
    let out = tandem(&dir)
        .args(["serve"])
        .env("TANDEM_DATABASE_URL", &db)
        .env("TANDEM_SECRET_KEY", "short")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("TANDEM_SECRET_KEY"));
}

#[test]
fn first_start_creates_the_key_file_with_mode_0600_and_sigterm_shuts_down_cleanly() {
    let dir = scratch_dir();
    let db = format!("sqlite://{}", dir.join("data/tandem.db").display());
    let (mut child, addr, _log, early) =
        serve_keeping(&dir, &[("TANDEM_DATABASE_URL", &db), ("TANDEM_SECRET_KEY", "")]);
    let resp = reqwest::blocking_get(&format!("http://{addr}/healthz"));
    assert!(resp.contains("ok"));
    // A new database is said to be one (a volume not mounted would look so), with where it is.
    let made = early.iter().find(|l| l.contains("a new, empty one was made"));
    assert!(
        made.is_some_and(|l| l.contains("WARN") && l.contains(&dir.join("data/tandem.db").display().to_string())),
        "{early:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("data/secret.key"), 0o600);
        // The database and its directory are the service's alone too.
        assert_eq!((mode("data"), mode("data/tandem.db"), mode("data/tandem.db-wal")), (0o700, 0o600, 0o600));
    }
    // The container health check: /readyz on the bind address, or the URL given.
    let ready =
        tandem(&dir).args(["healthcheck"]).env("TANDEM_BIND", &addr).env("TANDEM_DATABASE_URL", &db).output().unwrap();
    assert!(ready.status.success(), "{}", String::from_utf8_lossy(&ready.stderr));
    assert!(String::from_utf8_lossy(&ready.stdout).contains("ready"));
    let missing = tandem(&dir).args(["healthcheck", "--url", &format!("http://{addr}/nowhere")]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("answered 404"), "{missing:?}");
    sigterm(&child);
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status:?}");
    let down = tandem(&dir).args(["healthcheck", "--url", &format!("http://{addr}/readyz")]).output().unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("does not answer"), "{down:?}");
    // The key file lost (a volume no longer mounted): no new key is made for
    // a database set up with one; the start says what is missing.
    std::fs::rename(dir.join("data/secret.key"), dir.join("kept.key")).unwrap();
    let err = refused_start(&dir, &db, "");
    assert!(err.contains("key file") && err.contains("does not exist"), "{err}");
    assert!(!dir.join("data/secret.key").exists(), "no key is made in its place");
    std::fs::rename(dir.join("kept.key"), dir.join("data/secret.key")).unwrap();
    let (mut child, _, _, early) = serve_keeping(&dir, &[("TANDEM_DATABASE_URL", &db), ("TANDEM_SECRET_KEY", "")]);
    assert!(!early.iter().any(|l| l.contains("a new, empty one was made")), "{early:?}");
    sigterm(&child);
    assert!(wait_exit(&mut child).success());
    // An admin command says so too when others can read the key file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("data/secret.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = tandem(&dir)
            .args(["secret-key", "abandon-rotation", "--database-url", &db])
            .env("TANDEM_SECRET_KEY", "")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.contains("readable by other users"), "{err}");
        assert!(!err.contains("INFO"), "only warnings: {err}");
    }
}

/// `secret-key generate` prints a key a server starts with from a key file,
/// on either backend; on PostgreSQL a server given no key refuses to start,
/// says how to give one, and makes no key file (the database outlives the
/// node's disk, and every node needs the same key).
#[test]
fn a_generated_key_starts_the_server_and_postgresql_never_makes_one() {
    let dir = scratch_dir();
    let key = run_ok(&dir, &["secret-key", "generate"]);
    assert!(tandem_core::secret::SecretKey::from_base64(&key).is_ok(), "{key:?}");
    assert_ne!(key, run_ok(&dir, &["secret-key", "generate"]), "a new key each time");
    let key_file = dir.join("given.key");
    std::fs::write(&key_file, &key).unwrap();
    let db = match postgres_url() {
        Some(base) => scratch_postgres_database(&base),
        None => format!("sqlite://{}", dir.join("given.db").display()),
    };
    let given = [
        ("TANDEM_DATABASE_URL", db.as_str()),
        ("TANDEM_SECRET_KEY", ""),
        ("TANDEM_SECRET_KEY_FILE", key_file.to_str().unwrap()),
    ];
    let (mut child, addr, _log) = serve(&dir, &given);
    assert!(reqwest::blocking_get(&format!("http://{addr}/readyz")).contains("ready"));
    sigterm(&child);
    assert!(wait_exit(&mut child).success());

    if postgres_url().is_some() {
        let err = refused_start(&dir, &db, "");
        assert!(err.contains("TANDEM_SECRET_KEY") && err.contains("secret-key generate"), "{err}");
        assert!(!dir.join("data/secret.key").exists(), "no key file is made for PostgreSQL");
    }
}

/// Rotating the secret key: nodes run with the new key and the previous
/// one, `secret-key rotate` re-encrypts the stored secrets under the new
/// key, and from then on the new key alone starts the server.
#[test]
fn the_secret_key_is_rotated_with_the_previous_one_beside_it() {
    let dir = scratch_dir();
    let db = match postgres_url() {
        Some(base) => scratch_postgres_database(&base),
        None => format!("sqlite://{}", dir.join("rotate.db").display()),
    };
    let (old, new) = (run_ok(&dir, &["secret-key", "generate"]), run_ok(&dir, &["secret-key", "generate"]));
    let (old, new) = (old.trim(), new.trim());
    let run = |args: &[&str], key: &str, previous: &str| {
        tandem(&dir)
            .args(args)
            .env("TANDEM_DATABASE_URL", &db)
            .env("TANDEM_SECRET_KEY", key)
            .env("TANDEM_SECRETS__PREVIOUS_KEY", previous)
            .output()
            .unwrap()
    };
    let starts = |key: &str, previous: &str| {
        let env = [
            ("TANDEM_DATABASE_URL", db.as_str()),
            ("TANDEM_SECRET_KEY", key),
            ("TANDEM_SECRETS__PREVIOUS_KEY", previous),
        ];
        // The log is read to its end: a reader gone would close the server's stderr.
        let (mut child, _, log, early) = serve_keeping(&dir, &env);
        sigterm(&child);
        assert!(wait_exit(&mut child).success());
        early.into_iter().chain(log.iter()).collect::<Vec<_>>()
    };
    // A client secret stored under the old key.
    let ikey = String::from_utf8(run(&["integration-key", "create", "--name", "rotation"], old, "").stdout).unwrap();
    let env = [("TANDEM_DATABASE_URL", db.as_str()), ("TANDEM_SECRET_KEY", old)];
    let (mut child, addr, _log) = serve(&dir, &env);
    let customer = unique("rotate");
    let secret = "rotated-client-secret-5a4b3c";
    let body = serde_json::json!({"customer_id": customer,
        "idp": {"type": "Okta", "client_id": "c", "client_secret": secret, "sso_domain": "acme.okta.com"},
        "redirect_url": format!("https://app.example.com/cb/{customer}"), "verify": false});
    let created = reqwest::blocking_post(&format!("http://{addr}/api/v1/oidc-clients"), ikey.trim(), &body.to_string());
    assert!(created.contains("oidc_client_id"), "{created}");
    // And a private_key_jwt client's keys.
    let keyed_customer = unique("rotate-keys");
    let body = serde_json::json!({"customer_id": keyed_customer,
        "idp": {"type": "Generic", "client_id": "c", "issuer": "https://idp.example", "client_authentication": "private_key_jwt"},
        "redirect_url": format!("https://app.example.com/cb/{keyed_customer}"), "verify": false});
    let keyed = reqwest::blocking_post(&format!("http://{addr}/api/v1/oidc-clients"), ikey.trim(), &body.to_string());
    assert!(keyed.contains("\"kid\""), "{keyed}");
    // And a webhook endpoint's signing secret.
    let body = serde_json::json!({"url": "https://hooks.example.com/tandem"});
    let hook =
        reqwest::blocking_post(&format!("http://{addr}/api/v1/webhook-endpoints"), ikey.trim(), &body.to_string());
    let hook: serde_json::Value = serde_json::from_str(&hook).unwrap();
    let (hook_id, hook_secret) =
        (hook["id"].as_str().unwrap().to_string(), hook["secret"].as_str().unwrap().to_string());
    sigterm(&child);
    assert!(wait_exit(&mut child).success());

    // The new key alone does not open the database yet; beside the old one it does.
    let out = run(&["serve", "--bind", "127.0.0.1:0"], new, "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the key this database"), "{out:?}");
    let early = starts(new, old);
    assert!(early.iter().any(|l| l.contains("key rotation is in progress")), "{early:#?}");
    // Every rotating node rotates to the same key: one with another (a typo) is refused.
    let fingerprint = |k: &str| tandem_core::secret::SecretKey::from_base64(k).unwrap().fingerprint().to_string();
    let typo = run_ok(&dir, &["secret-key", "generate"]);
    let out = run(&["serve", "--bind", "127.0.0.1:0"], typo.trim(), old);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("a key rotation to the key {} is in progress", fingerprint(new))), "{err}");
    assert!(err.contains(&fingerprint(typo.trim())) && err.contains("abandon-rotation"), "{err}");
    let out = run(&["secret-key", "rotate"], new, "");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no previous key"), "{out:?}");

    let store = tandem_store::Store::open(&db, &tandem_store::PoolOptions::default()).unwrap();
    let version = |store: &tandem_store::Store| {
        let customer = customer.clone();
        store
            .read_blocking(move |c| tandem_store::oidc_clients::get_by_customer(c, &customer))
            .unwrap()
            .unwrap()
            .updated_at
    };
    let before = version(&store);
    let out = run(&["secret-key", "rotate"], new, old);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    let hooks = "re-encrypted 2 client secret(s) and key set(s) and the signing secrets of 1 webhook endpoint(s)";
    assert!(said.contains(hooks), "{out:?}");
    let again = run(&["secret-key", "rotate"], new, old);
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(said.contains("re-encrypted 0 client secret") && said.contains("swapped"), "{again:?}");
    // The new key alone starts it now, and the secret opens with it alone.
    starts(new, "");
    let out = run(&["serve", "--bind", "127.0.0.1:0"], old, "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the key this database"), "{out:?}");
    // The client's version moved: an edit that read it before the rotation
    // retries instead of writing the old ciphertext back.
    assert!(version(&store) > before);
    let row = store.read_blocking(move |c| tandem_store::oidc_clients::get_by_customer(c, &customer)).unwrap().unwrap();
    let new_key = tandem_core::secret::SecretKey::from_base64(new).unwrap();
    assert_eq!(row.client_secret(&new_key).unwrap().unwrap().0, secret);
    assert!(row.client_secret(&tandem_core::secret::SecretKey::from_base64(old).unwrap()).is_err());
    let keyed_row =
        store.read_blocking(move |c| tandem_store::oidc_clients::get_by_customer(c, &keyed_customer)).unwrap().unwrap();
    assert!(keyed_row.client_secret_enc.is_none());
    assert!(keyed_row.client_keys(&new_key).unwrap().unwrap().0.contains("pkcs8"));
    assert!(keyed_row.client_keys(&tandem_core::secret::SecretKey::from_base64(old).unwrap()).is_err());
    let hook_row = store.read_blocking(move |c| tandem_store::webhooks::get(c, &hook_id)).unwrap().unwrap();
    let context = tandem_store::webhooks::secret_context(&hook_row.id);
    assert_eq!(new_key.decrypt_with_current(&hook_row.secret_enc, &context).unwrap().0, hook_secret);
    let old_key = tandem_core::secret::SecretKey::from_base64(old).unwrap();
    assert!(old_key.decrypt(&hook_row.secret_enc, &context).is_err());
    // A next rotation whose first node had a mistyped key: the others are
    // refused, naming it, until the rotation is abandoned with the key the
    // database is checked against; then the right key rotates.
    let next = run_ok(&dir, &["secret-key", "generate"]);
    starts(typo.trim(), new);
    let out = run(&["serve", "--bind", "127.0.0.1:0"], next.trim(), new);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&fingerprint(typo.trim())), "{out:?}");
    let out = run(&["secret-key", "abandon-rotation"], old, "");
    assert!(!out.status.success(), "only the database's own key abandons a rotation: {out:?}");
    let out = run(&["secret-key", "abandon-rotation"], new, "");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&fingerprint(typo.trim())), "{out:?}");
    starts(next.trim(), new);
    let query = tandem_store::audit::AuditQuery { limit: 100, ..Default::default() };
    let audit = store.read_blocking(move |c| tandem_store::audit::list(c, &query)).unwrap();
    assert!(audit.iter().any(|e| e.action == "secret_key.rotated" && e.actor == "cli"), "the rotation is audited");
    assert!(audit.iter().any(|e| e.action == "secret_key.rotation_abandoned"), "so is the abandoned one");
}

/// The log's reader going away (a closed stderr) loses lines, never the
/// server: it answered nothing and panicked at its next log line.
#[test]
fn a_closed_stderr_loses_log_lines_not_the_server() {
    let dir = scratch_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = tandem(&dir);
    cmd.args(["serve", "--bind", &addr]).env("TANDEM_LOG__LEVEL", "debug").stdout(Stdio::null()).stderr(Stdio::piped());
    if postgres_url().is_none() {
        cmd.env("TANDEM_DATABASE_URL", format!("sqlite://{}", dir.join("t.db").display()));
    }
    let mut child = Served(cmd.spawn().unwrap());
    drop(child.stderr.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    let healthz = format!("http://{addr}/healthz");
    let answers = |url: &str| reqwest::try_get(url).unwrap_or_default();
    while !answers(&healthz).contains("ok") {
        assert!(Instant::now() < deadline, "the server never answered with its stderr closed");
        assert!(child.try_wait().unwrap().is_none(), "the server exited with its stderr closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Requests that log (a refused key is a warning) are answered, and the server stays up.
    let clients = format!("http://{addr}/api/v1/oidc-clients");
    for _ in 0..20 {
        assert_eq!(reqwest::blocking_get_with(&clients, "tandem_ik_wrong").0, 401);
    }
    assert!(answers(&healthz).contains("ok"));
    sigterm(&child);
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status:?}");
}

/// A key made where no database was (another directory than the server's)
/// says so: the server would never read it.
#[test]
fn a_key_made_in_a_new_database_says_so() {
    let dir = scratch_dir();
    let db = format!("sqlite://{}", dir.join("elsewhere/t.db").display());
    let run =
        || tandem(&dir).args(["integration-key", "create", "--name", "k", "--database-url", &db]).output().unwrap();
    let first = run();
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success() && err.contains("There was no database at"), "{err}");
    let second = run();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success() && !err.contains("There was no database"), "{err}");
}

#[test]
fn key_commands_exit_cleanly_every_time() {
    // On PostgreSQL a command once exited while the pool was still opening a
    // spare connection on its own thread, and crashed about one run in seven.
    let dir = scratch_dir();
    let prefix = unique("cli");
    let run = |args: &[&str]| run_ok(&dir, args);
    for i in 0..15 {
        let name = format!("{prefix}-{i}");
        run(&["integration-key", "create", "--name", &name]);
        run(&["integration-key", "revoke", &name]);
    }
}

/// A key that could not be shown (standard output closed) is revoked, and
/// the command fails with the reason instead of a panic.
#[test]
fn a_key_never_shown_is_revoked() {
    let dir = scratch_dir();
    let name = unique("unshown");
    run_ok(&dir, &["migrate"]);
    let mut cmd = tandem(&dir);
    cmd.args(["integration-key", "create", "--name", &name]);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = cmd.stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write the new key") && err.contains("was revoked") && !err.contains("panicked"),
        "{err}"
    );
    let listed: Vec<String> =
        run_ok(&dir, &["integration-key", "list"]).lines().filter(|l| l.contains(&name)).map(str::to_string).collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].contains("\trevoked\t"), "{listed:?}");
}

/// A rotation creates the new key under the old one's name: revoking the
/// name must not revoke both (the app would be locked out).
#[test]
fn revoking_a_name_two_active_keys_share_revokes_neither() {
    let dir = scratch_dir();
    let name = unique("rotated");
    let run = |args: &[&str]| run_ok(&dir, args);
    run(&["integration-key", "create", "--name", &name]);
    run(&["integration-key", "create", "--name", &name]);
    let out = tandem(&dir).args(["integration-key", "revoke", &name]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 active integration keys") && err.contains("by its id"), "{err}");
    let ids: Vec<String> = run(&["integration-key", "list"])
        .lines()
        .filter(|l| l.contains(&name) && l.contains("\tactive\t"))
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "neither was revoked");
    run(&["integration-key", "revoke", &ids[1]]);
    let active =
        run(&["integration-key", "list"]).lines().filter(|l| l.contains(&name) && l.contains("\tactive\t")).count();
    assert_eq!(active, 1);
    // One left under the name: the name now names it.
    run(&["integration-key", "revoke", &name]);
    // Each key's creation and revocation is in the audit log, by the CLI.
    let url = postgres_url().unwrap_or_else(|| format!("sqlite://{}/data/tandem.db", dir.display()));
    let store =
        tandem_store::Store::open(&url, &tandem_store::PoolOptions { min_idle: 0, ..Default::default() }).unwrap();
    for id in &ids {
        let q = tandem_store::audit::AuditQuery {
            target_type: Some("integration_key".into()),
            target_id: Some(id.clone()),
            action: None,
            actor: None,
            before: None,
            limit: 10,
        };
        let events = store.read_blocking(move |c| tandem_store::audit::list(c, &q)).unwrap();
        let seen: Vec<(&str, &str)> = events.iter().map(|e| (e.action.as_str(), e.actor.as_str())).collect();
        assert_eq!(seen, [("integration_key.revoked", "cli"), ("integration_key.created", "cli")], "{id}");
        let details: serde_json::Value = serde_json::from_str(&events[1].details).unwrap();
        assert_eq!(details["name"], name.as_str(), "{details}");
        // The prefix `integration-key list` shows, not the key.
        assert_eq!(details["display_prefix"].as_str().map(str::len), Some("tandem_ik_".len() + 6), "{details}");
    }
}

#[test]
fn key_list_shows_each_keys_state_and_use() {
    let dir = scratch_dir();
    let name = unique("listed");
    let run = |args: &[&str]| run_ok(&dir, args);
    let key = run(&["integration-key", "create", "--name", &name]);
    let line = |listed: String| listed.lines().find(|l| l.contains(&name)).map(str::to_string).unwrap_or_default();
    let listed = line(run(&["integration-key", "list"]));
    let fields: Vec<&str> = listed.split('\t').collect();
    assert_eq!(fields.len(), 5, "{listed}");
    assert_eq!(fields[1], name);
    assert!(key.trim().starts_with(fields[2].trim_end_matches('…')), "{listed}");
    assert_eq!(&fields[3..], ["active", "never used"], "{listed}");
    assert!(!listed.contains(key.trim()), "the list shows no key");
    run(&["integration-key", "revoke", &name]);
    let listed = line(run(&["integration-key", "list"]));
    assert!(listed.contains("\trevoked\t"), "{listed}");
}

/// Clients sharing a redirect path (saved with a warning) are named again
/// in the start-up log, where an operator who missed the API's warning sees it.
#[test]
fn start_up_warns_of_clients_sharing_a_redirect_path() {
    let dir = scratch_dir();
    let key = run_ok(&dir, &["integration-key", "create", "--name", "paths"]).trim().to_string();
    let allow = [("TANDEM_OIDC__REQUIRE_DISTINCT_REDIRECT_PATHS", "false")];
    let (mut child, addr, rx) = serve(&dir, &allow);
    let shared = format!("https://app.example.com/{}/sso/callback", unique("p"));
    for customer in [unique("one"), unique("two")] {
        let body = serde_json::json!({"customer_id": customer,
            "idp": {"type": "Okta", "client_id": "c", "client_secret": "s", "sso_domain": "acme.okta.com"},
            "redirect_url": shared, "verify": false});
        let created = reqwest::blocking_post(&format!("http://{addr}/api/v1/oidc-clients"), &key, &body.to_string());
        assert!(created.contains("oidc_client_id"), "{created}");
    }
    sigterm(&child);
    wait_exit(&mut child);
    drop(rx);
    let (mut child, _, rx, early) = serve_keeping(&dir, &[]);
    sigterm(&child);
    wait_exit(&mut child);
    let log: Vec<String> = early.into_iter().chain(rx.iter()).collect();
    let path = url::Url::parse(&shared).unwrap().path().to_string();
    assert!(log.iter().any(|l| l.contains("share a redirect_url path") && l.contains(&path)), "{log:?}");
}

#[test]
fn secrets_never_appear_in_the_log() {
    let dir = scratch_dir();
    let key = {
        let out = tandem(&dir).args(["integration-key", "create", "--name", "log-test"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert!(key.starts_with("tandem_ik_"));
    let (mut child, addr, rx) = serve(&dir, &[("TANDEM_LOG__FORMAT", "json")]);
    let secret = "very-secret-client-secret-9f8e7d";
    let customer = unique("log");
    let body = serde_json::json!({"customer_id": customer,
        "idp": {"type": "Okta", "client_id": "c", "client_secret": secret, "sso_domain": "acme.okta.com"},
        "redirect_url": format!("https://app.example.com/cb/{customer}"), "verify": false});
    let created = reqwest::blocking_post(&format!("http://{addr}/api/v1/oidc-clients"), &key, &body.to_string());
    assert!(created.contains("oidc_client_id"), "{created}");
    let conn = reqwest::blocking_post(
        &format!("http://{addr}/api/v1/scim-connections"),
        &key,
        &format!("{{\"customer_id\":\"{}\"}}", unique("log")),
    );
    let conn: serde_json::Value = serde_json::from_str(&conn).unwrap();
    let scim_key = conn["scim_api_key"].as_str().unwrap().to_string();
    // The keys at work, and refused: a refusal's audit line names the client's address.
    let users = format!("{}/Users", conn["scim_base_url"].as_str().unwrap());
    assert_eq!(reqwest::blocking_get_with(&users, &scim_key).0, 200);
    let wrong_scim_key = "wrong-scim-key-5e4d3c2b1a";
    assert_eq!(reqwest::blocking_get_with(&users, wrong_scim_key).0, 401);
    let clients = format!("http://{addr}/api/v1/oidc-clients");
    assert_eq!(reqwest::blocking_get_with(&clients, &key).0, 200);
    let wrong_key = "tandem_ik_wrong0123456789";
    assert_eq!(reqwest::blocking_get_with(&clients, wrong_key).0, 401);
    sigterm(&child);
    assert!(wait_exit(&mut child).success());
    // Every line, to the end: the reader's sender drops at the log's end.
    let log: Vec<String> = rx.iter().collect();
    let log = log.join("\n");
    assert!(log.contains("oidc_client.created"), "audit line missing: {log}");
    assert!(log.contains("shut down"), "the log is read to its end: {log}");
    for refusal in ["SCIM request refused", "rejected an unknown or revoked integration key"] {
        let line = log.lines().find(|l| l.contains(refusal)).unwrap_or_else(|| panic!("no {refusal:?} line: {log}"));
        assert!(line.contains("\"client\":\"127.0.0.1\""), "{line}");
    }
    for s in [secret, key.as_str(), scim_key.as_str(), wrong_scim_key, wrong_key] {
        assert!(!log.contains(s), "log contains a secret");
    }
}

/// A refused SCIM key is logged with the connection id from the path, which
/// the path percent-decodes: a line break in it must not start a line of
/// its own (a forged log or audit line) in the text log.
#[test]
fn a_path_cannot_forge_log_lines() {
    let dir = scratch_dir();
    let (mut child, addr, rx) = serve(&dir, &[("TANDEM_LOG__FORMAT", "text")]);
    let forged = "FORGED audit: configuration changed";
    let path = format!("/scim/v2/x%0A{}/Users", forged.replace(' ', "%20"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = rt.block_on(async {
        ::reqwest::Client::new().get(format!("http://{addr}{path}")).bearer_auth("junk").send().await.unwrap().status()
    });
    assert_eq!(status, 401);
    sigterm(&child);
    wait_exit(&mut child);
    let log: Vec<String> = rx.iter().collect();
    assert!(log.iter().any(|l| l.contains("SCIM request refused")), "{log:?}");
    assert!(!log.iter().any(|l| l.starts_with("FORGED")), "{log:?}");
}

/// Minimal blocking HTTP for tests that drive the executable.
mod reqwest {
    pub fn blocking_get(url: &str) -> String {
        try_get(url).unwrap_or_else(|| panic!("GET {url} failed"))
    }

    /// A GET's body, or `None` when nothing answers.
    pub fn try_get(url: &str) -> Option<String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { ::reqwest::get(url).await.ok()?.text().await.ok() })
    }

    /// A GET with a bearer key: its status and body.
    pub fn blocking_get_with(url: &str, key: &str) -> (u16, String) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let resp = ::reqwest::Client::new().get(url).bearer_auth(key).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        })
    }

    pub fn blocking_post(url: &str, key: &str, body: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            ::reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    }
}

/// Nodes starting together on a new PostgreSQL database both find no secret
/// key check; the one whose insert loses the race checks its key against the
/// winner's and starts, instead of failing on the duplicate key. (On SQLite
/// one process's writes are serialised, so the race is PostgreSQL's.)
#[test]
fn nodes_starting_together_on_a_new_database_agree_on_the_key_check() {
    let Some(base) = postgres_url() else { return };
    let dir = scratch_dir();
    let mut settings = test_settings(&dir);
    settings.database.url = scratch_postgres_database(&base);
    let first = tandem::open_store(&settings).unwrap();
    let second = tandem::open_store(&settings).unwrap();
    let key = tandem::secret_file::load(&settings.secrets, true).unwrap();
    let key2 = tandem::secret_file::load(&settings.secrets, true).unwrap();

    // The first node writes the check and holds its transaction open…
    let (inserted_tx, inserted) = std::sync::mpsc::channel();
    let (go_tx, go) = std::sync::mpsc::channel::<()>();
    let a = std::thread::spawn(move || {
        first.write_blocking(|c| {
            tandem_store::meta::verify_secret_key(c, &key)?;
            inserted_tx.send(backend_pid(c)?).unwrap();
            go.recv().unwrap();
            Ok(())
        })
    });
    let first_pid = inserted.recv_timeout(Duration::from_secs(30)).expect("first node wrote the check");
    // …while the second finds none and waits on the first's insert.
    let b = std::thread::spawn(move || second.write_blocking(|c| tandem_store::meta::verify_secret_key(c, &key2)));
    let watcher = tandem_store::Store::open(&settings.database.url, &tandem_store::PoolOptions::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if waiting_on(&watcher, first_pid) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the second node never waited on the first's insert");
        std::thread::sleep(Duration::from_millis(20));
    }
    go_tx.send(()).unwrap();
    a.join().unwrap().expect("the first node starts");
    b.join().unwrap().expect("the second node starts, having lost the race");
}

/// The key commands set up a new database, as a first start would, but do
/// not upgrade one at an earlier release's schema (a newer release run to
/// look around must not migrate what the running servers use): they say
/// to run `tandem migrate`, and change nothing.
#[test]
fn key_commands_do_not_upgrade_a_database() {
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let dir = scratch_dir();
    // SQLite whatever the suite runs on: the migrations of a shared database stay as they are.
    let file = dir.join("old.db");
    let db = format!("sqlite://{}", file.display());
    let run = |args: &[&str]| tandem(&dir).args(args).args(["--database-url", &db]).output().unwrap();
    let out = run(&["integration-key", "create", "--name", "first"]);
    assert!(out.status.success(), "a new database is set up: {}", String::from_utf8_lossy(&out.stderr));
    // As if made by an earlier release: its newest migration not recorded.
    let mut c = diesel::SqliteConnection::establish(&file.display().to_string()).unwrap();
    let count = |c: &mut diesel::SqliteConnection| {
        diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations").get_result::<N>(c).unwrap().n
    };
    diesel::sql_query(
        "DELETE FROM __diesel_schema_migrations WHERE version = (SELECT max(version) FROM __diesel_schema_migrations)",
    )
    .execute(&mut c)
    .unwrap();
    let before = count(&mut c);
    for args in [
        &["integration-key", "list"][..],
        &["integration-key", "create", "--name", "second"],
        &["integration-key", "revoke", "first"],
    ] {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("run `tandem migrate`"), "{args:?}: {err}");
    }
    assert_eq!(count(&mut c), before, "no migration ran");
}

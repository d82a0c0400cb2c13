//! The `tandem` command: `serve`, `migrate`, and admin sub-commands.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tandem::settings::{Overrides, Settings};
use tandem_core::clock::{Clock, SystemClock};

#[derive(Parser)]
#[command(name = "tandem", version, about = "Self-hosted OIDC single sign-on broker with SCIM account pairing")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Configuration file (TOML), layered over the built-in defaults.
    #[arg(long, env = "TANDEM_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Database URL: sqlite://<file> or postgres://… (overrides TANDEM_DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Serve {
        /// Address to listen on (overrides TANDEM_BIND).
        #[arg(long)]
        bind: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Manage integration keys (the app's credentials for the API).
    #[command(subcommand)]
    IntegrationKey(KeyCommand),
    /// The secret key that encrypts secrets at rest (client secrets and keys).
    #[command(subcommand)]
    SecretKey(SecretKeyCommand),
    /// Ask a running server whether it is ready (`/readyz`), for container
    /// health checks: exit status 0 when it answers 200, else 1.
    Healthcheck {
        /// The URL to ask (default: /readyz on the configured bind address, 127.0.0.1 when it binds every address).
        #[arg(long)]
        url: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum SecretKeyCommand {
    /// Print a new random key (base64 of 32 bytes) for TANDEM_SECRET_KEY or
    /// a key file; touches no database.
    Generate,
    /// Re-encrypt every stored secret under the configured key, reading it
    /// with `secrets.previous_key`, and make the configured key the one the
    /// database is checked against (the last step of a key rotation).
    Rotate {
        #[command(flatten)]
        common: Common,
    },
    /// Forget the key a rotation was going to (abandoned, or mistyped on the
    /// first node restarted), with the key the database is checked against.
    AbandonRotation {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key and print it once.
    Create {
        /// A name to recognise the key by (shown in the audit log).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// List keys (never the keys themselves).
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a key by id or name.
    Revoke {
        /// The key's id or name.
        key: String,
        #[command(flatten)]
        common: Common,
    },
}

fn settings(common: &Common, bind: Option<String>) -> anyhow::Result<Settings> {
    let overrides = Overrides { bind, database_url: common.database_url.clone() };
    Ok(Settings::load(common.config.as_deref(), &overrides)?)
}

/// The SQLite file of `settings` when it does not exist yet.
fn new_sqlite_file(settings: &Settings) -> Option<String> {
    match tandem_store::DatabaseUrl::parse(&settings.database.url) {
        Ok(tandem_store::DatabaseUrl::Sqlite(path)) if !std::path::Path::new(&path).exists() => Some(path),
        _ => None,
    }
}

/// [`settings`] for an admin command, whose warnings (a key file others
/// can read, a database unreachable) go to standard error; at the default
/// level (`info`) its other log lines would crowd what it prints, so it
/// logs warnings only, and otherwise at the level configured.
fn command_settings(common: &Common) -> anyhow::Result<Settings> {
    let settings = settings(common, None)?;
    let mut log = settings.log.clone();
    if log.level.trim().eq_ignore_ascii_case("info") {
        log.level = "warn".into();
    }
    tandem::telemetry::init(&log);
    Ok(settings)
}

/// mimalloc for Rust's allocations: glibc's malloc and free were ~16 % of a
/// login's instructions, and with mimalloc a login, a SCIM create and a
/// lookup each take 12-15 % fewer (callgrind). Built without transparent huge
/// pages (`no_thp`): with them its arenas grew the idle RSS from 17 to 33 MB.
/// SQLite, aws-lc and libpq keep the C library's allocator.
/// `println!` that fails the command instead of panicking when standard
/// output is closed (`tandem … | head -0`).
macro_rules! out {
    ($($t:tt)*) => {
        writeln!(std::io::stdout(), $($t)*).context("cannot write to standard output")?
    };
}

/// `eprintln!` that does not panic when standard error is closed.
macro_rules! note {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if let Err(e) = run() {
        // Not eprintln!: it panics when stderr is closed.
        let _ = writeln!(std::io::stderr(), "error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { bind, common } => {
            let settings = settings(&common, bind)?;
            tandem::telemetry::init(&settings.log);
            warn_of_misspelled_env(&settings);
            tracing::info!(config = ?settings, "starting tandem {}", env!("CARGO_PKG_VERSION"));
            let new_file = new_sqlite_file(&settings);
            actix_web::rt::System::new().block_on(async move {
                let running = tandem::start(&settings, Arc::new(SystemClock))?;
                if let Some(path) = new_file {
                    // Expected on a first start; otherwise a volume not mounted, or another working directory.
                    let path = std::path::absolute(&path).map_or(path, |p| p.display().to_string());
                    tracing::warn!(
                        %path,
                        "there was no database here: a new, empty one was made. On a first start that is expected; \
                         if this deployment had data, check the data volume and database.url (a relative path is \
                         read from the working directory)"
                    );
                }
                // The server starts accepting and installs its SIGTERM handler
                // when first polled: "listening" is said after that, so a
                // SIGTERM sent on reading it shuts down gracefully.
                let server = actix_web::rt::spawn(running.server);
                actix_web::rt::task::yield_now().await;
                match running.admin_addr {
                    Some(admin) => tracing::info!(addr = %running.addr, %admin, backend = running.state.store.backend(), "listening (SCIM, client JWK Sets, setup pages and health; everything on the admin address)"),
                    None => tracing::info!(addr = %running.addr, backend = running.state.store.backend(), "listening"),
                }
                let result = server.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
                // Webhook deliveries under way stop (their leases freed for other nodes), then queued
                // provisioning-log entries, login events and SSO users are written before the process ends.
                drop(running.webhooks);
                running.state.log_sink.close();
                result.context("server failed")?;
                tracing::info!("shut down");
                Ok(())
            })
        }
        Command::Migrate { common } => {
            let settings = settings(&common, None)?;
            tandem::telemetry::init(&settings.log);
            warn_of_misspelled_env(&settings);
            let (store, applied) = tandem::open_and_migrate(&settings)?;
            match applied {
                0 => out!("no migrations pending; the database is up to date ({})", store.backend()),
                1 => out!("applied 1 migration; the database is up to date ({})", store.backend()),
                n => out!("applied {n} migrations; the database is up to date ({})", store.backend()),
            }
            Ok(())
        }
        Command::IntegrationKey(cmd) => key_command(cmd),
        Command::Healthcheck { url, common } => {
            let url = match url {
                Some(u) => u,
                None => tandem::readyz_url(settings(&common, None)?.bind_addr()?),
            };
            healthcheck(&url)
        }
        Command::SecretKey(SecretKeyCommand::Generate) => {
            let (_, encoded) = tandem_core::secret::SecretKey::generate()?;
            out!("{encoded}");
            Ok(())
        }
        Command::SecretKey(SecretKeyCommand::Rotate { common }) => rotate_secret_key(&command_settings(&common)?),
        Command::SecretKey(SecretKeyCommand::AbandonRotation { common }) => {
            let settings = command_settings(&common)?;
            let key = tandem::secret_file::load(&settings.secrets, false)?;
            let store = tandem::open_command_store_with_key(&settings, &key)?;
            let now = SystemClock.now();
            let recorded = store.write_blocking(|c| {
                let recorded = tandem_store::meta::abandon_rotation(c, &key, now)?;
                let details = serde_json::json!({"key": key.fingerprint(), "abandoned_key": recorded});
                let target = ("deployment", "secret_key");
                tandem_store::audit::record(c, now, "cli", "secret_key.rotation_abandoned", target, details)?;
                Ok(recorded)
            })?;
            match recorded {
                Some(fp) => {
                    out!("forgot the rotation to the key {fp}; the database stays under {}", key.fingerprint())
                }
                None => out!("no rotation was recorded; the database stays under {}", key.fingerprint()),
            }
            Ok(())
        }
    }
}

/// The last step of a key rotation (see the README's "Rotating the secret key").
fn rotate_secret_key(settings: &Settings) -> anyhow::Result<()> {
    if settings.secrets.previous_key.trim().is_empty() {
        anyhow::bail!(
            "no previous key: set TANDEM_SECRET_KEY (or the key file) to the new key and TANDEM_SECRETS__PREVIOUS_KEY \
             to the key it replaces"
        );
    }
    let key = tandem::secret_file::load(&settings.secrets, false)?;
    let store = tandem::open_command_store_with_key(settings, &key)?;
    let now = SystemClock.now();
    let (new, old) = (key.fingerprint().to_string(), key.previous_fingerprint().unwrap_or_default().to_string());
    let (changed, hooks, before) = store.write_blocking(|c| {
        // The check opens with one of the two keys (and, mid-rotation, the
        // new key is the one the nodes rotate to), or nothing is done.
        tandem_store::meta::verify_secret_key(c, &key)?;
        let changed = tandem_store::oidc_clients::reencrypt_secrets(c, &key)?;
        let hooks = tandem_store::webhooks::reencrypt_secrets(c, &key, tandem_store::micros(now))?;
        let before = tandem_store::meta::rewrite_key_check(c, &key)?;
        let details = serde_json::json!({"client_secrets_reencrypted": changed,
            "webhook_secrets_reencrypted": hooks, "key": new, "previous_key": old});
        tandem_store::audit::record(c, now, "cli", "secret_key.rotated", ("deployment", "secret_key"), details)?;
        Ok((changed, hooks, before))
    })?;
    out!(
        "re-encrypted {changed} client secret(s) and key set(s) and the signing secrets of {hooks} webhook endpoint(s) under the key \
         {new} (from {old}); the database now \
         checks against \
         {new}. Remove secrets.previous_key (TANDEM_SECRETS__PREVIOUS_KEY) from every node and restart them, each \
         with {new} as its key (TANDEM_SECRET_KEY, or the key file)."
    );
    if changed + hooks == 0 && before == tandem_store::meta::CheckedBy::Current {
        out!(
            "Nothing was under {old}: the rotation was done before, or secrets.key and secrets.previous_key are \
             swapped (the new key belongs in secrets.key)."
        );
    }
    Ok(())
}

/// Asks `url` once, within 5 s; Ok when it answers 200.
fn healthcheck(url: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        // Never through HTTP_PROXY / ALL_PROXY: the server is local.
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).no_proxy().build()?;
        let resp = client.get(url).send().await.with_context(|| format!("{url} does not answer"))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if status != reqwest::StatusCode::OK {
            anyhow::bail!("{url} answered {status}: {}", body.chars().take(300).collect::<String>());
        }
        out!("{body}");
        Ok(())
    })
}

/// Warns of each `TANDEM_*` variable that reads like a setting but is none.
fn warn_of_misspelled_env(settings: &Settings) {
    let names = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
    for (name, meant) in tandem::settings::misspelled_env(names, settings) {
        tracing::warn!(variable = %name, meant = %meant, "{name} is no setting and is ignored; did you mean {meant}? A section and its key are joined by two underscores");
    }
}

fn key_command(cmd: KeyCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match cmd {
        KeyCommand::Create { name, common } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.len() > 200 {
                anyhow::bail!("--name must be 1 to 200 characters");
            }
            let settings = command_settings(&common)?;
            let new_file = new_sqlite_file(&settings);
            let store = tandem::open_command_store(&settings)?;
            let (row, key) = store.write_blocking(|c| {
                let (row, key) = tandem_store::integration_keys::create(c, &name, now)?;
                let details = serde_json::json!({"name": row.name, "display_prefix": row.display_prefix});
                let target = ("integration_key", row.id.as_str());
                tandem_store::audit::record(c, now, "cli", "integration_key.created", target, details)?;
                Ok((row, key))
            })?;
            if let Some(path) = new_file {
                // Run from another directory than the server's, the key would
                // go to a database the server never reads.
                note!(
                    "There was no database at {path}: a new one was made for this key. If the server runs \
                     elsewhere, run this command where it runs or give its --database-url."
                );
            }
            note!("Created integration key {:?} (id {}). It is shown only this once:", row.name, row.id);
            let mut stdout = std::io::stdout();
            if let Err(e) = writeln!(stdout, "{}", key.0).and_then(|()| stdout.flush()) {
                // Never shown: nobody holds it, so nobody can be left using it.
                let id = row.id.clone();
                let revoked = store.write_blocking(move |c| revoke_recorded(c, &id, now, "never shown"));
                anyhow::bail!(
                    "cannot write the new key to standard output ({e}); the key {} was {}",
                    row.id,
                    if revoked.is_ok() { "revoked" } else { "not revoked: revoke it with `integration-key revoke`" }
                );
            }
        }
        KeyCommand::List { common } => {
            let store = tandem::open_command_store(&command_settings(&common)?)?;
            let keys = store.read_blocking(tandem_store::integration_keys::list)?;
            for k in keys {
                let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                let used = k.last_used_at.map_or_else(
                    || "never used".to_string(),
                    |t| format!("last used {}", tandem_core::format_time(tandem_store::from_micros(t))),
                );
                out!("{}\t{}\t{}…\t{}\t{}", k.id, k.name, k.display_prefix, state, used);
            }
        }
        KeyCommand::Revoke { key, common } => {
            let store = tandem::open_command_store(&command_settings(&common)?)?;
            use tandem_store::integration_keys::Revoked;
            match store.write_blocking(|c| revoke_recorded(c, &key, now, "revoked"))? {
                Revoked::One(_) => out!("revoked 1 key"),
                Revoked::None => anyhow::bail!("no active integration key with id or name {key:?}"),
                Revoked::Ambiguous(ids) => anyhow::bail!(
                    "{} active integration keys are named {key:?} ({}); revoke one by its id (see `integration-key list`)",
                    ids.len(),
                    ids.join(", ")
                ),
            }
        }
    }
    Ok(())
}

/// Revokes an integration key (see `integration_keys::revoke`), recording
/// it in the audit log (`why`: `revoked`, or `never shown`).
fn revoke_recorded(
    c: &mut tandem_store::AnyConnection,
    id_or_name: &str,
    now: chrono::DateTime<chrono::Utc>,
    why: &str,
) -> Result<tandem_store::integration_keys::Revoked, tandem_store::StoreError> {
    let revoked = tandem_store::integration_keys::revoke(c, id_or_name, now)?;
    if let tandem_store::integration_keys::Revoked::One(id) = &revoked {
        let details = serde_json::json!({"as": why});
        tandem_store::audit::record(c, now, "cli", "integration_key.revoked", ("integration_key", id), details)?;
    }
    Ok(revoked)
}

//! Tandem's process: settings, start-up and the pieces the `tandem` binary
//! and the black-box test suite share, so tests start exactly what
//! production starts.

pub mod housekeeping;
pub mod secret_file;
pub mod settings;
pub mod telemetry;

use anyhow::Context;
use chrono::Duration;
use settings::Settings;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use tandem_core::clock::Clock;
use tandem_core::oidc_client::UrlPolicy;
use tandem_store::{PoolOptions, Store};
use tandem_web::{AppState, Metrics, WebSettings};

/// Opens the database of `settings` for the server and applies pending
/// migrations.
pub fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    open_store_with(settings, 1).map(|(store, _)| store)
}

/// [`open_store`] for one CLI command: the pool keeps no idle connection,
/// so none is being opened on a pool thread when the command exits (on
/// PostgreSQL that crashed `integration-key revoke` about one run in seven).
/// A new database is set up, as a first start would; one at an earlier
/// release's schema is refused, not upgraded: a command run with a newer
/// release (to look around before an upgrade) must not migrate a database
/// the servers of the running release use.
pub fn open_command_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = open_unmigrated(settings, 0)?;
    match store.migration_state().context("cannot read the database's migrations")? {
        (_, 0) => {}
        (0, _) => {
            migrate(&store)?;
        }
        (_, pending) => anyhow::bail!(
            "the database has an earlier release's schema ({pending} of this release's migrations are not \
             applied): run `tandem migrate` (or start a server of this release) when the upgrade is due, or use \
             the release the servers run; this command does not upgrade a database"
        ),
    }
    Ok(store)
}

/// [`open_command_store`] for `tandem migrate`: also says how many
/// migrations it applied.
pub fn open_and_migrate(settings: &Settings) -> anyhow::Result<(Store, usize)> {
    open_store_with(settings, 0)
}

fn open_store_with(settings: &Settings, min_idle: u32) -> anyhow::Result<(Store, usize)> {
    let store = open_unmigrated(settings, min_idle)?;
    let applied = migrate(&store)?;
    Ok((store, applied))
}

/// [`open_command_store`] for a command that needs the secret key: a key
/// that is not the database's is refused before any migration runs.
pub fn open_command_store_with_key(settings: &Settings, key: &tandem_core::secret::SecretKey) -> anyhow::Result<Store> {
    let store = open_unmigrated(settings, 0)?;
    migrate_for_key(&store, key)?;
    Ok(store)
}

/// Migrates `store` once `key` is known not to be another key than the
/// database's: a node or command with the wrong key changes nothing.
fn migrate_for_key(store: &Store, key: &tandem_core::secret::SecretKey) -> anyhow::Result<()> {
    store.read_blocking(|c| tandem_store::meta::refuse_a_wrong_key(c, key)).context("secret key check failed")?;
    migrate(store).map(|_| ())
}

fn open_unmigrated(settings: &Settings, min_idle: u32) -> anyhow::Result<Store> {
    let options = PoolOptions {
        max_size: settings.database.pool_size,
        connect_timeout: std::time::Duration::from_secs(settings.database.connect_timeout_secs),
        min_idle,
    };
    Store::open(&settings.database.url, &options).context("cannot open the database")
}

/// Applies the pending migrations; returns how many.
fn migrate(store: &Store) -> anyhow::Result<usize> {
    let applied = store.migrate().context("cannot migrate the database")?;
    if applied > 0 {
        tracing::info!(applied, backend = store.backend(), "database migrations applied");
    }
    Ok(applied)
}

/// Warns at start of each redirect path several OIDC clients share (saved
/// with a warning, or before paths were checked): the operator may not have
/// seen the API's warning, and the mix-up it allows needs an IdP without
/// RFC 9207's `iss` (Entra ID) on one of them.
fn warn_of_shared_redirect_paths(store: &Store) {
    match store.read_blocking(tandem_store::oidc_clients::shared_redirect_paths) {
        Ok(shared) => {
            for (path, customers) in shared.iter().take(20) {
                tracing::warn!(
                    redirect_path = %path,
                    customers = ?customers.iter().take(10).collect::<Vec<_>>(),
                    clients = customers.len(),
                    "OIDC clients share a redirect_url path: give each its own (e.g. /sso/callback/{{customer_id}}), \
                     or one customer's IdP can obtain a login at another's (OAuth mix-up, RFC 9700 §4.4)"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not check the OIDC clients' redirect paths"),
    }
}

/// The `/readyz` URL of a server bound to `bind`: on loopback when it binds
/// every address (`0.0.0.0`, `[::]`), for `tandem healthcheck`.
pub fn readyz_url(mut bind: SocketAddr) -> String {
    if bind.ip().is_unspecified() {
        bind.set_ip(match bind.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{bind}/readyz")
}

/// A started server.
pub struct Running {
    /// The address actually bound (port 0 resolved).
    pub addr: SocketAddr,
    /// The admin listener's address, when `server.admin_bind` is set.
    pub admin_addr: Option<SocketAddr>,
    /// The server; await it to run until shutdown.
    pub server: actix_web::dev::Server,
    /// The shared state (tests reach the store through it).
    pub state: AppState,
    /// Background housekeeping; stops when dropped.
    pub housekeeping: housekeeping::Housekeeping,
    /// Webhook deliveries; stop when dropped.
    pub webhooks: tandem_web::webhooks::Deliveries,
}

/// Prepares everything and binds the listener; the returned server is not
/// yet polled.
pub fn start(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    // The key is checked before the migrations run: a node started with the
    // wrong key (or none, on PostgreSQL) changes nothing.
    let store = open_unmigrated(settings, 1)?;
    // A key file is made only for a database no key was used with yet: one
    // that has a key check lost its key file (a container recreated with
    // the file on a volume it no longer mounts), and a new key would read
    // none of its secrets.
    let used = store.backend() == "sqlite" && store.read_blocking(|c| Ok(tandem_store::meta::has_key_check(c)))?;
    let secrets = &settings.secrets;
    // (`try_exists`: a file that cannot be looked at is not called missing.)
    if used && secrets.key.trim().is_empty() && matches!(secrets.key_file.try_exists(), Ok(false)) {
        anyhow::bail!(
            "the database was set up with a secret key, and the key file {} does not exist: restore that file (or \
             give the key with TANDEM_SECRET_KEY, or point TANDEM_SECRET_KEY_FILE at it); a new key would read none \
             of the secrets stored",
            secrets.key_file.display()
        );
    }
    let secret_key = secret_file::load(secrets, store.backend() == "sqlite" && !used)?;
    migrate_for_key(&store, &secret_key)?;
    warn_of_shared_redirect_paths(&store);
    match store.folds_unicode_case() {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "this PostgreSQL database's lower() folds ASCII letters only (its ctype is C or POSIX): SCIM filters \
             that ignore case (caseExact false, e.g. emails[type eq \"work\"].value) and the login-event email \
             search compare other letters (É, Å) by case here, unlike on SQLite; a database created with a UTF-8 \
             ctype (LC_CTYPE 'C.UTF-8' or 'en_US.UTF-8') folds them"
        ),
        Err(e) => tracing::warn!(error = %e, "could not check how the database folds case"),
    }
    if secret_key.has_previous() {
        tracing::warn!(
            "secrets.previous_key is set: a key rotation is in progress. Once every node runs with the new key, run \
             `tandem secret-key rotate`, then remove the previous key"
        );
    }
    store
        .write_blocking(|c| tandem_store::meta::verify_secret_key(c, &secret_key))
        .context("secret key check failed")?;
    let listener = TcpListener::bind(settings.bind_addr()?)
        .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
    let addr = listener.local_addr()?;
    let admin_listener = match settings.admin_bind_addr()? {
        Some(a) => Some(TcpListener::bind(a).with_context(|| format!("cannot listen on {a} (server.admin_bind)"))?),
        None => None,
    };
    let admin_addr = admin_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let public_url = if settings.server.public_url.is_empty() {
        if addr.ip().is_unspecified() {
            tracing::warn!(
                bind = %addr,
                "server.public_url is not set and the server listens on every address: the SCIM base URLs \
                 it hands out name http://{addr}, which no client can reach; set TANDEM_PUBLIC_URL"
            );
        }
        format!("http://{addr}")
    } else {
        // As the URL parser writes it (scheme and host in lower case), so
        // that `HTTPS://…` still gives `Secure` cookies.
        let parsed = url::Url::parse(&settings.server.public_url).map(String::from);
        parsed.as_deref().unwrap_or(&settings.server.public_url).trim_end_matches('/').to_string()
    };
    let public_path =
        url::Url::parse(&public_url).map(|u| u.path().trim_end_matches('/').to_string()).unwrap_or_default();
    let web = WebSettings {
        public_url,
        public_path,
        max_body_bytes: settings.server.max_body_bytes,
        body_timeout: std::time::Duration::from_secs(settings.server.body_timeout_secs),
        url_policy: UrlPolicy { allow_http_everywhere: settings.oidc.allow_insecure_http },
        default_strategies: settings.matching.resolved()?,
        scim_key_ttl_days: (settings.scim.api_key_ttl_days > 0).then_some(settings.scim.api_key_ttl_days),
        scim_key_rotation_grace: Duration::hours(settings.scim.rotation_grace_hours as i64),
        scim_max_results: settings.scim.max_results,
        scim_members_per_page: settings.scim.members_per_page,
        scim_group_patch_answer: settings.scim.group_patch_answer,
        scim_max_body_bytes: settings.scim.max_body_bytes,
        login_ttl: Duration::seconds(settings.oidc.login_ttl_secs as i64),
        require_distinct_redirect_paths: settings.oidc.require_distinct_redirect_paths,
        setup_links: settings.oidc.block_private_addresses || settings.oidc.setup_links_allow_private_issuers,
        accept_unverified_email: settings.oidc.accept_unverified_email,
        userinfo: settings.oidc.userinfo,
        post_login_redirect_origins: settings.oidc.post_login_redirect_origins.clone(),
        public_listener: admin_addr.map(|_| addr),
        metrics_per_connection: settings.server.metrics_per_connection,
    };
    let extra_roots = match &settings.oidc.ca_file {
        Some(path) => tandem_oidc::read_ca_file(path).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let timeout = std::time::Duration::from_secs(settings.oidc.http_timeout_secs);
    let proxied = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .into_iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    if settings.oidc.block_private_addresses && proxied {
        tracing::warn!(
            "oidc.block_private_addresses calls IdPs directly, never through the proxy set in the environment \
             (a proxy would resolve the IdP's name itself, past the check): where the internet is reachable only \
             through the proxy, IdP calls will fail"
        );
    }
    // Webhook deliveries go through a client of their own (their own timeout), as careful as the IdPs'.
    let hook_timeout = std::time::Duration::from_secs(settings.webhooks.timeout_secs);
    let hook_http =
        tandem_oidc::IdpHttp::build(hook_timeout, extra_roots.clone(), settings.oidc.block_private_addresses)
            .map_err(anyhow::Error::msg)?;
    let http = tandem_oidc::IdpHttp::build(timeout, extra_roots, settings.oidc.block_private_addresses)
        .map_err(anyhow::Error::msg)?;
    let log_sink = tandem_store::sink::LogSink::start(store.clone());
    let idp_cache = Arc::new(tandem_oidc::cache::IdpCache::new(clock.clone()));
    let state = AppState {
        log_sink,
        integration_keys: Arc::default(),
        scim_keys: Arc::default(),
        store,
        secret_key: Arc::new(secret_key),
        settings: Arc::new(web),
        clock,
        http,
        idp_cache,
        metrics: Arc::new(Metrics::default()),
    };
    let workers = if settings.server.workers == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
    } else {
        settings.server.workers
    };
    let housekeeping = housekeeping::start(
        state.store.clone(),
        state.clock.clone(),
        settings.database.log_retention_days,
        settings.database.sso_user_retention_days,
    );
    let webhooks = tandem_web::webhooks::start(
        state.clone(),
        hook_http,
        std::time::Duration::from_millis(settings.webhooks.poll_interval_ms),
        hook_timeout,
    );
    let server = tandem_web::server(state.clone(), listener, admin_listener, workers)?;
    Ok(Running { addr, admin_addr, server, state, housekeeping, webhooks })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_health_check_asks_loopback_for_a_server_on_every_address() {
        let url = |a: &str| super::readyz_url(a.parse().unwrap());
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080/readyz");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080/readyz");
        assert_eq!(url("10.0.0.5:9000"), "http://10.0.0.5:9000/readyz");
    }
}

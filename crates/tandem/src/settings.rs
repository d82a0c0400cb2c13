//! Configuration: `config/default.toml` (built in) → an optional file →
//! `TANDEM_*` environment variables → command-line flags. Unknown keys and
//! malformed values are refused with the key named.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The built-in defaults (the file shipped in `config/`).
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// All settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: Server,
    pub database: Database,
    pub secrets: Secrets,
    pub log: Log,
    pub oidc: Oidc,
    pub scim: Scim,
    #[serde(default)]
    pub matching: Matching,
    #[serde(default)]
    pub webhooks: Webhooks,
}

/// Deliveries of the directory event feed to webhook endpoints.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Webhooks {
    /// How often each node looks for deliveries due.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How long a delivery may take before it counts as failed.
    #[serde(default = "default_webhook_timeout_secs")]
    pub timeout_secs: u64,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks { poll_interval_ms: default_poll_interval_ms(), timeout_secs: default_webhook_timeout_secs() }
    }
}

fn default_poll_interval_ms() -> u64 {
    1_000
}

fn default_webhook_timeout_secs() -> u64 {
    10
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub bind: String,
    /// Empty, or the address of the listener for everything but SCIM's
    /// outside callers (see `config/default.toml`).
    pub admin_bind: String,
    pub public_url: String,
    pub workers: usize,
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive (see `config/default.toml`).
    #[serde(default = "default_body_timeout_secs")]
    pub body_timeout_secs: u64,
    /// `/metrics` names each SCIM connection (and its customer ID) in
    /// series of its own; off, it gives counts only.
    #[serde(default)]
    pub metrics_per_connection: bool,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub url: String,
    pub pool_size: u32,
    pub connect_timeout_secs: u64,
    /// Login events, provisioning-log entries and directory events older
    /// than this many days are deleted (0: kept).
    #[serde(default = "default_log_retention_days")]
    pub log_retention_days: u64,
    /// SSO users (the identities logins saw, with their claims: the
    /// matching report's evidence) not seen for this many days are deleted
    /// (0: kept).
    #[serde(default = "default_log_retention_days")]
    pub sso_user_retention_days: u64,
}

fn default_log_retention_days() -> u64 {
    90
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A PostgreSQL URL may carry a password.
        let url = if self.url.starts_with("postgres") { "postgres://***" } else { self.url.as_str() };
        f.debug_struct("Database")
            .field("url", &url)
            .field("pool_size", &self.pool_size)
            .field("log_retention_days", &self.log_retention_days)
            .field("sso_user_retention_days", &self.sso_user_retention_days)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .finish()
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    pub key: String,
    pub key_file: PathBuf,
    /// The key before `key` while it is rotated (empty: none).
    #[serde(default)]
    pub previous_key: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let previous = if self.previous_key.trim().is_empty() { "" } else { "***" };
        f.debug_struct("Secrets")
            .field("key", &"***")
            .field("key_file", &self.key_file)
            .field("previous_key", &previous)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Oidc {
    pub allow_insecure_http: bool,
    /// No call to an IdP or a webhook receiver reaches a private, loopback
    /// or link-local address.
    #[serde(default)]
    pub block_private_addresses: bool,
    pub http_timeout_secs: u64,
    pub login_ttl_secs: u64,
    /// Refuse a client whose redirect path another client has (else a warning).
    #[serde(default = "yes")]
    pub require_distinct_redirect_paths: bool,
    /// Let an email the IdP marks `email_verified: false` identify a user.
    #[serde(default)]
    pub accept_unverified_email: bool,
    /// Serve setup links though `block_private_addresses` is off: their
    /// holders may then name issuers inside the network Tandem runs in.
    #[serde(default)]
    pub setup_links_allow_private_issuers: bool,
    /// Origins an absolute `post_login_redirect_url` may have besides that
    /// of the client's `redirect_url` (`https://app.example.com`), or `*`.
    #[serde(default)]
    pub post_login_redirect_origins: Vec<String>,
    /// A PEM file of CA certificates trusted for IdPs and webhook receivers besides the public
    /// roots (an on-premises IdP under an enterprise CA, a TLS-inspecting
    /// egress proxy).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// When a login asks the IdP's userinfo endpoint for claims the ID
    /// token lacks: `email_missing` or `profile_incomplete`.
    #[serde(default)]
    pub userinfo: tandem_web::state::UserinfoWhen,
}

fn yes() -> bool {
    true
}

fn default_members_per_page() -> u64 {
    100_000
}

fn default_body_timeout_secs() -> u64 {
    30
}

fn default_scim_max_body_bytes() -> usize {
    8 * 1024 * 1024
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scim {
    pub api_key_ttl_days: u64,
    pub rotation_grace_hours: u64,
    pub max_results: u32,
    /// Most group members one list page of groups holds in all (see the
    /// README's Large groups).
    #[serde(default = "default_members_per_page")]
    pub members_per_page: u64,
    pub group_patch_answer: tandem_web::state::GroupPatchAnswer,
    /// Largest SCIM request body: a group written whole (Okta's PUT of
    /// every member) outgrows the API's `server.max_body_bytes`.
    #[serde(default = "default_scim_max_body_bytes")]
    pub max_body_bytes: usize,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Matching {
    #[serde(default)]
    pub defaults: HashMap<String, String>,
}

impl Matching {
    /// The per-IdP-type defaults, with type names matched case-insensitively.
    /// The environment's names are spelled as the types are (see
    /// [`env_key`]), and the layers merge by exact name: where a file wrote
    /// `okta` and the environment sets Okta's default, both names arrive
    /// here, and the type's own spelling (the environment's, the later
    /// layer) is the one taken. Two other spellings of one type, without its
    /// own, are refused.
    pub fn resolved(
        &self,
    ) -> Result<HashMap<tandem_core::idp::IdpType, tandem_core::matching::MatchingStrategy>, SettingsError> {
        use tandem_core::idp::IdpType;
        // Every spelling of each type first: the map's order is random.
        let mut spellings: HashMap<IdpType, Vec<(&str, &str)>> = HashMap::new();
        for (name, strategy) in &self.defaults {
            let idp = IdpType::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(name)).ok_or_else(|| {
                SettingsError::Invalid {
                    key: "matching.defaults",
                    message: format!("unknown IdP type {name:?}; expected Okta, MicrosoftEntra or Generic"),
                }
            })?;
            spellings.entry(idp).or_default().push((name.as_str(), strategy.as_str()));
        }
        let mut out = HashMap::new();
        for (idp, mut names) in spellings {
            names.sort_unstable();
            let (name, strategy) = match names.iter().find(|(n, _)| *n == idp.as_str()) {
                Some(own) => *own,
                None if names.len() == 1 => names[0],
                None => {
                    let listed: Vec<String> = names.iter().map(|(n, _)| format!("{n:?}")).collect();
                    return Err(SettingsError::Invalid {
                        key: "matching.defaults",
                        message: format!(
                            "{} is set more than once, as {}; keep one",
                            idp.as_str(),
                            listed.join(" and ")
                        ),
                    });
                }
            };
            let strategy = strategy.parse().map_err(|e: tandem_core::matching::UnknownStrategy| {
                SettingsError::Invalid { key: "matching.defaults", message: format!("{name}: {e}") }
            })?;
            out.insert(idp, strategy);
        }
        Ok(out)
    }
}

/// Values given on the command line (highest precedence).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// Why the configuration was refused.
#[derive(thiserror::Error)]
pub enum SettingsError {
    /// Not its error's source: the chain would print it again, quoted lines and all.
    #[error("configuration error: {}", without_source_lines(&.0.to_string()))]
    Figment(Box<figment::Error>),
    #[error("configuration error: {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// As displayed: the figment error's own form would quote the TOML line.
impl std::fmt::Debug for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl From<Box<figment::Error>> for SettingsError {
    fn from(e: Box<figment::Error>) -> Self {
        SettingsError::Figment(e)
    }
}

/// A TOML syntax error quotes the line it is on (`3 | key = …`), which may
/// hold a secret (`secrets.key`, a database password): the quoted lines
/// are left out, the line and column numbers kept.
fn without_source_lines(message: &str) -> String {
    let quoted = |l: &str| {
        let t = l.trim_start();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && t[digits..].starts_with(" |")
    };
    message.lines().filter(|l| !quoted(l)).collect::<Vec<_>>().join("\n")
}

/// Short environment names for the most used keys (after `TANDEM_`), the
/// only names read outside `SECTION__KEY` form, each with the setting it names.
const SHORTHAND_ENV: [(&str, &str); 6] = [
    ("bind", "server.bind"),
    ("admin_bind", "server.admin_bind"),
    ("public_url", "server.public_url"),
    ("database_url", "database.url"),
    ("secret_key", "secrets.key"),
    ("secret_key_file", "secrets.key_file"),
];

/// `TANDEM_*` variables that are no setting but name one with a single `_`
/// after its section (`TANDEM_LOG_LEVEL` for `TANDEM_LOG__LEVEL`), each with
/// the name meant. They are ignored like any other `TANDEM_*` variable that
/// is not a setting (so that a Kubernetes Service named tandem does not stop
/// the start), which hides the mistake: the caller warns of them. Only a
/// real key of `settings` counts: `TANDEM_SCIM_SERVICE_HOST` (a Service
/// named tandem-scim) is someone else's.
pub fn misspelled_env(names: impl IntoIterator<Item = String>, settings: &Settings) -> Vec<(String, String)> {
    let shape = serde_json::to_value(settings).unwrap_or_default();
    names
        .into_iter()
        .filter_map(|name| {
            let rest = name.get(..7).filter(|p| p.eq_ignore_ascii_case("TANDEM_")).and(name.get(7..))?;
            let lower = rest.to_ascii_lowercase();
            if lower.contains("__") || SHORTHAND_ENV.iter().any(|(short, _)| *short == lower) {
                return None;
            }
            // The sections are the settings' own (`TANDEM_<SECTION>__<KEY>`).
            let section =
                shape.as_object()?.keys().find(|s| lower.len() > s.len() + 1 && lower.starts_with(&format!("{s}_")))?;
            let key = &lower[section.len() + 1..];
            let meant = match key.strip_prefix("defaults_").filter(|_| section == "matching") {
                // An IdP type's default strategy: two levels down.
                Some(idp) => format!("TANDEM_MATCHING__DEFAULTS__{}", idp.to_ascii_uppercase()),
                None if shape[section.as_str()].get(key).is_some() => {
                    format!("TANDEM_{}__{}", section.to_ascii_uppercase(), key.to_ascii_uppercase())
                }
                None => return None,
            };
            Some((name, meant))
        })
        .collect()
}

/// The setting an environment name (after `TANDEM_`) names.
fn env_key(key: &str) -> String {
    let key = key.to_ascii_lowercase();
    match SHORTHAND_ENV.iter().find(|(short, _)| *short == key) {
        Some((_, setting)) => (*setting).into(),
        None => {
            let key = key.replace("__", ".");
            // An IdP type as the types are spelled (`matching.defaults.Okta`),
            // so that it replaces the file's value of the same spelling.
            match key.strip_prefix("matching.defaults.") {
                Some(name) => {
                    match tandem_core::idp::IdpType::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(name)) {
                        Some(idp) => format!("matching.defaults.{}", idp.as_str()),
                        None => key,
                    }
                }
                None => key,
            }
        }
    }
}

impl Settings {
    /// Loads the layers: defaults, `file` (if any), the environment, `overrides`.
    pub fn load(file: Option<&std::path::Path>, overrides: &Overrides) -> Result<Settings, SettingsError> {
        Self::load_from(file, overrides, "TANDEM_")
    }

    /// Like [`Settings::load`] with the environment variables under another
    /// prefix (tests).
    pub fn load_from(
        file: Option<&std::path::Path>,
        overrides: &Overrides,
        prefix: &str,
    ) -> Result<Settings, SettingsError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            if !file.exists() {
                return Err(SettingsError::Invalid {
                    key: "--config",
                    message: format!("{} does not exist", file.display()),
                });
            }
            if file.is_dir() {
                return Err(SettingsError::Invalid {
                    key: "--config",
                    message: format!("{} is a directory, not a TOML file", file.display()),
                });
            }
            // Exactly this file: `Toml::file` would search the parent
            // directories for a relative name and skip anything but a
            // regular file (a pipe, `<(…)`) without a word.
            figment = figment.merge(Toml::file_exact(file));
        }
        // Only the shorthand names and `SECTION__KEY` names are settings:
        // other `TANDEM_*` variables are someone else's (Kubernetes adds
        // `TANDEM_PORT` and `TANDEM_SERVICE_HOST` for a Service named
        // tandem; apps use `TANDEM_URL`), and would refuse the start as
        // unknown fields. `env_key` lower-cases the names itself, all but an
        // IdP type's.
        //
        // Of two names of one setting (`TANDEM_SERVER__BIND` and
        // `TANDEM_BIND`), the full one is taken: the image's `TANDEM_BIND`
        // must not beat a `TANDEM_SERVER__BIND` given to the container, and
        // which one figment kept would otherwise follow the environment's order.
        let full_names: std::collections::HashSet<String> = std::env::vars_os()
            .filter_map(|(k, _)| {
                // Case-insensitively, as `Env::prefixed` reads the prefix.
                let k = k.to_str()?;
                let rest =
                    k.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(prefix)).and(k.get(prefix.len()..))?;
                rest.contains("__").then(|| env_key(rest))
            })
            .collect();
        let env = Env::prefixed(prefix)
            .filter(move |k| {
                let k = k.as_str().to_ascii_lowercase();
                k.contains("__")
                    || SHORTHAND_ENV.iter().any(|(short, setting)| *short == k && !full_names.contains(*setting))
            })
            .map(|k| env_key(k.as_str()).into())
            .lowercase(false);
        figment = figment.merge(env);
        let mut cli = serde_json::Map::new();
        if let Some(b) = &overrides.bind {
            cli.insert("server".into(), serde_json::json!({"bind": b}));
        }
        if let Some(u) = &overrides.database_url {
            cli.insert("database".into(), serde_json::json!({"url": u}));
        }
        figment = figment.merge(Serialized::defaults(serde_json::Value::Object(cli)));
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let bind = self.bind_addr()?;
        if let Some(admin) = self.admin_bind_addr()? {
            if admin == bind && admin.port() != 0 {
                return Err(SettingsError::Invalid {
                    key: "server.admin_bind",
                    message: format!("{admin} is server.bind too; give another address, or leave it empty"),
                });
            }
        }
        tandem_store::DatabaseUrl::parse(&self.database.url)
            .map_err(|message| SettingsError::Invalid { key: "database.url", message })?;
        if !self.server.public_url.is_empty() {
            let url = url::Url::parse(&self.server.public_url).map_err(|e| SettingsError::Invalid {
                key: "server.public_url",
                message: format!("{:?} is not an absolute URL ({e})", self.server.public_url),
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(SettingsError::Invalid {
                    key: "server.public_url",
                    message: "must be an http(s) URL".into(),
                });
            }
            // It is the base of every SCIM URL handed out: a query, a
            // fragment or credentials would end up inside them.
            if url.query().is_some()
                || url.fragment().is_some()
                || !url.username().is_empty()
                || url.password().is_some()
            {
                return Err(SettingsError::Invalid {
                    key: "server.public_url",
                    message: format!(
                        "{:?} must be a base URL without a query, a fragment or credentials",
                        self.server.public_url
                    ),
                });
            }
        }
        // Upper bounds: the pool allocates room for every connection up
        // front, and a timeout is added to the current instant, which a
        // value near the type's maximum overflows.
        if !(1..=1000).contains(&self.database.pool_size) {
            return Err(SettingsError::Invalid { key: "database.pool_size", message: "must be from 1 to 1000".into() });
        }
        if self.server.workers > 1024 {
            return Err(SettingsError::Invalid {
                key: "server.workers",
                message: "must be at most 1024 (0: one per CPU core)".into(),
            });
        }
        if self.server.max_body_bytes < 1024 {
            return Err(SettingsError::Invalid {
                key: "server.max_body_bytes",
                message: "must be at least 1024".into(),
            });
        }
        if !(1..=3600).contains(&self.server.body_timeout_secs) {
            return Err(SettingsError::Invalid {
                key: "server.body_timeout_secs",
                message: "must be from 1 to 3600".into(),
            });
        }
        if !(30..=86_400).contains(&self.oidc.login_ttl_secs) {
            return Err(SettingsError::Invalid {
                key: "oidc.login_ttl_secs",
                message: "must be from 30 to 86400".into(),
            });
        }
        if !(1..=3600).contains(&self.database.connect_timeout_secs) {
            return Err(SettingsError::Invalid {
                key: "database.connect_timeout_secs",
                message: "must be from 1 to 3600".into(),
            });
        }
        for (key, days) in [
            ("database.log_retention_days", self.database.log_retention_days),
            ("database.sso_user_retention_days", self.database.sso_user_retention_days),
        ] {
            if days > 36_500 {
                return Err(SettingsError::Invalid { key, message: "must be at most 36500 (0: kept for good)".into() });
            }
        }
        for origin in &self.oidc.post_login_redirect_origins {
            if origin != "*" && tandem_core::login::parse_origin(origin).is_none() {
                return Err(SettingsError::Invalid {
                    key: "oidc.post_login_redirect_origins",
                    message: format!("{origin:?} is not an origin like https://app.example.com (or *)"),
                });
            }
        }
        if !(1..=3600).contains(&self.oidc.http_timeout_secs) {
            return Err(SettingsError::Invalid {
                key: "oidc.http_timeout_secs",
                message: "must be from 1 to 3600".into(),
            });
        }
        let poll = self.webhooks.poll_interval_ms;
        if poll != 0 && !(10..=3_600_000).contains(&poll) {
            return Err(SettingsError::Invalid {
                key: "webhooks.poll_interval_ms",
                message: format!("must be 0 (no deliveries from this node) or 10 to 3600000, got {poll}"),
            });
        }
        if !(1..=300).contains(&self.webhooks.timeout_secs) {
            return Err(SettingsError::Invalid {
                key: "webhooks.timeout_secs",
                message: format!("must be 1 to 300, got {}", self.webhooks.timeout_secs),
            });
        }
        if self.scim.max_body_bytes < 1024 {
            return Err(SettingsError::Invalid { key: "scim.max_body_bytes", message: "must be at least 1024".into() });
        }
        if self.scim.members_per_page == 0 {
            return Err(SettingsError::Invalid { key: "scim.members_per_page", message: "must be at least 1".into() });
        }
        if self.scim.max_results == 0 {
            return Err(SettingsError::Invalid { key: "scim.max_results", message: "must be at least 1".into() });
        }
        // The bounds the API holds a connection's own TTL and a rotation's grace to.
        if self.scim.api_key_ttl_days > tandem_core::scim_connection::MAX_TTL_DAYS {
            return Err(SettingsError::Invalid {
                key: "scim.api_key_ttl_days",
                message: format!(
                    "must be at most {} (0: keys never expire)",
                    tandem_core::scim_connection::MAX_TTL_DAYS
                ),
            });
        }
        if self.scim.rotation_grace_hours > 720 {
            return Err(SettingsError::Invalid {
                key: "scim.rotation_grace_hours",
                message: "must be at most 720 (30 days)".into(),
            });
        }
        self.matching.resolved()?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| SettingsError::Invalid { key: "log.level", message: e.to_string() })?;
        Ok(())
    }

    /// The admin listener's address, when one is set.
    pub fn admin_bind_addr(&self) -> Result<Option<SocketAddr>, SettingsError> {
        if self.server.admin_bind.trim().is_empty() {
            return Ok(None);
        }
        self.server.admin_bind.trim().parse().map(Some).map_err(|e| SettingsError::Invalid {
            key: "server.admin_bind",
            message: format!("{:?} is not an address like 127.0.0.1:9090 ({e})", self.server.admin_bind),
        })
    }

    /// The address to listen on.
    pub fn bind_addr(&self) -> Result<SocketAddr, SettingsError> {
        self.server.bind.parse().map_err(|e| SettingsError::Invalid {
            key: "server.bind",
            message: format!("{:?} is not an address like 127.0.0.1:8080 ({e})", self.server.bind),
        })
    }
}

/// Held by the tests that set or read environment variables, here and in
/// [`crate::secret_file`] (aws-lc may read one as it starts): on glibc,
/// setting a variable while another thread reads the environment outside
/// Rust's own lock (a C library's `getenv`) can crash the test binary.
#[cfg(test)]
pub(crate) static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`ENV_LOCK`]; a test that failed while holding it does not fail the others.
#[cfg(test)]
pub(crate) fn env_lock() -> std::sync::MutexGuard<'static, ()> {
    ENV_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_address_must_parse_and_differ_from_the_main_one() {
        let s = load_with("TANDEM_UT_ADMIN_NONE_", &[]).unwrap();
        assert_eq!(s.admin_bind_addr().unwrap(), None);
        let s = load_with("TANDEM_UT_ADMIN_OK_", &[("SERVER__ADMIN_BIND", "127.0.0.1:9090")]).unwrap();
        assert_eq!(s.admin_bind_addr().unwrap(), Some("127.0.0.1:9090".parse().unwrap()));
        let s = load_with("TANDEM_UT_ADMIN_SHORT_", &[("ADMIN_BIND", "127.0.0.1:9091")]).unwrap();
        assert_eq!(s.admin_bind_addr().unwrap(), Some("127.0.0.1:9091".parse().unwrap()), "the shorthand");
        let err = load_with("TANDEM_UT_ADMIN_BAD_", &[("SERVER__ADMIN_BIND", "private")]).unwrap_err().to_string();
        assert!(err.contains("server.admin_bind"), "{err}");
        let same = [("BIND", "127.0.0.1:8080"), ("SERVER__ADMIN_BIND", "127.0.0.1:8080")];
        let err = load_with("TANDEM_UT_ADMIN_SAME_", &same).unwrap_err().to_string();
        assert!(err.contains("server.admin_bind") && err.contains("server.bind too"), "{err}");
    }

    #[test]
    fn a_public_url_with_a_query_a_fragment_or_credentials_is_refused() {
        for (i, bad) in ["https://sso.example.com/?a=b", "https://sso.example.com/#x", "https://u:p@sso.example.com"]
            .into_iter()
            .enumerate()
        {
            let err = load_with(&format!("TANDEM_UT_PURL{i}_"), &[("PUBLIC_URL", bad)]).unwrap_err().to_string();
            assert!(err.contains("server.public_url") && err.contains("without a query"), "{bad}: {err}");
        }
        let s = load_with("TANDEM_UT_PURL_OK_", &[("PUBLIC_URL", "https://sso.example.com/base/")]).unwrap();
        assert_eq!(s.server.public_url, "https://sso.example.com/base/");
    }

    #[test]
    fn a_setting_spelled_with_one_underscore_is_named_with_the_name_meant() {
        let names = [
            "TANDEM_LOG_LEVEL",
            "TANDEM_secrets_key",
            "TANDEM_OIDC_LOGIN_TTL_SECS",
            "TANDEM_LOG__LEVEL",
            "TANDEM_SECRET_KEY",
            "TANDEM_PUBLIC_URL",
            "TANDEM_PORT",
            "TANDEM_SERVICE_HOST",
            "TANDEM_LOG_",
            "OTHER_LOG_LEVEL",
            "TANDEM_MATCHING_DEFAULTS_OKTA",
            // A Kubernetes Service named tandem-scim, and the admin address's shorthand.
            "TANDEM_SCIM_SERVICE_HOST",
            "TANDEM_SCIM_PORT_443_TCP_ADDR",
            "TANDEM_ADMIN_BIND",
        ];
        let settings = load_with("TANDEM_UT_MISSPELLED_", &[]).unwrap();
        let found = misspelled_env(names.map(String::from), &settings);
        let expected = [
            ("TANDEM_LOG_LEVEL", "TANDEM_LOG__LEVEL"),
            ("TANDEM_secrets_key", "TANDEM_SECRETS__KEY"),
            ("TANDEM_OIDC_LOGIN_TTL_SECS", "TANDEM_OIDC__LOGIN_TTL_SECS"),
            ("TANDEM_MATCHING_DEFAULTS_OKTA", "TANDEM_MATCHING__DEFAULTS__OKTA"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(found, expected);
    }

    /// Loads with environment variables under a prefix unique to the test
    /// (holding [`ENV_LOCK`] while it sets and reads them).
    fn load_with(prefix: &str, vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let _env = env_lock();
        for (k, v) in vars {
            std::env::set_var(format!("{prefix}{k}"), v);
        }
        Settings::load_from(None, &Overrides::default(), prefix)
    }

    #[test]
    fn defaults_load() {
        let s = load_with("TANDEM_UT_DEFAULTS_", &[]).unwrap();
        assert_eq!(s.database.url, "sqlite://./data/tandem.db");
        assert_eq!(s.scim.api_key_ttl_days, 180);
        assert_eq!(s.server.bind, "127.0.0.1:8080");
    }

    #[test]
    fn shorthand_and_nested_env_vars_apply() {
        let s = load_with(
            "TANDEM_UT_ENV_",
            &[("DATABASE_URL", "postgres://localhost/x"), ("SCIM__API_KEY_TTL_DAYS", "90"), ("BIND", "0.0.0.0:9999")],
        )
        .unwrap();
        assert_eq!(s.database.url, "postgres://localhost/x");
        assert_eq!(s.scim.api_key_ttl_days, 90);
        assert_eq!(s.server.bind, "0.0.0.0:9999");
    }

    /// Of both names of one setting the full one is taken, whatever the
    /// environment's order (which one won followed it).
    #[test]
    fn of_two_names_of_a_setting_in_the_environment_the_full_one_wins() {
        for (i, order) in [["BIND", "SERVER__BIND"], ["SERVER__BIND", "BIND"]].into_iter().enumerate() {
            let vars: Vec<(&str, &str)> =
                order.iter().map(|k| (*k, if *k == "BIND" { "127.0.0.1:1" } else { "127.0.0.1:2" })).collect();
            let s = load_with(&format!("TANDEM_UT_TWICE{i}_"), &vars).unwrap();
            assert_eq!(s.server.bind, "127.0.0.1:2", "{order:?}");
        }
        let s = load_with("TANDEM_UT_SHORT_", &[("SECRET_KEY_FILE", "/k")]).unwrap();
        assert_eq!(s.secrets.key_file, std::path::PathBuf::from("/k"));
    }

    #[test]
    fn other_tandem_variables_are_not_settings() {
        // What Kubernetes adds for a Service named tandem, and what an app that calls Tandem sets.
        let s = load_with(
            "TANDEM_UT_OTHERS_",
            &[
                ("PORT", "tcp://10.0.0.1:8080"),
                ("SERVICE_HOST", "10.0.0.1"),
                ("PORT_8080_TCP_ADDR", "10.0.0.1"),
                ("URL", "http://tandem:8080"),
                ("API_KEY", "tandem_ik_x"),
                ("BIND", "0.0.0.0:9000"),
            ],
        )
        .unwrap();
        assert_eq!(s.server.bind, "0.0.0.0:9000");
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let err = load_with("TANDEM_UT_UNKNOWN_", &[("SCIM__API_KEY_TTL", "90")]).unwrap_err().to_string();
        assert!(err.contains("api_key_ttl"), "{err}");
    }

    #[test]
    fn malformed_value_is_refused_with_its_key() {
        let err = load_with("TANDEM_UT_BAD_", &[("SCIM__MAX_RESULTS", "lots")]).unwrap_err().to_string();
        assert!(err.to_lowercase().contains("scim.max_results"), "{err}");
        let err = load_with("TANDEM_UT_BIND_", &[("BIND", "nowhere")]).unwrap_err().to_string();
        assert!(err.contains("server.bind"), "{err}");
    }

    #[test]
    fn key_lifetimes_past_the_apis_bounds_are_refused_at_start() {
        let err = load_with("TANDEM_UT_TTL_", &[("SCIM__API_KEY_TTL_DAYS", "100000000")]).unwrap_err().to_string();
        assert!(err.contains("scim.api_key_ttl_days") && err.contains("3650"), "{err}");
        let err = load_with("TANDEM_UT_GRACE_", &[("SCIM__ROTATION_GRACE_HOURS", "100000")]).unwrap_err().to_string();
        assert!(err.contains("scim.rotation_grace_hours") && err.contains("720"), "{err}");
        assert!(load_with("TANDEM_UT_TTL_OK_", &[("SCIM__API_KEY_TTL_DAYS", "3650")]).is_ok());
        for (i, (var, value, key)) in [
            ("DATABASE__POOL_SIZE", "4294967295", "database.pool_size"),
            ("DATABASE__CONNECT_TIMEOUT_SECS", "18446744073709551615", "database.connect_timeout_secs"),
            ("OIDC__HTTP_TIMEOUT_SECS", "18446744073709551615", "oidc.http_timeout_secs"),
            ("SERVER__WORKERS", "100000", "server.workers"),
            ("SERVER__BODY_TIMEOUT_SECS", "0", "server.body_timeout_secs"),
            ("SERVER__BODY_TIMEOUT_SECS", "3601", "server.body_timeout_secs"),
            ("WEBHOOKS__POLL_INTERVAL_MS", "5", "webhooks.poll_interval_ms"),
            ("WEBHOOKS__TIMEOUT_SECS", "0", "webhooks.timeout_secs"),
            ("WEBHOOKS__TIMEOUT_SECS", "100000000000000", "webhooks.timeout_secs"),
            ("DATABASE__LOG_RETENTION_DAYS", "36501", "database.log_retention_days"),
            ("DATABASE__SSO_USER_RETENTION_DAYS", "36501", "database.sso_user_retention_days"),
        ]
        .into_iter()
        .enumerate()
        {
            let err = load_with(&format!("TANDEM_UT_HOOK_{i}_"), &[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        let off = load_with("TANDEM_UT_HOOK_OFF_", &[("WEBHOOKS__POLL_INTERVAL_MS", "0")]).unwrap();
        assert_eq!(off.webhooks.poll_interval_ms, 0);
        let kept = load_with("TANDEM_UT_SSO_KEPT_", &[("DATABASE__SSO_USER_RETENTION_DAYS", "0")]).unwrap();
        assert_eq!((kept.database.sso_user_retention_days, kept.database.log_retention_days), (0, 90));
        for (var, key) in [
            ("DATABASE__CONNECT_TIMEOUT_SECS", "database.connect_timeout_secs"),
            ("OIDC__HTTP_TIMEOUT_SECS", "oidc.http_timeout_secs"),
        ] {
            let err = load_with(&format!("TANDEM_UT_ZERO_{}_", var.len()), &[(var, "0")]).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn userinfo_loads_by_name_and_refuses_others() {
        use tandem_web::state::UserinfoWhen;
        assert_eq!(load_with("TANDEM_UT_UI_DEFAULT_", &[]).unwrap().oidc.userinfo, UserinfoWhen::EmailMissing);
        let s = load_with("TANDEM_UT_UI_SET_", &[("OIDC__USERINFO", "profile_incomplete")]).unwrap();
        assert_eq!(s.oidc.userinfo, UserinfoWhen::ProfileIncomplete);
        let err = load_with("TANDEM_UT_UI_BAD_", &[("OIDC__USERINFO", "sometimes")]).unwrap_err().to_string();
        assert!(err.to_lowercase().contains("oidc.userinfo") && err.contains("profile_incomplete"), "{err}");
    }

    #[test]
    fn post_login_origins_load_as_a_list_and_must_be_origins() {
        assert!(load_with("TANDEM_UT_PLO_DEFAULT_", &[]).unwrap().oidc.post_login_redirect_origins.is_empty());
        let s = load_with(
            "TANDEM_UT_PLO_SET_",
            &[("OIDC__POST_LOGIN_REDIRECT_ORIGINS", "[\"https://app.example.com\", \"http://127.0.0.1:3000\"]")],
        )
        .unwrap();
        assert_eq!(s.oidc.post_login_redirect_origins, ["https://app.example.com", "http://127.0.0.1:3000"]);
        let err =
            load_with("TANDEM_UT_PLO_BAD_", &[("OIDC__POST_LOGIN_REDIRECT_ORIGINS", "[\"https://a.example/path\"]")])
                .unwrap_err()
                .to_string();
        assert!(err.contains("oidc.post_login_redirect_origins"), "{err}");
    }

    #[test]
    fn the_login_safety_switches_default_safe_and_load_from_the_environment() {
        let s = load_with("TANDEM_UT_OIDC_DEFAULT_", &[]).unwrap();
        assert!(s.oidc.require_distinct_redirect_paths && !s.oidc.accept_unverified_email);
        let s = load_with(
            "TANDEM_UT_OIDC_SET_",
            &[("OIDC__REQUIRE_DISTINCT_REDIRECT_PATHS", "false"), ("OIDC__ACCEPT_UNVERIFIED_EMAIL", "true")],
        )
        .unwrap();
        assert!(!s.oidc.require_distinct_redirect_paths && s.oidc.accept_unverified_email);
    }

    #[test]
    fn scim_bodies_may_be_larger_than_api_bodies_and_the_limit_loads_from_the_environment() {
        let s = load_with("TANDEM_UT_SMB_DEFAULT_", &[]).unwrap();
        assert_eq!((s.server.max_body_bytes, s.scim.max_body_bytes), (1024 * 1024, 8 * 1024 * 1024));
        let s = load_with("TANDEM_UT_SMB_SET_", &[("SCIM__MAX_BODY_BYTES", "20000000")]).unwrap();
        assert_eq!(s.scim.max_body_bytes, 20_000_000);
        let err = load_with("TANDEM_UT_SMB_LOW_", &[("SCIM__MAX_BODY_BYTES", "10")]).unwrap_err().to_string();
        assert!(err.contains("scim.max_body_bytes"), "{err}");
    }

    #[test]
    fn group_patch_answer_is_group_unless_set_to_no_content() {
        use tandem_web::state::GroupPatchAnswer;
        assert_eq!(load_with("TANDEM_UT_GPA_DEFAULT_", &[]).unwrap().scim.group_patch_answer, GroupPatchAnswer::Group);
        let s = load_with("TANDEM_UT_GPA_SET_", &[("SCIM__GROUP_PATCH_ANSWER", "no_content")]).unwrap();
        assert_eq!(s.scim.group_patch_answer, GroupPatchAnswer::NoContent);
        let err = load_with("TANDEM_UT_GPA_BAD_", &[("SCIM__GROUP_PATCH_ANSWER", "nothing")]).unwrap_err().to_string();
        assert!(err.to_lowercase().contains("scim.group_patch_answer") && err.contains("no_content"), "{err}");
    }

    #[test]
    fn unknown_strategy_in_deployment_defaults_is_refused() {
        let err = load_with("TANDEM_UT_STRAT_", &[("MATCHING__DEFAULTS__OKTA", "ByMagic")]).unwrap_err().to_string();
        assert!(err.contains("ByMagic") && err.contains("matching.defaults"), "{err}");
        let s = load_with("TANDEM_UT_STRAT_OK_", &[("MATCHING__DEFAULTS__OKTA", "OidcSubToScimExternalId")]).unwrap();
        let resolved = s.matching.resolved().unwrap();
        assert_eq!(
            resolved[&tandem_core::idp::IdpType::Okta],
            tandem_core::matching::MatchingStrategy::OidcSubToScimExternalId
        );
    }

    #[test]
    fn an_idp_types_default_from_the_environment_beats_the_files_in_any_spelling() {
        use tandem_core::{idp::IdpType, matching::MatchingStrategy};
        let dir = std::env::temp_dir().join(format!("tandem-settings-{}", tandem_core::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tandem.toml");
        let _env = env_lock();
        std::env::set_var("TANDEM_UT_CASE_MATCHING__DEFAULTS__OKTA", "OidcEmailToScimUsername");
        for spelling in ["Okta", "okta"] {
            std::fs::write(&file, format!("[matching.defaults]\n{spelling} = \"OidcSubToScimExternalId\"\n")).unwrap();
            // The merged names sit in a map whose order changes with every load.
            for _ in 0..20 {
                let s = Settings::load_from(Some(&file), &Overrides::default(), "TANDEM_UT_CASE_").unwrap();
                let strategy = s.matching.resolved().unwrap()[&IdpType::Okta];
                assert_eq!(strategy, MatchingStrategy::OidcEmailToScimUsername, "file: {spelling}");
            }
            // Without the environment the file's value is taken.
            let s = Settings::load_from(Some(&file), &Overrides::default(), "TANDEM_UT_CASE_NONE_").unwrap();
            assert_eq!(s.matching.resolved().unwrap()[&IdpType::Okta], MatchingStrategy::OidcSubToScimExternalId);
        }
        // Other spellings beside the type's own (from the environment) give way to it, whatever the order.
        std::fs::write(
            &file,
            "[matching.defaults]\nokta = \"OidcSubToScimExternalId\"\nOKTA = \"OidcSubToScimExternalId\"\n",
        )
        .unwrap();
        for _ in 0..20 {
            let s = Settings::load_from(Some(&file), &Overrides::default(), "TANDEM_UT_CASE_").unwrap();
            assert_eq!(s.matching.resolved().unwrap()[&IdpType::Okta], MatchingStrategy::OidcEmailToScimUsername);
        }
        // Two spellings in one file are refused at start, naming both.
        std::fs::write(
            &file,
            "[matching.defaults]\nokta = \"OidcSubToScimExternalId\"\nOKTA = \"OidcEmailToScimUsername\"\n",
        )
        .unwrap();
        let err =
            Settings::load_from(Some(&file), &Overrides::default(), "TANDEM_UT_CASE_NONE_").unwrap_err().to_string();
        assert!(err.contains("\"okta\"") && err.contains("\"OKTA\""), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn command_line_beats_environment() {
        let _env = env_lock();
        std::env::set_var("TANDEM_UT_CLI_DATABASE_URL", "sqlite://env.db");
        let o = Overrides { database_url: Some("sqlite://cli.db".into()), bind: None };
        let s = Settings::load_from(None, &o, "TANDEM_UT_CLI_").unwrap();
        assert_eq!(s.database.url, "sqlite://cli.db");
    }
}

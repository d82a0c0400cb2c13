//! What every handler can reach: storage, the secret key, settings, the
//! clock, the upstream HTTP client and metrics.

use crate::metrics::Metrics;
use chrono::Duration;
use std::collections::HashMap;
use std::sync::Arc;
use tandem_core::clock::Clock;
use tandem_core::idp::IdpType;
use tandem_core::matching::MatchingStrategy;
use tandem_core::oidc_client::UrlPolicy;
use tandem_core::secret::SecretKey;
use tandem_oidc::IdpHttp;
use tandem_store::sink::LogSink;
use tandem_store::Store;

/// When a login asks the IdP's userinfo endpoint for claims the ID token
/// lacks (one round trip to the IdP more).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserinfoWhen {
    /// When the ID token has no `email` (what the matching and the
    /// allowlist need most).
    #[default]
    EmailMissing,
    /// Also when it has no `given_name`, `family_name` or `email_verified`
    /// (Okta's org authorization server and Entra ID leave them out of ID
    /// tokens; an app that fills in profiles from the login wants them).
    ProfileIncomplete,
}

/// What a SCIM group PATCH answers (RFC 7644 §3.5.2 allows both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupPatchAnswer {
    /// 200 with the whole group, members included: what every SCIM client
    /// understands, but its size grows with the group's.
    #[default]
    Group,
    /// 204 No Content with the ETag, unless the request asks for
    /// `attributes` or `excludedAttributes`: a membership change then costs
    /// the same for a group of ten members or of a hundred thousand.
    NoContent,
}

/// Settings the HTTP layer needs, resolved from the configuration once at start.
#[derive(Clone, Debug)]
pub struct WebSettings {
    /// Public base URL (no trailing slash) used to build SCIM URLs handed out.
    pub public_url: String,
    /// `public_url`'s path without its trailing slash (`""` at the root,
    /// `/sso` behind a proxy that serves Tandem there and strips it): the
    /// setup pages' links, forms and redirects start with it.
    pub public_path: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest a request body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// Where plain-http URLs are accepted.
    pub url_policy: UrlPolicy,
    /// Deployment-wide matching strategy per IdP type (overrides the built-in default).
    pub default_strategies: HashMap<IdpType, MatchingStrategy>,
    /// Default lifetime of SCIM keys in days; `None`: keys never expire.
    pub scim_key_ttl_days: Option<u64>,
    /// How long a rotated-out SCIM key keeps working.
    pub scim_key_rotation_grace: Duration,
    /// Most resources one SCIM list page returns.
    pub scim_max_results: u32,
    /// Most group members one SCIM list page of groups holds in all.
    pub scim_members_per_page: u64,
    /// What a group PATCH answers.
    pub scim_group_patch_answer: GroupPatchAnswer,
    /// Largest SCIM request body.
    pub scim_max_body_bytes: usize,
    /// How long a login may take between initiate and complete.
    pub login_ttl: Duration,
    /// Refuse (409) a client whose redirect path another client has; when
    /// off, the client is saved with a warning.
    pub require_distinct_redirect_paths: bool,
    /// Whether setup links are made and opened: only where their holders
    /// cannot point Tandem at its own network (`oidc.block_private_addresses`),
    /// or where the operator allows it (`oidc.setup_links_allow_private_issuers`).
    pub setup_links: bool,
    /// Let an email the IdP marks `email_verified: false` identify a user
    /// and pass an allowlist (IdPs whose emails are all admin-set but
    /// marked unverified, e.g. Keycloak's LDAP users without "Trust email").
    pub accept_unverified_email: bool,
    /// When a login asks userinfo for claims the ID token lacks.
    pub userinfo: UserinfoWhen,
    /// Origins an absolute `post_login_redirect_url` may have besides the
    /// client's `redirect_url`'s (`*`: any).
    pub post_login_redirect_origins: Vec<String>,
    /// With an admin listener (`server.admin_bind`), the main one: it
    /// serves SCIM and the health checks only (see [`crate::listeners`]).
    pub public_listener: Option<std::net::SocketAddr>,
    /// `server.metrics_per_connection`: `/metrics` names each SCIM connection.
    pub metrics_per_connection: bool,
}

impl WebSettings {
    /// The `email_verified` the SCIM join, the allowlist and the matching
    /// report go by: an email marked unverified identifies no one (`false`),
    /// unless the deployment accepts such emails (then it counts as not said).
    /// `client_accepts` is the client's own `accept_unverified_email`, if set.
    pub fn email_verified_for_join(&self, said: Option<bool>, client_accepts: Option<bool>) -> Option<bool> {
        said.filter(|v| *v || !client_accepts.unwrap_or(self.accept_unverified_email))
    }

    /// The strategy a client without its own choice uses, and where it comes from.
    pub fn default_strategy(&self, idp_type: IdpType) -> (MatchingStrategy, &'static str) {
        match self.default_strategies.get(&idp_type) {
            Some(s) => (*s, "deployment_default"),
            None => (MatchingStrategy::default_for(idp_type), "idp_type_default"),
        }
    }
}

/// Shared application state.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub secret_key: Arc<SecretKey>,
    pub settings: Arc<WebSettings>,
    pub clock: Arc<dyn Clock>,
    pub http: IdpHttp,
    /// Discovery metadata and signing keys per issuer.
    pub idp_cache: Arc<tandem_oidc::cache::IdpCache>,
    pub metrics: Arc<Metrics>,
    /// Background writer of provisioning-log entries for reads and refusals,
    /// of login events, and of the SSO users logins saw.
    pub log_sink: LogSink,
    /// Integration keys looked up recently.
    pub integration_keys: Arc<crate::keycache::KeyCache<crate::auth::Caller>>,
    /// SCIM keys looked up recently.
    pub scim_keys: Arc<crate::keycache::KeyCache<tandem_store::scim_connections::ScimApiKeyRow>>,
}

impl AppState {
    /// Writes the records queued behind requests (provisioning-log entries,
    /// login events, SSO users), so a listing that follows shows them.
    pub async fn flush_logs(&self) {
        let sink = self.log_sink.clone();
        if let Err(e) = actix_web::web::block(move || sink.flush()).await {
            tracing::warn!(error = %e, "could not flush the log writer");
        }
    }
}

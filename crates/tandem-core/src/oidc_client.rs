//! OIDC client configuration: reading and validating create and patch
//! requests into an [`OidcClientSpec`].

use crate::fields::{FieldError, FieldReader};
use crate::idp::{IdpLocation, IdpType};
use crate::matching::MatchingStrategy;
use crate::secret::Redacted;
use serde_json::{json, Map, Value};
use url::Url;

/// Where plain `http://` URLs are allowed.
#[derive(Clone, Copy, Debug, Default)]
pub struct UrlPolicy {
    /// Accept `http://` issuers and redirect URLs on any host (tests, private networks).
    pub allow_http_everywhere: bool,
}

/// How a client authenticates at the IdP's token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuthentication {
    /// With its client secret (HTTP Basic or in the body, as the IdP
    /// advertises), or none for a public client with PKCE.
    #[default]
    ClientSecret,
    /// With a JWT signed by a key Tandem holds (`private_key_jwt`).
    PrivateKeyJwt,
}

impl ClientAuthentication {
    const ALL: [ClientAuthentication; 2] = [ClientAuthentication::ClientSecret, ClientAuthentication::PrivateKeyJwt];

    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthentication::ClientSecret => "client_secret",
            ClientAuthentication::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl std::str::FromStr for ClientAuthentication {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        named(&ClientAuthentication::ALL, ClientAuthentication::as_str, s)
    }
}

/// The one of `all` whose name is `s`; else an error naming them all.
fn named<T: Copy>(all: &[T], name: fn(T) -> &'static str, s: &str) -> Result<T, String> {
    all.iter().copied().find(|v| name(*v) == s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
        format!("must be {}, got {s:?}", names.join(" or "))
    })
}

/// What a `private_key_jwt` assertion names as its audience (`aud`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AssertionAudience {
    /// The token endpoint's URL, as Okta and Entra ID require.
    #[default]
    TokenEndpoint,
    /// The issuer as its discovery document publishes it (RFC 7523 §3's
    /// "identity of the authorization server"; Auth0 asks for it).
    Issuer,
}

impl AssertionAudience {
    const ALL: [AssertionAudience; 2] = [AssertionAudience::TokenEndpoint, AssertionAudience::Issuer];

    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AssertionAudience::TokenEndpoint => "token_endpoint",
            AssertionAudience::Issuer => "issuer",
        }
    }
}

impl std::str::FromStr for AssertionAudience {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        named(&AssertionAudience::ALL, AssertionAudience::as_str, s)
    }
}

/// A validated OIDC client configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct OidcClientSpec {
    /// The app's customer id.
    pub customer_id: String,
    /// The IdP type.
    pub idp_type: IdpType,
    /// Type-specific settings as given.
    pub location: IdpLocation,
    /// The derived (or overridden) issuer.
    pub issuer: String,
    /// The client id registered at the IdP.
    pub client_id: String,
    /// How the client authenticates at the token endpoint.
    pub client_authentication: ClientAuthentication,
    /// With `private_key_jwt`: the audience its assertions name.
    pub client_assertion_audience: AssertionAudience,
    /// The client secret, when the client is confidential and authenticates
    /// with it. `None` on patch means "keep the stored one".
    pub client_secret: Option<Redacted<String>>,
    /// With `private_key_jwt`: the client's keys (the stored form of
    /// `tandem_oidc::client_keys::ClientKeys`), which a request never
    /// gives; `None` means "Tandem makes a key".
    pub client_keys: Option<Redacted<String>>,
    /// When the client secret expires at the IdP, as the admin says (Entra's
    /// secrets last at most two years): warned of before it comes. With
    /// `private_key_jwt`, the current key's certificate's expiry, set by Tandem.
    pub client_secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether to send PKCE S256.
    pub uses_pkce: bool,
    /// The app's callback URL registered at the IdP.
    pub redirect_url: String,
    /// The strategy chosen for this client; `None` follows the deployment default.
    pub matching_strategy: Option<MatchingStrategy>,
    /// Email domains allowed to sign in (empty: any), lower-case.
    pub email_domain_allowlist: Vec<String>,
    /// Scopes requested beyond `openid email profile`.
    pub additional_scopes: Vec<String>,
    /// Whether an email the IdP marks unverified may identify a user;
    /// `None` follows the deployment's `oidc.accept_unverified_email`.
    pub accept_unverified_email: Option<bool>,
    /// The scopes asked for in place of `openid email profile` (with
    /// `openid` among them); `None` asks for those three.
    pub scopes: Option<Vec<String>>,
    /// Whether a login needs a SCIM user: with it, a customer without a
    /// SCIM connection is refused instead of signing in SSO-only. `None`
    /// (a create that does not say) sets it when the customer has a SCIM
    /// connection.
    pub scim_required: Option<bool>,
}

/// A parsed create or patch request.
#[derive(Debug)]
pub struct OidcClientRequest {
    /// The configuration to store.
    pub spec: OidcClientSpec,
    /// Whether to run discovery before saving (`"verify": false` skips it).
    pub verify: bool,
}

/// Reads a create request.
pub fn parse_create(body: &Value, policy: UrlPolicy) -> Result<OidcClientRequest, Vec<FieldError>> {
    parse(body, policy, None, LaterRules { scopes: true, customer_id: true, issuer: true, client_id: true })
}

/// Which of the rules that came after clients were saved a request is held
/// to: all of them on a create; on a patch, those of the fields it sets (a
/// client saved before a rule is still patched: a new secret for an expired
/// one must go through).
#[derive(Clone, Copy)]
struct LaterRules {
    /// An Entra client's own `scopes` keep `profile`.
    scopes: bool,
    /// The customer ID is no dot segment.
    customer_id: bool,
    /// The issuer is no Microsoft tenant shared by many directories.
    issuer: bool,
    /// The client ID is bounded and has no control characters.
    client_id: bool,
}

/// Reads a patch request against the stored configuration: fields that are
/// absent keep their value; `idp` is merged field by field.
pub fn parse_patch(
    body: &Value,
    current: &OidcClientSpec,
    policy: UrlPolicy,
) -> Result<OidcClientRequest, Vec<FieldError>> {
    let Some(patch) = body.as_object() else {
        let r = FieldReader::new(body, "");
        return Err(r.into_errors());
    };
    let mut merged = to_request_json(current);
    if let (Some(target), Some(Value::Object(idp_patch))) =
        (merged.get_mut("idp").and_then(Value::as_object_mut), patch.get("idp"))
    {
        // Changing the type drops the previous type's location fields.
        if let Some(t) = idp_patch.get("type") {
            if Some(t) != target.get("type") {
                for k in ["sso_domain", "tenant_id", "issuer"] {
                    target.remove(k);
                }
            }
        }
        // A new secret has an expiry of its own: the old one's goes with it
        // unless the patch gives one.
        // (The stored secret sent again, by a caller that sends the whole
        // `idp` on every save, is no new secret.)
        let new_secret = idp_patch
            .get("client_secret")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty() && current.client_secret.as_ref().is_none_or(|c| c.0 != s));
        // So has a switch to the other method (a key's expiry is its certificate's).
        // (`null` keeps the method, as an absent field does.)
        let switches = idp_patch
            .get("client_authentication")
            .is_some_and(|m| !m.is_null() && m.as_str() != Some(current.client_authentication.as_str()));
        if (new_secret || switches) && !idp_patch.contains_key("client_secret_expires_at") {
            target.remove("client_secret_expires_at");
        }
        // A key's audience goes with the keys.
        if switches && !idp_patch.contains_key("client_assertion_audience") {
            target.remove("client_assertion_audience");
        }
        for (k, v) in idp_patch {
            if k == "client_authentication" && v.is_null() {
                continue;
            }
            target.insert(k.clone(), v.clone());
        }
    } else if let Some(idp) = patch.get("idp") {
        merged.insert("idp".into(), idp.clone());
    }
    for (k, v) in patch {
        if k != "idp" {
            merged.insert(k.clone(), v.clone());
        }
    }
    // A credential of one method is nothing to the other: switching
    // methods gives a new secret, or has Tandem make a key.
    let method = merged
        .get("idp")
        .and_then(|i| i.get("client_authentication"))
        .and_then(Value::as_str)
        .and_then(|m| m.parse::<ClientAuthentication>().ok());
    let kept = (method == Some(current.client_authentication)).then(|| Kept {
        secret: current.client_secret.clone(),
        keys: current.client_keys.clone(),
        issuer: current.issuer.clone(),
    });
    // The scopes rule holds a patch only when it sets the scopes or the IdP
    // type; the customer ID's when it sets that; the issuer's when it sets
    // where the IdP is.
    let idp_sets = |k: &str| patch.get("idp").and_then(|i| i.get(k)).is_some();
    let rules = LaterRules {
        scopes: patch.contains_key("scopes") || idp_sets("type"),
        customer_id: patch.contains_key("customer_id"),
        issuer: ["type", "sso_domain", "tenant_id", "issuer"].into_iter().any(idp_sets),
        // Changed, not merely sent (the setup page sends it back as it is).
        client_id: patch
            .get("idp")
            .and_then(|i| i.get("client_id"))
            .is_some_and(|c| c.as_str() != Some(&current.client_id)),
    };
    parse(&Value::Object(merged), policy, kept, rules)
}

/// The stored credential a patch keeps (the client's secret or keys), and
/// the issuer it was issued by.
struct Kept {
    secret: Option<Redacted<String>>,
    keys: Option<Redacted<String>>,
    issuer: String,
}

/// The request form of a stored spec (without its secret).
fn to_request_json(spec: &OidcClientSpec) -> Map<String, Value> {
    let mut idp = Map::new();
    idp.insert("type".into(), json!(spec.idp_type.as_str()));
    idp.insert("client_id".into(), json!(spec.client_id));
    idp.insert("uses_pkce".into(), json!(spec.uses_pkce));
    if let Some(d) = &spec.location.sso_domain {
        idp.insert("sso_domain".into(), json!(d));
    }
    if let Some(t) = &spec.location.tenant_id {
        idp.insert("tenant_id".into(), json!(t));
    }
    if let Some(i) = &spec.location.issuer {
        idp.insert("issuer".into(), json!(i));
    }
    idp.insert("client_authentication".into(), json!(spec.client_authentication.as_str()));
    if spec.client_assertion_audience != AssertionAudience::TokenEndpoint {
        idp.insert("client_assertion_audience".into(), json!(spec.client_assertion_audience.as_str()));
    }
    // A key's certificate expiry is Tandem's to set, not the request's.
    if let Some(at) =
        spec.client_secret_expires_at.filter(|_| spec.client_authentication == ClientAuthentication::ClientSecret)
    {
        idp.insert("client_secret_expires_at".into(), json!(crate::format_time(at)));
    }
    let mut m = Map::new();
    m.insert("customer_id".into(), json!(spec.customer_id));
    m.insert("idp".into(), Value::Object(idp));
    m.insert("redirect_url".into(), json!(spec.redirect_url));
    if let Some(s) = spec.matching_strategy {
        m.insert("scim_matching_definition".into(), json!({"strategy": s.as_str()}));
    }
    m.insert("email_domain_allowlist".into(), json!(spec.email_domain_allowlist));
    m.insert("additional_scopes".into(), json!(spec.additional_scopes));
    if let Some(a) = spec.accept_unverified_email {
        m.insert("accept_unverified_email".into(), json!(a));
    }
    if let Some(s) = &spec.scopes {
        m.insert("scopes".into(), json!(s));
    }
    if let Some(r) = spec.scim_required {
        m.insert("scim_required".into(), json!(r));
    }
    m
}

/// Reads a whole client, held to the later `rules` it names.
fn parse(
    body: &Value,
    policy: UrlPolicy,
    kept_secret: Option<Kept>,
    rules: LaterRules,
) -> Result<OidcClientRequest, Vec<FieldError>> {
    let mut r = FieldReader::new(body, "");
    if !r.is_ok() {
        return Err(r.into_errors());
    }
    let customer_id = r.required_string("customer_id");
    if let Some(c) = &customer_id {
        let checked = if rules.customer_id { check_new_customer_id(c) } else { check_customer_id(c) };
        if let Err(msg) = checked {
            r.error("customer_id", msg);
        }
    }
    let redirect_url = r.required_string("redirect_url");
    let redirect_url = redirect_url.and_then(|u| match check_url(&u, policy, false) {
        Ok(u) => Some(u),
        Err(msg) => {
            r.error("redirect_url", msg);
            None
        }
    });
    let verify = r.bool("verify").unwrap_or(true);
    let strategy = match r.raw("scim_matching_definition") {
        None => None,
        Some(def) => {
            let mut d = FieldReader::new(def, "scim_matching_definition");
            let s = d.string("strategy");
            let parsed = s.and_then(|s| match s.parse::<MatchingStrategy>() {
                Ok(m) => Some(m),
                Err(e) => {
                    d.error("strategy", e.to_string());
                    None
                }
            });
            d.reject_unknown();
            r.absorb(d);
            parsed
        }
    };
    let allowlist = r.string_list("email_domain_allowlist").unwrap_or_default();
    if allowlist.len() > MAX_ALLOWED_DOMAINS {
        r.error(
            "email_domain_allowlist",
            format!("lists {} domains; at most {MAX_ALLOWED_DOMAINS} are allowed", allowlist.len()),
        );
    }
    let mut domains = Vec::with_capacity(allowlist.len().min(MAX_ALLOWED_DOMAINS));
    let mut listed = std::collections::HashSet::new();
    for (i, d) in allowlist.iter().enumerate().take(MAX_ALLOWED_DOMAINS) {
        match check_domain(d) {
            Ok(d) => {
                if listed.insert(d.clone()) {
                    domains.push(d)
                }
            }
            Err(msg) => r.error(&format!("email_domain_allowlist[{i}]"), msg),
        }
    }
    let accept_unverified_email = r.bool("accept_unverified_email");
    let scim_required = r.bool("scim_required");
    let scopes = r.string_list("additional_scopes").unwrap_or_default();
    let base_scopes = r.string_list("scopes");
    for (field, list) in [("additional_scopes", Some(&scopes)), ("scopes", base_scopes.as_ref())] {
        let list = list.map(Vec::as_slice).unwrap_or_default();
        // Every scope goes into each login's URL, which IdPs cap (Entra, AD FS: a few KiB).
        if list.len() > MAX_SCOPES {
            r.error(field, format!("lists {} scopes; at most {MAX_SCOPES} are allowed", list.len()));
            continue;
        }
        for (i, s) in list.iter().enumerate() {
            if s.is_empty()
                || s.len() > MAX_SCOPE_BYTES
                || s.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\' || c.is_control())
            {
                r.error(
                    &format!("{field}[{i}]"),
                    format!(
                        "must be a single scope token of at most {MAX_SCOPE_BYTES} bytes, without spaces or quotes"
                    ),
                );
            }
        }
    }
    if base_scopes.as_ref().is_some_and(|b| !b.iter().any(|s| s == "openid")) {
        r.error(
            "scopes",
            "must include openid (an OpenID Connect login asks for it); null asks for openid email profile",
        );
    }
    let idp = parse_idp(&mut r, policy, kept_secret, rules);
    // Entra sends `oid` (its user id, which the SCIM join goes by; without
    // it a login falls back to the pairwise `sub` and matches no one) and
    // `preferred_username` only under the profile scope.
    let entra = idp.as_ref().is_some_and(|i| i.idp_type == IdpType::MicrosoftEntra);
    // Asked for with the additional scopes is asked for all the same.
    if rules.scopes && entra && base_scopes.as_ref().is_some_and(|b| !b.iter().chain(&scopes).any(|s| s == "profile")) {
        r.error(
            "scopes",
            "must include profile for a MicrosoftEntra client: Entra sends the oid claim (the user id the SCIM \
             join goes by) and preferred_username only with it",
        );
    }
    r.reject_unknown();
    match (r.is_ok(), customer_id, redirect_url, idp) {
        (
            true,
            Some(customer_id),
            Some(redirect_url),
            Some(ParsedIdp {
                idp_type,
                location,
                issuer,
                client_id,
                client_authentication,
                client_assertion_audience,
                client_secret,
                client_keys,
                client_secret_expires_at,
                uses_pkce,
            }),
        ) => Ok(OidcClientRequest {
            spec: OidcClientSpec {
                customer_id,
                idp_type,
                location,
                issuer,
                client_id,
                client_authentication,
                client_assertion_audience,
                client_secret,
                client_keys,
                client_secret_expires_at,
                uses_pkce,
                redirect_url,
                matching_strategy: strategy,
                email_domain_allowlist: domains,
                additional_scopes: scopes,
                accept_unverified_email,
                scopes: base_scopes,
                scim_required,
            },
            verify,
        }),
        _ => Err(r.into_errors()),
    }
}

/// The `idp` object of a request.
struct ParsedIdp {
    idp_type: IdpType,
    location: IdpLocation,
    issuer: String,
    client_id: String,
    client_authentication: ClientAuthentication,
    client_assertion_audience: AssertionAudience,
    client_secret: Option<Redacted<String>>,
    client_keys: Option<Redacted<String>>,
    client_secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    uses_pkce: bool,
}

fn parse_idp(r: &mut FieldReader<'_>, policy: UrlPolicy, kept: Option<Kept>, rules: LaterRules) -> Option<ParsedIdp> {
    let Some(idp) = r.raw("idp") else {
        r.error("idp", "is required");
        return None;
    };
    let mut d = FieldReader::new(idp, "idp");
    if !d.is_ok() {
        r.absorb(d);
        return None;
    }
    let idp_type = d.required_string("type").and_then(|t| match t.parse::<IdpType>() {
        Ok(t) => Some(t),
        Err(e) => {
            d.error("type", e.to_string());
            None
        }
    });
    let client_id = d.required_string("client_id");
    if let Some(Err(msg)) =
        client_id.as_deref().filter(|_| rules.client_id).map(|c| check_credential(c, MAX_CLIENT_ID_BYTES))
    {
        d.error("client_id", msg);
    }
    let method = match d.string("client_authentication") {
        None => ClientAuthentication::ClientSecret,
        Some(m) => m.parse().unwrap_or_else(|e: String| {
            d.error("client_authentication", e);
            ClientAuthentication::ClientSecret
        }),
    };
    let keyed = method == ClientAuthentication::PrivateKeyJwt;
    let audience = match d.string("client_assertion_audience") {
        None => AssertionAudience::TokenEndpoint,
        Some(_) if !keyed => {
            d.error("client_assertion_audience", "applies to client_authentication private_key_jwt only");
            AssertionAudience::TokenEndpoint
        }
        Some(a) => a.parse().unwrap_or_else(|e: String| {
            d.error("client_assertion_audience", e);
            AssertionAudience::TokenEndpoint
        }),
    };
    let given = d.string("client_secret").filter(|s| !s.is_empty()).map(Redacted);
    if let Some(Err(msg)) = given.as_ref().map(|s| check_credential(&s.0, MAX_CLIENT_SECRET_BYTES)) {
        d.error("client_secret", msg);
    }
    if keyed && given.is_some() {
        d.error(
            "client_secret",
            "is not taken with client_authentication private_key_jwt: the client signs with a key Tandem makes and \
             holds (its certificate and JWK are in the answer)",
        );
    }
    let given = given.filter(|_| !keyed);
    let sent = given.is_some();
    let (kept_secret, kept_keys, kept_issuer) = match kept {
        Some(k) => (k.secret, k.keys, Some(k.issuer)),
        None => (None, None, None),
    };
    let (secret, kept_for) = match (given, kept_secret) {
        (Some(s), _) => (Some(s), None),
        (None, Some(k)) => (Some(k), kept_issuer),
        (None, None) => (None, None),
    };
    let keys = kept_keys.filter(|_| keyed);
    let expires_at =
        d.string("client_secret_expires_at").and_then(|t| match chrono::DateTime::parse_from_rfc3339(&t) {
            // Years past 9999 (in UTC) could not be written back as RFC 3339.
            Ok(t) if (2000..=9999).contains(&chrono::Datelike::year(&t.with_timezone(&chrono::Utc))) => {
                Some(t.with_timezone(&chrono::Utc))
            }
            Ok(_) => {
                d.error("client_secret_expires_at", "must be a time between the years 2000 and 9999");
                None
            }
            Err(e) => {
                d.error(
                    "client_secret_expires_at",
                    format!("must be an RFC 3339 time such as 2027-06-01T00:00:00Z ({e})"),
                );
                None
            }
        });
    if expires_at.is_some() && keyed {
        d.error(
            "client_secret_expires_at",
            "is set by Tandem for a private_key_jwt client: its key's certificate expiry",
        );
    } else if expires_at.is_some() && secret.is_none() {
        d.error("client_secret_expires_at", "is the expiry of a client secret, and this client has none");
    }
    let uses_pkce = d.bool("uses_pkce").unwrap_or(true);
    let location = IdpLocation {
        sso_domain: d.string("sso_domain"),
        tenant_id: d.string("tenant_id"),
        issuer: d.string("issuer"),
    };
    if let Some(domain) = &location.sso_domain {
        if let Err(msg) = check_host(domain) {
            d.error("sso_domain", msg);
        }
    }
    if let Some(tenant) = &location.tenant_id {
        if !is_guid(tenant) {
            d.error(
                "tenant_id",
                "must be the directory (tenant) ID, a GUID such as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (Entra admin \
                 center > Overview); Entra's metadata names its issuer by this GUID, so a domain name would never match",
            );
        }
    }
    if secret.is_none() && !uses_pkce && !keyed {
        d.error("client_secret", "is required unless uses_pkce is true (a public client needs PKCE)");
    }
    let issuer = idp_type.and_then(|t| match location.issuer_for(t) {
        Ok(issuer) => {
            let field = if location.issuer.is_some() {
                "issuer"
            } else {
                match t {
                    IdpType::Okta => "sso_domain",
                    IdpType::MicrosoftEntra => "tenant_id",
                    IdpType::Generic => "issuer",
                }
            };
            match check_url(&issuer, policy, true) {
                Ok(u) => match crate::idp::shared_microsoft_tenant(&u).filter(|_| rules.issuer) {
                    Some(msg) => {
                        d.error(field, msg);
                        None
                    }
                    None => Some(u),
                },
                Err(msg) => {
                    d.error(field, msg);
                    None
                }
            }
        }
        Err(e) => {
            let field = match e {
                crate::idp::IssuerError::Missing(f) => f,
                crate::idp::IssuerError::MissingIssuer => "issuer",
            };
            d.error(field, e.to_string());
            None
        }
    });
    // The stored secret goes only to the IdP it was issued by: a PATCH that
    // moves the client to another issuer (a typo, or a hostile edit through
    // an app's self-serve settings) must send the new IdP's secret, or the
    // next login would post the old one to the new token endpoint.
    // (A key's assertion names the token endpoint it is for: kept keys may move.)
    if let (false, false, Some(old), Some(new)) = (keyed, sent, &kept_for, &issuer) {
        if !same_issuer(old, new) {
            d.error(
                "client_secret",
                format!(
                    "is required when the issuer changes (from {old:?} to {new:?}): the stored secret is sent only \
                     to the IdP that issued it"
                ),
            );
        }
    }
    d.reject_unknown();
    let ok = d.is_ok();
    r.absorb(d);
    match (ok, idp_type, issuer, client_id) {
        (true, Some(idp_type), Some(issuer), Some(client_id)) => Some(ParsedIdp {
            idp_type,
            location,
            issuer,
            client_id,
            client_authentication: method,
            client_assertion_audience: audience,
            client_secret: secret,
            client_keys: keys,
            client_secret_expires_at: if keyed { None } else { expires_at },
            uses_pkce,
        }),
        _ => None,
    }
}

/// Whether `s` is a GUID in its 8-4-4-4-12 hexadecimal form.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Checks a customer id: 1–255 characters, no control characters.
pub fn check_customer_id(c: &str) -> Result<(), String> {
    if c.is_empty() || c.chars().count() > 255 {
        return Err("must be 1 to 255 characters".into());
    }
    if c.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Checks a customer ID given to a client, a connection or a setup link
/// being made (or renamed): also not `.` or `..`, which browsers, proxies
/// and HTTP libraries resolve as dot segments in a URL path (the API's
/// `by-customer-id` routes, the dashboard's customer pages), so no such
/// address could reach the customer. (A login names customers by the
/// looser [`check_customer_id`]: one made before keeps signing in.)
pub fn check_new_customer_id(c: &str) -> Result<(), String> {
    check_customer_id(c)?;
    if c == "." || c == ".." {
        return Err(format!(
            "must not be {c:?}: in a URL path (the API's by-customer-id routes, the dashboard) it is a dot segment, \
             which browsers and HTTP libraries remove"
        ));
    }
    Ok(())
}

/// Domains one client's `email_domain_allowlist` may list (each is a row
/// written with the client, and an app may expose the list to its customers).
pub const MAX_ALLOWED_DOMAINS: usize = 1000;

/// The path of a redirect URL: what a login's callback is checked against,
/// and what no two clients should share (see the store's
/// `oidc_clients::redirect_path_sharer`). Empty when it does not parse.
pub fn redirect_path(redirect_url: &str) -> String {
    Url::parse(redirect_url).map(|u| u.path().to_string()).unwrap_or_default()
}

/// Checks an absolute `https://` URL (or `http://` on loopback, or anywhere
/// when the policy allows). Issuers may not carry a query or fragment;
/// redirect URLs may carry a query but no fragment (RFC 6749 §3.1.2).
pub fn check_url(raw: &str, policy: UrlPolicy, is_issuer: bool) -> Result<String, String> {
    let url = Url::parse(raw).map_err(|e| format!("must be an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http_everywhere || is_loopback(&url) => {}
        "http" => {
            return Err(
                "must use https:// (plain http is accepted only on loopback hosts unless the configuration allows it)"
                    .into(),
            )
        }
        other => return Err(format!("must be an http(s) URL, got scheme {other:?}")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a #fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    if is_issuer {
        if url.query().is_some() {
            return Err("an issuer must not contain a query".into());
        }
        // URL parsers read `\` as `/` in an https URL, and drop tabs and
        // line breaks; an issuer is compared as written, so it is written
        // plainly. Its length is what an index entry holds on either backend.
        if raw.contains('\\') {
            return Err("an issuer must not contain a backslash (write / between path segments)".into());
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("an issuer must not contain spaces or control characters".into());
        }
        if raw.len() > MAX_ISSUER_BYTES {
            return Err(format!("an issuer must be at most {MAX_ISSUER_BYTES} bytes"));
        }
        return Ok(normalize_issuer(raw));
    }
    Ok(raw.to_string())
}

/// Scopes a client's `scopes` or `additional_scopes` may list, and the
/// longest one (Entra's `api://<guid>/<name>` scopes run to ~100 bytes).
pub const MAX_SCOPES: usize = 50;
pub const MAX_SCOPE_BYTES: usize = 256;

/// The longest issuer accepted (configured, or named by a login the IdP starts).
pub const MAX_ISSUER_BYTES: usize = 2048;

/// The longest client ID and client secret accepted. IdPs issue far
/// shorter ones (Okta's are 20 and 64 characters, Entra's a GUID and 40);
/// both go out on every login's authorization URL or token request.
pub const MAX_CLIENT_ID_BYTES: usize = 1024;
pub const MAX_CLIENT_SECRET_BYTES: usize = 4096;

/// A client ID or secret as an IdP issues it: printable (RFC 6749 §A.1
/// and §A.2 allow `%x20-7E`; other letters are let through for IdPs that
/// allow them in names), no control character, at most `max` bytes.
fn check_credential(value: &str, max: usize) -> Result<(), String> {
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters (a line break or tab copied with it?)".into());
    }
    // Characters that show as nothing (a zero-width space, a byte-order
    // mark, a direction mark from a right-to-left page): no IdP issues
    // them, and a value copied with one fails every login unseen.
    if let Some(c) = value.chars().find(|c| invisible(*c)) {
        return Err(format!(
            "must not contain the invisible character U+{:04X} (copied with it from a web page or document?)",
            u32::from(c)
        ));
    }
    if value.trim() != value {
        return Err("must not begin or end with a space (copied with it?)".into());
    }
    if value.len() > max {
        return Err(format!("must be at most {max} bytes, got {}", value.len()));
    }
    Ok(())
}

/// Unicode's format characters that copy and paste carries along unseen:
/// the soft hyphen, zero-width and direction marks, word joiners, the
/// byte-order mark.
fn invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
}

/// An issuer as clients keep it: without a trailing `/`, scheme and host
/// in lower case.
pub fn normalize_issuer(issuer: &str) -> String {
    lowercase_authority(issuer.trim_end_matches('/'))
}

/// Whether two issuers name the same IdP: equal but for a trailing `/` and
/// the case of their scheme and host (RFC 3986 §6.2.2.1), so an IdP that
/// publishes `https://ADFS.Contoso.com/adfs` matches the client's
/// `https://adfs.contoso.com/adfs`. Paths compare exactly.
pub fn same_issuer(a: &str, b: &str) -> bool {
    // Equal as written, as nearly always (every login compares three times): no copies made.
    a.trim_end_matches('/') == b.trim_end_matches('/') || normalize_issuer(a) == normalize_issuer(b)
}

/// An issuer with its scheme and host in lower case, as IdPs publish
/// them (`https://Acme.okta.com` is `https://acme.okta.com`, which its
/// discovery document and ID tokens name); the path is left as written.
fn lowercase_authority(issuer: &str) -> String {
    let Some((scheme, rest)) = issuer.split_once("://") else { return issuer.to_string() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    format!("{}://{}{path}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks a bare email domain (`acme.com`) and returns it lower-cased.
pub fn check_domain(raw: &str) -> Result<String, String> {
    if raw.contains('@') {
        return Err(format!("{raw:?} must be a bare domain like acme.com, without '@'"));
    }
    if raw.contains("://") || raw.contains('/') {
        return Err(format!("{raw:?} must be a bare domain like acme.com, not a URL"));
    }
    check_host(raw).map_err(|m| format!("{raw:?} {m}"))?;
    if !raw.contains('.') {
        return Err(format!("{raw:?} must be a domain with at least one dot, like acme.com"));
    }
    Ok(raw.to_ascii_lowercase())
}

/// Checks a DNS host name (letters, digits, hyphens, dots; labels ≤ 63).
pub fn check_host(raw: &str) -> Result<(), String> {
    let bad = || "must be a host name such as acme.com (letters, digits, hyphens and dots)".to_string();
    if raw.is_empty() || raw.len() > 253 {
        return Err(bad());
    }
    for label in raw.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(bad());
        }
    }
    Ok(())
}

#[cfg(test)]
mod named_tests {
    use super::*;

    #[test]
    fn methods_and_audiences_read_back_by_name_and_refuse_others() {
        for m in ClientAuthentication::ALL {
            assert_eq!(m.as_str().parse::<ClientAuthentication>(), Ok(m));
        }
        for a in AssertionAudience::ALL {
            assert_eq!(a.as_str().parse::<AssertionAudience>(), Ok(a));
        }
        assert_eq!(
            "tls_client_auth".parse::<ClientAuthentication>(),
            Err("must be client_secret or private_key_jwt, got \"tls_client_auth\"".to_string())
        );
        assert_eq!(
            "tenant".parse::<AssertionAudience>(),
            Err("must be token_endpoint or issuer, got \"tenant\"".to_string())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn okta() -> Value {
        json!({"customer_id": "acme",
               "idp": {"type": "Okta", "client_id": "0oa1", "client_secret": "s", "sso_domain": "acme.okta.com"},
               "redirect_url": "https://app.example.com/sso/callback",
               "email_domain_allowlist": ["Acme.com"]})
    }

    fn fields(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn okta_client_derives_its_issuer_and_defaults() {
        let req = parse_create(&okta(), UrlPolicy::default()).unwrap();
        assert_eq!(req.spec.issuer, "https://acme.okta.com");
        assert!(req.spec.uses_pkce);
        assert!(req.verify);
        assert_eq!(req.spec.matching_strategy, None);
        assert_eq!(req.spec.email_domain_allowlist, ["acme.com"]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let body = json!({"customer_id": 7,
            "idp": {"type": "Auth0", "client_id": ["x"]},
            "redirect_url": "/relative",
            "scim_matching_definition": {"strategy": "ByMagic"},
            "email_domain_allowlist": ["@acme.com", "acme"],
            "surprise": true});
        let errs = fields(parse_create(&body, UrlPolicy::default()).unwrap_err());
        for f in [
            "customer_id",
            "idp.type",
            "idp.client_id",
            "redirect_url",
            "scim_matching_definition.strategy",
            "email_domain_allowlist[0]",
            "email_domain_allowlist[1]",
            "surprise",
        ] {
            assert!(errs.contains(&f.to_string()), "{f} missing from {errs:?}");
        }
    }

    #[test]
    fn at_sign_domain_gets_a_message_that_says_why() {
        let msg = check_domain("@acme.com").unwrap_err();
        assert!(msg.contains("without '@'"), "{msg}");
    }

    #[test]
    fn plain_http_issuer_is_only_accepted_on_loopback() {
        assert!(check_url("http://127.0.0.1:9000", UrlPolicy::default(), true).is_ok());
        assert!(check_url("http://localhost:9000/", UrlPolicy::default(), true).is_ok());
        assert!(check_url("http://idp.example.com", UrlPolicy::default(), true).is_err());
        assert!(check_url("http://idp.example.com", UrlPolicy { allow_http_everywhere: true }, true).is_ok());
        assert!(check_url("ftp://idp.example.com", UrlPolicy::default(), true).is_err());
    }

    #[test]
    fn an_issuer_s_scheme_and_host_are_read_in_lower_case_and_its_path_as_written() {
        let issuer = check_url("HTTPS://Login.Example.COM:8443/Realms/Acme/", UrlPolicy::default(), true);
        assert_eq!(issuer.as_deref(), Ok("https://login.example.com:8443/Realms/Acme"));
        let redirect = check_url("https://App.Example.com/CB", UrlPolicy::default(), false);
        assert_eq!(redirect.as_deref(), Ok("https://App.Example.com/CB"));
        assert!(check_url(r"https://login.example.com\realms\acme", UrlPolicy::default(), true).is_err());
        assert!(check_url("https://login.example.com/oauth2/\tdefault", UrlPolicy::default(), true).is_err());
        let long = format!("https://login.example.com/{}", "a".repeat(MAX_ISSUER_BYTES));
        assert!(check_url(&long, UrlPolicy::default(), true).is_err());
        assert!(same_issuer("https://ADFS.Contoso.com/adfs/", "https://adfs.contoso.com/adfs"));
        assert!(!same_issuer("https://adfs.contoso.com/ADFS", "https://adfs.contoso.com/adfs"));
    }

    #[test]
    fn entra_needs_a_tenant_and_generic_an_issuer() {
        let body = json!({"customer_id": "c", "idp": {"type": "MicrosoftEntra", "client_id": "x", "client_secret": "s"},
                          "redirect_url": "https://app/cb"});
        assert_eq!(fields(parse_create(&body, UrlPolicy::default()).unwrap_err()), ["idp.tenant_id"]);
        let body = json!({"customer_id": "c", "idp": {"type": "Generic", "client_id": "x", "client_secret": "s"},
                          "redirect_url": "https://app/cb"});
        assert_eq!(fields(parse_create(&body, UrlPolicy::default()).unwrap_err()), ["idp.issuer"]);
    }

    #[test]
    fn a_client_without_secret_must_use_pkce() {
        let body = json!({"customer_id": "c", "idp": {"type": "Okta", "client_id": "x", "sso_domain": "a.okta.com", "uses_pkce": false},
                          "redirect_url": "https://app/cb"});
        assert_eq!(fields(parse_create(&body, UrlPolicy::default()).unwrap_err()), ["idp.client_secret"]);
    }

    #[test]
    fn patch_keeps_absent_fields_and_the_secret() {
        let current = parse_create(&okta(), UrlPolicy::default()).unwrap().spec;
        let patched = parse_patch(
            &json!({"scim_matching_definition": {"strategy": "OidcSubToScimExternalId"}}),
            &current,
            UrlPolicy::default(),
        )
        .unwrap()
        .spec;
        assert_eq!(patched.matching_strategy, Some(MatchingStrategy::OidcSubToScimExternalId));
        assert_eq!(patched.client_secret, current.client_secret);
        assert_eq!(patched.issuer, current.issuer);
    }

    #[test]
    fn patch_changing_idp_type_needs_the_new_types_fields() {
        let current = parse_create(&okta(), UrlPolicy::default()).unwrap().spec;
        let err = parse_patch(&json!({"idp": {"type": "MicrosoftEntra"}}), &current, UrlPolicy::default()).unwrap_err();
        assert_eq!(fields(err), ["idp.tenant_id"]);
        let entra = json!({"idp": {"type": "MicrosoftEntra", "tenant_id": "3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f"}});
        // The Okta client's secret is not sent on to Entra.
        let err = parse_patch(&entra, &current, UrlPolicy::default()).unwrap_err();
        assert_eq!(fields(err), ["idp.client_secret"]);
        let mut with_secret = entra.clone();
        with_secret["idp"]["client_secret"] = json!("entra~secret");
        let ok = parse_patch(&with_secret, &current, UrlPolicy::default()).unwrap();
        assert_eq!(ok.spec.issuer, "https://login.microsoftonline.com/3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f/v2.0");
        assert_eq!(ok.spec.client_secret.map(|s| s.0), Some("entra~secret".to_string()));
    }

    #[test]
    fn client_ids_and_secrets_are_bounded_and_printable() {
        let with = |client_id: &str, secret: &str| {
            let mut body = okta();
            body["idp"]["client_id"] = json!(client_id);
            body["idp"]["client_secret"] = json!(secret);
            parse_create(&body, UrlPolicy::default()).map(|_| ()).map_err(fields)
        };
        assert_eq!(with("0oa1", "s~.-_"), Ok(()));
        assert_eq!(with("0oa1\n", "s"), Err(vec!["idp.client_id".to_string()]));
        assert_eq!(with(&"a".repeat(MAX_CLIENT_ID_BYTES + 1), "s"), Err(vec!["idp.client_id".to_string()]));
        assert_eq!(with("0oa1", "secret\t"), Err(vec!["idp.client_secret".to_string()]));
        assert_eq!(with(" 0oa1", "s"), Err(vec!["idp.client_id".to_string()]));
        assert_eq!(with("0oa1", " "), Err(vec!["idp.client_secret".to_string()]));
        assert_eq!(with("0oa1", "secret "), Err(vec!["idp.client_secret".to_string()]));
        assert_eq!(with("0oa1", &"s".repeat(MAX_CLIENT_SECRET_BYTES + 1)), Err(vec!["idp.client_secret".to_string()]));
        // Invisible characters copied along: a direction mark, a zero-width space, a BOM; letters pass.
        assert_eq!(with("0oa1\u{202E}", "s"), Err(vec!["idp.client_id".to_string()]));
        assert_eq!(with("0oa1", "\u{200B}secret"), Err(vec!["idp.client_secret".to_string()]));
        assert_eq!(with("\u{FEFF}0oa1", "s"), Err(vec!["idp.client_id".to_string()]));
        assert_eq!(with("client-é", "sécret"), Ok(()));
        // A client saved before the bound is still patched; a new client ID is held to it.
        let mut current = parse_create(&okta(), UrlPolicy::default()).unwrap().spec;
        current.client_id = "a".repeat(MAX_CLIENT_ID_BYTES + 1);
        assert!(
            parse_patch(&json!({"redirect_url": "https://app.example.com/b"}), &current, UrlPolicy::default()).is_ok()
        );
        let same = json!({"idp": {"client_id": current.client_id.clone()}});
        assert!(parse_patch(&same, &current, UrlPolicy::default()).is_ok(), "sent back as it is");
        let err = parse_patch(&json!({"idp": {"client_id": "0oa2\r"}}), &current, UrlPolicy::default()).unwrap_err();
        assert_eq!(fields(err), ["idp.client_id"]);
    }

    #[test]
    fn patch_moving_the_issuer_needs_the_new_idps_secret() {
        let current = parse_create(&okta(), UrlPolicy::default()).unwrap().spec;
        let moved = json!({"idp": {"sso_domain": "attacker.okta.com"}});
        let err = parse_patch(&moved, &current, UrlPolicy::default()).unwrap_err();
        assert_eq!(fields(err.clone()), ["idp.client_secret"]);
        assert!(err[0].message.contains("https://attacker.okta.com"), "{}", err[0].message);
        let mut empty = moved.clone();
        empty["idp"]["client_secret"] = json!("");
        assert!(parse_patch(&empty, &current, UrlPolicy::default()).is_err());
        // Named beside the request's other mistakes, in one answer.
        let mut also = moved.clone();
        also["redirect_url"] = json!("nope");
        assert_eq!(
            fields(parse_patch(&also, &current, UrlPolicy::default()).unwrap_err()),
            ["redirect_url", "idp.client_secret"]
        );
        // The same issuer keeps the stored secret; so does a public client with nothing stored.
        let same = json!({"idp": {"client_id": "another", "sso_domain": current.location.sso_domain}});
        assert_eq!(
            parse_patch(&same, &current, UrlPolicy::default()).unwrap().spec.client_secret,
            current.client_secret
        );
        let mut public = current.clone();
        public.client_secret = None;
        public.uses_pkce = true;
        assert!(parse_patch(&moved, &public, UrlPolicy::default()).is_ok());
    }

    #[test]
    fn entra_tenant_must_be_the_directory_guid() {
        let body = json!({"customer_id": "c", "idp": {"type": "MicrosoftEntra", "client_id": "x", "client_secret": "s",
                          "tenant_id": "contoso.onmicrosoft.com"}, "redirect_url": "https://app/cb"});
        let errs = parse_create(&body, UrlPolicy::default()).unwrap_err();
        assert_eq!(errs[0].field, "idp.tenant_id");
        assert!(errs[0].message.contains("GUID"));
        assert!(is_guid("9188040d-6c67-4c5b-b112-36a304b66dad"));
        assert!(!is_guid("9188040d6c674c5bb11236a304b66dad"));
    }

    #[test]
    fn redirect_url_with_fragment_is_rejected() {
        let mut body = okta();
        body["redirect_url"] = json!("https://app.example.com/cb#x");
        assert_eq!(fields(parse_create(&body, UrlPolicy::default()).unwrap_err()), ["redirect_url"]);
    }
}

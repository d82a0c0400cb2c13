//! Identity-provider types: how each derives its issuer and which claim is
//! its stable user id.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kinds of identity provider Tandem knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdpType {
    /// Okta (issuer `https://{sso_domain}`, or a custom authorization server via `issuer`).
    Okta,
    /// Microsoft Entra ID (issuer `https://login.microsoftonline.com/{tenant_id}/v2.0`).
    MicrosoftEntra,
    /// Any OpenID Provider, configured by its issuer.
    Generic,
}

/// Google's issuer: every Google account signs in through it, Workspace
/// and consumer alike.
const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// Whether `issuer` is Google's.
pub fn is_google_issuer(issuer: &str) -> bool {
    issuer.trim_end_matches('/') == GOOGLE_ISSUER
}

/// Microsoft's sign-in hosts: the public cloud, US Government and China
/// (21Vianet), and the hosts of Entra ID's v1 issuers
/// (`https://sts.windows.net/{tenant}/`, which a v1 token and the v1
/// discovery document carry).
const MICROSOFT_LOGIN_HOSTS: [&str; 6] = [
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.partner.microsoftonline.cn",
    "login.chinacloudapi.cn",
    "sts.windows.net",
    "sts.chinacloudapi.cn",
];

/// Whether `issuer` is on Microsoft's sign-in hosts (Entra ID, whatever
/// type its client was given).
pub fn is_microsoft_issuer(issuer: &str) -> bool {
    let Some(rest) = issuer.get(..8).filter(|s| s.eq_ignore_ascii_case("https://")).map(|_| &issuer[8..]) else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default().trim_end_matches('.');
    MICROSOFT_LOGIN_HOSTS.iter().any(|h| h.eq_ignore_ascii_case(host))
}

/// Whether a login's email is read Entra ID's way (`xms_edov`; an email
/// only userinfo gave is unverified): a `MicrosoftEntra` client's, and a
/// client's of another type whose issuer is on Microsoft's hosts.
pub fn reads_emails_as_entra(idp_type: IdpType, issuer: &str) -> bool {
    idp_type == IdpType::MicrosoftEntra || is_microsoft_issuer(issuer)
}

/// Microsoft's tenant of personal accounts, which no customer's directory is.
const MICROSOFT_CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Why an issuer on Microsoft's sign-in hosts is no customer's own: its
/// tenant is the tenant of personal accounts, or `common`, `organizations`
/// or `consumers` (endpoints shared by many directories). Through such an
/// issuer anyone with a personal Microsoft account, or any Entra directory,
/// could sign in as the customer's users. `None` for any other issuer.
pub fn shared_microsoft_tenant(issuer: &str) -> Option<String> {
    let url = url::Url::parse(issuer).ok()?;
    // However spelled: a host with its root's dot, a tenant percent-encoded.
    let host = url.host_str().map(|h| h.trim_end_matches('.').to_ascii_lowercase());
    if !host.is_some_and(|h| MICROSOFT_LOGIN_HOSTS.contains(&h.as_str())) {
        return None;
    }
    let segment = url.path().trim_start_matches('/').split('/').next().unwrap_or("");
    let tenant = percent_encoding::percent_decode_str(segment).decode_utf8_lossy().to_ascii_lowercase();
    let what = match tenant.as_str() {
        MICROSOFT_CONSUMERS_TENANT | "consumers" => {
            "Microsoft's tenant of personal accounts: anyone with a Microsoft account"
        }
        "common" => "Microsoft's endpoint shared by every directory and personal accounts: anyone",
        "organizations" => "Microsoft's endpoint shared by every directory: anyone in any Entra directory",
        _ => return None,
    };
    Some(format!(
        "names {what} could sign in as this customer's users; use the customer's own directory (tenant) ID, \
         https://{}/<tenant ID>/v2.0",
        url.host_str().unwrap_or_default()
    ))
}

/// Whether two clients may share a redirect path: both are Entra ID clients
/// of one application (the same `client_id`: a vendor's multi-tenant app,
/// whose registration holds at most 256 redirect URIs) whose issuers are
/// Microsoft's own, each a tenant's (`https://<host>/<tenant GUID>/v2.0`;
/// not `common`, `organizations` or the consumers tenant). Every token endpoint among them is then
/// Microsoft's, so a code cannot be sent to an IdP an attacker runs (the
/// mix-up distinct paths prevent), and the ID token's tenant-specific `iss`
/// still binds each login to its own tenant.
pub fn may_share_redirect_path(a: (IdpType, &str, &str), b: (IdpType, &str, &str)) -> bool {
    let microsoft = |issuer: &str| {
        url::Url::parse(issuer).is_ok_and(|u| {
            let tenant = u.path().strip_prefix('/').and_then(|p| p.strip_suffix("/v2.0"));
            u.scheme() == "https"
                && u.port().is_none()
                && u.query().is_none()
                && u.host_str().is_some_and(|h| MICROSOFT_LOGIN_HOSTS.contains(&h))
                && tenant.is_some_and(|t| {
                    crate::oidc_client::is_guid(t) && t == t.to_ascii_lowercase() && t != MICROSOFT_CONSUMERS_TENANT
                })
        })
    };
    let ((type_a, client_a, issuer_a), (type_b, client_b, issuer_b)) = (a, b);
    type_a == IdpType::MicrosoftEntra
        && type_b == IdpType::MicrosoftEntra
        && client_a == client_b
        && microsoft(issuer_a)
        && microsoft(issuer_b)
}

/// The `hd` authorization parameter of a Google client (see
/// [`is_google_issuer`]) with an email allowlist: its one domain, or `*`
/// (any Workspace account) for several. Google then offers only such
/// accounts; the `hd` claim is still checked on completion, as the
/// parameter is only a hint.
pub fn google_hd_param(allowed_domains: &[String]) -> Option<String> {
    match allowed_domains {
        [] => None,
        [only] => Some(only.clone()),
        _ => Some("*".to_string()),
    }
}

impl IdpType {
    /// All types, in the order documentation lists them.
    pub const ALL: [IdpType; 3] = [IdpType::Okta, IdpType::MicrosoftEntra, IdpType::Generic];

    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            IdpType::Okta => "Okta",
            IdpType::MicrosoftEntra => "MicrosoftEntra",
            IdpType::Generic => "Generic",
        }
    }

    /// The application id discovery is asked for, if any: Entra publishes
    /// the signing key of an application that customises its claims only in
    /// that application's own document (`?appid=<client id>`).
    pub fn discovery_appid(self, client_id: &str) -> Option<&str> {
        (self == IdpType::MicrosoftEntra).then_some(client_id)
    }

    /// The claim that holds the OIDC user id, in order of preference.
    ///
    /// Entra's `sub` is pairwise per application, so the tenant-wide object
    /// id `oid` is preferred; every other type uses `sub`.
    pub fn user_id_claims(self) -> &'static [&'static str] {
        match self {
            IdpType::MicrosoftEntra => &["oid", "sub"],
            IdpType::Okta | IdpType::Generic => &["sub"],
        }
    }

    /// Picks the OIDC user id out of a set of ID-token claims.
    pub fn oidc_user_id(self, claims: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
        self.user_id_claims()
            .iter()
            .find_map(|c| claims.get(*c).and_then(|v| v.as_str()).filter(|s| !s.is_empty()))
            .map(str::to_string)
    }
}

impl fmt::Display for IdpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown IdP type name.
#[derive(Debug, thiserror::Error)]
#[error("unknown IdP type {0:?}; expected one of Okta, MicrosoftEntra, Generic")]
pub struct UnknownIdpType(pub String);

impl FromStr for IdpType {
    type Err = UnknownIdpType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdpType::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| UnknownIdpType(s.to_string()))
    }
}

/// The type-specific settings that locate an IdP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdpLocation {
    /// Okta org domain, e.g. `acme.okta.com`.
    pub sso_domain: Option<String>,
    /// Entra directory (tenant) id.
    pub tenant_id: Option<String>,
    /// Explicit issuer; required for `Generic`, an override for the others.
    pub issuer: Option<String>,
}

/// Why an issuer could not be derived.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    /// A field the type needs is missing; names the field.
    #[error("{0} is required for this IdP type (or give an explicit issuer)")]
    Missing(&'static str),
    /// `issuer` is required for Generic.
    #[error("issuer is required for IdP type Generic")]
    MissingIssuer,
}

impl IdpLocation {
    /// Derives the issuer URL string for `idp_type` (not yet validated as a URL).
    pub fn issuer_for(&self, idp_type: IdpType) -> Result<String, IssuerError> {
        if let Some(issuer) = self.issuer.as_deref().filter(|s| !s.is_empty()) {
            return Ok(issuer.trim_end_matches('/').to_string());
        }
        match idp_type {
            IdpType::Okta => self
                .sso_domain
                .as_deref()
                .map(|d| format!("https://{}", d.trim_end_matches('/').to_ascii_lowercase()))
                .ok_or(IssuerError::Missing("sso_domain")),
            IdpType::MicrosoftEntra => self
                .tenant_id
                .as_deref()
                // Entra names its tenants' GUIDs in lower case.
                .map(|t| format!("https://login.microsoftonline.com/{}/v2.0", t.to_ascii_lowercase()))
                .ok_or(IssuerError::Missing("tenant_id")),
            IdpType::Generic => Err(IssuerError::MissingIssuer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_entra_clients_of_one_application_on_microsofts_hosts_may_share_a_path() {
        fn entra<'a>(client: &'a str, issuer: &'a str) -> (IdpType, &'a str, &'a str) {
            (IdpType::MicrosoftEntra, client, issuer)
        }
        let t1 = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0";
        let t2 = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000002/v2.0";
        assert!(may_share_redirect_path(entra("app", t1), entra("app", t2)));
        let us = "https://login.microsoftonline.us/00000000-0000-0000-0000-000000000003/v2.0";
        assert!(may_share_redirect_path(entra("app", us), entra("app", t2)));
        assert!(!may_share_redirect_path(entra("app", t1), entra("other", t2)), "another application");
        assert!(!may_share_redirect_path(entra("app", t1), (IdpType::Generic, "app", t2)), "another type");
        for not_microsoft in [
            "https://idp.example/00000000-0000-0000-0000-000000000003/v2.0",
            "http://login.microsoftonline.com/00000000-0000-0000-0000-000000000003/v2.0",
            "https://login.microsoftonline.com:8443/00000000-0000-0000-0000-000000000003/v2.0",
            "https://login.microsoftonline.com.evil.example/00000000-0000-0000-0000-000000000003/v2.0",
            // No single customer tenant.
            "https://login.microsoftonline.com/common/v2.0",
            "https://login.microsoftonline.com/organizations/v2.0",
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0",
            "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000003/v2.0?x=1",
            "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000003/extra/v2.0",
        ] {
            assert!(!may_share_redirect_path(entra("app", t1), entra("app", not_microsoft)), "{not_microsoft}");
        }
    }

    #[test]
    fn google_clients_with_an_allowlist_hint_their_workspace_domain() {
        let one = vec!["acme.com".to_string()];
        let two = vec!["acme.com".to_string(), "acme.io".to_string()];
        assert_eq!(google_hd_param(&one).as_deref(), Some("acme.com"));
        assert_eq!(google_hd_param(&two).as_deref(), Some("*"));
        assert_eq!(google_hd_param(&[]), None);
        assert!(is_google_issuer("https://accounts.google.com") && is_google_issuer("https://accounts.google.com/"));
        assert!(!is_google_issuer("https://acme.okta.com"));
    }

    #[test]
    fn okta_issuer_comes_from_the_sso_domain() {
        let loc = IdpLocation { sso_domain: Some("acme.okta.com".into()), ..Default::default() };
        assert_eq!(loc.issuer_for(IdpType::Okta).unwrap(), "https://acme.okta.com");
        // As Okta names it in its discovery document and tokens.
        let loc = IdpLocation { sso_domain: Some("Acme.Okta.com".into()), ..Default::default() };
        assert_eq!(loc.issuer_for(IdpType::Okta).unwrap(), "https://acme.okta.com");
    }

    #[test]
    fn microsofts_issuers_are_known_by_their_host() {
        for microsoft in [
            "https://login.microsoftonline.com/3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f/v2.0",
            "HTTPS://Login.MicrosoftOnline.us/3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f/v2.0",
            "https://login.chinacloudapi.cn/x",
            // Entra ID's v1 issuer, as a Generic client may be given it.
            "https://sts.windows.net/3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f/",
        ] {
            assert!(is_microsoft_issuer(microsoft), "{microsoft}");
        }
        for other in [
            "https://login.microsoftonline.com.evil.example/t/v2.0",
            "http://login.microsoftonline.com/t/v2.0",
            "https://acme.okta.com",
            "https://idp.example/login.microsoftonline.com",
            "",
        ] {
            assert!(!is_microsoft_issuer(other), "{other}");
        }
    }

    #[test]
    fn microsofts_shared_tenants_are_no_customers_issuer() {
        for shared in [
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
            "https://login.microsoftonline.com/9188040D-6C67-4C5B-B112-36A304B66DAD/v2.0",
            "https://login.microsoftonline.com/common/v2.0",
            "https://LOGIN.microsoftonline.us/Organizations/v2.0",
            "https://login.partner.microsoftonline.cn/consumers",
            // However spelled.
            "https://login.microsoftonline.com./common/v2.0",
            "https://login.microsoftonline.com/%63ommon/v2.0",
        ] {
            assert!(shared_microsoft_tenant(shared).is_some(), "{shared}");
        }
        assert!(is_microsoft_issuer("https://login.microsoftonline.com./x/v2.0"));
        for own in [
            "https://login.microsoftonline.com/3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f/v2.0",
            "https://idp.example/common/v2.0",
            "https://acme.okta.com",
        ] {
            assert_eq!(shared_microsoft_tenant(own), None, "{own}");
        }
    }

    #[test]
    fn entra_issuer_comes_from_the_tenant_id() {
        let loc = IdpLocation { tenant_id: Some("3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f".into()), ..Default::default() };
        assert_eq!(
            loc.issuer_for(IdpType::MicrosoftEntra).unwrap(),
            "https://login.microsoftonline.com/3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f/v2.0"
        );
        let loc = IdpLocation { tenant_id: Some("3F2A6C1E-8B4D-4E2A-9C7F-1A2B3C4D5E6F".into()), ..Default::default() };
        assert_eq!(
            loc.issuer_for(IdpType::MicrosoftEntra).unwrap(),
            "https://login.microsoftonline.com/3f2a6c1e-8b4d-4e2a-9c7f-1a2b3c4d5e6f/v2.0"
        );
    }

    #[test]
    fn explicit_issuer_overrides_every_type() {
        let loc = IdpLocation {
            sso_domain: Some("acme.okta.com".into()),
            issuer: Some("https://acme.okta.com/oauth2/default/".into()),
            ..Default::default()
        };
        assert_eq!(loc.issuer_for(IdpType::Okta).unwrap(), "https://acme.okta.com/oauth2/default");
    }

    #[test]
    fn generic_without_issuer_is_an_error() {
        assert_eq!(IdpLocation::default().issuer_for(IdpType::Generic), Err(IssuerError::MissingIssuer));
    }

    #[test]
    fn entra_user_id_is_oid_not_the_pairwise_sub() {
        let claims = json!({"sub": "pairwise-abc", "oid": "00000000-0000-0000-0000-000000000042"});
        let claims = claims.as_object().unwrap();
        assert_eq!(IdpType::MicrosoftEntra.oidc_user_id(claims).unwrap(), "00000000-0000-0000-0000-000000000042");
        assert_eq!(IdpType::Okta.oidc_user_id(claims).unwrap(), "pairwise-abc");
    }

    #[test]
    fn entra_user_id_falls_back_to_sub_without_oid() {
        let claims = json!({"sub": "only-sub"});
        assert_eq!(IdpType::MicrosoftEntra.oidc_user_id(claims.as_object().unwrap()).unwrap(), "only-sub");
    }

    #[test]
    fn idp_type_names_round_trip_and_unknown_is_rejected() {
        for t in IdpType::ALL {
            assert_eq!(t.as_str().parse::<IdpType>().unwrap(), t);
        }
        assert!("okta".parse::<IdpType>().is_err());
    }
}

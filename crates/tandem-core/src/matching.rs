//! Matching strategies: how an SSO identity is joined to a SCIM user.
//!
//! Each strategy names one SSO-side value and one SCIM-side value and how the
//! two compare. Both sides are reduced to a *match key* here, so storage can
//! look the key up in an indexed column instead of comparing row by row.

use crate::idp::IdpType;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The five matching strategies of the product contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MatchingStrategy {
    /// OIDC user id == SCIM `userName`, exact.
    OidcSubToScimUsername,
    /// OIDC user id == SCIM `externalId`, exact.
    OidcSubToScimExternalId,
    /// `email` == SCIM `userName`, case-insensitive.
    OidcEmailToScimUsername,
    /// Local part of `email` == local part of SCIM `userName`, case-insensitive.
    OidcEmailUsernameToScimUsername,
    /// `preferred_username` == SCIM `userName`, case-insensitive.
    OidcPreferredUsernameToScimUsername,
}

/// Which SCIM column a strategy compares against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScimKey {
    /// `userName` exactly as stored.
    UserName,
    /// `userName` lower-cased.
    UserNameLower,
    /// Lower-cased local part of `userName` (the whole value without `@`).
    UserNameLocalLower,
    /// `externalId` exactly as stored.
    ExternalId,
}

/// The SSO-side attributes a strategy may read.
#[derive(Clone, Debug, Default)]
pub struct SsoAttributes<'a> {
    /// The OIDC user id (see [`IdpType::oidc_user_id`]).
    pub oidc_user_id: Option<&'a str>,
    /// The `email` claim.
    pub email: Option<&'a str>,
    /// The `preferred_username` claim.
    pub preferred_username: Option<&'a str>,
    /// The `email_verified` claim. An email the IdP marks `false` is not
    /// used to identify anyone (OpenID Connect Core §5.7: only a verified
    /// email says the user controls it); an IdP that sends no
    /// `email_verified` (Entra ID) is taken at its word.
    pub email_verified: Option<bool>,
}

impl MatchingStrategy {
    /// All strategies, in the contract's order.
    pub const ALL: [MatchingStrategy; 5] = [
        MatchingStrategy::OidcSubToScimUsername,
        MatchingStrategy::OidcSubToScimExternalId,
        MatchingStrategy::OidcEmailToScimUsername,
        MatchingStrategy::OidcEmailUsernameToScimUsername,
        MatchingStrategy::OidcPreferredUsernameToScimUsername,
    ];

    /// The built-in default for an IdP type (a deployment may override it).
    pub fn default_for(idp_type: IdpType) -> MatchingStrategy {
        match idp_type {
            IdpType::Okta | IdpType::Generic => MatchingStrategy::OidcEmailToScimUsername,
            IdpType::MicrosoftEntra => MatchingStrategy::OidcSubToScimExternalId,
        }
    }

    /// The strategy's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchingStrategy::OidcSubToScimUsername => "OidcSubToScimUsername",
            MatchingStrategy::OidcSubToScimExternalId => "OidcSubToScimExternalId",
            MatchingStrategy::OidcEmailToScimUsername => "OidcEmailToScimUsername",
            MatchingStrategy::OidcEmailUsernameToScimUsername => "OidcEmailUsernameToScimUsername",
            MatchingStrategy::OidcPreferredUsernameToScimUsername => "OidcPreferredUsernameToScimUsername",
        }
    }

    /// The SCIM column this strategy looks up.
    pub fn scim_key(self) -> ScimKey {
        match self {
            MatchingStrategy::OidcSubToScimUsername => ScimKey::UserName,
            MatchingStrategy::OidcSubToScimExternalId => ScimKey::ExternalId,
            MatchingStrategy::OidcEmailToScimUsername | MatchingStrategy::OidcPreferredUsernameToScimUsername => {
                ScimKey::UserNameLower
            }
            MatchingStrategy::OidcEmailUsernameToScimUsername => ScimKey::UserNameLocalLower,
        }
    }

    /// Whether the strategy joins on the `email` claim.
    pub fn uses_email(self) -> bool {
        matches!(self, MatchingStrategy::OidcEmailToScimUsername | MatchingStrategy::OidcEmailUsernameToScimUsername)
    }

    /// The SSO-side key, already in the form the SCIM column holds; `None`
    /// when the identity lacks the attribute, or for an email strategy when
    /// the IdP says the email is not verified (either then matches nothing).
    pub fn sso_key(self, sso: &SsoAttributes<'_>) -> Option<String> {
        let email = sso.email.filter(|_| sso.email_verified != Some(false));
        let key = match self {
            MatchingStrategy::OidcSubToScimUsername | MatchingStrategy::OidcSubToScimExternalId => {
                sso.oidc_user_id.map(str::to_string)
            }
            MatchingStrategy::OidcEmailToScimUsername => email.map(str::to_lowercase),
            MatchingStrategy::OidcEmailUsernameToScimUsername => email.map(local_part_lower),
            MatchingStrategy::OidcPreferredUsernameToScimUsername => sso.preferred_username.map(str::to_lowercase),
        };
        key.filter(|k| !k.is_empty())
    }
}

/// Lower-cased local part of an email-like value; the whole value when it
/// has no `@`.
pub fn local_part_lower(value: &str) -> String {
    match value.rsplit_once('@') {
        Some((local, _)) => local.to_lowercase(),
        None => value.to_lowercase(),
    }
}

impl fmt::Display for MatchingStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown strategy name.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown matching strategy {0:?}; expected one of OidcSubToScimUsername, OidcSubToScimExternalId, \
     OidcEmailToScimUsername, OidcEmailUsernameToScimUsername, OidcPreferredUsernameToScimUsername"
)]
pub struct UnknownStrategy(pub String);

impl FromStr for MatchingStrategy {
    type Err = UnknownStrategy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MatchingStrategy::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| UnknownStrategy(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sso<'a>(id: &'a str, email: &'a str, pu: &'a str) -> SsoAttributes<'a> {
        SsoAttributes { oidc_user_id: Some(id), email: Some(email), preferred_username: Some(pu), email_verified: None }
    }

    #[test]
    fn defaults_follow_the_idp_type() {
        assert_eq!(MatchingStrategy::default_for(IdpType::Okta), MatchingStrategy::OidcEmailToScimUsername);
        assert_eq!(MatchingStrategy::default_for(IdpType::MicrosoftEntra), MatchingStrategy::OidcSubToScimExternalId);
        assert_eq!(MatchingStrategy::default_for(IdpType::Generic), MatchingStrategy::OidcEmailToScimUsername);
    }

    #[test]
    fn sub_strategies_compare_exactly() {
        let s = sso("00uAbC", "Alice@Acme.com", "alice");
        assert_eq!(MatchingStrategy::OidcSubToScimExternalId.sso_key(&s).unwrap(), "00uAbC");
        assert_eq!(MatchingStrategy::OidcSubToScimUsername.sso_key(&s).unwrap(), "00uAbC");
        assert_eq!(MatchingStrategy::OidcSubToScimUsername.scim_key(), ScimKey::UserName);
    }

    #[test]
    fn email_strategy_is_case_insensitive() {
        let s = sso("x", "Alice@Acme.com", "alice");
        assert_eq!(MatchingStrategy::OidcEmailToScimUsername.sso_key(&s).unwrap(), "alice@acme.com");
        assert_eq!(MatchingStrategy::OidcEmailToScimUsername.scim_key(), ScimKey::UserNameLower);
    }

    #[test]
    fn email_username_strategy_compares_local_parts() {
        let s = sso("x", "Alice.Smith@acme.com", "alice");
        assert_eq!(MatchingStrategy::OidcEmailUsernameToScimUsername.sso_key(&s).unwrap(), "alice.smith");
        assert_eq!(local_part_lower("ALICE.SMITH@other.org"), "alice.smith");
        assert_eq!(local_part_lower("Alice.Smith"), "alice.smith");
    }

    #[test]
    fn an_email_marked_unverified_identifies_no_one() {
        let mut s = sso("00uAbC", "Alice@Acme.com", "alice");
        for verified in [None, Some(true)] {
            s.email_verified = verified;
            assert_eq!(MatchingStrategy::OidcEmailToScimUsername.sso_key(&s).unwrap(), "alice@acme.com");
        }
        s.email_verified = Some(false);
        for m in MatchingStrategy::ALL {
            assert_eq!(m.sso_key(&s).is_none(), m.uses_email(), "{m}");
        }
    }

    #[test]
    fn missing_attribute_matches_nothing() {
        let s = SsoAttributes { oidc_user_id: Some("x"), ..Default::default() };
        assert_eq!(MatchingStrategy::OidcEmailToScimUsername.sso_key(&s), None);
        let empty = SsoAttributes { oidc_user_id: Some(""), ..Default::default() };
        assert_eq!(MatchingStrategy::OidcSubToScimExternalId.sso_key(&empty), None);
    }

    #[test]
    fn strategy_names_round_trip_and_unknown_is_rejected() {
        for m in MatchingStrategy::ALL {
            assert_eq!(m.as_str().parse::<MatchingStrategy>().unwrap(), m);
        }
        let err = "ByEmail".parse::<MatchingStrategy>().unwrap_err();
        assert!(err.to_string().contains("OidcEmailToScimUsername"));
    }
}

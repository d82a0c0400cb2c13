//! The SCIM join: the customer's matching strategy applied to the SSO
//! identity, answered by an indexed lookup.

use super::errors::not_active;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use serde_json::{json, Value};
use tandem_core::login::{
    decide, decide_by_id, decide_shared_key, others_deleted, owner_of, Candidate, JoinOutcome, NotActiveReason, Owner,
};
use tandem_core::matching::{MatchingStrategy, ScimKey, SsoAttributes};
use tandem_store::oidc_clients::OidcClientRow;
use tandem_store::scim::users;
use tandem_store::{scim_connections, AnyConnection, StoreError};

/// What to do about an email the IdP marks unverified, named in both refusals.
const UNVERIFIED_REMEDY: &str = "If the IdP itself sets its users' emails, have it mark them verified \
     (Keycloak: \"Trust email\" on the LDAP or identity-provider link, or the user's \"Email verified\"; Authentik: \
     an email scope mapping that returns email_verified: true), or set this client's accept_unverified_email; \
     otherwise match on OidcSubToScimExternalId";

/// The same for Entra ID, which sends no `email_verified`.
const ENTRA_UNVERIFIED_REMEDY: &str = "Entra vouches for an email only through the optional claim xms_edov (the \
     tenant verified the email's domain): add the email and xms_edov optional claims to the sign-in app's token \
     configuration, or set this client's accept_unverified_email; otherwise match on OidcSubToScimExternalId (the \
     object id)";

/// How a refusal says that `email` is unverified, and what to do about it,
/// for an IdP of `idp_type` at `issuer` (Entra ID's words for a client on
/// Microsoft's hosts whatever its type, as its emails are read Entra's way).
pub(crate) fn unverified_email(
    idp_type: tandem_core::idp::IdpType,
    issuer: &str,
    email: &str,
) -> (String, &'static str) {
    match tandem_core::idp::reads_emails_as_entra(idp_type, issuer) {
        true => (
            format!(
                "Entra does not vouch for the email {email:?} (its xms_edov claim is false or unclear, or only \
                 userinfo gave the email, which Entra left out of the ID token)"
            ),
            ENTRA_UNVERIFIED_REMEDY,
        ),
        false => {
            (format!("the IdP marks the email {email:?} as not verified (email_verified: false)"), UNVERIFIED_REMEDY)
        }
    }
}

/// The join's result: the matched SCIM user (rendered), or `None` when the
/// customer has no SCIM connection (SSO-only).
pub struct Joined {
    pub scim_user: Option<Value>,
    pub scim_user_id: Option<String>,
    pub detail: Value,
}

/// Joins `sso` to the SCIM user of the client's customer, on one connection
/// (reads only: the login's records are written behind its answer). The outer error is
/// the database's; the inner one is the login's refusal.
/// `email_doubt` says why the email may not identify anyone even though
/// the IdP vouches for it (a Google consumer account); an email strategy
/// then refuses the login with it.
pub fn join(
    c: &mut AnyConnection,
    state: &AppState,
    client: &OidcClientRow,
    sso: &SsoAttributes<'_>,
    email_doubt: Option<&str>,
) -> Result<Result<Joined, ApiError>, StoreError> {
    let connection = scim_connections::get_by_customer(c, &client.customer_id)?;
    let Some(connection) = connection else {
        if client.scim_required {
            // Paired once: the connection was deleted or renamed away. Without
            // it nobody can be checked, so nobody signs in (fail closed).
            return Ok(Err(not_active(
                "not_provisioned",
                format!(
                    "customer {:?} has no SCIM connection, and its OIDC client requires a SCIM user (scim_required, set when the two were paired); create the customer's SCIM \
                     connection again, or PATCH the client's scim_required to false to let its logins through \
                     without the deprovisioning check",
                    client.customer_id
                ),
                json!({"scim_connection": null, "scim_required": true}),
            )));
        }
        return Ok(Ok(Joined { scim_user: None, scim_user_id: None, detail: json!({"scim_connection": null}) }));
    };
    let strategy: MatchingStrategy = match client.strategy()? {
        Some(s) => s,
        None => state.settings.default_strategy(client.idp_type()?).0,
    };
    let context = json!({"strategy": strategy.as_str(), "scim_connection_id": connection.id});
    if let Some(doubt) = email_doubt.filter(|_| strategy.uses_email() && sso.email.is_some()) {
        let mut details = context.clone();
        details["email"] = json!(sso.email);
        details["hd"] = Value::Null;
        return Ok(Err(not_active("email_not_verified", doubt.to_string(), details)));
    }
    let Some(key) = strategy.sso_key(sso) else {
        if let Some(email) = sso.email.filter(|_| strategy.uses_email() && sso.email_verified == Some(false)) {
            let mut details = context.clone();
            details["email"] = json!(email);
            details["email_verified"] = json!(false);
            let (unverified, remedy) = unverified_email(client.idp_type()?, &client.issuer, email);
            return Ok(Err(not_active(
                "email_not_verified",
                format!(
                    "{unverified}; the matching strategy {strategy} joins on the email, so it cannot identify the \
                     user. {remedy}"
                ),
                details,
            )));
        }
        if let Some(email) = sso.email.filter(|_| strategy.uses_email()) {
            // There, but empty where the strategy looks (`@acme.com` by local part).
            let mut details = context.clone();
            details["email"] = json!(email);
            let part =
                if strategy == MatchingStrategy::OidcEmailUsernameToScimUsername { "local part" } else { "value" };
            return Ok(Err(not_active(
                "not_provisioned",
                format!(
                    "the IdP's email {email:?} has an empty {part}, which the matching strategy {strategy} joins on"
                ),
                details,
            )));
        }
        let missing = match strategy {
            MatchingStrategy::OidcSubToScimUsername | MatchingStrategy::OidcSubToScimExternalId => "OIDC user id",
            MatchingStrategy::OidcPreferredUsernameToScimUsername => "preferred_username",
            _ => "email",
        };
        let mut details = context.clone();
        details["missing_claim"] = json!(missing);
        return Ok(Err(not_active(
            "not_provisioned",
            format!("the IdP sent no {missing}, which the matching strategy {strategy} needs"),
            details,
        )));
    };
    let (mut candidates, mut groups_of) = users::find_by_key_with_groups(c, &connection.id, strategy.scim_key(), &key)?;
    let found: Vec<Candidate> =
        candidates.iter().map(|u| Candidate { live: u.deleted_at.is_none(), active: u.active }).collect();
    let shared_key = strategy == MatchingStrategy::OidcEmailUsernameToScimUsername;
    let email = sso.email.map(str::to_lowercase);
    let names: Vec<&str> = candidates.iter().map(|u| u.user_name_lower.as_str()).collect();
    let verdict = if shared_key {
        // An email's local part is shared by different people: whose the
        // login's email is (a userName, or one of a user's emails) decides.
        let owns: Vec<Owner> = candidates.iter().map(|u| owner(u, email.as_deref())).collect();
        decide_shared_key(&found, &names, &owns)
    } else if strategy.scim_key() == ScimKey::ExternalId {
        decide_by_id(&found)
    } else {
        decide(&found)
    };
    // Tombstones that count as other people (listed among ambiguous candidates).
    let counted_deleted = if shared_key { others_deleted(&found, &names) } else { Vec::new() };
    let mut details = context;
    details["matched_on"] = json!(key);
    match verdict {
        JoinOutcome::Matched(i) => {
            let row = candidates.swap_remove(i);
            let groups = match groups_of.as_mut() {
                Some(read) => read.remove(&row.id),
                None => users::groups_of(c, std::slice::from_ref(&row.id))?.remove(&row.id),
            }
            .unwrap_or_default();
            let resource = crate::scim::render_user(state, &row, Some(&groups));
            let mut scim_user = json!({
                "scim_connection_id": row.scim_connection_id,
                "id": row.id,
                "user_name": row.user_name,
                "external_id": row.external_id,
                "active": row.active,
                "display_name": row.display_name,
            });
            // Values moved in: `json!` would serialise them into copies.
            scim_user["emails"] = resource.get("emails").cloned().unwrap_or(json!([]));
            scim_user["groups"] =
                Value::Array(groups.iter().map(|(gid, name)| json!({"value": gid, "display": name})).collect());
            scim_user["resource"] = resource;
            details["scim_user_id"] = json!(row.id);
            Ok(Ok(Joined { scim_user: Some(scim_user), scim_user_id: Some(row.id), detail: details }))
        }
        JoinOutcome::NotActive(reason) => {
            let message = match reason {
                NotActiveReason::Deactivated => {
                    "the matched SCIM user is deactivated in the identity provider".to_string()
                }
                NotActiveReason::Deleted => "the matched SCIM user was deleted by the identity provider".to_string(),
                // By local part: the one live namesake's own addresses are others
                // (not named here: the message may reach the person signing in).
                NotActiveReason::NotProvisioned if shared_key && !candidates.is_empty() => format!(
                    "no SCIM user of this customer has the email {:?}: the user sharing its local part (details.namesake) \
                     has addresses of its own (userName and emails), none of them this one, so it is someone else; \
                     under the strategy {strategy} a user's own addresses say whose an email is",
                    sso.email.unwrap_or_default(),
                ),
                NotActiveReason::NotProvisioned => {
                    let mut message = format!(
                        "no SCIM user of this customer matches {key:?} under the strategy {strategy}; the user is not \
                         provisioned"
                    );
                    // Entra's default provisioning sends mailNickname as externalId, not the
                    // object id this strategy compares: the commonest cause of this refusal.
                    if strategy == MatchingStrategy::OidcSubToScimExternalId
                        && client.idp_type().ok() == Some(tandem_core::idp::IdpType::MicrosoftEntra)
                    {
                        message.push_str(
                            " (or provisioned under another externalId: Entra's default attribute mapping sends \
                             mailNickname as externalId; map objectId to externalId in the enterprise application's \
                             provisioning, or choose OidcPreferredUsernameToScimUsername, and see the matching report)",
                        );
                    }
                    message
                }
            };
            let deleted = || candidates.iter().filter(|u| u.deleted_at.is_some());
            let named = match reason {
                // The tombstone whose the login's email is first (a shared key's other person).
                NotActiveReason::Deleted => {
                    deleted().find(|u| owner(u, email.as_deref()) == Owner::Yes).or(deleted().next())
                }
                // By local part, the live namesake that is someone else: named by its id.
                NotActiveReason::NotProvisioned if shared_key => {
                    if let Some(u) = candidates.iter().find(|u| u.deleted_at.is_none()) {
                        details["namesake"] = json!({"id": u.id});
                    }
                    None
                }
                _ => candidates.iter().find(|u| u.deleted_at.is_none()).or(candidates.first()),
            };
            if let Some(u) = named {
                details["scim_user_id"] = json!(u.id);
            }
            let reason =
                serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            Ok(Err(not_active(&reason, message, details)))
        }
        JoinOutcome::Ambiguous(n) => {
            // Under a shared key, deleted users of other userNames count too: they are named as such.
            details["candidates"] = json!(candidates
                .iter()
                .enumerate()
                .filter(|(i, u)| u.deleted_at.is_none() || counted_deleted.contains(i))
                .map(|(_, u)| match u.deleted_at {
                    None => json!({"id": u.id, "user_name": u.user_name}),
                    Some(_) => json!({"id": u.id, "user_name": u.user_name, "deleted": true}),
                })
                .collect::<Vec<_>>());
            Ok(Err(ApiError::new(
                StatusCode::CONFLICT,
                "ScimUserAmbiguous",
                format!("{n} SCIM users match {key:?} under the strategy {strategy}; choose a strategy that identifies one user"),
            )
            .with_details(details)))
        }
    }
}

/// Whether `email` (lower-cased) is `user`'s ([`owner_of`]; unknown
/// without an email).
fn owner(user: &users::ScimUserRow, email: Option<&str>) -> Owner {
    let Some(email) = email else { return Owner::Unknown };
    if user.user_name_lower == email {
        // Known without reading the document.
        return Owner::Yes;
    }
    owner_of(&user.user_name_lower, tandem_scim::resource::email_values(&user.document()), email)
}

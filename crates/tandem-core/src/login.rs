//! The login's pure rules: reading the callback the app hands over, the
//! explanation of well-known IdP errors, and the SCIM join decision.

use serde::Serialize;
use std::collections::HashMap;

/// The callback the IdP redirected the browser to, as the app received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub path: String,
    pub params: HashMap<String, String>,
}

impl Callback {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Reads `callback_path_and_query` (`/sso/callback?code=…&state=…`; a full
/// URL is accepted too). A parameter given twice is refused (RFC 6749 §3.1).
pub fn parse_callback(raw: &str) -> Result<Callback, String> {
    if raw.is_empty() || raw.len() > 16 * 1024 {
        return Err("must be the callback's path and query, at most 16 KiB".into());
    }
    // The path (and any scheme and host before it) is read as a URL reads
    // it: dot segments, backslashes, percent-encoding. The query, as long as
    // the login's sealed state, is read as its pairs alone: a URL would
    // percent-encode it only for the pairs to decode it again.
    let before_fragment = raw.split('#').next().unwrap_or_default();
    let (path_part, query) = match before_fragment.split_once('?') {
        Some((path, query)) => (path, query),
        None => (before_fragment, ""),
    };
    let base = url::Url::parse("http://callback.invalid").map_err(|e| e.to_string())?;
    let url = base.join(path_part).map_err(|e| format!("is not a URL path ({e})"))?;
    let mut params = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k.contains('\0') || v.contains('\0') {
            return Err(format!("has the NUL character (%00) in the parameter {:?}", k.replace('\0', "%00")));
        }
        if params.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("has the parameter {k:?} more than once"));
        }
    }
    Ok(Callback { path: url.path().to_string(), params })
}

/// A known explanation of an IdP error code, with what to do about it.
pub fn explain_idp_error(error: &str, description: Option<&str>) -> Option<&'static str> {
    let text = format!("{error} {}", description.unwrap_or(""));
    const ENTRA: [(&str, &str); 14] = [
        ("AADSTS50105", "The user is not assigned to the application in Microsoft Entra ID. Assign the user (or one of their groups) to the enterprise application, or turn off 'Assignment required'."),
        ("AADSTS7000215", "Microsoft Entra ID rejected the client secret: it is wrong. Copy the secret's *value* (not its ID) and update the OIDC client."),
        ("AADSTS7000222", "The client secret has expired in Microsoft Entra ID. Create a new secret under Certificates & secrets and update the OIDC client."),
        ("AADSTS50011", "The redirect URI does not match one registered for the application in Microsoft Entra ID. Add the OIDC client's redirect_url exactly (scheme, host, path) under Authentication."),
        ("AADSTS700016", "The application (client id) was not found in this Microsoft Entra tenant. Check the client id and the tenant id."),
        ("AADSTS65001", "The user or an administrator has not consented to the application. Grant admin consent for the tenant."),
        ("AADSTS90072", "The user's account is from another tenant and is not a guest in this one."),
        ("AADSTS50076", "Multi-factor authentication is required and was not completed."),
        ("AADSTS50020", "The account is not in this Microsoft Entra tenant (a personal account, or one from another tenant that is not invited as a guest). Sign in with an account of the tenant, or invite it."),
        ("AADSTS53003", "A Conditional Access policy of the tenant blocked the sign-in. The tenant's administrator can see which one in the Entra sign-in logs."),
        ("AADSTS7000218", "Microsoft Entra ID expected a client secret or assertion and got none: the application is set up as a confidential client. Give the OIDC client its secret."),
        ("AADSTS9002327", "The redirect URI is registered under the Single-page application platform in Microsoft Entra ID; register the OIDC client's redirect_url under Web instead."),
        ("AADSTS54005", "The authorization code was already redeemed: the callback was used twice. Start a new login."),
        ("AADSTS500113", "No reply address is registered for the application in Microsoft Entra ID. Add the OIDC client's redirect_url under Authentication."),
    ];
    // Codes are matched whole: AADSTS500113 is not AADSTS50011.
    let codes: Vec<&str> = text
        .match_indices("AADSTS")
        .map(|(at, _)| {
            let digits = text[at + 6..].bytes().take_while(u8::is_ascii_digit).count();
            &text[at..at + 6 + digits]
        })
        .collect();
    for (code, why) in ENTRA {
        if codes.contains(&code) {
            return Some(why);
        }
    }
    let desc = description.unwrap_or("").to_ascii_lowercase();
    if error == "access_denied" && desc.contains("not assigned") {
        return Some("The user is not assigned to the application in the IdP (Okta: Assignments tab of the app). Assign the user or one of their groups.");
    }
    match error {
        "access_denied" => {
            Some("The user or the IdP denied the request (not assigned to the app, or consent refused).")
        }
        "invalid_scope" => Some(
            "The IdP does not allow a requested scope; check the client's scopes and additional_scopes (an AWS \
             Cognito app client must allow each one: set scopes to [\"openid\", \"email\"] to leave out profile).",
        ),
        "unauthorized_client" => Some("The IdP does not allow this client to use the authorization-code flow."),
        "login_required" | "interaction_required" => Some("The IdP needs the user to sign in interactively."),
        "temporarily_unavailable" | "server_error" => Some("The IdP had a temporary failure; retry."),
        _ => None,
    }
}

/// One SCIM user a login's key matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Not deleted (deleted users are kept as tombstones).
    pub live: bool,
    pub active: bool,
}

/// Why a login is refused by the SCIM join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotActiveReason {
    Deactivated,
    Deleted,
    NotProvisioned,
}

/// The join's verdict over the candidates of one login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Exactly one live user matched and it is active: its index.
    Matched(usize),
    /// Refused.
    NotActive(NotActiveReason),
    /// Several live users matched: never a coin toss.
    Ambiguous(usize),
}

/// Decides the join: tombstones only matter when no live user matched.
pub fn decide(candidates: &[Candidate]) -> JoinOutcome {
    let live: Vec<usize> = candidates.iter().enumerate().filter(|(_, c)| c.live).map(|(i, _)| i).collect();
    match live.as_slice() {
        [] if candidates.is_empty() => JoinOutcome::NotActive(NotActiveReason::NotProvisioned),
        [] => JoinOutcome::NotActive(NotActiveReason::Deleted),
        [one] if candidates[*one].active => JoinOutcome::Matched(*one),
        [_] => JoinOutcome::NotActive(NotActiveReason::Deactivated),
        many => JoinOutcome::Ambiguous(many.len()),
    }
}

/// [`decide`] for a key that is the IdP's own id of one person (an
/// `externalId` holding the IdP's user id). Live users carrying it are that
/// person provisioned more than once: Okta, after a user is unassigned,
/// renamed and assigned again, creates a new user beside the deactivated one
/// and never deletes it. The one active among them is the person; none
/// active is the person deactivated; several active stay ambiguous (two
/// live accounts the IdP keeps for one id).
pub fn decide_by_id(candidates: &[Candidate]) -> JoinOutcome {
    if sole_live(candidates).is_some() || candidates.iter().all(|c| !c.live) {
        return decide(candidates);
    }
    let active: Vec<usize> = (0..candidates.len()).filter(|&i| candidates[i].live && candidates[i].active).collect();
    match active.as_slice() {
        [one] => JoinOutcome::Matched(*one),
        [] => JoinOutcome::NotActive(NotActiveReason::Deactivated),
        many => JoinOutcome::Ambiguous(many.len()),
    }
}

/// Whether the login's full email is a candidate's, as the candidate's own
/// addresses say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// It is: the candidate's userName, or one of its `emails`.
    Yes,
    /// It is not: the candidate has `emails`, and neither they nor its
    /// userName are the login's email.
    No,
    /// Nobody can tell: the candidate has no `emails` (a userName only,
    /// perhaps a directory name such as `jsmith@corp.local`).
    Unknown,
}

/// Whose the login's `email` (lower-cased) is, as a candidate's own
/// addresses say: its `userName` (lower-cased) or one of its `emails` (any
/// case; an empty value is no address of anyone's). The login's join and
/// the matching report both read it so.
pub fn owner_of<'a>(user_name_lower: &str, emails: impl IntoIterator<Item = &'a str>, email: &str) -> Owner {
    if user_name_lower == email {
        return Owner::Yes;
    }
    let mut has_emails = false;
    for e in emails.into_iter().filter(|e| !e.trim().is_empty()) {
        if e.to_lowercase() == email {
            return Owner::Yes;
        }
        has_emails = true;
    }
    match has_emails {
        true => Owner::No,
        false => Owner::Unknown,
    }
}

/// [`decide`] for a key several people can share (an email's local part:
/// `john@contoso.com` and `john@fabrikam.com`). `names` are the candidates'
/// lower-cased userNames; `owns[i]` says whether the login's full email is
/// candidate `i`'s. The one live candidate whose own addresses are others
/// is someone else: refused as not provisioned (an unprovisioned
/// `john@fabrikam.com` never signs in as `john@contoso.com`), or as
/// deleted when a deleted user's address it is. Where a key is an identity
/// (a userName, an externalId), a tombstone beside a live user is the same
/// user deleted and provisioned again; here a tombstone of a userName the
/// live user does not have is someone else, who must not sign in as the
/// live user. With one live candidate and such tombstones, the login's full
/// email says whom it is (the live user, or a deleted one), and otherwise
/// the match is ambiguous.
pub fn decide_shared_key(candidates: &[Candidate], names: &[&str], owns: &[Owner]) -> JoinOutcome {
    let Some(one) = sole_live(candidates) else { return decide(candidates) };
    let others: Vec<usize> = others_deleted(candidates, names);
    let owner = |i: usize| owns.get(i).copied().unwrap_or(Owner::Unknown);
    let owned = |i: &usize| owner(*i) == Owner::Yes;
    if owner(one) == Owner::No {
        return JoinOutcome::NotActive(match others.iter().any(owned) {
            true => NotActiveReason::Deleted,
            false => NotActiveReason::NotProvisioned,
        });
    }
    if others.is_empty() || owned(&one) {
        return decide(candidates);
    }
    if others.iter().any(owned) {
        return JoinOutcome::NotActive(NotActiveReason::Deleted);
    }
    let mut distinct: Vec<&str> = others.iter().map(|i| names[*i]).collect();
    distinct.sort_unstable();
    distinct.dedup();
    JoinOutcome::Ambiguous(1 + distinct.len())
}

/// With exactly one live candidate, the tombstones of other userNames than
/// its own (other people, under a shared key); otherwise none.
pub fn others_deleted(candidates: &[Candidate], names: &[&str]) -> Vec<usize> {
    let Some(one) = sole_live(candidates) else { return Vec::new() };
    (0..candidates.len()).filter(|&i| !candidates[i].live && names.get(i) != names.get(one)).collect()
}

/// The index of the one live candidate, if exactly one is live.
fn sole_live(candidates: &[Candidate]) -> Option<usize> {
    let mut live = (0..candidates.len()).filter(|&i| candidates[i].live);
    match (live.next(), live.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// Checks a `post_login_redirect_url`: a path in the app (`/dashboard`,
/// never `//host`) or an absolute http(s) URL.
pub fn check_post_login_redirect(raw: &str) -> Result<(), String> {
    if raw.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    // Browsers drop tabs and line breaks from URLs and read `\` as `/`, so
    // "/\t/evil.example" would become "//evil.example" (another host).
    if raw.chars().any(|c| c.is_control() || c == '\\') {
        return Err("must not contain control characters or backslashes".into());
    }
    if raw.starts_with('/') && !raw.starts_with("//") {
        return Ok(());
    }
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err("must be a path starting with / or an absolute http(s) URL".into()),
    }
}

/// An origin as configured (`https://app.example.com[:port]`, nothing
/// after it), or `None`.
pub fn parse_origin(raw: &str) -> Option<url::Origin> {
    let u = url::Url::parse(raw).ok()?;
    let bare = matches!(u.scheme(), "http" | "https")
        && u.path() == "/"
        && !raw.ends_with('/')
        && u.query().is_none()
        && u.fragment().is_none()
        && u.username().is_empty();
    bare.then(|| u.origin())
}

/// Checks an absolute `post_login_redirect_url` against the client's
/// `redirect_url`: it must be on the same origin (scheme, host and port),
/// or on one of `extra` (the deployment's `oidc.post_login_redirect_origins`;
/// `*` allows any), so that an app which passes on a `?next=` from the
/// browser is not made an open redirector to any site (RFC 9700 §4.11). A
/// path is always on it.
pub fn check_post_login_origin(raw: &str, redirect_url: &str, extra: &[String]) -> Result<(), String> {
    if raw.starts_with('/') || extra.iter().any(|o| o == "*") {
        return Ok(());
    }
    let (Ok(target), Ok(app)) = (url::Url::parse(raw), url::Url::parse(redirect_url)) else {
        return Err("must be a path starting with / or an absolute http(s) URL".into());
    };
    let origin = target.origin();
    if origin == app.origin() || extra.iter().filter_map(|o| parse_origin(o)).any(|o| o == origin) {
        Ok(())
    } else {
        Err(format!(
            "must be a path, or an absolute URL on the origin of this client's redirect_url ({}){}: \
             Tandem sends browsers on to the app's own sites only",
            app.origin().ascii_serialization(),
            if extra.is_empty() { String::new() } else { format!(" or on {}", extra.join(", ")) }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absolute_post_login_url_must_be_on_the_apps_origin() {
        let app = "https://app.example.com/sso/callback/acme";
        for ok in ["/home", "https://app.example.com/home?x=1", "https://APP.example.com:443/"] {
            assert!(check_post_login_origin(ok, app, &[]).is_ok(), "{ok}");
        }
        // The deployment's other origins, or any.
        let extra = ["https://www.example.com".to_string()];
        assert!(check_post_login_origin("https://www.example.com/x", app, &extra).is_ok());
        assert!(check_post_login_origin("https://evil.example/", app, &extra).unwrap_err().contains("www.example.com"));
        assert!(check_post_login_origin("https://evil.example/", app, &["*".to_string()]).is_ok());
        assert!(parse_origin("https://a.example:8443").is_some());
        for bad in ["https://a.example/", "https://a.example/x", "a.example", "ftp://a.example"] {
            assert!(parse_origin(bad).is_none(), "{bad}");
        }
        for bad in [
            "https://evil.example/",
            "http://app.example.com/home",
            "https://app.example.com:8443/",
            "https://app.example.com.evil.example/",
        ] {
            let e = check_post_login_origin(bad, app, &[]).unwrap_err();
            assert!(e.contains("https://app.example.com"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_callback_parameter_holding_nul_is_refused() {
        let err = super::parse_callback("/cb?code=c&error=x%00").unwrap_err();
        assert!(err.contains("NUL") && err.contains("\"error\""), "{err}");
        assert!(super::parse_callback("/cb?code=c%2500").is_ok(), "%25 is a percent sign");
    }

    #[test]
    fn callback_path_and_query_are_read() {
        // The query read as its pairs gives what a URL's query_pairs give.
        let by_url = |raw: &str| {
            let url = url::Url::parse("http://callback.invalid").unwrap().join(raw).unwrap();
            let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
            (url.path().to_string(), params)
        };
        for raw in [
            "/sso/callback?code=abc&state=xyz&iss=https%3A%2F%2Fidp",
            "/a/../cb/./x?state=a+b&code=%2B%20%zz%&e=é ü",
            "/cb?x=1#frag?y=2",
            "/cb#?state=s",
            "\\cb\\x?state=\\s",
            "https://app.example/cb?state=s&iss=",
            "//host.example/p?q=%41&empty&=v",
            "/cb?a=%F0%9F%98%80&b=%C3",
            "cb?state=relative",
            "/p?q=[brackets]&r={x}|^`<>\"",
        ] {
            let cb = parse_callback(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!((cb.path, cb.params), by_url(raw), "{raw}");
        }
        let cb = parse_callback("/sso/callback?code=abc&state=xyz&iss=https%3A%2F%2Fidp").unwrap();
        assert_eq!(cb.path, "/sso/callback");
        assert_eq!(cb.param("code"), Some("abc"));
        assert_eq!(cb.param("iss"), Some("https://idp"));
        assert_eq!(parse_callback("https://app.example/cb?state=s").unwrap().param("state"), Some("s"));
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        assert!(parse_callback("/cb?state=a&state=b").unwrap_err().contains("\"state\""));
    }

    #[test]
    fn entra_error_codes_are_explained() {
        let why =
            explain_idp_error("access_denied", Some("AADSTS50105: The signed in user 'x' is not assigned to a role"))
                .unwrap();
        assert!(why.contains("not assigned"));
        assert!(explain_idp_error(
            "invalid_client",
            Some("AADSTS7000222: The provided client secret keys are expired")
        )
        .unwrap()
        .contains("expired"));
        assert!(explain_idp_error("invalid_request", Some("AADSTS50011: The redirect URI specified"))
            .unwrap()
            .contains("redirect"));
        assert!(explain_idp_error("invalid_client", Some("AADSTS7000215: Invalid client secret provided"))
            .unwrap()
            .contains("wrong"));
    }

    #[test]
    fn okta_not_assigned_is_explained() {
        let why = explain_idp_error("access_denied", Some("User is not assigned to the client application.")).unwrap();
        assert!(why.contains("Okta"));
        assert_eq!(explain_idp_error("weird", None), None);
        // Codes are matched whole, not by prefix.
        let longer =
            explain_idp_error("invalid_request", Some("AADSTS500113: No reply address is registered")).unwrap();
        assert!(longer.contains("No reply address"), "{longer}");
        assert!(explain_idp_error("invalid_request", Some("AADSTS500112: something new")).is_none());
        let ca = explain_idp_error("access_denied", Some("AADSTS53003: Access has been blocked by Conditional Access"));
        assert!(ca.unwrap().contains("Conditional Access"));
    }

    #[test]
    fn join_decisions() {
        let c = |live, active| Candidate { live, active };
        assert_eq!(decide(&[]), JoinOutcome::NotActive(NotActiveReason::NotProvisioned));
        assert_eq!(decide(&[c(true, true)]), JoinOutcome::Matched(0));
        assert_eq!(decide(&[c(true, false)]), JoinOutcome::NotActive(NotActiveReason::Deactivated));
        assert_eq!(decide(&[c(false, true)]), JoinOutcome::NotActive(NotActiveReason::Deleted));
        assert_eq!(
            decide(&[c(false, false), c(true, true)]),
            JoinOutcome::Matched(1),
            "a re-provisioned user wins over its tombstone"
        );
        assert_eq!(decide(&[c(true, true), c(true, false)]), JoinOutcome::Ambiguous(2));
    }

    #[test]
    fn a_users_own_addresses_say_whose_an_email_is() {
        let e = "john@acme.com";
        assert_eq!(owner_of(e, [], e), Owner::Yes);
        assert_eq!(owner_of("jsmith@corp.local", ["x@y.com", "John@ACME.com"], e), Owner::Yes);
        assert_eq!(owner_of("john@contoso.com", ["john@contoso.com"], e), Owner::No);
        assert_eq!(owner_of("jsmith", [], e), Owner::Unknown);
        assert_eq!(owner_of("jsmith", ["", "  "], e), Owner::Unknown, "an empty value is nobody's address");
    }

    #[test]
    fn an_id_kept_by_an_active_and_a_deactivated_user_is_the_active_one() {
        let c = |live, active| Candidate { live, active };
        assert_eq!(decide_by_id(&[c(true, false), c(true, true)]), JoinOutcome::Matched(1));
        assert_eq!(decide_by_id(&[c(true, true), c(false, true), c(true, false)]), JoinOutcome::Matched(0));
        assert_eq!(
            decide_by_id(&[c(true, false), c(true, false)]),
            JoinOutcome::NotActive(NotActiveReason::Deactivated)
        );
        assert_eq!(decide_by_id(&[c(true, true), c(true, false), c(true, true)]), JoinOutcome::Ambiguous(2));
        // One live user, or none: as `decide`.
        for one in [vec![], vec![c(true, false)], vec![c(false, true), c(true, true)], vec![c(false, true)]] {
            assert_eq!(decide_by_id(&one), decide(&one), "{one:?}");
        }
    }

    #[test]
    fn a_shared_key_tells_a_deleted_person_from_the_live_one() {
        use Owner::{No, Unknown, Yes};
        let c = |live, active| Candidate { live, active };
        let (deleted, live) = ("john@contoso.com", "john@fabrikam.com");
        let pair = [c(false, true), c(true, true)];
        let names = [deleted, live];
        // `owns`: whose the login's email is (the deleted user's, the live user's, nobody's).
        let decide_as = |owns: [Owner; 2]| decide_shared_key(&pair, &names, &owns);
        // The deleted person is refused, never signed in as the live one.
        assert_eq!(decide_as([Yes, Unknown]), JoinOutcome::NotActive(NotActiveReason::Deleted));
        assert_eq!(decide_as([Yes, No]), JoinOutcome::NotActive(NotActiveReason::Deleted));
        assert_eq!(decide_as([Unknown, Yes]), JoinOutcome::Matched(1));
        assert_eq!(decide_as([Yes, Yes]), JoinOutcome::Matched(1), "the live user's own email wins");
        assert_eq!(decide_as([Unknown, Unknown]), JoinOutcome::Ambiguous(2));
        // A live user whose own addresses are others is someone else.
        assert_eq!(decide_as([No, No]), JoinOutcome::NotActive(NotActiveReason::NotProvisioned));
        // The same userName deleted and provisioned again is one person.
        assert_eq!(decide_shared_key(&pair, &[live, live], &[Unknown, Unknown]), JoinOutcome::Matched(1));
        // Alone: matched when its addresses say nothing or say so, not when they are others.
        let alone = [c(true, true)];
        assert_eq!(decide_shared_key(&alone, &[live], &[Unknown]), JoinOutcome::Matched(0));
        assert_eq!(decide_shared_key(&alone, &[live], &[Yes]), JoinOutcome::Matched(0));
        assert_eq!(decide_shared_key(&alone, &[live], &[No]), JoinOutcome::NotActive(NotActiveReason::NotProvisioned));
        // Tombstones alone, or several live users, as `decide`.
        let gone = [c(false, true), c(false, true)];
        assert_eq!(decide_shared_key(&gone, &names, &[No, No]), JoinOutcome::NotActive(NotActiveReason::Deleted));
        let twins = [c(true, true), c(true, true), c(false, true)];
        assert_eq!(
            decide_shared_key(&twins, &[live, deleted, "john@x.com"], &[Yes, No, No]),
            JoinOutcome::Ambiguous(2)
        );
        assert!(others_deleted(&twins, &[live, deleted, "john@x.com"]).is_empty());
        // A deactivated live user stays deactivated for its own email.
        let off = [c(false, true), c(true, false)];
        assert_eq!(
            decide_shared_key(&off, &names, &[Unknown, Yes]),
            JoinOutcome::NotActive(NotActiveReason::Deactivated)
        );
    }

    #[test]
    fn post_login_redirects() {
        assert!(check_post_login_redirect("/home?x=1").is_ok());
        assert!(check_post_login_redirect("https://app.example/after").is_ok());
        assert!(check_post_login_redirect("//evil.example").is_err());
        for sneaky in
            ["/\t/evil.example", "/\n/evil.example", "/\\evil.example", "/\\/evil.example", "https://app.example/\u{0}"]
        {
            assert!(check_post_login_redirect(sneaky).is_err(), "{sneaky:?}");
        }
        assert!(check_post_login_redirect("javascript:alert(1)").is_err());
    }
}

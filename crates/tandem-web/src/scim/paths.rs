//! Request paths tidied before routing: repeated and trailing slashes go
//! (what actix's `NormalizePath::trim` did, which ran a regex replace on
//! every request; here a path is only rewritten when it needs it), and SCIM
//! endpoint names match case-insensitively (`/users` is `/Users`):
//! Microsoft's reference collection and some IdP test tools spell them in
//! lower case.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::middleware::Next;

const ENDPOINTS: [&str; 5] = ["Users", "Groups", "Schemas", "ResourceTypes", "ServiceProviderConfig"];

/// The path with its SCIM endpoint segment in canonical case, if it differs.
fn canonical(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/scim/v2/")?;
    let mut parts = rest.splitn(3, '/');
    let connection = parts.next()?;
    let endpoint = parts.next()?;
    let tail = parts.next();
    let fixed = ENDPOINTS.iter().find(|e| e.eq_ignore_ascii_case(endpoint) && **e != endpoint)?;
    Some(match tail {
        Some(t) => format!("/scim/v2/{connection}/{fixed}/{t}"),
        None => format!("/scim/v2/{connection}/{fixed}"),
    })
}

/// The path without repeated or trailing slashes, if it has any.
fn tidy(path: &str) -> Option<String> {
    if path.is_empty() || !(path.contains("//") || (path.len() > 1 && path.ends_with('/'))) {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// The path routing should see, if it differs from the request's.
fn rewritten(path: &str) -> Option<String> {
    let tidied = tidy(path);
    canonical(tidied.as_deref().unwrap_or(path)).or(tidied)
}

/// Middleware rewriting the path before routing.
pub async fn canonical_endpoints(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(path) = rewritten(req.path()) {
        let pq = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            req.head_mut().uri = uri.clone();
            req.match_info_mut().get_mut().update(&uri);
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::{canonical, rewritten};

    #[test]
    fn repeated_and_trailing_slashes_go() {
        assert_eq!(rewritten("/api/v1/oidc-clients/").as_deref(), Some("/api/v1/oidc-clients"));
        assert_eq!(rewritten("/api//v1///oidc-clients").as_deref(), Some("/api/v1/oidc-clients"));
        assert_eq!(rewritten("//").as_deref(), Some("/"));
        assert_eq!(rewritten("/scim/v2/c1//users/").as_deref(), Some("/scim/v2/c1/Users"));
        assert_eq!(rewritten("/"), None);
        assert_eq!(rewritten("/api/v1/oidc-clients"), None);
    }

    #[test]
    fn lower_case_endpoints_are_canonicalised() {
        assert_eq!(canonical("/scim/v2/c1/users").as_deref(), Some("/scim/v2/c1/Users"));
        assert_eq!(canonical("/scim/v2/c1/groups/g1").as_deref(), Some("/scim/v2/c1/Groups/g1"));
        assert_eq!(canonical("/scim/v2/c1/Users"), None);
        assert_eq!(canonical("/api/v1/users"), None);
    }
}

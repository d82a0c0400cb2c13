//! SCIM endpoint names matched case-insensitively (`/users` is `/Users`):
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

/// Middleware rewriting the endpoint segment before routing.
pub async fn canonical_endpoints(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(path) = canonical(req.path()) {
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
    use super::canonical;

    #[test]
    fn lower_case_endpoints_are_canonicalised() {
        assert_eq!(canonical("/scim/v2/c1/users").as_deref(), Some("/scim/v2/c1/Users"));
        assert_eq!(canonical("/scim/v2/c1/groups/g1").as_deref(), Some("/scim/v2/c1/Groups/g1"));
        assert_eq!(canonical("/scim/v2/c1/Users"), None);
        assert_eq!(canonical("/api/v1/users"), None);
    }
}

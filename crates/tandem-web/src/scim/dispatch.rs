//! Routing of `/scim/v2/{connection_id}/…`, by hand.
//!
//! actix-web matches a pattern with a `{segment}` by running a regex over
//! the path (regex-lite in this build; the `regex` crate would cost 2-3 MB of
//! idle memory). The SCIM scope's own pattern, `/scim/v2/{connection_id}`,
//! ran on every SCIM request, and `perf` put regex-lite at ~5 % of a
//! `userName` lookup's CPU. The SCIM paths are a small fixed set, so they are
//! split on `/` and matched here; the rest of the app keeps actix's router.
//! No crate routes an actix scope without regexes.
//!
//! What a route captured goes into the request's extensions as a
//! [`ScimRoute`]: [`super::auth::ScimCaller`] reads the connection id from
//! it and [`ResourceId`] the resource id; the metrics label is the route's
//! pattern, and a path that names no endpoint is labelled `unmatched`.

use super::response::{method_not_allowed, no_endpoint, unknown_endpoint, ScimFailure};
use super::{discovery, groups, search, users};
use crate::metrics::{RouteLabel, Unmatched};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::{Error, FromRequest, Handler, HttpMessage, HttpRequest, HttpResponse, Responder};
use std::future::{ready, Ready};

/// A SCIM endpoint under `/scim/v2/{connection_id}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Users,
    UsersSearch,
    User,
    Groups,
    GroupsSearch,
    Group,
    ServiceProviderConfig,
    Schemas,
    Schema,
    ResourceTypes,
    ResourceType,
    RootSearch,
}

impl Endpoint {
    /// The methods the endpoint serves (a 405's `Allow` header).
    pub fn allow(self) -> &'static str {
        match self {
            Endpoint::Users | Endpoint::Groups => "GET, POST",
            Endpoint::User | Endpoint::Group => "GET, PUT, PATCH, DELETE",
            Endpoint::UsersSearch | Endpoint::GroupsSearch | Endpoint::RootSearch => "POST",
            Endpoint::ServiceProviderConfig
            | Endpoint::Schemas
            | Endpoint::Schema
            | Endpoint::ResourceTypes
            | Endpoint::ResourceType => "GET",
        }
    }

    /// The route pattern, as metrics label it.
    pub fn pattern(self) -> &'static str {
        match self {
            Endpoint::Users => "/scim/v2/{connection_id}/Users",
            Endpoint::UsersSearch => "/scim/v2/{connection_id}/Users/.search",
            Endpoint::User => "/scim/v2/{connection_id}/Users/{id}",
            Endpoint::Groups => "/scim/v2/{connection_id}/Groups",
            Endpoint::GroupsSearch => "/scim/v2/{connection_id}/Groups/.search",
            Endpoint::Group => "/scim/v2/{connection_id}/Groups/{id}",
            Endpoint::ServiceProviderConfig => "/scim/v2/{connection_id}/ServiceProviderConfig",
            Endpoint::Schemas => "/scim/v2/{connection_id}/Schemas",
            Endpoint::Schema => "/scim/v2/{connection_id}/Schemas/{id}",
            Endpoint::ResourceTypes => "/scim/v2/{connection_id}/ResourceTypes",
            Endpoint::ResourceType => "/scim/v2/{connection_id}/ResourceTypes/{name}",
            Endpoint::RootSearch => "/scim/v2/{connection_id}/.search",
        }
    }
}

/// What the route of a SCIM request captured (percent-decoded, as actix's
/// `web::Path` decodes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimRoute {
    pub endpoint: Endpoint,
    pub connection_id: String,
    /// The resource's id, or the schema id / resource type name.
    pub id: Option<String>,
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Matches the path after `/scim/v2` (`/{connection_id}/Users/{id}`, …).
/// Segments are non-empty, as actix's `{segment}` requires; a literal
/// (`.search`) wins over an id, as it did when actix routed in order.
pub fn resolve(rest: &str) -> Option<ScimRoute> {
    let mut parts = rest.strip_prefix('/')?.split('/');
    let connection = parts.next().filter(|c| !c.is_empty())?;
    let kind = parts.next()?;
    let second = parts.next();
    if parts.next().is_some() || second == Some("") {
        return None;
    }
    let (endpoint, id) = match (kind, second) {
        ("Users", None) => (Endpoint::Users, None),
        ("Users", Some(".search")) => (Endpoint::UsersSearch, None),
        ("Users", Some(id)) => (Endpoint::User, Some(id)),
        ("Groups", None) => (Endpoint::Groups, None),
        ("Groups", Some(".search")) => (Endpoint::GroupsSearch, None),
        ("Groups", Some(id)) => (Endpoint::Group, Some(id)),
        ("ServiceProviderConfig", None) => (Endpoint::ServiceProviderConfig, None),
        ("Schemas", None) => (Endpoint::Schemas, None),
        ("Schemas", Some(id)) => (Endpoint::Schema, Some(id)),
        ("ResourceTypes", None) => (Endpoint::ResourceTypes, None),
        ("ResourceTypes", Some(name)) => (Endpoint::ResourceType, Some(name)),
        (".search", None) => (Endpoint::RootSearch, None),
        _ => return None,
    };
    Some(ScimRoute { endpoint, connection_id: decode(connection), id: id.map(decode) })
}

/// Runs `handler` with its arguments extracted from `req`, as actix does
/// for a routed handler.
async fn call<F, Args>(handler: F, req: ServiceRequest) -> ServiceResponse
where
    F: Handler<Args>,
    Args: FromRequest,
    F::Output: Responder,
{
    let (req, mut payload) = req.into_parts();
    let res = match Args::from_request(&req, &mut payload).await {
        Ok(args) => handler.call(args).await.respond_to(&req).map_into_boxed_body(),
        Err(e) => HttpResponse::from_error(e),
    };
    ServiceResponse::new(req, res)
}

/// The service behind `/scim/v2`: every SCIM request comes through here.
pub async fn dispatch(req: ServiceRequest) -> Result<ServiceResponse, Error> {
    let Some(route) = resolve(req.match_info().unprocessed()) else {
        req.extensions_mut().insert(Unmatched);
        return Ok(call(unknown_endpoint, req).await);
    };
    let endpoint = route.endpoint;
    req.extensions_mut().insert(RouteLabel(endpoint.pattern()));
    req.extensions_mut().insert(route);
    let method = req.method().clone();
    use Endpoint as E;
    Ok(match (endpoint, method) {
        (E::Users, Method::GET) => call(users::list, req).await,
        (E::Users, Method::POST) => call(users::create, req).await,
        (E::UsersSearch, Method::POST) => call(users::search, req).await,
        (E::User, Method::GET) => call(users::get, req).await,
        (E::User, Method::PUT) => call(users::replace, req).await,
        (E::User, Method::PATCH) => call(users::patch, req).await,
        (E::User, Method::DELETE) => call(users::delete, req).await,
        (E::Groups, Method::GET) => call(groups::list, req).await,
        (E::Groups, Method::POST) => call(groups::create, req).await,
        (E::GroupsSearch, Method::POST) => call(groups::search, req).await,
        (E::Group, Method::GET) => call(groups::get, req).await,
        (E::Group, Method::PUT) => call(groups::replace, req).await,
        (E::Group, Method::PATCH) => call(groups::patch, req).await,
        (E::Group, Method::DELETE) => call(groups::delete, req).await,
        (E::ServiceProviderConfig, Method::GET) => call(discovery::service_provider_config, req).await,
        (E::Schemas, Method::GET) => call(discovery::schemas, req).await,
        (E::Schema, Method::GET) => call(discovery::schema, req).await,
        (E::ResourceTypes, Method::GET) => call(discovery::resource_types, req).await,
        (E::ResourceType, Method::GET) => call(discovery::resource_type, req).await,
        (E::RootSearch, Method::POST) => call(search::root, req).await,
        _ => call(method_not_allowed, req).await,
    })
}

/// The id a SCIM route captured (`/Users/{id}`, `/Schemas/{id}`, …).
pub struct ResourceId(pub String);

impl FromRequest for ResourceId {
    type Error = ScimFailure;
    type Future = Ready<Result<ResourceId, ScimFailure>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req.extensions().get::<ScimRoute>().and_then(|r| r.id.clone());
        ready(id.map(ResourceId).ok_or_else(|| no_endpoint(req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rest: &str) -> Option<(Endpoint, String, Option<String>)> {
        resolve(rest).map(|r| (r.endpoint, r.connection_id, r.id))
    }

    fn some(e: Endpoint, id: Option<&str>) -> Option<(Endpoint, String, Option<String>)> {
        Some((e, "c1".to_string(), id.map(str::to_string)))
    }

    #[test]
    fn every_endpoint_resolves() {
        assert_eq!(at("/c1/Users"), some(Endpoint::Users, None));
        assert_eq!(at("/c1/Users/.search"), some(Endpoint::UsersSearch, None));
        assert_eq!(at("/c1/Users/u1"), some(Endpoint::User, Some("u1")));
        assert_eq!(at("/c1/Groups"), some(Endpoint::Groups, None));
        assert_eq!(at("/c1/Groups/.search"), some(Endpoint::GroupsSearch, None));
        assert_eq!(at("/c1/Groups/g1"), some(Endpoint::Group, Some("g1")));
        assert_eq!(at("/c1/ServiceProviderConfig"), some(Endpoint::ServiceProviderConfig, None));
        assert_eq!(at("/c1/Schemas"), some(Endpoint::Schemas, None));
        assert_eq!(
            at("/c1/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"),
            some(Endpoint::Schema, Some("urn:ietf:params:scim:schemas:core:2.0:User"))
        );
        assert_eq!(at("/c1/ResourceTypes"), some(Endpoint::ResourceTypes, None));
        assert_eq!(at("/c1/ResourceTypes/User"), some(Endpoint::ResourceType, Some("User")));
        assert_eq!(at("/c1/.search"), some(Endpoint::RootSearch, None));
    }

    #[test]
    fn other_paths_name_no_endpoint() {
        for rest in [
            "",
            "/",
            "/c1",
            "/c1/",
            "//Users",
            "/c1/Users/",
            "/c1/Users//",
            "/c1/Users/u1/extra",
            "/c1/users",
            "/c1/ServiceProviderConfig/x",
            "/c1/.search/x",
            "/c1/Bulk",
            "c1/Users",
        ] {
            assert_eq!(resolve(rest), None, "{rest:?}");
        }
    }

    #[test]
    fn captured_segments_are_percent_decoded() {
        assert_eq!(at("/c1/Users/a%2Fb%20c"), some(Endpoint::User, Some("a/b c")));
        assert_eq!(at("/c%31/Users"), some(Endpoint::Users, None));
    }
}

//! The management API under `/api/v1`, behind integration keys.

mod audit_events;
pub(crate) mod events;
mod login_events;
pub mod matching;
pub(crate) mod oidc_clients;
pub(crate) mod scim_connections;
mod scim_data;
pub(crate) mod setup_links;
mod webhooks;

use crate::error::method_not_allowed;
use actix_web::web;

/// Registers the management routes.
///
/// actix tries routes in this order, and each pattern with a `{segment}` is
/// a regex run (~6k instructions); the login, hit on every sign-in, comes
/// first, ahead of a dozen such patterns.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(only("/sso/login/initiate", web::post().to(crate::login::initiate), "POST"))
        .service(only("/sso/login/complete", web::post().to(crate::login::complete), "POST"))
        .service(
            web::resource("/oidc-clients")
                .route(web::post().to(oidc_clients::create))
                .route(web::get().to(oidc_clients::list))
                .default_service(method_not_allowed("GET, POST")),
        )
        .service(only(
            "/oidc-clients/by-customer-id/{customer_id}",
            web::get().to(oidc_clients::get_by_customer),
            "GET",
        ))
        .service(
            web::resource("/oidc-clients/{id}")
                .route(web::get().to(oidc_clients::get))
                .route(web::patch().to(oidc_clients::patch))
                .route(web::delete().to(oidc_clients::delete))
                .default_service(method_not_allowed("GET, PATCH, DELETE")),
        )
        .service(
            web::resource("/scim-connections")
                .route(web::post().to(scim_connections::create))
                .route(web::get().to(scim_connections::list))
                .default_service(method_not_allowed("GET, POST")),
        )
        .service(only(
            "/scim-connections/by-customer-id/{customer_id}",
            web::get().to(scim_connections::get_by_customer),
            "GET",
        ))
        .service(
            web::resource("/scim-connections/{id}")
                .route(web::get().to(scim_connections::get))
                .route(web::patch().to(scim_connections::patch))
                .route(web::delete().to(scim_connections::delete))
                .default_service(method_not_allowed("GET, PATCH, DELETE")),
        )
        .service(only("/scim-connections/{id}/rotate-key", web::post().to(scim_connections::rotate_key), "POST"))
        .service(only("/scim-connections/{id}/users", web::get().to(scim_data::list_users), "GET"))
        .service(only("/scim-connections/{id}/users/{user_id}", web::get().to(scim_data::get_user), "GET"))
        .service(only("/scim-connections/{id}/groups", web::get().to(scim_data::list_groups), "GET"))
        .service(only("/scim-connections/{id}/groups/{group_id}", web::get().to(scim_data::get_group), "GET"))
        .service(only("/provisioning-logs", web::get().to(scim_data::provisioning_logs), "GET"))
        .service(only("/oidc-clients/{id}/rotate-client-key", web::post().to(oidc_clients::rotate_client_key), "POST"))
        .service(only(
            "/oidc-clients/{id}/previous-client-key",
            web::delete().to(oidc_clients::drop_previous_client_key),
            "DELETE",
        ))
        .service(only("/oidc-clients/{id}/scim-matching", web::get().to(matching::get), "GET"))
        .service(only("/login-events", web::get().to(login_events::list), "GET"))
        .service(only("/login-events/{id}", web::get().to(login_events::get), "GET"))
        .service(only("/audit-events", web::get().to(audit_events::list), "GET"))
        .service(only("/events", web::get().to(events::list), "GET"))
        .service(only("/events/cursor", web::get().to(events::cursor), "GET"))
        .service(
            web::resource("/webhook-endpoints")
                .route(web::post().to(webhooks::create))
                .route(web::get().to(webhooks::list))
                .default_service(method_not_allowed("GET, POST")),
        )
        .service(only("/webhook-endpoints/{id}/rotate-secret", web::post().to(webhooks::rotate_secret), "POST"))
        .service(
            web::resource("/webhook-endpoints/{id}")
                .route(web::get().to(webhooks::get))
                .route(web::patch().to(webhooks::patch))
                .route(web::delete().to(webhooks::delete))
                .default_service(method_not_allowed("GET, PATCH, DELETE")),
        )
        .service(
            web::resource("/setup-links")
                .route(web::post().to(setup_links::create))
                .route(web::get().to(setup_links::list))
                .default_service(method_not_allowed("GET, POST")),
        )
        .service(
            web::resource("/setup-links/{id}")
                .route(web::get().to(setup_links::get))
                .route(web::delete().to(setup_links::revoke))
                .default_service(method_not_allowed("GET, DELETE")),
        );
}

/// The optional body of a key rotation, `{"grace_period_hours": N}` (at
/// most 720, 30 days): how long the previous key keeps working, `None`
/// when the body (empty) does not say; and, where `takes_force`, whether it
/// says `"force": true`.
pub(crate) async fn rotation_grace(
    payload: web::Payload,
    settings: &crate::state::WebSettings,
    takes_force: bool,
) -> Result<(Option<chrono::Duration>, bool), crate::error::ApiError> {
    let bytes = crate::body::read_limited(payload, settings).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, false));
    }
    let body = crate::body::parse_json(&bytes)?;
    let mut r = tandem_core::fields::FieldReader::new(&body, "");
    let hours = r.u64("grace_period_hours");
    let force = if takes_force { r.bool("force").unwrap_or(false) } else { false };
    r.reject_unknown();
    if let Some(h) = hours.filter(|h| *h > 24 * 30) {
        r.error("grace_period_hours", format!("must be at most 720 (30 days), got {h}"));
    }
    if !r.is_ok() {
        return Err(crate::error::ApiError::invalid_fields(r.into_errors()));
    }
    Ok((hours.map(|h| chrono::Duration::hours(h as i64)), force))
}

/// Deletes the `target` (kind, id) with `delete` (given the time), recording
/// `action` in the audit log in the same transaction when it existed;
/// whether it did.
pub(crate) async fn delete_audited(
    state: &crate::state::AppState,
    caller: crate::auth::Caller,
    (kind, id): (&'static str, &str),
    action: &'static str,
    delete: impl FnOnce(
            &mut tandem_store::AnyConnection,
            &str,
            chrono::DateTime<chrono::Utc>,
        ) -> Result<bool, tandem_store::StoreError>
        + Send
        + 'static,
) -> Result<bool, crate::error::ApiError> {
    let (key, now) = (id.to_string(), state.clock.now());
    let existed = state
        .store
        .write(move |c| {
            let existed = delete(c, &key, now)?;
            if existed {
                tandem_store::audit::record(c, now, &caller.name, action, (kind, &key), serde_json::json!({}))?;
            }
            Ok(existed)
        })
        .await?;
    Ok(existed)
}

/// A resource served by one method (`route`); any other gets the JSON 405
/// naming `allow`.
fn only(path: &str, route: actix_web::Route, allow: &'static str) -> actix_web::Resource {
    web::resource(path).route(route).default_service(method_not_allowed(allow))
}

/// The answer of a list endpoint: the page's `data`, and `next_cursor`,
/// the id of the page's last row when the page is full (a shorter one is
/// the last page), else null.
pub(crate) fn page_answer<T>(
    rows: &[T],
    limit: i64,
    id: impl Fn(&T) -> &str,
    data: Vec<serde_json::Value>,
) -> actix_web::HttpResponse {
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(id)).flatten();
    actix_web::HttpResponse::Ok().json(serde_json::json!({"data": data, "next_cursor": next}))
}

/// The one row a filter found, as a list page after the cursor `after`:
/// empty when the row is not past it (ids are compared as the lists order them).
pub(crate) fn past_cursor<T>(row: Option<T>, after: Option<&str>, id: impl Fn(&T) -> &str) -> Vec<T> {
    row.into_iter().filter(|r| after.is_none_or(|a| id(r) > a)).collect()
}

/// A list's query parameters. One given more than once is refused (a map
/// keeps the last value, so `?type=user.deactivated&type=user.deleted`
/// would be answered as `?type=user.deleted`, and a feed's cursor move past
/// the events asked for). Read after the caller's key (the handlers take
/// the [`Caller`](crate::auth::Caller) first): no refusal for anyone else.
pub struct Params(pub std::collections::HashMap<String, String>);

impl std::ops::Deref for Params {
    type Target = std::collections::HashMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl actix_web::FromRequest for Params {
    type Error = crate::error::ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let mut params = std::collections::HashMap::new();
        let mut repeated = std::collections::BTreeSet::new();
        for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
            if let Some(_earlier) = params.insert(name.clone().into_owned(), value.into_owned()) {
                repeated.insert(name.into_owned());
            }
        }
        std::future::ready(match repeated.is_empty() {
            true => Ok(Params(params)),
            false => Err(crate::error::ApiError::invalid_fields(
                repeated
                    .into_iter()
                    .map(|field| tandem_core::fields::FieldError {
                        field,
                        message: "is given more than once; give it once (a list, such as event types, goes in one \
                                  value, comma-separated)"
                            .into(),
                    })
                    .collect(),
            )),
        })
    }
}

/// Refuses a query parameter the endpoint does not take: a misspelt or
/// unsupported filter (`?active=false` where there is none) would otherwise
/// be ignored, and the whole list answered as if it had applied.
pub(crate) fn known_params(
    query: &std::collections::HashMap<String, String>,
    known: &[&str],
) -> Result<(), crate::error::ApiError> {
    let mut unknown: Vec<&String> = query.keys().filter(|k| !known.contains(&k.as_str())).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    let takes = if known.is_empty() { "no query parameters".to_string() } else { known.join(", ") };
    Err(crate::error::ApiError::invalid_fields(
        unknown
            .into_iter()
            .map(|k| tandem_core::fields::FieldError {
                field: k.clone(),
                message: format!("unknown query parameter; this endpoint takes {takes}"),
            })
            .collect(),
    ))
}

/// Reads `before` and `limit` for a list kept newest first, whose
/// filters are `filters`: an `after` (the cursor of the lists kept oldest
/// first) is refused, not ignored, since a client paging with it would get
/// the first page again and again.
pub(crate) fn newest_first_page(
    query: &std::collections::HashMap<String, String>,
    what: &str,
    filters: &[&str],
) -> Result<(Option<String>, i64), crate::error::ApiError> {
    if query.contains_key("after") {
        return Err(crate::error::ApiError::invalid_field(
            "after",
            format!("{what} are listed newest first: page with before=<next_cursor>"),
        ));
    }
    let known: Vec<&str> = filters.iter().copied().chain(["before", "limit"]).collect();
    known_params(query, &known)?;
    Ok((id_cursor(query, "before")?, limit(query)?))
}

/// Reads the cursor `name` of a list kept in id order: an item's id as a
/// page's `next_cursor` gives it (any case), or nothing (absent or empty:
/// the first page). Anything else is refused: it would answer an empty
/// page, read as the end of the list, or the first page again.
fn id_cursor(
    query: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<Option<String>, crate::error::ApiError> {
    match query.get(name).map(|c| c.to_ascii_lowercase()) {
        None => Ok(None),
        Some(c) if c.is_empty() => Ok(None),
        Some(c) if tandem_core::is_id(&c) => Ok(Some(c)),
        Some(c) => Err(crate::error::ApiError::invalid_field(
            name,
            format!("must be an item's id as a page's next_cursor gives it, got {c:?}"),
        )),
    }
}

/// Reads the parameter `name`, `true` or `false`; another value is added to `errors`.
pub(crate) fn bool_param(
    query: &std::collections::HashMap<String, String>,
    name: &str,
    errors: &mut Vec<tandem_core::fields::FieldError>,
) -> Option<bool> {
    match query.get(name).map(String::as_str) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors
                .push(tandem_core::fields::FieldError { field: name.into(), message: "must be true or false".into() });
            None
        }
    }
}

/// Reads the parameter `name`, an RFC 3339 time; another value is added to `errors`.
pub(crate) fn time_param(
    query: &std::collections::HashMap<String, String>,
    name: &str,
    errors: &mut Vec<tandem_core::fields::FieldError>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    match query.get(name).map(|t| chrono::DateTime::parse_from_rfc3339(t)) {
        None => None,
        Some(Ok(t)) => Some(t.with_timezone(&chrono::Utc)),
        Some(Err(e)) => {
            errors.push(tandem_core::fields::FieldError {
                field: name.into(),
                message: format!("must be an RFC 3339 time such as 2026-11-01T00:00:00Z ({e})"),
            });
            None
        }
    }
}

/// Reads `limit` (1–100, default 50) and `after` from the query of a list
/// kept in id order, whose cursor is an item's id (`next_cursor`), and
/// whose other parameters are `filters`. An `after` that is no id is
/// refused: it would answer an empty page, read as the end of the list.
pub(crate) fn id_page(
    query: &std::collections::HashMap<String, String>,
    filters: &[&str],
) -> Result<(Option<String>, i64), crate::error::ApiError> {
    let (_, limit) = page(query, filters)?;
    Ok((id_cursor(query, "after")?, limit))
}

/// Reads `limit` (1–100, default 50) and `after` (a cursor) from a query
/// whose other parameters are `filters`.
pub(crate) fn page(
    query: &std::collections::HashMap<String, String>,
    filters: &[&str],
) -> Result<(Option<String>, i64), crate::error::ApiError> {
    let known: Vec<&str> = filters.iter().copied().chain(["after", "limit"]).collect();
    known_params(query, &known)?;
    Ok((query.get("after").cloned(), limit(query)?))
}

/// Reads `limit`: 1–100, default 50.
fn limit(query: &std::collections::HashMap<String, String>) -> Result<i64, crate::error::ApiError> {
    match query.get("limit") {
        None => Ok(50),
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(crate::error::ApiError::invalid_field(
                "limit",
                format!("must be an integer from 1 to 100, got {l:?}"),
            )),
        },
    }
}

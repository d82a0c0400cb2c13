//! `/api/v1/webhook-endpoints`: where the directory event feed is pushed
//! (see `crate::webhooks` for the deliveries).

use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use tandem_core::fields::FieldReader;
use tandem_core::format_time;
use tandem_store::audit;
use tandem_store::events::{self, TYPES};
use tandem_store::webhooks::{self as repo, WebhookEndpointRow};
use tandem_store::{from_micros, micros};

/// The longest URL taken.
const MAX_URL: usize = 2_048;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("WebhookEndpointNotFound", format!("no webhook endpoint with id {id:?}"))
}

fn time(us: Option<i64>) -> Value {
    us.map_or(Value::Null, |t| json!(format_time(from_micros(t))))
}

fn render(row: &WebhookEndpointRow) -> Value {
    json!({
        "id": row.id,
        "url": row.url,
        "customer_id": row.customer_id,
        "types": row.types(),
        "created_at": format_time(from_micros(row.created_at)),
        "delivered_through": row.cursor().cursor(),
        "last_attempt_at": time(row.last_attempt_at),
        "last_success_at": time(row.last_success_at),
        "last_error": row.last_error,
        "failing_since": time(row.failing_since),
        "failures": row.failures,
        "next_attempt_at": time(Some(row.next_attempt_at)),
        "previous_secret_valid_until": time(row.previous_secret_enc.as_ref().and(row.previous_secret_until)),
        "skipped": row.skipped.as_ref().map(|what| json!({"at": time(row.skipped_at), "what": what})),
    })
}

/// Whether `url` is one deliveries may go to: https, or http to a loopback
/// host (a receiver on the same machine), without credentials; `Ok` with
/// its normal form when it is, else why not.
fn checked_url(url: &str) -> Result<String, String> {
    if url.len() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} bytes"));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("must be an absolute URL ({e})"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry a user name or password (the signature authenticates deliveries)".into());
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => return Err("must name a host".into()),
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("must be https (http only to a loopback host such as 127.0.0.1)".into()),
        other => return Err(format!("must be https, not {other}")),
    }
    if parsed.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    Ok(parsed.into())
}

/// Checks an endpoint's `url` (given), `customer_id` and `types` as read
/// by `r`, adding what is wrong to it.
fn check_fields(
    r: &mut FieldReader<'_>,
    state: &AppState,
    url: Option<String>,
    customer_id: Option<&str>,
    types: Option<&[String]>,
) -> Option<String> {
    let url = match url.as_deref().map(checked_url) {
        Some(Ok(u)) => match state.http.refuse_private(&u) {
            Ok(()) if state.http.blocks_private() && u.starts_with("http:") => {
                r.error("url", "must be https: oidc.block_private_addresses is on");
                None
            }
            Ok(()) => Some(u),
            Err(why) => {
                r.error("url", why);
                None
            }
        },
        Some(Err(problem)) => {
            r.error("url", problem);
            None
        }
        None => None,
    };
    if let Some(c) = customer_id {
        if c.is_empty() || c.chars().count() > 255 {
            r.error("customer_id", "must be 1 to 255 characters");
        }
    }
    if let Some(t) = types {
        if t.is_empty() {
            r.error("types", "must name at least one event type (leave it out for all)");
        }
        for (i, name) in t.iter().enumerate() {
            if !TYPES.contains(&name.as_str()) {
                r.error(
                    &format!("types[{i}]"),
                    format!("unknown event type {name:?}; the types are {}", TYPES.join(", ")),
                );
            } else if t[..i].contains(name) {
                r.error(&format!("types[{i}]"), format!("{name:?} is named twice"));
            }
        }
    }
    url
}

/// `POST /api/v1/webhook-endpoints` `{"url", "customer_id"?, "types"?}`:
/// the endpoint with its signing secret, shown only this once. It receives
/// the events made from now on.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = body::json(payload, &state.settings).await?;
    let mut r = FieldReader::new(&body, "");
    let url = r.required_string("url");
    let customer_id = r.string("customer_id");
    let types = r.string_list("types");
    r.reject_unknown();
    let url = check_fields(&mut r, &state, url, customer_id.as_deref(), types.as_deref());
    if !r.is_ok() {
        return Err(ApiError::invalid_fields(r.into_errors()));
    }
    let now = state.clock.now();
    let id = tandem_core::new_id();
    let secret = tandem_core::webhook::new_secret();
    let secret_enc = state.secret_key.encrypt(&secret, &repo::secret_context(&id));
    let (url, key) = (url.unwrap_or_default(), id.clone());
    let row = state
        .store
        .write(move |c| {
            // From the newest event readable now: what comes after it is this endpoint's.
            let from = events::latest(c)?.unwrap_or_default();
            let narrowing = (customer_id, types.map(|t| t.join(",")));
            let row = WebhookEndpointRow::new(key, url, secret_enc, narrowing, from, micros(now));
            repo::insert(c, &row)?;
            let details = json!({"url": row.url, "customer_id": row.customer_id, "types": row.types()});
            audit::record(c, now, &caller.name, "webhook_endpoint.created", ("webhook_endpoint", &row.id), details)?;
            Ok(row)
        })
        .await?;
    let mut out = render(&row);
    out["secret"] = json!(secret);
    Ok(HttpResponse::Created().json(out))
}

/// `POST /api/v1/webhook-endpoints/{id}/rotate-secret` `{"grace_period_hours": 24, "force": false}`
/// (optional; at most 720): a new signing secret, shown only this once;
/// requests carry a signature with each secret until the grace ends (0:
/// the previous secret stops at once). While an earlier rotation's
/// previous secret is in its grace, refused (409) unless forced: it would
/// drop the secret a receiver may still hold alone.
pub async fn rotate_secret(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (grace, force) = super::rotation_grace(payload, &state.settings, true).await?;
    let grace = grace.unwrap_or(chrono::Duration::hours(24));
    let now = state.clock.now();
    let secret = tandem_core::webhook::new_secret();
    let secret_enc = state.secret_key.encrypt(&secret, &repo::secret_context(&id));
    let until = (grace > chrono::Duration::zero()).then(|| micros(now + grace));
    let key = id.clone();
    let (rotated, row) = state
        .store
        .write(move |c| {
            let rotated = repo::rotate_secret(c, &key, &secret_enc, (until, micros(now), force))?;
            if rotated == repo::Rotated::Done {
                let details = json!({"grace_period_hours": grace.num_hours(), "force": force});
                let target = ("webhook_endpoint", key.as_str());
                audit::record(c, now, &caller.name, "webhook_endpoint.secret_rotated", target, details)?;
            }
            Ok((rotated, repo::get(c, &key)?))
        })
        .await?;
    match (rotated, row) {
        (repo::Rotated::Done, Some(row)) => {
            let mut out = render(&row);
            out["secret"] = json!(secret);
            Ok(HttpResponse::Ok().json(out))
        }
        (repo::Rotated::InGrace(until), _) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "WebhookSecretRotationInProgress",
            format!(
                "the secret an earlier rotation replaced still signs until {}: a rotation now would drop it while a \
                 receiver may still hold it alone; wait, or send \"force\": true",
                format_time(from_micros(until))
            ),
        )),
        (repo::Rotated::Busy, _) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "WebhookEndpointChangedConcurrently",
            format!("the webhook endpoint {id:?} kept changing while its secret was rotated; send it again"),
        )),
        _ => Err(not_found(&id)),
    }
}

/// `PATCH /api/v1/webhook-endpoints/{id}` `{"url"?, "customer_id"?,
/// "types"?, "retry"?}`: changes where the endpoint's events go and which
/// it takes (`null` for `customer_id` or `types`: all), keeping its position
/// and secret: nothing is lost or sent twice for the move. A new `url`, or
/// `"retry": true`, makes it due at once (a receiver fixed while backing
/// off is not kept waiting). `delivered_through` (a feed position, forward
/// only) skips the events up to it: the way past a batch a receiver
/// refuses for good, without losing the endpoint's secret or what follows.
pub async fn patch(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body = body::json(payload, &state.settings).await?;
    let mut r = FieldReader::new(&body, "");
    let url = r.string("url");
    if body.get("url").is_some_and(Value::is_null) {
        r.error("url", "must be a URL: an endpoint cannot be without one (delete it instead)");
    }
    let sets = |name: &str| body.get(name).is_some();
    let customer_id = r.string("customer_id");
    let types = r.string_list("types");
    let retry = r.bool("retry").unwrap_or(false);
    let skip_to = r.string("delivered_through").map(|c| events::Cursor::parse(&c));
    if let Some(None) = skip_to {
        r.error("delivered_through", "must be a feed position: an event's `id`, or an endpoint's `delivered_through`");
    }
    if body.get("delivered_through").is_some_and(Value::is_null) {
        r.error("delivered_through", "must be a feed position: a position cannot be unset");
    }
    r.reject_unknown();
    let url = check_fields(&mut r, &state, url, customer_id.as_deref(), types.as_deref());
    if !r.is_ok() {
        return Err(ApiError::invalid_fields(r.into_errors()));
    }
    let skip_to = skip_to.flatten();
    // A position to skip to must be one the feed has reached and still
    // holds (a cursor of the future, or of events purged or replaced, would
    // skip events nobody chose to skip).
    if let Some(cursor) = skip_to {
        let known = state.store.read(move |c| events::after(c, Some(cursor), 1)).await?;
        if known.is_err() {
            return Err(ApiError::invalid_field(
                "delivered_through",
                "is not a position of this feed that it still holds (of the future, or of events since purged or \
                 replaced): take an event's `id` from GET /api/v1/events",
            ));
        }
    }
    let change = repo::Change {
        url,
        customer_id: sets("customer_id").then_some(customer_id),
        event_types: sets("types").then(|| types.map(|t| t.join(","))),
        skip_to: skip_to.map(|c| c.position),
    };
    let now = state.clock.now();
    let key = id.clone();
    let row = state
        .store
        .write(move |c| {
            let Some(before) = repo::get_for_change(c, &key)? else { return Ok(Changed::Missing) };
            // Forward only: going back would send again what the receiver had.
            if change.skip_to.is_some_and(|to| to < before.cursor()) {
                return Ok(Changed::Backward(before.cursor().cursor()));
            }
            let row = repo::update(c, &key, &change, retry, micros(now))?;
            if let Some(row) = &row {
                let mut details = json!({"retry": retry});
                let mut changed = false;
                for (field, old, new) in [
                    ("url", json!(before.url), json!(row.url)),
                    ("customer_id", json!(before.customer_id), json!(row.customer_id)),
                    ("types", json!(before.types()), json!(row.types())),
                    ("delivered_through", json!(before.cursor().cursor()), json!(row.cursor().cursor())),
                ] {
                    if old != new {
                        details[field] = json!({"old": old, "new": new});
                        changed = true;
                    }
                }
                if changed || retry {
                    let target = ("webhook_endpoint", key.as_str());
                    audit::record(c, now, &caller.name, "webhook_endpoint.updated", target, details)?;
                }
            }
            Ok(row.map_or(Changed::Missing, |r| Changed::Done(Box::new(r))))
        })
        .await?;
    match row {
        Changed::Done(row) => Ok(HttpResponse::Ok().json(render(&row))),
        Changed::Missing => Err(not_found(&id)),
        Changed::Backward(at) => Err(ApiError::invalid_field(
            "delivered_through",
            format!("moves only forward: the endpoint is at {at}, and going back would send again what it had"),
        )),
    }
}

/// What a PATCH of an endpoint came to.
enum Changed {
    Done(Box<WebhookEndpointRow>),
    Missing,
    /// Asked to move its position back from where it is (this one).
    Backward(String),
}

/// `GET /api/v1/webhook-endpoints`
pub async fn list(state: web::Data<AppState>, _c: Caller, query: super::Params) -> Result<HttpResponse, ApiError> {
    super::known_params(&query, &[])?;
    let rows = state.store.read(repo::list).await?;
    Ok(HttpResponse::Ok().json(json!({"data": rows.iter().map(render).collect::<Vec<_>>()})))
}

/// `GET /api/v1/webhook-endpoints/{id}`
pub async fn get(state: web::Data<AppState>, _c: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = id.clone();
    let row = state.store.read(move |c| repo::get(c, &key)).await?.ok_or_else(|| not_found(&id))?;
    Ok(HttpResponse::Ok().json(render(&row)))
}

/// `DELETE /api/v1/webhook-endpoints/{id}`: no more deliveries (one under
/// way finishes).
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let target = ("webhook_endpoint", id.as_str());
    if super::delete_audited(&state, caller, target, "webhook_endpoint.deleted", |c, k, _| repo::delete(c, k)).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::checked_url;

    #[test]
    fn deliveries_go_over_https_or_to_a_loopback_receiver() {
        for ok in [
            "https://app.example.com/hooks/tandem?token=x",
            "http://127.0.0.1:3000/hooks",
            "http://[::1]/h",
            "http://localhost/h",
        ] {
            assert!(checked_url(ok).is_ok(), "{ok}");
        }
        for bad in ["http://app.example.com/hooks", "ftp://x/y", "/relative", "https://x/y#frag", "https://"] {
            assert!(checked_url(bad).is_err(), "{bad}");
        }
        assert!(checked_url(&format!("https://x/{}", "a".repeat(2_100))).is_err());
    }
}

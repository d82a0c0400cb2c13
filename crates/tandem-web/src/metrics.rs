//! Prometheus metrics: request counts and latencies by route pattern, and
//! the middleware that records them; and, read from the database at most
//! every [`KEYS_READ_EVERY_SECS`], the SCIM keys: counts by warning level,
//! connections never used or still on a rotated-out key, and with
//! `server.metrics_per_connection` when each connection's key expires and
//! was last used; and the OIDC client secrets by their expiry's warning
//! level.

use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Instant;
use tandem_core::scim_connection::{warning_level, KeyWarningLevel};
use tandem_store::scim_connections::KeySummary;

type DateTime = chrono::DateTime<chrono::Utc>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LevelLabels {
    warning_level: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    scim_connection_id: String,
    /// Escaped for the text format (see [`label_value`]).
    customer_id: String,
}

/// A label value as the text format needs it: prometheus_client writes
/// label values as given, and a customer ID is free text, where a `"` or a
/// line break would end the value and let the rest read as other series.
fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The registry and the metrics Tandem records.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    keys_by_level: Family<LevelLabels, Gauge>,
    secrets_by_level: Family<LevelLabels, Gauge>,
    never_used: Gauge,
    on_previous_key: Gauge,
    key_expiry: Family<ConnectionLabels, Gauge>,
    key_last_used: Family<ConnectionLabels, Gauge>,
    logins_on_previous_client_key: Counter,
    /// When the SCIM keys were last read (or their read claimed).
    keys_read: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// Held while the key gauges are filled, and while the registry is
    /// encoded, so that a scrape never answers them half filled.
    filling: std::sync::Mutex<()>,
}

impl Metrics {
    /// Counts a login the IdP took only with a client's previous key.
    pub fn login_on_previous_client_key(&self) {
        self.logins_on_previous_client_key.inc();
    }
}

/// How often a scrape reads the SCIM keys from the database; scrapes in
/// between answer the gauges as last read (`/metrics` needs no key, and a
/// flood of it must not keep the database busy).
pub const KEYS_READ_EVERY_SECS: u64 = 15;

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tandem");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register("http_requests", "HTTP requests by method, route pattern and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route pattern", latency.clone());
        let keys_by_level = Family::<LevelLabels, Gauge>::default();
        registry.register(
            "scim_api_keys",
            "SCIM connections by their current API key's warning level (ok, warning: < 30 days left, critical: < 7, \
             expired)",
            keys_by_level.clone(),
        );
        let secrets_by_level = Family::<LevelLabels, Gauge>::default();
        registry.register(
            "oidc_client_secrets",
            "OIDC clients whose secret's expiry was given (private_key_jwt clients: their key's certificate's), by \
             its warning level (ok, warning: < 30 days left, critical: < 7, expired)",
            secrets_by_level.clone(),
        );
        let (never_used, on_previous_key) = (Gauge::default(), Gauge::default());
        registry.register(
            "scim_connections_never_used",
            "SCIM connections none of whose API keys (current or rotated out) ever authenticated a request",
            never_used.clone(),
        );
        registry.register(
            "scim_connections_on_previous_key",
            "SCIM connections whose IdP last used a key a rotation left working, not the current one: it fails when \
             the grace period ends",
            on_previous_key.clone(),
        );
        let (key_expiry, key_last_used) = (Family::default(), Family::default());
        registry.register(
            "scim_api_key_expiry_timestamp_seconds",
            "With server.metrics_per_connection: when each SCIM connection's current API key expires, in Unix \
             seconds (no series: it never expires)",
            key_expiry.clone(),
        );
        registry.register(
            "scim_api_key_last_used_timestamp_seconds",
            "With server.metrics_per_connection: when any of each SCIM connection's API keys last authenticated a \
             request, in Unix seconds to the minute (no series: never used)",
            key_last_used.clone(),
        );
        let logins_on_previous_client_key = Counter::default();
        registry.register(
            "oidc_logins_on_previous_client_key",
            "Logins of private_key_jwt clients that the IdP took only with the key a rotation left working, not the \
             current one: the IdP has not been given the new key, and those logins fail when the grace ends (the \
             server log and the login events name the client)",
            logins_on_previous_client_key.clone(),
        );
        Metrics {
            registry,
            logins_on_previous_client_key,
            requests,
            latency,
            keys_by_level,
            secrets_by_level,
            never_used,
            on_previous_key,
            key_expiry,
            key_last_used,
            keys_read: std::sync::Mutex::new(None),
            filling: std::sync::Mutex::new(()),
        }
    }
}

/// Marks a request no route matched (set by the fallback handler).
#[derive(Clone, Copy, Debug)]
pub struct Unmatched;

/// The route pattern of a request its handler's router named (the SCIM
/// dispatcher does; actix's router leaves it to [`route_label`]).
#[derive(Clone, Copy, Debug)]
pub struct RouteLabel(pub &'static str);

/// The route pattern of a routed request, rebuilt from its path and the
/// segments the router captured: `/scim/v2/c1/Users/u1` with
/// `connection_id=c1, id=u1` is `/scim/v2/{connection_id}/Users/{id}`.
/// (`HttpRequest::match_pattern` finds it by matching every route's regex
/// again, which cost more than the rest of a lookup's routing.)
///
/// The path walked is the one the router matched (decoded once, so
/// `/health%7A` is `/healthz`), whose captured segments are slices of it:
/// a segment is either captured, and named, or a literal of the route.
/// Were it ever neither, the label is `unmatched` rather than the text
/// sent: each label is a series kept for good, and anyone could grow them
/// without signing in.
pub fn route_label(req: &actix_web::HttpRequest) -> String {
    if req.extensions().get::<Unmatched>().is_some() {
        return "unmatched".to_string();
    }
    if let Some(RouteLabel(pattern)) = req.extensions().get::<RouteLabel>() {
        return pattern.to_string();
    }
    let path = req.match_info().as_str();
    let mut captured = req.match_info().iter().peekable();
    let mut label = String::with_capacity(path.len() + 16);
    // The end (address) of the last capture named: a tail capture
    // (`/setup/{token}/{rest:.*}`) spans the segments after its first.
    let mut captured_to = 0usize;
    for segment in path.split('/').skip(1) {
        // (`<=`: a capture ending in `/` is followed by an empty segment.)
        if (segment.as_ptr() as usize) <= captured_to {
            continue;
        }
        label.push('/');
        match captured.peek() {
            // The same place in the path, not merely equal text: a captured
            // `v1` after a literal `v1` is told apart by where it is.
            Some((name, value)) if std::ptr::eq(segment.as_ptr(), value.as_ptr()) && value.len() >= segment.len() => {
                label.push('{');
                label.push_str(name);
                label.push('}');
                captured_to = value.as_ptr() as usize + value.len();
                captured.next();
            }
            _ if is_literal(segment) => label.push_str(segment),
            _ => return "unmatched".to_string(),
        }
    }
    label
}

/// Whether a path segment can be a literal of one of Tandem's routes
/// (short, of letters, digits, `-`, `_` and `.`).
fn is_literal(segment: &str) -> bool {
    segment.len() <= 40 && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A request's method as a label: one of HTTP's own, or `other`. Any token
/// is a valid method, and each one would be a series of its own, kept for
/// good (anyone could grow the metrics without signing in).
fn method_label(method: &actix_web::http::Method) -> String {
    use actix_web::http::Method as M;
    const KNOWN: [M; 9] = [M::GET, M::HEAD, M::POST, M::PUT, M::PATCH, M::DELETE, M::OPTIONS, M::TRACE, M::CONNECT];
    if KNOWN.contains(method) {
        method.as_str().to_string()
    } else {
        "other".to_string()
    }
}

/// Middleware recording every request.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let metrics = req.app_data::<web::Data<AppState>>().map(|s| s.metrics.clone());
    let response = next.call(req).await?;
    if let Some(m) = metrics {
        let route = route_label(response.request());
        let status = response.status().as_u16();
        m.requests.get_or_create(&RequestLabels { method, route: route.clone(), status }).inc();
        m.latency.get_or_create(&RouteLabels { route }).observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

/// `GET /metrics` in the Prometheus text format. The SCIM key gauges are
/// read from the database (one query) by the first scrape after
/// [`KEYS_READ_EVERY_SECS`]; the scrapes meanwhile, and every scrape when a
/// read fails, answer the values last read (none before the first).
pub async fn render(state: web::Data<AppState>) -> HttpResponse {
    let m = &state.metrics;
    let now = state.clock.now();
    // The read is claimed before it is made, so that scrapes arriving
    // while it runs (or after it failed) do not read too. A clock set
    // back makes it due.
    let due = {
        let mut read = m.keys_read.lock().unwrap_or_else(|p| p.into_inner());
        let due = read.is_none_or(|at| {
            let age = now - at;
            age < chrono::Duration::zero() || age >= chrono::Duration::seconds(KEYS_READ_EVERY_SECS as i64)
        });
        if due {
            *read = Some(now);
        }
        due
    };
    if due {
        let read = state
            .store
            .read(move |c| {
                Ok((
                    tandem_store::scim_connections::key_summaries(c, now)?,
                    tandem_store::oidc_clients::secret_expiries(c)?,
                ))
            })
            .await;
        match read {
            Ok((keys, secrets)) => {
                let _filling = m.filling.lock().unwrap_or_else(|p| p.into_inner());
                fill_key_gauges(m, &keys, now, state.settings.metrics_per_connection);
                count_by_level(&m.secrets_by_level, secrets.into_iter().map(Some), now);
            }
            Err(e) => tracing::warn!(
                error = %e,
                "metrics: the SCIM keys and client secrets could not be read; their last values stay"
            ),
        }
    }
    let _filling = m.filling.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &m.registry) {
        Ok(()) => {
            HttpResponse::Ok().content_type("application/openmetrics-text; version=1.0.0; charset=utf-8").body(out)
        }
        Err(_) => HttpResponse::ServiceUnavailable().body("metrics could not be encoded"),
    }
}

/// Sets `family` to how many of `expiries` (`None`: never expires) are at
/// each warning level at `now`; every level has a series, 0 included, so an
/// alert on one has something to read.
fn count_by_level(family: &Family<LevelLabels, Gauge>, expiries: impl Iterator<Item = Option<i64>>, now: DateTime) {
    for level in KeyWarningLevel::ALL {
        family.get_or_create(&LevelLabels { warning_level: level.as_str() }).set(0);
    }
    for expires in expiries {
        let level = warning_level(expires.map(tandem_store::from_micros), now);
        family.get_or_create(&LevelLabels { warning_level: level.as_str() }).inc();
    }
}

fn clear_key_gauges(m: &Metrics) {
    m.key_expiry.clear();
    m.key_last_used.clear();
    m.never_used.set(0);
    m.on_previous_key.set(0);
}

fn fill_key_gauges(m: &Metrics, keys: &[KeySummary], now: DateTime, per_connection: bool) {
    clear_key_gauges(m);
    count_by_level(&m.keys_by_level, keys.iter().map(|k| k.expires_at), now);
    for k in keys {
        if k.last_used_at.is_none() {
            m.never_used.inc();
        }
        if k.on_previous_key {
            m.on_previous_key.inc();
        }
        if per_connection {
            let labels = ConnectionLabels {
                scim_connection_id: label_value(&k.scim_connection_id),
                customer_id: label_value(&k.customer_id),
            };
            if let Some(at) = k.expires_at {
                m.key_expiry.get_or_create(&labels).set(at.div_euclid(1_000_000));
            }
            if let Some(at) = k.last_used_at {
                m.key_last_used.get_or_create(&labels).set(at.div_euclid(1_000_000));
            }
        }
    }
}

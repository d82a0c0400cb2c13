//! Pushes the directory event feed to the webhook endpoints: a background
//! thread looks for endpoints due every `webhooks.poll_interval_ms`, takes
//! each one's lease (one node at a time per endpoint), and POSTs the events
//! after its position, up to 100 per request, signed as Standard Webhooks
//! has it. A 2xx moves the position past them; anything else is tried again
//! later (1 s, 2 s, 4 s … at most an hour apart) with the same events
//! first, so none is skipped: delivery is at least once, in feed order.

use crate::state::AppState;
use serde_json::json;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;
use tandem_store::background::Background;
use tandem_store::events::{self, Narrowing, Position};
use tandem_store::webhooks::{self, WebhookEndpointRow};
use tandem_store::{micros, StoreError};

/// Events per request.
pub const BATCH: i64 = 100;
/// The longest wait between attempts of a failing endpoint.
const MAX_BACKOFF_SECS: i64 = 3_600;

/// Keeps deliveries running; dropping it stops the thread and waits for it.
pub struct Deliveries {
    _thread: Option<Background<()>>,
}

/// Starts the delivery thread.
pub fn start(state: AppState, interval: Duration, timeout: Duration) -> Deliveries {
    let spawned = Background::spawn("tandem-webhooks", move |stopped: Receiver<()>| {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => return tracing::warn!(error = %e, "webhook deliveries could not start"),
        };
        let client = match reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tandem-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => return tracing::warn!(error = %e, "webhook deliveries could not start"),
        };
        // A lease outlives the longest delivery, the request's timeout.
        let lease = chrono::Duration::from_std(timeout).unwrap_or_default() + chrono::Duration::seconds(30);
        loop {
            runtime.block_on(round(&state, &client, lease));
            match stopped.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => break,
            }
        }
    });
    match spawned {
        Ok(t) => Deliveries { _thread: Some(t) },
        Err(e) => {
            tracing::warn!(error = %e, "webhook deliveries could not start");
            Deliveries { _thread: None }
        }
    }
}

/// One pass: every endpoint due whose lease this node takes.
async fn round(state: &AppState, client: &reqwest::Client, lease: chrono::Duration) {
    let now = state.clock.now();
    let at = micros(now);
    let due = match state.store.read_blocking(move |c| webhooks::due(c, at)) {
        Ok(due) => due,
        Err(e) => return tracing::warn!(error = %e, "could not look for webhook deliveries"),
    };
    for id in due {
        let (key, until) = (id.clone(), micros(now + lease));
        match state.store.write_blocking(move |c| webhooks::lease(c, &key, at, until)) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, endpoint = %id, "could not take a webhook endpoint's lease");
                continue;
            }
        }
        // Failing here leaves the lease to run out: the endpoint is tried again then.
        if let Err(e) = deliver(state, client, &id).await {
            tracing::warn!(error = %e, endpoint = %id, "a webhook delivery could not be recorded");
        }
    }
}

/// Delivers the next events of the endpoint `id`, whose lease this node holds.
async fn deliver(state: &AppState, client: &reqwest::Client, id: &str) -> Result<(), StoreError> {
    let key = id.to_string();
    let Some(row) = state.store.read_blocking(move |c| webhooks::get(c, &key))? else {
        return Ok(());
    };
    let now = state.clock.now();
    let at = micros(now);
    let narrowing = Narrowing { customer_id: row.customer_id.clone(), scim_connection_id: None, types: row.types() };
    let from = row.cursor();
    let page = match state.store.read_blocking(move |c| narrowing.page(c, Some(from), BATCH))? {
        Ok(page) => page,
        Err(mark) => return skip_gone(state, &row, mark),
    };
    let id = row.id.clone();
    if page.events.is_empty() {
        let to = page.reached.unwrap_or(from);
        return state.store.write_blocking(move |c| webhooks::advance(c, &id, to, None, at));
    }
    let secret = match state.secret_key.decrypt(&row.secret_enc, &webhooks::secret_context(&row.id)) {
        Ok(s) => s,
        Err(_) => {
            let why = "the signing secret does not open with the secret key; delete the endpoint and create it again";
            return fail(state, &row, why);
        }
    };
    let data: Vec<serde_json::Value> = page.events.iter().map(crate::api::events::render).collect();
    let body = serde_json::to_vec(&json!({"data": data})).unwrap_or_default();
    let last = page.events.last().map(|e| e.position().cursor()).unwrap_or_default();
    let message = format!("msg_{last}");
    let timestamp = now.timestamp();
    let Some(signature) = tandem_core::webhook::sign(&secret.0, &message, timestamp, &body) else {
        return fail(state, &row, "the stored signing secret is malformed; delete the endpoint and create it again");
    };
    let sent = client
        .post(&row.url)
        .header("content-type", "application/json")
        .header("webhook-id", &message)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => {
            let to = page.reached.unwrap_or(from);
            state.store.write_blocking(move |c| webhooks::advance(c, &id, to, Some(at), at))
        }
        Ok(resp) => fail(state, &row, &format!("the endpoint answered {}", resp.status())),
        // Without the URL, which may carry a credential in its query.
        Err(e) => fail(state, &row, &format!("the endpoint could not be reached: {}", e.without_url())),
    }
}

/// Records a failed attempt and when to try again.
fn fail(state: &AppState, row: &WebhookEndpointRow, why: &str) -> Result<(), StoreError> {
    tracing::warn!(endpoint = %row.id, reason = %why, failures = row.failures + 1, "a webhook delivery failed");
    let now = state.clock.now();
    let wait = 1_i64.checked_shl(row.failures.clamp(0, 12) as u32).unwrap_or(MAX_BACKOFF_SECS).min(MAX_BACKOFF_SECS);
    let (id, why) = (row.id.clone(), why.to_string());
    let (at, next) = (micros(now), micros(now + chrono::Duration::seconds(wait)));
    state.store.write_blocking(move |c| webhooks::failed(c, &id, &why, at, next))
}

/// The events after the endpoint's position are no longer in the feed (the
/// retention purge deleted them before they were delivered, or the
/// database was restored or moved): delivery goes on from what is there.
fn skip_gone(state: &AppState, row: &WebhookEndpointRow, mark: Option<Position>) -> Result<(), StoreError> {
    let (id, from) = (row.id.clone(), row.cursor());
    let at = micros(state.clock.now());
    state.store.write_blocking(move |c| {
        let to = match mark {
            Some(m) if m > from => m,
            _ => events::latest(c)?.unwrap_or_default(),
        };
        let why = format!(
            "events after {} were no longer in the feed when they were to be delivered (deleted by the retention \
             purge, or the database was restored or moved); delivery goes on after {}",
            from.cursor(),
            to.cursor()
        );
        tracing::warn!(endpoint = %id, reason = %why, "webhook events skipped");
        webhooks::advance(c, &id, to, None, at)?;
        webhooks::note(c, &id, &why)
    })
}

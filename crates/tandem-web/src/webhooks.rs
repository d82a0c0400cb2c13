//! Pushes the directory event feed to the webhook endpoints: a background
//! thread looks for endpoints due every `webhooks.poll_interval_ms`, and
//! delivers up to 8 at a time. An endpoint is delivered under a lease (one
//! node at a time), which a delivery renews batch by batch and whose token
//! it must still hold to record anything. Each request carries the events
//! after the endpoint's position, up to 100, signed as Standard Webhooks
//! has it; a 2xx moves the position past them and, while more follow, the
//! next batch goes at once (10 at most per turn). Anything else is tried
//! again later (1 s, 2 s, 4 s … at most an hour apart) with the same events
//! first, so none is skipped: delivery is at least once, in feed order.

use crate::state::AppState;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::Duration;
use tandem_oidc::IdpHttp;
use tandem_store::background::Background;
use tandem_store::events::{self, Narrowing, Position};
use tandem_store::webhooks::{self, Then, WebhookEndpointRow};
use tandem_store::{micros, StoreError};

/// Events per request.
pub const BATCH: i64 = 100;
/// Batches one endpoint gets in one turn before the others get theirs.
const BATCHES_PER_TURN: usize = 10;
/// Endpoints delivered at once.
const AT_ONCE: usize = 8;
/// The longest wait between attempts of a failing endpoint.
const MAX_BACKOFF_SECS: i64 = 3_600;
/// How soon another node may try an endpoint this one could not sign for.
const PASS_SECS: i64 = 5;

/// Keeps deliveries running; dropping it stops the thread and waits for it
/// (for the requests under way, each at most `webhooks.timeout_secs`).
pub struct Deliveries {
    _thread: Option<Background<()>>,
}

/// Starts the delivery thread; `interval` zero starts none (this node
/// delivers nothing). `http` is the client deliveries go through (no
/// redirects, its timeout, and `oidc.block_private_addresses`).
pub fn start(state: AppState, http: IdpHttp, interval: Duration, timeout: Duration) -> Deliveries {
    if interval.is_zero() {
        return Deliveries { _thread: None };
    }
    let spawned = Background::spawn("tandem-webhooks", move |stopped: Receiver<()>| {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => return tracing::warn!(error = %e, "webhook deliveries could not start"),
        };
        // A lease outlives one request, the longest step of a delivery.
        let lease = chrono::Duration::from_std(timeout).unwrap_or_default() + chrono::Duration::seconds(30);
        let stop = Arc::new(AtomicBool::new(false));
        loop {
            runtime.block_on(round(&state, &http, lease, &stopped, &stop));
            if stop.load(Ordering::Relaxed) {
                break;
            }
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

/// One pass over the endpoints due, up to [`AT_ONCE`] at a time; stops
/// starting new ones once the thread is told to stop.
async fn round(
    state: &AppState,
    http: &IdpHttp,
    lease: chrono::Duration,
    stopped: &Receiver<()>,
    stop: &Arc<AtomicBool>,
) {
    let at = micros(state.clock.now());
    let found = state.store.read_blocking(move |c| Ok((webhooks::due(c, at)?, events::latest(c)?)));
    let (due, head) = match found {
        Ok((due, head)) => (due, head.unwrap_or_default()),
        Err(e) => return tracing::warn!(error = %e, "could not look for webhook deliveries"),
    };
    let mut running = tokio::task::JoinSet::new();
    // An endpoint at the feed's head has nothing to deliver: not even its lease is written.
    for (id, _) in due.into_iter().filter(|(_, cursor)| *cursor != head) {
        if !matches!(stopped.try_recv(), Err(TryRecvError::Empty)) {
            stop.store(true, Ordering::Relaxed);
            break;
        }
        while running.len() >= AT_ONCE {
            running.join_next().await;
        }
        let (state, http, stop) = (state.clone(), http.clone(), stop.clone());
        running.spawn(async move {
            if let Err(e) = turn(&state, &http, &id, lease, &stop).await {
                tracing::warn!(error = %e, endpoint = %id, "a webhook delivery could not be recorded");
            }
        });
    }
    while running.join_next().await.is_some() {}
}

/// One endpoint's turn: takes its lease, then delivers batch after batch
/// while more follow (renewing the lease each time), at most
/// [`BATCHES_PER_TURN`]. A failure to record leaves the lease to run out.
async fn turn(
    state: &AppState,
    http: &IdpHttp,
    id: &str,
    lease: chrono::Duration,
    stop: &AtomicBool,
) -> Result<(), StoreError> {
    let token = tandem_core::new_id();
    let now = state.clock.now();
    let (key, held, until) = (id.to_string(), token.clone(), micros(now + lease));
    if !state.store.write_blocking(move |c| webhooks::lease(c, &key, micros(now), until, &held))? {
        return Ok(());
    }
    for n in 1..=BATCHES_PER_TURN {
        let more = n < BATCHES_PER_TURN && !stop.load(Ordering::Relaxed);
        if !deliver(state, http, (id, &token), lease, more).await? {
            break;
        }
    }
    Ok(())
}

/// Delivers the next events of the endpoint `id` under the lease `token`;
/// whether the next batch should go at once (`more` allows it, more
/// events follow, and the lease is still held, renewed).
async fn deliver(
    state: &AppState,
    http: &IdpHttp,
    (id, token): (&str, &str),
    lease: chrono::Duration,
    more: bool,
) -> Result<bool, StoreError> {
    let key = id.to_string();
    let Some(row) = state.store.read_blocking(move |c| webhooks::get(c, &key))? else {
        return Ok(false);
    };
    if row.lease_id.as_deref() != Some(token) {
        return Ok(false);
    }
    let now = state.clock.now();
    let at = micros(now);
    let narrowing = Narrowing { customer_id: row.customer_id.clone(), scim_connection_id: None, types: row.types() };
    let from = row.cursor();
    let page = match state.store.read_blocking(move |c| narrowing.page(c, Some(from), BATCH))? {
        Ok(page) => page,
        Err(mark) => return skip_gone(state, &row, token, mark).map(|()| false),
    };
    let (ids, held) = (row.id.clone(), token.to_string());
    // Go on at once while more follow, under a renewed lease.
    let then = |has_more: bool| match more && has_more {
        true => Then::Keep(micros(now + lease)),
        false => Then::Release(at),
    };
    if page.events.is_empty() {
        let (to, then) = (page.reached.unwrap_or(from), then(page.has_more));
        let kept = state.store.write_blocking(move |c| webhooks::advance(c, (&ids, &held), to, None, then))?;
        return Ok(kept && matches!(then, Then::Keep(_)));
    }
    let context = webhooks::secret_context(&row.id);
    let mut secrets = Vec::new();
    for enc in std::iter::once(row.secret_enc.as_str()).chain(row.previous_secret(at)) {
        match state.secret_key.decrypt(enc, &context) {
            Ok(s) => secrets.push(s),
            Err(_) => {
                // Another node, on the key the secret is under (a secret-key
                // rotation under way), can deliver it: no failure is counted.
                let why = format!(
                    "the node's secret key ({}) does not open this endpoint's signing secret: is a secret-key \
                     rotation under way? Another node delivers it, or this one once it has that key",
                    state.secret_key.fingerprint()
                );
                tracing::warn!(endpoint = %row.id, reason = %why, "a webhook delivery was passed on");
                let next = micros(now + chrono::Duration::seconds(PASS_SECS));
                state.store.write_blocking(move |c| webhooks::pass(c, (&ids, &held), &why, next))?;
                return Ok(false);
            }
        }
    }
    let data: Vec<serde_json::Value> = page.events.iter().map(crate::api::events::render).collect();
    let body = serde_json::to_vec(&json!({"data": data})).unwrap_or_default();
    let last = page.events.last().map(|e| e.position().cursor()).unwrap_or_default();
    // The same for a retry of the same batch; another endpoint's differs.
    let message = format!("msg_{}_{}_{last}", row.id, from.cursor());
    let timestamp = now.timestamp();
    let mut signatures = Vec::new();
    for secret in &secrets {
        match tandem_core::webhook::sign(&secret.0, &message, timestamp, &body) {
            Some(s) => signatures.push(s),
            None => return fail(state, &row, token, "a stored signing secret is malformed; rotate it").map(|()| false),
        }
    }
    if let Err(why) = http.refuse_private(&row.url) {
        return fail(state, &row, token, &why).map(|()| false);
    }
    let sent = http
        .client()
        .post(&row.url)
        .header("content-type", "application/json")
        .header("webhook-id", &message)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signatures.join(" "))
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => {
            let (to, then) = (page.reached.unwrap_or(from), then(page.has_more));
            let kept = state.store.write_blocking(move |c| webhooks::advance(c, (&ids, &held), to, Some(at), then))?;
            Ok(kept && matches!(then, Then::Keep(_)))
        }
        Ok(resp) => fail(state, &row, token, &format!("the endpoint answered {}", resp.status())).map(|()| false),
        // Without the URL, which may carry a credential in its query.
        Err(e) => {
            let why = tandem_oidc::describe_transport_error(&e.without_url());
            fail(state, &row, token, &format!("the endpoint could not be reached: {why}")).map(|()| false)
        }
    }
}

/// Records a failed attempt and when to try again.
fn fail(state: &AppState, row: &WebhookEndpointRow, token: &str, why: &str) -> Result<(), StoreError> {
    tracing::warn!(endpoint = %row.id, reason = %why, failures = row.failures + 1, "a webhook delivery failed");
    let now = state.clock.now();
    let wait = 1_i64.checked_shl(row.failures.clamp(0, 12) as u32).unwrap_or(MAX_BACKOFF_SECS).min(MAX_BACKOFF_SECS);
    let (id, held, why) = (row.id.clone(), token.to_string(), why.to_string());
    let (at, next) = (micros(now), micros(now + chrono::Duration::seconds(wait)));
    state.store.write_blocking(move |c| webhooks::failed(c, (&id, &held), &why, at, next))
}

/// The events after the endpoint's position are no longer in the feed (the
/// retention purge deleted them before they were delivered, or the
/// database was restored or moved): delivery goes on from what is there,
/// and the endpoint and the audit log record what was skipped.
fn skip_gone(
    state: &AppState,
    row: &WebhookEndpointRow,
    token: &str,
    mark: Option<Position>,
) -> Result<(), StoreError> {
    let (id, held, from) = (row.id.clone(), token.to_string(), row.cursor());
    let now = state.clock.now();
    state.store.write_blocking(move |c| {
        let to = match mark {
            Some(m) if m > from => m,
            _ => events::latest(c)?.unwrap_or_default(),
        };
        let what = format!(
            "events after {} through {} were no longer in the feed when they were to be delivered (deleted by \
             the retention purge, or the database was restored or moved); delivery went on after them",
            from.cursor(),
            to.cursor()
        );
        tracing::warn!(endpoint = %id, skipped = %what, "webhook events skipped");
        if webhooks::skip(c, (&id, &held), to, &what, micros(now))? {
            let details = json!({"from": from.cursor(), "through": to.cursor()});
            let target = ("webhook_endpoint", id.as_str());
            tandem_store::audit::record(c, now, "tandem", "webhook_endpoint.events_skipped", target, details)?;
        }
        Ok(())
    })
}

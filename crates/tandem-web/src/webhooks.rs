//! Pushes the directory event feed to the webhook endpoints. A background
//! thread looks every `webhooks.poll_interval_ms` at the endpoints due: one
//! read of the feed after the furthest-behind of them tells which have
//! events to deliver. Those get a turn, up to 8 at once (a slow receiver
//! holds up only its own slot). An endpoint is delivered under a lease
//! (one node at a time), renewed batch by batch, whose token a node must
//! still hold to record anything. Each request carries the events after the
//! endpoint's position, up to 100, signed as Standard Webhooks has it; a
//! 2xx moves the position past them and, while more follow, the next batch
//! goes at once (10 at most per turn). Anything else is tried again later
//! (1 s, 2 s, 4 s … at most an hour apart) with the same events first, so
//! none is skipped: delivery is at least once, in feed order. An endpoint
//! none of whose events came is not written to, but for its position
//! moving past them once they are 10 minutes old.

use crate::state::AppState;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;
use tandem_oidc::IdpHttp;
use tandem_store::background::Background;
use tandem_store::events::{self, EventRow, Position, NARROWED_SCAN};
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
/// How much longer than a request a lease is taken for: the reads and
/// writes around the request must fit in it.
const LEASE_MARGIN: chrono::Duration = chrono::Duration::seconds(30);
/// How soon another node may try an endpoint this one could not sign for,
/// at first ([`pass_wait`]).
const PASS_SECS: i64 = 5;
/// The longest wait between passes of an endpoint no node has delivered.
const MAX_PASS_SECS: i64 = 300;
/// How old the events an endpoint does not take may grow before its
/// position is moved past them (a write), µs.
const MOVE_PAST_AFTER: i64 = 600 * 1_000_000;
/// How often the thread checks whether it is told to stop.
const STOP_CHECK: Duration = Duration::from_millis(100);
/// How long a node told to stop waits to free an endpoint's lease.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Keeps deliveries running; dropping it stops the thread and waits for it
/// (a request under way is abandoned, and its endpoint's lease freed).
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
        let lease = chrono::Duration::from_std(timeout).unwrap_or_default() + LEASE_MARGIN;
        runtime.block_on(run(state, http, lease, interval, stopped));
    });
    match spawned {
        Ok(t) => Deliveries { _thread: Some(t) },
        Err(e) => {
            tracing::warn!(error = %e, "webhook deliveries could not start");
            Deliveries { _thread: None }
        }
    }
}

/// The delivery loop: looks for work every `interval`, keeps up to
/// [`AT_ONCE`] turns running, and stops when told (turns under way stop at
/// their next step).
async fn run(state: AppState, http: IdpHttp, lease: chrono::Duration, interval: Duration, stopped: Receiver<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut running: tokio::task::JoinSet<String> = tokio::task::JoinSet::new();
    // The endpoints with a turn running, by the turn's task (a task that
    // panicked hands back no endpoint id, only its task id).
    let mut busy: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut next_look = tokio::time::Instant::now();
    loop {
        if !matches!(stopped.try_recv(), Err(TryRecvError::Empty)) {
            stop.store(true, Ordering::Relaxed);
            break;
        }
        while let Some(done) = running.try_join_next_with_id() {
            let task = match done {
                Ok((task, _)) => task,
                Err(e) => {
                    let endpoint = busy.get(&e.id()).cloned().unwrap_or_default();
                    tracing::error!(error = %e, %endpoint, "a webhook delivery turn failed");
                    e.id()
                }
            };
            busy.remove(&task);
        }
        if tokio::time::Instant::now() >= next_look && running.len() < AT_ONCE {
            next_look = tokio::time::Instant::now() + interval;
            match look(&state).await {
                Ok(ready) => {
                    for id in ready {
                        if running.len() >= AT_ONCE {
                            break;
                        }
                        if busy.values().any(|b| *b == id) {
                            continue;
                        }
                        let (state, http, stop) = (state.clone(), http.clone(), stop.clone());
                        let endpoint = id.clone();
                        let task = running.spawn(async move {
                            if let Err(e) = turn(&state, &http, &id, lease, &stop).await {
                                tracing::warn!(error = %e, endpoint = %id, "a webhook delivery could not be recorded");
                            }
                            id
                        });
                        busy.insert(task.id(), endpoint);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not look for webhook deliveries"),
            }
        }
        tokio::time::sleep(STOP_CHECK.min(interval)).await;
    }
    while running.join_next().await.is_some() {}
}

/// The endpoints due that have events to deliver (or whose position the
/// feed no longer holds). One read of the feed after the furthest-behind
/// position serves them all; an endpoint at the feed's head, or none of
/// whose events came, costs no write (its position is moved past events it
/// does not take once the first of them is [`MOVE_PAST_AFTER`] old).
async fn look(state: &AppState) -> Result<Vec<String>, StoreError> {
    let now = micros(state.clock.now());
    let (due, head, window) = state
        .store
        .read(move |c| {
            let head = events::latest(c)?.unwrap_or_default();
            let due: Vec<WebhookEndpointRow> =
                webhooks::due_rows(c, now)?.into_iter().filter(|r| r.cursor() != head).collect();
            let from = due.iter().map(WebhookEndpointRow::cursor).min();
            let window = match from {
                Some(from) => events::after(c, Some(events::Cursor { position: from, stamp: None }), NARROWED_SCAN)?,
                None => Ok(Vec::new()),
            };
            Ok((due, head, window))
        })
        .await?;
    // The furthest-behind position is gone (purged): every endpoint due finds out in its turn.
    let Ok(window) = window else {
        return Ok(due.into_iter().map(|r| r.id).collect());
    };
    let covers_head = window.last().map(EventRow::position) == Some(head) || (window.len() as i64) < NARROWED_SCAN;
    let mut ready = Vec::new();
    let mut move_past = Vec::new();
    for row in due {
        let narrowing = row.narrowing();
        let cursor = row.cursor();
        let mut after = window.iter().filter(|e| e.position() > cursor).peekable();
        let first_at = after.peek().map(|e| e.created_at);
        if after.any(|e| narrowing.admits(e)) || !covers_head {
            ready.push(row.id);
        } else if first_at.is_some_and(|t| t < now - MOVE_PAST_AFTER) {
            move_past.push((row.id.clone(), row.filter(), cursor));
        } else if first_at.is_none() && cursor > head {
            // A position past the feed's head (the database went back): its turn finds out.
            ready.push(row.id);
        }
    }
    if !move_past.is_empty() {
        state
            .store
            .write(move |c| {
                for (id, filter, from) in &move_past {
                    webhooks::move_past(c, (id, filter), *from, head, now)?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(ready)
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
    if !state.store.write(move |c| webhooks::lease(c, &key, micros(now), until, &held)).await? {
        return Ok(());
    }
    let delivered = async {
        for n in 1..=BATCHES_PER_TURN {
            if stop.load(Ordering::Relaxed)
                || !deliver(state, http, (id, &token), lease, n < BATCHES_PER_TURN, stop).await?
            {
                break;
            }
        }
        Ok(())
    }
    .await;
    if stop.load(Ordering::Relaxed) {
        // Told to stop: the endpoint goes to the other nodes now, not when
        // the lease runs out (a batch abandoned under way is sent again).
        // Not waited for long: shutting down is not held up by a database
        // that does not answer (the lease then runs out).
        let key = id.to_string();
        let release = state.store.write(move |c| webhooks::release(c, (&key, &token)));
        match tokio::time::timeout(RELEASE_WAIT, release).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, endpoint = %id, "a webhook endpoint's lease was not freed"),
            Err(_) => tracing::warn!(endpoint = %id, "a webhook endpoint's lease was not freed in time"),
        }
    }
    delivered
}

/// What an error says of why it happened: its innermost cause ("Connection
/// refused", "connection reset by peer", a certificate problem), or that it
/// timed out; never the URL.
fn transport_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        return "the request timed out".into();
    }
    let mut cause: &dyn std::error::Error = &e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// Waits until the thread is told to stop.
async fn stopping(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(STOP_CHECK).await;
    }
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
    stop: &AtomicBool,
) -> Result<bool, StoreError> {
    let key = id.to_string();
    let Some(row) = state.store.read(move |c| webhooks::get(c, &key)).await? else {
        return Ok(false);
    };
    let now = state.clock.now();
    let at = micros(now);
    // Still this node's, and not run out (a process paused past its lease sends nothing more).
    if row.lease_id.as_deref() != Some(token) || row.leased_until.is_none_or(|u| u <= at) {
        return Ok(false);
    }
    let narrowing = row.narrowing();
    let from = row.cursor();
    let page = match state.store.read(move |c| narrowing.page(c, Some(from), BATCH)).await? {
        Ok(page) => page,
        Err(mark) => return skip_gone(state, &row, token, mark).await.map(|()| false),
    };
    let (ids, held) = (row.id.clone(), token.to_string());
    // Go on at once while more follow, under a lease renewed from when the
    // step is recorded (after the request: the next one gets a whole lease).
    let then = |has_more: bool| match more && has_more {
        true => Then::Keep(micros(state.clock.now() + lease)),
        false => Then::Release(at),
    };
    if page.events.is_empty() {
        let (to, then) = (page.reached.unwrap_or(from), then(page.has_more));
        let filter = row.filter();
        let kept = state.store.write(move |c| webhooks::advance(c, (&ids, &held, &filter), to, None, then)).await?;
        return Ok(kept && matches!(then, Then::Keep(_)));
    }
    let context = webhooks::secret_context(&row.id);
    let current = match state.secret_key.decrypt(&row.secret_enc, &context) {
        Ok(s) => s,
        Err(_) => {
            // Another node, on the key the secret is under (a secret-key
            // rotation under way), can deliver it: no failure is counted.
            let why = format!(
                "the node's secret key ({}) does not open this endpoint's signing secret: is a secret-key \
                 rotation under way? Another node delivers it, or this one once it has that key",
                state.secret_key.fingerprint()
            );
            tracing::warn!(endpoint = %row.id, reason = %why, "a webhook delivery was passed on");
            let next = micros(now + chrono::Duration::seconds(pass_wait(row.failing_since, at)));
            state.store.write(move |c| webhooks::pass(c, (&ids, &held), &why, (at, next))).await?;
            return Ok(false);
        }
    };
    let mut secrets = vec![current];
    if let Some(enc) = row.previous_secret(at) {
        match state.secret_key.decrypt(enc, &context) {
            Ok(s) => secrets.push(s),
            // The current secret signs alone: a receiver on it is served.
            Err(_) => {
                tracing::warn!(endpoint = %row.id, "the previous signing secret does not open with this node's key; signing with the current one only")
            }
        }
    }
    let data: Vec<serde_json::Value> = page.events.iter().map(crate::api::events::render).collect();
    let body = serde_json::to_vec(&json!({"data": data})).unwrap_or_default();
    // The same for a retry of the same batch (the same events after the
    // same position), another for any other batch: a retry that carries
    // other events (made meanwhile, or let in by widened `types`) must not
    // be dropped by a receiver that dedupes on `webhook-id`.
    let mut sent = from.cursor().to_string();
    for event in &page.events {
        sent.push(' ');
        sent.push_str(&event.cursor().text());
    }
    let message = format!("msg_{}_{}", row.id, &tandem_core::keys::hash_key(&sent)[..32]);
    let timestamp = now.timestamp();
    let mut signatures = Vec::new();
    for secret in &secrets {
        match tandem_core::webhook::sign(&secret.0, &message, timestamp, &body) {
            Some(s) => signatures.push(s),
            None => {
                let why = "a stored signing secret is malformed; rotate it";
                return fail(state, &row, token, why).await.map(|()| false);
            }
        }
    }
    if let Err(why) = http.refuse_private(&row.url) {
        return fail(state, &row, token, &why).await.map(|()| false);
    }
    // The lease must outlast the request: a page read slowed past the
    // margin (a database stall) may have let it run out, and another node
    // take the endpoint and send these events too. Nothing is recorded: the
    // lease is no longer surely this node's.
    if row.leased_until.is_none_or(|u| u <= micros(state.clock.now() + (lease - LEASE_MARGIN))) {
        tracing::info!(endpoint = %row.id, "a webhook delivery was left: its lease would run out during the request");
        return Ok(false);
    }
    let request = http
        .client()
        .post(&row.url)
        .header("content-type", "application/json")
        .header("webhook-id", &message)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signatures.join(" "))
        .body(body)
        .send();
    let sent = tokio::select! {
        sent = request => sent,
        // Told to stop: the request is abandoned (the turn frees the lease).
        () = stopping(stop) => return Ok(false),
    };
    match sent {
        Ok(resp) if resp.status().is_success() => {
            let (to, then) = (page.reached.unwrap_or(from), then(page.has_more));
            let filter = row.filter();
            let kept =
                state.store.write(move |c| webhooks::advance(c, (&ids, &held, &filter), to, Some(at), then)).await?;
            Ok(kept && matches!(then, Then::Keep(_)))
        }
        Ok(resp) => {
            let why = format!("the endpoint answered {}", resp.status());
            fail(state, &row, token, &why).await.map(|()| false)
        }
        Err(e) => {
            let why = format!("the endpoint could not be reached: {}", transport_error(e));
            fail(state, &row, token, &why).await.map(|()| false)
        }
    }
}

/// How long until the next attempt at an endpoint this node could not sign
/// for, failing since `failing_since` (µs) at `now`: [`PASS_SECS`] while a
/// secret-key rotation may be under way, a tenth of the time it has been
/// failing later on (no node holds the key: the database was restored
/// under another), up to [`MAX_PASS_SECS`].
fn pass_wait(failing_since: Option<i64>, now: i64) -> i64 {
    let failing_secs = failing_since.map_or(0, |since| now.saturating_sub(since) / 1_000_000);
    (failing_secs / 10).clamp(PASS_SECS, MAX_PASS_SECS)
}

/// Records a failed attempt and when to try again.
async fn fail(state: &AppState, row: &WebhookEndpointRow, token: &str, why: &str) -> Result<(), StoreError> {
    tracing::warn!(endpoint = %row.id, reason = %why, failures = row.failures + 1, "a webhook delivery failed");
    let now = state.clock.now();
    let wait = 1_i64.checked_shl(row.failures.clamp(0, 12) as u32).unwrap_or(MAX_BACKOFF_SECS).min(MAX_BACKOFF_SECS);
    // Up to a fifth less, at random: endpoints that failed together (one
    // receiver host down) do not all come due together, and so do not
    // take every delivery slot at once when it hangs.
    let mut random = [0u8; 8];
    tandem_core::keys::fill_random(&mut random);
    let wait_ms = wait * 1_000 - (u64::from_le_bytes(random) % (wait as u64 * 200 + 1)) as i64;
    let (id, held, why) = (row.id.clone(), token.to_string(), why.to_string());
    let (at, next) = (micros(now), micros(now + chrono::Duration::milliseconds(wait_ms)));
    state.store.write(move |c| webhooks::failed(c, (&id, &held), &why, at, next)).await
}

/// The events after the endpoint's position are no longer in the feed (the
/// retention purge deleted them before they were delivered, or the
/// database went back to an older state): delivery goes on from what is
/// there, and the endpoint and the audit log record what was skipped.
async fn skip_gone(
    state: &AppState,
    row: &WebhookEndpointRow,
    token: &str,
    mark: Option<Position>,
) -> Result<(), StoreError> {
    let (id, held, from) = (row.id.clone(), token.to_string(), row.cursor());
    let now = state.clock.now();
    state
        .store
        .write(move |c| {
            let to = match mark {
                Some(m) if m > from => m,
                _ => events::latest(c)?.unwrap_or_default(),
            };
            let what = if to > from {
                format!(
                    "the events after {} through {} were deleted by the retention purge before they were delivered; \
                     delivery went on after them",
                    from.cursor(),
                    to.cursor()
                )
            } else {
                format!(
                    "the position {} is past the feed's newest event {} (the database went back to an older state); \
                     delivery went on from there",
                    from.cursor(),
                    to.cursor()
                )
            };
            if webhooks::skip(c, (&id, &held), to, &what, micros(now))? {
                tracing::warn!(endpoint = %id, skipped = %what, "webhook events skipped");
                let details = json!({"from": from.cursor(), "to": to.cursor()});
                let target = ("webhook_endpoint", id.as_str());
                tandem_store::audit::record(c, now, "tandem", "webhook_endpoint.events_skipped", target, details)?;
            }
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An endpoint no node can sign for is tried every few seconds while a
    /// secret-key rotation may be under way, then less and less often.
    #[test]
    fn passes_back_off_with_how_long_no_node_has_delivered() {
        let secs = |s: i64| s * 1_000_000;
        let now = secs(100_000);
        assert_eq!(pass_wait(None, now), PASS_SECS);
        assert_eq!(pass_wait(Some(now - secs(30)), now), PASS_SECS);
        assert_eq!(pass_wait(Some(now - secs(600)), now), 60);
        assert_eq!(pass_wait(Some(now - secs(86_400)), now), MAX_PASS_SECS);
        assert_eq!(pass_wait(Some(now + secs(60)), now), PASS_SECS, "a failing_since ahead of this node's clock");
    }
}

//! A login's trace: the steps reached, written to its login event so an
//! admin can follow the redirect chain without a HAR file.

use crate::error::ApiError;
use crate::state::AppState;
use serde_json::{json, Value};
use tandem_core::format_time;
use tandem_store::sink::LoginEnd;
use tandem_store::sso::{LoginEvent, SsoUser};

/// The event being written for one login.
///
/// A login's event is written in parts that merge in the database
/// ([`sso::save_event`]): the part its initiate records (behind the
/// request, outcome `pending`), and the part its completion records, whose
/// steps follow (behind the answer once the login has its verdict, see
/// [`Trace::record_end`]; at once when it is refused before). A part written
/// twice adds only the steps not yet written.
pub struct Trace {
    pub event: LoginEvent,
    steps: Vec<Value>,
    /// How many of `steps` are stored.
    written: usize,
}

impl Trace {
    /// A new trace of an attempt that is no login's (or not yet known to
    /// be), with no client.
    pub fn new(state: &AppState) -> Trace {
        let now = tandem_store::micros(state.clock.now());
        Trace { event: LoginEvent::pending(None, None, now), steps: Vec::new(), written: 0 }
    }

    /// The trace of the login `login_id` on a client (its event has the
    /// login's id), or with no id, of an attempt of its own on that client.
    pub fn for_login(state: &AppState, login_id: Option<String>, client_id: &str, customer_id: Option<&str>) -> Trace {
        let mut trace = Trace::new(state);
        if let Some(id) = login_id {
            trace.event.id = id;
        }
        trace.event.oidc_client_id = Some(client_id.to_string());
        trace.event.customer_id = customer_id.map(str::to_string);
        trace
    }

    /// Records a step that succeeded.
    pub fn ok(&mut self, state: &AppState, step: &str, detail: Value) {
        self.steps.push(json!({"step": step, "at": format_time(state.clock.now()), "ok": true, "detail": detail}));
    }

    /// Records the failing step and the error it produced.
    pub fn failed(&mut self, state: &AppState, step: &str, err: &ApiError) {
        self.steps.push(json!({"step": step, "at": format_time(state.clock.now()), "ok": false,
            "detail": {"type": err.kind, "message": err.message, "details": err.details}}));
        self.event.outcome = "failed".into();
        self.event.error_type = Some(err.kind.to_string());
        // `kind` (IdP errors) or `reason` (a SCIM join or state refusal): what an admin filters on.
        let kind = err.details.get("kind").or_else(|| err.details.get("reason"));
        self.event.error_kind = kind.and_then(Value::as_str).map(str::to_string);
        self.event.failed_step = Some(step.to_string());
        // The message may quote the IdP, whose text may hold a NUL, which
        // PostgreSQL refuses in text (the steps are JSON, which escapes it).
        self.event.diagnosis = Some(err.message.replace('\0', "\u{FFFD}"));
    }

    /// The event as it stands, with the steps not yet written.
    fn finish(&mut self, state: &AppState) {
        // Serialised in place (no deep copy of the steps); JSON values always serialise.
        let unwritten = self.steps.get(self.written..).unwrap_or_default();
        self.event.steps = serde_json::to_string(unwritten).unwrap_or_else(|_| String::from("[]"));
        self.event.updated_at = tandem_store::micros(state.clock.now());
    }

    /// The finished event, to store apart from the request (a login
    /// initiate's part: still `pending`).
    pub fn into_event(mut self, state: &AppState) -> LoginEvent {
        self.finish(state);
        self.event
    }

    /// Saves the event's progress (inserting it, or merging into what is
    /// stored of it); whether it was stored.
    pub async fn save(mut self, state: &AppState) -> bool {
        self.finish(state);
        store_now(state, LoginEnd { sso_user: None, event: self.event }).await
    }

    /// Hands the event as it stands, with the SSO identity the login saw,
    /// to the log writer, which commits them behind the answer; when its
    /// queue is full, writes them at once. Whether they are queued or stored.
    pub async fn record_end(&mut self, state: &AppState, sso_user: Option<SsoUser>) -> bool {
        self.finish(state);
        let end = LoginEnd { sso_user, event: self.event.clone() };
        let kept = match state.log_sink.record_login_end(end) {
            Ok(()) => true,
            Err(end) => store_now(state, *end).await,
        };
        if kept {
            self.written = self.steps.len();
        }
        kept
    }

    /// Ends an attempt refused at `step`: records the failure, saves the
    /// event and names it in the error's `details.login_event_id`. The error
    /// is the attempt's even when the event cannot be stored (that is logged).
    pub async fn refuse(mut self, state: &AppState, step: &str, mut err: ApiError) -> ApiError {
        self.failed(state, step, &err);
        let id = self.id().to_string();
        if self.save(state).await {
            if let Some(d) = err.details.as_object_mut() {
                d.insert("login_event_id".into(), json!(id));
            }
        }
        err
    }

    /// The event id.
    pub fn id(&self) -> &str {
        &self.event.id
    }
}

/// Writes a login event's part (and the SSO user beside it, if any) in a
/// small write of its own; whether it was stored (a failure is logged).
async fn store_now(state: &AppState, end: LoginEnd) -> bool {
    let with_sso_user = end.sso_user.is_some();
    let saved = state.store.write_small(move |c| end.write(c)).await;
    if let Err(err) = &saved {
        tracing::error!(error = %err, with_sso_user, "could not save a login event");
    }
    saved.is_ok()
}

//! A login's trace: the steps reached, written to its login event so an
//! admin can follow the redirect chain without a HAR file.

use crate::error::ApiError;
use crate::state::AppState;
use serde_json::{json, Value};
use tandem_core::format_time;
use tandem_store::sso::{self, LoginEvent};

/// The event being written for one login.
pub struct Trace {
    pub event: LoginEvent,
    steps: Vec<Value>,
}

impl Trace {
    /// A new trace (not yet stored).
    pub fn new(state: &AppState, client: Option<(&str, &str)>) -> Trace {
        let now = tandem_store::micros(state.clock.now());
        Trace {
            event: LoginEvent::pending(client.map(|c| c.0.to_string()), client.map(|c| c.1.to_string()), now),
            steps: Vec::new(),
        }
    }

    /// Continues the trace of a stored event.
    pub fn resume(event: LoginEvent) -> Trace {
        let steps = serde_json::from_str::<Vec<Value>>(&event.steps).unwrap_or_default();
        Trace { event, steps }
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
        self.event.error_kind = err.details.get("kind").and_then(Value::as_str).map(str::to_string);
        self.event.failed_step = Some(step.to_string());
        self.event.diagnosis = Some(err.message.clone());
    }

    fn finish(&mut self, state: &AppState) {
        // Serialised in place (no deep copy of the steps); a Vec of JSON values always serialises.
        self.event.steps = serde_json::to_string(&self.steps).unwrap_or_else(|_| String::from("[]"));
        self.event.updated_at = tandem_store::micros(state.clock.now());
    }

    /// The event as it stands, to store inside another transaction.
    pub fn snapshot(&mut self, state: &AppState) -> LoginEvent {
        self.finish(state);
        self.event.clone()
    }

    /// The finished event, to store with other writes.
    pub fn into_event(mut self, state: &AppState) -> LoginEvent {
        self.finish(state);
        self.event
    }

    /// Stores a new event.
    pub async fn insert(mut self, state: &AppState) -> Result<(), ApiError> {
        self.finish(state);
        let e = self.event;
        state.store.write_small(move |c| sso::insert_event(c, &e)).await?;
        Ok(())
    }

    /// Saves the event's progress.
    pub async fn save(mut self, state: &AppState) {
        self.finish(state);
        let e = self.event;
        if let Err(err) = state.store.write_small(move |c| sso::update_event(c, &e)).await {
            tracing::error!(error = %err, "could not save a login event");
        }
    }

    /// The event id.
    pub fn id(&self) -> &str {
        &self.event.id
    }
}

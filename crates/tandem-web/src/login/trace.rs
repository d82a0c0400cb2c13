//! A login's trace: the steps reached, written to its login event so an
//! admin can follow the redirect chain without a HAR file.

use crate::error::ApiError;
use crate::state::AppState;
use serde_json::{json, Value};
use tandem_core::format_time;
use tandem_store::sso::{self, LoginEvent};
use tandem_store::{AnyConnection, StoreError};

/// The event being written for one login.
pub struct Trace {
    pub event: LoginEvent,
    steps: Vec<Value>,
    row: Row,
}

/// Where a trace's event is, which decides what saving it does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Row {
    /// Not stored yet: saving inserts it.
    New,
    /// Stored as this attempt's: saving updates it.
    Stored,
    /// A stand-in while the real trace is inside a transaction; if that
    /// transaction fails, the real trace is gone with it and the stored
    /// event stays as it was: saving does nothing.
    StandIn,
}

impl Trace {
    /// A new trace (not yet stored).
    pub fn new(state: &AppState, client: Option<(&str, &str)>) -> Trace {
        let now = tandem_store::micros(state.clock.now());
        Trace {
            event: LoginEvent::pending(client.map(|c| c.0.to_string()), client.map(|c| c.1.to_string()), now),
            steps: Vec::new(),
            row: Row::New,
        }
    }

    /// A stand-in for a trace moved into a transaction (see [`Row::StandIn`]).
    pub fn stand_in(state: &AppState) -> Trace {
        Trace { row: Row::StandIn, ..Trace::new(state, None) }
    }

    /// Continues the trace of a stored event.
    pub fn resume(event: LoginEvent) -> Trace {
        let steps = serde_json::from_str::<Vec<Value>>(&event.steps).unwrap_or_default();
        Trace { event, steps, row: Row::Stored }
    }

    /// Starts an event of this attempt's own for the same client, leaving
    /// the login's stored event as the attempt that used it wrote it (a
    /// replayed callback must not turn a completed login's event into a
    /// failure, nor carry its steps and user).
    pub fn detach(&mut self, state: &AppState) {
        let (client, customer) = (self.event.oidc_client_id.take(), self.event.customer_id.take());
        *self = Trace::new(state, None);
        self.event.oidc_client_id = client;
        self.event.customer_id = customer;
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

    /// The finished event, to store with other writes.
    pub fn into_event(mut self, state: &AppState) -> LoginEvent {
        self.finish(state);
        self.event
    }

    /// Writes the event as it stands inside the caller's transaction:
    /// updates it when stored, inserts it when new.
    pub fn write(&mut self, state: &AppState, c: &mut AnyConnection) -> Result<(), StoreError> {
        self.finish(state);
        match self.row {
            Row::Stored => sso::update_event(c, &self.event)?,
            Row::New => {
                sso::insert_event(c, &self.event)?;
                self.row = Row::Stored;
            }
            Row::StandIn => {}
        }
        Ok(())
    }

    /// Saves the event's progress (inserting it when it is new); whether
    /// it was stored.
    pub async fn save(mut self, state: &AppState) -> bool {
        if self.row == Row::StandIn {
            return false;
        }
        let st = state.clone();
        let saved = state.store.write_small(move |c| self.write(&st, c)).await;
        if let Err(err) = &saved {
            tracing::error!(error = %err, "could not save a login event");
        }
        saved.is_ok()
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

//! The audit log: who changed what configuration, when, from what to what.

use crate::schema::audit_events::dsl as a;
use crate::{micros, AnyConnection, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// One recorded change.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::audit_events)]
pub struct AuditEvent {
    pub id: String,
    pub created_at: i64,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub details: String,
}

/// Records a change made by `actor` (an integration key's name).
pub fn record(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: (&str, &str),
    details: serde_json::Value,
) -> Result<(), StoreError> {
    let event = AuditEvent {
        id: tandem_core::new_id(),
        created_at: micros(now),
        actor: actor.to_string(),
        action: action.to_string(),
        target_type: target.0.to_string(),
        target_id: target.1.to_string(),
        details: details.to_string(),
    };
    diesel::insert_into(a::audit_events).values(&event).execute(conn)?;
    tracing::info!(target: "audit", actor, action, target_type = target.0, target_id = target.1, "configuration changed");
    Ok(())
}

/// Which recorded changes to list.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    /// Only events older than this one (the previous page's last id).
    pub before: Option<String>,
    pub limit: i64,
}

/// Recorded changes matching `q`, newest first.
pub fn list(conn: &mut AnyConnection, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
    let mut query = a::audit_events.select(AuditEvent::as_select()).order(a::id.desc()).limit(q.limit).into_boxed();
    if let Some(t) = &q.target_type {
        query = query.filter(a::target_type.eq(t.clone()));
    }
    if let Some(t) = &q.target_id {
        query = query.filter(a::target_id.eq(t.clone()));
    }
    if let Some(x) = &q.action {
        query = query.filter(a::action.eq(x.clone()));
    }
    if let Some(x) = &q.actor {
        query = query.filter(a::actor.eq(x.clone()));
    }
    if let Some(b) = &q.before {
        query = query.filter(a::id.lt(b.clone()));
    }
    Ok(query.load(conn)?)
}

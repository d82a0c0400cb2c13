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

/// The events about one target, newest first.
pub fn for_target(conn: &mut AnyConnection, target_type: &str, target_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
    Ok(a::audit_events
        .filter(a::target_type.eq(target_type))
        .filter(a::target_id.eq(target_id))
        .order(a::id.desc())
        .select(AuditEvent::as_select())
        .load(conn)?)
}

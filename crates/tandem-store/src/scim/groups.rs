//! SCIM groups: the document in one table, members in another, so
//! membership changes touch only the rows they change and a user's groups
//! are one indexed lookup.

use super::query;
use crate::schema::scim_group_members::dsl as gm;
use crate::schema::scim_groups::dsl as g;
use crate::schema::scim_users::dsl as u;
use crate::{micros, AnyConnection, RowLock, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use tandem_scim::filter::Filter;
use tandem_scim::schema::ResourceType;
use tandem_scim::ScimError;

/// A stored group; `resource` is its document without `members`.
#[derive(Clone, Debug, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = crate::schema::scim_groups)]
pub struct ScimGroupRow {
    pub id: String,
    pub scim_connection_id: String,
    pub display_name: String,
    pub display_name_lower: String,
    pub external_id: Option<String>,
    pub resource: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ScimGroupRow {
    /// The stored document (no members).
    pub fn document(&self) -> Value {
        serde_json::from_str(&self.resource).unwrap_or(Value::Null)
    }
}

/// A member as rendered: id, `User` or `Group`, and a display name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub value: String,
    pub kind: String,
    pub display: Option<String>,
}

/// Why a group write was refused.
#[derive(Debug)]
pub enum GroupWriteError {
    /// Another group of the connection has this displayName.
    DisplayNameTaken(String),
    /// Members that are no live user or group of the connection.
    UnknownMembers(Vec<String>),
    /// The group named among its own members.
    SelfMember,
    Store(StoreError),
}

impl From<StoreError> for GroupWriteError {
    fn from(e: StoreError) -> Self {
        GroupWriteError::Store(e)
    }
}

impl From<diesel::result::Error> for GroupWriteError {
    fn from(e: diesel::result::Error) -> Self {
        GroupWriteError::Store(StoreError::Query(e))
    }
}

/// A member as a client sent it: the id and, optionally, its display text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRef {
    pub value: String,
    pub display: Option<String>,
}

/// Splits a normalized group document into its members (deduplicated, in
/// order) and the rest.
pub fn split_members(mut doc: Value) -> (Value, Vec<MemberRef>) {
    let members = doc
        .as_object_mut()
        .and_then(|o| o.remove("members"))
        .and_then(|m| match m {
            Value::Array(items) => Some(items),
            _ => None,
        })
        .unwrap_or_default();
    // A set for the duplicates: a scan of the list kept so far made a
    // 10,000-member group's PATCH take ~1 s.
    let mut seen: HashSet<String> = HashSet::with_capacity(members.len());
    let mut refs: Vec<MemberRef> = Vec::with_capacity(members.len());
    for m in members {
        if let Some(v) = m.get("value").and_then(Value::as_str) {
            if seen.insert(v.to_string()) {
                let display = m.get("display").and_then(Value::as_str).map(str::to_string);
                refs.push(MemberRef { value: v.to_string(), display });
            }
        }
    }
    (doc, refs)
}

fn check_display_name(
    conn: &mut AnyConnection,
    connection: &str,
    lower: &str,
    except: Option<&str>,
) -> Result<(), GroupWriteError> {
    let clash: Option<(String, String)> = g::scim_groups
        .filter(g::scim_connection_id.eq(connection))
        .filter(g::display_name_lower.eq(lower))
        .select((g::id, g::display_name))
        .first(conn)
        .optional()?;
    match clash {
        Some((id, name)) if Some(id.as_str()) != except => Err(GroupWriteError::DisplayNameTaken(name)),
        _ => Ok(()),
    }
}

/// Resolves member ids to (id, kind); ids that are no live user or group of
/// the connection are an error listing them.
fn resolve_members(
    conn: &mut AnyConnection,
    connection: &str,
    ids: &[String],
    ignore_unknown: bool,
    ignored: &mut Vec<String>,
) -> Result<Vec<(String, &'static str)>, GroupWriteError> {
    let mut found: HashMap<String, &'static str> = HashMap::new();
    for chunk in ids.chunks(500) {
        let users = || {
            u::scim_users
                .filter(u::scim_connection_id.eq(connection))
                .filter(u::deleted_at.is_null())
                .filter(u::id.eq_any(chunk))
                .select(u::id)
        };
        let groups =
            || g::scim_groups.filter(g::scim_connection_id.eq(connection)).filter(g::id.eq_any(chunk)).select(g::id);
        // On PostgreSQL the members found are locked (KEY SHARE) until the
        // write commits: a member's delete, which locks its row FOR UPDATE,
        // waits for this write and then removes the membership it made;
        // one that went first is seen as gone (the lock re-reads the row).
        // Without it a membership added while its member was deleted stayed
        // behind, naming a user that no longer exists.
        let (users, groups): (Vec<String>, Vec<String>) = match &mut *conn {
            AnyConnection::Postgresql(c) => (users().for_key_share().load(c)?, groups().for_key_share().load(c)?),
            other => (users().load(other)?, groups().load(other)?),
        };
        found.extend(users.into_iter().map(|id| (id, "User")));
        found.extend(groups.into_iter().map(|id| (id, "Group")));
    }
    let missing: Vec<String> = ids.iter().filter(|id| !found.contains_key(*id)).cloned().collect();
    if !missing.is_empty() {
        if !ignore_unknown {
            return Err(GroupWriteError::UnknownMembers(missing));
        }
        ignored.extend(missing);
    }
    Ok(ids.iter().filter_map(|id| found.get(id).map(|k| (id.clone(), *k))).collect())
}

/// A group write's result.
#[derive(Debug)]
pub struct Written {
    pub row: ScimGroupRow,
    /// Member ids dropped as unknown (only when the connection ignores unknown members).
    pub ignored: Vec<String>,
    /// The members the write added and removed, by id, each with its
    /// type (`User` or `Group`).
    pub added: Vec<(String, &'static str)>,
    pub removed: Vec<(String, &'static str)>,
}

/// Creates a group from a normalized resource (members included).
pub fn insert(
    conn: &mut AnyConnection,
    connection: &str,
    resource: Value,
    ignore_unknown: bool,
    now: DateTime<Utc>,
) -> Result<Written, GroupWriteError> {
    let (doc, refs) = split_members(resource);
    let display = doc.get("displayName").and_then(Value::as_str).unwrap_or_default().to_string();
    check_display_name(conn, connection, &display.to_lowercase(), None)?;
    let ids: Vec<String> = refs.iter().map(|r| r.value.clone()).collect();
    let mut ignored = Vec::new();
    let members = resolve_members(conn, connection, &ids, ignore_unknown, &mut ignored)?;
    let row = ScimGroupRow {
        id: tandem_core::new_id(),
        scim_connection_id: connection.to_string(),
        display_name_lower: display.to_lowercase(),
        display_name: display,
        external_id: doc.get("externalId").and_then(Value::as_str).map(str::to_string),
        resource: tandem_scim::to_text(&doc),
        version: 1,
        created_at: micros(now),
        updated_at: micros(now),
    };
    diesel::insert_into(g::scim_groups)
        .values(&row)
        .execute(conn)
        .map_err(|e| StoreError::from(e).unique_as(|| GroupWriteError::DisplayNameTaken(row.display_name.clone())))?;
    insert_members(conn, &row.id, &members, &refs)?;
    Ok(Written { row, ignored, added: members, removed: Vec::new() })
}

fn insert_members(
    conn: &mut AnyConnection,
    group: &str,
    members: &[(String, &'static str)],
    refs: &[MemberRef],
) -> Result<(), StoreError> {
    let displays: HashMap<&str, &Option<String>> = refs.iter().map(|r| (r.value.as_str(), &r.display)).collect();
    for (id, kind) in members {
        let display = displays.get(id.as_str()).and_then(|d| (*d).clone());
        diesel::insert_into(gm::scim_group_members)
            .values((gm::group_id.eq(group), gm::member_id.eq(id), gm::member_type.eq(*kind), gm::display.eq(display)))
            .execute(conn)?;
    }
    Ok(())
}

/// A group by id.
pub fn get(conn: &mut AnyConnection, connection: &str, id: &str) -> Result<Option<ScimGroupRow>, StoreError> {
    Ok(on_backend!(conn, |c| g::scim_groups
        .filter(g::scim_connection_id.eq(connection))
        .filter(g::id.eq(id))
        .select(ScimGroupRow::as_select())
        .first(c)
        .optional())?)
}

/// [`get`] for a transaction that deletes the group: on PostgreSQL the row
/// stays locked (`FOR UPDATE`) until the transaction ends, so the delete
/// and writes of the group, or of groups adding it as a member, take turns.
/// SQLite's writes are one at a time already.
pub fn get_for_update(
    conn: &mut AnyConnection,
    connection: &str,
    id: &str,
) -> Result<Option<ScimGroupRow>, StoreError> {
    get_locked(conn, connection, id, RowLock::Update)
}

/// [`get`] for a write that changes the group and keeps it (a PUT or
/// PATCH): on PostgreSQL the row stays locked (`FOR NO KEY UPDATE`) until
/// the transaction ends, so concurrent updates of one group take their
/// versions one after the other, and a delete waits for them. Unlike
/// `FOR UPDATE` the lock lets other group writes lock this group as a
/// member they add (`FOR KEY SHARE`): two groups made members of each other
/// at once each held its own row and waited for the other's, a deadlock.
pub fn get_for_change(
    conn: &mut AnyConnection,
    connection: &str,
    id: &str,
) -> Result<Option<ScimGroupRow>, StoreError> {
    get_locked(conn, connection, id, RowLock::NoKeyUpdate)
}

fn get_locked(
    conn: &mut AnyConnection,
    connection: &str,
    id: &str,
    lock: RowLock,
) -> Result<Option<ScimGroupRow>, StoreError> {
    let AnyConnection::Postgresql(c) = conn else { return get(conn, connection, id) };
    let query = g::scim_groups
        .filter(g::scim_connection_id.eq(connection))
        .filter(g::id.eq(id))
        .select(ScimGroupRow::as_select());
    Ok(first_locked!(query, lock, c)?)
}

/// The members of a group as stored: id and the display text a client gave.
pub fn member_refs(conn: &mut AnyConnection, group: &str) -> Result<Vec<MemberRef>, StoreError> {
    let rows: Vec<(String, Option<String>)> = on_backend!(conn, |c| gm::scim_group_members
        .filter(gm::group_id.eq(group))
        .select((gm::member_id, gm::display))
        .order(gm::member_id.asc())
        .load(c))?;
    Ok(rows.into_iter().map(|(value, display)| MemberRef { value, display }).collect())
}

/// A group's members as [`member_refs`] reads them, each with its type
/// (`User` or `Group`): for a PATCH that takes the group as a document,
/// whose value filters may compare `type`.
pub fn member_refs_typed(conn: &mut AnyConnection, group: &str) -> Result<Vec<(MemberRef, String)>, StoreError> {
    let rows: Vec<(String, Option<String>, String)> = on_backend!(conn, |c| gm::scim_group_members
        .filter(gm::group_id.eq(group))
        .select((gm::member_id, gm::display, gm::member_type))
        .order(gm::member_id.asc())
        .load(c))?;
    Ok(rows.into_iter().map(|(value, display, kind)| (MemberRef { value, display }, kind)).collect())
}

/// Those of `ids` that are members of a group, as [`member_refs`] reads
/// them (sorted by id): the stored state of the members a PATCH names, read
/// by primary key whatever the group's size.
pub fn member_refs_among(conn: &mut AnyConnection, group: &str, ids: &[String]) -> Result<Vec<MemberRef>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, Option<String>)> = gm::scim_group_members
            .filter(gm::group_id.eq(group))
            .filter(gm::member_id.eq_any(chunk))
            .select((gm::member_id, gm::display))
            .load(conn)?;
        out.extend(rows.into_iter().map(|(value, display)| MemberRef { value, display }));
    }
    out.sort_by(|a, b| a.value.cmp(&b.value));
    Ok(out)
}

/// Replaces a group's document and members (PUT, or a PATCH result) with
/// `doc` and `refs`, the new document as [`split_members`] split it.
/// `stored` are the group's members as [`member_refs`] read them in this
/// transaction (the caller has them already: the transform ran on them).
/// Only membership rows that change are written, so `stored` and `refs` may
/// also both be limited to the same ids, the members a PATCH names (as
/// [`member_refs_among`] reads them): the rest stay as they are.
pub fn replace(
    conn: &mut AnyConnection,
    current: &ScimGroupRow,
    stored: &[MemberRef],
    (doc, refs): (Value, Vec<MemberRef>),
    ignore_unknown: bool,
    now: DateTime<Utc>,
) -> Result<Written, GroupWriteError> {
    let display = doc.get("displayName").and_then(Value::as_str).unwrap_or_default().to_string();
    if display.to_lowercase() != current.display_name_lower {
        check_display_name(conn, &current.scim_connection_id, &display.to_lowercase(), Some(&current.id))?;
    }
    // Each member's stored display text, to rewrite only the ones that change.
    let stored: HashMap<&str, &Option<String>> = stored.iter().map(|m| (m.value.as_str(), &m.display)).collect();
    let wanted: HashSet<&str> = refs.iter().map(|r| r.value.as_str()).collect();
    let mut added: Vec<String> =
        refs.iter().filter(|r| !stored.contains_key(r.value.as_str())).map(|r| r.value.clone()).collect();
    added.sort_unstable();
    if added.contains(&current.id) {
        return Err(GroupWriteError::SelfMember);
    }
    let mut removed: Vec<String> = stored.keys().filter(|m| !wanted.contains(*m)).map(|m| m.to_string()).collect();
    removed.sort_unstable();
    let mut ignored = Vec::new();
    let new_members = resolve_members(conn, &current.scim_connection_id, &added, ignore_unknown, &mut ignored)?;
    let removed = member_types(conn, &current.id, removed)?;
    for chunk in removed.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().chunks(500) {
        diesel::delete(gm::scim_group_members.filter(gm::group_id.eq(&current.id)).filter(gm::member_id.eq_any(chunk)))
            .execute(conn)?;
    }
    insert_members(conn, &current.id, &new_members, &refs)?;
    // Kept members whose display text changed, set or cleared (a PATCH's
    // member edits carry a kept member's stored text when it sent none).
    for r in refs.iter().filter(|r| stored.get(r.value.as_str()).is_some_and(|d| **d != r.display)) {
        diesel::update(gm::scim_group_members.filter(gm::group_id.eq(&current.id)).filter(gm::member_id.eq(&r.value)))
            .set(gm::display.eq(&r.display))
            .execute(conn)?;
    }
    let mut row = current.clone();
    row.display_name_lower = display.to_lowercase();
    row.display_name = display;
    row.external_id = doc.get("externalId").and_then(Value::as_str).map(str::to_string);
    row.resource = tandem_scim::to_text(&doc);
    row.version += 1;
    row.updated_at = micros(now).max(current.updated_at + 1);
    diesel::update(g::scim_groups.filter(g::id.eq(&row.id)))
        .set((
            g::display_name.eq(&row.display_name),
            g::display_name_lower.eq(&row.display_name_lower),
            g::external_id.eq(&row.external_id),
            g::resource.eq(&row.resource),
            g::version.eq(row.version),
            g::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
        .map_err(|e| StoreError::from(e).unique_as(|| GroupWriteError::DisplayNameTaken(row.display_name.clone())))?;
    Ok(Written { row, ignored, added: new_members, removed })
}

/// `members` of `group` (as stored, in that order) with their types, read
/// before they are removed: the events of their removal say which. A
/// member whose row is gone meanwhile (its own deletion, on PostgreSQL,
/// committed between the reads) is left out: this write does not remove
/// it, and that deletion's event said so.
fn member_types(
    conn: &mut AnyConnection,
    group: &str,
    members: Vec<String>,
) -> Result<Vec<(String, &'static str)>, StoreError> {
    let mut types = HashMap::with_capacity(members.len());
    for chunk in members.chunks(500) {
        let rows: Vec<(String, String)> = gm::scim_group_members
            .filter(gm::group_id.eq(group))
            .filter(gm::member_id.eq_any(chunk))
            .select((gm::member_id, gm::member_type))
            .load(conn)?;
        types.extend(rows);
    }
    Ok(members
        .into_iter()
        .filter_map(|id| {
            let kind = if types.get(&id)? == "Group" { "Group" } else { "User" };
            Some((id, kind))
        })
        .collect())
}

/// The groups `member` (a user or a group) is a member of.
pub fn holding(conn: &mut AnyConnection, member: &str) -> Result<Vec<String>, StoreError> {
    Ok(gm::scim_group_members.filter(gm::member_id.eq(member)).select(gm::group_id).load(conn)?)
}

/// Marks `ids` (groups of `connection`) changed at `now`: a new version and
/// `lastModified`, for a change of their members made by another
/// resource's write (a member deleted). Run in a transaction of its own,
/// after that write: taking these group locks inside it, after the
/// member's, would be the reverse of a group write's order (its own row,
/// then its members') and could deadlock on PostgreSQL.
pub fn touch(
    conn: &mut AnyConnection,
    connection: &str,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut touched = 0;
    // In chunks, as every `IN` list here: SQLite binds at most 32,766 values.
    for chunk in ids.chunks(500) {
        touched +=
            diesel::update(g::scim_groups.filter(g::scim_connection_id.eq(connection)).filter(g::id.eq_any(chunk)))
                .set((g::version.eq(g::version + 1), g::updated_at.eq(micros(now))))
                .execute(conn)?;
    }
    Ok(touched)
}

/// Deletes a group and its memberships (as member and as container).
pub fn delete(conn: &mut AnyConnection, connection: &str, id: &str) -> Result<Option<ScimGroupRow>, StoreError> {
    let Some(row) = get_for_update(conn, connection, id)? else {
        return Ok(None);
    };
    diesel::delete(gm::scim_group_members.filter(gm::group_id.eq(id).or(gm::member_id.eq(id)))).execute(conn)?;
    diesel::delete(g::scim_groups.filter(g::id.eq(id))).execute(conn)?;
    Ok(Some(row))
}

/// One page of groups matching `filter`, ordered by id; and the total.
pub fn search(
    conn: &mut AnyConnection,
    connection: &str,
    filter: Option<&Filter>,
    start_index: u64,
    count: u64,
) -> Result<Result<(i64, Vec<ScimGroupRow>), ScimError>, StoreError> {
    query::paged::<ScimGroupRow>(
        conn,
        "scim_groups",
        "g",
        ResourceType::Group,
        "",
        connection,
        filter,
        start_index,
        count,
    )
}

/// A member row with what its display text may come from: the text the
/// client sent, else the user's displayName or userName, else the group's
/// displayName.
type MemberRow = (String, String, String, Option<String>, Option<String>, Option<String>, Option<String>);

/// Members of each group with display names: group id → members. Each
/// member row finds its user or group by primary key in the same query, a
/// static one whose rows are read by position (a group of 10,000 members is
/// 10,000 rows: reading them by column name cost a tenth of its answer).
/// How many members each of `group_ids` has (groups without any are absent).
pub fn member_counts(conn: &mut AnyConnection, group_ids: &[String]) -> Result<HashMap<String, i64>, StoreError> {
    let mut out = HashMap::new();
    for chunk in group_ids.chunks(500) {
        let rows: Vec<(String, i64)> = gm::scim_group_members
            .filter(gm::group_id.eq_any(chunk))
            .group_by(gm::group_id)
            .select((gm::group_id, diesel::dsl::count_star()))
            .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
}

pub fn members_of(conn: &mut AnyConnection, group_ids: &[String]) -> Result<HashMap<String, Vec<Member>>, StoreError> {
    let mut out: HashMap<String, Vec<Member>> = HashMap::new();
    macro_rules! member_rows {
        ($c:expr, $which:expr) => {
            gm::scim_group_members
                .left_join(u::scim_users.on(gm::member_type.eq("User").and(u::id.eq(gm::member_id))))
                .left_join(g::scim_groups.on(gm::member_type.eq("Group").and(g::id.eq(gm::member_id))))
                .filter($which)
                .select((
                    gm::group_id,
                    gm::member_id,
                    gm::member_type,
                    gm::display,
                    u::display_name.nullable(),
                    u::user_name.nullable(),
                    g::display_name.nullable(),
                ))
                .order((gm::group_id.asc(), gm::member_id.asc()))
                .load::<MemberRow>($c)
        };
    }
    for chunk in group_ids.chunks(500) {
        // One group (a GET, a write's answer) is one text: kept prepared.
        let rows: Vec<MemberRow> = match chunk {
            [one] => on_backend!(conn, |c| member_rows!(c, gm::group_id.eq(one)))?,
            _ => on_backend!(conn, |c| member_rows!(c, gm::group_id.eq_any(chunk)))?,
        };
        for (group, value, kind, sent, user_display, user_name, group_display) in rows {
            let display = sent.or(user_display).or(user_name).or(group_display);
            out.entry(group).or_default().push(Member { value, kind, display });
        }
    }
    Ok(out)
}

/// Groups of a connection, a page at a time (management API).
pub fn list(
    conn: &mut AnyConnection,
    connection: &str,
    after: Option<&str>,
    limit: i64,
    updated_since: Option<i64>,
) -> Result<Vec<ScimGroupRow>, StoreError> {
    let mut q = g::scim_groups
        .filter(g::scim_connection_id.eq(connection))
        .select(ScimGroupRow::as_select())
        .order(g::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(g::id.gt(after.to_string()));
    }
    // Changed (created, renamed, members added or removed) since then.
    if let Some(since) = updated_since {
        q = q.filter(g::updated_at.ge(since));
    }
    Ok(q.load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn split_members_keeps_the_first_of_each_value_in_order() {
        let doc = json!({"displayName": "g", "members": [
            {"value": "b", "display": "B"}, {"value": "a"}, {"value": "b", "display": "again"}, {"display": "no value"}, {"value": "c"}
        ]});
        let (rest, refs) = split_members(doc);
        assert_eq!(rest, json!({"displayName": "g"}));
        let got: Vec<(&str, Option<&str>)> = refs.iter().map(|r| (r.value.as_str(), r.display.as_deref())).collect();
        assert_eq!(got, vec![("b", Some("B")), ("a", None), ("c", None)]);
    }

    #[test]
    fn touch_takes_more_ids_than_sqlite_binds_in_one_statement() {
        let (store, _dir) = crate::test_store();
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let later = now + chrono::Duration::seconds(5);
        let (connection, groups) = store
            .write_blocking(move |c| {
                let (conn, _, _) = crate::scim_connections::create(c, "acme", None, "reject", now)?;
                let mut groups = Vec::new();
                for name in ["first", "second", "third"] {
                    let written =
                        insert(c, &conn.id, json!({"displayName": name}), false, now).map_err(|e| match e {
                            GroupWriteError::Store(e) => e,
                            other => StoreError::Conflict(format!("{other:?}")),
                        })?;
                    groups.push(written.row.id);
                }
                Ok((conn.id, groups))
            })
            .unwrap();
        // The groups sit in the first chunk, past SQLite's bind limit, and in the last one.
        let mut ids: Vec<String> = (0..40_000).map(|i| format!("g{i}")).collect();
        ids[0] = groups[0].clone();
        ids[33_000] = groups[1].clone();
        ids[39_999] = groups[2].clone();
        let touched = store.write_blocking(|c| touch(c, &connection, &ids, later)).unwrap();
        assert_eq!(touched, 3);
        for id in &groups {
            let row = store.read_blocking(|c| get(c, &connection, id)).unwrap().unwrap();
            assert_eq!((row.version, row.updated_at), (2, crate::micros(later)), "{id}");
        }
        // Another connection's ids are not its to touch.
        assert_eq!(store.write_blocking(|c| touch(c, "other", &groups, later)).unwrap(), 0);
    }
}

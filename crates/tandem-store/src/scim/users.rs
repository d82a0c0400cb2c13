//! SCIM users: create, read, replace, tombstone, search.

use super::filter_sql::Bind;
use super::query;
use crate::schema::scim_group_members::dsl as gm;
use crate::schema::scim_groups::dsl as g;
use crate::schema::scim_users::dsl as u;
use crate::{micros, AnyConnection, RowLock, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use tandem_core::matching::{local_part_lower, ScimKey};
use tandem_scim::filter::{CompValue, CompareOp, Filter};
use tandem_scim::schema::ResourceType;
use tandem_scim::ScimError;

// A create as a static statement that stays prepared: diesel builds an
// INSERT's text again on every call when the row has optional columns.
crate::fixed_sql!(
    InsertUser = "INSERT INTO scim_users (id, scim_connection_id, user_name, user_name_lower, user_name_local_lower, \
         external_id, display_name, active, resource, version, created_at, updated_at, deleted_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);

crate::fixed_sql!(
    /// [`InsertUser`] on PostgreSQL: the row is inserted only under a
    /// connection it finds, and locks that connection (`FOR KEY SHARE`)
    /// before it takes its userName in the unique index. The foreign key's
    /// own check locks the connection only after, and a create waiting there
    /// for the connection's delete, holding the userName a rename of
    /// another user waited for, while the delete waited for that user,
    /// deadlocked the three (see `scim_connections::delete`).
    InsertUserUnderConnection = "INSERT INTO scim_users (id, scim_connection_id, user_name, user_name_lower, \
         user_name_local_lower, external_id, display_name, active, resource, version, created_at, updated_at, \
         deleted_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM scim_connections WHERE id = ? FOR KEY SHARE"
);

/// A stored SCIM user. `resource` is the canonical JSON without `id`,
/// `meta` and `groups`, which are rendered from the columns.
#[derive(Clone, Debug, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = crate::schema::scim_users)]
pub struct ScimUserRow {
    pub id: String,
    pub scim_connection_id: String,
    pub user_name: String,
    pub user_name_lower: String,
    pub user_name_local_lower: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    pub resource: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

impl ScimUserRow {
    /// The stored document.
    pub fn document(&self) -> Value {
        serde_json::from_str(&self.resource).unwrap_or(Value::Null)
    }
}

/// Why a user write was refused.
#[derive(Debug)]
pub enum UserWriteError {
    /// Another live user of the connection has this userName (case-insensitively).
    UserNameTaken(String),
    Store(StoreError),
}

impl From<StoreError> for UserWriteError {
    fn from(e: StoreError) -> Self {
        UserWriteError::Store(e)
    }
}

impl From<diesel::result::Error> for UserWriteError {
    fn from(e: diesel::result::Error) -> Self {
        UserWriteError::Store(StoreError::Query(e))
    }
}

struct Keys {
    user_name: String,
    user_name_lower: String,
    local_lower: String,
    external_id: Option<String>,
    display_name: Option<String>,
    active: bool,
}

fn keys_of(resource: &Value) -> Keys {
    let user_name = resource.get("userName").and_then(Value::as_str).unwrap_or_default().to_string();
    Keys {
        user_name_lower: user_name.to_lowercase(),
        local_lower: local_part_lower(&user_name),
        user_name,
        external_id: resource.get("externalId").and_then(Value::as_str).map(str::to_string),
        display_name: resource.get("displayName").and_then(Value::as_str).map(str::to_string),
        // A user the IdP did not mark inactive is active.
        active: resource.get("active").and_then(Value::as_bool).unwrap_or(true),
    }
}

fn check_user_name(
    conn: &mut AnyConnection,
    connection: &str,
    lower: &str,
    except: Option<&str>,
) -> Result<(), UserWriteError> {
    let clash: Option<(String, String)> = u::scim_users
        .filter(u::scim_connection_id.eq(connection))
        .filter(u::user_name_lower.eq(lower))
        .filter(u::deleted_at.is_null())
        .select((u::id, u::user_name))
        .first(conn)
        .optional()?;
    match clash {
        Some((id, name)) if Some(id.as_str()) != except => Err(UserWriteError::UserNameTaken(name)),
        _ => Ok(()),
    }
}

/// Creates a user from a normalized resource.
pub fn insert(
    conn: &mut AnyConnection,
    connection: &str,
    resource: &Value,
    now: DateTime<Utc>,
) -> Result<ScimUserRow, UserWriteError> {
    insert_written(conn, connection, tandem_core::new_id(), resource, tandem_scim::to_text(resource), now)
}

/// [`insert`] with the user's id chosen and its resource already written as
/// `text` (`to_text(resource)`), so the caller can write its answer in the
/// same pass ([`tandem_scim::resource::write_pair`]).
pub fn insert_written(
    conn: &mut AnyConnection,
    connection: &str,
    id: String,
    resource: &Value,
    text: String,
    now: DateTime<Utc>,
) -> Result<ScimUserRow, UserWriteError> {
    let k = keys_of(resource);
    // The partial unique index refuses a taken userName (race-free): no pre-check query.
    let row = ScimUserRow {
        id,
        scim_connection_id: connection.to_string(),
        user_name: k.user_name,
        user_name_lower: k.user_name_lower,
        user_name_local_lower: k.local_lower,
        external_id: k.external_id,
        display_name: k.display_name,
        active: k.active,
        resource: text,
        version: 1,
        created_at: micros(now),
        updated_at: micros(now),
        deleted_at: None,
    };
    let binds = [
        Bind::Text(row.id.clone()),
        Bind::Text(row.scim_connection_id.clone()),
        Bind::Text(row.user_name.clone()),
        Bind::Text(row.user_name_lower.clone()),
        Bind::Text(row.user_name_local_lower.clone()),
        Bind::OptText(row.external_id.clone()),
        Bind::OptText(row.display_name.clone()),
        Bind::Bool(row.active),
        Bind::Text(row.resource.clone()),
        Bind::Int(row.version),
        Bind::Int(row.created_at),
        Bind::Int(row.updated_at),
        Bind::OptInt(row.deleted_at),
    ];
    let taken = |e: StoreError| e.unique_as(|| UserWriteError::UserNameTaken(row.user_name.clone()));
    if let AnyConnection::Postgresql(_) = conn {
        let mut binds = binds.to_vec();
        binds.push(Bind::Text(row.scim_connection_id.clone()));
        if query::execute_fixed::<InsertUserUnderConnection>(conn, &binds).map_err(taken)? == 0 {
            return Err(UserWriteError::Store(StoreError::Gone("the SCIM connection".into())));
        }
    } else {
        query::execute_fixed::<InsertUser>(conn, &binds).map_err(taken)?;
    }
    Ok(row)
}

/// A live (not deleted) user.
pub fn get(conn: &mut AnyConnection, connection: &str, id: &str) -> Result<Option<ScimUserRow>, StoreError> {
    Ok(on_backend!(conn, |c| u::scim_users
        .filter(u::scim_connection_id.eq(connection))
        .filter(u::id.eq(id))
        .filter(u::deleted_at.is_null())
        .select(ScimUserRow::as_select())
        .first(c)
        .optional())?)
}

/// [`get`] for a write transaction that deletes the user: on PostgreSQL
/// the row stays locked (`FOR UPDATE`) until the transaction ends. A group
/// write adding the user as a member locks it `FOR KEY SHARE` (see
/// `scim::groups`), so the two take turns: the delete then removes the
/// membership, or the group write finds the user gone. SQLite's writes are
/// one at a time already.
pub fn get_for_update(conn: &mut AnyConnection, connection: &str, id: &str) -> Result<Option<ScimUserRow>, StoreError> {
    get_locked(conn, connection, id, RowLock::Update)
}

/// [`get`] for a write that changes the user and keeps it (a PUT or
/// PATCH): on PostgreSQL the row stays locked (`FOR NO KEY UPDATE`) until
/// the transaction ends, so a concurrent update of the same user waits and
/// then reads this one's result instead of overwriting it. It does not wait
/// for group writes that add the user as a member (nor they for it): a
/// group PATCH of thousands of members holds them for as long as it runs.
pub fn get_for_change(conn: &mut AnyConnection, connection: &str, id: &str) -> Result<Option<ScimUserRow>, StoreError> {
    get_locked(conn, connection, id, RowLock::NoKeyUpdate)
}

fn get_locked(
    conn: &mut AnyConnection,
    connection: &str,
    id: &str,
    lock: RowLock,
) -> Result<Option<ScimUserRow>, StoreError> {
    let AnyConnection::Postgresql(c) = conn else { return get(conn, connection, id) };
    let query = u::scim_users
        .filter(u::scim_connection_id.eq(connection))
        .filter(u::id.eq(id))
        .filter(u::deleted_at.is_null())
        .select(ScimUserRow::as_select());
    Ok(first_locked!(query, lock, c)?)
}

/// Replaces a user's document (PUT, or the result of a PATCH).
pub fn replace(
    conn: &mut AnyConnection,
    current: &ScimUserRow,
    resource: &Value,
    now: DateTime<Utc>,
) -> Result<ScimUserRow, UserWriteError> {
    let k = keys_of(resource);
    if k.user_name_lower != current.user_name_lower {
        check_user_name(conn, &current.scim_connection_id, &k.user_name_lower, Some(&current.id))?;
    }
    let mut row = current.clone();
    row.user_name = k.user_name;
    row.user_name_lower = k.user_name_lower;
    row.user_name_local_lower = k.local_lower;
    row.external_id = k.external_id;
    row.display_name = k.display_name;
    // An update that leaves `active` unassigned (a PATCH that removes it)
    // keeps the user's standing: a missing `active` reads as true only for
    // a new user, so a deactivated one is not let back in by omission.
    row.active = resource.get("active").and_then(Value::as_bool).unwrap_or(current.active);
    row.resource = tandem_scim::to_text(resource);
    row.version += 1;
    row.updated_at = micros(now).max(current.updated_at + 1);
    diesel::update(u::scim_users.filter(u::id.eq(&row.id)))
        .set((
            u::user_name.eq(&row.user_name),
            u::user_name_lower.eq(&row.user_name_lower),
            u::user_name_local_lower.eq(&row.user_name_local_lower),
            u::external_id.eq(&row.external_id),
            u::display_name.eq(&row.display_name),
            u::active.eq(row.active),
            u::resource.eq(&row.resource),
            u::version.eq(row.version),
            u::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
        .map_err(|e| StoreError::from(e).unique_as(|| UserWriteError::UserNameTaken(row.user_name.clone())))?;
    Ok(row)
}

/// Deletes a user from SCIM's view: a tombstone stays for the login join,
/// and its group memberships go. Returns the row as it was, if live.
pub fn tombstone(
    conn: &mut AnyConnection,
    connection: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<ScimUserRow>, StoreError> {
    let Some(row) = get(conn, connection, id)? else {
        return Ok(None);
    };
    diesel::update(u::scim_users.filter(u::id.eq(id)))
        .set((u::deleted_at.eq(micros(now)), u::updated_at.eq(micros(now))))
        .execute(conn)?;
    diesel::delete(gm::scim_group_members.filter(gm::member_id.eq(id))).execute(conn)?;
    Ok(Some(row))
}

/// The condition `paged` adds for live users (tombstones are not SCIM resources).
pub const LIVE: &str = " AND u.deleted_at IS NULL";

/// One page of live users matching `filter`, ordered by id; and the total.
pub fn search(
    conn: &mut AnyConnection,
    connection: &str,
    filter: Option<&Filter>,
    start_index: u64,
    count: u64,
) -> Result<Result<(i64, Vec<ScimUserRow>), ScimError>, StoreError> {
    if let Some(page) = point_search(conn, connection, filter, start_index, count)? {
        return Ok(Ok(page));
    }
    query::paged::<ScimUserRow>(
        conn,
        "scim_users",
        "u",
        ResourceType::User,
        LIVE,
        connection,
        filter,
        start_index,
        count,
    )
}

/// Whether `filter` is one `eq` test of a column with a lookup index
/// (`userName`, `externalId`, `id`): what identity providers send to find
/// one user, answered from the index in microseconds however many users
/// the connection holds.
pub fn is_point_search(filter: Option<&Filter>) -> bool {
    match filter {
        Some(Filter::Compare { path, op: CompareOp::Eq, .. }) => {
            path.sub_attr.is_none()
                && path.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(tandem_scim::schema::USER_SCHEMA))
                && ["userName", "externalId", "id"].iter().any(|a| a.eq_ignore_ascii_case(&path.attr))
        }
        _ => false,
    }
}

/// The first page of a point search (see [`is_point_search`]) with a text
/// value, as static queries on the concrete connection: they stay prepared
/// under their type, so nothing is built, rendered or hashed per call (the
/// general path builds its SQL, ~15 % of a lookup's instructions). The same
/// conditions as the general path's: `userName` lower-cased against its
/// lower-cased column, `externalId` and `id` exact, live users only.
///
/// The query has no ORDER BY: at most a page and one more row is read and
/// sorted here. With `ORDER BY id LIMIT n`, a planner that misjudges how
/// many rows match may walk the (connection, id) index in order and filter,
/// a scan of the whole connection; without it, only the equality's index
/// answers. `None` when it does not apply, or more than a page matches
/// (several users sharing an externalId: the general path pages them).
fn point_search(
    conn: &mut AnyConnection,
    connection: &str,
    filter: Option<&Filter>,
    start_index: u64,
    count: u64,
) -> Result<Option<(i64, Vec<ScimUserRow>)>, StoreError> {
    let Some((key, limit)) = point_key(filter, start_index, count) else { return Ok(None) };
    macro_rules! live {
        ($cond:expr) => {
            on_backend!(&mut *conn, |c| u::scim_users
                .filter(u::scim_connection_id.eq(connection))
                .filter($cond)
                .filter(u::deleted_at.is_null())
                .select(ScimUserRow::as_select())
                .limit(limit)
                .load(c))?
        };
    }
    let rows: Vec<ScimUserRow> = match &key {
        PointKey::UserNameLower(v) => live!(u::user_name_lower.eq(v)),
        PointKey::ExternalId(v) => live!(u::external_id.eq(v)),
        PointKey::Id(v) => live!(u::id.eq(v)),
    };
    Ok(within_page(rows, count, |r| &r.id).map(|rows| (rows.len() as i64, rows)))
}

/// The column a point search compares, with its value as compared.
enum PointKey {
    /// `userName`, lower-cased against its lower-cased column.
    UserNameLower(String),
    ExternalId(String),
    Id(String),
}

/// What a point search (see [`is_point_search`]) with a text value looks
/// up on the first page, and how many rows it reads (a page and one more);
/// `None` when it does not apply.
fn point_key(filter: Option<&Filter>, start_index: u64, count: u64) -> Option<(PointKey, i64)> {
    let Some(Filter::Compare { path, value: CompValue::String(value), .. }) = filter else { return None };
    if start_index != 1 || count == 0 || !is_point_search(filter) {
        return None;
    }
    let key = if path.attr.eq_ignore_ascii_case("userName") {
        PointKey::UserNameLower(value.to_lowercase())
    } else if path.attr.eq_ignore_ascii_case("externalId") {
        PointKey::ExternalId(value.clone())
    } else {
        PointKey::Id(value.clone())
    };
    Some((key, i64::try_from(count.saturating_add(1)).unwrap_or(i64::MAX)))
}

/// A point search's rows sorted by id, or `None` when more than a page
/// matched (several users sharing an externalId: the general path pages them).
fn within_page<T>(mut rows: Vec<T>, count: u64, id: impl Fn(&T) -> &str) -> Option<Vec<T>> {
    if rows.len() as u64 > count {
        return None;
    }
    rows.sort_unstable_by(|a, b| id(a).cmp(id(b)));
    Some(rows)
}

/// The groups of the user `u` as [`groups_of`] gives them, as one JSON
/// text (`[["group id", "displayName"], …]`, by group id), or NULL.
macro_rules! groups_json_sql {
    () => {
        "(SELECT json_agg(json_build_array(g.id, g.display_name) ORDER BY g.id)::text \
         FROM scim_group_members gm JOIN scim_groups g ON g.id = gm.group_id WHERE gm.member_id = u.id)"
    };
}

/// A point search's live users with their groups ([`groups_json_sql`]).
macro_rules! with_groups_sql {
    ($column:literal) => {
        concat!(
            "SELECT u.*, ",
            groups_json_sql!(),
            " AS groups_json FROM scim_users u WHERE u.scim_connection_id = ? AND u.",
            $column,
            " = ? AND u.deleted_at IS NULL LIMIT ?"
        )
    };
}
crate::fixed_sql!(UserNameWithGroups = with_groups_sql!("user_name_lower"));
crate::fixed_sql!(ExternalIdWithGroups = with_groups_sql!("external_id"));
crate::fixed_sql!(IdWithGroups = with_groups_sql!("id"));

#[derive(QueryableByName)]
struct RowWithGroups {
    #[diesel(embed)]
    user: ScimUserRow,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    groups_json: Option<String>,
}

/// A page of users and, when `want_groups`, each one's groups (see
/// [`groups_of`]). On PostgreSQL a point search (see [`is_point_search`])
/// reads both in one statement, one round trip instead of two; otherwise
/// [`search`] and then [`groups_of`].
pub fn search_with_groups(
    conn: &mut AnyConnection,
    connection: &str,
    filter: Option<&Filter>,
    (start_index, count): (u64, u64),
    want_groups: bool,
) -> Result<Result<Page, ScimError>, StoreError> {
    if want_groups && matches!(conn, AnyConnection::Postgresql(_)) {
        if let Some(page) = point_search_with_groups(conn, connection, filter, start_index, count)? {
            return Ok(Ok(page));
        }
    }
    let page = match search(conn, connection, filter, start_index, count)? {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let groups = if want_groups {
        let ids: Vec<String> = page.1.iter().map(|r| r.id.clone()).collect();
        groups_of(conn, &ids)?
    } else {
        HashMap::new()
    };
    Ok(Ok((page, groups)))
}

/// A page of users with their total, and each one's groups by user id.
pub type Page = ((i64, Vec<ScimUserRow>), HashMap<String, Vec<(String, String)>>);

/// [`point_search`] with each user's groups in the same statement; the same
/// conditions, the same `None` cases.
fn point_search_with_groups(
    conn: &mut AnyConnection,
    connection: &str,
    filter: Option<&Filter>,
    start_index: u64,
    count: u64,
) -> Result<Option<Page>, StoreError> {
    let Some((key, limit)) = point_key(filter, start_index, count) else { return Ok(None) };
    let binds = |value: &str| [Bind::Text(connection.into()), Bind::Text(value.into()), Bind::Int(limit)];
    let found: Vec<RowWithGroups> = match &key {
        PointKey::UserNameLower(v) => query::load_fixed::<UserNameWithGroups, _>(conn, &binds(v))?,
        PointKey::ExternalId(v) => query::load_fixed::<ExternalIdWithGroups, _>(conn, &binds(v))?,
        PointKey::Id(v) => query::load_fixed::<IdWithGroups, _>(conn, &binds(v))?,
    };
    let Some(found) = within_page(found, count, |r| &r.user.id) else { return Ok(None) };
    let mut rows = Vec::with_capacity(found.len());
    let mut groups = HashMap::new();
    for row in found {
        rows.push(row.split_into(&mut groups)?);
    }
    Ok(Some(((rows.len() as i64, rows), groups)))
}

impl RowWithGroups {
    /// The user, its groups put into `groups` by user id.
    fn split_into(self, groups: &mut HashMap<String, Vec<(String, String)>>) -> Result<ScimUserRow, StoreError> {
        let RowWithGroups { user, groups_json } = self;
        if let Some(text) = groups_json {
            let list: Vec<(String, String)> = serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("a user's groups as the database gave them: {e}")))?;
            groups.insert(user.id.clone(), list);
        }
        Ok(user)
    }
}

/// The groups of each user: user id → [(group id, group displayName)].
pub fn groups_of(
    conn: &mut AnyConnection,
    user_ids: &[String],
) -> Result<HashMap<String, Vec<(String, String)>>, StoreError> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    if let [one] = user_ids {
        // The common case (a GET, a login's join) as a query that stays prepared.
        let rows: Vec<(String, String)> = on_backend!(conn, |c| gm::scim_group_members
            .inner_join(g::scim_groups)
            .filter(gm::member_id.eq(one))
            .select((g::id, g::display_name))
            .order(g::id.asc())
            .load(c))?;
        if !rows.is_empty() {
            out.insert(one.clone(), rows);
        }
        return Ok(out);
    }
    for chunk in user_ids.chunks(500) {
        let rows: Vec<(String, String, String)> = gm::scim_group_members
            .inner_join(g::scim_groups)
            .filter(gm::member_id.eq_any(chunk))
            .select((gm::member_id, g::id, g::display_name))
            .order(g::id.asc())
            .load(conn)?;
        for (member, gid, name) in rows {
            out.entry(member).or_default().push((gid, name));
        }
    }
    Ok(out)
}

/// Users, tombstones included, whose `key` column equals `value`: the
/// candidates of a login join (an indexed lookup).
pub fn find_by_key(
    conn: &mut AnyConnection,
    connection: &str,
    key: ScimKey,
    value: &str,
) -> Result<Vec<ScimUserRow>, StoreError> {
    // One static query per key (not a boxed one): each stays prepared on its
    // connection. `live_first` orders live users before tombstones: past the
    // limit only tombstones are cut (an IdP that deleted and re-created a
    // user many times must not hide the live one).
    macro_rules! by {
        (order $order:expr; $($cond:expr),+) => {
            on_backend!(&mut *conn, |c| u::scim_users
                .filter(u::scim_connection_id.eq(connection))
                $(.filter($cond))+
                .select(ScimUserRow::as_select())
                .order($order)
                .limit(50)
                .load(c))?
        };
        (live_first $($cond:expr),+) => { by!(order (u::deleted_at.is_not_null().asc(), u::id.asc()); $($cond),+) };
        ($($cond:expr),+) => { by!(order u::id.asc(); $($cond),+) };
    }
    // userName has one index over live users (unique) and one over
    // tombstones: each query names its side so its partial index answers it.
    let mut by_name = |lower: String, exact: Option<&str>| -> Result<Vec<ScimUserRow>, StoreError> {
        let mut found = match exact {
            Some(e) => by!(u::user_name_lower.eq(&lower), u::user_name.eq(e), u::deleted_at.is_null()),
            None => by!(u::user_name_lower.eq(&lower), u::deleted_at.is_null()),
        };
        found.extend(match exact {
            Some(e) => by!(u::user_name_lower.eq(&lower), u::user_name.eq(e), u::deleted_at.is_not_null()),
            None => by!(u::user_name_lower.eq(&lower), u::deleted_at.is_not_null()),
        });
        found.truncate(50);
        Ok(found)
    };
    Ok(match key {
        // An exact userName is also a lower-cased one: the lower-cased indexes answer it.
        ScimKey::UserName => by_name(value.to_lowercase(), Some(value))?,
        ScimKey::UserNameLower => by_name(value.to_string(), None)?,
        ScimKey::UserNameLocalLower => {
            let text = |v: &str| Bind::Text(v.to_string());
            query::load_fixed::<LocalPartCandidates, _>(
                conn,
                &[text(connection), text(value), text(connection), text(value)],
            )?
        }
        ScimKey::ExternalId => by!(live_first u::external_id.eq(value)),
    })
}

/// A login join's candidates in one PostgreSQL statement, with each one's
/// groups as [`with_groups_sql`] gives them: live users first, then
/// tombstones, 50 at most. `$where` names the key; its `?`s are bound by
/// [`find_by_key_with_groups`]. A userName is looked up on each side of its
/// two partial indexes (live, tombstones) and the two put together.
macro_rules! candidates_sql {
    (split $where:literal) => {
        concat!(
            "SELECT u.*, ",
            groups_json_sql!(),
            " AS groups_json FROM ((SELECT * FROM scim_users WHERE scim_connection_id = ? AND ",
            $where,
            " AND deleted_at IS NULL ORDER BY id LIMIT 50) UNION ALL (SELECT * FROM scim_users \
             WHERE scim_connection_id = ? AND ",
            $where,
            " AND deleted_at IS NOT NULL ORDER BY id LIMIT 50)) u ORDER BY u.deleted_at IS NOT NULL, u.id LIMIT 50"
        )
    };
    ($where:literal) => {
        concat!(
            "SELECT u.*, ",
            groups_json_sql!(),
            " AS groups_json FROM scim_users u WHERE u.scim_connection_id = ? AND u.",
            $where,
            " ORDER BY u.deleted_at IS NOT NULL, u.id LIMIT 50"
        )
    };
}
crate::fixed_sql!(CandidatesByUserName = candidates_sql!(split "user_name_lower = ? AND user_name = ?"));
crate::fixed_sql!(CandidatesByUserNameLower = candidates_sql!(split "user_name_lower = ?"));
crate::fixed_sql!(
    CandidatesByLocalPart = candidates_sql!(
        "user_name_local_lower = ? AND (u.deleted_at IS NULL OR u.id IN (SELECT MAX(t.id) FROM scim_users t WHERE \
         t.scim_connection_id = ? AND t.user_name_local_lower = ? AND t.deleted_at IS NOT NULL GROUP BY \
         t.user_name_lower))"
    )
);
// The candidates of a local-part join: live users, and one tombstone per
// userName (its latest). What decides such a login is which userNames were
// deleted, not how often: an IdP that deleted and re-created one person
// fifty times must not push another person's tombstone past the limit,
// where a login of that person's email would pass as the live namesake.
crate::fixed_sql!(
    LocalPartCandidates = "SELECT * FROM scim_users WHERE scim_connection_id = ? AND user_name_local_lower = ? AND \
                           (deleted_at IS NULL OR id IN (SELECT MAX(id) FROM scim_users WHERE scim_connection_id = ? \
                           AND user_name_local_lower = ? AND deleted_at IS NOT NULL GROUP BY user_name_lower)) ORDER \
                           BY deleted_at IS NOT NULL, id LIMIT 50"
);
crate::fixed_sql!(CandidatesByExternalId = candidates_sql!("external_id = ?"));

/// [`find_by_key`] for a login join, with the candidates' groups by user id
/// ([`groups_of`]): on PostgreSQL in one statement, one round trip instead
/// of two or three (userName: live users, tombstones, then the groups); on
/// SQLite, where a statement costs no round trip, the candidates alone and
/// `None`, so that only the matched user's groups are read.
#[allow(clippy::type_complexity)]
pub fn find_by_key_with_groups(
    conn: &mut AnyConnection,
    connection: &str,
    key: ScimKey,
    value: &str,
) -> Result<(Vec<ScimUserRow>, Option<HashMap<String, Vec<(String, String)>>>), StoreError> {
    if !matches!(conn, AnyConnection::Postgresql(_)) {
        return Ok((find_by_key(conn, connection, key, value)?, None));
    }
    let text = |v: &str| Bind::Text(v.to_string());
    let found: Vec<RowWithGroups> = match key {
        ScimKey::UserName => {
            let side = [text(connection), text(&value.to_lowercase()), text(value)];
            let binds: Vec<Bind> = side.iter().chain(side.iter()).cloned().collect();
            query::load_fixed::<CandidatesByUserName, _>(conn, &binds)?
        }
        ScimKey::UserNameLower => {
            let binds = [text(connection), text(value), text(connection), text(value)];
            query::load_fixed::<CandidatesByUserNameLower, _>(conn, &binds)?
        }
        ScimKey::UserNameLocalLower => {
            let binds = [text(connection), text(value), text(connection), text(value)];
            query::load_fixed::<CandidatesByLocalPart, _>(conn, &binds)?
        }
        ScimKey::ExternalId => query::load_fixed::<CandidatesByExternalId, _>(conn, &[text(connection), text(value)])?,
    };
    let mut groups = HashMap::new();
    let rows = found.into_iter().map(|row| row.split_into(&mut groups)).collect::<Result<Vec<_>, _>>()?;
    Ok((rows, Some(groups)))
}

/// Live users of a connection, a page at a time (management API).
/// What the management API's list of a connection's users is narrowed to.
#[derive(Clone, Debug, Default)]
pub struct UserListQuery {
    /// Users with a larger id (the previous page's last).
    pub after: Option<String>,
    pub limit: i64,
    pub active: Option<bool>,
    /// Compared case-insensitively, as SCIM compares `userName`.
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    /// Users changed (created, updated, deactivated, deleted) at or after
    /// this time, in microseconds.
    pub updated_since: Option<i64>,
    /// Deleted users (tombstones) too.
    pub include_deleted: bool,
}

/// A page of a connection's users in id order.
pub fn list(conn: &mut AnyConnection, connection: &str, query: &UserListQuery) -> Result<Vec<ScimUserRow>, StoreError> {
    let mut q = u::scim_users
        .filter(u::scim_connection_id.eq(connection))
        .select(ScimUserRow::as_select())
        .order(u::id.asc())
        .limit(query.limit)
        .into_boxed();
    if !query.include_deleted {
        q = q.filter(u::deleted_at.is_null());
    }
    if let Some(after) = &query.after {
        q = q.filter(u::id.gt(after.clone()));
    }
    // A deleted user is not active, whatever it was when deleted.
    match query.active {
        Some(true) => q = q.filter(u::active.eq(true).and(u::deleted_at.is_null())),
        Some(false) => q = q.filter(u::active.eq(false).or(u::deleted_at.is_not_null())),
        None => {}
    }
    if let Some(name) = &query.user_name {
        q = q.filter(u::user_name_lower.eq(name.to_lowercase()));
    }
    if let Some(external_id) = &query.external_id {
        q = q.filter(u::external_id.eq(external_id.clone()));
    }
    if let Some(since) = query.updated_since {
        q = q.filter(u::updated_at.ge(since));
    }
    Ok(q.load(conn)?)
}

/// Live users of a connection by id (the order is not kept).
pub fn by_ids(conn: &mut AnyConnection, connection: &str, ids: &[String]) -> Result<Vec<ScimUserRow>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows: Vec<ScimUserRow> = u::scim_users
            .filter(u::scim_connection_id.eq(connection))
            .filter(u::deleted_at.is_null())
            .filter(u::id.eq_any(chunk))
            .select(ScimUserRow::as_select())
            .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_scim::filter::parse_filter;

    #[test]
    fn point_searches_are_one_eq_on_a_lookup_indexed_column() {
        let point = |f: &str| is_point_search(Some(&parse_filter(f).unwrap()));
        assert!(point(r#"userName eq "ada@acme.com""#));
        assert!(point(r#"externalid EQ "00u1""#));
        assert!(point(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ada""#));
        assert!(point(r#"id eq "0193""#));
        assert!(!point(r#"userName sw "ada""#));
        assert!(!point("userName pr"));
        assert!(!point(r#"displayName eq "Ada""#));
        assert!(!point(r#"emails.value eq "ada@acme.com""#));
        assert!(!point(r#"userName eq "a" or userName eq "b""#));
        assert!(!is_point_search(None));
    }

    #[test]
    fn point_searches_find_what_the_general_search_finds() {
        // On PostgreSQL too when SUITE_DATABASE_URL names one: there a point
        // search with groups is a statement of its own.
        let (store, _dir) = crate::test_store_any_backend();
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let (connection, ids) = store
            .write_blocking(move |c| {
                let (conn, _, _) = crate::scim_connections::create(c, "acme", None, "reject", now)?;
                let mut ids = Vec::new();
                for (name, ext, gone) in [
                    ("Ada@acme.com", Some("E1"), true),
                    ("ADA@acme.com", Some("E1"), false),
                    ("Grace@acme.com", Some("E1"), false),
                    ("ÉMILE@acme.com", Some("e1"), false),
                    ("linus@acme.com", None, false),
                ] {
                    let doc = serde_json::json!({"userName": name, "externalId": ext, "active": true});
                    let row = insert(c, &conn.id, &doc, now).map_err(|e| match e {
                        UserWriteError::Store(e) => e,
                        UserWriteError::UserNameTaken(n) => StoreError::Conflict(n),
                    })?;
                    if gone {
                        tombstone(c, &conn.id, &row.id, now)?;
                    }
                    ids.push(row.id);
                }
                // Grace in one group, Émile in two (one of them listed first by id), Linus in none.
                for (name, members) in [("G1", vec![&ids[2], &ids[3]]), ("G2", vec![&ids[3]])] {
                    let members: Vec<serde_json::Value> =
                        members.iter().map(|m| serde_json::json!({"value": m})).collect();
                    let doc = serde_json::json!({"displayName": name, "members": members});
                    crate::scim::groups::insert(c, &conn.id, doc, false, now).map_err(|e| match e {
                        crate::scim::groups::GroupWriteError::Store(e) => e,
                        other => StoreError::Conflict(format!("{other:?}")),
                    })?;
                }
                Ok((conn.id, ids))
            })
            .unwrap();
        let mut filters = vec![
            r#"userName eq "ada@ACME.com""#.to_string(),
            r#"USERNAME eq "émile@acme.com""#.to_string(),
            r#"userName eq "nobody@acme.com""#.to_string(),
            r#"externalId eq "E1""#.to_string(),
            r#"externalId eq "e1""#.to_string(),
            r#"urn:ietf:params:scim:schemas:core:2.0:User:externalId eq "E1""#.to_string(),
        ];
        filters.extend(ids.iter().map(|id| format!(r#"id eq "{id}""#)));
        for f in filters {
            let filter = parse_filter(&f).unwrap();
            for count in [1, 2, 10] {
                let (conn, fl) = (connection.clone(), filter.clone());
                let (fast, general, with_groups, general_groups) = store
                    .read_blocking(move |c| {
                        let fast = point_search(c, &conn, Some(&fl), 1, count)?;
                        let general = query::paged::<ScimUserRow>(
                            c,
                            "scim_users",
                            "u",
                            ResourceType::User,
                            LIVE,
                            &conn,
                            Some(&fl),
                            1,
                            count,
                        )?
                        .unwrap();
                        let with_groups = search_with_groups(c, &conn, Some(&fl), (1, count), true)?.unwrap();
                        let ids: Vec<String> = general.1.iter().map(|r| r.id.clone()).collect();
                        let general_groups = groups_of(c, &ids)?;
                        Ok((fast, general, with_groups, general_groups))
                    })
                    .unwrap();
                let ids = |rows: &[ScimUserRow]| rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
                let ((total, rows), groups) = with_groups;
                assert_eq!(
                    (total, ids(&rows), groups),
                    (general.0, ids(&general.1), general_groups),
                    "{f} count {count}"
                );
                match fast {
                    Some((total, rows)) => {
                        assert_eq!((total, ids(&rows)), (general.0, ids(&general.1)), "{f} count {count}")
                    }
                    // More than a page matches: left to the general path, which pages them.
                    None => assert!(general.0 as u64 > count, "{f} count {count}: {general:?}"),
                }
            }
        }
        let some = |f: &str, start: u64| {
            let (conn, fl) = (connection.clone(), parse_filter(f).unwrap());
            store.read_blocking(move |c| point_search(c, &conn, Some(&fl), start, 10)).unwrap().is_some()
        };
        assert!(some(r#"userName eq "ada@acme.com""#, 1));
        assert!(!some(r#"userName eq "ada@acme.com""#, 2), "later pages take the general path");
        assert!(!some(r#"displayName eq "Ada""#, 1));
        assert!(!some("userName eq 12", 1), "a value that is not text takes the general path");
    }

    #[derive(diesel::QueryableByName)]
    struct PlanRow {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }

    #[test]
    fn a_user_name_finds_the_live_user_and_tombstones_each_through_its_index() {
        let (store, _dir) = crate::test_store();
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let doc = |name: &str| serde_json::json!({"userName": name, "active": true});
        let (connection, first, second, live) = store
            .write_blocking(move |c| {
                let (conn, _, _) = crate::scim_connections::create(c, "acme", None, "reject", now)?;
                let mut made = Vec::new();
                for name in ["Ada@acme.com", "ada@acme.com", "ADA@acme.com"] {
                    let row = insert(c, &conn.id, &doc(name), now).map_err(|e| match e {
                        UserWriteError::Store(e) => e,
                        UserWriteError::UserNameTaken(n) => StoreError::Conflict(n),
                    })?;
                    if made.len() < 2 {
                        tombstone(c, &conn.id, &row.id, now)?;
                    }
                    made.push(row.id);
                }
                Ok((conn.id, made[0].clone(), made[1].clone(), made[2].clone()))
            })
            .unwrap();
        let (conn, c2) = (connection.clone(), connection.clone());
        let found =
            store.read_blocking(move |c| find_by_key(c, &conn, ScimKey::UserNameLower, "ada@acme.com")).unwrap();
        let ids: Vec<&str> = found.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, [live.as_str(), first.as_str(), second.as_str()], "the live user, then tombstones by id");
        let exact = store.read_blocking(move |c| find_by_key(c, &c2, ScimKey::UserName, "Ada@acme.com")).unwrap();
        assert_eq!(exact.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), [first.as_str()]);

        for (side, index) in [("IS NULL", "scim_users_user_name_live"), ("IS NOT NULL", "scim_users_user_name_deleted")]
        {
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT * FROM scim_users WHERE scim_connection_id = 'c' \
                 AND user_name_lower = 'a' AND deleted_at {side} LIMIT 50"
            );
            let plan: Vec<PlanRow> = store.read_blocking(move |c| Ok(diesel::sql_query(sql).load(c)?)).unwrap();
            let plan: Vec<String> = plan.into_iter().map(|r| r.detail).collect();
            assert!(plan.iter().any(|l| l.contains(index)), "{side}: {plan:?}");
        }
    }
}

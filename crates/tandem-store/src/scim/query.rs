//! Running hand-built SQL (from `filter_sql`) on either backend with its
//! bound parameters.

use super::filter_sql::Bind;
use crate::{AnyConnection, StoreError};
use diesel::deserialize::QueryableByName;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Text};
use diesel::sqlite::Sqlite;

macro_rules! bound {
    ($sql:expr, $db:ty, $binds:expr) => {{
        let mut q = diesel::sql_query($sql).into_boxed::<$db>();
        for b in $binds {
            q = match b {
                Bind::Text(s) => q.bind::<Text, _>(s.clone()),
                Bind::Int(i) => q.bind::<BigInt, _>(*i),
                Bind::Float(f) => q.bind::<Double, _>(*f),
                Bind::Bool(v) => q.bind::<Bool, _>(*v),
            };
        }
        q
    }};
}

/// Loads rows of `T` from `sql` with `binds`.
pub fn load<T>(conn: &mut AnyConnection, sql: String, binds: &[Bind]) -> Result<Vec<T>, StoreError>
where
    T: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    Ok(match conn {
        AnyConnection::Sqlite(c) => bound!(sql, Sqlite, binds).load::<T>(c)?,
        AnyConnection::Postgresql(c) => bound!(sql, Pg, binds).load::<T>(c)?,
    })
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Runs a `SELECT COUNT(*) AS n …`.
pub fn count_rows(conn: &mut AnyConnection, sql: String, binds: &[Bind]) -> Result<i64, StoreError> {
    let rows: Vec<Count> = load(conn, sql, binds)?;
    Ok(rows.first().map(|c| c.n).unwrap_or(0))
}

/// One page of a connection's rows of `table` (aliased `alias`) matching
/// `filter`, in id order, with the total; `live` adds a condition (e.g. not deleted).
#[allow(clippy::too_many_arguments)]
pub fn paged<T>(
    conn: &mut AnyConnection,
    table: &str,
    alias: &str,
    rt: tandem_scim::schema::ResourceType,
    extra: &str,
    connection: &str,
    filter: Option<&tandem_scim::filter::Filter>,
    start_index: u64,
    count: u64,
) -> Result<Result<(i64, Vec<T>), tandem_scim::ScimError>, StoreError>
where
    T: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    let mut b = super::filter_sql::SqlBuilder::new(super::dialect(conn));
    let conn_p = b.bind(Bind::Text(connection.to_string()));
    let mut cond = format!("{alias}.scim_connection_id = {conn_p}{extra}");
    if let Some(f) = filter {
        match b.filter(rt, alias, f) {
            Ok(sql) => cond = format!("{cond} AND {sql}"),
            Err(e) => return Ok(Err(e)),
        }
    }
    if count == 0 {
        let total = count_rows(conn, format!("SELECT COUNT(*) AS n FROM {table} {alias} WHERE {cond}"), &b.binds)?;
        return Ok(Ok((total, Vec::new())));
    }
    let offset = start_index.saturating_sub(1);
    let sql =
        format!("SELECT {alias}.* FROM {table} {alias} WHERE {cond} ORDER BY {alias}.id LIMIT {count} OFFSET {offset}");
    let rows = load::<T>(conn, sql, &b.binds)?;
    // A first page that is not full holds every match: no count needed
    // (the common case of a lookup by userName or externalId).
    let total = if offset == 0 && (rows.len() as u64) < count {
        rows.len() as i64
    } else {
        count_rows(conn, format!("SELECT COUNT(*) AS n FROM {table} {alias} WHERE {cond}"), &b.binds)?
    };
    Ok(Ok((total, rows)))
}

#[derive(QueryableByName)]
struct SqlitePlanRow {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct PgPlanRow {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    plan: String,
}

/// The database's plan for the page query of a filtered search (diagnostics,
/// and the test that proves lookups use an index).
pub fn search_plan(
    conn: &mut AnyConnection,
    table: &str,
    alias: &str,
    rt: tandem_scim::schema::ResourceType,
    connection: &str,
    filter: &tandem_scim::filter::Filter,
) -> Result<Result<String, tandem_scim::ScimError>, StoreError> {
    let mut b = super::filter_sql::SqlBuilder::new(super::dialect(conn));
    let conn_p = b.bind(Bind::Text(connection.to_string()));
    let sql = match b.filter(rt, alias, filter) {
        Ok(sql) => sql,
        Err(e) => return Ok(Err(e)),
    };
    let query = format!("SELECT {alias}.* FROM {table} {alias} WHERE {alias}.scim_connection_id = {conn_p} AND {sql} ORDER BY {alias}.id LIMIT 10");
    let lines: Vec<String> = match conn {
        AnyConnection::Sqlite(_) => load::<SqlitePlanRow>(conn, format!("EXPLAIN QUERY PLAN {query}"), &b.binds)?
            .into_iter()
            .map(|r| r.detail)
            .collect(),
        AnyConnection::Postgresql(_) => {
            // With fresh statistics (autovacuum keeps them in production) and
            // sequential scans off: which index answers it, whatever the table's size.
            diesel::connection::SimpleConnection::batch_execute(
                conn,
                &format!("ANALYZE {table}; SET enable_seqscan = off"),
            )?;
            let plan = load::<PgPlanRow>(conn, format!("EXPLAIN {query}"), &b.binds);
            diesel::connection::SimpleConnection::batch_execute(conn, "RESET enable_seqscan")?;
            plan?.into_iter().map(|r| r.plan).collect()
        }
    };
    Ok(Ok(lines.join("\n")))
}

//! Running hand-built SQL (from `filter_sql`) on either backend with its
//! bound parameters.
//!
//! diesel's `sql_query` is never kept prepared (it cannot know the text is
//! bounded), so every search would be parsed and planned again. [`Statement`]
//! is a small query type of our own that says when its text is one of a
//! bounded set (no filter, or one `eq`/`pr` test of a column), and diesel's
//! per-connection statement cache then keeps it prepared, keyed by its text.
//! A login's UPDATEs are written as such static statements too (diesel
//! never keeps an UPDATE prepared), and so are the INSERTs on the hot paths
//! (a SCIM user create, a provisioning-log entry, a login's transaction,
//! event and SSO user): diesel builds an INSERT's text again on every call
//! when the row has optional columns, which cost a SCIM create ~20 % of its
//! CPU.

use super::filter_sql::{Bind, PLACEHOLDER};
use crate::{AnyConnection, StoreError};
use diesel::backend::Backend;
use diesel::deserialize::QueryableByName;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, Double, HasSqlType, Nullable, Text, Untyped};
use diesel::sqlite::Sqlite;
use tandem_scim::filter::{CompareOp, Filter};

/// SQL text with [`PLACEHOLDER`]s and the values bound to them.
pub struct Statement<'a> {
    sql: &'a str,
    binds: &'a [Bind],
    cache: bool,
}

impl<'a> Statement<'a> {
    /// A statement whose text is one of a bounded set: kept prepared per connection.
    pub fn cached(sql: &'a str, binds: &'a [Bind]) -> Self {
        Statement { sql, binds, cache: true }
    }

    /// A statement prepared for this one use.
    pub fn once(sql: &'a str, binds: &'a [Bind]) -> Self {
        Statement { sql, binds, cache: false }
    }
}

impl QueryId for Statement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Statement<'_> {}

impl<DB> QueryFragment<DB> for Statement<'_>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<BigInt> + HasSqlType<Double> + HasSqlType<Bool>,
    String: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
    f64: ToSql<Double, DB>,
    bool: ToSql<Bool, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
    Option<bool>: ToSql<Nullable<Bool>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        let mut binds = self.binds.iter();
        for (i, piece) in self.sql.split(PLACEHOLDER).enumerate() {
            if i > 0 {
                match binds.next() {
                    Some(Bind::Text(v)) => out.push_bind_param::<Text, String>(v)?,
                    Some(Bind::Int(v)) => out.push_bind_param::<BigInt, i64>(v)?,
                    Some(Bind::Float(v)) => out.push_bind_param::<Double, f64>(v)?,
                    Some(Bind::Bool(v)) => out.push_bind_param::<Bool, bool>(v)?,
                    Some(Bind::OptText(v)) => out.push_bind_param::<Nullable<Text>, Option<String>>(v)?,
                    Some(Bind::OptInt(v)) => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(v)?,
                    Some(Bind::OptBool(v)) => out.push_bind_param::<Nullable<Bool>, Option<bool>>(v)?,
                    None => {
                        return Err(diesel::result::Error::QueryBuilderError(
                            "a statement has more placeholders than values".into(),
                        ))
                    }
                }
            }
            out.push_sql(piece);
        }
        if binds.next().is_some() {
            return Err(diesel::result::Error::QueryBuilderError(
                "a statement has more values than placeholders".into(),
            ));
        }
        Ok(())
    }
}

/// Whether the SQL built for `filter` is one of a bounded set of texts: no
/// filter, or one `eq` or `pr` test of an indexed column (what identity
/// providers send). Other filters (JSON paths, value lengths inlined by
/// `sw`/`ew`, any nesting) are prepared for their one use.
fn cacheable(filter: Option<&Filter>, sql: &str) -> bool {
    match filter {
        None => true,
        Some(Filter::Compare { op: CompareOp::Eq, .. } | Filter::Present(_)) => {
            !sql.contains("resource") && !sql.contains("json")
        }
        Some(_) => false,
    }
}

/// Runs a statement that returns no rows; the number of rows it changed.
pub fn execute(conn: &mut AnyConnection, statement: Statement<'_>) -> Result<usize, StoreError> {
    Ok(on_backend!(conn, |c| statement.execute(c))?)
}

/// `template` with each `?` made a placeholder (static SQL written by hand).
pub fn with_placeholders(template: &str) -> String {
    template.replace('?', &PLACEHOLDER.to_string())
}

/// Loads rows of `T`.
pub fn load<T>(conn: &mut AnyConnection, statement: Statement<'_>) -> Result<Vec<T>, StoreError>
where
    T: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    Ok(on_backend!(conn, |c| statement.load::<T>(c))?)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Runs a `SELECT COUNT(*) AS n …`.
pub fn count_rows(conn: &mut AnyConnection, statement: Statement<'_>) -> Result<i64, StoreError> {
    let rows: Vec<Count> = load(conn, statement)?;
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
    let cache = cacheable(filter, &cond);
    let count_sql = format!("SELECT COUNT(*) AS n FROM {table} {alias} WHERE {cond}");
    if count == 0 {
        let total = count_rows(conn, Statement { sql: &count_sql, binds: &b.binds, cache })?;
        return Ok(Ok((total, Vec::new())));
    }
    let offset = start_index.saturating_sub(1);
    let filter_binds = b.binds.len();
    // LIMIT and OFFSET are bound, so one text serves every page.
    let (limit_p, offset_p) = (
        b.bind(Bind::Int(i64::try_from(count).unwrap_or(i64::MAX))),
        b.bind(Bind::Int(i64::try_from(offset).unwrap_or(i64::MAX))),
    );
    let sql = format!(
        "SELECT {alias}.* FROM {table} {alias} WHERE {cond} ORDER BY {alias}.id LIMIT {limit_p} OFFSET {offset_p}"
    );
    let rows = load::<T>(conn, Statement { sql: &sql, binds: &b.binds, cache })?;
    // A first page that is not full holds every match: no count needed
    // (the common case of a lookup by userName or externalId).
    let total = if offset == 0 && (rows.len() as u64) < count {
        rows.len() as i64
    } else {
        count_rows(conn, Statement { sql: &count_sql, binds: &b.binds[..filter_binds], cache })?
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
/// and the test that proves lookups use an index); `extra` as for [`paged`].
pub fn search_plan(
    conn: &mut AnyConnection,
    table: &str,
    alias: &str,
    rt: tandem_scim::schema::ResourceType,
    extra: &str,
    connection: &str,
    filter: &tandem_scim::filter::Filter,
) -> Result<Result<String, tandem_scim::ScimError>, StoreError> {
    let mut b = super::filter_sql::SqlBuilder::new(super::dialect(conn));
    let conn_p = b.bind(Bind::Text(connection.to_string()));
    let sql = match b.filter(rt, alias, filter) {
        Ok(sql) => sql,
        Err(e) => return Ok(Err(e)),
    };
    let query = format!("SELECT {alias}.* FROM {table} {alias} WHERE {alias}.scim_connection_id = {conn_p}{extra} AND {sql} ORDER BY {alias}.id LIMIT 10");
    let lines: Vec<String> = match conn {
        AnyConnection::Sqlite(_) => {
            load::<SqlitePlanRow>(conn, Statement::once(&format!("EXPLAIN QUERY PLAN {query}"), &b.binds))?
                .into_iter()
                .map(|r| r.detail)
                .collect()
        }
        AnyConnection::Postgresql(_) => {
            // With fresh statistics (autovacuum keeps them in production) and
            // sequential scans off: which index answers it, whatever the table's size.
            diesel::connection::SimpleConnection::batch_execute(
                conn,
                &format!("ANALYZE {table}; SET enable_seqscan = off"),
            )?;
            let plan = load::<PgPlanRow>(conn, Statement::once(&format!("EXPLAIN {query}"), &b.binds));
            diesel::connection::SimpleConnection::batch_execute(conn, "RESET enable_seqscan")?;
            plan?.into_iter().map(|r| r.plan).collect()
        }
    };
    Ok(Ok(lines.join("\n")))
}

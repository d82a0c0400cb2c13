//! Running hand-built SQL (from `filter_sql`) on either backend with its
//! bound parameters.
//!
//! diesel's `sql_query` is never kept prepared (it cannot know the text is
//! bounded), so every search would be parsed and planned again. [`Statement`]
//! is a small query type of our own that says when its text is one of a
//! bounded set (no filter, or one `eq`/`pr` test of a column), and diesel's
//! per-connection statement cache then keeps it prepared, keyed by its text.
//! The INSERTs and upserts on the hot paths are written as such static
//! statements too (a SCIM user create, a provisioning-log entry, a login's
//! claim, its event and its SSO user): diesel builds an INSERT's text again
//! on every call when the row has optional columns, which cost a SCIM
//! create ~20 % of its CPU, and cannot express an upsert through
//! `MultiConnection`.
//!
//! Those fixed texts are [`FixedSql`] types (declared with [`fixed_sql!`]),
//! kept prepared under their type rather than under their text: a call then
//! neither renders the text nor hashes it to find the kept statement, and
//! the text is split at its placeholders once per process (~7 k of the ~32 k
//! instructions a provisioning-log INSERT cost on SQLite).

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
    /// The text between placeholders, split once: diesel walks a statement
    /// up to three times per call (its text, its values, whether it may be
    /// kept).
    pieces: Vec<&'a str>,
    binds: &'a [Bind],
    cache: bool,
}

impl<'a> Statement<'a> {
    /// A statement whose text is one of a bounded set: kept prepared per connection.
    pub fn cached(sql: &'a str, binds: &'a [Bind]) -> Self {
        Self::new(sql, binds, true)
    }

    /// A statement prepared for this one use.
    pub fn once(sql: &'a str, binds: &'a [Bind]) -> Self {
        Self::new(sql, binds, false)
    }

    fn new(sql: &'a str, binds: &'a [Bind], cache: bool) -> Self {
        Statement { pieces: sql.split(PLACEHOLDER).collect(), binds, cache }
    }
}

/// A statement whose whole text is written once in the source, a `?` for
/// each value, with no `?` anywhere else. Declared with [`fixed_sql!`]; each
/// type must have one text (it is the key of the kept statement) and be
/// given its values with the same types on every call.
pub trait FixedSql: 'static {
    /// The text between the `?`s.
    fn pieces() -> &'static [&'static str];
}

/// Declares a [`FixedSql`] type: `fixed_sql!(Name = "UPDATE … SET a = ? WHERE id = ?");`
#[macro_export]
macro_rules! fixed_sql {
    ($(#[$doc:meta])* $vis:vis $name:ident = $sql:expr) => {
        $(#[$doc])*
        $vis struct $name;
        impl $crate::scim::query::FixedSql for $name {
            fn pieces() -> &'static [&'static str] {
                static PIECES: std::sync::LazyLock<Vec<&'static str>> =
                    std::sync::LazyLock::new(|| $sql.split('?').collect());
                &PIECES
            }
        }
    };
}

/// A [`FixedSql`] text with its values.
struct Fixed<'a, K> {
    binds: &'a [Bind],
    key: std::marker::PhantomData<K>,
}

impl<K: FixedSql> QueryId for Fixed<'_, K> {
    type QueryId = K;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<K> Query for Fixed<'_, K> {
    type SqlType = Untyped;
}

impl<K, Conn> RunQueryDsl<Conn> for Fixed<'_, K> {}

impl<DB: BindValues, K: FixedSql> QueryFragment<DB> for Fixed<'_, K> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        DB::push_values(out, K::pieces(), self.binds)
    }
}

/// A backend our [`Bind`] values can be bound on (both of ours); the
/// bounds are written once here.
pub trait BindValues: Backend {
    /// Pushes `pieces` with a value bound between each two.
    fn push_values<'b>(out: AstPass<'_, 'b, Self>, pieces: &[&str], binds: &'b [Bind]) -> QueryResult<()>;
}

impl<DB> BindValues for DB
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
    fn push_values<'b>(mut out: AstPass<'_, 'b, DB>, pieces: &[&str], binds: &'b [Bind]) -> QueryResult<()> {
        let (first, rest) = match pieces.split_first() {
            Some((first, rest)) if rest.len() == binds.len() => (first, rest),
            _ => {
                let message = format!(
                    "a statement has {} placeholders and {} values",
                    pieces.len().saturating_sub(1),
                    binds.len()
                );
                return Err(diesel::result::Error::QueryBuilderError(message.into()));
            }
        };
        out.push_sql(first);
        for (bind, piece) in binds.iter().zip(rest) {
            match bind {
                Bind::Text(v) => out.push_bind_param::<Text, String>(v)?,
                Bind::Int(v) => out.push_bind_param::<BigInt, i64>(v)?,
                Bind::Float(v) => out.push_bind_param::<Double, f64>(v)?,
                Bind::Bool(v) => out.push_bind_param::<Bool, bool>(v)?,
                Bind::OptText(v) => out.push_bind_param::<Nullable<Text>, Option<String>>(v)?,
                Bind::OptInt(v) => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(v)?,
                Bind::OptBool(v) => out.push_bind_param::<Nullable<Bool>, Option<bool>>(v)?,
            }
            out.push_sql(piece);
        }
        Ok(())
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

impl<DB: BindValues> QueryFragment<DB> for Statement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        DB::push_values(out, &self.pieces, self.binds)
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

/// Runs the [`FixedSql`] statement `K` with `binds`; the number of rows it changed.
pub fn execute_fixed<K: FixedSql>(conn: &mut AnyConnection, binds: &[Bind]) -> Result<usize, StoreError> {
    let statement = Fixed::<K> { binds, key: std::marker::PhantomData };
    Ok(on_backend!(conn, |c| statement.execute(c))?)
}

/// Loads rows of `T` with a [`FixedSql`] statement.
pub fn load_fixed<K: FixedSql, T>(conn: &mut AnyConnection, binds: &[Bind]) -> Result<Vec<T>, StoreError>
where
    T: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    let statement = Fixed::<K> { binds, key: std::marker::PhantomData };
    Ok(on_backend!(conn, |c| statement.load::<T>(c))?)
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
        let total = count_rows(conn, Statement::new(&count_sql, &b.binds, cache))?;
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
    let rows = load::<T>(conn, Statement::new(&sql, &b.binds, cache))?;
    // A first page that is not full holds every match: no count needed
    // (the common case of a lookup by userName or externalId).
    let total = if offset == 0 && (rows.len() as u64) < count {
        rows.len() as i64
    } else {
        count_rows(conn, Statement::new(&count_sql, &b.binds[..filter_binds], cache))?
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

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;

    crate::fixed_sql!(InsertPair = "INSERT INTO pairs (a, b) VALUES (?, ?)");
    crate::fixed_sql!(DeleteAbove = "DELETE FROM pairs WHERE a > ?");

    #[test]
    fn fixed_statements_are_kept_apart_by_type_and_check_their_values() {
        let (store, _dir) = crate::test_store();
        let counts = store
            .write_blocking(|c| {
                c.batch_execute("CREATE TABLE pairs (a BIGINT NOT NULL, b TEXT)")?;
                let mut counts = Vec::new();
                // Alternating: each call must run its own kept statement, not the other's.
                for round in 0..3 {
                    for a in 0..4 {
                        execute_fixed::<InsertPair>(c, &[Bind::Int(a), Bind::OptText(Some(format!("r{round}")))])?;
                    }
                    counts.push(execute_fixed::<DeleteAbove>(c, &[Bind::Int(1)])?);
                }
                let all = count_rows(c, Statement::cached("SELECT COUNT(*) AS n FROM pairs", &[]))?;
                counts.push(usize::try_from(all).unwrap_or_default());
                // A count of values that does not match the text is an error, not a panic.
                let short = execute_fixed::<InsertPair>(c, &[Bind::Int(9)]).is_err();
                let long = execute_fixed::<DeleteAbove>(c, &[Bind::Int(1), Bind::Int(2)]).is_err();
                let dynamic = execute(c, Statement::once("DELETE FROM pairs WHERE a = \u{1}", &[])).is_err();
                Ok((counts, [short, long, dynamic]))
            })
            .unwrap();
        assert_eq!(counts, (vec![2, 2, 2, 6], [true, true, true]));
    }
}

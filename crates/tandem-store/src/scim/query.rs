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
pub fn count(conn: &mut AnyConnection, sql: String, binds: &[Bind]) -> Result<i64, StoreError> {
    let rows: Vec<Count> = load(conn, sql, binds)?;
    Ok(rows.first().map(|c| c.n).unwrap_or(0))
}

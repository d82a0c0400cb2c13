//! SCIM resources as stored: users (kept as tombstones after DELETE so a
//! login can still tell "deleted" from "never provisioned"), groups with
//! their membership table, filtered search, and the provisioning log.

pub mod filter_sql;
pub mod groups;
pub mod logs;
pub mod query;
pub mod users;

use crate::AnyConnection;
pub use filter_sql::Dialect;

/// The SQL flavour of a connection.
pub fn dialect(conn: &AnyConnection) -> Dialect {
    match conn {
        AnyConnection::Sqlite(_) => Dialect::Sqlite,
        AnyConnection::Postgresql(_) => Dialect::Postgres,
    }
}

//! Proof that the migrations of each backend produce exactly the tables and
//! columns `schema.rs` declares: the declared schema is read from the
//! source of `schema.rs`, the actual one from the database's catalog.

use crate::{AnyConnection, StoreError};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use std::collections::BTreeMap;

/// A column's name, type family and nullability.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnShape {
    pub name: String,
    /// `Text`, `BigInt`, `Integer` or `Bool`.
    pub ty: String,
    pub nullable: bool,
}

/// Tables by name, each with its columns in declaration order.
pub type SchemaShape = BTreeMap<String, Vec<ColumnShape>>;

/// The schema `schema.rs` declares.
pub fn declared() -> SchemaShape {
    let source = include_str!("schema.rs");
    let mut tables = SchemaShape::new();
    let mut current: Option<String> = None;
    for line in source.lines().map(str::trim) {
        if let Some(rest) = line.strip_suffix('{') {
            let head = rest.trim();
            if let Some((name, _)) = head.split_once(' ') {
                if !head.starts_with("diesel::") && head.contains('(') {
                    current = Some(name.to_string());
                    tables.insert(name.to_string(), Vec::new());
                }
            }
        } else if line == "}" {
            current = None;
        } else if let (Some(table), Some((col, ty))) = (&current, line.split_once("->")) {
            let ty = ty.trim().trim_end_matches(',');
            let (ty, nullable) = match ty.strip_prefix("Nullable<").and_then(|t| t.strip_suffix('>')) {
                Some(inner) => (inner, true),
                None => (ty, false),
            };
            if let Some(cols) = tables.get_mut(table) {
                cols.push(ColumnShape { name: col.trim().to_string(), ty: ty.to_string(), nullable });
            }
        }
    }
    tables
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    r#type: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

fn family(sql_type: &str) -> String {
    match sql_type.to_ascii_lowercase().as_str() {
        "text" => "Text",
        "bigint" => "BigInt",
        "integer" => "Integer",
        "boolean" => "Bool",
        other => return other.to_string(),
    }
    .to_string()
}

/// The schema the connected database actually has (diesel's own migration
/// table left out).
pub fn actual(conn: &mut AnyConnection) -> Result<SchemaShape, StoreError> {
    let mut tables = SchemaShape::new();
    match conn {
        AnyConnection::Sqlite(c) => {
            let names: Vec<TableName> = diesel::sql_query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND name <> '__diesel_schema_migrations' ORDER BY name",
            )
            .load(c)?;
            for t in names {
                let cols: Vec<SqliteColumn> = diesel::sql_query(format!("PRAGMA table_info('{}')", t.name)).load(c)?;
                let key_columns = cols.iter().filter(|col| col.pk > 0).count();
                let shaped = cols
                    .into_iter()
                    .map(|col| ColumnShape {
                        // SQLite lets a primary key column hold NULL unless NOT
                        // NULL is spelled out, but for a lone INTEGER one (the
                        // rowid): a key column without it reads as nullable.
                        nullable: col.notnull == 0
                            && !(col.pk > 0 && key_columns == 1 && col.r#type.eq_ignore_ascii_case("INTEGER")),
                        // That rowid is a 64-bit integer, whatever the name.
                        ty: if col.pk > 0 && key_columns == 1 && col.r#type.eq_ignore_ascii_case("INTEGER") {
                            "BigInt".to_string()
                        } else {
                            family(&col.r#type)
                        },
                        name: col.name,
                    })
                    .collect();
                tables.insert(t.name, shaped);
            }
        }
        AnyConnection::Postgresql(c) => {
            let cols: Vec<PgColumn> = diesel::sql_query(
                "SELECT table_name::text AS table_name, column_name::text AS column_name, data_type::text AS data_type, \
                 is_nullable::text AS is_nullable FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name <> '__diesel_schema_migrations' \
                 ORDER BY table_name, ordinal_position",
            )
            .load(c)?;
            for col in cols {
                tables.entry(col.table_name).or_default().push(ColumnShape {
                    name: col.column_name,
                    ty: family(&col.data_type),
                    nullable: col.is_nullable == "YES",
                });
            }
        }
    }
    Ok(tables)
}

#[cfg(test)]
mod tests {
    #[test]
    fn declared_schema_is_read_from_schema_rs() {
        let d = super::declared();
        assert!(d.contains_key("scim_users"));
        let deleted = d["scim_users"].iter().find(|c| c.name == "deleted_at").unwrap();
        assert!(deleted.nullable);
        assert_eq!(deleted.ty, "BigInt");
        assert!(!d.contains_key("diesel"));
    }

    /// A SQLite key column without NOT NULL can hold NULL (but for a lone
    /// INTEGER key, the rowid), and reads as nullable.
    #[test]
    fn a_sqlite_key_column_without_not_null_reads_as_nullable() {
        use diesel::connection::SimpleConnection;
        let (store, _dir) = crate::test_store();
        let shape = store
            .write_blocking(|c| {
                c.batch_execute(
                    "CREATE TABLE loose_text_key (id TEXT PRIMARY KEY); \
                     CREATE TABLE loose_pair (a TEXT, b TEXT NOT NULL, PRIMARY KEY (a, b)); \
                     CREATE TABLE row_key (id INTEGER PRIMARY KEY, note TEXT NOT NULL);",
                )?;
                super::actual(c)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let nullable = |table: &str, column: &str| {
            shape[table].iter().find(|c| c.name == column).unwrap_or_else(|| panic!("{table}.{column}")).nullable
        };
        assert!(nullable("loose_text_key", "id"));
        assert!(nullable("loose_pair", "a"));
        assert!(!nullable("loose_pair", "b"));
        assert!(!nullable("row_key", "id"));
        assert!(!nullable("scim_group_members", "group_id"), "the migrations spell NOT NULL out");
    }
}

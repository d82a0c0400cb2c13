//! Both backends' migrations produce exactly the schema `schema.rs` declares,
//! and the down scripts undo them.

use crate::helpers::*;
use tandem_store::{schema_check, PoolOptions, Store};

#[tokio::test]
async fn migrations_produce_the_declared_schema() {
    let app = TestApp::spawn().await;
    let actual = app.state.store.read_blocking(schema_check::actual).unwrap();
    assert_eq!(actual, schema_check::declared());
}

#[test]
fn migrations_go_up_down_and_up_again() {
    let url = match postgres_url() {
        // A scratch database beside the suite's, so reverting does not disturb other tests.
        Some(base) => scratch_postgres_database(&base),
        None => format!("sqlite://{}", scratch_dir().join("updown.db").display()),
    };
    let store = Store::open(&url, &PoolOptions { max_size: 1, ..Default::default() }).unwrap();
    assert!(store.migrate().unwrap() > 0);
    store.revert_all().unwrap();
    let empty = store.read_blocking(schema_check::actual).unwrap();
    assert!(empty.is_empty(), "tables left after revert: {:?}", empty.keys());
    store.migrate().unwrap();
    assert_eq!(store.read_blocking(schema_check::actual).unwrap(), schema_check::declared());
}

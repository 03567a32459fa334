//! The Store: writes that arrive together commit in one transaction, each
//! sender is answered after the commit, a write that fails alone fails alone,
//! and a transaction that cannot commit fails every sender of its batch.

mod common;

use std::sync::atomic::Ordering;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use futures_util::future::join_all;
use futures_util::FutureExt;
use switchboard::store::events::EventRow;
use switchboard::store::schema::events;
use switchboard::store::{now_ms, DbConn, Row, Store, StoreError, WriteRequest};
use switchboard_actors::{Change, EventRecord, Persistence};

fn event(id: &str, stream: &str) -> EventRow {
    EventRow {
        id: id.to_string(),
        stream: stream.to_string(),
        kind: "test.written".into(),
        payload: "{}".into(),
        created_at: now_ms(),
    }
}

fn insert(row: EventRow) -> impl Fn(&mut DbConn) -> QueryResult<()> + Send + 'static {
    move |conn| diesel::insert_into(events::table).values(row.clone()).execute(conn).map(|_| ())
}

async fn count_stream(store: &Store, stream: &str) -> i64 {
    let stream = stream.to_string();
    store
        .read(move |c| {
            events::table.filter(events::stream.eq(stream)).count().get_result(c).map_err(StoreError::from)
        })
        .await
        .unwrap()
}

/// Rows that break a DEFERRED foreign key, so the failure surfaces only at COMMIT.
fn fails_at_commit(conn: &mut DbConn) -> QueryResult<()> {
    conn.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS probe_parent (id INTEGER PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS probe_child (
             parent INTEGER REFERENCES probe_parent (id) DEFERRABLE INITIALLY DEFERRED);
         INSERT INTO probe_child (parent) VALUES (42);",
    )
}

#[actix_web::test]
async fn concurrent_writes_share_one_transaction_and_are_all_durable() {
    let app = common::spawn_app_with(&[("SWITCHBOARD_STORE_BATCH_WINDOW", "200ms")], true).await;
    let store = app.state.store.clone();
    let before = store.counters().batches.load(Ordering::Relaxed);

    let writes = (0..50).map(|i| store.insert(Row::Event(event(&format!("evt_g{i}"), "group"))));
    let results = join_all(writes).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");

    let batches = store.counters().batches.load(Ordering::Relaxed) - before;
    assert!(batches <= 2, "50 writes inside one window took {batches} transactions");
    // Acknowledged means committed: visible to a fresh read at once.
    assert_eq!(count_stream(&store, "group").await, 50);
}

#[actix_web::test]
async fn one_bad_write_does_not_fail_its_batch_mates() {
    let app = common::spawn_app_with(&[("SWITCHBOARD_STORE_BATCH_WINDOW", "200ms")], true).await;
    let store = app.state.store.clone();
    store.write(insert(event("evt_taken", "setup"))).await.unwrap();

    // Rows share one INSERT, so the duplicate first fails the whole statement.
    let mut writes: Vec<_> = (0..10)
        .map(|i| store.insert(Row::Event(event(&format!("evt_ok{i}"), "mates"))).boxed_local())
        .collect();
    writes.push(store.insert(Row::Event(event("evt_taken", "mates"))).boxed_local());
    writes.push(store.write(insert(event("evt_closure", "mates"))).boxed_local());
    let results = join_all(writes).await;

    assert!(results[..10].iter().all(|r| r.is_ok()), "{results:?}");
    assert!(matches!(results[10], Err(StoreError::Duplicate(_))), "{:?}", results[10]);
    assert!(results[11].is_ok(), "{:?}", results[11]);
    assert_eq!(count_stream(&store, "mates").await, 11);
}

#[actix_web::test]
async fn a_batch_that_cannot_commit_fails_every_sender() {
    let app = common::spawn_app_with(&[("SWITCHBOARD_STORE_BATCH_WINDOW", "200ms")], true).await;
    let store = app.state.store.clone();
    let failed_before = store.counters().failed_batches.load(Ordering::Relaxed);

    let mut writes: Vec<_> = (0..10)
        .map(|i| store.insert(Row::Event(event(&format!("evt_doomed{i}"), "doomed"))).boxed_local())
        .collect();
    writes.push(store.submit(WriteRequest::op(Box::new(fails_at_commit))).boxed_local());
    let results = join_all(writes).await;

    for r in &results {
        assert!(
            matches!(r, Err(StoreError::CommitFailed(_))),
            "every sender hears of the failure: {results:?}"
        );
    }
    assert_eq!(count_stream(&store, "doomed").await, 0, "nothing of a failed batch is durable");
    assert!(store.counters().failed_batches.load(Ordering::Relaxed) > failed_before);

    // The store goes on working after a failed batch.
    store.write(insert(event("evt_after", "after"))).await.unwrap();
    assert_eq!(count_stream(&store, "after").await, 1);
}

#[actix_web::test]
async fn actors_persist_through_the_persistence_trait() {
    let app = common::spawn_app().await;
    let store = app.state.store.clone();
    let record = EventRecord {
        id: "evt_trait".into(),
        stream: "escalation:e1".into(),
        kind: "escalation.routed".into(),
        payload: serde_json::json!({"expert_id": "x1"}),
        at_ms: 1_700_000_000_000,
    };
    store.commit(vec![Change::AppendEvent(record.clone())]).await.unwrap();
    let rows = store.events_of("escalation:e1").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kind, "escalation.routed");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&rows[0].payload).unwrap(), record.payload);

    // Start-up recorded itself in the same log.
    let starts = store.events_of("server").await.unwrap();
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].kind, "server.started");
}

#[actix_web::test]
async fn the_backend_is_the_one_the_harness_was_asked_for() {
    let app = common::spawn_app().await;
    let expected = if app.db.is_postgres() { "postgres" } else { "sqlite" };
    assert_eq!(app.state.store.backend(), expected);
    let requested = std::env::var(common::TEST_DB_ENV).map(|v| !v.is_empty()).unwrap_or(false);
    assert_eq!(app.db.is_postgres(), requested);
    let body: serde_json::Value =
        app.client.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["checks"]["backend"], expected);
}

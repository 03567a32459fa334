//! The event log (`events`): append-only history, written in the same batch as
//! the snapshot it explains. Also the Store's `Persistence` for the actors.

use diesel::prelude::*;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use switchboard_actors::{Change, EventRecord, PersistError, Persistence};

use super::schema::events;
use super::{Row, Store, StoreError, Write, WriteRequest};

#[derive(Insertable, Queryable, Debug, Clone, PartialEq)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: String,
    pub stream: String,
    pub kind: String,
    pub payload: String,
    pub created_at: i64,
}

impl From<&EventRecord> for EventRow {
    fn from(e: &EventRecord) -> Self {
        EventRow {
            id: e.id.clone(),
            stream: e.stream.clone(),
            kind: e.kind.clone(),
            payload: e.payload.to_string(),
            created_at: e.at_ms,
        }
    }
}

/// The store write that makes an actor's `Change` durable.
pub fn to_write(change: Change) -> Write {
    use super::escalations as esc;
    match change {
        Change::AppendEvent(e) => Write::Row(Row::Event(EventRow::from(&e))),
        Change::InsertEscalation(r) => esc::insert_escalation(&r),
        Change::UpdateEscalation(r) => esc::update_escalation(&r),
        Change::InsertExpert(r) => esc::insert_expert(&r),
        Change::UpdateExpert(r) => esc::update_expert(&r),
        Change::CountResolution(e) => esc::count_resolution(e),
        Change::RecordFeedback(w) => esc::record_feedback(&w),
        Change::RecordIdempotency(r) => esc::record_idempotency(&r),
        Change::CheckQuota(q) => esc::check_quota(&q),
        Change::InsertDelivery(d) => super::webhooks::insert_delivery(&d),
        Change::UpdateDelivery(d) => super::webhooks::update_delivery(&d),
        Change::LinkSession(l) => super::sessions::link_session(&l),
        Change::JoinSession(e) => super::sessions::join_session(&e),
    }
}

impl Persistence for Store {
    fn commit(&self, changes: Vec<Change>) -> BoxFuture<'static, Result<(), PersistError>> {
        let store = self.clone();
        async move {
            let request = WriteRequest(changes.into_iter().map(to_write).collect());
            store.submit(request).await.map_err(|e| match e {
                StoreError::Unavailable(m) => PersistError::Unavailable(m),
                StoreError::Conflict(m) => PersistError::Conflict(m),
                StoreError::Duplicate(m) => PersistError::Duplicate(m),
                StoreError::Limited { message, retry_after_secs } => {
                    PersistError::Limited { message, retry_after_secs }
                }
                other => PersistError::CommitFailed(other.to_string()),
            })
        }
        .boxed()
    }
}

impl Store {
    /// The events of one stream, oldest first.
    pub async fn events_of(&self, stream: &str) -> Result<Vec<EventRow>, StoreError> {
        let stream = stream.to_string();
        self.read(move |conn| {
            events::table
                .filter(events::stream.eq(stream))
                .order((events::created_at.asc(), events::id.asc()))
                .load(conn)
                .map_err(StoreError::from)
        })
        .await
    }
}

//! What senders ask the Store to write. A batch's rows of one table that sit
//! next to each other go to the database as ONE multi-row INSERT: a round trip
//! per batch instead of per write, which is what makes group commit pay on a
//! networked database. Anything that is not a plain row is an `Op` and runs
//! alone, in order.

use diesel::prelude::*;

use super::bench::ProbeRow;
use super::connection::DbConn;
use super::escalations::EscalationRow;
use super::events::EventRow;
use super::schema::{escalations, events, store_probes, webhook_deliveries};
use super::webhooks::DeliveryRow;

/// A closure run inside the batch's transaction. It may run twice (see
/// `group_commit::commit`), so it must depend only on what it captured.
pub type WriteOp = Box<dyn Fn(&mut DbConn) -> QueryResult<()> + Send>;

/// A row that may share one INSERT with its neighbours of the same table.
#[derive(Debug, Clone)]
pub enum Row {
    Event(EventRow),
    Probe(ProbeRow),
    Escalation(Box<EscalationRow>),
    Delivery(Box<DeliveryRow>),
}

impl Row {
    fn table(&self) -> &'static str {
        match self {
            Row::Event(_) => "events",
            Row::Probe(_) => "store_probes",
            Row::Escalation(_) => "escalations",
            Row::Delivery(_) => "webhook_deliveries",
        }
    }
}

pub enum Write {
    Row(Row),
    Op(WriteOp),
}

/// Wraps a closure as a `Write`.
pub fn op<F>(f: F) -> Write
where
    F: Fn(&mut DbConn) -> QueryResult<()> + Send + 'static,
{
    Write::Op(Box::new(f))
}

/// A rule a write found broken inside its transaction (say, removing the last
/// Owner): the request is refused with this message as a conflict, and
/// nothing of it is committed.
#[derive(Debug)]
pub struct WriteConflict(pub String);

impl std::fmt::Display for WriteConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriteConflict {}

/// A limit a write found reached inside its transaction (a tier's quota):
/// the request is refused as rate limited, and nothing of it is committed.
#[derive(Debug)]
pub struct WriteLimited {
    pub message: String,
    pub retry_after_secs: u64,
}

impl std::fmt::Display for WriteLimited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WriteLimited {}

/// The error an op returns to refuse its request as over a limit.
pub fn limited(message: impl Into<String>, retry_after_secs: u64) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(Box::new(WriteLimited {
        message: message.into(),
        retry_after_secs,
    }))
}

/// The error an op returns to refuse its request with a conflict.
pub fn conflict(message: impl Into<String>) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(Box::new(WriteConflict(message.into())))
}

/// What one sender asked for: committed together, or not at all.
pub struct WriteRequest(pub Vec<Write>);

impl WriteRequest {
    pub fn row(row: Row) -> Self {
        WriteRequest(vec![Write::Row(row)])
    }

    pub fn op(op: WriteOp) -> Self {
        WriteRequest(vec![Write::Op(op)])
    }
}

/// Rows per INSERT statement: keeps bind parameters far below PostgreSQL's 65535.
const MAX_ROWS_PER_INSERT: usize = 1000;

/// Applies `writes` in order, coalescing runs of rows of the same table.
pub(crate) fn apply<'a>(conn: &mut DbConn, writes: impl Iterator<Item = &'a Write>) -> QueryResult<()> {
    let mut run: Vec<&Row> = Vec::new();
    for write in writes {
        match write {
            Write::Row(row) => {
                if run.first().is_some_and(|first| first.table() != row.table()) {
                    insert_rows(conn, &run)?;
                    run.clear();
                }
                run.push(row);
            }
            Write::Op(op) => {
                insert_rows(conn, &run)?;
                run.clear();
                op(conn)?;
            }
        }
    }
    insert_rows(conn, &run)
}

/// Runs `$body` with `$c` bound to the concrete connection: multi-row INSERT
/// is not offered through the multi-backend connection, though both backends have it.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConn::Postgres($c) => $body,
            $crate::store::DbConn::Sqlite($c) => $body,
        }
    };
}

/// Inserts rows that all belong to the table of the first.
fn insert_rows(conn: &mut DbConn, rows: &[&Row]) -> QueryResult<()> {
    let Some(first) = rows.first() else { return Ok(()) };
    for chunk in rows.chunks(MAX_ROWS_PER_INSERT) {
        match first {
            Row::Event(_) => {
                let values: Vec<&EventRow> =
                    chunk.iter().filter_map(|r| if let Row::Event(e) = r { Some(e) } else { None }).collect();
                crate::on_backend!(conn, |c| diesel::insert_into(events::table).values(values).execute(c))?;
            }
            Row::Probe(_) => {
                let values: Vec<&ProbeRow> =
                    chunk.iter().filter_map(|r| if let Row::Probe(p) = r { Some(p) } else { None }).collect();
                crate::on_backend!(conn, |c| diesel::insert_into(store_probes::table)
                    .values(values)
                    .execute(c))?;
            }
            Row::Escalation(_) => {
                let values: Vec<&EscalationRow> = chunk
                    .iter()
                    .filter_map(|r| if let Row::Escalation(e) = r { Some(e.as_ref()) } else { None })
                    .collect();
                crate::on_backend!(conn, |c| diesel::insert_into(escalations::table)
                    .values(values)
                    .execute(c))?;
            }
            Row::Delivery(_) => {
                let values: Vec<&DeliveryRow> = chunk
                    .iter()
                    .filter_map(|r| if let Row::Delivery(d) = r { Some(d.as_ref()) } else { None })
                    .collect();
                crate::on_backend!(conn, |c| diesel::insert_into(webhook_deliveries::table)
                    .values(values)
                    .execute(c))?;
            }
        }
    }
    Ok(())
}

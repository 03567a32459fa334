//! Group commit: every write request that arrives while the previous commit
//! runs, or within an optional extra window, or up to a batch size, goes into
//! ONE transaction, and each sender is answered only after that transaction
//! committed. One fsync then pays for many writes, and rows of one table share
//! one INSERT (see `writes`).
//!
//! Two actors: the `Batcher` (async, on its own arbiter) gathers requests and
//! hands batches to the `Writer`s (a `SyncArbiter`: blocking Diesel work never
//! runs on an async thread). While every writer is busy, requests keep
//! gathering, so batches grow exactly when the database is the bottleneck.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::Connection;
use switchboard_actors::ActorKind;
use tokio::sync::oneshot;

use super::connection::{DbConn, DbPool};
use super::writes::{apply, WriteConflict, WriteLimited, WriteRequest};
use super::StoreError;

static BATCHER: ActorKind = ActorKind::new("store_batcher");
static WRITER: ActorKind = ActorKind::new("store_writer");

/// Running totals of the Store's work, for tests and monitoring.
#[derive(Debug, Default)]
pub struct CommitCounters {
    /// Transactions attempted (one per batch).
    pub batches: AtomicU64,
    /// Writes answered `Ok`.
    pub committed_writes: AtomicU64,
    /// Batches in which no write could be committed.
    pub failed_batches: AtomicU64,
}

struct Pending {
    request: WriteRequest,
    reply: oneshot::Sender<Result<(), StoreError>>,
    submitted: Instant,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Submit {
    pub request: WriteRequest,
    pub reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Resolves once every write submitted before it has been answered.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush(pub oneshot::Sender<()>);

pub struct Batcher {
    writer: Addr<Writer>,
    buffer: Vec<Pending>,
    in_flight: usize,
    max_in_flight: usize,
    window: Duration,
    max_batch: usize,
    timer: Option<SpawnHandle>,
    flush_waiters: Vec<oneshot::Sender<()>>,
    counters: Arc<CommitCounters>,
}

impl Batcher {
    pub fn new(
        writer: Addr<Writer>,
        writers: usize,
        window: Duration,
        max_batch: usize,
        counters: Arc<CommitCounters>,
    ) -> Self {
        Batcher {
            counters,
            writer,
            buffer: Vec::new(),
            in_flight: 0,
            max_in_flight: writers.max(1),
            window,
            max_batch: max_batch.max(1),
            timer: None,
            flush_waiters: Vec::new(),
        }
    }

    /// Sends gathered writes to free writers, one batch per writer.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        while self.in_flight < self.max_in_flight && !self.buffer.is_empty() {
            let take = self.buffer.len().min(self.max_batch);
            let batch: Vec<Pending> = self.buffer.drain(..take).collect();
            self.in_flight += 1;
            let (requests, replies): (Vec<WriteRequest>, Vec<_>) =
                batch.into_iter().map(|p| (p.request, (p.reply, p.submitted))).unzip();
            metrics::histogram!("switchboard_store_batch_writes").record(requests.len() as f64);
            WRITER.enqueued();
            self.writer
                .send(Commit(requests))
                .into_actor(self)
                .map(move |outcome, act, ctx| {
                    act.in_flight -= 1;
                    act.counters.batches.fetch_add(1, Ordering::Relaxed);
                    let results = match outcome {
                        Ok(results) => results,
                        Err(e) => {
                            let err = StoreError::Unavailable(format!("store writer gone: {e}"));
                            vec![Err(err); replies.len()]
                        }
                    };
                    let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
                    act.counters.committed_writes.fetch_add(ok, Ordering::Relaxed);
                    if ok == 0 {
                        act.counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("switchboard_store_failed_batches_total").increment(1);
                    }
                    for ((reply, submitted), result) in replies.into_iter().zip(results) {
                        metrics::histogram!("switchboard_store_write_wait_seconds")
                            .record(submitted.elapsed().as_secs_f64());
                        // A sender that stopped waiting (client gone) needs no answer.
                        let _ = reply.send(result);
                    }
                    // What gathered during the commit already waited one commit: send it now.
                    act.dispatch(ctx);
                    act.notify_flushed();
                })
                .spawn(ctx);
        }
    }

    fn notify_flushed(&mut self) {
        if self.buffer.is_empty() && self.in_flight == 0 {
            for w in self.flush_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }
}

impl Actor for Batcher {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        BATCHER.started();
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        BATCHER.stopped();
    }
}

impl Handler<Submit> for Batcher {
    type Result = ();

    fn handle(&mut self, msg: Submit, ctx: &mut Self::Context) {
        let _t = BATCHER.handling("Submit");
        self.buffer.push(Pending { request: msg.request, reply: msg.reply, submitted: Instant::now() });
        if self.buffer.len() >= self.max_batch || self.window.is_zero() {
            self.dispatch(ctx);
        } else if self.timer.is_none() {
            self.timer = Some(ctx.run_later(self.window, |act, ctx| {
                act.timer = None;
                act.dispatch(ctx);
            }));
        }
    }
}

impl Handler<Flush> for Batcher {
    type Result = ();

    fn handle(&mut self, msg: Flush, ctx: &mut Self::Context) {
        let _t = BATCHER.handling("Flush");
        self.flush_waiters.push(msg.0);
        self.dispatch(ctx);
        self.notify_flushed();
    }
}

/// Counts a message into the batcher's mailbox before sending it.
pub fn submit(batcher: &Addr<Batcher>, msg: Submit) {
    BATCHER.enqueued();
    batcher.do_send(msg);
}

pub fn flush(batcher: &Addr<Batcher>, msg: Flush) {
    BATCHER.enqueued();
    batcher.do_send(msg);
}

#[derive(Message)]
#[rtype(result = "Vec<Result<(), StoreError>>")]
pub struct Commit(pub Vec<WriteRequest>);

/// Runs batches on a blocking thread with a connection of its own pool.
pub struct Writer {
    pool: DbPool,
}

impl Writer {
    pub fn new(pool: DbPool) -> Self {
        Writer { pool }
    }
}

impl Actor for Writer {
    type Context = SyncContext<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        WRITER.started();
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        WRITER.stopped();
    }
}

impl Handler<Commit> for Writer {
    type Result = Vec<Result<(), StoreError>>;

    fn handle(&mut self, msg: Commit, _ctx: &mut Self::Context) -> Self::Result {
        let _t = WRITER.handling("Commit");
        let requests = msg.0;
        let mut conn = match self.pool.get() {
            Ok(c) => c,
            Err(e) => {
                let err = StoreError::Unavailable(format!("no database connection: {e}"));
                return vec![Err(err); requests.len()];
            }
        };
        let start = Instant::now();
        let results = commit(&mut conn, &requests);
        metrics::histogram!("switchboard_store_commit_seconds").record(start.elapsed().as_secs_f64());
        results
    }
}

enum TxError {
    /// A write of the batch failed; the transaction was rolled back.
    Op(DieselError),
    /// BEGIN or COMMIT failed.
    Db(DieselError),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        TxError::Db(e)
    }
}

/// Commits the batch in one transaction. If a write fails, the other senders
/// are not punished for it: the batch is run again with each request in a
/// savepoint, so only the failing requests are refused. If the transaction
/// itself cannot commit, every request fails: nothing was made durable.
pub(crate) fn commit(conn: &mut DbConn, requests: &[WriteRequest]) -> Vec<Result<(), StoreError>> {
    let first = conn.transaction::<(), TxError, _>(|c| {
        apply(c, requests.iter().flat_map(|r| r.0.iter())).map_err(TxError::Op)
    });
    match first {
        Ok(()) => vec![Ok(()); requests.len()],
        Err(TxError::Db(e)) => vec![Err(StoreError::CommitFailed(e.to_string())); requests.len()],
        Err(TxError::Op(e)) if requests.len() == 1 => vec![Err(StoreError::rejected(e))],
        Err(TxError::Op(_)) => commit_isolated(conn, requests),
    }
}

fn commit_isolated(conn: &mut DbConn, requests: &[WriteRequest]) -> Vec<Result<(), StoreError>> {
    let mut results: Vec<Result<(), StoreError>> = vec![Ok(()); requests.len()];
    let outcome = conn.transaction::<(), DieselError, _>(|c| {
        for (i, request) in requests.iter().enumerate() {
            // A nested transaction is a savepoint: a failure undoes only this request.
            if let Err(e) = c.transaction(|sp| apply(sp, request.0.iter())) {
                results[i] = Err(StoreError::rejected(e));
            }
        }
        Ok(())
    });
    match outcome {
        Ok(()) => results,
        Err(e) => vec![Err(StoreError::CommitFailed(e.to_string())); requests.len()],
    }
}

impl StoreError {
    fn rejected(e: DieselError) -> StoreError {
        match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Duplicate(info.message().to_string())
            }
            DieselError::QueryBuilderError(e) if e.is::<WriteConflict>() => {
                StoreError::Conflict(e.to_string())
            }
            DieselError::QueryBuilderError(e) if e.is::<WriteLimited>() => match e.downcast::<WriteLimited>()
            {
                Ok(l) => StoreError::Limited { message: l.message, retry_after_secs: l.retry_after_secs },
                Err(e) => StoreError::Rejected(e.to_string()),
            },
            other => StoreError::Rejected(other.to_string()),
        }
    }
}

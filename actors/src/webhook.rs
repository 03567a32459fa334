//! The webhook engine's actors: a `WebhookDispatcher` that hands each
//! persisted delivery to the `WebhookEndpointActor` of its URL, and one
//! endpoint actor per URL with its own queue, concurrency limit, retry timers
//! and circuit breaker, so one slow or dead receiver never delays another.
//!
//! Deliveries reach the dispatcher only after they were committed (in the same
//! transaction as the change they report); every attempt's outcome is
//! committed before the next attempt is scheduled. Sending itself (signing,
//! HTTP, the SSRF check at connect time) is the server's `Transport`.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use rand::Rng;

use crate::engine::now_ms;
use crate::instrument::ActorKind;
use crate::persistence::{Change, Persistence};
use crate::records::{DeliveryRecord, DeliveryStatus};

pub static DISPATCHER: ActorKind = ActorKind::new("webhook_dispatcher");
pub static ENDPOINT: ActorKind = ActorKind::new("webhook_endpoint");

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Waits between attempts; a delivery gets one attempt more than entries.
    pub retry_schedule: Vec<Duration>,
    /// Attempts in flight at once per endpoint URL.
    pub max_in_flight: usize,
    /// Consecutive failures that open an endpoint's circuit.
    pub circuit_threshold: u32,
    /// How long an open circuit holds attempts back before one probe.
    pub circuit_cooldown: Duration,
    /// Wait before committing an attempt's outcome again after a failed commit.
    pub retry_after_failure: Duration,
    /// An endpoint actor with nothing to do stops after this long.
    pub idle_timeout: Duration,
}

impl WebhookConfig {
    /// The wait after failed attempt number `attempts` (1-based), with up to
    /// 10% jitter so retries of many deliveries do not arrive in lockstep;
    /// `None` when the schedule is spent.
    pub fn wait_after(&self, attempts: u32) -> Option<Duration> {
        let base = *self.retry_schedule.get(attempts.checked_sub(1)? as usize)?;
        let spread = base.as_millis() as u64 / 10;
        let jitter = if spread > 0 { rand::thread_rng().gen_range(0..=spread) } else { 0 };
        Some(base + Duration::from_millis(jitter))
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// Another answer, a timeout, a connection error or a refused address: retried.
    Failed { status: Option<u16>, error: String },
    /// The delivery can never be sent (its subscription was deleted): failed at once.
    Abandoned { error: String },
}

/// How the server sends one attempt: sign, check the address, POST.
pub trait Transport: 'static {
    fn send(&self, delivery: &DeliveryRecord) -> LocalBoxFuture<'static, AttemptOutcome>;
}

/// An endpoint's circuit, as reported to monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(&self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    fn gauge(&self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::Open => 1.0,
            CircuitState::HalfOpen => 2.0,
        }
    }
}

/// Committed deliveries to send (new ones, or open ones rebuilt at start).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Dispatch(pub Vec<DeliveryRecord>);

/// One endpoint's picture, for monitoring.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EndpointSnapshot {
    pub url: String,
    pub circuit: CircuitState,
    pub queued: usize,
    pub in_flight: usize,
    pub scheduled_retries: usize,
}

/// Every live endpoint's picture.
#[derive(Message)]
#[rtype(result = "Vec<EndpointSnapshot>")]
pub struct ReadEndpoints;

pub struct WebhookDispatcher {
    persistence: Arc<dyn Persistence>,
    config: Rc<WebhookConfig>,
    transport: Rc<dyn Transport>,
    endpoints: HashMap<String, Endpoint>,
}

struct Endpoint {
    addr: Addr<WebhookEndpointActor>,
    /// Deliveries handed to it so far: it may retire only when it has seen all.
    sent: u64,
}

impl WebhookDispatcher {
    pub fn new(
        persistence: Arc<dyn Persistence>,
        config: WebhookConfig,
        transport: Rc<dyn Transport>,
    ) -> Self {
        WebhookDispatcher { persistence, config: Rc::new(config), transport, endpoints: HashMap::new() }
    }
}

impl Actor for WebhookDispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(crate::engine::MAILBOX_CAPACITY);
        DISPATCHER.started();
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        DISPATCHER.stopped();
    }
}

impl Handler<Dispatch> for WebhookDispatcher {
    type Result = ();

    fn handle(&mut self, msg: Dispatch, ctx: &mut Context<Self>) {
        let _t = DISPATCHER.handling("Dispatch");
        let mut by_url: HashMap<String, Vec<DeliveryRecord>> = HashMap::new();
        for d in msg.0.into_iter().filter(|d| d.status.is_open()) {
            by_url.entry(d.url.clone()).or_default().push(d);
        }
        for (url, deliveries) in by_url {
            let endpoint = self.endpoints.entry(url.clone()).or_insert_with(|| {
                let actor = WebhookEndpointActor::new(
                    url.clone(),
                    ctx.address(),
                    self.persistence.clone(),
                    self.config.clone(),
                    self.transport.clone(),
                );
                Endpoint { addr: actor.start(), sent: 0 }
            });
            endpoint.sent += deliveries.len() as u64;
            ENDPOINT.enqueued();
            endpoint.addr.do_send(Enqueue(deliveries));
        }
    }
}

impl Handler<ReadEndpoints> for WebhookDispatcher {
    type Result = ResponseFuture<Vec<EndpointSnapshot>>;

    fn handle(&mut self, _: ReadEndpoints, _: &mut Context<Self>) -> Self::Result {
        let _t = DISPATCHER.handling("ReadEndpoints");
        let asks: Vec<_> = self
            .endpoints
            .values()
            .map(|e| {
                ENDPOINT.enqueued();
                e.addr.send(Snapshot)
            })
            .collect();
        Box::pin(async move { futures_util::future::join_all(asks).await.into_iter().flatten().collect() })
    }
}

/// An endpoint that has had nothing to do for a while asks to stop.
#[derive(Message)]
#[rtype(result = "()")]
struct Idle {
    url: String,
    /// Deliveries the endpoint has received, to compare with those sent to it.
    received: u64,
}

impl Handler<Idle> for WebhookDispatcher {
    type Result = ();

    fn handle(&mut self, msg: Idle, _: &mut Context<Self>) {
        let _t = DISPATCHER.handling("Idle");
        // Deliveries sent after the endpoint reported idle keep it alive: the
        // dispatcher is their only sender, so equal counts mean none is in its mailbox.
        if self.endpoints.get(&msg.url).is_some_and(|e| e.sent == msg.received) {
            if let Some(e) = self.endpoints.remove(&msg.url) {
                ENDPOINT.enqueued();
                e.addr.do_send(Retire);
            }
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Enqueue(Vec<DeliveryRecord>);

#[derive(Message)]
#[rtype(result = "EndpointSnapshot")]
struct Snapshot;

#[derive(Message)]
#[rtype(result = "()")]
struct Retire;

enum Circuit {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// One target URL: its queue, its attempts in flight, its retry timers and its circuit.
pub struct WebhookEndpointActor {
    url: String,
    /// `scheme://host:port`, the label of this endpoint's figures.
    origin: String,
    dispatcher: Addr<WebhookDispatcher>,
    persistence: Arc<dyn Persistence>,
    config: Rc<WebhookConfig>,
    transport: Rc<dyn Transport>,
    ready: VecDeque<DeliveryRecord>,
    in_flight: usize,
    /// Retries waiting for their time, and outcomes waiting to be committed.
    scheduled: usize,
    circuit: Circuit,
    received: u64,
    wake: Option<SpawnHandle>,
    idle_check: Option<SpawnHandle>,
}

impl WebhookEndpointActor {
    fn new(
        url: String,
        dispatcher: Addr<WebhookDispatcher>,
        persistence: Arc<dyn Persistence>,
        config: Rc<WebhookConfig>,
        transport: Rc<dyn Transport>,
    ) -> Self {
        let origin = origin_of(&url);
        WebhookEndpointActor {
            url,
            origin,
            dispatcher,
            persistence,
            config,
            transport,
            ready: VecDeque::new(),
            in_flight: 0,
            scheduled: 0,
            circuit: Circuit::Closed { failures: 0 },
            received: 0,
            wake: None,
            idle_check: None,
        }
    }

    fn circuit_state(&self) -> CircuitState {
        match self.circuit {
            Circuit::Closed { .. } => CircuitState::Closed,
            Circuit::Open { .. } => CircuitState::Open,
            Circuit::HalfOpen => CircuitState::HalfOpen,
        }
    }

    fn set_circuit(&mut self, circuit: Circuit) {
        self.circuit = circuit;
        metrics::gauge!("switchboard_webhook_circuit_state", "endpoint" => self.origin.clone())
            .set(self.circuit_state().gauge());
    }

    /// Starts as many due attempts as the concurrency limit and the circuit allow.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if let Circuit::Open { until } = self.circuit {
            let now = Instant::now();
            if now < until {
                if self.wake.is_none() && !self.ready.is_empty() {
                    self.wake = Some(ctx.run_later(until - now, |act, ctx| {
                        act.wake = None;
                        act.pump(ctx);
                    }));
                }
                return;
            }
            self.set_circuit(Circuit::HalfOpen);
        }
        while self.in_flight < self.config.max_in_flight {
            // Half open: one probe at a time decides whether the circuit closes.
            if matches!(self.circuit, Circuit::HalfOpen) && self.in_flight > 0 {
                break;
            }
            let Some(delivery) = self.ready.pop_front() else { break };
            self.attempt(delivery, ctx);
        }
        self.check_idle(ctx);
    }

    fn attempt(&mut self, delivery: DeliveryRecord, ctx: &mut Context<Self>) {
        self.in_flight += 1;
        let started = Instant::now();
        let send = self.transport.send(&delivery);
        ctx.spawn(send.into_actor(self).map(move |outcome, act, ctx| {
            ENDPOINT.enqueued(); // an attempt's answer counts as a message
            let _t = ENDPOINT.handling("AttemptDone");
            act.in_flight -= 1;
            metrics::histogram!("switchboard_webhook_attempt_seconds")
                .record(started.elapsed().as_secs_f64());
            let next = act.after_attempt(delivery, outcome);
            act.record(next, ctx);
            act.pump(ctx);
        }));
    }

    /// The delivery's state after an attempt, and the circuit's.
    fn after_attempt(&mut self, mut d: DeliveryRecord, outcome: AttemptOutcome) -> DeliveryRecord {
        let now = now_ms();
        d.attempts += 1;
        d.next_attempt_at_ms = None;
        let (label, failed) = match outcome {
            AttemptOutcome::Delivered { status } => {
                d.status = DeliveryStatus::Delivered;
                d.last_status_code = Some(status);
                d.last_error = None;
                d.delivered_at_ms = Some(now);
                metrics::counter!("switchboard_webhook_deliveries_total").increment(1);
                let secs = (now - d.created_at_ms).max(0) as f64 / 1000.0;
                metrics::histogram!("switchboard_webhook_delivery_seconds").record(secs);
                ("delivered", false)
            }
            AttemptOutcome::Failed { status, error } => {
                d.last_status_code = status;
                d.last_error = Some(error);
                match self.config.wait_after(d.attempts) {
                    Some(wait) => {
                        d.status = DeliveryStatus::Retrying;
                        d.next_attempt_at_ms = Some(now + wait.as_millis() as i64);
                    }
                    None => {
                        d.status = DeliveryStatus::Failed;
                        metrics::counter!("switchboard_webhook_failures_total").increment(1);
                    }
                }
                ("failed", true)
            }
            AttemptOutcome::Abandoned { error } => {
                d.last_error = Some(error);
                d.status = DeliveryStatus::Failed;
                metrics::counter!("switchboard_webhook_failures_total").increment(1);
                // Not the receiver's fault: the circuit is left as it is.
                metrics::counter!("switchboard_webhook_attempts_total", "outcome" => "abandoned")
                    .increment(1);
                return d;
            }
        };
        metrics::counter!("switchboard_webhook_attempts_total", "outcome" => label).increment(1);
        let circuit = match (&self.circuit, failed) {
            (_, false) => Circuit::Closed { failures: 0 },
            (Circuit::Closed { failures }, true) if failures + 1 < self.config.circuit_threshold => {
                Circuit::Closed { failures: failures + 1 }
            }
            (_, true) => Circuit::Open { until: Instant::now() + self.config.circuit_cooldown },
        };
        let was_open = !matches!(self.circuit, Circuit::Closed { .. });
        let opens = matches!(circuit, Circuit::Open { .. });
        if opens || was_open {
            if opens && !was_open {
                tracing::warn!(endpoint = %self.origin, "webhook endpoint keeps failing; circuit opened");
            }
            self.set_circuit(circuit);
        } else {
            self.circuit = circuit;
        }
        d
    }

    /// Commits the delivery's new state; only then is its next attempt scheduled.
    fn record(&mut self, d: DeliveryRecord, ctx: &mut Context<Self>) {
        self.scheduled += 1;
        retry_gauge(1.0);
        let commit = self.persistence.commit(vec![Change::UpdateDelivery(Box::new(d.clone()))]);
        ctx.spawn(commit.into_actor(self).map(move |result, act, ctx| {
            ENDPOINT.enqueued();
            let _t = ENDPOINT.handling("OutcomeCommitted");
            match result {
                Ok(()) => match d.next_attempt_at_ms {
                    Some(at) if d.status == DeliveryStatus::Retrying => {
                        ctx.run_later(crate::engine::until(at), move |act, ctx| {
                            ENDPOINT.enqueued(); // a timer firing counts as a message
                            let _t = ENDPOINT.handling("RetryDue");
                            act.scheduled -= 1;
                            retry_gauge(-1.0);
                            act.ready.push_back(d);
                            act.pump(ctx);
                        });
                    }
                    _ => {
                        act.scheduled -= 1;
                        retry_gauge(-1.0);
                        act.check_idle(ctx);
                    }
                },
                Err(e) => {
                    tracing::warn!(delivery = %d.id, error = %e, "could not record a webhook attempt; retrying");
                    ctx.run_later(act.config.retry_after_failure, move |act, ctx| {
                        act.scheduled -= 1;
                        retry_gauge(-1.0);
                        act.record(d, ctx);
                    });
                }
            }
        }));
    }

    fn is_idle(&self) -> bool {
        self.ready.is_empty()
            && self.in_flight == 0
            && self.scheduled == 0
            && matches!(self.circuit, Circuit::Closed { .. })
    }

    /// An idle endpoint asks the dispatcher to retire it after `idle_timeout`.
    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        if !self.is_idle() || self.idle_check.is_some() {
            return;
        }
        self.idle_check = Some(ctx.run_later(self.config.idle_timeout, |act, _| {
            act.idle_check = None;
            if act.is_idle() {
                DISPATCHER.enqueued();
                act.dispatcher.do_send(Idle { url: act.url.clone(), received: act.received });
            }
        }));
    }
}

fn retry_gauge(delta: f64) {
    metrics::gauge!("switchboard_webhook_retry_queue").increment(delta);
}

impl Actor for WebhookEndpointActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(crate::engine::MAILBOX_CAPACITY);
        ENDPOINT.started();
        metrics::gauge!("switchboard_webhook_circuit_state", "endpoint" => self.origin.clone()).set(0.0);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        ENDPOINT.stopped();
    }
}

impl Handler<Enqueue> for WebhookEndpointActor {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        let _t = ENDPOINT.handling("Enqueue");
        self.received += msg.0.len() as u64;
        let now = now_ms();
        for d in msg.0 {
            match d.next_attempt_at_ms {
                // Rebuilt at start with time left on its wait.
                Some(at) if at > now => {
                    self.scheduled += 1;
                    retry_gauge(1.0);
                    ctx.run_later(crate::engine::until(at), move |act, ctx| {
                        ENDPOINT.enqueued();
                        let _t = ENDPOINT.handling("RetryDue");
                        act.scheduled -= 1;
                        retry_gauge(-1.0);
                        act.ready.push_back(d);
                        act.pump(ctx);
                    });
                }
                _ => self.ready.push_back(d),
            }
        }
        self.pump(ctx);
    }
}

impl Handler<Snapshot> for WebhookEndpointActor {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _: Snapshot, _: &mut Context<Self>) -> Self::Result {
        let _t = ENDPOINT.handling("Snapshot");
        MessageResult(EndpointSnapshot {
            url: self.url.clone(),
            circuit: self.circuit_state(),
            queued: self.ready.len(),
            in_flight: self.in_flight,
            scheduled_retries: self.scheduled,
        })
    }
}

impl Handler<Retire> for WebhookEndpointActor {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        let _t = ENDPOINT.handling("Retire");
        ctx.stop();
    }
}

/// `scheme://host[:port]` of a URL, without path or query (which may carry secrets).
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Drop any userinfo, which the guard refuses anyway.
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TenantId;
    use crate::persistence::PersistError;
    use futures_util::future::BoxFuture;
    use std::cell::RefCell;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<DeliveryRecord>>);

    impl Persistence for Recorded {
        fn commit(&self, changes: Vec<Change>) -> BoxFuture<'static, Result<(), PersistError>> {
            let mut seen = self.0.lock().unwrap();
            for c in changes {
                if let Change::UpdateDelivery(d) = c {
                    seen.push(*d);
                }
            }
            Box::pin(async { Ok(()) })
        }
    }

    /// Answers from a script, per URL; records the order of attempts.
    struct Scripted {
        answers: RefCell<HashMap<String, VecDeque<AttemptOutcome>>>,
        hang: Vec<String>,
        log: Rc<RefCell<Vec<(String, String)>>>,
    }

    impl Transport for Scripted {
        fn send(&self, d: &DeliveryRecord) -> LocalBoxFuture<'static, AttemptOutcome> {
            self.log.borrow_mut().push((d.url.clone(), d.id.clone()));
            if self.hang.contains(&d.url) {
                return Box::pin(futures_util::future::pending());
            }
            let next = self
                .answers
                .borrow_mut()
                .get_mut(&d.url)
                .and_then(|q| q.pop_front())
                .unwrap_or(AttemptOutcome::Delivered { status: 200 });
            Box::pin(async move { next })
        }
    }

    fn delivery(id: &str, url: &str) -> DeliveryRecord {
        DeliveryRecord {
            id: id.into(),
            tenant_id: TenantId("t".into()),
            escalation_id: None,
            subscription_id: None,
            event: "escalation.resolved".into(),
            url: url.into(),
            payload: "{}".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_status_code: None,
            last_error: None,
            next_attempt_at_ms: None,
            delivered_at_ms: None,
            created_at_ms: now_ms(),
        }
    }

    fn config() -> WebhookConfig {
        WebhookConfig {
            retry_schedule: vec![Duration::from_millis(5), Duration::from_millis(10)],
            max_in_flight: 2,
            circuit_threshold: 100,
            circuit_cooldown: Duration::from_millis(20),
            retry_after_failure: Duration::from_millis(5),
            idle_timeout: Duration::from_millis(50),
        }
    }

    async fn settle(store: &Recorded, done: impl Fn(&[DeliveryRecord]) -> bool) -> Vec<DeliveryRecord> {
        for _ in 0..400 {
            let seen = store.0.lock().unwrap().clone();
            if done(&seen) {
                return seen;
            }
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("deliveries did not settle: {:?}", store.0.lock().unwrap());
    }

    fn fail(status: u16) -> AttemptOutcome {
        AttemptOutcome::Failed { status: Some(status), error: format!("answered {status}") }
    }

    #[actix_rt::test]
    async fn retries_keep_the_id_and_stop_at_the_end_of_the_schedule() {
        let store = Arc::new(Recorded::default());
        let log = Rc::new(RefCell::new(Vec::new()));
        let answers = HashMap::from([
            ("http://a/".to_string(), VecDeque::from([fail(500), fail(502)])),
            ("http://b/".to_string(), VecDeque::from([fail(500), fail(500), fail(503)])),
        ]);
        let transport = Rc::new(Scripted { answers: RefCell::new(answers), hang: vec![], log: log.clone() });
        let dispatcher = WebhookDispatcher::new(store.clone(), config(), transport).start();
        dispatcher.do_send(Dispatch(vec![delivery("msg_a", "http://a/"), delivery("msg_b", "http://b/")]));
        let seen = settle(&store, |s| s.iter().filter(|d| !d.status.is_open()).count() == 2).await;
        let last = |id: &str| seen.iter().rev().find(|d| d.id == id).unwrap().clone();
        let a = last("msg_a");
        assert_eq!((a.status, a.attempts, a.last_status_code), (DeliveryStatus::Delivered, 3, Some(200)));
        assert!(a.delivered_at_ms.is_some() && a.last_error.is_none());
        let b = last("msg_b");
        assert_eq!((b.status, b.attempts, b.last_status_code), (DeliveryStatus::Failed, 3, Some(503)));
        assert_eq!(b.last_error.as_deref(), Some("answered 503"));
        // Every intermediate state was recorded as retrying with a next attempt.
        let retrying: Vec<_> = seen.iter().filter(|d| d.status == DeliveryStatus::Retrying).collect();
        assert_eq!(retrying.len(), 4);
        assert!(retrying.iter().all(|d| d.next_attempt_at_ms.is_some()));
        let ids: Vec<String> =
            log.borrow().iter().filter(|(u, _)| u == "http://a/").map(|(_, i)| i.clone()).collect();
        assert_eq!(ids, vec!["msg_a"; 3]);
    }

    #[actix_rt::test]
    async fn a_hanging_endpoint_does_not_hold_back_another() {
        let store = Arc::new(Recorded::default());
        let log = Rc::new(RefCell::new(Vec::new()));
        let transport = Rc::new(Scripted {
            answers: RefCell::new(HashMap::new()),
            hang: vec!["http://slow/".into()],
            log: log.clone(),
        });
        let dispatcher = WebhookDispatcher::new(store.clone(), config(), transport).start();
        let slow: Vec<_> = (0..10).map(|i| delivery(&format!("msg_s{i}"), "http://slow/")).collect();
        dispatcher.do_send(Dispatch(slow));
        let fast: Vec<_> = (0..10).map(|i| delivery(&format!("msg_f{i}"), "http://fast/")).collect();
        dispatcher.do_send(Dispatch(fast));
        let seen =
            settle(&store, |s| s.iter().filter(|d| d.status == DeliveryStatus::Delivered).count() == 10)
                .await;
        assert!(seen.iter().all(|d| d.url == "http://fast/"));
        // The slow endpoint holds exactly its concurrency limit in flight.
        let slow_attempts = log.borrow().iter().filter(|(u, _)| u == "http://slow/").count();
        assert_eq!(slow_attempts, 2);
        let snapshots = dispatcher.send(ReadEndpoints).await.unwrap();
        let slow = snapshots.iter().find(|s| s.url == "http://slow/").unwrap();
        assert_eq!((slow.in_flight, slow.queued), (2, 8));
    }

    #[actix_rt::test]
    async fn a_failing_endpoint_opens_its_circuit_then_closes_it_on_success() {
        let store = Arc::new(Recorded::default());
        let log = Rc::new(RefCell::new(Vec::new()));
        let answers = HashMap::from([("http://c/".to_string(), VecDeque::from([fail(500), fail(500)]))]);
        let transport = Rc::new(Scripted { answers: RefCell::new(answers), hang: vec![], log: log.clone() });
        let mut cfg = config();
        cfg.circuit_threshold = 2;
        cfg.max_in_flight = 1;
        cfg.retry_schedule = vec![Duration::from_millis(1); 3];
        cfg.circuit_cooldown = Duration::from_millis(30);
        let dispatcher = WebhookDispatcher::new(store.clone(), cfg, transport).start();
        dispatcher.do_send(Dispatch(vec![delivery("msg_1", "http://c/"), delivery("msg_2", "http://c/")]));
        let open = async {
            for _ in 0..200 {
                let s = dispatcher.send(ReadEndpoints).await.unwrap();
                if s.first().is_some_and(|e| e.circuit == CircuitState::Open) {
                    return true;
                }
                actix_rt::time::sleep(Duration::from_millis(1)).await;
            }
            false
        };
        assert!(open.await, "two failures in a row open the circuit");
        settle(&store, |s| s.iter().filter(|d| d.status == DeliveryStatus::Delivered).count() == 2).await;
        let s = dispatcher.send(ReadEndpoints).await.unwrap();
        assert_eq!(s[0].circuit, CircuitState::Closed);
    }

    #[actix_rt::test]
    async fn rebuilt_deliveries_wait_out_their_remaining_time_and_idle_endpoints_retire() {
        let store = Arc::new(Recorded::default());
        let log = Rc::new(RefCell::new(Vec::new()));
        let transport =
            Rc::new(Scripted { answers: RefCell::new(HashMap::new()), hang: vec![], log: log.clone() });
        let dispatcher = WebhookDispatcher::new(store.clone(), config(), transport).start();
        let mut later = delivery("msg_later", "http://d/");
        later.status = DeliveryStatus::Retrying;
        later.attempts = 1;
        later.next_attempt_at_ms = Some(now_ms() + 60);
        let mut done = delivery("msg_done", "http://d/");
        done.status = DeliveryStatus::Delivered;
        dispatcher.do_send(Dispatch(vec![later, done]));
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        assert!(log.borrow().is_empty(), "not before its time; a delivered one never");
        let seen = settle(&store, |s| s.iter().any(|d| d.status == DeliveryStatus::Delivered)).await;
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].attempts, 2);
        let retired = async {
            for _ in 0..200 {
                if dispatcher.send(ReadEndpoints).await.unwrap().is_empty() {
                    return true;
                }
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
            false
        };
        assert!(retired.await, "an idle endpoint actor stops");
        assert_eq!(log.borrow().len(), 1);
    }

    #[test]
    fn waits_follow_the_schedule_with_a_little_jitter() {
        let c = WebhookConfig {
            retry_schedule: vec![Duration::from_secs(60), Duration::from_secs(300)],
            ..config()
        };
        for _ in 0..100 {
            let w = c.wait_after(1).unwrap();
            assert!(w >= Duration::from_secs(60) && w <= Duration::from_secs(66));
        }
        assert!(c.wait_after(2).unwrap() >= Duration::from_secs(300));
        assert_eq!(c.wait_after(3), None);
        assert_eq!(c.wait_after(0), None);
        assert_eq!(origin_of("https://u:p@example.com:8443/a?b=c"), "https://example.com:8443");
    }
}

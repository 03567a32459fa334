//! The routing policy alone (no actors, no I/O), at 100, 10 000 and 100 000
//! experts spread over 50 domains, 4 tenants and the platform. Each benchmark
//! id carries the expert count, so the cost ratio 100k / 100 can be read off
//! directly: it should stay near the log ratio, never the linear one.
//!
//! - `submit_assign_close`: every expert has room; a case is routed to an
//!   expert (a routing decision) and closed again (capacity freed, nothing to
//!   drain).
//! - `submit_queue_close`: every expert is full and as many cases as experts
//!   already wait; a case is queued and closed again (leaves its queue).
//! - `close_drain_submit`: every expert full, a queue as above; an assigned
//!   case is closed, its expert takes a queued case, and a new case (of the
//!   same domain and tenant) arrives, so the sizes stay steady.
//!
//! Run: `cargo bench -p switchboard-actors --bench routing`

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use switchboard_actors::model::{Domain, EscalationId, ExpertId, ExpertStatus, Priority, TenantId};
use switchboard_actors::routing::{CaseTicket, ExpertProfile, Owner, Router};
use uuid::Uuid;

const DOMAINS: usize = 50;
const TENANTS: usize = 4;
const SIZES: [usize; 3] = [100, 10_000, 100_000];

struct World {
    domains: Vec<Domain>,
    tenants: Vec<TenantId>,
    next_case: u128,
}

impl World {
    fn new() -> World {
        World {
            domains: (0..DOMAINS).map(|d| Domain::parse(&format!("bench.d{d}")).unwrap()).collect(),
            tenants: (0..TENANTS).map(|t| TenantId(format!("tenant-{t}"))).collect(),
            next_case: 0,
        }
    }

    /// Expert `i`: the first 50 are platform-wide (one per domain, so every
    /// case has a candidate even at 100 experts), then one in five; the rest
    /// serve one tenant. Two domains each, room for two cases.
    fn expert(&self, i: usize) -> ExpertProfile {
        let owner = if i < DOMAINS || i % 5 == 0 {
            Owner::Platform
        } else {
            Owner::Tenant(self.tenants[i % TENANTS].clone())
        };
        ExpertProfile {
            id: ExpertId(Uuid::from_u128(i as u128 + 1)),
            owner,
            domains: vec![self.domains[i % DOMAINS].clone(), self.domains[(i * 7 + 3) % DOMAINS].clone()],
            status: ExpertStatus::Available,
            max_concurrent: 2,
            quality: if i % 3 == 0 { None } else { Some((i % 10) as f64 / 10.0) },
        }
    }

    /// A case's domain and tenant are encoded in its id, so a closed case's
    /// successor can be made alike without a lookup.
    fn ticket(&mut self, domain: usize, tenant: usize) -> CaseTicket {
        self.next_case += 1;
        let n = self.next_case;
        CaseTicket {
            id: EscalationId(Uuid::from_u128(n << 16 | (domain as u128) << 8 | tenant as u128)),
            tenant: self.tenants[tenant].clone(),
            domain: self.domains[domain].clone(),
            priority: Priority::ALL[(n % 3) as usize],
            deadline_ms: 1_000_000 + (n % 1_000) as i64,
            arrival_ms: n as i64,
        }
    }

    fn spread(&mut self) -> CaseTicket {
        let n = self.next_case as usize;
        self.ticket(n % DOMAINS, (n / DOMAINS) % TENANTS)
    }

    fn router(&self, experts: usize) -> Router {
        let mut r = Router::new();
        for i in 0..experts {
            r.upsert_expert(self.expert(i));
        }
        r
    }

    /// Every expert full (two restored cases each, in its own domains and,
    /// for a tenant's expert, of its tenant), then `queued` waiting cases.
    fn full_router(&mut self, experts: usize, queued: usize) -> (Router, VecDeque<EscalationId>) {
        let mut r = self.router(experts);
        let mut assigned = VecDeque::new();
        for i in 0..experts {
            let e = self.expert(i);
            // A tenant's expert `i` serves tenant `i % TENANTS`.
            let tenant = i % TENANTS;
            for d in [i % DOMAINS, (i * 7 + 3) % DOMAINS] {
                let t = self.ticket(d, tenant);
                assigned.push_back(t.id);
                assert!(r.restore_assigned(t, e.id, vec![]).is_none());
            }
        }
        for _ in 0..queued {
            let t = self.spread();
            assert!(r.submit(t, vec![]).is_none(), "every expert should be full");
        }
        (r, assigned)
    }
}

fn decode(id: EscalationId) -> (usize, usize) {
    let n = id.0.as_u128();
    (((n >> 8) & 0xff) as usize, (n & 0xff) as usize)
}

fn routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing");
    for &n in &SIZES {
        let mut w = World::new();
        let mut r = w.router(n);
        group.bench_with_input(BenchmarkId::new("submit_assign_close", n), &n, |b, _| {
            b.iter(|| {
                let t = w.spread();
                let id = t.id;
                let a = r.submit(black_box(t), Vec::new());
                assert!(a.is_some());
                black_box(r.close(id));
            })
        });
        drop(r);

        let mut w = World::new();
        let (mut r, _) = w.full_router(n, n);
        group.bench_with_input(BenchmarkId::new("submit_queue_close", n), &n, |b, _| {
            b.iter(|| {
                let t = w.spread();
                let id = t.id;
                let a = r.submit(black_box(t), Vec::new());
                assert!(a.is_none());
                black_box(r.close(id));
            })
        });
        drop(r);

        let mut w = World::new();
        let (mut r, mut assigned) = w.full_router(n, n);
        group.bench_with_input(BenchmarkId::new("close_drain_submit", n), &n, |b, _| {
            b.iter(|| {
                let id = assigned.pop_front().expect("assigned cases");
                let (d, t) = decode(id);
                for a in r.close(id) {
                    assigned.push_back(a.case);
                }
                let t = w.ticket(d, t);
                let new = t.id;
                if r.submit(black_box(t), Vec::new()).is_some() {
                    assigned.push_back(new);
                }
            })
        });
        assert_eq!(r.sizes().1, 3 * n, "close_drain_submit keeps the number of cases");
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = routing
}
criterion_main!(benches);

//! Unit tests of the routing policy, one rule at a time.

use uuid::Uuid;

use super::*;

fn dom(s: &str) -> Domain {
    Domain::parse(s).unwrap()
}

fn tenant(s: &str) -> TenantId {
    TenantId(s.to_string())
}

fn xid(n: u128) -> ExpertId {
    ExpertId(Uuid::from_u128(n))
}

fn cid(n: u128) -> EscalationId {
    EscalationId(Uuid::from_u128(1_000_000 + n))
}

fn expert(n: u128, owner: Owner, domains: &[&str]) -> ExpertProfile {
    ExpertProfile {
        id: xid(n),
        owner,
        domains: domains.iter().map(|d| dom(d)).collect(),
        status: ExpertStatus::Available,
        max_concurrent: 1,
        quality: None,
    }
}

fn platform(n: u128, domains: &[&str]) -> ExpertProfile {
    expert(n, Owner::Platform, domains)
}

fn of_tenant(n: u128, t: &str, domains: &[&str]) -> ExpertProfile {
    expert(n, Owner::Tenant(tenant(t)), domains)
}

fn case(n: u128, t: &str, domain: &str) -> CaseTicket {
    CaseTicket {
        id: cid(n),
        tenant: tenant(t),
        domain: dom(domain),
        priority: Priority::Standard,
        deadline_ms: 1_000,
        arrival_ms: n as i64,
    }
}

fn assigned(case: u128, expert: u128) -> Assignment {
    Assignment { case: cid(case), expert: xid(expert) }
}

fn router_with(experts: Vec<ExpertProfile>) -> Router {
    let mut r = Router::new();
    for e in experts {
        assert!(r.upsert_expert(e).is_empty());
    }
    r
}

#[test]
fn routes_only_to_an_expert_with_the_domain() {
    let mut r = router_with(vec![platform(1, &["tax.us"]), platform(2, &["health.rcm", "legal.eu"])]);
    assert_eq!(r.submit(case(1, "t1", "health.rcm"), vec![]), Some(assigned(1, 2)));
    assert_eq!(r.submit(case(2, "t1", "finance.fx"), vec![]), None);
    assert!(r.is_queued(cid(2)));
    assert_eq!(r.assigned_to(cid(1)), Some(xid(2)));
}

#[test]
fn routes_only_to_available_experts() {
    let mut busy = platform(1, &["tax.us"]);
    busy.status = ExpertStatus::Busy;
    let mut offline = platform(2, &["tax.us"]);
    offline.status = ExpertStatus::Offline;
    let mut r = router_with(vec![busy, offline]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), None);
    r.upsert_expert(platform(3, &["tax.us"]));
    assert_eq!(r.assigned_to(cid(1)), Some(xid(3)));
}

#[test]
fn respects_max_concurrent() {
    let mut two = platform(1, &["tax.us"]);
    two.max_concurrent = 2;
    let mut zero = platform(2, &["tax.us"]);
    zero.max_concurrent = 0;
    let mut r = router_with(vec![two, zero]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 1)));
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![]), Some(assigned(2, 1)));
    assert_eq!(r.submit(case(3, "t1", "tax.us"), vec![]), None);
    assert_eq!(r.open_count(xid(1)), 2);
    assert_eq!(r.open_count(xid(2)), 0);
    assert_eq!(r.open_count(xid(99)), 0);
}

#[test]
fn tenant_experts_serve_only_their_tenant() {
    let mut r = router_with(vec![of_tenant(1, "t1", &["tax.us"])]);
    assert_eq!(r.submit(case(1, "t2", "tax.us"), vec![]), None);
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![]), Some(assigned(2, 1)));
    // Its slot freed, the other tenant's queued case still does not reach it.
    assert!(r.close(cid(2)).is_empty());
    assert!(r.is_queued(cid(1)));
}

#[test]
fn platform_experts_serve_every_tenant() {
    let mut r = router_with(vec![platform(1, &["tax.us"])]);
    assert_eq!(r.submit(case(1, "t2", "tax.us"), vec![]), Some(assigned(1, 1)));
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![]), None);
    assert_eq!(r.close(cid(1)), vec![assigned(2, 1)]);
}

#[test]
fn tenant_and_platform_experts_compete_on_rank() {
    let mut own = of_tenant(1, "t1", &["tax.us"]);
    own.quality = Some(0.6);
    let mut shared = platform(2, &["tax.us"]);
    shared.quality = Some(0.9);
    let mut r = router_with(vec![own, shared]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 2)));
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![]), Some(assigned(2, 1)));
}

#[test]
fn excluded_experts_are_skipped() {
    let mut best = platform(1, &["tax.us"]);
    best.quality = Some(0.9);
    let mut r = router_with(vec![best, platform(2, &["tax.us"])]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![xid(1)]), Some(assigned(1, 2)));
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![xid(1)]), None);
    // Expert 1 has room but case 2 excludes it.
    assert!(r.is_queued(cid(2)));
    assert_eq!(r.open_count(xid(1)), 0);
}

#[test]
fn ranks_by_quality_first() {
    let mut low = platform(1, &["tax.us"]);
    low.quality = Some(0.2);
    let mut high = platform(2, &["tax.us"]);
    high.quality = Some(0.8);
    high.max_concurrent = 3;
    let mut r = router_with(vec![low, high]);
    // Quality outranks fewer open cases.
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 2)));
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![]), Some(assigned(2, 2)));
}

#[test]
fn no_quality_counts_as_the_prior() {
    let mut below = platform(1, &["tax.us"]);
    below.quality = Some(0.49);
    let unknown = platform(2, &["tax.us"]);
    let mut above = platform(3, &["tax.us"]);
    above.quality = Some(0.51);
    let mut r = router_with(vec![below, unknown, above]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 3)));
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![]), Some(assigned(2, 2)));
    assert_eq!(r.submit(case(3, "t1", "tax.us"), vec![]), Some(assigned(3, 1)));
}

#[test]
fn a_better_quality_reranks() {
    let mut r = router_with(vec![platform(1, &["tax.us"]), platform(2, &["tax.us"])]);
    let mut better = platform(2, &["tax.us"]);
    better.quality = Some(0.7);
    assert!(r.upsert_expert(better).is_empty());
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 2)));
}

#[test]
fn equal_quality_goes_to_fewest_open() {
    let mut a = platform(1, &["tax.us"]);
    a.max_concurrent = 3;
    let mut b = platform(2, &["tax.us"]);
    b.max_concurrent = 3;
    let mut r = router_with(vec![a, b]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 1)));
    // Expert 2 has fewer open cases.
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![]), Some(assigned(2, 2)));
    // Both have one: expert 1 has been idle longer.
    assert_eq!(r.submit(case(3, "t1", "tax.us"), vec![]), Some(assigned(3, 1)));
}

#[test]
fn equal_quality_and_load_goes_to_longest_idle() {
    let mut a = platform(1, &["tax.us"]);
    a.max_concurrent = 2;
    let mut b = platform(2, &["tax.us"]);
    b.max_concurrent = 2;
    // Expert 2 registers first: idle longest.
    let mut r = router_with(vec![b, a]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 2)));
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![]), Some(assigned(2, 1)));
    // Both have one open case; both got one, expert 2 first: it is idle longer.
    assert!(r.close(cid(1)).is_empty());
    assert!(r.close(cid(2)).is_empty());
    assert_eq!(r.submit(case(3, "t1", "tax.us"), vec![]), Some(assigned(3, 2)));
    assert_eq!(r.submit(case(4, "t1", "tax.us"), vec![]), Some(assigned(4, 1)));
}

#[test]
fn queue_orders_by_priority_then_deadline_then_arrival() {
    let mut e = platform(1, &["tax.us"]);
    e.status = ExpertStatus::Offline;
    e.max_concurrent = 1;
    let mut r = router_with(vec![e.clone()]);
    let mut tickets = vec![
        CaseTicket { priority: Priority::Batch, deadline_ms: 1, ..case(1, "t1", "tax.us") },
        CaseTicket { priority: Priority::Standard, deadline_ms: 50, ..case(2, "t1", "tax.us") },
        CaseTicket { priority: Priority::Standard, deadline_ms: 10, ..case(3, "t2", "tax.us") },
        CaseTicket { priority: Priority::Urgent, deadline_ms: 90, ..case(4, "t1", "tax.us") },
        CaseTicket {
            priority: Priority::Standard,
            deadline_ms: 10,
            arrival_ms: 0,
            ..case(5, "t1", "tax.us")
        },
    ];
    tickets.reverse();
    for t in tickets {
        assert_eq!(r.submit(t, vec![]), None);
    }
    e.status = ExpertStatus::Available;
    let mut order = Vec::new();
    assert_eq!(r.upsert_expert(e), vec![assigned(4, 1)]);
    order.push(4);
    let mut current = cid(4);
    for _ in 0..4 {
        let next = r.close(current);
        assert_eq!(next.len(), 1);
        current = next[0].case;
        order.push(current.0.as_u128() - 1_000_000);
    }
    assert_eq!(order, vec![4, 5, 3, 2, 1]);
}

#[test]
fn closing_a_queued_case_leaves_the_queue() {
    let mut r = router_with(vec![]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), None);
    assert_eq!(r.queue_depths(), vec![(dom("tax.us"), Priority::Standard, 1)]);
    assert!(r.close(cid(1)).is_empty());
    assert!(!r.is_queued(cid(1)));
    assert!(r.queue_depths().is_empty());
    assert_eq!(r.sizes(), (0, 0));
    assert!(r.upsert_expert(platform(1, &["tax.us"])).is_empty());
}

#[test]
fn closing_unknown_cases_is_ignored() {
    let mut r = router_with(vec![platform(1, &["tax.us"])]);
    assert!(r.close(cid(7)).is_empty());
    assert_eq!(r.sizes(), (1, 0));
}

#[test]
fn close_drains_the_queue_into_the_freed_slot() {
    let mut r = router_with(vec![platform(1, &["tax.us"])]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 1)));
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![]), None);
    assert_eq!(r.close(cid(1)), vec![assigned(2, 1)]);
    assert_eq!(r.open_count(xid(1)), 1);
    assert!(r.queue_depths().is_empty());
}

#[test]
fn give_back_with_exclude_reroutes_then_drains() {
    let mut a = platform(1, &["tax.us"]);
    a.quality = Some(0.9);
    let mut r = router_with(vec![a, platform(2, &["tax.us"])]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 1)));
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![]), Some(assigned(2, 2)));
    assert_eq!(r.submit(case(3, "t1", "tax.us"), vec![]), None);
    // Expert 1 declines case 1: it cannot go back to 1, expert 2 is full, so it
    // queues; then expert 1 takes the best queued case it may take, case 3.
    assert_eq!(r.give_back(cid(1), xid(1), true), vec![assigned(3, 1)]);
    assert!(r.is_queued(cid(1)));
    // Expert 1 frees up again: case 1 still excludes it.
    assert!(r.close(cid(3)).is_empty());
    assert!(r.is_queued(cid(1)));
    assert_eq!(r.close(cid(2)), vec![assigned(1, 2)]);
}

#[test]
fn give_back_reroutes_to_another_expert_with_room() {
    let mut a = platform(1, &["tax.us"]);
    a.quality = Some(0.9);
    let mut r = router_with(vec![a, platform(2, &["tax.us"])]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 1)));
    assert_eq!(r.give_back(cid(1), xid(1), true), vec![assigned(1, 2)]);
    assert_eq!(r.open_count(xid(1)), 0);
    assert_eq!(r.open_count(xid(2)), 1);
}

#[test]
fn give_back_without_exclude_may_come_back() {
    let mut r = router_with(vec![platform(1, &["tax.us"])]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 1)));
    assert_eq!(r.give_back(cid(1), xid(1), false), vec![assigned(1, 1)]);
    assert_eq!(r.open_count(xid(1)), 1);
}

#[test]
fn give_back_is_ignored_unless_assigned_to_that_expert() {
    let mut r = router_with(vec![platform(1, &["tax.us"]), platform(2, &["tax.us"])]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 1)));
    assert!(r.give_back(cid(1), xid(2), true).is_empty());
    assert!(r.give_back(cid(9), xid(1), true).is_empty());
    assert_eq!(r.assigned_to(cid(1)), Some(xid(1)));
    let mut r = router_with(vec![]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), None);
    assert!(r.give_back(cid(1), xid(1), true).is_empty());
    assert!(r.is_queued(cid(1)));
}

#[test]
fn becoming_available_drains() {
    let mut e = platform(1, &["tax.us"]);
    e.status = ExpertStatus::Busy;
    e.max_concurrent = 2;
    let mut r = router_with(vec![e.clone()]);
    for n in 1..=3 {
        assert_eq!(r.submit(case(n, "t1", "tax.us"), vec![]), None);
    }
    e.status = ExpertStatus::Available;
    assert_eq!(r.upsert_expert(e), vec![assigned(1, 1), assigned(2, 1)]);
    assert!(r.is_queued(cid(3)));
}

#[test]
fn a_new_expert_drains() {
    let mut r = router_with(vec![]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), None);
    assert_eq!(r.submit(case(2, "t2", "tax.us"), vec![]), None);
    assert_eq!(r.upsert_expert(of_tenant(1, "t2", &["tax.us"])), vec![assigned(2, 1)]);
    assert_eq!(r.upsert_expert(platform(2, &["tax.us"])), vec![assigned(1, 2)]);
}

#[test]
fn raising_max_concurrent_drains() {
    let mut e = platform(1, &["tax.us"]);
    let mut r = router_with(vec![e.clone()]);
    for n in 1..=4 {
        r.submit(case(n, "t1", "tax.us"), vec![]);
    }
    e.max_concurrent = 3;
    assert_eq!(r.upsert_expert(e), vec![assigned(2, 1), assigned(3, 1)]);
    assert_eq!(r.open_count(xid(1)), 3);
}

#[test]
fn adding_a_domain_drains() {
    let mut r = router_with(vec![platform(1, &["tax.us"])]);
    assert_eq!(r.submit(case(1, "t1", "legal.eu"), vec![]), None);
    assert_eq!(r.upsert_expert(platform(1, &["tax.us", "legal.eu"])), vec![assigned(1, 1)]);
}

#[test]
fn drain_takes_the_most_urgent_case_across_domains() {
    let mut e = platform(1, &["tax.us", "legal.eu"]);
    e.status = ExpertStatus::Offline;
    let mut r = router_with(vec![e.clone()]);
    r.submit(CaseTicket { priority: Priority::Batch, ..case(1, "t1", "tax.us") }, vec![]);
    r.submit(CaseTicket { priority: Priority::Urgent, ..case(2, "t2", "legal.eu") }, vec![]);
    r.submit(CaseTicket { priority: Priority::Standard, ..case(3, "t1", "tax.us") }, vec![]);
    e.status = ExpertStatus::Available;
    assert_eq!(r.upsert_expert(e), vec![assigned(2, 1)]);
    assert_eq!(r.close(cid(2)), vec![assigned(3, 1)]);
    assert_eq!(r.close(cid(3)), vec![assigned(1, 1)]);
}

#[test]
fn drain_skips_cases_that_exclude_the_expert() {
    let mut e = platform(1, &["tax.us"]);
    e.status = ExpertStatus::Offline;
    let mut r = router_with(vec![e.clone()]);
    r.submit(CaseTicket { priority: Priority::Urgent, ..case(1, "t1", "tax.us") }, vec![xid(1)]);
    r.submit(CaseTicket { priority: Priority::Batch, ..case(2, "t1", "tax.us") }, vec![]);
    e.status = ExpertStatus::Available;
    assert_eq!(r.upsert_expert(e), vec![assigned(2, 1)]);
    assert!(r.is_queued(cid(1)));
}

#[test]
fn tenant_expert_drains_only_its_tenant() {
    let mut r = router_with(vec![]);
    r.submit(CaseTicket { priority: Priority::Urgent, ..case(1, "t1", "tax.us") }, vec![]);
    r.submit(CaseTicket { priority: Priority::Batch, ..case(2, "t2", "tax.us") }, vec![]);
    assert_eq!(r.upsert_expert(of_tenant(1, "t2", &["tax.us"])), vec![assigned(2, 1)]);
    assert!(r.is_queued(cid(1)));
}

#[test]
fn lowering_max_concurrent_keeps_assigned_cases() {
    let mut e = platform(1, &["tax.us"]);
    e.max_concurrent = 3;
    let mut r = router_with(vec![e.clone()]);
    for n in 1..=3 {
        assert_eq!(r.submit(case(n, "t1", "tax.us"), vec![]), Some(assigned(n, 1)));
    }
    e.max_concurrent = 1;
    assert!(r.upsert_expert(e).is_empty());
    assert_eq!(r.open_count(xid(1)), 3);
    assert_eq!(r.submit(case(4, "t1", "tax.us"), vec![]), None);
    // Closing one leaves it at 2 > 1: still no room.
    assert!(r.close(cid(1)).is_empty());
    assert!(r.close(cid(2)).is_empty());
    assert_eq!(r.close(cid(3)), vec![assigned(4, 1)]);
}

#[test]
fn changing_owner_and_domains_reindexes() {
    let mut r = router_with(vec![of_tenant(1, "t1", &["tax.us"])]);
    // Now t2's expert, in another domain: gone from t1's tax.us index.
    assert!(r.upsert_expert(of_tenant(1, "t2", &["legal.eu"])).is_empty());
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), None);
    assert_eq!(r.submit(case(2, "t1", "legal.eu"), vec![]), None);
    assert_eq!(r.submit(case(3, "t2", "legal.eu"), vec![]), Some(assigned(3, 1)));
    let mut e = platform(1, &["tax.us", "legal.eu"]);
    e.max_concurrent = 3;
    // Keeps case 3, takes both of t1's queued cases (same priority and
    // deadline: earlier arrival first).
    assert_eq!(r.upsert_expert(e), vec![assigned(1, 1), assigned(2, 1)]);
    assert_eq!(r.open_count(xid(1)), 3);
    assert!(r.close(cid(3)).is_empty());
    // Going offline removes it from every index.
    let mut off = platform(1, &["tax.us", "legal.eu"]);
    off.status = ExpertStatus::Offline;
    off.max_concurrent = 3;
    assert!(r.upsert_expert(off).is_empty());
    assert_eq!(r.submit(case(4, "t1", "tax.us"), vec![]), None);
}

#[test]
fn duplicate_domains_are_indexed_once() {
    let mut e = platform(1, &["tax.us", "tax.us"]);
    e.max_concurrent = 2;
    let mut r = router_with(vec![e]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), Some(assigned(1, 1)));
    assert!(r.close(cid(1)).is_empty());
    assert_eq!(r.submit(case(2, "t1", "tax.us"), vec![]), Some(assigned(2, 1)));
}

#[test]
fn restore_counts_even_over_capacity() {
    let mut r = router_with(vec![platform(1, &["tax.us"])]);
    assert_eq!(r.restore_assigned(case(1, "t1", "tax.us"), xid(1), vec![]), None);
    assert_eq!(r.restore_assigned(case(2, "t1", "tax.us"), xid(1), vec![xid(5)]), None);
    assert_eq!(r.open_count(xid(1)), 2);
    assert_eq!(r.assigned_to(cid(2)), Some(xid(1)));
    assert_eq!(r.submit(case(3, "t1", "tax.us"), vec![]), None);
    // Restoring the same case twice does not count it twice.
    assert_eq!(r.restore_assigned(case(2, "t1", "tax.us"), xid(1), vec![]), None);
    assert_eq!(r.open_count(xid(1)), 2);
    assert!(r.close(cid(1)).is_empty());
    assert_eq!(r.close(cid(2)), vec![assigned(3, 1)]);
}

#[test]
fn restore_to_an_unknown_expert_submits() {
    let mut r = router_with(vec![platform(1, &["tax.us"])]);
    assert_eq!(r.restore_assigned(case(1, "t1", "tax.us"), xid(9), vec![]), Some(assigned(1, 1)));
    assert_eq!(r.restore_assigned(case(2, "t1", "tax.us"), xid(9), vec![]), None);
    assert!(r.is_queued(cid(2)));
    // A restored case is given back like any other.
    assert_eq!(r.restore_assigned(case(3, "t1", "tax.us"), xid(1), vec![]), None);
    assert!(r.close(cid(1)).is_empty());
    assert_eq!(r.give_back(cid(3), xid(1), true), vec![assigned(2, 1)]);
    assert!(r.is_queued(cid(3)));
}

#[test]
fn resubmitting_a_known_case_does_not_corrupt_the_indexes() {
    let mut r = router_with(vec![]);
    assert_eq!(r.submit(case(1, "t1", "tax.us"), vec![]), None);
    // A queued case is replaced: one entry, in its new domain.
    assert_eq!(r.submit(case(1, "t1", "legal.eu"), vec![]), None);
    assert_eq!(r.queue_depths(), vec![(dom("legal.eu"), Priority::Standard, 1)]);
    assert_eq!(r.upsert_expert(platform(1, &["legal.eu"])), vec![assigned(1, 1)]);
    // An assigned case stays where it is.
    assert_eq!(r.submit(case(1, "t1", "legal.eu"), vec![]), Some(assigned(1, 1)));
    assert_eq!(r.open_count(xid(1)), 1);
    assert_eq!(r.sizes(), (1, 1));
    assert!(r.queue_depths().is_empty());
}

#[test]
fn queue_depths_and_sizes_are_counted() {
    let mut r = router_with(vec![platform(1, &["tax.us"])]);
    r.submit(case(1, "t1", "tax.us"), vec![]);
    r.submit(CaseTicket { priority: Priority::Urgent, ..case(2, "t1", "tax.us") }, vec![]);
    r.submit(CaseTicket { priority: Priority::Urgent, ..case(3, "t2", "tax.us") }, vec![]);
    r.submit(CaseTicket { priority: Priority::Batch, ..case(4, "t2", "legal.eu") }, vec![]);
    assert_eq!(
        r.queue_depths(),
        vec![(dom("legal.eu"), Priority::Batch, 1), (dom("tax.us"), Priority::Urgent, 2),]
    );
    assert_eq!(r.sizes(), (1, 4));
    assert_eq!(r.close(cid(1)), vec![assigned(2, 1)]);
    assert_eq!(
        r.queue_depths(),
        vec![(dom("legal.eu"), Priority::Batch, 1), (dom("tax.us"), Priority::Urgent, 1)]
    );
    assert_eq!(r.sizes(), (1, 3));
}

#[test]
fn expert_loads_list_the_most_loaded_first_and_totals_count_every_status() {
    let mut two = of_tenant(2, "t1", &["tax.us", "legal.eu", "tax.us"]);
    two.max_concurrent = 3;
    let mut three = platform(3, &["tax.us"]);
    three.max_concurrent = 2;
    let mut busy = platform(4, &["health.rcm"]);
    busy.status = ExpertStatus::Busy;
    busy.max_concurrent = 5;
    let mut offline = platform(5, &["health.rcm"]);
    offline.status = ExpertStatus::Offline;
    let mut r = router_with(vec![platform(1, &["finance.fx"]), two, three, busy, offline]);
    assert_eq!(r.expert_totals().open, 0);
    // The best-ranked expert with room takes each case: quality ties, so fewest open, then idle longest.
    for n in 1..=4 {
        assert!(r.submit(case(n, "t1", "tax.us"), vec![]).is_some());
    }
    assert_eq!((r.open_count(xid(2)), r.open_count(xid(3))), (2, 2));
    // A busy expert keeps the case restored to it.
    r.submit(case(5, "t1", "health.rcm"), vec![]);
    assert_eq!(r.restore_assigned(case(5, "t1", "health.rcm"), xid(4), vec![]), None);

    let load = |id: u128, open: u32| {
        let e = r.expert_loads(10).into_iter().find(|l| l.id == xid(id)).unwrap();
        assert_eq!(e.open, open);
        e
    };
    let two = load(2, 2);
    assert_eq!(two.owner, Owner::Tenant(tenant("t1")));
    assert_eq!(two.domains, vec![dom("legal.eu"), dom("tax.us")], "sorted, without duplicates");
    assert_eq!((two.status, two.max_concurrent), (ExpertStatus::Available, 3));
    assert_eq!(load(4, 1).status, ExpertStatus::Busy);

    let order: Vec<(ExpertId, u32)> = r.expert_loads(10).iter().map(|l| (l.id, l.open)).collect();
    assert_eq!(order, vec![(xid(2), 2), (xid(3), 2), (xid(4), 1), (xid(1), 0), (xid(5), 0)]);
    let top: Vec<ExpertId> = r.expert_loads(3).iter().map(|l| l.id).collect();
    assert_eq!(top, vec![xid(2), xid(3), xid(4)]);
    assert!(r.expert_loads(0).is_empty());

    assert_eq!(
        r.expert_totals(),
        ExpertTotals {
            total: 5,
            available: 3,
            busy: 1,
            offline: 1,
            open: 5,
            capacity: 1 + 3 + 2,
            free: 1 + 1,
        }
    );
    // Lowering `max_concurrent` below the open count keeps the cases and frees nothing.
    let mut lowered = of_tenant(2, "t1", &["tax.us"]);
    lowered.max_concurrent = 1;
    assert!(r.upsert_expert(lowered).is_empty());
    assert_eq!(r.expert_totals().free, 1);
    assert_eq!(r.expert_totals().capacity, 1 + 1 + 2);
    assert!(Router::new().expert_loads(100).is_empty());
    assert_eq!(Router::new().expert_totals(), ExpertTotals::default());
}

#[test]
fn quality_is_clamped_and_nan_is_the_prior() {
    assert_eq!(quality_micros(None), 500_000);
    assert_eq!(quality_micros(Some(f64::NAN)), 500_000);
    assert_eq!(quality_micros(Some(1.5)), 1_000_000);
    assert_eq!(quality_micros(Some(-0.1)), 0);
    assert_eq!(quality_micros(Some(0.25)), 250_000);
}

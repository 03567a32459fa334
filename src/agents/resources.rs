//! Resource figures of running containers: read from `/proc` for a
//! `process` runtime's child and from the tenant's data directory, sampled on
//! a timer (`SWITCHBOARD_RESOURCE_SAMPLE_INTERVAL`) into `tenant_resources`.
//!
//! Per running container and tick, a `process` runtime's child gives
//! `cpu_pct` (its own CPU time and that of the children it reaped, since the
//! previous sample), `mem_bytes` (resident memory of it and its direct
//! children), `pids` (their threads) and `disk_bytes` (the size of the files
//! under the tenant's data directory, its working directory). The `embedded`
//! runtime has no process of its own: its figures are null (extensions.md)
//! and it is not sampled (a row of nulls per tenant and tick would only fill
//! the table). Network figures and memory limits are null. Samples older
//! than seven days are forgotten.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix_web::web;
use switchboard_actors::tenant::TenantState;

use crate::startup::AppState;
use crate::store::monitoring::{prune_resources, record_resources, ResourceRow};
use crate::store::sessions::HOUR_MS;
use crate::store::{now_ms, WriteRequest};

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`).
/// The kernel's ABI fixes it at 100 on x86, ARM, RISC-V and the other
/// architectures we run on; reading `sysconf(_SC_CLK_TCK)` would need libc.
pub const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// How long samples are kept.
const RETENTION_MS: i64 = 7 * 24 * HOUR_MS;
/// How often old samples are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Starts the sampler; it samples only once the server is ready, and ends
/// once the application state is gone.
pub fn spawn_sampler(state: web::Data<AppState>) {
    let every = state.settings.resource_sample_interval;
    let state: Weak<AppState> = Arc::downgrade(&state.into_inner());
    actix_web::rt::spawn(async move {
        let mut ticker = actix_web::rt::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sampler = Sampler::default();
        loop {
            ticker.tick().await;
            let Some(state) = state.upgrade() else { return };
            if !state.ready.load(std::sync::atomic::Ordering::Acquire) {
                continue;
            }
            tick(&state, &mut sampler).await;
        }
    });
}

/// A running container, as the sampler needs it.
struct Target {
    tenant_id: String,
    runtime: &'static str,
    pid: Option<u32>,
    data_dir: PathBuf,
}

async fn tick(state: &AppState, sampler: &mut Sampler) {
    let targets: Vec<Target> = state
        .agents
        .containers()
        .into_iter()
        .filter(|(_, c)| c.status == TenantState::Running && c.pid.is_some())
        .map(|(tenant_id, c)| Target {
            data_dir: state.agents.data_dir(&tenant_id),
            tenant_id,
            runtime: c.runtime,
            pid: c.pid,
        })
        .collect();
    let mut writes = Vec::new();
    if !targets.is_empty() {
        // Reading /proc and walking directories blocks: off the async threads.
        let mut taken = std::mem::take(sampler);
        match actix_web::rt::task::spawn_blocking(move || {
            let rows = taken.sample(targets, now_ms());
            (taken, rows)
        })
        .await
        {
            Ok((back, rows)) => {
                *sampler = back;
                writes.push(record_resources(rows));
            }
            Err(e) => tracing::warn!(error = %e, "resource sampling failed"),
        }
    }
    let prune = sampler.last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY);
    if prune {
        writes.push(prune_resources(now_ms() - RETENTION_MS));
    }
    if writes.is_empty() {
        return;
    }
    match state.store.submit(WriteRequest(writes)).await {
        Ok(()) if prune => sampler.last_prune = Some(Instant::now()),
        Ok(()) => {}
        Err(e) => tracing::warn!(error = %e, "could not record resource samples"),
    }
}

/// The previous CPU reading of each sampled process, to take deltas from.
#[derive(Default)]
struct Sampler {
    /// pid → (its start time, CPU ticks, when read): a reused pid starts afresh.
    cpu: HashMap<u32, (u64, u64, Instant)>,
    last_prune: Option<Instant>,
}

impl Sampler {
    fn sample(&mut self, targets: Vec<Target>, at_ms: i64) -> Vec<ResourceRow> {
        let children =
            if targets.iter().any(|t| t.pid.is_some()) { children_by_parent() } else { HashMap::new() };
        let uptime = std::fs::read_to_string("/proc/uptime").ok().and_then(|s| parse_uptime(&s));
        let mut seen = Vec::new();
        let rows = targets
            .into_iter()
            .map(|t| {
                let proc = t.pid.and_then(|pid| {
                    let kids = children.get(&pid).map(Vec::as_slice).unwrap_or_default();
                    let sample = sample_tree(pid, kids)?;
                    seen.push(pid);
                    Some((pid, sample))
                });
                let cpu_pct = proc.and_then(|(pid, s)| self.cpu_pct(pid, &s, uptime));
                ResourceRow {
                    tenant_id: t.tenant_id,
                    recorded_at: at_ms,
                    runtime: t.runtime.to_string(),
                    cpu_pct,
                    mem_bytes: proc.map(|(_, s)| clamp_i64(s.mem_bytes)),
                    mem_limit: None,
                    disk_bytes: proc.map(|_| clamp_i64(dir_size(&t.data_dir))),
                    net_in: None,
                    net_out: None,
                    pids: proc.map(|(_, s)| clamp_i64(s.pids)),
                }
            })
            .collect();
        self.cpu.retain(|pid, _| seen.contains(pid));
        rows
    }

    /// CPU % since this process's previous sample; the first time, its
    /// average since it started.
    fn cpu_pct(&mut self, pid: u32, s: &ProcSample, uptime_secs: Option<f64>) -> Option<f64> {
        let now = Instant::now();
        let previous = self.cpu.insert(pid, (s.start_ticks, s.cpu_ticks, now));
        match previous {
            Some((start, ticks, at)) if start == s.start_ticks => {
                cpu_percent(s.cpu_ticks.saturating_sub(ticks), now.duration_since(at).as_secs_f64())
            }
            _ => {
                let lifetime = uptime_secs? - s.start_ticks as f64 / CLOCK_TICKS_PER_SEC;
                cpu_percent(s.cpu_ticks, lifetime)
            }
        }
    }
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `ticks` of CPU time over `elapsed_secs` of wall time, in % of one core
/// (rounded to 0.01); null over too short a span to tell.
pub fn cpu_percent(ticks: u64, elapsed_secs: f64) -> Option<f64> {
    if !elapsed_secs.is_finite() || elapsed_secs < 0.01 {
        return None;
    }
    let pct = ticks as f64 / CLOCK_TICKS_PER_SEC / elapsed_secs * 100.0;
    Some((pct * 100.0).round() / 100.0)
}

// ---- /proc ---------------------------------------------------------------------

/// What `/proc/<pid>/stat` tells the sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub ppid: u32,
    /// utime + stime + cutime + cstime: its own CPU time and its reaped children's.
    pub cpu_ticks: u64,
    /// When it started, in ticks since boot.
    pub start_ticks: u64,
    pub threads: u64,
}

/// Parses a `/proc/<pid>/stat` line. The name (field 2) is in parentheses and
/// may itself hold spaces and parentheses: the fields resume after the last `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    // Field n of proc(5) is at n - 3 here (the state, field 3, comes first).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let unsigned = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    // cutime and cstime are signed in the kernel's format.
    let signed = |n: usize| fields.get(n - 3)?.parse::<i64>().ok().map(|v| v.max(0) as u64);
    Some(ProcStat {
        ppid: u32::try_from(unsigned(4)?).ok()?,
        cpu_ticks: unsigned(14)? + unsigned(15)? + signed(16)? + signed(17)?,
        threads: unsigned(20)?,
        start_ticks: unsigned(22)?,
    })
}

/// `(VmRSS in bytes, Threads)` from `/proc/<pid>/status`; a kernel thread has no VmRSS.
pub fn parse_status(text: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim).and_then(|v| {
            let mut parts = v.split_whitespace();
            let n = parts.next()?.parse::<u64>().ok()?;
            Some(match parts.next() {
                Some(unit) if unit.eq_ignore_ascii_case("kB") => n * 1024,
                _ => n,
            })
        })
    };
    (field("VmRSS"), field("Threads"))
}

/// Seconds since boot, from `/proc/uptime`.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn read_status(pid: u32) -> Option<(Option<u64>, Option<u64>)> {
    Some(parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?))
}

/// A process's figures now, with its direct children's memory and threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    pub cpu_ticks: u64,
    pub start_ticks: u64,
    pub mem_bytes: u64,
    pub pids: u64,
}

/// Every live process's direct children, by parent pid.
fn children_by_parent() -> HashMap<u32, Vec<u32>> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return children };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(stat) = read_stat(pid) {
            children.entry(stat.ppid).or_default().push(pid);
        }
    }
    children
}

/// `pid` and its direct `children`; `None` when `pid` is gone.
fn sample_tree(pid: u32, children: &[u32]) -> Option<ProcSample> {
    let stat = read_stat(pid)?;
    let (rss, threads) = read_status(pid)?;
    let mut sample = ProcSample {
        cpu_ticks: stat.cpu_ticks,
        start_ticks: stat.start_ticks,
        mem_bytes: rss.unwrap_or(0),
        pids: threads.unwrap_or(stat.threads),
    };
    for &child in children {
        // A child that exited meanwhile just counts for nothing.
        if let Some((rss, threads)) = read_status(child) {
            sample.mem_bytes += rss.unwrap_or(0);
            sample.pids += threads.unwrap_or(1);
        }
    }
    Some(sample)
}

/// One process's figures now (with its direct children); `None` when it is gone.
pub fn sample_pid(pid: u32) -> Option<ProcSample> {
    let children = children_by_parent();
    sample_tree(pid, children.get(&pid).map(Vec::as_slice).unwrap_or_default())
}

/// Total size of the files under `dir`; 0 when it does not exist. Symbolic
/// links are counted as links, never followed.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line's shape, with a name that holds spaces and parentheses.
    const STAT: &str = "4242 (my (odd) proc) name)) S 17 4242 4242 0 -1 4194560 1234 0 5 0 \
                        250 130 7 -3 20 0 6 0 987654 123456789 1500 18446744073709551615 1 1 0 0 0 0 0 \
                        0 0 0 0 0 17 3 0 0 0 0 0";

    #[test]
    fn a_stat_line_with_parentheses_in_the_name() {
        assert_eq!(
            parse_stat(STAT),
            Some(ProcStat { ppid: 17, cpu_ticks: 250 + 130 + 7, start_ticks: 987654, threads: 6 })
        );
        assert_eq!(parse_stat("12 (short"), None);
        assert_eq!(parse_stat("12 (x) S 1 2 3"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn status_gives_resident_memory_and_threads() {
        let status = "Name:\tswitchboard\nState:\tS (sleeping)\nPPid:\t1\nVmPeak:\t  20000 kB\n\
                      VmRSS:\t    1912 kB\nRssAnon:\t  400 kB\nThreads:\t7\n";
        assert_eq!(parse_status(status), (Some(1912 * 1024), Some(7)));
        // A kernel thread: no memory of its own.
        assert_eq!(parse_status("Name:\tkthreadd\nThreads:\t1\n"), (None, Some(1)));
        assert_eq!(parse_uptime("34948.28 34446.02\n"), Some(34948.28));
        assert_eq!(parse_uptime(""), None);
    }

    #[test]
    fn cpu_percent_of_one_core() {
        assert_eq!(cpu_percent(50, 1.0), Some(50.0));
        assert_eq!(cpu_percent(300, 2.0), Some(150.0));
        assert_eq!(cpu_percent(1, 3.0), Some(0.33));
        assert_eq!(cpu_percent(0, 60.0), Some(0.0));
        assert_eq!(cpu_percent(10, 0.0), None);
        assert_eq!(cpu_percent(10, f64::NAN), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_memory_and_threads() {
        let me = sample_pid(std::process::id()).expect("this process is alive");
        assert!(me.mem_bytes > 0, "{me:?}");
        assert!(me.pids >= 1, "{me:?}");
        assert!(me.start_ticks > 0, "{me:?}");
        assert_eq!(sample_pid(u32::MAX), None);

        // A second reading gives a CPU figure from the delta. The first is
        // the average since the start: said to be a second ago, as a test
        // process may be younger than the 10 ms the figure needs.
        let me = ProcSample { start_ticks: me.start_ticks.saturating_sub(100).max(1), ..me };
        let mut sampler = Sampler::default();
        let uptime = parse_uptime(&std::fs::read_to_string("/proc/uptime").unwrap());
        let first = sampler.cpu_pct(1, &me, uptime);
        assert!(first.is_some_and(|p| p >= 0.0), "{first:?}");
        std::thread::sleep(Duration::from_millis(30));
        let busy = ProcSample { cpu_ticks: me.cpu_ticks + 2, ..me };
        let second = sampler.cpu_pct(1, &busy, uptime).expect("a delta");
        assert!(second > 0.0 && second <= 2.0 / CLOCK_TICKS_PER_SEC / 0.03 * 100.0 + 0.01, "{second}");
        // The same pid, another process: starts afresh.
        let reborn = ProcSample { start_ticks: me.start_ticks + 1, cpu_ticks: 0, ..me };
        assert!(sampler.cpu_pct(1, &reborn, uptime).is_some());
    }

    #[test]
    fn disk_is_the_size_of_the_files_below() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(dir_size(&dir.path().join("missing")), 0);
        assert_eq!(dir_size(dir.path()), 0);
        std::fs::write(dir.path().join("a.log"), [0u8; 1000]).unwrap();
        std::fs::create_dir_all(dir.path().join("x/y")).unwrap();
        std::fs::write(dir.path().join("x/y/b"), [0u8; 24]).unwrap();
        assert_eq!(dir_size(dir.path()), 1024);
        // A link to a directory is not followed.
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("x"), dir.path().join("x/y/loop")).unwrap();
        #[cfg(unix)]
        assert!(dir_size(dir.path()) < 2048);
    }
}

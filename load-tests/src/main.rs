//! `switchboard-load`: drives a running Switchboard server over real HTTP
//! and prints throughput and latency figures.
//!
//! Figures are only comparable within one run on one machine, so each
//! scenario's throughput is also given as a ratio to `ceiling` (`GET
//! /healthz`) measured in the same run: `switchboard-load all`, or any
//! single scenario, which runs after a ceiling unless `--no-ceiling`.
//!
//! Load is closed loop by default (`--concurrency` workers, each sending its
//! next operation when the last is answered). `--rate R` makes it open loop:
//! operations are due at R per second whatever the server does, and their
//! latency counts from when they were due (see `src/runner.rs`), with at
//! most `--concurrency` in flight. The reference ceiling stays closed loop.
//!
//! Credentials: with `--token` (`SWITCHBOARD_LOAD_TOKEN`), a super-admin's
//! Platform API JWT (`switchboard admin token --email EMAIL`), every
//! scenario seeds the tenants, experts, Cerebrals and keys it needs through
//! the public APIs (`src/scenarios/tenants.rs`), so `all --token T` is all a
//! run needs. Without it, `create`, `lifecycle`, `scale` and `webhooks` use
//! one operator key (`--api-key` or `SWITCHBOARD_LOAD_API_KEY`; `switchboard
//! admin operator-key`), `message` a key and Cerebral of `switchboard admin
//! agent-key`; `deploy` always needs the token.
//!
//! `--url` must point at your own server. The tool sends nothing anywhere
//! else, and every run is bounded (by `--duration` or `--requests`) and
//! stops by itself; still, it is built to saturate what it is pointed at.
//!
//! Adding a scenario: see `src/scenarios/mod.rs` — a new file with a type
//! implementing `Scenario`, plus one variant, one match arm and one list
//! entry there. The CLI, runner (closed and open loop) and report need no
//! change.
//!
//! Exit codes: 0 when the run completed (errors the server returned are
//! figures, not failures), 1 when it could not run (or, for `crash`, when
//! an invariant was broken: the violations are listed), 2 on bad flags, 130
//! when interrupted with Ctrl-C (what was measured so far is still printed).

mod report;
mod runner;
mod scenarios;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use reqwest::{Client, Url};
use tokio::sync::watch;

use report::Summary;
use runner::{Interrupt, Limit, RunConfig};
use scenarios::{AllArgs, Env, ScenarioCmd};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Load tester for a running Switchboard server (point --url at your own server)",
    after_long_help = "\
Quick start (the server under test, then a token of its bootstrap admin):
  SWITCHBOARD_BOOTSTRAP_ADMIN=ops@example.com SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE=true \\
    SWITCHBOARD_OUTBOUND_ALLOW=127.0.0.0/8,::1/128 switchboard serve &
  export SWITCHBOARD_LOAD_TOKEN=$(switchboard admin token --email ops@example.com)
  switchboard-load all                     every scenario, closed loop, ratios to the ceiling
  switchboard-load all --rate 200 --json   open loop at 200 operations/s, as JSON
  switchboard-load lifecycle --help        what a scenario does and its own flags"
)]
struct Cli {
    /// Base URL of the server under test; nothing else is ever contacted
    #[arg(global = true, long, default_value = "http://127.0.0.1:8080", value_parser = parse_base_url)]
    url: String,

    /// Operations in flight at once (one worker each; with --rate, the most
    /// in flight, each holding one of this many worker ids)
    #[arg(global = true, short, long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    concurrency: u32,

    /// Open loop: start operations at this many per second (e.g. 500, 0.5)
    /// whatever the server does, and time each from when it was due, so
    /// waiting for a free slot counts. Default: closed loop
    #[arg(global = true, long, value_name = "PER_SECOND", value_parser = parse_rate)]
    rate: Option<f64>,

    /// How long to measure, e.g. 500ms, 10s, 2m
    #[arg(global = true, short, long, default_value = "10s", value_parser = parse_positive_duration)]
    duration: Duration,

    /// Total operations to measure; takes precedence over --duration
    #[arg(global = true, short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,

    /// Unmeasured run before each scenario, e.g. 0s, 1s (at --rate, if given)
    #[arg(global = true, long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,

    /// Per-request timeout, e.g. 30s
    #[arg(global = true, long, default_value = "30s", value_parser = parse_positive_duration)]
    timeout: Duration,

    /// Print the summary as one JSON object on stdout instead of tables
    #[arg(global = true, long)]
    json: bool,

    /// Do not draw the progress bar (it is never drawn when stderr is not a terminal)
    #[arg(global = true, long)]
    no_progress: bool,

    /// A super-admin's Platform API token (JWT): every scenario then seeds
    /// the tenants, experts, Cerebrals and keys it needs through the public
    /// APIs. `switchboard admin token --email EMAIL` prints one for the
    /// server's SWITCHBOARD_BOOTSTRAP_ADMIN. Takes precedence over --api-key
    /// and --agent-key
    #[arg(global = true, long, value_name = "JWT", env = TOKEN_ENV, hide_env_values = true)]
    token: Option<String>,

    /// Without --token: an Escalation API key (`cero_...`), the one tenant of
    /// the scenarios that create escalations and experts; default
    /// $SWITCHBOARD_LOAD_API_KEY. Use an operator key (`switchboard admin
    /// operator-key`): other plans are limited to a few escalations a day
    #[arg(global = true, long, value_name = "KEY")]
    api_key: Option<String>,

    /// Leave on the server the tenants that are otherwise removed at the end
    /// (those of message and deploy; registered escalation tenants always stay)
    #[arg(global = true, long)]
    keep: bool,

    /// Run a single scenario without measuring the ceiling first (its
    /// throughput then has no ratio)
    #[arg(global = true, long)]
    no_ceiling: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    One(ScenarioCmd),
    /// Every scenario but deploy in turn (ceiling, create, lifecycle,
    /// webhooks, message, scale at smaller sizes), each figure also shown
    /// as a ratio to the ceiling measured first.
    ///
    /// `all --token T` is all it needs: every scenario seeds its own
    /// tenants. The flags below size the scenarios; anything not given is
    /// the scenario's own default.
    All(AllArgs),
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (expected e.g. 250ms, 30s, 5m, 1h)"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        Ok(_) => Err("must be a number of operations per second above zero".into()),
        Err(e) => Err(format!("{e} (expected operations per second, e.g. 500 or 0.5)")),
    }
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be more than zero".into()),
        d => Ok(d),
    }
}

/// Plain HTTP only: this build has no TLS, and a load test belongs next to
/// the server anyway.
fn parse_base_url(s: &str) -> Result<String, String> {
    let url = Url::parse(s).map_err(|e| format!("{e}"))?;
    if url.scheme() != "http" {
        return Err(format!("scheme {} not supported, use http://", url.scheme()));
    }
    if url.host().is_none() {
        return Err("no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("no query or fragment, please: paths are appended to it".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// `reqwest` puts the useful part ("Connection refused") deep in the source
/// chain; the top level only says a request failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Where `--api-key` comes from when the flag is not given.
const API_KEY_ENV: &str = "SWITCHBOARD_LOAD_API_KEY";
/// Where `--token` comes from when the flag is not given.
const TOKEN_ENV: &str = "SWITCHBOARD_LOAD_TOKEN";

/// How long the pre-flight `GET /healthz` may take: a healthy server answers
/// at once, and a person is waiting.
const REACHABLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The innermost cause, which names the actual problem ("Connection
/// refused"); the outer layers repeat the URL the caller already shows.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

async fn check_reachable(env: &Env) -> Result<(), String> {
    let url = env.url("/healthz").map_err(|e| e.to_string())?;
    let resp = env.client.get(url).timeout(REACHABLE_TIMEOUT).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("no answer to GET /healthz within {}", humantime::format_duration(REACHABLE_TIMEOUT))
        } else if e.is_connect() {
            format!("cannot connect: {}", root_cause(&e))
        } else {
            error_chain(&e)
        }
    })?;
    if resp.status() == reqwest::StatusCode::OK {
        Ok(())
    } else {
        Err(format!("GET /healthz answered {}", resp.status()))
    }
}

/// The scenarios to run, in order.
fn plan(command: Command, no_ceiling: bool) -> Vec<ScenarioCmd> {
    match command {
        // A throughput means little without the ceiling of the same run.
        Command::One(cmd) if cmd.wants_ceiling() && !no_ceiling => vec![ScenarioCmd::Ceiling, cmd],
        Command::One(cmd) => vec![cmd],
        Command::All(args) => ScenarioCmd::all(&args),
    }
}

async fn run(cli: Cli, interrupt: Interrupt) -> Result<Summary, (Summary, String)> {
    let fail = |msg: String| (Summary::default(), msg);
    let concurrency = cli.concurrency as usize;
    let client = Client::builder()
        // Idle connections beyond this are closed, and every closed one is a
        // reconnect in the middle of the measurement.
        .pool_max_idle_per_host(concurrency)
        .timeout(cli.timeout)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| fail(format!("cannot build HTTP client: {}", error_chain(&e))))?;
    let trimmed = |v: Option<String>| v.map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    let api_key = trimmed(cli.api_key.clone().or_else(|| std::env::var(API_KEY_ENV).ok()));
    let token = trimmed(cli.token.clone());
    let env = Arc::new(Env {
        client,
        base_url: cli.url.clone(),
        api_key,
        token,
        keep: cli.keep,
        timeout: cli.timeout,
    });

    // `crash` starts its own server: no --url to check, and a violation is
    // an exit 1 that still shows the figures.
    if let Command::One(ScenarioCmd::Crash(args)) = &cli.command {
        if cli.requests.is_some() {
            return Err(fail("crash runs for --duration, not --requests".into()));
        }
        let (rows, violations) = scenarios::crash::run(args, cli.duration, cli.timeout, &interrupt)
            .await
            .map_err(|e| fail(format!("{}: {e:#}", scenarios::crash::NAME)))?;
        let summary = Summary { scenarios: rows, rate: None };
        if violations.is_empty() {
            return Ok(summary);
        }
        let list: Vec<String> = violations.iter().map(|v| format!("- {v}")).collect();
        return Err((
            summary,
            format!(
                "{}: {} invariant violation(s):\n{}",
                scenarios::crash::NAME,
                violations.len(),
                list.join("\n")
            ),
        ));
    }

    check_reachable(&env).await.map_err(|e| fail(format!("server at {} not reachable: {e}", cli.url)))?;

    let cfg = RunConfig {
        concurrency,
        limit: cli.requests.map_or(Limit::Duration(cli.duration), Limit::Count),
        warmup: cli.warmup,
        progress: !cli.no_progress,
        rate: cli.rate,
    };
    let rate = cli.rate;
    let plan = plan(cli.command, cli.no_ceiling);
    preflight(&env, &plan).await.map_err(|e| fail(format!("{e:#}")))?;

    let mut summary = Summary { scenarios: Vec::new(), rate };
    let reference = plan.len() > 1;
    for cmd in plan {
        if *interrupt.borrow() {
            break;
        }
        // The ceiling others are ratios to is the most the server does.
        let cfg = if reference && cmd == ScenarioCmd::Ceiling && cfg.rate.is_some() {
            eprintln!("{}: closed loop, as the reference the other figures are ratios to", cmd.name());
            cfg.closed()
        } else {
            cfg.clone()
        };
        let reports = match cmd.run(&env, &cfg, &interrupt).await {
            Ok(r) => r,
            Err(e) => return Err((summary, format!("{}: {e:#}", cmd.name()))),
        };
        summary.scenarios.extend(reports);
    }
    scenarios::webhooks::add_ceiling_latency_ratios(&mut summary.scenarios);
    Ok(summary)
}

/// Everything that can be checked before the ceiling runs, so a missing or
/// refused credential, or a server that refuses loopback callbacks, fails
/// in a second rather than after minutes of figures.
async fn preflight(env: &Env, plan: &[ScenarioCmd]) -> anyhow::Result<()> {
    let escalation = plan.iter().find(|c| c.needs_escalation_tenant());
    let webhooks = plan.iter().any(|c| matches!(c, ScenarioCmd::Webhooks(_)));
    let seeds = plan.iter().any(|c| c.needs_escalation_tenant() || matches!(c, ScenarioCmd::Message(_)));
    if env.token.is_some() && seeds {
        scenarios::tenants::check_token(env).await?;
        if env.api_key.is_some() {
            eprintln!("--token given: the scenarios seed their own tenants; --api-key is not used");
        }
        if webhooks {
            let interrupt = watch::channel(false).1;
            let key = scenarios::tenants::preflight_key(env, &interrupt).await?;
            scenarios::webhooks::check_callbacks(env, &key)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", scenarios::webhooks::NAME))?;
        }
    } else if let Some(cmd) = escalation {
        let key = scenarios::api_key(env, cmd.name())?;
        scenarios::check_key(env, key).await?;
        if webhooks {
            scenarios::webhooks::check_callbacks(env, key)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", scenarios::webhooks::NAME))?;
        }
    }
    for cmd in plan {
        match cmd {
            ScenarioCmd::Message(args) => args.check(env)?,
            ScenarioCmd::Deploy(args) => args.check(env).await?,
            _ => {}
        }
    }
    Ok(())
}

fn print(summary: &Summary, json: bool) {
    if summary.scenarios.is_empty() {
        return;
    }
    if json {
        println!("{}", summary.to_json());
    } else {
        print!("{}", summary.render_table());
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };

    runtime.block_on(async move {
        let (interrupt_tx, interrupt_rx) = watch::channel(false);
        let interrupt_tx = Arc::new(interrupt_tx);
        let on_ctrl_c = Arc::clone(&interrupt_tx);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = on_ctrl_c.send(true);
            }
        });

        let result = run(cli, interrupt_rx.clone()).await;
        let interrupted = *interrupt_rx.borrow();
        // Held until here so the receivers never see a closed channel mid-run.
        drop(interrupt_tx);
        match result {
            Ok(summary) => {
                print(&summary, json);
                if interrupted {
                    eprintln!("interrupted: figures cover only what ran before Ctrl-C");
                    ExitCode::from(130)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err((partial, msg)) => {
                print(&partial, json);
                eprintln!("{msg}");
                ExitCode::from(1)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_common_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("10").is_err(), "a unit is required");
        assert!(parse_duration("fast").is_err());
        assert!(parse_positive_duration("0s").is_err());
    }

    #[test]
    fn base_url_is_normalised_and_checked() {
        assert_eq!(parse_base_url("http://127.0.0.1:8080/"), Ok("http://127.0.0.1:8080".into()));
        assert_eq!(parse_base_url("http://localhost:8080/sb/"), Ok("http://localhost:8080/sb".into()));
        assert!(parse_base_url("https://127.0.0.1").is_err());
        assert!(parse_base_url("127.0.0.1:8080").is_err());
        assert!(parse_base_url("http://127.0.0.1/?x=1").is_err());
    }

    #[test]
    fn requests_take_precedence_and_flags_parse() {
        let cli = Cli::try_parse_from([
            "switchboard-load",
            "-c",
            "8",
            "-d",
            "3s",
            "-n",
            "100",
            "--json",
            "ceiling",
        ])
        .expect("valid flags");
        assert_eq!(cli.concurrency, 8);
        assert_eq!(cli.requests, Some(100));
        assert!(matches!(cli.command, Command::One(ScenarioCmd::Ceiling)));

        let all = Cli::try_parse_from(["switchboard-load", "all"]).expect("valid flags");
        assert!(matches!(all.command, Command::All(_)));
        assert_eq!(all.rate, None);
        assert_eq!(all.url, "http://127.0.0.1:8080");
        assert_eq!(all.duration, Duration::from_secs(10));

        assert!(Cli::try_parse_from(["switchboard-load", "-c", "0", "ceiling"]).is_err());
        assert!(Cli::try_parse_from(["switchboard-load", "nope"]).is_err());
    }

    #[test]
    fn scenario_flags_and_global_flags_parse_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "switchboard-load",
            "--api-key",
            "cero_x",
            "create",
            "-d",
            "3s",
            "-c",
            "4",
            "--domains",
            "3",
        ])
        .expect("valid flags");
        assert_eq!(cli.duration, Duration::from_secs(3));
        assert_eq!(cli.concurrency, 4);
        assert_eq!(cli.api_key.as_deref(), Some("cero_x"));
        assert!(matches!(&cli.command, Command::One(ScenarioCmd::Create(a)) if a.domains == 3));

        let cli =
            Cli::try_parse_from(["switchboard-load", "scale", "--sizes", "10,200", "--open-cases", "0"])
                .expect("valid flags");
        let Command::One(ScenarioCmd::Scale(args)) = &cli.command else { panic!("not scale") };
        assert_eq!(args.sizes, vec![10, 200]);
        assert_eq!(args.open_cases, 0);
        assert!(!args.reduced);

        let cli = Cli::try_parse_from(["switchboard-load", "lifecycle", "--experts", "7", "--poll", "1ms"])
            .expect("valid flags");
        let Command::One(ScenarioCmd::Lifecycle(args)) = &cli.command else { panic!("not lifecycle") };
        assert_eq!(args.experts, 7);
        assert_eq!(args.poll, Duration::from_millis(1));
        assert_eq!(args.domains, 4);

        let cli = Cli::try_parse_from([
            "switchboard-load",
            "deploy",
            "--token",
            "jwt",
            "--tenants",
            "1,10",
            "--poll",
            "2ms",
            "--keep",
        ])
        .expect("valid flags");
        let Command::One(ScenarioCmd::Deploy(args)) = &cli.command else { panic!("not deploy") };
        assert_eq!(args.tenants, vec![1, 10]);
        assert_eq!(cli.token.as_deref(), Some("jwt"), "--token is global, after the subcommand too");
        assert_eq!(args.poll, Duration::from_millis(2));
        assert!(cli.keep);
        let cli = Cli::try_parse_from(["switchboard-load", "deploy"]).expect("valid flags");
        let Command::One(ScenarioCmd::Deploy(args)) = &cli.command else { panic!("not deploy") };
        assert_eq!(args, &scenarios::deploy::DeployArgs::default());
        assert!(Cli::try_parse_from(["switchboard-load", "deploy", "--tenants", "0"]).is_err());

        assert!(Cli::try_parse_from(["switchboard-load", "lifecycle", "--experts", "0"]).is_err());
        assert!(Cli::try_parse_from(["switchboard-load", "scale", "--sizes", "0"]).is_err());
    }

    #[test]
    fn a_single_scenario_runs_after_a_ceiling_unless_told_not_to() {
        let create = || Command::One(ScenarioCmd::Create(scenarios::create::CreateArgs::default()));
        assert_eq!(plan(create(), false).first(), Some(&ScenarioCmd::Ceiling));
        assert_eq!(plan(create(), false).len(), 2);
        assert_eq!(plan(create(), true).len(), 1);
        assert_eq!(plan(Command::One(ScenarioCmd::Ceiling), false), vec![ScenarioCmd::Ceiling]);
        let all = || Command::All(AllArgs::default());
        assert_eq!(plan(all(), false), ScenarioCmd::all(&AllArgs::default()));
    }

    #[test]
    fn rate_and_seeding_flags_parse_for_every_scenario_and_all() {
        for scenario in ["ceiling", "create", "lifecycle", "webhooks", "message", "scale", "all"] {
            let cli = Cli::try_parse_from(["switchboard-load", scenario, "--rate", "250.5", "--token", "t"])
                .unwrap_or_else(|e| panic!("{scenario}: {e}"));
            assert_eq!(cli.rate, Some(250.5), "{scenario}");
            assert_eq!(cli.token.as_deref(), Some("t"), "{scenario}");
        }
        for bad in ["0", "-1", "fast", "inf", "NaN"] {
            assert!(Cli::try_parse_from(["switchboard-load", "--rate", bad, "ceiling"]).is_err(), "{bad}");
        }
        let cli = Cli::try_parse_from(["switchboard-load", "create", "--tenants", "3", "--domains", "2"])
            .expect("valid flags");
        assert!(
            matches!(&cli.command, Command::One(ScenarioCmd::Create(a)) if a.tenants == 3 && a.domains == 2)
        );
        let cli = Cli::try_parse_from([
            "switchboard-load",
            "lifecycle",
            "--tenants",
            "2",
            "--experts",
            "4",
            "--domains",
            "2",
        ])
        .expect("valid flags");
        assert!(
            matches!(&cli.command, Command::One(ScenarioCmd::Lifecycle(a)) if (a.tenants, a.experts, a.domains) == (2, 4, 2))
        );
        let cli =
            Cli::try_parse_from(["switchboard-load", "webhooks", "--tenants", "2"]).expect("valid flags");
        assert!(matches!(&cli.command, Command::One(ScenarioCmd::Webhooks(a)) if a.tenants == 2));
        let cli =
            Cli::try_parse_from(["switchboard-load", "message", "--tenants", "2"]).expect("valid flags");
        assert!(matches!(&cli.command, Command::One(ScenarioCmd::Message(a)) if a.tenants == 2));
        let cli = Cli::try_parse_from([
            "switchboard-load",
            "all",
            "--tenants",
            "2",
            "--experts",
            "4",
            "--scale-sizes",
            "5,10",
            "--endpoints",
            "1,2",
        ])
        .expect("valid flags");
        let Command::All(args) = &cli.command else { panic!("not all") };
        assert_eq!((args.tenants, args.experts), (Some(2), Some(4)));
        assert_eq!(args.scale_sizes.as_deref(), Some(&[5, 10][..]));
        assert!(Cli::try_parse_from(["switchboard-load", "create", "--tenants", "0"]).is_err());
    }

    #[test]
    fn crash_flags_parse_and_need_the_server_binary() {
        let cli = Cli::try_parse_from([
            "switchboard-load",
            "crash",
            "--server-bin",
            "target/debug/switchboard",
            "--database-url",
            "postgres://u:p@127.0.0.1/db",
            "--data-dir",
            "/tmp/x",
            "-d",
            "60s",
            "--kills",
            "10",
            "--seed",
            "42",
        ])
        .expect("valid flags");
        assert_eq!(cli.duration, Duration::from_secs(60));
        let Command::One(ScenarioCmd::Crash(args)) = &cli.command else { panic!("not crash") };
        assert_eq!(args.server_bin, std::path::PathBuf::from("target/debug/switchboard"));
        assert_eq!(args.database_url.as_deref(), Some("postgres://u:p@127.0.0.1/db"));
        assert_eq!((args.kills, args.seed, args.clients), (10, Some(42), 4));
        assert_eq!(args.settle, Duration::from_secs(60));
        assert!(!ScenarioCmd::Crash(args.clone()).wants_ceiling());
        assert!(Cli::try_parse_from(["switchboard-load", "crash"]).is_err(), "--server-bin is required");
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

//! The real binary as a child process: settings and their error lines, the
//! database file's directory, graceful stop on SIGTERM, readiness while the
//! database is unreachable, and durability of acknowledged writes across SIGKILL.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use switchboard::settings::DatabaseUrl;
use switchboard::store::{bench, connection};

/// The binary with a clean SWITCHBOARD_* environment, run in `dir`.
fn switchboard(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(common::server_bin());
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHBOARD_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("SWITCHBOARD_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128").env("SWITCHBOARD_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs the binary to completion and returns (exit code, stderr).
fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let out = switchboard(dir, env).args(args).output().expect("run switchboard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_bad_setting_stops_start_up_with_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("SWITCHBOARD_SLA_URGENT", "soon", "expected a duration"),
        ("SWITCHBOARD_RESERVATION_TIMEOUT", "200%", "percentage"),
        ("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", "1m,never", "expected a duration"),
        ("SWITCHBOARD_DATABASE_URL", "mysql://localhost/db", "unknown database scheme"),
        ("SWITCHBOARD_BIND", "localhost:eighty", "expected an address"),
        ("SWITCHBOARD_MASTER_KEY", "c2hvcnQ=", "32 bytes"),
        ("SWITCHBOARD_MASTER_KEY", "%%%not base64", "base64"),
        ("SWITCHBOARD_OUTBOUND_ALLOW", "127.0.0.0/8,nowhere", "CIDR"),
        ("SWITCHBOARD_MAIL", "pigeon", "expected log"),
        ("SWITCHBOARD_TENANT_RUNTIME", "docker", "embedded or process"),
        ("SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE", "maybe", "true or false"),
        ("SWITCHBOARD_LOG_FORMAT", "xml", "text or json"),
    ];
    for (name, value, problem) in cases {
        let (code, _, stderr) = run(dir.path(), &[(name, value)], &["serve"]);
        assert_eq!(code, 2, "{name}={value}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line for {name}={value}, got: {stderr}");
        assert!(lines[0].contains(name), "names the setting: {stderr}");
        assert!(lines[0].contains(problem), "says what is wrong ({problem}): {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_bad_config_file_is_reported_like_a_bad_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");

    std::fs::write(&file, "sla_urgent = \"soon\"\n").unwrap();
    let (code, _, stderr) = run(dir.path(), &[], &["--config", file.to_str().unwrap(), "migrate"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("SWITCHBOARD_SLA_URGENT") && stderr.contains("custom.toml"), "{stderr}");

    std::fs::write(&file, "no_such_setting = 1\n").unwrap();
    let (code, _, stderr) = run(dir.path(), &[], &["--config", file.to_str().unwrap(), "migrate"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("unknown setting \"no_such_setting\""), "{stderr}");

    std::fs::write(&file, "this is = = not toml").unwrap();
    let (code, _, stderr) = run(dir.path(), &[], &["--config", file.to_str().unwrap(), "migrate"]);
    assert_eq!((code, stderr.lines().count()), (2, 1), "{stderr}");
    assert!(stderr.contains("not valid TOML"), "{stderr}");

    let (code, _, stderr) = run(dir.path(), &[], &["--config", "missing.toml", "migrate"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("missing.toml") && stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn help_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(dir.path(), &[], &["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("switchboard "), "{out}");
    let (code, out, _) = run(dir.path(), &[], &["--help"]);
    assert_eq!(code, 0);
    for word in ["serve", "migrate", "bench-store", "--config"] {
        assert!(out.contains(word), "help lists {word}: {out}");
    }
}

#[test]
fn migrate_creates_the_sqlite_directory_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let test_db = common::TestDb::create(&dir);
    let url = if test_db.is_postgres() {
        test_db.url.clone()
    } else {
        format!("sqlite://{}", dir.path().join("deep/er/sb.db").display())
    };
    let env = [("SWITCHBOARD_DATABASE_URL", url.as_str())];
    let (code, out, err) = run(dir.path(), &env, &["migrate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied"), "{out}");
    if !test_db.is_postgres() {
        assert!(dir.path().join("deep/er/sb.db").is_file());
    }
    let (code, out, _) = run(dir.path(), &env, &["migrate"]);
    assert_eq!(code, 0);
    assert!(out.contains("up to date"), "{out}");
}

/// Starts `serve` and waits for `/readyz` to answer `want`.
fn serve(dir: &Path, env: &[(&str, &str)]) -> (Child, u16) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut all = env.to_vec();
    all.push(("SWITCHBOARD_BIND", bind.as_str()));
    let child =
        switchboard(dir, &all).arg("serve").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    (child, port)
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Some((status, body))
}

fn wait_for(port: u16, path: &str, want: u16, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if get(port, path).map(|(s, _)| s) == Some(want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_stops_gracefully_with_exit_code_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(&dir);
    let (mut child, port) = serve(dir.path(), &[("SWITCHBOARD_DATABASE_URL", db.url.as_str())]);
    assert!(wait_for(port, "/readyz", 200, Duration::from_secs(20)), "server became ready");
    if !db.is_postgres() {
        assert!(dir.path().join("data/master.key").is_file(), "master key generated into data/");
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(15)), Some(0));
}

#[test]
fn json_log_lines_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(&dir);
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let env = [
        ("SWITCHBOARD_DATABASE_URL", db.url.as_str()),
        ("SWITCHBOARD_BIND", bind.as_str()),
        ("SWITCHBOARD_LOG", "info"),
        ("SWITCHBOARD_LOG_FORMAT", "json"),
    ];
    let child = switchboard(dir.path(), &env)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(port, "/readyz", 200, Duration::from_secs(20)));
    get(port, "/healthz").unwrap();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{text}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{line}");
    }
    // The request span carries the request id.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("request completed") && l.contains("request_id") && l.contains("/healthz")),
        "{text}"
    );
}

#[test]
fn readyz_is_503_while_the_database_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port: the server keeps serving liveness and retries the database.
    let dead = format!("postgres://nobody:nothing@127.0.0.1:{}/none?connect_timeout=1", free_port());
    let (mut child, port) = serve(dir.path(), &[("SWITCHBOARD_DATABASE_URL", dead.as_str())]);
    assert!(wait_for(port, "/healthz", 200, Duration::from_secs(20)), "liveness answers");
    let (status, body) = get(port, "/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"status\":\"starting\""), "{body}");
    let (status, body) = get(port, "/escalations").unwrap();
    assert_eq!(status, 503, "{body}");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(15)), Some(0));
}

#[test]
fn writes_acknowledged_before_sigkill_survive_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(&dir);
    let env = [("SWITCHBOARD_DATABASE_URL", db.url.as_str())];

    for round in 0..2 {
        // A real process writing through the Store as fast as it can, printing each acknowledgement.
        let mut writer = switchboard(dir.path(), &env)
            .args([
                "bench-store",
                "--mode",
                "group",
                "--senders",
                "16",
                "--writes",
                "100000000",
                "--keep",
                "--print-acks",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = writer.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut acked: HashSet<String> = HashSet::new();
        let kill_after = 300 + round * 500;
        while acked.len() < kill_after {
            let line = lines.next().expect("the writer acknowledges writes").unwrap();
            acked.insert(line.strip_prefix("ack ").expect("ack line").to_string());
        }
        kill(Pid::from_raw(writer.id() as i32), Signal::SIGKILL).unwrap();
        // Acknowledgements already written to the pipe were acknowledged before the kill.
        for line in lines.map_while(Result::ok) {
            if let Some(id) = line.strip_prefix("ack ") {
                acked.insert(id.to_string());
            }
        }
        writer.wait().unwrap();

        // Restart: the server opens the same database, recovers it, and becomes ready.
        let (mut server, port) = serve(dir.path(), &env);
        assert!(wait_for(port, "/readyz", 200, Duration::from_secs(30)), "restarted server is ready");
        kill(Pid::from_raw(server.id() as i32), Signal::SIGTERM).unwrap();
        assert_eq!(wait_exit(&mut server, Duration::from_secs(15)), Some(0));

        let url = DatabaseUrl::parse(&db.url).unwrap();
        let pool = connection::build_pool(&url, 1);
        let present: HashSet<String> = bench::probe_ids(&pool, "bench_").unwrap().into_iter().collect();
        let lost: Vec<&String> = acked.iter().filter(|id| !present.contains(*id)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} acknowledged writes lost, e.g. {:?}",
            lost.len(),
            acked.len(),
            &lost[..lost.len().min(5)]
        );
    }
}

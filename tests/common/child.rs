//! The real server binary as a child process, for tests that kill it (SIGKILL,
//! SIGTERM) and start it again on the same database. Killed when dropped, so a
//! failing test leaves nothing behind.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reqwest::StatusCode;

use crate::esc::Api;

pub struct ChildServer {
    pub child: Child,
    pub port: u16,
}

impl ChildServer {
    /// Starts `switchboard serve` in `dir` on a free loopback port, with only
    /// the loopback outbound allow-list, quiet logs and `env` (nothing of the
    /// test's own `SWITCHBOARD_*` environment). Its log goes to `dir/server.log`.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> ChildServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new(crate::common::server_bin());
        cmd.current_dir(dir);
        for (k, _) in std::env::vars() {
            if k.starts_with("SWITCHBOARD_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("SWITCHBOARD_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128")
            .env("SWITCHBOARD_LOG", "warn")
            .env("SWITCHBOARD_BIND", format!("127.0.0.1:{port}"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).unwrap();
        let child =
            cmd.arg("serve").stdout(Stdio::null()).stderr(Stdio::from(log)).spawn().expect("start server");
        ChildServer { child, port }
    }

    /// Waits (up to 30 s) until `/readyz` answers 200; a client for it.
    pub async fn ready(&self) -> Api {
        let api = Api::at_port(self.port);
        self.wait_ready(&api, Duration::from_secs(30)).await;
        api
    }

    pub async fn wait_ready(&self, api: &Api, within: Duration) {
        let end = Instant::now() + within;
        loop {
            if let Ok(res) = api.client.get(format!("{}/readyz", api.base)).send().await {
                if res.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(Instant::now() < end, "the server became ready within {within:?}");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn signal(&mut self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// SIGKILL, and reap it.
    pub fn kill(mut self) {
        self.signal(Signal::SIGKILL);
        self.child.wait().unwrap();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

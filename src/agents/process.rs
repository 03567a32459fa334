//! The `process` runtime, parent side: one child process per tenant
//! (`switchboard runtime --tenant ID`), listening on a loopback port that it
//! announces on its first stdout line. The child makes the tenant's model
//! calls; the server keeps the state (memory, SOP actions, commits).
//!
//! - Its stdout and stderr are the tenant's log.
//! - Its stdin is a pipe the server holds: when the server dies, even by
//!   SIGKILL, the child reads end-of-file and exits, so no child outlives it.
//! - Every call carries a bearer token made for this child only.
//! - Its exit is reported to the TenantActor, which restarts it with back-off.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::Stdio;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use rand::RngCore;
use switchboard_actors::tenant::{Level, Started};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::oneshot;

use super::logs::TenantLog;
use super::providers::{ChatReply, ChatRequest, ProviderError};

/// The child's first stdout line: `SWITCHBOARD_RUNTIME_LISTENING <port>`.
pub const READY_PREFIX: &str = "SWITCHBOARD_RUNTIME_LISTENING ";
/// The environment variable that carries the child's bearer token.
pub const TOKEN_ENV: &str = "SWITCHBOARD_RUNTIME_TOKEN";

/// How to start a tenant's child.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub bin: PathBuf,
    pub tenant_id: String,
    /// The tenant's data directory: the child's working directory.
    pub dir: PathBuf,
    /// Settings the child needs (outbound policy, provider timeout).
    pub env: Vec<(String, String)>,
    pub start_timeout: Duration,
    /// One model call through the child, end to end.
    pub call_timeout: Duration,
    pub log: TenantLog,
}

/// How to reach a running child.
#[derive(Debug, Clone)]
pub struct ChildLink {
    pub port: u16,
    pub token: String,
    pub pid: u32,
}

struct Live {
    link: ChildLink,
    kill: Option<oneshot::Sender<()>>,
    reaped: Option<oneshot::Receiver<()>>,
}

/// Why a call through the child produced no reply.
#[derive(Debug)]
pub enum ChildError {
    /// The provider itself failed or refused, as the child reports it.
    Provider(ProviderError),
    /// The child could not be reached or answered nonsense.
    Unreachable(String),
}

pub struct Process {
    spec: Rc<ProcessSpec>,
    live: Rc<RefCell<Option<Live>>>,
    client: Option<awc::Client>,
}

impl Process {
    pub fn new(spec: ProcessSpec) -> Self {
        Process { spec: Rc::new(spec), live: Rc::new(RefCell::new(None)), client: None }
    }

    pub fn link(&self) -> Option<ChildLink> {
        self.live.borrow().as_ref().map(|l| l.link.clone())
    }

    /// A client for loopback calls to the child (not through the outbound
    /// guard: the address is the child's own, on 127.0.0.1).
    pub fn client(&mut self) -> awc::Client {
        let timeout = self.spec.call_timeout;
        self.client.get_or_insert_with(|| awc::Client::builder().timeout(timeout).finish()).clone()
    }

    pub fn start(&mut self) -> LocalBoxFuture<'static, Result<Started, String>> {
        let spec = self.spec.clone();
        let live = self.live.clone();
        Box::pin(async move {
            let (child, link, stdin) = spawn(&spec).await?;
            let (kill_tx, kill_rx) = oneshot::channel::<()>();
            let (exit_tx, exit_rx) = oneshot::channel::<String>();
            let (reaped_tx, reaped_rx) = oneshot::channel::<()>();
            let mut child = child;
            actix_web::rt::spawn(async move {
                // Held open for the child's life: closing it tells the child to exit.
                let _stdin = stdin;
                tokio::select! {
                    status = child.wait() => {
                        let _ = exit_tx.send(describe(status));
                    }
                    _ = kill_rx => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        let _ = reaped_tx.send(());
                    }
                }
            });
            let started = Started {
                port: Some(link.port),
                pid: Some(link.pid),
                exited: Box::pin(async move {
                    exit_rx.await.unwrap_or_else(|_| "stopped by the server".to_string())
                }),
            };
            *live.borrow_mut() = Some(Live { link, kill: Some(kill_tx), reaped: Some(reaped_rx) });
            Ok(started)
        })
    }

    /// Kills the child (it holds no state) and resolves once it is reaped.
    pub fn stop(&mut self) -> LocalBoxFuture<'static, ()> {
        let live = self.live.borrow_mut().take();
        Box::pin(async move {
            if let Some(mut live) = live {
                if let Some(kill) = live.kill.take() {
                    let _ = kill.send(());
                }
                if let Some(reaped) = live.reaped.take() {
                    let _ = reaped.await;
                }
            }
        })
    }

    /// One model call, made by the child running now.
    pub fn chat_fn(
        &mut self,
    ) -> impl FnOnce(ChatRequest) -> LocalBoxFuture<'static, Result<ChatReply, ChildError>> {
        let link = self.link();
        let client = self.client();
        move |req| {
            Box::pin(async move {
                let link =
                    link.ok_or_else(|| ChildError::Unreachable("the runtime is not running".into()))?;
                call_chat(&client, &link, &req).await
            })
        }
    }

    /// The child's own status (`zeroclaw status`).
    pub fn status(&mut self) -> LocalBoxFuture<'static, Result<serde_json::Value, String>> {
        let link = self.link();
        let client = self.client();
        Box::pin(async move {
            let link = link.ok_or_else(|| "the runtime is not running".to_string())?;
            let mut res = client
                .get(format!("http://127.0.0.1:{}/status", link.port))
                .insert_header(("Authorization", format!("Bearer {}", link.token)))
                .send()
                .await
                .map_err(|e| format!("the runtime did not answer: {e}"))?;
            if !res.status().is_success() {
                return Err(format!("the runtime answered {}", res.status()));
            }
            res.json::<serde_json::Value>()
                .await
                .map_err(|e| format!("the runtime's status is unreadable: {e}"))
        })
    }
}

async fn call_chat(
    client: &awc::Client,
    link: &ChildLink,
    req: &ChatRequest,
) -> Result<ChatReply, ChildError> {
    let mut res = client
        .post(format!("http://127.0.0.1:{}/chat", link.port))
        .insert_header(("Authorization", format!("Bearer {}", link.token)))
        .send_json(req)
        .await
        .map_err(|e| ChildError::Unreachable(format!("the tenant's runtime did not answer: {e}")))?;
    let status = res.status();
    let body = res
        .body()
        .limit(super::providers::MAX_ANSWER_BYTES + 64 * 1024)
        .await
        .map_err(|e| ChildError::Unreachable(format!("the tenant's runtime answer was cut: {e}")))?;
    if status.is_success() {
        serde_json::from_slice::<ChatReply>(&body)
            .map_err(|e| ChildError::Unreachable(format!("the tenant's runtime answered nonsense: {e}")))
    } else if status.as_u16() == 502 {
        match serde_json::from_slice::<ProviderError>(&body) {
            Ok(e) => Err(ChildError::Provider(e)),
            Err(e) => Err(ChildError::Unreachable(format!("the tenant's runtime answered nonsense: {e}"))),
        }
    } else {
        Err(ChildError::Unreachable(format!("the tenant's runtime answered {status}")))
    }
}

type Spawned = (tokio::process::Child, ChildLink, Option<tokio::process::ChildStdin>);

/// Starts the child and waits for its port; its output then streams to the log.
async fn spawn(spec: &ProcessSpec) -> Result<Spawned, String> {
    std::fs::create_dir_all(&spec.dir)
        .map_err(|e| format!("cannot create the tenant directory {}: {e}", spec.dir.display()))?;
    let mut raw = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let mut cmd = tokio::process::Command::new(&spec.bin);
    cmd.arg("runtime")
        .arg("--tenant")
        .arg(&spec.tenant_id)
        .current_dir(&spec.dir)
        // The child's settings are exactly these: a config file of the server's is not its own.
        .env_remove("SWITCHBOARD_CONFIG")
        .env_remove("SWITCHBOARD_MASTER_KEY")
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(TOKEN_ENV, &token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", spec.bin.display()))?;
    let pid = child.id().unwrap_or(0);
    let stdin = child.stdin.take();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.start_kill();
        return Err("the runtime's output could not be captured".into());
    };
    actix_web::rt::spawn(copy_lines(stderr, spec.log.clone(), Level::Error));
    let mut out = BufReader::new(stdout).lines();
    let log = spec.log.clone();
    let announced = tokio::time::timeout(spec.start_timeout, async {
        while let Ok(Some(line)) = out.next_line().await {
            match line.strip_prefix(READY_PREFIX) {
                Some(port) => return port.trim().parse::<u16>().ok(),
                None => log.write(Level::Info, &line),
            }
        }
        None
    })
    .await;
    let port = match announced {
        Ok(Some(port)) => port,
        Ok(None) => {
            let _ = child.start_kill();
            let status = child.wait().await;
            return Err(format!("the runtime ended before listening ({})", describe(status)));
        }
        Err(_) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(format!("the runtime did not listen within {} ms", spec.start_timeout.as_millis()));
        }
    };
    actix_web::rt::spawn(copy_lines(out.into_inner(), spec.log.clone(), Level::Info));
    Ok((child, ChildLink { port, token, pid }, stdin))
}

/// Streams a child's output into the tenant's log, one line at a time.
async fn copy_lines<R: AsyncRead + Unpin>(from: R, log: TenantLog, level: Level) {
    use std::io::Write;
    let mut lines = BufReader::new(from).lines();
    let mut file = log.open().ok();
    while let Ok(Some(line)) = lines.next_line().await {
        let text = super::logs::format_line(level, &line);
        let ok = file.as_mut().map(|f| f.write_all(text.as_bytes()).is_ok()).unwrap_or(false);
        if !ok {
            // Rotated or removed meanwhile: open again once.
            file = log.open().ok();
            if let Some(f) = file.as_mut() {
                let _ = f.write_all(text.as_bytes());
            }
        }
    }
}

fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "ended".to_string(),
        },
        Err(e) => format!("lost: {e}"),
    }
}

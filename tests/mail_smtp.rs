//! `SWITCHBOARD_MAIL=smtp://host:port` against a real SMTP server on loopback:
//! Python's `aiosmtpd`, storing what it receives in a Maildir. The Python that
//! has it installed is named by `SWITCHBOARD_TEST_PYTHON` (`scripts/test-all.sh` sets it).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard::mail::{Mail, Mailer};
use switchboard::settings::MailSetting;

const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
const DELIVERY_DEADLINE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

fn python() -> String {
    match std::env::var("SWITCHBOARD_TEST_PYTHON") {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "SWITCHBOARD_TEST_PYTHON is not set: this test needs a Python with aiosmtpd installed. \
             Run it through scripts/test-all.sh, or e.g. \
             `python3 -m venv /tmp/sbvenv && /tmp/sbvenv/bin/pip install aiosmtpd` and then \
             `SWITCHBOARD_TEST_PYTHON=/tmp/sbvenv/bin/python cargo test --test mail_smtp`"
        ),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The SMTP server process, killed when the test ends, whether it passed or not.
struct SmtpServer {
    child: Child,
    log: PathBuf,
}

impl SmtpServer {
    fn start(python: &str, port: u16, maildir: &Path, log: PathBuf) -> Self {
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            // `-c` comes last: the arguments after the class go to its `from_cli`.
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python} -m aiosmtpd: {e}"));
        SmtpServer { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls until the port accepts connections; fails at once if the server exits.
    fn wait_until_listening(&mut self, port: u16) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("aiosmtpd exited with {status} before listening:\n{}", self.output());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            assert!(
                start.elapsed() < STARTUP_DEADLINE,
                "aiosmtpd did not listen on 127.0.0.1:{port} within {STARTUP_DEADLINE:?}:\n{}",
                self.output()
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The messages in the Maildir's `new/`. Maildir delivery writes into `tmp/`
/// and renames into `new/`, so a file seen there is complete.
fn delivered(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else { return Vec::new() };
    entries.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect()
}

#[tokio::test]
async fn a_mail_reaches_a_real_smtp_server() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mbox");
    let port = free_port();
    let mut server = SmtpServer::start(&python, port, &maildir, dir.path().join("aiosmtpd.log"));
    server.wait_until_listening(port);

    let mailer = Mailer::from_setting(&MailSetting::Smtp { host: "127.0.0.1".to_string(), port }).unwrap();
    let mail = Mail {
        to: "ada@example.com".to_string(),
        subject: "Your Switchboard sign-in code".to_string(),
        text: "Your code is 012345.\nIt expires in 10 minutes.".to_string(),
    };
    mailer.send(&mail).await.unwrap_or_else(|e| panic!("send failed: {e}\n{}", server.output()));

    let start = Instant::now();
    let raw = loop {
        if let Some(m) = delivered(&maildir).into_iter().next() {
            break m;
        }
        assert!(
            start.elapsed() < DELIVERY_DEADLINE,
            "no message in {} within {DELIVERY_DEADLINE:?}:\n{}",
            maildir.display(),
            server.output()
        );
        tokio::time::sleep(POLL).await;
    };
    assert_eq!(delivered(&maildir).len(), 1, "exactly one message");

    let raw = raw.replace("\r\n", "\n");
    let (headers, body) = raw.split_once("\n\n").unwrap_or_else(|| panic!("no header/body split:\n{raw}"));
    let header = |name: &str| {
        headers
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} header:\n{headers}"))
            .to_string()
    };
    // What the server saw in the SMTP envelope, and what the message says.
    assert_eq!(header("X-RcptTo"), "ada@example.com");
    assert_eq!(header("X-MailFrom"), "noreply@switchboard.invalid");
    assert_eq!(header("To"), "ada@example.com");
    assert_eq!(header("From"), "Switchboard <noreply@switchboard.invalid>");
    assert_eq!(header("Subject"), mail.subject);
    assert!(header("Content-Type").starts_with("text/plain"), "{headers}");
    assert_eq!(body.trim_end(), mail.text, "body:\n{body}");
}

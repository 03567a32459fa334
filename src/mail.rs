//! Outbound mail (one-time codes, verification tokens), as `SWITCHBOARD_MAIL` says:
//! `log` writes each message to the server log, `file:DIR` writes one JSON file per
//! message, `smtp://host:port` hands it to an SMTP server in plain text, with no TLS
//! and no authentication: that mode is meant for a relay on the same host or network.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::settings::MailSetting;

const FROM: &str = "Switchboard <noreply@switchboard.invalid>";
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("cannot create mail directory {}: {source}", .path.display())]
    Directory { path: PathBuf, source: std::io::Error },
    #[error("cannot write a mail file in {}: {source}", .dir.display())]
    Write { dir: PathBuf, source: std::io::Error },
    #[error("invalid recipient address {address:?}: {reason}")]
    Recipient { address: String, reason: String },
    #[error("cannot build the mail message: {0}")]
    Build(String),
    #[error("SMTP delivery via {relay} failed: {source}")]
    Smtp { relay: String, source: lettre::transport::smtp::Error },
    #[error("mail writer task failed: {0}")]
    Task(String),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Log,
    File(PathBuf),
    Smtp { relay: String, from: Mailbox, smtp: AsyncSmtpTransport<Tokio1Executor> },
}

impl Mailer {
    pub fn from_setting(setting: &MailSetting) -> Result<Self, MailError> {
        let transport = match setting {
            MailSetting::Log => Transport::Log,
            MailSetting::File(dir) => {
                // Created now so that a directory that cannot be made stops start-up,
                // not the first sign-in.
                std::fs::create_dir_all(dir)
                    .map_err(|source| MailError::Directory { path: dir.clone(), source })?;
                Transport::File(dir.clone())
            }
            MailSetting::Smtp { host, port } => {
                let from = FROM.parse::<Mailbox>().map_err(|e| MailError::Build(e.to_string()))?;
                let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                    .port(*port)
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                Transport::Smtp { relay: format!("{host}:{port}"), from, smtp }
            }
        };
        Ok(Mailer { transport })
    }

    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        match &self.transport {
            Transport::Log => {
                tracing::info!(
                    to = %mail.to,
                    subject = %mail.subject,
                    text = %mail.text,
                    "mail (SWITCHBOARD_MAIL=log)"
                );
                Ok(())
            }
            Transport::File(dir) => {
                let dir = dir.clone();
                let mail = mail.clone();
                tokio::task::spawn_blocking(move || write_mail_file(&dir, &mail))
                    .await
                    .map_err(|e| MailError::Task(e.to_string()))?
            }
            Transport::Smtp { relay, from, smtp } => {
                let to = mail
                    .to
                    .parse::<Mailbox>()
                    .map_err(|e| MailError::Recipient { address: mail.to.clone(), reason: e.to_string() })?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(mail.subject.as_str())
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.text.clone())
                    .map_err(|e| MailError::Build(e.to_string()))?;
                smtp.send(message)
                    .await
                    .map(|_| ())
                    .map_err(|source| MailError::Smtp { relay: relay.clone(), source })
            }
        }
    }
}

/// Writes `<epoch_millis>-<uuid>.json` so that a reader polling `dir` never sees
/// a partial file: the content goes to a dot-file first, is flushed to disk, and
/// is then renamed into place, which is atomic within one directory.
fn write_mail_file(dir: &Path, mail: &Mail) -> Result<(), MailError> {
    let write_err = |source| MailError::Write { dir: dir.to_path_buf(), source };
    // The directory may have been removed since start-up; recreating it is cheap.
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let id = uuid::Uuid::new_v4().simple();
    let tmp = dir.join(format!(".{id}.tmp"));
    let name = dir.join(format!("{}-{id}.json", chrono::Utc::now().timestamp_millis()));
    // Serializing three strings cannot fail.
    let bytes = serde_json::to_vec_pretty(mail).map_err(|e| write_err(e.into()))?;

    let result = std::fs::File::create_new(&tmp)
        .and_then(|mut f| f.write_all(&bytes).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, &name));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    // Makes the rename itself durable. The message is already in place, so a
    // failure here is not worth failing (and so re-sending) the mail for.
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the mail directory");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn mail(to: &str, code: &str) -> Mail {
        Mail {
            to: to.to_string(),
            subject: "Your Switchboard sign-in code".to_string(),
            text: format!("Your code is {code}.\nIt expires in 10 minutes.\n"),
        }
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn file_mode_writes_one_complete_json_file_per_message() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mail").join("out");
        let mailer = Mailer::from_setting(&MailSetting::File(dir.clone())).unwrap();
        assert!(dir.is_dir(), "the directory is created up front");

        let sent = [mail("ada@example.com", "012345"), mail("bob@example.com", "987654")];
        for m in &sent {
            mailer.send(m).await.unwrap();
        }

        let names = files_in(&dir);
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| !n.starts_with('.')), "temp files left: {names:?}");
        let mut received = Vec::new();
        for name in &names {
            let (millis, rest) = name.split_once('-').unwrap();
            assert!(millis.parse::<i64>().is_ok(), "{name}");
            assert!(rest.ends_with(".json") && rest.len() == 32 + 5, "{name}");
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap();
            assert_eq!(json.as_object().unwrap().len(), 3, "{json}");
            received.push(serde_json::from_value::<Mail>(json).unwrap());
        }
        received.sort_by(|a, b| a.to.cmp(&b.to));
        assert_eq!(received, sent);
    }

    #[tokio::test]
    async fn file_mode_recreates_a_removed_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        let mailer = Mailer::from_setting(&MailSetting::File(dir.clone())).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        mailer.send(&mail("ada@example.com", "111111")).await.unwrap();
        assert_eq!(files_in(&dir).len(), 1);
    }

    #[test]
    fn file_mode_fails_at_start_when_the_directory_cannot_be_made() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let err = Mailer::from_setting(&MailSetting::File(file.join("sub"))).err().unwrap();
        assert!(matches!(err, MailError::Directory { .. }), "{err}");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }

    /// A `MakeWriter` that keeps what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn log_mode_puts_the_message_in_the_log() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber =
            tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        // A current-thread runtime: the thread-local default covers the whole test.
        let _guard = tracing::subscriber::set_default(subscriber);

        let mailer = Mailer::from_setting(&MailSetting::Log).unwrap();
        mailer.send(&mail("ada@example.com", "424242")).await.unwrap();

        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("SWITCHBOARD_MAIL=log"), "{log}");
        assert!(log.contains("ada@example.com"), "{log}");
        assert!(log.contains("424242"), "{log}");
    }

    #[tokio::test]
    async fn smtp_mode_rejects_a_bad_recipient_before_connecting() {
        let mailer = Mailer::from_setting(&MailSetting::Smtp { host: "127.0.0.1".into(), port: 9 }).unwrap();
        let err = mailer.send(&mail("not an address", "000000")).await.unwrap_err();
        assert!(matches!(err, MailError::Recipient { .. }), "{err}");
    }

    #[tokio::test]
    async fn smtp_mode_reports_an_unreachable_relay() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mailer = Mailer::from_setting(&MailSetting::Smtp { host: "127.0.0.1".into(), port }).unwrap();
        let err = mailer.send(&mail("ada@example.com", "000000")).await.unwrap_err();
        assert!(matches!(err, MailError::Smtp { .. }), "{err}");
        assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    }
}

//! The `Transport` of the webhook actors: signs each attempt, checks the
//! target against the outbound guard at connect time, and POSTs with `awc`
//! (30 s timeout, redirects not followed).
//!
//! The client is [`crate::outbound::http::guarded_client`]: the connect-time
//! check lives in its resolver, so a host name is resolved by
//! [`OutboundGuard::resolve_checked`] and awc connects to exactly the
//! addresses that passed; a DNS answer that changes between the check and the
//! connection (rebinding) cannot slip through. IP-literal hosts never reach a
//! resolver, so they are checked before the request is built.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use switchboard_actors::records::DeliveryRecord;
use switchboard_actors::webhook::{AttemptOutcome, Transport};
use url::Url;

use super::secrets::{KeyError, Keys};
use crate::outbound::http::{check_literal_host, classify_send_error, guarded_client, SendFailure};
use crate::outbound::OutboundGuard;

/// The time one attempt may take, from connect to the last byte of the answer's head.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an answer's body is read (and dropped) so the connection can be reused.
const MAX_ANSWER_BODY: usize = 64 * 1024;

pub struct AwcTransport {
    client: awc::Client,
    guard: OutboundGuard,
    keys: Arc<Keys>,
}

impl AwcTransport {
    /// Builds the client; call on the arbiter the webhook actors run on (awc is single-threaded).
    pub fn new(guard: OutboundGuard, keys: Arc<Keys>) -> Self {
        let client = guarded_client(
            guard.clone(),
            ATTEMPT_TIMEOUT,
            concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")),
        );
        AwcTransport { client, guard, keys }
    }
}

impl Transport for AwcTransport {
    fn send(&self, d: &DeliveryRecord) -> LocalBoxFuture<'static, AttemptOutcome> {
        let client = self.client.clone();
        let guard = self.guard.clone();
        let keys = self.keys.clone();
        let d = d.clone();
        Box::pin(async move {
            let url = match Url::parse(&d.url) {
                Ok(u) => u,
                Err(e) => return AttemptOutcome::Abandoned { error: format!("the URL does not parse: {e}") },
            };
            // A refused address is retried like any failure: the name's answers may change back.
            if let Err(error) = check_literal_host(&guard, &url) {
                return AttemptOutcome::Failed { status: None, error };
            }
            let key = match keys.key_for(&d).await {
                Ok(k) => k,
                Err(KeyError::Gone(why)) => return AttemptOutcome::Abandoned { error: why },
                Err(KeyError::Unavailable(why)) => {
                    return AttemptOutcome::Failed {
                        status: None,
                        error: format!("signing key unavailable: {why}"),
                    }
                }
            };
            let timestamp = chrono::Utc::now().timestamp();
            let signature = key.sign(&d.id, timestamp, d.payload.as_bytes());
            let sent = client
                .post(url.as_str())
                .insert_header(("content-type", "application/json"))
                .insert_header(("webhook-id", d.id.as_str()))
                .insert_header(("webhook-timestamp", timestamp.to_string()))
                .insert_header(("webhook-signature", signature))
                .send_body(d.payload.clone())
                .await;
            match sent {
                Ok(mut answer) => {
                    let status = answer.status();
                    // Read a bounded amount so the connection can serve the next attempt.
                    let _ = actix_web::rt::time::timeout(
                        Duration::from_secs(5),
                        answer.body().limit(MAX_ANSWER_BODY),
                    )
                    .await;
                    if status.is_success() {
                        AttemptOutcome::Delivered { status: status.as_u16() }
                    } else {
                        let error = if status.is_redirection() {
                            format!("the receiver answered {status} (redirects are not followed)")
                        } else {
                            format!("the receiver answered {status}")
                        };
                        AttemptOutcome::Failed { status: Some(status.as_u16()), error }
                    }
                }
                Err(e) => AttemptOutcome::Failed { status: None, error: describe(&e) },
            }
        })
    }
}

fn describe(e: &awc::error::SendRequestError) -> String {
    match classify_send_error(e) {
        SendFailure::TimedOut => format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
        SendFailure::Refused { message } | SendFailure::Unresolvable { message } => message,
        SendFailure::Connect(c) => format!("could not connect: {c}"),
        SendFailure::Other(other) => format!("the request failed: {other}"),
    }
}

/// A transport for one thread, shared by the actors of that thread.
pub fn transport(guard: OutboundGuard, keys: Arc<Keys>) -> Rc<dyn Transport> {
    Rc::new(AwcTransport::new(guard, keys))
}

#[cfg(test)]
mod tests {
    use super::super::registry::{Registry, Subscription};
    use super::super::signing::{generate_secret, SigningKey};
    use super::*;
    use crate::identity::secret_box::SecretBox;
    use crate::outbound::http::GuardResolver;
    use crate::settings::MasterKey;
    use actix_tls::connect::Resolve;
    use std::net::SocketAddr;
    use switchboard_actors::model::TenantId;
    use switchboard_actors::records::DeliveryStatus;

    fn delivery(url: &str) -> DeliveryRecord {
        DeliveryRecord {
            id: "msg_test".into(),
            tenant_id: TenantId("t".into()),
            escalation_id: None,
            subscription_id: Some("wh_test".into()),
            event: "escalation.resolved".into(),
            url: url.into(),
            payload: "{}".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_status_code: None,
            last_error: None,
            next_attempt_at_ms: None,
            delivered_at_ms: None,
            created_at_ms: 0,
        }
    }

    /// The SSRF matrix at send time, with the default policy and the test
    /// allow-list: every target is refused before any connection.
    #[actix_web::test]
    async fn the_ssrf_matrix_is_refused_at_send_without_connecting() {
        let allow = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let guard = OutboundGuard::new(false, Some(allow));
        let registry = Arc::new(Registry::default());
        registry.add(Subscription {
            id: "wh_test".into(),
            tenant: TenantId("t".into()),
            url: "http://unused/".into(),
            events: vec!["escalation.resolved".into()],
            key: SigningKey::parse(&generate_secret()).unwrap(),
        });
        let secrets = SecretBox::new(&MasterKey([7; 32]));
        let transport = AwcTransport::new(guard, Arc::new(Keys::without_store(secrets, registry)));
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]:9/x",
            "http://10.0.0.1/x",
            "http://172.16.0.1/x",
            "http://192.168.1.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0/x",
            "http://localhost:9/x",
            "http://[::ffff:127.0.0.1]:9/x",
        ] {
            match transport.send(&delivery(url)).await {
                AttemptOutcome::Failed { status: None, error } => {
                    assert!(error.starts_with("refused by the outbound guard"), "{url}: {error}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    /// A name is checked by the resolver, so the address it resolves to at connect is what counts.
    #[actix_web::test]
    async fn a_name_is_judged_by_what_it_resolves_to_at_connect() {
        let guard = OutboundGuard::new(false, None);
        let resolver = GuardResolver::new(guard);
        // `localhost` is refused by name; an IP inside brackets by address.
        assert!(resolver.lookup("localhost", 80).await.is_err());
        assert!(resolver.lookup("[::1]", 80).await.is_err());
        let allowed =
            GuardResolver::new(OutboundGuard::new(true, Some(vec!["127.0.0.0/8".parse().unwrap()])));
        let addrs = allowed.lookup("127.0.0.1", 8080).await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
    }
}

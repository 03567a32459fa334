//! Slow and misbehaving clients do not stall others: a client that trickles
//! its request head (slowloris) gets 408 and is dropped after
//! `SWITCHBOARD_CLIENT_HEADER_TIMEOUT`; one that trickles its body gets 408
//! in its surface's format after `SWITCHBOARD_CLIENT_BODY_TIMEOUT`; one that
//! never reads its answers only fills its own connection. Meanwhile every
//! ordinary request is answered.

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound on waiting for the server to act; the server's own timeouts
/// are 1 s here, so reaching this means it never acted.
const PATIENCE: Duration = Duration::from_secs(20);

async fn app() -> common::TestApp {
    common::spawn_app_with(
        &[("SWITCHBOARD_CLIENT_HEADER_TIMEOUT", "1s"), ("SWITCHBOARD_CLIENT_BODY_TIMEOUT", "1s")],
        true,
    )
    .await
}

/// Ordinary clients on their own connections, all answered.
async fn others_are_served(app: &common::TestApp, n: usize) {
    let client = reqwest::Client::builder().timeout(PATIENCE).build().unwrap();
    for i in 0..n {
        let resp =
            client.get(app.url("/healthz")).send().await.unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(resp.status(), 200);
        let resp = client.get(app.url("/domains")).header("X-API-Key", "cero_nobody").send().await.unwrap();
        assert_eq!(resp.status(), 401, "an ordinary refusal, answered at once");
    }
}

/// Reads until the server closes the connection (or `PATIENCE` passes).
async fn read_until_closed(conn: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(PATIENCE, conn.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the server never closed the connection; it sent: {}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8_lossy(&out).into_owned()
}

#[actix_web::test]
async fn a_slowloris_head_is_cut_off_and_others_are_served() {
    let app = app().await;
    let mut slow = Vec::new();
    for _ in 0..32 {
        let mut conn = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
        slow.push(conn);
    }
    // Trickle one more byte on each, twice, while others are served.
    for _ in 0..2 {
        for conn in &mut slow {
            let _ = conn.write_all(b"a").await;
        }
        others_are_served(&app, 5).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for (i, conn) in slow.iter_mut().enumerate() {
        let answer = read_until_closed(conn).await;
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "connection {i} got: {answer}");
    }
    others_are_served(&app, 5).await;
}

#[actix_web::test]
async fn a_trickled_body_gets_408_in_its_surfaces_format() {
    let app = app().await;
    let cases = [
        ("/escalations", "\"detail\""),
        ("/v1/customers", "\"success\":false"),
        ("/api/auth/otp/request", "\"error\""),
    ];
    for (path, shape) in cases {
        let mut conn = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             X-API-Key: cero_whatever\r\nContent-Length: 200\r\n\r\n{{\"email\": "
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        others_are_served(&app, 3).await;
        let answer = read_until_closed(&mut conn).await;
        // /escalations and /v1/customers look at the key before the body: 401 is as good an
        // answer as 408, as long as the server answered instead of waiting.
        let status = answer.split_whitespace().nth(1).unwrap_or("");
        assert!(matches!(status, "408" | "401"), "{path}: {answer}");
        assert!(answer.contains(shape), "{path}: error in its surface's format: {answer}");
        if path == "/api/auth/otp/request" {
            assert_eq!(status, "408", "{answer}");
            assert!(answer.contains("did not arrive within 1s"), "{answer}");
        }
    }
}

#[actix_web::test]
async fn a_client_that_never_reads_stalls_only_itself() {
    let app = app().await;
    let mut greedy = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    // Pipelined requests for a large document, none of whose answers is read.
    let one = "GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(64);
    let _ = tokio::time::timeout(Duration::from_secs(2), greedy.write_all(one.as_bytes())).await;
    others_are_served(&app, 20).await;
    drop(greedy);
    others_are_served(&app, 5).await;
}

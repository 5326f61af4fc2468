//! The relay's HTTP server under clients that are slow, idle, too many or still talking when
//! the relay stops: real TCP on 127.0.0.1, limits shortened (or lengthened) so that only the
//! limit under test can end a connection, and every wait is for an event (a closed socket, a
//! stored order), bounded by a limit far above what it should take.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use relay_engine::server::ServerLimits;
use relay_engine::{Engine, Store};
use relay_test_support::signing::{camionback_headers, unix_now};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Longer than any test may run: a limit set to this never ends a connection in a test.
const NEVER: Duration = Duration::from_secs(3600);

/// How long a test waits for what should take milliseconds before failing.
const PATIENCE: Duration = Duration::from_secs(30);

fn limits(header: Duration, request: Duration, grace: Duration) -> ServerLimits {
    ServerLimits {
        header_read_timeout: header,
        request_timeout: request,
        shutdown_grace: grace,
        ..ServerLimits::default()
    }
}

async fn start_with(limits: ServerLimits) -> TestApp {
    let mut app = world(&[]).await;
    let mut settings = settings_for(&app.dir, &app.camionback, &app.cloud, &app.overrides);
    settings.webhook.limits = limits;
    app.engine = Some(Engine::start(settings).await.expect("engine starts"));
    app
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {PATIENCE:?}"))
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection (a reset counts as closed); returns what came.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one answer: its status and body (by `content-length`).
async fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut buf).await.expect("read answer");
        assert!(n > 0, "connection closed before the answer");
        received.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    let status = head[9..12].parse().expect("status code");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().expect("length"))
        .unwrap_or(0);
    while received.len() < head_end + length {
        let n = stream.read(&mut buf).await.expect("read body");
        assert!(n > 0, "connection closed in the body");
        received.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&received[head_end..head_end + length]).into_owned();
    (status, body)
}

/// A signed order webhook as raw HTTP/1.1: head, then body.
fn signed_webhook(id: i64) -> (String, Vec<u8>) {
    let body =
        serde_json::to_vec(&json!({ "event": "order.created", "order": order(id) })).expect("json");
    let mut head = format!(
        "POST /webhooks/orders HTTP/1.1\r\nhost: relay\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in camionback_headers(WEBHOOK_SECRET, unix_now(), &body) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    (head, body)
}

fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in {metrics}"))
}

#[tokio::test]
async fn a_client_that_sends_half_its_headers_is_disconnected_after_the_header_timeout() {
    let app = start_with(limits(Duration::from_secs(1), NEVER, NEVER)).await;
    let mut slow = connect(app.engine().addr()).await;
    slow.write_all(b"POST /webhooks/orders HTTP/1.1\r\nhost: relay\r\nx-camionback-sig")
        .await
        .expect("half the headers");

    let answer = within(
        "the half-headers connection closes",
        read_until_closed(&mut slow),
    )
    .await;
    assert_eq!(
        answer, "",
        "nothing is answered to a request never finished"
    );
    assert_eq!(
        metric(&app.metrics().await, "relay_http_header_timeouts_total"),
        1
    );
}

#[tokio::test]
async fn a_kept_alive_connection_with_no_next_request_is_closed_after_the_header_timeout() {
    let app = start_with(limits(Duration::from_secs(1), NEVER, NEVER)).await;
    let mut idle = connect(app.engine().addr()).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: relay\r\n\r\n")
        .await
        .expect("request");
    let (status, _) = within("the health answer", read_answer(&mut idle)).await;
    assert_eq!(status, 200);

    // Kept alive by HTTP/1.1, then silent: the server closes it.
    let rest = within("the idle connection closes", read_until_closed(&mut idle)).await;
    assert_eq!(rest, "");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_stores_nothing_and_is_closed() {
    let app = start_with(limits(NEVER, Duration::from_secs(2), NEVER)).await;
    let (head, body) = signed_webhook(31);
    let mut slow = connect(app.engine().addr()).await;
    slow.write_all(head.as_bytes()).await.expect("headers");
    slow.write_all(&body[..body.len() / 2])
        .await
        .expect("half the body");

    let answer = within(
        "the half-body connection closes",
        read_until_closed(&mut slow),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(
        app.store().find_order("31").await.expect("query").is_none(),
        "half an order is no order"
    );
    assert_eq!(
        metric(&app.metrics().await, "relay_http_request_timeouts_total"),
        1
    );
}

#[tokio::test]
async fn a_connection_over_the_cap_is_refused_at_once_and_counted() {
    let app = start_with(ServerLimits {
        max_connections: 3,
        ..limits(NEVER, NEVER, NEVER)
    })
    .await;
    let addr = app.engine().addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(addr).await);
    }

    // The server accepts connections in the order they were made: this is the fourth.
    let mut fourth = connect(addr).await;
    let answer = within(
        "the fourth connection is answered",
        read_until_closed(&mut fourth),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");

    // One of the three leaves: the server takes connections again.
    drop(held.pop());
    let mut refused_meanwhile = 0;
    let metrics = within("a connection is accepted again", async {
        loop {
            let mut probe = connect(addr).await;
            probe
                .write_all(b"GET /metrics HTTP/1.1\r\nhost: relay\r\nconnection: close\r\n\r\n")
                .await
                .expect("request");
            let answer = read_until_closed(&mut probe).await;
            if answer.starts_with("HTTP/1.1 200") {
                return answer;
            }
            refused_meanwhile += 1;
        }
    })
    .await;
    assert_eq!(
        metric(&metrics, "relay_http_connections_refused_total"),
        1 + refused_meanwhile,
        "every refused connection is counted"
    );
    assert_eq!(
        metric(&metrics, "relay_http_connections_open"),
        3,
        "the two held connections and this one"
    );
}

#[tokio::test]
async fn shutdown_with_100_slow_connections_open_ends_within_the_deadline() {
    // Header and request timeouts that never fire: only the stop can end these connections.
    let mut app = start_with(limits(NEVER, NEVER, Duration::from_millis(500))).await;
    let addr = app.engine().addr();
    let mut slow = Vec::new();
    for i in 0..100 {
        let mut stream = connect(addr).await;
        if i % 2 == 0 {
            stream
                .write_all(b"POST /webhooks/orders HTTP/1.1\r\nhost: relay\r\ncontent-le")
                .await
                .expect("half the headers");
        } else {
            let (head, body) = signed_webhook(1000 + i);
            stream.write_all(head.as_bytes()).await.expect("headers");
            stream
                .write_all(&body[..body.len() / 2])
                .await
                .expect("half the body");
        }
        slow.push(stream);
    }
    // Every connection is being served (the half-body ones are in their handler); the
    // scrape's own connection is the 101st.
    eventually(PATIENCE, || async {
        (metric(&app.metrics().await, "relay_http_connections_open") >= 101).then_some(())
    })
    .await;

    within("the shutdown", app.stop()).await;
    for stream in &mut slow {
        within("each slow connection is closed", read_until_closed(stream)).await;
    }
}

#[tokio::test]
async fn a_webhook_being_received_when_the_relay_stops_is_still_answered_and_stored() {
    // A grace that never runs out: the request in flight is waited for, not dropped.
    let mut app = start_with(limits(NEVER, NEVER, NEVER)).await;
    let addr = app.engine().addr();
    let (head, body) = signed_webhook(77);
    let mut sender = connect(addr).await;
    sender.write_all(head.as_bytes()).await.expect("headers");
    sender
        .write_all(&body[..body.len() / 2])
        .await
        .expect("half the body");
    // An idle connection and one with half its headers: nothing to finish, closed at once.
    let mut idle = connect(addr).await;
    let mut half_headers = connect(addr).await;
    half_headers
        .write_all(b"GET /healthz HTTP/1.1\r\nho")
        .await
        .expect("half the headers");
    // The three, and the scrape's own connection.
    eventually(PATIENCE, || async {
        (metric(&app.metrics().await, "relay_http_connections_open") >= 4).then_some(())
    })
    .await;

    let engine = app.engine.take().expect("running");
    let stopping = tokio::spawn(engine.shutdown());
    within(
        "the idle connection is closed",
        read_until_closed(&mut idle),
    )
    .await;
    within(
        "the half-headers connection is closed",
        read_until_closed(&mut half_headers),
    )
    .await;
    // The server takes no new connection once stopping.
    eventually(PATIENCE, || async {
        TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;

    sender
        .write_all(&body[body.len() / 2..])
        .await
        .expect("the rest of the body");
    let (status, answer) = within("the webhook's answer", read_answer(&mut sender)).await;
    assert_eq!(status, 202, "{answer}");
    within("the shutdown", stopping).await.expect("shutdown");

    let store = Store::open(&app.dir.path().join("relay.db"))
        .await
        .expect("database");
    assert!(
        store.find_order("77").await.expect("query").is_some(),
        "the order received during the stop is stored"
    );
    store.close().await;
}

#[tokio::test]
async fn two_webhooks_over_one_kept_alive_connection_are_both_accepted() {
    let app = start_with(ServerLimits::default()).await;
    let mut stream = connect(app.engine().addr()).await;
    for id in [41, 42] {
        let (head, body) = signed_webhook(id);
        stream.write_all(head.as_bytes()).await.expect("headers");
        stream.write_all(&body).await.expect("body");
        let (status, answer) = within("the webhook's answer", read_answer(&mut stream)).await;
        assert_eq!(status, 202, "{answer}");
        assert!(answer.contains(r#""status":"accepted""#), "{answer}");
    }
    for id in ["41", "42"] {
        assert!(app.store().find_order(id).await.expect("query").is_some());
    }
}

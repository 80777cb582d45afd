//! The front door's connection limits over real sockets, with small values: silent and
//! trickling connections are closed after the header-read timeout, idle HTTP/1.1 and
//! HTTP/2 connections after the idle timeout, HTTP/2 clients that do not answer pings
//! are dropped, and connections over the cap are closed at once while the others keep
//! working. `pos up` takes the limits from the edge's flags.

use std::time::{Duration, Instant};

use axum::{Router, routing::get};
use pos::startup::{self, Running};
use pos_common::role::{ConnectionLimits, Front};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::{
    Engine,
    stack::{StackOptions, TestStack},
};

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(30);

/// Long limits but for those a test sets.
fn limits() -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: LONG,
        idle_timeout: LONG,
        http2_keepalive_interval: LONG,
        http2_keepalive_timeout: LONG,
        max_connections: 100,
    }
}

/// A front door with `/` answering at once and `/slow` after a second.
async fn serve(limits: ConnectionLimits) -> Running {
    let router = Router::new().route("/", get(|| async { "ok" })).route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "slow"
        }),
    );
    startup::serve_http(
        "127.0.0.1:0".parse().expect("addr"),
        Front {
            router,
            connections: limits,
            health: None,
        },
    )
    .await
    .expect("serve")
}

/// Reads until the server closes the connection (or resets it); how long that took.
async fn time_until_closed(stream: &mut TcpStream, started: Instant) -> Duration {
    let mut buf = [0u8; 4096];
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the connection was still open after 10 s");
    started.elapsed()
}

/// One HTTP/1.1 keep-alive request on `stream`; the response's body.
async fn http1_get(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    // The bodies here are short and the head says how long: read until it is all there.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed before answering: {response:?}");
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse().ok())
                .expect("a content-length");
            if body.len() >= length {
                return body.to_string();
            }
        }
    }
}

fn assert_between(elapsed: Duration, low: Duration, high: Duration, what: &str) {
    assert!(
        elapsed >= low && elapsed < high,
        "{what}: closed after {elapsed:?}, expected within [{low:?}, {high:?})"
    );
}

#[tokio::test]
async fn silent_and_trickling_connections_are_closed_after_the_header_read_timeout() {
    let server = serve(ConnectionLimits {
        header_read_timeout: SHORT,
        ..limits()
    })
    .await;
    // Sends nothing at all.
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let elapsed = time_until_closed(&mut silent, started).await;
    assert_between(elapsed, SHORT / 2, Duration::from_secs(3), "silent");

    // Sends a request head a byte at a time, never finishing it.
    let started = Instant::now();
    let trickle = TcpStream::connect(server.addr).await.expect("connect");
    let (mut reading, mut writing) = trickle.into_split();
    let writer = tokio::spawn(async move {
        for byte in b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: "
            .iter()
            .cycle()
            .take(100)
        {
            if writing.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(3), reading.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "a trickling client is cut off, not served: {read:?}"
    );
    assert_between(
        started.elapsed(),
        SHORT / 2,
        Duration::from_secs(3),
        "trickling",
    );
    writer.abort();
}

#[tokio::test]
async fn idle_http1_and_http2_connections_are_closed_after_the_idle_timeout() {
    let server = serve(ConnectionLimits {
        idle_timeout: SHORT,
        ..limits()
    })
    .await;
    // HTTP/1.1 keep-alive: one call, then nothing.
    let mut http1 = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(http1_get(&mut http1, "/").await, "ok");
    // A call that outlasts the idle timeout is not cut: it is in flight, not idle.
    assert_eq!(http1_get(&mut http1, "/slow").await, "slow");
    let started = Instant::now();
    let elapsed = time_until_closed(&mut http1, started).await;
    assert_between(elapsed, SHORT / 2, Duration::from_secs(3), "idle HTTP/1.1");

    // HTTP/2: one call, then nothing; the server says GOAWAY and closes.
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::get(format!("http://{}/", server.addr))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(request, true).expect("send");
    let response = response.await.expect("response");
    assert_eq!(response.status(), http::StatusCode::OK);
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        chunk.expect("body");
    }
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), connection)
        .await
        .expect("the server closes an idle HTTP/2 connection")
        .expect("the connection task")
        .ok();
    assert_between(
        started.elapsed(),
        SHORT / 2,
        Duration::from_secs(3),
        "idle HTTP/2",
    );
}

/// An HTTP/2 frame header: length, type, flags, stream 0.
fn h2_frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("small").to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

const PING: u8 = 6;

#[tokio::test]
async fn http2_clients_that_do_not_answer_pings_are_dropped() {
    let server = serve(ConnectionLimits {
        http2_keepalive_interval: Duration::from_millis(200),
        http2_keepalive_timeout: Duration::from_millis(200),
        ..limits()
    })
    .await;
    // A client that says hello in HTTP/2 and then reads everything, answering nothing.
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(h2_frame(4, 0, &[]));
    tcp.write_all(&hello).await.expect("preface");
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read_all.is_ok(), "still open after 5 s of unanswered pings");
    assert_between(
        started.elapsed(),
        Duration::from_millis(300),
        Duration::from_secs(3),
        "unanswered pings",
    );
    // The server did ping before giving up.
    let mut frames = received.as_slice();
    let mut pinged = false;
    while frames.len() >= 9 {
        let length = u32::from_be_bytes([0, frames[0], frames[1], frames[2]]) as usize;
        pinged |= frames[3] == PING;
        frames = &frames[(9 + length).min(frames.len())..];
    }
    assert!(pinged, "no PING among {received:?}");

    // A client that answers pings (h2 does) keeps its connection past several of them.
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!connection.is_finished(), "an answering client was dropped");
    let mut client = client.ready().await.expect("still usable");
    let request = http::Request::get(format!("http://{}/", server.addr))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(request, true).expect("send");
    assert_eq!(
        response.await.expect("response").status(),
        http::StatusCode::OK
    );
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_and_the_cap_frees_up() {
    let server = serve(ConnectionLimits {
        max_connections: 2,
        ..limits()
    })
    .await;
    let mut first = TcpStream::connect(server.addr).await.expect("connect");
    let mut second = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(http1_get(&mut first, "/").await, "ok");
    assert_eq!(http1_get(&mut second, "/").await, "ok");

    let started = Instant::now();
    let mut third = TcpStream::connect(server.addr)
        .await
        .expect("the kernel accepts");
    let _ = third.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let elapsed = time_until_closed(&mut third, started).await;
    assert!(
        elapsed < Duration::from_secs(1),
        "closed at once, not after {elapsed:?}"
    );
    // The connections within the cap keep working.
    assert_eq!(http1_get(&mut first, "/").await, "ok");
    assert_eq!(http1_get(&mut second, "/").await, "ok");

    // Once one ends, a new connection is served.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut next = TcpStream::connect(server.addr).await.expect("connect");
        let _ = next.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let mut answer = vec![0u8; 1024];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(1), next.read(&mut answer)).await
            && n > 0
        {
            assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was never reused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn pos_up_takes_the_connection_limits_from_the_edge_flags() {
    let mut options = StackOptions::default();
    options
        .flags
        .extend(["--header-read-timeout-secs".into(), "0.3".into()]);
    let stack = TestStack::start_with(Engine::Sqlite, options).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(stack.addr).await.expect("connect");
    let elapsed = time_until_closed(&mut silent, started).await;
    assert_between(elapsed, SHORT / 2, Duration::from_secs(3), "silent, pos up");
    stack.stop().await;
}

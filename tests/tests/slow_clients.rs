//! The server's connection limits against real clients on loopback: a
//! client that trickles its headers is cut off at the header-read timeout,
//! and connections past the limit wait to be accepted instead of being
//! served, while the host keeps serving those it holds.

use std::time::{Duration, Instant};

use junction_tests::host::TestHost;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `limit` passes).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let outcome = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    outcome.ok().map(|()| seen)
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    let host = TestHost::start_with(|config| {
        config.connections.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = host.url.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    // One more header line every 300 ms: never the end of the head.
    let mut cut = false;
    for i in 0..30 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if slow
            .write_all(format!("X-Slow-{i}: yes\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = true;
            break;
        }
    }
    if !cut {
        let closed = read_until_closed(&mut slow, Duration::from_secs(5)).await;
        assert!(closed.is_some(), "the slow client is never cut off");
    }
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "cut off after {:?}",
        started.elapsed()
    );
    // Meanwhile and after, the host serves everyone else.
    assert_eq!(
        host.get("/v1/plugins").await.status,
        reqwest::StatusCode::OK
    );
}

#[tokio::test]
async fn connections_past_the_limit_wait_to_be_accepted() {
    let host = TestHost::start_with(|config| {
        config.connections.max_connections = 2;
        config.connections.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = host.url.trim_start_matches("http://").to_owned();
    // Two idle connections take both slots.
    let first = TcpStream::connect(&addr).await.expect("connect");
    let second = TcpStream::connect(&addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(&addr)
        .await
        .expect("the kernel accepts it");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let waiting = read_until_closed(&mut third, Duration::from_millis(700)).await;
    assert!(
        waiting.is_none(),
        "a third connection was served past the limit of two"
    );
    // A slot frees: the waiting request is answered.
    drop(first);
    let answered = read_until_closed(&mut third, Duration::from_secs(10))
        .await
        .expect("answered once a slot is free");
    let text = String::from_utf8_lossy(&answered);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    drop(second);
}

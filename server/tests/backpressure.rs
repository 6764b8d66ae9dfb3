//! Backpressure: a client that sends requests and never reads the replies
//! cannot grow the node's memory past the bound, the node keeps serving other
//! clients meanwhile, and a client stuck past the stall timeout is dropped.
//! Everything is read from the node's own metrics page, not from timings.

mod common;

use common::{http_get, sample, wait_until, ServerProcess};
use crucial::__private::registry::registry;
use crucial::AtomicI64;
use crucial_protocol::codec;
use crucial_protocol::wire::{self, Call, ObjectRef, Request, PROTOCOL_VERSION};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const BOUND: usize = 1 << 20;

/// Frames `first..first + n` of a real client's traffic: `fetch_add(1)` calls.
fn calls(first: u64, n: u64) -> Vec<u8> {
    let fingerprint = registry()
        .shared_type("crucial::AtomicI64")
        .and_then(|t| t.method("fetch_add"))
        .map(|m| m.id.fingerprint)
        .expect("fetch_add is registered");
    let args = codec::encode(&(1i64,)).unwrap();
    let payload = Request::Call(Call {
        object: ObjectRef {
            type_name: "crucial::AtomicI64",
            key: "flood",
        },
        method: "fetch_add",
        fingerprint,
        args: &args,
        timeout_ms: 0,
    })
    .encode()
    .unwrap();
    let mut out = Vec::new();
    for id in first..first + n {
        wire::write_frame(&mut out, id, &payload);
    }
    out
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_node_and_is_dropped_when_stuck() {
    let server = ServerProcess::crucial_server(&[
        "--metrics",
        "127.0.0.1:0",
        "--max-backlog",
        &BOUND.to_string(),
        "--stall-timeout",
        "5",
    ]);
    let url = server.metrics.clone().expect("metrics address printed");
    let metric = |name: &str| sample(&http_get(&url).1, name);
    let good = server.client();
    let counter = good.open::<AtomicI64>("good");
    assert_eq!(counter.fetch_add(1).unwrap(), 0);
    let resident_before = metric("process_resident_memory_bytes");

    // The flood: a handshake, then up to 4 M calls written and no reply read.
    // Without backpressure the node reads them all (8 M took a node from 49 MB
    // to 567 MB); with it, the node stops reading and TCP stops the writer.
    let mut flood = TcpStream::connect(&server.addr).unwrap();
    let mut hello = Vec::new();
    let hello_payload = Request::Hello {
        protocol: PROTOCOL_VERSION,
        client_id: 99,
        token: None,
    }
    .encode()
    .unwrap();
    wire::write_frame(&mut hello, 0, &hello_payload);
    flood.write_all(&hello).unwrap();
    flood
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    const CAP: u64 = 4_000_000;
    const CHUNK: u64 = 1_000;
    let mut sent = 0;
    while sent < CAP {
        match flood.write_all(&calls(sent + 1, CHUNK)) {
            Ok(()) => sent += CHUNK,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("the node broke the flooding connection early: {e}"),
        }
    }
    assert!(
        sent < CAP,
        "the node read all {sent} requests of a client that reads nothing"
    );
    wait_until("the node pauses the flooding connection", || {
        metric("crucial_read_pauses_total") >= 1.0
    });
    let backlog = metric("crucial_reply_backlog_bytes");
    let resident = metric("process_resident_memory_bytes");
    assert!(
        backlog <= 2.0 * BOUND as f64,
        "{backlog} unread reply bytes for a bound of {BOUND}"
    );
    let grown = (resident - resident_before) / (1 << 20) as f64;
    println!(
        "flood: {sent} requests written before TCP stopped the writer; node backlog \
         {backlog} B (bound {BOUND}); resident memory {:.1} -> {:.1} MiB",
        resident_before / (1 << 20) as f64,
        resident / (1 << 20) as f64
    );
    assert!(
        grown < 64.0,
        "the node grew by {grown:.1} MiB while {sent} requests were written"
    );

    // Meanwhile everyone else is served.
    assert_eq!(counter.fetch_add(1).unwrap(), 1);
    let other = server.client().open::<AtomicI64>("other");
    assert_eq!(other.fetch_add(5).unwrap(), 0);
    assert_eq!(metric("crucial_connections_open"), 3.0);

    // Stuck past the stall timeout: the node drops the connection and its backlog.
    wait_until("the stuck client is dropped", || {
        metric("crucial_stalled_connections_closed_total") == 1.0
    });
    wait_until("its backlog is freed", || {
        metric("crucial_reply_backlog_bytes") == 0.0
    });
    assert_eq!(metric("crucial_connections_open"), 2.0);
    flood
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sink = vec![0u8; 1 << 16];
    loop {
        match flood.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => continue, // replies written before the drop
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the stalled connection was not closed: {e}"),
        }
    }
    assert_eq!(counter.fetch_add(1).unwrap(), 2, "the node still serves");
}

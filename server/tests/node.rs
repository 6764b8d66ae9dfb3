//! Integration tests: real node processes on loopback, real clients.

mod common;

use common::fixtures::Faulty;
use common::{http_get, sample, ServerProcess};
use crucial::__private::testing::{drop_connection, roundtrip_with_id};
use crucial::{AtomicBytes, AtomicI64, Bytes, Error, RemoteError, SharedProxy};
use crucial_protocol::codec;
use crucial_protocol::wire::{self, Call, ObjectRef, Request};
use std::io::{Read, Write};
use std::sync::Arc;

fn remote(result: Result<impl std::fmt::Debug, Error>) -> RemoteError {
    match result {
        Err(Error::Remote(e)) => e,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

fn call_payload(
    type_name: &str,
    key: &str,
    method: &str,
    fingerprint: u64,
    args: &[u8],
) -> Vec<u8> {
    codec::encode(&Request::Call(Call {
        object: ObjectRef { type_name, key },
        method,
        fingerprint,
        args,
        timeout_ms: 0,
    }))
    .unwrap()
}

fn fingerprint_of(type_name: &str, method: &str) -> u64 {
    crucial::__private::registry::registry()
        .shared_type(type_name)
        .and_then(|t| t.method(method))
        .map(|m| m.id.fingerprint)
        .expect("known method")
}

#[test]
fn concurrent_fetch_add_from_8_threads_is_linearizable() {
    let server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    let counter: crucial::AtomicI64Proxy = client.open::<AtomicI64>("c");
    let previous: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let counter = counter.clone();
                s.spawn(move || {
                    (0..1000)
                        .map(|_| counter.fetch_add(1).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(counter.load().unwrap(), 8000);
    let mut sorted = previous.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 8000, "every previous value is distinct");
    assert_eq!(sorted, (0..8000).collect::<Vec<i64>>());
}

#[test]
fn async_api_matches_blocking_api() {
    let server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    let counter = client.open::<AtomicI64>("async");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let futures: Vec<_> = (0..100).map(|_| counter.fetch_add_async(2)).collect();
        let mut out = Vec::new();
        for f in futures {
            out.push(f.await.unwrap());
        }
        out
    });
    assert_eq!(results.len(), 100);
    assert_eq!(counter.load().unwrap(), 200);
}

#[test]
fn bad_inputs_get_clear_errors_and_the_node_keeps_serving() {
    let server = ServerProcess::fixture_node(64 * 1024);
    let client = server.client();
    let faulty = client.open::<Faulty>("f");
    faulty.set(5).unwrap();

    // Unknown type.
    let payload = call_payload("NoSuchType", "k", "get", 0, &[]);
    let e = remote(roundtrip_with_id(&client, 0, 1_000_001, &payload));
    assert!(
        matches!(&e, RemoteError::UnknownType { type_name, node } if type_name == "NoSuchType" && node == &server.addr),
        "{e}"
    );
    assert!(e.to_string().contains("unknown type `NoSuchType`"), "{e}");

    // Unknown method.
    let payload = call_payload("Faulty", "f", "frobnicate", 0, &[]);
    let e = remote(roundtrip_with_id(&client, 0, 1_000_002, &payload));
    assert!(
        matches!(e, RemoteError::UnknownMethod { ref method, .. } if method == "frobnicate"),
        "{e}"
    );

    // Same name, different signature (a client built from other code).
    let fp = fingerprint_of("Faulty", "set");
    let payload = call_payload(
        "Faulty",
        "f",
        "set",
        fp ^ 1,
        &codec::encode(&(1i64,)).unwrap(),
    );
    let e = remote(roundtrip_with_id(&client, 0, 1_000_003, &payload));
    assert!(matches!(e, RemoteError::IncompatibleMethod { .. }), "{e}");
    assert!(
        e.to_string().contains("fn set(&mut self, value: i64)"),
        "{e}"
    );

    // Arguments that do not decode as the method's parameters.
    let payload = call_payload("Faulty", "f", "set", fp, &[0xff, 0xff, 0xff]);
    let e = remote(roundtrip_with_id(&client, 0, 1_000_004, &payload));
    assert!(matches!(e, RemoteError::BadArguments { .. }), "{e}");

    // A frame that is not a request at all.
    let e = remote(roundtrip_with_id(
        &client,
        0,
        1_000_005,
        &[0x63, 0x01, 0x02],
    ));
    assert!(matches!(e, RemoteError::BadFrame { .. }), "{e}");

    // A payload over the node's limit.
    let blob = client.open::<AtomicBytes>("blob");
    let e = remote(blob.set(Bytes::from(vec![1u8; 100 * 1024])));
    assert!(
        matches!(e, RemoteError::FrameTooLarge { limit, .. } if limit == 64 * 1024),
        "{e}"
    );
    blob.set(Bytes::from(vec![1u8; 1024])).unwrap();
    assert_eq!(blob.len().unwrap(), 1024);

    // A read-only method that panics: error, object intact and not poisoned.
    let e = remote(faulty.read_panic());
    assert!(
        matches!(e, RemoteError::Panicked { ref message, .. } if message == "read-only boom"),
        "{e}"
    );
    assert_eq!(faulty.get().unwrap(), 5);

    // A mutating method that panics midway: error, then the object is poisoned.
    let e = remote(faulty.set_then_panic(9));
    assert!(
        matches!(e, RemoteError::Panicked { ref message, .. } if message.contains("boom after setting 9")),
        "{e}"
    );
    let e = remote(faulty.get());
    assert!(
        matches!(e, RemoteError::Poisoned { ref method, .. } if method == "set_then_panic"),
        "{e}"
    );
    assert!(client
        .list_objects()
        .unwrap()
        .iter()
        .any(|o| o.key == "f" && o.poisoned));
    // Other objects of the same type are unaffected, and delete resets the poisoned one.
    client.open::<Faulty>("g").set(1).unwrap();
    assert!(faulty.delete().unwrap());
    assert_eq!(faulty.get().unwrap(), 0);

    // The same connection still serves, and so does a second client.
    let other = server.client();
    assert_eq!(other.open::<AtomicI64>("n").fetch_add(1).unwrap(), 0);
    assert_eq!(client.open::<AtomicI64>("n").load().unwrap(), 1);
}

#[test]
fn garbage_connections_and_dead_clients_do_not_hurt_the_node() {
    let server = ServerProcess::crucial_server(&["--max-frame-size", "4096"]);
    let good = server.client();
    let counter = good.open::<AtomicI64>("x");
    counter.fetch_add(1).unwrap();

    // Bytes that are no protocol at all: the node closes that connection.
    let mut raw = std::net::TcpStream::connect(&server.addr).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut sink = Vec::new();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = raw.read_to_end(&mut sink);

    // A call before Hello is refused with a protocol error.
    let mut raw = std::net::TcpStream::connect(&server.addr).unwrap();
    let mut frame = Vec::new();
    wire::write_frame(&mut frame, 5, &codec::encode(&Request::Ping).unwrap());
    raw.write_all(&frame).unwrap();
    let mut reply = Vec::new();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = raw.read_to_end(&mut reply);
    assert!(reply.len() > wire::HEADER_LEN);
    let decoded: Result<serde_bytes::ByteBuf, RemoteError> =
        codec::decode(&reply[wire::HEADER_LEN..]).unwrap();
    assert!(
        matches!(decoded, Err(RemoteError::Protocol { .. })),
        "{decoded:?}"
    );

    // A client that dies halfway through a frame.
    let mut raw = std::net::TcpStream::connect(&server.addr).unwrap();
    raw.write_all(&[0, 0, 3, 232, 0, 0, 0, 0, 0, 0, 0, 1, 42])
        .unwrap();
    drop(raw);

    // Many clients that connect and vanish.
    for _ in 0..50 {
        let c = server.client();
        let _ = c.open::<AtomicI64>("x").load();
    }

    assert_eq!(counter.fetch_add(1).unwrap(), 1);
    assert_eq!(server.client().open::<AtomicI64>("x").load().unwrap(), 2);
}

#[test]
fn a_retried_request_is_applied_once() {
    let server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    let fp = fingerprint_of("crucial::AtomicI64", "fetch_add");
    let payload = call_payload(
        "crucial::AtomicI64",
        "once",
        "fetch_add",
        fp,
        &codec::encode(&(10i64,)).unwrap(),
    );
    let first: i64 = codec::decode(&roundtrip_with_id(&client, 0, 777, &payload).unwrap()).unwrap();
    // The same (client id, sequence) again on the same connection...
    let second: i64 =
        codec::decode(&roundtrip_with_id(&client, 0, 777, &payload).unwrap()).unwrap();
    // ...and after a reconnection, as a client retrying after a lost connection does.
    drop_connection(&client, 0);
    let third: i64 = codec::decode(&roundtrip_with_id(&client, 0, 777, &payload).unwrap()).unwrap();
    assert_eq!((first, second, third), (0, 0, 0));
    let counter = client.open::<AtomicI64>("once");
    assert_eq!(counter.load().unwrap(), 10, "applied exactly once");
    // A new sequence number is a new request.
    let fourth: i64 =
        codec::decode(&roundtrip_with_id(&client, 0, 778, &payload).unwrap()).unwrap();
    assert_eq!(fourth, 10);
    assert_eq!(counter.load().unwrap(), 20);
    // Another client using the same sequence number is a different request.
    let other = server.client();
    let fifth: i64 = codec::decode(&roundtrip_with_id(&other, 0, 777, &payload).unwrap()).unwrap();
    assert_eq!(fifth, 20);
}

#[test]
fn objects_are_created_listed_and_deleted() {
    let server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    assert!(client.create("a", &AtomicI64::new(41)).unwrap());
    assert!(
        !client.create("a", &AtomicI64::new(0)).unwrap(),
        "existing object kept"
    );
    let a = client.open::<AtomicI64>("a");
    assert_eq!(a.add_and_get(1).unwrap(), 42);
    client
        .open::<AtomicBytes>("b")
        .set(Bytes::from_static(b"xyz"))
        .unwrap();
    let listed: Vec<(String, String)> = client
        .list_objects()
        .unwrap()
        .into_iter()
        .map(|o| (o.type_name, o.key))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("crucial::AtomicBytes".to_string(), "b".to_string()),
            ("crucial::AtomicI64".to_string(), "a".to_string())
        ]
    );
    assert!(a.delete().unwrap());
    assert!(!a.delete().unwrap());
    assert_eq!(a.load().unwrap(), 0, "recreated from Default");
    let types = client.list_types().unwrap();
    assert!(types.iter().any(|t| t.name == "crucial::Map"));
    assert_eq!(
        client.server_info(0).unwrap().protocol,
        wire::PROTOCOL_VERSION
    );
}

#[test]
fn collections_and_server_side_merges() {
    let server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    let list = client.open::<crucial::List<String>>("names");
    list.push(&"ada".into()).unwrap();
    list.extend(&["bob".to_string(), "cy".to_string()]).unwrap();
    assert_eq!(list.len().unwrap(), 3);
    assert_eq!(list.get(1).unwrap().as_deref(), Some("bob"));
    assert_eq!(list.set(1, &"bo".into()).unwrap().as_deref(), Some("bob"));
    assert_eq!(list.remove(0).unwrap().as_deref(), Some("ada"));
    assert_eq!(list.pop().unwrap().as_deref(), Some("cy"));
    assert_eq!(list.to_vec().unwrap(), vec!["bo".to_string()]);
    assert_eq!(list.get(10).unwrap(), None);

    let sums = client.open::<crucial::Map<String, Vec<f64>>>("sums");
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let sums = sums.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    sums.merge_add(&"v".into(), &vec![1.0, i as f64]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(sums.get(&"v".into()).unwrap(), Some(vec![200.0, 300.0]));
    assert!(sums.contains_key(&"v".into()).unwrap());
    assert_eq!(sums.keys().unwrap(), vec!["v".to_string()]);
    sums.insert(&"w".into(), &vec![]).unwrap();
    assert_eq!(sums.len().unwrap(), 2);
    assert_eq!(sums.remove(&"w".into()).unwrap(), Some(vec![]));

    // A merge of the wrong type is refused by the object and changes nothing.
    let mixed = client.open::<crucial::Map<String, i64>>("sums");
    assert!(matches!(
        mixed.merge_add(&"v".into(), &1),
        Err(Error::Object(_))
    ));
    assert_eq!(sums.get(&"v".into()).unwrap(), Some(vec![200.0, 300.0]));
    let maxes = client.open::<crucial::Map<u32, i64>>("max");
    for v in [3, 9, -2] {
        maxes.merge_max(&1, &v).unwrap();
        maxes.merge_min(&2, &v).unwrap();
    }
    assert_eq!(
        maxes.to_map().unwrap(),
        [(1, 9), (2, -2)].into_iter().collect()
    );
}

#[test]
fn a_killed_server_surfaces_as_an_error_not_a_hang() {
    let mut server = ServerProcess::crucial_server(&[]);
    let client = crucial::Config::new()
        .server(server.addr.clone())
        .retries(0)
        .connect()
        .unwrap();
    let counter = client.open::<AtomicI64>("k");
    counter.fetch_add(1).unwrap();
    server.kill();
    let e = counter.fetch_add(1).unwrap_err();
    assert!(
        matches!(e, Error::Disconnected { .. } | Error::Connect { .. }),
        "{e}"
    );
    let _ = Arc::new(());
}

#[test]
fn the_metrics_page_counts_calls_errors_replays_and_parked_calls() {
    let server = ServerProcess::crucial_server(&["--metrics", "127.0.0.1:0"]);
    let url = server.metrics.clone().expect("metrics address printed");
    let client = server.client();
    let counter = client.open::<AtomicI64>("metered");
    for _ in 0..5 {
        counter.fetch_add(1).unwrap();
    }
    assert_eq!(counter.load().unwrap(), 5);
    // An unknown method and undecodable arguments: two error replies.
    let unknown = call_payload("crucial::AtomicI64", "metered", "no_such", 1, &[]);
    assert!(roundtrip_with_id(&client, 0, 9_001, &unknown).is_err());
    let fp = fingerprint_of("crucial::AtomicI64", "fetch_add");
    let garbage = call_payload("crucial::AtomicI64", "metered", "fetch_add", fp, &[0xff; 3]);
    assert!(roundtrip_with_id(&client, 0, 9_002, &garbage).is_err());
    // A retried request is answered from the dedup table.
    let add = call_payload(
        "crucial::AtomicI64",
        "metered",
        "fetch_add",
        fp,
        &codec::encode(&(1i64,)).unwrap(),
    );
    roundtrip_with_id(&client, 0, 9_003, &add).unwrap();
    roundtrip_with_id(&client, 0, 9_003, &add).unwrap();
    // A call that parks, released by another: parked once, completed once.
    let semaphore = client.open::<crucial::Semaphore>("metered");
    let waiter = std::thread::spawn(move || semaphore.acquire(1));
    let releaser = client.open::<crucial::Semaphore>("metered");
    common::wait_until("the acquire parks", || {
        sample(&http_get(&url).1, "crucial_parked_calls") == 1.0
    });
    let (_, page) = http_get(&url);
    assert_eq!(sample(&page, "crucial_parked_total"), 1.0);
    releaser.release(1).unwrap();
    waiter.join().unwrap().unwrap();

    let (status, page) = http_get(&url);
    assert!(status.contains("200"), "{status}");
    assert!(
        page.contains("# TYPE crucial_calls_total counter"),
        "{page}"
    );
    let calls = |method: &str| {
        sample(
            &page,
            &format!("crucial_calls_total{{type=\"crucial::AtomicI64\",method=\"{method}\"}}"),
        )
    };
    assert_eq!(
        calls("fetch_add"),
        7.0,
        "5 + the undecodable one + 1 (its replay did not run again)"
    );
    assert_eq!(calls("load"), 1.0);
    assert_eq!(
        sample(
            &page,
            "crucial_calls_total{type=\"crucial::Semaphore\",method=\"acquire\"}"
        ),
        1.0,
        "the parked acquire counts once, when it completes"
    );
    assert_eq!(
        sample(&page, "crucial_errors_total{kind=\"UnknownMethod\"}"),
        1.0
    );
    assert_eq!(
        sample(&page, "crucial_errors_total{kind=\"BadArguments\"}"),
        1.0
    );
    assert_eq!(sample(&page, "crucial_replayed_total"), 1.0);
    assert_eq!(sample(&page, "crucial_parked_calls"), 0.0);
    assert_eq!(sample(&page, "crucial_objects"), 2.0);
    assert_eq!(sample(&page, "crucial_connections_open"), 1.0);
    // Every call answered at once has a duration sample: 7 fetch_add + 1 load
    // + 1 release (the parked acquire has none).
    assert_eq!(
        sample(&page, "crucial_call_duration_seconds_bucket{le=\"+Inf\"}"),
        9.0
    );
    assert_eq!(sample(&page, "crucial_call_duration_seconds_count"), 9.0);
    let (status, _) = http_get(&url.replace("/metrics", "/nothing"));
    assert!(status.contains("404"), "{status}");
}

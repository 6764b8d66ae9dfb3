//! A node no client can exhaust, with real node processes and raw clients:
//! memory within its budgets against clients that never read, remembered
//! replies within theirs, connections closed within their timeouts, a low
//! descriptor limit that leaves the store and the other clients alone, the
//! connection and parked-call limits, and framing that neither hangs nor
//! skips gigabytes. Memory is read from the node's metrics page and `/proc`,
//! never from timings.

mod common;

use common::{fixture_command, http_get, sample, wait_until, ServerProcess};
use crucial::__private::registry::registry;
use crucial::{AtomicBytes, AtomicI64, Error, RemoteError, Semaphore};
use crucial_protocol::codec;
use crucial_protocol::wire::{
    self, decode_reply, Call, Frame, FrameDecoder, ObjectRef, Request, PROTOCOL_VERSION,
};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const MIB: f64 = (1 << 20) as f64;

/// A frame of request `id`.
fn frame(id: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::write_frame(&mut out, id, payload);
    out
}

fn hello(client_id: u64) -> Vec<u8> {
    let payload = Request::Hello {
        protocol: PROTOCOL_VERSION,
        client_id,
        token: None,
    }
    .encode()
    .expect("hello");
    frame(0, &payload)
}

/// A call of a built-in or fixture method, encoded.
fn call(type_name: &str, key: &str, method: &str, args: &[u8]) -> Vec<u8> {
    let fingerprint = registry()
        .shared_type(type_name)
        .and_then(|t| t.method(method))
        .map(|m| m.id.fingerprint)
        .expect("a registered method");
    Request::Call(Call {
        object: ObjectRef { type_name, key },
        method,
        fingerprint,
        args,
        timeout_ms: 0,
    })
    .encode()
    .expect("call")
}

/// The node's resident memory, from `/proc`.
fn resident(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024.0
}

/// Whether the node closed `stream` (read gives EOF or a reset; replies
/// that were queued before are read and dropped).
fn closed_by_node(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Reads frames from `stream` until `n` replies came or it closed.
fn replies(stream: &mut TcpStream, n: usize) -> Vec<(u64, crucial_protocol::wire::Outcome)> {
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut decoder = FrameDecoder::new(wire::DEFAULT_MAX_FRAME);
    let mut buf = bytes::BytesMut::new();
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while out.len() < n {
        while let Some(Frame::Complete { id, payload }) = decoder.decode(&mut buf) {
            out.push((
                id,
                decode_reply(&payload).expect("a reply").map(|b| b.to_vec()),
            ));
        }
        if out.len() >= n {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
    out
}

fn limit_of(error: &crucial_protocol::wire::Outcome) -> Option<String> {
    match error {
        Err(RemoteError::Limit { limit, .. }) => Some(limit.clone()),
        _ => None,
    }
}

#[test]
fn a_client_that_never_reads_one_mib_replies_stays_within_the_backlog_budget() {
    let server = ServerProcess::crucial_server(&[
        "--metrics",
        "127.0.0.1:0",
        "--max-backlog",
        "4M",
        "--stall-timeout",
        "60",
    ]);
    let url = server.metrics.clone().expect("metrics");
    let metric = |name: &str| sample(&http_get(&url).1, name);
    let good = server.client();
    good.open::<AtomicBytes>("big")
        .set(vec![7u8; 1 << 20].into())
        .expect("set 1 MiB");
    let before = resident(server.pid());
    let get = call(
        "crucial::AtomicBytes",
        "big",
        "get",
        &codec::encode(&()).unwrap(),
    );
    for (client_id, gets) in [(901u64, 1_000u64), (902, 10_000)] {
        // Every request in one write: the node reads them in a few reads.
        let mut flood = TcpStream::connect(&server.addr).expect("connect");
        let mut bytes = hello(client_id);
        for id in 1..=gets {
            bytes.extend_from_slice(&frame(id, &get));
        }
        flood
            .set_write_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let written = flood.write_all(&bytes);
        wait_until("the node pauses the connection", || {
            metric("crucial_read_pauses_total") >= 1.0
        });
        std::thread::sleep(Duration::from_millis(500));
        let backlog = metric("crucial_reply_backlog_bytes");
        let grown = resident(server.pid()) - before;
        println!(
            "{gets} unread gets of 1 MiB (write {}): backlog {:.1} MiB, node grew {:.1} MiB",
            if written.is_ok() {
                "whole"
            } else {
                "stopped by TCP"
            },
            backlog / MIB,
            grown / MIB
        );
        // The budget: --max-backlog, plus one reply over it per applying
        // task; the constant: allocator and runtime slack.
        assert!(backlog <= 4.0 * MIB + 2.0 * MIB, "backlog {backlog}");
        assert!(grown <= 4.0 * MIB + 2.0 * MIB + 48.0 * MIB, "grew {grown}");
        // Someone else is served meanwhile.
        let counter = good.open::<AtomicI64>("meanwhile");
        counter.fetch_add(1).expect("served while the flood waits");
        drop(flood);
        wait_until("the flood's replies are dropped", || {
            metric("crucial_reply_backlog_bytes") == 0.0
        });
    }
}

#[test]
fn partial_frames_of_many_connections_stay_within_the_client_memory_budget() {
    let server = ServerProcess::crucial_server(&[
        "--metrics",
        "127.0.0.1:0",
        "--max-client-memory",
        "64M",
        "--frame-timeout",
        "60",
    ]);
    let url = server.metrics.clone().expect("metrics");
    let metric = |name: &str| sample(&http_get(&url).1, name);
    let before = resident(server.pid());
    // 32 connections each send all but one byte of an 8 MiB frame (256 MiB
    // announced against a 64 MiB budget).
    let size = (8 << 20) - 64;
    let mut header = frame(1, &vec![0u8; size]);
    header.pop();
    let mut streams = Vec::new();
    for client_id in 0..32 {
        let mut stream = TcpStream::connect(&server.addr).expect("connect");
        stream.write_all(&hello(1000 + client_id)).expect("hello");
        stream
            .set_write_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let _ = stream.write_all(&header); // may stop: the node closed it
        streams.push(stream);
    }
    std::thread::sleep(Duration::from_millis(500));
    let held = metric("crucial_client_memory_bytes");
    let grown = resident(server.pid()) - before;
    let evicted = metric("crucial_connections_evicted_total");
    println!(
        "32 partial 8 MiB frames: {:.1} MiB held (budget 64), {evicted} connections evicted, \
         node grew {:.1} MiB",
        held / MIB,
        grown / MIB
    );
    assert!(held <= 64.0 * MIB + 8.0 * MIB, "held {held}");
    assert!(evicted >= 20.0, "{evicted} evicted");
    assert!(grown <= 64.0 * MIB + 8.0 * MIB + 48.0 * MIB, "grew {grown}");
    let open = streams
        .iter_mut()
        .map(closed_by_node)
        .filter(|closed| !closed)
        .count();
    assert!(open <= 9, "{open} connections still hold partial frames");
    let counter = server.client().open::<AtomicI64>("served");
    counter.fetch_add(1).expect("a normal client is served");
}

#[test]
fn remembered_replies_stay_within_their_bytes_and_go_with_their_client() {
    let server = ServerProcess::crucial_server(&[
        "--metrics",
        "127.0.0.1:0",
        "--dedup-max-reply",
        "2M",
        "--dedup-client-memory",
        "16M",
        "--dedup-memory",
        "32M",
        "--dedup-forget-after",
        "2",
    ]);
    let url = server.metrics.clone().expect("metrics");
    let metric = |name: &str| sample(&http_get(&url).1, name);
    let before = resident(server.pid());
    {
        let client = server.client();
        let big = client.open::<AtomicBytes>("swapped");
        for i in 0..300u32 {
            let old = big
                .swap(vec![(i % 251) as u8; 1 << 20].into())
                .expect("swap");
            assert!(i == 0 || old.len() == 1 << 20);
        }
        let bytes = metric("crucial_dedup_bytes");
        let grown = resident(server.pid()) - before;
        println!(
            "300 swaps of 1 MiB: {:.1} MiB remembered (client budget 16), node grew {:.1} MiB",
            bytes / MIB,
            grown / MIB
        );
        assert!(bytes <= 16.0 * MIB + 1.0 * MIB, "{bytes} remembered");
        assert!(
            bytes >= 8.0 * MIB,
            "replies under the limit are remembered: {bytes}"
        );
        assert!(grown <= 16.0 * MIB + 64.0 * MIB, "grew {grown}");
    }
    // The client is gone: after --dedup-forget-after, so are its replies.
    wait_until("the gone client is forgotten", || {
        metric("crucial_dedup_clients") == 0.0
    });
    assert_eq!(metric("crucial_dedup_bytes"), 0.0);
    assert!(metric("crucial_dedup_forgotten_idle_total") >= 1.0);
}

#[test]
fn idle_half_sent_slow_and_trickled_connections_are_closed_within_their_timeouts() {
    let server = ServerProcess::crucial_server(&[
        "--metrics",
        "127.0.0.1:0",
        "--handshake-timeout",
        "1",
        "--idle-timeout",
        "2",
        "--frame-timeout",
        "2",
    ]);
    let url = server.metrics.clone().expect("metrics");
    let metric = |name: &str| sample(&http_get(&url).1, name);
    let connect = || TcpStream::connect(&server.addr).expect("connect");
    const EACH: usize = 500;
    let started = Instant::now();
    // Nothing at all; half a header; a proper Hello then nothing (idle).
    let mut silent: Vec<TcpStream> = (0..EACH).map(|_| connect()).collect();
    let mut half: Vec<TcpStream> = (0..EACH)
        .map(|_| {
            let mut s = connect();
            s.write_all(&hello(1)[..6]).expect("half a header");
            s
        })
        .collect();
    let mut idle: Vec<TcpStream> = (0..EACH)
        .map(|i| {
            let mut s = connect();
            s.write_all(&hello(10_000 + i as u64)).expect("hello");
            assert!(replies(&mut s, 1)[0].1.is_ok(), "handshake");
            s
        })
        .collect();
    // A Hello a byte at a time, and after a Hello a 1 MiB frame a byte at a
    // time: a thread keeps trickling both until the node closes them.
    let slow: Vec<TcpStream> = (0..EACH).map(|_| connect()).collect();
    let trickled: Vec<TcpStream> = (0..EACH)
        .map(|i| {
            let mut s = connect();
            s.write_all(&hello(20_000 + i as u64)).expect("hello");
            assert!(replies(&mut s, 1)[0].1.is_ok(), "handshake");
            s
        })
        .collect();
    let trickler = std::thread::spawn(move || {
        let slow_bytes = hello(3);
        let big = frame(1, &vec![1u8; 1 << 20]);
        let mut open = vec![true; 2 * EACH];
        let mut all: Vec<TcpStream> = slow.into_iter().chain(trickled).collect();
        for s in &all {
            s.set_nonblocking(true).expect("nonblocking");
        }
        for byte in 0.. {
            if !open.iter().any(|o| *o) || byte > 200 {
                return open.iter().filter(|o| **o).count();
            }
            for (i, s) in all.iter_mut().enumerate() {
                let source = if i < EACH { &slow_bytes } else { &big };
                if open[i] && s.write(&source[byte % source.len()..][..1]).is_err() {
                    open[i] = false;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        unreachable!()
    });
    for group in [&mut silent, &mut half, &mut idle] {
        wait_until("every connection of the group is closed", || {
            group.iter_mut().all(closed_by_node)
        });
    }
    let still_open = trickler.join().expect("trickler");
    let took = started.elapsed();
    let reason = |r: &str| {
        metric(&format!(
            "crucial_connections_closed_total{{reason=\"{r}\"}}"
        ))
    };
    println!(
        "2 500 connections closed in {took:?}: handshake {} idle {} frame {}; {still_open} \
         trickled ones left open",
        reason("handshake_timeout"),
        reason("idle_timeout"),
        reason("frame_timeout")
    );
    assert_eq!(
        still_open, 0,
        "trickled connections outlived 20 s of trickling"
    );
    assert!(reason("handshake_timeout") >= (3 * EACH) as f64);
    assert!(reason("idle_timeout") >= EACH as f64);
    assert!(reason("frame_timeout") >= EACH as f64);
    assert_eq!(metric("crucial_connections_open"), 0.0);
    server
        .client()
        .open::<AtomicI64>("after")
        .fetch_add(1)
        .expect("served after");
}

#[cfg(unix)]
#[test]
fn with_few_descriptors_connections_are_refused_and_the_store_keeps_writing() {
    use std::os::unix::process::CommandExt;
    let dir = common::DataDir::new("few-descriptors");
    let mut command = fixture_command(
        "fixture-node",
        &[
            "--data-dir",
            dir.arg(),
            "--metrics",
            "127.0.0.1:0",
            "--handshake-timeout",
            "2",
        ],
    );
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = ServerProcess::start(command);
    let url = server.metrics.clone().expect("metrics");
    let metric = |name: &str| sample(&http_get(&url).1, name);
    assert_eq!(metric("crucial_max_connections"), 192.0);
    let writer = server.client();
    let ledger = writer.open::<common::fixtures::Ledger>("ledger");
    // The writer's connection is made by its first call: make it before the
    // flood, or the flood may take the last slot first (seen once in CI).
    ledger.put(0, 0).expect("the first write, before the flood");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut acknowledged = 1u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                ledger
                    .put(acknowledged, acknowledged)
                    .expect("a persistent write is acknowledged");
                acknowledged += 1;
            }
            (ledger, acknowledged)
        })
    };
    // 400 connections that never say Hello, against 256 descriptors.
    let mut flood: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(&server.addr).ok())
        .collect();
    let refused = || metric("crucial_connections_closed_total{reason=\"max_connections\"}");
    wait_until("connections past the limit are refused", || {
        refused() >= 1.0
    });
    wait_until("the silent ones are closed", || {
        flood.iter_mut().all(closed_by_node)
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ledger, acknowledged) = writing.join().expect("writer");
    println!(
        "ulimit -n 256: {} connections refused, {acknowledged} writes acknowledged meanwhile",
        refused()
    );
    assert!(acknowledged > 0);
    assert_eq!(metric("crucial_store_writable"), 1.0);
    assert_eq!(metric("crucial_store_failures_total"), 0.0);
    assert_eq!(ledger.sum().expect("sum").0 as u64, acknowledged);
    let newcomer = server.client().open::<AtomicI64>("newcomer");
    newcomer.fetch_add(1).expect("a new client is served");
}

#[test]
fn connections_past_the_limit_are_told_so() {
    let server = ServerProcess::crucial_server(&["--max-connections", "2"]);
    let a = server.client();
    let b = server.client();
    a.open::<AtomicI64>("x").fetch_add(1).expect("first");
    b.open::<AtomicI64>("x").fetch_add(1).expect("second");
    let mut third = TcpStream::connect(&server.addr).expect("connect");
    third.write_all(&hello(3)).expect("hello");
    let answer = replies(&mut third, 1);
    assert_eq!(
        limit_of(&answer[0].1).as_deref(),
        Some("--max-connections"),
        "{answer:?}"
    );
    drop(a);
    wait_until("a place frees up", || {
        let c = server.client();
        c.open::<AtomicI64>("x").fetch_add(1).is_ok()
    });
}

#[test]
fn parked_calls_past_the_limit_are_refused_with_its_name() {
    let server = ServerProcess::crucial_server(&["--max-parked-per-connection", "3"]);
    let client = server.client();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || client.open::<Semaphore>("gate").acquire(1))
        })
        .collect();
    wait_until("three calls park", || {
        common::parked_on(&client, "gate") == 3
    });
    let refused = client.open::<Semaphore>("gate").acquire(1);
    match refused {
        Err(Error::Remote(RemoteError::Limit { limit, .. })) => {
            assert_eq!(limit, "--max-parked-per-connection")
        }
        other => panic!("a fourth parked call: {other:?}"),
    }
    // Another connection has its own.
    let other = server.client();
    let gate = other.open::<Semaphore>("gate");
    gate.release(4).expect("release");
    for waiter in waiters {
        waiter.join().expect("waiter").expect("released");
    }
}

#[test]
fn a_hello_sent_with_a_large_request_is_answered_and_an_absurd_length_closes() {
    let server = ServerProcess::crucial_server(&[]);
    let mut stream = TcpStream::connect(&server.addr).expect("connect");
    // Hello and a 4 KiB request in one write.
    let set = call(
        "crucial::AtomicBytes",
        "coalesced",
        "set",
        &codec::encode(&(bytes::Bytes::from(vec![5u8; 4096]),)).unwrap(),
    );
    let mut bytes = hello(77);
    bytes.extend_from_slice(&frame(1, &set));
    stream.write_all(&bytes).expect("write");
    let answers = replies(&mut stream, 2);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(
        answers.iter().all(|(_, outcome)| outcome.is_ok()),
        "{answers:?}"
    );
    // A length of 4 GiB: an error, and the connection is closed (not 4 GiB skipped).
    let mut absurd = vec![0xFF, 0xFF, 0xFF, 0xFF];
    absurd.extend_from_slice(&2u64.to_be_bytes());
    stream.write_all(&absurd).expect("write");
    let answers = replies(&mut stream, 1);
    assert!(
        matches!(answers[0].1, Err(RemoteError::FrameTooLarge { .. })),
        "{answers:?}"
    );
    wait_until("the node closes the connection", || {
        closed_by_node(&mut stream)
    });
    let value = server
        .client()
        .open::<AtomicBytes>("coalesced")
        .get()
        .expect("get");
    assert_eq!(value.len(), 4096);
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_fails_writes_by_name_and_they_succeed_again_once_there_is_room() {
    let disk = common::disk::SmallDisk::new(32);
    let mut server = disk.node(&["--metrics", "127.0.0.1:0"]);
    let url = server.metrics.clone().expect("metrics");
    let metric = |url: &str, name: &str| sample(&http_get(url).1, name);
    let client = server.client();
    let ledger = client.open::<common::fixtures::Ledger>("ledger");
    let mut acknowledged = Vec::new();
    for key in 0..50u64 {
        ledger.put(key, key * 10).expect("room on the disk");
        acknowledged.push(key);
    }
    // Fill the disk.
    let fill = disk.fill("fill");
    let mut key = 50u64;
    let failed_key = loop {
        match ledger.put(key, key * 10) {
            Ok(_) => {
                acknowledged.push(key);
                key += 1;
                assert!(key < 100_000, "writes never failed on a full disk");
            }
            Err(Error::Remote(RemoteError::NotDurable { reason, .. })) => {
                println!("a write on a full disk: {reason}");
                assert!(reason.contains("No space left"), "{reason}");
                break key;
            }
            Err(other) => panic!("a write on a full disk: {other}"),
        }
    };
    assert_eq!(metric(&url, "crucial_store_writable"), 0.0);
    // Refused at once while it fails, with the same cause; what failed is not visible.
    match ledger.put(failed_key + 1, 1) {
        Err(Error::Remote(RemoteError::NotDurable { reason, .. })) => {
            assert!(reason.contains("No space left"), "{reason}")
        }
        other => panic!("a write while the store fails: {other:?}"),
    }
    assert_eq!(ledger.get(failed_key).expect("get"), None);
    assert_eq!(ledger.sum().expect("sum").0, acknowledged.len());
    // Room again: writes succeed without a restart.
    std::fs::remove_file(&fill).expect("remove the filler");
    wait_until("writes succeed again", || {
        ledger.put(failed_key, failed_key * 10).is_ok()
    });
    acknowledged.push(failed_key);
    for key in failed_key + 1..failed_key + 20 {
        ledger
            .put(key, key * 10)
            .expect("a write after the disk has room");
        acknowledged.push(key);
    }
    assert_eq!(metric(&url, "crucial_store_writable"), 1.0);
    assert!(metric(&url, "crucial_store_recoveries_total") >= 1.0);
    // kill -9: everything acknowledged is there after a restart.
    drop(ledger);
    drop(client);
    server.kill();
    let server = disk.node(&[]);
    let ledger = server.client().open::<common::fixtures::Ledger>("ledger");
    assert_eq!(ledger.sum().expect("sum").0, acknowledged.len());
    for key in acknowledged {
        assert_eq!(ledger.get(key).expect("get"), Some(key * 10), "key {key}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn lambda_transfers_on_a_full_disk_fail_whole_and_the_total_holds() {
    use common::bank::{Account, AccountRef};
    let disk = common::disk::SmallDisk::new(32);
    let mut server = disk.node(&[]);
    let client = server.client();
    let account = |i: usize| -> AccountRef {
        Account::at(format!("acct/{i}").as_str()).with_client(client.clone())
    };
    const N: usize = 4;
    for i in 0..N {
        account(i).open(format!("owner {i}"), 1_000).expect("open");
    }
    let total = || -> i64 { (0..N).map(|i| account(i).balance().expect("balance")).sum() };
    let fill = disk.fill("fill");
    // Transfers until one fails for the disk: it names the cause, and what
    // it installed is gone (the total is the total).
    let mut moved = 0;
    let reason = loop {
        match account(moved % N).transfer(account((moved + 1) % N).id().clone(), 1) {
            Ok(_) => moved += 1,
            Err(Error::Remote(RemoteError::NotDurable { reason, .. })) => break reason,
            Err(other) => panic!("a transfer on a full disk: {other}"),
        }
        assert!(moved < 100_000, "transfers never failed on a full disk");
    };
    println!("a transfer on a full disk, after {moved}: {reason}");
    assert!(reason.contains("No space left"), "{reason}");
    assert_eq!(total(), 1_000 * N as i64);
    let versions: u64 = (0..N)
        .map(|i| account(i).seen().expect("seen").version)
        .sum();
    assert_eq!(
        versions,
        2 * moved as u64,
        "each acknowledged transfer counted twice"
    );
    std::fs::remove_file(&fill).expect("remove the filler");
    wait_until("transfers succeed again", || {
        account(0).transfer(account(1).id().clone(), 1).is_ok()
    });
    moved += 1;
    drop(client);
    server.kill();
    let server = disk.node(&[]);
    let client = server.client();
    let after: Vec<_> = (0..N)
        .map(|i| {
            Account::at(format!("acct/{i}").as_str())
                .with_client(client.clone())
                .seen()
                .expect("seen")
        })
        .collect();
    assert_eq!(
        after.iter().map(|s| s.balance).sum::<i64>(),
        1_000 * N as i64
    );
    assert_eq!(
        after.iter().map(|s| s.version).sum::<u64>(),
        2 * moved as u64,
        "every acknowledged transfer, and nothing else, survived kill -9"
    );
}

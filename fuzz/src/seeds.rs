//! Valid requests, encoded: where the mutator starts. They name the
//! built-in types' real methods (with their fingerprints), so mutated
//! inputs reach past the type and method checks into argument decoding and
//! the methods themselves.

use crucial::__private::registry::registry;
use crucial_protocol::codec;
use crucial_protocol::wire::{
    self, Call, Invoke, MapInvoke, ObjectRef, Objects, Request, Token, PROTOCOL_VERSION,
};

/// A call of a built-in method with encoded `args`.
fn call(type_name: &'static str, key: &'static str, method: &'static str, args: &[u8]) -> Vec<u8> {
    let fingerprint = registry()
        .shared_type(type_name)
        .and_then(|t| t.method(method))
        .map_or(0, |m| m.id.fingerprint);
    Request::Call(Call {
        object: ObjectRef { type_name, key },
        method,
        fingerprint,
        args,
        timeout_ms: 50,
    })
    .encode()
    .expect("a seed encodes")
}

fn encoded<T: serde::Serialize>(value: &T) -> Vec<u8> {
    codec::encode(value).expect("arguments encode")
}

/// Request payloads (what follows a frame header).
pub fn requests() -> Vec<Vec<u8>> {
    let plain = [
        Request::Hello {
            protocol: PROTOCOL_VERSION,
            client_id: 7,
            token: Some(Token("shop-token-0000000001")),
        },
        Request::ListObjects,
        Request::ListTypes,
        Request::Ping,
        Request::View,
        Request::WorkflowStats,
        Request::Create {
            object: ObjectRef {
                type_name: "crucial::AtomicI64",
                key: "fuzz/new",
            },
            state: &[0x02],
        },
        Request::Delete {
            object: ObjectRef {
                type_name: "crucial::AtomicI64",
                key: "fuzz/a",
            },
        },
        Request::Invoke(Invoke {
            application: "fuzz",
            type_name: "Account",
            key: Some("a"),
            function: "balance",
            fingerprint: 1,
            args: &[],
        }),
        Request::Map(MapInvoke {
            invoke: Invoke {
                application: "fuzz",
                type_name: "Account",
                key: None,
                function: "balance",
                fingerprint: 1,
                args: &[],
            },
            objects: Objects::Range {
                from: "a".into(),
                to: Some("z".into()),
            },
        }),
        Request::HandoffDone {
            from: "127.0.0.1:1",
            epoch: 3,
            kept: vec!["app".into()],
        },
    ];
    let mut seeds: Vec<Vec<u8>> = plain.iter().map(|r| r.encode().expect("seed")).collect();
    seeds.extend([
        call(
            "crucial::AtomicI64",
            "fuzz/a",
            "fetch_add",
            &encoded(&(5i64,)),
        ),
        call(
            "crucial::AtomicI64",
            "fuzz/a",
            "compare_and_set",
            &encoded(&(5i64, 6i64)),
        ),
        call("crucial::AtomicI64", "fuzz/a", "load", &encoded(&())),
        call(
            "crucial::AtomicBytes",
            "fuzz/b",
            "set",
            &encoded(&(bytes::Bytes::from_static(b"some bytes"),)),
        ),
        call("crucial::AtomicBytes", "fuzz/b", "get", &encoded(&())),
        call("crucial::AtomicBool", "fuzz/c", "store", &encoded(&(true,))),
    ]);
    seeds
}

/// Whole frames (header + payload), one or two requests each: the frame
/// decoder's seeds.
pub fn frames() -> Vec<Vec<u8>> {
    let requests = requests();
    let mut frames: Vec<Vec<u8>> = requests
        .iter()
        .enumerate()
        .map(|(i, payload)| {
            let mut frame = Vec::new();
            wire::write_frame(&mut frame, i as u64 + 1, payload);
            frame
        })
        .collect();
    let mut two = Vec::new();
    wire::write_frame(&mut two, 1, &requests[1]);
    wire::write_frame(&mut two, 2, &requests[3]);
    frames.push(two);
    frames
}

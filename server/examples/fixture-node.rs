//! A node that also hosts the integration tests' fixture types
//! (`tests/common/fixtures.rs`): started as a process by `tests/node.rs` and
//! `tests/linearizability.rs`.
//!
//! Usage: `fixture-node [--max-frame BYTES]`; prints `... listening on ADDR`.

#[path = "../tests/common/fixtures.rs"]
mod fixtures;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut config = crucial_server::NodeConfig {
        listen: "127.0.0.1:0".into(),
        workers: 2,
        ..Default::default()
    };
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--max-frame", Some(bytes)) => {
                config.max_frame = bytes.parse().expect("--max-frame BYTES")
            }
            _ => panic!("usage: fixture-node [--max-frame BYTES]"),
        }
    }
    crucial_server::run(config, |addr| {
        println!("fixture-node listening on {addr}");
    })
    .expect("fixture node");
}

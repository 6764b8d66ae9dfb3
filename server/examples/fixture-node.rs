//! A node that also hosts the integration tests' fixture types
//! (`tests/common/fixtures.rs`): started as a process by `tests/node.rs` and
//! `tests/linearizability.rs`.
//!
//! Usage: `fixture-node [--max-frame BYTES] [--data-dir DIR] [--durability MODE]`;
//! prints `... listening on ADDR`.

#[path = "../tests/common/fixtures.rs"]
mod fixtures;
#[path = "../tests/common/shaped.rs"]
mod shaped;

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
            ("--data-dir", Some(dir)) => config.data_dir = Some(dir.into()),
            ("--durability", Some(mode)) => {
                config.durability = mode.parse().expect("--durability sync|interval=MS|none")
            }
            _ => panic!(
                "usage: fixture-node [--max-frame BYTES] [--data-dir DIR] [--durability MODE]"
            ),
        }
    }
    crucial_server::run(config, |addr| {
        println!("fixture-node listening on {addr}");
    })
    .expect("fixture node");
}

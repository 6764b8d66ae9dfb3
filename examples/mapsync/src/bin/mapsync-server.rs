//! `mapsync-server`: a storage node that knows the example's types.
fn main() {
    mapsync::link();
    crucial_server::cli::main();
}

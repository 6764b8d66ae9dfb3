//! `santa-server`: a storage node that knows the example's types.
fn main() {
    santa::link();
    crucial_server::cli::main();
}

//! `pi-server`: a storage node that knows the example's types.
fn main() {
    pi::link();
    crucial_server::cli::main();
}

//! The stand-alone storage node, with the built-in shared types.
fn main() {
    crucial_server::cli::main();
}

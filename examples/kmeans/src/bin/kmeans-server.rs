//! `kmeans-server`: a storage node that knows the example's types.
fn main() {
    kmeans::link();
    crucial_server::cli::main();
}

//! `microblog-server`: a storage node that runs the microblog's functions.
fn main() {
    microblog::link();
    crucial_server::cli::main();
}

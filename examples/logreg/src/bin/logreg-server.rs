//! `logreg-server`: a storage node that knows the example's types.
fn main() {
    logreg::link();
    crucial_server::cli::main();
}

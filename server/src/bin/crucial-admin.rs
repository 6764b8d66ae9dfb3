//! `crucial-admin`: status, objects, drain and delete over a cluster's admin plane.

fn main() {
    crucial_server::admin::cli::main();
}

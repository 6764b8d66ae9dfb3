//! `forum-server`: a storage node that runs CloudForum's functions.
fn main() {
    forum::link();
    crucial_server::cli::main();
}

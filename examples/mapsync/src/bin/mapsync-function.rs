//! `mapsync-function`: the function binary that runs the example's cloud threads.
fn main() {
    mapsync::link();
    crucial::lambda::run();
}

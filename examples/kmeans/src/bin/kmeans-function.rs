//! `kmeans-function`: the function binary that runs the example's cloud threads.
fn main() {
    kmeans::link();
    crucial::lambda::run();
}

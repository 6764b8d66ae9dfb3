//! `santa-function`: the function binary that runs the example's cloud threads.
fn main() {
    santa::link();
    crucial::lambda::run();
}

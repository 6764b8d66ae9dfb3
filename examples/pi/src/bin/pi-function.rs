//! `pi-function`: the function binary that runs the example's cloud threads.
fn main() {
    pi::link();
    crucial::lambda::run();
}

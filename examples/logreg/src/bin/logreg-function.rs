//! `logreg-function`: the function binary that runs the example's cloud threads.
fn main() {
    logreg::link();
    crucial::lambda::run();
}

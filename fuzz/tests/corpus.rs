//! The committed corpus replayed through every target, and a short run of
//! each (the long runs are the driver's; their figures are in the guide's
//! Security chapter).

use crucial_fuzz::{corpus, replay, run, seeds, targets};
use std::path::Path;

fn all() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut inputs = corpus(&dir.join("frame")).expect("fuzz/corpus/frame");
    inputs.extend(corpus(&dir.join("request")).expect("fuzz/corpus/request"));
    assert!(inputs.len() > 50, "a corpus of {} inputs", inputs.len());
    inputs
}

#[test]
fn the_corpus_replays_through_the_decoders_without_a_panic() {
    let inputs = all();
    assert_eq!(replay(&inputs, targets::frame), Vec::<Vec<u8>>::new());
    assert_eq!(replay(&inputs, targets::request), Vec::<Vec<u8>>::new());
}

#[test]
fn the_corpus_replays_through_a_node_which_keeps_serving() {
    let mut node = targets::Apply::start();
    let inputs = all();
    assert_eq!(replay(&inputs, |i| node.apply(i)), Vec::<Vec<u8>>::new());
}

#[test]
fn a_short_run_of_each_target_finds_nothing() {
    for (target, report) in [
        (
            "frame",
            run("frame", &seeds::frames(), 20_000, 7, targets::frame),
        ),
        (
            "request",
            run("request", &seeds::requests(), 20_000, 7, targets::request),
        ),
    ] {
        assert!(report.panics.is_empty(), "{target}: {:?}", report.panics);
    }
    let mut node = targets::Apply::start();
    let report = run("apply", &seeds::requests(), 1_000, 7, |i| node.apply(i));
    assert!(report.panics.is_empty(), "apply: {:?}", report.panics);
}

//! The example's binary on the embedded default: posts fan out concurrently
//! and every delivery is checked.

use std::process::Command;

#[test]
fn posts_reach_every_follower_once_on_the_embedded_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_microblog"))
        .args([
            "--seconds",
            "0.5",
            "--users",
            "30",
            "--follows",
            "5",
            "--posts",
            "40",
        ])
        .env_remove("CRUCIAL_SERVER")
        .output()
        .expect("run microblog");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("invariants hold"), "{stdout}");
}

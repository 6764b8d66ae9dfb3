//! Both synchronization variants reach the same result.

use std::process::Command;

#[test]
fn both_variants_agree() {
    let out = Command::new(env!("CARGO_BIN_EXE_mapsync"))
        .args(["16", "200000", "2"])
        .env_remove("CRUCIAL_SERVER")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let estimates: Vec<f64> = stdout
        .lines()
        .filter(|l| l.starts_with("| one") || l.starts_with("| auto"))
        .map(|l| {
            l.trim_end_matches(" |")
                .rsplit("| ")
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(estimates.len(), 2, "{stdout}");
    assert_eq!(estimates[0], estimates[1]);
    assert!((estimates[0] - std::f64::consts::PI).abs() < 0.01);
}

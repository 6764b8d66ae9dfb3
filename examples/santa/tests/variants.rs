//! The invariants of the Santa Claus problem hold in all three variants.

use santa::{check, run, Config, Job};

fn config(run: &str) -> Config {
    Config {
        deliveries: 6,
        elves: 10,
        pace_micros: 500,
        seed: 3,
        run: run.into(),
    }
}

fn assert_variant(variant: u8) {
    santa::link();
    let config = config(&format!("test/{variant}"));
    let jobs = run(variant, &config).unwrap();
    check(&jobs, &config).unwrap();
    assert!(jobs.iter().any(|j| matches!(j, Job::Deliver { .. })));
}

#[test]
fn variant_1_plain_threads() {
    assert_variant(1);
}

#[test]
fn variant_2_shared_objects() {
    assert_variant(2);
}

#[test]
fn variant_3_cloud_threads() {
    assert_variant(3);
}

#[test]
fn the_checker_rejects_broken_schedules() {
    let config = config("x");
    let team: Vec<u32> = (0..9).collect();
    let mut jobs: Vec<Job> = (0..6)
        .map(|b| Job::Deliver {
            batch: b,
            team: team.clone(),
        })
        .collect();
    assert!(check(&jobs, &config).is_ok());
    jobs.push(Job::Help {
        batch: 9,
        group: vec![1000, 1001],
        reindeer_waiting: 0,
    });
    assert!(check(&jobs, &config).unwrap_err().contains("three elves"));
    jobs.pop();
    jobs.push(Job::Help {
        batch: 9,
        group: vec![1000, 1001, 1002],
        reindeer_waiting: 9,
    });
    assert!(check(&jobs, &config).unwrap_err().contains("whole team"));
    jobs.pop();
    jobs[0] = Job::Deliver {
        batch: 0,
        team: (0..8).collect(),
    };
    assert!(check(&jobs, &config).unwrap_err().contains("nine reindeer"));
}

//! The Santa Claus problem (Trono): Santa sleeps until all nine reindeer are back
//! from vacation or three elves need help; reindeer have priority.
//!
//! The coordination lives in one user monitor, [`NorthPole`], whose waiting
//! methods return `Poll`, and in four barriers that act as the gates of the
//! stable and of the study. The roles ([`santa`], [`reindeer`], [`elf`]) are
//! written once against [`Coordination`] and run in three variants:
//!
//! 1. plain threads with the monitor behind a `Mutex` + `Condvar` and
//!    `std::sync::Barrier` gates ([`LocalPole`]);
//! 2. plain threads with the monitor and gates as shared objects ([`SharedPole`]);
//! 3. cloud threads with the shared objects.

pub mod monitor;

pub use monitor::{Job, NorthPole, NorthPoleProxy, ELF_GROUP, REINDEER};

use crucial::{cloud_thread, Barrier, BarrierProxy, SharedProxy};
use serde::{Deserialize, Serialize};
use std::sync::{Condvar, Mutex};
use std::task::Poll;
use std::time::Duration;

/// Parameters of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Toy deliveries before Christmas is over.
    pub deliveries: u32,
    /// Number of elves.
    pub elves: u32,
    /// Longest vacation / elf work, and the length of a delivery or consultation, in µs.
    pub pace_micros: u64,
    /// Seed of everyone's random pace.
    pub seed: u64,
    /// Prefix of the shared objects' keys.
    pub run: String,
}

impl Config {
    /// Key of one of this run's shared objects.
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.run)
    }
}

/// What the roles need from the North Pole.
pub trait Coordination {
    /// See [`NorthPole::reindeer_back`].
    fn reindeer_back(&self, id: u32) -> Option<u64>;
    /// See [`NorthPole::elf_needs_help`].
    fn elf_needs_help(&self, id: u32) -> Option<u64>;
    /// See [`NorthPole::santa_next`].
    fn santa_next(&self) -> Job;
    /// See [`NorthPole::stop`].
    fn stop(&self);
    /// Gate of the stable, passed by Santa and the nine reindeer together (in, then out).
    fn stable(&self, out: bool);
    /// Gate of the study, passed by Santa and three elves together (in, then out).
    fn study(&self, out: bool);
}

struct Pace(u64, u64);

impl Pace {
    fn new(config: &Config, who: u64) -> Pace {
        Pace(
            (config.seed ^ who.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1,
            config.pace_micros.max(1),
        )
    }

    fn random(&mut self) {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        std::thread::sleep(Duration::from_micros(self.0 % self.1));
    }

    fn fixed(&self) {
        std::thread::sleep(Duration::from_micros(self.1 / 2));
    }
}

/// Santa: serves jobs until the last delivery, then ends Christmas. Returns his jobs.
pub fn santa(pole: &impl Coordination, config: &Config) -> Vec<Job> {
    let pace = Pace::new(config, u64::MAX);
    let mut jobs = Vec::new();
    let mut deliveries = 0;
    while deliveries < config.deliveries {
        let job = pole.santa_next();
        match &job {
            Job::Deliver { .. } => {
                pole.stable(false);
                pace.fixed(); // delivering toys
                deliveries += 1;
                pole.stable(true);
            }
            Job::Help { .. } => {
                pole.study(false);
                pace.fixed(); // consulting
                pole.study(true);
            }
            Job::Stop => break,
        }
        jobs.push(job);
    }
    pole.stop();
    jobs
}

/// A reindeer: vacation, then harnessed with the team, until Christmas is over.
/// Returns how many deliveries it made.
pub fn reindeer(pole: &impl Coordination, config: &Config, id: u32) -> u32 {
    let mut pace = Pace::new(config, u64::from(id));
    let mut trips = 0;
    loop {
        pace.random(); // vacation
        if pole.reindeer_back(id).is_none() {
            return trips;
        }
        pole.stable(false);
        pole.stable(true);
        trips += 1;
    }
}

/// An elf: works, then sometimes needs Santa's help, until Christmas is over.
/// Returns how many times it was helped.
pub fn elf(pole: &impl Coordination, config: &Config, id: u32) -> u32 {
    let mut pace = Pace::new(config, 1000 + u64::from(id));
    let mut helped = 0;
    loop {
        pace.random(); // making toys
        if pole.elf_needs_help(1000 + id).is_none() {
            return helped;
        }
        pole.study(false);
        pole.study(true);
        helped += 1;
    }
}

/// Checks the problem's invariants on Santa's jobs.
pub fn check(jobs: &[Job], config: &Config) -> Result<(), String> {
    let mut deliveries = 0;
    for job in jobs {
        match job {
            Job::Deliver { team, .. } => {
                deliveries += 1;
                let mut ids = team.clone();
                ids.sort_unstable();
                ids.dedup();
                if ids.len() != REINDEER || ids.iter().any(|&id| id as usize >= REINDEER) {
                    return Err(format!("delivery without all nine reindeer: {team:?}"));
                }
            }
            Job::Help {
                group,
                reindeer_waiting,
                ..
            } => {
                let mut ids = group.clone();
                ids.sort_unstable();
                ids.dedup();
                if ids.len() != ELF_GROUP || ids.iter().any(|&id| id < 1000) {
                    return Err(format!(
                        "Santa helped a group that is not three elves: {group:?}"
                    ));
                }
                if *reindeer_waiting >= REINDEER {
                    return Err("Santa helped elves while the whole team waited".into());
                }
            }
            Job::Stop => return Err("Santa was stopped early".into()),
        }
    }
    if deliveries != config.deliveries {
        return Err(format!(
            "{deliveries} deliveries, expected {}",
            config.deliveries
        ));
    }
    Ok(())
}

/// Variant 1: the monitor as a local object under a `Mutex` + `Condvar`.
pub struct LocalPole {
    monitor: Mutex<NorthPole>,
    changed: Condvar,
    stable: [std::sync::Barrier; 2],
    study: [std::sync::Barrier; 2],
}

impl Default for LocalPole {
    fn default() -> Self {
        LocalPole {
            monitor: Mutex::default(),
            changed: Condvar::new(),
            stable: [(); 2].map(|_| std::sync::Barrier::new(REINDEER + 1)),
            study: [(); 2].map(|_| std::sync::Barrier::new(ELF_GROUP + 1)),
        }
    }
}

impl LocalPole {
    /// Runs a monitor method the way a Java monitor would: wait on the condition
    /// variable while it says "not yet", wake everyone after every call.
    fn call<R>(&self, mut method: impl FnMut(&mut NorthPole) -> Poll<R>) -> R {
        let mut monitor = self.monitor.lock().unwrap();
        loop {
            let result = method(&mut monitor);
            self.changed.notify_all();
            match result {
                Poll::Ready(r) => return r,
                Poll::Pending => monitor = self.changed.wait(monitor).unwrap(),
            }
        }
    }
}

impl Coordination for LocalPole {
    fn reindeer_back(&self, id: u32) -> Option<u64> {
        let ticket = crucial::ticket();
        self.call(|m| m.reindeer_back(ticket, id))
    }
    fn elf_needs_help(&self, id: u32) -> Option<u64> {
        let ticket = crucial::ticket();
        self.call(|m| m.elf_needs_help(ticket, id))
    }
    fn santa_next(&self) -> Job {
        self.call(NorthPole::santa_next)
    }
    fn stop(&self) {
        self.call(|m| {
            m.stop();
            Poll::Ready(())
        })
    }
    fn stable(&self, out: bool) {
        self.stable[usize::from(out)].wait();
    }
    fn study(&self, out: bool) {
        self.study[usize::from(out)].wait();
    }
}

/// Variants 2 and 3: the monitor and the gates as shared objects.
pub struct SharedPole {
    monitor: NorthPoleProxy,
    stable: [BarrierProxy; 2],
    study: [BarrierProxy; 2],
}

impl SharedPole {
    /// Opens the run's shared objects.
    pub fn open(config: &Config) -> SharedPole {
        SharedPole {
            monitor: NorthPole::shared(config.key("pole")),
            stable: [0, 1].map(|i| Barrier::shared(config.key(&format!("stable{i}")))),
            study: [0, 1].map(|i| Barrier::shared(config.key(&format!("study{i}")))),
        }
    }

    /// Resets and creates the run's shared objects.
    pub fn prepare(config: &Config) -> crucial::Result<SharedPole> {
        let pole = SharedPole::open(config);
        pole.monitor.delete()?;
        for (gates, parties) in [(&pole.stable, REINDEER + 1), (&pole.study, ELF_GROUP + 1)] {
            for gate in gates {
                gate.delete()?;
                Barrier::shared_with(gate.key(), Barrier::new(parties as u32))?;
            }
        }
        Ok(pole)
    }
}

fn ok<T>(result: crucial::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("shared object call failed: {e}"))
}

impl Coordination for SharedPole {
    fn reindeer_back(&self, id: u32) -> Option<u64> {
        ok(self.monitor.reindeer_back(crucial::ticket(), id))
    }
    fn elf_needs_help(&self, id: u32) -> Option<u64> {
        ok(self.monitor.elf_needs_help(crucial::ticket(), id))
    }
    fn santa_next(&self) -> Job {
        ok(self.monitor.santa_next())
    }
    fn stop(&self) {
        ok(self.monitor.stop())
    }
    fn stable(&self, out: bool) {
        ok(self.stable[usize::from(out)].wait());
    }
    fn study(&self, out: bool) {
        ok(self.study[usize::from(out)].wait());
    }
}

/// Variant 3: Santa as a cloud thread.
#[cloud_thread]
pub fn santa_thread(config: Config) -> Vec<Job> {
    santa(&SharedPole::open(&config), &config)
}

/// Variant 3: a reindeer as a cloud thread.
#[cloud_thread]
pub fn reindeer_thread(config: Config, id: u32) -> u32 {
    reindeer(&SharedPole::open(&config), &config, id)
}

/// Variant 3: an elf as a cloud thread.
#[cloud_thread]
pub fn elf_thread(config: Config, id: u32) -> u32 {
    elf(&SharedPole::open(&config), &config, id)
}

/// Runs one variant (1, 2 or 3) and returns Santa's jobs.
pub fn run(variant: u8, config: &Config) -> crucial::Result<Vec<Job>> {
    match variant {
        1 => {
            let pole = LocalPole::default();
            Ok(std::thread::scope(|s| {
                for id in 0..REINDEER as u32 {
                    let pole = &pole;
                    s.spawn(move || reindeer(pole, config, id));
                }
                for id in 0..config.elves {
                    let pole = &pole;
                    s.spawn(move || elf(pole, config, id));
                }
                santa(&pole, config)
            }))
        }
        2 => {
            SharedPole::prepare(config)?;
            std::thread::scope(|s| {
                let helpers: Vec<_> = (0..REINDEER as u32)
                    .map(|id| s.spawn(move || reindeer(&SharedPole::open(config), config, id)))
                    .chain(
                        (0..config.elves)
                            .map(|id| s.spawn(move || elf(&SharedPole::open(config), config, id))),
                    )
                    .collect();
                let jobs = santa(&SharedPole::open(config), config);
                for h in helpers {
                    h.join()
                        .map_err(|_| crucial::Error::Object("a helper panicked".into()))?;
                }
                Ok(jobs)
            })
        }
        _ => {
            SharedPole::prepare(config)?;
            let reindeer: Vec<_> = (0..REINDEER as u32)
                .map(|id| reindeer_thread::spawn(config.clone(), id))
                .collect();
            let elves: Vec<_> = (0..config.elves)
                .map(|id| elf_thread::spawn(config.clone(), id))
                .collect();
            let jobs = santa_thread::spawn(config.clone()).join()?;
            for h in reindeer.into_iter().chain(elves) {
                h.join()?;
            }
            Ok(jobs)
        }
    }
}

/// Referenced from each binary's `main` so the linker keeps the registrations.
#[inline(never)]
pub fn link() {
    crucial_server::link();
}

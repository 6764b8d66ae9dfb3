//! k-means clustering with Crucial: the paper's Listing 2.
//!
//! Each cloud thread owns a fragment of the points. Per iteration it reads the
//! current centroids, assigns its points, ships its partial sums to the shared
//! [`Centroids`] aggregate (method shipping: the reduction runs on the server,
//! no thread ever sees another's data), and waits on a [`crucial::Barrier`]. A
//! shared iteration counter lets a re-executed thread resume at the right
//! iteration, as in the paper.

pub mod model;

pub use datasets as data;

use crucial::{cloud_thread, shared, AtomicI64, Barrier};
use data::Shape;
use model::Partial;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// Everything a worker needs; travels as the cloud thread's argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// The data set.
    pub shape: Shape,
    /// Number of clusters.
    pub k: usize,
    /// Iterations to run.
    pub iterations: u32,
    /// Number of worker threads.
    pub threads: usize,
    /// Read points from this `.npy` file instead of generating them.
    pub data: Option<String>,
    /// Prefix of the shared objects' keys (one run's namespace).
    pub run: String,
    /// Fault injection: worker `.0` panics once when it starts iteration `.1`.
    pub fail_once_at: Option<(usize, u32)>,
    /// Attempts per worker: a failed worker is re-executed with the same input
    /// and resumes at the shared iteration counter.
    pub attempts: u32,
}

impl Params {
    /// Key of one of this run's shared objects.
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.run)
    }

    /// The initial centroids: `k` pseudo-randomly chosen points (Forgy).
    pub fn initial_centroids(&self) -> Vec<f64> {
        (0..self.k)
            .flat_map(|j| {
                let i = self.shape.sample_index(j);
                self.shape.generate(i..i + 1)
            })
            .collect()
    }

    /// The points of worker `thread`.
    pub fn fragment(&self, thread: usize) -> std::io::Result<Vec<f64>> {
        let range = self.shape.fragment(thread, self.threads);
        match &self.data {
            None => Ok(self.shape.generate(range)),
            Some(path) => data::read_npy_rows(std::path::Path::new(path), range).map(|(_, d)| d),
        }
    }
}

/// The shared centroid aggregate: per-iteration partials in, centroids out.
#[shared]
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Centroids {
    k: usize,
    dims: usize,
    /// Centroids at the start of each recent iteration.
    at: BTreeMap<u32, Vec<f64>>,
    /// Partials of the iteration in progress, by thread.
    partials: crucial::Rounds<Partial>,
    /// Cost and centroid movement of each completed iteration.
    history: Vec<(f64, f64)>,
}

impl Centroids {
    /// The aggregate before the first iteration.
    pub fn new(initial: Vec<f64>, k: usize, dims: usize, threads: usize) -> Centroids {
        Centroids {
            k,
            dims,
            at: BTreeMap::from([(0, initial)]),
            partials: crucial::Rounds::new(threads),
            ..Centroids::default()
        }
    }
}

#[shared]
impl Centroids {
    /// The centroids to use in iteration `iteration` (`None` until every thread
    /// contributed to the previous one).
    pub fn get(&self, iteration: u32) -> Option<Vec<f64>> {
        self.at.get(&iteration).cloned()
    }

    /// Records `thread`'s partial of `iteration`; the last one computes the next
    /// centroids. A repeated update (a re-executed thread) replaces the first.
    pub fn update(&mut self, iteration: u32, thread: usize, partial: Partial) {
        if let Some(all) = self.partials.add(iteration, thread, partial) {
            let (next, delta) = model::reduce(&all, &self.at[&iteration], self.k, self.dims);
            self.history.push((all.iter().map(|p| p.cost).sum(), delta));
            self.at.insert(iteration + 1, next);
            // Keep two iterations: slow threads may still read the previous one.
            self.at.retain(|i, _| i + 2 > iteration + 1);
        }
    }

    /// `(cost, centroid movement)` of every completed iteration.
    pub fn history(&self) -> Vec<(f64, f64)> {
        self.history.clone()
    }
}

/// Time spent by one worker in one iteration, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Assigning points.
    pub compute: f64,
    /// Reading centroids and shipping the partial.
    pub update: f64,
    /// Waiting at the barrier.
    pub barrier: f64,
}

/// One k-means worker: runs from the shared iteration counter to the end.
#[cloud_thread]
pub fn worker(params: Params, thread: usize) -> crucial::Result<Vec<Timing>> {
    let points = params
        .fragment(thread)
        .map_err(|e| crucial::Error::Object(format!("cannot load points: {e}")))?;
    let centroids = Centroids::shared(params.key("centroids"));
    let barrier = Barrier::shared(params.key("barrier"));
    let iterations = AtomicI64::shared(params.key("iterations"));
    let (k, dims) = (params.k, params.shape.dims);
    let mut timings = Vec::new();
    let mut iteration = iterations.load()? as u32;
    while iteration < params.iterations {
        if params.fail_once_at == Some((thread, iteration))
            && !crucial::AtomicBool::shared(params.key("failed")).swap(true)?
        {
            panic!("injected failure of worker {thread} in iteration {iteration}");
        }
        let start = Instant::now();
        let current = centroids
            .get(iteration)?
            .ok_or_else(|| crucial::Error::Object(format!("no centroids for {iteration}")))?;
        let fetched = Instant::now();
        let partial = model::assign(&points, &current, k, dims);
        let computed = Instant::now();
        centroids.update(iteration, thread, partial)?;
        let updated = Instant::now();
        barrier.wait()?;
        let passed = Instant::now();
        // Whoever gets here first moves the counter; the others find it moved.
        let _ = iterations.compare_exchange(i64::from(iteration), i64::from(iteration) + 1)?;
        iteration += 1;
        timings.push(Timing {
            compute: (computed - fetched).as_secs_f64(),
            update: (fetched - start + (updated - computed)).as_secs_f64(),
            barrier: (passed - updated).as_secs_f64(),
        });
    }
    Ok(timings)
}

/// Resets the run's shared objects and creates them for `params`.
pub fn prepare(params: &Params) -> crucial::Result<()> {
    use crucial::SharedProxy;
    Centroids::shared(params.key("centroids")).delete()?;
    Barrier::shared(params.key("barrier")).delete()?;
    AtomicI64::shared(params.key("iterations")).delete()?;
    crucial::AtomicBool::shared(params.key("failed")).delete()?;
    let initial = params.initial_centroids();
    Centroids::shared_with(
        params.key("centroids"),
        Centroids::new(initial, params.k, params.shape.dims, params.threads),
    )?;
    Barrier::shared_with(params.key("barrier"), Barrier::new(params.threads as u32))?;
    Ok(())
}

/// A run's outcome: the shared object's history and each thread's timings.
pub type Run = (Vec<(f64, f64)>, Vec<Vec<Timing>>);

/// The plain-threads version (no Crucial): the same [`Centroids`] behind a
/// `Mutex`, a `std::sync::Barrier`, an `AtomicU32` iteration counter. Returns the
/// aggregate's history and each thread's timings.
pub fn run_std(params: &Params) -> Run {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Barrier as StdBarrier, Mutex};
    let centroids = Arc::new(Mutex::new(Centroids::new(
        params.initial_centroids(),
        params.k,
        params.shape.dims,
        params.threads,
    )));
    let barrier = Arc::new(StdBarrier::new(params.threads));
    let iterations = Arc::new(AtomicU32::new(0));
    let handles: Vec<_> = (0..params.threads)
        .map(|thread| {
            let (params, centroids, barrier, iterations) = (
                params.clone(),
                Arc::clone(&centroids),
                Arc::clone(&barrier),
                Arc::clone(&iterations),
            );
            std::thread::spawn(move || {
                let points = params.fragment(thread).expect("points");
                let (k, dims) = (params.k, params.shape.dims);
                let mut timings = Vec::new();
                let mut iteration = iterations.load(Ordering::SeqCst);
                while iteration < params.iterations {
                    let start = Instant::now();
                    let current = centroids.lock().unwrap().get(iteration).expect("centroids");
                    let fetched = Instant::now();
                    let partial = model::assign(&points, &current, k, dims);
                    let computed = Instant::now();
                    centroids.lock().unwrap().update(iteration, thread, partial);
                    let updated = Instant::now();
                    barrier.wait();
                    let passed = Instant::now();
                    let _ = iterations.compare_exchange(
                        iteration,
                        iteration + 1,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    iteration += 1;
                    timings.push(Timing {
                        compute: (computed - fetched).as_secs_f64(),
                        update: (fetched - start + (updated - computed)).as_secs_f64(),
                        barrier: (passed - updated).as_secs_f64(),
                    });
                }
                timings
            })
        })
        .collect();
    let timings: Vec<Vec<Timing>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let history = centroids.lock().unwrap().history();
    (history, timings)
}

/// Prints the per-iteration table and the final cost; shared by both binaries.
pub fn report(history: &[(f64, f64)], timings: &[Vec<Timing>], elapsed: f64) {
    println!("| iteration | time (s) | compute | update | barrier | cost | centroid shift |");
    println!("|---|---|---|---|---|---|---|");
    for (i, (cost, shift)) in history.iter().enumerate() {
        // The slowest thread's view of the iteration.
        let t = timings
            .iter()
            .filter_map(|ts| ts.get(i))
            .max_by(|a, b| (a.compute + a.update).total_cmp(&(b.compute + b.update)))
            .copied()
            .unwrap_or_default();
        println!(
            "| {i} | {:.3} | {:.3} | {:.3} | {:.3} | {cost:.6e} | {shift:.4} |",
            t.compute + t.update + t.barrier,
            t.compute,
            t.update,
            t.barrier
        );
    }
    let cost = history.last().map(|h| h.0).unwrap_or(f64::NAN);
    println!("final cost: {cost:.10e}");
    println!("total: {elapsed:.3} s");
}

/// Runs the Crucial version on the configured client and executor.
pub fn run_crucial(params: &Params) -> crucial::Result<Run> {
    prepare(params)?;
    let options = crucial::SpawnOptions::default().attempts(params.attempts);
    // Join the workers as they finish; when one fails for good, delete the
    // barrier so the others, parked at it, fail at once instead of waiting forever.
    let (tx, done) = std::sync::mpsc::channel();
    for t in 0..params.threads {
        let handle = worker::spawn_with(&options, params.clone(), t);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send((t, handle.join().and_then(|r| r)));
        });
    }
    drop(tx);
    let mut timings = vec![Vec::new(); params.threads];
    let mut failure = None;
    for (t, result) in done {
        match result {
            Ok(ts) => timings[t] = ts,
            Err(e) if failure.is_none() => {
                use crucial::SharedProxy;
                Barrier::shared(params.key("barrier")).delete()?;
                failure = Some(e);
            }
            Err(_) => {}
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok((
        Centroids::shared(params.key("centroids")).history()?,
        timings,
    ))
}

/// Referenced from each binary's `main` so the linker keeps the registrations.
#[inline(never)]
pub fn link() {
    crucial_server::link();
}

/// The command line of `kmeans` and `kmeans-std`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    version,
    about = "k-means clustering with cloud threads sharing a centroid aggregate, a barrier and \
             an iteration counter (Listing 2 of the Crucial paper)"
)]
pub struct Args {
    /// Points: generated, or (with --data) the number the file must hold [default: 200000, or the file's].
    #[arg(long)]
    pub points: Option<usize>,
    /// Dimensions of a point [default: 100, or the file's].
    #[arg(long)]
    pub dims: Option<usize>,
    /// Clusters (and blobs of the generated data).
    #[arg(long, default_value_t = 25)]
    pub k: usize,
    /// Iterations.
    #[arg(long, default_value_t = 10)]
    pub iterations: u32,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Seed of the generated data and of the initial centroids.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Read the points from this .npy file (rows x dims, f64) instead of generating them.
    #[arg(long, value_name = "FILE.npy")]
    pub data: Option<String>,
    /// Write the generated points to this .npy file first.
    #[arg(long, value_name = "FILE.npy")]
    pub write_data: Option<String>,
    /// Attempts per worker (a retried worker resumes at the shared iteration counter).
    #[arg(long, default_value_t = 1)]
    pub attempts: u32,
    /// Fault injection: worker W panics once when it starts iteration I.
    #[arg(long, value_name = "W:I", value_parser = parse_fail_once_at)]
    pub fail_once_at: Option<(usize, u32)>,
}

fn parse_fail_once_at(text: &str) -> Result<(usize, u32), String> {
    let (worker, iteration) = text
        .split_once(':')
        .ok_or("expected WORKER:ITERATION, e.g. 1:3")?;
    Ok((
        worker.parse().map_err(|e| format!("worker: {e}"))?,
        iteration.parse().map_err(|e| format!("iteration: {e}"))?,
    ))
}

impl Args {
    /// The run these options describe; the shape of a `--data` file comes from
    /// its header, and a `--points`/`--dims` that disagrees with it is an error.
    pub fn params(&self) -> Result<(Params, Option<String>), String> {
        let (points, dims) = match &self.data {
            Some(path) => {
                let (rows, cols) = datasets::npy_shape(path.as_ref()).map_err(|e| e.to_string())?;
                for (flag, given, actual) in
                    [("--points", self.points, rows), ("--dims", self.dims, cols)]
                {
                    if given.is_some_and(|g| g != actual) {
                        return Err(format!(
                            "{flag} {} disagrees with {path}, which holds {rows} points x {cols} dims",
                            given.unwrap_or_default()
                        ));
                    }
                }
                (rows, cols)
            }
            None => (self.points.unwrap_or(200_000), self.dims.unwrap_or(100)),
        };
        let params = Params {
            shape: Shape {
                points,
                dims,
                blobs: self.k,
                seed: self.seed,
            },
            k: self.k,
            iterations: self.iterations,
            threads: self.threads,
            data: self.data.clone(),
            run: "kmeans".into(),
            fail_once_at: self.fail_once_at,
            attempts: self.attempts.max(1),
        };
        if params.k == 0 || params.k > params.shape.points || params.threads == 0 {
            return Err(format!(
                "need 1 <= --k <= points ({}) and --threads >= 1",
                params.shape.points
            ));
        }
        Ok((params, self.write_data.clone()))
    }
}

/// Parses command-line words (without the program name), as tests and the
/// benchmarks pass them.
pub fn parse_args(args: impl Iterator<Item = String>) -> Result<(Params, Option<String>), String> {
    use clap::Parser;
    Args::try_parse_from(std::iter::once("kmeans".to_string()).chain(args))
        .map_err(|e| e.to_string())?
        .params()
}

//! Logistic regression by full-batch gradient descent with Crucial.
//!
//! Each cloud thread holds a fragment of the labeled points. Per iteration it
//! reads the weights, computes its gradient and loss, and ships them to the
//! shared [`Weights`] object, which sums all threads' gradients in thread order
//! and takes the step on the server; a barrier separates iterations.

pub use datasets::Labeled;

use crucial::{cloud_thread, shared, Barrier, SharedProxy};
use ndarray::{Array1, ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// Everything a worker needs; travels as the cloud thread's argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// The data set.
    pub data: Labeled,
    /// Gradient-descent iterations.
    pub iterations: u32,
    /// Step size.
    pub learning_rate: f64,
    /// Worker threads.
    pub threads: usize,
    /// Prefix of the shared objects' keys.
    pub run: String,
    /// Read points from `FILE-x.npy` and `FILE-y.npy` instead of generating them.
    pub files: Option<String>,
}

impl Params {
    /// Features (row-major) and labels of worker `thread`'s fragment.
    pub fn fragment(&self, thread: usize) -> std::io::Result<(Vec<f64>, Vec<f64>)> {
        let range = self.data.fragment(thread, self.threads);
        match &self.files {
            None => Ok(self.data.generate(range)),
            Some(prefix) => {
                let (_, x) =
                    datasets::read_npy_rows(format!("{prefix}-x.npy").as_ref(), range.clone())?;
                let (_, y) = datasets::read_npy_rows(format!("{prefix}-y.npy").as_ref(), range)?;
                Ok((x, y))
            }
        }
    }

    /// Writes the whole data set as `PREFIX-x.npy` (points x dims) and
    /// `PREFIX-y.npy` (points x 1).
    pub fn write_files(&self, prefix: &str) -> std::io::Result<()> {
        let (x, y) = self.data.generate(0..self.data.points);
        datasets::write_npy(
            format!("{prefix}-x.npy").as_ref(),
            self.data.points,
            self.data.dims,
            &x,
        )?;
        datasets::write_npy(format!("{prefix}-y.npy").as_ref(), self.data.points, 1, &y)
    }

    /// Key of one of this run's shared objects.
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.run)
    }
}

/// One thread's contribution to an iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// Sum over its points of `(σ(w·x) - y) x`.
    pub gradient: Vec<f64>,
    /// Sum of the log losses.
    pub loss: f64,
    /// Points classified right.
    pub correct: u64,
}

/// Gradient, loss and accuracy of `weights` over a fragment.
///
/// One pass over the rows: each row's dot product with the weights and its
/// share of the gradient (`ndarray`'s unrolled `dot` and `scaled_add`, which
/// vectorize) are computed while the row is in L1, so the fragment is read
/// from memory once per iteration. That read is the bound: 80 MB per thread
/// per iteration at this machine's memory bandwidth (an AVX2/FMA build of the
/// same loop measured no faster; blocks of rows through a matrix product were
/// 2.2x slower, paying `matrixmultiply`'s packing for matrix-vector shapes).
/// The loss is `log(1 + e^z) - y z` in a form that cannot overflow, sharing
/// the sigmoid's exponential.
pub fn partial(x: &[f64], y: &[f64], weights: &[f64]) -> Partial {
    let dims = weights.len();
    let x = ArrayView2::from_shape((y.len(), dims), x).expect("x holds one row per label");
    let weights = ArrayView1::from(weights);
    let mut gradient = Array1::<f64>::zeros(dims);
    let (mut loss, mut correct) = (0.0, 0);
    for (row, &label) in x.rows().into_iter().zip(y) {
        let z = row.dot(&weights);
        let e = (-z.abs()).exp();
        let p = if z >= 0.0 {
            1.0 / (1.0 + e)
        } else {
            e / (1.0 + e)
        };
        loss += z.max(0.0) + e.ln_1p() - label * z;
        if (p > 0.5) == (label > 0.5) {
            correct += 1;
        }
        gradient.scaled_add(p - label, &row);
    }
    Partial {
        gradient: gradient.to_vec(),
        loss,
        correct,
    }
}

/// The shared model: weights per iteration, gradients summed in thread order.
#[shared]
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Weights {
    points: usize,
    learning_rate: f64,
    at: BTreeMap<u32, Vec<f64>>,
    partials: crucial::Rounds<Partial>,
    /// (mean loss, accuracy) of each completed iteration.
    history: Vec<(f64, f64)>,
}

impl Weights {
    /// Zero weights before the first iteration.
    pub fn new(params: &Params) -> Weights {
        Weights {
            points: params.data.points,
            learning_rate: params.learning_rate,
            at: BTreeMap::from([(0, vec![0.0; params.data.dims])]),
            partials: crucial::Rounds::new(params.threads),
            ..Weights::default()
        }
    }
}

#[shared]
impl Weights {
    /// The weights to use in `iteration` (`None` until the previous one completed).
    pub fn get(&self, iteration: u32) -> Option<Vec<f64>> {
        self.at.get(&iteration).cloned()
    }

    /// Records a thread's partial; the last one takes the gradient step.
    pub fn update(&mut self, iteration: u32, thread: usize, partial: Partial) {
        if let Some(all) = self.partials.add(iteration, thread, partial) {
            let n = self.points as f64;
            let mut next = self.at[&iteration].clone();
            for (d, w) in next.iter_mut().enumerate() {
                let g: f64 = all.iter().map(|p| p.gradient[d]).sum();
                *w -= self.learning_rate * g / n;
            }
            let loss = all.iter().map(|p| p.loss).sum::<f64>() / n;
            let accuracy = all.iter().map(|p| p.correct).sum::<u64>() as f64 / n;
            self.history.push((loss, accuracy));
            self.at.insert(iteration + 1, next);
            self.at.retain(|i, _| i + 2 > iteration + 1);
        }
    }

    /// `(mean loss, accuracy)` per completed iteration.
    pub fn history(&self) -> Vec<(f64, f64)> {
        self.history.clone()
    }
}

/// One worker: runs every iteration on its fragment. Returns seconds per iteration.
#[cloud_thread]
pub fn worker(params: Params, thread: usize) -> crucial::Result<Vec<f64>> {
    let (x, y) = params
        .fragment(thread)
        .map_err(|e| crucial::Error::Object(format!("cannot load points: {e}")))?;
    let weights = Weights::shared(params.key("weights"));
    let barrier = Barrier::shared(params.key("barrier"));
    let mut times = Vec::new();
    for iteration in 0..params.iterations {
        let start = Instant::now();
        let w = weights
            .get(iteration)?
            .ok_or_else(|| crucial::Error::Object(format!("no weights for {iteration}")))?;
        weights.update(iteration, thread, partial(&x, &y, &w))?;
        barrier.wait()?;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(times)
}

/// Resets and creates the run's shared objects.
pub fn prepare(params: &Params) -> crucial::Result<()> {
    Weights::shared(params.key("weights")).delete()?;
    Barrier::shared(params.key("barrier")).delete()?;
    Weights::shared_with(params.key("weights"), Weights::new(params))?;
    Barrier::shared_with(params.key("barrier"), Barrier::new(params.threads as u32))?;
    Ok(())
}

/// The command line of `logreg` and `logreg-std`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    version,
    about = "Logistic regression by full-batch gradient descent: cloud threads ship their \
             gradients to a shared model that takes the step on the server"
)]
pub struct Args {
    /// Points: generated, or (with --data) the number the files must hold [default: 100000, or the files'].
    #[arg(long)]
    pub points: Option<usize>,
    /// Features of a point [default: 50, or the files'].
    #[arg(long)]
    pub dims: Option<usize>,
    /// Gradient-descent iterations.
    #[arg(long, default_value_t = 100)]
    pub iterations: u32,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Step size.
    #[arg(long, default_value_t = 1.0)]
    pub learning_rate: f64,
    /// Read the points from PREFIX-x.npy (points x dims) and PREFIX-y.npy (points x 1).
    #[arg(long, value_name = "PREFIX")]
    pub data: Option<String>,
    /// Write the generated points to PREFIX-x.npy and PREFIX-y.npy first.
    #[arg(long, value_name = "PREFIX")]
    pub write_data: Option<String>,
}

impl Args {
    /// The run these options describe; the shape of `--data` files comes from
    /// their headers, and a `--points`/`--dims` that disagrees is an error.
    pub fn params(&self) -> Result<(Params, Option<String>), String> {
        let (points, dims) = match &self.data {
            Some(prefix) => {
                let x = format!("{prefix}-x.npy");
                let y = format!("{prefix}-y.npy");
                let (rows, cols) = datasets::npy_shape(x.as_ref()).map_err(|e| e.to_string())?;
                let (labels, label_cols) =
                    datasets::npy_shape(y.as_ref()).map_err(|e| e.to_string())?;
                if labels != rows || label_cols != 1 {
                    return Err(format!(
                        "{y} holds {labels} x {label_cols} values; {x} needs {rows} x 1 labels"
                    ));
                }
                for (flag, given, actual) in
                    [("--points", self.points, rows), ("--dims", self.dims, cols)]
                {
                    if given.is_some_and(|g| g != actual) {
                        return Err(format!(
                            "{flag} {} disagrees with {x}, which holds {rows} points x {cols} features",
                            given.unwrap_or_default()
                        ));
                    }
                }
                (rows, cols)
            }
            None => (self.points.unwrap_or(100_000), self.dims.unwrap_or(50)),
        };
        let params = Params {
            data: Labeled {
                points,
                dims,
                noise: 0.5,
                seed: self.seed,
            },
            iterations: self.iterations,
            learning_rate: self.learning_rate,
            threads: self.threads,
            run: "logreg".into(),
            files: self.data.clone(),
        };
        if params.threads == 0 || params.data.points < params.threads {
            return Err("need --threads >= 1 and at least one point per thread".into());
        }
        Ok((params, self.write_data.clone()))
    }
}

/// Parses command-line words (without the program name), as the benchmarks pass them.
pub fn parse_args(args: impl Iterator<Item = String>) -> Result<(Params, Option<String>), String> {
    use clap::Parser;
    Args::try_parse_from(std::iter::once("logreg".to_string()).chain(args))
        .map_err(|e| e.to_string())?
        .params()
}

/// Prints the loss table and a summary; shared by both binaries.
pub fn report(history: &[(f64, f64)], times: &[Vec<f64>], elapsed: f64) {
    println!("| iteration | loss | accuracy | time (ms) |");
    println!("|---|---|---|---|");
    for (i, (loss, accuracy)) in history.iter().enumerate() {
        let t = times
            .iter()
            .filter_map(|ts| ts.get(i))
            .fold(0.0f64, |a, b| a.max(*b));
        println!("| {i} | {loss:.6} | {:.4} | {:.2} |", accuracy, t * 1e3);
    }
    if let Some((loss, accuracy)) = history.last() {
        println!("final loss: {loss:.12}");
        println!("final accuracy: {accuracy:.4}");
    }
    println!(
        "total: {elapsed:.3} s, {:.2} ms per iteration",
        elapsed * 1e3 / history.len().max(1) as f64
    );
}

/// A run's outcome: the shared object's history and each thread's timings.
pub type Run = (Vec<(f64, f64)>, Vec<Vec<f64>>);

/// The plain-threads version (no Crucial): the same [`Weights`] behind a `Mutex`
/// and a `std::sync::Barrier`. Returns the history and each thread's iteration times.
pub fn run_std(params: &Params) -> Run {
    use std::sync::{Arc, Barrier as StdBarrier, Mutex};
    let weights = Arc::new(Mutex::new(Weights::new(params)));
    let barrier = Arc::new(StdBarrier::new(params.threads));
    let handles: Vec<_> = (0..params.threads)
        .map(|thread| {
            let (params, weights, barrier) =
                (params.clone(), Arc::clone(&weights), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let (x, y) = params.fragment(thread).expect("points");
                let mut times = Vec::new();
                for iteration in 0..params.iterations {
                    let start = Instant::now();
                    let w = weights.lock().unwrap().get(iteration).expect("weights");
                    let p = partial(&x, &y, &w);
                    weights.lock().unwrap().update(iteration, thread, p);
                    barrier.wait();
                    times.push(start.elapsed().as_secs_f64());
                }
                times
            })
        })
        .collect();
    let times: Vec<Vec<f64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let history = weights.lock().unwrap().history();
    (history, times)
}

/// Runs the Crucial version on the configured client and executor.
pub fn run_crucial(params: &Params) -> crucial::Result<Run> {
    prepare(params)?;
    let handles: Vec<_> = (0..params.threads)
        .map(|t| worker::spawn(params.clone(), t))
        .collect();
    let mut times = Vec::new();
    for h in handles {
        times.push(h.join()??);
    }
    Ok((Weights::shared(params.key("weights")).history()?, times))
}

/// Referenced from each binary's `main` so the linker keeps the registrations.
#[inline(never)]
pub fn link() {
    crucial_server::link();
}

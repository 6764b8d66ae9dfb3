//! The k-means step, shared unchanged by the Crucial and the plain-threads versions.

use serde::{Deserialize, Serialize};

/// One thread's contribution to an iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// Per cluster, the sum of the points assigned to it (`k * dims`).
    pub sums: Vec<f64>,
    /// Per cluster, how many points were assigned to it.
    pub counts: Vec<u64>,
    /// Sum of squared distances of the points to their centroid.
    pub cost: f64,
}

/// Assigns each point to its nearest centroid and accumulates the partial sums.
pub fn assign(points: &[f64], centroids: &[f64], k: usize, dims: usize) -> Partial {
    let mut sums = vec![0.0; k * dims];
    let mut counts = vec![0u64; k];
    let mut cost = 0.0;
    for point in points.chunks_exact(dims) {
        let mut best = (f64::INFINITY, 0);
        for (c, centroid) in centroids.chunks_exact(dims).enumerate() {
            let d: f64 = point
                .iter()
                .zip(centroid)
                .map(|(p, q)| (p - q) * (p - q))
                .sum();
            if d < best.0 {
                best = (d, c);
            }
        }
        cost += best.0;
        counts[best.1] += 1;
        for (s, p) in sums[best.1 * dims..(best.1 + 1) * dims]
            .iter_mut()
            .zip(point)
        {
            *s += p;
        }
    }
    Partial { sums, counts, cost }
}

/// New centroids from all threads' partials, summed in thread order (so the
/// result does not depend on who arrived first). An empty cluster keeps its
/// previous centroid.
pub fn reduce(partials: &[Partial], previous: &[f64], k: usize, dims: usize) -> (Vec<f64>, f64) {
    let mut next = previous.to_vec();
    for c in 0..k {
        let count: u64 = partials.iter().map(|p| p.counts[c]).sum();
        if count == 0 {
            continue;
        }
        for d in 0..dims {
            let sum: f64 = partials.iter().map(|p| p.sums[c * dims + d]).sum();
            next[c * dims + d] = sum / count as f64;
        }
    }
    let delta = next
        .iter()
        .zip(previous)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    (next, delta)
}

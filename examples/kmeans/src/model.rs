//! The k-means step, shared unchanged by the Crucial and the plain-threads versions.

use ndarray::{Array2, ArrayView2, Axis};
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

/// Rows of points per matrix product: the block and its distances stay in cache.
const BLOCK: usize = 256;

/// Assigns each point to its nearest centroid and accumulates the partial sums.
///
/// The squared distance `|p - c|^2 = |p|^2 - 2 p.c + |c|^2` is computed for a
/// block of points at once: the `p.c` terms are one matrix product, which
/// `ndarray` hands to `matrixmultiply`'s SIMD kernels (AVX2/FMA where the CPU
/// has them, chosen at run time). The plain-threads version calls this same
/// function, so the comparison between them measures Crucial, not the kernel.
pub fn assign(points: &[f64], centroids: &[f64], k: usize, dims: usize) -> Partial {
    let points = ArrayView2::from_shape((points.len() / dims, dims), points)
        .expect("points are a whole number of rows");
    let centroids = ArrayView2::from_shape((k, dims), centroids).expect("centroids are k x dims");
    let centroid_norms: Vec<f64> = centroids.rows().into_iter().map(|c| c.dot(&c)).collect();
    let mut sums = Array2::<f64>::zeros((k, dims));
    let mut counts = vec![0u64; k];
    let mut cost = 0.0;
    for block in points.axis_chunks_iter(Axis(0), BLOCK) {
        let cross = block.dot(&centroids.t());
        for (point, cross) in block.rows().into_iter().zip(cross.rows()) {
            let mut best = (f64::INFINITY, 0);
            for (c, (&pc, &norm)) in cross.iter().zip(&centroid_norms).enumerate() {
                let d = norm - 2.0 * pc;
                if d < best.0 {
                    best = (d, c);
                }
            }
            cost += (point.dot(&point) + best.0).max(0.0);
            counts[best.1] += 1;
            sums.row_mut(best.1).scaled_add(1.0, &point);
        }
    }
    Partial {
        sums: sums.into_raw_vec_and_offset().0,
        counts,
        cost,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct definition, one distance at a time.
    fn assign_directly(points: &[f64], centroids: &[f64], k: usize, dims: usize) -> Partial {
        let mut sums = vec![0.0; k * dims];
        let mut counts = vec![0u64; k];
        let mut cost = 0.0;
        for point in points.chunks_exact(dims) {
            let (d, c) = centroids
                .chunks_exact(dims)
                .map(|c| {
                    point
                        .iter()
                        .zip(c)
                        .map(|(p, q)| (p - q) * (p - q))
                        .sum::<f64>()
                })
                .enumerate()
                .fold(
                    (f64::INFINITY, 0),
                    |best, (c, d)| if d < best.0 { (d, c) } else { best },
                );
            cost += d;
            counts[c] += 1;
            for (s, p) in sums[c * dims..(c + 1) * dims].iter_mut().zip(point) {
                *s += p;
            }
        }
        Partial { sums, counts, cost }
    }

    #[test]
    fn the_matrix_product_form_assigns_like_the_definition() {
        let shape = datasets::Shape {
            points: 1000,
            dims: 7,
            blobs: 5,
            seed: 3,
        };
        let points = shape.generate(0..shape.points);
        let centroids: Vec<f64> = (0..5)
            .flat_map(|j| shape.generate(j * 13..j * 13 + 1))
            .collect();
        let fast = assign(&points, &centroids, 5, 7);
        let slow = assign_directly(&points, &centroids, 5, 7);
        assert_eq!(fast.counts, slow.counts);
        assert_eq!(fast.counts.iter().sum::<u64>(), 1000);
        assert!(
            (fast.cost - slow.cost).abs() <= 1e-9 * slow.cost,
            "{} vs {}",
            fast.cost,
            slow.cost
        );
        for (a, b) in fast.sums.iter().zip(&slow.sums) {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}

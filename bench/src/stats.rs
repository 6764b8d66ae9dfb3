//! Latency percentiles and throughput.

use std::time::Duration;

/// Latencies of a sequential run.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Sorts the samples.
    pub fn new(mut samples: Vec<Duration>) -> Latencies {
        samples.sort_unstable();
        Latencies(samples)
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let index = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[index].as_secs_f64() * 1e6
    }

    /// Median, in microseconds.
    pub fn p50(&self) -> f64 {
        self.percentile(0.50)
    }

    /// 99th percentile, in microseconds.
    pub fn p99(&self) -> f64 {
        self.percentile(0.99)
    }

    /// Mean, in microseconds.
    pub fn mean(&self) -> f64 {
        let total: Duration = self.0.iter().sum();
        total.as_secs_f64() * 1e6 / self.0.len() as f64
    }
}

/// Operations completed in a time.
pub struct Throughput {
    /// Completed operations.
    pub ops: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Throughput {
    /// The trial with the median rate.
    pub fn median(mut trials: Vec<Throughput>) -> Throughput {
        trials.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
        trials.swap_remove(trials.len() / 2)
    }

    /// Operations per second.
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

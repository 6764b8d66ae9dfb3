//! Synthetic data sets from a seeded generator, and `.npy` files to exchange them
//! with other systems (numpy, and Spark through numpy).
//!
//! Point `i` depends only on `(seed, i)`, so any thread (or function instance)
//! can generate its own fragment without reading anything, and every run with
//! the same seed sees the same data.
//!
//! * [`Shape`]: points in Gaussian blobs (k-means).
//! * [`Labeled`]: points with a 0/1 label from a noisy linear rule (logistic regression).

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Describes a data set.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Number of points.
    pub points: usize,
    /// Dimensions of each point.
    pub dims: usize,
    /// Number of blobs the points are drawn around.
    pub blobs: usize,
    /// Generator seed.
    pub seed: u64,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded xorshift generator with a Box-Muller normal sampler.
pub struct Rng(u64);

impl Rng {
    /// A generator for a stream named by `parts`.
    pub fn new(parts: &[u64]) -> Rng {
        Rng(parts.iter().fold(0x5eed, |h, p| splitmix(h ^ p)) | 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

impl Shape {
    /// Center of blob `b`: uniform in `[-10, 10)^dims`.
    pub fn center(&self, b: usize) -> Vec<f64> {
        let mut rng = Rng::new(&[self.seed, 0xb10b, b as u64]);
        (0..self.dims)
            .map(|_| rng.uniform() * 20.0 - 10.0)
            .collect()
    }

    /// Writes point `i` into `out` (length `dims`).
    pub fn point_into(&self, i: usize, centers: &[Vec<f64>], out: &mut [f64]) {
        let mut rng = Rng::new(&[self.seed, i as u64]);
        let center = &centers[i % self.blobs];
        for (o, c) in out.iter_mut().zip(center) {
            *o = c + rng.normal();
        }
    }

    /// Points `range` as one row-major buffer.
    pub fn generate(&self, range: std::ops::Range<usize>) -> Vec<f64> {
        let centers: Vec<_> = (0..self.blobs).map(|b| self.center(b)).collect();
        let mut out = vec![0.0; range.len() * self.dims];
        for (row, i) in out.chunks_mut(self.dims).zip(range) {
            self.point_into(i, &centers, row);
        }
        out
    }

    /// The `j`-th pseudo-random point index (to seed centroids away from the blobs' order).
    pub fn sample_index(&self, j: usize) -> usize {
        (splitmix(self.seed ^ splitmix(j as u64 + 1)) % self.points as u64) as usize
    }

    /// The points of `part` out of `parts` equal fragments.
    pub fn fragment(&self, part: usize, parts: usize) -> std::ops::Range<usize> {
        let start = self.points * part / parts;
        let end = self.points * (part + 1) / parts;
        start..end
    }
}

/// Labeled points: features `x ~ N(0, 1)^dims` and label `1` when
/// `w·x + noise > 0`, for a hidden `w` drawn from the seed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Labeled {
    /// Number of points.
    pub points: usize,
    /// Number of features.
    pub dims: usize,
    /// Standard deviation of the label noise.
    pub noise: f64,
    /// Generator seed.
    pub seed: u64,
}

impl Labeled {
    /// The hidden weights.
    pub fn truth(&self) -> Vec<f64> {
        let mut rng = Rng::new(&[self.seed, 0x7e57]);
        (0..self.dims).map(|_| rng.normal()).collect()
    }

    /// Features (row-major) and labels of points `range`.
    pub fn generate(&self, range: std::ops::Range<usize>) -> (Vec<f64>, Vec<f64>) {
        let truth = self.truth();
        let mut x = Vec::with_capacity(range.len() * self.dims);
        let mut y = Vec::with_capacity(range.len());
        for i in range {
            let mut rng = Rng::new(&[self.seed, 0x1abe1, i as u64]);
            let start = x.len();
            x.extend((0..self.dims).map(|_| rng.normal()));
            let score: f64 = x[start..].iter().zip(&truth).map(|(a, b)| a * b).sum();
            y.push(if score + self.noise * rng.normal() > 0.0 {
                1.0
            } else {
                0.0
            });
        }
        (x, y)
    }

    /// The points of `part` out of `parts` equal fragments.
    pub fn fragment(&self, part: usize, parts: usize) -> std::ops::Range<usize> {
        self.points * part / parts..self.points * (part + 1) / parts
    }
}

/// Writes a row-major `f64` matrix as `.npy` (version 1.0, `<f8`, C order).
pub fn write_npy(path: &Path, rows: usize, cols: usize, data: &[f64]) -> io::Result<()> {
    assert_eq!(data.len(), rows * cols);
    let mut header =
        format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + header length (2) + header, padded to 64 bytes.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = BufWriter::new(File::create(path)?);
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&(header.len() as u16).to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    for v in data {
        out.write_all(&v.to_le_bytes())?;
    }
    out.flush()
}

/// The header of a `.npy` `<f8` C-order matrix: rows, columns, and where the
/// data starts.
fn read_npy_header(path: &Path, file: &mut File) -> io::Result<(usize, usize, u64)> {
    let bad = |m: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {m}", path.display()),
        )
    };
    let mut magic = [0u8; 10];
    file.read_exact(&mut magic)
        .map_err(|_| bad("not a .npy file (too short)"))?;
    if &magic[..6] != b"\x93NUMPY" || magic[6] != 1 {
        return Err(bad("not a version 1 .npy file"));
    }
    let header_len = u16::from_le_bytes([magic[8], magic[9]]) as usize;
    let mut header = vec![0u8; header_len];
    file.read_exact(&mut header)?;
    let header = String::from_utf8_lossy(&header);
    if !header.contains("'<f8'") || header.contains("'fortran_order': True") {
        return Err(bad("expected little-endian f64 in C order"));
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<io::Result<_>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad("expected a 2-d array"));
    };
    let data_start = (10 + header_len) as u64;
    let expected = data_start + (rows * cols * 8) as u64;
    if file.metadata()?.len() != expected {
        return Err(bad(&format!(
            "the header says {rows} x {cols} values of 8 bytes, but the file is {} bytes long",
            file.metadata()?.len()
        )));
    }
    Ok((rows, cols, data_start))
}

/// The shape `(rows, columns)` of a `.npy` `<f8` C-order matrix, read from its
/// header (and checked against the file's length).
pub fn npy_shape(path: &Path) -> io::Result<(usize, usize)> {
    let mut file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let (rows, cols, _) = read_npy_header(path, &mut file)?;
    Ok((rows, cols))
}

/// Reads rows `range` of a `.npy` `<f8` C-order matrix; returns `(cols, data)`.
pub fn read_npy_rows(path: &Path, range: std::ops::Range<usize>) -> io::Result<(usize, Vec<f64>)> {
    let mut file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let (rows, cols, data_start) = read_npy_header(path, &mut file)?;
    if range.end > rows {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: rows {range:?} asked of {rows}", path.display()),
        ));
    }
    file.seek(SeekFrom::Start(
        data_start + (range.start * cols * 8) as u64,
    ))?;
    let mut bytes = vec![0u8; range.len() * cols * 8];
    file.read_exact(&mut bytes)?;
    let data = bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    Ok((cols, data))
}

/// A progress line on stderr every two seconds while a long run goes on
/// (`what` and the elapsed time, then what `status` says); stops when dropped.
pub struct Progress {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts reporting; the first line comes after two seconds, so short runs print none.
    pub fn start(what: &str, status: impl Fn() -> String + Send + 'static) -> Progress {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let what = what.to_string();
        let start = std::time::Instant::now();
        let thread = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(std::time::Duration::from_secs(2))
            {
                eprintln!(
                    "{what}: {:.0} s, {}",
                    start.elapsed().as_secs_f64(),
                    status()
                );
            }
        });
        Progress {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_fragments_cover_everything() {
        let shape = Shape {
            points: 103,
            dims: 3,
            blobs: 4,
            seed: 9,
        };
        let all = shape.generate(0..103);
        let mut joined = Vec::new();
        for part in 0..4 {
            joined.extend(shape.generate(shape.fragment(part, 4)));
        }
        assert_eq!(all, joined);
        assert_ne!(all, Shape { seed: 10, ..shape }.generate(0..103));
    }

    #[test]
    fn npy_round_trip_by_rows() {
        let dir = std::env::temp_dir().join(format!("kmeans-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.npy");
        let data: Vec<f64> = (0..30).map(|v| v as f64 * 0.5).collect();
        write_npy(&path, 10, 3, &data).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0, "header padded to 64 bytes");
        let (cols, rows) = read_npy_rows(&path, 2..5).unwrap();
        assert_eq!(cols, 3);
        assert_eq!(rows, data[6..15]);
        assert_eq!(npy_shape(&path).unwrap(), (10, 3));
        // A file whose length disagrees with its header is refused, not misread.
        std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
        let e = npy_shape(&path).unwrap_err().to_string();
        assert!(e.contains("10 x 3"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

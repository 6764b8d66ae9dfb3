//! A structure-aware mutator: inputs start from valid encodings (the seeds)
//! and get one to four edits, some of which know the encoding: postcard
//! writes every length (of a string, a byte string, a vector) as a varint,
//! and a frame header starts with a big-endian `u32` length, so the
//! mutator writes huge varints and huge headers where lengths may be.

/// A small, fast, deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// Seeded (0 is replaced: xorshift has no zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Varints that claim huge lengths: `u32::MAX`, `u64::MAX`, 2^31, 2^24.
const HUGE_VARINTS: [&[u8]; 4] = [
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[0x80, 0x80, 0x80, 0x80, 0x08],
    &[0x80, 0x80, 0x80, 0x08],
];

/// Makes inputs from seeds.
pub struct Mutator {
    rng: Rng,
}

impl Mutator {
    /// A mutator seeded with `seed` (the same seed, the same inputs).
    pub fn new(seed: u64) -> Mutator {
        Mutator {
            rng: Rng::new(seed),
        }
    }

    /// The next input: a seed (or two spliced) with one to four edits; one
    /// in sixteen is random bytes.
    pub fn input(&mut self, seeds: &[Vec<u8>]) -> Vec<u8> {
        if seeds.is_empty() || self.rng.below(16) == 0 {
            let len = self.rng.below(64);
            return (0..len).map(|_| self.rng.next_u64() as u8).collect();
        }
        let mut input = seeds[self.rng.below(seeds.len())].clone();
        for _ in 0..1 + self.rng.below(4) {
            self.edit(&mut input, seeds);
        }
        input
    }

    fn edit(&mut self, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
        let at = |rng: &mut Rng, input: &Vec<u8>| rng.below(input.len() + 1);
        match self.rng.below(9) {
            // A bit flipped.
            0 if !input.is_empty() => {
                let i = self.rng.below(input.len());
                input[i] ^= 1 << self.rng.below(8);
            }
            // A byte replaced by an edge value.
            1 if !input.is_empty() => {
                let i = self.rng.below(input.len());
                input[i] = [0x00, 0x01, 0x7f, 0x80, 0xff][self.rng.below(5)];
            }
            // Random bytes inserted.
            2 => {
                let i = at(&mut self.rng, input);
                let n = 1 + self.rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
                input.splice(i..i, bytes);
            }
            // A range removed.
            3 if !input.is_empty() => {
                let i = self.rng.below(input.len());
                let n = 1 + self.rng.below((input.len() - i).min(16));
                input.drain(i..i + n);
            }
            // A range repeated.
            4 if !input.is_empty() => {
                let i = self.rng.below(input.len());
                let n = 1 + self.rng.below((input.len() - i).min(32));
                let copy = input[i..i + n].to_vec();
                input.splice(i..i, copy);
            }
            // A byte (where a length may be) replaced by a huge varint.
            5 | 6 if !input.is_empty() => {
                let i = self.rng.below(input.len());
                let huge = HUGE_VARINTS[self.rng.below(HUGE_VARINTS.len())];
                input.splice(i..i + 1, huge.iter().copied());
            }
            // Cut short.
            7 if !input.is_empty() => {
                let n = self.rng.below(input.len());
                input.truncate(n);
            }
            // Spliced with another seed's tail.
            _ => {
                let other = &seeds[self.rng.below(seeds.len())];
                let i = at(&mut self.rng, input);
                let j = self.rng.below(other.len() + 1);
                input.truncate(i);
                input.extend_from_slice(&other[j..]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_inputs() {
        let seeds = vec![vec![1, 2, 3, 4], vec![9; 20]];
        let (mut a, mut b) = (Mutator::new(7), Mutator::new(7));
        for _ in 0..1000 {
            assert_eq!(a.input(&seeds), b.input(&seeds));
        }
    }

    #[test]
    fn some_inputs_carry_huge_lengths() {
        let seeds = vec![vec![0u8; 16]];
        let mut m = Mutator::new(1);
        let huge = (0..2000)
            .map(|_| m.input(&seeds))
            .filter(|i| i.windows(5).any(|w| w == HUGE_VARINTS[0]))
            .count();
        assert!(huge > 50, "{huge} of 2000");
    }
}

//! What a load run asks: the operation mix, which keys, how skewed.

use std::fmt;

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Increment a counter: `AtomicI64::fetch_add(1)` / `INCR`.
    Incr,
    /// Read a value of `--data` bytes: `AtomicBytes::get` / `GET`.
    Get,
    /// Write a value of `--data` bytes: `AtomicBytes::set` / `SET`.
    Set,
    /// A user type's method run next to its data: `Tally::record(a, b)` / a
    /// Lua script doing the same (`EVALSHA`).
    Method,
    /// A blocking pair, alternating on each connection: `Semaphore::release(1)`
    /// then `acquire(1)` / `LPUSH` then `BLPOP`.
    Sem,
}

impl OpKind {
    /// Every kind, for parsing and listing.
    pub const ALL: [OpKind; 5] = [
        OpKind::Incr,
        OpKind::Get,
        OpKind::Set,
        OpKind::Method,
        OpKind::Sem,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Incr => "incr",
            OpKind::Get => "get",
            OpKind::Set => "set",
            OpKind::Method => "method",
            OpKind::Sem => "sem",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Weighted operation mix: `incr=3,get=1`.
#[derive(Debug, Clone)]
pub struct Mix {
    weights: Vec<(OpKind, u32)>,
    total: u32,
}

impl Mix {
    /// Parses `kind[=weight],...`; weights default to 1.
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut weights = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let kind = OpKind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown operation `{name}` in --ops; expected one of {}",
                        OpKind::ALL.map(OpKind::name).join(", ")
                    )
                })?;
            let weight: u32 = weight
                .parse()
                .map_err(|_| format!("--ops: weight of `{name}` must be a whole number"))?;
            if weight > 0 {
                weights.push((kind, weight));
            }
        }
        let total = weights.iter().map(|(_, w)| w).sum();
        if total == 0 {
            return Err("--ops names no operation".into());
        }
        Ok(Mix { weights, total })
    }

    /// The kinds that occur.
    pub fn kinds(&self) -> impl Iterator<Item = OpKind> + '_ {
        self.weights.iter().map(|(k, _)| *k)
    }

    /// The kind for a uniform random draw `r`.
    pub fn pick(&self, r: u64) -> OpKind {
        let mut at = (r % u64::from(self.total)) as u32;
        for (kind, weight) in &self.weights {
            if at < *weight {
                return *kind;
            }
            at -= weight;
        }
        self.weights[0].0
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .weights
            .iter()
            .map(|(k, w)| {
                if self.weights.len() == 1 {
                    k.name().to_string()
                } else {
                    format!("{k}={w}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Which key each request goes to: `keys` keys, uniform or Zipf-skewed.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Cumulative probabilities (empty: uniform).
    cdf: Vec<f64>,
    count: u64,
}

impl Keys {
    /// `count` keys drawn uniformly (`skew` 0) or with Zipf exponent `skew`.
    pub fn new(count: u64, skew: f64) -> Keys {
        let count = count.max(1);
        let cdf = if skew > 0.0 {
            let weights: Vec<f64> = (1..=count).map(|k| 1.0 / (k as f64).powf(skew)).collect();
            let sum: f64 = weights.iter().sum();
            let mut acc = 0.0;
            weights
                .iter()
                .map(|w| {
                    acc += w / sum;
                    acc
                })
                .collect()
        } else {
            Vec::new()
        };
        Keys { cdf, count }
    }

    /// How many keys there are.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The key index for a uniform random draw `r`.
    pub fn pick(&self, r: u64) -> u64 {
        if self.cdf.is_empty() {
            return r % self.count;
        }
        let u = (r >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1) as u64
    }
}

/// A small, fast, seeded random source (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A source from a seed (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_parses_and_picks_by_weight() {
        let mix = Mix::parse("incr=3,get").unwrap();
        let picks: Vec<_> = (0..4).map(|r| mix.pick(r)).collect();
        assert_eq!(
            picks,
            [OpKind::Incr, OpKind::Incr, OpKind::Incr, OpKind::Get]
        );
        assert!(Mix::parse("frob")
            .unwrap_err()
            .contains("unknown operation"));
        assert!(Mix::parse("incr=0").is_err());
    }

    #[test]
    fn zipf_keys_favour_the_first() {
        let keys = Keys::new(100, 1.0);
        let mut rng = Rng::new(7);
        let mut first = 0;
        for _ in 0..10_000 {
            if keys.pick(rng.next_u64()) == 0 {
                first += 1;
            }
        }
        // P(key 0) = 1 / H(100) ~ 0.19.
        assert!((1500..2400).contains(&first), "{first}");
        let uniform = Keys::new(100, 0.0);
        assert!((0..1000).all(|r| uniform.pick(r) < 100));
    }
}

//! Record sizes: `--size N` (fixed) or `--size-dist uniform:MIN:MAX`, and the pool
//! of values a connection cycles through, made once so that the send path only
//! copies bytes.

use std::fmt;
use std::str::FromStr;

/// Largest record the legacy protocol carries (`dmq_proto::legacy::MAX_ARRAY_LEN`).
pub const MAX_RECORD_BYTES: usize = dmq_proto::legacy::MAX_ARRAY_LEN;

/// Values in the pool of a uniform distribution: enough that the mean is close to
/// the distribution's, few enough to stay in cache for small records.
const UNIFORM_POOL_LEN: usize = 1024;

/// How big each record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeDist {
    /// Every record has this many bytes.
    Fixed(usize),
    /// Sizes drawn uniformly from `min..=max` bytes.
    Uniform { min: usize, max: usize },
}

impl SizeDist {
    /// The smallest record.
    pub fn min_bytes(&self) -> usize {
        match *self {
            SizeDist::Fixed(n) => n,
            SizeDist::Uniform { min, .. } => min,
        }
    }
}

impl fmt::Display for SizeDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeDist::Fixed(n) => write!(f, "{n}"),
            SizeDist::Uniform { min, max } => write!(f, "uniform:{min}:{max}"),
        }
    }
}

impl FromStr for SizeDist {
    type Err = String;

    /// `N`, `fixed:N` or `uniform:MIN:MAX`, in bytes, each at least 1 and at most
    /// [`MAX_RECORD_BYTES`] (an empty value is refused by the node with 408).
    fn from_str(s: &str) -> Result<SizeDist, String> {
        let number = |part: &str| -> Result<usize, String> {
            let n: usize = part
                .trim()
                .parse()
                .map_err(|_| format!("'{part}' is not a number of bytes"))?;
            if n == 0 || n > MAX_RECORD_BYTES {
                return Err(format!("{n}: a record has 1 to {MAX_RECORD_BYTES} bytes"));
            }
            Ok(n)
        };
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            [n] | ["fixed", n] => Ok(SizeDist::Fixed(number(n)?)),
            ["uniform", min, max] => {
                let (min, max) = (number(min)?, number(max)?);
                if min > max {
                    return Err(format!("uniform:{min}:{max}: MIN is above MAX"));
                }
                Ok(SizeDist::Uniform { min, max })
            }
            _ => Err(format!(
                "'{s}': expected N, fixed:N or uniform:MIN:MAX (bytes)"
            )),
        }
    }
}

/// The values one connection sends, cycled through by request number.
#[derive(Debug, Clone)]
pub struct ValuePool {
    values: Vec<Vec<u8>>,
}

impl ValuePool {
    /// One value for a fixed size; [`UNIFORM_POOL_LEN`] values for a uniform
    /// distribution, sizes drawn with `seed`.
    pub fn new(dist: SizeDist, seed: u64) -> ValuePool {
        let value = |len: usize| vec![b'x'; len];
        let values = match dist {
            SizeDist::Fixed(n) => vec![value(n)],
            SizeDist::Uniform { min, max } => {
                let mut rng = fastrand::Rng::with_seed(seed);
                (0..UNIFORM_POOL_LEN)
                    .map(|_| value(rng.usize(min..=max)))
                    .collect()
            }
        };
        ValuePool { values }
    }

    /// The value of request number `seq`.
    pub fn get(&self, seq: u64) -> &[u8] {
        &self.values[(seq % self.values.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixed_and_uniform() {
        assert_eq!("100".parse(), Ok(SizeDist::Fixed(100)));
        assert_eq!("fixed:7".parse(), Ok(SizeDist::Fixed(7)));
        assert_eq!(
            "uniform:100:1000".parse(),
            Ok(SizeDist::Uniform {
                min: 100,
                max: 1000
            })
        );
        for bad in [
            "0",
            "uniform:10:5",
            "uniform:10",
            "normal:1:2",
            "x",
            "",
            "uniform:0:5",
            "20000000",
        ] {
            assert!(bad.parse::<SizeDist>().is_err(), "{bad}");
        }
        let dist: SizeDist = "uniform:100:1000".parse().expect("dist");
        assert_eq!(dist.to_string(), "uniform:100:1000");
        assert_eq!(dist.min_bytes(), 100);
    }

    #[test]
    fn uniform_pool_stays_in_range_and_has_the_right_mean() {
        let pool = ValuePool::new(
            SizeDist::Uniform {
                min: 100,
                max: 1000,
            },
            7,
        );
        let pool_len = pool.values.len();
        assert_eq!(pool_len, UNIFORM_POOL_LEN);
        let sizes: Vec<usize> = (0..pool_len as u64).map(|i| pool.get(i).len()).collect();
        assert!(sizes.iter().all(|&s| (100..=1000).contains(&s)));
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!((mean - 550.0).abs() < 40.0, "mean {mean}");
        // Cycled by request number.
        assert_eq!(pool.get(3).len(), pool.get(3 + pool_len as u64).len());
        // The same seed draws the same sizes.
        let again = ValuePool::new(
            SizeDist::Uniform {
                min: 100,
                max: 1000,
            },
            7,
        );
        assert!((0..pool_len as u64).all(|i| again.get(i).len() == sizes[i as usize]));
        let fixed = ValuePool::new(SizeDist::Fixed(100), 1);
        assert_eq!((fixed.values.len(), fixed.get(12345).len()), (1, 100));
    }
}

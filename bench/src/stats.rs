//! Clock and summary statistics.

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process, so a
/// time taken in one can be compared with a time taken in another.
pub fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Order statistics of a sample.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub median: f64,
    pub p25: f64,
    pub p75: f64,
    pub p99: f64,
    pub max: f64,
}

/// The `q` quantile (0..=1) of sorted `v`, nearest rank.
fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

pub fn summary(mut v: Vec<f64>) -> Summary {
    v.sort_by(f64::total_cmp);
    Summary {
        median: quantile(&v, 0.5),
        p25: quantile(&v, 0.25),
        p75: quantile(&v, 0.75),
        p99: quantile(&v, 0.99),
        max: v.last().copied().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_known_sample() {
        let s = summary((1..=101).map(f64::from).collect());
        assert_eq!((s.median, s.p25, s.p75, s.max), (51.0, 26.0, 76.0, 101.0));
        assert_eq!(s.p99, 100.0);
        assert!(summary(Vec::new()).median.is_nan());
    }
}

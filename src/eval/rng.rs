//! A small seeded PRNG whose output is fixed forever.
//!
//! Generated tasks must be byte-identical on every machine and every future
//! build, so the generators use this SplitMix64 rather than a crate whose
//! algorithm may change between versions. Everything here is integer
//! arithmetic: no floating point, so no libm differences between platforms.

/// SplitMix64 (Steele, Lea & Flood, 2014): one `u64` of state, passes
/// BigCrush, and is trivially reproducible.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective mix of 64 bits.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// A uniform integer in `0..n` (Lemire's multiply-and-reject, unbiased).
    ///
    /// # Panics
    /// If `n` is zero.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniform index into a slice of length `n`.
    pub(crate) fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// A uniform integer in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub(crate) fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// Fisher–Yates shuffle.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }

    /// `k` distinct indices from `0..n`, in random order.
    pub(crate) fn sample_indices(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        let k = k.min(n);
        for i in 0..k {
            let j = i + self.index(n - i);
            all.swap(i, j);
        }
        all.truncate(k);
        all
    }
}

/// Sampling from fixed integer weights in `O(log n)` per draw.
#[derive(Debug, Clone)]
pub(crate) struct Weighted {
    cumulative: Vec<u64>,
}

impl Weighted {
    /// # Panics
    /// If `weights` is empty or sums to zero.
    pub(crate) fn new(weights: &[u64]) -> Weighted {
        let mut total = 0u64;
        let cumulative: Vec<u64> = weights
            .iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        assert!(total > 0, "Weighted::new needs a positive total weight");
        Weighted { cumulative }
    }

    pub(crate) fn sample(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().expect("non-empty");
        let x = rng.below(total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// Skewed integer weights for `n` items: a geometric series
/// `SCALE, SCALE·r, SCALE·r², …` with ratio `r = ratio_percent / 100`,
/// assigned to the items in a random order. A low ratio gives a steep skew.
pub(crate) fn skewed_weights(rng: &mut Rng, n: usize, ratio_percent: u64) -> Vec<u64> {
    const SCALE: u64 = 1 << 40;
    let mut w = SCALE;
    let mut series = Vec::with_capacity(n);
    for _ in 0..n {
        series.push(w.max(1));
        w = w / 100 * ratio_percent;
    }
    let order = rng.sample_indices(n, n);
    let mut weights = vec![0; n];
    for (rank, &item) in order.iter().enumerate() {
        weights[item] = series[rank];
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs of the reference SplitMix64 for seed 1234567.
        let mut r = Rng::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
        assert_eq!(r.next_u64(), 9817491932198370423);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(7);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let x = r.below(5) as usize;
            seen[x] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn weighted_respects_zero_weights() {
        let w = Weighted::new(&[0, 3, 0, 1]);
        let mut r = Rng::new(1);
        for _ in 0..500 {
            let i = w.sample(&mut r);
            assert!(i == 1 || i == 3);
        }
    }

    #[test]
    fn skewed_weights_are_a_permuted_geometric_series() {
        let mut r = Rng::new(3);
        let mut w = skewed_weights(&mut r, 6, 50);
        w.sort_unstable_by(|a, b| b.cmp(a));
        for pair in w.windows(2) {
            assert_eq!(pair[1], pair[0] / 100 * 50);
        }
    }
}

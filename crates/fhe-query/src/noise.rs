//! Differential-privacy noise drawn exactly, in integer arithmetic (audit I-3).
//!
//! Inverse-CDF Laplace sampling in floating point leaks through the gaps and rounding of the
//! doubles it can return (Mironov, CCS 2012). Every quantity this crate releases with noise is an
//! integer (a count, a sum of offsets from a column's minimum, a sum of squares or products), so
//! it gets the *discrete* Laplace mechanism instead: `P(x) ∝ exp(−|x|/b)` over the integers,
//! which gives ε-DP for an integer query of L1 sensitivity Δ at `b = Δ/ε`, like the continuous
//! one. The sampler is Canonne, Kamath and Steinke's ("The Discrete Gaussian for Differential
//! Privacy", `NeurIPS` 2020, Algorithms 1 and 2), the one `OpenDP` uses: only uniform integers and
//! comparisons, no floating point on the sampling path. The scale `b` is taken as the rational
//! `t/s` with `s = 2^20`, rounded *up*, so the noise is never smaller than asked for.
//!
//! Written here rather than taken from `OpenDP`: the crate brings a large dependency tree (and
//! its own GMP-backed rationals) for two short functions.

use rand::Rng;

/// Denominator of the rational scale.
const SCALE_DENOMINATOR: u128 = 1 << 20;

/// Noise of the discrete Laplace distribution of scale `b` (> 0), as an `f64` to add to an
/// integer aggregate. A scale that is not a positive finite number adds nothing.
pub fn discrete_laplace(rng: &mut (impl Rng + ?Sized), b: f64) -> f64 {
    if !(b.is_finite() && b > 0.0) {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)] // 2^20 is exact
    let t = (b * SCALE_DENOMINATOR as f64).ceil();
    // A scale past 2^100 (a sensitivity no schema allows) is clamped rather than overflowing.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // ≥ 1, clamped
    let t = t.min(2f64.powi(100)) as u128;
    #[allow(clippy::cast_precision_loss)] // the noise is released as a double anyway
    {
        sample(rng, t.max(1), SCALE_DENOMINATOR) as f64
    }
}

/// A draw of `P(x) ∝ exp(−|x|·s/t)` (CKS Algorithm 2, in the paper's names).
#[allow(clippy::many_single_char_names)]
fn sample(rng: &mut (impl Rng + ?Sized), t: u128, s: u128) -> i128 {
    loop {
        let u = rng.random_range(0..t);
        if !bernoulli_exp_neg(rng, u, t) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp_neg(rng, 1, 1) {
            v += 1;
        }
        let x = u + t * v;
        let y = i128::try_from(x / s).unwrap_or(i128::MAX);
        let negative = rng.random_range(0..2u8) == 1;
        if negative && y == 0 {
            continue;
        }
        return if negative { -y } else { y };
    }
}

/// A Bernoulli trial of probability `exp(−n/d)` (CKS Algorithm 1), for `n/d ≥ 0`.
fn bernoulli_exp_neg(rng: &mut (impl Rng + ?Sized), n: u128, d: u128) -> bool {
    // exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋)).
    for _ in 0..n / d {
        if !bernoulli_exp_neg_fraction(rng, 1, 1) {
            return false;
        }
    }
    bernoulli_exp_neg_fraction(rng, n % d, d)
}

/// `exp(−γ)` for `γ = n/d ∈ [0, 1]`: the parity of the first `K` with `Bernoulli(γ/K)` false.
fn bernoulli_exp_neg_fraction(rng: &mut (impl Rng + ?Sized), n: u128, d: u128) -> bool {
    let mut k: u128 = 1;
    // Bernoulli(n / (d·k)): a uniform integer below d·k that falls below n.
    while rng.random_range(0..d * k) < n {
        k += 1;
    }
    k % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[allow(clippy::cast_precision_loss)] // small counts
    fn frequency(n: u32, mut trial: impl FnMut() -> bool) -> f64 {
        (0..n).filter(|_| trial()).count() as f64 / f64::from(n)
    }

    #[test]
    fn bernoulli_trials_have_probability_exp_minus_gamma() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (n, d) in [(0u128, 1u128), (1, 2), (1, 1), (5, 2), (3, 1)] {
            #[allow(clippy::cast_precision_loss)]
            let want = (-(n as f64) / d as f64).exp();
            let got = frequency(40_000, || bernoulli_exp_neg(&mut rng, n, d));
            assert!((got - want).abs() < 0.01, "exp(-{n}/{d}): {got} vs {want}");
        }
    }

    /// Over the integers, `P(x) = (1 − p)/(1 + p) · p^|x|` with `p = exp(−1/b)`: the draws match
    /// its mass at 0, its mean absolute value `2p/(1 − p²)`, and are symmetric.
    #[test]
    #[allow(clippy::cast_precision_loss)] // small counts
    fn draws_follow_the_discrete_laplace_distribution() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for b in [0.5, 2.0, 7.3] {
            let n = 60_000;
            let draws: Vec<f64> = (0..n).map(|_| discrete_laplace(&mut rng, b)).collect();
            assert!(draws.iter().all(|x| x.fract() == 0.0), "integers");
            let p = (-1.0 / b).exp();
            let zero = draws.iter().filter(|&&x| x == 0.0).count() as f64 / f64::from(n);
            assert!(
                (zero - (1.0 - p) / (1.0 + p)).abs() < 0.01,
                "b = {b}: P(0) = {zero}"
            );
            let mean_abs = draws.iter().map(|x| x.abs()).sum::<f64>() / f64::from(n);
            let want = 2.0 * p / (1.0 - p * p);
            assert!(
                (mean_abs / want - 1.0).abs() < 0.03,
                "b = {b}: E|X| = {mean_abs} vs {want}"
            );
            let mean = draws.iter().sum::<f64>() / f64::from(n);
            assert!(mean.abs() < 0.05 * want.max(1.0), "b = {b}: mean {mean}");
        }
    }

    #[test]
    fn no_scale_adds_no_noise_and_a_huge_one_does_not_overflow() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for b in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(discrete_laplace(&mut rng, b).to_bits() == 0, "{b}");
        }
        assert!(discrete_laplace(&mut rng, 1e40).is_finite());
    }
}

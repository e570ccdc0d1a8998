//! The fused passes over channels-last activations stored in fp32 or bf16 (and computed on in
//! f32), each at the best level this CPU runs (AVX-512 where the channels come in sixteens, AVX2
//! with FMA, else scalar), spread over libtorch's thread team in fixed chunks of rows. Each pass
//! has one body (`vector`), built at each level over that level's vector type (`avx2`,
//! `avx512`), and the plain reference it is tested against (`scalar`).
//!
//! A tensor of N images, H x W positions and C channels is `rows = N*H*W` rows of C values.
//! Sums are taken per chunk of [`CHUNK_ROWS`] rows in f32, then over chunks in order in f64: the
//! result does not depend on how many threads ran, so training stays reproducible.

mod args;
mod avx2;
mod avx512;
mod levels;
mod passes;
mod scalar;
mod vector;

pub use half::bf16;

use super::ffi::parallel_for;
use args::Sums;
use passes::Pass;
use std::sync::OnceLock;
use tch::Kind;

/// How activations are stored: fp32, or bf16 (widened to f32 for arithmetic, rounded to the
/// nearest even when stored, as libtorch rounds).
pub trait Elem: Copy + Send + Sync + 'static {
    /// The tensor kind that holds these values.
    const KIND: Kind;
    fn to_f32(self) -> f32;
    fn from_f32(v: f32) -> Self;
}

impl Elem for f32 {
    const KIND: Kind = Kind::Float;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> f32 {
        v
    }
}

/// What the kernels store activations as, at every vector width.
pub trait Lanes: vector::Stored<avx2::F32x8> + vector::Stored<avx512::F32x16> {}
impl<T: vector::Stored<avx2::F32x8> + vector::Stored<avx512::F32x16>> Lanes for T {}

/// A vector level's entry point: `run(pass, rows, chunk)` builds every pass's body with the
/// level's instructions (`$features`) over its vector type.
macro_rules! level_entry {
    ($features:literal, $vector:ty) => {
        /// Runs `pass` over `rows` (chunk `chunk`) at this level.
        ///
        /// # Safety
        /// The rows are in the pass's tensors; the CPU has this level's instructions.
        #[target_feature(enable = $features)]
        pub unsafe fn run<P: super::passes::Pass>(pass: &P, rows: std::ops::Range<usize>, chunk: usize) {
            unsafe { pass.vector::<$vector>(rows, chunk) }
        }
    };
}
use level_entry;

impl Elem for bf16 {
    const KIND: Kind = Kind::BFloat16;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> bf16 {
        bf16::from_f32(v)
    }
}

/// Rows per chunk of a reduction (and per unit of work of every pass).
pub const CHUNK_ROWS: usize = 64;
/// Chunks a thread takes at least: smaller tensors run on the calling thread.
const GRAIN_CHUNKS: usize = 4;

/// The environment variable that caps oneDNN's instruction set, and ours with it.
pub const ISA_CAP: &str = "ONEDNN_MAX_CPU_ISA";

/// Which instructions the kernels use, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Scalar,
    Avx2,
    /// AVX-512F, for channel counts that are multiples of sixteen (AVX2 for the others).
    Avx512,
}

impl Level {
    /// The fastest level this CPU runs (detected once), under the cap `ONEDNN_MAX_CPU_ISA` puts
    /// on oneDNN's convolutions: one variable makes the whole step compute as a CPU of that
    /// level would (the tests stand in for a Zen 3 on an AVX-512 machine this way).
    pub fn best() -> Level {
        static BEST: OnceLock<Level> = OnceLock::new();
        *BEST.get_or_init(|| {
            let cap = Level::cap(std::env::var(ISA_CAP).ok().as_deref());
            [Level::Avx512, Level::Avx2].into_iter().find(|l| *l <= cap && l.available()).unwrap_or(Level::Scalar)
        })
    }

    /// The highest level a value of `ONEDNN_MAX_CPU_ISA` allows. oneDNN's names, lowest first:
    /// SSE41, AVX, AVX2 (and AVX2_VNNI...), AVX512_CORE (and its VNNI, BF16, FP16, AMX
    /// variants), ALL; unset or unknown allows everything, as it does for oneDNN.
    fn cap(value: Option<&str>) -> Level {
        let value = value.unwrap_or("ALL").trim().to_ascii_uppercase();
        if value.starts_with("AVX2") {
            Level::Avx2
        } else if value == "SSE41" || value == "AVX" {
            Level::Scalar
        } else {
            Level::Avx512
        }
    }

    /// How the level is named where a test or a profile prints it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// The level a pass over rows of `c` channels runs at: AVX-512's kernels take sixteen
    /// channels at a time.
    fn for_channels(self, c: usize) -> Level {
        if self == Level::Avx512 && !c.is_multiple_of(16) { Level::Avx2 } else { self }
    }

    /// Whether this CPU runs the level.
    pub fn available(self) -> bool {
        match self {
            Level::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => Level::Avx2.available() && is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            Level::Avx2 | Level::Avx512 => false,
        }
    }
}

/// What a normalisation adds before its ReLU, as the kernels read it (raw pointers, so that the
/// chunks of a pass can share it across threads).
pub enum RawResidual<E> {
    None,
    /// The identity shortcut: a tensor of the output's shape.
    Same(*const E),
    /// Option B's projection: `a * y + b` per channel, its BatchNorm applied on the fly.
    Affine {
        y: *const E,
        a: *const f32,
        b: *const f32,
    },
    /// Option A: `x` (`hin` x `win` maps of `cin` channels) at every second position, channels
    /// past `cin` zero; the output has `h` x `w` positions.
    Subsample {
        x: *const E,
        cin: usize,
        h: usize,
        w: usize,
        hin: usize,
        win: usize,
    },
}

// Copy whatever `E` is (a derive would ask `E: Copy`): it holds pointers only.
impl<E> Clone for RawResidual<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for RawResidual<E> {}

// SAFETY: the pointers are read only, and the tensors they point into outlive every pass.
unsafe impl<E> Send for RawResidual<E> {}
unsafe impl<E> Sync for RawResidual<E> {}

impl<E> RawResidual<E> {
    /// Where the residual's values for output row `r` (rows of `c` channels) start: option A's
    /// input row at twice the position, else the same row.
    #[inline(always)]
    pub fn row_start(&self, r: usize, c: usize) -> usize {
        match *self {
            RawResidual::Subsample { cin, h, w, hin, win, .. } => {
                let (n, at) = (r / (h * w), r % (h * w));
                ((n * hin + 2 * (at / w)) * win + 2 * (at % w)) * cin
            }
            _ => r * c,
        }
    }
}

/// What a normalisation adds before its ReLU: activations stored as `E`, coefficients in f32.
pub enum Residual<'a, E> {
    None,
    Same(&'a [E]),
    Affine { y: &'a [E], a: &'a [f32], b: &'a [f32] },
    Subsample { x: &'a [E], cin: usize, h: usize, w: usize, hin: usize, win: usize },
}

impl<E> Residual<'_, E> {
    /// The raw form, after checking that the residual covers `rows` rows of `c` channels.
    fn raw(&self, rows: usize, c: usize) -> RawResidual<E> {
        match *self {
            Residual::None => RawResidual::None,
            Residual::Same(x) => {
                assert_eq!(x.len(), rows * c, "residual size");
                RawResidual::Same(x.as_ptr())
            }
            Residual::Affine { y, a, b } => {
                assert!(y.len() == rows * c && a.len() == c && b.len() == c, "projection sizes");
                RawResidual::Affine { y: y.as_ptr(), a: a.as_ptr(), b: b.as_ptr() }
            }
            Residual::Subsample { x, cin, h, w, hin, win } => {
                assert!(
                    cin <= c && 2 * h <= hin + 1 && 2 * w <= win + 1 && rows.is_multiple_of(h * w),
                    "option-A shapes"
                );
                assert_eq!(x.len(), rows / (h * w) * hin * win * cin, "option-A input size");
                RawResidual::Subsample { x: x.as_ptr(), cin, h, w, hin, win }
            }
        }
    }
}

/// Runs `pass` over every chunk of `rows` rows on libtorch's team, at `level` (or below it, where
/// the channels do not fill its vectors).
fn run<P: Pass>(level: Level, pass: &P, rows: usize) {
    let level = level.for_channels(pass.channels());
    let chunks = rows.div_ceil(CHUNK_ROWS);
    parallel_for(chunks, GRAIN_CHUNKS, &|begin, end| {
        for k in begin..end {
            let chunk_rows = k * CHUNK_ROWS..((k + 1) * CHUNK_ROWS).min(rows);
            // SAFETY: the public functions below check the tensors' sizes against `rows` before
            // they build a pass; `Level::best` chose a level this CPU runs.
            unsafe {
                match level {
                    Level::Avx512 => avx512::run(pass, chunk_rows, k),
                    Level::Avx2 => avx2::run(pass, chunk_rows, k),
                    Level::Scalar => pass.scalar(chunk_rows, k),
                }
            }
        }
    });
}

thread_local! {
    /// The per-chunk partial sums of this thread's reductions, kept from call to call.
    static PARTIALS: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs a reduction over `rows` rows of `c` channels: `pass` gets where its chunks write their
/// per-channel partial sums (from this thread's [`PARTIALS`], grown when too short and not
/// cleared: every slot is written by the chunks before it is read), and the two sums come back
/// added over the chunks in chunk order, in f64.
fn reduce<P: Pass>(level: Level, rows: usize, c: usize, pass: impl FnOnce(Sums) -> P) -> (Vec<f64>, Vec<f64>) {
    let len = rows.div_ceil(CHUNK_ROWS) * c;
    PARTIALS.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < 2 * len {
            p.resize(2 * len, 0.0);
        }
        let (s1, s2) = p[..2 * len].split_at_mut(len);
        run(level, &pass(Sums { first: s1.as_mut_ptr(), second: s2.as_mut_ptr() }), rows);
        (sum_chunks(s1, c), sum_chunks(s2, c))
    })
}

/// Adds the per-chunk partial sums (`chunks` rows of `c`) in chunk order, in f64.
fn sum_chunks(partial: &[f64], c: usize) -> Vec<f64> {
    let mut total = vec![0f64; c];
    for part in partial.chunks(c) {
        for (t, p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    total
}

/// A batch's per-channel mean and biased variance, in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
}

/// The per-channel mean and (biased) variance of `y`, `c` channels a row. Sums are of the values
/// less the first row's (so that a large mean does not cancel the variance away).
pub fn moments<E: Lanes>(level: Level, y: &[E], c: usize) -> Moments {
    assert!(c > 0 && !y.is_empty() && y.len().is_multiple_of(c), "moments of {} values in rows of {c}", y.len());
    let rows = y.len() / c;
    let shift: Vec<f32> = y[..c].iter().map(|v| v.to_f32()).collect();
    let (s1, s2) = reduce(level, rows, c, |sums| args::Stats { y: y.as_ptr(), c, shift: shift.as_ptr(), sums });
    let m = rows as f64;
    let mean = shift.iter().zip(&s1).map(|(&s, &t)| f64::from(s) + t / m).collect();
    let var = s1.iter().zip(&s2).map(|(&t, &q)| (q / m - (t / m) * (t / m)).max(0.0)).collect();
    Moments { mean, var }
}

/// A BatchNorm's per-channel scale `a` and shift `b`: `a * y + b` normalises `y`.
pub struct Affine<'a> {
    pub a: &'a [f32],
    pub b: &'a [f32],
}

/// `out = max(a * y + b + residual, 0)` per channel: BatchNorm's normalisation, the shortcut's
/// addition and the ReLU in one pass.
pub fn normalize<E: Lanes>(level: Level, y: &[E], norm: Affine, residual: &Residual<E>, out: &mut [E], c: usize) {
    let Affine { a, b } = norm;
    assert!(a.len() == c && b.len() == c && y.len() == out.len() && y.len().is_multiple_of(c), "normalize sizes");
    let rows = y.len() / c;
    let res = residual.raw(rows, c);
    let pass = args::Normalize { y: y.as_ptr(), a: a.as_ptr(), b: b.as_ptr(), res, out: out.as_mut_ptr(), c };
    run(level, &pass, rows);
}

/// What BatchNorm's backward reads of its forward: the input `y` and its per-channel statistics.
pub struct Normalised<'a, E> {
    pub y: &'a [E],
    pub mean: &'a [f32],
    pub invstd: &'a [f32],
}

/// The first pass of BatchNorm's backward behind a ReLU: `g` becomes `(g + res) * (mask > 0)`
/// (left as it is when both are absent), and the per-channel sums of it and of it times the
/// normalised input `(y - mean) * invstd` are returned (the shift's and the scale's gradients).
pub fn grad_reduce<E: Lanes>(
    level: Level,
    g: &mut [E],
    res: Option<&[E]>,
    mask: Option<&[E]>,
    x: &Normalised<E>,
    c: usize,
) -> (Vec<f64>, Vec<f64>) {
    let n = g.len();
    let Normalised { y, mean, invstd } = *x;
    assert!(y.len() == n && mean.len() == c && invstd.len() == c && n.is_multiple_of(c), "grad_reduce sizes");
    assert!(res.is_none_or(|r| r.len() == n) && mask.is_none_or(|m| m.len() == n), "grad_reduce sizes");
    let null = std::ptr::null();
    let (g, res, mask) = (g.as_mut_ptr(), res.map_or(null, <[E]>::as_ptr), mask.map_or(null, <[E]>::as_ptr));
    reduce(level, n / c, c, |sums| args::GradReduce {
        g,
        res,
        mask,
        y: y.as_ptr(),
        mean: mean.as_ptr(),
        invstd: invstd.as_ptr(),
        c,
        sums,
    })
}

/// Per-channel coefficients of BatchNorm's input gradient (see [`grad_apply`]).
pub struct GradCoefficients<'a> {
    pub mean: &'a [f32],
    pub invstd: &'a [f32],
    /// `gamma * invstd`.
    pub k: &'a [f32],
    /// The mean of `gz`.
    pub mg: &'a [f32],
    /// The mean of `gz` times the normalised input.
    pub mgx: &'a [f32],
}

/// The second pass: `y` (BatchNorm's input) becomes its gradient,
/// `k * (gz - mg - (y - mean) * invstd * mgx)`.
pub fn grad_apply<E: Lanes>(level: Level, gz: &[E], y: &mut [E], co: &GradCoefficients, c: usize) {
    assert!(gz.len() == y.len() && y.len().is_multiple_of(c), "grad_apply sizes");
    for s in [co.mean, co.invstd, co.k, co.mg, co.mgx] {
        assert_eq!(s.len(), c, "grad_apply coefficients");
    }
    let rows = y.len() / c;
    let pass = args::GradApply {
        gz: gz.as_ptr(),
        y: y.as_mut_ptr(),
        mean: co.mean.as_ptr(),
        invstd: co.invstd.as_ptr(),
        k: co.k.as_ptr(),
        mg: co.mg.as_ptr(),
        mgx: co.mgx.as_ptr(),
        c,
    };
    run(level, &pass, rows);
}

#[cfg(test)]
mod tests {
    #[test]
    fn onednns_instruction_set_cap_caps_our_kernels_too() {
        use super::Level;
        for (value, cap) in [
            (None, Level::Avx512),
            (Some("ALL"), Level::Avx512),
            (Some("avx512_core_amx"), Level::Avx512),
            (Some("AVX512_CORE_BF16"), Level::Avx512),
            (Some("AVX2"), Level::Avx2),
            (Some("AVX2_VNNI_2"), Level::Avx2),
            (Some("SSE41"), Level::Scalar),
            (Some("AVX"), Level::Scalar),
        ] {
            assert_eq!(Level::cap(value), cap, "{value:?}");
        }
    }

    use super::*;
    use rand::{Rng, SeedableRng};

    /// Odd sizes: channel counts that leave a tail past the last eight, row counts that leave a
    /// partial chunk; and widths of the networks (multiples of sixteen: AVX-512's kernels).
    const SHAPES: [(usize, usize); 6] = [(131, 13), (64, 8), (200, 24), (7, 3), (150, 16), (70, 32)];

    fn levels() -> Vec<Level> {
        [Level::Scalar, Level::Avx2, Level::Avx512].into_iter().filter(|l| l.available()).collect()
    }

    /// Random values as stored (`E`), so that the float64 reference starts from the same numbers.
    fn random<E: Elem>(n: usize, seed: u64, offset: f32) -> Vec<E> {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        (0..n).map(|_| E::from_f32(rng.random_range(-1.0f32..1.0) + offset)).collect()
    }

    fn wide<E: Elem>(v: &[E]) -> Vec<f64> {
        v.iter().map(|x| f64::from(x.to_f32())).collect()
    }

    /// `v` rounded as the kernels store it.
    fn as_stored<E: Elem>(v: f64) -> f64 {
        f64::from(E::from_f32(v as f32).to_f32())
    }

    /// How far a value the kernels compute and store as `E` may be from float64, relative to the
    /// largest: f32's arithmetic, or bf16's rounding (2^-9 relative) after it.
    fn stored_tolerance<E: Elem>() -> f64 {
        if E::KIND == Kind::BFloat16 { 8e-3 } else { 1e-5 }
    }

    fn close<E: Elem>(got: &[E], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let g = g.to_f32();
            assert!((f64::from(g) - w).abs() <= tol * scale, "{what}[{i}]: {g} against {w}");
        }
    }

    fn moments_match_float64<E: Lanes>() {
        for (rows, c) in SHAPES {
            // A mean far from zero: the shifted sums must keep the variance.
            let y = random::<E>(rows * c, 1, 3.0);
            let yw = wide(&y);
            let mut mean = vec![0f64; c];
            let mut var = vec![0f64; c];
            for (i, v) in yw.iter().enumerate() {
                mean[i % c] += v / rows as f64;
            }
            for (i, v) in yw.iter().enumerate() {
                var[i % c] += (v - mean[i % c]).powi(2) / rows as f64;
            }
            for level in levels() {
                let m = moments(level, &y, c);
                for ch in 0..c {
                    let what = format!("{:?} {level:?} {rows}x{c}", E::KIND);
                    assert!((m.mean[ch] - mean[ch]).abs() < 1e-6, "{what} mean[{ch}]");
                    assert!((m.var[ch] - var[ch]).abs() < 1e-6 * var[ch].max(1e-3), "{what} var[{ch}]");
                }
            }
        }
    }

    #[test]
    fn moments_match_a_two_pass_float64_reference_at_every_level_in_fp32_and_bf16() {
        moments_match_float64::<f32>();
        moments_match_float64::<bf16>();
    }

    /// `max(a * y + b + residual, 0)` in f64, element by element.
    fn normalize_reference<E: Lanes>(y: &[E], a: &[f32], b: &[f32], residual: &Residual<E>, c: usize) -> Vec<f64> {
        let res = residual.raw(y.len() / c, c);
        (0..y.len())
            .map(|i| {
                let (r, ch) = (i / c, i % c);
                // SAFETY: the residual was checked against these sizes.
                let extra = unsafe { scalar::residual(res, c, r, ch) };
                let v = f64::from(a[ch]) * f64::from(y[i].to_f32()) + f64::from(b[ch]) + f64::from(extra);
                v.max(0.0)
            })
            .collect()
    }

    fn normalize_matches_float64<E: Lanes>() {
        for (rows, c) in SHAPES {
            let y = random::<E>(rows * c, 2, 0.0);
            let (a, b) = (random::<f32>(c, 3, 1.0), random::<f32>(c, 4, 0.0));
            let same = random::<E>(rows * c, 5, 0.0);
            let (pa, pb) = (random::<f32>(c, 6, 0.5), random::<f32>(c, 7, 0.0));
            // Option A: `rows` output rows as images of 1 x `rows` positions, from 2 x (2*rows+1) maps.
            let cin = c.div_ceil(2);
            let x = random::<E>(2 * (2 * rows + 1) * cin, 8, 0.0);
            let residuals = [
                Residual::None,
                Residual::Same(&same),
                Residual::Affine { y: &same, a: &pa, b: &pb },
                Residual::Subsample { x: &x, cin, h: 1, w: rows, hin: 2, win: 2 * rows + 1 },
            ];
            for residual in &residuals {
                let want = normalize_reference(&y, &a, &b, residual, c);
                for level in levels() {
                    let mut out = vec![E::from_f32(f32::NAN); y.len()];
                    normalize(level, &y, Affine { a: &a, b: &b }, residual, &mut out, c);
                    let what = format!("{:?} {level:?} {rows}x{c} normalize", E::KIND);
                    close(&out, &want, stored_tolerance::<E>(), &what);
                }
            }
        }
    }

    #[test]
    fn normalize_adds_each_kind_of_shortcut_and_rectifies_at_every_level_in_fp32_and_bf16() {
        normalize_matches_float64::<f32>();
        normalize_matches_float64::<bf16>();
    }

    fn backward_matches_float64<E: Lanes>() {
        // Sums over rows of values stored as bf16 agree to f32's precision when both sides sum
        // the same stored values; a rare rounding tie decided otherwise moves them a little more.
        let sum_tolerance = if E::KIND == Kind::BFloat16 { 1e-4 } else { 1e-5 };
        for (rows, c) in SHAPES {
            let y = random::<E>(rows * c, 9, 0.5);
            let g0 = random::<E>(rows * c, 10, 0.0);
            let res = random::<E>(rows * c, 11, 0.0);
            let mask = random::<E>(rows * c, 12, 0.0);
            let (mean, invstd) = (random::<f32>(c, 13, 0.5), random::<f32>(c, 14, 2.0));
            for (with_res, with_mask) in [(false, false), (true, false), (false, true), (true, true)] {
                // Reference in f64, `gz` rounded as stored.
                let gz: Vec<f64> = (0..y.len())
                    .map(|i| {
                        let g = f64::from(g0[i].to_f32()) + if with_res { f64::from(res[i].to_f32()) } else { 0.0 };
                        if with_mask && mask[i].to_f32() <= 0.0 { 0.0 } else { as_stored::<E>(g) }
                    })
                    .collect();
                let xhat = |i: usize| (f64::from(y[i].to_f32()) - f64::from(mean[i % c])) * f64::from(invstd[i % c]);
                let (mut sg, mut sgx) = (vec![0f64; c], vec![0f64; c]);
                for i in 0..y.len() {
                    sg[i % c] += gz[i];
                    sgx[i % c] += gz[i] * xhat(i);
                }
                for level in levels() {
                    let what = format!("{:?} {level:?} {rows}x{c} res {with_res} mask {with_mask}", E::KIND);
                    let mut g = g0.clone();
                    let (r, m) = (with_res.then_some(res.as_slice()), with_mask.then_some(mask.as_slice()));
                    let x = Normalised { y: &y, mean: &mean, invstd: &invstd };
                    let (got_sg, got_sgx) = grad_reduce(level, &mut g, r, m, &x, c);
                    close(&g, &gz, 1e-6, &format!("{what}: gz"));
                    close(&f32s(&got_sg), &sg, sum_tolerance, &format!("{what}: sum of gz"));
                    close(&f32s(&got_sgx), &sgx, sum_tolerance, &format!("{what}: sum of gz * xhat"));
                    let (k, mg, mgx) = (random::<f32>(c, 15, 1.0), f32s(&sg), f32s(&sgx));
                    let want: Vec<f64> = (0..y.len())
                        .map(|i| {
                            let ch = i % c;
                            f64::from(k[ch]) * (gz[i] - f64::from(mg[ch]) - xhat(i) * f64::from(mgx[ch]))
                        })
                        .collect();
                    let mut dy = y.clone();
                    let co = GradCoefficients { mean: &mean, invstd: &invstd, k: &k, mg: &mg, mgx: &mgx };
                    grad_apply(level, &g, &mut dy, &co, c);
                    close(&dy, &want, stored_tolerance::<E>(), &format!("{what}: input gradient"));
                }
            }
        }
    }

    #[test]
    fn the_backward_passes_match_the_float64_formula_at_every_level_in_fp32_and_bf16() {
        backward_matches_float64::<f32>();
        backward_matches_float64::<bf16>();
    }

    fn f32s(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&x| x as f32).collect()
    }

    #[test]
    fn every_level_sums_in_the_same_chunks_whatever_the_threads() {
        // The sums are per chunk of rows, then over chunks in order: the same with 1 or 2 threads.
        let (rows, c) = (CHUNK_ROWS * 9 + 5, 16);
        let y = random::<f32>(rows * c, 16, 1.0);
        let yb = random::<bf16>(rows * c, 16, 1.0);
        let _threads = crate::fused::thread_count_lock();
        for level in levels() {
            tch::set_num_threads(1);
            let (one, one_bf16) = (moments(level, &y, c), moments(level, &yb, c));
            tch::set_num_threads(2);
            assert_eq!(moments(level, &y, c), one, "{level:?}");
            assert_eq!(moments(level, &yb, c), one_bf16, "{level:?} bf16");
        }
    }

    /// Bit patterns where rounding to bf16 is decided: ties to even both ways, just above a tie,
    /// the largest finite f32 (rounds to infinity), infinities, NaNs (one that truncation would
    /// turn into an infinity), zeros and subnormals.
    const EDGES: [u32; 16] = [
        0x3f80_8000,
        0x3f81_8000,
        0x3f80_8001,
        0xbf81_8000,
        0x7f7f_ffff,
        0x7f80_0000,
        0xff80_0000,
        0x7f80_0001,
        0x7fc0_0001,
        0xffff_ffff,
        0x0000_0000,
        0x8000_0000,
        0x0000_8000,
        0x0001_7fff,
        0x4049_0fdb,
        0xc2f6_e979,
    ];

    fn same_bf16(got: bf16, want: bf16, what: &str) {
        if want.is_nan() {
            assert!(got.is_nan(), "{what}: {got:?} is not a NaN");
        } else {
            assert_eq!(got.to_bits(), want.to_bits(), "{what}");
        }
    }

    /// `values` (one vector's worth) stored as bf16 at vector level `V`, and what the store
    /// returned as the values stored. The caller checks that the CPU runs `V`'s level.
    fn store_and_reread<V: vector::Vector>(values: &[f32]) -> (Vec<bf16>, Vec<f32>)
    where
        f32: vector::Stored<V>,
        bf16: vector::Stored<V>,
    {
        use vector::Stored;
        assert_eq!(values.len(), V::LANES);
        let (mut out, mut back) = (vec![bf16::ZERO; V::LANES], vec![0f32; V::LANES]);
        // SAFETY: one vector's worth each way; the caller checked the level.
        unsafe {
            let v = <f32 as Stored<V>>::load_lanes(values.as_ptr());
            let kept = <bf16 as Stored<V>>::store_lanes(out.as_mut_ptr(), v);
            <f32 as Stored<V>>::store_lanes(back.as_mut_ptr(), kept);
        }
        (out, back)
    }

    #[test]
    fn bf16_stores_round_to_the_nearest_even_as_half_does_at_every_width() {
        let mut values: Vec<f32> = EDGES.iter().map(|&b| f32::from_bits(b)).collect();
        values.extend(random::<f32>(48, 17, 0.0).iter().map(|v| v * 1e3));
        for chunk in values.chunks(16) {
            let want: Vec<bf16> = chunk.iter().map(|&v| bf16::from_f32(v)).collect();
            let what = |w: &str, i: usize| format!("{w}: {:#010x}", chunk[i].to_bits());
            if Level::Avx2.available() {
                for (half_chunk, offset) in chunk.chunks(8).zip([0, 8]) {
                    let (out, reread) = store_and_reread::<avx2::F32x8>(half_chunk);
                    for i in 0..8 {
                        same_bf16(out[i], want[offset + i], &what("AVX2", offset + i));
                        same_bf16(bf16::from_f32(reread[i]), want[offset + i], &what("AVX2 as stored", offset + i));
                    }
                }
            }
            if Level::Avx512.available() {
                let (out, reread) = store_and_reread::<avx512::F32x16>(chunk);
                for i in 0..16 {
                    same_bf16(out[i], want[i], &what("AVX-512", i));
                    same_bf16(bf16::from_f32(reread[i]), want[i], &what("AVX-512 as stored", i));
                }
            }
            for (i, &v) in chunk.iter().enumerate() {
                same_bf16(<bf16 as Elem>::from_f32(v), want[i], &what("scalar", i));
            }
        }
    }
}

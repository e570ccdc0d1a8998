//! Bounded curves of a run's values, the one downsampler every picture of a run uses (the
//! dashboard's charts, `plot` and `plot --figure`): when full, neighbouring points are merged in
//! pairs so a run of any length keeps at most `capacity` points at a uniform resolution (as a
//! time-series view like bottom's does), each point keeping the lowest and highest raw sample it
//! stands for, so a one-batch spike survives any merging; and smoothing that stays correct on
//! merged points.

use crate::protocol::StepRecord;

/// One point: the three x coordinates the dashboard can show, the value, and how many raw
/// samples it stands for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub iter: f64,
    pub epoch: f64,
    /// Training seconds since the run started, pauses excluded.
    pub secs: f64,
    pub y: f64,
    /// The lowest and highest raw sample merged into the point: spikes stay visible however
    /// much a long run's curve has been merged.
    pub lo: f64,
    pub hi: f64,
    pub n: u32,
}

/// How merged points combine their values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// The mean: for noisy per-step values (loss, batch error).
    Mean,
    /// The newest value: for step functions (the learning rate), so steps stay sharp.
    Last,
}

/// A series that never holds more than `capacity` points (plus one being filled).
#[derive(Clone, Debug)]
pub struct Series {
    points: Vec<Point>,
    /// Raw samples folded into each stored point; doubles at every halving.
    stride: u32,
    /// The point being filled until it holds `stride` samples.
    pending: Option<Point>,
    capacity: usize,
    merge: Merge,
}

impl Series {
    pub fn new(capacity: usize, merge: Merge) -> Series {
        Series { points: Vec::new(), stride: 1, pending: None, capacity: capacity.max(2), merge }
    }

    /// One value of each step, merged by their mean into at most `capacity` points: a recorded
    /// run's training curve, as a picture of it draws it.
    pub fn of_steps(steps: &[StepRecord], capacity: usize, value: fn(&StepRecord) -> f64) -> Series {
        let mut series = Series::new(capacity, Merge::Mean);
        for s in steps {
            series.push(s.iter as f64, s.epoch, s.elapsed, value(s));
        }
        series
    }

    pub fn push(&mut self, iter: f64, epoch: f64, secs: f64, y: f64) {
        if !y.is_finite() {
            return;
        }
        let p = Point { iter, epoch, secs, y, lo: y, hi: y, n: 1 };
        let filled = match self.pending.take() {
            None => p,
            Some(acc) => combine(acc, p, self.merge),
        };
        if filled.n >= self.stride {
            self.points.push(filled);
            if self.points.len() >= self.capacity {
                self.halve();
            }
        } else {
            self.pending = Some(filled);
        }
    }

    /// Merges neighbouring points in pairs and doubles the stride.
    fn halve(&mut self) {
        let merged: Vec<Point> =
            self.points.chunks(2).map(|c| if c.len() == 2 { combine(c[0], c[1], self.merge) } else { c[0] }).collect();
        self.points = merged;
        self.stride = self.stride.saturating_mul(2);
    }

    /// Stored points followed by the one being filled, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Point> {
        self.points.iter().chain(self.pending.iter())
    }

    pub fn last(&self) -> Option<&Point> {
        self.pending.as_ref().or(self.points.last())
    }

    pub fn len(&self) -> usize {
        self.points.len() + usize::from(self.pending.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops everything after iteration `iter`: a run resumed from an earlier checkpoint
    /// trains those iterations again.
    pub fn truncate_after(&mut self, iter: f64) {
        self.points.retain(|p| p.iter <= iter);
        if self.pending.is_some_and(|p| p.iter > iter) {
            self.pending = None;
        }
    }
}

fn combine(a: Point, b: Point, merge: Merge) -> Point {
    let n = a.n + b.n;
    let (wa, wb) = (a.n as f64 / n as f64, b.n as f64 / n as f64);
    let mean = |x: f64, y: f64| x * wa + y * wb;
    let y = match merge {
        Merge::Mean => mean(a.y, b.y),
        Merge::Last => b.y,
    };
    Point {
        iter: mean(a.iter, b.iter),
        epoch: mean(a.epoch, b.epoch),
        secs: mean(a.secs, b.secs),
        y,
        lo: a.lo.min(b.lo),
        hi: a.hi.max(b.hi),
        n,
    }
}

/// Debiased exponential moving average, as TensorBoard smooths scalars. `weight` applies per raw
/// sample: a point that stands for `n` samples is weighted `weight^n`, so the curve looks the
/// same whether or not old points have been merged. Returns one value per point.
pub fn smooth<'a>(points: impl Iterator<Item = &'a Point>, weight: f64) -> Vec<f64> {
    let weight = weight.clamp(0.0, 0.999_999);
    let mut last = 0.0;
    let mut kept = 1.0; // product of the weights so far: the bias still to correct
    points
        .map(|p| {
            if weight == 0.0 {
                return p.y;
            }
            let w = weight.powi(p.n as i32);
            last = last * w + (1.0 - w) * p.y;
            kept *= w;
            let debias = 1.0 - kept;
            if debias > 0.0 { last / debias } else { p.y }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_run_stays_within_capacity_and_covers_every_iteration() {
        let mut s = Series::new(1024, Merge::Mean);
        for i in 1..=64_000u64 {
            s.push(i as f64, i as f64 / 391.0, i as f64 * 0.1, 2.0);
        }
        assert!(s.len() <= 1025, "{}", s.len());
        assert!(s.len() >= 512, "{}", s.len());
        let total: u32 = s.iter().map(|p| p.n).sum();
        assert_eq!(total, 64_000);
        let first = s.iter().next().unwrap();
        assert!(first.iter < 100.0, "the start of the run is still shown: {first:?}");
        assert!(s.last().unwrap().iter > 63_900.0);
    }

    #[test]
    fn merged_means_keep_the_average() {
        let mut s = Series::new(4, Merge::Mean);
        for i in 0..16 {
            s.push(i as f64, 0.0, 0.0, i as f64);
        }
        let sum: f64 = s.iter().map(|p| p.y * p.n as f64).sum();
        assert!((sum - 120.0).abs() < 1e-9);
    }

    #[test]
    fn last_merge_keeps_learning_rate_steps_sharp() {
        let mut s = Series::new(4, Merge::Last);
        for i in 0..8 {
            s.push(i as f64, 0.0, 0.0, if i < 4 { 0.1 } else { 0.01 });
        }
        let ys: Vec<f64> = s.iter().map(|p| p.y).collect();
        assert!(ys.iter().all(|&y| y == 0.1 || y == 0.01), "{ys:?}");
    }

    #[test]
    fn smoothing_is_debiased_and_independent_of_merging() {
        let raw: Vec<Point> =
            (0..64).map(|i| Point { iter: i as f64, epoch: 0.0, secs: 0.0, y: 5.0, lo: 5.0, hi: 5.0, n: 1 }).collect();
        // A constant stays constant from the first point: the bias towards 0 is corrected.
        assert!(smooth(raw.iter(), 0.9).iter().all(|v| (v - 5.0).abs() < 1e-9));
        let ramp: Vec<Point> = (0..64)
            .map(|i| Point { iter: i as f64, epoch: 0.0, secs: 0.0, y: i as f64, lo: i as f64, hi: i as f64, n: 1 })
            .collect();
        let fine = smooth(ramp.iter(), 0.9);
        let mut merged = Series::new(1000, Merge::Mean);
        merged.stride = 2;
        for p in &ramp {
            merged.push(p.iter, 0.0, 0.0, p.y);
        }
        let coarse = smooth(merged.iter(), 0.9);
        // The smoothed end of the ramp agrees within the width of one merged point.
        assert!((fine[63] - coarse[coarse.len() - 1]).abs() < 1.5, "{} vs {}", fine[63], coarse[coarse.len() - 1]);
        assert_eq!(smooth(ramp.iter(), 0.0)[10], 10.0);
    }

    #[test]
    fn truncation_drops_iterations_trained_again() {
        let mut s = Series::new(100, Merge::Mean);
        for i in 1..=10 {
            s.push(i as f64, 0.0, 0.0, 1.0);
        }
        s.truncate_after(6.0);
        assert_eq!(s.last().unwrap().iter, 6.0);
        assert!(!s.is_empty());
    }

    #[test]
    fn a_spike_survives_any_merging_as_its_points_extreme() {
        let mut s = Series::new(16, Merge::Mean);
        for i in 0..10_000 {
            let y = if i == 4321 {
                50.0
            } else if i == 777 {
                -3.0
            } else {
                1.0
            };
            s.push(i as f64, 0.0, 0.0, y);
        }
        assert!(s.len() <= 17);
        let hi = s.iter().map(|p| p.hi).fold(f64::MIN, f64::max);
        let lo = s.iter().map(|p| p.lo).fold(f64::MAX, f64::min);
        assert_eq!((lo, hi), (-3.0, 50.0));
        // The means hide it; the extremes are kept by the point that holds it only.
        assert!(s.iter().all(|p| p.y < 2.0));
        assert_eq!(s.iter().filter(|p| p.hi == 50.0).count(), 1);
    }
}

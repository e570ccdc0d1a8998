//! A run's history folded from its events, the one fold every front end and report uses: what
//! it is (the latest `run_started`), where it stands (starting, running, paused, diverged,
//! finished, failed), its steps and evaluations once resumes have replaced what was recorded
//! after the checkpoint they resumed from, its best and final error, and how it ended.

use crate::protocol::{
    CheckpointReason, ConfigChange, EndReason, EvalRecord, Event, HealthRecord, Precision, RunInfo, StepRecord, Summary,
};
use std::path::PathBuf;

/// A step or an evaluation, as [`History::records`] interleaves them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Record<'a> {
    Step(&'a StepRecord),
    Eval(&'a EvalRecord),
}

/// A stretch of a run trained from one start: from its iteration until the next start's (or the
/// run's newest), in one precision, by one build on one CPU (the last two unknown in logs
/// before schema 1.6).
#[derive(Clone, Debug, PartialEq)]
pub struct Stretch {
    pub from: u64,
    pub precision: Precision,
    pub build: Option<String>,
    pub cpu: Option<String>,
}

/// Where a run stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RunState {
    /// Known, but no step yet (loading data, first step).
    #[default]
    Starting,
    Running,
    Paused,
    Diverged {
        iter: u64,
        loss: f64,
        last_good: Option<PathBuf>,
    },
    Finished(EndReason),
    /// A fatal error ended it.
    Failed,
}

/// The run as its events tell it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// What the latest `run_started` said (a resume may change the config, e.g. a lower rate).
    pub info: Option<RunInfo>,
    /// How many times the run started: 1, plus one per resume.
    pub starts: usize,
    /// The iteration each resume went on from, in log order (one from an older checkpoint than
    /// an earlier resume's drops that one: the stretch after it was trained again).
    pub resumed_at: Vec<u64>,
    /// Each start that still counts, in iteration order: what trained each stretch of the run.
    pub stretches: Vec<Stretch>,
    pub state: RunState,
    /// Every step in log order, superseded ones removed; kept only when asked for (reports),
    /// since a front end watching many runs needs only the newest.
    pub steps: Vec<StepRecord>,
    pub last_step: Option<StepRecord>,
    /// Evaluations in log order, superseded ones removed (a few hundred in a whole run).
    pub evals: Vec<EvalRecord>,
    /// The newest periodic, requested or final checkpoint and its iteration.
    pub last_checkpoint: Option<(PathBuf, u64)>,
    /// Seconds the newest checkpoint write took.
    pub checkpoint_secs: Option<f64>,
    /// The latest start's `finished` summary; `None` for a run killed or still running.
    pub finished: Option<Summary>,
    /// The iteration where the warm-up's lower learning rate ended.
    pub warmup_ended: Option<u64>,
    /// Changes of the recipe made on purpose, with the iteration they took effect at.
    pub changes: Vec<(u64, ConfigChange)>,
    /// The newest optimizer health figures.
    pub last_health: Option<HealthRecord>,
    /// The newest steps' (iteration, training error), at most one epoch of them, for
    /// [`History::last_epoch_train_error`].
    recent_errors: std::collections::VecDeque<(u64, f64)>,
    keep_steps: bool,
}

impl History {
    /// A history that keeps only the newest step (front ends).
    pub fn new() -> History {
        History::default()
    }

    /// A history that keeps every step (reports, export, plots).
    pub fn with_steps() -> History {
        History { keep_steps: true, ..History::default() }
    }

    /// Every step kept, from a whole log.
    pub fn from_events(events: &[Event]) -> History {
        let mut h = History::with_steps();
        for event in events {
            h.push(event);
        }
        h
    }

    /// Takes in one event, in log order.
    pub fn push(&mut self, event: &Event) {
        match event {
            Event::RunStarted { run, .. } => {
                // A resume from iteration k replays everything after k: the old record of it
                // belongs to a future that did not happen.
                let k = run.start_iter;
                self.steps.retain(|s| s.iter <= k);
                self.evals.retain(|e| e.iter <= k);
                self.recent_errors.retain(|&(iter, _)| iter <= k);
                if self.last_step.is_some_and(|s| s.iter > k) {
                    self.last_step = self.steps.last().copied();
                }
                self.finished = None;
                self.warmup_ended = self.warmup_ended.filter(|&w| w <= k);
                // A change takes effect as a start from k: starting from k again supersedes it.
                self.changes.retain(|(at, _)| *at < k);
                self.state = RunState::Starting;
                self.resumed_at.retain(|&at| at <= k);
                if self.starts > 0 {
                    self.resumed_at.push(k);
                }
                self.starts += 1;
                self.stretches.retain(|s| s.from < k);
                self.stretches.push(Stretch {
                    from: k,
                    precision: run.config.precision,
                    build: run.build.clone(),
                    cpu: run.cpu.clone(),
                });
                self.info = Some((**run).clone());
            }
            Event::Step(step) => {
                if self.keep_steps {
                    self.steps.push(*step);
                }
                let epoch =
                    self.info.as_ref().map(|i| crate::config::iters_per_epoch(i.train_images, i.config.batch_size));
                self.recent_errors.push_back((step.iter, step.error));
                while self.recent_errors.len() as u64 > epoch.unwrap_or(1).max(1) {
                    self.recent_errors.pop_front();
                }
                self.last_step = Some(*step);
                if self.state == RunState::Starting {
                    self.state = RunState::Running;
                }
            }
            Event::Eval(eval) => self.evals.push(eval.clone()),
            Event::Checkpoint { iter, path, reason, secs, .. } => {
                if *reason != CheckpointReason::Best {
                    self.last_checkpoint = Some((path.clone(), *iter));
                }
                self.checkpoint_secs = Some(*secs);
            }
            Event::WarmupEnded { iter, .. } => self.warmup_ended = Some(*iter),
            Event::ConfigChanged { iter, changes, .. } => {
                self.changes.extend(changes.iter().map(|c| (*iter, c.clone())))
            }
            Event::Paused { .. } => self.state = RunState::Paused,
            Event::Resumed { .. } => self.state = RunState::Running,
            Event::Diverged { iter, loss, last_good, .. } => {
                self.state = RunState::Diverged { iter: *iter, loss: *loss, last_good: last_good.clone() }
            }
            Event::Finished { summary, .. } => {
                if !matches!(self.state, RunState::Diverged { .. }) {
                    self.state = RunState::Finished(summary.reason);
                }
                self.finished = Some(summary.clone());
            }
            Event::Error { fatal: true, .. } => self.state = RunState::Failed,
            Event::Health(h) => self.last_health = Some(h.clone()),
            Event::Error { .. } | Event::Status { .. } | Event::CommandReceived { .. } => {}
        }
    }

    /// Still training (or about to): pause, checkpoint and depth switch make sense.
    pub fn is_active(&self) -> bool {
        matches!(self.state, RunState::Starting | RunState::Running | RunState::Paused)
    }

    /// The last iteration the run reached.
    pub fn iters(&self) -> u64 {
        let recorded = self.last_step.map(|s| s.iter).into_iter().chain(self.evals.iter().map(|e| e.iter)).max();
        let started = self.info.as_ref().map(|i| i.start_iter);
        let finished = self.finished.as_ref().map(|f| f.iters);
        recorded.into_iter().chain(started).chain(finished).max().unwrap_or(0)
    }

    /// Iterations trained in each precision, the one trained most first; one entry for a run
    /// that never changed precision (a resume on a CPU where `auto` chose the other does).
    pub fn precision_shares(&self) -> Vec<(Precision, u64)> {
        let mut shares: Vec<(Precision, u64)> = Vec::new();
        for (stretch, iters) in self.stretch_iters() {
            match shares.iter_mut().find(|(p, _)| *p == stretch.precision) {
                Some((_, n)) => *n += iters,
                None => shares.push((stretch.precision, iters)),
            }
        }
        shares.retain(|&(_, n)| n > 0 || self.stretches.len() == 1);
        shares.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        shares
    }

    /// Each stretch with the iterations it trained: up to the next start's, or the run's newest.
    pub fn stretch_iters(&self) -> impl Iterator<Item = (&Stretch, u64)> {
        let end = self.iters();
        self.stretches.iter().enumerate().map(move |(i, stretch)| {
            let until = self.stretches.get(i + 1).map_or(end, |next| next.from);
            (stretch, until.saturating_sub(stretch.from))
        })
    }

    /// The median training speed, in images a second, of the kept steps after `from` up to
    /// `until` (a stretch's: [`History::stretch_iters`]); `None` without such a step, or in a
    /// history that keeps no steps. The median, because a step logs the rate of its trainer's last
    /// 20 steps, and a process stopped for a while (SIGSTOP, as a benchmark beside the run does)
    /// makes one step last minutes and 20 rates tiny: a mean would count the stop as training.
    pub fn median_images_per_sec(&self, from: u64, until: u64) -> Option<f64> {
        let mut rates: Vec<f64> = self
            .steps
            .iter()
            .filter(|s| s.iter > from && s.iter <= until && s.images_per_sec.is_finite() && s.images_per_sec > 0.0)
            .map(|s| s.images_per_sec)
            .collect();
        crate::stats::median(&mut rates)
    }

    /// The newest step's speed (its trainer's last 20 steps), while the run trains: what the ETA
    /// counts with. `None` once it stopped, or before its first step.
    pub fn current_images_per_sec(&self) -> Option<f64> {
        let step = self.last_step.filter(|_| matches!(self.state, RunState::Running | RunState::Paused))?;
        (step.images_per_sec.is_finite() && step.images_per_sec > 0.0).then_some(step.images_per_sec)
    }

    /// Training seconds (pauses excluded): the summary's, else the newest record's.
    pub fn train_secs(&self) -> Option<f64> {
        if let Some(f) = &self.finished {
            return Some(f.train_secs);
        }
        let steps = self.last_step.map(|s| s.elapsed);
        let evals = self.evals.iter().map(|e| e.elapsed);
        steps.into_iter().chain(evals).filter(|s| s.is_finite()).reduce(f64::max)
    }

    /// Seconds until the run ends at the current pace: the steps left at the newest measured
    /// step rate, plus the evaluations and checkpoints left at the newest one's measured duration
    /// (they stop the training: a whole test pass an epoch is several percent of a run on a CPU).
    /// `None` before the first step, or once the run is not running.
    pub fn eta_secs(&self) -> Option<f64> {
        let (info, step) = (self.info.as_ref()?, self.last_step?);
        if !matches!(self.state, RunState::Running | RunState::Paused) || step.images_per_sec <= 0.0 {
            return None;
        }
        let c = &info.config;
        let left = c.iters.saturating_sub(step.iter);
        let steps = left as f64 * c.batch_size as f64 / step.images_per_sec;
        // One every `eval_every` iterations, and one at the end if the last iteration is not such.
        let every = c.eval_every.max(1);
        let evals_left = c.iters / every - step.iter / every + u64::from(!c.iters.is_multiple_of(every) && left > 0);
        let eval_secs = self
            .last_eval()
            .filter(|e| e.images_per_sec > 0.0)
            .map(|e| info.eval_images as f64 / e.images_per_sec)
            .unwrap_or(0.0);
        // Periodic checkpoints before the end, and the final one.
        let every = c.checkpoint_every.max(1);
        let saves_left = (c.iters.saturating_sub(1) / every).saturating_sub(step.iter / every) + 1;
        let save_secs = self.checkpoint_secs.unwrap_or(0.0);
        Some(steps + evals_left as f64 * eval_secs + saves_left as f64 * save_secs)
    }

    /// The best error and its iteration: the lowest evaluation (the earliest on a tie), or the
    /// run's own figure where that is lower: a resumed run says its best before the resume when
    /// it starts, and its best overall when it finishes (this history may have begun after
    /// evaluations it never saw).
    pub fn best(&self) -> Option<(f64, u64)> {
        let before = self.info.as_ref().and_then(|i| i.best_before);
        let seen = self.best_eval().map(|e| (e.error, e.iter));
        let said = self.finished.as_ref().and_then(|f| f.best_error.zip(f.best_iter));
        [before, seen, said].into_iter().flatten().reduce(|a, b| if b.0 < a.0 { b } else { a })
    }

    /// The lowest evaluation error (the earliest on a tie). Evaluations are on the validation
    /// split when the run holds one out, so "best" is then chosen without the test set.
    pub fn best_eval(&self) -> Option<&EvalRecord> {
        self.evals.iter().filter(|e| e.error.is_finite()).reduce(|best, e| if e.error < best.error { e } else { best })
    }

    /// The kept steps and the evaluations in log order: by iteration, an evaluation after the
    /// step it was made after.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        let (mut steps, mut evals) = (self.steps.iter().peekable(), self.evals.iter().peekable());
        std::iter::from_fn(move || match (steps.peek(), evals.peek()) {
            (Some(s), Some(e)) if s.iter <= e.iter => steps.next().map(Record::Step),
            (Some(_), None) => steps.next().map(Record::Step),
            (_, Some(_)) => evals.next().map(Record::Eval),
            (None, None) => None,
        })
    }

    /// The mean training-batch error (augmented batches, as the step measured them) over the
    /// run's last epoch of steps, or over all its steps when it has fewer: the training error
    /// of the paper's Figures 1 and 6 at the run's end.
    pub fn last_epoch_train_error(&self) -> Option<f64> {
        let n = self.recent_errors.len();
        (n > 0).then(|| self.recent_errors.iter().map(|e| e.1).sum::<f64>() / n as f64)
    }

    pub fn last_eval(&self) -> Option<&EvalRecord> {
        self.evals.last()
    }

    /// How the run ended, as far as the events tell.
    pub fn end(&self) -> Option<EndReason> {
        match (&self.finished, &self.state) {
            (Some(f), _) => Some(f.reason),
            (None, RunState::Diverged { .. }) => Some(EndReason::Diverged),
            (None, _) => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::*;
    use std::path::PathBuf;

    pub fn info(depth: u32, start_iter: u64) -> RunInfo {
        let mut config = crate::config::paper(Depth::new(depth).unwrap(), PathBuf::from("data"));
        config.iters = 100;
        RunInfo {
            name: format!("run-resnet{depth}"),
            dir: PathBuf::from("runs"),
            config,
            params: 269_722,
            device: "cpu (2 threads)".into(),
            train_images: 50_000,
            eval_images: 10_000,
            eval_set: EvalSet::Test,
            classes: (0..10).map(|c| format!("class{c}")).collect(),
            start_iter,
            grown_from: None,
            best_before: None,
            build: None,
            cpu: None,
        }
    }

    #[test]
    fn a_run_resumed_in_another_precision_counts_the_iterations_each_trained() {
        let mut h = History::with_steps();
        h.push(&started(20, 0));
        h.push(&step(40, 50.0));
        assert_eq!(h.precision_shares(), [(Precision::Fp32, 40)]);
        let mut bf16 = info(20, 30);
        bf16.config.precision = Precision::Bf16;
        bf16.build = Some("resnet-tui 0.1.0 (binary 00)".into());
        // Resumed from the checkpoint at 30: the fp32 steps after it do not count.
        h.push(&Event::RunStarted { time: 1.0, run: Box::new(bf16) });
        h.push(&step(100, 40.0));
        assert_eq!(h.precision_shares(), [(Precision::Bf16, 70), (Precision::Fp32, 30)]);
        assert_eq!(h.stretches.len(), 2);
        assert_eq!(h.stretches[1].build.as_deref(), Some("resnet-tui 0.1.0 (binary 00)"));
        // Resumed again from 30 in fp32: the bf16 stretch is superseded.
        h.push(&started(20, 30));
        h.push(&step(50, 40.0));
        assert_eq!(h.precision_shares(), [(Precision::Fp32, 50)]);
        assert_eq!(h.stretches.iter().map(|s| s.from).collect::<Vec<_>>(), [0, 30]);
    }

    #[test]
    fn a_starts_speed_is_the_median_of_its_steps_and_a_stop_does_not_count_as_training() {
        let at = |iter: u64, images_per_sec: f64| step_at(iter, 50.0, images_per_sec);
        let mut h = History::with_steps();
        h.push(&started(20, 0));
        assert_eq!((h.median_images_per_sec(0, 100), h.current_images_per_sec()), (None, None), "no step yet");
        // Five steps at about 200 img/s, then the process is stopped for minutes: the rates
        // logged over the next steps are tiny, and one unmeasured.
        for (iter, rate) in [(1, 190.0), (2, 200.0), (3, 210.0), (4, 200.0), (5, 205.0), (6, 2.0), (7, 3.0), (8, 0.0)] {
            h.push(&at(iter, rate));
        }
        assert_eq!(h.median_images_per_sec(0, 8), Some(200.0));
        assert_eq!(h.current_images_per_sec(), None, "the newest step measured nothing");
        // Resumed from 4 on another machine: steps 5.. were trained again there.
        h.push(&started(20, 4));
        h.push(&at(5, 500.0));
        h.push(&at(6, 520.0));
        let spans: Vec<(u64, u64)> = h.stretch_iters().map(|(s, n)| (s.from, n)).collect();
        assert_eq!(spans, [(0, 4), (4, 2)]);
        assert_eq!(h.median_images_per_sec(0, 4), Some(200.0));
        assert_eq!(h.median_images_per_sec(4, 6), Some(510.0));
        assert_eq!(h.current_images_per_sec(), Some(520.0));
        h.push(&Event::Error { time: 0.0, message: "x".into(), fatal: true });
        assert_eq!(h.current_images_per_sec(), None, "a run that ended trains at no speed");
        assert_eq!(History::new().median_images_per_sec(0, 6), None);
    }

    pub fn started(depth: u32, start_iter: u64) -> Event {
        Event::RunStarted { time: 0.0, run: Box::new(info(depth, start_iter)) }
    }

    pub fn step(iter: u64, error: f64) -> Event {
        step_at(iter, error, 800.0)
    }

    /// A step that measured `images_per_sec`.
    pub fn step_at(iter: u64, error: f64, images_per_sec: f64) -> Event {
        Event::Step(StepRecord {
            time: iter as f64,
            iter,
            epoch: iter as f64 / 391.0,
            elapsed: iter as f64 * 0.5,
            loss: 2.0,
            error,
            lr: 0.1,
            images_per_sec,
        })
    }

    pub fn eval(iter: u64, error: f64) -> Event {
        Event::Eval(EvalRecord {
            time: iter as f64,
            iter,
            epoch: iter as f64 / 391.0,
            elapsed: iter as f64 * 0.5 + 0.1,
            set: EvalSet::Test,
            loss: 1.5,
            error,
            class_errors: vec![error; 10],
            images_per_sec: 3000.0,
            confusion: Vec::new(),
            misclassified: Vec::new(),
            responses: Vec::new(),
        })
    }

    #[test]
    fn the_final_training_error_is_the_mean_of_the_last_epoch_and_a_resume_replaces_what_it_redoes() {
        // 50,000 images at batch 128: an epoch is 391 steps.
        let mut h = History::new();
        h.push(&started(20, 0));
        for i in 1..=391 {
            h.push(&step(i, 90.0));
        }
        for i in 392..=782 {
            h.push(&step(i, 10.0));
        }
        assert_eq!(h.last_epoch_train_error(), Some(10.0));
        // Resumed from 700: steps 701.. are trained again, at 20 %.
        h.push(&started(20, 700));
        for i in 701..=782 {
            h.push(&step(i, 20.0));
        }
        let want = (309.0 * 10.0 + 82.0 * 20.0) / 391.0;
        assert!((h.last_epoch_train_error().unwrap() - want).abs() < 1e-9);
    }

    #[test]
    fn a_resume_replaces_what_came_after_its_checkpoint() {
        let events = vec![
            started(20, 0),
            step(1, 90.0),
            step(2, 80.0),
            eval(2, 70.0),
            step(3, 75.0),
            eval(3, 10.0),
            // Killed after iteration 3; resumed from the checkpoint at 2.
            started(20, 2),
            step(3, 60.0),
            eval(3, 50.0),
        ];
        let h = History::from_events(&events);
        assert_eq!(h.starts, 2);
        assert_eq!(h.steps.iter().map(|s| (s.iter, s.error)).collect::<Vec<_>>(), [(1, 90.0), (2, 80.0), (3, 60.0)]);
        assert_eq!(h.evals.iter().map(|e| (e.iter, e.error)).collect::<Vec<_>>(), [(2, 70.0), (3, 50.0)]);
        assert_eq!(h.best_eval().map(|e| e.iter), Some(3));
        assert_eq!(h.iters(), 3);
        assert_eq!(h.end(), None);
        assert_eq!(h.resumed_at, [2]);
        // Killed again and resumed from 2 twice more, then from 3: all four resumes are kept.
        let more = [started(20, 2), started(20, 2), step(3, 55.0), started(20, 3)];
        let h = History::from_events(&[events.clone(), more.to_vec()].concat());
        assert_eq!((h.starts, h.resumed_at.clone()), (5, vec![2, 2, 2, 3]));
        // One from before an earlier resume's point drops that one: its stretch was redone.
        let h = History::from_events(&[events, more.to_vec(), vec![started(20, 1)]].concat());
        assert_eq!(h.resumed_at, [1]);
    }

    #[test]
    fn a_history_without_steps_keeps_only_the_newest_step() {
        let events = [started(20, 0), step(1, 90.0), step(2, 80.0), eval(2, 70.0), step(3, 60.0), started(20, 2)];
        let mut light = History::new();
        for e in &events {
            light.push(e);
        }
        let full = History::from_events(&events);
        assert!(light.steps.is_empty());
        assert_eq!(light.last_step.map(|s| s.iter), None, "step 3 was undone by the resume from 2");
        assert_eq!(full.last_step.map(|s| s.iter), Some(2));
        assert_eq!((light.state.clone(), light.starts, light.evals.len()), (RunState::Starting, 2, 1));
        light.push(&step(3, 50.0));
        assert_eq!((light.state.clone(), light.iters()), (RunState::Running, 3));
    }

    #[test]
    fn a_finished_run_is_only_finished_if_not_resumed_after() {
        let summary = Summary {
            reason: EndReason::Stopped,
            iters: 2,
            final_error: Some(70.0),
            best_error: Some(70.0),
            best_iter: Some(2),
            train_secs: 1.0,
        };
        let mut events = vec![started(20, 0), step(1, 90.0), step(2, 80.0), eval(2, 70.0)];
        events.push(Event::Finished { time: 3.0, summary });
        let h = History::from_events(&events);
        assert_eq!(h.end(), Some(EndReason::Stopped));
        assert_eq!(h.train_secs(), Some(1.0));
        events.push(started(20, 2));
        events.push(step(3, 70.0));
        let h = History::from_events(&events);
        assert_eq!(h.end(), None);
        assert_eq!(h.train_secs(), Some(1.5));
    }

    #[test]
    fn the_eta_counts_the_steps_and_the_evaluations_left() {
        // 50 iterations of 128 images left at 800 img/s: 8 s of steps; evaluations of 10,000
        // images at 3,000 img/s every 391 iterations: only the one at the end of a 100-iteration run.
        let mut h = History::from_events(&[started(20, 0), step(50, 90.0), eval(50, 80.0)]);
        let eta = h.eta_secs().unwrap();
        assert!((eta - (8.0 + 10_000.0 / 3_000.0)).abs() < 1e-9, "{eta}");
        // With an evaluation every 10 iterations, 5 are left at 10,000 / 3,000 s each.
        h.info.as_mut().unwrap().config.eval_every = 10;
        let eta = h.eta_secs().unwrap();
        assert!((eta - (8.0 + 5.0 * 10_000.0 / 3_000.0)).abs() < 1e-9, "{eta}");
        // A checkpoint write of 2 s, and one left (the final one; the periodic are every 1000).
        let path = PathBuf::from("ck");
        h.push(&Event::Checkpoint { time: 0.0, iter: 50, path, reason: CheckpointReason::Requested, secs: 2.0 });
        let eta = h.eta_secs().unwrap();
        assert!((eta - (8.0 + 5.0 * 10_000.0 / 3_000.0 + 2.0)).abs() < 1e-9, "{eta}");
        h.push(&Event::Paused { time: 0.0, iter: 50 });
        assert!(h.eta_secs().is_some());
        h.push(&Event::Error { time: 0.0, message: "x".into(), fatal: true });
        assert_eq!(h.eta_secs(), None);
    }

    #[test]
    fn best_is_the_earliest_of_equal_errors() {
        let h = History::from_events(&[started(20, 0), eval(1, 50.0), eval(2, 40.0), eval(3, 40.0), eval(4, 45.0)]);
        assert_eq!(h.best_eval().map(|e| e.iter), Some(2));
        assert_eq!(h.last_eval().map(|e| e.iter), Some(4));
    }
}

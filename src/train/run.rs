//! One run: set up model, optimizer and run directory, then the step loop that obeys commands,
//! evaluates, checkpoints and reports.

use super::checkpoint::{self, BEST_NAME, Checkpoint, TrainState};
use super::evaluate::evaluate;
use super::fault::Fault;
use super::schedule::{WarmupEnd, WarmupProgress, lr_at};
use super::sgd::Sgd;
use super::step::{StepStats, train_step};
use super::{Plan, Session, SessionData, TrainError, device};
use crate::data::augment::Normalizer;
use crate::data::batches::{Batcher, Prefetcher};
use crate::mailbox::Mailbox;
use crate::model::Network;
use crate::protocol::*;
use crate::rundir::RunDir;
use crate::runlog::LogWriter;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tch::{Device, Tensor};

/// Steps between two optimizer health reports (docs/performance.md measures their cost).
pub const HEALTH_EVERY: u64 = 10;

/// The folder of a run directory that `--tensorboard` writes event files into.
pub const TENSORBOARD_DIR: &str = "tensorboard";

/// How a run ended, and what the session does next.
// Returned once per run: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Ended,
    /// Start a run of another depth; with `Grow`, from this run's network.
    Switch {
        config: RunConfig,
        from: Box<Carried>,
        mode: SwitchMode,
    },
    /// Resume this run from its last good checkpoint with these changes (`field=value`).
    Recover {
        run_dir: PathBuf,
        set: Vec<String>,
    },
}

/// What a grown run takes over from the run it grows out of.
pub struct Carried {
    network: Network,
    momentum: Vec<(String, Tensor)>,
    iter: u64,
    from_name: String,
}

/// Training seconds, pauses excluded.
struct ActiveClock {
    before: f64,
    since: Option<Instant>,
}

impl ActiveClock {
    fn secs(&self) -> f64 {
        self.before + self.since.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0)
    }
    fn stop(&mut self) {
        self.before = self.secs();
        self.since = None;
    }
    fn start(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }
}

/// Images per second over the last few steps, from the steps' own durations: evaluations,
/// checkpoints and pauses between steps do not count.
struct Throughput {
    durations: VecDeque<f64>,
    batch: usize,
}

impl Throughput {
    const WINDOW: usize = 20;
    fn record(&mut self, secs: f64) -> f64 {
        self.durations.push_back(secs);
        if self.durations.len() > Self::WINDOW {
            self.durations.pop_front();
        }
        let total: f64 = self.durations.iter().sum();
        if total > 0.0 { self.durations.len() as f64 * self.batch as f64 / total } else { 0.0 }
    }
}

/// Everything one run holds while it trains.
struct Run<'s> {
    session: &'s Session,
    config: RunConfig,
    dir: RunDir,
    log: LogWriter,
    log_failed: bool,
    network: Network,
    sgd: Sgd,
    device: Device,
    iter: u64,
    clock: ActiveClock,
    best: Option<(f64, u64)>,
    warmup: WarmupProgress,
    last_eval: Option<(u64, f64)>,
    last_checkpoint: Option<PathBuf>,
    channels_last: bool,
    mail: Inbox,
    /// TensorBoard's copy of the curves (`--tensorboard`); `None` after a write failed (said once).
    tensorboard: Option<crate::tensorboard::EventWriter>,
}

/// Commands that come as files (`mailbox`): read at most every `MAIL_POLL`, answered in the
/// log, then obeyed in order like the channel's.
struct Inbox {
    mailbox: Mailbox,
    waiting: VecDeque<Command>,
    last_read: Option<Instant>,
}

/// How often the run directory's command folder is looked at: often enough that a key pressed
/// in `attach` is obeyed within a step or so, rarely enough to cost nothing on a shared file system.
const MAIL_POLL: Duration = Duration::from_millis(250);

/// What the trainer has to do next, between two steps.
enum Next {
    Command(Command),
    /// Nothing asked: go on training.
    Idle,
    /// The front end has gone: nobody can steer or watch this run any more.
    Gone,
}

/// Sets up the run that `plan` describes and trains it until it ends.
pub fn start(
    session: &Session,
    plan: Plan,
    data: &mut Option<SessionData>,
    carried: Option<Carried>,
) -> Result<Outcome, TrainError> {
    let (config, dir, resume_from, changes) = match plan {
        Plan::New { config, runs_dir } => {
            crate::config::validate(&config)?;
            (config, Err(runs_dir), None, Vec::new())
        }
        Plan::Resume { run_dir, set, data_dir } => {
            let (dir, stored) = RunDir::open(&run_dir)?;
            let config_file = run_dir.join(crate::rundir::CONFIG_NAME);
            crate::config::validate(&stored).map_err(|e| TrainError::StoredConfig(config_file.clone(), e))?;
            // A run killed before its first checkpoint has nothing to lose: it starts again at 0.
            let (base, ck) = if checkpoint::list_periodic(&dir.checkpoints()).is_empty() {
                session.status("no checkpoint yet: starting the run from iteration 0");
                (stored.clone(), None)
            } else {
                let ck = newest_checkpoint(session, &dir)?;
                if ck.state.config.depth != stored.depth {
                    return Err(TrainError::DepthMismatch {
                        dir: run_dir,
                        checkpoint: ck.state.config.depth,
                        run: stored.depth,
                    });
                }
                (ck.state.config.clone(), Some(ck))
            };
            // The checkpoint's recipe is the run's. A config.json that says otherwise holds a
            // change made on record (`--set`) before the next checkpoint, which stands, or was
            // edited by hand: then a change must be asked for by name.
            let edited = crate::config::differences(&base, &stored);
            let on_record = !edited.is_empty() && changed_on_record(&dir, &stored);
            if !edited.is_empty() && !on_record && set.is_empty() {
                let fields = edited.into_iter().map(|c| c.field).collect();
                return Err(TrainError::ConfigEdited { file: config_file, fields });
            }
            // New settings go on top of a recorded change that has no checkpoint yet.
            let mut config = crate::config::apply_settings(if on_record { &stored } else { &base }, &set)?;
            // Where the data set lies is this machine's business, not the recipe's: a run copied
            // from elsewhere (`export --share`) names the folder only, and the configured one
            // stands in for it. A folder the user names (`--data-dir`, `--set data_dir=`) is used
            // as named: one without the data fails to load instead of giving way to another.
            let named = set.iter().any(|s| s.starts_with("data_dir="));
            config.data_dir = match data_dir {
                Some(dir) => dir,
                None if named => config.data_dir,
                None => crate::data::fetch::recorded_or_configured(&config.data_dir),
            };
            let changes = crate::config::differences(&base, &config);
            (config, Ok(dir), ck, changes)
        }
    };
    if let Some(t) = config.threads {
        tch::set_num_threads(t as i32);
    }
    let device = device::resolve(config.device)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    // A later run of the session (a switch, a recovery) was checked before its predecessor closed:
    // on a GPU, what that one still holds would count against it.
    if !session.options.force && data.is_none() {
        crate::memory::fits_now(config.depth, config.batch_size, config.precision, gpu_index(device), None)?;
    }
    session.load_data(&config, device, data)?;
    let data = data.as_ref().expect("loaded above");

    tch::manual_seed(config.seed as i64);
    let channels_last = session.options.channels_last;
    let (mut network, momentum, start_iter, grown_from) = match carried {
        Some(c) => {
            let grown = c.network.grow(config.depth)?;
            (grown, c.momentum, c.iter, Some(c.from_name))
        }
        None => {
            let network = Network::new(config.depth, config.shortcut, device);
            // Weights from PyTorch replace the initialisation of a new run; a resume loads its checkpoint.
            if let (Some(from), None) = (&config.init_from, &resume_from) {
                crate::interchange::load_into(from, &network)?;
            }
            (network, Vec::new(), 0, None)
        }
    };
    if channels_last {
        network.to_channels_last();
    }
    network.net.compute = crate::model::compute_kind(config.precision);
    let trainable: Vec<(String, Tensor)> =
        network.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    let mut sgd = Sgd::new(trainable, config.momentum, config.weight_decay);
    let (mut iter, mut elapsed, mut best, mut warmup) = (start_iter, 0.0, None, WarmupProgress::default());
    if let Some(ck) = &resume_from {
        ck.load_into(&network)?;
        sgd.load_buffers(&ck.momentum)?;
        iter = ck.state.iter;
        elapsed = ck.state.elapsed;
        best = ck.state.best_error.zip(ck.state.best_iter);
        warmup = ck.state.warmup.clone();
    } else if !momentum.is_empty() {
        // Shared variables keep their momentum; new blocks start with none.
        let names = network.vs.variables();
        let shared = momentum.into_iter().filter(|(n, _)| names.contains_key(n)).collect();
        sgd.load_buffers(&shared)?;
    }

    // A resumed run has its directory already; a new one gets it now, once nothing can fail early.
    let dir = match dir {
        Ok(d) if changes.is_empty() => d,
        Ok(d) => {
            d.write_config(&config)?;
            d
        }
        Err(runs_dir) => RunDir::create(&runs_dir, &config)?,
    };
    let log = LogWriter::open(&dir.log())?;
    let (dir_path, dir_name, log_path) = (dir.path.clone(), dir.name.clone(), dir.log());
    session.current_log.replace(Some(dir.log()));
    let params = network.params();
    let mut run = Run {
        session,
        config,
        dir,
        log,
        log_failed: false,
        network,
        sgd,
        device,
        iter,
        clock: ActiveClock { before: elapsed, since: None },
        best,
        warmup,
        last_eval: None,
        last_checkpoint: None,
        channels_last,
        mail: Inbox {
            mailbox: Mailbox::new(&dir_path, &dir_name, &log_path),
            waiting: VecDeque::new(),
            last_read: None,
        },
        tensorboard: None,
    };
    if session.options.tensorboard {
        match crate::tensorboard::EventWriter::create(&dir_path.join(TENSORBOARD_DIR)) {
            Ok(w) => run.tensorboard = Some(w),
            Err(e) => run.emit(Event::Error { time: now(), message: e.to_string(), fatal: false }),
        }
    }
    let info = RunInfo {
        name: run.dir.name.clone(),
        dir: run.dir.path.clone(),
        config: run.config.clone(),
        params,
        device: device::describe(device),
        train_images: data.train.len(),
        eval_images: data.eval.len(),
        eval_set: data.eval_set,
        classes: data.classes.clone(),
        start_iter: iter,
        grown_from,
        best_before: run.best,
    };
    let grown = info.grown_from.is_some();
    run.emit(Event::RunStarted { time: now(), run: Box::new(info) });
    if !changes.is_empty() {
        run.emit(Event::ConfigChanged { time: now(), iter: run.iter, changes });
    }
    if grown {
        // Its network exists nowhere else: a kill before the first periodic checkpoint must
        // resume the grown network, not start a fresh one.
        run.save(CheckpointReason::Periodic);
    }
    run.train(data)
}

fn gpu_index(device: Device) -> Option<u32> {
    match device {
        Device::Cuda(i) => Some(i as u32),
        _ => None,
    }
}

/// Whether `config` is one that a resume of this run started with after a recorded change: the
/// log has a `run_started` with it followed by the `config_changed` that made it.
fn changed_on_record(dir: &RunDir, config: &RunConfig) -> bool {
    let Ok(log) = crate::runlog::read(&dir.log()) else { return false };
    log.events.windows(2).any(|w| {
        matches!((&w[0], &w[1]), (Event::RunStarted { run, .. }, Event::ConfigChanged { .. })
            if crate::config::differences(&run.config, config).is_empty())
    })
}

/// The newest periodic checkpoint that reads back; damaged newer ones are reported and skipped.
fn newest_checkpoint(session: &Session, dir: &RunDir) -> Result<Checkpoint, TrainError> {
    let all = checkpoint::list_periodic(&dir.checkpoints());
    let mut newest_error = None;
    for (_, path) in all.iter().rev() {
        match checkpoint::read(path) {
            Ok(ck) => return Ok(ck),
            Err(e) => {
                session.status(format!("skipping {e}"));
                newest_error.get_or_insert(e);
            }
        }
    }
    Err(TrainError::NoCheckpoint { dir: dir.path.clone(), newest: newest_error })
}

impl Run<'_> {
    fn emit(&mut self, event: Event) {
        if let Some(tb) = &mut self.tensorboard
            && let Err(e) = tb.write(&event)
        {
            self.tensorboard = None;
            self.session.emit(Event::Error { time: now(), message: e.to_string(), fatal: false });
        }
        if let Err(e) = self.log.write(&event)
            && !self.log_failed
        {
            self.log_failed = true;
            self.session.emit(Event::Error { time: now(), message: e.to_string(), fatal: false });
        }
        self.session.emit(event);
    }

    /// The next command to obey: one read from a file earlier, else the channel's, else the
    /// command folder's (when it is due a look). While `paused`, waits until there is one.
    fn next_command(&mut self, paused: bool) -> Next {
        loop {
            if let Some(c) = self.mail.waiting.pop_front() {
                return Next::Command(c);
            }
            match self.session.commands.try_recv() {
                Ok(c) => return Next::Command(c),
                Err(crossbeam_channel::TryRecvError::Disconnected) => return Next::Gone,
                Err(crossbeam_channel::TryRecvError::Empty) => {}
            }
            if self.mail.last_read.is_none_or(|t| t.elapsed() >= MAIL_POLL) {
                self.mail.last_read = Some(Instant::now());
                if self.read_mail() {
                    continue;
                }
            }
            if !paused {
                return Next::Idle;
            }
            match self.session.commands.recv_timeout(MAIL_POLL) {
                Ok(c) => return Next::Command(c),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Next::Gone,
            }
        }
    }

    /// Answers every command file in the log, removes it, and queues what is to be obeyed;
    /// true when something was queued.
    fn read_mail(&mut self) -> bool {
        let mut queued = false;
        for delivery in self.mail.mailbox.collect(now()) {
            let ignored = delivery.verdict.as_ref().err().cloned();
            self.emit(Event::CommandReceived {
                time: now(),
                iter: self.iter,
                id: delivery.id.clone(),
                request: delivery.request.clone(),
                from: delivery.from.clone(),
                ignored,
            });
            // Answered in the log first: a kill between the two leaves a file the log calls a duplicate.
            delivery.discard();
            if let Ok(request) = delivery.verdict {
                self.mail.waiting.push_back(request.command());
                queued = true;
            }
        }
        queued
    }

    fn epoch(&self, data: &SessionData) -> f64 {
        self.iter as f64 * self.config.batch_size as f64 / data.train.len().max(1) as f64
    }

    fn state(&self) -> TrainState {
        TrainState {
            config: self.config.clone(),
            iter: self.iter,
            elapsed: self.clock.secs(),
            best_error: self.best.map(|b| b.0),
            best_iter: self.best.map(|b| b.1),
            run: self.dir.name.clone(),
            warmup: self.warmup.clone(),
        }
    }

    /// Writes a checkpoint; a failure is reported and training goes on.
    fn save(&mut self, reason: CheckpointReason) {
        let dir = self.dir.checkpoints();
        let path = match reason {
            CheckpointReason::Best => dir.join(BEST_NAME),
            _ => dir.join(checkpoint::periodic_name(self.iter)),
        };
        let mut model: Vec<(String, Tensor)> = self.network.vs.variables().into_iter().collect();
        model.sort_by(|a, b| a.0.cmp(&b.0));
        let started = Instant::now();
        let bytes = checkpoint::encode(&self.state(), &model, &self.sgd.buffers());
        match checkpoint::write(&path, &bytes) {
            Ok(()) => {
                if reason != CheckpointReason::Best {
                    checkpoint::prune(&dir, self.config.keep_checkpoints);
                    self.last_checkpoint = Some(path.clone());
                }
                let secs = started.elapsed().as_secs_f64();
                self.emit(Event::Checkpoint { time: now(), iter: self.iter, path, reason, secs });
            }
            Err(e) => {
                self.emit(Event::Error { time: now(), message: format!("checkpoint not written: {e}"), fatal: false })
            }
        }
    }

    fn eval(&mut self, data: &SessionData, normalizer: &Normalizer) -> Result<(), TrainError> {
        let started = Instant::now();
        let r = evaluate(&self.network.net, &data.eval, normalizer, self.channels_last)?;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        self.last_eval = Some((self.iter, r.error));
        let improved = self.best.is_none_or(|(b, _)| r.error < b);
        let epoch = self.epoch(data);
        self.emit(Event::Eval(EvalRecord {
            time: now(),
            iter: self.iter,
            epoch,
            elapsed: self.clock.secs(),
            set: data.eval_set,
            loss: r.loss,
            error: r.error,
            class_errors: r.class_errors,
            images_per_sec: r.images as f64 / secs,
            confusion: r.confusion,
            misclassified: r.misclassified,
            responses: r.responses,
        }));
        if improved {
            self.best = Some((r.error, self.iter));
            self.save(CheckpointReason::Best);
        }
        Ok(())
    }

    fn finish(&mut self, reason: EndReason) {
        let summary = Summary {
            reason,
            iters: self.iter,
            final_error: self.last_eval.map(|e| e.1),
            best_error: self.best.map(|b| b.0),
            best_iter: self.best.map(|b| b.1),
            train_secs: self.clock.secs(),
        };
        self.emit(Event::Finished { time: now(), summary });
    }

    fn carried(self) -> Box<Carried> {
        Box::new(Carried {
            momentum: self.sgd.buffers(),
            iter: self.iter,
            from_name: self.dir.name.clone(),
            network: self.network,
        })
    }

    /// The step loop. Commands are obeyed at step boundaries.
    fn train(mut self, data: &SessionData) -> Result<Outcome, TrainError> {
        let normalizer = Normalizer::new(self.device);
        let batcher = Batcher::new(&data.train, self.config.seed, self.config.batch_size, self.channels_last);
        let prefetch = Prefetcher::spawn(batcher, self.iter, self.config.iters, self.session.options.prefetch);
        let mut throughput = Throughput { durations: VecDeque::new(), batch: self.config.batch_size };
        let mut paused = false;
        let fault = Fault::from_env();
        self.session.status("first step (the first is slower: kernels are chosen and memory allocated)");
        self.clock.start();
        while self.iter < self.config.iters {
            // Obey every command that has arrived (on the channel or as a file in the run
            // directory); while paused, wait for the next one.
            loop {
                let command = match self.next_command(paused) {
                    Next::Command(c) => Some(c),
                    Next::Idle => break,
                    Next::Gone => None,
                };
                match command {
                    Some(Command::Pause) if !paused => {
                        paused = true;
                        self.clock.stop();
                        self.emit(Event::Paused { time: now(), iter: self.iter });
                    }
                    Some(Command::Resume) if paused => {
                        paused = false;
                        self.clock.start();
                        self.emit(Event::Resumed { time: now(), iter: self.iter });
                    }
                    Some(Command::Pause | Command::Resume) => {}
                    Some(Command::Checkpoint) => self.save(CheckpointReason::Requested),
                    Some(Command::SwitchDepth { depth, mode }) => {
                        if mode == SwitchMode::Grow
                            && let Err(e) = self.config.depth.grow_to(self.config.shortcut, depth)
                        {
                            self.emit(Event::Error { time: now(), message: e.to_string(), fatal: false });
                            continue;
                        }
                        // Refused before this run is closed: it goes on.
                        let (batch, precision) = (self.config.batch_size, self.config.precision);
                        let gpu = gpu_index(self.device);
                        let held = crate::memory::estimate(self.config.depth, batch, precision, gpu.is_some());
                        if !self.session.options.force
                            && let Err(e) = crate::memory::fits_now(depth, batch, precision, gpu, Some(held))
                        {
                            let message = format!("cannot switch: {e}");
                            self.emit(Event::Error { time: now(), message, fatal: false });
                            continue;
                        }
                        self.clock.stop();
                        self.save(CheckpointReason::Final);
                        self.finish(EndReason::Switched);
                        let mut config = self.config.clone();
                        config.depth = depth;
                        config.warmup = crate::config::paper_warmup(depth).filter(|_| mode == SwitchMode::Fresh);
                        drop(prefetch);
                        return Ok(Outcome::Switch { config, from: self.carried(), mode });
                    }
                    Some(Command::Stop) | None => {
                        self.clock.stop();
                        self.save(CheckpointReason::Final);
                        self.finish(EndReason::Stopped);
                        return Ok(Outcome::Ended);
                    }
                    Some(Command::Recover { .. }) => {}
                }
                if !paused {
                    break;
                }
            }

            let step_started = Instant::now();
            let Some(batch) = prefetch.next() else {
                return Err(TrainError::BatchThread(crate::panics::take_panic_note()));
            };
            if fault.is_some_and(|f| f.iter == self.iter) {
                fault.expect("checked").inject();
            }
            debug_assert_eq!(batch.iter, self.iter);
            let warming = self.warmup.warming(&self.config, self.iter);
            let lr = lr_at(&self.config, self.iter, warming);
            let StepStats { loss: loss_value, correct } =
                train_step(&self.network.net, &mut self.sgd, &batch.images, &batch.labels, lr)?;
            self.iter += 1;
            if !loss_value.is_finite() {
                // Where it broke: the first activations that are not finite on this batch, else
                // the first gradient.
                let failed = |e| TrainError::torch("the divergence report", e);
                let layer = match self.network.net.first_non_finite(&batch.images).map_err(failed)? {
                    Some(layer) => Some(layer),
                    None => self.sgd.first_non_finite().map_err(failed)?,
                };
                return Ok(self.diverged(loss_value, layer));
            }
            let images_per_sec = throughput.record(step_started.elapsed().as_secs_f64());
            let epoch = self.epoch(data);
            let n = batch.labels.size()[0] as f64;
            let error = 100.0 * (1.0 - correct / n);
            self.emit(Event::Step(StepRecord {
                time: now(),
                iter: self.iter,
                epoch,
                elapsed: self.clock.secs(),
                loss: loss_value,
                error,
                lr,
                images_per_sec,
            }));
            if self.iter.is_multiple_of(HEALTH_EVERY)
                && let Some((grad_norm, weight_norm, update_ratio)) = self.sgd.health(lr)
            {
                let health = HealthRecord { time: now(), iter: self.iter, grad_norm, weight_norm, update_ratio };
                self.emit(Event::Health(health));
            }
            if warming && let Some(end) = self.warmup.record(&self.config, self.iter, error) {
                let WarmupEnd { iter, window_error, capped } = end;
                self.emit(Event::WarmupEnded { time: now(), iter, window_error, capped });
            }
            if self.iter.is_multiple_of(self.config.eval_every) || self.iter == self.config.iters {
                self.eval(data, &normalizer)?;
            }
            if self.iter.is_multiple_of(self.config.checkpoint_every) && self.iter != self.config.iters {
                self.save(CheckpointReason::Periodic);
            }
        }
        self.clock.stop();
        if self.last_eval.map(|e| e.0) != Some(self.iter) {
            self.eval(data, &normalizer)?;
        }
        self.save(CheckpointReason::Final);
        self.finish(EndReason::Completed);
        Ok(Outcome::Ended)
    }

    /// The loss is NaN or infinite: stop at this step, keep the last good checkpoint, and wait
    /// for the front end to say whether to recover (lower learning rate) or end.
    fn diverged(mut self, loss: f64, layer: Option<String>) -> Outcome {
        self.clock.stop();
        let last_good = checkpoint::list_periodic(&self.dir.checkpoints()).pop().map(|(_, p)| p);
        self.emit(Event::Diverged { time: now(), iter: self.iter, loss, last_good: last_good.clone(), layer });
        self.finish(EndReason::Diverged);
        loop {
            match self.session.commands.recv() {
                Ok(Command::Recover { lr_factor }) => {
                    // The lower rate is a change of the recipe like `resume --set`, logged as one.
                    let mut set = vec![format!("lr={}", self.config.lr * lr_factor)];
                    set.extend(self.config.warmup.map(|w| format!("warmup.lr={}", w.lr * lr_factor)));
                    let Some(_) = last_good else {
                        // Nothing to go back to: start again from scratch at the lower rate.
                        let config = match crate::config::apply_settings(&self.config, &set) {
                            Ok(c) => c,
                            Err(e) => {
                                self.emit(Event::Error { time: now(), message: e.to_string(), fatal: false });
                                continue;
                            }
                        };
                        return Outcome::Switch { config, from: self.carried(), mode: SwitchMode::Fresh };
                    };
                    return Outcome::Recover { run_dir: self.dir.path.clone(), set };
                }
                Ok(Command::Stop) | Err(_) => return Outcome::Ended,
                Ok(_) => {}
            }
        }
    }
}

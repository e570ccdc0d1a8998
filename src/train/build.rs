//! Building the run that `plan` resolved: the device and the memory check, the data, the seeded
//! network (new, imported from PyTorch's weights, grown from the run before, or a checkpoint's)
//! and its optimizer, then the run directory, its log, command folder and TensorBoard writer,
//! and the events that say the run has started. Nothing is written before everything that can
//! fail early has been tried.

use super::checkpoint::Checkpoint;
use super::inbox::Inbox;
use super::plan::{Destination, Resolved};
use super::schedule::WarmupProgress;
use super::sgd::Sgd;
use super::state::{ActiveClock, Carried, Run, gpu_index};
use super::{Session, SessionData, TrainError, device};
use crate::config::{ConfigChange, RunConfig};
use crate::model::Network;
use crate::protocol::*;
use crate::rundir::RunDir;
use crate::runlog::LogWriter;
use std::collections::HashMap;
use tch::{Device, Tensor};

/// The folder of a run directory that `--tensorboard` writes event files into.
pub const TENSORBOARD_DIR: &str = "tensorboard";

/// The network a run trains, before its optimizer exists.
struct Model {
    network: Network,
    /// Momentum buffers carried over from the run it grew out of.
    momentum: Vec<(String, Tensor)>,
    /// Where training starts before a checkpoint says otherwise.
    iter: u64,
    grown_from: Option<String>,
}

/// Where training stands when the run starts: a checkpoint's, or a fresh or grown run's.
struct Progress {
    iter: u64,
    elapsed: f64,
    best: Option<(f64, u64)>,
    warmup: WarmupProgress,
}

/// Builds the run `resolved` describes, loading the data into `data` (or reusing the session's),
/// and announces it.
pub(super) fn build<'s>(
    session: &'s Session,
    resolved: Resolved,
    data: &mut Option<SessionData>,
    carried: Option<Carried>,
) -> Result<Run<'s>, TrainError> {
    let Resolved { mut config, destination, checkpoint, mut changes } = resolved;
    let device = open_device(&config)?;
    // A later run of the session (a switch, a recovery) was checked before its predecessor closed:
    // on a GPU, what that one still holds would count against it.
    if !session.options.force && data.is_none() {
        crate::memory::fits_now(config.depth, config.batch_size, config.precision, gpu_index(device), None)?;
    }
    // After the memory check, which takes fp32 for an undecided run (the larger): auto times real
    // steps of this network.
    let decided = choose_precision(session, &mut config, device, checkpoint.is_some(), &mut changes);
    session.load_data(&config, device, data)?;
    let data = data.as_ref().expect("loaded above");
    tch::manual_seed(config.seed as i64);
    let channels_last = session.options.channels_last;
    let model = model(&config, device, carried, checkpoint.is_some(), channels_last)?;
    let grown_from = model.grown_from.clone();
    let (network, sgd, progress) = optimizer(model, &config, checkpoint.as_ref())?;
    // A prepared run directory (a sweep's cell) starting for the first time records the precision
    // auto chose, so that its first checkpoint and its config.json agree on a later resume.
    let dir = directory(destination, &config, !changes.is_empty() || (decided && checkpoint.is_none()))?;
    let log = LogWriter::open(&dir.log())?;
    session.current_log.replace(Some(dir.log()));
    let mut run = Run {
        session,
        inbox: Inbox::new(&dir),
        config,
        dir,
        log,
        log_failed: false,
        network,
        sgd,
        device,
        iter: progress.iter,
        clock: ActiveClock { before: progress.elapsed, since: None },
        best: progress.best,
        warmup: progress.warmup,
        last_eval: None,
        channels_last,
        paused: false,
        tensorboard: None,
    };
    if session.options.tensorboard {
        open_tensorboard(&mut run);
    }
    announce(&mut run, data, changes, grown_from);
    Ok(run)
}

/// The device the config asks for, with libtorch's threads set and cuDNN's autotuner on.
fn open_device(config: &RunConfig) -> Result<Device, TrainError> {
    if let Some(t) = config.threads {
        // In range: `validate` bounds the count (`bounds::THREADS`).
        tch::set_num_threads(t as i32);
    }
    let device = device::resolve(config.device)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    Ok(device)
}

/// `--precision auto`'s choice for this machine, made with the run's threads set: a new run's
/// precision, or a resumed run's again; on a resume, a choice that differs from the one recorded
/// (another machine) is logged with the recipe's other changes. Says whether it chose.
fn choose_precision(
    session: &Session,
    config: &mut RunConfig,
    device: Device,
    resuming: bool,
    changes: &mut Vec<ConfigChange>,
) -> bool {
    if !config.precision_auto {
        return false;
    }
    let say = |s: &str| session.status(s);
    let choice = super::precision::choose(device, config.depth, config.batch_size, &say);
    let before = config.clone();
    config.precision = choice.precision;
    config.precision_why = Some(choice.why);
    if resuming {
        changes.extend(crate::config::differences(&before, config));
    }
    true
}

/// The network: grown from the run before (a grow switch), else a new one, from PyTorch's
/// weights when the config names them (a resume loads its checkpoint's instead, later).
fn model(
    config: &RunConfig,
    device: Device,
    carried: Option<Carried>,
    resuming: bool,
    channels_last: bool,
) -> Result<Model, TrainError> {
    let mut model = match carried {
        Some(c) => Model {
            network: c.network.grow(config.depth)?,
            momentum: c.momentum,
            iter: c.iter,
            grown_from: Some(c.from_name),
        },
        None => {
            let network = Network::new(config.depth, config.shortcut, device);
            if let (Some(from), false) = (&config.init_from, resuming) {
                crate::interchange::load_into(from, &network)?;
            }
            Model { network, momentum: Vec::new(), iter: 0, grown_from: None }
        }
    };
    if channels_last {
        model.network.to_channels_last();
    }
    model.network.net.compute = crate::model::compute_kind(config.precision);
    Ok(model)
}

/// The optimizer of `model`'s trainable variables, and where training stands: a checkpoint's
/// weights, momentum and state; or a grown network's momentum for the variables it shares
/// (new blocks start with none).
fn optimizer(
    model: Model,
    config: &RunConfig,
    checkpoint: Option<&Checkpoint>,
) -> Result<(Network, Sgd, Progress), TrainError> {
    let Model { network, momentum, iter, .. } = model;
    let trainable: Vec<(String, Tensor)> =
        network.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    let mut sgd = Sgd::new(trainable, config.momentum, config.weight_decay);
    let mut progress = Progress { iter, elapsed: 0.0, best: None, warmup: WarmupProgress::default() };
    if let Some(ck) = checkpoint {
        ck.load_into(&network)?;
        sgd.load_buffers(&ck.momentum)?;
        let state = &ck.state;
        progress = Progress {
            iter: state.iter,
            elapsed: state.elapsed,
            best: state.best_error.zip(state.best_iter),
            warmup: state.warmup.clone(),
        };
    } else if !momentum.is_empty() {
        let names = network.vs.variables();
        let shared: HashMap<String, Tensor> = momentum.into_iter().filter(|(n, _)| names.contains_key(n)).collect();
        sgd.load_buffers(&shared)?;
    }
    Ok((network, sgd, progress))
}

/// The run's directory: a resumed run's own, its config rewritten when `rewrite` (the recipe
/// changed, or auto chose a prepared run's first precision); a new run's made now.
fn directory(destination: Destination, config: &RunConfig, rewrite: bool) -> Result<RunDir, TrainError> {
    Ok(match destination {
        Destination::Existing(dir) => {
            if rewrite {
                dir.write_config(config)?;
            }
            dir
        }
        Destination::New(runs_dir) => RunDir::create(&runs_dir, config)?,
    })
}

/// TensorBoard's writer in the run directory; one that cannot be made is said, and the run goes on.
fn open_tensorboard(run: &mut Run) {
    match crate::tensorboard::EventWriter::create(&run.dir.path.join(TENSORBOARD_DIR)) {
        Ok(w) => run.tensorboard = Some(w),
        Err(e) => run.error(e.to_string()),
    }
}

/// Says the run has started (and how its recipe changed); a grown run checkpoints at once.
fn announce(run: &mut Run, data: &SessionData, changes: Vec<ConfigChange>, grown_from: Option<String>) {
    let grown = grown_from.is_some();
    let info = RunInfo {
        name: run.dir.name.clone(),
        dir: run.dir.path.clone(),
        config: run.config.clone(),
        params: run.network.params(),
        device: device::run_device(run.device),
        train_images: data.train.len(),
        eval_images: data.eval.len(),
        eval_set: data.eval_set,
        classes: data.classes.clone(),
        start_iter: run.iter,
        grown_from,
        best_before: run.best,
        build: Some(crate::provenance::build().to_string()),
        cpu: Some(crate::provenance::cpu().to_string()),
    };
    run.emit(Event::RunStarted { time: now(), run: Box::new(info) });
    if !changes.is_empty() {
        run.emit(Event::ConfigChanged { time: now(), iter: run.iter, changes });
    }
    if grown {
        // Its network exists nowhere else: a kill before the first periodic checkpoint must
        // resume the grown network, not start a fresh one.
        run.save(CheckpointReason::Periodic);
    }
}

//! Between two steps: the next command (the front end's channel, or a command file answered in
//! the log first), and one function for each command that obeys it. After a divergence, the
//! wait for a recovery or a stop.

use super::state::{Outcome, Run, gpu_index};
use crate::config::setting as fields;
use crate::config::{Depth, RunConfig, Setting};
use crate::protocol::*;
use crossbeam_channel::{RecvTimeoutError, TryRecvError};

/// What the loop does after the commands between two steps.
// A switch is made once per run: the size of its variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Flow {
    /// Train on.
    Go,
    /// The run has ended (stopped, or its front end gone): checkpointed and summarised.
    Stopped,
    /// The run has closed to start one of another depth with this config.
    Switch { config: RunConfig, mode: SwitchMode },
}

/// What the trainer has to do next, between two steps.
enum Next {
    Command(Command),
    /// Nothing asked: go on training.
    Idle,
    /// The front end has gone: nobody can steer or watch this run any more.
    Gone,
}

/// Whether a command waits to be obeyed, or the front end has gone: the loop reads the steps
/// launched before it back first, so that the command's events follow theirs in the log, and
/// acts on their figures (a stop's checkpoint holds the weights they trained).
pub(super) fn waiting(run: &mut Run) -> bool {
    if run.inbox.has_waiting() {
        return true;
    }
    match run.session.commands.try_recv() {
        Ok(command) => {
            run.inbox.queue(command);
            true
        }
        Err(TryRecvError::Disconnected) => true,
        Err(TryRecvError::Empty) => run.inbox.mail_due(),
    }
}

/// Obeys every command that has arrived, in order; while paused, waits for the next one.
pub(super) fn obey_arrived(run: &mut Run) -> Flow {
    loop {
        let flow = match next_command(run) {
            Next::Command(command) => obey(run, command),
            Next::Idle => return Flow::Go,
            Next::Gone => stop(run),
        };
        if !matches!(flow, Flow::Go) {
            return flow;
        }
    }
}

fn obey(run: &mut Run, command: Command) -> Flow {
    match command {
        Command::Pause => pause(run),
        Command::Resume => resume(run),
        Command::Checkpoint => run.save(CheckpointReason::Requested),
        Command::SwitchDepth { depth, mode } => return switch_depth(run, depth, mode),
        Command::Stop => return stop(run),
        // Only a diverged run recovers (`diverged`).
        Command::Recover { .. } => {}
    }
    Flow::Go
}

fn pause(run: &mut Run) {
    if !run.paused {
        run.paused = true;
        run.clock.stop();
        run.emit(Event::Paused { time: now(), iter: run.iter });
    }
}

fn resume(run: &mut Run) {
    if run.paused {
        run.paused = false;
        run.clock.start();
        run.emit(Event::Resumed { time: now(), iter: run.iter });
    }
}

fn stop(run: &mut Run) -> Flow {
    run.close(EndReason::Stopped);
    Flow::Stopped
}

/// Closes this run for one of `depth`, unless the network cannot grow into it or it would not
/// fit beside what this run holds: then it says why and this run goes on.
fn switch_depth(run: &mut Run, depth: Depth, mode: SwitchMode) -> Flow {
    if mode == SwitchMode::Grow
        && let Err(e) = run.config.depth.grow_to(run.config.shortcut, depth)
    {
        run.error(e.to_string());
        return Flow::Go;
    }
    let (batch, precision) = (run.config.batch_size, run.config.precision);
    let gpu = gpu_index(run.device);
    let held = crate::memory::estimate(run.config.depth, batch, precision, gpu.is_some());
    if !run.session.options.force
        && let Err(e) = crate::memory::fits_now(depth, batch, precision, gpu, Some(held))
    {
        run.error(format!("cannot switch: {e}"));
        return Flow::Go;
    }
    run.close(EndReason::Switched);
    let mut config = run.config.clone();
    config.depth = depth;
    config.warmup = crate::config::paper_warmup(depth).filter(|_| mode == SwitchMode::Fresh);
    Flow::Switch { config, mode }
}

/// The next command to obey: one read from a file earlier, else the channel's, else the
/// command folder's (when it is due a look). While paused, waits until there is one.
fn next_command(run: &mut Run) -> Next {
    loop {
        if let Some(c) = run.inbox.next() {
            return Next::Command(c);
        }
        match run.session.commands.try_recv() {
            Ok(c) => return Next::Command(c),
            Err(TryRecvError::Disconnected) => return Next::Gone,
            Err(TryRecvError::Empty) => {}
        }
        if read_mail(run) {
            continue;
        }
        if !run.paused {
            return Next::Idle;
        }
        match run.session.commands.recv_timeout(super::inbox::MAIL_POLL) {
            Ok(c) => return Next::Command(c),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Next::Gone,
        }
    }
}

/// Answers every command file in the log, removes it, and queues what is to be obeyed; true
/// when something was queued.
fn read_mail(run: &mut Run) -> bool {
    let Some(deliveries) = run.inbox.collect_due() else { return false };
    let mut queued = false;
    for delivery in deliveries {
        run.emit(Event::CommandReceived {
            time: now(),
            iter: run.iter,
            id: delivery.id.clone(),
            request: delivery.request.clone(),
            from: delivery.from.clone(),
            ignored: delivery.verdict.as_ref().err().map(ToString::to_string),
        });
        // Answered in the log first: a kill between the two leaves a file the log calls a duplicate.
        delivery.discard();
        if let Ok(command) = delivery.verdict {
            run.inbox.queue(command);
            queued = true;
        }
    }
    queued
}

/// Where a step's loss became NaN or infinite.
pub(super) struct Divergence {
    pub loss: f64,
    /// The first variable whose values or gradient are not finite, when found.
    pub layer: Option<String>,
}

/// The loss is NaN or infinite: stop at this step, keep the last good checkpoint, and wait for
/// the front end to say whether to recover (lower learning rate) or end.
pub(super) fn diverged(mut run: Run, divergence: Divergence) -> Outcome {
    run.clock.stop();
    let last_good = super::checkpoint::list_periodic(&run.dir.checkpoints()).pop().map(|(_, p)| p);
    let Divergence { loss, layer } = divergence;
    run.emit(Event::Diverged { time: now(), iter: run.iter, loss, last_good: last_good.clone(), layer });
    run.finish(EndReason::Diverged);
    loop {
        match run.session.commands.recv() {
            Ok(Command::Recover { lr_factor }) => {
                if let Some(outcome) = recover(&mut run, lr_factor, last_good.is_some()) {
                    return match outcome {
                        Recovery::Resume(set) => Outcome::Recover { run_dir: run.dir.path.clone(), set },
                        Recovery::Restart(config) => Outcome::Switch { config, grow_from: None },
                    };
                }
            }
            Ok(Command::Stop) | Err(_) => return Outcome::Ended,
            Ok(_) => {}
        }
    }
}

/// How a diverged run goes on.
// Made once per run: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Recovery {
    /// From its last good checkpoint, with these changes of its recipe.
    Resume(Vec<Setting>),
    /// From scratch with this config: there is no checkpoint to go back to.
    Restart(RunConfig),
}

/// The recovery at learning rates `factor` times this run's; refused (and said) when the lowered
/// recipe cannot train, and the run waits for the next command.
fn recover(run: &mut Run, factor: f64, has_checkpoint: bool) -> Option<Recovery> {
    let set = lowered_rates(&run.config, factor);
    match crate::config::apply_settings(&run.config, &set) {
        Ok(_) if has_checkpoint => Some(Recovery::Resume(set)),
        Ok(config) => Some(Recovery::Restart(config)),
        Err(e) => {
            run.error(format!("cannot recover: {e}"));
            None
        }
    }
}

/// A recovery's change of the recipe, like `resume --set` and logged as one: every learning rate
/// (the schedule's and the warm-up's) times `factor`.
pub(super) fn lowered_rates(config: &RunConfig, factor: f64) -> Vec<Setting> {
    let mut set = vec![fields::LR.to(config.lr * factor)];
    set.extend(config.warmup.map(|w| fields::WARMUP_LR.to(w.lr * factor)));
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Warmup, apply_settings, paper};

    #[test]
    fn a_recovery_lowers_every_learning_rate_by_exactly_the_factor() {
        let mut config = paper(Depth::PAPER[4], "d".into());
        config.lr = 0.3;
        config.warmup = Some(Warmup { iters: 400, lr: 0.03, until_error: Some(80.0) });
        let set = lowered_rates(&config, 0.1);
        assert_eq!(set, [fields::LR.to(0.3 * 0.1), fields::WARMUP_LR.to(0.03 * 0.1)]);
        let lowered = apply_settings(&config, &set).unwrap();
        // The products themselves, not what their printed text reads back as.
        assert_eq!(lowered.lr.to_bits(), (0.3f64 * 0.1).to_bits());
        assert_eq!(lowered.warmup.unwrap().lr.to_bits(), (0.03f64 * 0.1).to_bits());
        let changed: Vec<String> = crate::config::differences(&config, &lowered).into_iter().map(|c| c.field).collect();
        assert_eq!(changed, ["lr", "warmup.lr"]);
        let plain = paper(Depth::PAPER[0], "d".into());
        assert_eq!(lowered_rates(&plain, 0.5), [fields::LR.to(0.05)]);
    }
}

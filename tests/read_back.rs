//! The step loop reads its losses back once a window of steps, not once a step, and the run log
//! is what a run reading every step back writes: the same steps, health reports, evaluations and
//! checkpoints, in the same order, with the same figures; a divergence inside a window is
//! reported at the same step, with the same weights and the same broken layer.
//!
//! One test function: the read-back counter is the process's, and tests of one binary run at once.

mod common;

use common::Sandbox;
use resnet_tui::config::{self, Depth, DeviceSpec};
use resnet_tui::protocol::{Event, RunConfig};
use resnet_tui::train::step::read_backs;
use resnet_tui::train::{self, Options, Plan};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn tiny(s: &Sandbox, iters: u64) -> RunConfig {
    let mut config = config::paper(Depth::new(8).unwrap(), s.data());
    config.batch_size = 8;
    config.threads = Some(1);
    config.device = DeviceSpec::Cpu;
    config.seed = 3;
    config.warmup = None;
    config::set_length(&mut config, iters, None);
    config.eval_every = 20;
    config.checkpoint_every = 30;
    config
}

/// Trains `config` in a fresh runs folder, reading back every `read_every` steps; stops a
/// diverged run. Returns the run directory and the read-backs it made.
fn train_with(s: &Sandbox, name: &str, config: RunConfig, read_every: u64) -> (PathBuf, u64) {
    let runs = s.path(name);
    let options = Options { runs_dir: runs.clone(), read_every: Some(read_every), ..Options::default() };
    let before = read_backs();
    let (channels, trainer) = train::spawn(Plan::New { config, runs_dir: runs.clone() }, options);
    loop {
        let event = channels.events.recv_timeout(Duration::from_secs(600)).expect("the trainer goes on").event;
        match event {
            Event::Finished { .. } => break,
            Event::Error { message, fatal: true, .. } => panic!("{message}"),
            _ => {}
        }
    }
    // A diverged run waits for a recovery: the dropped channels end it.
    drop(channels);
    trainer.join();
    let made = read_backs() - before;
    let dirs = common::run_dirs(&runs);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    (dirs[0].clone(), made)
}

/// The log's events as what must not depend on when figures were read: clock times, rates and
/// paths left out, every figure to the bit.
fn comparable(run: &Path) -> Vec<String> {
    common::events(run)
        .into_iter()
        .filter_map(|e| match e {
            Event::Step(s) => Some(format!(
                "step {} epoch {:?} loss {:?} error {:?} lr {:?}",
                s.iter,
                s.epoch.to_bits(),
                s.loss.to_bits(),
                s.error.to_bits(),
                s.lr.to_bits()
            )),
            Event::Health(h) => Some(format!(
                "health {} {:?} {:?} {:?}",
                h.iter,
                h.grad_norm.to_bits(),
                h.weight_norm.to_bits(),
                h.update_ratio.iter().map(|r| r.to_bits()).collect::<Vec<_>>()
            )),
            Event::Eval(v) => {
                Some(format!("eval {} loss {:?} error {:?}", v.iter, v.loss.to_bits(), v.error.to_bits()))
            }
            Event::Checkpoint { iter, reason, .. } => Some(format!("checkpoint {iter} {reason:?}")),
            Event::Diverged { iter, loss, layer, .. } => Some(format!("diverged {iter} {loss} {layer:?}")),
            Event::Finished { summary, .. } => Some(format!(
                "finished {:?} {} {:?} {:?}",
                summary.reason, summary.iters, summary.final_error, summary.best_error
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn steps_are_read_back_once_a_window_and_the_log_is_that_of_a_run_reading_every_step() {
    let s = Sandbox::new();
    let iters = 37;
    let (every, reads_every) = train_with(&s, "every", tiny(&s, iters), 1);
    let (windowed, reads_windowed) = train_with(&s, "windowed", tiny(&s, iters), 5);
    assert_eq!(reads_every, iters, "one read-back a step when the window is one step");
    // Windows of 5 steps, cut short only by the evaluations (20, 37) and the checkpoint (30):
    // 1-5, 6-10, 11-15, 16-20, 21-25, 26-30, 31-35, 36-37.
    assert_eq!(reads_windowed, 8, "one read-back per window of 5 steps");
    let (a, b) = (comparable(&every), comparable(&windowed));
    assert_eq!(a.iter().filter(|e| e.starts_with("step")).count() as u64, iters);
    assert!(a.iter().any(|e| e.starts_with("health")) && a.iter().any(|e| e.starts_with("checkpoint 30")));
    assert_eq!(a, b, "the same log, event for event and bit for bit");

    // A learning rate that makes the loss infinite within a few steps, inside a window of 8.
    let diverging = |s: &Sandbox| {
        let mut config = tiny(s, iters);
        config.lr = 1e6;
        config
    };
    let (every, _) = train_with(&s, "diverged-every", diverging(&s), 1);
    let (windowed, _) = train_with(&s, "diverged-windowed", diverging(&s), 8);
    let (a, b) = (comparable(&every), comparable(&windowed));
    let diverged = a.iter().find(|e| e.starts_with("diverged")).expect("the run diverges");
    let at: u64 = diverged.split(' ').nth(1).and_then(|n| n.parse().ok()).expect("the diverged step");
    // Steps after it were launched in its window of 8, so its gradients were computed again.
    assert!(!at.is_multiple_of(8) && at < 20, "the failing step is inside a window, not its last: {diverged}");
    assert!(!diverged.starts_with("diverged 1 ") && !diverged.contains("None"), "mid-window, with a layer: {diverged}");
    assert_eq!(a, b, "the same steps before it, the same step, loss and layer");
}

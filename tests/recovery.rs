//! A diverged run recovers at a lower learning rate: it goes back to its last good checkpoint,
//! with the lowered rate applied as the value it is and logged as a change of its recipe.
mod common;

use common::*;
use resnet_tui::config::{self, Depth, DeviceSpec};
use resnet_tui::protocol::{Command, EndReason, Event, RunConfig, RunInfo};
use resnet_tui::train::{self, Options, Plan};
use std::time::Duration;

/// The tiny ResNet-8 run of the other tests at a learning rate that diverges in a few steps.
fn diverging(s: &Sandbox) -> RunConfig {
    let mut config = config::paper(Depth::new(8).unwrap(), s.data());
    config.batch_size = 16;
    config.threads = Some(1);
    config.device = DeviceSpec::Cpu;
    config.seed = 7;
    config::set_length(&mut config, 30, None);
    config.eval_every = 20;
    config.lr = 1e6;
    config.checkpoint_every = 1;
    config.keep_checkpoints = 100;
    config
}

#[test]
fn a_diverged_run_recovers_from_its_last_good_checkpoint_at_exactly_the_lowered_rate() {
    let s = Sandbox::new();
    let factor = 1e-7;
    let options = Options { runs_dir: s.runs(), ..Options::default() };
    let (channels, trainer) = train::spawn(Plan::New { config: diverging(&s), runs_dir: s.runs() }, options);
    let (mut starts, mut diverged_at, mut changes, mut ends): (Vec<RunInfo>, _, _, Vec<EndReason>) =
        (Vec::new(), None, None, Vec::new());
    while ends.len() < 2 {
        let event = channels.events.recv_timeout(Duration::from_secs(600)).expect("the trainer goes on").event;
        match event {
            // Only the first divergence is recovered from: the recovered run may diverge again
            // before it obeys the stop sent at its start, and then ends on that stop (the
            // trainer is gone by the time a second recover could be sent).
            Event::Diverged { iter, .. } if diverged_at.is_none() => {
                diverged_at = Some(iter);
                channels.commands.send(Command::Recover { lr_factor: factor }).unwrap();
            }
            Event::RunStarted { run, .. } => {
                starts.push(*run);
                if starts.len() == 2 {
                    channels.commands.send(Command::Stop).unwrap();
                }
            }
            Event::ConfigChanged { changes: c, .. } => changes = Some(c),
            Event::Finished { summary, .. } => ends.push(summary.reason),
            Event::Error { message, fatal: true, .. } => panic!("{message}"),
            _ => {}
        }
    }
    drop(channels);
    trainer.join();
    // The recovered run starts from weights the huge rate has blown up already: it may diverge
    // again before the stop is obeyed. Its start is what this test is about.
    assert_eq!(ends[0], EndReason::Diverged);
    assert!(matches!(ends[1], EndReason::Stopped | EndReason::Diverged), "{ends:?}");
    let at = diverged_at.expect("the run diverged");
    let (first, recovered) = (&starts[0], &starts[1]);
    assert_eq!(recovered.dir, first.dir, "the same run, resumed");
    assert_eq!(recovered.start_iter, at - 1, "from the last good checkpoint");
    // The product itself: nothing printed and read back in between.
    assert_eq!(recovered.config.lr.to_bits(), (1e6 * factor).to_bits());
    assert_eq!(RunConfig { lr: first.config.lr, ..recovered.config.clone() }, first.config);
    let changes = changes.expect("the lower rate is logged as a change of the recipe");
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!((changes[0].field.as_str(), changes[0].from.as_f64()), ("lr", Some(1e6)));
    assert_eq!(changes[0].to.as_f64().map(f64::to_bits), Some((1e6 * factor).to_bits()));
    let stored = resnet_tui::rundir::read_config(&first.dir).unwrap();
    assert_eq!(stored.lr.to_bits(), (1e6 * factor).to_bits(), "config.json holds the change");
}

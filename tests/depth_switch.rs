//! A depth switch that grows the network: the grown run carries on the parent's iteration count
//! and writes a checkpoint the moment it starts, so a kill before its first periodic checkpoint
//! resumes the grown network, not a fresh one.

mod common;

use resnet_tui::config::{Depth, paper, set_length};
use resnet_tui::protocol::{CheckpointReason, Command, Envelope, Event, SwitchMode};
use resnet_tui::train::checkpoint;
use resnet_tui::train::{Options, Plan};

#[test]
fn a_grown_run_checkpoints_the_grown_network_before_its_first_step() {
    let s = common::Sandbox::new();
    let mut config = paper(Depth::new(8).unwrap(), s.data());
    config.batch_size = 16;
    config.threads = Some(1);
    config.warmup = None;
    set_length(&mut config, 40, None);
    config.eval_every = 1000;
    config.checkpoint_every = 1000;
    let options = Options { runs_dir: s.runs(), ..Options::default() };
    let (channels, trainer) = resnet_tui::train::spawn(Plan::New { config, runs_dir: s.runs() }, options);
    let grow_to = Depth::new(14).unwrap();
    // What the grown run (run 1) did first, and its start.
    let mut first = None;
    let mut start = None;
    for Envelope { run, event } in channels.events.iter() {
        match (run, &event) {
            (0, Event::Step(step)) if step.iter == 3 => {
                channels.commands.send(Command::SwitchDepth { depth: grow_to, mode: SwitchMode::Grow }).unwrap();
            }
            (1, Event::RunStarted { run, .. }) => start = Some((run.start_iter, run.grown_from.clone())),
            (1, Event::Checkpoint { .. } | Event::Step(_)) if first.is_none() => {
                first = Some(event.clone());
                channels.commands.send(Command::Stop).unwrap();
            }
            (_, Event::Error { message, fatal: true, .. }) => panic!("training failed: {message}"),
            (1, Event::Finished { .. }) => break,
            _ => {}
        }
    }
    drop(channels);
    trainer.join();
    let (start_iter, parent) = start.expect("the grown run started");
    // The switch happens at the step boundary after the command arrives: step 3 or a little later.
    assert!((3..10).contains(&start_iter), "the grown run carries on the parent's iteration count: {start_iter}");
    assert!(parent.is_some_and(|p| p.ends_with("resnet8")));
    let Some(Event::Checkpoint { iter, reason: CheckpointReason::Periodic, path, .. }) = first else {
        panic!("the grown run's first event after its start is not a checkpoint: {first:?}");
    };
    assert_eq!(iter, start_iter);
    let ck = checkpoint::read(&path).unwrap();
    assert_eq!((ck.state.config.depth, ck.state.iter), (grow_to, start_iter));
    // The added block (the second of each stage) starts as an identity: its last scale is zero.
    let scale = &ck.model["stage0.block1.bn2.weight"];
    assert_eq!(scale.abs().sum(tch::Kind::Float).double_value(&[]), 0.0);
    assert!(checkpoint::list_periodic(path.parent().unwrap()).iter().any(|(i, _)| *i == start_iter));
}

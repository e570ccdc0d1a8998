//! A front end that stops reading the trainer's events: the trainer keeps at most a bounded
//! queue for it, finishes the run all the same, and what the front end reads afterwards still
//! ends with the finish; the run log has every step.

mod common;

use resnet_tui::config::{Depth, paper, set_length};
use resnet_tui::protocol::{EndReason, Event};
use resnet_tui::train::{EVENTS_CAPACITY, Options, Plan, STEP_ROOM};

#[test]
fn a_trainer_whose_front_end_reads_nothing_finishes_with_a_bounded_queue_and_the_finish_is_read_last() {
    let s = common::Sandbox::new();
    let mut config = paper(Depth::new(8).unwrap(), s.data());
    config.batch_size = 2;
    config.threads = Some(1);
    config.warmup = None;
    let iters = (EVENTS_CAPACITY + 300) as u64;
    set_length(&mut config, iters, None);
    config.eval_every = iters;
    config.checkpoint_every = iters;
    let options = Options { runs_dir: s.runs(), ..Options::default() };
    let (channels, trainer) = resnet_tui::train::spawn(Plan::New { config, runs_dir: s.runs() }, options);
    // Nothing is read until the trainer's thread has ended: before the channel was bounded it
    // held every event of the run by then.
    trainer.join();
    assert!(channels.events.len() <= EVENTS_CAPACITY, "{} events wait", channels.events.len());
    let got: Vec<Event> = channels.events.try_iter().map(|e| e.event).collect();
    let steps = got.iter().filter(|e| matches!(e, Event::Step(_))).count();
    assert!(steps <= STEP_ROOM, "{steps} steps queued");
    assert!(
        got.iter().any(|e| matches!(e, Event::Status { message, .. } if message.contains("steps not shown"))),
        "the front end is told it missed steps: {got:?}"
    );
    assert!(
        matches!(got.last(), Some(Event::Finished { summary, .. }) if summary.reason == EndReason::Completed),
        "{:?}",
        got.last()
    );
    let run = s.only_run();
    assert_eq!(common::step_losses(&run).len() as u64, iters, "the run log has every step");
}

//! The trainer's end of the event channel: bounded, so that a front end that stops reading
//! (a terminal paused with Ctrl-S, a pipe nobody reads) cannot grow the trainer's memory
//! without limit, and shaped so that it cannot stall training for good either.
//!
//! The policy (docs/architecture.md, "Choices worth knowing"): the trainer has written every
//! event to the run log before it sends it, so the log is complete whatever the channel does.
//! A step only moves a progress bar or extends a curve by one point, and the next step says as
//! much: steps go in only while fewer than `STEP_ROOM` events wait, and past that they are
//! dropped and counted; when the front end reads again, a status line says how many it missed
//! ("the run log has every one") before what comes next. Every other event (a start, an
//! evaluation, a checkpoint, a pause, the finish) changes what a front end shows for good, so
//! it is never dropped: it waits for room. Steps never take the last `CAPACITY - STEP_ROOM`
//! places, so those events block only once that many of them are unread: hundreds of
//! evaluations and checkpoints, a front end that has read nothing for hours. Then training
//! waits for it, as any program waits for the reader of its output.

use crate::protocol::{Envelope, Event, now};
use crossbeam_channel::{Receiver, Sender};
use std::cell::Cell;

/// Events the channel holds at most (a step is about 100 bytes, an evaluation a few kB).
pub const CAPACITY: usize = 1024;
/// Steps are sent only while fewer events than this wait unread.
pub const STEP_ROOM: usize = CAPACITY * 3 / 4;

/// The sending side; one per trainer thread.
pub(crate) struct Outbox {
    tx: Sender<Envelope>,
    /// Steps dropped since the front end last had room for one.
    dropped: Cell<u64>,
}

/// A bounded channel of `CAPACITY` events and the outbox that feeds it.
pub(crate) fn channel() -> (Outbox, Receiver<Envelope>) {
    let (tx, rx) = crossbeam_channel::bounded(CAPACITY);
    (Outbox { tx, dropped: Cell::new(0) }, rx)
}

impl Outbox {
    /// Sends `envelope` as the policy says. A front end that has gone away is not the trainer's
    /// problem: it keeps training and logging.
    pub fn send(&self, envelope: Envelope) {
        let step = matches!(envelope.event, Event::Step(_));
        if step && self.tx.len() >= STEP_ROOM {
            self.dropped.set(self.dropped.get() + 1);
            return;
        }
        let dropped = self.dropped.replace(0);
        if dropped > 0 {
            let message = format!(
                "the display fell behind: {} steps not shown (the run log has every one)",
                crate::format::group_digits(dropped)
            );
            let _ = self.tx.send(Envelope { run: envelope.run, event: Event::Status { time: now(), message } });
        }
        let _ = self.tx.send(envelope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{CheckpointReason, EndReason, StepRecord, Summary};

    fn step(iter: u64) -> Envelope {
        let record = StepRecord {
            time: 0.0,
            iter,
            epoch: 0.0,
            elapsed: 0.0,
            loss: 1.0,
            error: 50.0,
            lr: 0.1,
            images_per_sec: 1.0,
        };
        Envelope { run: 0, event: Event::Step(record) }
    }

    #[test]
    fn a_front_end_that_reads_nothing_holds_a_bounded_queue_and_later_still_sees_every_other_event_and_the_finish() {
        let (outbox, events) = channel();
        // 100,000 steps and a checkpoint among them, none read: the trainer never waits.
        for iter in 1..=100_000 {
            outbox.send(step(iter));
            if iter == 50_000 {
                let path = "/runs/r/ck".into();
                let reason = CheckpointReason::Periodic;
                outbox.send(Envelope { run: 0, event: Event::Checkpoint { time: 0.0, iter, path, reason, secs: 0.1 } });
            }
            assert!(events.len() <= STEP_ROOM + 2, "{} events wait", events.len());
        }
        let summary = Summary {
            reason: EndReason::Completed,
            iters: 100_000,
            final_error: None,
            best_error: None,
            best_iter: None,
            train_secs: 1.0,
        };
        outbox.send(Envelope { run: 0, event: Event::Finished { time: 1.0, summary } });
        drop(outbox);
        let got: Vec<Event> = events.iter().map(|e| e.event).collect();
        let steps: Vec<u64> =
            got.iter().filter_map(|e| if let Event::Step(s) = e { Some(s.iter) } else { None }).collect();
        assert_eq!(steps, (1..=STEP_ROOM as u64).collect::<Vec<_>>(), "the first steps, until the room was taken");
        let said: Vec<&str> = got
            .iter()
            .filter_map(|e| if let Event::Status { message, .. } = e { Some(message.as_str()) } else { None })
            .collect();
        let missed = |n: u64| {
            format!(
                "the display fell behind: {} steps not shown (the run log has every one)",
                crate::format::group_digits(n)
            )
        };
        assert_eq!(said, [missed(50_000 - STEP_ROOM as u64), missed(50_000)]);
        assert!(got.iter().any(|e| matches!(e, Event::Checkpoint { iter: 50_000, .. })));
        assert!(matches!(got.last(), Some(Event::Finished { .. })), "{:?}", got.last());
    }

    #[test]
    fn a_front_end_that_keeps_up_gets_every_step_and_no_note() {
        let (outbox, events) = channel();
        for iter in 1..=3 * CAPACITY as u64 {
            outbox.send(step(iter));
            assert!(matches!(events.try_recv().map(|e| e.event), Ok(Event::Step(s)) if s.iter == iter));
        }
        assert!(events.is_empty());
    }
}

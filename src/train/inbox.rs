//! Commands that come as files (`mailbox`): the run directory's command folder, looked at every
//! `MAIL_POLL` at most, and the commands read from it waiting their turn.

use crate::mailbox::{Delivery, Mailbox};
use crate::protocol::{Command, now};
use crate::rundir::RunDir;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often the run directory's command folder is looked at: often enough that a key pressed
/// in `attach` is obeyed within a step or so, rarely enough to cost nothing on a shared file system.
pub(super) const MAIL_POLL: Duration = Duration::from_millis(250);

pub(super) struct Inbox {
    mailbox: Mailbox,
    waiting: VecDeque<Command>,
    last_read: Option<Instant>,
}

impl Inbox {
    pub fn new(dir: &RunDir) -> Inbox {
        Inbox { mailbox: Mailbox::new(&dir.path, &dir.name, &dir.log()), waiting: VecDeque::new(), last_read: None }
    }

    /// The oldest command read from a file and not yet obeyed.
    pub fn next(&mut self) -> Option<Command> {
        self.waiting.pop_front()
    }

    /// Whether commands read from files wait their turn.
    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Whether the folder is due a look and holds a command file: [`Inbox::collect_due`] would
    /// then have something to answer.
    pub fn mail_due(&self) -> bool {
        let due = self.last_read.is_none_or(|t| t.elapsed() >= MAIL_POLL);
        due && self.mailbox.has_mail()
    }

    /// The command files waiting, when the folder is due a look (`None` when it is not). Each
    /// must be answered in the log, then discarded; what is to be obeyed is `queue`d.
    pub fn collect_due(&mut self) -> Option<Vec<Delivery>> {
        if self.last_read.is_some_and(|t| t.elapsed() < MAIL_POLL) {
            return None;
        }
        self.last_read = Some(Instant::now());
        Some(self.mailbox.collect(now()))
    }

    /// Queues a command to be obeyed after those waiting (a file's, or one taken from the
    /// front end's channel early).
    pub fn queue(&mut self, command: Command) {
        self.waiting.push_back(command);
    }
}

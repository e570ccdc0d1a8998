//! The one line each event is said in, and how it reads (good, bad, ...): headless mode prints
//! these lines and the dashboard lists them, so both say the same words for the same event.

use super::history::History;
use crate::format::{group_digits, secs};
use crate::protocol::{CheckpointReason, EndReason, Event, RunInfo};

/// How a line reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Info,
    Good,
    Warn,
    Bad,
}

/// A line said about an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Said {
    pub text: String,
    pub tone: Tone,
}

fn said(text: String, tone: Tone) -> Option<Said> {
    Some(Said { text, tone })
}

/// The line for `event`, given the history of its run *before* it (which tells, for instance,
/// whether an evaluation is the best so far). `None` for events not worth a line: steps, and the
/// best-model checkpoint that follows every improving evaluation.
pub fn describe(event: &Event, before: &History) -> Option<Said> {
    match event {
        Event::RunStarted { run, .. } => said(started(run), Tone::Good),
        Event::Status { message, .. } => said(message.clone(), Tone::Info),
        Event::Step(_) => None,
        Event::Eval(e) => {
            let best = before.best().is_none_or(|(b, _)| e.error < b);
            let mark = if best { " (best)" } else { "" };
            let text = format!("iter {}: {} error {:.2}%{mark}, loss {:.4}", e.iter, e.set.name(), e.error, e.loss);
            said(text, Tone::Info)
        }
        Event::Checkpoint { reason: CheckpointReason::Best, .. } => None,
        Event::Checkpoint { path, reason, .. } => {
            said(format!("checkpoint ({}): {}", reason_name(*reason), path.display()), Tone::Good)
        }
        Event::WarmupEnded { iter, window_error, capped, .. } => {
            let bar = before.info.as_ref().and_then(|i| i.config.warmup).and_then(|w| w.until_error);
            let why = match (capped, bar) {
                (false, Some(bar)) => format!("below {bar}%"),
                _ => "its cap".to_string(),
            };
            let window = crate::config::WARMUP_WINDOW;
            let text = format!(
                "warm-up ended at iteration {iter} ({why}): training error {window_error:.1}% over the last {window} steps"
            );
            said(text, Tone::Good)
        }
        Event::ConfigChanged { iter, changes, .. } => {
            let list: Vec<String> = changes.iter().map(change_text).collect();
            said(format!("recipe changed at iteration {iter}: {}", list.join(", ")), Tone::Warn)
        }
        Event::CommandReceived { iter, request, from, ignored, .. } => {
            let from = if from.is_empty() { String::new() } else { format!(" from {from}") };
            match ignored {
                None => said(format!("command file{from}: {request} (at iteration {iter})"), Tone::Info),
                Some(why) => said(format!("warning: ignored a command file{from} ({request}): {why}"), Tone::Warn),
            }
        }
        Event::Paused { iter, .. } => said(format!("paused at iteration {iter}"), Tone::Warn),
        Event::Resumed { iter, .. } => said(format!("resumed at iteration {iter}"), Tone::Good),
        Event::Diverged { iter, loss, last_good, layer, .. } => {
            let back = last_good.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".into());
            let at = layer.as_ref().map(|l| format!(", first non-finite in {l}")).unwrap_or_default();
            said(format!("diverged at iteration {iter}: loss is {loss}{at}; last good checkpoint: {back}"), Tone::Bad)
        }
        Event::Health(_) => None,
        Event::Finished { summary, .. } => {
            let why = match summary.reason {
                EndReason::Completed => "completed",
                EndReason::Stopped => "stopped",
                EndReason::Switched => "closed for a depth switch",
                EndReason::Diverged => "ended: diverged",
            };
            let set = before.info.as_ref().map(|i| i.eval_set.name()).unwrap_or("test");
            let pct = |e: Option<f64>| e.map(|v| format!("{v:.2}%")).unwrap_or_else(|| "-".into());
            let best = match (summary.best_error, summary.best_iter) {
                (Some(e), Some(i)) => format!("{e:.2}% at iteration {i}"),
                _ => "-".into(),
            };
            // Only a completed run's last evaluation is its final error; a stopped one's is its latest.
            let last = if summary.reason == EndReason::Completed { "final" } else { "latest" };
            let text = format!(
                "run {why} after {} iterations in {}: {last} {set} error {}, best {best}",
                summary.iters,
                secs(summary.train_secs),
                pct(summary.final_error),
            );
            said(text, if summary.reason == EndReason::Diverged { Tone::Bad } else { Tone::Good })
        }
        Event::Error { message, fatal: true, .. } => said(message.clone(), Tone::Bad),
        Event::Error { message, fatal: false, .. } => said(format!("warning: {message}"), Tone::Warn),
    }
}

fn started(run: &RunInfo) -> String {
    let c = &run.config;
    let log = run.dir.join(crate::runlog::LOG_NAME);
    let what = if let Some(from) = &run.grown_from {
        format!("started {} grown from {from} at iteration {}", c.network_name(), run.start_iter)
    } else if run.start_iter > 0 {
        format!("resumed {} ({}) at iteration {}", run.name, c.network_name(), run.start_iter)
    } else {
        format!("started {} ({})", c.network_name(), run.name)
    };
    let precision = match &c.precision_why {
        Some(why) => format!("{} ({why})", precision_name(c.precision)),
        None => precision_name(c.precision).to_string(),
    };
    let mut text = format!(
        "{what}: {} parameters on {}, {} iterations in {precision}, evaluating on {} {} images; log {}",
        group_digits(run.params),
        run.device,
        group_digits(c.iters),
        group_digits(run.eval_images as u64),
        run.eval_set.name(),
        log.display()
    );
    // Which binary on which CPU trains from here (logs before schema 1.6 do not say).
    if let Some(build) = &run.build {
        text.push_str(&format!("; {build}"));
    }
    if let Some(cpu) = &run.cpu {
        text.push_str(&format!(" on {cpu}"));
    }
    text
}

/// `lr 0.1 -> 0.05`.
pub fn change_text(c: &crate::config::ConfigChange) -> String {
    format!("{} {} -> {}", c.field, c.from, c.to)
}

pub fn reason_name(reason: CheckpointReason) -> &'static str {
    match reason {
        CheckpointReason::Periodic => "periodic",
        CheckpointReason::Requested => "requested",
        CheckpointReason::Best => "best",
        // Written as the run closes, whether it completed or was stopped.
        CheckpointReason::Final => "closing",
    }
}

fn precision_name(p: crate::protocol::Precision) -> &'static str {
    match p {
        crate::protocol::Precision::Fp32 => "fp32",
        crate::protocol::Precision::Bf16 => "bf16",
    }
}

//! `resnet-tui eval CHECKPOINT`: test (or training) loss and error of a saved model.

use crate::cli::EvalArgs;
use crate::train::checkpoint::BEST_NAME;
use crate::train::evaluate::EvalImages;
use crate::train::{device, evaluate};
use anyhow::{Result, bail};
use std::process::ExitCode;

pub fn run(args: &EvalArgs) -> Result<ExitCode> {
    let path = if args.checkpoint.is_dir() {
        let best = args.checkpoint.join(crate::rundir::CHECKPOINT_DIR).join(BEST_NAME);
        if !best.is_file() {
            bail!("{}: no {} in this run", args.checkpoint.display(), BEST_NAME);
        }
        best
    } else {
        args.checkpoint.clone()
    };
    let device = device::resolve(args.device)?;
    if let Some(note) = device::auto_fallback(args.device, device) {
        eprintln!("eval: warning: {note}");
    }
    let e = evaluate::evaluate_checkpoint(&path, device, args.precision, args.data_dir.as_deref(), args.images)?;
    let what = match args.images {
        EvalImages::Test => "images",
        EvalImages::Train => "images it trained on, without crops or flips",
    };
    let set = args.images.name();
    println!(
        "{}: {} after {} iterations: {set} loss {:.4}, {set} error {:.2}% ({} {what}, {})",
        path.display(),
        e.config.network_name(),
        e.iter,
        e.result.loss,
        e.result.error,
        e.result.images,
        e.precision,
    );
    Ok(ExitCode::SUCCESS)
}

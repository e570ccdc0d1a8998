//! `resnet-tui eval CHECKPOINT`: test loss and error of a saved model.

use crate::cli::EvalArgs;
use crate::data::augment::Normalizer;
use crate::model::Network;
use crate::train::checkpoint::{self, BEST_NAME};
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
    let ck = checkpoint::read(&path)?;
    let device = device::resolve(args.device)?;
    if let Some(note) = device::auto_fallback(args.device, device) {
        eprintln!("eval: warning: {note}");
    }
    let config = &ck.state.config;
    let mut network = Network::new(config.depth, config.shortcut, device);
    ck.load_into(&network)?;
    // As the run evaluated itself while training: in its precision (bf16 rounds activations, which
    // moves a few borderline images) and channels-last, the layout training keeps.
    let precision = args.precision.unwrap_or(config.precision);
    network.to_channels_last();
    network.net.compute = crate::model::compute_kind(precision);
    let data_dir =
        args.data_dir.clone().unwrap_or_else(|| crate::data::fetch::recorded_or_configured(&config.data_dir));
    let data = crate::data::cifar::load(&data_dir)?;
    let test = data.test.to_device(device);
    let r = evaluate::evaluate(&network.net, &test, &Normalizer::new(device), true)?;
    println!(
        "{}: {} after {} iterations: test loss {:.4}, test error {:.2}% ({} images, {})",
        path.display(),
        config.network_name(),
        ck.state.iter,
        r.loss,
        r.error,
        r.images,
        precision,
    );
    Ok(ExitCode::SUCCESS)
}

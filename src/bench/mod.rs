//! `resnet-tui bench`: training, evaluation, data and start-up speed on this machine, printed as a
//! table and optionally written as JSON. The full loop runs first, so that the time from the
//! process's start to its first step is a cold start.

mod measure;
mod pipeline;
mod procinfo;
mod report;

pub use report::Report;

use crate::cli::{BenchArgs, Measurement};
use crate::data::cifar;
use crate::protocol::Precision;
use anyhow::{Context, Result, bail};
use measure::Variant;
use tch::{Device, Kind};

/// What `--only` accepts, and whether it runs by default (bf16 too on a GPU): what each
/// measures is its variant's help in `cli::Measurement`.
const PARTS: [(Measurement, bool); 12] = [
    (Measurement::Loop, true),
    (Measurement::LoopBf16, false),
    (Measurement::Load, true),
    (Measurement::Augment, true),
    (Measurement::Step, true),
    (Measurement::Sgd, true),
    (Measurement::Eval, true),
    (Measurement::Bf16, false),
    (Measurement::Fp16, false),
    (Measurement::EvalSweep, false),
    (Measurement::Health, false),
    (Measurement::Profile, false),
];

/// Warm-up steps before timing: kernel choice and allocator growth happen in the first few.
const WARMUP: usize = 5;

fn parts(args: &BenchArgs, device: Device) -> Vec<Measurement> {
    match &args.only {
        Some(only) => only.clone(),
        None => PARTS
            .iter()
            .filter(|(part, default)| *default || (*part == Measurement::Bf16 && device.is_cuda()))
            .map(|p| p.0)
            .collect(),
    }
}

/// Runs the chosen measurements and returns the report (the caller prints it).
pub fn run(args: &BenchArgs) -> Result<Report> {
    if args.batch_size == 0 || args.steps == 0 {
        bail!("--batch-size and --steps must be at least 1");
    }
    if let Some(t) = args.threads {
        tch::set_num_threads(t as i32);
    }
    let device = crate::train::device::resolve(args.device)?;
    if let Some(note) = crate::train::device::auto_fallback(args.device, device) {
        eprintln!("bench: warning: {note}");
    }
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let parts = parts(args, device);
    let data_dir = crate::cli::data_dir(args.data_dir.clone());
    cifar::check_present(&data_dir)?;
    let mut report = Report::new(args, device);
    let has = |p: Measurement| parts.contains(&p);
    let steps = args.steps;

    let fp32_loop = pipeline::LoopSpec {
        depth: args.depth,
        device: args.device,
        threads: args.threads,
        batch_size: args.batch_size,
        warmup: WARMUP as u64,
        steps: steps as u64,
        data_dir: &data_dir,
        precision: Precision::Fp32,
        first_in_process: true,
        read_every: crate::train::window::default_read_every(device),
    };
    if has(Measurement::Loop) {
        let untimed = pipeline::timed_span(fp32_loop.warmup, fp32_loop.steps, fp32_loop.read_every).0;
        eprintln!("bench: full training loop ({untimed} + {steps} steps)");
        report.full_loop = Some(pipeline::full_loop(&fp32_loop)?);
    }
    if has(Measurement::LoopBf16) {
        eprintln!("bench: full training loop in bf16");
        let spec =
            pipeline::LoopSpec { precision: Precision::Bf16, first_in_process: !has(Measurement::Loop), ..fp32_loop };
        report.full_loop_bf16 = Some(pipeline::full_loop(&spec)?);
    }
    // The parts below run on their own thread, as training does on the trainer thread: OpenMP's
    // per-thread settings treat the main thread differently, and the bare step must be compared
    // with the loop under the same conditions.
    let threads = args.threads;
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("bench".into())
            // As large as the trainer thread's, for cuDNN's autotuner (train::spawn says why).
            .stack_size(crate::train::TRAINER_STACK_BYTES)
            .spawn_scoped(scope, || {
                if let Some(t) = threads {
                    tch::set_num_threads(t as i32);
                }
                measure_parts(args, device, &parts, &data_dir, &mut report)
            })
            .context("spawning the measuring thread")?
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the measuring thread panicked")))
    })?;
    report.finish();
    Ok(report)
}

/// Everything but the full loop, on one data set loaded onto `device`.
fn measure_parts(
    args: &BenchArgs,
    device: Device,
    parts: &[Measurement],
    data_dir: &std::path::Path,
    report: &mut Report,
) -> Result<()> {
    let has = |p: Measurement| parts.contains(&p);
    let steps = args.steps;
    if has(Measurement::Load) {
        eprintln!("bench: loading the data set");
        report.load_secs = Some(measure::load_secs(data_dir, 3)?);
    }
    let need_data = parts.iter().any(|p| !matches!(p, Measurement::Loop | Measurement::LoopBf16 | Measurement::Load));
    if need_data {
        let data = cifar::load(data_dir)?;
        let (train, test) = (data.train.to_device(device), data.test.to_device(device));
        drop(data);
        if has(Measurement::Augment) {
            eprintln!("bench: building batches");
            let batches = (steps as u64 * 2).max(20);
            report.augment_images_per_sec =
                Some(measure::augment_images_per_sec(&train, args.batch_size, batches, true));
        }
        let mut variants = Vec::new();
        if has(Measurement::Step) {
            for channels_last in [false, true] {
                variants.push(Variant { channels_last, compute: Kind::Float, flat_sgd: true });
            }
        }
        for (part, kind) in [(Measurement::Bf16, Kind::BFloat16), (Measurement::Fp16, Kind::Half)] {
            if has(part) {
                variants.push(Variant { channels_last: true, compute: kind, flat_sgd: true });
            }
        }
        if !variants.is_empty() {
            eprintln!("bench: bare training step ({} variants, {steps} steps each, interleaved)", variants.len());
            let plan = measure::StepPlan {
                depth: args.depth,
                device,
                train: &train,
                batch_size: args.batch_size,
                warmup: WARMUP,
                steps,
                rounds: 3,
            };
            report.steps = measure::bare_steps(&variants, &plan)?;
        }
        if has(Measurement::Sgd) {
            eprintln!("bench: optimizer step");
            report.sgd = Some(measure::sgd_step_us(args.depth, device, &train, args.batch_size, 100)?);
        }
        if has(Measurement::Health) {
            eprintln!("bench: health figures (every step against none, interleaved)");
            report.health = Some(measure::health_cost(args.depth, device, &train, args.batch_size, steps)?);
        }
        if has(Measurement::Profile) {
            if crate::fused::switch() == crate::fused::Switch::Off {
                bail!("--only profile: the fused pass is off ({}=0)", crate::fused::SWITCH);
            }
            for precision in [Precision::Fp32, Precision::Bf16] {
                eprintln!("bench: the fused step's profile, {precision}");
                let profile = measure::fused_profile(args.depth, device, precision, &train, args.batch_size, steps)?;
                report.fused_profiles.push(profile);
            }
        }
        if has(Measurement::Eval) || has(Measurement::EvalSweep) {
            eprintln!("bench: evaluation");
            let sizes: Vec<usize> = if has(Measurement::EvalSweep) {
                vec![250, 500, 1000, 2500, 5000]
            } else {
                vec![crate::train::evaluate::EVAL_BATCH]
            };
            report.eval = measure::eval_speeds(args.depth, device, &test, &sizes)?;
        }
    }
    Ok(())
}

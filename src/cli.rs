//! The command line: clap definitions and their translation into a run config.

use crate::config::{self, ConfigError, Depth, DeviceSpec, Precision, RunConfig, Shortcut};
use crate::ui::theme::Marker;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "resnet-tui",
    version,
    about = "Train He et al.'s CIFAR-10 ResNets with libtorch and watch them live in the terminal",
    long_about = "Train He et al.'s CIFAR-10 ResNets (depth 6n+2) with libtorch and watch them live in the \
                  terminal. With no subcommand, trains with the dashboard (same options as `train`).",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Commands>,
    #[command(flatten)]
    pub train: TrainArgs,
}

#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Train a ResNet (the default when no subcommand is given).
    Train(TrainArgs),
    /// Continue a run from its newest checkpoint, appending to its log.
    Resume(ResumeArgs),
    /// Print test loss and error of a saved checkpoint.
    Eval(EvalArgs),
    /// Manage the CIFAR-10 data set.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Play recorded runs in the dashboard, overlaid when several are given.
    Replay(ReplayArgs),
    /// Print a table of runs: depth, parameters, iterations, final and best error, the paper's.
    Summary(SummaryArgs),
    /// Draw the error and loss curves of one or several runs to a PNG or SVG file.
    Plot(PlotArgs),
    /// Write every step and evaluation of a run as CSV.
    Export(ExportArgs),
    /// Measure training, evaluation, data and start-up speed on this machine.
    Bench(BenchArgs),
    /// Print a shell completion script: `resnet-tui completions bash > ~/.local/share/bash-completion/completions/resnet-tui`.
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download the official binary archive, check its md5 and unpack it.
    Fetch {
        /// Folder to unpack into [default: --data-dir, CIFAR10_DIR, or the per-user data folder].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address of the archive, for a mirror [env: CIFAR10_URL].
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Network depth: 20, 32, 44, 56, 110, 1202, or any 6n+2.
    #[arg(long, default_value = "20", value_parser = parse_depth)]
    pub depth: Depth,
    /// Shortcut where a block changes shape: a = identity with zero padding (the paper's), b = 1x1 projection.
    #[arg(long, default_value = "a", value_parser = choice::<Shortcut>(&["a", "b"]))]
    pub shortcut: Shortcut,
    /// Iterations to train [default: 64000, the paper's].
    #[arg(long, conflicts_with = "epochs", allow_negative_numbers = true)]
    pub iters: Option<u64>,
    /// Epochs to train, instead of --iters (one epoch = one pass over the training images).
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<f64>,
    /// Iterations where the learning rate is divided by 10, comma-separated [default: 32000,48000;
    /// for a shorter run, 1/2 and 3/4 of it].
    #[arg(long, value_delimiter = ',')]
    pub milestones: Option<Vec<u64>>,
    /// Initial learning rate.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub momentum: f64,
    /// Weight decay (L2), applied to every parameter.
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// Images per batch.
    #[arg(long, default_value_t = 128, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Hold out the last N training images for validation and evaluate on them (the paper used 5000).
    #[arg(long, default_value_t = 0)]
    pub val_split: usize,
    /// Evaluate every N iterations [default: once an epoch].
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Write a checkpoint every N iterations.
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_every: u64,
    /// Periodic checkpoints to keep (the best one is kept besides).
    #[arg(long, default_value_t = 3)]
    pub keep_checkpoints: usize,
    /// Warm-up at --warmup-lr for at most this many iterations [default: 1000 for depth >= 110, else
    /// none; 0: none].
    #[arg(long)]
    pub warmup_iters: Option<u64>,
    /// Learning rate during the warm-up.
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub warmup_lr: f64,
    /// The warm-up ends once the training error, averaged over the last 20 steps, is below this
    /// percentage (the paper's 80%); 0 warms up for exactly --warmup-iters.
    #[arg(long, default_value_t = crate::reference::recipe::WARMUP_UNTIL_ERROR, allow_negative_numbers = true)]
    pub warmup_until_error: f64,
    /// Seed for initialisation, data order and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// auto (CUDA if present, else CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: DeviceSpec,
    /// CPU threads for libtorch [default: libtorch's choice, the number of cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Convolutions and activations in fp32, or bf16 (mixed precision: weights, BatchNorm and the
    /// loss stay fp32). bf16 pays on GPUs; on CPUs without AMX it is slower.
    #[arg(long, default_value = "fp32", value_parser = choice::<Precision>(&["fp32", "bf16"]))]
    pub precision: Precision,
    /// Folder with the CIFAR-10 binary files [default: CIFAR10_DIR, else the per-user data folder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Download the data set first if it is not there.
    #[arg(long)]
    pub fetch: bool,
    /// Folder that holds one directory per run.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// No dashboard: plain progress for ssh sessions and batch jobs.
    #[arg(long)]
    pub no_ui: bool,
    /// Start even when the run's memory estimate does not fit in the memory that is free.
    #[arg(long)]
    pub force: bool,
    /// Chart marker, for fonts without Braille.
    #[arg(long, value_enum, default_value_t = Marker::Braille)]
    pub marker: Marker,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The run directory to continue.
    pub run_dir: PathBuf,
    /// Change the recipe on purpose, e.g. `--set lr=0.05` (repeatable; nested fields dotted:
    /// `warmup.lr=0.005`; lists comma-separated: `milestones=30000,45000`). Logged as an event.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// No dashboard.
    #[arg(long)]
    pub no_ui: bool,
    /// Start even when the run's memory estimate does not fit in the memory that is free.
    #[arg(long)]
    pub force: bool,
    /// Folder for runs started by a depth switch [default: the run's parent folder].
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
    /// Chart marker, for fonts without Braille.
    #[arg(long, value_enum, default_value_t = Marker::Braille)]
    pub marker: Marker,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint file (or a run directory: its best checkpoint).
    pub checkpoint: PathBuf,
    /// Folder with the CIFAR-10 binary files [default: the one the run trained on].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: DeviceSpec,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Run directories or event logs; `-` reads a log from standard input, e.g.
    /// `ssh host tail -n +1 -f runs/X/events.jsonl | resnet-tui replay --follow -`.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Play at N times the recorded pace [default: as fast as possible].
    #[arg(long)]
    pub speed: Option<f64>,
    /// Keep reading a log that is still being written.
    #[arg(long)]
    pub follow: bool,
    /// Print the runs' summaries instead of drawing.
    #[arg(long)]
    pub no_ui: bool,
    /// Chart marker, for fonts without Braille.
    #[arg(long, value_enum, default_value_t = Marker::Braille)]
    pub marker: Marker,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum TableFormat {
    #[default]
    Table,
    Csv,
    Markdown,
    Json,
}

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// Run directories or event logs (`events.jsonl`, or `events.jsonl.gz`).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// table for reading, csv for spreadsheets, markdown for a README, json for programs.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Run directories or event logs, drawn together.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Output file; .png or .svg.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Image width in pixels.
    #[arg(long, default_value_t = 1200)]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 800)]
    pub height: u32,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A run directory or event log.
    pub run: PathBuf,
    /// Output CSV file.
    #[arg(long)]
    pub csv: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Network depth (6n+2).
    #[arg(long, default_value = "20", value_parser = parse_depth)]
    pub depth: Depth,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: DeviceSpec,
    /// CPU threads for libtorch [default: libtorch's choice, the number of cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Images per batch.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Timed training steps after the warm-up.
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// Folder with the CIFAR-10 binary files [default: CIFAR10_DIR].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Which measurements to run, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    pub only: Option<Vec<String>>,
}

fn parse_depth(s: &str) -> Result<Depth, ConfigError> {
    match s.trim().parse::<u32>() {
        Ok(n) => Depth::new(n),
        // Not a number: clap's own wording names the value and the flag.
        Err(_) => Err(ConfigError::Value { flag: "--depth", why: format!("must be a number, got {s:?}") }),
    }
}

fn parse_device(s: &str) -> Result<DeviceSpec, ConfigError> {
    s.parse()
}

/// A value of a closed set, listed in `--help`, parsed by the type's own `FromStr`.
fn choice<T>(names: &'static [&'static str]) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    PossibleValuesParser::new(names).try_map(|s| s.parse::<T>().map_err(|e| e.to_string()))
}

/// What `--version` says: this program's version, the libtorch it was built against, and
/// whether CUDA is usable here.
pub fn long_version() -> String {
    let cuda = if tch::Cuda::is_available() {
        let n = tch::Cuda::device_count();
        format!("usable, {n} device{}", if n == 1 { "" } else { "s" })
    } else {
        "not usable (no GPU visible to libtorch)".to_string()
    };
    format!("resnet-tui {}\nlibtorch {}\nCUDA {cuda}", env!("CARGO_PKG_VERSION"), env!("RESNET_TUI_LIBTORCH_VERSION"))
}

/// `--data-dir`, else `CIFAR10_DIR`, else the per-user data folder.
pub fn data_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("CIFAR10_DIR").filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(crate::data::fetch::default_data_dir)
}

impl TrainArgs {
    /// The run config these options describe: the paper's recipe with the given changes.
    pub fn to_config(&self) -> Result<RunConfig, ConfigError> {
        let mut c = config::paper(self.depth, data_dir(self.data_dir.clone()));
        c.shortcut = self.shortcut;
        c.lr = self.lr;
        c.momentum = self.momentum;
        c.weight_decay = self.weight_decay;
        c.batch_size = self.batch_size;
        c.val_split = self.val_split;
        c.checkpoint_every = self.checkpoint_every;
        c.keep_checkpoints = self.keep_checkpoints;
        c.seed = self.seed;
        c.device = self.device;
        c.threads = self.threads;
        c.precision = self.precision;
        let train_images = 50_000usize.saturating_sub(self.val_split).max(1);
        let per_epoch = config::iters_per_epoch(train_images, self.batch_size);
        let iters = match (self.iters, self.epochs) {
            (Some(i), _) => i,
            (None, Some(e)) if e.is_finite() && e > 0.0 => (e * per_epoch as f64).round().max(1.0) as u64,
            (None, Some(e)) => {
                return Err(ConfigError::Value { flag: "--epochs", why: format!("must be positive, got {e}") });
            }
            (None, None) => crate::reference::recipe::ITERS,
        };
        let until_error = (self.warmup_until_error != 0.0).then_some(self.warmup_until_error);
        if let Some(w) = self.warmup_iters {
            c.warmup = (w > 0).then_some(config::Warmup { iters: w, lr: self.warmup_lr, until_error });
        } else if let Some(w) = &mut c.warmup {
            w.lr = self.warmup_lr;
            w.until_error = until_error;
        }
        config::set_length(&mut c, iters, self.milestones.clone());
        c.eval_every = self.eval_every.unwrap_or(per_epoch).min(c.iters.max(1));
        config::validate(&c)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("resnet-tui").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn no_subcommand_means_train_with_the_papers_defaults() {
        let cli = parse(&["--data-dir", "d"]);
        assert!(cli.command.is_none());
        let c = cli.train.to_config().unwrap();
        assert_eq!((c.depth.get(), c.iters, c.milestones.clone()), (20, 64_000, vec![32_000, 48_000]));
        assert_eq!(c.eval_every, 391);
    }

    #[test]
    fn epochs_and_short_runs() {
        let c = parse(&["train", "--epochs", "2", "--data-dir", "d"]);
        let Some(Commands::Train(t)) = c.command else { panic!("train") };
        let c = t.to_config().unwrap();
        assert_eq!(c.iters, 782);
        assert_eq!(c.milestones, vec![391, 586]);
    }

    #[test]
    fn every_argument_of_every_command_has_help_text() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if !["help", "version"].contains(&id) && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "resnet-tui", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }

    #[test]
    fn bad_depth_lists_the_valid_ones() {
        let args = ["resnet-tui", "--depth", "21"];
        let err = Cli::try_parse_from(args).unwrap_err().to_string();
        assert!(err.contains("--depth") && err.contains("20, 32, 44, 56, 110, 1202"), "{err}");
    }
}

//! The command line: clap definitions and their translation into a run config.

use crate::config::{self, Bound, ConfigError, Depth, DeviceSpec, Precision, RunConfig, Setting, Shortcut, bounds};
use crate::ui::theme::Marker;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "resnet-tui",
    version,
    about = "Train the CIFAR-10 residual networks of He et al. (2016) with libtorch, from Rust, and watch the run \
             live in the terminal",
    long_about = "Train the CIFAR-10 residual networks of He et al. (2016) with libtorch, from Rust, and watch the run \
                  live in the terminal. With no subcommand, trains with the dashboard (same options as `train`).",
    after_help = "Start with README.md; each subject has its document in docs/ (docs/commands.md: every command).",
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
    /// Train a ResNet under the dashboard, with the paper's recipe unless told otherwise (the default when no
    /// subcommand is given).
    #[command(after_help = "More: docs/recipe.md (the recipe and every option that changes it).")]
    Train(TrainArgs),
    /// Continue a run from its newest checkpoint, appending to its log.
    #[command(after_help = "More: docs/recipe.md#changing-a-runs-recipe-on-record-resume---set")]
    Resume(ResumeArgs),
    /// Print test loss and error of a saved checkpoint.
    #[command(after_help = "More: docs/commands.md")]
    Eval(EvalArgs),
    /// Manage the CIFAR-10 data set.
    #[command(after_help = "More: docs/commands.md#the-data-folder")]
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Play recorded runs in the dashboard, overlaid when several are given.
    #[command(after_help = "More: docs/dashboard.md#replay")]
    Replay(ReplayArgs),
    /// Print a table of runs: depth, parameters, iterations, final and best error, the paper's.
    #[command(after_help = "More: docs/results.md")]
    Summary(SummaryArgs),
    /// Draw the error and loss curves of one or several runs to a PNG or SVG file.
    #[command(after_help = "More: docs/results.md")]
    Plot(PlotArgs),
    /// Write a run's curves as CSV or TensorBoard events, its weights for PyTorch, or a copy to share.
    #[command(after_help = "More: docs/pytorch.md (PyTorch, TensorBoard); docs/results.md (a copy to share).")]
    Export(ExportArgs),
    /// Measure training, evaluation, data and start-up speed on this machine.
    #[command(after_help = "More: docs/performance.md")]
    Bench(BenchArgs),
    /// Many runs as one job: a grid of depths × seeds (× other options), run on this machine or
    /// as a Slurm array.
    #[command(after_help = "More: docs/sweeps.md")]
    Sweep {
        #[command(subcommand)]
        command: SweepCommand,
    },
    /// The live table of a sweep (or of a folder of runs), laid out like the paper's; Enter opens a run.
    #[command(after_help = "More: docs/sweeps.md#the-table")]
    Watch(WatchArgs),
    /// Open the dashboard of a run started elsewhere and steer it: pause, resume, checkpoint, stop.
    ///
    /// The dashboard follows the run's log; the keys travel as command files in its run directory.
    #[command(after_help = "More: docs/sweeps.md#steering-a-run-from-anywhere")]
    Attach(AttachArgs),
    /// Print a shell completion script.
    ///
    /// For example: `resnet-tui completions bash > ~/.local/share/bash-completion/completions/resnet-tui`.
    #[command(after_help = "More: docs/commands.md")]
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum SweepCommand {
    /// Create a sweep folder: one run directory per cell with its full config.json, and sweep.json.
    #[command(after_help = "More: docs/sweeps.md#the-grid-and-running-it-again")]
    Create(SweepCreateArgs),
    /// Run the sweep's cells on this machine, N at once, under the table (--no-ui: plain lines).
    #[command(after_help = "More: docs/sweeps.md#the-local-queue-and-slurm")]
    Run(SweepRunArgs),
    /// Write the sweep's Slurm array script and submit it with sbatch (or print it).
    #[command(after_help = "More: docs/sweeps.md#slurm-on-a-real-cluster")]
    Slurm(SweepSlurmArgs),
    /// Run one cell (what the executors start): skip it if done, resume it from its checkpoint,
    /// or start it; SIGUSR1 checkpoints it and requeues the Slurm task.
    #[command(after_help = "More: docs/sweeps.md#the-grid-and-running-it-again")]
    Cell(SweepCellArgs),
    /// Snapshot the sweep into a folder (replaced whole): every cell's config and compressed
    /// log, the newest checkpoint with momentum of an unfinished cell, the final weights of a
    /// finished one; no path of this machine. `sweep run` continues the copy elsewhere.
    #[command(after_help = "More: docs/sweeps.md#a-snapshot-to-continue-elsewhere")]
    Share(SweepShareArgs),
}

#[derive(Args, Debug)]
pub struct SweepShareArgs {
    /// The sweep's folder.
    pub dir: PathBuf,
    /// The snapshot's folder: created, or replaced whole once the new snapshot is written.
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct SweepCreateArgs {
    /// The sweep's folder (created).
    pub dir: PathBuf,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// The grid of a sweep and the recipe its runs share.
#[derive(Args, Debug, Clone)]
pub struct GridArgs {
    /// Depths to sweep, comma-separated (6n+2 each).
    #[arg(long, value_delimiter = ',', value_parser = parse_depth)]
    pub depths: Vec<Depth>,
    /// Networks to sweep instead of --depths, in the order their cells start, comma-separated:
    /// plainN (no shortcuts), resnetN (option A), resnetNb (option B); e.g. plain56,resnet56.
    #[arg(long, value_delimiter = ',', conflicts_with = "depths", value_parser = parse_net)]
    pub nets: Vec<String>,
    /// Seeds to sweep, comma-separated: runs of the same depth that differ only by the seed
    /// make one row of the table (mean ± std).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub seeds: Vec<u64>,
    /// Another option to sweep, as FIELD=V1,V2 (repeatable): lr=0.1,0.05, shortcut=a,b,
    /// batch_size=64,128, precision=fp32,bf16, or any field of a run's config.json.
    #[arg(long, value_name = "FIELD=VALUES")]
    pub vary: Vec<String>,
    #[command(flatten)]
    pub recipe: RecipeArgs,
}

#[derive(Args, Debug)]
pub struct SweepRunArgs {
    /// The sweep's folder; with --depths or --nets, created first if it is not there (as `sweep create`).
    pub dir: PathBuf,
    #[command(flatten)]
    pub grid: GridArgs,
    /// Runs at once; the CPU's threads are split between them (with GPUs: one run per GPU).
    #[arg(long, default_value_t = 1, value_parser = within::<usize>(crate::executor::local::JOBS))]
    pub jobs: usize,
    /// No table: a line per run started or ended, then the table.
    #[arg(long)]
    pub no_ui: bool,
    /// Start cells even when their memory estimates do not fit beside the runs going.
    #[arg(long)]
    pub force: bool,
    /// Chart marker, for fonts without Braille.
    #[arg(long, value_enum, default_value_t = Marker::Braille)]
    pub marker: Marker,
}

#[derive(Args, Debug)]
pub struct SweepSlurmArgs {
    /// The sweep's folder, on a file system the compute nodes share.
    pub dir: PathBuf,
    /// Time limit of each task (sbatch --time, e.g. 4:00:00) [default: the partition's].
    #[arg(long)]
    pub time: Option<String>,
    /// Partition to submit to [default: the cluster's].
    #[arg(long)]
    pub partition: Option<String>,
    /// CPU cores per task (also libtorch's threads).
    #[arg(long, default_value_t = 4, value_parser = within::<u32>(crate::executor::slurm::CPUS_PER_TASK))]
    pub cpus_per_task: u32,
    /// GPUs per task (0: train on the CPU).
    #[arg(long, default_value_t = 0, value_parser = within::<u32>(crate::executor::slurm::GPUS_PER_TASK))]
    pub gpus_per_task: u32,
    /// Memory per task (sbatch --mem, e.g. 8G) [default: the largest cell's memory estimate].
    #[arg(long)]
    pub mem: Option<String>,
    /// At most this many tasks at once.
    #[arg(long, value_parser = within::<usize>(crate::executor::slurm::MAX_PARALLEL))]
    pub max_parallel: Option<usize>,
    /// Seconds before the time limit at which a task checkpoints and requeues itself.
    #[arg(long, default_value_t = 120, value_parser = within::<u32>(crate::executor::slurm::SIGNAL_SECS))]
    pub signal_secs: u32,
    /// Another sbatch option for the script, e.g. --sbatch=--account=lab (repeatable).
    #[arg(long = "sbatch", value_name = "OPTION", allow_hyphen_values = true)]
    pub sbatch: Vec<String>,
    /// Write and print the script without submitting it.
    #[arg(long)]
    pub print: bool,
}

#[derive(Args, Debug)]
pub struct SweepCellArgs {
    /// The sweep's folder.
    pub dir: PathBuf,
    /// The cell: its index in sweep.json or its name [default: SLURM_ARRAY_TASK_ID].
    pub cell: Option<String>,
    /// Start even when the run's memory estimate does not fit in the memory that is free.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// A sweep folder, or a folder of run directories (a --runs-dir).
    pub dir: PathBuf,
    /// Chart marker, for fonts without Braille.
    #[arg(long, value_enum, default_value_t = Marker::Braille)]
    pub marker: Marker,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// The run directory of a run started elsewhere (another terminal, a batch job).
    pub run_dir: PathBuf,
    /// Chart marker, for fonts without Braille.
    #[arg(long, value_enum, default_value_t = Marker::Braille)]
    pub marker: Marker,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download the official binary archive, check its md5 and unpack it.
    #[command(after_help = "More: docs/commands.md#the-data-folder")]
    Fetch {
        /// Folder to unpack into [default: --data-dir, CIFAR10_DIR, or the per-user data folder].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address of the archive, for a mirror [env: CIFAR10_URL].
        #[arg(long)]
        url: Option<String>,
    },
}

/// The run's recipe: what `config.json` records.
#[derive(Args, Debug, Clone)]
pub struct RecipeArgs {
    /// Network depth: 20, 32, 44, 56, 110, 1202, or any 6n+2.
    #[arg(long, default_value = "20", value_parser = parse_depth)]
    pub depth: Depth,
    /// Shortcut where a block changes shape: a = identity with zero padding (the paper's), b = 1x1 projection,
    /// none = no shortcuts at all: the plain network (Plain-20, Plain-56, ...).
    #[arg(long, default_value = "a", value_parser = choice::<Shortcut>(&["a", "b", "none"]))]
    pub shortcut: Shortcut,
    /// The plain network: the same layers without shortcuts (same as --shortcut none).
    #[arg(long, conflicts_with = "shortcut")]
    pub plain: bool,
    /// Iterations to train [default: 64000, the paper's].
    #[arg(long, conflicts_with = "epochs", allow_negative_numbers = true, value_parser = within::<u64>(bounds::ITERS))]
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
    #[arg(
        long,
        default_value_t = 128,
        allow_negative_numbers = true,
        value_parser = within::<usize>(bounds::BATCH_SIZE)
    )]
    pub batch_size: usize,
    /// Hold out the last N training images for validation and evaluate on them (the paper used 5000).
    #[arg(long, default_value_t = 0, value_parser = within::<usize>(bounds::VAL_SPLIT))]
    pub val_split: usize,
    /// Evaluate every N iterations [default: once an epoch].
    #[arg(long, value_parser = within::<u64>(bounds::EVAL_EVERY))]
    pub eval_every: Option<u64>,
    /// Write a checkpoint every N iterations.
    #[arg(long, default_value_t = 1000, value_parser = within::<u64>(bounds::CHECKPOINT_EVERY))]
    pub checkpoint_every: u64,
    /// Periodic checkpoints to keep (the best one is kept besides).
    #[arg(long, default_value_t = 3, value_parser = within::<usize>(bounds::KEEP_CHECKPOINTS))]
    pub keep_checkpoints: usize,
    /// Warm-up at --warmup-lr for at most this many iterations [default: 1000 for depth >= 110, else
    /// none; 0: none].
    #[arg(long, value_parser = within::<u64>(bounds::WARMUP_ITERS))]
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
    #[arg(long, value_parser = within::<usize>(bounds::THREADS))]
    pub threads: Option<usize>,
    /// Convolutions and activations in fp32, or bf16 (mixed precision: weights, BatchNorm and the
    /// loss stay fp32), or auto: bf16 where it is clearly faster on the machine that trains the run
    /// (a GPU of compute capability 8.0+; a CPU with bf16 units, measured once with the run's
    /// threads), else fp32, decided again whenever the run resumes.
    #[arg(long, default_value = "auto", overrides_with = "precision", value_parser = PossibleValuesParser::new(["fp32", "bf16", "auto"]))]
    pub precision: String,
    /// Folder with the CIFAR-10 binary files [default: CIFAR10_DIR, else the per-user data folder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Start from these weights instead of He initialisation: a safetensors file in PyTorch's
    /// names (`export --pytorch`, or a PyTorch model's state_dict saved with safetensors).
    #[arg(long, value_name = "FILE")]
    pub init_from: Option<PathBuf>,
}

/// `train`: a recipe, and how this session runs it.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
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
    /// Also write TensorBoard event files as the run goes, in RUN_DIR/tensorboard.
    #[arg(long)]
    pub tensorboard: bool,
    /// Chart marker, for fonts without Braille.
    #[arg(long, value_enum, default_value_t = Marker::Braille)]
    pub marker: Marker,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The run directory to continue.
    pub run_dir: PathBuf,
    /// Folder with the CIFAR-10 binary files [default: the one the run trained on, if it is
    /// there; else CIFAR10_DIR, else the per-user data folder]. Not a recipe change: a run copied
    /// from another machine is resumed with this machine's data set.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Change the recipe on purpose, e.g. `--set lr=0.05` (repeatable; nested fields dotted:
    /// `warmup.lr=0.005`; lists comma-separated: `milestones=30000,45000`). Logged as an event.
    #[arg(long = "set", value_name = "FIELD=VALUE", value_parser = parse_setting)]
    pub set: Vec<Setting>,
    /// No dashboard.
    #[arg(long)]
    pub no_ui: bool,
    /// Start even when the run's memory estimate does not fit in the memory that is free.
    #[arg(long)]
    pub force: bool,
    /// Folder for runs started by a depth switch [default: the run's parent folder].
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
    /// Also write TensorBoard event files as the run goes, in RUN_DIR/tensorboard.
    #[arg(long)]
    pub tensorboard: bool,
    /// Chart marker, for fonts without Braille.
    #[arg(long, value_enum, default_value_t = Marker::Braille)]
    pub marker: Marker,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint file (or a run directory: its best checkpoint).
    pub checkpoint: PathBuf,
    /// Folder with the CIFAR-10 binary files [default: the one the run trained on, if it is
    /// there; else CIFAR10_DIR, else the per-user data folder].
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
    /// Lay the runs out as one of the paper's figures: 1 (plain nets: training error left, test
    /// error right), 6 (plain nets left, ResNets right; training dashed, test bold, a colour per
    /// depth), 7 (std of each 3x3 layer's response, by layer and sorted). A sweep folder stands
    /// for its runs.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["1", "6", "7"]).map(|s| s.parse::<u8>().expect("a listed figure")))]
    pub figure: Option<u8>,
}

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true).args(["csv", "pytorch", "tensorboard", "share"]))]
pub struct ExportArgs {
    /// A run directory (or, for --csv, an event log).
    pub run: PathBuf,
    /// Write every step and evaluation to this CSV file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the run's final weights to this safetensors file in PyTorch's names and layout: the
    /// state_dict of ResNet(depth) in scripts/pytorch_reference.py, BatchNorm buffers included.
    #[arg(long, value_name = "FILE")]
    pub pytorch: Option<PathBuf>,
    /// With --pytorch: the best checkpoint's weights instead of the newest.
    #[arg(long, requires = "pytorch")]
    pub best: bool,
    /// Write the curves and the config as a TensorBoard event file in this folder
    /// (`tensorboard --logdir DIR`).
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
    /// Write a copy of the run to share into this new folder: config, the log compressed, the
    /// newest and best checkpoints, without this machine's paths (the other commands read it).
    #[arg(long, value_name = "DIR")]
    pub share: Option<PathBuf>,
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
    #[arg(long, value_parser = within::<usize>(bounds::THREADS))]
    pub threads: Option<usize>,
    /// Images per batch.
    #[arg(long, default_value_t = 128, value_parser = within::<usize>(bounds::BATCH_SIZE))]
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

/// A network of `--nets`, checked as the sweep will read it (its depth too).
fn parse_net(s: &str) -> Result<String, ConfigError> {
    let bad = |why: String| ConfigError::Value { flag: "--nets", why };
    let (depth, _) = crate::sweep::net_depth_and_shortcut(s)
        .ok_or_else(|| bad(format!("{s:?}: expected plainN, resnetN or resnetNb, e.g. plain56, resnet110")))?;
    Depth::new(depth).map_err(|e| bad(format!("{s}: {e}")))?;
    Ok(s.trim().to_string())
}

fn parse_device(s: &str) -> Result<DeviceSpec, ConfigError> {
    s.parse()
}

/// `FIELD=VALUE`, parsed once here into the setting it is; clap's line names the text.
fn parse_setting(s: &str) -> Result<Setting, String> {
    s.parse::<Setting>().map_err(|e| e.why)
}

/// A count in `bound`, refused in clap's line that names the flag and the value: "must be a
/// whole number from 1 to 1024". Text beyond the type (a 25-digit number) gets the same words.
fn within<T>(bound: Bound) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    move |s: &str| {
        let n = s.trim().parse::<u64>().ok().filter(|&n| bound.check(n).is_ok());
        n.and_then(|n| T::try_from(n).ok()).ok_or_else(|| format!("must be {}", bound.range()))
    }
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
    arg.unwrap_or_else(crate::data::fetch::configured_data_dir)
}

impl TrainArgs {
    pub fn to_config(&self) -> Result<RunConfig, ConfigError> {
        self.recipe.to_config()
    }
}

impl RecipeArgs {
    /// `--precision auto`: to be decided on the device the run trains on.
    pub fn auto_precision(&self) -> bool {
        self.precision == "auto"
    }

    /// The run config these options describe: the paper's recipe with the given changes.
    pub fn to_config(&self) -> Result<RunConfig, ConfigError> {
        let mut c = config::paper(self.depth, data_dir(self.data_dir.clone()));
        c.shortcut = if self.plain { Shortcut::None } else { self.shortcut };
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
        // `auto` is decided where the run trains, once its threads are set (`train::build`); fp32
        // until then.
        c.precision_auto = self.auto_precision();
        c.precision = if c.precision_auto { Precision::Fp32 } else { self.precision.parse()? };
        // Absolute: the run may be resumed, or its cell started, from another folder.
        c.init_from = self.init_from.as_ref().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
        let train_images = 50_000usize.saturating_sub(self.val_split).max(1);
        let per_epoch = config::iters_per_epoch(train_images, self.batch_size);
        let iters = match (self.iters, self.epochs) {
            (Some(i), _) => i,
            (None, Some(e)) if e.is_finite() && e > 0.0 && e * per_epoch as f64 <= config::MAX_ITERS as f64 => {
                (e * per_epoch as f64).round().max(1.0) as u64
            }
            (None, Some(e)) => {
                // As many epochs as make the most iterations a run may have, at this batch size.
                let most = config::MAX_ITERS / per_epoch;
                let why = format!(
                    "must be positive and at most {most} ({} iterations at batch size {}), got {e}",
                    config::MAX_ITERS,
                    self.batch_size
                );
                return Err(ConfigError::Value { flag: "--epochs", why });
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

impl GridArgs {
    /// Whether the command line gives a grid (depths or networks), not only a sweep's folder.
    pub fn names_a_grid(&self) -> bool {
        !self.depths.is_empty() || !self.nets.is_empty()
    }

    /// The grid's axes: depth, seed, then the `--vary` options in the order given.
    pub fn axes(&self) -> Result<Vec<crate::sweep::Axis>, ConfigError> {
        use crate::sweep::Axis;
        let first = if !self.nets.is_empty() {
            Axis { field: crate::sweep::NET_AXIS.into(), values: self.nets.clone() }
        } else if !self.depths.is_empty() {
            Axis { field: "depth".into(), values: self.depths.iter().map(|d| d.to_string()).collect() }
        } else {
            return Err(ConfigError::Value {
                flag: "--depths",
                why: "give the depths to sweep, e.g. 20,32 (or the networks, --nets plain20,resnet20)".into(),
            });
        };
        let mut axes =
            vec![first, Axis { field: "seed".into(), values: self.seeds.iter().map(|s| s.to_string()).collect() }];
        for vary in &self.vary {
            let bad = |why: &str| ConfigError::Value { flag: "--vary", why: format!("{vary}: {why}") };
            let (field, values) = vary.split_once('=').ok_or_else(|| bad("expected FIELD=V1,V2"))?;
            if ["depth", "seed", crate::sweep::NET_AXIS].contains(&field) {
                return Err(bad("sweep it with --depths, --nets or --seeds"));
            }
            if field == "shortcut" && !self.nets.is_empty() {
                return Err(bad("--nets names each network's shortcut"));
            }
            if axes.iter().any(|a| a.field == field) {
                return Err(bad("the field is swept twice"));
            }
            let values: Vec<String> =
                values.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
            if values.is_empty() {
                return Err(bad("no values"));
            }
            axes.push(Axis { field: field.to_string(), values });
        }
        Ok(axes)
    }

    /// A cell's config: these options with the cell's settings. The options that shape other
    /// defaults (depth: the warm-up; batch size: an epoch, the evaluation interval) go through
    /// the command line's own translation; any other field is set as `resume --set` sets it.
    pub fn config(&self, cell: &crate::sweep::Cell) -> Result<RunConfig, ConfigError> {
        let mut recipe = self.recipe.clone();
        let mut rest = Vec::new();
        for (field, value) in &cell.settings {
            let bad = |why: String| ConfigError::Value { flag: "--vary", why: format!("{field}={value}: {why}") };
            let vary = |e: crate::config::SettingError| ConfigError::Value { flag: "--vary", why: e.to_string() };
            match field.as_str() {
                "depth" => recipe.depth = parse_depth(value)?,
                "seed" => recipe.seed = value.parse().map_err(|_| bad("not a seed".into()))?,
                "shortcut" => recipe.shortcut = value.parse().map_err(|e: ConfigError| bad(e.to_string()))?,
                // `auto` is each cell's to decide, on the machine that runs it.
                "precision" if value == "auto" => recipe.precision = value.clone(),
                "precision" => {
                    recipe.precision = value.parse::<Precision>().map_err(|e| bad(e.to_string()))?.to_string()
                }
                "batch_size" => recipe.batch_size = value.parse().map_err(|_| bad("not a batch size".into()))?,
                "lr" => recipe.lr = value.parse().map_err(|_| bad("not a number".into()))?,
                _ => rest.push(Setting::new(field, value).map_err(vary)?),
            }
        }
        let config = recipe.to_config()?;
        if rest.is_empty() {
            return Ok(config);
        }
        crate::config::apply_settings(&config, &rest).map_err(|e| match e {
            ConfigError::Value { flag: "--set", why } => ConfigError::Value { flag: "--vary", why },
            other => other,
        })
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
    fn resume_set_is_parsed_once_at_the_command_line_into_typed_settings() {
        let cli = parse(&["resume", "r", "--set", "lr=0.05", "--set", "warmup.lr=0.005", "--set", "data_dir=2024"]);
        let Some(Commands::Resume(args)) = cli.command else { panic!("resume") };
        assert_eq!(args.set, [Setting::Lr(0.05), Setting::WarmupLr(0.005), Setting::DataDir("2024".into())]);
        for (bad, says) in [("lr=fast", "expected a number"), ("depth=32", "cannot change"), ("iters=0", "--iters")] {
            let err = Cli::try_parse_from(["resnet-tui", "resume", "r", "--set", bad]).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains(says), "{bad}: {err}");
        }
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
    fn a_sweep_cell_gets_the_options_with_its_own_depth_seed_and_varied_fields() {
        let cli = parse(&[
            "sweep",
            "create",
            "t",
            "--depths",
            "20,110",
            "--seeds",
            "1,2",
            "--vary",
            "lr=0.1,0.05",
            "--vary",
            "keep_checkpoints=5",
            "--iters",
            "400",
            "--data-dir",
            "d",
        ]);
        let Some(Commands::Sweep { command: SweepCommand::Create(args) }) = cli.command else { panic!("create") };
        let args = args.grid;
        let axes = args.axes().unwrap();
        assert_eq!(
            axes.iter().map(|a| a.field.as_str()).collect::<Vec<_>>(),
            ["depth", "seed", "lr", "keep_checkpoints"]
        );
        let sweep = crate::sweep::Sweep::grid(axes).unwrap();
        assert_eq!(sweep.cells.len(), 8);
        let deep = sweep.cells.iter().find(|c| c.name == "resnet110-seed2-lr0.05-keep_checkpoints5").unwrap();
        let c = args.config(deep).unwrap();
        assert_eq!((c.depth.get(), c.seed, c.lr, c.keep_checkpoints, c.iters), (110, 2, 0.05, 5, 400));
        assert!(c.warmup.is_some(), "ResNet-110 keeps the paper's warm-up");
        assert_eq!(c.milestones, vec![200, 300]);
        let bad = parse(&["sweep", "create", "t", "--depths", "20", "--vary", "seed=1,2"]);
        let Some(Commands::Sweep { command: SweepCommand::Create(bad) }) = bad.command else { panic!("create") };
        assert!(bad.grid.axes().unwrap_err().to_string().contains("--seeds"));
        let unknown = parse(&["sweep", "create", "t", "--depths", "20", "--vary", "colour=red"]);
        let Some(Commands::Sweep { command: SweepCommand::Create(unknown) }) = unknown.command else { panic!() };
        let cell = &crate::sweep::Sweep::grid(unknown.grid.axes().unwrap()).unwrap().cells[0];
        assert!(unknown.grid.config(cell).unwrap_err().to_string().contains("no field colour"), "unknown field");
    }

    #[test]
    fn bad_depth_lists_the_valid_ones() {
        let args = ["resnet-tui", "--depth", "21"];
        let err = Cli::try_parse_from(args).unwrap_err().to_string();
        assert!(err.contains("--depth") && err.contains("20, 32, 44, 56, 110, 1202"), "{err}");
    }
}

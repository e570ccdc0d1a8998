//! The command line: clap definitions and their translation into a run config.

use crate::config::setting::{self as fields, Field, Shown};
use crate::config::{
    self, Bound, ConfigError, Depth, DeviceSpec, Precision, PrecisionChoice, RunConfig, Setting, Shortcut, Warmup,
    bounds,
};
use crate::sweep::{Axis, Net};
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
    /// Print test (or training) loss and error of a saved checkpoint.
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
    /// First ask each cell that is training for a checkpoint at its current iteration (it trains
    /// on), and wait until it has written it and trained two steps past it: the snapshot then
    /// holds what the sweep has trained until now, not only until its last periodic checkpoint
    #[arg(long)]
    pub now: bool,
    /// Divide each run into N equal parts, and write a cell in training again only once its new
    /// checkpoint would lie in a later part than the one its snapshot in OUT holds (the others are
    /// kept as OUT holds them; a finished or diverged cell, or one OUT lacks, is always written):
    /// once OUT holds a cell, at most N - 1 more snapshots of it in progress reach a repository's
    /// history. Without it, every cell is written.
    #[arg(long, value_name = "N")]
    pub parts: Option<std::num::NonZeroU64>,
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
    #[arg(long, value_delimiter = ',', value_parser = value_of(&fields::DEPTH))]
    pub depths: Vec<Depth>,
    /// Networks to sweep instead of --depths, in the order their cells start, comma-separated:
    /// plainN (no shortcuts), resnetN (option A), resnetNb (option B); e.g. plain56,resnet56.
    #[arg(long, value_delimiter = ',', conflicts_with = "depths", value_parser = |s: &str| s.parse::<Net>())]
    pub nets: Vec<Net>,
    /// Seeds to sweep, comma-separated: runs of the same depth that differ only by the seed
    /// make one row of the table (mean ± std).
    #[arg(long, value_delimiter = ',', default_value = "0", value_parser = value_of(&fields::SEED))]
    pub seeds: Vec<u64>,
    /// Another option to sweep, as FIELD=V1,V2 (repeatable): lr=0.1,0.05, shortcut=a,b,
    /// batch_size=64,128, precision=fp32,bf16, or any field of a run's config.json.
    #[arg(long, value_name = "FIELD=VALUES", value_parser = |s: &str| Axis::vary(s))]
    pub vary: Vec<Axis>,
    #[command(flatten)]
    pub recipe: RecipeArgs,
}

#[derive(Args, Debug)]
pub struct SweepRunArgs {
    /// The sweep's folder; with --depths or --nets, created first if it is not there (as `sweep create`).
    pub dir: PathBuf,
    #[command(flatten)]
    pub grid: GridArgs,
    /// Runs at once; the CPU's threads are split between them, and go to the runs left when fewer cells are left (with GPUs: one run per GPU).
    #[arg(long, default_value_t = 1, value_parser = within::<usize>(crate::executor::local::JOBS))]
    pub jobs: usize,
    /// No table: a line per run started or ended, then the table.
    #[arg(long)]
    pub no_ui: bool,
    /// Start cells even when their memory estimates do not fit beside the runs going.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub chart: ChartArgs,
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
    #[command(flatten)]
    pub chart: ChartArgs,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// The run directory of a run started elsewhere (another terminal, a batch job).
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub chart: ChartArgs,
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

/// The run's recipe: what `config.json` records. Each option is a setting of one field, parsed
/// by the field itself; those not given are the paper's (`config::new_run`).
#[derive(Args, Debug, Clone)]
pub struct RecipeArgs {
    #[arg(long, value_name = "DEPTH", value_parser = flag(&fields::DEPTH),
          help = defaulted("Network depth: 20, 32, 44, 56, 110, 1202, or any 6n+2", |c| c.depth))]
    pub depth: Option<Setting>,
    #[arg(long, value_name = "SHORTCUT", value_parser = choice(&fields::SHORTCUT, &["a", "b", "none"]),
          help = defaulted("Shortcut where a block changes shape: a = identity with zero padding (the paper's), \
                            b = 1x1 projection, none = no shortcuts at all: the plain network (Plain-20, Plain-56, ...)",
                           |c| c.shortcut))]
    pub shortcut: Option<Setting>,
    /// The plain network: the same layers without shortcuts (same as --shortcut none).
    #[arg(long, conflicts_with = "shortcut")]
    pub plain: bool,
    #[arg(long, value_name = "ITERS", conflicts_with = "epochs", allow_negative_numbers = true,
          value_parser = flag(&fields::ITERS), help = defaulted("Iterations to train", |c| format!("{}, the paper's", c.iters)))]
    pub iters: Option<Setting>,
    /// Epochs to train, instead of --iters (one epoch = one pass over the training images).
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<f64>,
    /// Iterations where the learning rate is divided by 10, comma-separated [default: 32000,48000;
    /// for a shorter run, 1/2 and 3/4 of it].
    #[arg(long, value_name = "MILESTONES", value_parser = flag(&fields::MILESTONES))]
    pub milestones: Option<Setting>,
    #[arg(long, value_name = "LR", allow_negative_numbers = true, value_parser = flag(&fields::LR),
          help = defaulted("Initial learning rate", |c| c.lr))]
    pub lr: Option<Setting>,
    #[arg(long, value_name = "MOMENTUM", allow_negative_numbers = true, value_parser = flag(&fields::MOMENTUM),
          help = defaulted("SGD momentum", |c| c.momentum))]
    pub momentum: Option<Setting>,
    #[arg(long, value_name = "WEIGHT_DECAY", allow_negative_numbers = true, value_parser = flag(&fields::WEIGHT_DECAY),
          help = defaulted("Weight decay (L2), applied to every parameter", |c| c.weight_decay))]
    pub weight_decay: Option<Setting>,
    #[arg(long, value_name = "BATCH_SIZE", allow_negative_numbers = true, value_parser = flag(&fields::BATCH_SIZE),
          help = defaulted("Images per batch", |c| c.batch_size))]
    pub batch_size: Option<Setting>,
    #[arg(long, value_name = "VAL_SPLIT", value_parser = flag(&fields::VAL_SPLIT),
          help = defaulted("Hold out the last N training images for validation and evaluate on them (the paper used 5000)",
                           |c| c.val_split))]
    pub val_split: Option<Setting>,
    /// Evaluate every N iterations [default: once an epoch].
    #[arg(long, value_name = "EVAL_EVERY", value_parser = flag(&fields::EVAL_EVERY))]
    pub eval_every: Option<Setting>,
    #[arg(long, value_name = "CHECKPOINT_EVERY", value_parser = flag(&fields::CHECKPOINT_EVERY),
          help = defaulted("Write a checkpoint every N iterations", |c| c.checkpoint_every))]
    pub checkpoint_every: Option<Setting>,
    #[arg(long, value_name = "KEEP_CHECKPOINTS", value_parser = flag(&fields::KEEP_CHECKPOINTS),
          help = defaulted("Periodic checkpoints to keep (the best one is kept besides)", |c| c.keep_checkpoints))]
    pub keep_checkpoints: Option<Setting>,
    /// Warm-up at --warmup-lr for at most this many iterations [default: 1000 for depth >= 110, else
    /// none; 0: none].
    #[arg(long, value_parser = value_of(&fields::WARMUP_ITERS))]
    pub warmup_iters: Option<u64>,
    #[arg(long, value_name = "WARMUP_LR", allow_negative_numbers = true, value_parser = flag(&fields::WARMUP_LR),
          help = format!("Learning rate during the warm-up [default: {}]", config::PAPER_WARMUP.lr))]
    pub warmup_lr: Option<Setting>,
    #[arg(long, value_name = "WARMUP_UNTIL_ERROR", allow_negative_numbers = true,
          value_parser = flag(&fields::WARMUP_UNTIL_ERROR),
          help = format!("The warm-up ends once the training error, averaged over the last {} steps, is below this \
                          percentage; 0 warms up for exactly --warmup-iters [default: {}, the paper's]",
                         config::WARMUP_WINDOW, config::PAPER_WARMUP.until_error.shown()))]
    pub warmup_until_error: Option<Setting>,
    #[arg(long, value_name = "SEED", value_parser = flag(&fields::SEED),
          help = defaulted("Seed for initialisation, data order and augmentation", |c| c.seed))]
    pub seed: Option<Setting>,
    #[arg(long, value_name = "DEVICE", value_parser = flag(&fields::DEVICE),
          help = defaulted("auto (CUDA if present, else CPU), cpu, cuda or cuda:N", |c| c.device))]
    pub device: Option<Setting>,
    /// CPU threads for libtorch [default: libtorch's choice, the number of cores].
    #[arg(long, value_name = "THREADS", value_parser = flag(&fields::THREADS))]
    pub threads: Option<Setting>,
    /// Convolutions and activations in fp32, or bf16 (mixed precision: weights, BatchNorm and the
    /// loss stay fp32), or auto: bf16 where it is clearly faster on the machine that trains the run
    /// (a GPU of compute capability 8.0+; a CPU with bf16 units, measured once with the run's
    /// threads), else fp32, decided again whenever the run resumes.
    #[arg(long, value_enum, default_value_t = PrecisionChoice::Auto, overrides_with = "precision")]
    pub precision: PrecisionChoice,
    /// Folder with the CIFAR-10 binary files [default: CIFAR10_DIR, else the per-user data folder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Start from these weights instead of He initialisation: a safetensors file in PyTorch's
    /// names (`export --pytorch`, or a PyTorch model's state_dict saved with safetensors).
    #[arg(long, value_name = "FILE")]
    pub init_from: Option<PathBuf>,
}

/// How a run that trains in this process is watched: `train` and `resume`.
#[derive(Args, Debug, Clone)]
pub struct SessionArgs {
    /// No dashboard: plain progress for ssh sessions and batch jobs.
    #[arg(long)]
    pub no_ui: bool,
    /// Start even when the run's memory estimate does not fit in the memory that is free.
    #[arg(long)]
    pub force: bool,
    /// Also write TensorBoard event files as the run goes, in RUN_DIR/tensorboard.
    #[arg(long)]
    pub tensorboard: bool,
    #[command(flatten)]
    pub chart: ChartArgs,
}

/// How charts are drawn, wherever there are charts.
#[derive(Args, Debug, Clone)]
pub struct ChartArgs {
    /// Chart marker, for fonts without Braille.
    #[arg(long, value_enum, default_value_t = Marker::Braille)]
    pub marker: Marker,
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
    #[command(flatten)]
    pub session: SessionArgs,
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
    #[arg(long = "set", value_name = "FIELD=VALUE", value_parser = resume_setting)]
    pub set: Vec<Setting>,
    /// Folder for runs started by a depth switch [default: the run's parent folder].
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
    #[command(flatten)]
    pub session: SessionArgs,
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
    /// The precision to compute in [default: the one the run last trained in, which its logged
    /// evaluations used].
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// The images to compute the error on.
    #[arg(long, value_enum, default_value_t)]
    pub images: crate::train::evaluate::EvalImages,
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
    #[command(flatten)]
    pub chart: ChartArgs,
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
    #[arg(long, value_enum)]
    pub figure: Option<Figure>,
    /// Figure 7: CIFAR-10's folder, to compute the layer responses of a run whose log has none
    /// (logs before schema 1.5) from its newest checkpoint [default: the folder the run trained
    /// on, if it is there; else CIFAR10_DIR, else the per-user data folder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// The paper's figures `plot --figure` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Figure {
    #[value(name = "1")]
    PlainNets,
    #[value(name = "6")]
    PlainAndResNets,
    #[value(name = "7")]
    Responses,
}

impl Figure {
    /// Its number in the paper.
    pub fn number(self) -> u8 {
        match self {
            Figure::PlainNets => 1,
            Figure::PlainAndResNets => 6,
            Figure::Responses => 7,
        }
    }
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

/// What `bench --only` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Measurement {
    /// The whole training loop (Trainer with data, augmentation, prefetch, events, log).
    Loop,
    /// The whole training loop in bf16 mixed precision.
    LoopBf16,
    /// Reading the data set.
    Load,
    /// Building training batches.
    Augment,
    /// The bare step, NCHW and channels-last.
    Step,
    /// The optimizer step, flat against per variable.
    Sgd,
    /// Evaluation of the test set.
    Eval,
    /// The bare step in bf16 mixed precision (default on CUDA).
    Bf16,
    /// The bare step in fp16 mixed precision, no loss scaling.
    Fp16,
    /// Evaluation at batch sizes 250 to 5000.
    EvalSweep,
    /// The step with and without the optimizer health figures, side by side.
    Health,
    /// The fused CPU step's time, fp32 and bf16: convolutions, our kernels, the rest.
    Profile,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Network depth (6n+2).
    #[arg(long, default_value = "20", value_parser = value_of(&fields::DEPTH))]
    pub depth: Depth,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: DeviceSpec,
    /// CPU threads for libtorch [default: libtorch's choice, the number of cores].
    #[arg(long, value_parser = within::<usize>(bounds::THREADS))]
    pub threads: Option<usize>,
    /// Images per batch.
    #[arg(long, default_value_t = crate::reference::recipe::BATCH_SIZE, value_parser = within::<usize>(bounds::BATCH_SIZE))]
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
    /// Which measurements to run, comma-separated [default: loop, load, augment, step, sgd, eval;
    /// bf16 too on a GPU].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Option<Vec<Measurement>>,
}

fn parse_device(s: &str) -> Result<DeviceSpec, ConfigError> {
    s.parse()
}

/// The setting of `field` that a flag's text reads as; clap's line names the flag and the text.
fn flag<T: Shown>(field: &'static Field<T>) -> impl Fn(&str) -> Result<Setting, String> + Clone + Send + Sync {
    move |text: &str| field.read(text).map(|value| field.to(value))
}

/// A value of `field`, read as the field reads it, for an option that is not the field itself.
fn value_of<T: Shown>(field: &'static Field<T>) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync {
    move |text: &str| field.read(text)
}

/// The setting of a field with a closed set of values, listed in `--help`.
fn choice<T: Shown>(
    field: &'static Field<T>,
    names: &'static [&'static str],
) -> impl TypedValueParser<Value = Setting> {
    PossibleValuesParser::new(names).try_map(move |text| flag(field)(&text))
}

/// `FIELD=VALUE`, parsed once here into the setting it is; clap's line names the text. Depth and
/// shortcut fix the network's shape: the checkpoint holds them.
fn resume_setting(text: &str) -> Result<Setting, String> {
    let setting = text.parse::<Setting>().map_err(|e| e.why)?;
    if setting.fixes_shape() {
        return Err(format!("{} fixes the network's shape and cannot change on resume", setting.field()));
    }
    Ok(setting)
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

/// `help` with the default the paper's recipe (for the default depth) gives: `[default: 0.1]`.
fn defaulted<T: std::fmt::Display>(help: &str, value: impl Fn(&RunConfig) -> T) -> String {
    let paper = config::paper(config::DEFAULT_DEPTH, PathBuf::new());
    format!("{help} [default: {}]", value(&paper))
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

impl RecipeArgs {
    /// The settings these options give, in the order they apply: a whole warm-up before its parts.
    pub fn settings(&self) -> Vec<Setting> {
        let plain = self.plain.then(|| fields::SHORTCUT.to(Shortcut::None));
        let warmup = self
            .warmup_iters
            .map(|iters| fields::WARMUP.to((iters > 0).then_some(Warmup { iters, ..config::PAPER_WARMUP })));
        // Absolute: the run may be resumed, or its cell started, from another folder.
        let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let init_from = self.init_from.as_ref().map(|p| fields::INIT_FROM.to(Some(absolute(p))));
        [
            self.depth.clone(),
            self.shortcut.clone(),
            plain,
            self.iters.clone(),
            self.milestones.clone(),
            self.lr.clone(),
            self.momentum.clone(),
            self.weight_decay.clone(),
            self.batch_size.clone(),
            self.val_split.clone(),
            self.eval_every.clone(),
            self.checkpoint_every.clone(),
            self.keep_checkpoints.clone(),
            warmup,
            self.warmup_lr.clone(),
            self.warmup_until_error.clone(),
            self.seed.clone(),
            self.device.clone(),
            self.threads.clone(),
            Some(fields::PRECISION.to(self.precision)),
            init_from,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The run config these options describe, with `more` settings on top (a sweep cell's): the
    /// paper's recipe with the given changes.
    pub fn config(&self, more: &[Setting]) -> Result<RunConfig, ConfigError> {
        let settings: Vec<Setting> = self.settings().into_iter().chain(more.iter().cloned()).collect();
        config::new_run(&settings, self.epochs, data_dir(self.data_dir.clone()))
    }
}

impl GridArgs {
    /// Whether the command line gives a grid (depths or networks), not only a sweep's folder.
    pub fn names_a_grid(&self) -> bool {
        !self.depths.is_empty() || !self.nets.is_empty()
    }

    /// The grid's axes: depth (or network), seed, then the `--vary` options in the order given.
    pub fn axes(&self) -> Result<Vec<Axis>, ConfigError> {
        let first = if !self.nets.is_empty() {
            Axis::nets(&self.nets)
        } else if !self.depths.is_empty() {
            Axis::of(&fields::DEPTH, self.depths.iter().copied())
        } else {
            return Err(ConfigError::Value {
                flag: "--depths",
                why: "give the depths to sweep, e.g. 20,32 (or the networks, --nets plain20,resnet20)".into(),
            });
        };
        let mut axes = vec![first, Axis::of(&fields::SEED, self.seeds.iter().copied())];
        for vary in &self.vary {
            let bad = |why: &str| ConfigError::Value { flag: "--vary", why: format!("{}: {why}", vary.field) };
            if vary.field == fields::SHORTCUT.name && !self.nets.is_empty() {
                return Err(bad("--nets names each network's shortcut"));
            }
            if axes.iter().any(|a| a.field == vary.field) {
                return Err(bad("the field is swept twice"));
            }
            axes.push(vary.clone());
        }
        Ok(axes)
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
        let c = cli.train.recipe.config(&[]).unwrap();
        assert_eq!((c.depth.get(), c.iters, c.milestones.clone()), (20, 64_000, vec![32_000, 48_000]));
        assert_eq!(c.eval_every, 391);
    }

    #[test]
    fn epochs_and_short_runs() {
        let c = parse(&["train", "--epochs", "2", "--data-dir", "d"]);
        let Some(Commands::Train(t)) = c.command else { panic!("train") };
        let c = t.recipe.config(&[]).unwrap();
        assert_eq!(c.iters, 782);
        assert_eq!(c.milestones, vec![391, 586]);
    }

    #[test]
    fn resume_set_is_parsed_once_at_the_command_line_into_typed_settings() {
        let cli = parse(&["resume", "r", "--set", "lr=0.05", "--set", "warmup.lr=0.005", "--set", "data_dir=2024"]);
        let Some(Commands::Resume(args)) = cli.command else { panic!("resume") };
        assert_eq!(args.set, [fields::LR.to(0.05), fields::WARMUP_LR.to(0.005), fields::DATA_DIR.to("2024".into())]);
        for (bad, says) in [("lr=fast", "expected a number"), ("depth=32", "cannot change"), ("iters=0", "from 1 to")] {
            let err = Cli::try_parse_from(["resnet-tui", "resume", "r", "--set", bad]).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn a_bad_value_names_its_flag_and_its_text_once_each() {
        let cases: [&[&str]; 5] = [
            &["train", "--threads", "0"],
            &["train", "--batch-size", "0"],
            &["train", "--warmup-iters", "1e12"],
            &["bench", "--threads", "0"],
            &["train", "--lr", "fast"],
        ];
        for args in cases {
            let err = Cli::try_parse_from(std::iter::once("resnet-tui").chain(args.iter().copied())).unwrap_err();
            let line = err.to_string();
            let line = line.lines().next().unwrap();
            let (flag, text) = (args[1], args[2]);
            assert_eq!(line.matches(flag).count(), 1, "{line}");
            assert_eq!(line.matches(&format!("'{text}'")).count(), 1, "{line}");
            assert!(!line.contains(&format!("got {text}")), "{line}");
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
        let c = args.recipe.config(&deep.settings).unwrap();
        assert_eq!((c.depth.get(), c.seed, c.lr, c.keep_checkpoints, c.iters), (110, 2, 0.05, 5, 400));
        assert!(c.warmup.is_some(), "ResNet-110 keeps the paper's warm-up");
        assert_eq!(c.milestones, vec![200, 300]);
        let bad = Cli::try_parse_from(["resnet-tui", "sweep", "create", "t", "--depths", "20", "--vary", "seed=1,2"]);
        assert!(bad.unwrap_err().to_string().contains("--seeds"));
        let unknown =
            Cli::try_parse_from(["resnet-tui", "sweep", "create", "t", "--depths", "20", "--vary", "colour=red"]);
        assert!(unknown.unwrap_err().to_string().contains("no field colour"), "unknown field");
    }

    #[test]
    fn bad_depth_lists_the_valid_ones() {
        let args = ["resnet-tui", "--depth", "21"];
        let err = Cli::try_parse_from(args).unwrap_err().to_string();
        assert!(err.contains("--depth") && err.contains("20, 32, 44, 56, 110, 1202"), "{err}");
    }
}

//! resnet-tui: train He et al.'s CIFAR-10 ResNets with libtorch and watch them in the terminal.
//!
//! Modules from the bottom layer up; each uses only modules listed before it (`layers` checks).

// Plain helpers and numbers.
pub mod reference; // the paper's numbers and recipe, with their source
pub(crate) mod format; // durations, digit groups, byte sizes as they read on screen
pub(crate) mod stats; // the median of measured values
pub mod panics; // panics as one line; which threads report theirs as fatal events
pub mod provenance; // which build runs, on which CPU: what each start of a run records
pub mod priority; // a background run's nice carried to its own session's autogroup, so that it yields
pub(crate) mod atomic; // whole-or-nothing file writes, and removing what a kill mid-write left
pub mod schema; // how every file of ours names its schema and version, and which versions a build reads

// What a run is, and the narrow waist.
pub mod config; // RunConfig and its value types (Depth, DeviceSpec, ...), the paper's recipe, checks
pub mod protocol; // events, commands, and the channels between the trainer and a front end
pub mod confusion_matrix; // an evaluation's confusion matrix, its most confused pairs, examples of them
pub mod runlog; // the run log: writing it, reading it back tolerantly, following it
pub mod tensorboard; // the run's curves as TensorBoard event files
pub mod rundir; // a run's directory, its config and its lock
pub mod mailbox; // commands as files in a run directory: steering a run from another process
pub mod sweep; // a grid of runs in one folder: sweep.json and a run directory per cell

// Training.
pub mod model; // the CIFAR ResNet and plain net: stages of blocks, shortcuts A, B or none, He init, growing, the one observed forward pass
pub mod fused; // the CPU training pass (fp32 or bf16) by hand: convolutions by libtorch, BatchNorm, shortcut and ReLU fused in our kernels
pub mod interchange; // weights in PyTorch's names and layout: export, and starting a run from them
pub mod nvidia_smi; // what nvidia-smi says about a CUDA device (free memory, compute capability)
pub mod memory; // a run's memory, estimated from the network's shapes, against what is free
pub mod data; // CIFAR-10: read, fetch, augment, batch
pub mod train; // the trainer thread: runs, the step, schedule, SGD, checkpoints, evaluation

// What every front end derives from events, then the front ends.
pub mod frontend; // a run's history, one line per event, how a session ends
pub mod signals; // SIGINT/SIGTERM/SIGHUP as a clean stop; a second one quits at once
pub mod headless; // the --no-ui front end
pub mod executor; // running a sweep's cells: one here, a local queue, a Slurm array
pub mod replay; // the player of recorded logs: pace, pause, jumps, follow
pub mod ui; // the dashboard: App state and update, view, keys, curves

// Commands.
pub mod cli; // the command line: clap definitions; recipe options are settings for config::new_run
pub mod report; // summary, plot and export of recorded runs
pub mod evalcmd; // `resnet-tui eval`
pub mod sweepcmd; // `resnet-tui sweep`, `watch`, `attach`
pub mod bench; // `resnet-tui bench`

#[cfg(test)]
mod layers;

//! resnet-tui: train He et al.'s CIFAR-10 ResNets with libtorch and watch them in the terminal.
pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod evalcmd;
pub mod headless;
pub mod model;
pub mod protocol;
pub mod reference;
pub mod replay;
pub mod report;
pub mod rundir;
pub mod runlog;
pub mod signals;
pub mod train;
pub mod ui;

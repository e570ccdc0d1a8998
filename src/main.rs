//! The `resnet-tui` binary: parse the command line, call into the library, map errors to one
//! line on stderr and an exit code (1 for errors, 2 for bad usage, 3 for a diverged run).

use anyhow::{Context, Result, bail};
use clap::Parser;
use resnet_tui::cli::{Cli, Commands, DataCommand, TrainArgs};
use resnet_tui::train::{Options, Plan, Trainer};
use resnet_tui::{data, headless};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    // One line for a panic, never a backtrace; front ends that own the terminal add restoring it.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let msg = msg.lines().next().unwrap_or("").to_string();
        eprintln!("resnet-tui: internal error: {msg}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("resnet-tui: error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        None => train(cli.train),
        Some(Commands::Train(args)) => train(args),
        Some(Commands::Resume(args)) => {
            let runs_dir = args
                .runs_dir
                .clone()
                .or_else(|| args.run_dir.parent().map(|p| p.to_path_buf()))
                .unwrap_or_else(|| "runs".into());
            if !args.run_dir.join(resnet_tui::rundir::CONFIG_NAME).is_file() {
                bail!("{}: not a run directory (no config.json)", args.run_dir.display());
            }
            let options = Options { runs_dir, ..Options::default() };
            let trainer = Trainer::spawn(Plan::Resume { run_dir: args.run_dir.clone() }, options);
            front_end(trainer, args.no_ui)
        }
        Some(Commands::Eval(args)) => resnet_tui::evalcmd::run(&args),
        Some(Commands::Data { command: DataCommand::Fetch { data_dir, url } }) => {
            let dir = resnet_tui::cli::data_dir(data_dir);
            let url =
                url.or_else(|| std::env::var("CIFAR10_URL").ok()).unwrap_or_else(|| data::fetch::DEFAULT_URL.into());
            data::fetch::fetch(&url, &dir)?;
            eprintln!("CIFAR-10 is in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Some(Commands::Replay(_))
        | Some(Commands::Summary(_))
        | Some(Commands::Plot(_))
        | Some(Commands::Export(_)) => {
            bail!("not built yet")
        }
        Some(Commands::Bench(_)) => bail!("not built yet"),
    }
}

fn train(args: TrainArgs) -> Result<ExitCode> {
    let config = args.to_config().map_err(anyhow::Error::msg)?;
    ensure_data(&config.data_dir, args.fetch)?;
    let options = Options { runs_dir: args.runs_dir.clone(), ..Options::default() };
    let trainer = Trainer::spawn(Plan::New { config, runs_dir: args.runs_dir.clone() }, options);
    front_end(trainer, args.no_ui)
}

fn front_end(trainer: Trainer, no_ui: bool) -> Result<ExitCode> {
    if no_ui {
        return Ok(headless::run(trainer));
    }
    Ok(headless::run(trainer))
}

/// Makes sure the data set is there: fetch it when asked (or after asking on a terminal).
fn ensure_data(dir: &std::path::Path, fetch: bool) -> Result<()> {
    if data::cifar::check_present(dir).is_ok() {
        return Ok(());
    }
    let url = std::env::var("CIFAR10_URL").unwrap_or_else(|_| data::fetch::DEFAULT_URL.into());
    let ask = !fetch && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if ask {
        eprint!("CIFAR-10 is not in {}. Download it from {url} (about 160 MB)? [y/N] ", dir.display());
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok();
        if !answer.trim().eq_ignore_ascii_case("y") {
            bail!(
                "CIFAR-10 not found in {}: point --data-dir or CIFAR10_DIR at it, or run `resnet-tui data fetch`",
                dir.display()
            );
        }
    } else if !fetch {
        data::cifar::check_present(dir).map_err(anyhow::Error::msg)?;
    }
    data::fetch::fetch(&url, dir).context("fetching CIFAR-10")
}

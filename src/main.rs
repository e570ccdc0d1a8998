//! The `resnet-tui` binary: parse the command line, call into the library, map errors to one
//! line on stderr and an exit code (1 for errors, 2 for bad usage, 3 for a diverged run, 4 for a
//! run whose final checkpoint was not written, 130 when a second Ctrl-C quit without waiting).

use anyhow::{Context, Result, bail};
use clap::Parser;
use resnet_tui::cli::{Cli, Commands, DataCommand, ReplayArgs, TableFormat, TrainArgs};
use resnet_tui::frontend::outcome::ExitStatus;
use resnet_tui::replay::{Player, Speed};
use resnet_tui::report::summary;
use resnet_tui::train::{self, Options, Plan};
use resnet_tui::ui::theme::Marker;
use resnet_tui::{data, headless};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc for every allocation in the process, libtorch's tensors included (its `override`
/// feature replaces `malloc`, `free` and `posix_memalign` for the C and C++ code too). glibc's
/// allocator kept freed activations in fragmented heaps: ResNet-110's peak was 2.3 to 5.0 GB where
/// the tensors alive at once need 1.1 to 1.6 GB (docs/performance.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One line for a panic, never a backtrace; front ends that own the terminal add restoring it.
    // A panic on the trainer's threads is caught there and reported as a fatal error event.
    std::panic::set_hook(Box::new(|info| {
        let mut msg = resnet_tui::panics::panic_text(info.payload());
        if let Some(at) = info.location().filter(|at| at.file().starts_with("src/")) {
            msg = format!("{msg} (at {}:{})", at.file(), at.line());
        }
        if !resnet_tui::panics::note_panic(&msg) {
            eprintln!("resnet-tui: internal error: {msg}");
        }
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => {
            println!("{}", resnet_tui::cli::long_version());
            return ExitStatus::Success.into();
        }
        Err(e) => {
            if !e.use_stderr() || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return if e.use_stderr() { ExitStatus::Usage } else { ExitStatus::Success }.into();
            }
            eprintln!("resnet-tui: {}", usage_error_line(&e.render().to_string()));
            return ExitStatus::Usage.into();
        }
    };
    // Before any work: a background run at low priority yields from its first step.
    resnet_tui::priority::carry_nice_to_own_session();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("resnet-tui: error: {}", chain.join(": "));
            ExitStatus::Error.into()
        }
    }
}

/// clap's report of a bad command line in one line: the error and its hints, not the usage.
fn usage_error_line(text: &str) -> String {
    let mut line = String::new();
    for part in text.lines().map(str::trim).take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more")) {
        if part.is_empty() {
            continue;
        }
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(part);
    }
    line + " (see --help)"
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
            let session = &args.session;
            let options =
                Options { runs_dir, force: session.force, tensorboard: session.tensorboard, ..Options::default() };
            let plan =
                Plan::Resume { run_dir: args.run_dir.clone(), set: args.set.clone(), data_dir: args.data_dir.clone() };
            watch(plan, options, session.no_ui, session.chart.marker)
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
        Some(Commands::Replay(args)) => replay(&args),
        Some(Commands::Summary(args)) => summary::run(&args).map(|()| ExitCode::SUCCESS),
        Some(Commands::Plot(args)) => match args.figure {
            Some(figure) => resnet_tui::report::figures::run(&args, figure.number()),
            None => resnet_tui::report::plot::run(&args),
        }
        .map(|()| ExitCode::SUCCESS),
        Some(Commands::Export(args)) => resnet_tui::report::export::run(&args).map(|()| ExitCode::SUCCESS),
        Some(Commands::Completions { shell }) => {
            use clap::CommandFactory;
            // Into memory first: clap_complete panics when it cannot write (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "resnet-tui", &mut script);
            let _ = std::io::stdout().write_all(&script);
            Ok(ExitCode::SUCCESS)
        }
        Some(Commands::Sweep { command }) => resnet_tui::sweepcmd::run(command).map(Into::into),
        Some(Commands::Watch(args)) => resnet_tui::sweepcmd::watch(&args).map(Into::into),
        Some(Commands::Attach(args)) => resnet_tui::sweepcmd::attach(&args).map(Into::into),
        Some(Commands::Bench(args)) => {
            let report = resnet_tui::bench::run(&args)?;
            println!("{report}");
            if let Some(path) = &args.json {
                std::fs::write(path, report.to_json()).with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn train(args: TrainArgs) -> Result<ExitCode> {
    let config = args.recipe.config(&[])?;
    ensure_data(&config.data_dir, args.fetch)?;
    let options = Options {
        runs_dir: args.runs_dir.clone(),
        force: args.session.force,
        tensorboard: args.session.tensorboard,
        ..Options::default()
    };
    watch(Plan::New { config, runs_dir: args.runs_dir.clone() }, options, args.session.no_ui, args.session.chart.marker)
}

/// Spawns the trainer, watches it with the chosen front end, and joins it: the front end has
/// dropped its channels by then, which tells a trainer still running to checkpoint and end.
fn watch(plan: Plan, options: Options, no_ui: bool, marker: Marker) -> Result<ExitCode> {
    let (channels, trainer) = train::spawn(plan, options);
    if !no_ui && !std::io::stdout().is_terminal() {
        eprintln!("resnet-tui: stdout is not a terminal: plain progress instead of the dashboard (--no-ui)");
    }
    let no_ui = no_ui || !std::io::stdout().is_terminal();
    let outcome = if no_ui { Ok(headless::run(channels)) } else { resnet_tui::ui::run_live(channels, marker) };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            // The terminal failed: the dropped channels tell the trainer to checkpoint and end.
            trainer.join();
            return Err(e);
        }
    };
    if outcome.interrupted {
        // The terminal is restored; the trainer, busy with a step or the checkpoint, is not waited for.
        resnet_tui::signals::quit_now();
    }
    trainer.join();
    if let Some(line) = outcome.closing_line() {
        eprintln!("resnet-tui: error: {line}");
    }
    Ok(outcome.status().into())
}

/// The `replay` subcommand: the dashboard over the logs, or their summaries with `--no-ui`.
fn replay(args: &ReplayArgs) -> Result<ExitCode> {
    if args.no_ui {
        print_summaries(&args.runs)?;
        return Ok(ExitCode::SUCCESS);
    }
    let speed = match args.speed {
        None => Speed::Max,
        Some(s) if s.is_finite() && s > 0.0 => Speed::Times(s),
        Some(s) => bail!("--speed must be a positive number, got {s}"),
    };
    let player = Player::open(&args.runs, speed, args.follow, std::time::Instant::now())?;
    if !std::io::stdout().is_terminal() {
        bail!("stdout is not a terminal: use `replay --no-ui` for a printed summary");
    }
    Ok(resnet_tui::ui::run_replay(player, args.chart.marker)?.into())
}

/// `replay --no-ui`: the runs' summary table, as `resnet-tui summary` prints it.
fn print_summaries(paths: &[PathBuf]) -> Result<()> {
    let runs = paths.iter().map(|p| summary::summarize_path(p)).collect::<Result<Vec<_>, _>>()?;
    print!("{}", summary::render(&runs, TableFormat::Table)?);
    Ok(())
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

//! `resnet-tui sweep create|run|slurm|cell`, `watch` and `attach`: the commands of many runs.

mod share;

use crate::cli::{
    AttachArgs, GridArgs, SweepCommand, SweepCreateArgs, SweepRunArgs, SweepSlurmArgs, TableFormat, WatchArgs,
};
use crate::executor::local::{Queue, QueueEvent, QueueOptions};
use crate::executor::slurm::{self, SlurmOptions, Submission};
use crate::frontend::board::{Board, CellState};
use crate::frontend::outcome::ExitStatus;
use crate::sweep::Sweep;
use anyhow::{Context, Result, bail};
use std::io::IsTerminal;
use std::path::Path;

pub fn run(command: SweepCommand) -> Result<ExitStatus> {
    match command {
        SweepCommand::Create(args) => create(&args),
        SweepCommand::Run(args) => run_local(&args),
        SweepCommand::Slurm(args) => submit(&args),
        SweepCommand::Share(args) => share::share(&args),
        SweepCommand::Cell(args) => {
            let which = match args.cell.or_else(|| std::env::var("SLURM_ARRAY_TASK_ID").ok()) {
                Some(w) => w,
                None => bail!("which cell? give its index or name (or run it as a Slurm array task)"),
            };
            let end = crate::executor::cell::run(&args.dir, &which, args.force)?;
            if end.requeue {
                let job = slurm::requeue_self()?;
                eprintln!("resnet-tui: requeued Slurm task {job}: it resumes from the checkpoint just written");
                return Ok(ExitStatus::Success);
            }
            Ok(end.status)
        }
    }
}

fn create(args: &SweepCreateArgs) -> Result<ExitStatus> {
    let sweep = make(&args.dir, &args.grid)?;
    let dir = args.dir.display();
    let names: Vec<&str> = sweep.cells.iter().map(|c| c.name.as_str()).collect();
    println!("sweep {dir}: {} cells: {}", names.len(), names.join(", "));
    println!("run it here:       resnet-tui sweep run {dir} --jobs 2");
    println!("or on Slurm:       resnet-tui sweep slurm {dir} --time 4:00:00 --gpus-per-task 1");
    println!("watch it anywhere: resnet-tui watch {dir}");
    Ok(ExitStatus::Success)
}

/// Creates the sweep of `grid` in `dir` (nothing changes if it is there already).
fn make(dir: &Path, grid: &GridArgs) -> Result<Sweep> {
    let sweep = Sweep::grid(grid.axes()?)?;
    sweep.create(dir, |cell| grid.recipe.config(&cell.settings))?;
    Ok(sweep)
}

fn run_local(args: &SweepRunArgs) -> Result<ExitStatus> {
    // One command for a newcomer: the grid given here is created first, or found as it was.
    // (The queue loads the sweep, and refuses a folder that is not one.)
    if args.grid.names_a_grid() {
        make(&args.dir, &args.grid)?;
    }
    // The GPUs this process sees; the queue gives them to the cells whose configs ask for one.
    let gpus = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
    let options = QueueOptions {
        jobs: args.jobs,
        exe: std::env::current_exe().context("finding this program, to start the runs")?,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        gpus,
        force: args.force,
    };
    let queue = Queue::start(&args.dir, options)?;
    if args.no_ui || !std::io::stdout().is_terminal() {
        return run_plain(&args.dir, queue);
    }
    let (board, collector) = Board::follow(&args.dir)?;
    let app = crate::ui::table::run(board, collector, Some(queue), args.chart.marker)?;
    Ok(table_status(&app.board))
}

/// `sweep run --no-ui`: a line per run started or ended, then the table.
fn run_plain(dir: &Path, mut queue: Queue) -> Result<ExitStatus> {
    let signals = crate::signals::StopSignals::install();
    let mut not_started = Vec::new();
    let mut say = |event: QueueEvent| {
        eprintln!("resnet-tui: {}", event.line(dir));
        if let QueueEvent::FailedToStart { cell, why } = event {
            not_started.push((cell, why));
        }
    };
    loop {
        if signals.requests() > 0 {
            eprintln!("resnet-tui: signal received: stopping the runs (each writes a checkpoint)");
            queue.stop();
            break;
        }
        match queue.events.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(QueueEvent::Drained) => break,
            Ok(event) => say(event),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
    }
    queue.events.try_iter().filter(|e| *e != QueueEvent::Drained).for_each(&mut say);
    let mut board = Board::open(dir)?;
    for (cell, why) in not_started {
        board.failed_to_start(&cell, why);
    }
    print!("{}", crate::report::table::render(&board, TableFormat::Table)?);
    Ok(table_status(&board))
}

/// 0 when no run failed; 1 when one did (its output.log says why) or could not be started.
fn table_status(board: &Board) -> ExitStatus {
    let failed: Vec<&str> =
        board.runs.iter().filter(|r| r.state() == CellState::Failed).map(|r| r.member.name.as_str()).collect();
    if failed.is_empty() {
        ExitStatus::Success
    } else {
        eprintln!("resnet-tui: error: failed runs: {}", failed.join(", "));
        ExitStatus::Error
    }
}

fn submit(args: &SweepSlurmArgs) -> Result<ExitStatus> {
    let exe = std::env::current_exe().context("finding this program, for the tasks to run")?;
    let options = SlurmOptions {
        exe,
        time: args.time.clone(),
        partition: args.partition.clone(),
        cpus_per_task: args.cpus_per_task,
        gpus_per_task: args.gpus_per_task,
        mem: args.mem.clone(),
        max_parallel: args.max_parallel,
        signal_secs: args.signal_secs,
        extra: args.sbatch.clone(),
    };
    match slurm::submit(&args.dir, &options, args.print)? {
        Submission::Submitted { job, script, tasks } => {
            println!("submitted Slurm job {job}: {tasks} array tasks ({})", script.display());
            println!("watch it: resnet-tui watch {}", args.dir.display());
        }
        Submission::Written { script, text } => {
            print!("{text}");
            if !args.print {
                eprintln!(
                    "resnet-tui: sbatch is not on the PATH: the script is in {}; submit it with `sbatch {}` on the cluster",
                    script.display(),
                    script.display()
                );
            }
        }
    }
    Ok(ExitStatus::Success)
}

pub fn watch(args: &WatchArgs) -> Result<ExitStatus> {
    let (board, collector) = Board::follow(&args.dir)?;
    if !std::io::stdout().is_terminal() {
        bail!("stdout is not a terminal: use `resnet-tui summary {}` for the table", args.dir.display());
    }
    crate::ui::table::run(board, collector, None, args.chart.marker)?;
    Ok(ExitStatus::Success)
}

pub fn attach(args: &AttachArgs) -> Result<ExitStatus> {
    if !args.run_dir.join(crate::rundir::CONFIG_NAME).is_file() {
        bail!("{}: not a run directory (no config.json)", args.run_dir.display());
    }
    if !crate::runlog::log_path(&args.run_dir).is_file() {
        bail!("{}: the run has not started yet (no log to follow)", args.run_dir.display());
    }
    if !std::io::stdout().is_terminal() {
        bail!("stdout is not a terminal: `resnet-tui replay --follow {}` needs one too", args.run_dir.display());
    }
    crate::ui::run_attached(&args.run_dir, args.chart.marker)
}

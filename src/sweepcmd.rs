//! `resnet-tui sweep create|run|slurm|cell`, `watch` and `attach`: the commands of many runs.

use crate::cli::{
    AttachArgs, GridArgs, SweepCommand, SweepCreateArgs, SweepRunArgs, SweepShareArgs, SweepSlurmArgs, TableFormat,
    WatchArgs,
};
use crate::executor::local::{Queue, QueueEvent, QueueOptions};
use crate::executor::slurm::{self, SlurmOptions, Submission};
use crate::frontend::board::{Board, CellState};
use crate::frontend::outcome::ExitStatus;
use crate::protocol::{CheckpointReason, Command, Event};
use crate::sweep::Sweep;
use anyhow::{Context, Result, bail};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

pub fn run(command: SweepCommand) -> Result<ExitStatus> {
    match command {
        SweepCommand::Create(args) => create(&args),
        SweepCommand::Run(args) => run_local(&args),
        SweepCommand::Slurm(args) => submit(&args),
        SweepCommand::Share(args) => share(&args),
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

/// `sweep share DIR OUT`: every cell as `export --share` writes it, keeping only what continues
/// it (a cell not yet started: its config), and `sweep.json`; written beside OUT and swapped in
/// at the end, so that a failure leaves the previous snapshot whole.
fn share(args: &SweepShareArgs) -> Result<ExitStatus> {
    use crate::report::share::{Keep, portable_config, share_keeping};
    let sweep = Sweep::load(&args.dir)?;
    if args.now {
        checkpoint_cells_in_training(&args.dir, &sweep)?;
    }
    let name = args.out.file_name().context("the snapshot's folder needs a name")?.to_string_lossy().into_owned();
    let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let fresh = parent.join(format!(".{name}.new"));
    let old = parent.join(format!(".{name}.old"));
    for leftover in [&fresh, &old] {
        if leftover.exists() {
            std::fs::remove_dir_all(leftover).with_context(|| format!("{}: cannot remove", leftover.display()))?;
        }
    }
    std::fs::create_dir_all(&fresh).with_context(|| format!("{}: cannot create", fresh.display()))?;
    for cell in &sweep.cells {
        let (from, to) = (args.dir.join(&cell.name), fresh.join(&cell.name));
        if crate::runlog::log_path(&from).is_file() {
            share_keeping(&from, &to, Keep::Snapshot).with_context(|| format!("cell {}", cell.name))?;
        } else {
            let config = crate::rundir::read_config(&from)?;
            crate::rundir::prepare(&to, &portable_config(&config))?;
            eprintln!("wrote {}: config only (not started)", to.display());
        }
    }
    let sweep_file = crate::sweep::SWEEP_FILE;
    std::fs::copy(args.dir.join(sweep_file), fresh.join(sweep_file))
        .with_context(|| format!("{}: cannot copy {sweep_file}", args.dir.display()))?;
    if args.out.exists() {
        std::fs::rename(&args.out, &old).with_context(|| format!("{}: cannot move aside", args.out.display()))?;
    }
    std::fs::rename(&fresh, &args.out).with_context(|| format!("{}: cannot write", args.out.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).with_context(|| format!("{}: cannot remove", old.display()))?;
    }
    eprintln!("snapshot of {} in {}: `resnet-tui sweep run` continues it", args.dir.display(), args.out.display());
    Ok(ExitStatus::Success)
}

/// How long `sweep share --now` waits for the cells in training: each takes the request at its
/// next step boundary, and a deep cell on one slow thread takes seconds a step, a minute or more
/// when an evaluation comes first.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(15 * 60);

/// Asks each cell in training for a checkpoint at its current iteration (through its mailbox, as
/// `attach` does) and waits until each has written it and logged two steps past it: the steps a
/// resume of the snapshot can be checked against. A cell that stops training meanwhile is shared
/// as it stands.
fn checkpoint_cells_in_training(dir: &Path, sweep: &Sweep) -> Result<()> {
    let mut waiting = Vec::new();
    for cell in &sweep.cells {
        let run = dir.join(&cell.name);
        if crate::rundir::is_training(&run) {
            let id = crate::mailbox::send(&run, &Command::Checkpoint)?;
            let log = crate::runlog::LogTail::open(&crate::runlog::log_path(&run))?;
            waiting.push(CheckpointAsked { cell: cell.name.clone(), run, id, log, answered: false, at: None });
        }
    }
    if waiting.is_empty() {
        eprintln!("no cell is training: each cell is shared from its newest checkpoint");
        return Ok(());
    }
    let names: Vec<&str> = waiting.iter().map(|w| w.cell.as_str()).collect();
    eprintln!("asked {} for a checkpoint at the current iteration; waiting for two steps past it", names.join(", "));
    let deadline = Instant::now() + CHECKPOINT_WAIT;
    loop {
        let mut still = Vec::new();
        for mut asked in waiting {
            match asked.poll()? {
                Some(at) => eprintln!("{}: checkpoint at iteration {}", asked.cell, crate::format::group_digits(at)),
                None if !crate::rundir::is_training(&asked.run) => {
                    eprintln!("{}: stopped training; shared from its newest checkpoint", asked.cell)
                }
                None => still.push(asked),
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let names: Vec<&str> = still.iter().map(|w| w.cell.as_str()).collect();
            bail!("{}: no checkpoint within 15 minutes of asking; nothing shared", names.join(", "));
        }
        waiting = still;
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A cell asked for a checkpoint, its log followed until the answer.
struct CheckpointAsked {
    cell: String,
    run: std::path::PathBuf,
    /// The command's id, as the log confirms it.
    id: String,
    log: crate::runlog::LogTail,
    answered: bool,
    /// The iteration of the checkpoint written after the command was confirmed.
    at: Option<u64>,
}

impl CheckpointAsked {
    /// Reads what the log gained; the checkpoint's iteration once two steps past it are logged.
    fn poll(&mut self) -> Result<Option<u64>> {
        let mut read = crate::runlog::RunLog::default();
        self.log.poll(&mut read)?;
        for event in &read.events {
            match event {
                Event::CommandReceived { id, ignored: Some(why), .. } if *id == self.id => {
                    bail!("{}: the checkpoint was not taken: {why}", self.cell)
                }
                Event::CommandReceived { id, .. } if *id == self.id => self.answered = true,
                Event::Checkpoint { iter, reason: CheckpointReason::Requested, .. } if self.answered => {
                    self.at.get_or_insert(*iter);
                }
                Event::Step(step) if self.at.is_some_and(|at| step.iter >= at + 2) => return Ok(self.at),
                _ => {}
            }
        }
        Ok(None)
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

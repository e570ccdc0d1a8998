//! The run log: one JSON object a line, a schema header first, then the protocol's events.
//!
//! Writing flushes every line, so after a kill at most the last line is partial. Reading is
//! tolerant: a partial last line, garbage lines, unknown event kinds and newer minor versions
//! are skipped with a warning; a file whose first line is not our header is not a run log.

use crate::protocol::{Event, RUN_LOG};
use crate::schema::{Refusal, Stamp};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const LOG_NAME: &str = "events.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{}: cannot read: {}", .0.display(), .1)]
    Unreadable(PathBuf, std::io::Error),
    #[error("{}: is empty, not a run log", .0.display())]
    Empty(PathBuf),
    #[error("{}: not a resnet-tui run log", .0.display())]
    NotARunLog(PathBuf),
    #[error("{}: run log schema {} is newer than this build reads ({}.x)", .0.display(), .1, RUN_LOG.version.major)]
    NewerSchema(PathBuf, String),
    #[error("{}: cannot write: {}", .0.display(), .1)]
    Write(PathBuf, std::io::Error),
}

/// Appends events to a run's log, one flushed line each.
pub struct LogWriter {
    path: PathBuf,
    file: std::fs::File,
    /// Whether this writer's part is stamped (a new log's header is).
    stamped: bool,
}

impl LogWriter {
    /// Opens `path` for appending. Every writer stamps what it writes: a new log gets its header
    /// now, an existing one a stamp line before this writer's first event, so that a log appended
    /// by several builds names the schema of each part (a reader checks every stamp it meets).
    pub fn open(path: &Path) -> Result<LogWriter, LogError> {
        let err = |e| LogError::Write(path.to_path_buf(), e);
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        if len == 0 {
            writeln!(file, "{}", stamp_line()).map_err(err)?;
        }
        Ok(LogWriter { path: path.to_path_buf(), file, stamped: len == 0 })
    }

    pub fn write(&mut self, event: &Event) -> Result<(), LogError> {
        let mut line = serde_json::to_vec(event).expect("events serialise");
        line.push(b'\n');
        if !self.stamped {
            line = [self.part_start()?, line].concat();
            self.stamped = true;
        }
        // One write call per line: the OS appends it whole or, if killed mid-call, partially.
        self.file.write_all(&line).map_err(|e| LogError::Write(self.path.clone(), e))
    }

    /// The start of this writer's part of an existing log: its stamp, on a line of its own even
    /// where a killed writer left a partial line.
    fn part_start(&self) -> Result<Vec<u8>, LogError> {
        let err = |e| LogError::Write(self.path.clone(), e);
        let mut f = std::fs::File::open(&self.path).map_err(err)?;
        f.seek(SeekFrom::End(-1)).map_err(err)?;
        let mut last = [0u8; 1];
        f.read_exact(&mut last).map_err(err)?;
        let newline = if last[0] == b'\n' { "" } else { "\n" };
        Ok(format!("{newline}{}\n", stamp_line()).into_bytes())
    }
}

/// The line that says which schema the lines after it follow: a log's first line, and the first
/// line of every later writer's part.
fn stamp_line() -> String {
    serde_json::to_string(&RUN_LOG.stamp()).expect("a stamp serialises")
}

/// A whole log at once, header first (a copy of a run made elsewhere: `export --share`).
pub fn write_all(out: &mut impl Write, events: &[Event]) -> std::io::Result<()> {
    writeln!(out, "{}", stamp_line())?;
    for event in events {
        serde_json::to_writer(&mut *out, event)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// What one line of a log holds.
#[derive(Debug, PartialEq)]
pub enum Line {
    Event(Box<Event>),
    /// A writer's stamp: the schema of the lines after it.
    Stamp(Stamp),
    /// A JSON object of a kind this build does not know (a newer minor version).
    Unknown(String),
    /// Not an event: damaged, or a partial line.
    Garbage,
}

pub fn parse_line(line: &str) -> Line {
    if let Ok(e) = serde_json::from_str::<Event>(line) {
        return Line::Event(Box::new(e));
    }
    if let Ok(stamp) = serde_json::from_str::<Stamp>(line) {
        return Line::Stamp(stamp);
    }
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(map)) if map.len() == 1 => {
            Line::Unknown(map.keys().next().cloned().unwrap_or_default())
        }
        _ => Line::Garbage,
    }
}

/// Checks the header line; returns an error for anything that is not our schema's major version.
fn check_header(path: &Path, line: &str) -> Result<(), LogError> {
    let stamp: Stamp = serde_json::from_str(line).map_err(|_| LogError::NotARunLog(path.to_path_buf()))?;
    match RUN_LOG.check(&stamp) {
        Ok(_) => Ok(()),
        Err(Refusal::Newer(version)) => Err(LogError::NewerSchema(path.to_path_buf(), version)),
        Err(Refusal::Foreign) => Err(LogError::NotARunLog(path.to_path_buf())),
    }
}

/// A run log read back.
#[derive(Debug, Default)]
pub struct RunLog {
    pub events: Vec<Event>,
    /// One line per skipped line, saying why.
    pub warnings: Vec<String>,
}

/// The log file of a run directory (its gzip-compressed copy `events.jsonl.gz` when that is all
/// there is, as in a run shipped in a repository), or the path itself when it is a file.
pub fn log_path(run: &Path) -> PathBuf {
    if !run.is_dir() {
        return run.to_path_buf();
    }
    let plain = run.join(LOG_NAME);
    let packed = run.join(format!("{LOG_NAME}.gz"));
    if !plain.exists() && packed.exists() { packed } else { plain }
}

/// Reads a whole log (or the log of a run directory).
pub fn read(run: &Path) -> Result<RunLog, LogError> {
    let path = log_path(run);
    let mut tail = LogTail::open(&path)?;
    let mut log = RunLog::default();
    tail.poll(&mut log)?;
    tail.finish(&mut log);
    Ok(log)
}

/// The name standard input goes by, as a log path (`-`).
pub const STDIN: &str = "-";

/// Where a log's bytes come from.
enum Source {
    /// A file, or a gzip decoder over one (read whole: nothing is appended to it).
    Reader(Box<dyn Read + Send>),
    /// Chunks from a thread reading standard input; `ended` once it has closed.
    Stream { chunks: crossbeam_channel::Receiver<Vec<u8>>, ended: bool },
}

/// Reads a log incrementally, for following a run that is still being written.
pub struct LogTail {
    path: PathBuf,
    source: Source,
    pending: Vec<u8>,
    header_seen: bool,
    line_no: usize,
    /// The version of a part this build cannot read, once one was met.
    newer_part: Option<String>,
}

impl LogTail {
    pub fn open(path: &Path) -> Result<LogTail, LogError> {
        let file = std::fs::File::open(path).map_err(|e| LogError::Unreadable(path.to_path_buf(), e))?;
        let file: Box<dyn Read + Send> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        Ok(LogTail::reading(path.to_path_buf(), Source::Reader(file)))
    }

    /// A tail of `source` that has read nothing yet.
    fn reading(path: PathBuf, source: Source) -> LogTail {
        LogTail { path, source, pending: Vec::new(), header_seen: false, line_no: 0, newer_part: None }
    }

    /// A log arriving on standard input (`ssh host tail -n +1 -f LOG | resnet-tui replay --follow -`).
    /// A thread reads it as it comes, so that polling never blocks the caller.
    pub fn stdin() -> LogTail {
        let (tx, rx) = crossbeam_channel::unbounded::<Vec<u8>>();
        let _ = std::thread::Builder::new().name("stdin-log".into()).spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut stdin = std::io::stdin().lock();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        LogTail::reading(PathBuf::from(STDIN), Source::Stream { chunks: rx, ended: false })
    }

    /// The input has ended for good (standard input closed); a file never says so.
    pub fn ended(&self) -> bool {
        matches!(self.source, Source::Stream { ended: true, .. })
    }

    /// Reads what has been appended since the last call; complete lines become events. A part
    /// stamped with a newer major version ends reading: the events before it stay read, and every
    /// later call gives the same error without reading on.
    pub fn poll(&mut self, out: &mut RunLog) -> Result<usize, LogError> {
        if let Some(version) = &self.newer_part {
            return Err(LogError::NewerSchema(self.path.clone(), version.clone()));
        }
        let before = out.events.len();
        let mut chunk = Vec::new();
        match &mut self.source {
            Source::Reader(file) => {
                file.read_to_end(&mut chunk).map_err(|e| LogError::Unreadable(self.path.clone(), e))?;
            }
            Source::Stream { chunks, ended } => loop {
                match chunks.try_recv() {
                    Ok(c) => chunk.extend_from_slice(&c),
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        *ended = true;
                        break;
                    }
                }
            },
        }
        self.pending.extend_from_slice(&chunk);
        let Some(last_nl) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Ok(0);
        };
        let complete: Vec<u8> = self.pending.drain(..=last_nl).collect();
        for raw in complete.split(|&b| b == b'\n') {
            if raw.is_empty() {
                continue;
            }
            self.line_no += 1;
            let text = String::from_utf8_lossy(raw);
            if !self.header_seen {
                check_header(&self.path, &text)?;
                self.header_seen = true;
                continue;
            }
            match parse_line(&text) {
                Line::Event(e) => out.events.push(*e),
                Line::Stamp(stamp) => match RUN_LOG.check(&stamp) {
                    Ok(_) => {}
                    Err(Refusal::Newer(version)) => {
                        self.newer_part = Some(version.clone());
                        return Err(LogError::NewerSchema(self.path.clone(), version));
                    }
                    Err(Refusal::Foreign) => out.warnings.push(format!(
                        "line {}: skipped a stamp this build does not read ({} {})",
                        self.line_no,
                        stamp.schema,
                        stamp.version.as_deref().unwrap_or("without a version")
                    )),
                },
                Line::Unknown(kind) => {
                    out.warnings.push(format!("line {}: skipped unknown event kind {kind:?}", self.line_no))
                }
                Line::Garbage => out.warnings.push(format!("line {}: skipped, not a valid event", self.line_no)),
            }
        }
        Ok(out.events.len() - before)
    }

    /// Ends reading: a partial last line is reported and dropped; a file with no header at all
    /// is an error (handled by the caller through `header_seen`).
    pub fn finish(&mut self, out: &mut RunLog) {
        if !self.pending.is_empty() {
            out.warnings.push(format!("line {}: skipped partial last line (run killed mid-write?)", self.line_no + 1));
            self.pending.clear();
        }
    }

    pub fn header_seen(&self) -> bool {
        self.header_seen
    }
}

/// Reads a whole log, insisting on a header: what replay, summary and export use.
pub fn read_strict(run: &Path) -> Result<RunLog, LogError> {
    let path = log_path(run);
    let mut log = RunLog::default();
    let mut tail = if run == Path::new(STDIN) {
        // Standard input (`-`): everything until it closes.
        let mut tail = LogTail::stdin();
        while !tail.ended() {
            tail.poll(&mut log)?;
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        tail
    } else {
        let meta = std::fs::metadata(&path).map_err(|e| LogError::Unreadable(path.clone(), e))?;
        if meta.len() == 0 {
            return Err(LogError::Empty(path));
        }
        LogTail::open(&path)?
    };
    tail.poll(&mut log)?;
    if !tail.header_seen() {
        // No complete first line: either garbage or a header cut short.
        return Err(LogError::NotARunLog(path));
    }
    tail.finish(&mut log);
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::*;

    fn step(iter: u64) -> Event {
        Event::Step(StepRecord {
            time: 1.0,
            iter,
            epoch: 0.5,
            elapsed: 2.0,
            loss: 2.3,
            error: 90.0,
            lr: 0.1,
            images_per_sec: 900.0,
        })
    }

    /// A stamp line naming `schema` and `version`, then `event`'s line.
    fn stamp_then(schema: &str, version: &str, event: &Event) -> String {
        let stamp = Stamp { schema: schema.into(), version: Some(version.into()) };
        format!("{}\n{}\n", serde_json::to_string(&stamp).unwrap(), serde_json::to_string(event).unwrap())
    }

    /// A log this build wrote with one step, then `bytes` appended as they are.
    fn one_step_then(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_NAME);
        let mut w = LogWriter::open(&path).unwrap();
        w.write(&step(1)).unwrap();
        drop(w);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn header_then_events_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_NAME);
        let mut w = LogWriter::open(&path).unwrap();
        w.write(&step(1)).unwrap();
        w.write(&step(2)).unwrap();
        drop(w);
        let first = std::fs::read_to_string(&path).unwrap().lines().next().unwrap().to_string();
        let version = RUN_LOG.version.to_string();
        assert!(first.contains("resnet-tui/runlog") && first.contains(&version), "{first}");
        let log = read_strict(&path).unwrap();
        assert_eq!(log.events, vec![step(1), step(2)]);
        assert!(log.warnings.is_empty());
    }

    #[test]
    fn a_gzip_compressed_log_reads_back_the_same_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_NAME);
        let mut w = LogWriter::open(&path).unwrap();
        for i in 1..=50 {
            w.write(&step(i)).unwrap();
        }
        drop(w);
        let plain = read_strict(dir.path()).unwrap();
        let packed = dir.path().join(format!("{LOG_NAME}.gz"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&std::fs::read(&path).unwrap()).unwrap();
        std::fs::write(&packed, gz.finish().unwrap()).unwrap();
        // The plain log wins while it is there; alone, the compressed one is the run's log.
        assert_eq!(log_path(dir.path()), path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(log_path(dir.path()), packed);
        let back = read_strict(dir.path()).unwrap();
        assert_eq!((back.events.len(), back.warnings.len()), (50, 0));
        assert_eq!(back.events, plain.events);
    }

    #[test]
    fn partial_last_line_is_skipped_with_a_warning_and_appending_recovers() {
        let (_dir, path) = one_step_then(br#"{"step":{"time":1.0,"it"#);
        let log = read_strict(&path).unwrap();
        assert_eq!(log.events.len(), 1);
        assert!(log.warnings[0].contains("partial last line"), "{:?}", log.warnings);
        // A resumed writer starts on a fresh line; the damaged line is then a garbage line.
        let mut w = LogWriter::open(&path).unwrap();
        w.write(&step(2)).unwrap();
        let log = read_strict(&path).unwrap();
        assert_eq!(log.events, vec![step(1), step(2)]);
        assert_eq!(log.warnings.len(), 1);
    }

    #[test]
    fn a_log_appended_by_a_newer_build_is_stamped_with_its_version_where_its_part_begins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_NAME);
        let older = stamp_then("resnet-tui/runlog", "1.3", &step(1));
        std::fs::write(&path, &older).unwrap();
        let mut tail = LogTail::open(&path).unwrap();
        let mut followed = RunLog::default();
        tail.poll(&mut followed).unwrap();

        let mut w = LogWriter::open(&path).unwrap();
        w.write(&step(2)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&older), "what was written stays as it was:\n{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], format!("{{\"schema\":\"resnet-tui/runlog\",\"version\":\"{}\"}}", RUN_LOG.version));
        let log = read_strict(&path).unwrap();
        assert_eq!((log.events, log.warnings.len()), (vec![step(1), step(2)], 0));
        // A follower of the log sees the new part, stamp and all, as it comes.
        tail.poll(&mut followed).unwrap();
        assert_eq!((followed.events, followed.warnings.len()), (vec![step(1), step(2)], 0));
    }

    #[test]
    fn a_part_stamped_with_a_newer_major_version_stops_the_reader_with_its_version() {
        let newer = stamp_then("resnet-tui/runlog", "2.1", &step(2));
        let (_dir, path) = one_step_then(newer.as_bytes());
        let err = read_strict(&path).unwrap_err();
        assert!(matches!(&err, LogError::NewerSchema(_, v) if v == "2.1"), "{err}");
        // A follower keeps what came before the part and reads no further, however often it asks.
        let mut tail = LogTail::open(&path).unwrap();
        let mut followed = RunLog::default();
        for _ in 0..3 {
            assert!(matches!(tail.poll(&mut followed), Err(LogError::NewerSchema(..))));
        }
        assert_eq!(followed.events, vec![step(1)]);
    }

    #[test]
    fn a_stamp_of_another_schema_mid_log_is_skipped_with_a_warning() {
        let other = stamp_then("resnet-tui/sweep", "1.0", &step(2));
        let (_dir, path) = one_step_then(other.as_bytes());
        let log = read_strict(&path).unwrap();
        assert_eq!(log.events, vec![step(1), step(2)]);
        assert_eq!(log.warnings, ["line 3: skipped a stamp this build does not read (resnet-tui/sweep 1.0)"]);
    }

    #[test]
    fn a_writer_that_writes_nothing_adds_nothing_to_an_existing_log() {
        let (_dir, path) = one_step_then(b"");
        let before = std::fs::read(&path).unwrap();
        drop(LogWriter::open(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn unknown_kinds_and_garbage_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_NAME);
        let text = format!(
            "{{\"schema\":\"resnet-tui/runlog\",\"version\":\"1.99\"}}\n{}\n{{\"gradient_norm\":{{\"iter\":3}}}}\n\u{1}\u{2}garbage\n{}\n",
            serde_json::to_string(&step(1)).unwrap(),
            serde_json::to_string(&step(2)).unwrap()
        );
        std::fs::write(&path, text).unwrap();
        let log = read_strict(&path).unwrap();
        assert_eq!(log.events, vec![step(1), step(2)]);
        assert_eq!(log.warnings.len(), 2);
        assert!(log.warnings[0].contains("gradient_norm"));
    }

    #[test]
    fn not_a_run_log_empty_missing_and_newer_major() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(read_strict(&empty), Err(LogError::Empty(_))));
        let other = dir.path().join("other");
        std::fs::write(&other, "{\"name\":\"x\"}\n").unwrap();
        assert!(matches!(read_strict(&other), Err(LogError::NotARunLog(_))));
        let binary = dir.path().join("bin");
        std::fs::write(&binary, [0u8, 159, 146, 150, 10, 1, 2]).unwrap();
        assert!(matches!(read_strict(&binary), Err(LogError::NotARunLog(_))));
        assert!(matches!(read_strict(&dir.path().join("missing")), Err(LogError::Unreadable(..))));
        let newer = dir.path().join("newer");
        std::fs::write(&newer, "{\"schema\":\"resnet-tui/runlog\",\"version\":\"2.0\"}\n").unwrap();
        assert!(matches!(read_strict(&newer), Err(LogError::NewerSchema(..))));
    }

    #[test]
    fn tail_sees_lines_as_they_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_NAME);
        let mut w = LogWriter::open(&path).unwrap();
        let mut tail = LogTail::open(&path).unwrap();
        let mut log = RunLog::default();
        assert_eq!(tail.poll(&mut log).unwrap(), 0);
        w.write(&step(1)).unwrap();
        assert_eq!(tail.poll(&mut log).unwrap(), 1);
        w.write(&step(2)).unwrap();
        w.write(&step(3)).unwrap();
        assert_eq!(tail.poll(&mut log).unwrap(), 2);
        assert_eq!(log.events.len(), 3);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("log");
            std::fs::write(&path, &bytes).unwrap();
            let _ = read_strict(&path);
        }
    }
}

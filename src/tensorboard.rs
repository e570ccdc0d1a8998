//! TensorBoard event files: a run's curves as TensorBoard reads them (`tensorboard --logdir`).
//!
//! The file is a sequence of TFRecords (length, masked CRC-32C of the length, the bytes, masked
//! CRC-32C of the bytes), each an `Event` protocol buffer: first the file version, then one event
//! per step or evaluation with `simple_value` scalars, and the run's config as a text summary.
//! The few protobuf fields needed are written by hand (field numbers from TensorFlow's
//! `event.proto`, `summary.proto`, `tensor.proto`): no protobuf compiler in the build.
//!
//! Tags: `train/loss`, `train/error`, `train/lr`, `train/images_per_sec`, `test/loss`,
//! `test/error` (`validation/...` with a held-out split), `test_class_error/<class>`, and the
//! text `config`. A resumed run writes a `SessionLog.START` at the step it resumed from, which
//! makes TensorBoard drop what the old file recorded after it (the steps trained again).

use crate::protocol::{EvalRecord, Event, RunConfig, StepRecord};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A protocol buffer message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    fn int(mut self, field: u32, v: u64) -> Message {
        self.key(field, 0);
        self.varint(v);
        self
    }

    fn double(mut self, field: u32, v: f64) -> Message {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn float(mut self, field: u32, v: f32) -> Message {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn bytes(mut self, field: u32, b: &[u8]) -> Message {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    fn message(self, field: u32, m: Message) -> Message {
        self.bytes(field, &m.0)
    }
}

// Field numbers: Event (wall_time 1, step 2, file_version 3, summary 5, session_log 6);
// Summary (value 1); Summary.Value (tag 1, simple_value 2, tensor 8, metadata 9);
// SummaryMetadata (plugin_data 1); PluginData (plugin_name 1); TensorProto (dtype 1,
// tensor_shape 2, string_val 8); SessionLog (status 1, START = 1).
const DT_STRING: u64 = 7;

fn event(time: f64, step: u64) -> Message {
    Message::default().double(1, time).int(2, step)
}

fn scalar(tag: &str, value: f64) -> Message {
    Message::default().bytes(1, tag.as_bytes()).float(2, value as f32)
}

fn text(tag: &str, body: &str) -> Message {
    let plugin = Message::default().message(1, Message::default().bytes(1, b"text"));
    let tensor = Message::default().int(1, DT_STRING).message(2, Message::default()).bytes(8, body.as_bytes());
    Message::default().bytes(1, tag.as_bytes()).message(8, tensor).message(9, plugin)
}

fn summary(values: Vec<Message>) -> Message {
    values.into_iter().fold(Message::default(), |s, v| s.message(1, v))
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

#[derive(Debug, thiserror::Error)]
#[error("{}: cannot write TensorBoard events: {}", .0.display(), .1)]
pub struct TensorBoardError(PathBuf, std::io::Error);

/// Writes one event file in `dir`.
pub struct EventWriter {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    classes: Vec<String>,
}

impl EventWriter {
    /// Creates `dir` and a new event file in it, named as TensorBoard's writers name theirs.
    pub fn create(dir: &Path) -> Result<EventWriter, TensorBoardError> {
        let err = |e| TensorBoardError(dir.to_path_buf(), e);
        std::fs::create_dir_all(dir).map_err(err)?;
        let now = crate::protocol::now();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let mut n = 0;
        let (path, file) = loop {
            let suffix = if n == 0 { String::new() } else { format!(".{n}") };
            let path = dir.join(format!("events.out.tfevents.{:010}.{}{suffix}", now as u64, host.trim()));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(err(e)),
            }
        };
        let mut w = EventWriter { path, file: std::io::BufWriter::new(file), classes: Vec::new() };
        w.put(Message::default().double(1, now).bytes(3, b"brain.Event:2"))?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn put(&mut self, event: Message) -> Result<(), TensorBoardError> {
        self.file.write_all(&record(&event.0)).map_err(|e| TensorBoardError(self.path.clone(), e))
    }

    /// Makes what was written so far readable (TensorBoard reads files as they grow).
    pub fn flush(&mut self) -> Result<(), TensorBoardError> {
        self.file.flush().map_err(|e| TensorBoardError(self.path.clone(), e))
    }

    /// A run started (or resumed at `start_iter`): its config as text, and for a resume the
    /// marker that supersedes what was recorded after it.
    pub fn started(
        &mut self,
        time: f64,
        start_iter: u64,
        config: &RunConfig,
        classes: &[String],
    ) -> Result<(), TensorBoardError> {
        self.classes = classes.to_vec();
        if start_iter > 0 {
            let session = Message::default().int(1, 1);
            self.put(event(time, start_iter).message(6, session))?;
        }
        let json = serde_json::to_string_pretty(config).expect("a config serialises");
        // The text plugin renders Markdown: a code block keeps the JSON as it is.
        let body = format!("```\n{json}\n```");
        self.put(event(time, start_iter).message(5, summary(vec![text("config", &body)])))
    }

    pub fn step(&mut self, s: &StepRecord) -> Result<(), TensorBoardError> {
        let values = vec![
            scalar("train/loss", s.loss),
            scalar("train/error", s.error),
            scalar("train/lr", s.lr),
            scalar("train/images_per_sec", s.images_per_sec),
        ];
        self.put(event(s.time, s.iter).message(5, summary(values)))
    }

    pub fn eval(&mut self, e: &EvalRecord) -> Result<(), TensorBoardError> {
        let set = e.set.name();
        let mut values = vec![scalar(&format!("{set}/loss"), e.loss), scalar(&format!("{set}/error"), e.error)];
        for (i, err) in e.class_errors.iter().enumerate() {
            let class = self.classes.get(i).cloned().unwrap_or_else(|| i.to_string());
            values.push(scalar(&format!("{set}_class_error/{class}"), *err));
        }
        self.put(event(e.time, e.iter).message(5, summary(values)))
    }

    /// Writes what TensorBoard shows of `event`; other events write nothing.
    pub fn write(&mut self, event: &Event) -> Result<(), TensorBoardError> {
        match event {
            Event::RunStarted { time, run } => self.started(*time, run.start_iter, &run.config, &run.classes),
            Event::Step(s) => self.step(s),
            Event::Eval(e) => {
                self.eval(e)?;
                self.flush()
            }
            Event::Finished { .. } | Event::Checkpoint { .. } | Event::Paused { .. } => self.flush(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_the_masked_castagnoli_checksums() {
        // CRC-32C's check value, and the masking TensorFlow's record writer applies.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        let r = record(b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(u32::from_le_bytes(r[15..19].try_into().unwrap()), masked_crc(b"abc"));
    }

    #[test]
    fn varints_and_fields_are_protobufs() {
        let m = Message::default().int(2, 300).float(2, 1.0);
        assert_eq!(m.0, vec![0x10, 0xac, 0x02, 0x15, 0x00, 0x00, 0x80, 0x3f]);
        let nested = Message::default().message(5, Message::default().bytes(1, b"x"));
        assert_eq!(nested.0, vec![0x2a, 0x03, 0x0a, 0x01, b'x']);
    }
}

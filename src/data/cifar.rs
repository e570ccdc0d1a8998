//! Reading and validating the CIFAR-10 binary files into one byte tensor per split.
//!
//! Layout (the data set's own description): a record is one label byte (0-9) then 3,072 pixel bytes, the red,
//! green and blue planes of a 32x32 image, row-major. Files are read whole; the pixels stay bytes
//! (about 184 MB for the 60,000 images) and are normalised a batch at a time.

use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

pub const IMAGE_BYTES: usize = 3 * 32 * 32;
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
/// Records in each file of the official release.
pub const RECORDS_PER_FILE: usize = 10_000;
pub const TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
pub const TEST_FILE: &str = "test_batch.bin";
pub const META_FILE: &str = "batches.meta.txt";
pub const DEFAULT_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: not found (point --data-dir or CIFAR10_DIR at the CIFAR-10 binary files, or run `resnet-tui data fetch`)", .0.display())]
    Missing(PathBuf),
    #[error("{}: cannot read: {}", .0.display(), .1)]
    Unreadable(PathBuf, std::io::Error),
    #[error("{}: {} bytes is not a whole number of {RECORD_BYTES}-byte records (truncated or not CIFAR-10)", .0.display(), .1)]
    PartialRecord(PathBuf, usize),
    #[error("{}: holds {} records, more than the {RECORDS_PER_FILE} of a CIFAR-10 file", .0.display(), .1)]
    Oversized(PathBuf, usize),
    #[error("{}: holds {} records but {} holds {}: one of them is truncated", .0.display(), .1, .2, .3)]
    Inconsistent(PathBuf, usize, String, usize),
    #[error("{}: is empty", .0.display())]
    Empty(PathBuf),
    #[error("{}: record {} has label {}, labels are 0 to 9", .0.display(), .1, .2)]
    BadLabel(PathBuf, usize, u8),
    #[error("{}: lists {} class names, expected 10", .0.display(), .1)]
    BadMeta(PathBuf, usize),
    #[error("{}: has no image {index}: the set holds {len}", .dir.display())]
    NoSuchImage { dir: PathBuf, index: usize, len: usize },
}

/// Images as bytes (N, 3, 32, 32) and labels (N) as int64, on one device.
#[derive(Debug)]
pub struct Split {
    pub images: Tensor,
    pub labels: Tensor,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_device(&self, device: Device) -> Split {
        Split { images: self.images.to_device(device), labels: self.labels.to_device(device) }
    }

    /// The images `start..end` (a view, no copy).
    pub fn narrow(&self, start: usize, end: usize) -> Split {
        let len = (end - start) as i64;
        Split { images: self.images.narrow(0, start as i64, len), labels: self.labels.narrow(0, start as i64, len) }
    }
}

/// The whole data set as read from one folder.
#[derive(Debug)]
pub struct Cifar10 {
    pub train: Split,
    pub test: Split,
    pub classes: Vec<String>,
}

/// Checks that `dir` holds the six binary files, without reading them.
pub fn check_present(dir: &Path) -> Result<(), DataError> {
    for name in TRAIN_FILES.iter().chain([TEST_FILE].iter()) {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(DataError::Missing(path));
        }
    }
    Ok(())
}

/// Reads the five training files and the test file from `dir`. All six must hold the same
/// number of records (10,000 in the official release; tests use smaller files of equal size).
pub fn load(dir: &Path) -> Result<Cifar10, DataError> {
    check_present(dir)?;
    let mut expected: Option<(String, usize)> = None;
    let mut read = |name: &str, labels: &mut Vec<i64>, pixels: &mut Vec<u8>| -> Result<(), DataError> {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| DataError::Unreadable(path.clone(), e))?;
        let records = parse_records(&path, &bytes, labels, pixels)?;
        match &expected {
            None => expected = Some((name.to_string(), records)),
            Some((first, n)) if *n != records => {
                return Err(DataError::Inconsistent(path, records, first.clone(), *n));
            }
            Some(_) => {}
        }
        Ok(())
    };
    let (mut train_labels, mut train_pixels) = (Vec::new(), Vec::new());
    for name in TRAIN_FILES {
        read(name, &mut train_labels, &mut train_pixels)?;
    }
    let (mut test_labels, mut test_pixels) = (Vec::new(), Vec::new());
    read(TEST_FILE, &mut test_labels, &mut test_pixels)?;
    Ok(Cifar10 {
        train: to_split(&train_labels, &train_pixels),
        test: to_split(&test_labels, &test_pixels),
        classes: class_names(dir)?,
    })
}

/// Appends the labels and pixels of every record in `bytes`; returns how many there were.
fn parse_records(path: &Path, bytes: &[u8], labels: &mut Vec<i64>, pixels: &mut Vec<u8>) -> Result<usize, DataError> {
    let records = records_in(path, bytes.len())?;
    labels.reserve(records);
    pixels.reserve(records * IMAGE_BYTES);
    for (i, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0];
        if label > 9 {
            return Err(DataError::BadLabel(path.to_path_buf(), i, label));
        }
        labels.push(i64::from(label));
        pixels.extend_from_slice(&record[1..]);
    }
    Ok(records)
}

/// The records in a file of `len` bytes: whole ones, at least one, no more than a CIFAR-10 file's.
fn records_in(path: &Path, len: usize) -> Result<usize, DataError> {
    if len == 0 {
        return Err(DataError::Empty(path.to_path_buf()));
    }
    if !len.is_multiple_of(RECORD_BYTES) {
        return Err(DataError::PartialRecord(path.to_path_buf(), len));
    }
    let records = len / RECORD_BYTES;
    if records > RECORDS_PER_FILE {
        return Err(DataError::Oversized(path.to_path_buf(), records));
    }
    Ok(records)
}

/// One of the data set's two sets, as its files hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    /// The five training files, in order.
    Train,
    Test,
}

/// A set's records where they lie, for reading a few images without loading the set: the files
/// checked as `load` checks them (whole records, no more than 10,000 a file, as many in each).
pub struct Records {
    dir: PathBuf,
    files: Vec<PathBuf>,
    per_file: usize,
}

impl Records {
    pub fn open(dir: &Path, set: Set) -> Result<Records, DataError> {
        let names: &[&str] = match set {
            Set::Train => &TRAIN_FILES,
            Set::Test => &[TEST_FILE],
        };
        let mut per_file: Option<(&str, usize)> = None;
        let mut files = Vec::new();
        for name in names {
            let path = dir.join(name);
            let len = match std::fs::metadata(&path) {
                Ok(m) => m.len() as usize,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(DataError::Missing(path)),
                Err(e) => return Err(DataError::Unreadable(path, e)),
            };
            let records = records_in(&path, len)?;
            match per_file {
                None => per_file = Some((name, records)),
                Some((first, n)) if n != records => {
                    return Err(DataError::Inconsistent(path, records, first.to_string(), n));
                }
                Some(_) => {}
            }
            files.push(path);
        }
        Ok(Records { dir: dir.to_path_buf(), files, per_file: per_file.map_or(0, |(_, n)| n) })
    }

    /// Images in the set.
    pub fn len(&self) -> usize {
        self.files.len() * self.per_file
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pixels of image `index` of the set (`IMAGE_BYTES`: the red, green and blue planes).
    pub fn image(&self, index: usize) -> Result<Vec<u8>, DataError> {
        use std::io::{Read, Seek, SeekFrom};
        if index >= self.len() {
            return Err(DataError::NoSuchImage { dir: self.dir.clone(), index, len: self.len() });
        }
        let path = &self.files[index / self.per_file];
        let at = (index % self.per_file * RECORD_BYTES + 1) as u64;
        let mut pixels = vec![0u8; IMAGE_BYTES];
        std::fs::File::open(path)
            .and_then(|mut f| f.seek(SeekFrom::Start(at)).and_then(|_| f.read_exact(&mut pixels)))
            .map_err(|e| DataError::Unreadable(path.clone(), e))?;
        Ok(pixels)
    }
}

fn to_split(labels: &[i64], pixels: &[u8]) -> Split {
    let n = labels.len() as i64;
    Split {
        images: Tensor::from_slice(pixels).view([n, 3, 32, 32]),
        labels: Tensor::from_slice(labels).to_kind(Kind::Int64),
    }
}

/// The class names from `batches.meta.txt`, or the standard ones where the file is absent.
pub fn class_names(dir: &Path) -> Result<Vec<String>, DataError> {
    let path = dir.join(META_FILE);
    if !path.exists() {
        return Ok(DEFAULT_CLASSES.iter().map(|s| s.to_string()).collect());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| DataError::Unreadable(path.clone(), e))?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if names.len() != 10 {
        return Err(DataError::BadMeta(path, names.len()));
    }
    Ok(names)
}

/// Writes a small data set in the binary layout: `records` images per file with labels
/// `i % 10` and pixels from `pixel(file, record, byte)`. For tests and benchmarks.
pub fn write_synthetic(dir: &Path, records: usize, pixel: impl Fn(usize, usize, usize) -> u8) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (f, name) in TRAIN_FILES.iter().chain([TEST_FILE].iter()).enumerate() {
        let mut bytes = Vec::with_capacity(records * RECORD_BYTES);
        for r in 0..records {
            bytes.push((r % 10) as u8);
            bytes.extend((0..IMAGE_BYTES).map(|b| pixel(f, r, b)));
        }
        std::fs::write(dir.join(name), bytes)?;
    }
    std::fs::write(dir.join(META_FILE), DEFAULT_CLASSES.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(f: usize, r: usize, b: usize) -> u8 {
        (f * 31 + r * 7 + b) as u8
    }

    #[test]
    fn reads_labels_and_planes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 12, pattern).unwrap();
        let data = load(dir.path()).unwrap();
        assert_eq!(data.train.len(), 60);
        assert_eq!(data.test.len(), 12);
        assert_eq!(data.train.images.size(), vec![60, 3, 32, 32]);
        // Record 3 of data_batch_2 is training image 15; its green plane starts at byte 1024.
        assert_eq!(data.train.labels.int64_value(&[15]), 3);
        let green = data.train.images.int64_value(&[15, 1, 0, 0]);
        assert_eq!(green, i64::from(pattern(1, 3, 1024)));
        let last_blue = data.train.images.int64_value(&[15, 2, 31, 31]);
        assert_eq!(last_blue, i64::from(pattern(1, 3, 3071)));
        assert_eq!(data.classes[9], "truck");
    }

    #[test]
    fn missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 4, pattern).unwrap();
        std::fs::remove_file(dir.path().join("data_batch_3.bin")).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("data_batch_3.bin: not found"), "{err}");
    }

    #[test]
    fn partial_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 4, pattern).unwrap();
        let path = dir.path().join("test_batch.bin");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("test_batch.bin") && err.contains("not a whole number"), "{err}");
    }

    #[test]
    fn file_cut_at_a_record_boundary_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 4, pattern).unwrap();
        let path = dir.path().join("data_batch_4.bin");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..3 * RECORD_BYTES]).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("data_batch_4.bin: holds 3 records"), "{err}");
    }

    #[test]
    fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 4, pattern).unwrap();
        let path = dir.path().join("data_batch_1.bin");
        std::fs::write(&path, vec![0u8; (RECORDS_PER_FILE + 1) * RECORD_BYTES]).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("data_batch_1.bin: holds 10001 records"), "{err}");
    }

    #[test]
    fn label_above_nine_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 4, pattern).unwrap();
        let path = dir.path().join("data_batch_2.bin");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[2 * RECORD_BYTES] = 10;
        std::fs::write(&path, bytes).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("data_batch_2.bin: record 2 has label 10"), "{err}");
    }

    #[test]
    fn records_read_one_at_a_time_are_the_images_load_reads_in_files_of_any_size() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 12, pattern).unwrap();
        let data = load(dir.path()).unwrap();
        let train = Records::open(dir.path(), Set::Train).unwrap();
        assert_eq!(train.len(), 60);
        for index in [0, 11, 12, 15, 59] {
            let loaded: Vec<u8> = Vec::try_from(&data.train.images.get(index as i64).flatten(0, -1)).unwrap();
            assert_eq!(train.image(index).unwrap(), loaded, "training image {index}");
        }
        let test = Records::open(dir.path(), Set::Test).unwrap();
        assert_eq!(test.image(11).unwrap(), Vec::<u8>::try_from(&data.test.images.get(11).flatten(0, -1)).unwrap());
        let err = test.image(12).unwrap_err().to_string();
        assert!(err.contains("has no image 12: the set holds 12"), "{err}");
    }

    #[test]
    fn records_of_unequal_files_are_refused_as_load_refuses_them() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 4, pattern).unwrap();
        let path = dir.path().join("data_batch_4.bin");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..3 * RECORD_BYTES]).unwrap();
        let err = Records::open(dir.path(), Set::Train).err().unwrap().to_string();
        assert!(err.contains("data_batch_4.bin: holds 3 records"), "{err}");
        assert!(Records::open(dir.path(), Set::Test).is_ok(), "the test set is its own file");
        std::fs::remove_file(dir.path().join("test_batch.bin")).unwrap();
        let err = Records::open(dir.path(), Set::Test).err().unwrap().to_string();
        assert!(err.contains("test_batch.bin: not found"), "{err}");
    }

    #[test]
    fn empty_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 4, pattern).unwrap();
        std::fs::write(dir.path().join("data_batch_1.bin"), b"").unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("data_batch_1.bin: is empty"), "{err}");
    }
}

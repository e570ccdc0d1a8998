//! The pixels of a few evaluated images, read from the data set's binary files by their index in
//! the evaluated split (the test set, or the validation images held out at the end of the
//! training set), so the dashboard can draw the misclassified ones. Run by the UI loop as an
//! effect: `App::update` stays free of I/O.

use crate::protocol::EvalSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes of one record: the label, then 3 x 32 x 32 pixels (R plane, G plane, B plane).
const RECORD: u64 = 1 + 3 * 32 * 32;
/// Records per binary file.
const PER_FILE: u64 = 10_000;
const TRAIN_IMAGES: u64 = 50_000;

/// The images at `indices` of the evaluated split, as (index, 3072 bytes).
pub fn load(data_dir: &Path, set: EvalSet, val_split: usize, indices: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, String> {
    indices
        .iter()
        .map(|&i| {
            let (file, record) = match set {
                EvalSet::Test => ("test_batch.bin".to_string(), i as u64),
                EvalSet::Validation => {
                    let global = TRAIN_IMAGES - val_split as u64 + i as u64;
                    (format!("data_batch_{}.bin", global / PER_FILE + 1), global % PER_FILE)
                }
            };
            let path = data_dir.join(&file);
            let mut f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut pixels = vec![0u8; (RECORD - 1) as usize];
            f.seek(SeekFrom::Start(record * RECORD + 1)).map_err(|e| format!("{}: {e}", path.display()))?;
            f.read_exact(&mut pixels).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((i, pixels))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_read_from_its_record_of_the_right_file() {
        let dir = tempfile::tempdir().unwrap();
        // Every pixel of record r of file f (the test file is the sixth) is f * 31 + r.
        crate::data::cifar::write_synthetic(dir.path(), 20, |f, r, _| (f * 31 + r) as u8).unwrap();
        let got = load(dir.path(), EvalSet::Test, 0, &[7]).unwrap();
        assert_eq!(got[0].0, 7);
        assert_eq!(got[0].1.len(), 3072);
        assert!(got[0].1.iter().all(|&b| b == (5 * 31 + 7) as u8));
        assert!(load(dir.path(), EvalSet::Test, 0, &[100]).is_err(), "past the end of a short file");
        assert!(load(Path::new("/nonexistent"), EvalSet::Test, 0, &[0]).unwrap_err().contains("/nonexistent"));
    }
}

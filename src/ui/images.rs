//! The pixels of a few evaluated images, read from the data set's binary files by their index in
//! the evaluated split (the test set, or the validation images held out at the end of the
//! training set), so the dashboard can draw the misclassified ones. The files' layout is
//! `data::cifar`'s (`Records`). Run by the UI loop as an effect: `App::update` stays free of I/O.

use crate::data::cifar::{DataError, Records, Set};
use crate::protocol::EvalSet;
use std::path::Path;

/// The images at `indices` of the evaluated split, as (index, 3072 bytes). The validation
/// images are the last `val_split` of the training set, as the trainer holds them out.
pub fn load(
    data_dir: &Path,
    set: EvalSet,
    val_split: usize,
    indices: &[u32],
) -> Result<Vec<(u32, Vec<u8>)>, DataError> {
    let (records, first) = match set {
        EvalSet::Test => (Records::open(data_dir, Set::Test)?, 0),
        EvalSet::Validation => {
            let train = Records::open(data_dir, Set::Train)?;
            let first = train.len().saturating_sub(val_split);
            (train, first)
        }
    };
    indices.iter().map(|&i| Ok((i, records.image(first + i as usize)?))).collect()
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
        let missing = load(Path::new("/nonexistent"), EvalSet::Test, 0, &[0]).unwrap_err();
        assert!(matches!(&missing, DataError::Missing(p) if p.starts_with("/nonexistent")), "{missing}");
    }

    #[test]
    fn a_validation_image_of_a_set_smaller_than_the_releases_is_read_from_its_own_record() {
        let dir = tempfile::tempdir().unwrap();
        // Files of 20 records: 100 training images, the last 30 held out for validation.
        crate::data::cifar::write_synthetic(dir.path(), 20, |f, r, _| (f * 31 + r) as u8).unwrap();
        let got = load(dir.path(), EvalSet::Validation, 30, &[0, 5, 29]).unwrap();
        // Validation image i is training image 70 + i: file (70 + i) / 20, record (70 + i) % 20.
        for ((index, pixels), (file, record)) in got.iter().zip([(3, 10), (3, 15), (4, 19)]) {
            assert!(pixels.iter().all(|&b| b == (file * 31 + record) as u8), "validation image {index}");
        }
        let past = load(dir.path(), EvalSet::Validation, 30, &[30]).unwrap_err();
        assert!(matches!(past, DataError::NoSuchImage { index: 100, len: 100, .. }), "{past}");
    }
}

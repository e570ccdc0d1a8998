//! `resnet-tui data fetch`: download the official CIFAR-10 binary archive, check its md5, unpack.

use anyhow::{Context, Result, bail};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The official binary archive (Krizhevsky's page); override with `--url` or `CIFAR10_URL`.
pub const DEFAULT_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
pub const ARCHIVE_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// The folder inside the archive that holds the binary files.
const ARCHIVE_DIR: &str = "cifar-10-batches-bin";

/// The per-user data folder used when neither `--data-dir` nor `CIFAR10_DIR` is given.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("resnet-tui").join("cifar10")
}

/// Where the data is when no `--data-dir` says: `CIFAR10_DIR`, else the per-user data folder.
pub fn configured_data_dir() -> PathBuf {
    std::env::var_os("CIFAR10_DIR").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(default_data_dir)
}

/// The data folder a run recorded when the data set is there, else this machine's configured
/// one: a run copied from another machine (`export --share`) records the folder's name only.
pub fn recorded_or_configured(recorded: &Path) -> PathBuf {
    match super::cifar::check_present(recorded) {
        Ok(()) => recorded.to_path_buf(),
        Err(_) => configured_data_dir(),
    }
}

/// Downloads `url` into `dir` (showing progress on stderr), checks the md5 and unpacks the six
/// binary files and the class names directly into `dir`.
pub fn fetch(url: &str, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the data folder", dir.display()))?;
    let archive = dir.join("cifar-10-binary.tar.gz.part");
    download(url, &archive)?;
    let sum = md5_of(&archive)?;
    if sum != ARCHIVE_MD5 {
        let _ = std::fs::remove_file(&archive);
        bail!("{url}: md5 {sum} does not match the official archive's {ARCHIVE_MD5}; not unpacked");
    }
    unpack(&archive, dir)?;
    std::fs::remove_file(&archive).ok();
    super::cifar::check_present(dir)?;
    Ok(())
}

fn download(url: &str, to: &Path) -> Result<()> {
    let offline_hint = "offline or unreachable: download the binary archive elsewhere and point --data-dir \
                        (or CIFAR10_DIR) at its unpacked files, or give a mirror with --url";
    let mut response = ureq::get(url).call().map_err(|e| anyhow::anyhow!("{url}: {e} ({offline_hint})"))?;
    let total = response.body().content_length();
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("downloading CIFAR-10");
    let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
    let mut file = std::fs::File::create(to).with_context(|| format!("{}: cannot write", to.display()))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).with_context(|| format!("{url}: download interrupted"))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).with_context(|| format!("{}: cannot write", to.display()))?;
        bar.inc(n as u64);
    }
    file.sync_all().ok();
    bar.finish_and_clear();
    Ok(())
}

/// Hex md5 of a file, read in chunks.
pub fn md5_of(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Extracts the data files of the archive's folder straight into `dir`.
fn unpack(archive: &Path, dir: &Path) -> Result<()> {
    let file = std::fs::File::open(archive)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar.entries().context("archive is not a tar.gz")? {
        let mut entry = entry.context("archive is damaged")?;
        let path = entry.path()?.into_owned();
        let Ok(rest) = path.strip_prefix(ARCHIVE_DIR) else { continue };
        let Some(name) = rest.file_name() else { continue };
        // Only plain file names inside the folder: nothing can be written outside `dir`.
        if rest.components().count() == 1 && entry.header().entry_type().is_file() {
            entry.unpack(dir.join(name)).with_context(|| format!("{}: cannot write", dir.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_a_known_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(md5_of(&path).unwrap(), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn unpack_takes_only_the_data_folder() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(std::fs::File::create(&archive).unwrap(), Default::default());
            let mut builder = tar::Builder::new(gz);
            for (name, body) in [("cifar-10-batches-bin/test_batch.bin", &b"xyz"[..]), ("elsewhere/evil.bin", b"no")] {
                let mut header = tar::Header::new_gnu();
                header.set_size(body.len() as u64);
                header.set_cksum();
                builder.append_data(&mut header, name, body).unwrap();
            }
            builder.into_inner().unwrap().finish().unwrap();
        }
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        unpack(&archive, &out).unwrap();
        assert_eq!(std::fs::read(out.join("test_batch.bin")).unwrap(), b"xyz");
        assert!(!out.join("evil.bin").exists());
    }

    #[test]
    fn unreachable_address_says_offline_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens on port 9 of the loopback address.
        let err = fetch("http://127.0.0.1:9/cifar-10-binary.tar.gz", dir.path()).unwrap_err().to_string();
        assert!(err.contains("offline or unreachable") && !err.contains('\n'), "{err}");
    }
}

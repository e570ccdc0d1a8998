//! CIFAR-10: reading the binary files, augmenting and batching, and fetching the archive.
pub mod augment;
pub(crate) mod batches;
pub mod cifar;
pub mod fetch;

//! Which images make up training batch k, and assembling it: a pure function of (seed, k).
//!
//! The order is a stream of per-epoch permutations, each drawn from the seed and the epoch
//! number; a batch takes the next `batch_size` images of the stream (crossing epoch ends).
//! Crops and flips for batch k come from a generator seeded with (seed, k). So a resumed run
//! sees exactly the batches it would have seen, from nothing but the seed and the iteration.

use super::augment::{Crops, Normalizer, augment_bytes, crop_indices, gather_crops};
use super::cifar::Split;
use crate::model::to_channels_last;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

/// A generator for one purpose (`stream`) and one index, derived from the run's seed.
pub fn rng_for(seed: u64, stream: u64, index: u64) -> Pcg64 {
    // Distinct odd multipliers keep (stream, index) pairs apart before PCG's own seeding mix.
    Pcg64::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

const ORDER_STREAM: u64 = 1;
const CROP_STREAM: u64 = 2;

/// The sample order, with the current epoch's permutation cached.
pub struct Order {
    seed: u64,
    len: usize,
    epoch: Option<(u64, Vec<i64>)>,
}

impl Order {
    pub fn new(seed: u64, len: usize) -> Order {
        Order { seed, len, epoch: None }
    }

    fn permutation(&mut self, epoch: u64) -> &[i64] {
        if self.epoch.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let mut perm: Vec<i64> = (0..self.len as i64).collect();
            perm.shuffle(&mut rng_for(self.seed, ORDER_STREAM, epoch));
            self.epoch = Some((epoch, perm));
        }
        &self.epoch.as_ref().expect("just set").1
    }

    /// Indices of the images in batch `iter` of size `batch_size`.
    pub fn batch(&mut self, iter: u64, batch_size: usize) -> Vec<i64> {
        let start = iter * batch_size as u64;
        (start..start + batch_size as u64)
            .map(|pos| {
                let (epoch, i) = (pos / self.len as u64, (pos % self.len as u64) as usize);
                self.permutation(epoch)[i]
            })
            .collect()
    }
}

/// Builds training batches from byte images held on the training device.
pub struct Batcher {
    images: Tensor,
    labels: Tensor,
    order: Order,
    seed: u64,
    batch_size: usize,
    normalizer: Normalizer,
    channels_last: bool,
}

/// A batch ready for the network: normalised float images and int64 labels on the device.
pub struct Batch {
    pub iter: u64,
    pub images: Tensor,
    pub labels: Tensor,
}

impl Batcher {
    pub fn new(train: &Split, seed: u64, batch_size: usize, channels_last: bool) -> Batcher {
        let device = train.images.device();
        Batcher {
            images: train.images.shallow_clone(),
            labels: train.labels.shallow_clone(),
            order: Order::new(seed, train.len()),
            seed,
            batch_size,
            normalizer: Normalizer::new(device),
            channels_last,
        }
    }

    pub fn device(&self) -> Device {
        self.images.device()
    }

    /// Training batch `iter`: gathered, augmented and normalised.
    pub fn batch(&mut self, iter: u64) -> Batch {
        let order = self.order.batch(iter, self.batch_size);
        let crops = Crops::random(&mut rng_for(self.seed, CROP_STREAM, iter), self.batch_size);
        if let Some((pixels, labels)) = self.host_bytes() {
            // CPU: the same batch built in plain Rust, no libtorch kernel on this thread. Not
            // even `Tensor::from_slice`: it zero-fills first, a parallel kernel that gives this
            // thread an OpenMP team of its own, and with more OpenMP threads than CPUs libgomp
            // makes the training step's threads sleep at every barrier (tests/openmp_teams.rs).
            let b = order.len() as i64;
            let shape = if self.channels_last { [b, 32, 32, 3] } else { [b, 3, 32, 32] };
            let images = Tensor::empty(shape, (Kind::Float, Device::Cpu));
            // SAFETY: a fresh contiguous float CPU tensor of exactly this many elements, which
            // nothing else references yet; every element is written before it is read.
            let out = unsafe { std::slice::from_raw_parts_mut(images.data_ptr() as *mut f32, images.numel()) };
            augment_bytes(pixels, &order, &crops, self.channels_last, out);
            let images = if self.channels_last { images.permute([0, 3, 1, 2]) } else { images };
            let labels: Vec<i64> = order.iter().map(|&i| labels[i as usize]).collect();
            return Batch { iter, images, labels: Tensor::from_slice(&labels) };
        }
        let (images, labels) = self.gather(&order, &crops);
        let images = self.normalizer.apply(&images);
        let images = if self.channels_last { to_channels_last(&images) } else { images };
        Batch { iter, images, labels }
    }

    /// The byte images of `order`, cropped and flipped as `crops` say, and their labels, by
    /// libtorch on the images' device. The indices (images, crop rows, crop columns) go there
    /// packed in one tensor, in one copy that does not wait for the device.
    fn gather(&self, order: &[i64], crops: &Crops) -> (Tensor, Tensor) {
        let (b, h, w) = (order.len() as i64, self.images.size()[2], self.images.size()[3]);
        let (rows, cols) = crop_indices(crops, h, w);
        let packed = upload(&[order, &rows, &cols].concat(), self.device());
        let idx = packed.narrow(0, 0, b);
        let rows = packed.narrow(0, b, b * h).view([b, h]);
        let cols = packed.narrow(0, b + b * h, b * w).view([b, w]);
        let images = gather_crops(&self.images.index_select(0, &idx), &rows, &cols);
        (images, self.labels.index_select(0, &idx))
    }

    /// The images' bytes and the labels as slices, when both live contiguous in CPU memory.
    fn host_bytes(&self) -> Option<(&[u8], &[i64])> {
        let (im, lb) = (&self.images, &self.labels);
        let host = |t: &Tensor, kind| t.device() == Device::Cpu && t.kind() == kind && t.is_contiguous();
        if !host(im, Kind::Uint8) || !host(lb, Kind::Int64) || im.size()[1..] != [3, 32, 32] {
            return None;
        }
        let n = lb.size()[0] as usize;
        // SAFETY: both tensors are contiguous CPU tensors of the checked kinds and sizes, owned
        // by `self` (shallow clones keep their storage alive), and nothing writes to them.
        unsafe {
            let pixels = std::slice::from_raw_parts(im.data_ptr() as *const u8, n * 3 * 32 * 32);
            let labels = std::slice::from_raw_parts(lb.data_ptr() as *const i64, n);
            Some((pixels, labels))
        }
    }
}

/// `values` as an int64 tensor on `device`. To a GPU through pinned host memory, without waiting:
/// a copy from ordinary (pageable) memory makes libtorch wait for everything queued on the
/// device, the training steps included, so the batch thread could never run ahead of them.
/// libtorch's pinned allocator keeps the block until the copy has run, so the host tensor may go
/// at once. On the CPU the tensor is already where it is needed.
fn upload(values: &[i64], device: Device) -> Tensor {
    let host = Tensor::from_slice(values);
    if !device.is_cuda() {
        return host;
    }
    // `_pin_memory`, not `pin_memory`: the latter warns on stderr at every call that its device
    // argument is deprecated, and tch always passes one.
    host.internal_pin_memory(device).to_device_(device, Kind::Int64, true, false)
}

/// Normalised images of an evaluation split, a chunk at a time, without augmentation.
pub fn eval_chunk(
    split: &Split,
    start: usize,
    end: usize,
    normalizer: &Normalizer,
    channels_last: bool,
) -> (Tensor, Tensor) {
    let part = split.narrow(start, end);
    let images = normalizer.apply(&part.images);
    let images = if channels_last { to_channels_last(&images) } else { images };
    (images, part.labels)
}

/// Prepares batches on a second thread so batch k+1 is assembled while step k computes.
pub struct Prefetcher {
    rx: crossbeam_channel::Receiver<Batch>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Prefetcher {
    /// Batches `start..end`, at most `ahead` of the consumer.
    pub fn spawn(mut batcher: Batcher, start: u64, end: u64, ahead: usize) -> Prefetcher {
        let (tx, rx) = crossbeam_channel::bounded(ahead);
        let handle = std::thread::Builder::new()
            .name("prefetch".into())
            .spawn(move || {
                crate::panics::report_panics_here();
                let _guard = tch::no_grad_guard();
                for iter in start..end {
                    // The consumer hung up (stop, switch): nothing more to prepare.
                    if tx.send(batcher.batch(iter)).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn prefetch thread");
        Prefetcher { rx, handle: Some(handle) }
    }

    pub fn next(&self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Unblock a pending send by draining, then wait for the thread.
        let (_tx, dead) = crossbeam_channel::bounded(0);
        let rx = std::mem::replace(&mut self.rx, dead);
        drop(rx);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cifar::write_synthetic;

    #[test]
    fn each_epoch_visits_every_image_once() {
        let mut order = Order::new(5, 100);
        let mut seen: Vec<i64> = (0..10).flat_map(|k| order.batch(k, 10)).collect();
        seen.sort();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        // The next epoch is another permutation.
        let e0: Vec<i64> = (0..10).flat_map(|k| order.batch(k, 10)).collect();
        let e1: Vec<i64> = (10..20).flat_map(|k| order.batch(k, 10)).collect();
        assert_ne!(e0, e1);
    }

    #[test]
    fn batches_depend_only_on_seed_and_iteration() {
        let mut a = Order::new(9, 50);
        let mut b = Order::new(9, 50);
        let later = a.batch(7, 16);
        // b jumps straight to iteration 7, as a resumed run does.
        assert_eq!(b.batch(7, 16), later);
        assert_ne!(Order::new(10, 50).batch(7, 16), later);
    }

    #[test]
    fn batch_crossing_an_epoch_end_takes_from_both() {
        let mut order = Order::new(1, 10);
        let batch = order.batch(1, 8); // positions 8..16: two from epoch 0, six from epoch 1
        assert_eq!(&batch[..2], &order.batch(0, 10)[8..10]);
    }

    #[test]
    fn batcher_keeps_labels_with_their_images() {
        let dir = tempfile::tempdir().unwrap();
        // Every pixel of an image equals its label * 20, so the label can be read off the pixels.
        let records = 10;
        write_synthetic(dir.path(), records, |_, r, _| ((r % 10) * 20) as u8).unwrap();
        let data = crate::data::cifar::load(dir.path()).unwrap();
        let mut batcher = Batcher::new(&data.train, 3, 32, false);
        let batch = batcher.batch(4);
        assert_eq!(batch.images.size(), vec![32, 3, 32, 32]);
        let norm = Normalizer::new(Device::Cpu);
        for i in 0..32 {
            let label = batch.labels.int64_value(&[i]);
            // The centre pixel survives any crop (offsets are at most 4 from the centre).
            let expect = norm.apply(&Tensor::from_slice(&[(label * 20) as u8; 3]).view([1, 3, 1, 1]));
            let got = batch.images.double_value(&[i, 0, 16, 16]);
            assert!((got - expect.double_value(&[0, 0, 0, 0])).abs() < 1e-5, "image {i}");
        }
    }

    #[test]
    fn host_batches_equal_the_tensor_path_in_both_layouts() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 20, |f, r, b| (f * 13 + r * 7 + b) as u8).unwrap();
        let data = crate::data::cifar::load(dir.path()).unwrap();
        for channels_last in [false, true] {
            let mut fast = Batcher::new(&data.train, 4, 16, channels_last);
            // A non-contiguous copy of the images forces the tensor path.
            let mut slow = Batcher::new(&data.train, 4, 16, channels_last);
            slow.images = slow.images.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
            assert!(fast.host_bytes().is_some() && slow.host_bytes().is_none());
            for iter in [0, 7, 13] {
                let (a, b) = (fast.batch(iter), slow.batch(iter));
                assert!(a.images.equal(&b.images) && a.labels.equal(&b.labels), "iter {iter}");
                assert_eq!(a.images.stride(), b.images.stride(), "same memory layout");
            }
        }
    }

    #[test]
    fn prefetcher_delivers_batches_in_order_and_stops_early() {
        let dir = tempfile::tempdir().unwrap();
        write_synthetic(dir.path(), 8, |_, r, b| (r + b) as u8).unwrap();
        let data = crate::data::cifar::load(dir.path()).unwrap();
        let mut reference = Batcher::new(&data.train, 2, 4, false);
        let pre = Prefetcher::spawn(Batcher::new(&data.train, 2, 4, false), 3, 1000, 2);
        for iter in 3..6 {
            let got = pre.next().unwrap();
            assert_eq!(got.iter, iter);
            assert!(got.images.equal(&reference.batch(iter).images));
        }
        drop(pre); // must not hang with the thread blocked on a full channel
    }
}

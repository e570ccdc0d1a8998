//! The paper's augmentation on whole batches: zero-pad 4 pixels, random 32x32 crop, random
//! horizontal flip; then per-channel normalisation. Runs on whichever device holds the batch;
//! on the CPU a plain-Rust version on the bytes ([`augment_bytes`]) does the same in one pass.

use crate::reference::{CIFAR_MEAN, CIFAR_STD, recipe::PAD};
use rand::Rng;
use tch::{Device, Kind, Tensor};

/// Where each image of a batch is cropped and whether it is mirrored.
#[derive(Clone, Debug, PartialEq)]
pub struct Crops {
    /// Row offset into the padded 40x40 image, 0..=8.
    pub dy: Vec<i64>,
    /// Column offset into the padded image, 0..=8.
    pub dx: Vec<i64>,
    pub flip: Vec<bool>,
}

impl Crops {
    /// Offsets uniform over all 9x9 positions (every offset 0..=8 possible), flips with p = 1/2.
    pub fn random(rng: &mut impl Rng, n: usize) -> Crops {
        let span = 2 * PAD + 1;
        Crops {
            dy: (0..n).map(|_| rng.random_range(0..span)).collect(),
            dx: (0..n).map(|_| rng.random_range(0..span)).collect(),
            flip: (0..n).map(|_| rng.random_bool(0.5)).collect(),
        }
    }
}

/// Crops and flips a batch of byte images (B, 3, 32, 32) as `crops` says, with zero padding.
pub fn crop_and_flip(images: &Tensor, crops: &Crops) -> Tensor {
    let (b, _, h, w) = images.size4().expect("images are (B, 3, H, W)");
    let (rows, cols) = crop_indices(crops, h, w);
    let on_device = |v: &[i64], n| Tensor::from_slice(v).view([b, n]).to_device(images.device());
    gather_crops(images, &on_device(&rows, h), &on_device(&cols, w))
}

/// The rows and the columns of the zero-padded images that `crops` read for images of `h` x `w`:
/// (B, H) rows, then (B, W) columns, each row-major; a mirrored crop's columns right to left.
pub fn crop_indices(crops: &Crops, h: i64, w: i64) -> (Vec<i64>, Vec<i64>) {
    let rows = crops.dy.iter().flat_map(|&dy| (0..h).map(move |r| r + dy)).collect();
    let cols = crops
        .dx
        .iter()
        .zip(&crops.flip)
        .flat_map(|(&dx, &flip)| (0..w).map(move |j| if flip { w - 1 - j } else { j } + dx))
        .collect();
    (rows, cols)
}

/// The crops of byte images (B, C, H, W) at `rows` (B, H) and `cols` (B, W) of their zero-padded
/// form ([`crop_indices`], on the images' device): two gathers on the padded batch, rows, then
/// columns.
pub fn gather_crops(images: &Tensor, rows: &Tensor, cols: &Tensor) -> Tensor {
    let (b, c, h, w) = images.size4().expect("images are (B, 3, H, W)");
    let padded = images.constant_pad_nd([PAD, PAD, PAD, PAD]);
    let pw = w + 2 * PAD;
    let row_idx = rows.view([b, 1, h, 1]).expand([b, c, h, pw], false);
    let out = padded.gather(2, &row_idx, false);
    let col_idx = cols.view([b, 1, 1, w]).expand([b, c, h, w], false);
    out.gather(3, &col_idx, false)
}

/// Per-channel `(scale, shift)` in float32: `x * scale + shift` maps a byte to its normalised value.
fn channel_affine() -> ([f32; 3], [f32; 3]) {
    let mut scale = [0f32; 3];
    let mut shift = [0f32; 3];
    for c in 0..3 {
        scale[c] = (1.0 / (255.0 * CIFAR_STD[c])) as f32;
        shift[c] = (-CIFAR_MEAN[c] / CIFAR_STD[c]) as f32;
    }
    (scale, shift)
}

/// The same as `Normalizer::apply(crop_and_flip(images[idx], crops))`, bit for bit, computed in
/// plain Rust from the byte images `pixels` (N, 3, 32, 32) in one pass. Written NHWC when
/// `channels_last` (the layout the network then reads), else NCHW, into `out`, which holds
/// exactly `idx.len()` images; every element is written.
///
/// Why: on the CPU the tensor version runs a dozen libtorch kernels on the prefetch thread, whose
/// OpenMP team then competes with the training step's for the same cores; this touches no libtorch.
pub fn augment_bytes(pixels: &[u8], idx: &[i64], crops: &Crops, channels_last: bool, out: &mut [f32]) {
    const S: usize = 32;
    const PLANE: usize = S * S;
    let pad = PAD as usize;
    let (scale, shift) = channel_affine();
    assert_eq!(out.len(), idx.len() * 3 * PLANE, "output size");
    for (i, &img) in idx.iter().enumerate() {
        let src = &pixels[img as usize * 3 * PLANE..(img as usize + 1) * 3 * PLANE];
        let (dy, dx, flip) = (crops.dy[i] as usize, crops.dx[i] as usize, crops.flip[i]);
        let dst = &mut out[i * 3 * PLANE..(i + 1) * 3 * PLANE];
        for r in 0..S {
            // Row r of the crop is padded row r + dy, image row r + dy - pad (padding outside).
            let sr = (r + dy).wrapping_sub(pad);
            for col in 0..S {
                let pc = if flip { S - 1 - col } else { col } + dx;
                let sc = pc.wrapping_sub(pad);
                let inside = sr < S && sc < S;
                for c in 0..3 {
                    let byte = if inside { src[c * PLANE + sr * S + sc] } else { 0 };
                    // Same two float32 operations, in the same order, as the tensor version.
                    let v = f32::from(byte) * scale[c] + shift[c];
                    let at = if channels_last { (r * S + col) * 3 + c } else { c * PLANE + r * S + col };
                    dst[at] = v;
                }
            }
        }
    }
}

/// Per-channel normalisation with the training statistics, as float32 on the batch's device.
pub struct Normalizer {
    scale: Tensor,
    shift: Tensor,
}

impl Normalizer {
    pub fn new(device: Device) -> Normalizer {
        let (scale, shift) = channel_affine();
        Normalizer {
            scale: Tensor::from_slice(&scale).view([1, 3, 1, 1]).to_device(device),
            shift: Tensor::from_slice(&shift).view([1, 3, 1, 1]).to_device(device),
        }
    }

    /// Bytes (B, 3, H, W) to normalised float32.
    pub fn apply(&self, images: &Tensor) -> Tensor {
        images.to_kind(Kind::Float) * &self.scale + &self.shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    /// Image i has pixel value (row * 32 + col) % 251 + i in every channel, so positions can be read back.
    fn numbered(b: i64) -> Tensor {
        let base = (Tensor::arange(32 * 32, (Kind::Int64, Device::Cpu)).remainder(251)).view([1, 1, 32, 32]);
        let offs = Tensor::arange(b, (Kind::Int64, Device::Cpu)).view([b, 1, 1, 1]);
        (base + offs).expand([b, 3, 32, 32], false).to_kind(Kind::Uint8).contiguous()
    }

    fn value(row: i64, col: i64, i: i64) -> i64 {
        ((row * 32 + col) % 251 + i) & 0xff
    }

    #[test]
    fn crop_reads_the_offset_window_with_zero_padding() {
        let images = numbered(3);
        let crops = Crops { dy: vec![4, 0, 8], dx: vec![4, 8, 0], flip: vec![false, false, false] };
        let out = crop_and_flip(&images, &crops);
        assert_eq!(out.size(), vec![3, 3, 32, 32]);
        // Offset (4, 4) is the unpadded image.
        assert!(out.get(0).equal(&images.get(0)));
        // Offset (0, 8): output (r, c) reads padded (r, c + 8) = image (r - 4, c + 4).
        assert_eq!(out.int64_value(&[1, 0, 0, 0]), 0, "top rows come from the zero padding");
        assert_eq!(out.int64_value(&[1, 2, 10, 3]), value(6, 7, 1));
        assert_eq!(out.int64_value(&[1, 1, 10, 31]), 0, "right columns come from the zero padding");
        // Offset (8, 0): output (r, c) = image (r + 4, c - 4).
        assert_eq!(out.int64_value(&[2, 0, 0, 10]), value(4, 6, 2));
        assert_eq!(out.int64_value(&[2, 0, 31, 31]), 0);
    }

    #[test]
    fn flip_mirrors_columns() {
        let images = numbered(1);
        let crops = Crops { dy: vec![4], dx: vec![4], flip: vec![true] };
        let out = crop_and_flip(&images, &crops);
        assert!(out.equal(&images.flip([3])));
    }

    #[test]
    fn random_crops_cover_every_offset_and_flip_about_half() {
        let mut rng = Pcg64::seed_from_u64(7);
        let crops = Crops::random(&mut rng, 20_000);
        for offsets in [&crops.dy, &crops.dx] {
            assert_eq!(*offsets.iter().min().unwrap(), 0);
            assert_eq!(*offsets.iter().max().unwrap(), 8);
            for k in 0..=8 {
                assert!(offsets.contains(&k));
            }
        }
        let flipped = crops.flip.iter().filter(|&&f| f).count() as f64 / 20_000.0;
        assert!((flipped - 0.5).abs() < 0.02, "{flipped}");
    }

    #[test]
    fn byte_augmentation_equals_the_tensor_version_in_both_layouts() {
        let images = numbered(6);
        let pixels = Vec::<u8>::try_from(images.flatten(0, -1)).unwrap();
        let idx = [5i64, 0, 3, 3];
        let crops = Crops::random(&mut Pcg64::seed_from_u64(11), idx.len());
        let chosen = images.index_select(0, &Tensor::from_slice(&idx));
        let expect = Normalizer::new(Device::Cpu).apply(&crop_and_flip(&chosen, &crops));
        let built = |channels_last| {
            let mut out = vec![f32::NAN; idx.len() * 3 * 32 * 32];
            augment_bytes(&pixels, &idx, &crops, channels_last, &mut out);
            Tensor::from_slice(&out)
        };
        assert!(built(false).view([4, 3, 32, 32]).equal(&expect));
        assert!(built(true).view([4, 32, 32, 3]).permute([0, 3, 1, 2]).equal(&expect));
    }

    #[test]
    fn normalizer_uses_the_training_statistics() {
        let norm = Normalizer::new(Device::Cpu);
        let red = (0.4914f64 * 255.0).round();
        let images = Tensor::from_slice(&[red as u8; 3]).view([1, 3, 1, 1]);
        let out = norm.apply(&images);
        assert!(out.double_value(&[0, 0, 0, 0]).abs() < 0.01);
        let expect_blue = (red / 255.0 - 0.4465) / 0.2616;
        assert!((out.double_value(&[0, 2, 0, 0]) - expect_blue).abs() < 1e-5);
    }
}

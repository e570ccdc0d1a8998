//! Weights in PyTorch's names and layout: the `state_dict()` of the project's PyTorch model of
//! the same network (`ResNet(depth)` in `scripts/pytorch_reference.py`), buffers included, as a
//! safetensors file that `safetensors.torch.load_file` reads and `load_state_dict` takes as is.
//! Export writes one; `train --init-from` starts a run from one.
//!
//! Our names                          PyTorch's
//! stem.conv.weight                   conv.weight
//! stem.bn.{weight,bias,running_*}    bn.{...}, and bn.num_batches_tracked
//! stage{s}.block{b}.{conv1,bn1,...}  blocks.{s*n+b}.{conv1,bn1,...}
//! fc.{weight,bias}                   fc.{weight,bias}

use crate::config::{Depth, Shortcut};
use crate::model::Network;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum InterchangeError {
    #[error("the PyTorch model has option A shortcuts only; this is a ResNet with option B")]
    OptionB,
    #[error("{}: cannot read: {}", .0.display(), .1)]
    Read(PathBuf, String),
    #[error("{}: cannot write: {}", .0.display(), .1)]
    Write(PathBuf, String),
    #[error("{}: not the ResNet-{depth} weights: {why}", .path.display())]
    Mismatch { path: PathBuf, depth: Depth, why: String },
}

/// The PyTorch name of one of our variables.
pub fn pytorch_name(ours: &str, depth: Depth) -> Option<String> {
    if let Some(rest) = ours.strip_prefix("stem.") {
        return Some(rest.to_string());
    }
    if ours.starts_with("fc.") {
        return Some(ours.to_string());
    }
    let rest = ours.strip_prefix("stage")?;
    let (stage, rest) = rest.split_once(".block")?;
    let (block, rest) = rest.split_once('.')?;
    let (stage, block): (usize, usize) = (stage.parse().ok()?, block.parse().ok()?);
    Some(format!("blocks.{}.{rest}", stage * depth.blocks_per_stage() + block))
}

/// The BatchNorm layers' step counters PyTorch keeps beside their statistics (`momentum=None`
/// would use them; at the default 0.1 they only count), named after their layer's running mean.
fn counters(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| n.strip_suffix(".running_mean").map(|layer| format!("{layer}.num_batches_tracked")))
        .collect()
}

/// `model` (our names) in PyTorch's names, contiguous NCHW, with the BatchNorm counters set to
/// `steps`, the training steps the statistics have seen.
pub fn to_pytorch(
    model: &HashMap<String, Tensor>,
    depth: Depth,
    shortcut: Shortcut,
    steps: u64,
) -> Result<Vec<(String, Tensor)>, InterchangeError> {
    if shortcut == Shortcut::B {
        return Err(InterchangeError::OptionB);
    }
    let mut out: Vec<(String, Tensor)> = model
        .iter()
        .map(|(n, t)| {
            let name = pytorch_name(n, depth).unwrap_or_else(|| n.clone());
            (name, t.to_kind(Kind::Float).contiguous().to_device(tch::Device::Cpu))
        })
        .collect();
    let names: Vec<String> = out.iter().map(|(n, _)| n.clone()).collect();
    out.extend(counters(&names).into_iter().map(|n| (n, Tensor::from(steps as i64))));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Writes PyTorch-named tensors as a safetensors file.
pub fn write(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), InterchangeError> {
    let named: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&named, path).map_err(|e| InterchangeError::Write(path.to_path_buf(), e.to_string()))
}

/// Copies a PyTorch-named file's weights into `network`, insisting on every variable with its
/// shape and on nothing else but the BatchNorm counters.
pub fn load_into(path: &Path, network: &Network) -> Result<(), InterchangeError> {
    let depth = network.net.depth;
    if network.net.shortcut == Shortcut::B {
        return Err(InterchangeError::OptionB);
    }
    let loaded =
        Tensor::read_safetensors(path).map_err(|e| InterchangeError::Read(path.to_path_buf(), e.to_string()))?;
    let mut theirs: HashMap<String, Tensor> = loaded.into_iter().collect();
    let not = |why: String| InterchangeError::Mismatch { path: path.to_path_buf(), depth, why };
    let mut vars: Vec<(String, Tensor)> = network.vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (ours, var) in &vars {
        let name = pytorch_name(ours, depth).unwrap_or_else(|| ours.clone());
        let src = theirs.remove(&name).ok_or_else(|| not(format!("it has no {name}")))?;
        if src.size() != var.size() {
            return Err(not(format!("{name} has shape {:?}, expected {:?}", src.size(), var.size())));
        }
        tch::no_grad(|| var.shallow_clone().copy_(&src.to_kind(var.kind())));
    }
    if let Some(extra) = theirs.keys().find(|k| !k.ends_with(".num_batches_tracked")) {
        return Err(not(format!("it has {extra}, which this network lacks")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u32) -> Depth {
        Depth::new(n).unwrap()
    }

    #[test]
    fn names_follow_the_pytorch_models_state_dict() {
        let depth = d(20);
        assert_eq!(pytorch_name("stem.conv.weight", depth).unwrap(), "conv.weight");
        assert_eq!(pytorch_name("stem.bn.running_var", depth).unwrap(), "bn.running_var");
        assert_eq!(pytorch_name("stage0.block0.conv1.weight", depth).unwrap(), "blocks.0.conv1.weight");
        assert_eq!(pytorch_name("stage1.block2.bn2.bias", depth).unwrap(), "blocks.5.bn2.bias");
        assert_eq!(pytorch_name("stage2.block0.bn1.weight", depth).unwrap(), "blocks.6.bn1.weight");
        assert_eq!(pytorch_name("fc.weight", depth).unwrap(), "fc.weight");
        assert_eq!(counters(&["bn.running_mean".into(), "fc.weight".into()]), vec!["bn.num_batches_tracked"]);
    }

    #[test]
    fn an_export_reads_back_into_a_fresh_network_exactly() {
        let depth = d(8);
        let a = Network::new(depth, Shortcut::A, tch::Device::Cpu);
        let b = Network::new(depth, Shortcut::A, tch::Device::Cpu);
        let model: HashMap<String, Tensor> = a.vs.variables();
        let tensors = to_pytorch(&model, depth, Shortcut::A, 7).unwrap();
        let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"blocks.2.bn2.num_batches_tracked") && names.contains(&"conv.weight"), "{names:?}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.safetensors");
        write(&file, &tensors).unwrap();
        load_into(&file, &b).unwrap();
        for (name, var) in b.vs.variables() {
            assert!(var.equal(&model[&name]), "{name}");
        }
        // Another depth's weights are refused, naming the first tensor that does not fit.
        let deeper = Network::new(d(14), Shortcut::A, tch::Device::Cpu);
        let err = load_into(&file, &deeper).unwrap_err().to_string();
        assert!(err.contains("not the ResNet-14 weights") && err.contains("has shape"), "{err}");
        let b_net = Network::new(depth, Shortcut::B, tch::Device::Cpu);
        assert!(matches!(to_pytorch(&b_net.vs.variables(), depth, Shortcut::B, 0), Err(InterchangeError::OptionB)));
    }
}

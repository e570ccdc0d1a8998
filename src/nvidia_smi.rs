//! What `nvidia-smi` says about a CUDA device: libtorch's figures for it are not reachable
//! through tch (free memory) or not kept (compute capability without a context).

/// The CSV answer of `nvidia-smi --query-gpu=FIELDS` for CUDA device `index` as libtorch numbers
/// it: `nvidia-smi` numbers GPUs ignoring `CUDA_VISIBLE_DEVICES`, so the ordinal is mapped
/// through it. `None` when there is no such device or no `nvidia-smi`.
pub fn query(index: usize, fields: &str, format: &str) -> Option<String> {
    let physical = match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(list) => list.split(',').nth(index)?.trim().to_string(),
        Err(_) => index.to_string(),
    };
    let out = std::process::Command::new("nvidia-smi")
        .args([&format!("--query-gpu={fields}"), &format!("--format={format}"), "-i", &physical])
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

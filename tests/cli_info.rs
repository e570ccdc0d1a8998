//! What the command line says about itself: `--version` with the libtorch it uses and whether
//! CUDA is usable, and shell completion scripts.

mod common;

use common::*;

fn run(args: &[&str]) -> std::process::Output {
    let mut cmd = bin();
    cmd.args(args);
    output(cmd)
}

/// What the installed PyTorch (the wheel whose libtorch `scripts/setup` links the build to) says
/// of itself, asked in Python, not through this program's code: its version and how many CUDA
/// devices it can use.
fn pytorch_says() -> (String, i64) {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(python.is_file(), "{} missing: run ./scripts/setup", python.display());
    let script =
        "import torch; print(torch.__version__); print(torch.cuda.device_count() if torch.cuda.is_available() else 0)";
    let out = output({
        let mut cmd = std::process::Command::new(&python);
        cmd.args(["-c", script]);
        cmd
    });
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let version = lines.next().expect("a version").trim().to_string();
    let devices = lines.next().and_then(|n| n.trim().parse().ok()).expect("a device count");
    (version, devices)
}

#[test]
fn version_names_the_libtorch_and_whether_cuda_is_usable() {
    let out = run(&["--version"]);
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], format!("resnet-tui {}", env!("CARGO_PKG_VERSION")));
    let (version, devices) = pytorch_says();
    assert_eq!(lines[1], format!("libtorch {version}"), "{text}");
    let cuda = match devices {
        0 => "CUDA not usable (no GPU visible to libtorch)".to_string(),
        1 => "CUDA usable, 1 device".to_string(),
        n => format!("CUDA usable, {n} devices"),
    };
    assert_eq!(lines[2], cuda, "PyTorch sees {devices} CUDA device(s):\n{text}");
}

#[test]
fn completion_scripts_know_the_subcommands_and_options() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell]);
        assert_ok(&out);
        let script = String::from_utf8_lossy(&out.stdout).to_string();
        for word in ["resume", "summary", "depth", "warmup-until-error"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    assert_refused(&run(&["completions", "tcsh"]), &["'tcsh'", "bash"]);
}

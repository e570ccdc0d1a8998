//! What the command line says about itself: `--version` with the libtorch it uses and whether
//! CUDA is usable, and shell completion scripts.

mod common;

use common::*;

fn run(args: &[&str]) -> std::process::Output {
    let mut cmd = bin();
    cmd.args(args);
    output(cmd)
}

#[test]
fn version_names_the_libtorch_and_whether_cuda_is_usable() {
    let out = run(&["--version"]);
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], format!("resnet-tui {}", env!("CARGO_PKG_VERSION")));
    assert!(lines[1].starts_with("libtorch 2.11.0"), "{text}");
    let cuda = if tch::Cuda::is_available() { "CUDA usable, " } else { "CUDA not usable" };
    assert!(lines[2].starts_with(cuda), "{text}");
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

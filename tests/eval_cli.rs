//! `resnet-tui eval CHECKPOINT`: the test error of saved weights, computed as the run computed
//! its own evaluations, so that a shipped run's weights give the error its log records.
mod common;

use common::*;

#[test]
fn eval_computes_in_the_precision_the_run_trained_in_and_gives_its_logged_final_error() {
    let s = Sandbox::new();
    assert_ok(&output(s.train(&["--iters", "30", "--eval-every", "30", "--precision", "bf16"])));
    let run = s.only_run();
    let logged = finished(&run).last().unwrap().final_error.expect("a completed run has a final error");
    let (_, last) = resnet_tui::train::checkpoint::list_periodic(&run.join("checkpoints")).pop().unwrap();

    let (said, error) = eval_said(&last, &s.data(), &[]);
    assert!(said.ends_with("images, bf16)"), "{said}");
    // Printed to two decimals; one image of the small test set is more than a point.
    assert!((error - logged).abs() <= 0.005, "eval {error} %, the log {logged} %");
    let (said, _) = eval_said(&last, &s.data(), &["--precision", "fp32"]);
    assert!(said.ends_with("images, fp32)"), "{said}");
}

//! The degradation experiment as a user runs it: one sweep of plain and residual nets
//! (`--vary shortcut=none,a`), its 2x2 table from `summary`, and the paper's Figures 1, 6 and 7
//! drawn from the sweep folder alone.
mod common;

use common::*;

const GRID: [&str; 14] = [
    "--depths",
    "8,20",
    "--vary",
    "shortcut=none,a",
    "--iters",
    "6",
    "--batch-size",
    "16",
    "--device",
    "cpu",
    "--eval-every",
    "3",
    "--seeds",
    "1",
];

fn plot(sweep: &std::path::Path, figure: &str, out: &std::path::Path) -> std::process::Output {
    let mut c = bin();
    c.arg("plot").arg("--figure").arg(figure).arg(sweep).arg("-o").arg(out);
    output(c)
}

#[test]
fn a_plain_and_residual_sweep_summarises_as_a_2x2_table_and_draws_figures_1_6_and_7() {
    let s = Sandbox::new();
    let sweep = s.path("degradation");
    let mut run = bin();
    run.args(["sweep", "run"]).arg(&sweep).args(GRID).arg("--data-dir").arg(s.data()).args(["--jobs", "2", "--no-ui"]);
    assert_ok(&output(run));
    for cell in ["plain8-seed1", "resnet8-seed1", "plain20-seed1", "resnet20-seed1"] {
        assert!(sweep.join(cell).join("config.json").is_file(), "{cell}");
    }

    let mut summary = bin();
    summary.arg("summary").arg(&sweep);
    let out = output(summary);
    assert_ok(&out);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}:\n{table}"));
    // Plain-20: no paper figure, the public reproduction's labelled with its source instead.
    assert!(row("Plain-20 ").contains("9.69 (a-martyn/resnet; train 0.74)"), "{table}");
    assert!(row("ResNet-20 ").contains("8.75"), "{table}");
    assert!(!row("Plain-20 ").contains("8.75"), "{table}");
    assert!(table.contains("the paper gives no CIFAR-10 figure"), "{table}");
    for name in ["Plain-8 ", "ResNet-8 ", "Plain-20 ", "ResNet-20 "] {
        assert!(row(name).contains("1/0/0/0"), "{name} done:\n{table}");
    }

    for figure in ["1", "6", "7"] {
        let png = s.path(&format!("figure{figure}.png"));
        let out = plot(&sweep, figure, &png);
        assert_ok(&out);
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "figure {figure}: {} bytes", bytes.len());
    }

    // Figure 1 is of plain nets: a ResNet alone is refused in one line.
    let out = plot(&sweep.join("resnet8-seed1"), "1", &s.path("no.png"));
    assert_refused(&out, &["figure 1", "--plain"]);
}

//! The confusion panel and overlay on ratatui's TestBackend: the most confused pairs listed beside
//! the classes, `m` showing the whole matrix and asking the loop for the misclassified images,
//! which are then drawn two pixels a cell in their own colours.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use resnet_tui::protocol::*;
use resnet_tui::ui::app::{App, Effect, Mode, Msg};
use resnet_tui::ui::theme::{Marker, Theme};
use std::path::PathBuf;

const CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

fn app_after_an_evaluation() -> App {
    let mut app = App::new(Mode::Replay, Theme { color: true }, Marker::Braille);
    let mut config = resnet_tui::config::paper(resnet_tui::config::Depth::new(20).unwrap(), "/data/cifar".into());
    config.iters = 100;
    let info = RunInfo {
        name: "r".into(),
        dir: PathBuf::from("/runs/r"),
        config,
        params: 1,
        device: "cpu".into(),
        train_images: 50_000,
        eval_images: 10_000,
        eval_set: EvalSet::Test,
        classes: CLASSES.iter().map(|s| s.to_string()).collect(),
        start_iter: 0,
        grown_from: None,
        best_before: None,
        build: None,
        cpu: None,
    };
    app.update(Msg::Event(Envelope { run: 0, event: Event::RunStarted { time: 0.0, run: Box::new(info) } }));
    // 1,000 of each class: cats taken for dogs 300 times, trucks for cars 120 times.
    let mut confusion = vec![vec![0u32; 10]; 10];
    for (i, row) in confusion.iter_mut().enumerate() {
        row[i] = 1000;
    }
    confusion[3][3] = 700;
    confusion[3][5] = 300;
    confusion[9][9] = 880;
    confusion[9][1] = 120;
    let eval = EvalRecord {
        time: 1.0,
        iter: 100,
        epoch: 0.3,
        elapsed: 10.0,
        set: EvalSet::Test,
        loss: 1.0,
        error: 4.2,
        class_errors: vec![0.0; 10],
        images_per_sec: 1000.0,
        confusion,
        misclassified: vec![
            Misclassified { index: 17, label: 3, predicted: 5 },
            Misclassified { index: 42, label: 9, predicted: 1 },
        ],
        responses: Vec::new(),
    };
    app.update(Msg::Event(Envelope { run: 0, event: Event::Eval(eval) }));
    app
}

fn draw(app: &App) -> ratatui::buffer::Buffer {
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    terminal.draw(|f| resnet_tui::ui::view::view(f, app)).unwrap();
    terminal.backend().buffer().clone()
}

fn text(buffer: &ratatui::buffer::Buffer) -> String {
    (0..buffer.area.height)
        .map(|y| (0..buffer.area.width).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>() + "\n")
        .collect()
}

#[test]
fn the_most_confused_pairs_are_listed_and_m_shows_the_matrix_and_the_images() {
    let mut app = app_after_an_evaluation();
    let screen = text(&draw(&app));
    assert!(screen.contains("most confused (m: matrix)"), "{screen}");
    assert!(screen.contains("cat → dog 300 (30.0%)") && screen.contains("truck → automobile 120 (12.0%)"), "{screen}");

    app.update(Msg::Key(KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE)));
    let asked = app.take_effects();
    assert_eq!(
        asked,
        vec![Effect::LoadImages {
            data_dir: "/data/cifar".into(),
            set: EvalSet::Test,
            val_split: 0,
            indices: vec![17, 42]
        }]
    );
    // Image 17: the top half pure red, the bottom half blue (planes R, G, B of 32x32).
    let mut pixels = vec![0u8; 3072];
    for y in 0..32 {
        for x in 0..32 {
            let plane = if y < 16 { 0 } else { 2 };
            pixels[plane * 1024 + y * 32 + x] = 255;
        }
    }
    app.update(Msg::Images(Ok(vec![(17, pixels), (42, vec![128; 3072])])));
    let buffer = draw(&app);
    let screen = text(&buffer);
    assert!(screen.contains("confusion matrix, iteration 100"), "{screen}");
    let row = screen.lines().find(|l| l.contains("       cat ")).unwrap_or_else(|| panic!("{screen}"));
    assert!(row.contains("   700     0   300"), "{row}");
    assert!(screen.contains("cat as dog") && screen.contains("truck as automobile"), "{screen}");
    let cells: Vec<_> = buffer.content().iter().filter(|c| c.symbol() == "▀").collect();
    assert_eq!(cells.len(), 2 * 32 * 16, "two images, 32 x 16 cells each");
    assert!(cells.iter().any(|c| c.fg == Color::Rgb(255, 0, 0) && c.bg == Color::Rgb(255, 0, 0)));
    assert!(cells.iter().any(|c| c.fg == Color::Rgb(0, 0, 255) && c.bg == Color::Rgb(0, 0, 255)));
    assert!(cells.iter().any(|c| c.fg == Color::Rgb(128, 128, 128)));

    // Replayed where the data set is not: said instead of drawn; esc closes.
    let missing = resnet_tui::data::cifar::DataError::Missing("/data/cifar/test_batch.bin".into());
    app.update(Msg::Images(Err(missing)));
    assert!(text(&draw(&app)).contains("images not shown: /data/cifar/test_batch.bin"));
    app.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
    assert!(!text(&draw(&app)).contains("confusion matrix"));
}

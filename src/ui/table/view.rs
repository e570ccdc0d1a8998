//! The table screen, drawn from the `TableApp` and nothing else: a title, the paper's table with
//! each row's runs under it, what the queue said last, and the key bar.

use super::app::{TableApp, TableLine, TableOverlay};
use crate::format::{count_short, eta, group_digits};
use crate::frontend::board::{CellState, Followed, RowFigures};
use crate::ui::keys::{self, Scope};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

const HEADERS: [&str; 11] = [
    "run",
    "done/run/pend/fail",
    "iteration",
    "ETA",
    "img/s",
    "now %",
    "final %, mean ± sd",
    "best of N",
    "paper %",
    "reimpl. %",
    "",
];
/// The columns' widths; the first (names) is at least this wide, wider where names need it
/// (see [`name_width`]).
const WIDTHS: [u16; 11] = [24, 18, 12, 8, 6, 7, 18, 9, 7, 9, 0];
/// The widest the names' column grows to: past it a run's name is elided in the middle.
const MAX_NAME_WIDTH: u16 = 48;
/// A run's line starts with its mark (`● ` or two spaces), then its name.
const MARK_WIDTH: usize = 2;

/// The names' column: as wide as the longest row label or marked run name, between the fixed
/// width and [`MAX_NAME_WIDTH`], and never so wide that the figures' columns leave `area_width`.
fn name_width(app: &TableApp, area_width: u16) -> u16 {
    let board = &app.board;
    let labels: Vec<usize> = board.rows().iter().map(|r| r.figures(board).label.chars().count()).collect();
    let rows = labels.into_iter();
    let runs = board.runs.iter().map(|r| r.member.name.chars().count() + MARK_WIDTH);
    let longest = rows.chain(runs).max().unwrap_or(0).min(usize::from(MAX_NAME_WIDTH)) as u16;
    // The border, and a space between each of the figures' columns.
    let others: u16 = WIDTHS[1..].iter().sum::<u16>() + 2 + WIDTHS.len() as u16;
    longest.min(area_width.saturating_sub(others)).max(WIDTHS[0])
}

pub fn view(frame: &mut Frame, app: &TableApp) {
    let area = frame.area();
    let notes = (app.notes.len() as u16).clamp(1, 6);
    let [title, body, said, keybar] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(notes + 1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_title(frame, title, app);
    draw_table(frame, body, app);
    draw_notes(frame, said, app);
    draw_keybar(frame, keybar, app);
    match app.overlay {
        TableOverlay::Help => draw_help(frame, body, app),
        TableOverlay::ConfirmStop => draw_confirm(frame, body, app),
        TableOverlay::None => {}
    }
}

fn draw_title(frame: &mut Frame, area: Rect, app: &TableApp) {
    let t = &app.theme;
    let runs = &app.board.runs;
    let count = |s: CellState| runs.iter().filter(|r| r.state() == s).count();
    let spans = vec![
        Span::styled(" resnet-tui ", t.selected()),
        Span::raw(" "),
        Span::styled(app.board.dir.display().to_string(), t.title()),
        Span::raw(format!(
            " · {} runs: {} done, {} running, {} pending, {} failed",
            runs.len(),
            count(CellState::Done),
            count(CellState::Running) + count(CellState::Paused),
            count(CellState::Pending),
            count(CellState::Failed)
        )),
        Span::styled(if app.queue { " · local queue" } else { "" }, t.muted()),
    ];
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
}

/// Training images a second of what trains now.
fn speed(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into())
}

fn iteration(iter: u64, planned: u64) -> String {
    format!("{}/{}", count_short(iter), count_short(planned))
}

fn row_cells(f: &RowFigures) -> Vec<String> {
    let finals = match (f.final_mean, f.final_std) {
        (Some(m), Some(s)) => format!("{m:.2} ± {s:.2}"),
        (Some(m), None) => format!("{m:.2}"),
        _ => "-".into(),
    };
    vec![
        f.label.clone(),
        format!("{}/{}/{}/{}", f.done, f.running, f.pending, f.failed),
        f.progress.map(|(i, n)| iteration(i, n)).unwrap_or_else(|| "-".into()),
        f.eta_secs.map(eta).unwrap_or_else(|| "-".into()),
        speed(f.images_per_sec),
        pct(f.current_error),
        finals,
        if f.done > 1 { pct(f.final_best) } else { "-".into() },
        pct(f.paper_error),
        pct(f.reimpl_error),
        String::new(),
    ]
}

fn run_cells(run: &Followed, marked: bool, name_width: u16) -> Vec<String> {
    let h = &run.history;
    let state = run.state();
    let planned = h.info.as_ref().map(|i| i.config.iters);
    let active = matches!(state, CellState::Running | CellState::Paused);
    let mark = if marked { "● " } else { "  " };
    vec![
        format!("{mark}{}", crate::format::elide_middle(&run.member.name, usize::from(name_width) - MARK_WIDTH)),
        state.name().to_string(),
        planned.map(|n| iteration(h.iters(), n)).unwrap_or_else(|| "-".into()),
        if active { h.eta_secs().map(eta).unwrap_or_else(|| "-".into()) } else { "-".into() },
        speed(h.current_images_per_sec().filter(|_| active)),
        if active { pct(h.last_eval().map(|e| e.error)) } else { "-".into() },
        pct(run.final_error()),
        String::new(),
        String::new(),
        String::new(),
        match (&run.not_started, run.warnings) {
            (Some(why), _) => format!("failed to start: {why}"),
            (None, 0) => String::new(),
            (None, n) => format!("{} damaged lines skipped", group_digits(n as u64)),
        },
    ]
}

fn state_style(app: &TableApp, state: CellState) -> Style {
    let t = &app.theme;
    match state {
        CellState::Done => t.good(),
        CellState::Running => t.title(),
        CellState::Paused => t.warn(),
        CellState::Pending => t.muted(),
        CellState::Failed => t.bad(),
    }
}

fn draw_table(frame: &mut Frame, area: Rect, app: &TableApp) {
    let t = &app.theme;
    let rows_of_board = app.board.rows();
    let names = name_width(app, area.width);
    let rows: Vec<Row> = app
        .lines
        .iter()
        .map(|line| match *line {
            TableLine::Row(r) => {
                let f = rows_of_board[r].figures(&app.board);
                Row::new(row_cells(&f).into_iter().map(Cell::from)).style(t.title())
            }
            TableLine::Run(i) => {
                let run = &app.board.runs[i];
                let cells = run_cells(run, app.marked.contains(&i), names);
                let style = state_style(app, run.state());
                Row::new(
                    cells
                        .into_iter()
                        .enumerate()
                        .map(|(c, s)| if c == 1 { Cell::from(Span::styled(s, style)) } else { Cell::from(s) }),
                )
            }
        })
        .collect();
    let widths: Vec<Constraint> = WIDTHS
        .iter()
        .enumerate()
        .map(|(c, &w)| match (c, w) {
            (0, _) => Constraint::Length(names),
            (_, 0) => Constraint::Min(0),
            _ => Constraint::Length(w),
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(Row::new(HEADERS).style(t.muted()))
        .block(Block::bordered().title(Span::styled(" the paper's table, as it fills in ", t.title())))
        .row_highlight_style(t.selected());
    let mut state = TableState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_notes(frame: &mut Frame, area: Rect, app: &TableApp) {
    let t = &app.theme;
    let n = area.height.saturating_sub(1) as usize;
    let mut lines = vec![Line::styled("─".repeat(area.width as usize), t.faint())];
    let skip = app.notes.len().saturating_sub(n);
    lines.extend(app.notes.iter().skip(skip).map(|l| Line::raw(l.clone())));
    if app.notes.is_empty() {
        lines.push(Line::styled("enter opens a run's dashboard; esc there comes back here", t.muted()));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_keybar(frame: &mut Frame, area: Rect, app: &TableApp) {
    let question = app.overlay == TableOverlay::ConfirmStop;
    crate::ui::view::draw_keys(frame, area, &app.theme, &app.scopes(), question);
}

fn popup(frame: &mut Frame, area: Rect, width: u16, height: u16, title: &str, app: &TableApp) -> Rect {
    crate::ui::view::popup_box(frame, area, width, height, title, &app.theme)
}

fn draw_help(frame: &mut Frame, area: Rect, app: &TableApp) {
    let t = &app.theme;
    let mut lines = vec![Line::styled("table", t.title())];
    for b in keys::active(&[Scope::Table]) {
        lines.push(Line::from(vec![Span::styled(format!("  {:<9}", b.label), t.key()), Span::raw(b.help)]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw("Rows group the runs that differ only by their seed; final errors are"));
    lines.push(Line::raw("those of completed runs (mean ± sample std, and the best of N)."));
    let inner = popup(frame, area, 76, lines.len() as u16 + 2, "keys (esc closes)", app);
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_confirm(frame: &mut Frame, area: Rect, app: &TableApp) {
    let running = app.board.runs.iter().filter(|r| matches!(r.state(), CellState::Running | CellState::Paused)).count();
    let lines = vec![
        Line::raw(format!("The queue is running {running} run(s). Stop them (each writes a checkpoint) and quit?")),
        Line::raw("`resnet-tui sweep run` again resumes them."),
        Line::from(vec![
            Span::styled("y", app.theme.key()),
            Span::raw(" or "),
            Span::styled("q", app.theme.key()),
            Span::raw(" stops and quits"),
        ]),
    ];
    let inner = popup(frame, area, 84, 5, "quit?", app);
    frame.render_widget(Paragraph::new(lines), inner);
}

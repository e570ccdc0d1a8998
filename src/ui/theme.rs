//! Colours and emphasis in one place, so `NO_COLOR` (no-color.org) turns every colour off while
//! bold and dim still tell the lines apart.

use ratatui::style::{Color, Modifier, Style};

/// One colour per run, in the order runs appear.
const RUN_COLORS: [Color; 6] = [Color::Cyan, Color::Magenta, Color::Green, Color::Blue, Color::LightRed, Color::Yellow];

/// How charts draw their points: Braille dots, or plain dots and half blocks for fonts without
/// Braille (`--marker`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Marker {
    #[default]
    Braille,
    Dot,
    Block,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colours unless the `NO_COLOR` variable is set to anything non-empty.
    pub fn from_env() -> Theme {
        Theme { color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) }
    }

    pub fn fg(&self, color: Color) -> Style {
        if self.color { Style::new().fg(color) } else { Style::new() }
    }

    pub fn run(&self, index: usize) -> Style {
        self.fg(RUN_COLORS[index % RUN_COLORS.len()])
    }

    /// The colour of evaluation curves when a single run is shown.
    pub fn eval(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn paper(&self) -> Style {
        self.fg(Color::Red)
    }

    pub fn reimpl(&self) -> Style {
        self.fg(Color::LightMagenta).add_modifier(Modifier::DIM)
    }

    pub fn faint(&self) -> Style {
        self.fg(Color::DarkGray).add_modifier(Modifier::DIM)
    }

    pub fn muted(&self) -> Style {
        self.fg(Color::Gray)
    }

    pub fn title(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn key(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn good(&self) -> Style {
        self.fg(Color::Green).add_modifier(Modifier::BOLD)
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn selected(&self) -> Style {
        if self.color {
            Style::new().bg(Color::Cyan).fg(Color::Black).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn gauge(&self) -> Style {
        self.fg(Color::Cyan)
    }
}

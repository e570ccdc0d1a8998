//! Taking the terminal over and giving it back: raw mode and the alternate screen on entry;
//! restored on every exit path, a panic of the UI thread included (before the binary's own
//! one-line panic message is printed).

use ratatui::DefaultTerminal;
use std::sync::Once;

static HOOK: Once = Once::new();

/// Enters raw mode and the alternate screen; installs the restoring panic hook once.
pub fn enter() -> std::io::Result<DefaultTerminal> {
    // Not `ratatui::try_init`: its panic hook restores the terminal on a panic of any thread.
    install_panic_hook();
    crossterm::terminal::enable_raw_mode()?;
    if let Err(e) = crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen) {
        leave();
        return Err(e);
    }
    ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout())).inspect_err(|_| leave())
}

/// Leaves the alternate screen and raw mode, and shows the cursor. Safe to call more than once.
/// Errors are ignored: after a hang-up there is no terminal to restore, and `ratatui::restore`
/// would print to that dead terminal, which panics and loses the run's final checkpoint.
pub fn leave() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::terminal::LeaveAlternateScreen, crossterm::cursor::Show);
}

/// Chains a hook in front of the current one: a panic on the thread that owns the terminal
/// restores it first. Panics of other threads (the trainer reports its own as error events)
/// leave the screen to the UI, which is still running.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let ui_thread = std::thread::current().id();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().id() == ui_thread {
                leave();
            }
            previous(info);
        }));
    });
}

//! Panics as one line: which threads report theirs as fatal events, and the message kept for them.

use std::cell::Cell;
use std::sync::Mutex;

thread_local! {
    static REPORTS_PANICS: Cell<bool> = const { Cell::new(false) };
}
static PANIC_NOTE: Mutex<Option<String>> = Mutex::new(None);

/// Marks the current thread as one whose panics the trainer catches and reports.
pub fn report_panics_here() {
    REPORTS_PANICS.with(|r| r.set(true));
}

/// For the panic hook: keeps the panic's message (with its place) for the trainer to report, and
/// says whether it will be reported that way, so that the hook need not print it too.
pub fn note_panic(message: &str) -> bool {
    if !REPORTS_PANICS.with(Cell::get) {
        return false;
    }
    if let Ok(mut note) = PANIC_NOTE.lock() {
        *note = Some(message.to_string());
    }
    true
}

/// The message kept by [`note_panic`], if any.
pub fn take_panic_note() -> Option<String> {
    PANIC_NOTE.lock().ok().and_then(|mut n| n.take())
}

/// A panic payload as one readable line; libtorch's errors lose their C++ backtrace.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    one_line(&text)
}

/// The first line of a panic message; for a libtorch error, its first line without the wrapping.
pub fn one_line(text: &str) -> String {
    let text = text.strip_prefix("called `Result::unwrap()` on an `Err` value: ").unwrap_or(text);
    let text = match text.strip_prefix("Torch(\"") {
        // The error's text is escaped in the Debug form: its first line ends at the first `\n`.
        Some(rest) => format!("libtorch: {}", rest.split("\\n").next().unwrap_or(rest).trim_end_matches("\")")),
        None => text.to_string(),
    };
    text.lines().next().unwrap_or("").trim().to_string()
}

//! The one look of long work on a terminal: a bar over rows, with its message and an estimate.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar over `len` rows labelled `message`, hidden when not `visible` (a daemon
/// without a terminal, `--json`, a quiet test).
#[must_use]
pub fn rows_bar(len: u64, message: &'static str, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} rows ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

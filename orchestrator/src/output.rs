//! What the user sees while a command works: progress on stderr (spinners on a terminal, plain
//! lines otherwise). Results go to stdout through `println!` in the commands; logs go through
//! `tracing`, also to stderr.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Spinners when stderr is a terminal, plain lines otherwise.
    Auto,
    /// Spinners.
    Tty,
    /// One line per event.
    Plain,
}

/// The progress display shared by a command's tasks.
#[derive(Debug, Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

/// One long step: a spinner, or a start and an end line.
#[derive(Debug)]
pub struct Step {
    bar: Option<ProgressBar>,
    label: String,
    started: Instant,
}

impl Progress {
    /// A display in `mode`.
    pub fn new(mode: ProgressMode) -> Self {
        let tty = match mode {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Tty => true,
            ProgressMode::Plain => false,
        };
        Self {
            multi: tty.then(MultiProgress::new),
        }
    }

    /// Starts a step labelled `label`.
    pub fn step(&self, label: impl Into<String>) -> Step {
        let label = label.into();
        let bar = match &self.multi {
            Some(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg} {elapsed}")
                        .expect("a valid template"),
                );
                bar.set_prefix(label.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                Some(bar)
            }
            None => {
                eprintln!("... {label}");
                None
            }
        };
        Step {
            bar,
            label,
            started: Instant::now(),
        }
    }

    /// A one-off line that does not disturb the spinners.
    pub fn line(&self, text: impl AsRef<str>) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text.as_ref());
            }
            None => eprintln!("{}", text.as_ref()),
        }
    }
}

impl Step {
    /// Shows what the step is doing now (a spinner's message; dropped in plain mode).
    pub fn update(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.chars().take(120).collect::<String>());
        }
    }

    /// Ends the step successfully.
    pub fn finish(self, outcome: &str) {
        let line = format!(
            "ok  {} {} ({:.1}s)",
            self.label,
            outcome,
            self.started.elapsed().as_secs_f64()
        );
        match self.bar {
            Some(bar) => bar.finish_with_message(format!(
                "{outcome} ({:.1}s)",
                self.started.elapsed().as_secs_f64()
            )),
            None => eprintln!("{line}"),
        }
    }

    /// Ends the step as failed.
    pub fn fail(self, why: &str) {
        match self.bar {
            Some(bar) => bar.abandon_with_message(format!("FAILED: {why}")),
            None => eprintln!("ERR {} FAILED: {why}", self.label),
        }
    }
}

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
    /// One JSON object per event (`{"step": ..., "event": "start"|"ok"|"failed", ...}`).
    Json,
}

/// The progress display shared by a command's tasks.
#[derive(Debug, Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    json: bool,
}

/// One long step: a spinner, or a start and an end line.
#[derive(Debug)]
pub struct Step {
    bar: Option<ProgressBar>,
    label: String,
    started: Instant,
    json: bool,
    /// When plain or JSON mode last printed a line for this step (see [`Step::update`]).
    last_line: std::sync::Mutex<Instant>,
}

/// How often a long step in plain or JSON mode says what it is doing.
const HEARTBEAT: Duration = Duration::from_secs(60);

fn json_line(step: &str, event: &str, detail: &str, seconds: Option<f64>) {
    let line = serde_json::json!({
        "step": step.trim(),
        "event": event,
        "detail": detail,
        "seconds": seconds,
    });
    eprintln!("{line}");
}

impl Progress {
    /// A display in `mode`.
    pub fn new(mode: ProgressMode) -> Self {
        let tty = match mode {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Tty => true,
            ProgressMode::Plain | ProgressMode::Json => false,
        };
        Self {
            multi: tty.then(MultiProgress::new),
            json: mode == ProgressMode::Json,
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
            None if self.json => {
                json_line(&label, "start", "", None);
                None
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
            json: self.json,
            last_line: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// A one-off line that does not disturb the spinners.
    pub fn line(&self, text: impl AsRef<str>) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text.as_ref());
            }
            None if self.json => json_line("", "message", text.as_ref(), None),
            None => eprintln!("{}", text.as_ref()),
        }
    }
}

impl Step {
    /// Shows what the step is doing now: a spinner's message; in plain and JSON mode a line at
    /// most once a minute, with the elapsed time, so that a long build shows it is alive.
    pub fn update(&self, message: &str) {
        let message: String = message.chars().take(120).collect();
        if let Some(bar) = &self.bar {
            bar.set_message(message);
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() < HEARTBEAT {
            return;
        }
        *last = Instant::now();
        let seconds = self.started.elapsed().as_secs();
        let elapsed = format!("{}m{:02}s elapsed", seconds / 60, seconds % 60);
        if self.json {
            json_line(&self.label, "progress", &message, Some(seconds as f64));
        } else {
            eprintln!("..  {} {elapsed}: {message}", self.label);
        }
    }

    /// Ends the step successfully.
    pub fn finish(self, outcome: &str) {
        let seconds = self.started.elapsed().as_secs_f64();
        match self.bar {
            Some(bar) => bar.finish_with_message(format!("{outcome} ({seconds:.1}s)")),
            None if self.json => json_line(&self.label, "ok", outcome, Some(seconds)),
            None => eprintln!("ok  {} {outcome} ({seconds:.1}s)", self.label),
        }
    }

    /// Ends the step as failed.
    pub fn fail(self, why: &str) {
        match self.bar {
            Some(bar) => bar.abandon_with_message(format!("FAILED: {why}")),
            None if self.json => json_line(
                &self.label,
                "failed",
                why,
                Some(self.started.elapsed().as_secs_f64()),
            ),
            None => eprintln!("ERR {} FAILED: {why}", self.label),
        }
    }
}

//! The training progress bar (`glassbox train`, the REPL's `:train`).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Drawn on stderr when it is a terminal, hidden otherwise.
pub fn progress_bar(total: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} {per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// A plain line at least this often when stderr is not a terminal...
const PLAIN_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// ...and at every twentieth of the run.
const PLAIN_PARTS: u64 = 20;

/// `glassbox train`'s progress: the bar on a terminal; otherwise (logs, pipes, CI) a plain
/// line on stderr after the first iteration, every twentieth of the run and at least every
/// 30 s, so a long run's log shows it is alive and how fast it goes.
pub struct TrainProgress {
    bar: ProgressBar,
    plain: Option<Plain>,
}

struct Plain {
    total: u64,
    every: u64,
    started: std::time::Instant,
    start_pos: u64,
    last: std::time::Instant,
}

impl TrainProgress {
    /// A run of `total` iterations, `done` of them already (a resumed run).
    pub fn new(total: u64, done: u64) -> TrainProgress {
        let bar = progress_bar(total);
        bar.set_position(done);
        let now = std::time::Instant::now();
        let plain = (!std::io::stderr().is_terminal()).then_some(Plain {
            total,
            every: total.div_ceil(PLAIN_PARTS).max(1),
            started: now,
            start_pos: done,
            last: now,
        });
        TrainProgress { bar, plain }
    }

    /// Iteration `pos` is done; `msg` its numbers.
    pub fn update(&mut self, pos: u64, msg: String) {
        let Some(p) = self.plain.as_mut() else {
            self.bar.set_position(pos);
            self.bar.set_message(msg);
            return;
        };
        let now = std::time::Instant::now();
        let first = pos == p.start_pos + 1;
        if !(first || pos.is_multiple_of(p.every) || pos == p.total || now - p.last >= PLAIN_EVERY)
        {
            return;
        }
        p.last = now;
        let secs = (now - p.started).as_secs_f64();
        let rate = (pos - p.start_pos) as f64 / secs.max(1e-9);
        eprintln!("iteration {pos}/{} {msg} {rate:.1} it/s", p.total);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

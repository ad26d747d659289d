//! Why a solve failed. Every failure is a value with a stable code, converted to a [`Diag`]
//! (no span: a solver failure has no place in the model file; the front end may label the
//! `solve` clause). Never a panic.

use thiserror::Error;

use crate::diag::{Diag, grouped};

#[derive(Clone, Debug, PartialEq, Error)]
pub enum SolveError {
    #[error("the solver took {max_steps} steps and stopped at t = {t} before reaching t = {t1}")]
    MaxSteps { max_steps: usize, t: f64, t1: f64 },
    #[error("the step size fell to {h:e} at t = {t} (state norm {norm:e})")]
    StepUnderflow { t: f64, h: f64, norm: f64 },
    #[error(
        "the time span [{}, {}] is too long for this problem's steps: the first step, {h:.3e}, \
         is below the span's resolution (16 ε × {:.3e} = {:.3e}), so the solve could never reach its end",
        short(*t0),
        short(*t1),
        (t1 - t0).abs(),
        span_resolution(*t0, *t1)
    )]
    SpanTooLong {
        t0: f64,
        t1: f64,
        h: f64,
        max_steps: usize,
    },
    #[error("component {component} of the state or its derivative became {value} at t = {t}")]
    NonFinite {
        component: usize,
        value: f64,
        t: f64,
    },
    #[error(
        "the problem is stiff at t = {t}: `{method}` is held at its stability limit (h·|λ| ≈ {h_lambda:.2})"
    )]
    StiffForExplicit {
        method: &'static str,
        t: f64,
        h_lambda: f64,
    },
    #[error("`{method}` is a fixed-step method and needs a step size `dt`")]
    MissingDt { method: &'static str },
    #[error("invalid solver setting: {0}")]
    InvalidOption(String),
    #[error("the vector field cannot be evaluated: {0}")]
    Field(String),
    #[error(
        "`{method}` needs the dense Jacobian of {} states, {} entries, more than the limit of {}",
        grouped(*n),
        grouped(n.saturating_mul(*n)),
        grouped(crate::ir::MAX_JACOBIAN_ENTRIES)
    )]
    JacobianTooLarge { method: &'static str, n: usize },
    /// One problem of a batched solve failed (`solve::solve_batch`); its code and help are
    /// the inner error's.
    #[error("row {row}: {error}")]
    Row { row: usize, error: Box<SolveError> },
}

impl SolveError {
    pub fn code(&self) -> &'static str {
        match self {
            SolveError::MaxSteps { .. } => "glassbox::max_steps",
            SolveError::StepUnderflow { .. } => "glassbox::step_underflow",
            SolveError::SpanTooLong { .. } => "glassbox::span_too_long",
            SolveError::NonFinite { .. } => "glassbox::non_finite_state",
            SolveError::StiffForExplicit { .. } => "glassbox::stiff_for_explicit",
            SolveError::MissingDt { .. } => "glassbox::missing_dt",
            SolveError::InvalidOption(_) => "glassbox::invalid_solve_option",
            SolveError::Field(_) => "glassbox::internal",
            SolveError::JacobianTooLarge { .. } => "glassbox::jacobian_too_large",
            SolveError::Row { error, .. } => error.code(),
        }
    }

    pub fn help(&self) -> String {
        match self {
            SolveError::SpanTooLong {
                t0, h, max_steps, ..
            } => format!(
                "shorten the time span (`--over`, or `over [...]` in the solve clause) to the \
                 problem's time scale: {} steps of about {h:.3e} reach about t = {:.3e}; or \
                 check whether the solution blows up right at the start",
                grouped(*max_steps),
                t0 + h * *max_steps as f64
            ),
            SolveError::Row { error, .. } => error.help(),
            other => other.static_help().to_string(),
        }
    }

    fn static_help(&self) -> &'static str {
        match self {
            SolveError::MaxSteps { .. } => {
                "raise `max_steps`, loosen `rtol`/`atol`, or check whether the problem is stiff"
            }
            SolveError::StepUnderflow { .. } => {
                "the solution probably blows up or is discontinuous here; check the equations and the time span"
            }
            SolveError::NonFinite { .. } => {
                "the vector field returned NaN or infinity; check divisions, logs and powers in the equations"
            }
            SolveError::StiffForExplicit { .. } => {
                "use `auto` or the Rosenbrock method `rosenbrock23`, which handle stiff problems"
            }
            SolveError::MissingDt { .. } => {
                "add `dt = …` to the solve clause, or use an adaptive method such as `tsit5`"
            }
            SolveError::InvalidOption(_) => {
                "tolerances and step sizes must be positive and finite; save times must lie in the time span, in order"
            }
            SolveError::Field(_) => {
                "this is a bug in glassbox; please report it with the model file"
            }
            SolveError::JacobianTooLarge { .. } => {
                "use an explicit method such as `tsit5`, or `auto`, which stays explicit for so many states"
            }
            // Said in full by `help`, with the numbers.
            SolveError::SpanTooLong { .. } => "shorten the time span to the problem's time scale",
            SolveError::Row { .. } => "see the row's own error",
        }
    }
}

/// `x` as typed: plain digits for everyday magnitudes, else scientific (`1e308`, not 309
/// digits).
fn short(x: f64) -> String {
    if x == 0.0 || (1e-3..1e6).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// The smallest step the adaptive solvers tell from zero on `[t0, t1]`: an attempt at or
/// below it is a step underflow (`Course::attempt_end`).
pub fn span_resolution(t0: f64, t1: f64) -> f64 {
    16.0 * f64::EPSILON * (t1 - t0).abs()
}

/// A first adaptive step `h` the span cannot resolve: every later attempt would be an
/// underflow too, at whatever `t` the first one landed. Said as what it is, a span far longer
/// than the problem's time scale (`solve --over 0:1e308` on Lorenz), not as a blow-up.
pub fn check_first_step(t0: f64, t1: f64, h: f64, max_steps: usize) -> Result<(), SolveError> {
    if t1 != t0 && h.abs() <= span_resolution(t0, t1) {
        return Err(SolveError::SpanTooLong {
            t0,
            t1,
            h: h.abs(),
            max_steps,
        });
    }
    Ok(())
}

impl From<SolveError> for Diag {
    fn from(e: SolveError) -> Diag {
        Diag::error(e.code(), e.to_string()).help(e.help())
    }
}

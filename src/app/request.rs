//! What a solve is asked to do, as plain data: the CLI's `solve` flags, the REPL's `:solve`
//! options and `glassbox build` (no flags: the model's own clauses) all become one
//! [`SolveRequest`]. `None` means "the model's value, else the default".

/// A solve's flags, without clap and without output paths (where results go is the front
/// end's business).
#[derive(Clone, Debug, PartialEq)]
pub struct SolveRequest {
    /// `T0:T1`: save every accepted step.
    pub over: Option<String>,
    /// `T0:T1:N`: `N` equally spaced save times.
    pub at: Option<String>,
    /// Explicit save times, strictly increasing and finite (the Python package's `t=`: an
    /// array has no `T0:T1:N` spelling).
    pub save_at: Option<Vec<f64>>,
    pub method: Option<String>,
    pub rtol: Option<f64>,
    pub atol: Option<f64>,
    pub dt: Option<f64>,
    /// SDE models: the Brownian seed and the number of paths.
    pub seed: Option<u64>,
    pub paths: Option<usize>,
    /// SDE models: threads the paths run on (`None`: every core).
    pub threads: Option<usize>,
    /// Solve this many times; timings report the median.
    pub repeat: usize,
    /// SDE models: differentiate the mean final value instead of solving.
    pub grad: bool,
    /// A plot is wanted: an SDE solve then draws `sde::PLOT_PATHS` paths by default.
    pub plot: bool,
}

impl Default for SolveRequest {
    /// No flags: the model's own solve clause, solved once.
    fn default() -> SolveRequest {
        SolveRequest {
            over: None,
            at: None,
            save_at: None,
            method: None,
            rtol: None,
            atol: None,
            dt: None,
            seed: None,
            paths: None,
            threads: None,
            repeat: 1,
            grad: false,
            plot: false,
        }
    }
}

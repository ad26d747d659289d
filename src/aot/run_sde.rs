//! A standalone binary of an SDE model: the crate's own `solve::sde::solve_sde` on the linked
//! drift, diffusion (and Milstein's JVP), with the settings `glassbox build` recorded and the
//! Brownian tree of `--seed` (default: the model's). Writes every path as `glassbox solve`
//! does (CSV `path,t,<states>`, or its JSON), or, for a trained model, the mean path as
//! `glassbox predict` does (CSV `t,<states>`, or the ODE binary's JSON).
//!
//! Invariant: as in `runtime.rs`, bad input is a diagnostic and exit status 1, never a panic.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::ArgMatches;

use super::runtime::{csv, initial_state, json, output_times, parse_y0};
use super::{Meta, SdeMeta};
use crate::app::bad_arg;
use crate::app::export::{Csv, Json, StatsOf, stats_text, to_csv, to_json};
use crate::app::sde::{self, MAX_PATHS, mean_sd};
use crate::app::solve::Timing;
use crate::diag::Diag;
use crate::jit::Linked;
use crate::kit::output::{is_json, print_stats, write_or_print};
use crate::solve::Solution;
use crate::solve::sde::{JitSde, NoiseMap, SdeOptions, sde_method, solve_sde};

pub(super) fn run(
    meta: &Meta,
    sde: &SdeMeta,
    weights: &[f64],
    k: Linked,
    m: &ArgMatches,
) -> Result<(), Vec<Diag>> {
    if let Some(path) = m.get_one::<PathBuf>("input") {
        return Err(super::runtime::no_inputs(path, &meta.model));
    }
    let output = m.get_one::<PathBuf>("output");
    let seed = m.get_one::<u64>("seed").copied().unwrap_or(sde.seed);
    let paths = m.get_one::<usize>("paths").copied().unwrap_or(sde.paths);
    if paths == 0 || paths > MAX_PATHS {
        return Err(bad_arg(
            format!("--paths {paths} is outside 1 to {MAX_PATHS}"),
            "give the number of sample paths, e.g. --paths 100",
        ));
    }
    let (t0, t1, save_at) = output_times(meta, m)?;
    if t1 < t0 {
        return Err(bad_arg(
            format!("the time span [{t0}, {t1}] runs backwards"),
            "SDE solves run forward in time: give T0 < T1",
        ));
    }
    let n = meta.columns.len();
    let u0 = match m.get_one::<String>("y0") {
        Some(s) => parse_y0(s, n)?,
        None => initial_state(&k, weights, &[], t0, n)?,
    };
    let damaged = || {
        vec![
            Diag::error(
                "glassbox::internal",
                "this binary's SDE kernels or settings are damaged",
            )
            .help("rebuild it with `glassbox build`"),
        ]
    };
    let (Some(method), &[rtol, atol]) = (sde_method(&meta.method), meta.tolerances.as_slice())
    else {
        return Err(damaged());
    };
    let Linked {
        field: drift,
        sde: Some((diffusion, jvp)),
        ..
    } = k
    else {
        return Err(damaged());
    };
    let opts = SdeOptions {
        rtol,
        atol,
        h0: meta.h0.first().copied(),
        dt: meta.dt.first().copied(),
        max_steps: meta.max_steps,
        save_at,
        // As `glassbox predict` (no `S_j`) and `glassbox solve` (`S_j`) run it.
        stiffness: !sde.mean,
        ..SdeOptions::default()
    };
    let noise = NoiseMap::new(sde.noise.clone());
    let mut field = JitSde::linked(drift, diffusion, jvp, noise, weights, sde.drift_reads_t)
        .map_err(|d| vec![d])?;
    let start = Instant::now();
    let sol = solve_sde(method, &mut field, t0, t1, &u0, &opts, seed, paths)
        .map_err(|e| vec![Diag::from(e)])?;
    // Compiled ahead of time: no compile time.
    let timing = Timing::new(Duration::ZERO, start.elapsed(), 1);

    let as_json = output.is_some_and(|p| is_json(p));
    let plan = sde::Plan {
        method,
        t0,
        t1,
        opts,
        seed,
        paths,
        // A standalone binary solves its paths on one thread.
        threads: 1,
    };
    let text = if sde.mean {
        // `glassbox predict`: the mean path (`train::predict`).
        let ts = plan.opts.save_at.clone();
        let (us, _) = mean_sd(&sol, ts.len(), n);
        let mean = Solution {
            method: method.name(),
            dim: n,
            ts,
            us,
            steps: Vec::new(),
            stats: sol.stats,
            dense: None,
        };
        if as_json {
            json(meta, &[mean])
        } else {
            csv(&meta.columns, &[mean], false)
        }
    } else if as_json {
        to_json(&Json::Paths {
            model: &meta.model,
            names: &meta.columns,
            plan: &plan,
            sol: &sol,
            timing,
        })
    } else {
        to_csv(&Csv::Paths {
            names: &meta.columns,
            sol: &sol,
        })
    };
    write_or_print(output.map(PathBuf::as_path), &text)?;
    if m.get_flag("stats") {
        let stats = StatsOf::Paths {
            plan: &plan,
            sol: &sol,
            timing,
        };
        print_stats(&stats_text(&stats), output.is_none());
    }
    Ok(())
}

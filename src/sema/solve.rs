//! `solve METHOD(options) [over [t0, t1] | at TIMES]`: the method must fit the model (ODE
//! methods for ODE models, SDE methods for SDE models), fixed-step methods need `dt` and take
//! no tolerances, adaptive ones take tolerances and no `dt`; adaptive ODE methods also take the
//! step-size controller's gains and limits (`solve::StepControl`), each checked on its own and
//! then together.

use super::checker::Checker;
use super::model::*;
use super::options::Want;
use crate::diag::did_you_mean;
use crate::solve::{BatchControl, StepControl, registry};
use crate::syntax::ast::{SolveClause, SolveSpan};

impl Checker<'_> {
    pub fn solve_clause(&mut self, s: &SolveClause) {
        let call = &s.method;
        let name = call.callee.name.as_str();
        let Some(method) = Method::from_name(name) else {
            let help = match did_you_mean(name, registry::names(|_| true)) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!(
                    "ODE methods: {}; SDE methods: {}",
                    registry::names(|m| !m.is_sde()).join(" "),
                    registry::names(Method::is_sde).join(" ")
                ),
            };
            self.error(
                "glassbox::unknown_method",
                call.callee.span,
                format!("there is no solver method `{name}`"),
                "unknown method",
                help,
            );
            return;
        };
        let mut ok = true;
        let sde_model = self.m.kind == ModelKind::Sde;
        if method.is_sde() != sde_model {
            ok = false;
            let mk = if sde_model { "an SDE" } else { "an ODE" };
            let want = registry::one_of(&registry::names(|m| m.is_sde() == sde_model));
            self.error(
                "glassbox::method_mismatch",
                call.callee.span,
                format!(
                    "`{name}` is an {} method but this is {mk} model",
                    if method.is_sde() { "SDE" } else { "ODE" }
                ),
                "wrong kind of method",
                format!("use {want}"),
            );
        }
        let (_, named) = self.named_options(&call.args, 0, &registry::OPTIONS, name);
        let mut opts = SolveOptions::default();
        for (key, (ident, e)) in &named {
            if !method.accepts(key) {
                ok = false;
                let (kind, help) = if *key == "dt" {
                    (
                        "an adaptive method",
                        "adaptive methods choose their own steps; `h0` sets the first one",
                    )
                } else if *key == "batch" {
                    (
                        "which is not an explicit Runge–Kutta method",
                        "batched solves run explicit Runge–Kutta methods such as `tsit5`",
                    )
                } else if StepControl::OPTIONS.contains(key) {
                    let kind = if method.is_sde() {
                        "an SDE method"
                    } else {
                        "a fixed-step method"
                    };
                    (
                        kind,
                        "the step-size controller's options apply to adaptive ODE methods such \
                         as `tsit5`; SDE methods keep their own controller",
                    )
                } else {
                    (
                        "a fixed-step method",
                        "fixed-step methods take `dt`; use an adaptive method for tolerances",
                    )
                };
                self.error(
                    "glassbox::option_not_applicable",
                    ident.span,
                    format!("`{key}` does not apply to `{name}`, {kind}"),
                    "not applicable",
                    help,
                );
                continue;
            }
            if *key == "batch" {
                let word = self.option_word(key, e, &BatchControl::NAMES);
                ok &= word.is_some();
                opts.batch = word.and_then(BatchControl::from_name);
                continue;
            }
            let want = match *key {
                "max_steps" => Want::PositiveInt,
                "pcoeff" | "icoeff" | "dcoeff" => Want::NonNegative,
                "safety" => Want::UpToOne,
                "min_factor" => Want::Fraction,
                "max_factor" | "first_max_factor" => Want::AboveOne,
                _ => Want::Positive,
            };
            let v = self.option_number(key, e, want);
            ok &= v.is_some();
            if let Some(v) = v
                && opts.control.set(key, v)
            {
                continue;
            }
            match *key {
                "rtol" => opts.rtol = v,
                "atol" => opts.atol = v,
                "dt" => opts.dt = v,
                "h0" => opts.h0 = v,
                _ => opts.max_steps = v.map(|x| x as u64),
            }
        }
        // Each value passed its own test; what is left are the limits between them.
        if ok && let Err((names, why)) = opts.control.check() {
            ok = false;
            let span = names
                .iter()
                .find_map(|n| named.get(n))
                .map_or(call.span, |(ident, _)| ident.span);
            let help = if names.contains(&"first_max_factor") {
                "`first_max_factor` (default 1e4) bounds the growth after the first step and \
                 must be at least `max_factor` (default 10)"
            } else {
                "the step must shrink as the error grows: give `icoeff` (default 0.3) or \
                 `pcoeff` (default 0.4) a positive value"
            };
            self.error(
                "glassbox::bad_step_control",
                span,
                format!("the step-size controller's settings do not fit together: {why}"),
                "conflicting setting",
                help,
            );
        }
        if method.is_fixed_step() && !named.contains_key("dt") {
            ok = false;
            self.error(
                "glassbox::missing_option",
                call.callee.span,
                format!("`{name}` takes fixed steps and needs `dt`"),
                "no step size",
                format!("write `{name}(dt = 0.01)`"),
            );
        }
        let times = match &s.span_kind {
            None => None,
            Some(SolveSpan::Over(e)) => {
                let v = self.const_expr(e);
                match v.as_ref().map(|v| (v.shape, v.data.as_slice())) {
                    Some((Shape::Vector { n: 2 }, [t0, t1]))
                        if t0 != t1 && t0.is_finite() && t1.is_finite() =>
                    {
                        Some(SolveTimes::Over { t0: *t0, t1: *t1 })
                    }
                    Some(_) => {
                        self.error(
                            "glassbox::bad_time_span",
                            e.span,
                            "`over` takes two different finite times `[t0, t1]`",
                            "not a time span",
                            "write `over [0, 1]`",
                        );
                        None
                    }
                    None => None,
                }
            }
            Some(SolveSpan::At(e)) => {
                let v = self.const_expr(e);
                match v.as_ref().map(|v| (v.shape, v.data.clone())) {
                    Some((Shape::Vector { .. } | Shape::Scalar, ts))
                        if ts.windows(2).all(|w| w[0] < w[1])
                            && ts.iter().all(|x| x.is_finite()) =>
                    {
                        Some(SolveTimes::At { times: ts })
                    }
                    Some(_) => {
                        self.error(
                            "glassbox::bad_time_span",
                            e.span,
                            "`at` takes strictly increasing finite times",
                            "not increasing",
                            "write `at [0, 0.5, 1]`",
                        );
                        None
                    }
                    None => None,
                }
            }
        };
        if ok {
            self.m.solve = Some(SolveSpec {
                method,
                options: opts,
                times,
                span: call.span,
            });
        }
    }
}

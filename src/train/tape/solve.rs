//! The explicit Runge–Kutta solve unrolled on dfdx's tape: the accepted steps `(t_j, h_j)` of
//! a normal solve are replayed as constants with the same tableau, the same first-stage reuse
//! (FSAL) and the same interpolants at the save times, batched over segments (one row each).
//! dfdx then backpropagates through every stage — the function the discrete adjoint
//! differentiates, so the two gradients agree up to rounding.
//!
//! Segments take different numbers of steps: a finished row keeps stepping with `h = 0`
//! (its state, `E` and `S` are then exactly unchanged / zero, and zero-weighted by `|h|`).
//! `R_E = Σ E_j|h_j|` and `R_S = Σ S_j|h_j|` are built from the stage values with the solver's
//! formulas; the square roots take gradient 0 at 0, the branch the adjoint takes.

use dfdx::prelude::*;

use super::lower::{Lowered, Rec, Val};
use crate::diag::Diag;
use crate::grad::{SaveAt, locate, step_end};
use crate::solve::{Interpolant, Tableau};

/// One batch's replay: per segment its initial state, recorded steps and save times.
pub(crate) struct Replay<'a> {
    pub tab: &'static Tableau,
    pub tol: (f64, f64),
    pub u0: &'a [Vec<f64>],
    pub steps: &'a [Vec<(f64, f64)>],
    pub save_at: &'a [Vec<f64>],
    pub error: bool,
    pub stiffness: bool,
}

pub(crate) struct Unrolled<D: Device<f64>> {
    /// Saved states `[Σ saves, n]`, segment by segment.
    pub saves: Val<D>,
    /// `Σ_segments R_E` and `Σ_segments R_S` as `[1, 1]` values, when asked for.
    pub re: Option<Val<D>>,
    pub rs: Option<Val<D>>,
}

/// The values of one step on the tape.
pub(crate) struct Step<D: Device<f64>> {
    pub k: Vec<Val<D>>,
    /// Stage arguments (`g_0 = u`).
    pub g: Vec<Val<D>>,
    pub u1: Val<D>,
}

/// A per-row column `[B, 1]` of constants.
fn column<D: Device<f64>>(rec: &Rec<D>, v: Vec<f64>) -> Result<Val<D>, Diag> {
    let b = v.len();
    rec.constant(v, (b, 1), true)
}

/// `Σ_j w_j k_j` over the nonzero weights (`None` when all are zero).
fn weighted<D: Device<f64>>(
    rec: &mut Rec<D>,
    w: &[f64],
    k: &[Val<D>],
) -> Result<Option<Val<D>>, Diag> {
    let mut acc: Option<Val<D>> = None;
    for (wj, kj) in w.iter().zip(k) {
        if *wj == 0.0 {
            continue;
        }
        let term = rec.scale(kj, *wj)?;
        acc = Some(match acc {
            None => term,
            Some(a) => rec.add(&a, &term)?,
        });
    }
    Ok(acc)
}

/// `u + Σ_j (h w_j) k_j` over the nonzero weights, added to `u` in stage order with per-row
/// `h w_j`: the solver's `combine`, operation for operation, so the stages round as the
/// solver's do (their differences feed `E` and `S`, which amplify any rounding).
fn combine<D: Device<f64>>(
    rec: &mut Rec<D>,
    u: &Val<D>,
    h: &[f64],
    w: &[f64],
    k: &[Val<D>],
) -> Result<Val<D>, Diag> {
    let mut acc = u.clone();
    for (wj, kj) in w.iter().zip(k) {
        if *wj == 0.0 {
            continue;
        }
        let hw = column(rec, h.iter().map(|h| h * wj).collect())?;
        let term = rec.mul(&hw, kj)?;
        acc = rec.add(&acc, &term)?;
    }
    Ok(acc)
}

/// One step of `tab` from `u` (`[B, n]`) at per-row times `t` and sizes `h`; `k0 = f(t, u)`.
pub(crate) fn step<D: Device<f64>>(
    rec: &mut Rec<D>,
    f: &Lowered<D>,
    tab: &Tableau,
    (t, h): (&[f64], &[f64]),
    u: &Val<D>,
    k0: Val<D>,
) -> Result<Step<D>, Diag> {
    let mut k = vec![k0];
    let mut g = vec![u.clone()];
    for (i, row) in tab.a.iter().enumerate().skip(1) {
        let gi = combine(rec, u, h, row, &k)?;
        let ti: Vec<f64> = t.iter().zip(h).map(|(t, h)| t + tab.c[i] * h).collect();
        let tcol = column(rec, ti)?;
        k.push(f.eval(rec, &tcol, &gi)?);
        g.push(gi);
    }
    // FSAL: the last stage's argument is u_{n+1} (its row of `a` is `b`).
    let u1 = match (tab.fsal, g.last()) {
        (true, Some(last)) if tab.stages() > 1 => last.clone(),
        _ => combine(rec, u, h, tab.b, &k)?,
    };
    Ok(Step { k, g, u1 })
}

/// `Σ_rows |h|·E` of one step (`E` per row from the embedded pair), `None` without one.
pub(crate) fn error_term<D: Device<f64>>(
    rec: &mut Rec<D>,
    tab: &Tableau,
    h: &[f64],
    u: &Val<D>,
    s: &Step<D>,
    (rtol, atol): (f64, f64),
) -> Result<Option<Val<D>>, Diag> {
    let Some(bt) = tab.btilde else {
        return Ok(None);
    };
    let n = u.dims().1;
    let Some(acc) = weighted(rec, bt, &s.k)? else {
        return Ok(None);
    };
    let hcol = column(rec, h.to_vec())?;
    let e = rec.mul(&hcol, &acc)?;
    let (a0, a1) = (
        rec.unary(u, |x| x.try_abs())?,
        rec.unary(&s.u1, |x| x.try_abs())?,
    );
    let m = rec.binary(&a0, &a1, |x, y| x.try_maximum(y))?;
    let scale = rec.unary(&m, |x| x.try_mul(rtol).and_then(|x| x.try_add(atol)))?;
    let q = rec.div(&e, &scale)?;
    let q2 = rec.unary(&q, |x| x.try_square())?;
    let sum = rec.row_sum(&q2)?;
    let mean = rec.unary(&sum, |x| x.try_div(n.max(1) as f64))?;
    let est = rec.safe_sqrt(&mean)?;
    weigh(rec, &est, h).map(Some)
}

/// `Σ_rows |h|·S` of one step (`S` per row over the stage pair), `None` without a pair.
pub(crate) fn stiffness_term<D: Device<f64>>(
    rec: &mut Rec<D>,
    tab: &Tableau,
    h: &[f64],
    s: &Step<D>,
) -> Result<Option<Val<D>>, Diag> {
    let Some((p, q)) = tab.stiffness_pair else {
        return Ok(None);
    };
    let (Some(kp), Some(kq), Some(gp), Some(gq)) = (s.k.get(p), s.k.get(q), s.g.get(p), s.g.get(q))
    else {
        return Ok(None);
    };
    let sq_norm = |rec: &mut Rec<D>, a: &Val<D>, b: &Val<D>| -> Result<Val<D>, Diag> {
        let d = rec.sub(a, b)?;
        let d2 = rec.unary(&d, |x| x.try_square())?;
        rec.row_sum(&d2)
    };
    let num = sq_norm(rec, kp, kq)?;
    let den = sq_norm(rec, gp, gq)?;
    // The solver defines S = 0 where the two arguments coincide (den = 0).
    let zero = rec.mask(&den, super::lower::Cmp::Eq, 0.0)?;
    let den = rec.add(&den, &zero)?;
    let ratio = rec.div(&num, &den)?;
    let est = rec.safe_sqrt(&ratio)?;
    let keep = rec.unary(&zero, |x| x.try_negate().and_then(|x| x.try_add(1.0)))?;
    let est = rec.mul(&est, &keep)?;
    weigh(rec, &est, h).map(Some)
}

/// `Σ_rows |h_row| · est_row` as a `[1, 1]` value.
fn weigh<D: Device<f64>>(rec: &mut Rec<D>, est: &Val<D>, h: &[f64]) -> Result<Val<D>, Diag> {
    let w = column(rec, h.iter().map(|h| h.abs()).collect())?;
    let prod = rec.mul(est, &w)?;
    rec.total(&prod)
}

fn add_opt<D: Device<f64>>(
    rec: &mut Rec<D>,
    acc: Option<Val<D>>,
    term: Option<Val<D>>,
) -> Result<Option<Val<D>>, Diag> {
    Ok(match (acc, term) {
        (Some(a), Some(t)) => Some(rec.add(&a, &t)?),
        (a, t) => a.or(t),
    })
}

/// Where one saved state comes from.
struct Save {
    /// Output row (segment-major).
    out: usize,
    seg: usize,
    at: SaveAt,
}

/// Replays every segment's steps on the tape (see the module doc).
pub(crate) fn unroll<D: Device<f64>>(
    rec: &mut Rec<D>,
    f: &Lowered<D>,
    r: &Replay,
) -> Result<Unrolled<D>, Diag> {
    let tab = r.tab;
    let nseg = r.u0.len();
    let n = r.u0.first().map_or(0, Vec::len);
    let mut saves: Vec<Save> = Vec::new();
    for (seg, (steps, ts)) in r.steps.iter().zip(r.save_at).enumerate() {
        let t0 = steps
            .first()
            .map_or(ts.first().copied().unwrap_or(0.0), |s| s.0);
        let locs = locate(ts, t0, steps).map_err(Diag::from)?;
        for at in locs {
            saves.push(Save {
                out: saves.len(),
                seg,
                at,
            });
        }
    }
    let flat: Vec<f64> = r.u0.iter().flatten().copied().collect();
    let mut u = rec.constant(flat, (nseg, n), true)?;
    // Pieces of the output: the values and the output rows they fill.
    let mut pieces: Vec<(Val<D>, Vec<usize>)> = Vec::new();
    let starts: Vec<&Save> = saves.iter().filter(|s| s.at == SaveAt::Start).collect();
    if !starts.is_empty() {
        let idx: Vec<usize> = starts.iter().map(|s| s.seg).collect();
        pieces.push((rec.rows(&u, &idx)?, starts.iter().map(|s| s.out).collect()));
    }

    let nsteps = r.steps.iter().map(Vec::len).max().unwrap_or(0);
    // Row times and sizes of global step j; finished rows stand still at their end time.
    let at = |j: usize| -> (Vec<f64>, Vec<f64>) {
        r.steps
            .iter()
            .zip(r.save_at)
            .map(|(s, ts)| match s.get(j) {
                Some(&(t, h)) => (t, h),
                None if s.is_empty() => (ts.first().copied().unwrap_or(0.0), 0.0),
                None => (step_end(s, s.len() - 1), 0.0),
            })
            .unzip()
    };
    let mut re: Option<Val<D>> = None;
    let mut rs: Option<Val<D>> = None;
    let mut carried: Option<Val<D>> = None;
    for j in 0..nsteps {
        let (t, h) = at(j);
        let k0 = match carried.take() {
            Some(k) => k,
            None => f.eval(rec, &column(rec, t.clone())?, &u)?,
        };
        let s = step(rec, f, tab, (&t, &h), &u, k0)?;
        if r.error {
            let term = error_term(rec, tab, &h, &u, &s, r.tol)?;
            re = add_opt(rec, re, term)?;
        }
        if r.stiffness {
            let term = stiffness_term(rec, tab, &h, &s)?;
            rs = add_opt(rec, rs, term)?;
        }
        // `f(t_{j+1}, u_{j+1})`: the next step's first stage, and the Hermite end slope.
        let (t_next, _) = at(j + 1);
        let next_k0 = |rec: &mut Rec<D>| -> Result<Val<D>, Diag> {
            if tab.fsal {
                s.k.last()
                    .cloned()
                    .ok_or_else(|| super::lower::unsupported("a tableau without stages"))
            } else {
                f.eval(rec, &column(rec, t_next.clone())?, &s.u1)
            }
        };
        let mut f1: Option<Val<D>> = None;

        let here: Vec<(&Save, f64)> = saves
            .iter()
            .filter_map(|sv| match sv.at {
                SaveAt::Step { step, theta } if step == j => Some((sv, theta)),
                _ => None,
            })
            .collect();
        let ends: Vec<&Save> = here
            .iter()
            .filter(|(_, th)| *th == 1.0)
            .map(|p| p.0)
            .collect();
        let begins: Vec<&Save> = here
            .iter()
            .filter(|(_, th)| *th == 0.0)
            .map(|p| p.0)
            .collect();
        for (group, from) in [(ends, &s.u1), (begins, &u)] {
            if !group.is_empty() {
                let idx: Vec<usize> = group.iter().map(|s| s.seg).collect();
                pieces.push((rec.rows(from, &idx)?, group.iter().map(|s| s.out).collect()));
            }
        }
        let inner: Vec<(&Save, f64)> = here
            .into_iter()
            .filter(|(_, th)| *th != 0.0 && *th != 1.0)
            .collect();
        if !inner.is_empty() {
            let idx: Vec<usize> = inner.iter().map(|(s, _)| s.seg).collect();
            let rows_h: Vec<f64> = idx.iter().map(|&b| h[b]).collect();
            let thetas: Vec<f64> = inner.iter().map(|p| p.1).collect();
            let value = match tab.interpolant {
                Interpolant::Free(w) => {
                    let mut acc = rec.rows(&u, &idx)?;
                    for (i, wi) in w.iter().enumerate() {
                        let c: Vec<f64> = thetas
                            .iter()
                            .zip(&rows_h)
                            .map(|(&th, &hh)| {
                                hh * (th * (wi[0] + th * (wi[1] + th * (wi[2] + th * wi[3]))))
                            })
                            .collect();
                        if c.iter().all(|&c| c == 0.0) {
                            continue;
                        }
                        let (ki, cc) = (rec.rows(&s.k[i], &idx)?, column(rec, c)?);
                        let term = rec.mul(&cc, &ki)?;
                        acc = rec.add(&acc, &term)?;
                    }
                    acc
                }
                Interpolant::Hermite => {
                    let f1v = match f1.clone() {
                        Some(v) => v,
                        None => {
                            let v = next_k0(rec)?;
                            f1 = Some(v.clone());
                            v
                        }
                    };
                    // The solver's cubic Hermite, operation for operation:
                    // ((1−θ)u0 + θu1) + θ(θ−1)·(((1−2θ)(u1−u0) + ((θ−1)h) f0) + (θh) f1).
                    let col = |rec: &mut Rec<D>, c: &dyn Fn(f64, f64) -> f64| {
                        column(
                            rec,
                            thetas.iter().zip(&rows_h).map(|(&t, &h)| c(t, h)).collect(),
                        )
                    };
                    let (u0r, u1r) = (rec.rows(&u, &idx)?, rec.rows(&s.u1, &idx)?);
                    let (f0r, f1r) = (rec.rows(&s.k[0], &idx)?, rec.rows(&f1v, &idx)?);
                    let du = rec.sub(&u1r, &u0r)?;
                    let c = col(rec, &|t, _| 1.0 - 2.0 * t)?;
                    let inner = rec.mul(&c, &du)?;
                    let c = col(rec, &|t, h| (t - 1.0) * h)?;
                    let term = rec.mul(&c, &f0r)?;
                    let inner = rec.add(&inner, &term)?;
                    let c = col(rec, &|t, h| t * h)?;
                    let term = rec.mul(&c, &f1r)?;
                    let inner = rec.add(&inner, &term)?;
                    let c = col(rec, &|t, _| 1.0 - t)?;
                    let a = rec.mul(&c, &u0r)?;
                    let c = col(rec, &|t, _| t)?;
                    let b = rec.mul(&c, &u1r)?;
                    let ends = rec.add(&a, &b)?;
                    let c = col(rec, &|t, _| t * (t - 1.0))?;
                    let bend = rec.mul(&c, &inner)?;
                    rec.add(&ends, &bend)?
                }
            };
            pieces.push((value, inner.iter().map(|(s, _)| s.out).collect()));
        }
        if j + 1 < nsteps {
            carried = Some(match f1.take() {
                Some(v) => v,
                None => next_k0(rec)?,
            });
        }
        u = s.u1;
    }

    // Stack the pieces, then put the rows in output order.
    let mut order: Vec<usize> = Vec::with_capacity(saves.len());
    let mut stacked: Option<Val<D>> = None;
    for (v, outs) in pieces {
        order.extend(outs);
        stacked = Some(match stacked {
            None => v,
            Some(a) => rec.concat(&a, &v, true)?,
        });
    }
    let Some(stacked) = stacked else {
        return Err(super::lower::unsupported("a batch without saved states"));
    };
    let mut inverse = vec![0; order.len()];
    for (pos, &out) in order.iter().enumerate() {
        if let Some(slot) = inverse.get_mut(out) {
            *slot = pos;
        }
    }
    let saves = rec.rows(&stacked, &inverse)?;
    Ok(Unrolled { saves, re, rs })
}

//! Reusing the forward solve's `tanh` activations in the adjoint's VJPs (training).
//!
//! With [`JitVjpField::share_activations`](super::JitVjpField::share_activations) on, each
//! field evaluation runs the forward kernel of [`ir::share_tanh`] and records its activations
//! under the exact bits of `(t, u)`; a VJP at a recorded point reads them instead of
//! recomputing `tanh` (and what only fed it). The adjoint evaluates its VJPs at the solver's own
//! stage arguments, bit for bit, so every stage of an accepted step hits; anything else (a miss,
//! a colliding hash) runs the ordinary VJP. The recorded values are the ones the VJP would have
//! computed (same expression, same code), so gradients are unchanged bit for bit.
//!
//! Lookup: the adjoint visits the stages of a solve in the reverse order of their evaluation,
//! so a load first scans a few records below the previous hit (rejected attempts and the
//! initial-step probe lie in between); only when that fails is a hash index over the records
//! built (lazily, for the records not yet indexed) and consulted. A trainer that reverses its
//! solves last to first therefore never hashes.
//!
//! Memory: per evaluation (rejected steps included) the kernel's output plus `1 + dim` key
//! words, until the parameters or inputs change (which forgets the records but keeps the
//! buffers, so a training loop does not allocate once they have grown).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::diag::Diag;
use crate::ir::{self, Function};
use crate::jit::{self, Bound};

pub(super) struct Activations {
    forward: Bound,
    vjp: Bound,
    /// The same VJP with its `∂p` added into the output ([`Activations::vjp_add`]).
    vjp_add: Bound,
    h_arg: usize,
    dim: usize,
    /// The forward kernel's output `[f, activations]` when it cannot go into a record.
    out: Vec<f64>,
    /// Record `i`: `t` and `u` as bits at `keys[i * (1 + dim)..]`, the forward kernel's
    /// output `[f, activations]` (written there by the kernel) at `values[i * out.len()..]`.
    /// Both only grow; `count` says how many records are current.
    keys: Vec<u64>,
    values: Vec<f64>,
    count: usize,
    /// One past the record the next load expects (the previous hit); `usize::MAX`: the last.
    cursor: usize,
    /// Hash of the key → record, for the first `indexed` records.
    index: HashMap<u64, u32, BuildHasherDefault<Premixed>>,
    indexed: usize,
    /// VJPs that read recorded activations since the last clear.
    reused: usize,
}

/// Records a load scans below the previous hit before it consults the hash index: enough for
/// a few rejected attempts of the largest tableau in between.
const SCAN: usize = 64;

impl Activations {
    /// `None` when the VJP recomputes no `tanh` of the field.
    pub(super) fn compile(
        f: &Function,
        v: &Function,
        name: &str,
    ) -> Result<Option<Activations>, Diag> {
        let Some(s) = ir::share_tanh(f, v, "h") else {
            return Ok(None);
        };
        let forward = jit::compile(&s.forward, &format!("{name}.field_h"))?;
        let vjp = jit::compile(&s.vjp, &format!("{name}.vjp_h"))?;
        let dim = f.output_len();
        let adding = jit::Options {
            accumulate_from: dim,
            ..jit::Options::default()
        };
        let vjp_add = jit::compile_with(&s.vjp, &format!("{name}.vjp_h_add"), adding)?;
        let bound = [forward.bind(), vjp.bind(), vjp_add.bind()];
        Ok(Some(Activations::empty(bound, s.vjp.args.len() - 1, dim)))
    }

    /// No records yet, on bound `[forward, vjp, vjp_add]`.
    fn empty([forward, vjp, vjp_add]: [Bound; 3], h_arg: usize, dim: usize) -> Activations {
        Activations {
            out: vec![0.0; forward.out().len()],
            forward,
            vjp,
            vjp_add,
            h_arg,
            dim,
            keys: Vec::new(),
            values: Vec::new(),
            count: 0,
            cursor: usize::MAX,
            index: HashMap::default(),
            indexed: 0,
            reused: 0,
        }
    }

    /// The same kernels bound afresh (their arguments copied) with no records: one per
    /// thread of a parallel loop.
    pub(super) fn fork(&self) -> Activations {
        let bound = [&self.forward, &self.vjp, &self.vjp_add].map(Bound::duplicate);
        Activations::empty(bound, self.h_arg, self.dim)
    }

    /// Sets argument `i` of both kernels (the field's numbering) and forgets every record.
    pub(super) fn set_arg(&mut self, i: usize, values: &[f64]) -> Result<(), Diag> {
        self.clear();
        self.forward.set_arg(i, values)?;
        self.vjp_add.set_arg(i, values)?;
        self.vjp.set_arg(i, values)
    }

    pub(super) fn clear(&mut self) {
        self.count = 0;
        self.cursor = usize::MAX;
        self.index.clear();
        self.indexed = 0;
        self.reused = 0;
    }

    /// Evaluations recorded and VJPs that reused them, since the last clear.
    pub(super) fn counts(&self) -> (usize, usize) {
        (self.count, self.reused)
    }

    /// The field at `(t, u)` into `du`, its activations recorded; `false` if it could not run.
    pub(super) fn eval(
        &mut self,
        (t_arg, u_arg): (usize, usize),
        t: f64,
        u: &[f64],
        du: &mut [f64],
    ) -> bool {
        super::field::set_t(&mut self.forward, t_arg, t);
        let (w, len, at) = (1 + self.dim, self.out.len(), self.count);
        if u.len() != self.dim || du.len() != self.dim {
            return false;
        }
        // Beyond u32 records the index cannot name them: evaluate without recording.
        if u32::try_from(at).is_err() {
            let ok = self.forward.run_with(u_arg, u, &mut self.out).is_ok();
            du.copy_from_slice(&self.out[..self.dim]);
            return ok;
        }
        if self.values.len() < (at + 1) * len {
            self.values.resize((at + 1) * len, 0.0);
            self.keys.resize((at + 1) * w, 0);
        }
        let rec = &mut self.values[at * len..(at + 1) * len];
        if self.forward.run_with(u_arg, u, rec).is_err() {
            return false;
        }
        du.copy_from_slice(&rec[..self.dim]);
        // Records are appended (a repeated point gets a new one).
        let key = &mut self.keys[at * w..(at + 1) * w];
        key[0] = t.to_bits();
        for (k, x) in key[1..].iter_mut().zip(u) {
            *k = x.to_bits();
        }
        self.count += 1;
        true
    }

    /// Whether record `at` was taken at exactly `(t, u)`.
    fn is_at(&self, at: usize, t: f64, u: &[f64]) -> bool {
        let w = 1 + self.dim;
        let key = &self.keys[at * w..(at + 1) * w];
        key[0] == t.to_bits() && key[1..].iter().zip(u).all(|(k, x)| *k == x.to_bits())
    }

    /// The record taken at `(t, u)`: scanned for below the previous hit, else from the index.
    fn find(&mut self, t: f64, u: &[f64]) -> Option<usize> {
        let top = self.cursor.min(self.count);
        if let Some(at) = (top.saturating_sub(SCAN)..top)
            .rev()
            .find(|&at| self.is_at(at, t, u))
        {
            return Some(at);
        }
        let w = 1 + self.dim;
        for at in self.indexed..self.count {
            let key = &self.keys[at * w..(at + 1) * w];
            // `count` fits u32 (`eval`); a later record of the same key replaces an earlier.
            self.index.insert(hash(key.iter().copied()), at as u32);
        }
        self.indexed = self.count;
        let bits = std::iter::once(t.to_bits()).chain(u.iter().map(|x| x.to_bits()));
        let at = *self.index.get(&hash(bits))? as usize;
        self.is_at(at, t, u).then_some(at)
    }

    /// The sharing VJP at `(t, u)` with cotangent `v` into `out`, if `(t, u)` was recorded
    /// (`None`: run the ordinary VJP); `Some(false)` if it could not run. The kernel reads the
    /// activations in place in the record (the substituted argument) and `t`, `u`, `v` from
    /// its own buffers.
    pub(super) fn vjp(
        &mut self,
        args: (usize, usize, usize),
        t: f64,
        uv: (&[f64], &[f64]),
        out: &mut [f64],
    ) -> Option<bool> {
        self.run(false, args, t, uv, out)
    }

    /// [`Activations::vjp`] with `∂p` added into `out[dim..]` instead of written there.
    pub(super) fn vjp_add(
        &mut self,
        args: (usize, usize, usize),
        t: f64,
        uv: (&[f64], &[f64]),
        out: &mut [f64],
    ) -> Option<bool> {
        self.run(true, args, t, uv, out)
    }

    fn run(
        &mut self,
        adding: bool,
        (t_arg, u_arg, v_arg): (usize, usize, usize),
        t: f64,
        (u, v): (&[f64], &[f64]),
        out: &mut [f64],
    ) -> Option<bool> {
        if u.len() != self.dim {
            return None;
        }
        let at = self.find(t, u)?;
        self.cursor = at;
        let kernel = if adding {
            &mut self.vjp_add
        } else {
            &mut self.vjp
        };
        super::field::set_t(kernel, t_arg, t);
        for (arg, x) in [(u_arg, u), (v_arg, v)] {
            match kernel.arg_mut(arg) {
                Some(dst) if dst.len() == x.len() => dst.copy_from_slice(x),
                _ => return Some(false),
            }
        }
        let (len, dim) = (self.out.len(), self.dim);
        let h = &self.values[at * len + dim..(at + 1) * len];
        let ok = kernel.run_with(self.h_arg, h, out).is_ok();
        self.reused += usize::from(ok);
        Some(ok)
    }
}

/// A key's words (the bits of `t`, then of `u`) mixed into one (FxHash's step).
fn hash(bits: impl Iterator<Item = u64>) -> u64 {
    bits.fold(0, |h, x| {
        (h.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95)
    })
}

/// A hasher for keys that are already mixed ([`hash`]).
#[derive(Default)]
struct Premixed(u64);

impl Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

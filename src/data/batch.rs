//! Batching: trajectory windows (`batch = windows(B, length = L)`), shuffled minibatches
//! (`batch = N`), and the train/validation split (`split = f`).
//!
//! Reproducibility: every random choice comes from a ChaCha8 stream made by [`rng`] from the
//! run's one `u64` seed and a stream number ([`SPLIT_STREAM`], [`BATCH_STREAM`]), so the same
//! seed gives the same split and the same batches on every machine, and drawing more batches
//! (a longer run) never changes the split. The functions take `&mut impl Rng` and draw a fixed
//! number of values per call, in a fixed order.
//!
//! Errors here (a window longer than the data, a split that leaves nothing) carry no span: the
//! trainer labels them with the `train` clause's span (`diag.label(span, ...)`).

use std::ops::Range;

use ndarray::{ArrayView1, ArrayView2, Axis, s};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{Dataset, Trajectory};
use crate::diag::Diag;
use crate::sema::Batch;

/// The stream the train/validation split draws from.
pub const SPLIT_STREAM: u64 = 1;
/// The stream windows and minibatch shuffles draw from.
pub const BATCH_STREAM: u64 = 2;

/// The random stream `stream` of run seed `seed`.
pub fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// `len` consecutive observations of path `path`, from index `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub path: usize,
    pub start: usize,
    pub len: usize,
}

impl Window {
    pub fn range(&self) -> Range<usize> {
        self.start..self.start + self.len
    }

    /// The window's times (`traj` must be the path the window was drawn from).
    pub fn t<'a>(&self, traj: &'a Trajectory) -> ArrayView1<'a, f64> {
        traj.t.slice(s![self.range()])
    }

    /// The window's observations, one row per time.
    pub fn y<'a>(&self, traj: &'a Trajectory) -> ArrayView2<'a, f64> {
        traj.y.slice(s![self.range(), ..])
    }
}

/// `count` windows of `length` consecutive observations of one trajectory, starts uniform.
pub fn windows(
    traj: &Trajectory,
    count: usize,
    length: usize,
    rng: &mut impl Rng,
) -> Result<Vec<Window>, Diag> {
    windows_in(std::slice::from_ref(traj), count, length, rng)
}

/// `count` windows drawn from several paths: every (path, start) position equally likely, so
/// a longer path gives more windows. Paths shorter than `length` are never chosen.
pub fn windows_in(
    paths: &[Trajectory],
    count: usize,
    length: usize,
    rng: &mut impl Rng,
) -> Result<Vec<Window>, Diag> {
    if length < 2 {
        return Err(Diag::error(
            "glassbox::data_bad_window",
            format!("a window of {length} observation(s) has nothing to fit"),
        )
        .help("each window is solved from its first observation: use `length = 2` or more"));
    }
    let starts: Vec<usize> = paths
        .iter()
        .map(|p| (p.len() + 1).saturating_sub(length))
        .collect();
    let total: usize = starts.iter().sum();
    if total == 0 {
        let longest = paths.iter().map(Trajectory::len).max().unwrap_or(0);
        return Err(Diag::error(
            "glassbox::data_window_too_long",
            format!(
                "windows of length {length} need {length} observations, the longest path has {longest}"
            ),
        )
        .help(format!(
            "use `batch = windows(B, length = L)` with L at most {longest}"
        )));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut k = rng.random_range(0..total);
        for (path, &n) in starts.iter().enumerate() {
            if k < n {
                out.push(Window {
                    path,
                    start: k,
                    len: length,
                });
                break;
            }
            k -= n;
        }
    }
    Ok(out)
}

/// A uniformly random permutation of `0..n` (Fisher–Yates).
pub fn permutation(n: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(rng);
    p
}

/// One epoch of minibatches over `n` samples: a fresh permutation cut into batches of `size`
/// (the last one smaller when `size` does not divide `n`; `size` 0 counts as 1). Call once per
/// epoch with the same generator.
pub fn minibatches(n: usize, size: usize, rng: &mut impl Rng) -> Vec<Vec<usize>> {
    permutation(n, rng)
        .chunks(size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Training and validation parts of a dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub train: Dataset,
    pub valid: Dataset,
    /// Which part of the file validates (written to `run.json`, so the held-out samples can be
    /// predicted again).
    pub held_out: HeldOut,
}

/// The validation part of a split, in the file's own numbering (from 0).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldOut {
    /// Table rows, or whole sample paths (in the order the paths first appear), ascending.
    Samples(Vec<usize>),
    /// One trajectory: its observations from this index on.
    ObservationsFrom(usize),
}

/// Split `data` so that about `fraction` of it trains and the rest validates.
///
/// - A table: `round(fraction · rows)` rows (at least 1, leaving at least 1) chosen at random
///   train; both parts keep the file's row order.
/// - Several paths: the same, by whole paths (a path is never cut, so validation measures
///   generalisation to new sample paths).
/// - One trajectory: by time, without randomness: the first `round(fraction · rows)`
///   observations train, the rest validate (extrapolation forward in time); each part keeps at
///   least 2 observations.
pub fn split(data: &Dataset, fraction: f64, rng: &mut impl Rng) -> Result<Split, Diag> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Diag::error(
            "glassbox::data_bad_split",
            format!("a split of {fraction} leaves nothing to train or to validate"),
        )
        .help("write `split = f` with 0 < f < 1, e.g. `split = 0.8`"));
    }
    let too_small = |what: String| {
        Diag::error(
            "glassbox::data_split_too_small",
            format!("cannot split {what} into training and validation"),
        )
        .help("use more data, or remove `split` to train on all of it")
    };
    let take = |n: usize, min: usize| {
        ((fraction * n as f64).round() as usize).clamp(min, n.saturating_sub(min))
    };
    match data {
        Dataset::Trajectories { paths, .. } if paths.len() == 1 => {
            let Some(p) = paths.first() else {
                return Err(too_small("an empty dataset".into()));
            };
            let n = p.len();
            if n < 4 {
                return Err(too_small(format!(
                    "one trajectory of {n} observations (each part needs 2)"
                )));
            }
            let k = take(n, 2);
            let part = |r: Range<usize>| Trajectory {
                id: p.id.clone(),
                t: p.t.slice(s![r.clone()]).to_owned(),
                y: p.y.slice(s![r, ..]).to_owned(),
            };
            Ok(Split {
                train: Dataset::trajectories(vec![part(0..k)]),
                valid: Dataset::trajectories(vec![part(k..n)]),
                held_out: HeldOut::ObservationsFrom(k),
            })
        }
        _ => {
            let n = data.len();
            if n < 2 {
                return Err(too_small(format!("{n} sample(s)")));
            }
            let k = take(n, 1);
            let perm = permutation(n, rng);
            let (mut a, mut b) = (perm[..k].to_vec(), perm[k..].to_vec());
            a.sort_unstable();
            b.sort_unstable();
            Ok(Split {
                train: select(data, &a),
                valid: select(data, &b),
                held_out: HeldOut::Samples(b),
            })
        }
    }
}

/// The samples (table rows or paths) at `indices`, in that order. Indices must be in range.
pub fn select(data: &Dataset, indices: &[usize]) -> Dataset {
    match data {
        Dataset::Trajectories { paths, .. } => Dataset::trajectories(
            indices
                .iter()
                .filter_map(|&i| paths.get(i).cloned())
                .collect(),
        ),
        Dataset::Table { x, labels } => {
            let keep: Vec<usize> = indices.iter().copied().filter(|&i| i < x.nrows()).collect();
            Dataset::Table {
                x: x.select(Axis(0), &keep),
                labels: labels
                    .as_ref()
                    .map(|l| keep.iter().filter_map(|&i| l.get(i).copied()).collect()),
            }
        }
    }
}

/// What one optimiser step trains on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Draw {
    /// Windows of trajectories (`batch = windows(B, length = L)`).
    Windows(Vec<Window>),
    /// Samples by index: table rows, or whole paths of a trajectory dataset.
    Samples(Vec<usize>),
}

/// The `train` clause's batch setting as a stream of per-step draws, from its own
/// [`BATCH_STREAM`] of the seed.
///
/// No `batch`: every sample each step (one step is one epoch). `batch = N`: a fresh shuffle
/// each epoch, cut into batches of N (the last one smaller). `batch = windows(B, length = L)`:
/// B fresh windows each step; epochs are not counted for windows.
#[derive(Clone, Debug)]
pub struct Sampler {
    rng: ChaCha8Rng,
    batch: Option<Batch>,
    /// The rest of the current epoch's batches, last first.
    pending: Vec<Vec<usize>>,
    epochs: u64,
}

impl Sampler {
    pub fn new(seed: u64, batch: Option<Batch>) -> Sampler {
        Sampler {
            rng: rng(seed, BATCH_STREAM),
            batch,
            pending: Vec::new(),
            epochs: 0,
        }
    }

    /// Epochs started so far (for `batch = N` and for full batches).
    pub fn epochs(&self) -> u64 {
        self.epochs
    }

    /// The next step's draw from `data` (the training part, after any split).
    pub fn next(&mut self, data: &Dataset) -> Result<Draw, Diag> {
        let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        match self.batch {
            Some(Batch::Windows { count, length }) => match data {
                Dataset::Trajectories { paths, .. } => {
                    windows_in(paths, to_usize(count), to_usize(length), &mut self.rng)
                        .map(Draw::Windows)
                }
                Dataset::Table { .. } => Err(Diag::error(
                    "glassbox::data_bad_window",
                    "`batch = windows(...)` needs trajectory data, the data is a table",
                )
                .help("use `batch = N` (samples per step) for table data")),
            },
            Some(Batch::Size { n }) => {
                if self.pending.is_empty() {
                    let mut epoch = minibatches(data.len(), to_usize(n), &mut self.rng);
                    epoch.reverse();
                    self.pending = epoch;
                    self.epochs += 1;
                }
                Ok(Draw::Samples(self.pending.pop().unwrap_or_default()))
            }
            None => {
                self.epochs += 1;
                Ok(Draw::Samples((0..data.len()).collect()))
            }
        }
    }
}

//! Rows on all cores: a classifier's samples, a trajectory batch's windows, an SDE's paths are
//! independent solves, so a [`Pool`] runs them on threads, one worker (bound kernels and
//! scratch of its own) per thread, made once per run.
//!
//! Invariant: results are bit-identical at any thread count. Each row is computed exactly as on
//! one thread (a worker's kernels are the same code, its buffers are overwritten before they
//! are read), the rows are cut into contiguous blocks, block `i` always runs on worker `i`
//! ([`Pool::blocks`]; or, for a batched solve's fixed chunks, each chunk on whichever worker is
//! free, [`Pool::each`]), and the results come back in row order; every sum over rows is then
//! taken by the caller, in row order, after the parallel part. Nothing is ever summed per
//! thread.

use std::num::NonZeroUsize;

use rayon::prelude::*;

use crate::diag::Diag;

/// The cores this machine offers (`std::thread::available_parallelism`, 1 if unknown): the
/// default thread count of `train`, `predict` and `solve`.
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Fewest rows worth a thread of their own: a block smaller than this costs more in handing
/// over than it gains (see `docs/benchmarks.md`, "All cores").
pub const MIN_ROWS_PER_THREAD: usize = 4;

/// Workers `W`, one per thread, and the rayon pool that runs them (none for one thread: the
/// rows then run on the caller's thread, as before threads).
pub struct Pool<W> {
    pool: Option<rayon::ThreadPool>,
    workers: Vec<W>,
}

impl<W> std::fmt::Debug for Pool<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.workers.len())
            .finish()
    }
}

impl<W: Send> Pool<W> {
    /// A pool of `threads` workers (at least one), each made by `make`.
    pub fn new(threads: usize, mut make: impl FnMut() -> Result<W, Diag>) -> Result<Pool<W>, Diag> {
        let threads = threads.max(1);
        let workers = (0..threads)
            .map(|_| make())
            .collect::<Result<Vec<_>, _>>()?;
        let pool = match threads {
            1 => None,
            n => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("glassbox-rows-{i}"))
                    .build()
                    .map_err(|e| {
                        Diag::error(
                            "glassbox::threads",
                            format!("could not start {n} threads: {e}"),
                        )
                        .help("ask for fewer with `--threads N`")
                    })?,
            ),
        };
        Ok(Pool { pool, workers })
    }

    /// The number of threads (and workers).
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Every worker, e.g. to give each the new parameters.
    pub fn workers_mut(&mut self) -> &mut [W] {
        &mut self.workers
    }

    /// Runs `f(worker, first, block)` on contiguous blocks of `slots` (`first`: the index of the
    /// block's first slot), block `i` on worker `i`, and returns the blocks' results in order.
    /// Blocks hold at least [`MIN_ROWS_PER_THREAD`] slots where there are enough, so a small
    /// batch uses fewer threads; which block a slot falls in never changes its result.
    pub fn blocks<S, T, F>(&mut self, slots: &mut [S], f: F) -> Result<Vec<T>, Diag>
    where
        S: Send,
        T: Send,
        F: Fn(&mut W, usize, &mut [S]) -> Result<T, Diag> + Sync,
    {
        self.blocks_of(MIN_ROWS_PER_THREAD, slots, f)
    }

    /// `f(worker, i, slot)` for every slot `i`, each taken by whichever thread is free (on
    /// cores of different speeds the faster takes more), the results in slot order. Only for
    /// slots whose result cannot depend on the worker that computes it, nor on what that worker
    /// computed before (its kernels are the same code, its buffers overwritten before they are
    /// read): a batched solve's fixed chunks. Then, as with [`blocks`](Self::blocks), the
    /// results are bit-identical at any thread count.
    pub fn each<S, T, F>(&mut self, slots: &mut [S], f: F) -> Result<Vec<T>, Diag>
    where
        S: Send,
        T: Send,
        F: Fn(&mut W, usize, &mut S) -> Result<T, Diag> + Sync,
    {
        let used = self.workers.len().min(slots.len()).max(1);
        let (pool, workers) = (&self.pool, &mut self.workers[..used]);
        match pool {
            Some(pool) if used > 1 => {
                // At most `used` slots run at once (one per pool thread; `f` never waits on
                // the pool), so a free worker is always there to take.
                let free = std::sync::Mutex::new(workers.iter_mut().collect::<Vec<&mut W>>());
                let take = || free.lock().unwrap_or_else(|e| e.into_inner()).pop();
                pool.install(|| {
                    slots
                        .par_iter_mut()
                        .with_max_len(1)
                        .enumerate()
                        .map(|(i, slot)| {
                            let w = take().ok_or_else(|| {
                                Diag::error("glassbox::internal", "no free row worker")
                                    .help("this is a bug in glassbox; please report it")
                            })?;
                            let result = f(w, i, slot);
                            free.lock().unwrap_or_else(|e| e.into_inner()).push(w);
                            result
                        })
                        .collect()
                })
            }
            _ => slots
                .iter_mut()
                .enumerate()
                .map(|(i, slot)| f(&mut workers[0], i, slot))
                .collect(),
        }
    }

    /// [`blocks`](Self::blocks) with blocks of at least `min` slots where there are enough:
    /// slots that are themselves groups of rows (a batched solve's fixed chunks) take a
    /// thread each.
    pub fn blocks_of<S, T, F>(&mut self, min: usize, slots: &mut [S], f: F) -> Result<Vec<T>, Diag>
    where
        S: Send,
        T: Send,
        F: Fn(&mut W, usize, &mut [S]) -> Result<T, Diag> + Sync,
    {
        let n = slots.len();
        let used = self.workers.len().min(n.div_ceil(min.max(1))).max(1);
        let (pool, workers) = (&self.pool, &mut self.workers[..used]);
        match pool {
            Some(pool) if used > 1 => {
                let mut parts = Vec::with_capacity(used);
                let mut rest = slots;
                let mut first = 0;
                for i in 0..used {
                    let len = n / used + usize::from(i < n % used);
                    let (block, tail) = rest.split_at_mut(len);
                    parts.push((first, block));
                    first += len;
                    rest = tail;
                }
                pool.install(|| {
                    workers
                        .par_iter_mut()
                        .zip(parts)
                        .map(|(w, (first, block))| f(w, first, block))
                        .collect()
                })
            }
            _ => Ok(vec![f(&mut workers[0], 0, slots)?]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_come_back_in_row_order_at_any_thread_count() {
        for threads in 1..=4 {
            let mut pool = Pool::new(threads, || Ok(0usize)).unwrap();
            let mut rows: Vec<usize> = (0..23).collect();
            let got = pool
                .blocks(&mut rows, |calls, first, block| {
                    *calls += 1;
                    Ok((first, block.to_vec()))
                })
                .unwrap();
            let flat: Vec<usize> = got.iter().flat_map(|(_, b)| b.clone()).collect();
            assert_eq!(flat, (0..23).collect::<Vec<_>>());
            assert!(
                got.iter()
                    .all(|(first, b)| b.first().is_none_or(|x| x == first))
            );
            assert_eq!(got.len(), threads);
        }
    }

    /// `each` hands every slot to some worker exactly once and returns the results in slot
    /// order, whichever worker took which slot; an error in a slot is the call's error.
    #[test]
    fn each_slot_once_in_slot_order_at_any_thread_count() {
        for threads in 1..=4 {
            let mut pool = Pool::new(threads, || Ok(0usize)).unwrap();
            let mut slots: Vec<usize> = (0..9).map(|i| i * 10).collect();
            let got = pool
                .each(&mut slots, |calls, i, s| {
                    *calls += 1;
                    Ok((i, *s))
                })
                .unwrap();
            assert_eq!(got, (0..9).map(|i| (i, i * 10)).collect::<Vec<_>>());
            let calls: usize = pool.workers_mut().iter().sum();
            assert_eq!(calls, 9, "{threads} threads");
            let err = pool.each(&mut slots, |_, i, _| {
                if i == 4 {
                    Err(Diag::error("glassbox::test", "slot 4"))
                } else {
                    Ok(())
                }
            });
            assert!(err.is_err_and(|d| d.message == "slot 4"));
        }
    }

    #[test]
    fn small_batches_use_fewer_threads() {
        let mut pool = Pool::new(8, || Ok(())).unwrap();
        let mut rows = [0u8; 6];
        let got = pool.blocks(&mut rows, |_, _, b| Ok(b.len())).unwrap();
        assert_eq!(got, vec![3, 3]);
    }
}

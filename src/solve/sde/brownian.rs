//! Brownian motion as a pure function of (seed, path, time): a virtual Brownian tree.
//!
//! Each path carries `m` independent Wiener processes on `[t0, t1]`. A query `point(t)`
//! returns `W(t)` and the running time integral `J(t) = ∫_{t0}^t W(r) dr` (`W(t0) = 0`); from
//! two points any step's increment `ΔW = W(b) − W(a)` and iterated integral
//! `I_(1,0) = ∫_a^b (W(r) − W(a)) dr = J(b) − J(a) − (b − a) W(a)` follow exactly.
//!
//! Construction (the virtual Brownian tree of Gaines–Lyons / torchsde / diffrax, carrying the
//! time integral as diffrax carries the space-time Lévy area): the root samples
//! `(W, I)` over `[t0, t1]` from their joint Gaussian law; a query descends by bisection,
//! sampling the left half's `(W, I)` from the exact Gaussian law conditional on the parent's
//! (the right half follows from `W = W_l + W_r`, `I = I_l + I_r + |right|·W_l`). Every
//! normal a node draws is a hash of `(seed, path, node, component)`, never a stream
//! position, so:
//!
//! Invariant: the value at `t` depends only on `(seed, path, t)`, never on which other
//! times were queried before or in what order (rejected steps and the backward pass see the
//! same path). Dyadic times `t0 + k·(t1 − t0)/2^d` (d ≤ `depth`) are nodes of the tree and
//! exact samples of Brownian motion jointly with every other node. A time strictly inside a
//! leaf (width `(t1 − t0)/2^depth`) is bridged from the leaf's ends with the leaf's own two
//! normals (those its midpoint split would draw in a deeper tree): exact in law on its own,
//! and continuous in `t` (a time and its rounding neighbour, `k/100` and `k·0.01`, get
//! nearly equal values, not independent draws — what a shallow tree needs), but two times in
//! one leaf are not jointly exact. Solves choose the depth so that their step ends never
//! share a leaf (`integrate::tree_depth`).

/// Default tree depth: leaves are `2^-40` of the span.
pub const DEFAULT_DEPTH: u32 = 40;

#[derive(Clone, Debug)]
pub struct BrownianTree {
    seed: u64,
    path: u64,
    t0: f64,
    t1: f64,
    m: usize,
    depth: u32,
    /// `(W, I)` over the whole span, per process.
    root: Vec<(f64, f64)>,
    /// The conditional law of a midpoint split (every level above the leaves), worked out once.
    half: Split,
}

/// Memoised splits of the nodes a query passed through, so the next query (usually in the
/// same or a neighbouring leaf) reuses the levels it shares with the last one instead of
/// drawing them again. A split is a pure function of `(seed, path, node, process)`, so a
/// cached value equals a fresh one bit for bit: the cache changes costs, never values.
///
/// Invariant: `slots[k·depth + level]` holds `(node, W_l, I_l)` of the last node of that level
/// process `k` split; heap indices are unique per level and never 0, so a slot whose node
/// differs (0 when empty) is a miss. A cache filled by another tree is reset on first use.
#[derive(Clone, Debug, Default)]
pub struct BrownianCache {
    owner: Option<(u64, u64, u64, u64, usize, u32)>,
    slots: Vec<(u64, f64, f64)>,
}

impl BrownianCache {
    pub fn new() -> BrownianCache {
        BrownianCache::default()
    }
}

/// `W(t)` and `J(t) = ∫_{t0}^t W dr` of every process at one time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BrownianPoint {
    pub t: f64,
    pub w: Vec<f64>,
    pub j: Vec<f64>,
}

impl BrownianPoint {
    /// The point at `t0`: everything zero.
    pub fn origin(t0: f64, m: usize) -> BrownianPoint {
        BrownianPoint {
            t: t0,
            w: vec![0.0; m],
            j: vec![0.0; m],
        }
    }
}

/// Increments of every process over `[a.t, b.t]`: `ΔW` and `I_(1,0)`.
pub fn increments(a: &BrownianPoint, b: &BrownianPoint, dw: &mut [f64], i10: &mut [f64]) {
    let h = b.t - a.t;
    for k in 0..dw.len() {
        dw[k] = b.w[k] - a.w[k];
        i10[k] = b.j[k] - a.j[k] - h * a.w[k];
    }
}

impl BrownianTree {
    /// `m` independent Wiener processes on `[t0, t1]` (`t0 < t1`, both finite; the solver
    /// checks), path number `path` of the generator `seed`.
    pub fn new(seed: u64, path: u64, t0: f64, t1: f64, m: usize) -> BrownianTree {
        BrownianTree::with_depth(seed, path, t0, t1, m, DEFAULT_DEPTH)
    }

    pub fn with_depth(
        seed: u64,
        path: u64,
        t0: f64,
        t1: f64,
        m: usize,
        depth: u32,
    ) -> BrownianTree {
        // Node keys are heap indices (1 the first split, 0 the root): 60 levels fit in u64.
        let depth = depth.min(60);
        let span = t1 - t0;
        let root = (0..m)
            .map(|k| {
                let (z1, z2) = normals(seed, path, 0, k as u64);
                // Unit interval: Var W = 1, Cov(W, I) = 1/2, Var I = 1/3; Cholesky factor.
                let w = z1;
                let i = 0.5 * z1 + (1.0f64 / 12.0).sqrt() * z2;
                (w * span.sqrt(), i * span * span.sqrt())
            })
            .collect();
        BrownianTree {
            seed,
            path,
            t0,
            t1,
            m,
            depth,
            root,
            half: Split::new(0.5),
        }
    }

    /// The depth of the tree (leaves are `2^-depth` of the span).
    pub fn depth(&self) -> u32 {
        self.depth
    }

    pub fn processes(&self) -> usize {
        self.m
    }

    pub fn span(&self) -> (f64, f64) {
        (self.t0, self.t1)
    }

    /// `W(t)` and `J(t)` of every process; `t` is clamped into the span (NaN gives NaN).
    pub fn point(&self, t: f64, out: &mut BrownianPoint) {
        self.query(t, &mut [], out);
    }

    /// [`BrownianTree::point`], reusing the splits an earlier query through `cache` drew: the
    /// same values, at a fraction of the cost when queries come in order (a solve's steps).
    pub fn point_cached(&self, t: f64, cache: &mut BrownianCache, out: &mut BrownianPoint) {
        let owner = (
            self.seed,
            self.path,
            self.t0.to_bits(),
            self.t1.to_bits(),
            self.m,
            self.depth,
        );
        if cache.owner != Some(owner) {
            cache.owner = Some(owner);
            cache.slots.clear();
            cache
                .slots
                .resize(self.m * self.depth as usize, (0, 0.0, 0.0));
        }
        self.query(t, &mut cache.slots, out);
    }

    /// `slots`: the cache (`m · depth` entries) or empty for none.
    fn query(&self, t: f64, slots: &mut [(u64, f64, f64)], out: &mut BrownianPoint) {
        let t = t.clamp(self.t0, self.t1);
        out.t = t;
        out.w.resize(self.m, 0.0);
        out.j.resize(self.m, 0.0);
        if t.is_nan() {
            out.w.fill(f64::NAN);
            out.j.fill(f64::NAN);
            return;
        }
        let depth = self.depth as usize;
        for k in 0..self.m {
            let cache = slots.get_mut(k * depth..(k + 1) * depth).unwrap_or(&mut []);
            let (w, j) = self.point_of(k, t, cache);
            out.w[k] = w;
            out.j[k] = j;
        }
    }

    fn point_of(&self, k: usize, t: f64, cache: &mut [(u64, f64, f64)]) -> (f64, f64) {
        let (mut a, mut b) = (self.t0, self.t1);
        // Cumulative values at `a` and increments over `[a, b]`.
        let (mut wa, mut ja) = (0.0, 0.0);
        let (mut dw, mut di) = self.root[k];
        let mut node: u64 = 1;
        let mut level = 0;
        loop {
            if t == a {
                return (wa, ja);
            }
            if t == b {
                return (wa + dw, ja + di + (b - a) * wa);
            }
            let len = b - a;
            let (split, (wl, il)) = if level < self.depth {
                let split = a + 0.5 * len;
                let slot = cache.get_mut(level as usize);
                match slot {
                    Some(&mut (key, wl, il)) if key == node => (split, (wl, il)),
                    _ => {
                        let z = normals(self.seed, self.path, node, k as u64);
                        // The rounded midpoint's fraction is 0.5 but for the last bit or so;
                        // the law for the fraction actually used keeps values as they were.
                        let r = (split - a) / len;
                        let (wl, il) = if r == 0.5 {
                            self.half.left(len, dw, di, z)
                        } else {
                            Split::new(r).left(len, dw, di, z)
                        };
                        if let Some(s) = slot {
                            *s = (node, wl, il);
                        }
                        (split, (wl, il))
                    }
                }
            } else {
                // Inside a leaf: bridge to `t` itself with the leaf's normals, so the value
                // is continuous in `t` (and at the leaf's midpoint equals a deeper tree's).
                let z = normals(self.seed, self.path, node, k as u64);
                (t, Split::new((t - a) / len).left(len, dw, di, z))
            };
            let (wr, ir) = (dw - wl, di - il - (b - split) * wl);
            if t == split {
                return (wa + wl, ja + il + (split - a) * wa);
            }
            if t < split {
                b = split;
                dw = wl;
                di = il;
                node *= 2;
            } else {
                ja += il + (split - a) * wa;
                wa += wl;
                a = split;
                dw = wr;
                di = ir;
                node = node * 2 + 1;
            }
            level += 1;
        }
    }
}

/// The conditional law of `(W, I)` over `[a, a + r·len]` given `(W, I)` over `[a, a + len]`,
/// worked in unit time (`w = W/√len`, `i = I/len^{3/2}`) where it depends on `r` alone: the
/// mean's gain `kk` and the Cholesky factor of the covariance.
#[derive(Clone, Copy, Debug)]
struct Split {
    kk: [[f64; 2]; 2],
    l11: f64,
    l21: f64,
    l22: f64,
}

impl Split {
    fn new(r: f64) -> Split {
        let s = 1.0 - r;
        // X = (w_l, i_l): Var X = A; Cov(X, Y) = C with Y = (w, i) = (w_l + w_r, i_l + i_r + s·w_l).
        let a = [[r, r * r / 2.0], [r * r / 2.0, r * r * r / 3.0]];
        let c = [
            [r, r * r / 2.0 + s * r],
            [r * r / 2.0, r * r * r / 3.0 + s * r * r / 2.0],
        ];
        // (Var Y)^{-1} for the unit interval: [[1, 1/2], [1/2, 1/3]]^{-1} = [[4, -6], [-6, 12]].
        let inv = [[4.0, -6.0], [-6.0, 12.0]];
        let mut kk = [[0.0; 2]; 2];
        for i in 0..2 {
            for j in 0..2 {
                kk[i][j] = c[i][0] * inv[0][j] + c[i][1] * inv[1][j];
            }
        }
        let mut cov = [[0.0; 2]; 2];
        for i in 0..2 {
            for j in 0..2 {
                cov[i][j] = a[i][j] - (kk[i][0] * c[j][0] + kk[i][1] * c[j][1]);
            }
        }
        let l11 = cov[0][0].max(0.0).sqrt();
        let l21 = if l11 > 0.0 { cov[1][0] / l11 } else { 0.0 };
        let l22 = (cov[1][1] - l21 * l21).max(0.0).sqrt();
        Split { kk, l11, l21, l22 }
    }

    /// Samples the left part's `(W, I)` given the whole's `(dw, di)` over `len`.
    fn left(&self, len: f64, dw: f64, di: f64, (z1, z2): (f64, f64)) -> (f64, f64) {
        let (sq, sq3) = (len.sqrt(), len * len.sqrt());
        let (y1, y2) = (dw / sq, di / sq3);
        let kk = &self.kk;
        let mean = [kk[0][0] * y1 + kk[0][1] * y2, kk[1][0] * y1 + kk[1][1] * y2];
        let w = mean[0] + self.l11 * z1;
        let i = mean[1] + self.l21 * z1 + self.l22 * z2;
        (w * sq, i * sq3)
    }
}

/// Two independent standard normals, a pure function of the key (Box–Muller over two
/// uniforms hashed from it).
fn normals(seed: u64, path: u64, node: u64, comp: u64) -> (f64, f64) {
    // `mix(0)`: a salt that once keyed bridges by time; kept so the draws stay as they were.
    let h = mix(seed ^ mix(path ^ mix(node ^ mix(comp ^ mix(0)))));
    let h2 = mix(h ^ 0x9e37_79b9_7f4a_7c15);
    // 53-bit uniforms; u1 in (0, 1] so the log is finite.
    let u1 = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (h2 >> 11) as f64 / (1u64 << 53) as f64;
    let r = (-2.0 * u1.ln()).sqrt();
    let th = std::f64::consts::TAU * u2;
    (r * th.cos(), r * th.sin())
}

/// SplitMix64's finaliser: a bijective 64-bit mixer.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tree: &BrownianTree, t: f64) -> BrownianPoint {
        let mut p = BrownianPoint::origin(0.0, tree.processes());
        tree.point(t, &mut p);
        p
    }

    #[test]
    fn queries_do_not_depend_on_order_or_history() {
        let tree = BrownianTree::new(7, 3, 0.0, 2.0, 2);
        let times = [0.3, 1.7, 0.5, 0.3 + 1e-3, 2.0, 1.0, 0.125];
        let first: Vec<_> = times.iter().map(|&t| at(&tree, t)).collect();
        let other = BrownianTree::new(7, 3, 0.0, 2.0, 2);
        for (i, &t) in times.iter().enumerate().rev() {
            assert_eq!(at(&other, t), first[i]);
        }
        assert_eq!(at(&tree, 0.0), BrownianPoint::origin(0.0, 2));
        assert!(at(&tree, f64::NAN).w.iter().all(|w| w.is_nan()));
        // Another path or seed is another motion.
        assert_ne!(at(&BrownianTree::new(7, 4, 0.0, 2.0, 2), 1.0).w, first[5].w);
        assert_ne!(at(&BrownianTree::new(8, 3, 0.0, 2.0, 2), 1.0).w, first[5].w);
    }

    /// Moments over many paths: Var W(t) = t, Cov(W(s), W(t)) = min(s, t), and on a step
    /// [a, b] of length h: Var I = h³/3, Cov(ΔW, I) = h²/2 — at dyadic and at arbitrary times.
    /// With N = 4000 samples an estimated (co)variance has relative standard error about
    /// sqrt(2/N) ≈ 2.2%; the test allows 10% (4.5 standard errors).
    #[test]
    fn moments_match_brownian_motion() {
        let n = 4000;
        let (a, b) = (0.3, 0.3 + 0.37);
        let h = b - a;
        let (mut vw, mut cw, mut vi, mut cwi, mut vdw) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for path in 0..n {
            let tree = BrownianTree::new(11, path, 0.0, 1.0, 1);
            let (pa, pb, ph) = (at(&tree, a), at(&tree, b), at(&tree, 0.5));
            let (mut dw, mut i) = ([0.0], [0.0]);
            increments(&pa, &pb, &mut dw, &mut i);
            vw += ph.w[0] * ph.w[0];
            cw += ph.w[0] * pa.w[0];
            vi += i[0] * i[0];
            cwi += dw[0] * i[0];
            vdw += dw[0] * dw[0];
        }
        let n = n as f64;
        let close = |x: f64, want: f64| (x / n - want).abs() < 0.1 * want;
        assert!(close(vw, 0.5), "Var W(1/2) = {}", vw / n);
        assert!(close(cw, 0.3), "Cov = {}", cw / n);
        assert!(close(vdw, h), "Var ΔW = {} vs {h}", vdw / n);
        assert!(close(vi, h.powi(3) / 3.0), "Var I = {}", vi / n);
        assert!(close(cwi, h * h / 2.0), "Cov(ΔW, I) = {}", cwi / n);
    }

    /// The cache changes costs, never values: any query sequence through one cache (in
    /// order, backwards, repeated, dyadic or not, the span's ends, shared with another tree)
    /// gives the uncached values bit for bit, at every depth.
    #[test]
    fn cached_queries_equal_fresh_ones_in_any_order() {
        let mut times: Vec<f64> = (0..=200).map(|k| 0.3 + 1.7 * k as f64 / 200.0).collect();
        times.extend([0.3, 2.0, 1.15, 1.15, 0.3 + 1.7 / 1024.0]);
        // A scrambled order as well: a fixed stride through the list.
        let scrambled: Vec<f64> = (0..times.len())
            .map(|i| times[(i * 37) % times.len()])
            .collect();
        let backwards: Vec<f64> = times.iter().rev().copied().collect();
        let mut cache = BrownianCache::new();
        for depth in [0, 1, 5, 11, DEFAULT_DEPTH] {
            let tree = BrownianTree::with_depth(3, 1, 0.3, 2.0, 2, depth);
            let other = BrownianTree::with_depth(4, 1, 0.3, 2.0, 2, depth);
            for seq in [&times, &scrambled, &backwards] {
                for &t in seq {
                    let mut got = BrownianPoint::default();
                    tree.point_cached(t, &mut cache, &mut got);
                    let mut want = BrownianPoint::default();
                    tree.point(t, &mut want);
                    assert_eq!(got, want, "depth {depth}, t = {t}");
                    // Interleaving another tree resets the cache, never mixes the two.
                    other.point_cached(t, &mut cache, &mut got);
                    other.point(t, &mut want);
                    assert_eq!(got, want, "other tree, depth {depth}, t = {t}");
                }
            }
        }
    }

    /// Nodes of the levels both trees have are the same: a dyadic time of level ≤ d has one
    /// value in every tree of depth ≥ d (so dyadic grids share their path across depths).
    #[test]
    fn dyadic_times_agree_across_depths() {
        let deep = BrownianTree::with_depth(2, 0, 0.0, 1.0, 1, DEFAULT_DEPTH);
        let shallow = BrownianTree::with_depth(2, 0, 0.0, 1.0, 1, 6);
        for k in 0..=64 {
            let t = k as f64 / 64.0;
            assert_eq!(at(&deep, t), at(&shallow, t), "t = {t}");
        }
        // Off the dyadic grid the shallow tree bridges inside a leaf: another sample.
        assert_ne!(at(&deep, 0.3), at(&shallow, 0.3));
        // The bridge uses the leaf's normals: at the leaf's midpoint it is the deeper
        // tree's node, and it is continuous in t (a rounding neighbour is no new draw).
        assert_eq!(at(&shallow, 1.0 / 128.0), at(&deep, 1.0 / 128.0));
        let (p, q) = (at(&shallow, 0.3), at(&shallow, 0.3f64.next_up()));
        assert!((p.w[0] - q.w[0]).abs() < 1e-12 && (p.j[0] - q.j[0]).abs() < 1e-12);
    }

    /// The halves of an interval add up to the whole exactly: W and I are consistent.
    #[test]
    fn increments_add_up_across_a_split() {
        let tree = BrownianTree::new(5, 0, 0.0, 1.0, 3);
        let (p0, p1, p2) = (at(&tree, 0.2), at(&tree, 0.45), at(&tree, 0.9));
        let (mut w01, mut i01, mut w12, mut i12, mut w02, mut i02) =
            ([0.0; 3], [0.0; 3], [0.0; 3], [0.0; 3], [0.0; 3], [0.0; 3]);
        increments(&p0, &p1, &mut w01, &mut i01);
        increments(&p1, &p2, &mut w12, &mut i12);
        increments(&p0, &p2, &mut w02, &mut i02);
        for k in 0..3 {
            assert!((w01[k] + w12[k] - w02[k]).abs() < 1e-14);
            let i = i01[k] + i12[k] + (0.9 - 0.45) * w01[k];
            assert!((i - i02[k]).abs() < 1e-14);
        }
    }
}

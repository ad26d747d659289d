//! Size limits: a model's values are held in memory whole (a state's initial value, a net's
//! weights, every stage of a solve), so a size a user can write must never become an
//! allocation that aborts the process. Shapes are multiplied out with checked arithmetic and
//! refused past [`MAX_ELEMENTS`], with `glassbox::too_large` naming the size and the limit,
//! *before* anything of that size is allocated.

use super::checker::Checker;
use crate::diag::{Diag, grouped};
use crate::source::Span;

/// The most elements one value may have, and the most all states (or all parameters, net
/// weights included) may have together: 2^24 = 16 777 216, 128 MiB of `f64` per copy. Real
/// models sit far below it (a 784 → 100 MNIST encoder has 78 500 weights, a large state 10^6
/// elements), and a solve's dozen copies of the state, or training's copies of the
/// parameters, stay a few GiB at most.
pub const MAX_ELEMENTS: usize = 1 << 24;

/// `n` as a size, or "over 2^64" when the multiplication overflowed.
fn size_text(n: Option<usize>) -> String {
    n.map_or_else(|| "over 2^64".to_string(), grouped)
}

impl Checker<'_> {
    /// Whether `n` elements (`None`: the product overflowed) fit in `limit`; reports
    /// `glassbox::too_large` at `span` when they do not. `what` names the value ("this shape",
    /// "net `f`"), `total` says what the limit applies to when it is a sum.
    pub fn within_limit(&mut self, n: Option<usize>, limit: usize, what: &str, span: Span) -> bool {
        if n.is_some_and(|n| n <= limit) {
            return true;
        }
        self.push(
            Diag::error(
                "glassbox::too_large",
                format!(
                    "{what} has {} elements, more than the limit of {}",
                    size_text(n),
                    grouped(limit)
                ),
            )
            .label(span, "too large")
            .help(format!(
                "glassbox holds every value in memory: one value, all states together and all \
                 parameters together may have at most {} elements",
                grouped(MAX_ELEMENTS)
            )),
        );
        false
    }

    /// Room for `n` more parameter elements (user params and net weights share one vector).
    pub fn param_room(&mut self, n: Option<usize>, what: &str, span: Span) -> bool {
        let used = self.m.param_size;
        let total = n.and_then(|n| n.checked_add(used));
        if total.is_some_and(|t| t <= MAX_ELEMENTS) {
            return true;
        }
        let what = if used == 0 {
            what.to_string()
        } else {
            format!("{what}, with the {} parameters before it,", grouped(used))
        };
        self.within_limit(total, MAX_ELEMENTS, &what, span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_groups_of_three() {
        assert_eq!(size_text(Some(MAX_ELEMENTS)), "16 777 216");
        assert_eq!(size_text(None), "over 2^64");
    }
}

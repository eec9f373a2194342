//! Log lines about what anyone on the network can cause (refused calls, refused TLS
//! handshakes, plain-text clients on a TLS port), within a budget a second, so that no one can
//! flood the node's log: the first lines of a second are written one by one, then one notice
//! says the rest are not. What they record is counted elsewhere (the access log, the metrics).

use crate::lock::Locked;
use std::sync::Mutex;

/// Whether to write a line ([`LineBudget::take`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Line {
    /// Write it.
    Write,
    /// The budget of this second is spent with this one: write the notice instead.
    Notice,
    /// Write nothing.
    Quiet,
}

/// At most `per_sec` lines a second (a second of the Unix clock, UTC).
#[derive(Debug)]
pub(crate) struct LineBudget {
    /// Lines a second.
    per_sec: u32,
    /// The current second and the lines asked for in it.
    seen: Mutex<(u64, u32)>,
}

impl LineBudget {
    /// A budget of `per_sec` lines a second.
    pub(crate) const fn new(per_sec: u32) -> Self {
        LineBudget {
            per_sec,
            seen: Mutex::new((0, 0)),
        }
    }

    /// The lines a second.
    pub(crate) fn per_sec(&self) -> u32 {
        self.per_sec
    }

    /// Asks for a line in `second`: [`Line::Write`] for the first `per_sec`, [`Line::Notice`]
    /// for the next, [`Line::Quiet`] for the rest.
    pub(crate) fn take(&self, second: u64) -> Line {
        let mut seen = self.seen.locked();
        if seen.0 != second {
            *seen = (second, 0);
        }
        seen.1 = seen.1.saturating_add(1);
        match seen.1.checked_sub(self.per_sec) {
            None | Some(0) => Line::Write,
            Some(1) => Line::Notice,
            Some(_) => Line::Quiet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_gets_its_lines_then_one_notice_then_quiet() {
        let b = LineBudget::new(3);
        let second_100: Vec<Line> = (0..6).map(|_| b.take(100)).collect();
        assert_eq!(
            second_100,
            [
                Line::Write,
                Line::Write,
                Line::Write,
                Line::Notice,
                Line::Quiet,
                Line::Quiet
            ]
        );
        assert_eq!(b.take(101), Line::Write, "a new second, a new budget");
    }
}

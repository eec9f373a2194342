//! The contact rule (docs/tracing.md section 3.2): seats are positions on the manifest (1 to N);
//! a seat's row is `(seat - 1) / seats_per_row + 1`; a fellow traveller is a contact when their
//! row is at most `rows` rows from the case's (inclusive: with 4 seats a row, seat 13 is 3 rows
//! from seat 1 and counts under the default 3 rows, seat 17 is 4 rows away and does not), when
//! either of them is crew (crew move through the vehicle), or, under `whole_vehicle`, always.

use super::SUBJECT_PREFIX_LEN;
use crate::manifest::Manifest;
use crate::province::Province;

/// Rows either side of the case that count when the caller gives 0.
pub const DEFAULT_ROWS: u32 = 3;
/// Seats per row when the caller gives 0 (a coach's 2 + 2).
pub const DEFAULT_SEATS_PER_ROW: u32 = 4;

/// Who counts as a contact on a vehicle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactRule {
    /// Rows either side of the case's row that count (inclusive), at least 1
    /// ([`ContactRule::new`] turns 0 into [`DEFAULT_ROWS`]).
    pub rows: u32,
    /// Seats per row, at least 1 ([`ContactRule::new`] turns 0 into
    /// [`DEFAULT_SEATS_PER_ROW`]).
    pub seats_per_row: u32,
    /// Everyone on board counts (a vehicle without seat plan, a closed carriage).
    pub whole_vehicle: bool,
}

impl Default for ContactRule {
    /// Within 3 rows, 4 seats a row; crew always.
    fn default() -> Self {
        ContactRule::new(0, 0, false)
    }
}

impl ContactRule {
    /// The rule as asked (`ContactRule` of the API): 0 rows means [`DEFAULT_ROWS`], 0 seats per
    /// row [`DEFAULT_SEATS_PER_ROW`].
    pub fn new(rows: u32, seats_per_row: u32, whole_vehicle: bool) -> Self {
        ContactRule {
            rows: if rows == 0 { DEFAULT_ROWS } else { rows },
            seats_per_row: if seats_per_row == 0 {
                DEFAULT_SEATS_PER_ROW
            } else {
                seats_per_row
            },
            whole_vehicle,
        }
    }

    /// The row of `seat` (1-based): seats 1 to `seats_per_row` are row 1.
    pub fn row(&self, seat: u32) -> u32 {
        seat.saturating_sub(1) / self.seats_per_row.max(1) + 1
    }

    /// The rule in words: `within 3 rows, 4 seats a row; crew always` or `the whole vehicle`.
    pub fn describe(&self) -> String {
        if self.whole_vehicle {
            "the whole vehicle".to_string()
        } else {
            format!(
                "within {} row{}, {} seat{} a row; crew always",
                self.rows,
                if self.rows == 1 { "" } else { "s" },
                self.seats_per_row,
                if self.seats_per_row == 1 { "" } else { "s" },
            )
        }
    }
}

/// A person on a traced trip other than the case, as the manifest lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fellow {
    /// The issuing province of their code.
    pub issuer: Province,
    /// The first 4 bytes of their keyed subject hash.
    pub subject_prefix: [u8; SUBJECT_PREFIX_LEN],
    /// The first 6 bytes of their code's cti.
    pub cti_prefix: [u8; 6],
    /// Their seat (1-based position on the manifest).
    pub seat: u32,
    /// Crew or passenger.
    pub crew: bool,
    /// Seats between them and the (nearest) case seat.
    pub distance: u32,
    /// Rows between them and the (nearest) case seat's row.
    pub rows_apart: u32,
    /// Whether they count as a contact under the rule.
    pub contact: bool,
}

/// The case on one manifest, and everyone else on board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedCase {
    /// The case's seats, ascending: one, unless two people share the issuer and the 4-byte
    /// prefix (then each is taken as the case, and distances run to the nearest).
    pub case_seats: Vec<u32>,
    /// Whether the case (at any of those seats) was crew.
    pub case_crew: bool,
    /// Everyone else on board, by seat.
    pub fellows: Vec<Fellow>,
}

/// The seats (1-based) of people of `issuer` whose subject prefix is `subject`.
fn seats_of(m: &Manifest, issuer: Province, subject: &[u8; SUBJECT_PREFIX_LEN]) -> Vec<u32> {
    m.people
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.subject == *subject && m.issuers.get(usize::from(p.issuer)) == Some(&issuer)
        })
        .map(|(i, _)| u32::try_from(i + 1).unwrap_or(u32::MAX))
        .collect()
}

/// Whether `m` lists a person of `issuer` with the subject prefix `subject`.
pub fn lists(m: &Manifest, issuer: Province, subject: &[u8; SUBJECT_PREFIX_LEN]) -> bool {
    !seats_of(m, issuer, subject).is_empty()
}

/// The case (`issuer`, `subject`) on `m` and every other person on board under `rule`; `None`
/// when `m` does not list the case. A person whose issuer index names no issuer (never in a
/// decoded manifest) is left out.
pub fn fellow_travellers(
    m: &Manifest,
    issuer: Province,
    subject: &[u8; SUBJECT_PREFIX_LEN],
    rule: &ContactRule,
) -> Option<TracedCase> {
    let case_seats = seats_of(m, issuer, subject);
    if case_seats.is_empty() {
        return None;
    }
    let case_crew = case_seats.iter().any(|s| m.people[(*s - 1) as usize].crew);
    let fellows = m
        .people
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let seat = u32::try_from(i + 1).ok()?;
            if case_seats.contains(&seat) {
                return None;
            }
            let issuer = *m.issuers.get(usize::from(p.issuer))?;
            let distance = case_seats.iter().map(|c| c.abs_diff(seat)).min()?;
            let rows_apart = case_seats
                .iter()
                .map(|c| rule.row(*c).abs_diff(rule.row(seat)))
                .min()?;
            let contact = rule.whole_vehicle || p.crew || case_crew || rows_apart <= rule.rows;
            Some(Fellow {
                issuer,
                subject_prefix: p.subject,
                cti_prefix: p.cti,
                seat,
                crew: p.crew,
                distance,
                rows_apart,
                contact,
            })
        })
        .collect();
    Some(TracedCase {
        case_seats,
        case_crew,
        fellows,
    })
}

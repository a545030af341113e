//! Deterministic calendar arithmetic for the generator.
//!
//! Every date is an offset in days from 2023-01-01, so the population never
//! reads the system clock and regenerating it years later yields the same bytes.

use time::{Date, Duration, macros::date};

/// First day a generated event may fall on.
const EPOCH: Date = date!(2023 - 01 - 01);
/// Number of days from 2023-01-01 to 2026-06-30 inclusive.
pub(crate) const SPAN_DAYS: u64 = 1277;

/// A day inside the generated window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Day(u64);

impl Day {
    /// A day `offset` days after 2023-01-01, clamped to the window.
    pub(crate) fn from_offset(offset: u64) -> Self {
        Self(offset.min(SPAN_DAYS - 1))
    }

    /// This day moved forward, clamped to the window.
    pub(crate) fn plus(self, days: u64) -> Self {
        Self::from_offset(self.0.saturating_add(days))
    }

    fn date(self) -> Date {
        i64::try_from(self.0)
            .ok()
            .and_then(|d| EPOCH.checked_add(Duration::days(d)))
            .unwrap_or(EPOCH)
    }

    /// FHIR `date`: `2024-03-05`.
    pub(crate) fn date_string(self) -> String {
        ymd(self.date())
    }

    /// FHIR `dateTime` with a time of day given in minutes after midnight UTC.
    pub(crate) fn at(self, minute_of_day: u64) -> String {
        let minute = minute_of_day % (24 * 60);
        format!(
            "{}T{:02}:{:02}:00Z",
            self.date_string(),
            minute / 60,
            minute % 60
        )
    }

    /// FHIR `instant` for `meta.lastUpdated`: the end of the working day the
    /// record was made, which is never before the record's clinical date.
    pub(crate) fn last_updated(self) -> String {
        self.at(18 * 60)
    }
}

/// A birth date (outside the event window, so not a [`Day`]).
pub(crate) fn birth_date(year: u64, month: u64, day: u64) -> String {
    format!(
        "{year:04}-{:02}-{:02}",
        month.clamp(1, 12),
        day.clamp(1, 28)
    )
}

fn ymd(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds() {
        assert_eq!(Day::from_offset(0).date_string(), "2023-01-01");
        assert_eq!(Day::from_offset(SPAN_DAYS - 1).date_string(), "2026-06-30");
        assert_eq!(Day::from_offset(u64::MAX).date_string(), "2026-06-30");
        assert_eq!(Day::from_offset(59).at(9 * 60 + 30), "2023-03-01T09:30:00Z");
        assert_eq!(birth_date(1970, 13, 31), "1970-12-28");
    }
}

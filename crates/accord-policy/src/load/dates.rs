//! TOML dates in agreements → instants.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

#[derive(Clone, Copy)]
pub(crate) enum Boundary {
    Start,
    End,
}

/// Converts a TOML date or offset date-time to an instant. A bare date means
/// the start of that day (UTC) for `effective` and the end of that day for
/// `expires`, which is how people read "effective 2026-01-01, expires
/// 2026-12-31". A date-time without an offset is refused: its instant would
/// depend on where the gateway runs.
pub(crate) fn to_instant(
    value: &toml::value::Datetime,
    boundary: Boundary,
) -> Result<OffsetDateTime, String> {
    let date = value
        .date
        .ok_or_else(|| "give a date (2026-01-31) or a date-time with offset".to_owned())?;
    let month = Month::try_from(date.month).map_err(|e| format!("`{value}`: {e}"))?;
    let day = Date::from_calendar_date(i32::from(date.year), month, date.day)
        .map_err(|e| format!("`{value}` is not a calendar date: {e}"))?;
    match (value.time, value.offset) {
        (None, _) => {
            let start = PrimitiveDateTime::new(day, Time::MIDNIGHT).assume_utc();
            Ok(match boundary {
                Boundary::Start => start,
                Boundary::End => start + time::Duration::DAY,
            })
        }
        (Some(_), None) => Err(format!(
            "`{value}` has no time zone offset; add one (e.g. `Z` for UTC)"
        )),
        (Some(t), Some(offset)) => {
            let time = Time::from_hms_nano(
                t.hour,
                t.minute,
                t.second.unwrap_or(0),
                t.nanosecond.unwrap_or(0),
            )
            .map_err(|e| e.to_string())?;
            let minutes = match offset {
                toml::value::Offset::Z => 0,
                toml::value::Offset::Custom { minutes } => minutes,
            };
            let offset = UtcOffset::from_whole_seconds(i32::from(minutes) * 60)
                .map_err(|e| e.to_string())?;
            Ok(PrimitiveDateTime::new(day, time).assume_offset(offset))
        }
    }
}

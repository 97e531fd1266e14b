//! Entry times: UTC, RFC 3339 with exactly nine fractional digits and a `Z`
//! (`2025-03-01T14:07:09.123456789Z`, always 30 characters), so that each
//! instant has one spelling and log lines sort by time as text.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Length of every timestamp.
const LEN: usize = 30;

/// The current time.
pub(crate) fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// `at` in the log's form (converted to UTC).
pub(crate) fn format(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        at.year().clamp(0, 9999),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.nanosecond()
    )
}

/// Parses a timestamp in exactly the log's form.
///
/// # Errors
/// A sentence saying what was expected.
pub(crate) fn parse(text: &str) -> Result<OffsetDateTime, String> {
    let bad = || {
        format!(
            "expected a UTC time like 2025-03-01T14:07:09.123456789Z ({LEN} characters), \
             got {} characters",
            text.chars().count()
        )
    };
    let b = text.as_bytes();
    if b.len() != LEN
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[29] != b'Z'
    {
        return Err(bad());
    }
    let number = |from: usize, to: usize| -> Result<u32, String> {
        let digits = &b[from..to];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(digits
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let year = i32::try_from(number(0, 4)?).map_err(|_| bad())?;
    let month = u8::try_from(number(5, 7)?).map_err(|_| bad())?;
    let day = u8::try_from(number(8, 10)?).map_err(|_| bad())?;
    let hour = u8::try_from(number(11, 13)?).map_err(|_| bad())?;
    let minute = u8::try_from(number(14, 16)?).map_err(|_| bad())?;
    let second = u8::try_from(number(17, 19)?).map_err(|_| bad())?;
    let nanos = number(20, 29)?;
    let invalid = |e: time::error::ComponentRange| format!("not a valid time: {e}");
    let month = Month::try_from(month).map_err(invalid)?;
    let date = Date::from_calendar_date(year, month, day).map_err(invalid)?;
    let clock = Time::from_hms_nano(hour, minute, second, nanos).map_err(invalid)?;
    Ok(PrimitiveDateTime::new(date, clock).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() -> Result<(), String> {
        let text = now();
        assert_eq!(text.len(), LEN);
        assert_eq!(format(parse(&text)?), text);
        let at = parse("2025-03-01T14:07:09.000000001Z")?;
        assert_eq!(at.nanosecond(), 1);
        assert_eq!(at.unix_timestamp(), 1_740_838_029);
        Ok(())
    }

    #[test]
    fn rejects_other_spellings() {
        for text in [
            "2025-03-01T14:07:09.123456789z",
            "2025-03-01T14:07:09.123456789+00:00",
            "2025-03-01T14:07:09.12345678Z",
            "2025-03-01 14:07:09.123456789Z",
            "2025-02-30T14:07:09.123456789Z",
            "2025-03-01T24:07:09.123456789Z",
            "2025-03-01T14:07:09.1234567\u{e9}Z",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}

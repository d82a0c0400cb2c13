//! Just enough RFC 3339 date-time parsing to order instants: a date-time becomes UTC seconds and nanoseconds.

/// A point in time as seconds since the Unix epoch plus nanoseconds, comparable as a tuple.
pub(crate) type Instant = (i64, u32);

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn digits(&mut self, count: usize) -> Option<i64> {
        let mut value = 0i64;
        for _ in 0..count {
            let byte = self.peek().filter(u8::is_ascii_digit)?;
            value = value * 10 + i64::from(byte - b'0');
            self.pos += 1;
        }
        Some(value)
    }

    fn eat(&mut self, wanted: &[u8]) -> Option<u8> {
        let byte = self.peek().filter(|b| wanted.contains(b))?;
        self.pos += 1;
        Some(byte)
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's days_from_civil).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DD[Thh:mm:ss[.frac][Z|±hh:mm]]` (a missing offset is taken as UTC) into an [`Instant`].
pub(crate) fn parse_instant(text: &str) -> Option<Instant> {
    let mut cur = Cursor { bytes: text.trim().as_bytes(), pos: 0 };
    let year = cur.digits(4)?;
    cur.eat(b"-")?;
    let month = cur.digits(2)?;
    cur.eat(b"-")?;
    let day = cur.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    let mut nanos = 0u32;
    if cur.peek().is_none() {
        return Some((seconds, nanos));
    }
    cur.eat(b"Tt ")?;
    let hour = cur.digits(2)?;
    cur.eat(b":")?;
    let minute = cur.digits(2)?;
    cur.eat(b":")?;
    let second = cur.digits(2)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    seconds += hour * 3600 + minute * 60 + second;
    if cur.peek() == Some(b'.') {
        cur.pos += 1;
        let mut scale = 100_000_000u32;
        let mut any = false;
        while let Some(byte) = cur.peek().filter(u8::is_ascii_digit) {
            nanos += u32::from(byte - b'0') * scale;
            scale /= 10;
            any = true;
            cur.pos += 1;
        }
        if !any {
            return None;
        }
    }
    match cur.peek() {
        None => {}
        Some(b'Z' | b'z') => cur.pos += 1,
        Some(sign @ (b'+' | b'-')) => {
            cur.pos += 1;
            let off_hour = cur.digits(2)?;
            if cur.peek() == Some(b':') {
                cur.pos += 1;
            }
            let off_minute = cur.digits(2)?;
            if off_hour > 23 || off_minute > 59 {
                return None;
            }
            let offset = off_hour * 3600 + off_minute * 60;
            seconds += if sign == b'+' { -offset } else { offset };
        }
        Some(_) => return None,
    }
    if cur.peek().is_some() {
        return None;
    }
    Some((seconds, nanos))
}

/// [`parse_instant`] in microseconds since the Unix epoch (the precision
/// the store keeps): the same date-times a filter accepts in memory, for
/// one compiled to SQL.
pub fn instant_micros(text: &str) -> Option<i64> {
    let (seconds, nanos) = parse_instant(text)?;
    seconds.checked_mul(1_000_000)?.checked_add(i64::from(nanos / 1_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_zero() {
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Some((0, 0)));
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        assert_eq!(parse_instant("2011-05-13T06:42:34+02:00"), parse_instant("2011-05-13T04:42:34Z"));
        assert_eq!(parse_instant("2011-05-12T23:00:00-05:00"), parse_instant("2011-05-13T04:00:00Z"));
    }

    #[test]
    fn fractions_order_within_a_second() {
        let a = parse_instant("2011-05-13T04:42:34.1Z").unwrap();
        let b = parse_instant("2011-05-13T04:42:34.123Z").unwrap();
        assert!(a < b);
        assert_eq!(a.1, 100_000_000);
    }

    #[test]
    fn known_instant_matches_unix_time() {
        assert_eq!(parse_instant("2011-08-01T21:32:44.882Z"), Some((1_312_234_364, 882_000_000)));
        assert_eq!(parse_instant("2000-02-29"), Some((951_782_400, 0)));
    }

    #[test]
    fn missing_offset_is_utc() {
        assert_eq!(parse_instant("2025-03-25T16:17:00"), parse_instant("2025-03-25T16:17:00Z"));
    }

    #[test]
    fn malformed_date_times_are_rejected() {
        for bad in [
            "",
            "2011",
            "2011-13-01",
            "2011-02-30",
            "2011-05-13T25:00:00Z",
            "2011-05-13T04:42:34+0",
            "2011-05-13T04:42:34.Z",
            "2011-05-13T04:42:34Zjunk",
            "yesterday",
            "2011-05-13X04:42:34Z",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }
}

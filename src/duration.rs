//! Durations as Kubernetes writes them: Go's `time.Duration` syntax, which is what a
//! `metav1.Duration` such as `cacheDuration` holds on the wire (`"1h0m0s"`, `"25m0s"`, `"45s"`).
//!
//! `format` prints whole seconds exactly as Go's `Duration.String` does; `parse` reads the part of
//! Go's `time.ParseDuration` syntax that a person writes in a config file for a cache lifetime:
//! whole numbers of hours, minutes and seconds (`1h`, `90m`, `1h30m`, `45s`, `0`).

/// The longest cache duration accepted from the config file: a year, which is far more than any
/// credential should be cached for and far less than any overflow.
pub const MAX_SECONDS: u64 = 366 * 24 * 3600;

/// Formats whole seconds as Go's `time.Duration.String` does: `0s`, `45s`, `25m0s`, `1h0m0s`,
/// `72h3m4s` (leading zero units left out, trailing ones kept).
pub fn format(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Parses `1h`, `30m`, `1h30m`, `90s`, `1h0m0s`, `0` into seconds. Fractions, signs, the
/// sub-second units and anything above [`MAX_SECONDS`] are refused with a message that says
/// what is accepted.
pub fn parse(text: &str) -> Result<u64, String> {
    let refuse = || {
        "not a duration: use whole hours, minutes and seconds in Go syntax, such as `1h`, `30m` or `1h30m0s`".to_owned()
    };
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err(refuse());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 || digits > 9 {
            return Err(refuse());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| refuse())?;
        rest = &rest[digits..];
        let unit = match rest.as_bytes().first() {
            Some(b'h') => 3600,
            // `ms` is a unit of its own in Go; refuse it rather than read it as minutes.
            Some(b'm') if !rest[1..].starts_with('s') => 60,
            Some(b's') => 1,
            _ => return Err(refuse()),
        };
        rest = &rest[1..];
        total = number.checked_mul(unit).and_then(|n| total.checked_add(n)).ok_or_else(refuse)?;
    }
    if total > MAX_SECONDS {
        return Err("longer than a year; a cache duration that long outlives any credential".to_owned());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_print_as_go_prints_a_duration() {
        let cases = [
            (0, "0s"),
            (1, "1s"),
            (45, "45s"),
            (60, "1m0s"),
            (1500, "25m0s"),
            (1799, "29m59s"),
            (3600, "1h0m0s"),
            (5400, "1h30m0s"),
            (3661, "1h1m1s"),
            (259_384, "72h3m4s"),
        ];
        for (seconds, text) in cases {
            assert_eq!(format(seconds), text, "{seconds}");
        }
    }

    #[test]
    fn config_durations_parse_in_go_syntax() {
        let cases = [
            ("0", 0),
            ("0s", 0),
            ("45s", 45),
            ("30m", 1800),
            ("1h", 3600),
            ("1h30m", 5400),
            ("1h0m0s", 3600),
            ("90m", 5400),
            ("2h3m4s", 7384),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse(text), Ok(seconds), "{text}");
        }
    }

    #[test]
    fn what_go_would_not_read_or_a_cache_should_not_hold_is_refused() {
        for text in [
            "",
            "1",
            "h",
            "1x",
            "-1h",
            "+1h",
            "1.5h",
            "10ms",
            "1 h",
            " 1h",
            "1h ",
            "1H",
            "9999999999s",
            "367d",
            "8785h",
        ] {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn every_formatted_duration_parses_back() {
        for seconds in [0, 1, 59, 60, 61, 3599, 3600, 3601, 86_400, 90_061] {
            assert_eq!(parse(&format(seconds)), Ok(seconds));
        }
    }
}

//! Durations on the command line: humantime (`90s`, `2m`, `1m30s`) or bare seconds (`90`), the
//! latter for compatibility with docker-reroll 1.0 and docker-rollout. Humantime also reads what
//! Go's `time.Duration` prints, as Compose does for `deploy.update_config` (`1.5s`, `1h0m0s`).

use std::time::Duration;

pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Ok(Duration::from_secs_f64(seconds));
    }
    humantime::parse_duration(text)
        .map_err(|_| format!("'{text}' is not a duration: write it like 30s, 2m, 1m30s or 500ms"))
}

/// A duration as people read it in a log: `1.25s`, `2m5s`.
pub fn show(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.2}s")
    } else {
        let whole = duration.as_secs();
        format!("{}m{}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_humantime_go_durations_and_bare_seconds() {
        let cases = [
            ("90", 90_000),
            ("90s", 90_000),
            ("2m", 120_000),
            ("1m30s", 90_000),
            ("500ms", 500),
            ("1.5", 1_500),
            ("0", 0),
            // As Go prints them (Compose's deploy.update_config).
            ("1.5s", 1_500),
            ("1m0.5s", 60_500),
            ("1h0m0s", 3_600_000),
            ("0s", 0),
        ];
        for (text, millis) in cases {
            assert_eq!(parse(text), Ok(Duration::from_millis(millis)), "{text}");
        }
        assert_eq!(parse("2µs"), Ok(Duration::from_micros(2)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in ["", "soon", "-3", "10 parsecs", "NaN"] {
            let error = parse(text).unwrap_err();
            assert!(error.contains("is not a duration"), "{text}: {error}");
        }
    }

    #[test]
    fn shows_short_and_long_durations() {
        assert_eq!(show(Duration::from_millis(1250)), "1.25s");
        assert_eq!(show(Duration::from_secs(125)), "2m5s");
    }
}

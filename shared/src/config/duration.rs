//! Go's `time.Duration` text form (`90s`, `1m30s`, `500ms`), which Kubernetes'
//! `metav1.Duration` fields use and MetalLB manifests carry.

use std::time::Duration;

/// Parse a Go duration string. Negative durations are refused: no FerroLB timer can be negative.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err(format!("{text:?} is negative"));
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return Err(format!(
                "{text:?} is not a duration: expected a number at {rest:?}"
            ));
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("{text:?} is missing a unit (ns, us, ms, s, m, h)")),
            other => {
                return Err(format!(
                    "{text:?} has unknown unit {other:?} (ns, us, ms, s, m, h)"
                ));
            }
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if frac.contains('.') {
            return Err(format!("{text:?} is not a duration: bad number {num:?}"));
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse()
                .map_err(|_| format!("{text:?}: number too large"))?
        };
        let mut nanos = int
            .checked_mul(unit_nanos)
            .ok_or_else(|| format!("{text:?} is too long"))?;
        let mut scale = unit_nanos;
        for d in frac.bytes().take(18) {
            scale /= 10;
            nanos += u128::from(d - b'0') * scale;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| format!("{text:?} is too long"))?;
        rest = next;
    }
    let secs =
        u64::try_from(total_nanos / 1_000_000_000).map_err(|_| format!("{text:?} is too long"))?;
    Ok(Duration::new(secs, (total_nanos % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse_go_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("2us"), Ok(Duration::from_micros(2)));
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "10",
            "s",
            "-1s",
            "1x",
            "1..2s",
            "1s2",
            "99999999999999999999999999h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad} should fail");
        }
    }
}

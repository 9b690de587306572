//! BGP community values as operators write them: `65000:100` (RFC 1997), `large:1:2:3`
//! (RFC 8092) and the well-known names.

use std::fmt;

/// A parsed community value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Community {
    /// A standard 32-bit community, written `high:low`.
    Standard(u32),
    /// A large community: global administrator, two local data parts.
    Large(u32, u32, u32),
}

/// Well-known standard communities (RFC 1997, RFC 3765, RFC 7999, RFC 8326).
const WELL_KNOWN: &[(&str, u32)] = &[
    ("graceful-shutdown", 0xFFFF_0000),
    ("accept-own", 0xFFFF_0001),
    ("blackhole", 0xFFFF_029A),
    ("no-export", 0xFFFF_FF01),
    ("no-advertise", 0xFFFF_FF02),
    ("no-export-subconfed", 0xFFFF_FF03),
    ("no-peer", 0xFFFF_FF04),
];

impl Community {
    /// Parse one value. Returns `Err` with the reason; aliases are resolved by the caller.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("large:") {
            let parts: Vec<&str> = rest.split(':').collect();
            let [a, b, c] = parts.as_slice() else {
                return Err(format!(
                    "{text:?}: a large community is large:GLOBAL:LOCAL1:LOCAL2"
                ));
            };
            let num = |p: &str| {
                p.parse::<u32>()
                    .map_err(|_| format!("{text:?}: {p:?} is not a number from 0 to 4294967295"))
            };
            return Ok(Community::Large(num(a)?, num(b)?, num(c)?));
        }
        let lower = text.to_ascii_lowercase().replace('_', "-");
        if let Some((_, v)) = WELL_KNOWN.iter().find(|(n, _)| *n == lower) {
            return Ok(Community::Standard(*v));
        }
        let Some((hi, lo)) = text.split_once(':') else {
            return Err(format!(
                "{text:?}: a community is HIGH:LOW (each 0-65535), large:A:B:C, or a well-known name"
            ));
        };
        let num = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("{text:?}: {p:?} is not a number from 0 to 65535"))
        };
        Ok(Community::Standard(
            (u32::from(num(hi)?) << 16) | u32::from(num(lo)?),
        ))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Community::Standard(v) => write!(f, "{}:{}", v >> 16, v & 0xFFFF),
            Community::Large(a, b, c) => write!(f, "large:{a}:{b}:{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            Community::parse("65000:100"),
            Ok(Community::Standard(65000 << 16 | 100))
        );
        assert_eq!(
            Community::parse("large:4200000000:1:2"),
            Ok(Community::Large(4_200_000_000, 1, 2))
        );
        assert_eq!(
            Community::parse("no-export"),
            Ok(Community::Standard(0xFFFF_FF01))
        );
        assert_eq!(
            Community::parse("NO_ADVERTISE"),
            Ok(Community::Standard(0xFFFF_FF02))
        );
        assert_eq!(
            Community::parse("65000:100").unwrap().to_string(),
            "65000:100"
        );
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "65536:1",
            "1:65536",
            "a:b",
            "1:2:3",
            "large:1:2",
            "large:1:2:x",
            "nope",
        ] {
            assert!(Community::parse(bad).is_err(), "{bad}");
        }
    }
}

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A transport protocol that IANA assigns ports for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
    Dccp,
}

impl Proto {
    pub const ALL: [Proto; 4] = [Proto::Tcp, Proto::Udp, Proto::Sctp, Proto::Dccp];

    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Dccp => "dccp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a word of the vocabulary could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown protocol '{0}' (expected tcp, udp, sctp or dccp)")]
    Proto(String),
    #[error("invalid port '{0}' (expected a number from 0 to 65535)")]
    Port(String),
    #[error("invalid port range '{0}': the first port is greater than the last")]
    Reversed(String),
}

impl FromStr for Proto {
    type Err = ParseError;

    /// Protocol names are matched without regard to case (`TCP`, `tcp`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            "dccp" => Ok(Proto::Dccp),
            _ => Err(ParseError::Proto(s.to_string())),
        }
    }
}

/// An inclusive range of ports; a single port is a range whose ends are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// The whole port space, 0-65535.
    pub const ALL: PortRange = PortRange {
        first: 0,
        last: u16::MAX,
    };

    pub fn single(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// A range from `first` to `last`, or `None` when `first > last`.
    pub fn new(first: u16, last: u16) -> Option<Self> {
        (first <= last).then_some(PortRange { first, last })
    }

    pub fn contains(&self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }

    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    pub fn is_single(&self) -> bool {
        self.first == self.last
    }

    /// How many ports the range holds (1 to 65536; a range is never empty).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + use<> {
        self.first..=self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl FromStr for PortRange {
    type Err = ParseError;

    /// Parses `443` or `137-139`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let port = |t: &str| {
            let t = t.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::Port(s.to_string()));
            }
            t.parse::<u16>()
                .map_err(|_| ParseError::Port(s.to_string()))
        };
        match s.split_once('-') {
            None => Ok(PortRange::single(port(s)?)),
            Some((a, b)) => PortRange::new(port(a)?, port(b)?)
                .ok_or_else(|| ParseError::Reversed(s.to_string())),
        }
    }
}

/// IANA's three ranges of the port space (RFC 6335, section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// 0-1023, the "system" ports.
    WellKnown,
    /// 1024-49151, the "user" ports.
    Registered,
    /// 49152-65535, the "dynamic/private" ports.
    Dynamic,
}

impl Category {
    /// The category a port falls in.
    ///
    /// ```
    /// use portolan_registry::Category;
    /// assert_eq!(Category::of(443), Category::WellKnown);
    /// assert_eq!(Category::of(8080), Category::Registered);
    /// assert_eq!(Category::of(50000), Category::Dynamic);
    /// ```
    pub fn of(port: u16) -> Category {
        match port {
            0..=1023 => Category::WellKnown,
            1024..=49151 => Category::Registered,
            _ => Category::Dynamic,
        }
    }

    /// The ports this category covers.
    pub fn range(self) -> PortRange {
        match self {
            Category::WellKnown => PortRange {
                first: 0,
                last: 1023,
            },
            Category::Registered => PortRange {
                first: 1024,
                last: 49151,
            },
            Category::Dynamic => PortRange {
                first: 49152,
                last: 65535,
            },
        }
    }

    /// The stable identifier used in JSON: `well-known`, `registered`, `dynamic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::WellKnown => "well-known",
            Category::Registered => "registered",
            Category::Dynamic => "dynamic",
        }
    }

    /// What the category means, in a sentence, for `explain`.
    pub fn meaning(self) -> &'static str {
        match self {
            Category::WellKnown => {
                "ports 0-1023, IANA's \"system\" ports, assigned through the IETF process; \
                 on Unix only root (or CAP_NET_BIND_SERVICE) may listen on them"
            }
            Category::Registered => {
                "ports 1024-49151, IANA's \"user\" ports, registered by IANA on request; \
                 any user may listen on them"
            }
            Category::Dynamic => {
                "ports 49152-65535, IANA's \"dynamic/private\" ports, never assigned: \
                 the system hands one out when a session is established and takes it back \
                 when it ends (Linux's ephemeral range, net.ipv4.ip_local_port_range, \
                 is 32768-60999 by default)"
            }
        }
    }

    /// IANA's other name for the category (RFC 6335).
    pub fn iana_name(self) -> &'static str {
        match self {
            Category::WellKnown => "system",
            Category::Registered => "user",
            Category::Dynamic => "dynamic/private",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_boundaries() {
        assert_eq!(Category::of(0), Category::WellKnown);
        assert_eq!(Category::of(1023), Category::WellKnown);
        assert_eq!(Category::of(1024), Category::Registered);
        assert_eq!(Category::of(49151), Category::Registered);
        assert_eq!(Category::of(49152), Category::Dynamic);
        assert_eq!(Category::of(65535), Category::Dynamic);
    }

    #[test]
    fn port_range_parse() {
        assert_eq!("443".parse::<PortRange>(), Ok(PortRange::single(443)));
        assert_eq!(
            "137-139".parse::<PortRange>(),
            Ok(PortRange {
                first: 137,
                last: 139
            })
        );
        assert!(matches!(
            "139-137".parse::<PortRange>(),
            Err(ParseError::Reversed(_))
        ));
        assert!(matches!(
            "65536".parse::<PortRange>(),
            Err(ParseError::Port(_))
        ));
        assert!(matches!(
            "+1".parse::<PortRange>(),
            Err(ParseError::Port(_))
        ));
        assert!(matches!("".parse::<PortRange>(), Err(ParseError::Port(_))));
        assert_eq!(PortRange::ALL.len(), 65536);
    }

    #[test]
    fn proto_parse() {
        assert_eq!("TCP".parse::<Proto>(), Ok(Proto::Tcp));
        assert!("icmp".parse::<Proto>().is_err());
    }
}

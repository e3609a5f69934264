//! A port's state and why, in nmap's spelling everywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A port's state, as nmap defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortState {
    Open,
    Closed,
    Filtered,
    /// UDP (or a silent TCP probe) with no answer: open or filtered, the scan cannot tell.
    #[serde(rename = "open|filtered", alias = "open-filtered")]
    OpenFiltered,
}

impl PortState {
    pub const ALL: [PortState; 4] = [
        PortState::Open,
        PortState::Closed,
        PortState::Filtered,
        PortState::OpenFiltered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::OpenFiltered => "open|filtered",
        }
    }

    /// True when something may answer there (`open`, or `open|filtered`).
    pub fn may_be_open(self) -> bool {
        matches!(self, PortState::Open | PortState::OpenFiltered)
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PortState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open-filtered" => Ok(PortState::OpenFiltered),
            _ => PortState::ALL
                .into_iter()
                .find(|p| p.as_str() == s)
                .ok_or_else(|| format!("unknown port state '{s}'")),
        }
    }
}

/// Why a port (or host) got its state, in nmap's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// A SYN-ACK came back (or the connection was made).
    SynAck,
    /// A RST came back.
    Reset,
    /// `connect()` was refused.
    ConnRefused,
    /// Nothing came back, after every retry.
    NoResponse,
    HostUnreach,
    NetUnreach,
    AdminProhibited,
    PortUnreach,
    ProtoUnreach,
    TimeExceeded,
    /// A UDP datagram came back.
    UdpResponse,
    /// The host answered an ICMP echo.
    EchoReply,
    /// Host discovery was skipped (`-Pn`).
    UserSet,
}

impl Reason {
    pub const ALL: [Reason; 13] = [
        Reason::SynAck,
        Reason::Reset,
        Reason::ConnRefused,
        Reason::NoResponse,
        Reason::HostUnreach,
        Reason::NetUnreach,
        Reason::AdminProhibited,
        Reason::PortUnreach,
        Reason::ProtoUnreach,
        Reason::TimeExceeded,
        Reason::UdpResponse,
        Reason::EchoReply,
        Reason::UserSet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SynAck => "syn-ack",
            Reason::Reset => "reset",
            Reason::ConnRefused => "conn-refused",
            Reason::NoResponse => "no-response",
            Reason::HostUnreach => "host-unreach",
            Reason::NetUnreach => "net-unreach",
            Reason::AdminProhibited => "admin-prohibited",
            Reason::PortUnreach => "port-unreach",
            Reason::ProtoUnreach => "proto-unreach",
            Reason::TimeExceeded => "time-exceeded",
            Reason::UdpResponse => "udp-response",
            Reason::EchoReply => "echo-reply",
            Reason::UserSet => "user-set",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown reason '{s}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelled_as_nmap_and_read_back() {
        for s in PortState::ALL {
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(j, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<PortState>(&j).unwrap(), s);
            assert_eq!(s.as_str().parse::<PortState>().unwrap(), s);
        }
        assert_eq!(
            serde_json::from_str::<PortState>("\"open-filtered\"").unwrap(),
            PortState::OpenFiltered
        );
        for r in Reason::ALL {
            let j = serde_json::to_string(&r).unwrap();
            assert_eq!(j, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<Reason>(&j).unwrap(), r);
        }
    }
}

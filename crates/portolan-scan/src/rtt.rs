//! Round-trip time estimation as TCP does it (RFC 6298): a smoothed RTT and its variance,
//! and a retransmission timeout derived from them.

use std::time::Duration;

/// Bounds on the timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttBounds {
    /// The timeout before any sample.
    pub initial: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl Default for RttBounds {
    fn default() -> Self {
        RttBounds {
            initial: Duration::from_millis(1000),
            min: Duration::from_millis(50),
            max: Duration::from_millis(3000),
        }
    }
}

/// Per-host RTT state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttEstimator {
    srtt: Option<f64>,
    rttvar: f64,
    bounds: RttBounds,
}

impl RttEstimator {
    pub fn new(bounds: RttBounds) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: 0.0,
            bounds,
        }
    }

    /// Adds one sample (only from probes sent once, as Karn's algorithm says).
    pub fn sample(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64();
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2.0;
            }
            Some(s) => {
                self.rttvar = 0.75 * self.rttvar + 0.25 * (s - r).abs();
                self.srtt = Some(0.875 * s + 0.125 * r);
            }
        }
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt.map(Duration::from_secs_f64)
    }

    pub fn rttvar(&self) -> Duration {
        Duration::from_secs_f64(self.rttvar)
    }

    /// The estimate so far, if there was any sample.
    pub fn timing(&self) -> Option<crate::HostTiming> {
        Some(crate::HostTiming {
            srtt: self.srtt()?,
            rttvar: self.rttvar(),
            timeout: self.timeout(),
        })
    }

    /// The timeout: SRTT + 4 RTTVAR, within the bounds.
    pub fn timeout(&self) -> Duration {
        match self.srtt {
            None => self.bounds.initial.clamp(self.bounds.min, self.bounds.max),
            Some(s) => Duration::from_secs_f64(s + 4.0 * self.rttvar)
                .clamp(self.bounds.min, self.bounds.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_rfc6298() {
        let b = RttBounds {
            initial: Duration::from_secs(1),
            min: Duration::from_millis(1),
            max: Duration::from_secs(10),
        };
        let mut e = RttEstimator::new(b);
        assert_eq!(e.timeout(), Duration::from_secs(1));
        e.sample(Duration::from_millis(100));
        // srtt 100ms, rttvar 50ms -> 300ms
        assert_eq!(e.timeout().as_millis(), 300);
        e.sample(Duration::from_millis(100));
        // rttvar 37.5ms, srtt 100ms -> 250ms
        assert_eq!(e.timeout().as_millis(), 250);
        for _ in 0..100 {
            e.sample(Duration::from_millis(100));
        }
        assert!(e.timeout() < Duration::from_millis(102));
    }

    #[test]
    fn clamps() {
        let mut e = RttEstimator::new(RttBounds::default());
        e.sample(Duration::from_micros(20));
        assert_eq!(e.timeout(), RttBounds::default().min);
        e.sample(Duration::from_secs(100));
        assert_eq!(e.timeout(), RttBounds::default().max);
    }
}

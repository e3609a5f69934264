//! Send pacing (a token bucket) and the congestion controller that tells random loss from
//! congestion.
//!
//! The controller watches transmissions in windows of [`WINDOW`] probes. When a
//! window's timeout has passed, the share of its probes that were answered is compared
//! with the best share seen so far. Random loss lowers every window alike, so nothing
//! changes. A window far below the best (under half) makes it cut the rate to about what
//! got through (at least by half), and then it checks: if the windows sent at the lower rate recover, it was congestion and the rate
//! stays low (growing back slowly); if they do not, the drop was the target's doing (a
//! filtered range, a host gone quiet), so the old rate comes back and the baseline moves.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The pace of sending: each one-second window counted from the pacer's start hands out
/// at most the rate (the fraction a window cannot hand out carries to the next, so a rate
/// of 2.5 gives 2, 3, 2, 3 ...), on a schedule — by a time `x` into the window, the rate
/// times `x` and a lead of [`lead`] — so that a late wake-up finds what the schedule
/// gave meanwhile and catches up at once, within the same window. A cap on every sliding
/// second (the rate and its [`slack`]) bounds the catch-up where two windows meet.
#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    lead: f64,
    /// The schedule: by `anchor + t`, `anchor_n + rate * t` (and the lead).
    anchor: Instant,
    anchor_n: f64,
    /// The current one-second window: its start, what it may hand out, and what it did.
    window: Instant,
    allow: f64,
    in_window: u64,
    /// What was handed out in the last second (grants within [`MERGE`] of a group's first
    /// as one group, timed by its last), and its sum.
    recent: VecDeque<Grant>,
    in_last_second: u64,
}

/// A rate this high is no limit (the connect engine without `--rate`): not counted.
const UNCOUNTED: f64 = 1e8;

const SECOND: Duration = Duration::from_secs(1);

/// How far the schedule may run ahead: 31 ms of sending (what goes at once at the start,
/// and what goes early to keep batches whole).
fn lead(rate: f64) -> f64 {
    (rate / 32.0).max(1.0)
}

/// What a sliding second may carry past the rate: a thirty-second of it. A sliding
/// second that straddles two windows holds a catch-up of the first and the lead of the
/// next. (More slack makes up more, and takes the sliding seconds further past the
/// rate.) (An exact cap on sliding seconds would carry every late wake-up on
/// for good: each probe could go only a second after the one a rate's count before it.)
pub fn slack(rate: f64) -> u64 {
    (rate / 32.0).ceil().max(1.0) as u64
}

/// Grants this close together are kept as one (bounds `recent` to 4,000 a second).
const MERGE: Duration = Duration::from_micros(250);

#[derive(Debug, Clone, Copy)]
struct Grant {
    first: Instant,
    last: Instant,
    n: u64,
}

impl Pacer {
    pub fn new(rate: f64) -> Pacer {
        Pacer::new_at(rate, Instant::now())
    }

    fn new_at(rate: f64, now: Instant) -> Pacer {
        Pacer {
            rate,
            lead: lead(rate),
            anchor: now,
            anchor_n: 0.0,
            window: now,
            allow: rate,
            in_window: 0,
            recent: VecDeque::new(),
            in_last_second: 0,
        }
    }

    fn counted(&self) -> bool {
        self.rate < UNCOUNTED
    }

    /// Moves the window on to the one holding `now`, and the sliding second.
    fn roll(&mut self, now: Instant) {
        while let Some(g) = self.recent.front() {
            if g.last + SECOND > now {
                break;
            }
            self.in_last_second -= g.n;
            self.recent.pop_front();
        }
        let gone = now.saturating_duration_since(self.window);
        if gone < SECOND {
            return;
        }
        let whole = gone.as_secs();
        self.window += Duration::from_secs(whole);
        // What the last window could not hand out for being a fraction carries over;
        // unused whole probes do not (they would let a window exceed the rate).
        let carry = if whole == 1 {
            (self.allow - self.in_window as f64).clamp(0.0, 1.0 - 1e-9)
        } else {
            0.0
        };
        self.allow = self.rate + carry;
        self.in_window = 0;
        self.anchor = self.window;
        self.anchor_n = 0.0;
    }

    /// What the window's schedule has given by `now`.
    fn due(&self, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(self.anchor).as_secs_f64();
        (self.anchor_n + dt * self.rate + self.lead).min(self.allow)
    }

    /// What a sliding second may carry.
    fn sliding_cap(&self) -> u64 {
        self.rate.ceil() as u64 + slack(self.rate)
    }

    /// What the current window and the sliding second still allow.
    fn room(&self) -> u64 {
        if !self.counted() {
            return u64::MAX;
        }
        let window = (self.allow.floor() as u64).saturating_sub(self.in_window);
        window.min(self.sliding_cap().saturating_sub(self.in_last_second))
    }

    /// What may go now.
    fn available(&self, now: Instant) -> u64 {
        if !self.counted() {
            return u64::MAX;
        }
        let due = (self.due(now).floor().max(0.0) as u64).saturating_sub(self.in_window);
        due.min(self.room())
    }

    fn hand_out(&mut self, n: usize, now: Instant) -> usize {
        if self.counted() && n > 0 {
            self.in_window += n as u64;
            self.in_last_second += n as u64;
            match self.recent.back_mut() {
                // Timed by its last grant: it leaves the second later, never sooner.
                Some(g) if now.saturating_duration_since(g.first) < MERGE => {
                    g.last = g.last.max(now);
                    g.n += n as u64;
                }
                _ => self.recent.push_back(Grant {
                    first: now,
                    last: now,
                    n: n as u64,
                }),
            }
        }
        n
    }

    /// Gives back `n` of the grant just taken, unsent (a stage that had fewer left).
    pub fn unused(&mut self, n: usize) {
        if !self.counted() {
            return;
        }
        if let Some(g) = self.recent.back_mut() {
            let k = (n as u64).min(g.n);
            g.n -= k;
            self.in_last_second -= k;
            self.in_window = self.in_window.saturating_sub(k);
            if g.n == 0 {
                self.recent.pop_back();
            }
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn set_rate(&mut self, rate: f64) {
        let now = Instant::now();
        self.roll(now);
        let rate = rate.max(1.0);
        let lead = lead(rate);
        // What may go now stays (up to the new lead); the schedule goes on from here at
        // the new rate.
        let ready = (self.due(now) - self.in_window as f64).clamp(0.0, lead);
        self.rate = rate;
        self.lead = lead;
        self.anchor = now;
        self.anchor_n = self.in_window as f64 + ready - lead;
        // The current window holds the lower of the two rates.
        self.allow = self.allow.min(self.rate + 1.0 - 1e-9);
    }

    /// Takes up to `want`; returns how many were granted.
    #[cfg(test)]
    pub fn take(&mut self, want: usize) -> usize {
        self.take_at(want, Instant::now())
    }

    #[cfg(test)]
    fn take_at(&mut self, want: usize, now: Instant) -> usize {
        self.roll(now);
        let n = self.available(now).min(want as u64) as usize;
        self.hand_out(n, now)
    }

    /// What a batch of `want` waits for: `want`, or fewer when that is more than the lead
    /// or than the window and the sliding second have left (0: nothing is left).
    fn need(&self, want: usize) -> u64 {
        let room = self.room();
        if room == 0 {
            return 0;
        }
        (want as u64).min(self.lead as u64).min(room).max(1)
    }

    /// Takes a batch of up to `want`, or none: a batch goes when the schedule has given
    /// it (sending one packet per wake-up would cost a syscall each), and is cut to what
    /// the window has left.
    pub fn take_batch(&mut self, want: usize) -> usize {
        self.take_batch_at(want, Instant::now())
    }

    fn take_batch_at(&mut self, want: usize, now: Instant) -> usize {
        self.roll(now);
        let need = self.need(want);
        let avail = self.available(now);
        if need == 0 || avail < need {
            return 0;
        }
        let n = avail.min(want as u64) as usize;
        self.hand_out(n, now)
    }

    /// How long until a batch of `want` (see [`Pacer::take_batch`]).
    pub fn wait_batch(&self, want: usize) -> Duration {
        self.wait_batch_at(want, Instant::now())
    }

    fn wait_batch_at(&self, want: usize, now: Instant) -> Duration {
        let min = Duration::from_micros(20);
        if !self.counted() {
            return min;
        }
        let next = self.window + SECOND;
        if (self.allow.floor() as u64) <= self.in_window && now < next {
            // The window is spent: until the next one.
            return (next - now).max(min);
        }
        let need = match self.need(want) {
            0 => (want as u64).min(self.lead as u64).max(1),
            n => n,
        };
        // Until the schedule gives it ...
        let short = self.in_window as f64 + need as f64 - self.due(now);
        let mut wait = Duration::from_secs_f64((short / self.rate).max(0.0));
        // ... and enough of the last second's grants have left it.
        let cap = self.sliding_cap();
        let mut left = self.in_last_second;
        for g in &self.recent {
            if left + need <= cap {
                break;
            }
            left -= g.n;
            wait = wait.max((g.last + SECOND).saturating_duration_since(now));
        }
        wait.max(min)
    }
}

/// First transmissions per window.
pub const WINDOW: u32 = 256;

#[derive(Debug, Clone, Copy)]
struct Window {
    first_us: u64,
    last_us: u64,
    sent: u32,
    answered: u32,
    /// Sent after a rate cut that is still being judged.
    after_cut: bool,
}

/// Decides the send rate from how the answered share of each window compares with the
/// best share seen.
#[derive(Debug, Clone)]
pub struct Controller {
    windows: VecDeque<Window>,
    best: f64,
    rate: f64,
    max_rate: f64,
    min_rate: f64,
    /// The rate before a cut still being judged.
    cut_from: Option<f64>,
}

impl Controller {
    pub fn new(max_rate: f64, min_rate: f64) -> Controller {
        Controller {
            windows: VecDeque::new(),
            best: 0.0,
            rate: max_rate,
            max_rate,
            min_rate: min_rate.min(max_rate),
            cut_from: None,
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// What was learned (the rate, the best share answered), without the windows still
    /// waiting for answers: the controller of the next block, whose answers these
    /// windows would never see.
    pub fn carry(&self) -> Controller {
        Controller {
            windows: VecDeque::new(),
            cut_from: None,
            ..*self
        }
    }

    /// Records `n` transmissions at time `us`.
    pub fn sent(&mut self, us: u64, n: u32) {
        let after_cut = self.cut_from.is_some();
        match self.windows.back_mut() {
            Some(w) if w.sent < WINDOW && w.after_cut == after_cut => {
                w.sent += n;
                w.last_us = us;
            }
            _ => self.windows.push_back(Window {
                first_us: us,
                last_us: us,
                sent: n,
                answered: 0,
                after_cut,
            }),
        }
    }

    /// Records an answer to a probe last sent at `sent_us`.
    pub fn answered(&mut self, sent_us: u64) {
        let i = self.windows.partition_point(|w| w.first_us <= sent_us);
        if i > 0
            && let Some(w) = self.windows.get_mut(i - 1)
        {
            w.answered += 1;
        }
    }

    /// Judges the windows whose timeout has passed at `now_us`; returns the new rate if it
    /// changed.
    pub fn judge(&mut self, now_us: u64, timeout: Duration) -> Option<f64> {
        let before = self.rate;
        let to = timeout.as_micros() as u64;
        while let Some(w) = self.windows.front().copied() {
            if w.last_us + to > now_us {
                break;
            }
            self.windows.pop_front();
            if w.sent < WINDOW / 4 {
                continue;
            }
            let f = f64::from(w.answered) / f64::from(w.sent);
            self.step(f, w.after_cut);
        }
        (self.rate != before).then_some(self.rate)
    }

    fn step(&mut self, f: f64, after_cut: bool) {
        let low = self.best >= 0.1 && f < 0.5 * self.best;
        match self.cut_from {
            None => {
                if low && self.rate > self.min_rate {
                    // What got through is about what the path carries: cut to a bit
                    // above it (at least in half), then see whether that helps.
                    self.cut_from = Some(self.rate);
                    // Never below the floor, even where half the rate is (`clamp`
                    // panics when its bounds cross).
                    let carried = self.rate * f / self.best * 1.25;
                    self.rate = carried.min(self.rate / 2.0).max(self.min_rate);
                } else if !low {
                    self.best = self.best.max(f);
                    if f >= 0.8 * self.best {
                        self.rate = (self.rate * 1.1).min(self.max_rate);
                    }
                }
            }
            Some(prev) if after_cut => {
                self.cut_from = None;
                if low {
                    // Slower did not help: not congestion. Back to the old rate, and
                    // what the target answers now is the new normal.
                    self.rate = prev;
                    self.best = f;
                }
                // Otherwise it was congestion: keep the lower rate.
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(c: &mut Controller, t: &mut u64, share: f64) -> f64 {
        let n = WINDOW;
        let answered = (f64::from(n) * share).round() as u32;
        let start = *t;
        for i in 0..n {
            c.sent(*t, 1);
            if i < answered {
                c.answered(*t);
            }
            *t += 10;
        }
        let _ = start;
        *t += 1_000_000;
        c.judge(*t, Duration::from_millis(100));
        c.rate()
    }

    #[test]
    fn random_loss_keeps_the_rate() {
        let mut c = Controller::new(100_000.0, 100.0);
        let mut t = 0;
        for i in 0..50 {
            // 10% loss both ways: about 81% answered, with noise.
            let share = if i % 3 == 0 { 0.78 } else { 0.83 };
            assert_eq!(feed(&mut c, &mut t, share), 100_000.0);
        }
    }

    #[test]
    fn congestion_cuts_and_keeps_the_cut() {
        let mut c = Controller::new(100_000.0, 100.0);
        let mut t = 0;
        feed(&mut c, &mut t, 0.9);
        // A fifth as many answers: cut to about what got through.
        let cut = feed(&mut c, &mut t, 0.2);
        assert!((25_000.0..30_000.0).contains(&cut), "{cut}");
        // The slower windows recover: it was congestion, the cut stays.
        assert_eq!(feed(&mut c, &mut t, 0.85), cut);
        // And it grows back slowly.
        assert!(feed(&mut c, &mut t, 0.9) > cut);
    }

    #[test]
    fn a_cut_where_half_the_rate_is_under_the_floor_does_not_panic() {
        // Regression: at 1,762/s with a floor of 1,000/s, the cut's bounds crossed
        // (1,000 to 881) and `clamp` panicked the scan (CI, `-sS` under congestion).
        let mut c = Controller::new(1762.8, 1000.0);
        let mut t = 0;
        feed(&mut c, &mut t, 0.9);
        assert_eq!(feed(&mut c, &mut t, 0.1), 1000.0);
    }

    #[test]
    fn a_filtered_stretch_is_not_congestion() {
        let mut c = Controller::new(100_000.0, 100.0);
        let mut t = 0;
        feed(&mut c, &mut t, 0.9);
        assert_eq!(feed(&mut c, &mut t, 0.0), 100.0);
        // Still nothing at the lower rate: the target drops; restore.
        assert_eq!(feed(&mut c, &mut t, 0.0), 100_000.0);
        assert_eq!(feed(&mut c, &mut t, 0.0), 100_000.0);
    }

    #[test]
    fn a_carried_controller_does_not_judge_windows_it_never_hears_of() {
        // Regression: a block's controller was a clone with the last block's windows,
        // whose answers went to the old one, and cut the rate for silence.
        let mut c = Controller::new(5000.0, 100.0);
        let mut t = 0;
        feed(&mut c, &mut t, 1.0);
        for _ in 0..WINDOW {
            c.sent(t, 1);
        }
        let mut next = c.carry();
        assert_eq!(next.judge(t + 10_000_000, Duration::from_millis(100)), None);
        assert_eq!(next.rate(), 5000.0);
    }

    #[test]
    fn pacer_batches() {
        let mut p = Pacer::new(400_000.0);
        assert_eq!(p.take_batch(64), 64);
        while p.take_batch(64) > 0 {}
        assert_eq!(p.take_batch(64), 0);
        assert!(p.wait_batch(64) <= Duration::from_micros(170));
        // A slow pace saves up less than a batch: it goes out by what it saves.
        let mut slow = Pacer::new(100.0);
        assert_eq!(slow.take_batch(64), 3);
        assert_eq!(slow.take_batch(64), 0);
    }

    #[test]
    fn no_second_carries_more_than_the_rate() {
        // Saved-up tokens (a stall) never push one second over the rate.
        let start = Instant::now();
        let mut p = Pacer::new_at(1000.0, start);
        let mut n = 0;
        let mut now = start;
        while now < start + Duration::from_millis(900) {
            n += p.take_at(1000, now);
            // A stall of 200 ms, then steady wake-ups.
            now += Duration::from_millis(if n == 31 { 200 } else { 1 });
        }
        assert!(n <= 1000, "{n} in under a second");
        // 31 at the start, the stall made up at once, and one a millisecond after it.
        assert!(n >= 750, "{n}: the saved-up tokens went unused");
    }

    #[test]
    fn pacer_limits() {
        let mut p = Pacer::new(1000.0);
        let granted = p.take(1000);
        assert!(granted <= 40, "{granted}");
        std::thread::sleep(Duration::from_millis(20));
        let more = p.take(1000);
        assert!((15..=40).contains(&more), "{more}");
    }
}

/// How many times to send a probe before calling it unanswered: enough that a probe which
/// would be answered is missed with probability under [`MISS`], given the loss seen so far
/// (the share of answered probes that needed more than one try), within the user's cap.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    answered: u64,
    late: u64,
    cap: u32,
    fixed: bool,
}

/// The accepted chance of missing one answering port.
pub const MISS: f64 = 1e-5;

impl RetryPolicy {
    /// `max_retries` from the user fixes the number of retries; `None` adapts, up to
    /// `default_cap` retries.
    pub fn new(max_retries: Option<u32>, default_cap: u32) -> RetryPolicy {
        RetryPolicy {
            answered: 0,
            late: 0,
            cap: max_retries.unwrap_or(default_cap),
            fixed: max_retries.is_some(),
        }
    }

    /// Records an answer to a probe that was sent `tries` times.
    pub fn answered(&mut self, tries: u8) {
        self.answered += 1;
        if tries > 1 {
            self.late += 1;
        }
    }

    /// The estimated chance that one try goes unanswered although the port would answer.
    pub fn loss(&self) -> f64 {
        (self.late as f64 + 0.1) / (self.answered as f64 + 1.0)
    }

    /// How many tries in all a probe gets.
    pub fn tries(&self) -> u32 {
        if self.fixed {
            return self.cap + 1;
        }
        let p = self.loss().clamp(1e-9, 0.999);
        let need = (MISS.ln() / p.ln() - 1e-9).ceil() as u32;
        need.clamp(2, self.cap + 1)
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn tries_follow_the_loss() {
        let mut r = RetryPolicy::new(None, 10);
        assert_eq!(r.tries(), 5); // nothing known yet
        for _ in 0..1000 {
            r.answered(1);
        }
        assert_eq!(r.tries(), 2);
        // 19% of answers needed a retry (10% loss each way).
        for _ in 0..235 {
            r.answered(2);
        }
        assert_eq!(r.tries(), 7);
        assert_eq!(RetryPolicy::new(Some(3), 10).tries(), 4);
        assert_eq!(RetryPolicy::new(Some(0), 10).tries(), 1);
    }
}

#[cfg(test)]
mod pace_tests {
    use super::*;

    /// A sender on a simulated clock that wakes up late by up to `late_max` (a loaded
    /// machine); returns what each one-second window from the start carried, and the
    /// most any sliding second carried.
    fn simulate(rate: f64, secs: u64, late_max: Duration) -> (Vec<u64>, u64) {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        simulate_with(rate, secs, &mut |_| {
            seed = crate::perm::mix(seed);
            late_max.mul_f64((seed % 1000) as f64 / 1000.0)
        })
    }

    /// The same, with the lateness of each wake-up from `late` (of the time since the
    /// start).
    fn simulate_with(
        rate: f64,
        secs: u64,
        late: &mut dyn FnMut(Duration) -> Duration,
    ) -> (Vec<u64>, u64) {
        let start = Instant::now();
        let mut p = Pacer::new_at(rate, start);
        let mut now = start;
        let end = start + Duration::from_secs(secs);
        let mut grants: Vec<(Duration, u64)> = Vec::new();
        while now < end {
            let n = p.take_batch_at(64, now);
            if n > 0 {
                grants.push((now - start, n as u64));
                now += Duration::from_micros(150);
                continue;
            }
            now += p.wait_batch_at(64, now) + late(now - start);
        }
        let mut per = vec![0u64; secs as usize];
        for &(t, n) in &grants {
            if let Some(c) = per.get_mut(t.as_secs() as usize) {
                *c += n;
            }
        }
        let mut most = 0;
        let mut sum = 0;
        let mut first = 0;
        for &(t, n) in &grants {
            sum += n;
            while grants[first].0 + SECOND <= t {
                sum -= grants[first].1;
                first += 1;
            }
            most = most.max(sum);
        }
        (per, most)
    }

    /// Regression (issue 15): `--rate 5000` sent about 4,860 a second, as each grant
    /// waited for a whole batch to leave a sliding second, and every late wake-up moved
    /// the pattern on for good. Each second now carries the rate exactly, late wake-ups
    /// or not, and no sliding second carries more than the rate.
    #[test]
    fn rate_5000_is_exact_each_second_despite_late_wake_ups() {
        for late in [0, 5, 15].map(Duration::from_millis) {
            let (per, most) = simulate(5000.0, 10, late);
            assert!(per.iter().all(|&n| n == 5000), "late {late:?}: {per:?}");
            assert!(
                most <= 5000 + slack(5000.0),
                "late {late:?}: {most} in a sliding second"
            );
        }
    }

    /// Regression (issue 15): on a loaded machine `--rate 5000` delivered 4,879/s, as
    /// each wake-up later than 18 ms (past the 31 ms a token bucket saved, less the 13 ms
    /// a batch takes) lost what the bucket could not hold. The window's schedule now gives
    /// what a late wake-up missed at once: a wake-up 100 ms late inside a second costs
    /// nothing, and no sliding second carries more than the rate and its slack.
    #[test]
    fn a_wake_up_100_ms_late_is_made_up_within_its_second() {
        for rate in [5000.0, 50_000.0, 300.0] {
            // Once a second, 0.4 s into it, a wake-up comes 100 ms late.
            let mut stalled = u64::MAX;
            let (per, most) = simulate_with(rate, 10, &mut |t| {
                if t.subsec_millis() >= 400 && stalled != t.as_secs() {
                    stalled = t.as_secs();
                    return Duration::from_millis(100);
                }
                Duration::ZERO
            });
            let want = rate as u64;
            assert!(per.iter().all(|&n| n == want), "{rate}: {per:?}");
            let cap = want + slack(rate);
            assert!(most <= cap, "{rate}: {most} in a sliding second");
        }
    }

    /// What is left: a wake-up that comes late across the end of a second, by more than
    /// the schedule's lead (31 ms), loses what that second had left, and so does a
    /// catch-up the sliding cap holds back. Wake-ups late at random by up to 60 ms lose
    /// under 2%, and no second passes the rate.
    #[test]
    fn random_wake_ups_up_to_60_ms_late_lose_little() {
        let (per, most) = simulate(5000.0, 10, Duration::from_millis(60));
        assert!(per.iter().all(|&n| n <= 5000), "{per:?}");
        eprintln!("late up to 60 ms: {per:?}");
        assert!(per.iter().sum::<u64>() >= 49_000, "{per:?}");
        assert!(most <= 5000 + slack(5000.0), "{most} in a sliding second");
    }

    /// Regression (issue 15): `--rate 5000` of a /16 delivered 4,914/s with no late
    /// wake-up to blame: the last batch of each block's stage took 64 from the pacer and
    /// sent what was left (a few), and the rest of the grant was lost; 2.5 blocks a
    /// second lost about 80. What is not sent is now given back.
    #[test]
    fn a_grant_not_sent_in_full_is_given_back() {
        let start = Instant::now();
        let mut p = Pacer::new_at(5000.0, start);
        let mut now = start;
        let mut sent = 0;
        let mut k = 0u64;
        while now < start + Duration::from_secs(3) {
            let n = p.take_batch_at(64, now);
            if n > 0 {
                // Every fifth grant finds only 10 probes left to send.
                k += 1;
                let used = if k % 5 == 0 { n.min(10) } else { n };
                p.unused(n - used);
                if now >= start + SECOND {
                    sent += used;
                }
                now += Duration::from_micros(150);
                continue;
            }
            now += p.wait_batch_at(64, now);
        }
        assert_eq!(sent, 10_000, "seconds 1 and 2");
    }

    #[test]
    fn a_fractional_rate_carries_its_fraction() {
        let (per, _) = simulate(2.5, 8, Duration::from_millis(3));
        assert_eq!(per.iter().sum::<u64>(), 20, "{per:?}");
        assert!(per.iter().all(|&n| n == 2 || n == 3), "{per:?}");
    }

    #[test]
    fn a_spent_window_waits_for_the_next() {
        let start = Instant::now();
        let mut p = Pacer::new_at(100.0, start);
        let mut now = start;
        let mut n = 0;
        while n < 100 {
            n += p.take_batch_at(64, now);
            now += Duration::from_millis(5);
        }
        assert_eq!(p.take_batch_at(64, now), 0);
        let w = p.wait_batch_at(64, now);
        assert_eq!(now + w, start + SECOND);
    }
}

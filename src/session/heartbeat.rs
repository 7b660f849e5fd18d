//! Heartbeat bookkeeping for one connection: when to ping, and when a silent client has expired.
//!
//! The session sleeps until [`Heartbeat::deadline`], the earlier of the next ping and the idle
//! expiry. Frames from the client only move `last_seen`; they never re-arm the timer, so a busy
//! client costs no timer work. The ping interval should be half the idle timeout or less, so a
//! single lost pong does not cost a live client its connection.
//!
//! **The server's own stalls are not the client's silence.** When the whole process stops (a
//! SIGSTOP, a VM migration, a host starved of CPU, a clock jump), no frame is read and no Ping
//! is sent meanwhile, and every idle clock runs on; on resume every client would look silent.
//! A wake-up much later than it was due ([`overslept`]: later by more than [`stall_tolerance`])
//! is taken as such a stall: the idle clock restarts and the client is pinged at once, so it has
//! a whole idle timeout to answer. A client that stays silent after that still expires. The
//! session applies the same rule to its slow-client timer.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Heartbeat {
    interval: Duration,
    idle_timeout: Duration,
    last_seen: Instant,
    next_ping: Instant,
}

/// What to do when the deadline passes.
#[derive(Debug, PartialEq, Eq)]
pub enum Beat {
    /// Send a Ping now.
    Ping,
    /// The wake-up came far too late: the server stalled. The idle clock restarts; send a Ping
    /// now.
    Stalled,
    /// The client has been silent for the idle timeout: close it.
    Expired,
    /// A frame arrived meanwhile; nothing to do but sleep until the new deadline.
    Wait,
}

impl Heartbeat {
    pub fn new(now: Instant, interval: Duration, idle_timeout: Duration) -> Self {
        Self {
            interval,
            idle_timeout,
            last_seen: now,
            next_ping: now + interval,
        }
    }

    /// How late a wake-up may be before it counts as a stall of the server.
    pub fn stall_tolerance(&self) -> Duration {
        stall_tolerance(self.interval, self.idle_timeout)
    }

    /// Any frame from the client proves it is alive.
    pub fn seen(&mut self, now: Instant) {
        self.last_seen = now;
    }

    pub fn deadline(&self) -> Instant {
        self.next_ping.min(self.last_seen + self.idle_timeout)
    }

    pub fn on_deadline(&mut self, now: Instant) -> Beat {
        if overslept(self.deadline(), now, self.stall_tolerance()) {
            self.last_seen = now;
            self.next_ping = now + self.interval;
            Beat::Stalled
        } else if now >= self.last_seen + self.idle_timeout {
            Beat::Expired
        } else if now >= self.next_ping {
            self.next_ping = now + self.interval;
            Beat::Ping
        } else {
            Beat::Wait
        }
    }
}

/// How late a timer may fire before the server is taken to have stalled: one ping interval,
/// and less when the idle timeout leaves less room after a ping. A client that answered the
/// last ping then survives any undetected stall: it expires only if the wake-up is at least
/// `idle_timeout - interval` late.
pub fn stall_tolerance(interval: Duration, idle_timeout: Duration) -> Duration {
    interval.min(idle_timeout.saturating_sub(interval))
}

/// Whether a wake-up due at `due` that happens at `now` came more than `tolerance` late.
pub fn overslept(due: Instant, now: Instant, tolerance: Duration) -> bool {
    now.saturating_duration_since(due) > tolerance
}

#[cfg(test)]
mod tests {
    use tokio::time::{advance, sleep_until};

    use super::*;

    const PING: Duration = Duration::from_millis(100);
    const IDLE: Duration = Duration::from_millis(250);

    /// A client that never answers is pinged twice and expires exactly at the idle timeout.
    #[tokio::test(start_paused = true)]
    async fn silent_client_expires_at_idle_timeout() {
        let start = Instant::now();
        let mut hb = Heartbeat::new(start, PING, IDLE);
        let mut beats = Vec::new();
        loop {
            sleep_until(hb.deadline()).await;
            let beat = hb.on_deadline(Instant::now());
            beats.push((beat, Instant::now() - start));
            if beats.last().unwrap().0 == Beat::Expired {
                break;
            }
        }
        let ms = Duration::from_millis;
        assert_eq!(
            beats,
            vec![
                (Beat::Ping, ms(100)),
                (Beat::Ping, ms(200)),
                (Beat::Expired, ms(250))
            ]
        );
    }

    /// A client that answers each ping stays alive indefinitely.
    #[tokio::test(start_paused = true)]
    async fn answering_client_never_expires() {
        let mut hb = Heartbeat::new(Instant::now(), PING, IDLE);
        for _ in 0..100 {
            sleep_until(hb.deadline()).await;
            assert_ne!(hb.on_deadline(Instant::now()), Beat::Expired);
            advance(Duration::from_millis(5)).await; // the pong's round trip
            hb.seen(Instant::now());
        }
    }

    /// After a stall of the whole server (the wake-up comes a second late), a client that had
    /// answered every ping is not expired: it is pinged at once and has a full idle timeout to
    /// answer. One that then stays silent expires exactly that idle timeout after the stall.
    #[tokio::test(start_paused = true)]
    async fn stall_gives_a_fresh_chance_and_silence_still_expires() {
        let mut hb = Heartbeat::new(Instant::now(), PING, IDLE);
        sleep_until(hb.deadline()).await;
        assert_eq!(hb.on_deadline(Instant::now()), Beat::Ping);
        hb.seen(Instant::now()); // the pong
        // The process stops before the next deadline and resumes a second later.
        advance(Duration::from_secs(1)).await;
        let resumed = Instant::now();
        assert_eq!(hb.on_deadline(resumed), Beat::Stalled);
        // Silent from here on: pinged on the interval, expired one idle timeout after resuming.
        let mut beats = Vec::new();
        loop {
            sleep_until(hb.deadline()).await;
            let beat = hb.on_deadline(Instant::now());
            beats.push((beat, Instant::now() - resumed));
            if beats.last().unwrap().0 == Beat::Expired {
                break;
            }
        }
        let ms = Duration::from_millis;
        assert_eq!(
            beats,
            vec![
                (Beat::Ping, ms(100)),
                (Beat::Ping, ms(200)),
                (Beat::Expired, ms(250))
            ]
        );
    }

    /// A wake-up late by no more than the tolerance is no stall: a silent client expires.
    #[tokio::test(start_paused = true)]
    async fn small_lateness_is_not_a_stall() {
        let start = Instant::now();
        let mut hb = Heartbeat::new(start, Duration::from_millis(200), IDLE);
        assert_eq!(hb.stall_tolerance(), Duration::from_millis(50));
        sleep_until(hb.deadline()).await;
        assert_eq!(hb.on_deadline(Instant::now()), Beat::Ping); // at 200
        sleep_until(hb.deadline()).await; // the expiry, at 250
        advance(Duration::from_millis(50)).await;
        assert_eq!(hb.on_deadline(Instant::now()), Beat::Expired);
    }

    /// The tolerance is one interval, less when the idle timeout leaves less room after a ping.
    #[test]
    fn stall_tolerance_leaves_an_answering_client_alive() {
        let ms = Duration::from_millis;
        assert_eq!(stall_tolerance(ms(5000), ms(15000)), ms(5000));
        assert_eq!(stall_tolerance(ms(100), ms(150)), ms(50));
        let due = Instant::now();
        assert!(!overslept(due, due + ms(50), ms(50)));
        assert!(overslept(due, due + ms(51), ms(50)));
        assert!(!overslept(due + ms(10), due, ms(0)), "early is never late");
    }

    /// A frame seen after the deadline was armed pushes expiry out without an early verdict.
    #[tokio::test(start_paused = true)]
    async fn late_frame_defers_expiry() {
        let start = Instant::now();
        let mut hb = Heartbeat::new(start, Duration::from_millis(200), IDLE);
        advance(Duration::from_millis(150)).await;
        hb.seen(Instant::now());
        sleep_until(hb.deadline()).await;
        assert_eq!(hb.on_deadline(Instant::now()), Beat::Ping); // at 200
        sleep_until(hb.deadline()).await;
        assert_eq!(Instant::now() - start, Duration::from_millis(400));
        assert_eq!(hb.on_deadline(Instant::now()), Beat::Expired); // 150 + 250
    }
}

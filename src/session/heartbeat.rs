//! Heartbeat bookkeeping for one connection: when to ping, and when a silent client has expired.
//!
//! The session sleeps until [`Heartbeat::deadline`], the earlier of the next ping and the idle
//! expiry. Frames from the client only move `last_seen`; they never re-arm the timer, so a busy
//! client costs no timer work. The ping interval should be half the idle timeout or less, so a
//! single lost pong does not cost a live client its connection.

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

    /// Any frame from the client proves it is alive.
    pub fn seen(&mut self, now: Instant) {
        self.last_seen = now;
    }

    pub fn deadline(&self) -> Instant {
        self.next_ping.min(self.last_seen + self.idle_timeout)
    }

    pub fn on_deadline(&mut self, now: Instant) -> Beat {
        if now >= self.last_seen + self.idle_timeout {
            Beat::Expired
        } else if now >= self.next_ping {
            self.next_ping = now + self.interval;
            Beat::Ping
        } else {
            Beat::Wait
        }
    }
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

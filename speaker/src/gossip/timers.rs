//! The gossip driver's timers, on a timerfd of their own rather than Tokio's timer wheel.
//!
//! Why: an idle speaker's gossip wakes some 60 times a second that it must (its probe, the
//! ack, a peer's ping), and Tokio's wheel added half as many again for nothing. A deadline
//! that crosses one of the wheel's 64 ms slot boundaries wakes the thread at the boundary
//! first and again at the deadline (most 50 ms probe periods cross one), and a `Sleep` reset
//! to a later deadline still wakes at the earlier one (Tokio moves it lazily), so a timer
//! cancelled by the ack woke the thread anyway. A timerfd armed for the earliest deadline,
//! to the nanosecond, wakes once per deadline and never early; re-arming it is one
//! `timerfd_settime`, far cheaper than a wake-up.

use ferrolb_shared::l2::gossip::Timer;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;

/// Names one armed timer, for [`Timers::remove`]; never reused.
pub(super) type TimerKey = u64;

/// The membership's pending timers and the one alarm that wakes the driver for the earliest.
pub(super) struct Timers {
    /// Deadlines by time; entries whose timer was removed are skipped when they come up.
    queue: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    pending: HashMap<TimerKey, Timer>,
    next_key: TimerKey,
    alarm: AsyncFd<Alarm>,
    /// The deadline the alarm is set for (`None`: disarmed, or it went off).
    armed: Option<Instant>,
}

/// A non-blocking monotonic timerfd, as Tokio's reactor wants it.
struct Alarm(TimerFd);

impl AsRawFd for Alarm {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl Timers {
    /// Within a Tokio runtime (the alarm registers with its reactor).
    pub fn new() -> io::Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // `AsyncFd::new` is deprecated (tokio#8587) because a `T` that merely borrows its fd
        // could close it while registered; `Alarm` owns its fd and moves in with it, so the
        // fd lives exactly as long as the registration. The replacement is `unsafe`, which
        // this workspace denies.
        #[allow(deprecated)]
        let alarm = AsyncFd::new(Alarm(fd))?;
        Ok(Timers {
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            next_key: 0,
            alarm,
            armed: None,
        })
    }

    /// Arm `timer` to come due `after` from now. Takes effect on the alarm at the next
    /// [`Timers::rearm`].
    pub fn insert(&mut self, timer: Timer, after: Duration) -> TimerKey {
        let key = self.next_key;
        self.next_key += 1;
        self.queue.push(Reverse((Instant::now() + after, key)));
        self.pending.insert(key, timer);
        key
    }

    /// Forget a timer (nothing if it already came due).
    pub fn remove(&mut self, key: TimerKey) {
        self.pending.remove(&key);
    }

    /// The earliest timer due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        while let Some(&Reverse((at, key))) = self.queue.peek() {
            if at > now {
                return None;
            }
            self.queue.pop();
            if let Some(timer) = self.pending.remove(&key) {
                return Some(timer);
            }
        }
        None
    }

    /// Point the alarm at the earliest pending deadline (or disarm it).
    pub fn rearm(&mut self) -> io::Result<()> {
        let next = self.next_deadline();
        if next == self.armed {
            return Ok(());
        }
        let alarm = &self.alarm.get_ref().0;
        match next {
            Some(at) => {
                // A zero expiration would disarm it: a deadline already past goes off now.
                let left = at
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1));
                alarm.set(
                    Expiration::OneShot(TimeSpec::from_duration(left)),
                    TimerSetTimeFlags::empty(),
                )?;
            }
            None => alarm.unset()?,
        }
        self.armed = next;
        Ok(())
    }

    /// Wait for the alarm to go off (then [`Timers::pop_due`] has at least one timer, unless
    /// it was removed meanwhile).
    pub async fn fired(&mut self) -> io::Result<()> {
        loop {
            let mut ready = self.alarm.readable().await?;
            // Reading the expiration count resets the alarm; EAGAIN: it had not gone off
            // (readiness was stale), so wait again.
            match ready.try_io(|alarm| alarm.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(result) => {
                    self.armed = None;
                    return result;
                }
                Err(_would_block) => continue,
            }
        }
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, key))) = self.queue.peek() {
            if self.pending.contains_key(&key) {
                return Some(at);
            }
            self.queue.pop();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_shared::l2::gossip::{Auth, Input, Membership, NodeId, Timing};

    /// Real timers from a real membership (the type is opaque): the first thing a member
    /// does on its seeds is arm its seed retry.
    fn some_timers(n: usize) -> Vec<Timer> {
        let id = NodeId {
            node: "a".into(),
            addr: "192.0.2.1:7946".parse().unwrap(),
            boot: 1,
        };
        let auth = Auth::secret(b"sixteen-byte-secret-for-tests!!").unwrap();
        let mut m = Membership::new(id, auth, Timing::default(), 1).unwrap();
        let seeds = vec!["192.0.2.2:7946".parse().unwrap()];
        let timer = m
            .handle(Instant::now(), Input::SetSeeds(seeds))
            .into_iter()
            .find_map(|a| match a {
                ferrolb_shared::l2::gossip::Action::Schedule { timer, .. } => Some(timer),
                _ => None,
            })
            .expect("a seed retry timer");
        vec![timer; n]
    }

    #[tokio::test]
    async fn timers_come_due_in_order_once_each_and_removed_ones_never() {
        let mut timers = Timers::new().unwrap();
        let [a, b, c] = <[Timer; 3]>::try_from(some_timers(3)).unwrap();
        let started = Instant::now();
        let _late = timers.insert(a, Duration::from_millis(30));
        let gone = timers.insert(b, Duration::from_millis(10));
        let _early = timers.insert(c, Duration::from_millis(20));
        timers.remove(gone);
        assert!(
            timers.pop_due(Instant::now()).is_none(),
            "nothing is due yet"
        );

        let mut fired = Vec::new();
        while fired.len() < 2 {
            timers.rearm().unwrap();
            tokio::time::timeout(Duration::from_secs(5), timers.fired())
                .await
                .expect("the alarm goes off")
                .unwrap();
            while timers.pop_due(Instant::now()).is_some() {
                fired.push(started.elapsed());
            }
        }
        assert!(fired[0] >= Duration::from_millis(20), "{fired:?}");
        assert!(fired[1] >= Duration::from_millis(30), "{fired:?}");
        timers.rearm().unwrap();
        assert_eq!(timers.armed, None, "nothing left: disarmed");
        assert!(
            timers
                .pop_due(Instant::now() + Duration::from_secs(1))
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_deadline_already_past_goes_off_at_once() {
        let mut timers = Timers::new().unwrap();
        let [t] = <[Timer; 1]>::try_from(some_timers(1)).unwrap();
        timers.insert(t, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        timers.rearm().unwrap();
        tokio::time::timeout(Duration::from_secs(5), timers.fired())
            .await
            .expect("the alarm goes off")
            .unwrap();
        assert!(timers.pop_due(Instant::now()).is_some());
    }
}

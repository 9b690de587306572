//! Leader election over a `coordination.k8s.io/v1` Lease, as a pure decision.
//!
//! Several controller replicas may run; exactly one may write. Each replica periodically
//! reads the Lease and asks [`LeaderElector::decide`] what to do about it: create it, renew it
//! (we hold it), take it over (its holder stopped renewing), or wait. The driver carries out
//! the write with optimistic concurrency (the Lease's resourceVersion), so two replicas racing
//! for an expired Lease cannot both win, and reports success with
//! [`LeaderElector::acquired`].
//!
//! Expiry is judged the way client-go does it: not by comparing the holder's `renewTime` with
//! our clock (clocks of different nodes disagree), but by how long *we* have watched the
//! record stay unchanged on our own monotonic clock. A holder that renews changes the record's
//! resourceVersion every time.
//!
//! A leader that cannot renew for `renew_deadline` (shorter than the lease duration) must
//! consider itself deposed ([`LeaderElector::is_leader`]) before any other replica may take
//! over, so two replicas never act at once.

use std::time::{Duration, Instant};

/// What a replica needs to know about the Lease object it just read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// `spec.holderIdentity`; `None` or empty when released.
    pub holder: Option<String>,
    /// `spec.leaseDurationSeconds`, as the holder wrote it.
    pub duration: Option<Duration>,
    /// `metadata.resourceVersion`: every write changes it, so an unchanged version means
    /// nobody renewed.
    pub version: String,
}

/// What the driver should do after reading the Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    /// There is no Lease: create it, naming us as holder.
    Create,
    /// We hold the Lease: write a new `renewTime`.
    Renew,
    /// The Lease was released or its holder stopped renewing: claim it.
    TakeOver,
    /// Someone else holds a live Lease.
    Wait,
}

/// Timing of the election. The defaults are client-go's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a Lease stays valid without renewal (`leaseDurationSeconds`).
    pub duration: Duration,
    /// A leader that has not renewed for this long steps down. Must be shorter than
    /// `duration`, so the old leader stops before a new one can start.
    pub renew_deadline: Duration,
    /// How often every replica reads (and the leader renews) the Lease.
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaseTiming {
    /// `leaseDurationSeconds` to write: rounded up (others must never wait less than we
    /// assume), at least 1.
    pub fn duration_seconds(&self) -> i32 {
        let secs = self.duration.as_secs() + u64::from(self.duration.subsec_nanos() > 0);
        i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
    }
}

/// One replica's view of the election. See the module documentation.
#[derive(Clone, Debug)]
pub struct LeaderElector {
    identity: String,
    timing: LeaseTiming,
    /// The record last read, and when (our clock) it was first seen in that state.
    seen: Option<(LeaseRecord, Instant)>,
    /// When the last successful write naming us as holder was started.
    renewed: Option<Instant>,
}

impl LeaderElector {
    pub fn new(identity: impl Into<String>, timing: LeaseTiming) -> Self {
        LeaderElector {
            identity: identity.into(),
            timing,
            seen: None,
            renewed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// Decide what to do about the Lease as read at `now` (`None`: it does not exist).
    pub fn decide(&mut self, now: Instant, observed: Option<&LeaseRecord>) -> LeaseAction {
        let Some(record) = observed else {
            self.seen = None;
            return LeaseAction::Create;
        };
        let since = match &self.seen {
            Some((seen, since)) if seen == record => *since,
            _ => {
                self.seen = Some((record.clone(), now));
                now
            }
        };
        match record.holder.as_deref() {
            Some(h) if h == self.identity => LeaseAction::Renew,
            None | Some("") => LeaseAction::TakeOver,
            Some(_) => {
                // Someone else holds it: whatever we believed, we are not the leader.
                self.renewed = None;
                let valid_for = record.duration.unwrap_or(self.timing.duration);
                if now.saturating_duration_since(since) >= valid_for {
                    LeaseAction::TakeOver
                } else {
                    LeaseAction::Wait
                }
            }
        }
    }

    /// A create, renew or take-over that was started at `started` succeeded. Counting from
    /// the start of the request (not its end) errs on the side of stepping down early.
    pub fn acquired(&mut self, started: Instant) {
        self.renewed = Some(self.renewed.map_or(started, |r| r.max(started)));
    }

    /// Until when this replica may act as leader (`None`: it is not the leader). The driver
    /// must stop acting at that instant unless a renewal moved it.
    pub fn leader_until(&self) -> Option<Instant> {
        self.renewed.map(|r| r + self.timing.renew_deadline)
    }

    /// Whether this replica may act as leader at `now`.
    pub fn is_leader(&self, now: Instant) -> bool {
        self.leader_until().is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn record(holder: Option<&str>, version: &str) -> LeaseRecord {
        LeaseRecord {
            holder: holder.map(str::to_string),
            duration: Some(15 * SEC),
            version: version.into(),
        }
    }

    fn elector(identity: &str) -> LeaderElector {
        LeaderElector::new(identity, LeaseTiming::default())
    }

    #[test]
    fn creates_a_missing_lease_and_leads_after_the_write() {
        let t0 = Instant::now();
        let mut e = elector("a");
        assert_eq!(e.decide(t0, None), LeaseAction::Create);
        assert!(!e.is_leader(t0), "no leadership before the write succeeded");
        e.acquired(t0);
        assert!(e.is_leader(t0 + SEC));
    }

    #[test]
    fn renews_its_own_lease() {
        let t0 = Instant::now();
        let mut e = elector("a");
        assert_eq!(
            e.decide(t0, Some(&record(Some("a"), "1"))),
            LeaseAction::Renew
        );
        e.acquired(t0);
        assert_eq!(
            e.decide(t0 + 2 * SEC, Some(&record(Some("a"), "2"))),
            LeaseAction::Renew
        );
    }

    #[test]
    fn waits_while_another_holder_renews() {
        let t0 = Instant::now();
        let mut e = elector("b");
        // The holder renews every 2 s: the record keeps changing, so it never expires.
        for i in 0..20u32 {
            let version = i.to_string();
            let now = t0 + 2 * i * SEC;
            assert_eq!(
                e.decide(now, Some(&record(Some("a"), &version))),
                LeaseAction::Wait
            );
            assert!(!e.is_leader(now));
        }
    }

    #[test]
    fn takes_over_only_after_the_record_stayed_unchanged_for_the_lease_duration() {
        let t0 = Instant::now();
        let mut e = elector("b");
        let stale = record(Some("a"), "7");
        assert_eq!(e.decide(t0, Some(&stale)), LeaseAction::Wait);
        assert_eq!(e.decide(t0 + 14 * SEC, Some(&stale)), LeaseAction::Wait);
        assert_eq!(e.decide(t0 + 15 * SEC, Some(&stale)), LeaseAction::TakeOver);
    }

    #[test]
    fn expiry_counts_from_when_this_replica_first_saw_the_record() {
        // A replica that just started cannot know how old the record is: it must wait a
        // full duration, whatever renewTime says.
        let t0 = Instant::now();
        let mut e = elector("b");
        let stale = record(Some("a"), "7");
        assert_eq!(e.decide(t0 + 100 * SEC, Some(&stale)), LeaseAction::Wait);
        assert_eq!(e.decide(t0 + 114 * SEC, Some(&stale)), LeaseAction::Wait);
        assert_eq!(
            e.decide(t0 + 115 * SEC, Some(&stale)),
            LeaseAction::TakeOver
        );
    }

    #[test]
    fn uses_the_holders_duration() {
        let t0 = Instant::now();
        let mut e = elector("b");
        let mut short = record(Some("a"), "1");
        short.duration = Some(2 * SEC);
        assert_eq!(e.decide(t0, Some(&short)), LeaseAction::Wait);
        assert_eq!(e.decide(t0 + 2 * SEC, Some(&short)), LeaseAction::TakeOver);
        short.duration = None; // unset: ours (15 s) applies
        assert_eq!(e.decide(t0 + 3 * SEC, Some(&short)), LeaseAction::Wait);
    }

    #[test]
    fn takes_over_a_released_lease_at_once() {
        let t0 = Instant::now();
        for holder in [None, Some("")] {
            let mut e = elector("b");
            assert_eq!(
                e.decide(t0, Some(&record(holder, "3"))),
                LeaseAction::TakeOver
            );
        }
    }

    #[test]
    fn a_leader_that_cannot_renew_steps_down_before_others_may_take_over() {
        let t0 = Instant::now();
        let timing = LeaseTiming::default();
        let mut a = elector("a");
        let mut b = elector("b");
        assert_eq!(a.decide(t0, None), LeaseAction::Create);
        a.acquired(t0);
        let held = record(Some("a"), "1");
        assert_eq!(b.decide(t0, Some(&held)), LeaseAction::Wait);
        // From now on a's renewals fail (say, a network partition).
        let mut t = t0;
        while b.decide(t, Some(&held)) == LeaseAction::Wait {
            t += Duration::from_millis(100);
        }
        assert!(t - t0 >= timing.duration);
        assert!(
            !a.is_leader(t0 + timing.renew_deadline),
            "a must have stepped down before b takes over"
        );
        assert!(a.is_leader(t0 + timing.renew_deadline - Duration::from_millis(1)));
    }

    #[test]
    fn seeing_another_holder_ends_leadership_at_once() {
        let t0 = Instant::now();
        let mut a = elector("a");
        assert_eq!(a.decide(t0, None), LeaseAction::Create);
        a.acquired(t0);
        assert!(a.is_leader(t0 + SEC));
        assert_eq!(
            a.decide(t0 + SEC, Some(&record(Some("b"), "9"))),
            LeaseAction::Wait
        );
        assert!(!a.is_leader(t0 + SEC));
    }

    #[test]
    fn a_failed_renewal_keeps_the_previous_deadline() {
        let t0 = Instant::now();
        let mut a = elector("a");
        a.acquired(t0);
        assert_eq!(
            a.decide(t0 + 2 * SEC, Some(&record(Some("a"), "1"))),
            LeaseAction::Renew
        );
        // The renewal write failed: acquired() is not called.
        assert!(a.is_leader(t0 + 9 * SEC));
        assert!(!a.is_leader(t0 + 10 * SEC));
        assert_eq!(a.leader_until(), Some(t0 + 10 * SEC));
        // An older success reported late never moves the deadline back.
        a.acquired(t0 + 5 * SEC);
        a.acquired(t0 + 3 * SEC);
        assert!(a.is_leader(t0 + 14 * SEC));
        assert!(!a.is_leader(t0 + 15 * SEC));
    }

    #[test]
    fn the_lease_vanishing_means_create_again() {
        let t0 = Instant::now();
        let mut e = elector("b");
        assert_eq!(
            e.decide(t0, Some(&record(Some("a"), "1"))),
            LeaseAction::Wait
        );
        assert_eq!(e.decide(t0 + SEC, None), LeaseAction::Create);
    }

    #[test]
    fn duration_seconds_is_at_least_one() {
        let mut t = LeaseTiming::default();
        assert_eq!(t.duration_seconds(), 15);
        t.duration = Duration::from_millis(300);
        assert_eq!(t.duration_seconds(), 1);
        t.duration = Duration::from_millis(1500);
        assert_eq!(t.duration_seconds(), 2);
    }
}

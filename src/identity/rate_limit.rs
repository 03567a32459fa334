//! The server's one rate limiter: a GCRA limit per key (an email, an IP, a
//! tenant), used by the sign-in endpoints and the Agent API's per-tenant limits.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

pub struct KeyedLimiter {
    inner: RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>,
}

impl KeyedLimiter {
    /// `max` requests per `per` for each key, all of which may come at once;
    /// the allowance then refills evenly, one request every `per / max`.
    /// A `max` of 0 is treated as 1, since a limiter that refuses everything is a bug.
    pub fn new(max: u32, per: Duration) -> Self {
        let max = NonZeroU32::new(max).unwrap_or(NonZeroU32::MIN);
        // A zero period would mean "no limit", which governor does not model.
        let period = (per / max.get()).max(Duration::from_nanos(1));
        // `with_period` only refuses a zero period, excluded just above.
        let quota = Quota::with_period(period).expect("period is positive").allow_burst(max);
        KeyedLimiter { inner: RateLimiter::keyed(quota) }
    }

    /// Ok if `key` may make a request now (and counts it); else how long until it may.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.inner
            .check_key(&key.to_string())
            .map_err(|not_until| not_until.wait_time_from(self.inner.clock().now()))
    }

    /// Forgets keys whose allowance has fully refilled, so that memory is bounded
    /// by the keys seen within one period. Callers run it periodically.
    pub fn retain_recent(&self) {
        self.inner.retain_recent();
    }
}

/// A wait as whole seconds for `Retry-After`: rounded up, and at least 1,
/// since a client told to retry after 0 seconds would be refused again.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_max_then_refuses_with_the_time_to_the_next_slot() {
        let limiter = KeyedLimiter::new(3, Duration::from_secs(60));
        for i in 0..3 {
            assert!(limiter.check("ada@example.com").is_ok(), "request {i}");
        }
        let wait = limiter.check("ada@example.com").unwrap_err();
        // One request refills every 60s / 3 = 20s.
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20), "{wait:?}");
        assert_eq!(retry_after_secs(wait), 20);
    }

    #[test]
    fn keys_are_independent() {
        let limiter = KeyedLimiter::new(1, Duration::from_secs(60));
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_err());
        assert!(limiter.check("b").is_ok());
        assert!(limiter.check("b").is_err());
    }

    #[test]
    fn zero_max_is_one() {
        let limiter = KeyedLimiter::new(0, Duration::from_secs(60));
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_err());
    }

    #[test]
    fn zero_period_does_not_panic() {
        let limiter = KeyedLimiter::new(2, Duration::ZERO);
        assert!(limiter.check("a").is_ok());
    }

    #[test]
    fn the_allowance_refills() {
        let limiter = KeyedLimiter::new(1, Duration::from_millis(20));
        assert!(limiter.check("a").is_ok());
        let wait = limiter.check("a").unwrap_err();
        std::thread::sleep(wait + Duration::from_millis(5));
        assert!(limiter.check("a").is_ok());
    }

    #[test]
    fn retain_recent_forgets_idle_keys() {
        let limiter = KeyedLimiter::new(5, Duration::from_millis(10));
        limiter.check("a").unwrap();
        limiter.check("b").unwrap();
        assert_eq!(limiter.inner.len(), 2);
        std::thread::sleep(Duration::from_millis(30));
        limiter.retain_recent();
        assert_eq!(limiter.inner.len(), 0);
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_one_second() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(20)), 20);
    }
}

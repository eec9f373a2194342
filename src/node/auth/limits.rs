//! The guards a call passes besides its credentials: the per-caller request rate (a token
//! bucket) and the calls in flight per caller and per remote address.

use crate::lock::Locked;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// A token bucket per caller.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Per-caller request rate limits.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: std::sync::Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(per_sec: u32, burst: u32) -> Self {
        RateLimiter {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            buckets: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `who`'s bucket; false when it is empty.
    pub(crate) fn allow(&self, who: &str) -> bool {
        self.allow_n(who, 1)
    }

    /// Takes `n` from `who`'s bucket (at most the burst, so that any allowed batch can pass
    /// once the bucket is full); false, taking nothing, when fewer are left.
    pub(crate) fn allow_n(&self, who: &str, n: usize) -> bool {
        let n = (n as f64).min(self.burst);
        let now = Instant::now();
        let mut b = self.buckets.locked();
        let bucket = b.entry(who.to_string()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= n {
            bucket.tokens -= n;
            true
        } else {
            false
        }
    }
}

/// The token of an `authorization: Bearer <token>` header value. The scheme is matched in any

#[derive(Debug, Default)]
pub(crate) struct InFlight {
    /// Who or where -> calls in flight. A std mutex: held for a map update only.
    counts: std::sync::Mutex<HashMap<InFlightKey, usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum InFlightKey {
    Who(String),
    Address(std::net::IpAddr),
}

/// A call's place in [`InFlight`]; given back when dropped.
pub(crate) struct Slot {
    in_flight: Arc<InFlight>,
    keys: Vec<InFlightKey>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.in_flight.counts.locked();
        for k in &self.keys {
            if let Some(n) = counts.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(k);
                }
            }
        }
    }
}

impl InFlight {
    /// Takes a slot for a call of `who` from `address`.
    ///
    /// # Errors
    /// The refusal's message, when `who` or `address` is at its limit.
    pub(crate) fn enter(
        self: &Arc<Self>,
        who: &str,
        address: Option<std::net::IpAddr>,
        limits: &super::super::config::LimitsConfig,
    ) -> Result<Slot, String> {
        let mut counts = self.counts.locked();
        let mine = InFlightKey::Who(who.to_string());
        if counts.get(&mine).copied().unwrap_or(0) >= limits.max_concurrent_per_caller {
            return Err(format!(
                "{who} has {} calls in flight, its limit (limits.max_concurrent_per_caller); retry when one ends",
                limits.max_concurrent_per_caller
            ));
        }
        let mut keys = vec![mine];
        if let Some(a) = address {
            let at = InFlightKey::Address(a);
            if counts.get(&at).copied().unwrap_or(0) >= limits.max_concurrent_per_address {
                return Err(format!(
                    "address {a} has {} calls in flight, its limit (limits.max_concurrent_per_address); retry when one ends",
                    limits.max_concurrent_per_address
                ));
            }
            keys.push(at);
        }
        for k in &keys {
            *counts.entry(k.clone()).or_insert(0) += 1;
        }
        Ok(Slot {
            in_flight: self.clone(),
            keys,
        })
    }
}

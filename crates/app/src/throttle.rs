//! Throttling of repeated client-authentication failures (RFC 6749 10.10, RFC 7662 4: an
//! endpoint that checks secrets must not let an attacker try them at will).
//!
//! Failures are counted per source address and per (client, address) pair, never per client
//! alone: an attacker failing as a client from elsewhere cannot lock the legitimate client out.
//! Counters live in memory, where they cost nothing on the success path. With several nodes on
//! PostgreSQL the failures are also counted in the store (oauth::client), so that N nodes do not
//! give an attacker N times the attempts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures allowed per (client, address) in a window.
pub const PER_PAIR: u32 = 10;
/// Failures allowed per address (any client) in a window.
pub const PER_ADDRESS: u32 = 50;
/// Unknown tokens, codes or refresh tokens presented from one address in a window: guessing them
/// must not be free (RFC 7662 4, RFC 6749 10.10). Expired tokens that were purged also count, so
/// the limit leaves room for a resource server that sees many of those.
pub const GUESSES_PER_ADDRESS: u32 = 100;
/// Authorization requests one address may leave waiting for sign-in or consent per [`WINDOW`]
/// (each is a stored row for ten minutes): ten a second, sustained, is more than a company
/// behind one address signs in with, and bounds what one script can make the store hold (about
/// 6,000 small rows per address at once).
pub const PENDING_PER_ADDRESS: u32 = 3000;
/// The window, in seconds.
pub const WINDOW: i64 = 300;
/// Growing delays between guesses: `free` attempts, then a delay that doubles with each further
/// failure, from `first_delay` up to `max_delay` seconds; counts are forgotten after `forget`
/// seconds without an attempt.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub free: u32,
    pub first_delay: i64,
    pub max_delay: i64,
    pub forget: i64,
}

/// Sign-in guesses at one account from one address.
pub const SIGN_IN_PER_ACCOUNT_AND_ADDRESS: Schedule = Schedule {
    free: 5,
    first_delay: 30,
    max_delay: 3600,
    forget: 24 * 3600,
};

/// Sign-in guesses at any account from one address (several people may share it: the delays
/// start later and stay short).
pub const SIGN_IN_PER_ADDRESS: Schedule = Schedule {
    free: 30,
    first_delay: 5,
    max_delay: 300,
    forget: 24 * 3600,
};

/// How long an attempt counter kept in the store outlives its last attempt: the longest
/// `forget` of the schedules (older counts would read as zero anyway), so the purge deletes it.
pub const COUNTS_KEPT: i64 = 24 * 3600;

/// Entries kept at most; past it, ended windows go first, then the oldest (see `evict`).
const MAX_ENTRIES: usize = 100_000;

impl Schedule {
    /// Seconds to wait before the next attempt after `failures` failures, the last at `last`;
    /// `None` when an attempt may be made now.
    pub fn wait(&self, failures: i64, last: i64, now: i64) -> Option<i64> {
        let failures = if now - last >= self.forget {
            0
        } else {
            failures
        };
        let over = failures - i64::from(self.free);
        if over < 0 {
            return None;
        }
        let delay = self
            .first_delay
            .saturating_mul(1_i64 << over.min(30))
            .min(self.max_delay);
        (now < last + delay).then_some(last + delay - now)
    }

    /// The count after one more attempt (counts older than `forget` start again).
    pub fn next_count(&self, failures: i64, last: i64, now: i64) -> i64 {
        if now - last >= self.forget {
            1
        } else {
            failures + 1
        }
    }
}

/// The part of an address a throttle keys on: IPv4 addresses whole, IPv6 addresses by their /64
/// (one subscriber commonly holds a whole /64, so counting single addresses would count nothing).
pub fn source(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The counter keys of a client at an address: by address, then by (client, address).
pub fn keys(client_id: &str, addr: Option<IpAddr>) -> Option<[String; 2]> {
    let a = source(addr?);
    // The client id is the caller's to choose (up to the body limit): a digest keeps every key
    // small, so made-up ids cannot fill memory with long keys.
    use sha2::Digest;
    let digest = sha2::Sha256::digest(client_id.as_bytes());
    let id: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    Some([format!("addr|{a}"), format!("pair|{id}|{a}")])
}

/// Seconds to wait when counts kept elsewhere (the store, shared by several nodes) pass the
/// limits; their window's start is not kept, so the whole window is asked for.
pub fn over_limits(by_addr: i64, by_pair: i64) -> Option<i64> {
    (by_pair >= i64::from(PER_PAIR) || by_addr >= i64::from(PER_ADDRESS)).then_some(WINDOW)
}

/// Which limit refused an attempt, and the seconds to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many unknown tokens, codes or refresh tokens from this address.
    Guessing(i64),
    /// Too many failed client authentications.
    Failures(i64),
}

/// One counter an attempt is made under.
#[derive(Debug, Clone)]
pub struct Counter {
    key: String,
    limit: u32,
    guessing: bool,
}

/// The counters of a client authenticating from an address: by address, then by (client,
/// address). None without an address.
pub fn client_counters(client_id: &str, addr: Option<IpAddr>) -> Vec<Counter> {
    keys(client_id, addr)
        .map(|[a, p]| {
            vec![
                Counter {
                    key: a,
                    limit: PER_ADDRESS,
                    guessing: false,
                },
                Counter {
                    key: p,
                    limit: PER_PAIR,
                    guessing: false,
                },
            ]
        })
        .unwrap_or_default()
}

/// The counter of unknown tokens, codes and refresh tokens presented from an address.
pub fn guess_counters(addr: Option<IpAddr>) -> Vec<Counter> {
    addr.map(|a| {
        vec![Counter {
            key: format!("guess|{}", source(a)),
            limit: GUESSES_PER_ADDRESS,
            guessing: true,
        }]
    })
    .unwrap_or_default()
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    start: i64,
    in_flight: u32,
    /// Until when attempts under this counter are not capped in flight: an attempt succeeded
    /// and none has failed since (see [`Throttle`]).
    vouched_until: i64,
}

/// How long a success lets attempts under a counter run in parallel without a cap.
const VOUCHED: i64 = WINDOW;

/// The longest an attempt waits for a place before it is refused (then 429, Retry-After 1).
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Counts of recent failures, and of attempts being evaluated.
///
/// An attempt is reserved before it is evaluated ([`Throttle::reserve`]): a counter with limit L
/// and F failures lets at most L - F attempts be evaluated at once, the others wait for one of
/// them to end, and at F = L every attempt is refused. So any number of parallel attempts
/// evaluates at most L guesses: the count is taken before the check, not after it (a check-then-
/// count throttle lets every attempt that arrives before the first failure is counted through).
/// Attempts that succeed give their place back and count nothing.
///
/// A counter under which an attempt succeeded, with no failure since, is *vouched*: its attempts
/// are not capped in flight, so a resource server introspecting many tokens at once, or a
/// backend redeeming many codes, is never queued behind the limit. The first failure ends it, so
/// at worst the attempts already in flight when a failure is counted are evaluated beyond the
/// limit, and only by callers at an address that was just used successfully.
/// The counter under `key` in the current window: a new one, or one whose window has passed,
/// starts again from nothing at `now`.
fn current(counts: &mut HashMap<String, Entry>, key: String, now: i64) -> &mut Entry {
    let e = counts.entry(key).or_insert(Entry {
        failures: 0,
        start: now,
        in_flight: 0,
        vouched_until: 0,
    });
    if now >= e.start + WINDOW {
        (e.failures, e.start) = (0, now);
    }
    e
}

#[derive(Default)]
pub struct Throttle {
    counts: Mutex<HashMap<String, Entry>>,
    freed: tokio::sync::Notify,
}

/// An attempt in flight under some counters. [`Attempt::failed`] counts it as a failure;
/// dropped otherwise (it succeeded, or the request was abandoned before its answer could be
/// seen), it counts nothing.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    keys: Vec<String>,
    now: i64,
    failed: bool,
}

impl Attempt<'_> {
    /// Counts this attempt as a failure (a wrong secret, an unknown token).
    pub fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        {
            let mut counts = self.throttle.lock();
            for key in &self.keys {
                if let Some(e) = counts.get_mut(key) {
                    e.in_flight = e.in_flight.saturating_sub(1);
                    if self.failed {
                        if self.now >= e.start + WINDOW {
                            (e.failures, e.start) = (0, self.now);
                        }
                        e.failures = e.failures.saturating_add(1);
                        e.vouched_until = 0;
                    } else if e.failures == 0 {
                        e.vouched_until = self.now + VOUCHED;
                    }
                }
            }
        }
        self.throttle.freed.notify_waiters();
    }
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // The counts stay consistent under a panic elsewhere (each update is a few integer
        // writes), so a poisoned lock is used rather than opened up.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds to wait, when this client at this address has failed too often.
    pub fn blocked(&self, client_id: &str, addr: Option<IpAddr>, now: i64) -> Option<i64> {
        let [by_addr, by_pair] = keys(client_id, addr)?;
        self.over(&by_pair, PER_PAIR, now)
            .or_else(|| self.over(&by_addr, PER_ADDRESS, now))
    }

    /// Seconds to wait, when this address has presented too many unknown tokens or codes.
    pub fn guessing(&self, addr: Option<IpAddr>, now: i64) -> Option<i64> {
        self.over(
            &format!("guess|{}", source(addr?)),
            GUESSES_PER_ADDRESS,
            now,
        )
    }

    /// Counts one stored authorization request from `addr` (an unknown address counts under
    /// one shared key: never uncounted). `Some(wait)`: the address made [`PENDING_PER_ADDRESS`]
    /// in this window already; this one is refused and not counted.
    pub fn pending_request(&self, addr: Option<IpAddr>, now: i64) -> Option<i64> {
        let key = format!("pending|{}", addr.map_or_else(|| "unknown".into(), source));
        let mut counts = self.lock();
        if counts.len() >= MAX_ENTRIES {
            evict(&mut counts, now);
        }
        let e = current(&mut counts, key, now);
        if e.failures >= PENDING_PER_ADDRESS {
            return Some(e.start + WINDOW - now);
        }
        e.failures += 1;
        None
    }

    fn over(&self, key: &str, limit: u32, now: i64) -> Option<i64> {
        self.lock()
            .get(key)
            .filter(|e| e.failures >= limit && now < e.start + WINDOW)
            .map(|e| e.start + WINDOW - now)
    }

    /// Reserves one attempt under each group of counters, all at once (so two requests never
    /// hold part of what the other waits for). Waits while the counters' places are taken by
    /// attempts in flight; refused once any counter's failures reach its limit.
    pub async fn reserve<const N: usize>(
        &self,
        groups: [Vec<Counter>; N],
        now: i64,
    ) -> Result<[Attempt<'_>; N], Refused> {
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut counts = self.lock();
                if counts.len() >= MAX_ENTRIES {
                    evict(&mut counts, now);
                }
                let mut room = true;
                for c in groups.iter().flatten() {
                    let e = current(&mut counts, c.key.clone(), now);
                    if e.failures >= c.limit {
                        let wait = e.start + WINDOW - now;
                        return Err(if c.guessing {
                            Refused::Guessing(wait)
                        } else {
                            Refused::Failures(wait)
                        });
                    }
                    let vouched = e.failures == 0 && now < e.vouched_until;
                    room &= vouched || e.failures.saturating_add(e.in_flight) < c.limit;
                }
                if room {
                    for c in groups.iter().flatten() {
                        if let Some(e) = counts.get_mut(&c.key) {
                            e.in_flight += 1;
                        }
                    }
                    return Ok(groups.map(|g| Attempt {
                        throttle: self,
                        keys: g.into_iter().map(|c| c.key).collect(),
                        now,
                        failed: false,
                    }));
                }
            }
            // Bounded: a caller is answered, never parked for ever behind others' attempts.
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(if groups.iter().flatten().any(|c| c.guessing) {
                    Refused::Guessing(1)
                } else {
                    Refused::Failures(1)
                });
            }
        }
    }
}

/// Makes room in a full map: windows that ended go first, then the oldest windows, down to 90%
/// of the cap, so a flood of new keys costs one sweep per tenth of the cap rather than one per
/// request. Entries with attempts in flight are kept (their `Attempt`s will look them up).
fn evict(counts: &mut HashMap<String, Entry>, now: i64) {
    counts.retain(|_, e| e.in_flight > 0 || now < e.start + WINDOW);
    let keep = MAX_ENTRIES - MAX_ENTRIES / 10;
    if counts.len() > keep {
        let mut starts: Vec<i64> = counts
            .values()
            .filter(|e| e.in_flight == 0)
            .map(|e| e.start)
            .collect();
        let excess = counts.len() - keep;
        if excess < starts.len() {
            starts.select_nth_unstable(excess);
            let cutoff = starts[excess];
            counts.retain(|_, e| e.in_flight > 0 || e.start > cutoff);
        } else {
            counts.retain(|_, e| e.in_flight > 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fail_client(
        t: &Throttle,
        client: &str,
        addr: IpAddr,
        now: i64,
    ) -> Result<(), Refused> {
        let [a] = t
            .reserve([client_counters(client, Some(addr))], now)
            .await?;
        a.failed();
        Ok(())
    }

    #[tokio::test]
    async fn a_pair_is_blocked_after_its_failures_and_others_are_not() {
        let t = Throttle::default();
        let attacker: IpAddr = "10.0.0.9".parse().unwrap();
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..PER_PAIR {
            assert!(fail_client(&t, "app", attacker, 100).await.is_ok());
        }
        assert!(t.blocked("app", Some(attacker), 100).is_some());
        assert_eq!(
            fail_client(&t, "app", attacker, 100).await,
            Err(Refused::Failures(WINDOW))
        );
        assert!(
            t.blocked("app", Some(client), 100).is_none(),
            "the legitimate client elsewhere is not locked out"
        );
        assert!(
            fail_client(&t, "app", attacker, 100 + WINDOW).await.is_ok(),
            "the window ends"
        );
    }

    #[tokio::test]
    async fn attempts_in_flight_take_the_places_of_failures() {
        let t = Throttle::default();
        let a: IpAddr = "10.0.0.9".parse().unwrap();
        let mut held = hold(&t, a, PER_PAIR, 100).await;
        // An eleventh waits while ten are in flight; a success gives its place back.
        let waiting = t.reserve([client_counters("app", Some(a))], 100);
        tokio::pin!(waiting);
        assert!(futures_poll_once(waiting.as_mut()).await.is_none());
        drop(held.pop());
        assert!(waiting.await.is_ok());
        // Ten failures, one of them counted while others were in flight, refuse the next.
        for x in held {
            x.failed();
        }
    }

    #[tokio::test]
    async fn a_counter_that_just_succeeded_is_not_capped_in_flight_until_a_failure() {
        let t = Throttle::default();
        let a: IpAddr = "10.0.0.9".parse().unwrap();
        let [ok] = t
            .reserve([client_counters("app", Some(a))], 100)
            .await
            .unwrap();
        drop(ok);
        // A resource server introspecting many tokens at once: far past the limit in flight.
        let mut held = hold(&t, a, PER_PAIR * 5, 101).await;
        // One failure ends it: with the rest still in flight, the next attempt waits.
        held.pop().unwrap().failed();
        let waiting = t.reserve([client_counters("app", Some(a))], 102);
        tokio::pin!(waiting);
        assert!(futures_poll_once(waiting.as_mut()).await.is_none());
        drop(held);
        assert!(waiting.await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_for_a_place_is_bounded() {
        let t = Throttle::default();
        let a: IpAddr = "10.0.0.9".parse().unwrap();
        let _held = hold(&t, a, PER_PAIR, 100).await;
        let refused = t.reserve([client_counters("app", Some(a))], 100).await;
        assert!(matches!(refused, Err(Refused::Failures(1))));
    }

    #[tokio::test]
    async fn made_up_client_ids_cannot_grow_the_counts_past_the_cap() {
        let t = Throttle::default();
        let a: IpAddr = "10.0.0.9".parse().unwrap();
        let long = "x".repeat(10_000);
        for i in 0..(MAX_ENTRIES + MAX_ENTRIES / 2) {
            let [x] = t
                .reserve([client_counters(&format!("{long}{i}"), Some(a))], 100)
                .await
                .unwrap();
            drop(x);
        }
        let counts = t.lock();
        assert!(counts.len() <= MAX_ENTRIES, "{}", counts.len());
        assert!(counts.keys().all(|k| k.len() < 80), "keys stay small");
    }

    /// `n` attempts of the client "app" at `a`, held in flight.
    async fn hold(t: &Throttle, a: IpAddr, n: u32, now: i64) -> Vec<Attempt<'_>> {
        let mut held = Vec::new();
        for _ in 0..n {
            let [x] = t
                .reserve([client_counters("app", Some(a))], now)
                .await
                .unwrap();
            held.push(x);
        }
        held
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        tokio::time::timeout(std::time::Duration::ZERO, f)
            .await
            .ok()
    }

    #[tokio::test]
    async fn an_address_presenting_unknown_tokens_is_slowed_down() {
        let t = Throttle::default();
        let scanner: IpAddr = "10.0.0.9".parse().unwrap();
        for _ in 0..GUESSES_PER_ADDRESS {
            let [g] = t
                .reserve([guess_counters(Some(scanner))], 100)
                .await
                .unwrap();
            g.failed();
        }
        assert_eq!(t.guessing(Some(scanner), 100), Some(WINDOW));
        assert!(t.guessing(Some("10.0.0.1".parse().unwrap()), 100).is_none());
    }

    #[test]
    fn delays_grow_and_are_forgotten() {
        let s = SIGN_IN_PER_ACCOUNT_AND_ADDRESS;
        let free = i64::from(s.free);
        assert_eq!(s.wait(free - 1, 100, 100), None);
        assert_eq!(s.wait(free, 100, 100), Some(s.first_delay));
        assert_eq!(s.wait(free + 1, 100, 100), Some(2 * s.first_delay));
        assert_eq!(s.wait(free + 60, 100, 100), Some(s.max_delay));
        assert_eq!(s.wait(free, 100, 100 + s.first_delay), None);
        assert_eq!(s.wait(free + 60, 100, 100 + s.forget), None);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(source(a), source(b));
        assert_eq!(source("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}

//! Time and randomness, injected so that expiry and entropy are testable.

use std::sync::atomic::{AtomicI64, Ordering};

use scopegate_core::Entropy;

/// A source of the current Unix time in seconds.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A clock for tests: frozen at the time it was made, moved only by [`OffsetClock::advance`],
/// so expiry arithmetic is exact however slow the machine is.
pub struct OffsetClock(AtomicI64);

impl Default for OffsetClock {
    fn default() -> Self {
        OffsetClock(AtomicI64::new(SystemClock.now()))
    }
}

impl OffsetClock {
    /// A clock frozen at `t`.
    pub fn at(t: i64) -> Self {
        OffsetClock(AtomicI64::new(t))
    }

    /// Moves time forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The operating system's CSPRNG.
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        // getrandom only fails when the OS has no entropy source at all; serving tokens then
        // would be unsafe, so stopping is the right answer.
        if let Err(e) = getrandom::getrandom(buf) {
            panic!("the operating system's random source failed: {e}");
        }
    }
}

/// A random identifier of `len` characters from [A-Za-z0-9].
pub fn random_id(entropy: &dyn Entropy, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        entropy.fill(&mut buf);
        for &b in &buf {
            // Rejection sampling keeps every character equally likely.
            if (b as usize) < 248 && out.len() < len {
                out.push(ALPHABET[(b as usize) % 62] as char);
            }
        }
    }
    out
}

/// The UTC date of a Unix time.
pub fn date_of(t: i64) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|d| d.date())
        .unwrap_or(time::Date::MIN)
}

/// The Unix time of the end of a UTC date (23:59:59).
pub fn end_of(d: time::Date) -> i64 {
    d.with_hms(23, 59, 59)
        .map(|t| t.assume_utc().unix_timestamp())
        .unwrap_or(i64::MAX)
}

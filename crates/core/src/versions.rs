//! `LinkedIn-Version` on /rest: which versions of the versioned API are active (docs/routes.md
//! "Versions"). LinkedIn releases a version a month (`YYYYMM`) and supports each "for a minimum
//! of one year before sunset"; a sunset or unknown version answers 426 NONEXISTENT_VERSION.

/// The day of the month a version is sunset, a year after its release: LinkedIn's migrations
/// table sunsets version YYYYMM in the middle of month MM of the next year (202410 on October 15
/// 2025, 202409 on September 15 2025).
const SUNSET_DAY: u8 = 15;

/// The active versions: LinkedIn's published window by default, or a list an operator pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiVersions {
    /// Each monthly version is active from the first day of its month until the 15th of the
    /// same month `months` later, relative to the service clock.
    Window { months: u32 },
    /// Exactly these versions (`YYYYMM`), whatever the clock says.
    Listed(Vec<String>),
}

impl Default for ApiVersions {
    /// LinkedIn's window: a year of monthly versions.
    fn default() -> ApiVersions {
        ApiVersions::Window { months: 12 }
    }
}

/// A well-formed `LinkedIn-Version`: `YYYYMM`, or `YYYYMM.RR` (a revision, which LinkedIn's
/// own client can send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion {
    year: i32,
    month: u8,
}

impl ApiVersion {
    /// Parses `YYYYMM` or `YYYYMM.RR`; anything else is no version.
    pub fn parse(raw: &str) -> Option<ApiVersion> {
        let (base, revision) = match raw.split_once('.') {
            Some((b, r)) => (b, Some(r)),
            None => (raw, None),
        };
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(base, 6) || revision.is_some_and(|r| !digits(r, 2)) {
            return None;
        }
        let year: i32 = base[..4].parse().ok()?;
        let month: u8 = base[4..].parse().ok()?;
        (1..=12)
            .contains(&month)
            .then_some(ApiVersion { year, month })
    }

    /// `YYYYMM`.
    pub fn name(&self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }

    /// Months since year 0, to compare versions with dates.
    fn index(&self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    fn of_index(i: i64) -> ApiVersion {
        ApiVersion {
            year: i32::try_from(i.div_euclid(12)).unwrap_or(0),
            month: u8::try_from(i.rem_euclid(12) + 1).unwrap_or(1),
        }
    }
}

/// Today's month index and day of the month, in UTC.
fn today(now: i64) -> (i64, u8) {
    let d = time::OffsetDateTime::from_unix_timestamp(now)
        .map(|d| d.date())
        .unwrap_or(time::Date::MIN);
    (
        i64::from(d.year()) * 12 + i64::from(u8::from(d.month())) - 1,
        d.day(),
    )
}

impl ApiVersions {
    /// Is `v` active at `now`?
    pub fn is_active(&self, v: &ApiVersion, now: i64) -> bool {
        match self {
            ApiVersions::Window { months } => {
                let (month, day) = today(now);
                let sunset = v.index() + i64::from(*months);
                v.index() <= month && (month < sunset || (month == sunset && day < SUNSET_DAY))
            }
            ApiVersions::Listed(names) => names.iter().any(|n| *n == v.name()),
        }
    }

    /// The active versions at `now`, newest first.
    pub fn active(&self, now: i64) -> Vec<String> {
        match self {
            ApiVersions::Window { months } => {
                let (month, _) = today(now);
                (0..=i64::from(*months))
                    .map(|back| ApiVersion::of_index(month - back))
                    .filter(|v| self.is_active(v, now))
                    .map(|v| v.name())
                    .collect()
            }
            ApiVersions::Listed(names) => {
                let mut n = names.clone();
                n.sort_by(|a, b| b.cmp(a));
                n
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u8, d: u8) -> i64 {
        let date = time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
        date.midnight().assume_utc().unix_timestamp()
    }

    #[test]
    fn only_yyyymm_and_revisions_are_versions() {
        assert!(ApiVersion::parse("202611").is_some());
        assert!(ApiVersion::parse("202611.01").is_some());
        for bad in [
            "", "2026", "2026111", "202613", "202600", "202611.1", "20261a", "nope",
        ] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_window_is_a_year_of_monthly_versions_sunset_mid_month() {
        let w = ApiVersions::default();
        let v = |s| ApiVersion::parse(s).unwrap();
        let now = at(2026, 12, 4);
        assert!(w.is_active(&v("202612"), now));
        assert!(w.is_active(&v("202601"), now));
        // 202512 is sunset on December 15 2026; 202511 already was.
        assert!(w.is_active(&v("202512"), now));
        assert!(!w.is_active(&v("202512"), at(2026, 12, 15)));
        assert!(!w.is_active(&v("202511"), now));
        // A version from the future does not exist yet.
        assert!(!w.is_active(&v("202701"), now));
        assert_eq!(w.active(now).len(), 13);
        assert_eq!(w.active(now)[0], "202612");
        assert_eq!(w.active(at(2026, 12, 20)).len(), 12);
    }

    #[test]
    fn a_listed_table_ignores_the_clock() {
        let l = ApiVersions::Listed(vec!["202401".into(), "202402".into()]);
        let v = |s| ApiVersion::parse(s).unwrap();
        assert!(l.is_active(&v("202401"), at(2030, 1, 1)));
        assert!(!l.is_active(&v("202403"), at(2024, 3, 2)));
        assert_eq!(l.active(0), vec!["202402", "202401"]);
    }
}

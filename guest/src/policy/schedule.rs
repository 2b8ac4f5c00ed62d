//! Calendar arithmetic in UTC: monthly runs and retry delays.

use chrono::{DateTime, Months, Utc};

use crate::model::Timestamp;

const MINUTE: Timestamp = 60 * 1000;
const DAY: Timestamp = 24 * 60 * MINUTE;

/// How long after a failed attempt the next one runs (R5): attempts fall at
/// T, T+5m, T+35m and T+2h35m.
const RETRY_DELAYS: [Timestamp; 3] = [5 * MINUTE, 30 * MINUTE, 120 * MINUTE];

/// When run `n` of a monthly schedule falls: the anchor plus `n` calendar months,
/// the day clamped to the month's last day. Always counted from the anchor, never
/// from the previous run, so a clamped month does not drift the later ones
/// (Jan 31 → Feb 28 → Mar 31). `None` outside the calendar's range.
pub(super) fn nth_run(anchor: Timestamp, n: u32) -> Option<Timestamp> {
    DateTime::<Utc>::from_timestamp_millis(anchor)?
        .checked_add_months(Months::new(n))
        .map(|run| run.timestamp_millis())
}

/// The UTC calendar month of a point in time, as `year × 12 + month0`: months
/// compare and follow each other as integers.
pub(super) fn month_index(at: Timestamp) -> Option<i64> {
    // Integer civil-from-days (H. Hinnant): on the hot path of every recharge,
    // where a calendar library costs more than the rest of the decision.
    let days = at.div_euclid(86_400_000);
    // About ±270,000 years, as far as calendars (and chrono) go.
    if days.unsigned_abs() > 100_000_000 {
        return None;
    }
    let shifted = days.checked_add(719_468)?;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let month0 = if month_from_march < 10 {
        month_from_march + 2
    } else {
        month_from_march - 10
    };
    let year = year_of_era + era * 400 + i64::from(month0 < 2);
    // The bound on days keeps the year within ±300,000: no overflow.
    Some(year * 12 + month0)
}

/// When the retry after failed attempt `attempt` (1-based) runs, or `None` when
/// that attempt was the last.
pub(super) fn retry_at(attempted_at: Timestamp, attempt: u8) -> Option<Timestamp> {
    let delay = RETRY_DELAYS.get(usize::from(attempt).checked_sub(1)?)?;
    attempted_at.checked_add(*delay)
}

/// The next 00:00 UTC after `at`: when a day's count of auto-recharges starts
/// afresh. `None` past the end of time.
pub(super) fn next_utc_day(at: Timestamp) -> Option<Timestamp> {
    at.div_euclid(DAY).checked_add(1)?.checked_mul(DAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::at;
    use chrono::Datelike;

    #[test]
    fn month_index_agrees_with_the_calendar() {
        let day = 86_400_000i64;
        let mut moment = -200 * 365 * day;
        while moment < 400 * 365 * day {
            let calendar = DateTime::<Utc>::from_timestamp_millis(moment).unwrap();
            let expected = i64::from(calendar.year()) * 12 + i64::from(calendar.month0());
            assert_eq!(month_index(moment), Some(expected), "{calendar}");
            moment += 7 * day + 3_600_000 + 17;
        }
        assert_eq!(month_index(at("2028-02-29 23:59")), Some(2028 * 12 + 1));
        assert_eq!(month_index(at("2027-01-01 00:00")), Some(2027 * 12));
        assert_eq!(month_index(at("2026-12-31 23:59")), Some(2026 * 12 + 11));
    }

    #[test]
    fn runs_clamp_to_month_end_without_drifting() {
        let anchor = at("2027-01-31 10:30");
        let runs: alloc::vec::Vec<_> = (0..4).map(|n| nth_run(anchor, n).unwrap()).collect();
        assert_eq!(
            runs,
            [
                at("2027-01-31 10:30"),
                at("2027-02-28 10:30"),
                at("2027-03-31 10:30"),
                at("2027-04-30 10:30")
            ]
        );
        assert_eq!(
            nth_run(at("2028-01-31 00:00"), 1),
            Some(at("2028-02-29 00:00"))
        );
        assert_eq!(
            nth_run(at("2027-01-31 00:00"), 13),
            Some(at("2028-02-29 00:00"))
        );
    }

    #[test]
    fn out_of_range_is_none() {
        assert_eq!(nth_run(Timestamp::MAX, 1), None);
        assert_eq!(nth_run(at("2027-01-31 00:00"), u32::MAX), None);
        assert_eq!(month_index(Timestamp::MIN), None);
    }

    #[test]
    fn months_are_consecutive_integers() {
        let december = month_index(at("2026-12-31 23:59")).unwrap();
        let january = month_index(at("2027-01-01 00:00")).unwrap();
        assert_eq!(january, december + 1);
    }

    #[test]
    fn the_next_utc_day_starts_at_midnight() {
        assert_eq!(
            next_utc_day(at("2027-01-15 12:00")),
            Some(at("2027-01-16 00:00"))
        );
        assert_eq!(
            next_utc_day(at("2027-01-16 00:00")),
            Some(at("2027-01-17 00:00"))
        );
        assert_eq!(
            next_utc_day(at("1969-12-31 23:59")),
            Some(at("1970-01-01 00:00"))
        );
        assert_eq!(next_utc_day(Timestamp::MAX), None);
    }

    #[test]
    fn retries_follow_5m_30m_2h() {
        let t = at("2027-01-01 00:00");
        assert_eq!(retry_at(t, 1), Some(at("2027-01-01 00:05")));
        assert_eq!(retry_at(t, 2), Some(at("2027-01-01 00:30")));
        assert_eq!(retry_at(t, 3), Some(at("2027-01-01 02:00")));
        assert_eq!(retry_at(t, 4), None);
        assert_eq!(retry_at(t, 0), None);
    }
}

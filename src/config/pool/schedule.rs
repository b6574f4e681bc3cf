//! `[pool] schedule`: times of the week with another pool size, such as
//! `"Mon,Thu 08:30-12:00 size=40"` or `"Mon-Fri 13:00-15:00 size=25"`.
//! Times are UTC: a course's hours are written once, not reinterpreted by
//! the server's local zone or its daylight saving.

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc, Weekday};
use serde::Deserialize;

/// One entry: on these days, from `start` (included) to `end` (excluded),
/// the pool holds `size` VMs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ScheduleEntry {
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub size: u32,
}

impl TryFrom<String> for ScheduleEntry {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

const SHAPE: &str = "expected \"<days> HH:MM-HH:MM size=N\" such as \"Mon,Thu 08:30-12:00 size=40\" or \"Mon-Fri 13:00-15:00 size=25\" (UTC)";

impl ScheduleEntry {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{text:?}: {why}; {SHAPE}");
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [days, times, size] = parts.as_slice() else {
            return Err(bad("three parts are needed"));
        };
        let days = parse_days(days).map_err(|why| bad(&why))?;
        let (start, end) = times
            .split_once('-')
            .ok_or_else(|| bad("the times are written HH:MM-HH:MM"))?;
        let time = |t: &str| {
            NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| bad(&format!("{t:?} is no HH:MM")))
        };
        let (start, end) = (time(start)?, time(end)?);
        if end <= start {
            return Err(bad("the end must be after the start on the same day"));
        }
        let size = size
            .strip_prefix("size=")
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| bad("the size is written size=N"))?;
        Ok(Self {
            days,
            start,
            end,
            size,
        })
    }

    /// Whether `now` falls in this entry.
    pub fn covers(&self, now: DateTime<Utc>) -> bool {
        let time =
            NaiveTime::from_hms_opt(now.hour(), now.minute(), now.second()).expect("a time of day");
        self.days.contains(&now.weekday()) && self.start <= time && time < self.end
    }
}

/// `Mon`, `Mon,Thu` or `Mon-Fri` (English three-letter names).
fn parse_days(text: &str) -> Result<Vec<Weekday>, String> {
    let day = |d: &str| {
        d.parse::<Weekday>()
            .ok()
            .filter(|_| d.len() == 3)
            .ok_or_else(|| format!("{d:?} is no day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
    };
    if let Some((from, to)) = text.split_once('-') {
        let (from, to) = (day(from)?, day(to)?);
        if to.num_days_from_monday() < from.num_days_from_monday() {
            return Err(format!("{text:?} runs backwards; write Mon-Fri"));
        }
        let mut days = vec![from];
        let mut d = from;
        while d != to {
            d = d.succ();
            days.push(d);
        }
        return Ok(days);
    }
    text.split(',').map(day).collect()
}

/// The pool size at `now`: the largest of the entries that cover it, else
/// `size`.
pub fn size_at(size: u32, schedule: &[ScheduleEntry], now: DateTime<Utc>) -> u32 {
    schedule
        .iter()
        .filter(|e| e.covers(now))
        .map(|e| e.size)
        .max()
        .unwrap_or(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        // 2026-12-07 is a Monday.
        Utc.with_ymd_and_hms(2026, 12, day, h, m, 0).unwrap()
    }

    #[test]
    fn entries_parse_strictly() {
        let e = ScheduleEntry::parse("Mon,Thu 08:30-12:00 size=40").unwrap();
        assert_eq!(e.days, vec![Weekday::Mon, Weekday::Thu]);
        assert_eq!(e.size, 40);
        let e = ScheduleEntry::parse("Mon-Fri 13:00-15:00 size=0").unwrap();
        assert_eq!(e.days.len(), 5);
        for bad in [
            "",
            "Mon 08:30-12:00",
            "Monday 08:30-12:00 size=4",
            "Mon 8h30-12:00 size=4",
            "Mon 12:00-08:30 size=4",
            "Mon 08:30-12:00 size=-1",
            "Mon 08:30-12:00 n=4",
            "Fri-Mon 08:30-12:00 size=4",
            "Mon 08:30-25:00 size=4",
            "Mon 08:30-12:00 size=4 extra",
        ] {
            let e = ScheduleEntry::parse(bad).unwrap_err();
            assert!(e.contains("HH:MM-HH:MM size=N"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_size_is_the_largest_entry_that_covers_now() {
        let schedule = [
            ScheduleEntry::parse("Mon 08:30-12:00 size=40").unwrap(),
            ScheduleEntry::parse("Mon-Fri 11:00-13:00 size=10").unwrap(),
        ];
        for (now, want) in [
            (at(7, 8, 29), 2),
            (at(7, 8, 30), 40),
            (at(7, 11, 59), 40),
            (at(7, 12, 0), 10),
            (at(7, 13, 0), 2),
            (at(8, 9, 0), 2),
            (at(11, 11, 30), 10),
            (at(12, 11, 30), 2),
        ] {
            assert_eq!(size_at(2, &schedule, now), want, "{now}");
        }
    }
}

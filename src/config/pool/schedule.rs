//! `[pool] schedule`: times of the week with another pool size, such as
//! `"Mon,Thu 08:30-12:00 size=40"` or `"Mon-Fri 13:00-15:00 size=25"`.
//! Times are UTC: a course's hours are written once, not reinterpreted by
//! the server's local zone or its daylight saving.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use serde::Deserialize;

/// One entry: on these days, from `start` (included) to `end` (excluded),
/// in minutes of the day (`end` may be 24:00, the day's end), the pool
/// holds `size` VMs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ScheduleEntry {
    pub days: Vec<Weekday>,
    pub start: u32,
    pub end: u32,
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
        let time = |t: &str| minutes(t).ok_or_else(|| bad(&format!("{t:?} is no HH:MM")));
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
        let minute = now.hour() * 60 + now.minute();
        self.days.contains(&now.weekday()) && self.start <= minute && minute < self.end
    }
}

/// `HH:MM` as minutes of the day, 00:00 to 24:00.
fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let total = h * 60 + m;
    (m < 60 && total <= 24 * 60).then_some(total)
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
        assert_eq!((e.start, e.end), (13 * 60, 15 * 60));
        let e = ScheduleEntry::parse("Sun 22:00-24:00 size=1").unwrap();
        assert_eq!(e.end, 24 * 60);
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
            "Mon 08:30-24:01 size=4",
            "Mon 8:30-12:00 size=4",
            "Mon 08:60-12:00 size=4",
            "Mon 08:30-12:00 size=4 extra",
        ] {
            let e = ScheduleEntry::parse(bad).unwrap_err();
            assert!(e.contains("HH:MM-HH:MM size=N"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_size_is_the_largest_entry_that_covers_now() {
        let mut schedule = vec![
            ScheduleEntry::parse("Mon 08:30-12:00 size=40").unwrap(),
            ScheduleEntry::parse("Mon-Fri 11:00-13:00 size=10").unwrap(),
        ];
        // A whole Sunday: another size, smaller too.
        assert_eq!(size_at(2, &schedule, at(13, 23, 59)), 2);
        schedule.push(ScheduleEntry::parse("Sun 00:00-24:00 size=0").unwrap());
        assert_eq!(size_at(2, &schedule, at(13, 23, 59)), 0);
        schedule.pop();
        for (now, want) in [
            (at(7, 8, 29), 2),
            (at(7, 8, 30), 40),
            (at(7, 11, 59), 40),
            (at(7, 12, 0), 10),
            (at(7, 13, 0), 2),
            (at(8, 9, 0), 2),
            (at(11, 11, 30), 10),
            (at(12, 11, 30), 2),
            (at(13, 23, 59), 2),
        ] {
            assert_eq!(size_at(2, &schedule, now), want, "{now}");
        }
    }
}

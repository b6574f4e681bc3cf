//! Which progress reports of a VM count, and what they change: the rule
//! the store applies inside the transaction that reads the VM's standing
//! and writes the report, kept free of I/O so that every case is tested.

use super::{Phase, Progress, VmState};

/// Log lines kept per VM (each at most `store::MAX_EVENT_LEN` bytes), so a
/// chatty or hostile VM cannot fill the database.
pub const MAX_LOG_LINES_PER_VM: i64 = 5000;

/// What the store holds of a VM when one of its reports arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub state: VmState,
    pub progress: Option<Progress>,
    pub last_seq: i64,
}

/// What the VM reports: its sequence number and, maybe, its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub seq: i64,
    pub progress: Option<Progress>,
}

/// What to do with a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The VM is unknown or not launching (any more): nothing is kept.
    Refused,
    /// Not newer than the last report (a replay or a late retry).
    Stale,
    /// Record the sequence number, then the log lines as `log` says.
    Accepted {
        /// The progress moves forward to this.
        advance: Option<Advance>,
        log: LogRule,
    },
}

/// A move of the VM's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    pub to: Progress,
    /// With `to == Failed`: the phase it failed in, if it had reported one.
    pub failed_during: Option<Phase>,
}

/// How many of a report's log lines are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRule {
    /// All of them: the report moves the phase forward (at most five such
    /// reports exist), and its lines say why a launch failed.
    KeepAll,
    /// Up to `MAX_LOG_LINES_PER_VM` for the VM: see `LogRule::kept`.
    Capped,
}

/// The lines a report keeps of those it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    pub lines: usize,
    /// This report reaches the cap: say once that later lines are dropped.
    pub warn_cap_reached: bool,
}

/// Judge a report against the VM's standing (`None`: no such VM).
pub fn judge(standing: Option<Standing>, report: Report) -> Verdict {
    let Some(standing) = standing else {
        return Verdict::Refused;
    };
    // `creating` too: a server whose creation answer was lost (and not
    // yet adopted) is already running and reporting.
    if !matches!(
        standing.state,
        VmState::Creating | VmState::Booting | VmState::Building
    ) {
        return Verdict::Refused;
    }
    if report.seq <= standing.last_seq {
        return Verdict::Stale;
    }
    let forward = match (standing.progress, report.progress) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(Progress::Failed), Some(_)) => false,
        (Some(old), Some(new)) => new > old,
    };
    let advance = report.progress.filter(|_| forward).map(|to| Advance {
        to,
        failed_during: (to == Progress::Failed)
            .then(|| standing.progress.and_then(Progress::phase))
            .flatten(),
    });
    Verdict::Accepted {
        advance,
        log: if forward {
            LogRule::KeepAll
        } else {
            LogRule::Capped
        },
    }
}

impl LogRule {
    /// Whether `kept` needs the number of lines the VM has stored.
    pub fn needs_count(self) -> bool {
        self == Self::Capped
    }

    /// Of `sent` lines, with `stored` already kept for the VM.
    pub fn kept(self, stored: i64, sent: usize) -> Kept {
        match self {
            Self::KeepAll => Kept {
                lines: sent,
                warn_cap_reached: false,
            },
            Self::Capped => {
                let room = usize::try_from(MAX_LOG_LINES_PER_VM - stored).unwrap_or(0);
                Kept {
                    lines: sent.min(room),
                    warn_cap_reached: sent > room && room > 0,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Progress::*;

    fn standing(state: VmState, progress: Option<Progress>, last_seq: i64) -> Option<Standing> {
        Some(Standing {
            state,
            progress,
            last_seq,
        })
    }

    fn accepted(advance: Option<Advance>, log: LogRule) -> Verdict {
        Verdict::Accepted { advance, log }
    }

    fn to(to: Progress, failed_during: Option<Phase>) -> Option<Advance> {
        Some(Advance { to, failed_during })
    }

    #[test]
    fn reports_count_only_while_the_vm_launches() {
        let report = Report {
            seq: 1,
            progress: Some(Cloning),
        };
        assert_eq!(judge(None, report), Verdict::Refused, "an unknown VM");
        for state in [
            VmState::Requested,
            VmState::Ready,
            VmState::Failed,
            VmState::Deleting,
            VmState::Deleted,
        ] {
            assert_eq!(
                judge(standing(state, None, 0), report),
                Verdict::Refused,
                "{state}"
            );
        }
        for state in [VmState::Creating, VmState::Booting, VmState::Building] {
            assert_eq!(
                judge(standing(state, None, 0), report),
                accepted(to(Cloning, None), LogRule::KeepAll),
                "{state}"
            );
        }
    }

    #[test]
    fn only_a_report_newer_than_the_last_one_counts() {
        let building = |last_seq| standing(VmState::Building, Some(Cloning), last_seq);
        let report = |seq| Report {
            seq,
            progress: Some(Building),
        };
        assert_eq!(judge(building(5), report(4)), Verdict::Stale);
        assert_eq!(judge(building(5), report(5)), Verdict::Stale, "a replay");
        assert_eq!(
            judge(building(5), report(6)),
            accepted(to(Building, None), LogRule::KeepAll)
        );
    }

    #[test]
    fn progress_moves_only_forward_and_never_out_of_failed() {
        // (progress stored, progress reported, the move, the log rule)
        let table = [
            (None, None, None, LogRule::Capped),
            (None, Some(Starting), to(Starting, None), LogRule::KeepAll),
            (Some(Cloning), Some(Cloning), None, LogRule::Capped),
            (Some(Cloning), None, None, LogRule::Capped),
            (Some(Building), Some(Cloning), None, LogRule::Capped),
            (
                Some(Building),
                Some(Ready),
                to(Ready, None),
                LogRule::KeepAll,
            ),
            (Some(Ready), Some(Starting), None, LogRule::Capped),
            (Some(Failed), Some(Ready), None, LogRule::Capped),
            (Some(Failed), Some(Failed), None, LogRule::Capped),
        ];
        for (stored, reported, advance, log) in table {
            let verdict = judge(
                standing(VmState::Building, stored, 0),
                Report {
                    seq: 1,
                    progress: reported,
                },
            );
            assert_eq!(
                verdict,
                accepted(advance, log),
                "{stored:?} -> {reported:?}"
            );
        }
    }

    #[test]
    fn a_failure_remembers_the_phase_it_happened_in() {
        // (progress stored, the phase remembered)
        let table = [
            (None, None),
            (Some(Cloning), Some(Phase::Cloning)),
            (Some(Building), Some(Phase::Building)),
            (Some(Starting), Some(Phase::Starting)),
            (Some(Ready), Some(Phase::Starting)),
        ];
        for (stored, phase) in table {
            let verdict = judge(
                standing(VmState::Building, stored, 0),
                Report {
                    seq: 1,
                    progress: Some(Failed),
                },
            );
            assert_eq!(
                verdict,
                accepted(to(Failed, phase), LogRule::KeepAll),
                "{stored:?}"
            );
        }
    }

    #[test]
    fn log_lines_stop_at_the_cap_but_a_forward_report_keeps_all_of_its_own() {
        let max = MAX_LOG_LINES_PER_VM;
        // (rule, lines stored, lines sent, lines kept, warn)
        let table = [
            (LogRule::Capped, 0, 10, 10, false),
            (LogRule::Capped, max - 10, 10, 10, false),
            (LogRule::Capped, max - 10, 11, 10, true),
            (LogRule::Capped, max - 1, 200, 1, true),
            (LogRule::Capped, max, 200, 0, false),
            (LogRule::Capped, max + 7, 3, 0, false),
            (LogRule::Capped, 0, 0, 0, false),
            (LogRule::KeepAll, max, 200, 200, false),
            (LogRule::KeepAll, max + 7, 3, 3, false),
        ];
        for (rule, stored, sent, lines, warn_cap_reached) in table {
            assert_eq!(
                rule.kept(stored, sent),
                Kept {
                    lines,
                    warn_cap_reached
                },
                "{rule:?} with {stored} stored, {sent} sent"
            );
        }
        assert!(LogRule::Capped.needs_count());
        assert!(!LogRule::KeepAll.needs_count());
    }
}

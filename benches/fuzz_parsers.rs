//! Fuzz the parsers of what users type (repository URL and its Binder
//! forms, git ref, path to open) and of what VMs send (log lines, through
//! the same bench), with inputs biased towards hostile characters: shell
//! metacharacters, controls, escapes, unicode look-alikes, broken
//! %-escapes, and URL pieces. Asserts that nothing panics and that no
//! accepted value holds a control character, a space or a shell
//! metacharacter (nor anything but ASCII).
//!
//! Not part of `cargo test`; run it by hand or in CI:
//!
//! ```sh
//! cargo bench --bench fuzz_parsers                # 1,000,000 inputs
//! FUZZ_INPUTS=100000 FUZZ_SEED=42 cargo bench --bench fuzz_parsers
//! ```
//!
//! A failure prints the seed and the input, so it can be replayed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stackbinder::domain::{GitRef, LogLine, RepoPattern, RepoSpec, UrlPath};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// Pieces that break parsers: shell syntax, controls, escapes, URL parts.
const HOSTILE: &[&str] = &[
    "$",
    "`",
    ";",
    "|",
    "&",
    "<",
    ">",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "'",
    "\"",
    "\\",
    "*",
    "?",
    "!",
    "#",
    "^",
    "~",
    " ",
    "\t",
    "\n",
    "\r",
    "\0",
    "\u{7}",
    "\u{8}",
    "\u{1b}",
    "\u{1b}[31m",
    "\u{1b}]0;x\u{7}",
    "\u{7f}",
    "\u{85}",
    "\u{9b}",
    "\u{a0}",
    "\u{2028}",
    "\u{202e}",
    "\u{feff}",
    "\u{ff04}",
    "é",
    "ï",
    "ı",
    "%",
    "%0a",
    "%0A",
    "%00",
    "%1b",
    "%7f",
    "%20",
    "%24",
    "%2F",
    "%2e",
    "%zz",
    "%4",
    "%+4",
    "%C3%A9",
    ".",
    "..",
    "/",
    "//",
    "/../",
    "/./",
    "@",
    ":",
    "::",
    "-",
    "--",
    "=",
    "+",
    ",",
    "$(id)",
    "`id`",
    "${IFS}",
    ";reboot",
    "&&",
    "||",
    "\\x00",
    "https://",
    "http://",
    "HTTPS://",
    "https:",
    "ssh://",
    "file://",
    "git@",
    "ext::",
    "github.com",
    "gitlab.com",
    "127.0.0.1",
    "[::1]",
    "xn--",
    "user:pw@",
    ":443",
    ":22x",
    "?x=1",
    "#frag",
    ".git",
    ".lock",
    "@{-1}",
    "HEAD",
    "main",
    "refs/heads/",
    "lab/tree/",
    "tree/",
    "notebooks",
    "a.ipynb",
    "--upload-pack=",
    "-c",
    "*/",
    "**",
];

const PLAIN: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._";

/// Prefixes that take the parsers past their first checks.
const PREFIXES: &[&str] = &[
    "",
    "https://github.com/",
    "https://github.com/org/",
    "https://gitlab.example.org:8443/group/",
    "https://",
    "lab/tree/",
];

fn input(rng: &mut StdRng) -> String {
    let mut s = String::from(PREFIXES[rng.random_range(0..PREFIXES.len())]);
    for _ in 0..rng.random_range(0..10) {
        match rng.random_range(0..10) {
            0..=3 => s.push_str(HOSTILE[rng.random_range(0..HOSTILE.len())]),
            4..=8 => {
                for _ in 0..rng.random_range(1..8) {
                    s.push(char::from(PLAIN[rng.random_range(0..PLAIN.len())]));
                }
            }
            _ => s.push(rng.random::<char>()),
        }
    }
    s
}

/// A control character, a space, a shell metacharacter or anything but
/// ASCII: what no accepted value may hold.
fn bad_char(c: char) -> bool {
    !c.is_ascii()
        || c.is_ascii_control()
        || c.is_whitespace()
        || "`$;|&<>(){}[]'\"\\*?!#^".contains(c)
}

#[derive(Default)]
struct Accepted {
    repos: u64,
    binder_repos: u64,
    refs: u64,
    paths: u64,
    patterns: u64,
}

fn check_one(raw: &str, accepted: &mut Accepted) -> Result<(), String> {
    let clean = |what: &str, value: &str| match value.chars().find(|c| bad_char(*c)) {
        Some(c) => Err(format!("{what} accepted {value:?} holding {c:?}")),
        None => Ok(()),
    };
    if let Ok(repo) = RepoSpec::parse(raw) {
        accepted.repos += 1;
        clean("RepoSpec::parse", repo.as_str())?;
        if repo.host().is_empty() {
            return Err(format!("RepoSpec::parse accepted {raw:?} without a host"));
        }
        match RepoSpec::parse(repo.as_str()) {
            Ok(again) if again == repo => {}
            other => return Err(format!("{repo} does not parse back to itself: {other:?}")),
        }
    }
    let (org, rest) = raw.split_once('/').unwrap_or((raw, "x"));
    for repo in [RepoSpec::github(org, rest), RepoSpec::gitlab(raw)]
        .into_iter()
        .flatten()
    {
        accepted.binder_repos += 1;
        clean("a Binder provider", repo.as_str())?;
    }
    if let Ok(git_ref) = GitRef::parse(raw) {
        accepted.refs += 1;
        clean("GitRef::parse", git_ref.as_str())?;
        if git_ref.as_str().starts_with('-') {
            return Err(format!("GitRef::parse accepted the option {git_ref}"));
        }
    }
    for path in [
        UrlPath::parse(raw),
        UrlPath::lab_file(raw),
        UrlPath::file(raw),
    ]
    .into_iter()
    .flatten()
    {
        accepted.paths += 1;
        clean("UrlPath", path.as_str())?;
        if path.as_str().split('/').any(|seg| seg == "..") || path.as_str().contains("//") {
            return Err(format!("UrlPath accepted {path} leaving the server root"));
        }
    }
    if let Ok(pattern) = RepoPattern::parse(raw) {
        accepted.patterns += 1;
        let repo = RepoSpec::parse("https://github.com/org/repo").expect("a valid URL");
        let _ = pattern.matches(&repo);
    }
    let line = LogLine::from_vm(raw);
    if let Some(c) = line.as_str().chars().find(|c| c.is_control() && *c != '\t') {
        return Err(format!("LogLine kept {c:?} of {raw:?}"));
    }
    Ok(())
}

fn main() {
    let inputs: u64 = std::env::var("FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    // The parsers must not panic; a panic is reported with its input.
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut accepted = Accepted::default();
    let started = Instant::now();
    for n in 0..inputs {
        let raw = input(&mut rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| check_one(&raw, &mut accepted)));
        let failure = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(failure)) => failure,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                format!("a parser panicked: {message}")
            }
        };
        eprintln!("input {n} of seed {seed}: {raw:?}\n{failure}");
        std::process::exit(1);
    }
    let took = started.elapsed();
    println!(
        "fuzzed {inputs} inputs (seed {seed}) through every parser in {:.1} s ({:.0} inputs/s)",
        took.as_secs_f64(),
        inputs as f64 / took.as_secs_f64()
    );
    println!(
        "accepted: {} repository URLs, {} Binder-provider repositories, {} refs, {} paths, {} ban patterns",
        accepted.repos, accepted.binder_repos, accepted.refs, accepted.paths, accepted.patterns
    );
}

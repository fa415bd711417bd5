//! What a comment should come to under chaos, and the check that each came to it exactly
//! once on the simulator (shared by tests/chaos.rs and tests/instances.rs).
#![allow(dead_code)]

use igmod::simulator::Seen;

use super::Env;

/// What a comment should come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Delete,
    Hide,
    Leave,
}

pub const TEXTS: &[(&str, Expect)] = &[
    ("forex signals, dm me", Expect::Delete),
    ("join my crypto signal group", Expect::Delete),
    ("you idiot", Expect::Hide),
    ("what a scumbag", Expect::Hide),
    ("lovely colour", Expect::Leave),
    ("where can I buy this?", Expect::Leave),
    ("مرحبا، جميل جدا", Expect::Leave),
    (
        "Cafe\u{301} ve\u{301}ritable, tre\u{300}s chic",
        Expect::Leave,
    ),
    ("so classic \u{E000} love it", Expect::Leave),
    ("forex \u{E000} profits", Expect::Delete),
];

/// Checks every comment the simulator holds against what it should have come to, and
/// returns (moderated, duplicate writes, writes repeated after a read-back). Each duplicate
/// is printed with the requests made for its comment and the log lines that name it.
pub fn check_outcomes(
    env: &Env,
    expected: &[(String, Expect)],
    log: &std::path::Path,
) -> (usize, usize, usize) {
    let requests = env.sim.requests();
    let logs = std::fs::read_to_string(log).unwrap_or_default();
    let mut moderated = 0;
    let mut duplicates = 0;
    let mut reconciled_repeats = 0;
    for (id, expect) in expected {
        let Some(c) = env.sim.comment(id) else {
            panic!("comment {id} vanished from the simulator");
        };
        let text: String = c.text.chars().take(60).collect();
        match expect {
            Expect::Delete => assert!(c.deleted, "{id} ({text:?}) should be deleted"),
            Expect::Hide => assert!(c.hidden, "{id} ({text:?}) should be hidden"),
            Expect::Leave => assert!(
                !c.hidden && !c.deleted && c.hide_calls == 0 && c.delete_calls == 0,
                "{id} ({text:?}) was touched: hide {} delete {}",
                c.hide_calls,
                c.delete_calls
            ),
        }
        if *expect != Expect::Leave {
            moderated += 1;
        }
        // Every write request of the same action after the first needs, in between, a clean
        // read of the comment that showed the first one missing (not hidden after a hide,
        // still there after a delete). Any other read is no excuse.
        let path = format!("/{id}");
        let mut last_write: Option<&str> = None;
        let mut shown_missing = false;
        for r in requests.iter().filter(|r| r.path.ends_with(&path)) {
            match r.method.as_str() {
                "GET" => {
                    if let (Some(write), Some(seen)) = (last_write, r.seen) {
                        shown_missing = match (write, seen) {
                            ("POST", Seen::Present { hidden }) => !hidden,
                            ("DELETE", Seen::Present { .. }) => true,
                            _ => false,
                        };
                    }
                }
                write => {
                    if last_write == Some(write) {
                        if shown_missing {
                            reconciled_repeats += 1;
                        } else {
                            duplicates += 1;
                            let history: Vec<String> = requests
                                .iter()
                                .filter(|r| r.path.contains(id.as_str()))
                                .map(|r| {
                                    format!("{} {} {} {:?}", r.method, r.path, r.status, r.seen)
                                })
                                .collect();
                            let lines: Vec<&str> =
                                logs.lines().filter(|l| l.contains(id.as_str())).collect();
                            println!("duplicate write to {id}: {history:#?}\nlog: {lines:#?}");
                        }
                    }
                    last_write = Some(write);
                    shown_missing = false;
                }
            }
        }
    }
    (moderated, duplicates, reconciled_repeats)
}

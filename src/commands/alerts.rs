//! `igmod alerts test`: a test event sent to every `[[alerts]]` target, each result printed.

use std::process::ExitCode;

use super::config_failed;
use crate::config;

pub fn alerts_test(path: &std::path::Path) -> ExitCode {
    let c = match config::load(path) {
        Ok(c) => c,
        Err(e) => return config_failed(&e),
    };
    if c.alerts.is_empty() {
        eprintln!("igmod: no [[alerts]] in {}", path.display());
        return ExitCode::FAILURE;
    }
    let Ok(rt) = tokio::runtime::Runtime::new() else {
        return ExitCode::FAILURE;
    };
    let failed = rt.block_on(async {
        let http = match crate::alerts::AlertHttp::new() {
            Ok(h) => h,
            Err(e) => {
                eprintln!("igmod: {e}");
                return c.alerts.len();
            }
        };
        let event = crate::alerts::Event {
            kind: crate::config::alert_kind::AlertKind::AccountStopped,
            state: "test",
            account: c.accounts.first().map(|a| a.name.clone()),
            summary: "igmod alerts test: if you read this, igmod can reach you".into(),
            at: crate::timefmt::now(),
        };
        let mut failed = 0;
        for (i, t) in c.alerts.iter().enumerate() {
            let name = crate::alerts::describe(i, t);
            match crate::alerts::deliver_with_retries(&http, i, t, &event).await {
                Ok(()) => println!("{name}: sent"),
                Err(e) => {
                    println!("{name}: FAILED: {e}");
                    failed += 1;
                }
            }
        }
        failed
    });
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

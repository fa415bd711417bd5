//! Reviewers' logins and sessions: passwords compared in constant time (SHA-256 digests of
//! both sides, compared with `subtle`), random session ids kept server-side with an expiry,
//! one CSRF token per session, and failed logins slowed down per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Reviewer;

/// Failed logins a client may make before each further attempt waits.
pub const FREE_FAILURES: u32 = 10;
/// The longest a client is made to wait between attempts.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// A client's failures are forgotten after this long without one.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// A login ends after this long (or `session_ttl` if longer), even if used all along.
const MAX_LOGIN: Duration = Duration::from_secs(24 * 3600);
/// Most sessions and clients kept in memory: beyond, the oldest go first.
const MAX_ENTRIES: usize = 10_000;

/// A logged-in reviewer.
#[derive(Clone)]
pub struct Session {
    pub user: String,
    /// Sent back in every POST form and compared in constant time.
    pub csrf: String,
    expires: Instant,
    /// The login's end whatever the activity ([`Auth::lifetime`]).
    ends: Instant,
    /// SHA-256 of the password it logged in with: a new password ends the session.
    password: [u8; 32],
}

/// Without the CSRF token: a session printed (a log, a panic) gives nothing away.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("csrf", &"[redacted]")
            .field("expires", &self.expires)
            .field("ends", &self.ends)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The address failures are counted under: an IPv4 address (also written IPv4-mapped in
/// IPv6), or an IPv6 address's /64 — one host holds a whole /64, and counting each of its
/// addresses apart would give it 2^64 × [`FREE_FAILURES`] free tries.
pub fn throttle_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                v6.to_bits() & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// Sessions and login throttling, in memory: a restart logs reviewers out. Not `Debug`: its
/// map's keys are live session ids.
pub struct Auth {
    users: Vec<Reviewer>,
    ttl: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// Unknown name or wrong password (not saying which).
    Wrong,
    /// Too many failures from this client: try again after this long.
    SlowDown(Duration),
}

/// 32 random bytes, hex: a session id or a CSRF token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Constant-time equality of two strings of any length (their digests are compared).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

/// How long a client with `count` failures must wait after its last one: nothing for the
/// first [`FREE_FAILURES`], then 1 s doubling per failure, at most [`MAX_DELAY`].
pub fn delay_after(count: u32) -> Duration {
    if count < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (count - FREE_FAILURES).min(20);
    Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
}

impl Auth {
    pub fn new(users: Vec<Reviewer>, ttl: Duration) -> Auth {
        Auth {
            users,
            ttl,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Checks a login from `client`; on success, a new session's id and the session.
    pub fn login(
        &self,
        client: IpAddr,
        name: &str,
        password: &str,
    ) -> Result<(String, Session), LoginRefused> {
        let now = Instant::now();
        let client = throttle_key(client);
        // Counted as a failure before the passwords are compared (forgotten if it succeeds):
        // parallel tries cannot all pass the check before any is counted.
        let count = match self.attempt(client, now) {
            Ok(count) => count,
            Err(wait) => {
                tracing::warn!(message = "review login refused: too many failures from this client", client = %client, retry_after_secs = wait.as_secs());
                return Err(LoginRefused::SlowDown(wait));
            }
        };
        // Every configured reviewer's password is read and compared, whoever logs in: the
        // time taken says nothing about which names exist.
        let mut matched: Option<&Reviewer> = None;
        for user in &self.users {
            let name_ok = same_secret(user.name.as_bytes(), name.as_bytes());
            let password_ok = match user.password.load() {
                Ok(secret) => same_secret(secret.expose_secret().as_bytes(), password.as_bytes()),
                Err(e) => {
                    tracing::error!(message = "a reviewer's password cannot be read", reviewer = %user.name, error = %e);
                    false
                }
            };
            if name_ok && password_ok {
                matched = Some(user);
            }
        }
        let Some(user) = matched else {
            // The name typed is not logged: people type passwords into name fields.
            tracing::warn!(message = "review login failed", client = %client, failures = count);
            return Err(LoginRefused::Wrong);
        };
        if let Ok(mut f) = self.failures.lock() {
            f.remove(&client);
        }
        let id = random_token();
        let session = Session {
            user: user.name.clone(),
            csrf: random_token(),
            expires: now + self.ttl,
            ends: now + self.lifetime(),
            password: Sha256::digest(password.as_bytes()).into(),
        };
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, s| s.expires > now);
            if sessions.len() >= MAX_ENTRIES
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
            sessions.insert(id.clone(), session.clone());
        }
        tracing::info!(message = "reviewer logged in", reviewer = %user.name, client = %client);
        Ok((id, session))
    }

    /// The live session with this id, its expiry pushed back (sliding expiry) but never past
    /// its end: a stolen cookie in steady use still dies.
    pub fn session(&self, id: &str) -> Option<Session> {
        self.session_at(id, Instant::now())
    }

    /// How long a login lasts at most, however busy: a day, or `session_ttl` if longer.
    pub fn lifetime(&self) -> Duration {
        self.ttl.max(MAX_LOGIN)
    }

    fn session_at(&self, id: &str, now: Instant) -> Option<Session> {
        let found = self.sessions.lock().ok()?.get(id).cloned()?;
        // Read outside the lock (a file): the reviewer's password now, as at the login.
        let same_password = self
            .users
            .iter()
            .find(|u| u.name == found.user)
            .is_some_and(|u| {
                u.password.load().is_ok_and(|p| {
                    let now: [u8; 32] = Sha256::digest(p.expose_secret().as_bytes()).into();
                    bool::from(now.ct_eq(&found.password))
                })
            });
        let mut sessions = self.sessions.lock().ok()?;
        let s = sessions.get_mut(id)?;
        if s.expires <= now || s.ends <= now || !same_password {
            sessions.remove(id);
            if !same_password {
                tracing::info!(message = "review session ended: the reviewer's password changed", reviewer = %found.user);
            }
            return None;
        }
        s.expires = (now + self.ttl).min(s.ends);
        Some(s.clone())
    }

    pub fn logout(&self, id: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(id);
        }
    }

    /// One login attempt from `client`, in one step: refused with the time left to wait, or
    /// counted (as a failure until it succeeds), with the count.
    fn attempt(&self, client: IpAddr, now: Instant) -> Result<u32, Duration> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(f) = failures.get(&client) {
            let until = f.last + delay_after(f.count);
            if until > now {
                return Err(until - now);
            }
        }
        failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        if failures.len() >= MAX_ENTRIES
            && !failures.contains_key(&client)
            && let Some(oldest) = failures.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| *k)
        {
            failures.remove(&oldest);
        }
        let f = failures.entry(client).or_insert(Failures {
            count: 0,
            last: now,
        });
        f.count = f.count.saturating_add(1);
        f.last = now;
        Ok(f.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::TokenSource;

    /// One reviewer, ana, whose password "correct horse" is in `var` (each test its own).
    fn ana(var: &str, ttl: Duration) -> Auth {
        // SAFETY: each test sets its own variable, read by no other.
        unsafe { std::env::set_var(var, "correct horse") };
        Auth::new(
            vec![Reviewer {
                name: "ana".into(),
                password: TokenSource::Env(var.into()),
            }],
            ttl,
        )
    }

    #[test]
    fn an_ipv6_host_is_one_client_for_the_slow_down() {
        let auth = ana(
            "IGMOD_TEST_REVIEW_AUTH_PASSWORD_V6",
            Duration::from_secs(60),
        );
        // Ten failures, each from another address of one /64.
        for n in 0..FREE_FAILURES {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", n + 1).parse().unwrap();
            assert_eq!(
                auth.login(ip, "ana", "wrong").unwrap_err(),
                LoginRefused::Wrong
            );
        }
        let fresh: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(matches!(
            auth.login(fresh, "ana", "correct horse"),
            Err(LoginRefused::SlowDown(_))
        ));
        // Another /64 is another client.
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(auth.login(other, "ana", "correct horse").is_ok());
        assert_eq!(
            throttle_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_session_slides_with_use_but_ends_a_day_after_login() {
        let ttl = Duration::from_secs(3600);
        let auth = ana("IGMOD_TEST_REVIEW_AUTH_PASSWORD_LIFE", ttl);
        let client: IpAddr = "192.0.2.9".parse().unwrap();
        let (id, _) = auth.login(client, "ana", "correct horse").unwrap();
        let start = Instant::now();
        // A request every 50 minutes keeps it alive, until a day after the login.
        let mut at = start;
        while at + Duration::from_secs(50 * 60) < start + MAX_LOGIN {
            at += Duration::from_secs(50 * 60);
            assert!(auth.session_at(&id, at).is_some(), "{:?}", at - start);
        }
        assert!(
            auth.session_at(&id, start + MAX_LOGIN + Duration::from_secs(1))
                .is_none()
        );
        // Gone for good, not just refused once.
        assert!(auth.session_at(&id, start).is_none());
        // An idle hour ends one too.
        let (id, _) = auth.login(client, "ana", "correct horse").unwrap();
        assert!(
            auth.session_at(&id, Instant::now() + ttl + Duration::from_secs(1))
                .is_none()
        );
    }

    #[test]
    fn parallel_wrong_logins_get_no_more_than_the_free_tries() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "correct horse\n").unwrap();
        // Many reviewers: each login reads every password file, a wide window for a race.
        let users = (0..50)
            .map(|n| Reviewer {
                name: format!("r{n}"),
                password: TokenSource::File(file.clone()),
            })
            .collect();
        let auth = std::sync::Arc::new(Auth::new(users, Duration::from_secs(60)));
        let client: IpAddr = "192.0.2.44".parse().unwrap();
        let start = std::sync::Arc::new(std::sync::Barrier::new(64));
        let threads: Vec<_> = (0..64)
            .map(|_| {
                let (auth, start) = (auth.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    auth.login(client, "r1", "wrong").unwrap_err()
                })
            })
            .collect();
        let answers: Vec<LoginRefused> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let tried = answers
            .iter()
            .filter(|a| **a == LoginRefused::Wrong)
            .count();
        assert_eq!(tried, FREE_FAILURES as usize, "{answers:?}");
    }

    #[test]
    fn a_new_password_ends_the_sessions_of_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "correct horse\n").unwrap();
        let auth = Auth::new(
            vec![Reviewer {
                name: "ana".into(),
                password: TokenSource::File(file.clone()),
            }],
            Duration::from_secs(600),
        );
        let client: IpAddr = "192.0.2.45".parse().unwrap();
        let (id, _) = auth.login(client, "ana", "correct horse").unwrap();
        assert!(auth.session(&id).is_some());
        std::fs::write(&file, "battery staple\n").unwrap();
        assert!(auth.session(&id).is_none(), "the old password's session");
        // Gone for good, even if the old password came back.
        std::fs::write(&file, "correct horse\n").unwrap();
        assert!(auth.session(&id).is_none());
        let (id, _) = auth.login(client, "ana", "correct horse").unwrap();
        assert!(auth.session(&id).is_some());
        // A password that cannot be read any more ends it too.
        std::fs::remove_file(&file).unwrap();
        assert!(auth.session(&id).is_none());
    }

    #[test]
    fn a_printed_session_hides_its_csrf_token() {
        let s = Session {
            user: "ana".into(),
            csrf: "f00dfeedcafe".into(),
            expires: Instant::now(),
            ends: Instant::now(),
            password: [7; 32],
        };
        let printed = format!("{s:?}");
        assert!(
            printed.contains("ana") && !printed.contains("f00dfeedcafe"),
            "{printed}"
        );
    }

    #[test]
    fn logins_slow_down_after_ten_failures_and_grow() {
        for (count, secs) in [(0, 0), (9, 0), (10, 1), (11, 2), (14, 16), (40, 900)] {
            assert_eq!(delay_after(count), Duration::from_secs(secs), "{count}");
        }
    }

    #[test]
    fn a_login_needs_the_right_name_and_password_and_the_eleventh_failure_waits() {
        let auth = ana("IGMOD_TEST_REVIEW_AUTH_PASSWORD", Duration::from_secs(60));
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let (id, s) = auth.login(client, "ana", "correct horse").unwrap();
        assert_eq!(s.user, "ana");
        assert_eq!(auth.session(&id).map(|s| s.csrf), Some(s.csrf.clone()));
        assert_ne!(id, s.csrf);
        for _ in 0..FREE_FAILURES {
            assert_eq!(
                auth.login(client, "ana", "wrong").unwrap_err(),
                LoginRefused::Wrong
            );
        }
        assert!(matches!(
            auth.login(client, "ana", "correct horse"),
            Err(LoginRefused::SlowDown(_))
        ));
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(auth.login(other, "ana", "correct horse").is_ok());
        assert_eq!(
            auth.login(other, "bob", "correct horse").unwrap_err(),
            LoginRefused::Wrong
        );
        auth.logout(&id);
        assert!(auth.session(&id).is_none());
    }
}

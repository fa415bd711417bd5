//! Which access token an account uses (the operator's or the one igmod refreshed), its
//! validation, and keeping it alive; where a token comes from is [`crate::secrets`].
//!
//! Tokens are [`SecretString`] from the moment they are read: their `Debug` prints
//! `[REDACTED]`. They are exposed in three places only: the `Authorization` header in `graph`,
//! the hash of an operator-supplied token (to notice a new one), and storing a refreshed token
//! in the `tokens` table. Error messages here name the variable or the file, never the value.

use std::path::PathBuf;

use secrecy::SecretString;

use crate::secrets::{TokenError, TokenSource, source_hash};

/// Reads of a token file tried in all when each fails for a passing reason.
const READ_TRIES: u32 = 5;
/// The first pause between them; each next one is twice as long (0.1 + 0.2 + 0.4 + 0.8 s).
const READ_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs `read` until it succeeds, fails for good, or has failed [`READ_TRIES`] times for a
/// passing reason (each retry logged and counted in `igmod_token_read_retries_total`). The
/// last transient error is returned then: the caller tries again later, it does not stop.
pub async fn retry_transient<T>(
    mut read: impl FnMut() -> Result<T, TokenError>,
) -> Result<T, TokenError> {
    let mut pause = READ_RETRY_FIRST;
    let mut tries = 1;
    loop {
        match read() {
            Err(e) if e.is_transient() && tries < READ_TRIES => {
                crate::metrics::get().token_read_retry();
                tracing::warn!(
                    message = "token file cannot be read for now; trying again",
                    error = %e,
                    retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX)
                );
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
                tries += 1;
            }
            result => return result,
        }
    }
}

/// Files holding secrets that group or others can read: every token file, the app secret
/// file, the webhook's verify token file, the database password and client key files, and
/// the systemd environment file named by `IGMOD_ENV_FILE` (the unit sets it next to
/// `EnvironmentFile=`). One message per file, with a fix the service can live with: systemd
/// reads the environment file and `LoadCredential=` files as root, so `chmod 600` is safe for
/// them, while a token file the service reads itself must stay readable by its user.
/// `config.toml` holds no secret and is not checked: the `DynamicUser` service must read it.
pub fn exposed_files(config: &crate::config::Config) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut files: Vec<PathBuf> = Vec::new();
    let sources = config
        .accounts
        .iter()
        .map(|a| &a.token)
        .chain(config.app.iter().map(|a| &a.secret))
        .chain(config.webhook.iter().map(|w| &w.verify_token));
    for source in sources {
        if let TokenSource::File(p) = source
            && !files.contains(p)
        {
            files.push(p.clone());
        }
    }
    files.extend(config.daemon.database.secret_files());
    let env_file = std::env::var_os("IGMOD_ENV_FILE").map(PathBuf::from);
    files.extend(env_file.clone());
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    files
        .iter()
        .filter_map(|path| {
            let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
            let read_by_systemd = Some(path) == env_file.as_ref()
                || credentials.as_ref().is_some_and(|dir| path.starts_with(dir));
            let fix = if read_by_systemd {
                format!("run: chmod 600 {}", path.display())
            } else {
                format!(
                    "run: chmod 600 {}, and under systemd pass it with LoadCredential= (the service cannot read a file only root can)",
                    path.display()
                )
            };
            (mode & 0o044 != 0).then(|| {
                format!(
                    "{} holds a secret and is readable by {} (mode {mode:04o}); {fix}",
                    path.display(),
                    match (mode & 0o040 != 0, mode & 0o004 != 0) {
                        (true, true) => "group and others",
                        (true, false) => "its group",
                        _ => "others",
                    },
                )
            })
        })
        .collect()
}

/// The lifetime Meta documents for a long-lived token.
const SIXTY_DAYS: std::time::Duration = std::time::Duration::from_secs(60 * 86_400);

/// When a refreshed token ends, from Meta's `expires_in` (seconds): Meta always sends it for
/// these endpoints; when it does not, or sends more than a year (nonsense for a 60-day token,
/// and a number that could overflow the clock), the documented 60 days are assumed (a
/// Facebook token's next `debug_token` corrects it). Returns the time and the seconds used.
pub fn expiry(
    now: chrono::DateTime<chrono::Utc>,
    expires_in: Option<u64>,
) -> (chrono::DateTime<chrono::Utc>, i64) {
    const YEAR: u64 = 366 * 86_400;
    let secs = expires_in
        .filter(|s| *s <= YEAR)
        .unwrap_or(SIXTY_DAYS.as_secs());
    let at = crate::timefmt::later(now, std::time::Duration::from_secs(secs));
    (at, i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Errors choosing the token to use.
#[derive(Debug, thiserror::Error)]
pub enum CurrentError {
    #[error(transparent)]
    Source(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The token to use now: the one igmod refreshed, unless the operator has since put a
/// different token into the env/file (that one wins, and its expiry is unknown again).
pub async fn current(
    store: &crate::store::Store,
    account: &crate::config::AccountConfig,
) -> Result<SecretString, CurrentError> {
    let supplied = retry_transient(|| account.token.load()).await?;
    let hash = source_hash(&supplied);
    let record = store.token_record(&account.name).await?;
    if record.source_hash.as_deref() != Some(hash.as_str()) {
        if record.source_hash.is_some() {
            tracing::info!(message = "a new token was supplied by the operator: using it");
        }
        store.set_token_source(&account.name, &hash).await?;
        return Ok(supplied);
    }
    Ok(record.token.unwrap_or(supplied))
}

/// What [`maybe_refresh`] did.
#[derive(Debug)]
pub enum Refresh {
    /// A new token, persisted, valid for this many days.
    Refreshed(SecretString, i64),
    /// Not due (a Page token, no `[app]` for Facebook Login, or the call had to wait for budget
    /// or a pause).
    NotDue,
    /// Meta refused; tried again in 24 h.
    Refused(String),
}

/// The permissions a Facebook Login token needs to read and moderate comments.
pub const FACEBOOK_REQUIRED: [&str; 2] = ["instagram_basic", "instagram_manage_comments"];
/// Needed to find the Page's Instagram account; a token can work without them.
pub const FACEBOOK_RECOMMENDED: [&str; 2] = ["pages_read_engagement", "pages_show_list"];

/// Reads the app secret now and pairs it with the app id.
pub fn app_credentials(
    app: &crate::config::AppConfig,
) -> Result<crate::graph::AppCredentials, TokenError> {
    Ok(crate::graph::AppCredentials {
        id: app.app_id.clone(),
        secret: app.secret.load()?,
    })
}

/// What keeping one account's token alive works with.
#[derive(Clone, Copy)]
pub struct TokenCtx<'a> {
    pub store: &'a crate::store::Store,
    pub budget: &'a crate::budget::Budget,
    pub client: &'a crate::graph::Client,
    pub account: &'a crate::config::AccountConfig,
    /// The Meta app (`[app]`), for Facebook Login.
    pub app: Option<&'a crate::config::AppConfig>,
}

/// What a validation found.
#[derive(Debug)]
pub enum Validation {
    /// The token works for this account; the account's username when the check said it.
    Usable(Option<String>),
    /// The token cannot be used for this account: stop it, with this reason.
    Unusable(String),
}

/// Validates a token (at start and at each `token_check`): Instagram Login asks `/me`;
/// Facebook Login asks `debug_token` with the app token when `[app]` is set (validity, type,
/// expiry, data-access expiry, permissions, all recorded), then whether the token can see the
/// configured Instagram account. A call that fails is returned as is: the caller decides
/// (a dead token stops the account, anything else only logs).
pub async fn validate(
    cx: TokenCtx<'_>,
    token: &SecretString,
) -> Result<Result<Validation, crate::budget::CallError>, crate::store::StoreError> {
    use crate::budget::CallKind::Read;
    use crate::config::Login;
    if cx.account.login == Login::Facebook
        && let Some(app) = cx.app
    {
        match introspect(cx, app, token).await? {
            Ok(Some(unusable)) => return Ok(Ok(Validation::Unusable(unusable))),
            Ok(None) => {}
            Err(e) => return Ok(Err(e)),
        }
    }
    // A token of another user stops the account, so a mismatch is asked again before it is
    // believed: one garbled answer must not stop an account's moderation.
    let mut mismatch = None;
    for _ in 0..OWNER_CHECKS {
        let who = match cx.account.login {
            Login::Instagram => cx.budget.call(Read, || cx.client.me(token)).await,
            Login::Facebook => {
                cx.budget
                    .call(Read, || cx.client.ig_account(token, &cx.account.ig_user_id))
                    .await
            }
        };
        let (id, username) = match who {
            Ok(reply) => reply.value,
            Err(e) => return Ok(Err(e)),
        };
        if id == cx.account.ig_user_id {
            if let Some(other) = mismatch {
                tracing::warn!(
                    message = "an answer named another owner of the token; asked again, it is the configured account's",
                    other_id = %other
                );
            }
            cx.store.token_validated(&cx.account.name).await?;
            return Ok(Ok(Validation::Usable(username)));
        }
        mismatch = Some(id);
    }
    Ok(Ok(Validation::Unusable(format!(
        "the token belongs to Instagram user {}, but the account is configured with ig_user_id {} (asked {OWNER_CHECKS} times)",
        mismatch.unwrap_or_default(),
        cx.account.ig_user_id
    ))))
}

/// How many answers must name another owner before a token is taken for someone else's.
const OWNER_CHECKS: u32 = 3;

/// `debug_token`: records what Meta says and returns why the token is unusable, if it is.
/// App credentials Meta refuses are logged and skipped (the plain check still runs): they
/// say nothing about the account's token.
async fn introspect(
    cx: TokenCtx<'_>,
    app: &crate::config::AppConfig,
    token: &SecretString,
) -> Result<Result<Option<String>, crate::budget::CallError>, crate::store::StoreError> {
    let TokenCtx {
        store,
        budget,
        client,
        account,
        ..
    } = cx;
    use crate::budget::{CallError, CallKind::Read};
    let creds = match app_credentials(app) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(message = "cannot read the app secret; token expiry and permissions cannot be checked", error = %e);
            return Ok(Ok(None));
        }
    };
    let info = match budget
        .call(Read, || client.debug_token(&creds, token))
        .await
    {
        Ok(reply) => reply.value,
        Err(CallError::Graph(g))
            if matches!(
                g.kind,
                crate::graph::ErrorKind::TokenInvalid { .. }
                    | crate::graph::ErrorKind::BadRequest
                    | crate::graph::ErrorKind::Permission
            ) =>
        {
            tracing::error!(
                message = "Meta refused the [app] credentials for debug_token; check app_id and the app secret. Token expiry and permissions cannot be checked",
                error = %g
            );
            return Ok(Ok(None));
        }
        Err(e) => return Ok(Err(e)),
    };
    if !info.is_valid {
        return Ok(Ok(Some(format!(
            "Facebook says the token is not valid{}",
            info.error
                .as_deref()
                .map(|e| format!(": {}", crate::graph::scrub(e)))
                .unwrap_or_default()
        ))));
    }
    let at = |t: Option<i64>| {
        t.filter(|t| *t > 0)
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
    };
    let never = info.expires_at == Some(0);
    let scopes = info.scopes.join(",");
    store
        .record_token_info(
            &account.name,
            &crate::store::TokenInfoRow {
                token_type: info.kind.as_deref(),
                never_expires: never,
                expires_at: at(info.expires_at),
                data_access_expires_at: at(info.data_access_expires_at),
                scopes: &scopes,
            },
        )
        .await?;
    let missing: Vec<&str> = FACEBOOK_REQUIRED
        .iter()
        .copied()
        .filter(|p| !info.scopes.iter().any(|s| s == p))
        .collect();
    if !missing.is_empty() {
        return Ok(Ok(Some(format!(
            "the token lacks the permission {}: igmod cannot read or moderate comments without it; \
             make a new token that grants {}",
            missing.join(" and "),
            FACEBOOK_REQUIRED.join(", ")
        ))));
    }
    let weak: Vec<&str> = FACEBOOK_RECOMMENDED
        .iter()
        .copied()
        .filter(|p| !info.scopes.iter().any(|s| s == p))
        .collect();
    if !weak.is_empty() {
        tracing::warn!(message = "the token lacks recommended permissions", missing = %weak.join(", "));
    }
    let now = chrono::Utc::now();
    if let Some(end) = at(info.data_access_expires_at) {
        warn_near_end(
            "data access",
            (end - now).num_hours() as f64 / 24.0,
            account,
        );
    }
    tracing::info!(
        message = "token validated",
        token_type = info.kind.as_deref().unwrap_or("?"),
        expires = %if never { "never".to_string() } else {
            at(info.expires_at).map_or("not said".into(), crate::timefmt::format)
        }
    );
    Ok(Ok(None))
}

/// Warns under 14 days and errors under 3, with what to do.
fn warn_near_end(what: &str, days_left: f64, account: &crate::config::AccountConfig) {
    if days_left < 3.0 {
        tracing::error!(
            message = "token ends in under 3 days; put a new long-lived token in its source and run `systemctl reload igmod`",
            what, days_left, token_source = %account.token.describe()
        );
    } else if days_left < 14.0 {
        tracing::warn!(
            message = "token ends in under 14 days; igmod refreshes it when it can, otherwise make a new one",
            what,
            days_left
        );
    }
}

/// Keeps a token alive: Instagram Login tokens are refreshed (`refresh_access_token`),
/// Facebook Login user tokens re-exchanged (`fb_exchange_token`, needs `[app]`), when the
/// expiry is less than `refresh_before` away (or now, with `force`). Instagram tokens of
/// unknown expiry are refreshed to learn it; Page tokens (they never expire) never are. The new
/// token and its expiry are persisted before anyone uses them. A refused attempt is retried a
/// day later, never in a loop.
pub async fn maybe_refresh(
    cx: TokenCtx<'_>,
    token: &SecretString,
    force: bool,
) -> Result<Refresh, crate::store::StoreError> {
    let TokenCtx {
        store,
        budget,
        client,
        account,
        app,
    } = cx;
    use crate::config::Login;
    use chrono::Utc;
    let now = Utc::now();
    let record = store.token_record(&account.name).await?;
    let facebook = account.login == Login::Facebook;
    let creds = match (facebook, app) {
        (false, _) => None,
        (true, None) => return Ok(Refresh::NotDue),
        (true, Some(app)) => match app_credentials(app) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(message = "cannot read the app secret; cannot extend the token", error = %e);
                return Ok(Refresh::NotDue);
            }
        },
    };
    if record.never_expires || (facebook && record.token_type.as_deref() == Some("PAGE")) {
        return Ok(Refresh::NotDue);
    }
    let parse = |s: &Option<String>| s.as_deref().and_then(crate::timefmt::parse);
    if !force && parse(&record.next_check_at).is_some_and(|t| t > now) {
        return Ok(Refresh::NotDue);
    }
    let expires = parse(&record.expires_at);
    let before =
        chrono::Duration::from_std(account.refresh_before).unwrap_or(chrono::Duration::days(10));
    let day = chrono::Duration::days(1);
    match expires {
        Some(e) => {
            warn_near_end("expiry", (e - now).num_hours() as f64 / 24.0, account);
            if !force && e - now > before {
                // Look again when the refresh window opens (or tomorrow, for the log).
                store
                    .set_token_check(&account.name, (e - before).min(now + day), None)
                    .await?;
                return Ok(Refresh::NotDue);
            }
        }
        // A Facebook token's expiry comes from debug_token; without it, nothing to go on.
        None if facebook && !force => return Ok(Refresh::NotDue),
        None => {}
    }
    let refreshed = match &creds {
        None => budget
            .call(crate::budget::CallKind::Write, || {
                client.refresh_instagram_token(token)
            })
            .await
            .map(|r| (r.value.0, Some(r.value.1))),
        Some(creds) => budget
            .call(crate::budget::CallKind::Write, || {
                client.exchange_facebook_token(creds, token)
            })
            .await
            .map(|r| r.value),
    };
    match refreshed {
        Ok((new, expires_in)) => {
            let (expires_at, secs) = expiry(now, expires_in);
            {
                use secrecy::ExposeSecret;
                store
                    .store_refreshed_token(&account.name, new.expose_secret(), expires_at)
                    .await?;
            }
            if expires.is_some_and(|old| expires_at <= old + day) {
                // Whether re-exchanging a Facebook token extends it is not documented.
                tracing::warn!(
                    message = "Meta did not extend the token; a person must log in again and supply a new one before it ends",
                    ends = %crate::timefmt::format(expires_at)
                );
                store
                    .set_token_check(&account.name, now + day, None)
                    .await?;
            }
            tracing::info!(
                message = "access token refreshed",
                days_left = secs / 86_400
            );
            Ok(Refresh::Refreshed(new, secs / 86_400))
        }
        // Our own gate said no (budget spent, account paused): try again at the next poll.
        Err(
            crate::budget::CallError::Exhausted { .. }
            | crate::budget::CallError::Paused { .. }
            | crate::budget::CallError::NotHolder,
        ) => Ok(Refresh::NotDue),
        Err(e) => {
            // Meta refuses Instagram tokens under 24 h old; the expiry is then at most 60
            // days away.
            tracing::warn!(message = "token refresh refused; trying again in 24 h", error = %e);
            let bound = (!facebook).then(|| crate::timefmt::later(now, SIXTY_DAYS));
            store
                .set_token_check(&account.name, now + day, bound)
                .await?;
            Ok(Refresh::Refused(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::read_token_with;
    use std::path::Path;

    #[tokio::test(start_paused = true)]
    async fn a_passing_failure_is_retried_until_the_file_reads_and_a_lasting_one_is_not() {
        use secrecy::ExposeSecret;
        let path = Path::new("/etc/igmod/acme.token");
        // Out of descriptors twice, then the file reads.
        let mut calls = 0;
        let got = retry_transient(|| {
            calls += 1;
            read_token_with(path, |_| {
                if calls <= 2 {
                    Err(std::io::Error::from_raw_os_error(libc::EMFILE))
                } else {
                    Ok("TOKEN\n".into())
                }
            })
        })
        .await;
        assert_eq!(
            got.ok().map(|t| t.expose_secret().to_string()).as_deref(),
            Some("TOKEN")
        );
        assert_eq!(calls, 3);
        // A missing file is not tried again.
        let mut calls = 0;
        let got = retry_transient(|| {
            calls += 1;
            read_token_with(path, |_| {
                Err(std::io::Error::from_raw_os_error(libc::ENOENT))
            })
        })
        .await;
        assert!(got.is_err_and(|e| !e.is_transient()));
        assert_eq!(calls, 1);
        // Never readable: a bounded number of tries, and the error stays transient (the
        // account is not stopped; its next poll tries again).
        let mut calls = 0;
        let got = retry_transient(|| {
            calls += 1;
            read_token_with(path, |_| Err(std::io::Error::from_raw_os_error(libc::EIO)))
        })
        .await;
        assert!(got.is_err_and(|e| e.is_transient()));
        assert_eq!(calls, READ_TRIES);
    }
}

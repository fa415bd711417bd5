//! One poll of one account: media list → comments that may be new → rules → decisions →
//! [`actions`](crate::actions).
//!
//! Calls are spent only where something may be new. The media list (one call) carries each
//! post's `comments_count`; a post whose count did not change since it was last fully read
//! costs nothing more. A changed post is paged newest first and paging stops once a page
//! reached comments already recorded *and* the new comments found account for the change in
//! the count (a new reply on an old thread raises the count without a new top-level comment).
//! Cursors go stale, so the durable progress is the set of recorded comments plus the count.
//!
//! The count is a hint Meta does not keep true (comments of restricted users, dev-mode
//! filtering): once known comments are reached, a post gets at most [`PAGES_PAST_KNOWN`] more
//! calls in a poll, then its count is stored and the poll moves on. Some changes leave both
//! signals unchanged (one comment deleted and a reply added on an older thread between two
//! polls): a slow reconcile sweep ([`sweep`]) re-reads the most recently active posts in full,
//! every `sweep_interval`, from the read budget only.

use secrecy::SecretString;
use std::collections::HashSet;

use crate::account::{AccountCtx, PollError};
use crate::actions;
use crate::budget::{CallError, CallKind};
use crate::graph::{self, Comment};
use crate::rules::CommentView;
use crate::store::{AccountState, Disposition, NewComment, NewDecision};
use crate::timefmt;

/// Calls a post may cost in one poll after its known comments were reached, while the count
/// still says comments are missing.
pub const PAGES_PAST_KNOWN: u32 = 4;

/// What a poll did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollReport {
    pub media: usize,
    pub media_read: usize,
    pub new_comments: usize,
    pub decisions: usize,
    pub actions_done: usize,
    /// Posts that could not be read this time (already logged), and the last reason.
    pub skipped_posts: usize,
    pub skipped_because: Option<String>,
}

/// Runs one poll. Comments are recorded as they are read, so an interrupted poll resumes
/// where it stopped. `state` is the account's row if the caller just read it.
#[tracing::instrument(name = "poll", skip_all)]
pub async fn poll(ctx: &AccountCtx, state: Option<AccountState>) -> Result<PollReport, PollError> {
    let token = crate::tokens::current(&ctx.store, &ctx.config).await?;
    let token = match crate::tokens::maybe_refresh(ctx.tokens(), &token, false).await? {
        crate::tokens::Refresh::Refreshed(new, _) => {
            crate::account::record_token_expiry(ctx).await;
            new
        }
        crate::tokens::Refresh::NotDue | crate::tokens::Refresh::Refused(_) => token,
    };
    let mut report = PollReport::default();
    let state = match state {
        Some(s) => s,
        None => ctx.store.account_state(&ctx.config.name).await?,
    };
    let mut read = read_comments(ctx, &token, &state, &mut report).await;
    if let Ok(media) = &read
        && let Err(e) = sweep(ctx, &token, &state, media, &mut report).await
    {
        read = Err(e);
    }
    if matches!(&read, Err(e) if e.blocks_actions()) {
        return read.map(|_| report);
    }
    // Pending actions are applied even when some post could not be read, and when the read
    // budget is spent: they have their own reserve.
    report.actions_done = actions::apply_pending(ctx, &token).await?;
    crate::raid::guard(ctx, &token, read.as_deref().unwrap_or_default()).await?;
    read.map(|_| report)
}

/// Reads what changed on the account's recent posts; returns them (newest first).
async fn read_comments(
    ctx: &AccountCtx,
    token: &SecretString,
    state: &AccountState,
    report: &mut PollReport,
) -> Result<Vec<graph::Media>, PollError> {
    let cfg = &ctx.config;
    let baseline = !cfg.backfill && state.baseline_done_at.is_none();
    let media = list_media(ctx, token).await?;
    report.media = media.len();
    if !baseline && ctx.media_unchanged(&media) {
        return Ok(media);
    }
    let counts = ctx.store.media_counts(&cfg.name).await?;
    let newest: Vec<&str> = media
        .iter()
        .filter_map(|m| m.newest_comment.as_deref())
        .collect();
    let known_newest = ctx.store.known_comment_ids(&newest).await?;
    for m in &media {
        let last = counts.get(&m.id).copied();
        let newest_known = m
            .newest_comment
            .as_ref()
            .is_none_or(|id| known_newest.contains(id));
        if last == Some(m.comments_count) && newest_known {
            ctx.remember_media(m);
            continue;
        }
        if last.is_none() && m.comments_count == 0 {
            ctx.store.set_media_count(&cfg.name, &m.id, 0).await?;
            ctx.remember_media(m);
            continue;
        }
        let expected_new = expected_new(m.comments_count, last, newest_known);
        report.media_read += 1;
        let mut reader = MediaReader {
            ctx,
            token,
            media_id: &m.id,
            media_type: m.product_type.as_deref(),
            baseline,
            found: 0,
            past_known: Some(0),
            report,
        };
        match reader.read(expected_new).await {
            Ok(()) => {
                ctx.store
                    .set_media_count(&cfg.name, &m.id, m.comments_count)
                    .await?;
                ctx.remember_media(m);
            }
            Err(e) if e.stops_poll() => return Err(e),
            Err(e) => {
                tracing::warn!(message = "skipping post for this poll", media_id = %m.id, error = %e);
                report.skipped_posts += 1;
                report.skipped_because = Some(e.to_string());
            }
        }
    }
    if baseline {
        ctx.store.mark_baseline_done(&cfg.name).await?;
        tracing::info!(
            message =
                "baseline recorded: comments already there were not moderated (backfill = false)",
            comments = report.new_comments
        );
        // The baseline read every post in full: no sweep due before an interval has passed.
        ctx.store.set_swept(&cfg.name, chrono::Utc::now()).await?;
    }
    Ok(media)
}

/// The account's recent media, with the fields documented for its login; a field Meta refuses
/// as nonexisting is dropped (for the rest of the process, logged once) and the call made
/// again without it: one refused field never stops polling.
async fn list_media(
    ctx: &AccountCtx,
    token: &SecretString,
) -> Result<Vec<graph::Media>, PollError> {
    let cfg = &ctx.config;
    let facebook = cfg.login == crate::config::Login::Facebook;
    let mut fields = graph::media_fields(facebook);
    loop {
        fields.retain(|f| !refused_fields::is_refused(&cfg.name, f));
        let listed = ctx
            .budget
            .call(CallKind::Read, || {
                ctx.client
                    .list_media(token, &cfg.ig_user_id, cfg.recent_media, &fields)
            })
            .await;
        match listed {
            Ok(reply) => return Ok(reply.value),
            Err(CallError::Graph(e)) => {
                let refused = e
                    .refused_field()
                    .and_then(|f| fields.iter().find(|x| **x == f).copied())
                    .filter(|f| *f != "id" && *f != "comments_count");
                match refused {
                    Some(field) => refused_fields::refuse(&cfg.name, field),
                    None => return Err(CallError::Graph(e).into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Fields Meta refused per account, so that each is logged once and never asked again.
mod refused_fields {
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    static REFUSED: Mutex<Option<HashMap<String, HashSet<&'static str>>>> = Mutex::new(None);

    pub fn is_refused(account: &str, field: &str) -> bool {
        REFUSED.lock().is_ok_and(|r| {
            r.as_ref()
                .and_then(|m| m.get(account))
                .is_some_and(|s| s.contains(field))
        })
    }

    pub fn refuse(account: &str, field: &'static str) {
        let Ok(mut r) = REFUSED.lock() else { return };
        if r.get_or_insert_with(HashMap::new)
            .entry(account.to_string())
            .or_default()
            .insert(field)
        {
            tracing::warn!(
                message = "meta refused a media field as nonexisting for this account's login; polling goes on without it",
                account = %account,
                field = field
            );
        }
    }
}

/// Why a live video's comments are decided but never written (graph-api.md §5, §12).
pub const LIVE_NOT_WRITTEN: &str = "live video: Meta supports no moderation of live comments";
/// Why a reply is not sent to a hidden comment (graph-api.md §5, §12).
pub const HIDDEN_NO_REPLY: &str = "hidden comment: Meta allows no reply to a hidden comment";

/// Whether a post is a live video: `media_product_type` `LIVE` (Facebook Login, webhooks).
pub fn is_live(media_type: Option<&str>) -> bool {
    media_type.is_some_and(|t| t.eq_ignore_ascii_case("LIVE"))
}

/// The reconcile sweep: every `sweep_interval`, the `sweep_posts` most recently active of the
/// account's recent posts are re-read in full, every page and every thread, and what was never
/// seen is decided like any new comment. Reads only, so the action reserve stays whole; set
/// aside (and tried at the next poll) while the read budget left is less than twice its cost.
async fn sweep(
    ctx: &AccountCtx,
    token: &SecretString,
    state: &AccountState,
    media: &[graph::Media],
    report: &mut PollReport,
) -> Result<(), PollError> {
    let cfg = &ctx.config;
    if cfg.sweep_posts == 0 {
        return Ok(());
    }
    let now = chrono::Utc::now();
    let Some(last) = state.swept_at.as_deref().and_then(timefmt::parse) else {
        // First poll with sweeps on: start the clock.
        ctx.store.set_swept(&cfg.name, now).await?;
        return Ok(());
    };
    if timefmt::later(last, cfg.sweep_interval) > now {
        return Ok(());
    }
    let ids: Vec<String> = media.iter().map(|m| m.id.clone()).collect();
    let posts = ctx
        .store
        .most_active_media(&cfg.name, &ids, cfg.sweep_posts)
        .await?;
    let counts = ctx.store.media_counts(&cfg.name).await?;
    // One call per 50 comments, at least one per post; threads longer than the inline replies
    // cost more, which the margin of two covers.
    let cost: u32 = posts
        .iter()
        .map(|p| {
            let n = counts.get(p).copied().unwrap_or(0).max(0);
            u32::try_from(n / i64::from(graph::COMMENTS_PAGE) + 1).unwrap_or(u32::MAX)
        })
        .fold(0u32, u32::saturating_add);
    let (left, _) = ctx.budget.remaining(CallKind::Read).await?;
    if left < cost.saturating_mul(2) {
        tracing::debug!(
            message = "reconcile sweep set aside: not enough read budget left",
            calls = cost,
            left
        );
        return Ok(());
    }
    let found_before = report.new_comments;
    for media_id in &posts {
        let mut reader = MediaReader {
            ctx,
            token,
            media_id,
            media_type: media
                .iter()
                .find(|m| &m.id == media_id)
                .and_then(|m| m.product_type.as_deref()),
            baseline: false,
            found: 0,
            past_known: None,
            report,
        };
        match reader.read(i64::MAX).await {
            Ok(()) => {}
            Err(e) if e.stops_poll() => return Err(e),
            Err(e) => {
                tracing::warn!(message = "sweep: skipping post", media_id = %media_id, error = %e);
            }
        }
    }
    ctx.store.set_swept(&cfg.name, now).await?;
    tracing::info!(
        message = "reconcile sweep done",
        posts = posts.len(),
        found = report.new_comments - found_before
    );
    Ok(())
}

struct MediaReader<'a> {
    ctx: &'a AccountCtx,
    token: &'a SecretString,
    media_id: &'a str,
    media_type: Option<&'a str>,
    baseline: bool,
    /// New comments (top-level and replies) found so far on this post.
    found: i64,
    /// Calls made since known comments were reached; `None`: no cap (the sweep).
    past_known: Option<u32>,
    report: &'a mut PollReport,
}

impl MediaReader<'_> {
    /// Reads what is new on the post, then records it oldest first (so `repeated` sees a bot
    /// wave in the order it was written). What was read is recorded even if a later call fails.
    async fn read(&mut self, expected_new: i64) -> Result<(), PollError> {
        let mut pages: Vec<Vec<(Comment, Option<String>)>> = Vec::new();
        let collected = self.collect(expected_new, &mut pages).await;
        let mut seen = HashSet::new();
        for (comment, parent) in pages.into_iter().rev().flatten() {
            if seen.insert(comment.id.clone()) {
                self.record(&comment, parent.as_deref(), false).await?;
            }
        }
        collected
    }

    /// Pages newest first until the new comments are found. Each entry of `pages` holds one
    /// call's new comments, oldest first, each thread followed by its new replies. A page's
    /// long threads (more replies than came inline) are paged right after it, while comments
    /// are still missing: recent threads are where new replies are.
    async fn collect(
        &mut self,
        expected_new: i64,
        pages: &mut Vec<Vec<(Comment, Option<String>)>>,
    ) -> Result<(), PollError> {
        let ctx = self.ctx;
        let mut after: Option<String> = None;
        let mut reached_known = false;
        loop {
            if !self.may_call(reached_known) {
                return Ok(());
            }
            let page = ctx
                .budget
                .call(CallKind::Read, || {
                    ctx.client
                        .comments_page(self.token, self.media_id, after.as_deref())
                })
                .await?
                .value;
            let ids: Vec<&str> = page
                .items
                .iter()
                .flat_map(|t| std::iter::once(&t.comment).chain(&t.replies))
                .map(|c| c.id.as_str())
                .collect();
            let known = ctx.store.known_comment_ids(&ids).await?;
            let mut new = Vec::new();
            let mut long_threads = Vec::new();
            for thread in page.items.iter().rev() {
                if known.contains(&thread.comment.id) {
                    reached_known = true;
                } else {
                    new.push((thread.comment.clone(), None));
                }
                for reply in thread.replies.iter().filter(|r| !known.contains(&r.id)) {
                    new.push((reply.clone(), Some(thread.comment.id.clone())));
                }
                if let Some(cursor) = &thread.more_replies {
                    // Newest thread first.
                    long_threads.insert(0, (thread.comment.id.clone(), cursor.clone()));
                }
            }
            self.found += new.len() as i64;
            pages.push(new);
            for (parent, cursor) in long_threads {
                if self.found >= expected_new {
                    break;
                }
                if !self
                    .read_thread(&parent, cursor, reached_known, pages)
                    .await?
                {
                    return Ok(());
                }
            }
            match page.after {
                Some(next) if !(reached_known && self.found >= expected_new) => after = Some(next),
                _ => return Ok(()),
            }
        }
    }

    /// Pages one thread's replies past those that came inline. `false` when the post's calls
    /// ran out.
    async fn read_thread(
        &mut self,
        parent: &str,
        cursor: String,
        reached_known: bool,
        pages: &mut Vec<Vec<(Comment, Option<String>)>>,
    ) -> Result<bool, PollError> {
        let ctx = self.ctx;
        let mut after = Some(cursor);
        while let Some(cursor) = after {
            if !self.may_call(reached_known) {
                return Ok(false);
            }
            let page = ctx
                .budget
                .call(CallKind::Read, || {
                    ctx.client.replies_page(self.token, parent, Some(&cursor))
                })
                .await?
                .value;
            let ids: Vec<&str> = page.items.iter().map(|c| c.id.as_str()).collect();
            let known = ctx.store.known_comment_ids(&ids).await?;
            let new: Vec<_> = page
                .items
                .into_iter()
                .filter(|r| !known.contains(&r.id))
                .map(|r| (r, Some(parent.to_string())))
                .collect();
            self.found += new.len() as i64;
            // Newest pages go first in `pages`: these replies are newer than their thread.
            pages.insert(0, new);
            after = page.after;
        }
        Ok(true)
    }

    /// Whether one more call fits this post's share of the poll: unlimited until known
    /// comments are reached, then [`PAGES_PAST_KNOWN`] (the count may never match).
    fn may_call(&mut self, reached_known: bool) -> bool {
        let Some(spent) = self.past_known.as_mut() else {
            return true;
        };
        if !reached_known {
            return true;
        }
        if *spent >= PAGES_PAST_KNOWN {
            tracing::debug!(
                message = "stopped paging: the post's comment count and its comments disagree; the sweep reads the rest",
                media_id = %self.media_id
            );
            return false;
        }
        *spent += 1;
        true
    }

    /// Decides (unless baseline or the account's own) and records one new comment, with its
    /// decision and pending action, in one transaction. `own_hint`: the source already knows
    /// the account wrote it (a webhook's `self_ig_scoped_id`).
    async fn record(
        &mut self,
        c: &Comment,
        parent: Option<&str>,
        own_hint: bool,
    ) -> Result<Recorded, PollError> {
        let cfg = &self.ctx.config;
        // The account's own: by its user id, by its username (Meta may leave out `from`), or
        // as a reply igmod wrote for it (only replies are looked up: igmod writes no other
        // comment, and this runs for every new one).
        let is_reply = parent.is_some() || c.parent_id.is_some();
        // `user` comes back only on the app user's comments: the surest marker; `from.id` is an
        // Instagram-scoped id that need not equal the account id, so it is only a hint.
        let own = own_hint
            || c.user_id.is_some()
            || c.from_id.as_deref() == Some(cfg.ig_user_id.as_str())
            || c.username.as_deref().is_some_and(|u| {
                self.ctx
                    .username()
                    .is_some_and(|mine| mine.eq_ignore_ascii_case(u))
            })
            || (is_reply && self.ctx.store.is_own_reply(&cfg.name, &c.id).await?);
        let disposition = if own {
            Disposition::Own
        } else if self.baseline {
            Disposition::Baseline
        } else {
            Disposition::Evaluated
        };
        if let (Disposition::Own, Some(u)) = (disposition, &c.username) {
            self.ctx.learn_username(u).await?;
        }
        if c.username.is_none() && disposition != Disposition::Own {
            warn_missing_usernames(&cfg.name);
        }
        let text = c.text.as_deref().unwrap_or("");
        let created = c.timestamp.as_deref().and_then(timefmt::parse_graph);
        let text_key = crate::rules::RuleSet::text_key(text);
        // Without its text (a sticker, a GIF) there is nothing for the rules to read: recorded
        // as incomplete, left alone. Without a username, the rules run; username conditions
        // cannot match.
        // The comment's language, detected once when the rules run (stored on the comment and
        // its decision); `None` when unknown or the rules did not run.
        let mut lang: Option<&'static str> = None;
        let decision = if disposition == Disposition::Evaluated && c.text.is_some() {
            let at = created.unwrap_or_else(chrono::Utc::now);
            let history = match cfg.rules.history_window() {
                Some(window) => {
                    let since = crate::timefmt::ago(at, window);
                    self.ctx
                        .store
                        .same_text_since(&cfg.name, &text_key, since)
                        .await?
                }
                None => Vec::new(),
            };
            let account_username = self.ctx.username();
            let view = CommentView {
                text,
                username: c.username.as_deref(),
                is_reply,
                media_id: Some(self.media_id),
                media_type: self.media_type,
                account_username: account_username.as_deref(),
                at: at.timestamp(),
                history: &history,
            };
            let (decided, score, detected) = cfg.rules.decide_with_language(&view);
            lang = detected.code();
            if let Some(score) = score {
                crate::metrics::get().score(score);
            }
            decided.map(|m| {
                // Writes Meta does not support are decided and recorded, never queued.
                let why_not = if !m.action.is_write() {
                    None
                } else if is_live(self.media_type) {
                    Some(LIVE_NOT_WRITTEN)
                } else if m.action == crate::rules::Action::Reply && c.hidden == Some(true) {
                    Some(HIDDEN_NO_REPLY)
                } else {
                    None
                };
                NewDecision {
                    rule: m.rule,
                    action: m.action,
                    reason: match why_not {
                        Some(why) => format!("{}; not written: {why}", m.reason),
                        None => m.reason,
                    },
                    dry_run: self.ctx.dry_run || m.dry_run,
                    message: m.reply,
                    not_written: why_not.is_some(),
                }
            })
        } else {
            None
        };
        let new = NewComment {
            id: c.id.clone(),
            account: cfg.name.clone(),
            media_id: self.media_id.to_string(),
            parent_id: c.parent_id.clone().or_else(|| parent.map(str::to_string)),
            username: c.username.clone(),
            from_id: c.from_id.clone(),
            text: c.text.clone(),
            created_at: created.map(timefmt::format),
            text_key: Some(text_key),
        };
        if !self
            .ctx
            .store
            .record_comment_in(&new, disposition, decision.as_ref(), lang)
            .await?
        {
            return Ok(Recorded::Known);
        }
        self.report.new_comments += 1;
        if is_live(self.media_type) && disposition != Disposition::Own {
            let outcome = match &decision {
                Some(d) if d.not_written => "not_written",
                Some(_) => "decided",
                None => "passed",
            };
            crate::metrics::get().live_comment(outcome);
        }
        {
            if let Some(d) = &decision {
                self.report.decisions += 1;
                crate::metrics::get().decision(&cfg.name, &d.rule, d.action.as_str());
                self.ctx.outbox_seen_empty(false);
                tracing::info!(
                    message = "decided",
                    comment_id = %c.id,
                    media_id = %self.media_id,
                    rule = %d.rule,
                    action = d.action.as_str(),
                    reason = %d.reason,
                    dry_run = d.dry_run,
                    lang = lang.unwrap_or("unknown")
                );
            }
        }
        Ok(match (disposition, &decision) {
            (Disposition::Own, _) => Recorded::Own,
            (_, Some(_)) => Recorded::Decided,
            (_, None) if c.text.is_none() => Recorded::Incomplete,
            (_, None) => Recorded::Passed,
        })
    }
}

/// What became of a comment handed to the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Already recorded (by a poll or an earlier delivery): nothing done.
    Known,
    /// The account's own comment: recorded, never moderated.
    Own,
    /// A rule matched: decision (and pending action) recorded.
    Decided,
    /// No rule matched (or recorded as baseline).
    Passed,
    /// No text to read (a sticker, a GIF): recorded, left alone.
    Incomplete,
}

impl Recorded {
    pub fn as_str(self) -> &'static str {
        match self {
            Recorded::Known => "known",
            Recorded::Own => "own",
            Recorded::Decided => "decided",
            Recorded::Passed => "passed",
            Recorded::Incomplete => "incomplete",
        }
    }
}

/// Records a comment that came without a read (a webhook's), through the same decision path
/// as a polled one.
pub async fn record_pushed(
    ctx: &AccountCtx,
    token: &SecretString,
    comment: &Comment,
    media_id: &str,
    media_type: Option<&str>,
    own_hint: bool,
    report: &mut PollReport,
) -> Result<Recorded, PollError> {
    let mut reader = MediaReader {
        ctx,
        token,
        media_id,
        media_type,
        baseline: false,
        found: 0,
        past_known: None,
        report,
    };
    reader
        .record(comment, comment.parent_id.as_deref(), own_hint)
        .await
}

/// Comments without their author's username, per account: after a few, the likely cause is
/// logged once (Meta leaves the username out when the token lacks the comments permission).
fn warn_missing_usernames(account: &str) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static SEEN: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);
    const AFTER: u32 = 3;
    let Ok(mut seen) = SEEN.lock() else { return };
    let count = seen
        .get_or_insert_with(HashMap::new)
        .entry(account.to_string())
        .or_insert(0);
    *count = count.saturating_add(1);
    if *count == AFTER {
        tracing::warn!(
            message = "comments arrive without their author's username; the token probably lacks the comments permission (instagram_business_manage_comments with Instagram Login, instagram_manage_comments with Facebook Login); rules on usernames cannot match them",
            account = %account,
            comments = AFTER
        );
    }
}

/// Comments a post's read should find: the count's growth since it was last fully read, and
/// at least one when the newest is unknown, whatever the count says. The count comes from the
/// wire: any `i64` (huge, negative) gives an answer, never an overflow.
fn expected_new(count: i64, last: Option<i64>, newest_known: bool) -> i64 {
    count
        .saturating_sub(last.unwrap_or(0))
        .max(i64::from(!newest_known))
}

#[cfg(test)]
mod tests {
    use super::expected_new;

    #[test]
    fn the_expected_count_never_overflows_on_wire_values() {
        let cases = [
            // (count, last, newest known) -> expected
            (5, Some(3), true, 2),
            (5, None, true, 5),
            (3, Some(5), true, 0),
            (3, Some(3), false, 1),
            (i64::MIN, Some(1), true, 0),
            (i64::MAX, Some(-1), true, i64::MAX),
            (i64::MIN, Some(i64::MAX), false, 1),
        ];
        for (count, last, known, want) in cases {
            assert_eq!(
                expected_new(count, last, known),
                want,
                "{count} {last:?} {known}"
            );
        }
    }
}

//! What belongs in the queue and what each button does: pure functions over a stored
//! decision, so the rules of the queue are tested without a server.

use crate::config::RemoveAction;
use crate::store::{Label, ReviewItem};

/// A reviewer's answer about one comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// igmod was right: keep what it did, label it scam.
    Right,
    /// igmod was wrong: label it ok, and unhide what was hidden.
    Wrong,
    /// A flagged comment is a scam after all: hide or delete it, label it scam.
    Remove,
}

impl Verdict {
    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "right" => Some(Verdict::Right),
            "wrong" => Some(Verdict::Wrong),
            "remove" => Some(Verdict::Remove),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Right => "right",
            Verdict::Wrong => "wrong",
            Verdict::Remove => "remove",
        }
    }
}

/// What a verdict records: a label and at most one write through the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub label: Label,
    pub write: Option<&'static str>,
}

/// Whether a decided comment is doubtful: every flag, and hides and deletes whose classifier
/// score is in `min..max` (without a score, a hide or delete is not doubtful).
pub fn doubtful(item: &ReviewItem, score: Option<f32>, min: f32, max: f32) -> bool {
    match item.action.as_str() {
        "flag" => true,
        "hide" | "delete" => score.is_some_and(|s| s >= min && s < max),
        _ => false,
    }
}

/// Whether igmod's write took (or is about to take) effect on Instagram.
fn written(item: &ReviewItem) -> bool {
    item.dry_run == 0 && matches!(item.action_status.as_deref(), Some("done" | "pending"))
}

/// What a verdict on this comment records, or why it does not apply. With `dry_run` (the
/// daemon's), a removal is a label only: igmod writes nothing to Instagram in dry run.
pub fn plan(
    item: &ReviewItem,
    verdict: Verdict,
    remove: RemoveAction,
    dry_run: bool,
) -> Result<Plan, String> {
    match (item.action.as_str(), verdict) {
        ("flag", Verdict::Wrong) => Ok(Plan {
            label: Label::Ok,
            write: None,
        }),
        ("flag", Verdict::Remove) => Ok(Plan {
            label: Label::Scam,
            write: (!dry_run).then_some(remove.as_str()),
        }),
        ("hide" | "delete", Verdict::Right) => Ok(Plan {
            label: Label::Scam,
            write: None,
        }),
        ("hide", Verdict::Wrong) => Ok(Plan {
            label: Label::Ok,
            write: written(item).then_some("unhide"),
        }),
        // A delete cannot be undone: the label is all a reviewer can give.
        ("delete", Verdict::Wrong) => Ok(Plan {
            label: Label::Ok,
            write: None,
        }),
        (action, verdict) => Err(format!(
            "{} does not apply to a comment igmod chose to {action}",
            verdict.as_str()
        )),
    }
}

/// The verdicts a row offers, in button order.
pub fn verdicts(item: &ReviewItem) -> &'static [Verdict] {
    match item.action.as_str() {
        "flag" => &[Verdict::Wrong, Verdict::Remove],
        _ => &[Verdict::Right, Verdict::Wrong],
    }
}

/// What igmod did on Instagram, in words.
pub fn on_instagram(item: &ReviewItem) -> String {
    if item.action == "flag" {
        return "nothing: flagged for review".into();
    }
    if item.dry_run != 0 {
        return format!("nothing: {} in dry run", item.action);
    }
    let done = match item.action.as_str() {
        "hide" => "hidden",
        "delete" => "deleted",
        other => other,
    };
    match item.action_status.as_deref() {
        Some("done") => done.to_string(),
        Some("pending") => format!("{} queued", item.action),
        Some("failed") => format!("{} failed", item.action),
        _ => format!("nothing: {} not written", item.action),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(action: &str, dry_run: i64, status: Option<&str>) -> ReviewItem {
        ReviewItem {
            comment_id: "c1".into(),
            account: "shop".into(),
            media_id: "m1".into(),
            username: Some("u".into()),
            text: Some("t".into()),
            rule: "r".into(),
            action: action.into(),
            dry_run,
            reason: String::new(),
            decided_at: String::new(),
            lang: None,
            action_status: status.map(str::to_string),
        }
    }

    #[test]
    fn each_verdict_records_its_label_and_at_most_one_write() {
        let hide = RemoveAction::Hide;
        type Case = (ReviewItem, Verdict, Option<(Label, Option<&'static str>)>);
        let cases: [Case; 10] = [
            (
                item("hide", 0, Some("done")),
                Verdict::Right,
                Some((Label::Scam, None)),
            ),
            (
                item("hide", 0, Some("done")),
                Verdict::Wrong,
                Some((Label::Ok, Some("unhide"))),
            ),
            (
                item("hide", 0, Some("pending")),
                Verdict::Wrong,
                Some((Label::Ok, Some("unhide"))),
            ),
            (
                item("hide", 0, Some("failed")),
                Verdict::Wrong,
                Some((Label::Ok, None)),
            ),
            (
                item("hide", 1, None),
                Verdict::Wrong,
                Some((Label::Ok, None)),
            ),
            (
                item("delete", 0, Some("done")),
                Verdict::Wrong,
                Some((Label::Ok, None)),
            ),
            (item("delete", 0, Some("done")), Verdict::Remove, None),
            (
                item("flag", 0, None),
                Verdict::Remove,
                Some((Label::Scam, Some("hide"))),
            ),
            (
                item("flag", 0, None),
                Verdict::Wrong,
                Some((Label::Ok, None)),
            ),
            (item("flag", 0, None), Verdict::Right, None),
        ];
        for (i, verdict, want) in cases {
            let got = plan(&i, verdict, hide, false)
                .ok()
                .map(|p| (p.label, p.write));
            assert_eq!(
                got, want,
                "{} {:?} {:?}",
                i.action, i.action_status, verdict
            );
        }
        assert_eq!(
            plan(
                &item("flag", 0, None),
                Verdict::Remove,
                RemoveAction::Delete,
                false
            )
            .map(|p| p.write),
            Ok(Some("delete"))
        );
        // In dry run, a removal is a label only.
        assert_eq!(
            plan(&item("flag", 0, None), Verdict::Remove, hide, true).map(|p| (p.label, p.write)),
            Ok((Label::Scam, None))
        );
    }

    #[test]
    fn the_band_holds_flags_and_middling_scores() {
        let (min, max) = (0.4, 0.8);
        assert!(doubtful(&item("flag", 0, None), None, min, max));
        assert!(doubtful(&item("hide", 0, None), Some(0.4), min, max));
        assert!(doubtful(&item("delete", 0, None), Some(0.79), min, max));
        assert!(!doubtful(&item("hide", 0, None), Some(0.8), min, max));
        assert!(!doubtful(&item("hide", 0, None), Some(0.39), min, max));
        assert!(!doubtful(&item("hide", 0, None), None, min, max));
        assert!(!doubtful(&item("reply", 0, None), Some(0.5), min, max));
    }
}

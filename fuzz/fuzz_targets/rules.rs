//! Arbitrary comment text through the example rules, the starter pack and the default model.
#![no_main]

use std::sync::OnceLock;

use igmod::rules::{CommentView, RuleSet};
use libfuzzer_sys::fuzz_target;

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let example = std::fs::read_to_string(format!("{root}/config.toml.example")).unwrap_or_default();
        let rules = example.find("[[rules]]").map_or("", |i| &example[i..]);
        let starter = std::fs::read_to_string(format!("{root}/rules/starter.toml")).unwrap_or_default();
        let text = format!(
            "[[accounts]]\nname = \"f\"\nig_user_id = \"1\"\nlogin = \"instagram\"\ntoken_env = \"PATH\"\npoll_interval = \"1m\"\nhourly_budget = 1\n{rules}\n{starter}"
        );
        // Beside config.toml.example, so the classifier rule finds models/scam.model. A config
        // that does not parse would fuzz nothing: stop loudly instead.
        igmod::config::parse(&std::path::Path::new(root).join("fuzz.toml"), &text)
            .map(|c| c.rules)
            .unwrap_or_else(|e| panic!("the example rules do not load: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (user, text) = text.split_once('\n').unwrap_or(("", &text));
    let _ = rules().matches(&CommentView::new(text, Some(user)));
});

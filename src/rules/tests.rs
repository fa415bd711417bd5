//! Data-driven tests of the rule engine: evasions that must match, look-alike innocent text
//! that must not, every condition, priority and approve semantics, reply rendering.
//!
//! Whole on purpose: tables of cases over one set of helpers; split by condition, they'd repeat.

use super::*;

fn rule(name: &str, action: Action, all: ConditionSpec) -> RuleSpec {
    RuleSpec::new(name, action, all)
}

fn words(w: &[&str]) -> ConditionSpec {
    ConditionSpec {
        words: w.iter().map(|s| s.to_string()).collect(),
        ..ConditionSpec::default()
    }
}

fn compile(specs: &[RuleSpec]) -> RuleSet {
    match RuleSet::compile(specs) {
        Ok(set) => set,
        Err(e) => panic!("rules must compile: {e:?}"),
    }
}

fn example() -> RuleSet {
    compile(&[
        rule(
            "trusted",
            Action::Approve,
            ConditionSpec {
                usernames: vec!["acme_support".into(), "acme".into()],
                ..ConditionSpec::default()
            },
        ),
        rule(
            "scam",
            Action::Delete,
            words(&["crypto signal", "forex", "dm me to earn"]),
        ),
        rule(
            "scam-dm",
            Action::Delete,
            ConditionSpec {
                regex: vec![r"(?i)\bdm\s+@\w+\s+(for|to)\b".into()],
                ..ConditionSpec::default()
            },
        ),
        rule(
            "profanity",
            Action::Hide,
            words(&["idiot", "scumbag", "ass"]),
        ),
        rule(
            "links",
            Action::Hide,
            ConditionSpec {
                links: true,
                allow_domains: vec!["acme.com".into()],
                ..ConditionSpec::default()
            },
        ),
        rule(
            "mention-spam",
            Action::Hide,
            ConditionSpec {
                max_mentions: Some(3),
                ..ConditionSpec::default()
            },
        ),
    ])
}

fn decide(rules: &RuleSet, text: &str, username: Option<&str>) -> Option<(String, Action)> {
    rules
        .decide(&CommentView::new(text, username))
        .map(|m| (m.rule, m.action))
}

#[test]
fn evasions_match() {
    let rules = compile(&[rule(
        "scam",
        Action::Delete,
        words(&["crypto", "whatsapp me", "free money", "forex"]),
    )]);
    for text in [
        "crypto",
        "CRYPTO!!!",
        "𝓬𝓻𝔂𝓹𝓽𝓸 pays",
        "c r y p t 0",
        "c.r.y.p.t.o",
        "cr¥pto",
        "сrурtо",
        "ᴄʀʏᴘᴛᴏ",
        "ⓒⓡⓨⓟⓣⓞ",
        "ｃｒｙｐｔｏ",
        "cry\u{200B}pto",
        "crÿptö",
        "cryyyyptooo",
        "wh@tsapp me",
        "WhatsApp   me!",
        "FREE MONEY",
        "free-money",
        "#freemoney",
        "f r e e m o n e y",
        "freeeee moneyyyy",
        "Очень 😍 freeee money",
        "f0rex",
        "F0R3X",
        "🇫🇴🇷🇪🇽",
    ] {
        assert_eq!(
            decide(&rules, text, None).map(|d| d.0).as_deref(),
            Some("scam"),
            "{text:?} must match"
        );
    }
}

#[test]
fn innocent_look_alikes_do_not_match() {
    let rules = compile(&[
        rule(
            "p",
            Action::Hide,
            words(&["ass", "scam", "hell", "cum", "tit"]),
        ),
        rule("s", Action::Delete, words(&["forex", "free money"])),
    ]);
    for text in [
        "classic look",
        "assassin's creed",
        "pass the salt",
        "as always",
        "scampi and chips",
        "hello there",
        "shell shock",
        "cucumber salad",
        "the title",
        "petite size",
        "forexample",
        "free of charge, money back",
        "Scunthorpe United",
        // A run shorter than the word's (`fre` for `free`), after non-Latin text.
        "とてもかわいい fre money",
        "Очень as well",
        "assessment done",
        "",
    ] {
        assert_eq!(decide(&rules, text, None), None, "{text:?} must not match");
    }
}

#[test]
fn example_decisions_and_priority() {
    let rules = example();
    type Case<'a> = (&'a str, Option<&'a str>, Option<(&'a str, Action)>);
    let cases: &[Case] = &[
        ("Love this colour!", Some("fan1"), None),
        ("FOREX!", Some("x"), Some(("scam", Action::Delete))),
        ("Fórex is great", Some("x"), Some(("scam", Action::Delete))),
        (
            "join my CRYPTO   SIGNAL group",
            Some("x"),
            Some(("scam", Action::Delete)),
        ),
        ("crypto signals", Some("x"), None),
        (
            "dm @bob for info",
            Some("x"),
            Some(("scam-dm", Action::Delete)),
        ),
        ("you idiot", Some("x"), Some(("profanity", Action::Hide))),
        ("idiotic plan", Some("x"), None),
        (
            "see spam-shop.biz now",
            Some("x"),
            Some(("links", Action::Hide)),
        ),
        ("see https://acme.com/sale", Some("x"), None),
        ("see shop.acme.com", Some("x"), None),
        ("see notacme.com", Some("x"), Some(("links", Action::Hide))),
        // An allowed domain written with another script's letters (a Cyrillic а) is another
        // site: folding reads it as acme.com, the allow list does not.
        (
            "see аcme.com/sale",
            Some("x"),
            Some(("links", Action::Hide)),
        ),
        ("@a @b @c", Some("x"), None),
        (
            "@a @b @c @d",
            Some("x"),
            Some(("mention-spam", Action::Hide)),
        ),
        // Delete beats hide when both match, whatever the order.
        ("idiot, forex", Some("x"), Some(("scam", Action::Delete))),
        // Approve beats everything.
        (
            "forex idiot",
            Some("acme_support"),
            Some(("trusted", Action::Approve)),
        ),
        (
            "forex idiot",
            Some("ACME"),
            Some(("trusted", Action::Approve)),
        ),
        (
            "forex",
            Some("acme_supporter"),
            Some(("scam", Action::Delete)),
        ),
        ("forex", None, Some(("scam", Action::Delete))),
    ];
    for (text, username, expected) in cases {
        let got = decide(&rules, text, *username);
        assert_eq!(
            got.as_ref().map(|(r, a)| (r.as_str(), *a)),
            *expected,
            "{text:?} by {username:?}"
        );
    }
}

#[test]
fn ties_go_to_the_earlier_rule_and_reply_ranks_below_hide() {
    let reply = RuleSpec {
        reply: Some("Hi {{username}}".into()),
        ..rule("polite", Action::Reply, words(&["refund"]))
    };
    let rules = compile(&[
        rule("first", Action::Flag, words(&["refund"])),
        reply,
        rule("second", Action::Flag, words(&["refund"])),
        rule("rude", Action::Hide, words(&["idiot"])),
    ]);
    assert_eq!(
        decide(&rules, "refund please", None)
            .map(|d| d.0)
            .as_deref(),
        Some("polite")
    );
    assert_eq!(
        decide(&rules, "refund, idiot", None)
            .map(|d| d.0)
            .as_deref(),
        Some("rude")
    );
    let flags = compile(&[
        rule("first", Action::Flag, words(&["refund"])),
        rule("second", Action::Flag, words(&["refund"])),
    ]);
    assert_eq!(
        decide(&flags, "refund", None).map(|d| d.0).as_deref(),
        Some("first")
    );
}

/// (condition, text, username, context tweak, should match)
#[test]
fn every_condition() {
    let c = ConditionSpec::default;
    type Tweak = fn(&mut CommentView<'static>);
    let none: Tweak = |_| {};
    let deny_bitly = || ConditionSpec {
        deny_domains: vec!["bit.ly".into()],
        ..c()
    };
    let plain_names = || ConditionSpec {
        usernames: vec!["acme_support".into(), "acme.shop".into()],
        ..c()
    };
    let history = Box::leak(Box::new(vec![
        Seen {
            username: "bot1".into(),
            at: 1000,
        },
        Seen {
            username: "bot1".into(),
            at: 1500,
        },
        Seen {
            username: "bot2".into(),
            at: 1600,
        },
        Seen {
            username: "bot3".into(),
            at: 100,
        },
    ]));
    let cases: Vec<(ConditionSpec, &str, Option<&str>, Tweak, bool)> = vec![
        (
            ConditionSpec {
                not_words: vec!["thanks".into()],
                words: vec!["refund".into()],
                ..c()
            },
            "refund now",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                not_words: vec!["thanks".into()],
                words: vec!["refund".into()],
                ..c()
            },
            "refund, thanks",
            None,
            none,
            false,
        ),
        (
            ConditionSpec {
                regex: vec![r"\d{3,}\s*%".into()],
                ..c()
            },
            "200 % returns",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                regex: vec!["forex".into()],
                regex_on: TextForm::Original,
                ..c()
            },
            "FOREX",
            None,
            none,
            false,
        ),
        (
            ConditionSpec {
                regex: vec!["FOREX".into()],
                regex_on: TextForm::Original,
                ..c()
            },
            "FOREX",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                regex: vec!["forex".into()],
                ..c()
            },
            "ＦＯＲＥＸ",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                regex: vec!["buy".into()],
                not_regex: vec!["don.t".into()],
                ..c()
            },
            "don't buy",
            None,
            none,
            false,
        ),
        (
            ConditionSpec { links: true, ..c() },
            "go to spam(dot)biz",
            None,
            none,
            true,
        ),
        // "dot" as a word: found by the rule set's word lookup, for the link detector.
        (
            ConditionSpec { links: true, ..c() },
            "go to spam dot biz",
            None,
            none,
            true,
        ),
        (deny_bitly(), "see bit DOT ly/x", None, none, true),
        (
            deny_bitly(),
            "see https://bit.ly/x and acme.com",
            None,
            none,
            true,
        ),
        (deny_bitly(), "see acme.com", None, none, false),
        (
            ConditionSpec {
                contact: ContactKind::ALL.to_vec(),
                ..c()
            },
            "mail me: x@y.io",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                contact: vec![ContactKind::Phone],
                ..c()
            },
            "call +44 7700 900123",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                contact: vec![ContactKind::Phone],
                ..c()
            },
            "sold 3 in 2024",
            None,
            none,
            false,
        ),
        (
            ConditionSpec {
                contact: vec![ContactKind::Whatsapp],
                ..c()
            },
            "wh@tsapp +1555",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                contact: vec![ContactKind::Telegram],
                ..c()
            },
            "dm me on t e l e g r a m",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                contact: vec![ContactKind::Telegram],
                ..c()
            },
            "see t.me/bob",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                contact: vec![ContactKind::Whatsapp],
                ..c()
            },
            "wa.me/447700",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                contact: vec![ContactKind::Telegram],
                ..c()
            },
            "tgme",
            None,
            none,
            false,
        ),
        (
            ConditionSpec {
                contact: vec![ContactKind::Whatsapp],
                ..c()
            },
            "whatsappening",
            None,
            none,
            false,
        ),
        (
            ConditionSpec {
                mentions_only: true,
                ..c()
            },
            "@a @b",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                mentions_only: true,
                ..c()
            },
            "@a nice",
            None,
            none,
            false,
        ),
        (
            ConditionSpec {
                max_emojis: Some(3),
                ..c()
            },
            "🔥🔥🔥🔥",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                max_emojis: Some(3),
                ..c()
            },
            "🔥🔥🔥 wow",
            None,
            none,
            false,
        ),
        (
            ConditionSpec {
                emoji_only: true,
                ..c()
            },
            "😍😍",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                max_caps_ratio: Some(0.7),
                ..c()
            },
            "BUY THIS NOW PLEASE",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                max_caps_ratio: Some(0.7),
                ..c()
            },
            "Buy this now please",
            None,
            none,
            false,
        ),
        (
            ConditionSpec {
                min_length: Some(10),
                words: vec!["x".into()],
                ..c()
            },
            "x",
            None,
            none,
            false,
        ),
        (
            ConditionSpec {
                max_length: Some(3),
                ..c()
            },
            "ok!",
            None,
            none,
            true,
        ),
        (
            ConditionSpec {
                max_length: Some(3),
                ..c()
            },
            "okay",
            None,
            none,
            false,
        ),
        (
            ConditionSpec {
                usernames: vec![r"wealth\.mentor\d*".into()],
                ..c()
            },
            "hi",
            Some("Wealth.Mentor22"),
            none,
            true,
        ),
        // Plain patterns, compared as text for ASCII usernames: capitals ignored, `.` any
        // character; other usernames go to the regex, which folds `ſ` to `s`.
        (plain_names(), "hi", Some("ACME-shop"), none, true),
        (plain_names(), "hi", Some("acme_ſupport"), none, true),
        (plain_names(), "hi", Some("acme_supports"), none, false),
        (
            ConditionSpec {
                words: vec!["hi".into()],
                not_usernames: vec!["acme.*".into()],
                ..c()
            },
            "hi",
            Some("acme_team"),
            none,
            false,
        ),
        (
            ConditionSpec {
                impersonation: Some(ImpersonationSpec {
                    brands: vec!["acme".into()],
                    max_distance: 1,
                }),
                ..c()
            },
            "hi",
            Some("acme.official"),
            none,
            true,
        ),
        (
            ConditionSpec {
                impersonation: Some(ImpersonationSpec {
                    brands: vec![],
                    max_distance: 1,
                }),
                ..c()
            },
            "hi",
            Some("acrne"),
            |v| v.account_username = Some("acme"),
            true,
        ),
        (
            ConditionSpec {
                impersonation: Some(ImpersonationSpec {
                    brands: vec![],
                    max_distance: 1,
                }),
                ..c()
            },
            "hi",
            Some("acme"),
            |v| v.account_username = Some("acme"),
            false,
        ),
        (
            ConditionSpec {
                repeated: Some(RepeatedSpec {
                    per_user: Some(3),
                    users: None,
                    window: Duration::from_secs(3600),
                }),
                ..c()
            },
            "x",
            Some("bot1"),
            |v| {
                v.at = 2000;
            },
            true,
        ),
        (
            ConditionSpec {
                repeated: Some(RepeatedSpec {
                    per_user: Some(4),
                    users: None,
                    window: Duration::from_secs(3600),
                }),
                ..c()
            },
            "x",
            Some("bot1"),
            |v| {
                v.at = 2000;
            },
            false,
        ),
        (
            ConditionSpec {
                repeated: Some(RepeatedSpec {
                    per_user: None,
                    users: Some(4),
                    window: Duration::from_secs(3600),
                }),
                ..c()
            },
            "x",
            Some("bot4"),
            |v| {
                v.at = 2000;
            },
            true,
        ),
        (
            ConditionSpec {
                repeated: Some(RepeatedSpec {
                    per_user: None,
                    users: Some(4),
                    window: Duration::from_secs(1000),
                }),
                ..c()
            },
            "x",
            Some("bot4"),
            |v| {
                v.at = 2000;
            },
            false,
        ),
        (
            ConditionSpec {
                is_reply: Some(true),
                words: vec!["x".into()],
                ..c()
            },
            "x",
            None,
            |v| v.is_reply = true,
            true,
        ),
        (
            ConditionSpec {
                is_reply: Some(true),
                words: vec!["x".into()],
                ..c()
            },
            "x",
            None,
            none,
            false,
        ),
        (
            ConditionSpec {
                media: vec!["REELS".into()],
                ..c()
            },
            "x",
            None,
            |v| v.media_type = Some("REELS"),
            true,
        ),
        (
            ConditionSpec {
                media: vec!["179001".into()],
                ..c()
            },
            "x",
            None,
            |v| v.media_id = Some("179002"),
            false,
        ),
    ];
    for (i, (cond, text, username, tweak, expected)) in cases.into_iter().enumerate() {
        let rules = compile(&[rule("r", Action::Flag, cond)]);
        let mut view = CommentView::new(text, username);
        view.history = history;
        tweak(&mut view);
        let got = rules.decide(&view);
        assert_eq!(
            got.is_some(),
            expected,
            "case {i}: {text:?} by {username:?}: {got:?}"
        );
        // The quick test and the evidence-building check agree on every condition.
        let n = Normalized::new(text);
        let mut scan = rules.scan(&n);
        for r in &rules.rules {
            for cond in std::iter::once(&r.all).chain(&r.any).flat_map(|g| &g.conds) {
                assert_eq!(
                    cond.holds(&view, &mut scan, &rules),
                    cond.check(&view, &mut scan, &rules).is_some(),
                    "case {i}: {cond:?} on {text:?}"
                );
            }
        }
    }
}

#[test]
fn the_normaliser_notes_which_punctuation_the_folded_text_may_have() {
    for (text, present, absent) in [
        ("hi @bob.x", &b".@ "[..], &b"([{</"[..]),
        ("wa\u{FF0E}me\u{FF0F}1", b"./", b"@ ("),
        ("see [link] (here) <x> {y}", b"([{< ", b".@/"),
        ("", b"", b".@([{</ "),
    ] {
        let n = Normalized::new(text);
        for &b in present {
            assert!(n.may_have(b), "{text:?} has {:?}", char::from(b));
        }
        for &b in absent {
            assert!(!n.may_have(b), "{text:?} has no {:?}", char::from(b));
        }
    }
}

#[test]
fn any_groups_or_together_and_and_with_the_rest() {
    let spec = RuleSpec {
        any: vec![
            words(&["giveaway"]),
            ConditionSpec {
                links: true,
                ..ConditionSpec::default()
            },
        ],
        ..rule(
            "promo",
            Action::Hide,
            ConditionSpec {
                is_reply: Some(false),
                ..ConditionSpec::default()
            },
        )
    };
    let rules = compile(&[spec]);
    let check = |text, reply| {
        let mut v = CommentView::new(text, None);
        v.is_reply = reply;
        rules.decide(&v).map(|m| m.reason)
    };
    assert_eq!(
        check("giveaway!", false).as_deref(),
        Some("is not a reply and word \"giveaway\"")
    );
    assert_eq!(
        check("see x.biz", false).as_deref(),
        Some("is not a reply and link \"x.biz\"")
    );
    assert_eq!(check("giveaway!", true), None);
    assert_eq!(check("hello", false), None);
}

#[test]
fn evidence_spans_and_reply_rendering() {
    let spec = RuleSpec {
        reply: Some("Hi @{{username}}, please don't share \"{{match}}\" here.".into()),
        ..rule(
            "nolinks",
            Action::Reply,
            ConditionSpec {
                links: true,
                ..ConditionSpec::default()
            },
        )
    };
    let rules = compile(&[spec, rule("w", Action::Flag, words(&["free money"]))]);
    let text = "Get ＦＲＥＥ   money at Spam.biz/now";
    let all = rules.matches(&CommentView::new(text, Some("bob")));
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].reply.as_deref(),
        Some("Hi @bob, please don't share \"Spam[.]biz/now\" here.")
    );
    let span = all[1].evidence[0].span.clone().unwrap_or(0..0);
    assert_eq!(&text[span], "ＦＲＥＥ   money");
}

#[test]
fn compile_reports_every_problem() {
    let specs = vec![
        rule(
            "a",
            Action::Hide,
            ConditionSpec {
                regex: vec!["ok".into(), "(unclosed".into()],
                ..ConditionSpec::default()
            },
        ),
        rule("empty", Action::Hide, ConditionSpec::default()),
        rule("c", Action::Hide, words(&["!!!"])),
        rule(
            "d",
            Action::Hide,
            ConditionSpec {
                usernames: vec!["[".into()],
                ..ConditionSpec::default()
            },
        ),
        rule("e", Action::Reply, words(&["x"])),
        rule(
            "f",
            Action::Hide,
            ConditionSpec {
                not_words: vec!["x".into()],
                ..ConditionSpec::default()
            },
        ),
    ];
    let errors = RuleSet::compile(&specs).err().unwrap_or_default();
    let located: Vec<_> = errors.iter().map(|e| (e.rule, e.key, e.item)).collect();
    assert_eq!(
        located,
        vec![
            (0, Some("regex"), Some(1)),
            (1, None, None),
            (2, Some("words"), Some(0)),
            (3, Some("usernames"), Some(0)),
            (4, Some("reply"), None),
            (5, None, None),
        ],
        "{errors:#?}"
    );
    assert_eq!(
        errors[0].message,
        "invalid regex pattern \"(unclosed\": unclosed group"
    );
}

/// A list's evidence names its first pattern that matches anywhere, whichever matches first
/// in the text, and whatever the other patterns do (they overlap, or one is a prefix of
/// another).
#[test]
fn a_regex_list_reports_its_first_matching_pattern() {
    let list = |patterns: &[&str]| {
        compile(&[rule(
            "r",
            Action::Flag,
            ConditionSpec {
                regex: patterns.iter().map(|p| p.to_string()).collect(),
                ..ConditionSpec::default()
            },
        )])
    };
    for (patterns, text, reason) in [
        (&["zz+", "a"][..], "a then zzz", "regex \"zz+\""),
        (&["ab", "a"][..], "xx ab", "regex \"ab\""),
        (&["a", "ab"][..], "xx ab", "regex \"a\""),
        (&["b.d", "abc"][..], "abcd", "regex \"b.d\""),
        (&["nothing", "a+", "b"][..], "b aaa", "regex \"a+\""),
    ] {
        let found = list(patterns)
            .decide(&CommentView::new(text, None))
            .map(|m| m.reason);
        assert_eq!(found.as_deref(), Some(reason), "{patterns:?} on {text:?}");
    }
}

#[test]
fn a_regex_too_large_to_compile_is_refused_by_name() {
    let spec = rule(
        "huge",
        Action::Hide,
        ConditionSpec {
            regex: vec!["fine".into(), r"\w{5000}".into()],
            ..ConditionSpec::default()
        },
    );
    let errors = RuleSet::compile(&[spec]).err().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].key, errors[0].item), (Some("regex"), Some(1)));
    assert!(
        errors[0]
            .message
            .starts_with("invalid regex pattern \"\\\\w{5000}\": ")
            && errors[0].message.contains("size limit"),
        "{}",
        errors[0].message
    );
}

#[test]
fn select_keeps_config_order() {
    let rules = example().select(&["profanity".into(), "trusted".into()]);
    assert_eq!(rules.names().collect::<Vec<_>>(), ["trusted", "profanity"]);
    assert_eq!(decide(&rules, "forex", None), None);
}

#[test]
fn text_keys_group_evasive_repeats() {
    assert_eq!(
        RuleSet::text_key("FREE money!!"),
        RuleSet::text_key("free   mοney")
    );
    assert_ne!(
        RuleSet::text_key("free money"),
        RuleSet::text_key("free honey")
    );
}

#[test]
fn word_boundaries_become_ascii_and_escapes_survive() {
    for (input, expected) in [
        (r"\bdm\b", r"(?-u:\b)dm(?-u:\b)"),
        (r"\\b", r"\\b"),
        (r"a\Bb\d", r"a(?-u:\B)b\d"),
        (r"[\b]x\b", r"[\b]x(?-u:\b)"),
        (r"[a\]\b]\b", r"[a\]\b](?-u:\b)"),
    ] {
        assert_eq!(super::ascii_word_boundaries(input), expected, "{input}");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Every rule of `config.toml.example`, the starter pack included (its account's token
    /// read from a variable that is always set).
    fn example_config() -> RuleSet {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml.example");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .replace("\"IGMOD_TOKEN_ACME\"", "\"PATH\"");
        match crate::config::parse(&path, &text) {
            Ok(config) => config.rules,
            Err(e) => panic!("config.toml.example must load: {e}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn normalising_never_panics_and_is_idempotent(text in "\\PC{0,120}") {
            let once = Normalized::new(&text);
            let twice = Normalized::new(&once.folded);
            // Folding is a projection: folding folded text changes nothing, and the words
            // built from it are the same.
            prop_assert_eq!(&twice.folded, &once.folded);
            prop_assert_eq!(twice.skeleton(), once.skeleton());
            // The maps built later for evidence describe the same skeleton, char for char.
            prop_assert_eq!(once.skel().len(), once.skeleton_str().chars().count());
        }

        /// The fast path of normalisation (byte by byte for ASCII, no word list) gives exactly
        /// what the generic pipeline gives, runs and joined letters included. The text mixes
        /// the characters the word rules treat specially with any others, and long ASCII
        /// stretches of short words (each ordinary one written in one store), and letters of
        /// other scripts that fold to themselves or to Latin letters, repeated, with marks and
        /// format characters between them; and words of letters that repeat or become a repeat
        /// once `l` is written as `i` (`lil`), around the eight bytes an ordinary word is read
        /// in, and long ones, with one or more separators or something else after them.
        #[test]
        fn the_fast_normaliser_agrees_with_the_generic_one(
            text in "([a-zA-Z0-9@$.!| _-]|\\PC){0,80}|[a-c1@$ .]{0,40}|\\PC{0,60}|([a-dA1]{1,5}[ .,!]{1,2}){10,40}|[чшОеьЧö太好정말सदर\u{0941}\u{094D}\u{0902}\u{0301}\u{200B}é😍🔥\u{1F3FB}❤\u{FE0F}、aA1@$ .]{0,40}|([a-eliA-EL]{1,9}[ .,'0-9]){1,20}|([a-eliA-EL]{1,34}([ .,'\t\u{0}]{1,3}|[0-9@$é😍])){1,12}",
        ) {
            let fast = Normalized::new(&text);
            let slow = Normalized::the_long_way(&text);
            prop_assert_eq!(fast.plain_parts(), slow.plain_parts());
        }

        /// WhatsApp and Telegram words, looked for by the rule set's word automaton among
        /// the rules' own words, are found exactly where the detector's own search finds them.
        #[test]
        fn contact_words_found_with_the_rule_words_agree_with_the_detector(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "whatsapp", "whats app", "w h a t s a p p", "wh@tsapp", "watsap",
                    "whatsappening", "telegram", "tg me", "tgme", "t.me/x", "wa.me/1",
                    "telegrm", "hello", "me", "tg", "a", "b", "free", "crypto",
                ]),
                0..8,
            ),
        ) {
            let text = parts.join(" ");
            let kinds = [ContactKind::Whatsapp, ContactKind::Telegram];
            let specs: Vec<RuleSpec> = kinds
                .iter()
                .map(|k| rule("r", Action::Flag, ConditionSpec {
                    contact: vec![*k],
                    ..ConditionSpec::default()
                }))
                .chain([rule("w", Action::Flag, words(&["free", "whats", "tg"]))])
                .collect();
            let rules = compile(&specs);
            let n = Normalized::new(&text);
            let view = CommentView::new(&text, None);
            let mut scan = rules.scan(&n);
            for (k, r) in kinds.iter().zip(&rules.rules) {
                let holds = r.all.conds.iter().all(|c| c.holds(&view, &mut scan, &rules));
                prop_assert_eq!(holds, crate::rules::detect::has_contact(&n, *k), "{:?} in {:?}", k, text);
            }
        }

        /// Looking words up by their first word finds what the automaton finds, in every
        /// text it is used for (no joined letters): the same word of each list, at the same
        /// place. The words share prefixes, repeat letters, span several words, are longer
        /// than eight bytes (the lookup reads eight at a time) and repeat across lists.
        #[test]
        fn the_word_index_agrees_with_the_automaton(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("free"), Just("FREEE"), Just("fre"), Just("money"), Just("m0ney"),
                    Just("moneyy"), Just("crypto"), Just("cryptocurrency"), Just("signals"),
                    Just("ass"), Just("class"), Just("assassin"), Just("#freemoney"),
                    Just("ＦＲＥＥ"), Just("é"), Just("😍"), Just("@free"), Just("12345678"),
                    Just("abcdefgh"), Just("abcdefghi"), Just("x"), Just("to"),
                ],
                0..24,
            ),
            seps in proptest::collection::vec(prop_oneof![Just(" "), Just("  "), Just(", "), Just("-"), Just("")], 24),
        ) {
            let text: String = parts
                .iter()
                .zip(&seps)
                .flat_map(|(p, s)| [*p, *s])
                .collect();
            let rules = compile(&[
                rule("a", Action::Hide, words(&["free money", "free", "fre", "freee", "money"])),
                rule("b", Action::Hide, words(&["crypto signals", "cryptocurrency", "ass", "abcdefgh"])),
                rule("c", Action::Flag, words(&["abcdefghi", "12345678", "free", "to", "money free money"])),
                // Two words that end at the same place: the longer is reported.
                rule("d", Action::Flag, words(&["money", "free money", "signals", "crypto signals"])),
            ]);
            let n = Normalized::new(&text);
            prop_assume!(!n.joined());
            let lists = rules.word_lists.len();
            let (mut by_index, mut by_automaton) = (vec![None; lists], vec![None; lists]);
            rules.words_by_index(&n, &mut by_index);
            rules.words_by_automaton(&n, &mut by_automaton);
            prop_assert_eq!(by_index, by_automaton, "{}", text);
        }

        /// The rule set looks for the word "dot" (`site dot com`) with its own words, and
        /// finds it wherever the link detector's own search would, with joined letters or
        /// without: the detector is told instead of searching.
        #[test]
        fn the_rule_words_find_the_dot_word_for_the_link_detector(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "site", "dot", "DOT", "d0t", "doot", "d o t", "polka", "com", "free",
                    "f r e e", ".", "(", "dotcom", "é", "x y",
                ]),
                0..10,
            ),
        ) {
            let text = parts.join(" ");
            let rules = compile(&[
                rule("w", Action::Hide, words(&["free", "dot com"])),
                rule("l", Action::Hide, ConditionSpec { links: true, ..ConditionSpec::default() }),
            ]);
            let n = Normalized::new(&text);
            let scan = rules.scan(&n);
            let Some(list) = rules.dot_list else {
                panic!("a link condition adds the word");
            };
            let searched = crate::rules::detect::has_dot_word(n.skeleton());
            prop_assert!(scan.words[list].is_some() || !searched, "{}", text);
        }

        /// `decide` skips rules that cannot win and builds evidence for the winner alone; it
        /// must pick exactly what picking from every match picks. Texts mix innocent
        /// fragments with spam that several example and starter rules match at once.
        #[test]
        fn deciding_picks_what_every_match_would(
            parts in proptest::collection::vec(
                prop_oneof![
                    3 => proptest::sample::select(vec![
                        "love this", "forex", "crypto signal", "idiot", "dm me to earn",
                        "check my bio", "spam.biz", "acme.com", "@ana", "@bruno.silva",
                        "$5000 profit", "whatsapp +44 7700 900123", "🔥🔥🔥🔥🔥🔥",
                        "DM @mrs.annafx for", "recover my funds", "cheap followers",
                        "WIN A FREE IPHONE",
                    ])
                    .prop_map(String::from),
                    1 => "\\PC{0,12}",
                ],
                0..12,
            ),
            user in prop_oneof![
                proptest::sample::select(vec!["acme_support", "acme.offical"]).prop_map(String::from),
                "[a-z_.]{1,12}",
            ],
        ) {
            let text = parts.join(" ");
            static RULES: std::sync::LazyLock<[RuleSet; 2]> =
                std::sync::LazyLock::new(|| [example(), example_config()]);
            for rules in RULES.iter() {
                let view = CommentView::new(&text, Some(&user));
                prop_assert_eq!(rules.decide(&view), pick(rules.matches(&view)), "{}", text);
            }
        }

        /// A word's evidence span without joined letters comes from where the one-pass
        /// normaliser noted each word begins and ends; it must be what the maps say, for every
        /// run of whole words (look-alikes, dropped characters, ligatures, leet, `@`/`$` inside
        /// words, repeats, and the ordinary words written whole included).
        #[test]
        fn word_spans_agree_with_the_maps(
            text in "([a-zA-Z0-9@$.!| _-]|\\PC){0,60}|([a-c1@$ .]|ﬁ|\u{200B}|é|ｆ){0,40}|([a-eliA-EL]{1,9}[ .,'0-9é]){1,20}",
        ) {
            let n = Normalized::new(&text);
            prop_assume!(!n.joined());
            let mut words = Vec::new();
            let mut start = 0;
            for w in n.skeleton_str().split(' ').filter(|w| !w.is_empty()) {
                words.push(start..start + w.len());
                start += w.len() + 1;
            }
            let skel = n.skel();
            for i in 0..words.len() {
                for j in i..words.len().min(i + 3) {
                    let bytes = words[i].start..words[j].end;
                    let (a, b) = (n.skel_at(bytes.start), n.skel_at(bytes.end - 1));
                    let long = skel[a].orig.0 as usize..skel[b].orig.1 as usize;
                    prop_assert_eq!(n.word_span(bytes), Some(long), "{:?}", text);
                }
            }
        }

        #[test]
        fn lengths_are_counted_in_characters(text in "\\PC{0,40}|[a-z]{0,40}", n in 0usize..50) {
            prop_assert_eq!(super::length_at_least(&text, n), text.chars().count() >= n);
        }

        #[test]
        fn evaluating_never_panics(text in "\\PC{0,200}", user in "[a-z_.]{0,20}") {
            let rules = example();
            let _ = rules.matches(&CommentView::new(&text, Some(&user)));
        }

        /// Letters with no leet digit or look-alike among the generated characters.
        #[test]
        fn a_word_never_matches_text_without_its_letters(
            word in "[bcdfghjkmnpqruvwxyz]{3,8}",
            text in "[ -~]{0,200}",
        ) {
            let missing = word.chars().next().unwrap_or('b');
            let text: String = text
                .chars()
                .filter(|c| c.to_ascii_lowercase() != missing)
                .collect();
            let rules = compile(&[rule("w", Action::Hide, words(&[word.as_str()]))]);
            prop_assert!(rules.decide(&CommentView::new(&text, None)).is_none(), "{} in {:?}", word, text);
        }
    }
}

#[test]
fn a_reply_never_reposts_a_live_link_mention_or_hashtag() {
    // The matched span is the commenter's text; the reply is the brand's public voice.
    for (text, expect) in [
        ("https://evil.example/x", "https[:]//evil[.]example/x"),
        ("@scam_helper", "(at)scam_helper"),
        ("#freecrypto", "freecrypto"),
        ("a\u{202E}b\u{200B}c\nd", "abc d"),
        ("ｅｖｉｌ．ｃｏｍ＠x", "ｅｖｉｌ[.]ｃｏｍ(at)x"),
    ] {
        assert_eq!(crate::rules::defang(text), expect, "{text:?}");
    }
    let long = "x".repeat(100);
    let d = crate::rules::defang(&long);
    assert_eq!(d.chars().count(), 41, "{d}");
    assert!(d.ends_with('…'));

    let spec = RuleSpec {
        reply: Some("@{{username}} please don't share {{match}}".into()),
        ..rule("r", Action::Reply, words(&["dm @scam_helper"]))
    };
    let rules = compile(&[spec]);
    let all = rules.matches(&CommentView::new(
        "pls dm @scam_helper now",
        Some("bob\n@everyone"),
    ));
    assert_eq!(
        all[0].reply.as_deref(),
        Some("@bobeveryone please don't share dm (at)scam_helper")
    );
}

/// "Hide what is not in my audience's languages": `not_languages` hides comments in a known
/// other language, or too short to tell but in a script none of the listed languages is
/// written in; never one that could be listed (emoji, "ok", a handle, a short Latin phrase).
#[test]
fn not_languages_hides_other_languages_and_never_what_could_be_listed() {
    let rules = compile(&[rule(
        "foreign",
        Action::Hide,
        ConditionSpec {
            not_languages: vec!["en".into(), "es".into()],
            ..ConditionSpec::default()
        },
    )]);
    let cases: &[(&str, bool)] = &[
        ("Очень красивый цвет, а есть размер побольше?", true),
        (
            "ربحت الكثير من المال مع هذه الشركة، تواصل معي على الواتساب الآن",
            true,
        ),
        (
            "Saya dapat banyak uang dari investasi ini, hubungi dia lewat WhatsApp sekarang",
            true,
        ),
        (
            "I ordered two weeks ago and still nothing, please check my order",
            false,
        ),
        (
            "Hola, ¿cuándo vuelve a estar disponible la talla pequeña? Gracias",
            false,
        ),
        ("😍😍", false),
        ("ok", false),
        ("@bruno.silva", false),
        // Too short to tell Russian from Ukrainian, but neither English nor Spanish.
        ("Очень красиво", true),
        ("धन्यवाद भाई", true),
        // Not English, but it could be Spanish for all the detector can tell.
        ("udah aku kirimin pesan kak, dibaca yaa 😊", false),
        ("🔥🔥🔥 https://acme.com/shop #ootd", false),
    ];
    for (text, hidden) in cases {
        let view = CommentView::new(text, Some("someone"));
        let decided = rules.decide(&view);
        assert_eq!(decided.is_some(), *hidden, "{text:?}: {decided:?}");
        // `matches` (evidence) agrees with `decide` (the fast path).
        assert_eq!(rules.matches(&view).len(), usize::from(*hidden), "{text:?}");
        if let Some(m) = decided {
            assert!(
                m.reason.starts_with("language ") && m.reason.ends_with(", not one of en, es"),
                "{}",
                m.reason
            );
        }
    }
}

#[test]
fn languages_matches_only_the_listed_known_languages_and_combines_with_and() {
    let rules = compile(&[rule(
        "es-giveaway",
        Action::Flag,
        ConditionSpec {
            languages: vec!["es".into(), "PT".into()],
            words: vec!["whatsapp".into()],
            ..ConditionSpec::default()
        },
    )]);
    let cases: &[(&str, bool)] = &[
        (
            "Gané 3000 dólares en una semana con la señora Ana, escríbele por WhatsApp ahora",
            true,
        ),
        // Listed language, but the other condition fails.
        (
            "Hola, ¿cuándo vuelve a estar disponible la talla pequeña? Gracias",
            false,
        ),
        // The word, in a language not listed.
        (
            "Ich habe mit diesem Trader tausend Euro verdient, schreibt ihm auf WhatsApp",
            false,
        ),
        // The word, language unknown.
        ("whatsapp 😍", false),
    ];
    for (text, hit) in cases {
        let view = CommentView::new(text, None);
        assert_eq!(rules.decide(&view).is_some(), *hit, "{text:?}");
        assert_eq!(rules.matches(&view).is_empty(), !*hit, "{text:?}");
    }
    let m = rules
        .decide(&CommentView::new(
            "Gané 3000 dólares en una semana con la señora Ana, escríbele por WhatsApp ahora",
            None,
        ))
        .expect("matches");
    assert!(m.reason.contains("language es ("), "{}", m.reason);
    assert!(m.reason.contains("one of es, pt"), "{}", m.reason);
}

/// `lookalike_domains`: links that imitate the brand's own domains (phishing "support" and
/// "giveaway" sites) match; the domains themselves, their subdomains, other sites and names
/// that only resemble the brand's by chance do not.
#[test]
fn lookalike_domains_catch_links_imitating_the_brands_own() {
    let rules = compile(&[rule(
        "lookalike",
        Action::Hide,
        ConditionSpec {
            lookalike_domains: vec!["acme.com".into(), "LunaShoes.co.uk".into()],
            ..ConditionSpec::default()
        },
    )]);
    let cases: &[(&str, Option<&str>)] = &[
        (
            "Refunds desk: acme-support.com/claim",
            Some("acme-support.com"),
        ),
        (
            "get 70% off at https://shop-acme.com today",
            Some("shop-acme.com"),
        ),
        (
            "help at www.lunashoes-help.com",
            Some("www.lunashoes-help.com"),
        ),
        (
            "new drop on acme.com.deals-outlet.shop",
            Some("acme.com.deals-outlet.shop"),
        ),
        ("winners at acmeofficial.net 🎉", Some("acmeofficial.net")),
        ("4cme.com/prize", Some("4cme.com")),
        ("acrne.com/refund", Some("acrne.com")),
        // In other languages, beside a country code.
        ("¡ganaste! premios-acme-br.com", Some("premios-acme-br.com")),
        // The browser goes to the host after the @.
        (
            "log in: https://acme.com@evil-site.ru/login",
            Some("evil-site.ru"),
        ),
        // Another script's letters in the brand's own domain (a Cyrillic а), as written and
        // in the xn-- form a browser shows.
        ("claim at аcme.com/win", Some("acme.com")),
        ("claim at xn--cme-5cd.com/win", Some("xn--cme-5cd.com")),
        // A name of five letters or more: one letter off, or two swapped.
        ("lunashoess.com/sale", Some("lunashoess.com")),
        ("lunahsoes.co.uk/sale", Some("lunahsoes.co.uk")),
        // Not look-alikes: the domains, their subdomains, and how people type them.
        ("ordered from https://acme.com/shop yesterday", None),
        ("the size guide at help.acme.com/sizes", None),
        ("lunashoes.co.uk/returns worked fine", None),
        ("Shop the sale 👉acme.com", None),
        ("https://acme.comで購入しました", None),
        ("ｗｗｗ.acme.com のセール", None),
        // Nor the bare name on another site, which is as often honest (the brand's help
        // desk, its other countries, another company called Acme), nor other words.
        ("opened a ticket at acme.zendesk.com", None),
        ("acme.co.uk ships faster", None),
        ("same shop, cheaper: acme.store", None),
        ("acme-brick.com for the patio", None),
        ("acmecare.org is my insurance, unrelated", None),
        ("my skin: acne.org says moisturise", None),
        ("acmetools.com makes my drill", None),
        ("see https://example.com/acme-review", None),
        ("no link here, just acme love", None),
    ];
    for (text, host) in cases {
        let view = CommentView::new(text, None);
        let decided = rules.decide(&view);
        assert_eq!(decided.is_some(), host.is_some(), "{text:?}: {decided:?}");
        assert_eq!(rules.matches(&view).is_empty(), host.is_none(), "{text:?}");
        if let (Some(m), Some(host)) = (decided, host) {
            assert!(
                m.reason
                    .starts_with(&format!("link \"{host}\" imitates \"")),
                "{text:?}: {}",
                m.reason
            );
        }
    }
}

/// A domain with no name to compare (a public suffix) or too short a name is refused,
/// naming the item.
#[test]
fn a_lookalike_domain_without_a_name_is_a_compile_error() {
    for bad in [
        "co.uk",
        "ab.com",
        "https://acme.com",
        "*.acme.com",
        "shop.acme.com",
        "acme.con",
        "10.0.0.1",
    ] {
        let err = RuleSet::compile(&[rule(
            "bad",
            Action::Hide,
            ConditionSpec {
                lookalike_domains: vec!["acme.com".into(), bad.into()],
                ..ConditionSpec::default()
            },
        )])
        .expect_err("no name");
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(err[0].key, Some("lookalike_domains"));
        assert_eq!(err[0].item, Some(1));
        assert!(err[0].message.contains(bad), "{}", err[0].message);
    }
}

/// `"und"` in `languages` matches a comment whose language is unknown and could be one of the
/// others listed: "the model hides in English, or where the language cannot be told and it
/// could be English" is `languages = ["en", "und"]`.
#[test]
fn und_in_languages_matches_an_unknown_language_and_nothing_else() {
    let rules = compile(&[rule(
        "english-or-unknown",
        Action::Hide,
        ConditionSpec {
            // "und" twice is still one condition, not a list that failed to read.
            languages: vec!["en".into(), "UND".into(), "und".into()],
            ..ConditionSpec::default()
        },
    )]);
    let cases: &[(&str, bool)] = &[
        (
            "I ordered two weeks ago and still nothing, please check my order",
            true,
        ),
        ("😍😍", true),
        ("@bruno.silva", true),
        ("nice pic bro love it", true),
        // Unknown, but it cannot be English: "und" next to "en" means "could be".
        ("Очень красиво", false),
        ("udah aku kirimin pesan kak, dibaca yaa 😊", false),
        ("Очень красивый цвет, а есть размер побольше?", false),
        (
            "Hola, ¿cuándo vuelve a estar disponible la talla pequeña? Gracias",
            false,
        ),
    ];
    for (text, hit) in cases {
        let view = CommentView::new(text, None);
        assert_eq!(rules.decide(&view).is_some(), *hit, "{text:?}");
        assert_eq!(rules.matches(&view).is_empty(), !*hit, "{text:?}");
    }
    let m = rules
        .decide(&CommentView::new("😍😍", None))
        .expect("matches");
    assert_eq!(m.reason, "language unknown, one of en, und");
    assert_eq!(rules.len(), 1);
}

/// `not_languages` decides for an unknown language by what it can tell (the script), so
/// `"und"` there has no meaning: it is refused, naming the item, rather than silently ignored.
#[test]
fn und_in_not_languages_is_a_compile_error() {
    let err = RuleSet::compile(&[rule(
        "bad",
        Action::Hide,
        ConditionSpec {
            words: vec!["x".into()],
            not_languages: vec!["en".into(), "und".into()],
            ..ConditionSpec::default()
        },
    )])
    .expect_err("und has no place in not_languages");
    assert_eq!(err.len(), 1, "{err:?}");
    assert_eq!(err[0].key, Some("not_languages"));
    assert_eq!(err[0].item, Some(1));
    assert!(
        err[0].message.contains("goes in `languages`"),
        "{}",
        err[0].message
    );
}

#[test]
fn an_unknown_language_code_is_a_compile_error_naming_key_and_item() {
    let err = RuleSet::compile(&[rule(
        "bad",
        Action::Hide,
        ConditionSpec {
            words: vec!["x".into()],
            not_languages: vec!["en".into(), "xx".into()],
            ..ConditionSpec::default()
        },
    )])
    .expect_err("xx is no language");
    assert_eq!(err.len(), 1, "{err:?}");
    assert_eq!(err[0].key, Some("not_languages"));
    assert_eq!(err[0].item, Some(1));
    assert!(err[0].message.contains("\"xx\""), "{}", err[0].message);
}

/// Detection costs tens of microseconds: a rule set without a language condition never
/// runs it, and a rule whose cheaper conditions already failed does not either.
#[test]
fn language_detection_is_lazy() {
    let text = "Очень красивый цвет, а есть размер побольше? forex";
    let view = CommentView::new(text, None);
    let detected = |rules: &RuleSet| {
        let n = Normalized::new(text);
        let mut scan = rules.scan(&n);
        let _ = rules.decide_in(&view, &mut scan);
        scan.lang.is_some()
    };
    let plain = compile(&[rule("scam", Action::Delete, words(&["forex"]))]);
    assert!(!detected(&plain));
    let gated = compile(&[rule(
        "foreign-giveaway",
        Action::Hide,
        ConditionSpec {
            words: vec!["giveaway".into()],
            not_languages: vec!["en".into()],
            ..ConditionSpec::default()
        },
    )]);
    assert!(!detected(&gated), "the word failed first");
    let asks = compile(&[rule(
        "foreign",
        Action::Hide,
        ConditionSpec {
            not_languages: vec!["en".into()],
            ..ConditionSpec::default()
        },
    )]);
    assert!(detected(&asks));
    // What the daemon stores comes from the same detection, or one made for it.
    let (_, _, lang) = plain.decide_with_language(&view);
    assert_eq!(lang.code(), Some("ru"));
}

/// The rule engine hands the model the links its rules found (or finds them for it): the
/// score is the one the model gives the comment alone, bit for bit, with obfuscated links,
/// messenger links and other scripts.
#[test]
fn the_model_scores_the_same_inside_the_rule_engine() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = match crate::training::load_model(&root.join("models/scam.model")) {
        Ok(m) => m,
        Err(e) => panic!("the shipped model must load: {e}"),
    };
    let account = "[[accounts]]\nname = \"a\"\nig_user_id = \"1\"\nlogin = \"instagram\"\n\
                   token_env = \"PATH\"\npoll_interval = \"1m\"\nhourly_budget = 100\n";
    let model_rule = "[[rules]]\nname = \"model\"\naction = \"hide\"\n\
                      classifier = { model = \"models/scam.model\", min_score = 0.0 }\n";
    // A stronger rule that reads every comment's links before the model is asked.
    let links_first = "[[rules]]\nname = \"elsewhere\"\naction = \"delete\"\n\
                       deny_domains = [\"nothing.invalid\"]\n";
    let texts = [
        "visit cheapfollowers dot net for 10k followers",
        "earn daily at site(dot)com 💰",
        "message me on wa.me/447700900123 or t.me/fastprofit",
        "ordered from acme.com/shop, love it 🔥",
        "Очень красиво, пишите в телеграм t.me/invest_ru",
        "https://user@spam.biz:8080/x and www.evil.example.org",
        "no links here, just a nice colour",
    ];
    for rules in [
        format!("{account}{links_first}{model_rule}"),
        format!("{account}{model_rule}"),
    ] {
        let set = match crate::config::parse(&root.join("test.toml"), &rules) {
            Ok(c) => c.rules,
            Err(e) => panic!("rules must load: {e}"),
        };
        for text in texts {
            let (_, score) = set.decide_scored(&CommentView::new(text, None));
            assert_eq!(score, Some(model.score(text)), "{text}\n{rules}");
        }
    }
}

/// A word list one rule names in `not_words` and another in `words` is looked up once, and
/// each rule still reads it its own way.
#[test]
fn a_word_list_named_twice_serves_both_rules() {
    let list = || vec!["price".to_string(), "in stock".to_string()];
    let rules = compile(&[
        rule(
            "bait",
            Action::Delete,
            ConditionSpec {
                words: vec!["whatsapp".into()],
                not_words: list(),
                ..ConditionSpec::default()
            },
        ),
        rule(
            "order",
            Action::Flag,
            ConditionSpec {
                words: list(),
                ..ConditionSpec::default()
            },
        ),
    ]);
    assert_eq!(rules.word_lists.len(), 2, "{:?}", rules.word_lists);
    assert_eq!(
        decide(&rules, "whatsapp me now", None),
        Some(("bait".into(), Action::Delete))
    );
    assert_eq!(
        decide(&rules, "whatsapp me the price", None),
        Some(("order".into(), Action::Flag))
    );
    assert_eq!(
        decide(&rules, "is it in stock", None),
        Some(("order".into(), Action::Flag))
    );
    assert_eq!(decide(&rules, "lovely", None), None);
}

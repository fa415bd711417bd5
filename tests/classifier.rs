//! The comment classifier through the real binary and the shipped model: the model file is
//! reproduced byte for byte from the README's command; evasion does not move a scam's score;
//! damaged model files are refused with exit 78.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ACME, Env, igmod, kill, run, wait_exit, wait_for};
use igmod::rules::Model;
use proptest::prelude::*;

const T: Duration = Duration::from_secs(30);

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn shipped() -> Model {
    match igmod::training::load_model(&std::path::Path::new(ROOT).join("models/scam.model")) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

/// The README's command rebuilds the shipped model exactly: same data, same seed, same bytes.
#[test]
fn the_shipped_model_is_rebuilt_byte_for_byte_by_the_readmes_command() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).expect("README");
    let command = readme
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("igmod model train data/scamspot/train.csv")
                && l.contains("-o models/scam.model")
        })
        .expect("the README gives the command that trains models/scam.model");
    let args: Vec<&str> = command
        .split('#')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .collect();
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("scam.model");
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            if *a == "models/scam.model" {
                out.display().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    let (code, stdout, err) = run(igmod().current_dir(ROOT).args(&args));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("5-fold cross-validation"), "{stdout}");
    let rebuilt = std::fs::read(&out).expect("rebuilt model");
    let shipped = std::fs::read(format!("{ROOT}/models/scam.model")).expect("shipped model");
    assert!(
        rebuilt == shipped,
        "models/scam.model differs from what `{command}` builds: retrain and commit it"
    );
}

/// What the issue asks of the shipped model, as floors with margin (the exact figures are in
/// the README and the closing note; this fails if a change breaks the model, not if the data
/// happens to move a figure by a point).
#[test]
fn the_shipped_model_records_its_cross_validation_and_clears_the_floors() {
    let m = shipped();
    let cv = m.cv();
    assert_eq!(cv.folds, 5);
    assert!(cv.f1.mean >= 0.90, "F1 {}", cv.f1.mean);
    assert!(cv.precision.mean >= 0.92, "precision {}", cv.precision.mean);
    // ScamSpot, YouTube, the multilingual files, the brand comments, the brands' own links,
    // the English self-promotion and fans' comments with its words.
    assert_eq!(m.training().rows, 2062 + 1138 + 7295 + 340 + 40 + 537 + 755);
    assert_eq!(m.settings().feature_set, 3);
    let size = std::fs::metadata(format!("{ROOT}/models/scam.model"))
        .expect("model")
        .len();
    assert!(size <= 8 * 1024 * 1024, "{size} bytes");
}

/// Comments written for this test (in no training file), in the kinds and languages the
/// issue found the first model missed, each with an honest twin that shares its words.
const SCAMS_AND_TWINS: &[(&str, &str)] = &[
    (
        "Con la ayuda de @lucia.trader_oficial pasé de 800€ a 9.600€ en dos semanas 🙏 escríbanle",
        "Pagué 80€ por estas zapatillas y valen cada euro, gracias @lucia por el consejo",
    ),
    (
        "Investi R$ 700 com o @mentor.rodrigo_fx e saquei R$ 8.900 em uma semana 💰 chama ele",
        "Comprei por R$ 179 na promoção, chegou em uma semana, recomendo 💙",
    ),
    (
        "Я вложила 15 000 ₽, а через 5 дней вывела 140 000 ₽ 🙏 пишите @olga_invest_pro",
        "Заказала за 3 500 ₽, пришло через 5 дней, размер подошёл 🙏",
    ),
    (
        "Modal 2jt jadi 25jt dalam 10 hari bareng @kak.mentor_trading 🙏 chat beliau aja",
        "Beli 2 pasang cuma 300rb, sampai dalam 3 hari, mantap kak 🙏",
    ),
    (
        "subscribe to my channel guys, I upload new music every week 🎵🎵",
        "what's the name of the song in this video? I need it for my playlist",
    ),
    (
        "Check out my page for daily outfit ideas, follow me and I follow back 💯",
        "Love the outfit ideas in this post, the blue one is my favourite",
    ),
    (
        "Hola guapo 😘 me siento sola esta noche, revisa tus mensajes, te escribí 💋",
        "Hola, les escribí por mensaje privado por mi pedido 4471, ¿me pueden responder?",
    ),
    (
        "Yeh dekho bhai, 1000 real Indian followers sirf ₹199 me, dm karo 🔥",
        "Bhai mera order 4 din se nahi aaya, customer care ko dm kiya h 🙏",
    ),
];

/// The rules of the example config's first account (trusted, the starter pack, the model).
fn example_rules() -> igmod::rules::RuleSet {
    let config = igmod::config::load_with(
        Path::new(&format!("{ROOT}/config.toml.example")),
        igmod::config::Secrets::NotNeeded,
    )
    .expect("the example config loads");
    igmod::evaluate::Selection::of(&config, None, false)
        .expect("the first account's rules")
        .rules
}

/// The model the rules' first classifier condition scores with.
fn model_of(rules: &igmod::rules::RuleSet) -> std::sync::Arc<igmod::rules::classifier::Model> {
    rules
        .models()
        .first()
        .map(|(_, m)| m.clone())
        .expect("a model")
}

/// What the example config's first account does to a comment: hide, delete, or nothing.
fn example_decision(rules: &igmod::rules::RuleSet, text: &str) -> Option<String> {
    rules
        .decide(&igmod::rules::CommentView::new(text, None))
        .filter(|m| m.action.moderates())
        .map(|m| format!("{} by {}", m.action.as_str(), m.rule))
}

/// The example account's rules (trusted, the starter pack and the shipped model) catch
/// scams and self-promotion written for this test in several languages, and leave their
/// honest twins up: at least 7 of the 8 caught (hidden, deleted, or in another language
/// flagged for a person); no twin hidden or deleted, at most one flagged.
#[test]
fn the_example_rules_catch_new_kinds_and_languages_and_leave_their_honest_twins() {
    let rules = example_rules();
    let (mut missed, mut removed, mut flagged) = (Vec::new(), Vec::new(), Vec::new());
    for (scam, twin) in SCAMS_AND_TWINS {
        if example_decision(&rules, scam).is_none() {
            missed.push(*scam);
        }
        match example_decision(&rules, twin) {
            Some(decision) if decision.starts_with("flag") => flagged.push((*twin, decision)),
            Some(decision) => removed.push((*twin, decision)),
            None => {}
        }
    }
    assert!(missed.len() <= 1, "scams left up: {missed:#?}");
    assert!(removed.is_empty(), "honest comments removed: {removed:#?}");
    assert!(flagged.len() <= 1, "honest comments flagged: {flagged:#?}");
}

/// Fans and customers write the words of self-promotion and share links too. The example
/// leaves these up, though the model scores some between 0.5 and 0.85 (a rule that hid them
/// from 0.5 with a self-promotion word, or from 0.55 with a link, lifted YouTube's recall and
/// was withdrawn for them; the review rules now flag those for a person instead, and no other
/// rule touches them); and a victim's warning about "recovery experts" is never deleted.
#[test]
fn the_example_leaves_fans_promotion_words_and_links_up() {
    let rules = example_rules();
    let model = model_of(&rules);
    for honest in [
        "Thanks, I'll check it out!",
        "I couldn't check out with PayPal",
        "@maria check this out",
        "Congrats on 1M subscribers!",
        "Can I repost this on my page?",
        "Please subscribe me to the restock alerts",
        "thumbs up if you want pink back",
        "Check out the new collection, it's fire 🔥",
        "Reviewed this on my channel, honest review, love it",
        "my channel got copyright-struck for using your song, help",
        "See the full lookbook at instagram.com/acme",
        "Saw these on tiktok.com/@acme first",
        "Donated through redcross.org in your name",
        "I subscribe to your box every month, love it",
        "pls subscribe me to the newsletter too",
        // A review (a helper writing as customers) of subscription begging's phrases: words
        // that are a customer's too stay out of the hiding rules.
        "Is the free gift card with orders over $50 still on?",
        "Is the sub back in stock? The 12 inch one sold out in a day",
        "I returned the jacket 2 weeks ago and still no PayPal money back. Order #48213",
        "I rap along to this ad song every single time 😂",
        "Free likes for the dog in the second pic 🐶❤️",
        "Don't buy free followers, people. Acme built this page the honest way",
    ] {
        let score = model.score(honest);
        assert!(score < 0.85, "{honest}: {score}");
        let decided = example_decision(&rules, honest);
        assert!(
            decided
                .as_deref()
                .is_none_or(|d| d.starts_with("flag by review-")),
            "{honest}: {decided:?}"
        );
    }
    // Customers talking about the brand's own link in bio and asking it to check their order:
    // the starter pack's phrases stay off.
    for honest in [
        "the link in bio is broken on Android",
        "link in bio? it only shows last month's sale",
        "link in bio doesn't work for me",
        "can someone check out my order? stuck in packing since Monday",
        "will it ship in time if I send it to my sister in Lyon?",
    ] {
        assert_eq!(example_decision(&rules, honest), None, "{honest}");
    }
    assert_eq!(
        example_decision(&rules, "congratulations you have won! dm to claim"),
        Some("delete by starter-fake-giveaway".to_string())
    );
    // Hidden, never deleted: warnings and questions that quote a fake giveaway; the bait with
    // "not fake" or "beware of fakes" added. Still hidden (by the model or the phrase,
    // whichever comes first): the spam twins of the fans' comments above, also with a word
    // that is a customer's too ("check out my case designs").
    for spam in [
        "heads up, the account commenting 'claim your prize' is fake, report it",
        "I was selected as a winner in your giveaway, where do I send my address?",
        "a page said dm to claim my prize, please confirm it's not you",
        "claim your prize, this is not fake!",
        "beware of fakes, the real giveaway: claim your prize at @acme_prizes",
        "handmade earrings, visit my shop, link in bio ✨",
        "see my bio, your link in bio is nothing compared to mine",
        "check out my new mixtape, dropping friday",
        "check out my case designs, handmade phone cases",
    ] {
        let decided = example_decision(&rules, spam).unwrap_or_default();
        assert!(decided.starts_with("hide"), "{spam}: {decided}");
    }
    // The starter pack too, where no model gate stands in front of its phrases.
    assert_eq!(
        example_decision(&rules, "check out our local store in Leeds, they have it"),
        None
    );
    let warning = "recovery expert wale comments pe bharosa mat kro, mere chacha ke ₹20k gaye";
    let decided = example_decision(&rules, warning).unwrap_or_default();
    assert!(!decided.starts_with("delete"), "{warning}: {decided}");
    assert_eq!(
        example_decision(&rules, "fund recovery by @hacker_john works"),
        Some("delete by starter-fund-recovery".to_string())
    );
}

/// The starter pack's money bait and contact bait: the bait is taken, the honest comments
/// that share its words are not, and a question with a number is flagged, never removed.
#[test]
fn starter_money_and_contact_bait_take_the_bait_and_spare_its_honest_neighbours() {
    // The starter pack alone: the model would take some of these first.
    let starter = std::fs::read_to_string(format!("{ROOT}/rules/starter.toml")).expect("starter");
    let text = format!(
        "[[accounts]]\nname = \"a\"\nig_user_id = \"1\"\nlogin = \"instagram\"\ntoken_env = \"PATH\"\npoll_interval = \"1m\"\nhourly_budget = 100\n\n{starter}"
    );
    let rules = match igmod::config::parse(Path::new(&format!("{ROOT}/starter-test.toml")), &text) {
        Ok(c) => c.rules,
        Err(e) => panic!("the starter pack does not load: {e}"),
    };
    let decide = |text: &str| example_decision(&rules, text).unwrap_or_default();
    assert_eq!(
        decide("i made $23k with mrs_jane_fx, she is the best"),
        "hide by starter-money-bait-amounts"
    );
    assert_eq!(
        decide("i'm paying the bills of the first 5 people to message me"),
        "hide by starter-first-people"
    );
    for honest in [
        "I got 2 from your store and love them",
        "what a powerful testimony 🙏",
    ] {
        let d = decide(honest);
        assert!(
            !d.contains("money-bait") && !d.contains("testimony"),
            "{honest}: {d}"
        );
    }
    // Thanks to a handle named after money: hidden; the same words to a friend, a reply that
    // starts with the handle, or a warning naming it: left up.
    for bait in [
        "success is action. thanks to @janet_chavez_fx for your help",
        "so this is how it looks to invest with a professional trader @thomas_jeff267_trading",
        // A warning's words alone do not let it pass: "report" is a spammer's word too.
        "Report any copycats, only @wealth.with.marilyn is real, thank you so much",
    ] {
        assert_eq!(decide(bait), "hide by starter-money-handle", "{bait}");
    }
    for honest in [
        "thanks to @giulia for the help with the sizes",
        "@mark_fx thanks, best shop ever",
        "beware of @crypto_recovery_help, they are fake and asked me for money",
        "thanks @traderjoes, best snacks for the road trip",
        "best makeup tutorial, thanks @learnwithlisa for the tips",
        "huge thanks to @nordair_refunds, got my money back within a week",
        "I emailed help@acmefinance.com and they helped me, thanks",
    ] {
        assert!(!decide(honest).contains("money-handle"), "{honest}");
    }
    // A comment that is only a link is flagged for a person (a customer may be pointing to the
    // brand's own page), never hidden by that rule; a link among a customer's words is not.
    assert_eq!(
        decide("https://soundcloud.com/yerki/move-your-body"),
        "flag by starter-bare-link"
    );
    for words in [
        "the size guide at https://shop.example.com/sizes says M, I got an S",
        "love.it",
    ] {
        assert!(!decide(words).contains("bare-link"), "{words}");
    }
    // The same bait as a question is how a customer checks a number: flagged for a person.
    assert_eq!(
        decide("is WhatsApp +90 555 000 00 00 your support line?"),
        "flag by starter-contact-bait-question"
    );
    // Deleted when the app's name is spelt out or in leetspeak, which no customer does.
    for disguised in [
        "T e l e g r a m ➜ @geld_tipps_privat 🔥",
        "t3legram pe join kro @sasta_maal_official",
        "wh@tsapp +44 7700 900666 👈 serious only",
    ] {
        assert_eq!(
            decide(disguised),
            "delete by starter-contact-disguised",
            "{disguised}"
        );
    }
    // Any other number is hidden, not deleted, whatever the words around it: a customer's own
    // number is out of public view, and the shop can still answer and unhide it. Written in a
    // bio font, accented, misspelt or split, the name is a customer's too.
    for number in [
        "WhatsApp +90 555 000 00 00 for the signals",
        "2 pairs in size 38 please, my WhatsApp +44 7700 900123 for the price",
        "заказать 2 штуки, размер M, whatsapp +7 900 000 12 34",
        "I'll take two of the blue mugs, watsapp me 0803 000 0417",
        "mình lấy 2 cái nha, telegram @linh_ng",
        "Love the linen dress! inbox me the price for size M please, my WhatsApp +44 7700 900123",
        "Order for 2 please 🙏 𝒲𝒽𝒶𝓉𝓈𝒜𝓅𝓅 +44 7700 900123",
        "Bonjour, je voudrais la robe bleue en 38, mon Télégram @marie_dupont",
        "whats-app me +44 7700 900123 for the blue one",
        "Paket saya belum sampai, hubungi Tellegram saya @budi_santoso",
        "where do I send pic to for the warranty, my whatsapp +44 7700 900123",
    ] {
        assert_eq!(decide(number), "hide by starter-contact-bait", "{number}");
    }
    assert_eq!(
        decide("Hi dear, your page is lovely 💕 send pic to @feature_page for a collab"),
        "delete by starter-follower-selling"
    );
    assert_eq!(decide("Is there a promo on the blue set this weekend"), "");
    // Customers whose words the older deletes took for a scam's: a winner thanking the brand,
    // a bank's customer naming its account, a question about data recovery. Hidden at most.
    for customer in [
        "Just got your DM saying I was selected as a winner, thank you so much!! my whatsapp +44 7700 900123",
        "I invested $5,000 in the @acme_bank fixed deposit last year, happy with it. whatsapp me +44 7700 900123 about renewing",
        "Is there a data recovery expert at your Ikeja branch, my phone died. whatsapp me 0803 000 0417",
        "Your support team helped me recover my account, thank you! WhatsApp +44 7700 900123",
    ] {
        assert!(
            !decide(customer).starts_with("delete"),
            "{customer}: {}",
            decide(customer)
        );
    }
    assert_eq!(
        decide(
            "Congratulations you have been selected as a winner, claim your prize on whatsapp +44 7700 900666"
        ),
        "delete by starter-fake-giveaway"
    );
    assert_eq!(
        decide("thank you @pedro.mentor_official for the $23k profit, my family is grateful"),
        "delete by starter-testimonial-scam"
    );
    // Follow swaps, in any language, are hidden, and their shortest forms flagged (they are
    // also a plane, lumber and part numbers); the shorthand's look-alikes once leetspeak is
    // undone ("lại", "Faf", "SAS") and the English phrases are left alone, as is a complaint
    // that quotes romance bait.
    for swap in [
        "sub2sub? 🙏",
        "like4like",
        "follow for follow tayo mga bes 🔁",
    ] {
        assert_eq!(decide(swap), "hide by starter-self-promo", "{swap}");
    }
    for swap in ["f4f nha 🫶", "L4L ❤️", "s4s?"] {
        assert_eq!(decide(swap), "flag by starter-follow-exchange", "{swap}");
    }
    for honest in [
        "Giao lại giúp mình size 38 nhé, lãi suất bao nhiêu ạ?",
        "Faf was brilliant last night 🏏",
        "Flew SAS to Oslo with your carry-on, fits perfectly",
        "Insurance replaced it like for like, thanks",
        "I need a sub for sub plans this weekend",
        "O kadar çok 'DM'ine bak' yorumu var ki gerçek yorumları göremiyoruz, silin şunları",
    ] {
        assert_eq!(decide(honest), "", "{honest}");
    }
}

/// `rules eval` gives precision and recall per language and per source when the files say
/// them, besides the totals.
#[test]
fn eval_reports_each_language_and_source() {
    let (code, out, err) = run(igmod()
        .current_dir(ROOT)
        .args(["rules", "eval", "-c", "config.toml.example"])
        .args(["data/igmod/multilingual", "data/igmod/brand-comments.csv"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rows: 7635 ("), "{out}");
    assert!(out.contains("by source:"), "{out}");
    assert!(out.contains("\n  data/igmod/multilingual "), "{out}");
    assert!(out.contains("\n  data/igmod/brand-comments.csv "), "{out}");
    assert!(out.contains("by lang:"), "{out}");
    for lang in ["ar", "de", "es", "hi", "hi-Latn", "ru", "vi", "(none)"] {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(lang))
            .unwrap_or_else(|| panic!("no row for {lang}: {out}"));
        // rows, scams, precision, recall, TP, FN, honest FP/gone
        assert_eq!(row.split_whitespace().count(), 8, "{row}");
    }
}

/// `rules eval` of the example's rules on `data` (which must hold `rows`, as the output says
/// them): the output, its precision and its recall.
fn example_on(data: &str, rows: &str) -> (String, f64, f64) {
    let (code, out, err) =
        run(igmod()
            .current_dir(ROOT)
            .args(["rules", "eval", "-c", "config.toml.example", data]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("rows: {rows}")), "{out}");
    let figure = |name: &str| -> f64 {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name}: {out}"))
    };
    let (precision, recall) = (figure("precision "), figure("recall "));
    (out, precision, recall)
}

/// The columns of `rules eval`'s per-source or per-language row for `group`: the group, rows,
/// scams, precision, recall, TP, FN and honest moderated/removed.
fn group_row<'a>(out: &'a str, group: &str) -> Vec<&'a str> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&group))
        .unwrap_or_else(|| panic!("no row for {group}: {out}"))
}

/// On comments written by other writers after the model's data (`data/igmod/held-out`: the
/// fourth round in 8 languages and a blind round in es, pt, fr, de and it, never trained on),
/// the example's rules catch most scams in each of the 13 languages (the model's calls there
/// flagged for a person) and remove almost no honest comment: what an operator in those
/// languages gets, not what cross-validation on the writers' own rows promises (0.934 / 0.877
/// with 1 of 1,650 honest comments removed when measured; Arabic's and Russian's 0.825 the
/// lowest recall).
#[test]
fn the_example_rules_hold_on_comments_no_model_was_fitted_to() {
    let (out, precision, recall) = example_on(
        "data/igmod/held-out",
        "3323 (1673 labeled 1, 1650 labeled 0)",
    );
    assert!(precision >= 0.90 && recall >= 0.85, "{out}");
    let mut removed = 0u32;
    for lang in [
        "ar", "hi", "hi-Latn", "id", "ru", "tl", "tr", "vi", "es", "pt", "fr", "de", "it",
    ] {
        let cols = group_row(&out, lang);
        let recall: f64 = cols[4].parse().expect("recall");
        assert!(recall >= 0.80, "{lang}: {cols:?}");
        removed += cols
            .last()
            .and_then(|c| c.split('/').nth(1))
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no honest count: {cols:?}"));
    }
    assert!(removed <= 3, "{removed} honest comments removed: {out}");
}

/// On fans' and customers' comments that use self-promotion's words ("check it out",
/// "subscribed", "my channel", links, "link in bio"), and the self-promotion spam brands get,
/// written by another writer than `data/igmod/fans-en.csv` and never trained on
/// (`data/igmod/fans-held-out.csv`): the example catches most of the spam and leaves nearly
/// every fan up (0.907 / 0.918 counting flags, 7 of 351 honest removed and 9 more flagged
/// for a person when measured; three starter rules were narrowed after its mistakes showed
/// them removing fans' comments).
#[test]
fn the_example_tells_self_promotion_from_fans_it_was_not_fitted_to() {
    let (out, precision, recall) = example_on(
        "data/igmod/fans-held-out.csv",
        "521 (170 labeled 1, 351 labeled 0)",
    );
    assert!(precision >= 0.90 && recall >= 0.86, "{out}");
    // The file's row of the per-source table: honest moderated / of them removed.
    let cols = group_row(&out, "data/igmod/fans-held-out.csv");
    let removed: u32 = cols
        .last()
        .and_then(|c| c.split('/').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no honest count: {cols:?}"));
    assert!(removed <= 12, "{removed} of 351 honest removed: {out}");
}

/// Customers who leave their own WhatsApp, Telegram or phone number to order or ask
/// (`data/igmod/own-number`: 316 of them in 14 languages by two writers, and 176 contact-bait
/// scams written to look alike, never trained on). With a list of order words to spare
/// them, `starter-contact-bait` deleted 168 of the customers (25 of the first writer's 126,
/// 143 of the other's 190); it now hides, and only a disguised app name deletes, while no
/// scam is left up that was removed before (161 hidden or deleted).
#[test]
fn a_customers_own_number_is_never_deleted() {
    let (out, _, recall) = example_on(
        "data/igmod/own-number",
        "492 (176 labeled 1, 316 labeled 0)",
    );
    assert!(recall >= 0.90, "{out}");
    // A rule's row: name, hits, TP, FP.
    let rule = |name: &str| -> (u32, u32) {
        let cols = group_row(&out, name);
        let n = |i: usize| cols.get(i).and_then(|c| c.parse().ok()).unwrap_or(u32::MAX);
        (n(2), n(3))
    };
    let (_, disguised_honest) = rule("starter-contact-disguised");
    assert_eq!(disguised_honest, 0, "{out}");
    let (bait_scams, bait_honest) = rule("starter-contact-bait");
    assert!(bait_honest >= 150 && bait_scams >= 100, "{out}");
    // No honest comment is deleted, by any rule: the mistakes file gives each one's action.
    let dir = tempfile::tempdir().expect("temp dir");
    let mistakes = dir.path().join("mistakes.csv");
    let (code, _, err) = run(igmod()
        .current_dir(ROOT)
        .args(["rules", "eval", "-c", "config.toml.example", "--mistakes"])
        .arg(&mistakes)
        .arg("data/igmod/own-number"));
    assert_eq!(code, 0, "{err}");
    let mut reader = csv::Reader::from_path(&mistakes).expect("mistakes.csv");
    let headers = reader.headers().expect("header").clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column: {headers:?}"))
    };
    let (label, action, text) = (col("label"), col("action"), col("text"));
    let mut honest = 0;
    for row in reader.records() {
        let row = row.expect("a mistakes row");
        if row.get(label) == Some("0") {
            honest += 1;
            assert_ne!(
                row.get(action),
                Some("delete"),
                "deleted: {:?}",
                row.get(text)
            );
        }
    }
    assert!(
        honest >= 250,
        "{honest} honest rows moderated: the file was read"
    );
    // The file's row of the per-source table: scams caught / of them hidden or deleted.
    let cols = group_row(&out, "data/igmod/own-number");
    let gone: u32 = cols
        .get(5)
        .and_then(|c| c.split('/').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no scam count: {cols:?}"));
    assert!(gone >= 155, "{gone} of 176 scams hidden or deleted: {out}");
}

/// The example's review rules: what the model half-suspects (0.5 to the hiding threshold) is
/// flagged for a person, not hidden, when it links somewhere that is not the brand's or has
/// self-promotion's words; the brand's own link, scored the same, is left alone.
#[test]
fn the_example_flags_half_suspected_links_elsewhere_and_self_promotion() {
    let rules = example_rules();
    let model = model_of(&rules);
    let elsewhere = "new drop is on the site, get it before it sells out lunashoes.com/drop";
    let score = model.score(elsewhere);
    assert!((0.5..0.85).contains(&score), "{elsewhere}: {score}");
    assert_eq!(
        example_decision(&rules, elsewhere),
        Some("flag by review-links-elsewhere".to_string())
    );
    let own = "new drop is on the site, get it before it sells out acme.com/drop";
    assert!(model.score(own) >= 0.5, "{own}: {}", model.score(own));
    assert_eq!(example_decision(&rules, own), None, "{own}");
    let promo = "we do covers of 90s hits, come see our channel";
    let score = model.score(promo);
    assert!((0.5..0.85).contains(&score), "{promo}: {score}");
    assert_eq!(
        example_decision(&rules, promo),
        Some("flag by review-self-promotion".to_string())
    );
    // Below 0.5 the words alone are not doubted: a customer's own channel.
    let fan = "my channel has the same stuff";
    assert!(model.score(fan) < 0.5, "{fan}: {}", model.score(fan));
    assert_eq!(example_decision(&rules, fan), None, "{fan}");
}

/// A customer saying nobody answers their messages reads like contact bait to the model
/// ("check your DMs"): the example flags it for a person instead of hiding it, in the 13
/// languages' words; a scam that borrows the words and names a handle is still hidden.
#[test]
fn the_example_flags_customers_whose_messages_go_unanswered_instead_of_hiding_them() {
    let rules = example_rules();
    let model = model_of(&rules);
    for complaint in [
        "sent you a DM about my order 3 days ago, no reply yet, check your inbox please",
        "Admin, em inbox từ sáng chưa thấy ai rep, check tin nhắn giúp em 🙏",
        "DM attım sabahtan beri, yanıt gelmedi, DM kutunuza bakın lütfen 🙏",
        "Kak admin, DM aku belum dibales dari kemarin, cek DM ya 🙏",
        "Mandé DM hace 3 días y sin respuesta, revisen sus mensajes 🙏",
    ] {
        let score = model.score(complaint);
        assert!(
            score >= 0.8,
            "the model would have hidden it: {complaint}: {score}"
        );
        assert_eq!(
            example_decision(&rules, complaint),
            Some("flag by review-no-reply".to_string()),
            "{complaint}"
        );
    }
    let scam = "no reply from the brand? @refund_helper_fx got my money back, thank him";
    assert!(model.score(scam) >= 0.85, "{scam}");
    assert_eq!(
        example_decision(&rules, scam),
        Some("hide by scam-model".to_string())
    );
}

/// Look-alike letters for some Latin ones (Cyrillic, Greek, full-width, mathematical).
fn confusable(c: char, pick: u8) -> char {
    let options: &[char] = match c {
        'a' => &['а', 'ａ', '𝐚'],
        'e' => &['е', 'ｅ', '𝐞'],
        'o' => &['о', 'ο', 'ｏ'],
        'p' => &['р', 'ｐ'],
        'c' => &['с', 'ｃ'],
        'x' => &['х', 'ｘ'],
        'y' => &['у', 'ｙ'],
        'i' => &['і', 'ｉ'],
        's' => &['ѕ', 'ｓ'],
        'n' => &['ｎ', '𝐧'],
        't' => &['ｔ', '𝐭'],
        _ => return c,
    };
    options[usize::from(pick) % options.len()]
}

const INVISIBLE: [char; 4] = ['\u{200B}', '\u{200D}', '\u{FEFF}', '\u{00AD}'];

/// Rewrites a comment the way evaders do: `kind` 0 swaps letters for look-alikes, 1 inserts
/// invisible characters, 2 spaces out the letters of one longer word. (A word next to a
/// single letter, like the `m` of `i’m`, is left alone: the normaliser joins every run of
/// three or more single letters, so that letter would join the word and change it.)
fn evade(text: &str, kind: u8, seed: &[u8]) -> String {
    let mut bytes = seed.iter().copied().cycle();
    let mut next = || bytes.next().unwrap_or(0);
    match kind {
        0 => text
            .chars()
            .map(|c| {
                if next() % 2 == 0 {
                    confusable(c, next())
                } else {
                    c
                }
            })
            .collect(),
        1 => text
            .chars()
            .flat_map(|c| {
                let extra = (next() % 4 == 0).then(|| INVISIBLE[usize::from(next()) % 4]);
                std::iter::once(c).chain(extra)
            })
            .collect(),
        _ => {
            let words: Vec<&str> = text.split(' ').collect();
            // The letters and digits of a word's first or last run.
            let run = |w: &str, last: bool| {
                let mut runs = w
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|r| !r.is_empty());
                let r = if last { runs.next_back() } else { runs.next() };
                r.map_or(0, |r| r.chars().count())
            };
            // The nearest non-empty words (a double space leaves an empty one between).
            let single_before = |i: usize| {
                words[..i]
                    .iter()
                    .rev()
                    .find(|w| !w.is_empty())
                    .is_some_and(|w| run(w, true) == 1)
            };
            let single_after = |i: usize| {
                words[i + 1..]
                    .iter()
                    .find(|w| !w.is_empty())
                    .is_some_and(|w| run(w, false) == 1)
            };
            let candidates: Vec<usize> = (0..words.len())
                .filter(|&i| {
                    words[i].len() >= 4
                        && words[i].chars().all(char::is_alphabetic)
                        && !single_before(i)
                        && !single_after(i)
                })
                .collect();
            let Some(&at) = candidates.get(usize::from(next()) % candidates.len().max(1)) else {
                return text.to_string();
            };
            words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if i == at {
                        w.chars().map(String::from).collect::<Vec<_>>().join(" ")
                    } else {
                        w.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

fn training_scams() -> Vec<String> {
    let file = std::fs::File::open(format!("{ROOT}/data/scamspot/train.csv")).expect("data");
    igmod::evaluate::labeled_rows(file, "text", "label")
        .expect("rows")
        .into_iter()
        .filter(|r| r.label)
        .map(|r| r.text)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// A scam from the training file, rewritten with look-alikes, invisible characters or
    /// spaced-out letters, scores within 0.05 of the original.
    #[test]
    fn evasion_moves_a_scams_score_by_at_most_five_hundredths(
        index in 0usize..701,
        kind in 0u8..3,
        seed in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        thread_local! {
            static MODEL: Model = shipped();
            static SCAMS: Vec<String> = training_scams();
        }
        let text = SCAMS.with(|s| s[index % s.len()].clone());
        let evaded = evade(&text, kind, &seed);
        let (before, after) = MODEL.with(|m| (m.score(&text), m.score(&evaded)));
        prop_assert!(
            (before - after).abs() <= 0.05,
            "{before} → {after}\n{text:?}\n{evaded:?}"
        );
    }
}

/// Trains a model on the comments written for igmod (small, so the test is quick) into
/// `dir/m/scam.model` with the real binary, and returns its path.
fn train_small_model(dir: &Path) -> PathBuf {
    let out = dir.join("m/scam.model");
    let (code, stdout, err) = run(igmod()
        .args(["model", "train", "--cv", "3", "-o"])
        .arg(&out)
        .arg(format!("{ROOT}/data/igmod/brand-comments.csv")));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("3-fold cross-validation"), "{stdout}");
    assert!(stdout.contains("threshold table"), "{stdout}");
    out
}

/// The counts of a `rules eval` table's row: the figures after its first word (`labeled 1`'s
/// two, a sweep row's precision, recall, F1, TP, FP, FN), the first such row after `after`.
fn row_after(out: &str, after: &str, first: &str) -> Vec<f64> {
    let start = out
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?}: {out}"));
    out[start..]
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(first))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_else(|| panic!("no {first:?} after {after:?}: {out}"))
}

/// `--sweep` under `--cv` sweeps what the folds' models scored on rows they never saw: at the
/// rule's own threshold it counts what cross-validation counted, not the flattering scores
/// the shipped model gives its own training rows (which an operator choosing a threshold
/// would be misled by).
#[test]
fn the_sweep_under_cv_counts_what_the_folds_held_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = format!("{ROOT}/data/igmod/multilingual/tr-2.csv");
    let (code, _, err) = run(igmod()
        .args(["model", "train", "--cv", "3", "-o"])
        .arg(dir.path().join("m/scam.model"))
        .arg(&data));
    assert_eq!(code, 0, "{err}");
    std::fs::write(dir.path().join("t.token"), "x\n").expect("token");
    let config = dir.path().join("config.toml");
    let accounts = "[daemon]\ndatabase = \"x.db\"\n\n[[accounts]]\nname = \"acme\"\nig_user_id = \"1\"\nlogin = \"instagram\"\ntoken_file = \"t.token\"\nhourly_budget = 200\npoll_interval = \"1m\"\n";
    std::fs::write(&config, format!("{accounts}{MODEL_RULE}")).expect("config");
    let eval = |extra: &[&str]| {
        let (code, out, err) = run(igmod()
            .args(["rules", "eval", "--sweep", "-c"])
            .arg(&config)
            .args(extra)
            .arg(&data));
        assert_eq!(code, 0, "{err}");
        out
    };

    let cv = eval(&["--cv", "3"]);
    let scams = row_after(&cv, "pooled over every fold:", "labeled 1");
    let honest = row_after(&cv, "pooled over every fold:", "labeled 0");
    let swept = row_after(
        &cv,
        "classifier m/scam.model alone (held out, --cv), by threshold:",
        "0.50",
    );
    // precision, recall, F1, TP, FP, FN at score >= 0.5, the rule's threshold.
    assert_eq!(swept[3..], [scams[0], honest[0], scams[1]], "{cv}");
    let misses = swept[4] + swept[5];
    assert!(
        misses > 0.0,
        "cross-validation made no mistake to tell apart: {cv}"
    );

    // Rows given with --also that a fold also judges are said to flatter it.
    assert!(!cv.contains("--also row(s)"), "{cv}");
    let rows = csv::Reader::from_path(&data)
        .expect("data")
        .records()
        .count();
    let leaky = eval(&["--cv", "3", "--also", data.as_str()]);
    assert!(
        leaky.contains(&format!(
            "note: {rows} --also row(s) have the text of a judged row"
        )),
        "{leaky}"
    );

    let own = eval(&[]);
    let flattering = row_after(&own, "classifier m/scam.model alone, by threshold:", "0.50");
    assert!(
        flattering[4] + flattering[5] < misses,
        "the shipped model on its own training rows erred as often as held out: {own}\n{cv}"
    );
}

const MODEL_RULE: &str = r#"
[[rules]]
name = "scam-model"
action = "hide"
classifier = { model = "m/scam.model", min_score = 0.5 }
"#;

const SCAM: &str = "Congratulations @lena! You've been selected for our giveaway, DM @promo_page to claim your prize 🎁";
const FRIENDLY: &str = "@ana look at this! need it in blue";

/// The operator's whole path: train a model, check the config, see why a text scores, sweep
/// the thresholds, let the daemon hide a scam by the model, undo a hide, label a comment,
/// export the labels and train on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trained_model_moderates_in_the_daemon_and_corrections_become_labels() {
    let env = Env::new().await;
    train_small_model(env.dir.path());
    let accounts = env.account("acme", ACME, "backfill = true");
    let config = env.write_config_with_rules(&accounts, "", MODEL_RULE);

    let (code, out, err) = run(igmod().args(["check-config", "-c"]).arg(&config));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("model m/scam.model: sha256 "), "{out}");
    assert!(
        out.contains("3-fold cross-validation at score >= 0.5"),
        "{out}"
    );

    let (code, out, err) = run(igmod().args(["rules", "test", "-c"]).arg(&config).arg(SCAM));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("rules: account \"acme\"'s (1 rules; the first account"),
        "{out}"
    );
    assert!(out.contains("classifier m/scam.model: score 0."), "{out}");
    assert!(out.contains("  towards scam: "), "{out}");
    assert!(out.contains("matched rule \"scam-model\" (hide)"), "{out}");
    assert!(out.contains("  - classifier 0.9"), "{out}");
    let (_, out, _) = run(igmod()
        .args(["rules", "test", "-c"])
        .arg(&config)
        .arg(FRIENDLY));
    assert!(out.contains("no rule matches"), "{out}");
    assert!(out.contains("  towards ok: "), "{out}");

    let (code, out, err) = run(igmod()
        .args(["rules", "eval", "--sweep", "-c"])
        .arg(&config)
        .arg(format!("{ROOT}/data/igmod/brand-comments.csv")));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("classifier m/scam.model alone, by threshold:"),
        "{out}"
    );
    for t in ["0.50", "0.90", "0.99"] {
        assert!(out.contains(&format!("      {t}  ")), "{t}: {out}");
    }

    // The real daemon hides the scam by the model and leaves the friend's tag alone.
    let post = env.sim.add_media(ACME);
    let scam = env.sim.add_comment(&post, "promo_giveaway", SCAM);
    let friendly = env.sim.add_comment(&post, "maria", FRIENDLY);
    let other = env.sim.add_comment(&post, "sam", "where do you ship from?");
    let child = common::spawn_daemon(&config, None);
    wait_for("the scam hidden by the model", T, || async {
        env.sim.comment(&scam).is_some_and(|c| c.hidden)
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    assert!(
        env.sim
            .comment(&friendly)
            .is_some_and(|c| !c.hidden && !c.deleted)
    );
    let db = env.pool().await;
    let reason = common::text(
        &db,
        &format!("SELECT reason FROM decisions WHERE comment_id = '{scam}'"),
    )
    .await;
    assert!(
        reason.as_deref().is_some_and(
            |r| r.starts_with("classifier 0.") && r.contains("(m/scam.model, at least 0.50)")
        ),
        "{reason:?}"
    );
    db.close().await;

    // The operator disagrees with the hide, and labels another comment a scam.
    let (code, out, err) = run(igmod()
        .args(["undo", "-c"])
        .arg(&config)
        .arg(&scam)
        .env("USER", "olga"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("unhidden (was hidden by rule scam-model)"),
        "{out}"
    );
    let (code, out, err) = run(igmod()
        .args(["label", "-c"])
        .arg(&config)
        .args([&other, "scam"])
        .env("USER", "olga"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("{other}: labeled scam"));
    let (code, _, err) = run(igmod()
        .args(["label", "-c"])
        .arg(&config)
        .args(["999999", "scam"]));
    assert_eq!(code, 1);
    assert!(err.contains("no comment 999999 in the database"), "{err}");

    let export = env.dir.path().join("labels.csv");
    let (code, out, err) = run(igmod()
        .args(["labels", "export", "-c"])
        .arg(&config)
        .arg(&export));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("wrote 2 labeled comments"), "{out}");
    let rows = igmod::evaluate::labeled_rows(
        std::fs::File::open(&export).expect("export"),
        "text",
        "label",
    )
    .expect("the export is a labeled CSV");
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().any(|r| r.text == SCAM && !r.label),
        "the undone hide is labeled ok: {rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.text == "where do you ship from?" && r.label),
        "{rows:?}"
    );
    let csv = std::fs::read_to_string(&export).expect("export");
    assert!(
        csv.contains(",undo,olga,") && csv.contains(",label,olga,"),
        "{csv}"
    );

    // Retraining takes them in: the undone scam's text is in the training file, relabeled.
    let (code, out, err) = run(igmod()
        .args(["model", "train", "--cv", "3", "--labels-from-db", "-c"])
        .arg(&config)
        .arg("-o")
        .arg(env.dir.path().join("m/retrained.model"))
        .arg(format!("{ROOT}/data/igmod/brand-comments.csv")));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("operators' labels: 2 rows added, 0 rows relabeled"),
        "{out}"
    );
    assert!(out.contains("2 from operators' labels"), "{out}");
}

/// Each kind of damage is refused by `check-config` and `run` with exit 78, the config line,
/// the model's path and what is wrong.
#[test]
fn damaged_model_files_are_refused_with_exit_78_and_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("m")).expect("m");
    let good = std::fs::read(format!("{ROOT}/models/scam.model")).expect("model");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndatabase = \"{}\"\n\n[[accounts]]\nname = \"acme\"\nig_user_id = \"1\"\nlogin = \"instagram\"\ntoken_env = \"PATH\"\npoll_interval = \"1m\"\nhourly_budget = 100\n{MODEL_RULE}",
            dir.path().join("x.db").display()
        ),
    )
    .expect("config");
    let model = dir.path().join("m/scam.model");
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x40;
    let mut version = good.clone();
    version[8] = 7;
    let cases: Vec<(&str, Option<Vec<u8>>, &str)> = vec![
        ("missing", None, "cannot read it: No such file"),
        (
            "truncated",
            Some(good[..good.len() / 3].to_vec()),
            "truncated: ",
        ),
        (
            "corrupt",
            Some(flipped),
            "checksum mismatch: the file is corrupt",
        ),
        (
            "wrong version",
            Some(version),
            "model format version 7, but this igmod reads versions 1 to 3",
        ),
        (
            "not a model",
            Some(b"{\"weights\": []}".to_vec()),
            "not an igmod model file",
        ),
    ];
    for (what, bytes, reason) in cases {
        match &bytes {
            Some(b) => std::fs::write(&model, b).expect("write"),
            None => {
                let _ = std::fs::remove_file(&model);
            }
        }
        for command in ["check-config", "run"] {
            let (code, _, err) = run(igmod().args([command, "-c"]).arg(&config));
            assert_eq!(code, 78, "{what}, {command}: {err}");
            let line = format!(
                "{}:15:24: rules.classifier.model: model {}: {reason}",
                config.display(),
                model.display()
            );
            assert!(
                err.contains(&line),
                "{what}, {command}: expected {line:?} in {err}"
            );
        }
    }
}

/// A reload that meets a damaged model keeps the running config and its model: comments go
/// on being hidden by the old model, and the log says why the reload was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_a_damaged_model_keeps_the_old_model_serving() {
    let env = Env::new().await;
    let model = train_small_model(env.dir.path());
    let accounts = env.account("acme", ACME, "backfill = true");
    let config = env.write_config_with_rules(&accounts, "", MODEL_RULE);
    let logs = env.dir.path().join("stderr.log");
    let post = env.sim.add_media(ACME);
    let first = env.sim.add_comment(&post, "promo_giveaway", SCAM);
    let child = common::spawn_daemon(&config, Some(&logs));
    wait_for("first scam hidden", T, || async {
        env.sim.comment(&first).is_some_and(|c| c.hidden)
    })
    .await;
    let bytes = std::fs::read(&model).expect("model");
    std::fs::write(&model, &bytes[..bytes.len() - 1000]).expect("truncate");
    kill(child.id(), "-HUP");
    wait_for("the reload refused", T, || async {
        std::fs::read_to_string(&logs).is_ok_and(|l| l.contains("reload refused"))
    })
    .await;
    let second = env.sim.add_comment(&post, "promo_giveaway2", SCAM);
    wait_for("second scam hidden by the old model", T, || async {
        env.sim.comment(&second).is_some_and(|c| c.hidden)
    })
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    let log = std::fs::read_to_string(&logs).expect("log");
    assert!(log.contains("rules.classifier.model: model "), "{log}");
    assert!(log.contains("truncated: "), "{log}");
}

//! Language identification end to end: the real binary against the simulator hides what is
//! not in the audience's languages (`not_languages`), leaves unknown alone, and stores each
//! comment's language with its decision, shown by `igmod audit --json` and `igmod report`.

mod common;

use std::time::Duration;

use common::{ACME, Env, count, igmod, run, text, wait_for};

const T: Duration = Duration::from_secs(20);

const RULES: &str = r#"
[[rules]]
name = "foreign"
action = "hide"
not_languages = ["en", "es"]

# Every other comment gets a decision too, so each one's stored language can be checked.
[[rules]]
name = "seen"
action = "flag"
min_length = 1
"#;

const RUSSIAN: &str = "Очень красивый цвет, а есть размер побольше?";
const ARABIC: &str = "ربحت الكثير من المال مع هذه الشركة، تواصل معي على الواتساب الآن";
const ENGLISH: &str = "I ordered two weeks ago and still nothing, please check my order";
const SPANISH: &str = "Hola, ¿cuándo vuelve a estar disponible la talla pequeña? Gracias";
const EMOJI: &str = "😍😍";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_languages_hides_other_languages_and_stores_each_decisions_language() {
    let env = Env::new().await;
    let accounts = env.account(
        "acme",
        ACME,
        "backfill = true\nrules = [\"foreign\", \"seen\"]",
    );
    let post = env.sim.add_media(ACME);
    let ids: Vec<(&str, String)> = [RUSSIAN, ARABIC, ENGLISH, SPANISH, EMOJI]
        .into_iter()
        .map(|t| (t, env.sim.add_comment(&post, "fan", t)))
        .collect();
    let config = env.write_config_with_rules(&accounts, "", RULES);
    // Migrated now, so the test can read it while the daemon runs.
    common::create_db(&env.db());
    let child = common::spawn_daemon(&config, Some(&env.dir.path().join("stderr.log")));
    let db = env.pool().await;
    wait_for(
        "the Russian and Arabic comments hidden and all five decided",
        T,
        || async {
            ids[..2]
                .iter()
                .all(|(_, id)| env.sim.comment(id).is_some_and(|c| c.hidden))
                && count(&db, "SELECT COUNT(*) FROM decisions").await == 5
        },
    )
    .await;
    common::kill(child.id(), "-TERM");
    assert_eq!(common::wait_exit(child).await, Some(0));

    for (t, id) in &ids[2..] {
        assert!(
            !env.sim.comment(id).is_some_and(|c| c.hidden || c.deleted),
            "{t:?} must stay"
        );
    }
    // (text, rule that decided it, stored language)
    let expected = [
        (RUSSIAN, "foreign", Some("ru")),
        (ARABIC, "foreign", Some("ar")),
        (ENGLISH, "seen", Some("en")),
        (SPANISH, "seen", Some("es")),
        (EMOJI, "seen", None),
    ];
    for ((t, id), (want_text, rule, lang)) in ids.iter().zip(expected) {
        assert_eq!(*t, want_text);
        let got_rule = text(
            &db,
            &format!("SELECT rule FROM decisions WHERE comment_id = '{id}'"),
        )
        .await;
        assert_eq!(got_rule.as_deref(), Some(rule), "{t:?}");
        for table in ["decisions d WHERE d.comment_id", "comments c WHERE c.id"] {
            let stored = text(&db, &format!("SELECT lang FROM {table} = '{id}'")).await;
            assert_eq!(stored.as_deref(), lang, "{t:?} in {table}");
        }
    }
    db.close().await;

    // `igmod audit --json` shows each decision's language (null when unknown).
    let (code, out, err) = run(igmod().args(["audit", "--json", "-c"]).arg(&config));
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("audit json");
    assert_eq!(rows.len(), 5, "{out}");
    for (t, id) in &ids {
        let row = rows
            .iter()
            .find(|r| r["comment_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no audit row for {t:?}: {out}"));
        let want = expected_lang(t);
        assert_eq!(row["lang"].as_str(), want, "{t:?}: {row}");
    }

    // The report breaks the period down per language.
    let html = env.dir.path().join("report.html");
    let (code, _, err) = run(igmod()
        .args(["report", "--since", "1d", "-o"])
        .arg(&html)
        .arg("-c")
        .arg(&config));
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(&html).expect("report");
    let section = page
        .split("<h2>Languages</h2>")
        .nth(1)
        .and_then(|s| s.split("</table>").next())
        .unwrap_or_else(|| panic!("no Languages section:\n{page}"));
    for row in [
        "<tr><td>Russian (ru)</td><td class=\"n\">1</td><td class=\"n\">1</td><td class=\"n\">0</td></tr>",
        "<tr><td>Arabic (ar)</td><td class=\"n\">1</td><td class=\"n\">1</td><td class=\"n\">0</td></tr>",
        "<tr><td>English (en)</td><td class=\"n\">1</td><td class=\"n\">0</td><td class=\"n\">0</td></tr>",
        "<tr><td>Spanish (es)</td><td class=\"n\">1</td><td class=\"n\">0</td><td class=\"n\">0</td></tr>",
        "<tr><td>unknown</td><td class=\"n\">1</td><td class=\"n\">0</td><td class=\"n\">0</td></tr>",
    ] {
        assert!(section.contains(row), "{row} not in:\n{section}");
    }
}

fn expected_lang(t: &str) -> Option<&'static str> {
    match t {
        RUSSIAN => Some("ru"),
        ARABIC => Some("ar"),
        ENGLISH => Some("en"),
        SPANISH => Some("es"),
        _ => None,
    }
}

//! The review queue in a real browser: the real `igmod` binary with a `[review]` section, the
//! simulator as Instagram, and Debian's `chromium` driven through the DevTools protocol (over
//! its WebSocket, with tokio-tungstenite). A reviewer logs in, settles 50 doubtful comments by
//! clicks and keys; every click must end as a label with her name and, where it changes
//! something on Instagram, exactly one write the simulator saw.

mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::*;

const PASSWORD: &str = "review-pass-3e9f1b27";

/// The simulator's and the daemon's ids are the test's: the comments, by what each is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hide,
    Delete,
    Flag,
}

/// Headless Chromium, killed when the test ends.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A DevTools session on one page.
struct Cdp {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
    session: Option<String>,
    /// Events received while waiting for answers (dialogs, console).
    events: Vec<Value>,
}

/// How long any one DevTools command may take.
const CDP_WAIT: Duration = Duration::from_secs(30);

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send to chromium");
        let answer = tokio::time::timeout(CDP_WAIT, async {
            loop {
                let m = self
                    .ws
                    .next()
                    .await
                    .expect("chromium's socket open")
                    .expect("chromium's socket readable");
                let Message::Text(text) = m else { continue };
                let v: Value = serde_json::from_str(text.as_str()).expect("CDP JSON");
                if v["id"] == json!(id) {
                    return v;
                }
                self.events.push(v);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("chromium answers {method} within {CDP_WAIT:?}"));
        if let Some(e) = answer.get("error") {
            panic!("{method}: {e}");
        }
        answer["result"].clone()
    }

    /// Evaluates `expr` in the page and returns its value.
    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expr, "returnByValue": true }),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Marks the current document, so [`Cdp::wait_new_page`] can tell it was replaced.
    async fn mark(&mut self) {
        self.eval("window.__stale = true").await;
    }

    /// Waits until a new document replaced the marked one and has loaded.
    async fn wait_new_page(&mut self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let v = self
                .call(
                    "Runtime.evaluate",
                    json!({ "expression": "window.__stale !== true && document.readyState === 'complete'", "returnByValue": true }),
                )
                .await;
            if v["result"]["value"] == json!(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after 15 s waiting for the page after {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn goto(&mut self, url: &str) {
        self.mark().await;
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_new_page(url).await;
    }

    /// A real mouse click in the middle of the element `selector` selects.
    async fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).expect("selector");
        let at = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
            ))
            .await;
        let (x, y) = (
            at[0]
                .as_f64()
                .unwrap_or_else(|| panic!("no {selector} on the page")),
            at[1].as_f64().expect("y"),
        );
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await;
        }
    }

    /// A key pressed and released (a letter).
    async fn key(&mut self, key: &str) {
        let upper = key.to_uppercase();
        let code = upper.chars().next().map_or(0, |c| c as u32);
        self.call(
            "Input.dispatchKeyEvent",
            json!({ "type": "keyDown", "key": key, "code": format!("Key{upper}"), "text": key, "windowsVirtualKeyCode": code }),
        )
        .await;
        self.call(
            "Input.dispatchKeyEvent",
            json!({ "type": "keyUp", "key": key, "code": format!("Key{upper}"), "windowsVirtualKeyCode": code }),
        )
        .await;
    }
}

/// Starts headless Chromium with its DevTools socket on a free port and opens one page.
async fn browser(dir: &Path) -> (Browser, Cdp) {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--remote-debugging-port=0",
        "--window-size=1000,1400",
    ])
    .arg(format!(
        "--user-data-dir={}",
        dir.join("chromium").display()
    ))
    .arg("about:blank")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    die_with_test(&mut cmd);
    let mut child = cmd
        .spawn()
        .expect("chromium is installed (apt-get install chromium; .ci/run does)");
    let stderr = child.stderr.take().expect("chromium's stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(at) = line.find("ws://") {
                let _ = tx.send(line[at..].trim().to_string());
            }
        }
    });
    let browser = Browser(child);
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("chromium prints its DevTools address within 30 s");
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("connect to chromium's DevTools");
    let mut cdp = Cdp {
        ws,
        next: 0,
        session: None,
        events: Vec::new(),
    };
    let target = cdp
        .call("Target.createTarget", json!({ "url": "about:blank" }))
        .await;
    let attached = cdp
        .call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        )
        .await;
    cdp.session = Some(
        attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string(),
    );
    cdp.call("Page.enable", json!({})).await;
    (browser, cdp)
}

/// What the reviewer answers for a comment (by its place among its kind), as key or click.
fn answer(kind: Kind, n: usize) -> &'static str {
    match kind {
        Kind::Hide if n.is_multiple_of(2) => "wrong",
        Kind::Hide => "right",
        Kind::Delete if n.is_multiple_of(2) => "wrong",
        Kind::Delete => "right",
        Kind::Flag if n.is_multiple_of(2) => "remove",
        Kind::Flag => "wrong",
    }
}

/// Calls the simulator answered for a comment: (POSTs to it, DELETEs of it).
fn writes(env: &Env, id: &str) -> (usize, usize) {
    let suffix = format!("/{id}");
    let reqs = env.sim.requests();
    let mine = reqs.iter().filter(|r| r.path.ends_with(&suffix));
    let posts = mine.clone().filter(|r| r.method == "POST").count();
    let deletes = mine.filter(|r| r.method == "DELETE").count();
    (posts, deletes)
}

/// A daemon with `[review]` on a free port, its database and an HTTP client.
struct Review {
    daemon: KillOnDrop,
    db: sqlx::SqlitePool,
    base: String,
    http: reqwest::Client,
    log: std::path::PathBuf,
}

/// Starts the daemon with the doubt rules (words that make a hide, a flag and, with
/// `with_delete`, a delete; the shipped model at a threshold nothing here reaches) and a
/// `[review]` whose reviewer ana reads her password from a file, plus `extra(port)`'s keys;
/// waits for the review server and the first poll.
async fn start_review(env: &Env, with_delete: bool, extra: impl Fn(u16) -> String) -> Review {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/scam.model");
    let delete = if with_delete {
        "[[rules]]\nname = \"doubt-delete\"\naction = \"delete\"\nwords = [\"deletemeplease\"]\n\n"
    } else {
        ""
    };
    let rules = format!(
        r#"
[[rules]]
name = "doubt-hide"
action = "hide"
words = ["hidemeplease"]

{delete}[[rules]]
name = "doubt-flag"
action = "flag"
words = ["flagmeplease"]

[[rules]]
name = "scam-model"
action = "hide"
classifier = {{ model = "{}", min_score = 0.995 }}
"#,
        model.display()
    );
    let port = free_port();
    let password_file = env.dir.path().join("ana.password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let review = format!(
        "[review]\nlisten = \"127.0.0.1:{port}\"\n{}users = [{{ name = \"ana\", password_file = \"{}\" }}]\n\n",
        extra(port),
        password_file.display()
    );
    let accounts = format!("{review}{}", hook::one_hour_account(env));
    let config = env.write_config_with_rules(&accounts, "", &rules);
    create_db(&env.db());
    let log = env.dir.path().join("igmod.log");
    let daemon = spawn_daemon(&config, Some(&log));
    let db = env.pool().await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    wait_for("the review server", Duration::from_secs(20), || async {
        http.get(&base).send().await.is_ok()
    })
    .await;
    wait_polled(&db, 1).await;
    Review {
        daemon,
        db,
        base,
        http,
        log,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_settles_fifty_doubtful_comments_in_the_browser() {
    let env = Env::new().await;
    let media = env.sim.add_media(ACME);
    // 25 hidden, 5 deleted, 20 flagged; one flagged comment carries markup that must stay text.
    let mut kinds: HashMap<String, (Kind, usize)> = HashMap::new();
    for (kind, who, word, many) in [
        (Kind::Hide, "hidden", "hidemeplease", 25),
        (Kind::Delete, "deleted", "deletemeplease", 5),
    ] {
        for n in 0..many {
            let id = env.sim.add_comment(
                &media,
                &format!("{who}_user{n}"),
                &format!("{word} number {n}"),
            );
            kinds.insert(id, (kind, n));
        }
    }
    const XSS: &str = "flagmeplease <script>window.__xss = 1; alert(1)</script><img src=x onerror=\"window.__xss = 2; alert(2)\">";
    let mut xss_id = String::new();
    for n in 0..20 {
        let text = if n == 1 {
            XSS.to_string()
        } else {
            format!("flagmeplease number {n}")
        };
        let id = env
            .sim
            .add_comment(&media, &format!("flagged_user{n}"), &text);
        if n == 1 {
            xss_id = id.clone();
        }
        kinds.insert(id, (Kind::Flag, n));
    }
    // The whole score range is doubtful here: which hides are in the band is tested in
    // src/review/queue.rs; this test is about the browser, the outbox and the labels.
    let brand = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/igmod/brand-comments.csv");
    let Review {
        mut daemon,
        db,
        base,
        http,
        log,
    } = start_review(&env, true, |_| {
        format!(
            "min_score = 0.0\nmax_score = 1.0\ntraining_data = [\"{}\"]\n",
            brand.display()
        )
    })
    .await;
    wait_for(
        "the first poll's hides and deletes",
        Duration::from_secs(20),
        || async { count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done'").await == 30 },
    )
    .await;

    // Without a session, every path is the login page and nothing else.
    let mut first_login_page: Option<String> = None;
    for path in [
        "/",
        "/recent",
        "/search?q=hidemeplease",
        "/model",
        "/settle",
        "/nope",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.expect("GET");
        assert_eq!(r.status(), 200, "{path}");
        let csp = r
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(csp.contains("script-src 'nonce-"), "{path}: CSP {csp:?}");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        let body = r.text().await.expect("body");
        for leak in [
            "please",
            "_user",
            "ana",
            "doubt-",
            "labels gathered",
            "waiting",
        ] {
            assert!(
                !body.contains(leak),
                "{path} without a session shows {leak:?}"
            );
        }
        assert!(body.contains("name=\"password\""), "{path}: {body}");
        // The same page for every path (but for its nonce and login form token).
        let shape = body
            .replace(&login_token(&body), "")
            .split("nonce=\"")
            .map(|s| s.split_once('"').map_or(s, |(_, rest)| rest))
            .collect::<String>();
        match &first_login_page {
            None => first_login_page = Some(shape),
            Some(first) => assert_eq!(first, &shape, "{path}"),
        }
    }
    let r = post(
        &http,
        &format!("{base}/settle"),
        None,
        &[("comment", xss_id.as_str()), ("verdict", "remove")],
    )
    .await;
    assert_eq!(r.status(), 403, "a POST without a session");

    // Log in in the browser.
    let (_browser, mut cdp) = browser(env.dir.path()).await;
    cdp.goto(&format!("{base}/")).await;
    let password = serde_json::to_string(PASSWORD).expect("json");
    cdp.eval(&format!(
        "document.getElementById('user').value = 'ana'; document.getElementById('password').value = {password}"
    ))
    .await;
    cdp.mark().await;
    cdp.click("form[action='/login'] button").await;
    cdp.wait_new_page("logging in").await;
    let started = Instant::now();
    let waiting = cdp.eval("document.querySelectorAll('.item').length").await;
    assert_eq!(waiting, json!(20), "a page of the queue");
    let heading = cdp
        .eval("document.querySelector('main p').textContent")
        .await;
    assert!(
        heading
            .as_str()
            .is_some_and(|h| h.starts_with("50 doubtful")),
        "{heading}"
    );

    // The markup in a comment is text: no script ran, no image was made, and it reads as typed.
    let xss = serde_json::to_string(&format!("c-{xss_id}")).expect("json");
    let shown = cdp
        .eval(&format!(
            "(() => {{ const r = document.getElementById({xss}); return r ? r.querySelector('.text').textContent : null; }})()"
        ))
        .await;
    assert_eq!(shown, json!(XSS), "the comment shows as typed");
    assert_eq!(cdp.eval("window.__xss === undefined").await, json!(true));
    assert_eq!(
        cdp.eval("document.querySelectorAll('.item img, .item script').length")
            .await,
        json!(0)
    );
    assert!(
        !cdp.events
            .iter()
            .any(|e| e["method"] == "Page.javascriptDialogOpening"),
        "no alert opened"
    );
    // The keyboard script ran (its nonce matched the CSP): the first row is selected.
    assert_eq!(
        cdp.eval("document.querySelectorAll('.item.current').length")
            .await,
        json!(1)
    );
    let shot = cdp
        .call("Page.captureScreenshot", json!({ "format": "png" }))
        .await;
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        shot["data"].as_str().expect("screenshot data"),
    )
    .expect("a base64 screenshot");
    let shots = std::env::var_os("IGMOD_SCREENSHOTS")
        .map_or_else(|| env.dir.path().to_path_buf(), Into::into);
    std::fs::write(shots.join("review-queue.png"), &png).expect("screenshot written");
    assert!(png.len() > 10_000, "a screenshot with something on it");

    // j and k move the selection; every field has a label; the buttons are buttons.
    let current =
        "[...document.querySelectorAll('.item')].findIndex(r => r.classList.contains('current'))";
    cdp.key("j").await;
    cdp.key("j").await;
    assert_eq!(cdp.eval(current).await, json!(2));
    cdp.key("k").await;
    assert_eq!(cdp.eval(current).await, json!(1));
    cdp.key("k").await;
    assert_eq!(cdp.eval(current).await, json!(0));
    let unlabeled = cdp
        .eval("[...document.querySelectorAll('input:not([type=hidden]), select')].filter(e => e.labels.length === 0).length")
        .await;
    assert_eq!(unlabeled, json!(0), "every field has a label");
    let fake_buttons = cdp
        .eval("document.querySelectorAll('[onclick], a[href^=\"javascript\"], div[role=button]').length")
        .await;
    assert_eq!(fake_buttons, json!(0));
    // On a phone's width nothing runs off the side.
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 375, "height": 740, "deviceScaleFactor": 2, "mobile": true }),
    )
    .await;
    // The viewport meta makes the layout as wide as the screen (980 px without it).
    assert_eq!(cdp.eval("window.innerWidth").await, json!(375));
    let overflow = cdp
        .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert_eq!(overflow, json!(0), "the queue fits a 375 px wide screen");
    cdp.call("Emulation.clearDeviceMetricsOverride", json!({}))
        .await;

    // A POST without the CSRF token is refused and changes nothing.
    let cookies = cdp
        .call(
            "Network.getCookies",
            json!({ "urls": [format!("{base}/")] }),
        )
        .await;
    let cookie = cookies["cookies"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "igmod_review"))
        .expect("the session cookie")
        .clone();
    assert_eq!(cookie["httpOnly"], json!(true));
    assert_eq!(cookie["sameSite"], json!("Strict"));
    let session = format!("igmod_review={}", cookie["value"].as_str().expect("value"));
    let r = post(
        &http,
        &format!("{base}/settle"),
        Some(&session),
        &[("comment", xss_id.as_str()), ("verdict", "remove")],
    )
    .await;
    assert_eq!(r.status(), 403, "a POST without the CSRF token");
    let r = post(
        &http,
        &format!("{base}/settle"),
        Some(&session),
        &[
            ("csrf", "0000"),
            ("comment", xss_id.as_str()),
            ("verdict", "remove"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403, "a POST with a wrong CSRF token");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM reviews").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM labels").await, 0);
    assert_eq!(writes(&env, &xss_id), (0, 0));

    // Settle the queue: the current row's answer, by key and by click in turn.
    let mut settled: Vec<String> = Vec::new();
    let (mut by_key, mut by_click) = (0, 0);
    while settled.len() < 50 {
        let current = cdp
            .eval("(() => { const r = document.querySelector('.item.current'); return r ? r.id.slice(2) : null; })()")
            .await;
        let Some(id) = current.as_str().map(str::to_string) else {
            panic!("the queue ran out after {} comments", settled.len());
        };
        assert!(
            !settled.contains(&id),
            "{id} shown again after it was settled"
        );
        let (kind, n) = *kinds.get(&id).expect("a comment of the test");
        if kind == Kind::Delete {
            let warn = cdp
                .eval(&format!(
                    "document.getElementById('c-{id}').textContent.includes('A delete cannot be undone')"
                ))
                .await;
            assert_eq!(
                warn,
                json!(true),
                "a deleted comment says a delete cannot be undone"
            );
        }
        let verdict = answer(kind, n);
        cdp.mark().await;
        if settled.len().is_multiple_of(2) {
            let key = match verdict {
                "right" => "r",
                "wrong" => "w",
                _ => "x",
            };
            cdp.key(key).await;
            by_key += 1;
        } else {
            cdp.click(&format!("#c-{id} button[value='{verdict}']"))
                .await;
            by_click += 1;
        }
        cdp.wait_new_page(&format!("settling {id}")).await;
        settled.push(id);
    }
    let took = started.elapsed();
    println!(
        "review: 50 doubtful comments settled in the browser in {:.1} s ({by_key} by key, {by_click} by click)",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(180), "took {took:?}");
    let empty = cdp
        .eval("document.body.textContent.includes('Nothing to review.')")
        .await;
    assert_eq!(empty, json!(true));

    // Every click is a label with the reviewer's name.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM labels WHERE source = 'review' AND who = 'ana'"
        )
        .await,
        50
    );
    for (id, (kind, n)) in &kinds {
        let want = match answer(*kind, *n) {
            "wrong" => "ok",
            _ => "scam",
        };
        let got = text(
            &db,
            &format!("SELECT label FROM labels WHERE comment_id = '{id}'"),
        )
        .await;
        assert_eq!(got.as_deref(), Some(want), "{id} {kind:?} {n}");
    }

    // Each unhide and removal reached Instagram exactly once.
    let expected = |id: &str| -> (usize, usize, bool, bool) {
        let (kind, n) = kinds[id];
        match (kind, answer(kind, n)) {
            (Kind::Hide, "wrong") => (2, 0, false, false),
            (Kind::Hide, _) => (1, 0, true, false),
            (Kind::Delete, _) => (0, 1, false, true),
            (Kind::Flag, "remove") => (1, 0, true, false),
            (Kind::Flag, _) => (0, 0, false, false),
        }
    };
    wait_for(
        "every unhide and removal applied",
        Duration::from_secs(30),
        || async {
            kinds.keys().all(|id| {
                let (posts, deletes, hidden, _) = expected(id);
                let c = env.sim.comment(id);
                writes(&env, id) == (posts, deletes) && c.is_some_and(|c| c.hidden == hidden)
            })
        },
    )
    .await;

    // A second click on a settled comment (or another reviewer's) records and writes nothing.
    let csrf = cdp
        .eval("document.querySelector('input[name=csrf]').value")
        .await;
    let csrf = csrf.as_str().expect("the CSRF token");
    let again = kinds
        .iter()
        .find(|(_, (k, n))| *k == Kind::Hide && answer(*k, *n) == "wrong")
        .map(|(id, _)| id.clone())
        .expect("an unhidden comment");
    let r = post(
        &http,
        &format!("{base}/settle"),
        Some(&session),
        &[
            ("csrf", csrf),
            ("comment", again.as_str()),
            ("verdict", "wrong"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .is_ok_and(|l| l.contains("note=already")),
        "{:?}",
        r.headers()["location"]
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM labels").await, 50);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM actions WHERE action = 'unhide'").await,
        13
    );
    // What an extra unhide would take to reach the simulator (the wake is immediate).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(writes(&env, &again), (2, 0));

    // Recent decisions and search show the settled comments.
    cdp.goto(&format!("{base}/recent")).await;
    let recent = cdp
        .eval("document.querySelectorAll('tbody tr').length")
        .await;
    assert_eq!(recent, json!(50));
    cdp.goto(&format!("{base}/search?q=DELETEMEPLEASE")).await;
    let found = cdp
        .eval("document.querySelectorAll('tbody tr').length")
        .await;
    assert_eq!(found, json!(5));
    cdp.goto(&format!("{base}/model")).await;
    let since = cdp
        .eval("document.getElementById('labels-since').textContent")
        .await;
    assert_eq!(
        since,
        json!("50"),
        "labels gathered since the model was trained"
    );
    // A candidate trained with them, and its replay figures, on demand.
    cdp.mark().await;
    cdp.click("form[action='/model/candidate'] button").await;
    cdp.wait_new_page("asking for a candidate").await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let figures = loop {
        let figures = cdp
            .eval("(() => { const c = document.getElementById('candidate') || document.getElementById('candidate-failed'); return c ? c.textContent : null; })()")
            .await;
        if let Some(f) = figures.as_str() {
            break f.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "timed out after 300 s waiting for the candidate's figures"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        cdp.goto(&format!("{base}/model")).await;
    };
    println!("review: candidate model:\n{figures}");
    assert!(figures.contains("labels: 50 rows added"), "{figures}");
    assert!(figures.contains("stored comments replayed"), "{figures}");

    // After 10 wrong passwords, this client's logins wait (also with the right password).
    let (login_cookie, token) = login_form(&http, &base).await;
    for n in 0..10 {
        let r = post(
            &http,
            &format!("{base}/login"),
            Some(&login_cookie),
            &[
                ("login_csrf", &token),
                ("user", "ana"),
                ("password", "not-it"),
            ],
        )
        .await;
        assert_eq!(r.status(), 401, "wrong password {n}");
    }
    let r = post(
        &http,
        &format!("{base}/login"),
        Some(&login_cookie),
        &[
            ("login_csrf", &token),
            ("user", "ana"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // The session logged in before still works.
    let r = http
        .get(format!("{base}/recent"))
        .header("cookie", &session)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("body").contains("hidden_user"));

    kill(daemon.id(), "-TERM");
    let _ = tokio::task::spawn_blocking(move || daemon.wait()).await;
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log.contains(PASSWORD), "the password is in the log");
    assert!(!log.contains("not-it"), "a tried password is in the log");
}

/// One verdict per comment on either backend: the second reviewer's click records and queues
/// nothing, and the settled comment leaves the queue for the recent decisions.
async fn settled_once(store: &igmod::store::Store) {
    use igmod::store::{Disposition, Label, NewComment, NewDecision, Settled, Settlement};
    let comment = NewComment {
        id: "17900000000000901".into(),
        account: "acme".into(),
        media_id: "17900000000000002".into(),
        parent_id: None,
        username: Some("flagged_user".into()),
        from_id: None,
        text: Some("flagmeplease 100% real".into()),
        created_at: None,
        text_key: None,
    };
    let decision = NewDecision {
        rule: "doubt-flag".into(),
        action: igmod::rules::Action::Flag,
        reason: "words flagmeplease".into(),
        dry_run: false,
        message: None,
        not_written: false,
    };
    assert!(
        store
            .record_comment_in(
                &comment,
                Disposition::Evaluated,
                Some(&decision),
                Some("pt")
            )
            .await
            .expect("record")
    );
    let queue = store
        .review_queue(None, None, None, 10)
        .await
        .expect("queue");
    assert_eq!(queue.len(), 1);
    assert_eq!((queue[0].action.as_str(), queue[0].dry_run), ("flag", 0));
    assert_eq!(queue[0].lang.as_deref(), Some("pt"));
    for (account, lang) in [(Some("globex"), None), (None, Some("es"))] {
        assert!(
            store
                .review_queue(account, None, lang, 10)
                .await
                .expect("queue")
                .is_empty(),
            "{account:?} {lang:?}"
        );
    }
    assert_eq!(
        store
            .review_queue(Some("acme"), Some("doubt-flag"), Some("pt"), 10)
            .await
            .expect("queue")
            .len(),
        1
    );
    assert_eq!(store.review_facets().await.expect("facets").langs, ["pt"]);
    let settle = |who: &'static str| Settlement {
        comment_id: "17900000000000901",
        account: "acme",
        verdict: "remove",
        who,
        label: Label::Scam,
        write: Some("hide"),
    };
    assert_eq!(
        store.settle_review(settle("ana")).await.expect("settle"),
        Settled::Done { queued: true }
    );
    assert_eq!(
        store.settle_review(settle("bo")).await.expect("settle"),
        Settled::Already { who: "ana".into() }
    );
    assert!(
        store
            .review_queue(None, None, None, 10)
            .await
            .expect("queue")
            .is_empty()
    );
    assert_eq!(store.labeled_comments().await.expect("labels"), 1);
    let pending = store.pending_actions("acme", 0, 10).await.expect("outbox");
    assert_eq!(
        pending
            .iter()
            .map(|a| a.action.as_str())
            .collect::<Vec<_>>(),
        ["hide"]
    );
    let recent = store.recent_reviews(10).await.expect("recent");
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].who.as_deref(), Some("ana"));
    // `%` is a character to search for, not a wildcard.
    assert_eq!(
        store
            .search_reviews("FLAGME", 10)
            .await
            .expect("search")
            .len(),
        1
    );
    assert_eq!(
        store
            .search_reviews("100%", 10)
            .await
            .expect("search")
            .len(),
        1
    );
    assert_eq!(
        store
            .search_reviews("0% r", 10)
            .await
            .expect("search")
            .len(),
        1
    );
    assert!(
        store
            .search_reviews("1%0", 10)
            .await
            .expect("search")
            .is_empty()
    );
}

#[tokio::test]
async fn a_comment_is_settled_once_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().expect("dir");
    let sqlite = igmod::store::Store::open(&dir.path().join("igmod.db"))
        .await
        .expect("sqlite");
    settled_once(&sqlite).await;
    sqlite.close().await;
    let server = common::pg::PgServer::start();
    let pg = igmod::store::Store::connect(
        &igmod::config::database::Database::parse(&server.url(), None).expect("url"),
    )
    .await
    .expect("postgres and its migrations");
    settled_once(&pg).await;
    pg.close().await;
}

/// The commented `[review]` of `config.toml.example`, uncommented, loads as the README says.
#[test]
fn the_example_review_section_loads() {
    let example = include_str!("../config.toml.example");
    let start = example
        .find("# [review]")
        .expect("a [review] in the example");
    let section = example[start..]
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        // Its training file is the operator's to provide.
        .filter(|l| !l.starts_with("training_data"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!(
        "{section}\n\n[daemon]\ndatabase = \"/tmp/igmod-review-never.db\"\n\n[[accounts]]\nname = \"acme\"\nig_user_id = \"1784\"\nlogin = \"instagram\"\ntoken_env = \"IGMOD_TOKEN_ACME\"\npoll_interval = \"2m\"\nhourly_budget = 200\n"
    );
    let c = igmod::config::parse_with(
        Path::new("/etc/igmod/config.toml"),
        &text,
        igmod::config::Secrets::NotNeeded,
    )
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let r = c.review.expect("[review]");
    assert_eq!(r.listen.to_string(), "127.0.0.1:8790");
    assert!(r.https());
    assert_eq!(
        r.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["ana", "bo"]
    );
    assert_eq!((r.min_score, r.max_score), (0.4, 0.8));
    assert_eq!(r.session_ttl, Duration::from_secs(12 * 3600));
}

/// The login form's token in a login page.
fn login_token(body: &str) -> String {
    hidden(body, "login_csrf").unwrap_or_else(|| panic!("no login form token in {body}"))
}

/// The value of the hidden field `name` in a page.
fn hidden(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &body[at..];
    let rest = &rest[rest.find("value=\"")? + 7..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The value a response sets for cookie `name` (`None`: not set).
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A fresh login page's cookie (`igmod_login=…`) and the token its form carries.
async fn login_form(http: &reqwest::Client, base: &str) -> (String, String) {
    let r = http.get(format!("{base}/")).send().await.expect("GET /");
    let cookie = set_cookie(&r, "igmod_login").expect("the login page sets its cookie");
    let token = login_token(&r.text().await.expect("body"));
    assert_eq!(cookie, token, "the cookie and the form carry one token");
    (format!("igmod_login={cookie}"), token)
}

/// An attacker without the browser: a login posted from another site (no login cookie) or
/// with a token of another page is refused; a session id chosen by the client is never
/// adopted; a forged comment id outside the queue settles nothing; a GET changes nothing;
/// logging out ends the session on the server; a long search term is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_logins_ids_and_methods_are_refused() {
    let env = Env::new().await;
    let media = env.sim.add_media(ACME);
    let hidden_id = env.sim.add_comment(
        &media,
        "hidden_user",
        "hidemeplease thank you for the lovely photo",
    );
    let flagged_id = env
        .sim
        .add_comment(&media, "flagged_user", "flagmeplease what a view");
    // Only scores of 0.99 and above are doubtful: the friendly hide is not in the queue. With
    // `public_url`, igmod expects a proxy: this client, which sends no X-Forwarded-For, is one.
    let Review {
        mut daemon,
        db,
        base,
        http,
        log,
    } = start_review(&env, false, |port| {
        format!("public_url = \"http://127.0.0.1:{port}/\"\nmin_score = 0.99\nmax_score = 1.0\n")
    })
    .await;
    wait_for("the first poll's hide", Duration::from_secs(20), || async {
        count(&db, "SELECT COUNT(*) FROM actions WHERE status = 'done'").await == 1
    })
    .await;

    // Every answer, refusals and redirects included, carries the security headers.
    let forged = post(&http, &format!("{base}/login"), None, &[("user", "ana")]).await;
    let nope = http.get(format!("{base}/nope")).send().await.expect("GET");
    let head = http.head(format!("{base}/")).send().await.expect("HEAD");
    for (what, r) in [
        ("a refused login", &forged),
        ("a login page", &nope),
        ("HEAD", &head),
    ] {
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap_or("");
        assert!(csp.starts_with("default-src 'none'"), "{what}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{what}");
    }

    // Login CSRF: the right password, but no login cookie (a form posted from another site:
    // SameSite=Strict keeps the cookie home), or a token from another page.
    let (cookie_a, token_a) = login_form(&http, &base).await;
    let (cookie_b, token_b) = login_form(&http, &base).await;
    assert_ne!(token_a, token_b, "each new login page has its own token");
    let right = [("user", "ana"), ("password", PASSWORD)];
    for (what, cookie, token) in [
        ("no cookie, no token", None, None),
        ("no cookie", None, Some(token_a.as_str())),
        ("no token", Some(cookie_a.as_str()), None),
        (
            "another page's token",
            Some(cookie_a.as_str()),
            Some(token_b.as_str()),
        ),
    ] {
        let mut fields = right.to_vec();
        if let Some(t) = token {
            fields.push(("login_csrf", t));
        }
        let r = post(&http, &format!("{base}/login"), cookie, &fields).await;
        assert_eq!(r.status(), 403, "{what}");
        assert_eq!(set_cookie(&r, "igmod_review"), None, "{what}: a session");
    }
    // A session id the client brings along is never adopted: the server makes a new one.
    let chosen = "a".repeat(64);
    let r = post(
        &http,
        &format!("{base}/login"),
        Some(&format!("{cookie_b}; igmod_review={chosen}")),
        &[
            ("login_csrf", &token_b),
            ("user", "ana"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), 303, "a login from the login page");
    let id = set_cookie(&r, "igmod_review").expect("a session cookie");
    assert_eq!(id.len(), 64, "256 random bits, hex");
    assert_ne!(id, chosen);
    assert_eq!(
        set_cookie(&r, "igmod_login").as_deref(),
        Some(""),
        "the used login token is cleared"
    );
    let session = format!("igmod_review={id}");
    let queue = page(&http, format!("{base}/"), &session, "GET /").await;
    assert!(queue.contains(&format!("id=\"c-{flagged_id}\"")), "{queue}");
    assert!(!queue.contains(&format!("id=\"c-{hidden_id}\"")), "{queue}");
    let csrf = hidden(&queue, "csrf").expect("the session's CSRF token");

    // A GET never changes anything, whatever it carries.
    let r = http
        .get(format!(
            "{base}/settle?csrf={csrf}&comment={flagged_id}&verdict=remove"
        ))
        .header("cookie", &session)
        .send()
        .await
        .expect("GET /settle");
    assert_eq!(r.status(), 404);
    // A forged id: a hide the queue does not show (scored outside the band) cannot be
    // unhidden by posting its id.
    let r = post(
        &http,
        &format!("{base}/settle"),
        Some(&session),
        &[
            ("csrf", &csrf),
            ("comment", &hidden_id),
            ("verdict", "wrong"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/?note=gone");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM reviews").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM labels").await, 0);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM actions WHERE action = 'unhide'").await,
        0
    );
    // What the queue shows settles.
    let r = post(
        &http,
        &format!("{base}/settle"),
        Some(&session),
        &[
            ("csrf", &csrf),
            ("comment", &flagged_id),
            ("verdict", "wrong"),
        ],
    )
    .await;
    assert_eq!(r.headers()["location"], "/?note=settled");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM labels WHERE who = 'ana'").await,
        1
    );

    // A long search term is cut to 200 characters (the page echoes what it searched for).
    let long = "x".repeat(5000);
    let page = page(
        &http,
        format!("{base}/search?q={long}"),
        &session,
        "GET /search",
    )
    .await;
    assert!(
        page.contains(&format!("value=\"{}\"", "x".repeat(200))),
        "{page}"
    );
    assert!(!page.contains(&"x".repeat(201)));

    // Logging out ends the session on the server: the old cookie is worth nothing.
    let r = post(
        &http,
        &format!("{base}/logout"),
        Some(&session),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["cache-control"], "no-store", "a redirect");
    assert_eq!(set_cookie(&r, "igmod_review").as_deref(), Some(""));
    let r = http
        .get(format!("{base}/recent"))
        .header("cookie", &session)
        .send()
        .await
        .expect("GET");
    let body = r.text().await.expect("body");
    assert!(body.contains("name=\"password\""), "{body}");
    assert!(!body.contains("flagged_user"));

    kill(daemon.id(), "-TERM");
    let _ = tokio::task::spawn_blocking(move || daemon.wait()).await;
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log.contains(PASSWORD), "the password is in the log");
    assert!(!log.contains(&id), "a session id is in the log");
    assert!(!log.contains(&csrf), "a CSRF token is in the log");
    assert_eq!(
        log.matches("without X-Forwarded-For").count(),
        1,
        "the missing header is said once: {log}"
    );
}

/// A form body, URL-encoded.
/// A page's body, fetched with a session cookie.
async fn page(http: &reqwest::Client, url: String, session: &str, what: &str) -> String {
    http.get(url)
        .header("cookie", session)
        .send()
        .await
        .expect(what)
        .text()
        .await
        .expect("body")
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut f = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    f.finish()
}

/// A form POST to `url`, with the session cookie when there is one.
async fn post(
    http: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    let mut r = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    r.send().await.expect("POST")
}

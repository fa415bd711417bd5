//! `igmod report` and the demo's report, rendered by a real browser (Debian's `chromium`,
//! headless): the page loads without console errors, shows its charts, and its screenshot is
//! not blank.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Renders `html` in headless Chromium: (its stderr, the screenshot's non-white share, the DOM).
fn render(html: &Path, png: &Path) -> (String, f64, String) {
    let url = format!("file://{}", html.display());
    let chromium = |extra: &[&str]| {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1000,2600",
            ])
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium is installed (apt-get install chromium; .ci/run does)")
    };
    let shot = chromium(&[&format!("--screenshot={}", png.display())]);
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let dom = chromium(&["--dump-dom"]);
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png).expect("screenshot written"),
    ));
    let mut reader = decoder.read_info().expect("a png");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let total = pixels.len() / channels;
    let inked = pixels
        .chunks(channels)
        .filter(|p| p.iter().take(3).any(|c| *c < 200))
        .count();
    (
        String::from_utf8_lossy(&shot.stderr).into_owned() + &String::from_utf8_lossy(&dom.stderr),
        inked as f64 / total as f64,
        String::from_utf8_lossy(&dom.stdout).into_owned(),
    )
}

#[test]
fn the_demo_writes_a_report_that_a_browser_renders() {
    let dir = tempfile::tempdir().expect("dir");
    let (code, out, err) = run(igmod()
        .args(["demo", "--seconds", "4", "--dir"])
        .arg(dir.path()));
    assert_eq!(code, 0, "{err}");
    let report = dir.path().join("report.html");
    assert!(out.contains(&report.display().to_string()), "{out}");
    let metrics =
        std::fs::read_to_string(dir.path().join("metrics.txt")).expect("metrics snapshot");
    assert!(metrics.contains("igmod_decisions_total{"), "{metrics}");
    let html = std::fs::read_to_string(&report).expect("report");
    // Self-contained: no script, nothing fetched (the SVG namespace is a name, not a fetch).
    for outside in ["<script", " src=", " href=", "<link", "url(", "@import"] {
        assert!(!html.contains(outside), "{outside} in the report");
    }
    let (log, inked, dom) = render(&report, &dir.path().join("report.png"));
    assert!(dom.contains("<h1>igmod report</h1>"), "{dom}");
    assert!(dom.matches("<svg").count() >= 3, "charts missing");
    for bad in ["CONSOLE", "Uncaught", "Failed to load resource"] {
        assert!(!log.contains(bad), "{bad} in chromium's log:\n{log}");
    }
    assert!(inked > 0.02, "the screenshot is blank ({inked:.4} inked)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_counts_what_the_daemon_did_and_operators_corrected() {
    let env = Env::new().await;
    let accounts = env.account("acme", ACME, "backfill = true");
    let config = env.config(&accounts, "").path;
    let media = env.sim.add_media(ACME);
    let scams: Vec<String> = (0..3)
        .map(|i| {
            env.sim
                .add_comment(&media, &format!("spammer{i}"), "forex signals")
        })
        .collect();
    let rude = env.sim.add_comment(&media, "grumpy", "what an idiot idea");
    let child = spawn_daemon(&config, None);
    wait_for(
        "all acted on",
        std::time::Duration::from_secs(20),
        || async {
            scams
                .iter()
                .chain([&rude])
                .all(|id| env.sim.comment(id).is_some_and(|c| c.deleted || c.hidden))
        },
    )
    .await;
    kill(child.id(), "-TERM");
    assert_eq!(wait_exit(child).await, Some(0));
    // An operator says one delete was right and the hide was wrong.
    assert_eq!(
        run(igmod()
            .args(["label", "-c"])
            .arg(&config)
            .args([&scams[0], "scam"]))
        .0,
        0
    );
    assert_eq!(
        run(igmod()
            .args(["label", "-c"])
            .arg(&config)
            .args([&rude, "ok"]))
        .0,
        0
    );
    let out = env.dir.path().join("r.html");
    let (code, stdout, stderr) = run(igmod()
        .args(["report", "--since", "1d", "-o"])
        .arg(&out)
        .arg("-c")
        .arg(&config));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let html = std::fs::read_to_string(&out).expect("report");
    assert!(html.contains("<p>4 applied in the period.</p>"), "{html}");
    assert!(html.contains("<tr><td>scam</td><td>delete</td><td class=\"n\">3</td><td class=\"n\">0</td><td class=\"n\">1</td><td class=\"n\">1.00 of 1</td></tr>"), "{html}");
    assert!(html.contains("<tr><td>profanity</td><td>hide</td><td class=\"n\">1</td><td class=\"n\">1</td><td class=\"n\">0</td><td class=\"n\">0.00 of 1</td></tr>"), "{html}");
    assert!(
        html.contains("<tr><td>@spammer0</td><td class=\"n\">1</td></tr>"),
        "{html}"
    );
    assert!(!html.contains(&Env::token("acme")));
    // Commenters' text and usernames: readable by the operator only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out)
        .expect("report")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // Run with sudo into a shared directory, the report never writes through a link another
    // user left at the path.
    let victim = env.dir.path().join("victim");
    std::fs::write(&victim, "keep").expect("victim");
    let link = env.dir.path().join("link.html");
    std::os::unix::fs::symlink(&victim, &link).expect("link");
    let (code, stdout, stderr) = run(igmod()
        .args(["report", "--since", "1d", "-o"])
        .arg(&link)
        .arg("-c")
        .arg(&config));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep");
}

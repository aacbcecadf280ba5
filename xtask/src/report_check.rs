//! test-all's browser check of the HTML memory report: the demo writes the
//! report of the seed's walk, headless Chromium opens it from disk, and the
//! DOM after load must hold every section, one drawn point per mark with
//! the seed's steps as labels, no script and nothing fetched, and the
//! console must be free of errors; a full-page screenshot is kept
//! (target/xtask/report/report.png; docs/report.png is a copy of one).
//!
//! The same verification runs on a deliberately broken copy of the page
//! (a section renamed, a mark group removed, a script logging an error),
//! and must find each fault: a check that cannot fail checks nothing.

use std::path::{Path, PathBuf};

use crate::browser::{check_page, PageFacts};
use crate::demo::{write_report, REPORT_STEPS};
use crate::util::{mkdir, write_file};

/// The page's sections, in order (crates/pymem/src/report/html.rs).
pub const SECTIONS: &[&str] = &["timeline", "arenas", "size-classes", "gc", "whos", "why-alive", "gpu"];

/// Ints and floats of the walk in test-all: a tenth of the seed's 10**7
/// (the same story in a second, not five).
const TEST_N: u64 = 1_000_000;

/// Width of the browser window, in CSS pixels.
const WIDTH: u32 = 1200;

/// What the browser reads from the page once loaded: a JavaScript
/// expression whose value comes back as JSON.
const QUERY: &str = r#"(() => {
  const q = (s) => Array.from(document.querySelectorAll(s));
  return {
    title: document.title,
    sections: q('main > section').map(s => ({
      id: s.id,
      heading: (s.querySelector('h2') || {}).textContent || '',
      height: s.getBoundingClientRect().height,
    })),
    marks: q('#timeline g.mark').map(g => ({
      label: g.getAttribute('data-label'),
      circles: g.querySelectorAll('circle').length,
      width: g.getBBox().width,
    })),
    markRows: q('#marks tr').length - 1,
    scripts: document.scripts.length,
    external: q('[src],[href]').map(e => e.getAttribute('src') || e.getAttribute('href')).filter(u => !u.startsWith('#')),
    arenaRows: q('#arena-map g.arena').length,
    classRows: q('#classes tr').length - 1,
    pauseBars: q('#pauses rect.pause').length,
    whosRows: q('#whos-table tr').length - 1,
    whyNodes: q('#why-graph g.node').length,
    gpuSegments: q('#gpu g.segment').length,
    gpuLines: q('#gpu svg.gpu-timeline polyline').length,
  };
})()"#;

/// What is wrong with the page, one line per fault (empty: nothing).
pub fn problems(facts: &PageFacts) -> Vec<String> {
    let d = &facts.dom;
    let mut out = Vec::new();
    let ids: Vec<&str> =
        d["sections"].as_array().map(|a| a.iter().filter_map(|s| s["id"].as_str()).collect()).unwrap_or_default();
    if ids != SECTIONS {
        out.push(format!("sections {ids:?}, expected {SECTIONS:?}"));
    }
    for s in d["sections"].as_array().into_iter().flatten() {
        if s["height"].as_f64().unwrap_or(0.0) <= 0.0 || s["heading"].as_str().unwrap_or("").is_empty() {
            out.push(format!("section {} is not drawn or has no heading", s["id"]));
        }
    }
    let marks = d["marks"].as_array().cloned().unwrap_or_default();
    let labels: Vec<&str> = marks.iter().filter_map(|m| m["label"].as_str()).collect();
    if labels != REPORT_STEPS {
        out.push(format!("timeline marks {labels:?}, expected the seed's steps {REPORT_STEPS:?}"));
    }
    for m in &marks {
        if m["circles"].as_u64() != Some(2) || m["width"].as_f64().unwrap_or(0.0) <= 0.0 {
            out.push(format!("mark {} has no drawn point", m["label"]));
        }
    }
    if d["markRows"].as_u64() != Some(REPORT_STEPS.len() as u64 + 1) {
        out.push(format!("the marks table has {} rows, expected one per mark and the report's own", d["markRows"]));
    }
    if d["scripts"].as_u64() != Some(0) {
        out.push(format!("{} scripts in the page", d["scripts"]));
    }
    if d["external"].as_array().is_none_or(|a| !a.is_empty()) {
        out.push(format!("the page refers to outside resources: {}", d["external"]));
    }
    for (key, min) in [
        ("arenaRows", 1),
        ("classRows", 1),
        ("pauseBars", 1),
        ("whosRows", 4),
        ("whyNodes", 2),
        ("gpuSegments", 1),
        ("gpuLines", 2),
    ] {
        if d[key].as_u64().unwrap_or(0) < min {
            out.push(format!("{key} = {}, expected at least {min}", d[key]));
        }
    }
    for e in &facts.console_errors {
        out.push(format!("console: {e}"));
    }
    if !facts.png.starts_with(b"\x89PNG\r\n\x1a\n") || facts.png.len() < 10_000 {
        out.push(format!("the screenshot is not a PNG of a drawn page ({} bytes)", facts.png.len()));
    }
    out
}

/// The report of the seed's walk, checked in Chromium. Returns a summary.
pub fn check(root: &Path, work: &Path) -> Result<String, String> {
    let _ = std::fs::remove_dir_all(work);
    mkdir(work)?;
    let page = work.join("report.html");
    write_report(root, &page, Some(TEST_N))?;
    let facts = check_page(&page, WIDTH, QUERY, &work.join("chromium"))?;
    let png = work.join("report.png");
    std::fs::write(&png, &facts.png).map_err(|e| format!("writing {}: {e}", png.display()))?;
    let found = problems(&facts);
    if !found.is_empty() {
        return Err(format!(
            "{} (page {}, screenshot {}):\n{}",
            facts.version,
            page.display(),
            png.display(),
            found.join("\n")
        ));
    }
    Ok(format!(
        "{}: {} sections, {} marks, no console error; screenshot {} ({} bytes)",
        facts.version,
        SECTIONS.len(),
        REPORT_STEPS.len(),
        png.display(),
        facts.png.len()
    ))
}

/// The same verification on a broken copy of the page must find its three
/// faults.
pub fn check_catches_faults(work: &Path) -> Result<(), String> {
    let page = work.join("report.html");
    let html =
        std::fs::read_to_string(&page).map_err(|e| format!("{}: {e} (run the report check first)", page.display()))?;
    let broken = html
        .replacen("<section id=\"gpu\">", "<section id=\"gpu-renamed\">", 1)
        .replacen("<g class=\"mark\"", "<g class=\"not-a-mark\"", 1)
        .replacen("</body>", "<script>console.error('a deliberate error')</script></body>", 1);
    let broken_page: PathBuf = work.join("broken.html");
    write_file(&broken_page, &broken)?;
    let facts = check_page(&broken_page, WIDTH, QUERY, &work.join("chromium-broken"))?;
    let found = problems(&facts).join("\n");
    let expected = ["gpu-renamed", "expected the seed's steps", "a deliberate error", "1 scripts in the page"];
    let missed: Vec<&str> = expected.iter().copied().filter(|e| !found.contains(e)).collect();
    if !missed.is_empty() {
        return Err(format!("the check missed {missed:?} on a broken page; it reported:\n{found}"));
    }
    Ok(())
}

//! The HTML memory report as a page: plain data in ([`ReportData`]), one
//! self-contained HTML string out. Inline CSS and inline SVG only, no
//! script and nothing fetched, so the file opens from disk anywhere and a
//! browser check can demand a console without errors.
//!
//! Every figure that changes from run to run for the same program (RSS,
//! times, pause lengths, addresses) is wrapped in an element of class
//! `vol`: [`text_content`] shows those as `…`, which makes the page's text
//! a stable snapshot. The page's sections, in order, each a `<section>`
//! with the id in brackets: the timeline (`timeline`), the arena map
//! (`arenas`), the size classes (`size-classes`), the collector (`gc`),
//! `%whos` (`whos`), `why_alive` (`why-alive`) and the GPU cache (`gpu`).

use std::fmt::Write;

use cuda_cache::{Action, SegmentView, TraceEntry};
use namespace_cleaner::reach::human_bytes;
use namespace_cleaner::table::thousands;
use namespace_cleaner::{Whos, WhyAlive};
use obmalloc::{ArenaView, ClassStats, PoolFill, Stats};

/// What a timeline sample was taken for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleKind {
    /// `pymem_report_mark(rt, label)`.
    Mark(String),
    /// The end of a collection of this generation.
    Collection(u8),
    /// The moment the report was written.
    Now,
}

/// One point of the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Microseconds since the runtime was created.
    pub t_us: u64,
    pub kind: SampleKind,
    /// Resident set size of the whole process.
    pub rss: u64,
    pub bytes_in_use: u64,
    pub bytes_reserved: u64,
}

/// One collection, for the pause chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CollectionRecord {
    /// 1 for the runtime's first collection.
    pub number: u64,
    pub generation: u8,
    /// Objects found unreachable.
    pub found: u64,
    pub duration_ns: u64,
}

/// The collector's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcData {
    pub enabled: bool,
    pub counts: [i64; 3],
    pub thresholds: [i64; 3],
    /// Per generation: collections, collected, uncollectable.
    pub stats: [(u64, u64, u64); 3],
    /// Objects in the permanent generation (`gc.freeze`).
    pub permanent: usize,
    /// The last collections, oldest first.
    pub collections: Vec<CollectionRecord>,
    pub collections_total: u64,
}

/// A report kept from a call made during the run, and when it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded<T> {
    pub namespace: String,
    /// The label of the last mark before the call, if any.
    pub after_mark: Option<String>,
    pub value: T,
}

/// One device of the GPU cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuDevice {
    pub index: usize,
    pub allocated: u64,
    pub reserved: u64,
    pub peak_allocated: u64,
    pub peak_reserved: u64,
    pub segments: Vec<SegmentView>,
    pub history: Vec<TraceEntry>,
}

/// The GPU cache given to the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuData {
    pub backend: String,
    pub devices: Vec<GpuDevice>,
}

/// Everything the page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportData {
    pub version: String,
    pub pool_bytes: usize,
    pub stats: Stats,
    /// Marks, collections (once sampling started) and a last `Now`.
    pub samples: Vec<Sample>,
    /// Collection samples dropped to keep the timeline bounded.
    pub samples_dropped: u64,
    pub arenas: Vec<ArenaView>,
    pub classes: Vec<ClassStats>,
    pub gc: GcData,
    pub whos: Option<Recorded<Whos>>,
    pub why: Option<Recorded<WhyAlive>>,
    pub gpu: Option<GpuData>,
}

/// Arenas drawn at most in the arena map (the rest are counted).
const MAX_ARENA_ROWS: usize = 128;
/// Collections drawn at most in the pause chart (the last ones).
const MAX_PAUSE_BARS: usize = 240;
/// Segments drawn at most per device.
const MAX_SEGMENT_ROWS: usize = 64;

const CSS: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2b45;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c8d3e6}
nav{padding:8px 28px;background:#e8ecf3;font-size:13px}
nav a{margin-right:14px;color:#1d2b45}
main{padding:10px 28px 40px;max-width:1100px}
section{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:14px 18px;margin:16px 0}
h2{font-size:17px;margin:0 0 8px}
h3{font-size:14px;margin:14px 0 6px}
p.note{color:#5a6475;margin:4px 0 8px;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{padding:3px 10px;text-align:left;border-bottom:1px solid #edf0f4;white-space:nowrap}
th{background:#f0f3f7}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.barcell{width:320px}
.bar{display:inline-block;height:11px;background:#4a7bd0;border-radius:2px;vertical-align:middle}
.bar.gc{background:#7a5bc4}
svg{display:block;margin:6px 0;overflow:visible}
svg text{font:11px system-ui,sans-serif;fill:#333}
.axis{stroke:#9aa3b2;stroke-width:1}
.grid{stroke:#e5e8ee;stroke-width:1}
.line{fill:none;stroke-width:2}
.rss{stroke:#d0532f}
.inuse{stroke:#2f6fd0}
.reserved{stroke:#8a94a6;stroke-dasharray:4 3}
.mark line{stroke:#1d2b45;stroke-dasharray:3 3}
.mark circle{fill:#1d2b45}
.gc-point{fill:#7a5bc4}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.sw{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:4px;border:1px solid #9aa3b2}
.pool.untouched{fill:#f3f4f6;stroke:#d5d9e0}
.pool.empty{fill:#bfe3c0}
.pool.released{fill:#f2c4c4}
.node rect{fill:#eef3fb;stroke:#2f6fd0}
.node.target rect{fill:#fde9e3;stroke:#d0532f}
.edge{stroke:#5a6475;stroke-width:1.4;fill:none}
.blk.free{fill:#eceff3}
.blk.pending{fill:#f1b45a}
.seg{fill:none;stroke:#5a6475}
";

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A figure that changes from run to run (RSS, time, address).
fn vol(text: &str) -> String {
    format!("<span class=\"vol\">{}</span>", escape(text))
}

fn ms(t_us: u64) -> String {
    format!("{:.1} ms", t_us as f64 / 1000.0)
}

/// A pause: µs below a millisecond, ms above.
fn micros(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1000.0)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

/// A horizontal bar `value / max` of the cell's width.
fn bar(value: u64, max: u64, class: &str) -> String {
    let pct = if max == 0 { 0.0 } else { 100.0 * value as f64 / max as f64 };
    let pct = if value > 0 { pct.max(0.5) } else { 0.0 };
    format!("<span class=\"bar {class}\" style=\"width:{pct:.1}%\"></span>")
}

/// The label of a mark, cut for the chart (the table has it whole).
fn short(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let head: String = label.chars().take(max - 1).collect();
        format!("{head}…")
    }
}

/// The whole page.
pub fn render(d: &ReportData) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let marks = d.samples.iter().filter(|s| matches!(s.kind, SampleKind::Mark(_))).count();
    let now_rss = d.samples.last().map_or(0, |s| s.rss);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>pymem memory report</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <header><h1>pymem memory report</h1>\n<p>pymem {} · {} arenas of {} pools of {} · {} in use, {} reserved · RSS {} · {} marks, {} collections</p></header>\n",
        escape(&d.version),
        d.stats.arenas_current,
        d.arenas.first().map_or(0, |a| a.pools.len()),
        human_bytes(d.pool_bytes as u64),
        human_bytes(d.stats.bytes_in_use),
        human_bytes(d.stats.bytes_reserved),
        vol(&human_bytes(now_rss)),
        marks,
        d.gc.collections_total,
    );
    out.push_str(
        "<nav><a href=\"#timeline\">timeline</a><a href=\"#arenas\">arena map</a>\
         <a href=\"#size-classes\">size classes</a><a href=\"#gc\">collector</a><a href=\"#whos\">%whos</a>\
         <a href=\"#why-alive\">why alive</a><a href=\"#gpu\">GPU cache</a></nav>\n<main>\n",
    );
    timeline(&mut out, d);
    arena_map(&mut out, d);
    size_classes(&mut out, d);
    collector(&mut out, d);
    whos(&mut out, d);
    why_alive(&mut out, d);
    gpu(&mut out, d);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// Horizontal grid lines of a chart, `steps` equal steps from its bottom
/// to its top, each labelled on the left with `label(i)`; `volatile`
/// labels (figures that change from run to run) carry the `vol` class.
fn grid_lines(
    out: &mut String,
    (left, top, width, height): (f64, f64, f64, f64),
    steps: u64,
    volatile: bool,
    label: impl Fn(u64) -> String,
) {
    let class = if volatile { " class=\"vol\"" } else { "" };
    for i in 0..=steps {
        let y = top + height - height * i as f64 / steps as f64;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text{class} x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + width,
            left - 6.0,
            y + 4.0,
            escape(&label(i))
        );
    }
}

/// Ticks for a byte axis: 0 and four steps to `max`.
fn byte_axis(out: &mut String, left: f64, top: f64, width: f64, height: f64, max: u64) {
    grid_lines(out, (left, top, width, height), 4, true, |i| human_bytes(max / 4 * i));
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{:.1}\"/>\
         <line class=\"axis\" x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
        top + height,
        top + height,
        left + width,
        top + height
    );
}

/// A polyline through `points`.
fn polyline(out: &mut String, class: &str, points: &[(f64, f64)]) {
    let _ = write!(out, "<polyline class=\"line {class}\" points=\"");
    for (x, y) in points {
        let _ = write!(out, "{x:.1},{y:.1} ");
    }
    out.push_str("\"/>");
}

fn timeline(out: &mut String, d: &ReportData) {
    out.push_str("<section id=\"timeline\"><h2>Memory over the run</h2>\n");
    out.push_str(
        "<p class=\"note\">The process's RSS, the allocator's bytes in use (live blocks) and reserved \
         (arenas and large blocks), sampled at every <code>pymem_report_mark</code> and, from the first \
         mark on, at the end of every collection; the last point is when the report was written. \
         Points are evenly spaced in the order they were taken.</p>\n",
    );
    if d.samples.is_empty() {
        out.push_str("<p>No samples.</p></section>\n");
        return;
    }
    let (left, top, width, height) = (80.0, 16.0, 860.0, 260.0);
    let max = d.samples.iter().map(|s| s.rss.max(s.bytes_reserved).max(s.bytes_in_use)).max().unwrap_or(0);
    let max = (max + max / 20).max(1);
    let n = d.samples.len();
    let x_of = |i: usize| if n == 1 { left + width / 2.0 } else { left + width * i as f64 / (n - 1) as f64 };
    let y_of = |v: u64| top + height - height * v as f64 / max as f64;
    let _ = write!(
        out,
        "<svg id=\"timeline-chart\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"memory over the run\">",
        left + width + 30.0,
        top + height + 150.0,
        left + width + 30.0,
        top + height + 150.0
    );
    byte_axis(out, left, top, width, height, max);
    for (class, value) in [
        ("reserved", (|s: &Sample| s.bytes_reserved) as fn(&Sample) -> u64),
        ("rss", |s: &Sample| s.rss),
        ("inuse", |s: &Sample| s.bytes_in_use),
    ] {
        let points: Vec<(f64, f64)> = d.samples.iter().enumerate().map(|(i, s)| (x_of(i), y_of(value(s)))).collect();
        polyline(out, class, &points);
    }
    for (i, s) in d.samples.iter().enumerate() {
        let x = x_of(i);
        match &s.kind {
            SampleKind::Mark(label) => {
                let _ = write!(
                    out,
                    "<g class=\"mark\" data-label=\"{}\"><title>{}</title>\
                     <line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
                     <circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"4\"/><circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"4\"/>\
                     <text x=\"{x:.1}\" y=\"{:.1}\" transform=\"rotate(40 {x:.1} {:.1})\">{}</text></g>",
                    escape(label),
                    escape(label),
                    top + height,
                    y_of(s.rss),
                    y_of(s.bytes_in_use),
                    top + height + 14.0,
                    top + height + 14.0,
                    escape(&short(label, 28))
                );
            }
            SampleKind::Collection(generation) => {
                let _ = write!(
                    out,
                    "<circle class=\"gc-point\" cx=\"{x:.1}\" cy=\"{:.1}\" r=\"2.5\"><title>collection of generation {generation}</title></circle>",
                    y_of(s.bytes_in_use)
                );
            }
            SampleKind::Now => {}
        }
    }
    out.push_str("</svg>\n");
    out.push_str(
        "<div class=\"legend\"><span><i class=\"sw\" style=\"background:#d0532f\"></i>RSS</span>\
         <span><i class=\"sw\" style=\"background:#2f6fd0\"></i>bytes in use</span>\
         <span><i class=\"sw\" style=\"background:#8a94a6\"></i>bytes reserved</span>\
         <span><i class=\"sw\" style=\"background:#7a5bc4\"></i>a collection</span>\
         <span><i class=\"sw\" style=\"background:#1d2b45\"></i>a mark</span></div>\n",
    );
    if d.samples_dropped > 0 {
        let _ = writeln!(
            out,
            "<p class=\"note\">{} collection samples were dropped to keep the timeline bounded (marks are all kept).</p>",
            thousands(d.samples_dropped)
        );
    }
    let collections = d.samples.iter().filter(|s| matches!(s.kind, SampleKind::Collection(_))).count();
    let _ = writeln!(
        out,
        "<h3>Marks</h3><p class=\"note\">{} collection samples between them are drawn as dots.</p>\
         <table id=\"marks\"><tr><th>#</th><th>mark</th><th class=\"num\">time</th><th class=\"num\">RSS</th>\
         <th class=\"num\">in use</th><th class=\"num\">reserved</th></tr>",
        thousands(collections as u64)
    );
    let mut k = 0;
    for s in &d.samples {
        let label = match &s.kind {
            SampleKind::Mark(label) => {
                k += 1;
                escape(label)
            }
            SampleKind::Now => "(report written)".to_string(),
            SampleKind::Collection(_) => continue,
        };
        let number = if matches!(s.kind, SampleKind::Now) { String::new() } else { k.to_string() };
        let _ = writeln!(
            out,
            "<tr><td>{number}</td><td>{label}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            vol(&ms(s.t_us)),
            vol(&human_bytes(s.rss)),
            human_bytes(s.bytes_in_use),
            human_bytes(s.bytes_reserved)
        );
    }
    out.push_str("</table></section>\n");
}

/// The colour of a used pool: lighter when nearly empty, darker when nearly full.
fn fill_colour(in_use: u32, capacity: u32) -> String {
    let f = if capacity == 0 { 0.0 } else { f64::from(in_use) / f64::from(capacity) };
    format!("hsl(215,65%,{:.0}%)", 86.0 - 52.0 * f)
}

fn arena_map(out: &mut String, d: &ReportData) {
    out.push_str("<section id=\"arenas\"><h2>Arena map</h2>\n");
    let _ = writeln!(
        out,
        "<p class=\"note\">Each row is an arena, each cell one of its {} pools of {}, coloured by how full \
         it is. Empty pools keep their pages for reuse; released pools gave theirs back to the OS \
         (MADV_DONTNEED); untouched pools were never used.</p>",
        d.arenas.first().map_or(0, |a| a.pools.len()),
        human_bytes(d.pool_bytes as u64)
    );
    out.push_str(
        "<div class=\"legend\"><span><i class=\"sw\" style=\"background:hsl(215,65%,80%)\"></i>used, little</span>\
         <span><i class=\"sw\" style=\"background:hsl(215,65%,34%)\"></i>used, full</span>\
         <span><i class=\"sw\" style=\"background:#bfe3c0\"></i>empty (resident)</span>\
         <span><i class=\"sw\" style=\"background:#f2c4c4\"></i>released to the OS</span>\
         <span><i class=\"sw\" style=\"background:#f3f4f6\"></i>untouched</span></div>\n",
    );
    if d.arenas.is_empty() {
        out.push_str("<p>No arena is mapped.</p></section>\n");
        return;
    }
    let mut counts = [0u64; 5];
    for p in d.arenas.iter().flat_map(|a| &a.pools) {
        counts[fill_index(p.fill)] += 1;
    }
    let _ = writeln!(
        out,
        "<p>{} arenas: {} used pools, {} full, {} empty, {} released, {} untouched.</p>",
        d.arenas.len(),
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[0]
    );
    let rows = d.arenas.len().min(MAX_ARENA_ROWS);
    let pools = d.arenas.iter().map(|a| a.pools.len()).max().unwrap_or(0);
    let (cell, label_w) = (11.0, 130.0);
    let _ = write!(
        out,
        "<svg id=\"arena-map\" width=\"{:.0}\" height=\"{:.0}\">",
        label_w + cell * pools as f64 + 10.0,
        cell * rows as f64 + 4.0
    );
    for (r, arena) in d.arenas.iter().take(rows).enumerate() {
        let y = r as f64 * cell;
        let _ =
            write!(out, "<g class=\"arena\"><text class=\"vol\" x=\"0\" y=\"{:.1}\">{:#x}</text>", y + 9.0, arena.base);
        for (i, p) in arena.pools.iter().enumerate() {
            let x = label_w + i as f64 * cell;
            let (class, style, title) = match p.fill {
                PoolFill::Used | PoolFill::Full => (
                    if p.fill == PoolFill::Full { "pool full" } else { "pool used" },
                    format!(" style=\"fill:{}\"", fill_colour(p.blocks_in_use, p.capacity)),
                    format!("{} B blocks: {} of {} in use", p.block_size, p.blocks_in_use, p.capacity),
                ),
                PoolFill::Empty => ("pool empty", String::new(), "empty, pages resident".to_string()),
                PoolFill::Released => ("pool released", String::new(), "released to the OS".to_string()),
                PoolFill::Untouched => ("pool untouched", String::new(), "untouched".to_string()),
            };
            let _ = write!(
                out,
                "<rect class=\"{class}\"{style} x=\"{x:.0}\" y=\"{y:.0}\" width=\"{:.0}\" height=\"{:.0}\"><title>{title}</title></rect>",
                cell - 1.0,
                cell - 1.0
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>\n");
    if d.arenas.len() > rows {
        let _ = writeln!(out, "<p class=\"note\">… and {} more arenas.</p>", d.arenas.len() - rows);
    }
    out.push_str("</section>\n");
}

fn fill_index(fill: PoolFill) -> usize {
    match fill {
        PoolFill::Untouched => 0,
        PoolFill::Used => 1,
        PoolFill::Full => 2,
        PoolFill::Empty => 3,
        PoolFill::Released => 4,
    }
}

fn size_classes(out: &mut String, d: &ReportData) {
    out.push_str("<section id=\"size-classes\"><h2>Size classes</h2>\n");
    out.push_str(
        "<p class=\"note\">The table of <code>pymem_debug_malloc_stats</code> (CPython's \
         <code>sys._debugmallocstats()</code>): the classes with pools in use, the bar is the bytes \
         their live blocks hold.</p>\n",
    );
    if d.classes.is_empty() {
        out.push_str("<p>No size class has a pool in use.</p></section>\n");
        return;
    }
    let max = d.classes.iter().map(|c| c.blocks_in_use * c.size as u64).max().unwrap_or(0);
    out.push_str(
        "<table id=\"classes\"><tr><th class=\"num\">class</th><th class=\"num\">size</th><th class=\"num\">pools</th>\
         <th class=\"num\">blocks in use</th><th class=\"num\">free blocks</th><th class=\"num\">bytes in use</th><th></th></tr>\n",
    );
    for c in &d.classes {
        let bytes = c.blocks_in_use * c.size as u64;
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{} B</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"barcell\">{}</td></tr>",
            c.class,
            c.size,
            thousands(c.pools),
            thousands(c.blocks_in_use),
            thousands(c.available_blocks),
            human_bytes(bytes),
            bar(bytes, max, "")
        );
    }
    let _ = writeln!(
        out,
        "</table><p>Large blocks (over 512 bytes, from the system): {} holding {}.</p></section>",
        thousands(d.stats.large_allocations),
        human_bytes(d.stats.large_bytes)
    );
}

fn collector(out: &mut String, d: &ReportData) {
    let g = &d.gc;
    out.push_str("<section id=\"gc\"><h2>Cycle collector</h2>\n");
    let _ = writeln!(
        out,
        "<p class=\"note\">Automatic collection {} · {} objects in the permanent generation \
         (<code>gc.freeze</code>).</p>",
        if g.enabled { "on" } else { "off" },
        thousands(g.permanent as u64)
    );
    out.push_str(
        "<table id=\"generations\"><tr><th>generation</th><th class=\"num\">count</th><th class=\"num\">threshold</th>\
         <th class=\"num\">collections</th><th class=\"num\">collected</th><th class=\"num\">uncollectable</th></tr>\n",
    );
    for i in 0..3 {
        let (collections, collected, uncollectable) = g.stats[i];
        let _ = writeln!(
            out,
            "<tr><td>{i}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            g.counts[i],
            g.thresholds[i],
            thousands(collections),
            thousands(collected),
            thousands(uncollectable)
        );
    }
    out.push_str("</table>\n<h3>Pause per collection</h3>\n");
    if g.collections.is_empty() {
        out.push_str("<p>No collection ran.</p></section>\n");
        return;
    }
    let shown: Vec<&CollectionRecord> = g.collections.iter().rev().take(MAX_PAUSE_BARS).rev().collect();
    let longest = shown.iter().map(|c| c.duration_ns).max().unwrap_or(0).max(1);
    let _ = writeln!(
        out,
        "<p class=\"note\">The last {} of {} collections, one bar each (height: its pause; colour: its \
         generation); the longest took {}.</p>",
        shown.len(),
        thousands(g.collections_total),
        vol(&micros(longest))
    );
    let (left, top, width, height) = (80.0, 10.0, 860.0, 140.0);
    let step = width / shown.len() as f64;
    let _ =
        write!(out, "<svg id=\"pauses\" width=\"{:.0}\" height=\"{:.0}\">", left + width + 10.0, top + height + 30.0);
    grid_lines(out, (left, top, width, height), 2, true, |i| micros(longest / 2 * i));
    const COLOURS: [&str; 3] = ["#9b86d9", "#6a4bb8", "#3a2480"];
    for (i, c) in shown.iter().enumerate() {
        let h = (height * c.duration_ns as f64 / longest as f64).max(1.0);
        let _ = write!(
            out,
            "<rect class=\"pause gen{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\">\
             <title>collection {} of generation {}: {} unreachable</title></rect>",
            c.generation,
            left + i as f64 * step,
            top + height - h,
            (step - 1.0).max(1.0),
            COLOURS[usize::from(c.generation.min(2))],
            c.number,
            c.generation,
            c.found
        );
    }
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
         <text x=\"{left}\" y=\"{:.1}\">collection {}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">collection {}</text></svg>",
        top + height,
        left + width,
        top + height,
        top + height + 16.0,
        shown[0].number,
        left + width,
        top + height + 16.0,
        shown[shown.len() - 1].number
    );
    out.push_str(
        "<div class=\"legend\"><span><i class=\"sw\" style=\"background:#9b86d9\"></i>generation 0</span>\
         <span><i class=\"sw\" style=\"background:#6a4bb8\"></i>generation 1</span>\
         <span><i class=\"sw\" style=\"background:#3a2480\"></i>generation 2</span></div>\n",
    );
    let found: u64 = shown.iter().map(|c| c.found).sum();
    let _ = writeln!(out, "<p>These collections found {} unreachable objects.</p></section>", thousands(found));
}

/// "recorded by pymem_ns_whos on namespace 'x' after the mark 'y'".
fn provenance<T>(what: &str, r: &Recorded<T>) -> String {
    let after = match &r.after_mark {
        Some(label) => format!("after the mark “{}”", escape(label)),
        None => "before the first mark".to_string(),
    };
    format!(
        "<p class=\"note\">As the last <code>{what}</code> call answered it: namespace “{}”, {after}.</p>",
        escape(&r.namespace)
    )
}

fn whos(out: &mut String, d: &ReportData) {
    out.push_str("<section id=\"whos\"><h2>%whos</h2>\n");
    let Some(r) = &d.whos else {
        out.push_str("<p>No <code>pymem_ns_whos</code> call was made.</p></section>\n");
        return;
    };
    out.push_str(&provenance("pymem_ns_whos", r));
    if r.value.rows.is_empty() {
        out.push_str("<p>Interactive namespace is empty.</p></section>\n");
        return;
    }
    let max = r.value.rows.iter().map(|row| row.bytes).max().unwrap_or(0);
    out.push_str(
        "<table id=\"whos-table\"><tr><th>Variable</th><th>Type</th><th class=\"num\">Size</th><th></th><th>Data/Info</th></tr>\n",
    );
    for row in &r.value.rows {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"barcell\">{}</td><td>{}</td></tr>",
            escape(&row.name),
            escape(&row.type_name),
            human_bytes(row.bytes),
            bar(row.bytes, max, ""),
            escape(&row.data)
        );
    }
    let _ = writeln!(
        out,
        "</table><p>Total: {} ({} bytes in {} objects) reachable from {} variables, each object counted once.</p></section>",
        human_bytes(r.value.total_bytes),
        thousands(r.value.total_bytes),
        thousands(r.value.total_objects),
        r.value.rows.len()
    );
}

/// Approximate width of a label in the graph's 11 px font.
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * 6.4 + 16.0
}

fn why_alive(out: &mut String, d: &ReportData) {
    out.push_str("<section id=\"why-alive\"><h2>Why is it alive?</h2>\n");
    let Some(r) = &d.why else {
        out.push_str("<p>No <code>pymem_ns_why_alive</code> call was made.</p></section>\n");
        return;
    };
    out.push_str(&provenance("pymem_ns_why_alive", r));
    let w = &r.value;
    // The label holds the object's address: volatile.
    let _ = writeln!(out, "<p>{}</p>", vol(&w.label));
    if w.immortal {
        out.push_str("<p>It is immortal: it is never freed, whatever refers to it.</p></section>\n");
        return;
    }
    if w.chains.is_empty() {
        out.push_str(
            "<p>No chain from a namespace or the host: only reference cycles hold it, and the next full \
             collection frees it.</p></section>\n",
        );
        return;
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">{} chain{} of references, shortest first: each box is an object (named by its \
         root and path), each arrow a reference, labelled by how the holder refers to it.</p>",
        w.total,
        if w.total == 1 { "" } else { "s" }
    );
    // Columns: each chain's nodes left to right; the object itself once, on the right.
    let (row_h, gap, node_h) = (46.0, 60.0, 24.0);
    let mut rows: Vec<Vec<(String, String)>> = Vec::new(); // per chain: (node label, label of the arrow out of it)
    for chain in &w.chains {
        let mut nodes = Vec::new();
        if chain.steps.is_empty() {
            nodes.push((chain.root.clone(), "holds".to_string()));
        } else {
            let mut path = chain.root.clone();
            for step in &chain.steps {
                nodes.push((path.clone(), step.clone()));
                path.push_str(step);
            }
        }
        rows.push(nodes);
    }
    let columns = rows.iter().map(Vec::len).max().unwrap_or(1);
    let mut col_w = vec![0.0f64; columns];
    for nodes in &rows {
        for (i, (label, _)) in nodes.iter().enumerate() {
            col_w[i] = col_w[i].max(text_width(&short(label, 48)));
        }
    }
    let mut col_x = vec![10.0f64; columns + 1];
    for i in 0..columns {
        col_x[i + 1] = col_x[i] + col_w[i] + gap;
    }
    let target_label = format!("{} (the object)", w.name);
    let target_w = text_width(&target_label);
    let height = (rows.len() as f64 * row_h).max(row_h) + 10.0;
    let target_y = height / 2.0 - node_h / 2.0;
    let _ = write!(
        out,
        "<svg id=\"why-graph\" width=\"{:.0}\" height=\"{height:.0}\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" \
         refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
         <path d=\"M0,0L10,5L0,10z\" fill=\"#5a6475\"/></marker></defs>",
        col_x[columns] + target_w + 20.0
    );
    for (r_i, nodes) in rows.iter().enumerate() {
        let y = 8.0 + r_i as f64 * row_h;
        let _ = write!(out, "<g class=\"chain\">");
        for (i, (label, arrow)) in nodes.iter().enumerate() {
            let x = col_x[i];
            let w_node = text_width(&short(label, 48));
            let _ = write!(
                out,
                "<g class=\"node\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w_node:.1}\" height=\"{node_h}\" rx=\"4\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text><title>{}</title></g>",
                x + 8.0,
                y + 16.0,
                escape(&short(label, 48)),
                escape(label)
            );
            let (x1, y1) = (x + w_node, y + node_h / 2.0);
            let (x2, y2) = if i + 1 < nodes.len() {
                (col_x[i + 1], y + node_h / 2.0)
            } else {
                (col_x[columns], target_y + node_h / 2.0)
            };
            let _ = write!(
                out,
                "<path class=\"edge\" d=\"M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}\" marker-end=\"url(#arrow)\"/>\
                 <text class=\"edge-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x1 + gap / 2.0,
                x2 - gap / 2.0,
                x1 + 4.0,
                y1 - 4.0,
                escape(&short(arrow, 14))
            );
        }
        out.push_str("</g>");
    }
    let _ = writeln!(
        out,
        "<g class=\"node target\"><rect x=\"{:.1}\" y=\"{target_y:.1}\" width=\"{target_w:.1}\" height=\"{node_h}\" rx=\"4\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\">{}</text></g></svg>",
        col_x[columns],
        col_x[columns] + 8.0,
        target_y + 16.0,
        escape(&target_label)
    );
    out.push_str("<ol id=\"chains\">");
    for chain in &w.chains {
        let _ = write!(out, "<li><code>{}</code></li>", escape(&chain.to_text()));
    }
    out.push_str("</ol>");
    if w.total > w.chains.len() {
        let _ = write!(out, "<p>… and {} more.</p>", w.total - w.chains.len());
    }
    out.push_str("</section>\n");
}

fn gpu(out: &mut String, d: &ReportData) {
    out.push_str("<section id=\"gpu\"><h2>GPU caching allocator</h2>\n");
    let Some(g) = &d.gpu else {
        out.push_str("<p>No GPU cache was given to <code>pymem_report_html</code>.</p></section>\n");
        return;
    };
    let _ = writeln!(
        out,
        "<p class=\"note\">Backend: {}. Segments and their blocks as PyTorch's memory_viz draws them \
         (each segment a row, blocks to scale within it), and allocated/reserved replayed from the \
         allocation history (<code>pymem_cuda_record_history</code>).</p>",
        escape(&g.backend)
    );
    for dev in &g.devices {
        let _ = writeln!(
            out,
            "<h3>Device {}</h3><p>allocated {} (peak {}), reserved {} (peak {}), {} segments.</p>",
            dev.index,
            human_bytes(dev.allocated),
            human_bytes(dev.peak_allocated),
            human_bytes(dev.reserved),
            human_bytes(dev.peak_reserved),
            dev.segments.len()
        );
        segments(out, dev);
        gpu_timeline(out, dev);
    }
    out.push_str("</section>\n");
}

fn segments(out: &mut String, dev: &GpuDevice) {
    if dev.segments.is_empty() {
        out.push_str("<p>No segment is reserved.</p>\n");
        return;
    }
    let rows = dev.segments.len().min(MAX_SEGMENT_ROWS);
    let largest = dev.segments.iter().map(|s| s.total_size).max().unwrap_or(1).max(1);
    let (label_w, width, row_h) = (250.0, 680.0, 20.0);
    let _ = write!(
        out,
        "<svg class=\"segments\" width=\"{:.0}\" height=\"{:.0}\">",
        label_w + width + 10.0,
        rows as f64 * row_h + 4.0
    );
    for (r, seg) in dev.segments.iter().take(rows).enumerate() {
        let y = r as f64 * row_h;
        // To scale, but never so thin that its blocks vanish.
        let seg_w = (width * seg.total_size as f64 / largest as f64).max(60.0);
        let _ = write!(
            out,
            "<g class=\"segment\"><text x=\"0\" y=\"{:.1}\"><tspan class=\"vol\">{:#x}</tspan> {} {} stream {}</text>",
            y + 13.0,
            seg.address,
            escape(&human_bytes(seg.total_size)),
            match seg.pool {
                cuda_cache::policy::PoolKind::Small => "small",
                cuda_cache::policy::PoolKind::Large => "large",
            },
            seg.stream
        );
        let mut x = label_w;
        for (i, b) in seg.blocks.iter().enumerate() {
            // An allocated block stays visible however small.
            let w = seg_w * b.size as f64 / seg.total_size.max(1) as f64;
            let w = if b.allocated { w.max(2.0) } else { w };
            let (class, fill) = if b.allocated {
                ("blk allocated", format!(" style=\"fill:hsl({},60%,55%)\"", (i * 47) % 360))
            } else if b.active {
                ("blk pending", String::new())
            } else {
                ("blk free", String::new())
            };
            let what = if b.allocated {
                format!("allocated, {} requested", human_bytes(b.requested))
            } else if b.active {
                "freed, waiting for a stream's event".to_string()
            } else {
                "free (cached)".to_string()
            };
            let _ = write!(
                out,
                "<rect class=\"{class}\"{fill} x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{}: {}</title></rect>",
                y + 2.0,
                w.max(0.5),
                row_h - 5.0,
                escape(&human_bytes(b.size)),
                what
            );
            x += w;
        }
        let _ = write!(
            out,
            "<rect class=\"seg\" x=\"{label_w}\" y=\"{:.1}\" width=\"{seg_w:.1}\" height=\"{:.1}\"/></g>",
            y + 2.0,
            row_h - 5.0
        );
    }
    out.push_str("</svg>\n");
    if dev.segments.len() > rows {
        let _ = writeln!(out, "<p class=\"note\">… and {} more segments.</p>", dev.segments.len() - rows);
    }
    out.push_str(
        "<div class=\"legend\"><span><i class=\"sw\" style=\"background:hsl(200,60%,55%)\"></i>allocated block</span>\
         <span><i class=\"sw\" style=\"background:#eceff3\"></i>free (cached)</span>\
         <span><i class=\"sw\" style=\"background:#f1b45a\"></i>freed, waiting for an event</span></div>\n",
    );
}

/// allocated and reserved after each history entry, from zero.
pub fn replay(history: &[TraceEntry]) -> Vec<(u64, u64)> {
    let (mut allocated, mut reserved) = (0u64, 0u64);
    let mut points = Vec::with_capacity(history.len() + 1);
    points.push((0, 0));
    for e in history {
        match e.action {
            Action::Alloc => allocated += e.size,
            Action::FreeCompleted => allocated = allocated.saturating_sub(e.size),
            Action::SegmentAlloc => reserved += e.size,
            Action::SegmentFree => reserved = reserved.saturating_sub(e.size),
            Action::FreeRequested | Action::Oom => continue,
        }
        points.push((allocated, reserved));
    }
    points
}

fn gpu_timeline(out: &mut String, dev: &GpuDevice) {
    if dev.history.is_empty() {
        out.push_str(
            "<p>No allocation history was recorded (turn it on with <code>pymem_cuda_record_history</code>).</p>\n",
        );
        return;
    }
    let points = replay(&dev.history);
    let max = points.iter().map(|&(a, r)| a.max(r)).max().unwrap_or(0).max(1);
    let max = max + max / 20;
    let (left, top, width, height) = (80.0, 10.0, 860.0, 160.0);
    let n = points.len();
    let x_of = |i: usize| if n == 1 { left } else { left + width * i as f64 / (n - 1) as f64 };
    let y_of = |v: u64| top + height - height * v as f64 / max as f64;
    let _ = writeln!(
        out,
        "<p class=\"note\">{} history entries, replayed from zero (steps in the order they happened).</p>",
        thousands(dev.history.len() as u64)
    );
    let _ = write!(
        out,
        "<svg class=\"gpu-timeline\" width=\"{:.0}\" height=\"{:.0}\">",
        left + width + 10.0,
        top + height + 20.0
    );
    // The axis of a GPU timeline is deterministic for a given program: not volatile.
    grid_lines(out, (left, top, width, height), 4, false, |i| human_bytes(max / 4 * i));
    // Steps: each value holds until the next entry.
    let step_points = |value: fn(&(u64, u64)) -> u64| {
        let mut v = Vec::with_capacity(2 * n);
        for (i, p) in points.iter().enumerate() {
            if i > 0 {
                v.push((x_of(i), y_of(value(&points[i - 1]))));
            }
            v.push((x_of(i), y_of(value(p))));
        }
        v
    };
    let reserved = step_points(|p| p.1);
    let allocated = step_points(|p| p.0);
    polyline(out, "reserved", &reserved);
    polyline(out, "inuse", &allocated);
    out.push_str(
        "</svg>\n<div class=\"legend\"><span><i class=\"sw\" style=\"background:#2f6fd0\"></i>allocated</span>\
                  <span><i class=\"sw\" style=\"background:#8a94a6\"></i>reserved</span></div>\n",
    );
}

/// The page's text as a person reads it, one block per line, with the
/// volatile figures (class `vol`) shown as `…`, `<style>` and the tooltips
/// of SVG shapes (`<title>` inside `<svg>`) left out: the content an insta
/// snapshot can hold.
pub fn text_content(html: &str) -> String {
    const BLOCK: &[&str] = &[
        "p", "div", "h1", "h2", "h3", "tr", "li", "section", "header", "nav", "table", "svg", "g", "text", "ol",
        "title", "main",
    ];
    let mut out = String::new();
    let mut line = String::new();
    let mut rest = html;
    let mut svg_depth = 0usize;
    // While skipping: the tag whose end ends the skip, and how deep in it we are.
    let mut skip: Option<(String, usize)> = None;
    let flush = |line: &mut String, out: &mut String| {
        let t = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !t.is_empty() {
            out.push_str(&t);
            out.push('\n');
        }
        line.clear();
    };
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if skip.is_none() {
                line.push_str(&decode(rest));
            }
            break;
        };
        if skip.is_none() {
            line.push_str(&decode(&rest[..lt]));
        }
        let Some(gt) = rest[lt..].find('>') else { break };
        let tag = &rest[lt + 1..lt + gt];
        rest = &rest[lt + gt + 1..];
        if tag.starts_with('!') {
            continue;
        }
        let closing = tag.starts_with('/');
        let self_closing = tag.ends_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some((skip_name, depth)) = &mut skip {
            if *skip_name == name && !self_closing {
                if closing {
                    *depth -= 1;
                    if *depth == 0 {
                        skip = None;
                    }
                } else {
                    *depth += 1;
                }
            }
            continue;
        }
        if name == "svg" && !self_closing {
            if closing {
                svg_depth = svg_depth.saturating_sub(1);
            } else {
                svg_depth += 1;
            }
        }
        if !closing && !self_closing {
            let hidden = name == "style" || (name == "title" && svg_depth > 0);
            let volatile = tag.contains("class=\"vol\"");
            if hidden || volatile {
                if volatile {
                    line.push('…');
                }
                skip = Some((name, 1));
                continue;
            }
        }
        if name == "td" || name == "th" {
            if closing {
                line.push_str(" | ");
            }
        } else if (name == "span" || name == "a") && closing {
            // Legend entries and navigation links sit side by side.
            line.push(' ');
        } else if BLOCK.contains(&name.as_str()) {
            flush(&mut line, &mut out);
        }
    }
    flush(&mut line, &mut out);
    out
}

fn decode(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use namespace_cleaner::{Chain, WhosRow};
    use obmalloc::PoolView;

    fn sample(t_us: u64, kind: SampleKind, rss: u64, in_use: u64) -> Sample {
        Sample { t_us, kind, rss, bytes_in_use: in_use, bytes_reserved: in_use * 2 }
    }

    fn data() -> ReportData {
        let pool = |fill, n| PoolView { fill, class: 3, block_size: 32, blocks_in_use: n, capacity: 512 };
        ReportData {
            version: "0.1.0".into(),
            pool_bytes: 16384,
            stats: Stats { bytes_in_use: 4096, arenas_current: 1, ..Stats::default() },
            samples: vec![
                sample(10, SampleKind::Mark("start <here>".into()), 1 << 20, 0),
                sample(20, SampleKind::Collection(0), 2 << 20, 100),
                sample(30, SampleKind::Mark("built".into()), 3 << 20, 1 << 20),
                sample(40, SampleKind::Now, 1 << 20, 0),
            ],
            samples_dropped: 0,
            arenas: vec![ArenaView {
                base: 0x7f00_0000_0000,
                pools: vec![
                    pool(PoolFill::Used, 100),
                    pool(PoolFill::Full, 512),
                    pool(PoolFill::Empty, 0),
                    pool(PoolFill::Released, 0),
                    pool(PoolFill::Untouched, 0),
                ],
            }],
            classes: vec![ClassStats { class: 3, size: 32, pools: 2, blocks_in_use: 612, available_blocks: 412 }],
            gc: GcData {
                enabled: true,
                thresholds: [700, 10, 10],
                collections: vec![CollectionRecord { number: 1, generation: 2, found: 3, duration_ns: 1500 }],
                collections_total: 1,
                ..GcData::default()
            },
            whos: Some(Recorded {
                namespace: "main".into(),
                after_mark: Some("built".into()),
                value: Whos {
                    rows: vec![WhosRow { name: "a".into(), type_name: "list".into(), bytes: 2048, data: "n=3".into() }],
                    total_bytes: 2048,
                    total_objects: 4,
                },
            }),
            why: Some(Recorded {
                namespace: "main".into(),
                after_mark: None,
                value: WhyAlive {
                    label: "'c' in namespace 'main' (dict at 0x1234, reference count 3)".into(),
                    name: "c".into(),
                    immortal: false,
                    chains: vec![
                        Chain { root: "1 reference from outside any object".into(), steps: vec![] },
                        Chain { root: "namespace 'main': keep".into(), steps: vec!["[0]".into()] },
                    ],
                    total: 2,
                },
            }),
            gpu: None,
        }
    }

    #[test]
    fn every_section_is_there_once_with_one_mark_group_per_mark() {
        let page = render(&data());
        for id in ["timeline", "arenas", "size-classes", "gc", "whos", "why-alive", "gpu"] {
            assert_eq!(page.matches(&format!("<section id=\"{id}\">")).count(), 1, "{id}");
        }
        assert_eq!(page.matches("<g class=\"mark\"").count(), 2);
        assert!(page.contains("data-label=\"start &lt;here&gt;\""), "labels are escaped");
        assert_eq!(page.matches("class=\"gc-point\"").count(), 1);
        assert!(!page.contains("<script"), "no script");
        assert!(!page.contains("http://") && !page.contains("https://"), "nothing fetched");
        for class in ["pool used", "pool full", "pool empty", "pool released", "pool untouched"] {
            assert_eq!(page.matches(&format!("class=\"{class}\"")).count(), 1, "{class}");
        }
        assert!(page.contains("No GPU cache was given"));
    }

    #[test]
    fn the_text_hides_volatile_figures_styles_and_tooltips() {
        let text = text_content(&render(&data()));
        assert!(!text.contains("0x7f0000000000"), "{text}");
        assert!(!text.contains("0x1234"), "{text}");
        assert!(!text.contains("font:"), "no CSS: {text}");
        assert!(!text.contains("32 B blocks: 100 of 512"), "no tooltip: {text}");
        assert!(text.contains("start <here>"), "{text}");
        assert!(text.contains("namespace 'main': keep[0]"), "{text}");
        assert!(text.contains("Memory over the run"));
    }

    #[test]
    fn the_gpu_history_replays_to_allocated_and_reserved() {
        let e = |action, size| TraceEntry { action, addr: 0, size, stream: 0, time_us: 0 };
        let history = [
            e(Action::SegmentAlloc, 2 << 20),
            e(Action::Alloc, 512),
            e(Action::FreeRequested, 512),
            e(Action::FreeCompleted, 512),
            e(Action::SegmentFree, 2 << 20),
        ];
        assert_eq!(replay(&history), vec![(0, 0), (0, 2 << 20), (512, 2 << 20), (0, 2 << 20), (0, 0)]);
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
        assert_eq!(decode(&escape("<&'\">")), "<&'\">");
    }
}

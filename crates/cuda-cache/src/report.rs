//! The reports, in PyTorch's formats: memory_stats' flat keys,
//! memory_summary's table, memory_snapshot's JSON. One formatter each,
//! snapshot-tested.

use std::fmt::Write;

use crate::backend::Stream;
use crate::device::SegmentView;
use crate::history::{Action, TraceEntry};
use crate::policy::{PoolKind, ROUNDUP_INTERVALS, UNLIMITED_SPLIT};
use crate::stats::{DeviceStats, Stat, StatType};

fn stat_fields(s: &Stat) -> [(&'static str, i64); 4] {
    [("current", s.current), ("peak", s.peak), ("allocated", s.allocated), ("freed", s.freed)]
}

/// torch.cuda.memory_stats(): the nested dict of `_cuda_memoryStats`
/// flattened with '.', sorted by key.
pub fn flat_stats(stats: &DeviceStats) -> Vec<(String, i64)> {
    let mut out = vec![
        ("num_alloc_retries".to_string(), stats.num_alloc_retries),
        ("num_ooms".to_string(), stats.num_ooms),
        ("max_split_size".to_string(), stats.max_split_size),
        ("num_sync_all_streams".to_string(), stats.num_sync_all_streams),
        ("num_device_alloc".to_string(), stats.num_device_alloc),
        ("num_device_free".to_string(), stats.num_device_free),
    ];
    for (name, array) in stats.named_arrays() {
        for (t, type_name) in StatType::ALL {
            for (field, v) in stat_fields(array.get(t)) {
                out.push((format!("{name}.{type_name}.{field}"), v));
            }
        }
    }
    for (name, stat) in
        [("oversize_allocations", &stats.oversize_allocations), ("oversize_segments", &stats.oversize_segments)]
    {
        for (field, v) in stat_fields(stat) {
            out.push((format!("{name}.{field}"), v));
        }
    }
    out.sort();
    out
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The flat stats as a JSON object, one key per line, in sorted order.
pub fn stats_json(flat: &[(String, i64)]) -> String {
    let mut out = String::from("{\n");
    for (i, (k, v)) in flat.iter().enumerate() {
        let comma = if i + 1 < flat.len() { "," } else { "" };
        let _ = writeln!(out, "  {}: {v}{comma}", json_str(k));
    }
    out.push('}');
    out
}

/// memory_summary's `_format_size`: the unit steps up while the column's
/// "all" value is >= 768 KiB of the current unit.
fn format_size_cell(mut size: i64, mut pref: i64) -> String {
    const UNITS: [&str; 6] = ["B  ", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if pref < 768 * 1024 {
            break;
        }
        unit = next;
        size = size.div_euclid(1024);
        pref /= 1024;
    }
    format!("{size:6} {unit}")
}

/// memory_summary's `_format_count`: K and M past 750,000.
fn format_count_cell(mut count: i64, mut pref: i64) -> String {
    const UNITS: [&str; 3] = [" ", "K", "M"];
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if pref < 750 * 1000 {
            break;
        }
        unit = next;
        count = count.div_euclid(1000);
        pref /= 1000;
    }
    format!("{count:7} {unit} ")
}

/// torch.cuda.memory_summary(device, abbreviated), character for character.
pub fn summary(device: usize, flat: &[(String, i64)], abbreviated: bool) -> String {
    let get = |key: &str| flat.iter().find(|(k, _)| k == key).map(|(_, v)| *v).unwrap_or(0);
    let mut lines: Vec<String> = Vec::new();
    lines.push("=".repeat(75));
    lines.push(format!(" {:16} PyTorch CUDA memory summary, device ID {device:<17} ", ""));
    lines.push("-".repeat(75));
    lines.push(format!(
        "  {:9} CUDA OOMs: {:<12} | {:6} cudaMalloc retries: {:<8}  ",
        "",
        get("num_ooms"),
        "",
        get("num_alloc_retries")
    ));
    lines.push("=".repeat(75));
    lines.push("        Metric         | Cur Usage  | Peak Usage | Tot Alloc  | Tot Freed  ".to_string());

    type Formatter = fn(i64, i64) -> String;
    let metrics: [(&str, &str, Formatter); 9] = [
        ("allocated_bytes", "Allocated memory", format_size_cell),
        ("active_bytes", "Active memory", format_size_cell),
        ("requested_bytes", "Requested memory", format_size_cell),
        ("reserved_bytes", "GPU reserved memory", format_size_cell),
        ("inactive_split_bytes", "Non-releasable memory", format_size_cell),
        ("allocation", "Allocations", format_count_cell),
        ("active", "Active allocs", format_count_cell),
        ("segment", "GPU reserved segments", format_count_cell),
        ("inactive_split", "Non-releasable allocs", format_count_cell),
    ];
    for (key, name, fmt) in metrics {
        lines.push("-".repeat(75));
        let mut rows = vec![("all", name)];
        if !abbreviated {
            rows.push(("large_pool", "      from large pool"));
            rows.push(("small_pool", "      from small pool"));
        }
        let pref = |field: &str| get(&format!("{key}.all.{field}"));
        for (sub, label) in rows {
            let v = |field: &str| get(&format!("{key}.{sub}.{field}"));
            lines.push(format!(
                " {label:<21} | {} | {} | {} | {} ",
                fmt(v("current"), pref("current")),
                fmt(v("peak"), pref("peak")),
                fmt(v("allocated"), pref("allocated")),
                fmt(v("freed"), pref("freed")),
            ));
        }
    }
    for (key, name) in
        [("oversize_allocations", "Oversize allocations"), ("oversize_segments", "Oversize GPU segments")]
    {
        lines.push("-".repeat(75));
        let v = |field: &str| get(&format!("{key}.{field}"));
        let cell = |field: &str| format_count_cell(v(field), v(field));
        lines.push(format!(
            " {name:<21} | {} | {} | {} | {} ",
            cell("current"),
            cell("peak"),
            cell("allocated"),
            cell("freed")
        ));
    }
    lines.push("=".repeat(75));
    format!("|{}|\n", lines.join("|\n|"))
}

/// The allocator settings a snapshot reports.
pub(crate) struct Settings {
    pub max_split_size: u64,
    pub garbage_collection_threshold: f64,
    pub roundup_power2_divisions: [u32; ROUNDUP_INTERVALS],
}

fn stream_value(s: Stream) -> i64 {
    s as i64
}

fn trace_json(e: &TraceEntry) -> String {
    let addr_key = if e.action == Action::Oom { "device_free" } else { "addr" };
    format!(
        "{{\"action\": {}, \"{addr_key}\": {}, \"size\": {}, \"stream\": {}, \"time_us\": {}, \"frames\": []}}",
        json_str(e.action.name()),
        e.addr,
        e.size,
        stream_value(e.stream),
        e.time_us
    )
}

fn segment_json(device: usize, seg: &SegmentView) -> String {
    let (mut allocated, mut active, mut requested) = (0u64, 0u64, 0u64);
    let mut blocks = Vec::new();
    let mut address = seg.address;
    for b in &seg.blocks {
        if b.allocated {
            allocated += b.size;
        }
        if b.active {
            active += b.size;
            requested += b.requested;
        }
        let state = if b.allocated {
            "active_allocated"
        } else if b.active {
            "active_pending_free"
        } else {
            "inactive"
        };
        blocks.push(format!(
            "{{\"address\": {address}, \"size\": {}, \"requested_size\": {}, \"state\": \"{state}\", \"frames\": []}}",
            b.size, b.requested
        ));
        address += b.size;
    }
    let segment_type = match seg.pool {
        PoolKind::Large => "large",
        PoolKind::Small => "small",
    };
    format!(
        "{{\"device\": {device}, \"address\": {}, \"total_size\": {}, \"allocated_size\": {allocated}, \
         \"active_size\": {active}, \"requested_size\": {requested}, \"stream\": {}, \"segment_type\": \
         \"{segment_type}\", \"segment_pool_id\": [0, 0], \"is_expandable\": false, \"frames\": [], \"blocks\": [\n      {}\n    ]}}",
        seg.address,
        seg.total_size,
        stream_value(seg.stream),
        blocks.join(",\n      ")
    )
}

/// torch.cuda.memory_snapshot(): segments of every device in address
/// order, one trace list per device, and the allocator's settings.
pub(crate) fn snapshot_json(per_device: &[(Vec<SegmentView>, Vec<TraceEntry>)], settings: Option<&Settings>) -> String {
    let segments: Vec<String> =
        per_device.iter().enumerate().flat_map(|(d, (segs, _))| segs.iter().map(move |s| segment_json(d, s))).collect();
    let traces: Vec<String> = per_device
        .iter()
        .map(|(_, entries)| {
            if entries.is_empty() {
                "[]".to_string()
            } else {
                let items: Vec<String> = entries.iter().map(trace_json).collect();
                format!("[\n      {}\n    ]", items.join(",\n      "))
            }
        })
        .collect();
    let settings = match settings {
        Some(s) => {
            let max_split = if s.max_split_size == UNLIMITED_SPLIT { -1 } else { s.max_split_size as i64 };
            let divisions: Vec<String> = s
                .roundup_power2_divisions
                .iter()
                .enumerate()
                .map(|(i, d)| format!("\"{}\": {d}", 1u64 << (20 + i)))
                .collect();
            format!(
                "{{\"max_split_size\": {max_split}, \"garbage_collection_threshold\": {}, \"expandable_segments\": \
                 false, \"roundup_power2_divisions\": {{{}}}}}",
                s.garbage_collection_threshold,
                divisions.join(", ")
            )
        }
        None => "{}".to_string(),
    };
    let list = |items: &[String]| {
        if items.is_empty() {
            "[]".to_string()
        } else {
            format!("[\n    {}\n  ]", items.join(",\n    "))
        }
    };
    format!(
        "{{\n  \"segments\": {},\n  \"device_traces\": {},\n  \"allocator_settings\": {settings}\n}}",
        list(&segments),
        list(&traces)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_cells_step_units_on_the_all_value() {
        assert_eq!(format_size_cell(0, 0), "     0 B  ");
        assert_eq!(format_size_cell(3 << 30, 3 << 30), "  3072 MiB");
        assert_eq!(format_size_cell(512, 2 << 20), "     0 KiB");
        assert_eq!(format_size_cell(3 << 20, 3 << 30), "     3 MiB");
        assert_eq!(format_size_cell(786431, 786431), "786431 B  ");
        assert_eq!(format_size_cell(786432, 786432), "   768 KiB");
        assert_eq!(format_count_cell(12, 12), "     12   ");
        assert_eq!(format_count_cell(750_000, 750_000), "    750 K ");
    }

    #[test]
    fn memory_stats_has_pytorchs_122_sorted_keys() {
        let flat = flat_stats(&DeviceStats::new(UNLIMITED_SPLIT));
        assert_eq!(flat.len(), 6 + 9 * 3 * 4 + 2 * 4);
        assert!(flat.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(flat[0].0, "active.all.allocated");
        assert!(flat.iter().any(|(k, v)| k == "max_split_size" && *v == -1));
        assert!(flat.iter().any(|(k, _)| k == "oversize_segments.peak"));
        assert!(flat.iter().any(|(k, _)| k == "allocation.large_pool.peak"));
    }
}

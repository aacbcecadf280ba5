//! The HTML memory report through the C ABI: a small version of the seed's
//! walk (build, %whos, why_alive, del, collect) with marks at each step and
//! a simulated GPU cache, then the page's text content as an insta
//! snapshot. The figures that change from run to run (RSS, times, pauses,
//! addresses) are marked volatile by the page and shown as `…` by
//! `text_content`, so the snapshot is deterministic.

use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use pymem::alloc::pymem_string_free;
use pymem::cuda::{
    pymem_cuda_cache_free, pymem_cuda_cache_new, pymem_cuda_config_init, pymem_cuda_empty_cache, pymem_cuda_free,
    pymem_cuda_malloc, pymem_cuda_record_history, CudaCache, CudaConfig, PYMEM_CUDA_BACKEND_SIMULATED,
};
use pymem::gc::pymem_gc_collect;
use pymem::ns::{pymem_ns_del, pymem_ns_new, pymem_ns_set, pymem_ns_whos, pymem_ns_why_alive};
use pymem::object::{
    pymem_decref, pymem_dict_new, pymem_dict_set, pymem_int_new, pymem_list_append, pymem_list_new, pymem_str_new,
    Object,
};
use pymem::report::html::text_content;
use pymem::report::{pymem_report_html, pymem_report_mark};
use pymem::runtime::{pymem_last_error, pymem_runtime_free, pymem_runtime_new};
use pymem::{Runtime, Status};

fn ok(st: Status, what: &str, rt: *mut Runtime) {
    if st != Status::PYMEM_OK {
        // SAFETY: pymem_last_error returns a valid C string.
        let msg = unsafe { CStr::from_ptr(pymem_last_error(rt)) }.to_string_lossy().into_owned();
        panic!("{what}: {st:?}: {msg}");
    }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// `pymem_report_html` as a Rust string.
fn html(rt: *mut Runtime, cuda: *const CudaCache) -> String {
    let mut out: *mut c_char = null_mut();
    // SAFETY: a live runtime and cache; `out` is writable.
    ok(unsafe { pymem_report_html(rt, cuda, &mut out) }, "pymem_report_html", rt);
    // SAFETY: a string pymem handed out, freed once.
    let page = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_string();
    // SAFETY: handed out by pymem_report_html, freed once.
    unsafe { pymem_string_free(out) };
    page
}

fn mark(rt: *mut Runtime, label: &str) {
    // SAFETY: a live runtime and a C string.
    ok(unsafe { pymem_report_mark(rt, c(label).as_ptr()) }, "pymem_report_mark", rt);
}

/// The walk: a namespace with 1000 ints in a list and a cycle, the steps
/// marked, %whos and why_alive asked, the list deleted, the cycle
/// collected; a GPU cache with its history on.
fn walk() -> (String, Vec<String>) {
    let labels: Vec<String> =
        ["start", "built a and c", "del a", "del c", "gc.collect()"].iter().map(|s| s.to_string()).collect();
    let mut rt: *mut Runtime = null_mut();
    // SAFETY: every call below gets live handles and writable out-pointers.
    unsafe {
        ok(pymem_runtime_new(null(), &mut rt), "pymem_runtime_new", null_mut());
        let mut ns: *mut Object = null_mut();
        ok(pymem_ns_new(rt, c("main").as_ptr(), 0, &mut ns), "ns_new", rt);
        mark(rt, &labels[0]);
        let mut a: *mut Object = null_mut();
        ok(pymem_list_new(rt, &mut a), "list_new", rt);
        for i in 0..1000 {
            let mut v: *mut Object = null_mut();
            ok(pymem_int_new(rt, 1000 + i, &mut v), "int_new", rt);
            ok(pymem_list_append(rt, a, v), "append", rt);
            ok(pymem_decref(rt, v), "decref", rt);
        }
        ok(pymem_ns_set(rt, ns, c("a").as_ptr(), a), "ns_set", rt);
        ok(pymem_decref(rt, a), "decref", rt);
        let mut d: *mut Object = null_mut();
        let mut key: *mut Object = null_mut();
        ok(pymem_dict_new(rt, &mut d), "dict_new", rt);
        ok(pymem_str_new(rt, c("self").as_ptr(), 4, &mut key), "str_new", rt);
        ok(pymem_dict_set(rt, d, key, d), "dict_set", rt);
        ok(pymem_decref(rt, key), "decref", rt);
        ok(pymem_ns_set(rt, ns, c("c").as_ptr(), d), "ns_set", rt);
        let mut keep: *mut Object = null_mut();
        ok(pymem_list_new(rt, &mut keep), "list_new", rt);
        ok(pymem_list_append(rt, keep, d), "append", rt);
        ok(pymem_ns_set(rt, ns, c("_keep").as_ptr(), keep), "ns_set", rt);
        ok(pymem_decref(rt, keep), "decref", rt);
        ok(pymem_decref(rt, d), "decref", rt);
        mark(rt, &labels[1]);
        let mut text: *mut c_char = null_mut();
        ok(pymem_ns_whos(rt, ns, &mut text), "whos", rt);
        pymem_string_free(text);
        ok(pymem_ns_why_alive(rt, ns, c("c").as_ptr(), &mut text), "why_alive", rt);
        pymem_string_free(text);
        ok(pymem_ns_del(rt, ns, c("a").as_ptr()), "del a", rt);
        mark(rt, &labels[2]);
        ok(pymem_ns_del(rt, ns, c("_keep").as_ptr()), "del _keep", rt);
        ok(pymem_ns_del(rt, ns, c("c").as_ptr()), "del c", rt);
        mark(rt, &labels[3]);
        let mut found = 0i64;
        ok(pymem_gc_collect(rt, 2, &mut found), "gc_collect", rt);
        assert_eq!(found, 1, "the dict in a cycle with itself");
        mark(rt, &labels[4]);

        let mut cfg: CudaConfig = std::mem::zeroed();
        pymem_cuda_config_init(&mut cfg);
        cfg.backend = PYMEM_CUDA_BACKEND_SIMULATED;
        let mut gpu: *mut CudaCache = null_mut();
        assert_eq!(pymem_cuda_cache_new(&cfg, &mut gpu), Status::PYMEM_OK);
        assert_eq!(pymem_cuda_record_history(gpu, 1, 1000), Status::PYMEM_OK);
        let (mut x, mut y) = (0u64, 0u64);
        assert_eq!(pymem_cuda_malloc(gpu, 0, 1 << 30, 0, &mut x), Status::PYMEM_OK);
        assert_eq!(pymem_cuda_malloc(gpu, 0, 4000, 0, &mut y), Status::PYMEM_OK);
        assert_eq!(pymem_cuda_free(gpu, x), Status::PYMEM_OK);
        assert_eq!(pymem_cuda_empty_cache(gpu), Status::PYMEM_OK);

        let page = html(rt, gpu);
        assert_eq!(pymem_cuda_cache_free(gpu), Status::PYMEM_OK);
        ok(pymem_decref(rt, ns), "decref ns", rt);
        assert_eq!(pymem_runtime_free(rt), Status::PYMEM_OK);
        (page, labels)
    }
}

#[test]
fn the_page_has_every_section_one_mark_per_step_and_no_script() {
    let (page, labels) = walk();
    for id in ["timeline", "arenas", "size-classes", "gc", "whos", "why-alive", "gpu"] {
        assert_eq!(page.matches(&format!("<section id=\"{id}\">")).count(), 1, "section {id}");
    }
    let marked: Vec<&str> = page
        .match_indices("<g class=\"mark\" data-label=\"")
        .map(|(i, m)| {
            let rest = &page[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(marked, labels);
    assert!(!page.contains("<script"));
    assert!(page.contains("namespace &#39;main&#39;: _keep"), "the why_alive chain through _keep");
    assert!(page.contains("class=\"blk allocated\""), "the small GPU block is drawn");
}

#[test]
fn the_page_text_is_stable() {
    let (page, _) = walk();
    insta::assert_snapshot!(text_content(&page));
}

#[test]
fn bad_input_changes_nothing() {
    let mut rt: *mut Runtime = null_mut();
    // SAFETY: NULL and live handles as each case needs; out-pointers writable.
    unsafe {
        assert_eq!(pymem_report_mark(null_mut(), c("x").as_ptr()), Status::PYMEM_ERR_NULL_ARGUMENT);
        let mut out: *mut c_char = null_mut();
        assert_eq!(pymem_report_html(null_mut(), null(), &mut out), Status::PYMEM_ERR_NULL_ARGUMENT);
        ok(pymem_runtime_new(null(), &mut rt), "pymem_runtime_new", null_mut());
        let before = html(rt, null());
        assert_eq!(pymem_report_mark(rt, null()), Status::PYMEM_ERR_NULL_ARGUMENT);
        assert_eq!(pymem_report_mark(rt, c("").as_ptr()), Status::PYMEM_ERR_INVALID_ARGUMENT);
        let long = "x".repeat(201);
        assert_eq!(pymem_report_mark(rt, c(&long).as_ptr()), Status::PYMEM_ERR_INVALID_ARGUMENT);
        let bad_utf8 = [0xffu8, 0xfe, 0];
        assert_eq!(pymem_report_mark(rt, bad_utf8.as_ptr().cast()), Status::PYMEM_ERR_INVALID_ARGUMENT);
        assert_eq!(pymem_report_html(rt, null(), null_mut()), Status::PYMEM_ERR_NULL_ARGUMENT);
        assert!(out.is_null(), "out untouched on failure");
        let after = html(rt, null());
        assert_eq!(after.matches("<g class=\"mark\"").count(), 0, "no mark was added");
        assert_eq!(text_content(&before), text_content(&after));
        for i in 0..1024 {
            mark(rt, &format!("m{i}"));
        }
        assert_eq!(pymem_report_mark(rt, c("one too many").as_ptr()), Status::PYMEM_ERR_INVALID_ARGUMENT);
        assert_eq!(html(rt, null()).matches("<g class=\"mark\"").count(), 1024);
        assert_eq!(pymem_runtime_free(rt), Status::PYMEM_OK);
    }
}

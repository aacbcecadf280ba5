//! A call's status and message survive the host callbacks it runs: calls
//! the host makes inside a callback report there and are forgotten when it
//! returns (found by the fuzzer: a `pymem_list_insert` refused with
//! PYMEM_ERR_TYPE ran an automatic collection whose finalizer got
//! PYMEM_ERR_BUSY, and `pymem_last_status` then said BUSY).

use std::ffi::{c_char, c_void, CStr};
use std::ptr;

use pymem::gc::{pymem_gc_add_callback, pymem_gc_collect, GcInfo};
use pymem::object::{pymem_decref, pymem_dict_new, pymem_list_append};
use pymem::runtime::{pymem_config_init, pymem_last_error, pymem_last_status, pymem_runtime_free, pymem_runtime_new};
use pymem::{Config, Runtime, Status};

/// A gc callback whose own call fails: `pymem_runtime_free` is refused
/// inside a callback. It records what it saw in the slot meanwhile.
unsafe extern "C" fn failing_callback(rt: *mut Runtime, _phase: *const c_char, _info: *const GcInfo, ud: *mut c_void) {
    // SAFETY: `ud` is the test's `Vec<Status>`, alive during the collection.
    let seen = unsafe { &mut *(ud as *mut Vec<Status>) };
    // SAFETY: the live runtime calling us.
    unsafe {
        seen.push(pymem_last_status(rt));
        seen.push(pymem_runtime_free(rt));
        seen.push(pymem_last_status(rt));
    }
}

#[test]
fn a_failure_inside_a_callback_does_not_replace_the_callers() {
    let mut cfg = std::mem::MaybeUninit::<Config>::zeroed();
    // SAFETY: init fills every field.
    let cfg = unsafe {
        pymem_config_init(cfg.as_mut_ptr());
        cfg.assume_init()
    };
    let mut rt = ptr::null_mut();
    // SAFETY: valid config and out.
    assert_eq!(unsafe { pymem_runtime_new(&cfg, &mut rt) }, Status::PYMEM_OK);
    let mut seen: Vec<Status> = Vec::new();
    let mut id = 0;
    let mut d = ptr::null_mut();
    // SAFETY: live runtime, writable outs, `seen` outlives the runtime's use of it.
    unsafe {
        let ud = &mut seen as *mut Vec<Status> as *mut c_void;
        assert_eq!(pymem_gc_add_callback(rt, Some(failing_callback), ud, &mut id), Status::PYMEM_OK);
        assert_eq!(pymem_dict_new(rt, &mut d), Status::PYMEM_OK);
        // A failed call: its status and message are in the runtime's slot.
        assert_eq!(pymem_list_append(rt, d, d), Status::PYMEM_ERR_TYPE);
        let message = CStr::from_ptr(pymem_last_error(rt)).to_owned();
        // A call that succeeds runs the callback, whose own call fails.
        let mut found = 0;
        assert_eq!(pymem_gc_collect(rt, 2, &mut found), Status::PYMEM_OK);
        // Inside: a clean slot, then the callback's own failure.
        assert_eq!(
            seen[..3],
            [Status::PYMEM_OK, Status::PYMEM_ERR_BUSY, Status::PYMEM_ERR_BUSY],
            "what the callback saw"
        );
        // After: the caller's failure, as it was.
        assert_eq!(pymem_last_status(rt), Status::PYMEM_ERR_TYPE);
        assert_eq!(CStr::from_ptr(pymem_last_error(rt)), message.as_c_str());
        assert_eq!(pymem_decref(rt, d), Status::PYMEM_OK);
        assert_eq!(pymem_runtime_free(rt), Status::PYMEM_OK);
    }
}

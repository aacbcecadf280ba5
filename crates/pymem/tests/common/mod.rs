//! A runtime for the facade's integration tests that call the C ABI
//! directly (`list_lifecycle`, `uncached_refcounts`): made with a changed
//! default config, freed on drop, and the calls those tests share. Each
//! test binary uses part of it.
#![allow(dead_code)]

use std::ptr;

use pymem::alloc::pymem_alloc_get_stats;
use pymem::object::{
    pymem_clear_free_lists, pymem_decref, pymem_float_new, pymem_int_new, pymem_list_append, pymem_list_new,
    pymem_refcount, Object,
};
use pymem::runtime::{pymem_config_init, pymem_runtime_free, pymem_runtime_new};
use pymem::{AllocStats, Config, Runtime, Status};

pub struct Rt(pub *mut Runtime);

impl Rt {
    /// A runtime with the default config as `change` leaves it.
    pub fn new(change: impl FnOnce(&mut Config)) -> Rt {
        let mut cfg = std::mem::MaybeUninit::<Config>::zeroed();
        // SAFETY: init fills every field.
        let mut cfg = unsafe {
            pymem_config_init(cfg.as_mut_ptr());
            cfg.assume_init()
        };
        change(&mut cfg);
        let mut rt = ptr::null_mut();
        // SAFETY: valid config and out.
        assert_eq!(unsafe { pymem_runtime_new(&cfg, &mut rt) }, Status::PYMEM_OK);
        Rt(rt)
    }

    pub fn ok(&self, st: Status) {
        assert_eq!(st, Status::PYMEM_OK);
    }

    /// The object a constructor call writes out.
    pub fn obj(&self, make: impl FnOnce(*mut *mut Object) -> Status) -> *mut Object {
        let mut o = ptr::null_mut();
        self.ok(make(&mut o));
        o
    }

    pub fn int(&self, v: i64) -> *mut Object {
        // SAFETY: live runtime, writable out.
        self.obj(|o| unsafe { pymem_int_new(self.0, v, o) })
    }

    pub fn float(&self, v: f64) -> *mut Object {
        // SAFETY: live runtime, writable out.
        self.obj(|o| unsafe { pymem_float_new(self.0, v, o) })
    }

    /// `list(items)`: a new list, the items appended in order.
    pub fn list(&self, items: &[*mut Object]) -> *mut Object {
        // SAFETY: live runtime, writable out.
        let l = self.obj(|o| unsafe { pymem_list_new(self.0, o) });
        for &item in items {
            // SAFETY: live runtime, list and item.
            self.ok(unsafe { pymem_list_append(self.0, l, item) });
        }
        l
    }

    pub fn refcount(&self, o: *mut Object) -> isize {
        let mut n = 0;
        // SAFETY: live runtime and object, writable out.
        self.ok(unsafe { pymem_refcount(self.0, o, &mut n) });
        n
    }

    pub fn decref(&self, o: *mut Object) -> Status {
        // SAFETY: live runtime; `o` is validated.
        unsafe { pymem_decref(self.0, o) }
    }

    pub fn stats(&self) -> AllocStats {
        let mut s = std::mem::MaybeUninit::<AllocStats>::zeroed();
        // SAFETY: live runtime, writable stats.
        unsafe {
            self.ok(pymem_alloc_get_stats(self.0, s.as_mut_ptr()));
            s.assume_init()
        }
    }

    pub fn clear_free_lists(&self) {
        // SAFETY: live runtime.
        self.ok(unsafe { pymem_clear_free_lists(self.0) });
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        // SAFETY: the runtime is live and freed once.
        assert_eq!(unsafe { pymem_runtime_free(self.0) }, Status::PYMEM_OK);
    }
}

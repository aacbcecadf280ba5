//! A `std::sync::Mutex` that valgrind's helgrind can see.
//!
//! test-all runs the threaded C programs (ffi-tests/cuda_threads.c: eight
//! threads on one cache) under helgrind, which finds data races by tracking
//! the happens-before order that locks create. It knows pthread mutexes,
//! but Rust's `std::sync::Mutex` locks with atomics and the `futex` system
//! call, which helgrind does not understand: every access to the data a
//! mutex protects then looks like a race (a thousand reports for
//! cuda_threads). This wrapper tells helgrind about each lock and unlock
//! with its client requests `ANNOTATE_HAPPENS_AFTER` (after taking the
//! lock) and `ANNOTATE_HAPPENS_BEFORE` (before releasing it), keyed by the
//! mutex's address, which is exactly the order a mutex creates. Natively a
//! client request is five instructions that change nothing (valgrind's
//! "special instruction" sequence), so the cost is nil next to the lock.

use std::ops::{Deref, DerefMut};
use std::sync::{LockResult, PoisonError};

/// `std::sync::Mutex` plus helgrind annotations; same API for what the
/// crate uses (`new`, `lock`, poisoning).
pub struct Mutex<T> {
    inner: std::sync::Mutex<T>,
}

/// The guard of [`Mutex::lock`].
pub struct MutexGuard<'a, T> {
    guard: std::sync::MutexGuard<'a, T>,
    tag: usize,
}

impl<T> Mutex<T> {
    pub fn new(value: T) -> Mutex<T> {
        Mutex { inner: std::sync::Mutex::new(value) }
    }

    /// Locks, as `std::sync::Mutex::lock` (poisoned: `Err` with the guard).
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        let tag = self as *const Mutex<T> as usize;
        let (guard, poisoned) = match self.inner.lock() {
            Ok(guard) => (guard, false),
            Err(e) => (e.into_inner(), true),
        };
        helgrind::happens_after(tag);
        let guard = MutexGuard { guard, tag };
        if poisoned {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // Runs before the field `guard` is dropped, i.e. before the unlock.
        helgrind::happens_before(self.tag);
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// Valgrind client requests of helgrind (valgrind/helgrind.h).
mod helgrind {
    /// `_VG_USERREQ__HG_USERSO_SEND_PRE` and `_RECV_POST`: the values of
    /// valgrind's helgrind.h enum (an ABI valgrind keeps stable).
    const USERSO_SEND_PRE: usize = 0x4847_0121;
    const USERSO_RECV_POST: usize = 0x4847_0122;

    /// `ANNOTATE_HAPPENS_BEFORE(tag)`.
    #[inline(always)]
    pub(super) fn happens_before(tag: usize) {
        client_request(USERSO_SEND_PRE, tag);
    }

    /// `ANNOTATE_HAPPENS_AFTER(tag)`.
    #[inline(always)]
    pub(super) fn happens_after(tag: usize) {
        client_request(USERSO_RECV_POST, tag);
    }

    /// valgrind.h's `VALGRIND_DO_CLIENT_REQUEST` on x86-64: rax points at
    /// the request and its arguments, the result comes back in rdx.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[inline(always)]
    fn client_request(request: usize, arg: usize) {
        let args: [usize; 6] = [request, arg, 0, 0, 0, 0];
        // SAFETY: the "special instruction" sequence: rdi rotated by
        // 3 + 13 + 61 + 51 = 128 bits, so unchanged (declared clobbered
        // anyway), then `xchg rbx, rbx`, which changes nothing. Natively
        // that is all; under valgrind, its core recognises the sequence,
        // reads the six words at rax (alive for the whole statement) and
        // writes a result to rdx (declared clobbered). No stack is used.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") 0usize => _,
                inout("rdi") 0usize => _,
                options(nostack),
            );
        }
    }

    /// Elsewhere helgrind is not run: nothing to say.
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    #[inline(always)]
    fn client_request(_request: usize, _arg: usize) {}
}

#[cfg(test)]
mod tests {
    use super::Mutex;

    #[test]
    fn locks_from_threads_and_keeps_poisoning() {
        let m = std::sync::Arc::new(Mutex::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        *m.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 4000);
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _guard = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        let poisoned = m.lock();
        assert!(poisoned.is_err());
        assert_eq!(*poisoned.unwrap_or_else(|e| e.into_inner()), 4000);
    }
}

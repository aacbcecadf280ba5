/*
 * pymem.hpp: a header-only C++17 layer over pymem.h.
 *
 * - Statuses become exceptions: every failed call throws pymem::Error,
 *   which carries the pymem_status (code()) and the library's message.
 * - Handles become owning values: pymem::Runtime frees its runtime,
 *   pymem::Block its memory block. Both are move-only.
 * - Nothing here adds state: each method is one C call (plus, on failure,
 *   reading the message), so the C rules hold unchanged. In particular the
 *   thread rule: a Runtime and its Blocks are used on the thread that owns
 *   the runtime (see pymem.h); calls from another thread throw Error with
 *   PYMEM_ERR_BUSY.
 *
 * Exceptions and callbacks: an exception never crosses into pymem. The C
 * library is not exception-safe across its frames, so any host callback
 * this header installs (traverse, clear, finalize, dealloc, native
 * functions, gc and weakref callbacks, as later parts of the API add them)
 * catches every exception in its trampoline and turns it into a status
 * before returning to C. A callback written by hand against pymem.h must do
 * the same. Destructors never throw either: they report nothing and leave
 * the rest to pymem_runtime_free, which reclaims every block.
 *
 * Requires only the C++17 standard library and pymem.h; link with -lpymem.
 */
#ifndef PYMEM_HPP
#define PYMEM_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "pymem.h"

namespace pymem {

/* ------------------------------------------------------------------------ */
/* Errors */

/// A failed pymem call: the status and the library's message.
/// what() is "PYMEM_ERR_NAME: message"; message() is the message alone.
/// Copying never throws (the text lives in std::runtime_error's storage).
class Error : public std::runtime_error {
public:
    Error(pymem_status code, const std::string &message)
        : std::runtime_error(std::string(pymem_status_name(static_cast<int32_t>(code))) + ": " +
                             message),
          code_(code),
          prefix_(std::strlen(pymem_status_name(static_cast<int32_t>(code))) + 2) {}

    /// The status of the failed call (never PYMEM_OK).
    pymem_status code() const noexcept { return code_; }

    /// The status's name, e.g. "PYMEM_ERR_DOUBLE_FREE".
    const char *name() const noexcept { return pymem_status_name(static_cast<int32_t>(code_)); }

    /// The library's message, without the status name.
    const char *message() const noexcept { return what() + prefix_; }

private:
    pymem_status code_;
    std::size_t prefix_;
};

/// Throws Error when `status` is not PYMEM_OK, with the message of the
/// failed call: pymem_last_error(rt) (rt may be NULL: the calling thread's
/// message, for calls that had no usable runtime).
inline void check(pymem_status status, const pymem_runtime *rt) {
    if (status != PYMEM_OK) {
        throw Error(status, pymem_last_error(rt));
    }
}

namespace detail {

/// Frees a string that pymem handed out through `char **out`.
struct StringFree {
    void operator()(char *s) const noexcept { pymem_string_free(s); }
};
using unique_cstring = std::unique_ptr<char, StringFree>;

/// Throws the failure of a pymem_malloc/calloc/realloc that returned NULL:
/// pymem_last_status and pymem_last_error give its status and message (for
/// the runtime's owner, or the calling thread's own slot otherwise).
[[noreturn]] inline void throw_null_result(pymem_runtime *rt) {
    throw Error(pymem_last_status(rt), pymem_last_error(rt));
}

}  // namespace detail

/* ------------------------------------------------------------------------ */
/* Runtime */

/// Owns a pymem_runtime. Move-only; the destructor frees the runtime and
/// every block still allocated in it (pymem_runtime_free).
///
/// Thread rule: the runtime belongs to the thread that constructed it, or
/// that last called attach(). Destroy it on that thread (the destructor
/// attaches a detached runtime first; if another thread holds it, the
/// destructor cannot free it and leaves it, since it must not throw).
///
/// The methods are const in the way std::unique_ptr::get is: they do not
/// change which runtime this object owns, though they change the runtime.
class Runtime {
public:
    /// A runtime with pymem_config_init's defaults, or with `cfg`.
    /// Throws Error (PYMEM_ERR_INVALID_ARGUMENT for a bad config).
    explicit Runtime(const std::optional<pymem_config> &cfg = std::nullopt) {
        pymem_runtime *rt = nullptr;
        check(pymem_runtime_new(cfg ? &*cfg : nullptr, &rt), nullptr);
        rt_ = rt;
    }

    /// Takes ownership of a runtime from pymem_runtime_new (NULL allowed).
    static Runtime adopt(pymem_runtime *rt) noexcept { return Runtime(rt, Adopt{}); }

    /// The defaults, as pymem_config_init gives them.
    static pymem_config default_config() noexcept {
        pymem_config cfg;
        pymem_config_init(&cfg);
        return cfg;
    }

    ~Runtime() { reset(); }

    Runtime(const Runtime &) = delete;
    Runtime &operator=(const Runtime &) = delete;
    Runtime(Runtime &&other) noexcept : rt_(std::exchange(other.rt_, nullptr)) {}
    Runtime &operator=(Runtime &&other) noexcept {
        if (this != &other) {
            reset();
            rt_ = std::exchange(other.rt_, nullptr);
        }
        return *this;
    }

    /// The handle, for C calls; NULL after a move or release().
    pymem_runtime *get() const noexcept { return rt_; }
    explicit operator bool() const noexcept { return rt_ != nullptr; }

    /// Gives up ownership: the caller frees it with pymem_runtime_free.
    pymem_runtime *release() noexcept { return std::exchange(rt_, nullptr); }

    /// Frees the runtime now (see the destructor); a no-op when empty.
    void reset() noexcept {
        if (rt_ != nullptr) {
            // PYMEM_OK when this thread owns it already or it was detached.
            (void)pymem_runtime_attach(rt_);
            (void)pymem_runtime_free(rt_);
            rt_ = nullptr;
        }
    }

    /// pymem_malloc: `n` bytes aligned to 16 (n == 0 gives a unique pointer).
    void *malloc(std::size_t n) const {
        void *p = pymem_malloc(rt_, n);
        if (p == nullptr) {
            detail::throw_null_result(rt_);
        }
        return p;
    }

    /// pymem_calloc: `count * size` zeroed bytes.
    void *calloc(std::size_t count, std::size_t size) const {
        void *p = pymem_calloc(rt_, count, size);
        if (p == nullptr) {
            detail::throw_null_result(rt_);
        }
        return p;
    }

    /// pymem_realloc. On failure throws and `p` stays allocated, unchanged.
    void *realloc(void *p, std::size_t n) const {
        void *q = pymem_realloc(rt_, p, n);
        if (q == nullptr) {
            detail::throw_null_result(rt_);
        }
        return q;
    }

    /// pymem_free (NULL is fine). Throws for a pointer that is not a live
    /// block of this runtime (PYMEM_ERR_INVALID_POINTER,
    /// PYMEM_ERR_DOUBLE_FREE) or whose guard bytes are damaged
    /// (PYMEM_ERR_HEAP_CORRUPTION; the block stays allocated).
    void free(void *p) const { check(pymem_free(rt_, p), rt_); }

    /// pymem_alloc_get_stats.
    pymem_alloc_stats stats() const {
        pymem_alloc_stats s;
        check(pymem_alloc_get_stats(rt_, &s), rt_);
        return s;
    }

    /// pymem_debug_malloc_stats, as a string (the C string is freed here).
    std::string debug_malloc_stats() const {
        char *raw = nullptr;
        check(pymem_debug_malloc_stats(rt_, &raw), rt_);
        detail::unique_cstring text(raw);
        return std::string(text.get());
    }

    /// pymem_release_free_arenas: the resident bytes given back.
    std::size_t release_free_arenas() const {
        std::size_t released = 0;
        check(pymem_release_free_arenas(rt_, &released), rt_);
        return released;
    }

    /// pymem_runtime_attach: make the calling thread the owner.
    void attach() const { check(pymem_runtime_attach(rt_), rt_); }

    /// pymem_runtime_detach: give up the calling thread's ownership.
    void detach() const { check(pymem_runtime_detach(rt_), rt_); }

    /// pymem_last_error(rt): the message of the last failed call.
    std::string last_error() const { return pymem_last_error(rt_); }

private:
    struct Adopt {};
    Runtime(pymem_runtime *rt, Adopt) noexcept : rt_(rt) {}

    pymem_runtime *rt_ = nullptr;
};

/* ------------------------------------------------------------------------ */
/* Blocks */

/// Owns one block of a Runtime's allocator; frees it in its destructor.
/// Move-only. The block must not outlive its runtime (a Runtime that is
/// moved keeps the same runtime, so moving the Runtime is fine).
///
/// The destructor never throws: if the free fails (another thread holds
/// the runtime, or the debug hooks find damaged guard bytes) the block stays
/// allocated and pymem_runtime_free reclaims it. Call free() to see such a
/// failure as an exception instead.
class Block {
public:
    Block() noexcept = default;

    /// Allocates `n` bytes from `rt` (Runtime::malloc; throws Error).
    Block(const Runtime &rt, std::size_t n) : rt_(rt.get()), p_(rt.malloc(n)), size_(n) {}

    /// `count * size` zeroed bytes (Runtime::calloc; throws Error).
    static Block zeroed(const Runtime &rt, std::size_t count, std::size_t size) {
        void *p = rt.calloc(count, size);
        return Block(rt.get(), p, count * size);
    }

    /// Takes ownership of `p`, a live block of `rt` of `size` bytes.
    static Block adopt(const Runtime &rt, void *p, std::size_t size) noexcept {
        return Block(rt.get(), p, size);
    }

    ~Block() { reset(); }

    Block(const Block &) = delete;
    Block &operator=(const Block &) = delete;
    Block(Block &&other) noexcept
        : rt_(std::exchange(other.rt_, nullptr)),
          p_(std::exchange(other.p_, nullptr)),
          size_(std::exchange(other.size_, 0)) {}
    Block &operator=(Block &&other) noexcept {
        if (this != &other) {
            reset();
            rt_ = std::exchange(other.rt_, nullptr);
            p_ = std::exchange(other.p_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }

    void *get() const noexcept { return p_; }
    template <class T>
    T *as() const noexcept {
        return static_cast<T *>(p_);
    }
    /// The size asked for (the block may be larger: its size class).
    std::size_t size() const noexcept { return size_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

    /// Resizes (pymem_realloc). On failure throws and keeps the old block.
    void resize(std::size_t n) {
        void *q = pymem_realloc(rt_, p_, n);
        if (q == nullptr) {
            detail::throw_null_result(rt_);
        }
        p_ = q;
        size_ = n;
    }

    /// Frees the block now, throwing Error on failure; the Block keeps the
    /// pointer then (so a corrupted block can be repaired and freed again).
    void free() {
        if (p_ != nullptr) {
            check(pymem_free(rt_, p_), rt_);
            p_ = nullptr;
            size_ = 0;
        }
    }

    /// Gives up ownership; the caller frees it with pymem_free.
    void *release() noexcept {
        size_ = 0;
        return std::exchange(p_, nullptr);
    }

    /// Frees the block, ignoring a failure (see the class comment).
    void reset() noexcept {
        if (p_ != nullptr) {
            (void)pymem_free(rt_, p_);
            p_ = nullptr;
            size_ = 0;
        }
    }

private:
    Block(pymem_runtime *rt, void *p, std::size_t size) noexcept : rt_(rt), p_(p), size_(size) {}

    pymem_runtime *rt_ = nullptr;
    void *p_ = nullptr;
    std::size_t size_ = 0;
};

/* ------------------------------------------------------------------------ */
/* Objects: when the object API (pymem_object, pymem_incref/decref) lands,
 * its RAII reference class `Ref` (decref in the destructor, incref on copy,
 * adopting the new references that calls hand out) goes here, after Block,
 * together with the callback trampolines that catch exceptions. */

}  // namespace pymem

#endif  // PYMEM_HPP

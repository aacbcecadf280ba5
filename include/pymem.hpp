/*
 * pymem.hpp: a header-only C++17 layer over pymem.h.
 *
 * - Statuses become exceptions: every failed call throws pymem::Error,
 *   which carries the pymem_status (code()) and the library's message.
 * - Handles become owning values: pymem::Runtime frees its runtime,
 *   pymem::Block its memory block (both move-only), pymem::CudaCache its
 *   GPU cache and pymem::DeviceBuffer a device pointer of it, pymem::Ref owns one
 *   reference to an object (copy = incref, move = steal, destructor =
 *   decref). pymem::HostType<T> keeps a C++ object in each instance of a
 *   host type.
 * - Nothing here adds state (but for a thread-local copy of the last
 *   exception a callback guard caught): each method is one C call (plus, on
 *   failure, reading the message), so the C rules hold unchanged. In
 *   particular the thread rule: a Runtime, its Blocks and its Refs are used
 *   on the thread that owns the runtime (see pymem.h); calls from another
 *   thread throw Error with PYMEM_ERR_BUSY.
 *
 * Exceptions and callbacks: an exception never crosses into pymem. The C
 * library is not exception-safe across its frames, so any host callback
 * this header installs (native functions through pymem::native<Fn> and
 * RuntimeView::function<Fn>; clear, traverse and dealloc through
 * pymem::HostType<T>) catches every exception in its trampoline and turns it
 * into a status before returning to C. A callback written by hand against
 * pymem.h must do the same: wrap its body in pymem::status_guard (native
 * functions: the status is returned to pymem_call's caller) or
 * pymem::callback_guard (void callbacks: clear, finalize, dealloc), e.g.
 *
 *     static pymem_status my_fn(pymem_runtime *rt, pymem_object *const *args,
 *                               size_t nargs, pymem_object **result, void *ud) {
 *         return pymem::status_guard([&] {
 *             pymem::Ref x = pymem::Ref::borrow(rt, args[0]);   // may throw
 *             *result = pymem::RuntimeView(rt).integer(x.as_int() * 2).release();
 *         });
 *     }
 *
 * and pymem::last_callback_exception() tells what a guard caught. Mind what
 * a callback may call (pymem.h): inside clear and dealloc only
 * incref/decref, so there a Ref may be dropped (reset, destroyed) but no
 * object made. Destructors never throw either: they report nothing and
 * leave the rest to pymem_runtime_free, which reclaims every block.
 *
 * Requires only the C++17 standard library and pymem.h; link with -lpymem.
 */
#ifndef PYMEM_HPP
#define PYMEM_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

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

class Ref;
class Args;

/// A runtime handle that owns nothing: the object factories (each returns
/// a Ref owning the new reference). pymem::Runtime is one (and owns its
/// runtime); inside a native function, construct one from the callback's
/// pymem_runtime * (or use Args::runtime()). Copying it copies the pointer.
class RuntimeView {
public:
    RuntimeView() noexcept = default;
    explicit RuntimeView(pymem_runtime *rt) noexcept : rt_(rt) {}

    /// The handle, for C calls (NULL for an empty view).
    pymem_runtime *get() const noexcept { return rt_; }
    explicit operator bool() const noexcept { return rt_ != nullptr; }

    /// None, True/False (immortal).
    Ref none() const;
    Ref boolean(bool v) const;
    /// An int (-5..256 by default: the cached immortal ones).
    Ref integer(std::int64_t v) const;
    Ref floating(double v) const;
    /// A str of UTF-8 bytes (may hold NUL); invalid UTF-8 throws
    /// PYMEM_ERR_INVALID_ARGUMENT.
    Ref str(std::string_view utf8) const;
    /// The interned str (pymem_str_intern).
    Ref intern(std::string_view utf8) const;
    /// A list, empty or of `items` (the list takes its own references).
    Ref list() const;
    Ref list(std::initializer_list<Ref> items) const;
    /// A dict, empty or of `items` in order.
    Ref dict() const;
    Ref dict(std::initializer_list<std::pair<Ref, Ref>> items) const;
    /// A tuple of `items` (() is the immortal empty tuple).
    Ref tuple(std::initializer_list<Ref> items) const;
    Ref tuple(const std::vector<Ref> &items) const;
    Ref module(const char *name) const;
    /// A function calling a C native function (pymem_function_new). A C++
    /// function is safer through function<Fn>, which catches exceptions.
    Ref function(const char *name, pymem_native_fn fn, void *userdata = nullptr) const;
    /// A function calling `Fn(const Args &, void *userdata)`, a C++ function
    /// returning Ref, through pymem::native<Fn> (exceptions -> statuses).
    template <Ref (*Fn)(const Args &, void *)>
    Ref function(const char *name, void *userdata = nullptr) const;
    /// A host type (pymem_type_new; lives as long as the runtime).
    pymem_type *type(const pymem_type_spec &spec) const;
    /// A new instance of a host type (payload zeroed).
    Ref instance(pymem_type *t) const;
    /// Takes a reference to `o` (incref) / adopts a new reference.
    Ref borrow(pymem_object *o) const;
    Ref steal(pymem_object *o) const noexcept;
    /// pymem_clear_free_lists.
    void clear_free_lists() const;

protected:
    pymem_runtime *rt_ = nullptr;
};

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
/// The object factories (none(), integer(), list()...) come from
/// RuntimeView. Destroy every Ref of a runtime before the runtime.
class Runtime : public RuntimeView {
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
    Runtime(Runtime &&other) noexcept : RuntimeView(std::exchange(other.rt_, nullptr)) {}
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

    /// pymem_report_mark: a labelled point on the memory report's timeline.
    void report_mark(const char *label) const { check(pymem_report_mark(rt_, label), rt_); }

    /// pymem_report_html, as a string: the memory report's page (`cuda`
    /// may be NULL; with a cache, its segments and history are drawn too).
    std::string report_html(const pymem_cuda_cache *cuda = nullptr) const {
        char *raw = nullptr;
        check(pymem_report_html(rt_, cuda, &raw), rt_);
        detail::unique_cstring page(raw);
        return std::string(page.get());
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
    Runtime(pymem_runtime *rt, Adopt) noexcept : RuntimeView(rt) {}
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
/* Objects */

/// Owns one reference to an object: the destructor drops it (decref), a
/// copy takes another (incref), a move hands it over. Every pymem call that
/// hands out an object gives a NEW reference; Ref::steal adopts one,
/// Ref::borrow takes a reference of its own to a pointer someone else owns
/// (a native function's arguments, a traverse child).
///
/// The methods throw pymem::Error for a failed call (wrong type, index out
/// of range, missing key...). They are const like Runtime's: they do not
/// change which object this Ref owns, though they may change the object.
///
/// Rules (pymem.h's, unchanged): use a Ref on the runtime's owner thread
/// and drop it before its runtime is freed. Inside `clear` and `dealloc`
/// callbacks only incref/decref may be called: a Ref may be dropped there
/// (reset, destroyed), not used to make objects. The destructor never
/// throws; if its decref fails (another thread owns the runtime) the
/// reference is left to pymem_runtime_free.
class Ref {
public:
    Ref() noexcept = default;

    /// Adopts `o`, a NEW reference the caller owns (as pymem calls hand
    /// them out through `pymem_object **out`). NULL gives an empty Ref.
    static Ref steal(pymem_runtime *rt, pymem_object *o) noexcept { return Ref(rt, o); }

    /// Takes a reference of its own to `o` (pymem_incref; throws Error for a
    /// pointer that is not a live object of `rt`). NULL gives an empty Ref.
    static Ref borrow(pymem_runtime *rt, pymem_object *o) {
        if (o != nullptr) {
            check(pymem_incref(rt, o), rt);
        }
        return Ref(rt, o);
    }

    ~Ref() { reset(); }

    /// Copy: a second reference to the same object (incref; throws Error).
    Ref(const Ref &other) : rt_(other.rt_), o_(other.o_) {
        if (o_ != nullptr) {
            check(pymem_incref(rt_, o_), rt_);
        }
    }
    /// Move: the reference changes hands; `other` is left empty.
    Ref(Ref &&other) noexcept : rt_(other.rt_), o_(std::exchange(other.o_, nullptr)) {}
    Ref &operator=(const Ref &other) {
        Ref copy(other);
        swap(copy);
        return *this;
    }
    Ref &operator=(Ref &&other) noexcept {
        if (this != &other) {
            reset();
            rt_ = other.rt_;
            o_ = std::exchange(other.o_, nullptr);
        }
        return *this;
    }
    void swap(Ref &other) noexcept {
        std::swap(rt_, other.rt_);
        std::swap(o_, other.o_);
    }

    /// The object (borrowed: valid while this Ref holds it).
    pymem_object *get() const noexcept { return o_; }
    pymem_runtime *runtime() const noexcept { return rt_; }
    RuntimeView view() const noexcept { return RuntimeView(rt_); }
    explicit operator bool() const noexcept { return o_ != nullptr; }

    /// Gives up the reference without dropping it: the caller owns it now
    /// (e.g. to store it in a native function's `*result`).
    pymem_object *release() noexcept { return std::exchange(o_, nullptr); }

    /// Drops the reference now (decref); the Ref is empty afterwards.
    void reset() noexcept {
        if (o_ != nullptr) {
            (void)pymem_decref(rt_, std::exchange(o_, nullptr));
        }
    }

    /* identity, counts, hash, equality, repr */

    /// The exact count (PYMEM_IMMORTAL_REFCNT for immortal objects);
    /// CPython's sys.getrefcount shows one more.
    std::intptr_t refcount() const {
        std::ptrdiff_t n = 0;
        check(pymem_refcount(rt_, o_, &n), rt_);
        return static_cast<std::intptr_t>(n);
    }
    bool immortal() const { return static_cast<std::uint64_t>(refcount()) == PYMEM_IMMORTAL_REFCNT; }
    /// id(): the object's address.
    std::size_t id() const noexcept { return pymem_id(o_); }
    /// Python's `is`.
    bool is(const Ref &other) const noexcept { return pymem_is(o_, other.o_) != 0; }
    /// hash(); unhashable (list, dict): Error PYMEM_ERR_TYPE.
    std::int64_t hash() const {
        std::int64_t h = 0;
        check(pymem_hash(rt_, o_, &h), rt_);
        return h;
    }
    /// Python's ==: 1 == 1.0 == True, containers item by item.
    bool equals(const Ref &other) const {
        int eq = 0;
        check(pymem_equal(rt_, o_, other.o_, &eq), rt_);
        return eq != 0;
    }
    friend bool operator==(const Ref &a, const Ref &b) { return a.equals(b); }
    friend bool operator!=(const Ref &a, const Ref &b) { return !a.equals(b); }
    /// repr() as Python writes it.
    std::string repr() const {
        char *raw = nullptr;
        check(pymem_repr(rt_, o_, &raw), rt_);
        detail::unique_cstring text(raw);
        return std::string(text.get());
    }
    /// "int", "list", a host type's name... (valid while the runtime lives).
    const char *type_name() const {
        const char *name = nullptr;
        check(pymem_type_name(rt_, o_, &name), rt_);
        return name;
    }

    /* values of atoms */

    std::int64_t as_int() const {
        std::int64_t v = 0;
        check(pymem_int_value(rt_, o_, &v), rt_);
        return v;
    }
    double as_float() const {
        double v = 0;
        check(pymem_float_value(rt_, o_, &v), rt_);
        return v;
    }
    /// A str's UTF-8 bytes, borrowed: valid while the object lives.
    std::string_view str_view() const {
        const char *p = nullptr;
        std::size_t n = 0;
        check(pymem_str_value(rt_, o_, &p, &n), rt_);
        return std::string_view(p, n);
    }
    std::string as_str() const { return std::string(str_view()); }

    /* lists and tuples (len also for dicts) */

    /// len() of a list, tuple or dict; another type: Error PYMEM_ERR_TYPE.
    std::size_t len() const {
        std::size_t n = 0;
        const std::string_view t = type_name();
        if (t == "tuple") {
            check(pymem_tuple_len(rt_, o_, &n), rt_);
        } else if (t == "dict") {
            check(pymem_dict_len(rt_, o_, &n), rt_);
        } else {
            check(pymem_list_len(rt_, o_, &n), rt_);
        }
        return n;
    }
    /// Item `i` of a list or tuple (Error PYMEM_ERR_INDEX past the end).
    Ref get(std::size_t i) const {
        pymem_object *out = nullptr;
        if (std::string_view(type_name()) == "tuple") {
            check(pymem_tuple_get(rt_, o_, i, &out), rt_);
        } else {
            check(pymem_list_get(rt_, o_, i, &out), rt_);
        }
        return Ref(rt_, out);
    }
    Ref operator[](std::size_t i) const { return get(i); }
    /// list[i] = v (the list takes its own reference).
    void set(std::size_t i, const Ref &v) const { check(pymem_list_set(rt_, o_, i, v.o_), rt_); }
    void append(const Ref &v) const { check(pymem_list_append(rt_, o_, v.o_), rt_); }
    /// Inserts before `i`; past the end appends.
    void insert(std::size_t i, const Ref &v) const { check(pymem_list_insert(rt_, o_, i, v.o_), rt_); }
    /// Removes item `i` and returns it.
    Ref pop(std::size_t i) const {
        pymem_object *out = nullptr;
        check(pymem_list_pop(rt_, o_, i, &out), rt_);
        return Ref(rt_, out);
    }
    /// Removes the last item (Error PYMEM_ERR_INDEX when empty).
    Ref pop() const { return pop(len() - 1); }

    /* dicts */

    /// d[key] (Error PYMEM_ERR_KEY when missing, PYMEM_ERR_TYPE unhashable).
    Ref getitem(const Ref &key) const {
        pymem_object *out = nullptr;
        check(pymem_dict_get(rt_, o_, key.o_, &out), rt_);
        return Ref(rt_, out);
    }
    /// d[key] = value (the dict takes its own references).
    void setitem(const Ref &key, const Ref &value) const { check(pymem_dict_set(rt_, o_, key.o_, value.o_), rt_); }
    /// del d[key].
    void delitem(const Ref &key) const { check(pymem_dict_del(rt_, o_, key.o_), rt_); }
    /// key in d.
    bool contains(const Ref &key) const {
        pymem_object *out = nullptr;
        const pymem_status st = pymem_dict_get(rt_, o_, key.o_, &out);
        if (st == PYMEM_ERR_KEY) {
            return false;
        }
        check(st, rt_);
        (void)pymem_decref(rt_, out);
        return true;
    }
    /// The items, in insertion order.
    std::vector<std::pair<Ref, Ref>> items() const {
        std::vector<std::pair<Ref, Ref>> out;
        std::size_t pos = 0;
        for (;;) {
            pymem_object *k = nullptr;
            pymem_object *v = nullptr;
            const pymem_status st = pymem_dict_next(rt_, o_, &pos, &k, &v);
            if (st == PYMEM_ERR_INDEX) {
                return out;
            }
            check(st, rt_);
            Ref key(rt_, k);
            Ref value(rt_, v);
            out.emplace_back(std::move(key), std::move(value));
        }
    }

    /* attributes (instances, modules, functions) */

    Ref getattr(const char *name) const {
        pymem_object *out = nullptr;
        check(pymem_getattr(rt_, o_, name, &out), rt_);
        return Ref(rt_, out);
    }
    void setattr(const char *name, const Ref &value) const { check(pymem_setattr(rt_, o_, name, value.o_), rt_); }
    void delattr(const char *name) const { check(pymem_delattr(rt_, o_, name), rt_); }
    bool hasattr(const char *name) const {
        pymem_object *out = nullptr;
        const pymem_status st = pymem_getattr(rt_, o_, name, &out);
        if (st == PYMEM_ERR_KEY) {
            return false;
        }
        check(st, rt_);
        (void)pymem_decref(rt_, out);
        return true;
    }

    /* functions */

    /// Calls a function; the native function's error status is thrown.
    Ref call(const std::vector<Ref> &args) const {
        std::vector<pymem_object *> raw;
        raw.reserve(args.size());
        for (const Ref &a : args) {
            raw.push_back(a.o_);
        }
        return call_raw(raw.data(), raw.size());
    }
    Ref call(std::initializer_list<Ref> args) const { return call(std::vector<Ref>(args)); }
    /// f(a, b, ...) with Ref arguments (borrowed by the call).
    template <class... A>
    Ref operator()(const A &...args) const {
        static_assert((std::is_same_v<A, Ref> && ...), "arguments are pymem::Ref");
        pymem_object *raw[] = {args.o_..., nullptr};
        return call_raw(raw, sizeof...(A));
    }

    /* instances of host types */

    /// The host bytes (borrowed: valid while the object lives; 16-aligned).
    void *payload() const {
        void *p = nullptr;
        check(pymem_instance_payload(rt_, o_, &p), rt_);
        return p;
    }
    template <class T>
    T *payload_as() const {
        return static_cast<T *>(payload());
    }
    bool is_instance(pymem_type *t) const {
        int yes = 0;
        check(pymem_is_instance(rt_, o_, t, &yes), rt_);
        return yes != 0;
    }

private:
    friend class RuntimeView;
    Ref(pymem_runtime *rt, pymem_object *o) noexcept : rt_(rt), o_(o) {}

    Ref call_raw(pymem_object *const *args, std::size_t n) const {
        pymem_object *out = nullptr;
        check(pymem_call(rt_, o_, args, n, &out), rt_);
        return Ref(rt_, out);
    }

    pymem_runtime *rt_ = nullptr;
    pymem_object *o_ = nullptr;
};

inline void swap(Ref &a, Ref &b) noexcept { a.swap(b); }

/// For a traverse callback: reports the object a Ref holds (none: 0).
inline int visit(const Ref &r, pymem_visit_fn visit, void *arg) {
    return r ? visit(r.get(), arg) : 0;
}

/* ------------------------------------------------------------------------ */
/* Callbacks: no exception crosses into pymem */

namespace detail {

inline std::string &callback_exception_slot() noexcept {
    thread_local std::string slot;
    return slot;
}

inline void record_callback_exception(const char *what) noexcept {
    try {
        callback_exception_slot() = what;
    } catch (...) {  // out of memory for the message: keep the old one
    }
}

}  // namespace detail

/// What the last exception a guard caught on this thread said ("" if none
/// since clear_callback_exception()).
inline std::string last_callback_exception() { return detail::callback_exception_slot(); }
inline void clear_callback_exception() noexcept { detail::callback_exception_slot().clear(); }

/// Runs `body` (returning void or a pymem_status) and returns its status;
/// an exception becomes a status instead of crossing into pymem:
/// pymem::Error -> its code, std::bad_alloc -> PYMEM_ERR_NO_MEMORY,
/// std::out_of_range -> PYMEM_ERR_INDEX, any other ->
/// PYMEM_ERR_INVALID_ARGUMENT; what() goes to last_callback_exception().
/// For native functions written by hand.
template <class F>
pymem_status status_guard(F &&body) noexcept {
    try {
        if constexpr (std::is_same_v<std::invoke_result_t<F &>, pymem_status>) {
            return body();
        } else {
            body();
            return PYMEM_OK;
        }
    } catch (const Error &e) {
        detail::record_callback_exception(e.what());
        return e.code();
    } catch (const std::bad_alloc &e) {
        detail::record_callback_exception(e.what());
        return PYMEM_ERR_NO_MEMORY;
    } catch (const std::out_of_range &e) {
        detail::record_callback_exception(e.what());
        return PYMEM_ERR_INDEX;
    } catch (const std::exception &e) {
        detail::record_callback_exception(e.what());
        return PYMEM_ERR_INVALID_ARGUMENT;
    } catch (...) {
        detail::record_callback_exception("a C++ exception of unknown type");
        return PYMEM_ERR_INVALID_ARGUMENT;
    }
}

/// Runs `body` and swallows any exception (recorded for
/// last_callback_exception()): for the void callbacks clear, finalize and
/// dealloc, which have no way to report a failure.
template <class F>
void callback_guard(F &&body) noexcept {
    (void)status_guard([&] { body(); });
}

/// The arguments of a native function: borrowed pointers, handed out as
/// Refs of their own.
class Args {
public:
    Args(pymem_runtime *rt, pymem_object *const *args, std::size_t n) noexcept : rt_(rt), args_(args), n_(n) {}

    std::size_t size() const noexcept { return n_; }
    bool empty() const noexcept { return n_ == 0; }
    /// Argument `i` as a new reference; missing: Error PYMEM_ERR_INDEX.
    Ref operator[](std::size_t i) const {
        if (i >= n_) {
            throw Error(PYMEM_ERR_INDEX,
                        "argument " + std::to_string(i) + " missing (" + std::to_string(n_) + " given)");
        }
        return Ref::borrow(rt_, args_[i]);
    }
    /// Argument `i`, borrowed (valid during the call).
    pymem_object *raw(std::size_t i) const noexcept { return i < n_ ? args_[i] : nullptr; }
    /// The runtime, to make objects with.
    RuntimeView runtime() const noexcept { return RuntimeView(rt_); }

private:
    pymem_runtime *rt_;
    pymem_object *const *args_;
    std::size_t n_;
};

/// The trampoline of a native function written in C++:
/// `Ref Fn(const pymem::Args &args, void *userdata)` returns its result (an
/// empty Ref: None) or throws; the exception becomes the status pymem_call
/// returns (see status_guard). Pass `&pymem::native<Fn>` to
/// pymem_function_new, or use RuntimeView::function<Fn>.
template <Ref (*Fn)(const Args &, void *)>
pymem_status native(pymem_runtime *rt, pymem_object *const *args, std::size_t nargs, pymem_object **result,
                    void *userdata) noexcept {
    return status_guard([&] {
        Ref r = Fn(Args(rt, args, nargs), userdata);
        *result = r.release();
    });
}

/* ------------------------------------------------------------------------ */
/* Host types with a C++ payload */

namespace detail {

template <class T, class = void>
struct has_clear : std::false_type {};
template <class T>
struct has_clear<T, std::void_t<decltype(std::declval<T &>().clear())>> : std::true_type {};

template <class T, class = void>
struct has_traverse : std::false_type {};
template <class T>
struct has_traverse<
    T, std::void_t<decltype(std::declval<const T &>().traverse(std::declval<pymem_visit_fn>(), std::declval<void *>()))>>
    : std::true_type {};

}  // namespace detail

/// A host type whose instances each carry a T, constructed by make() in the
/// instance's payload and destroyed by the type's dealloc callback (when
/// the instance dies, or at pymem_runtime_free for the live ones).
///
/// T may hold its child objects as Refs. Then it should give:
/// - `void clear()`: drops them (e.g. `child.reset()`); the type's clear
///   callback calls it, before dealloc and when the collector breaks a cycle;
/// - `int traverse(pymem_visit_fn visit, void *arg) const`: reports each,
///   e.g. `return pymem::visit(child, visit, arg);`.
/// Both run inside pymem callbacks: they and ~T may only drop references
/// (no new objects: PYMEM_ERR_BUSY); an exception they throw is caught
/// (callback_guard), never passed into pymem.
///
/// The handle is a pointer pair, cheap to copy; the type lives as long as
/// its runtime.
template <class T>
class HostType {
    static_assert(alignof(T) <= 16, "instance payloads are 16-byte aligned");

    /// The payload: `live` points at the T while it is constructed.
    struct Slot {
        T *live;
        alignas(T) unsigned char storage[sizeof(T)];
    };

public:
    HostType() noexcept = default;

    /// Defines the type `name` on `rt` (throws Error).
    HostType(const RuntimeView &rt, const char *name) : rt_(rt.get()) {
        pymem_type_spec spec;
        pymem_type_spec_init(&spec);
        spec.name = name;
        spec.payload_size = sizeof(Slot);
        if constexpr (detail::has_clear<T>::value) {
            spec.clear = &clear_callback;
        }
        if constexpr (detail::has_traverse<T>::value) {
            spec.traverse = &traverse_callback;
        }
        spec.dealloc = &dealloc_callback;
        spec.userdata = rt_;
        type_ = rt.type(spec);
    }

    pymem_type *get() const noexcept { return type_; }

    /// A new instance holding T(args...). If T's constructor throws, the
    /// instance is freed (without running ~T) and the exception passes on.
    template <class... A>
    Ref make(A &&...args) const {
        Ref o = RuntimeView(rt_).instance(type_);
        Slot *slot = o.payload_as<Slot>();
        slot->live = new (static_cast<void *>(slot->storage)) T(std::forward<A>(args)...);
        return o;
    }

    /// The T of an instance of this type (valid while it lives); another
    /// object: Error PYMEM_ERR_TYPE.
    T &of(const Ref &o) const {
        if (!o.is_instance(type_)) {
            throw Error(PYMEM_ERR_TYPE, std::string("expected an instance of this host type, got ") + o.type_name());
        }
        Slot *slot = o.payload_as<Slot>();
        if (slot->live == nullptr) {
            throw Error(PYMEM_ERR_TYPE, "the instance holds no C++ object (not made by HostType::make)");
        }
        return *slot->live;
    }

private:
    static void clear_callback(pymem_runtime *rt, pymem_object *self, void *) {
        callback_guard([&] {
            void *p = nullptr;
            if (pymem_instance_payload(rt, self, &p) == PYMEM_OK) {
                Slot *slot = static_cast<Slot *>(p);
                if (slot->live != nullptr) {
                    slot->live->clear();
                }
            }
        });
    }

    static int traverse_callback(pymem_object *self, pymem_visit_fn visit, void *arg, void *userdata) {
        int stop = 0;
        callback_guard([&] {
            void *p = nullptr;
            if (pymem_instance_payload(static_cast<pymem_runtime *>(userdata), self, &p) == PYMEM_OK) {
                const Slot *slot = static_cast<const Slot *>(p);
                if (slot->live != nullptr) {
                    stop = slot->live->traverse(visit, arg);
                }
            }
        });
        return stop;
    }

    static void dealloc_callback(pymem_object *, void *payload, void *) {
        Slot *slot = static_cast<Slot *>(payload);
        // Cleared first, so that a second call finds nothing to destroy.
        T *live = std::exchange(slot->live, nullptr);
        if (live != nullptr) {
            callback_guard([&] { live->~T(); });
        }
    }

    pymem_runtime *rt_ = nullptr;
    pymem_type *type_ = nullptr;
};

/* ------------------------------------------------------------------------ */
/* RuntimeView's object factories */

inline Ref RuntimeView::none() const {
    pymem_object *o = nullptr;
    check(pymem_none(rt_, &o), rt_);
    return Ref(rt_, o);
}

inline Ref RuntimeView::boolean(bool v) const {
    pymem_object *o = nullptr;
    check(pymem_bool(rt_, v ? 1 : 0, &o), rt_);
    return Ref(rt_, o);
}

inline Ref RuntimeView::integer(std::int64_t v) const {
    pymem_object *o = nullptr;
    check(pymem_int_new(rt_, v, &o), rt_);
    return Ref(rt_, o);
}

inline Ref RuntimeView::floating(double v) const {
    pymem_object *o = nullptr;
    check(pymem_float_new(rt_, v, &o), rt_);
    return Ref(rt_, o);
}

inline Ref RuntimeView::str(std::string_view utf8) const {
    pymem_object *o = nullptr;
    check(pymem_str_new(rt_, utf8.data(), utf8.size(), &o), rt_);
    return Ref(rt_, o);
}

inline Ref RuntimeView::intern(std::string_view utf8) const {
    pymem_object *o = nullptr;
    check(pymem_str_intern(rt_, utf8.data(), utf8.size(), &o), rt_);
    return Ref(rt_, o);
}

inline Ref RuntimeView::list() const {
    pymem_object *o = nullptr;
    check(pymem_list_new(rt_, &o), rt_);
    return Ref(rt_, o);
}

inline Ref RuntimeView::list(std::initializer_list<Ref> items) const {
    Ref l = list();
    for (const Ref &item : items) {
        l.append(item);
    }
    return l;
}

inline Ref RuntimeView::dict() const {
    pymem_object *o = nullptr;
    check(pymem_dict_new(rt_, &o), rt_);
    return Ref(rt_, o);
}

inline Ref RuntimeView::dict(std::initializer_list<std::pair<Ref, Ref>> items) const {
    Ref d = dict();
    for (const auto &kv : items) {
        d.setitem(kv.first, kv.second);
    }
    return d;
}

inline Ref RuntimeView::tuple(const std::vector<Ref> &items) const {
    std::vector<pymem_object *> raw;
    raw.reserve(items.size());
    for (const Ref &item : items) {
        raw.push_back(item.get());
    }
    pymem_object *o = nullptr;
    check(pymem_tuple_new(rt_, raw.size(), raw.data(), &o), rt_);
    return Ref(rt_, o);
}

inline Ref RuntimeView::tuple(std::initializer_list<Ref> items) const { return tuple(std::vector<Ref>(items)); }

inline Ref RuntimeView::module(const char *name) const {
    pymem_object *o = nullptr;
    check(pymem_module_new(rt_, name, &o), rt_);
    return Ref(rt_, o);
}

inline Ref RuntimeView::function(const char *name, pymem_native_fn fn, void *userdata) const {
    pymem_object *o = nullptr;
    check(pymem_function_new(rt_, name, fn, userdata, &o), rt_);
    return Ref(rt_, o);
}

template <Ref (*Fn)(const Args &, void *)>
Ref RuntimeView::function(const char *name, void *userdata) const {
    return function(name, &native<Fn>, userdata);
}

inline pymem_type *RuntimeView::type(const pymem_type_spec &spec) const {
    pymem_type *t = nullptr;
    check(pymem_type_new(rt_, &spec, &t), rt_);
    return t;
}

inline Ref RuntimeView::instance(pymem_type *t) const {
    pymem_object *o = nullptr;
    check(pymem_instance_new(rt_, t, &o), rt_);
    return Ref(rt_, o);
}

inline Ref RuntimeView::borrow(pymem_object *o) const { return Ref::borrow(rt_, o); }

inline Ref RuntimeView::steal(pymem_object *o) const noexcept { return Ref::steal(rt_, o); }

inline void RuntimeView::clear_free_lists() const { check(pymem_clear_free_lists(rt_), rt_); }

/* ------------------------------------------------------------------------ */
/* Namespaces */

/// A namespace (pymem_ns_new): names bound to objects, IPython's %who,
/// %whos, %xdel, %reset and %reset_selective, and who keeps an object
/// alive. Owns one reference to the namespace object (a Ref); errors throw
/// pymem::Error (an unbound name: PYMEM_ERR_KEY).
class Namespace {
public:
    /// A new namespace; `flags` PYMEM_NS_NOTEBOOK adds a notebook's hidden
    /// In, Out, get_ipython, exit and quit.
    Namespace(const RuntimeView &rt, const char *name, std::uint32_t flags = 0) {
        pymem_object *o = nullptr;
        check(pymem_ns_new(rt.get(), name, flags, &o), rt.get());
        ref_ = Ref::steal(rt.get(), o);
    }

    /// The namespace object.
    const Ref &object() const noexcept { return ref_; }

    /// name = value (the namespace takes its own reference).
    void set(const char *name, const Ref &value) const { check(pymem_ns_set(rt(), ns(), name, value.get()), rt()); }
    /// The object bound to `name`.
    Ref get(const char *name) const {
        pymem_object *o = nullptr;
        check(pymem_ns_get(rt(), ns(), name, &o), rt());
        return Ref::steal(rt(), o);
    }
    /// del name.
    void del(const char *name) const { check(pymem_ns_del(rt(), ns(), name), rt()); }
    /// %xdel name: every name in every namespace bound to that object.
    void xdel(const char *name) const { check(pymem_ns_xdel(rt(), ns(), name), rt()); }
    /// Marks a system name (hidden while bound to the same object).
    void hide(const char *name) const { check(pymem_ns_hide(rt(), ns(), name), rt()); }

    /// %who_ls: the user names, sorted; `type_filter` like "int list".
    std::vector<std::string> who(const char *type_filter = nullptr) const {
        pymem_object *raw = nullptr;
        check(pymem_ns_who(rt(), ns(), type_filter, &raw), rt());
        Ref list = Ref::steal(rt(), raw);
        std::size_t n = 0;
        check(pymem_list_len(rt(), list.get(), &n), rt());
        std::vector<std::string> names;
        for (std::size_t i = 0; i < n; i++) {
            pymem_object *item = nullptr;
            check(pymem_list_get(rt(), list.get(), i, &item), rt());
            Ref name = Ref::steal(rt(), item);
            const char *text = nullptr;
            std::size_t len = 0;
            check(pymem_str_value(rt(), name.get(), &text, &len), rt());
            names.emplace_back(text, len);
        }
        return names;
    }
    /// %whos: the table with sizes and the total line.
    std::string whos() const {
        char *raw = nullptr;
        const pymem_status status = pymem_ns_whos(rt(), ns(), &raw);
        return text(status, raw);
    }
    /// %reset -s (`regex` NULL) or %reset_selective regex, then a full
    /// collection and memory given back to the OS.
    pymem_reset_report reset(const char *regex = nullptr) const {
        pymem_reset_report report{};
        check(pymem_ns_reset(rt(), ns(), regex, &report), rt());
        return report;
    }
    /// The chains of references keeping `name`'s object alive.
    std::string why_alive(const char *name) const {
        char *raw = nullptr;
        const pymem_status status = pymem_ns_why_alive(rt(), ns(), name, &raw);
        return text(status, raw);
    }

private:
    pymem_runtime *rt() const noexcept { return ref_.runtime(); }
    pymem_object *ns() const noexcept { return ref_.get(); }
    /// Checks the status of a call that hands out a string, and takes the
    /// string (freed with pymem_string_free).
    std::string text(pymem_status status, char *raw) const {
        detail::unique_cstring owned(raw);
        check(status, rt());
        return std::string(owned.get());
    }

    Ref ref_;
};


/* GPU caching allocator */

/// Throws Error when `status` is not PYMEM_OK, with the calling thread's
/// last message on `cache` (pymem_cuda_last_error; NULL: the thread's slot).
inline void check_cuda(pymem_status status, const pymem_cuda_cache *cache) {
    if (status != PYMEM_OK) {
        throw Error(status, pymem_cuda_last_error(cache));
    }
}

/// pymem_cuda_config with PyTorch's defaults; parse() applies a
/// PYTORCH_CUDA_ALLOC_CONF string (throws Error with PyTorch's message).
struct CudaConfig : pymem_cuda_config {
    CudaConfig() noexcept { pymem_cuda_config_init(this); }

    /// The simulated backend: `devices` devices of `capacity` bytes.
    static CudaConfig simulated(int32_t devices, uint64_t capacity) noexcept {
        CudaConfig c;
        c.backend = PYMEM_CUDA_BACKEND_SIMULATED;
        c.simulated_devices = devices;
        c.simulated_capacity = capacity;
        return c;
    }

    CudaConfig &parse(const char *conf) {
        check_cuda(pymem_cuda_config_parse(conf, this), nullptr);
        return *this;
    }
};

class DeviceBuffer;

/// Owns a pymem_cuda_cache (move-only); the destructor frees it, giving
/// every segment back to the device. Thread-safe like the cache: any thread
/// may call any method, and a DeviceBuffer may be freed on any thread.
class CudaCache {
public:
    explicit CudaCache(const pymem_cuda_config &cfg = CudaConfig()) {
        check_cuda(pymem_cuda_cache_new(&cfg, &cache_), nullptr);
    }
    CudaCache(const CudaCache &) = delete;
    CudaCache &operator=(const CudaCache &) = delete;
    CudaCache(CudaCache &&other) noexcept : cache_(std::exchange(other.cache_, nullptr)) {}
    CudaCache &operator=(CudaCache &&other) noexcept {
        if (this != &other) {
            pymem_cuda_cache_free(cache_);
            cache_ = std::exchange(other.cache_, nullptr);
        }
        return *this;
    }
    ~CudaCache() { pymem_cuda_cache_free(cache_); }

    pymem_cuda_cache *get() const noexcept { return cache_; }

    /// `size` bytes on `device` for `stream`, freed when the buffer goes.
    DeviceBuffer malloc(int device, std::size_t size, uintptr_t stream = 0) const;

    void empty_cache() const { check_cuda(pymem_cuda_empty_cache(cache_), cache_); }
    void synchronize(int device = 0) const { check_cuda(pymem_cuda_synchronize(cache_, device), cache_); }
    uint64_t memory_allocated(int device = 0) const { return get_stat(pymem_cuda_memory_allocated, device); }
    uint64_t max_memory_allocated(int device = 0) const { return get_stat(pymem_cuda_max_memory_allocated, device); }
    uint64_t memory_reserved(int device = 0) const { return get_stat(pymem_cuda_memory_reserved, device); }
    uint64_t max_memory_reserved(int device = 0) const { return get_stat(pymem_cuda_max_memory_reserved, device); }
    void reset_peak_memory_stats(int device = 0) const {
        check_cuda(pymem_cuda_reset_peak_memory_stats(cache_, device), cache_);
    }
    std::string memory_stats(int device = 0) const {
        char *s = nullptr;
        check_cuda(pymem_cuda_memory_stats(cache_, device, &s), cache_);
        return take(s);
    }
    std::string memory_summary(int device = 0, bool abbreviated = false) const {
        char *s = nullptr;
        check_cuda(pymem_cuda_memory_summary(cache_, device, abbreviated ? 1 : 0, &s), cache_);
        return take(s);
    }
    std::string memory_snapshot() const {
        char *s = nullptr;
        check_cuda(pymem_cuda_memory_snapshot(cache_, &s), cache_);
        return take(s);
    }
    void record_history(bool enabled, std::size_t max_entries = 100000) const {
        check_cuda(pymem_cuda_record_history(cache_, enabled ? 1 : 0, max_entries), cache_);
    }
    void set_per_process_memory_fraction(double fraction, int device = 0) const {
        check_cuda(pymem_cuda_set_per_process_memory_fraction(cache_, device, fraction), cache_);
    }
    /// Gives back every segment, live blocks too; returns the bytes. The
    /// DeviceBuffers alive then own nothing any more: their destructors'
    /// frees are refused quietly.
    uint64_t release_all(int device = 0) const {
        uint64_t released = 0;
        check_cuda(pymem_cuda_release_all(cache_, device, &released), cache_);
        return released;
    }
    /// (free, total) bytes of the device, as nvidia-smi sees them.
    std::pair<uint64_t, uint64_t> mem_get_info(int device = 0) const {
        uint64_t free = 0, total = 0;
        check_cuda(pymem_cuda_mem_get_info(cache_, device, &free, &total), cache_);
        return {free, total};
    }
    uintptr_t stream_create(int device = 0) const {
        uintptr_t s = 0;
        check_cuda(pymem_cuda_stream_create(cache_, device, &s), cache_);
        return s;
    }
    void stream_destroy(uintptr_t stream, int device = 0) const {
        check_cuda(pymem_cuda_stream_destroy(cache_, device, stream), cache_);
    }

private:
    uint64_t get_stat(pymem_status (*fn)(const pymem_cuda_cache *, int, uint64_t *), int device) const {
        uint64_t v = 0;
        check_cuda(fn(cache_, device, &v), cache_);
        return v;
    }
    static std::string take(char *s) {
        detail::unique_cstring owned(s);
        return std::string(s);
    }

    pymem_cuda_cache *cache_ = nullptr;
};

/// A device pointer from a CudaCache, freed (back to the cache) by the
/// destructor; move-only. The cache must outlive it.
class DeviceBuffer {
public:
    DeviceBuffer() noexcept = default;
    DeviceBuffer(const DeviceBuffer &) = delete;
    DeviceBuffer &operator=(const DeviceBuffer &) = delete;
    DeviceBuffer(DeviceBuffer &&o) noexcept
        : cache_(o.cache_), ptr_(std::exchange(o.ptr_, 0)), size_(o.size_) {}
    DeviceBuffer &operator=(DeviceBuffer &&o) noexcept {
        if (this != &o) {
            reset();
            cache_ = o.cache_;
            ptr_ = std::exchange(o.ptr_, 0);
            size_ = o.size_;
        }
        return *this;
    }
    ~DeviceBuffer() { reset(); }

    uint64_t get() const noexcept { return ptr_; }
    std::size_t size() const noexcept { return size_; }

    /// Also used on `stream`: the free waits for its work.
    void record_stream(uintptr_t stream) const {
        check_cuda(pymem_cuda_record_stream(cache_, ptr_, stream), cache_);
    }

    /// Frees now (errors ignored: after release_all the pointer is unknown).
    void reset() noexcept {
        if (ptr_ != 0) {
            (void)pymem_cuda_free(cache_, ptr_);
            ptr_ = 0;
        }
    }

    /// Gives up ownership without freeing; returns the pointer.
    uint64_t release() noexcept { return std::exchange(ptr_, 0); }

private:
    friend class CudaCache;
    DeviceBuffer(pymem_cuda_cache *cache, uint64_t ptr, std::size_t size) noexcept
        : cache_(cache), ptr_(ptr), size_(size) {}

    pymem_cuda_cache *cache_ = nullptr;
    uint64_t ptr_ = 0;
    std::size_t size_ = 0;
};

inline DeviceBuffer CudaCache::malloc(int device, std::size_t size, uintptr_t stream) const {
    uint64_t p = 0;
    check_cuda(pymem_cuda_malloc(cache_, device, size, stream, &p), cache_);
    return DeviceBuffer(cache_, p, size);
}

}  // namespace pymem

#endif  // PYMEM_HPP

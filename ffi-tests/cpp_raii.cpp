// cpp_raii.cpp: include/pymem.hpp, the C++ RAII layer: Runtime and Block
// own and free, move correctly, and every failure is a pymem::Error with
// the right status and message.
#include "pymem.hpp"  // first: the header compiles on its own

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "check.hpp"

static_assert(!std::is_copy_constructible_v<pymem::Runtime>, "Runtime is move-only");
static_assert(!std::is_copy_assignable_v<pymem::Runtime>, "Runtime is move-only");
static_assert(std::is_nothrow_move_constructible_v<pymem::Runtime>, "");
static_assert(std::is_nothrow_move_assignable_v<pymem::Runtime>, "");
static_assert(!std::is_copy_constructible_v<pymem::Block>, "Block is move-only");
static_assert(std::is_nothrow_move_constructible_v<pymem::Block>, "");
static_assert(std::is_nothrow_move_assignable_v<pymem::Block>, "");
static_assert(std::is_nothrow_destructible_v<pymem::Block>, "");
static_assert(std::is_nothrow_destructible_v<pymem::Runtime>, "");
static_assert(std::is_nothrow_copy_constructible_v<pymem::Error>, "exceptions copy without throwing");
static_assert(std::is_base_of_v<std::runtime_error, pymem::Error>, "");

static void test_runtime_and_blocks() {
    pymem::Runtime rt;
    CHECK(rt);
    const uint64_t start = rt.stats().blocks_in_use;
    {
        pymem::Block a(rt, 100);
        CHECK(a && a.size() == 100);
        std::memset(a.get(), 0x11, 100);
        pymem::Block big(rt, 10000);
        pymem::Block zero = pymem::Block::zeroed(rt, 25, 4);
        for (int i = 0; i < 100; i++)
            CHECK(zero.as<unsigned char>()[i] == 0);
        CHECK_EQ_U64(rt.stats().blocks_in_use, start + 3);
        CHECK_EQ_U64(rt.stats().large_allocations, 1);

        // Moves: the source is empty and frees nothing.
        pymem::Block moved(std::move(a));
        CHECK(!a && a.get() == nullptr && a.size() == 0);
        CHECK(moved.as<unsigned char>()[99] == 0x11);
        pymem::Block assigned;
        assigned = std::move(moved);
        CHECK(!moved);
        CHECK_EQ_U64(rt.stats().blocks_in_use, start + 3);
        assigned = std::move(big);  // frees what `assigned` held
        CHECK_EQ_U64(rt.stats().blocks_in_use, start + 2);
        pymem::Block &alias = assigned;  // (an alias: no -Wself-move)
        assigned = std::move(alias);     // self-move keeps the block
        CHECK(assigned && assigned.size() == 10000);

        // resize keeps the contents.
        std::memset(zero.get(), 0x22, 100);
        zero.resize(5000);
        CHECK(zero.size() == 5000 && zero.as<unsigned char>()[99] == 0x22);
        zero.resize(10);
        CHECK(zero.as<unsigned char>()[9] == 0x22);

        // release hands the block to the caller; adopt takes it back.
        void *raw = zero.release();
        CHECK(!zero);
        pymem::Block again = pymem::Block::adopt(rt, raw, 10);
        CHECK(again.get() == raw);

        // In a container, blocks move when the vector grows.
        std::vector<pymem::Block> many;
        for (int i = 0; i < 1000; i++)
            many.emplace_back(rt, static_cast<std::size_t>(1 + i % 700));
        CHECK_EQ_U64(rt.stats().blocks_in_use, start + 2 + 1000);
    }
    CHECK_EQ_U64(rt.stats().blocks_in_use, start);

    // The raw calls, as methods.
    void *p = rt.malloc(0);
    void *q = rt.calloc(4, 4);
    p = rt.realloc(p, 300);
    rt.free(p);
    rt.free(q);
    rt.free(nullptr);
    CHECK_EQ_U64(rt.stats().blocks_in_use, start);

    std::string report = rt.debug_malloc_stats();
    CHECK_CONTAINS(report.c_str(), "Small block threshold = 512, in 33 size classes.");
    CHECK_CONTAINS(report.c_str(), "# arenas allocated total");
    (void)rt.release_free_arenas();
    CHECK_EQ_U64(rt.release_free_arenas(), 0);
    rt.attach();  // already the owner: fine
    CHECK_EQ_U64(rt.stats().blocks_in_use, start);
}

static void test_errors() {
    pymem::Runtime rt;
    const uint64_t start = rt.stats().blocks_in_use;

    // Double free through the raw API: pymem::check turns it into an Error.
    void *p = pymem_malloc(rt.get(), 32);
    CHECK(p != nullptr);
    CHECK_OK(rt.get(), pymem_free(rt.get(), p));
    pymem_status st = pymem_free(rt.get(), p);
    EXPECT_ERROR(pymem::check(st, rt.get()), PYMEM_ERR_DOUBLE_FREE, "double free");
    // ... and through the methods.
    EXPECT_ERROR(rt.free(p), PYMEM_ERR_DOUBLE_FREE, "double free");
    EXPECT_ERROR(rt.realloc(p, 64), PYMEM_ERR_DOUBLE_FREE, "double free");
    void *large = rt.malloc(5000);
    rt.free(large);
    EXPECT_ERROR(rt.free(large), PYMEM_ERR_DOUBLE_FREE, "double free");

    long on_stack = 0;
    EXPECT_ERROR(rt.free(&on_stack), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    EXPECT_ERROR(rt.realloc(&on_stack, 8), PYMEM_ERR_INVALID_POINTER, "invalid pointer");
    pymem::Block b(rt, 64);
    EXPECT_ERROR(rt.free(b.as<char>() + 16), PYMEM_ERR_INVALID_POINTER, "interior");
    EXPECT_ERROR(rt.calloc(SIZE_MAX, 2), PYMEM_ERR_NO_MEMORY, "out of memory");

    // Error carries the status, its name and the message apart.
    try {
        rt.free(&on_stack);
        CHECK(!"not reached");
    } catch (const pymem::Error &e) {
        CHECK(e.code() == PYMEM_ERR_INVALID_POINTER);
        CHECK_STR_EQ(e.name(), "PYMEM_ERR_INVALID_POINTER");
        CHECK(std::strncmp(e.what(), "PYMEM_ERR_INVALID_POINTER: ", 27) == 0);
        CHECK_STR_EQ(e.message(), pymem_last_error(rt.get()));
        pymem::Error copy = e;
        CHECK(copy.code() == e.code());
        CHECK_STR_EQ(copy.message(), e.message());
    }
    // Catchable as std::runtime_error.
    try {
        rt.free(&on_stack);
    } catch (const std::runtime_error &e) {
        CHECK_CONTAINS(e.what(), "invalid pointer");
    }

    // A bad config.
    pymem_config cfg = pymem::Runtime::default_config();
    cfg.geometry = 99;
    EXPECT_ERROR(pymem::Runtime bad(cfg), PYMEM_ERR_INVALID_ARGUMENT, "geometry");

    // The memory limit.
    cfg = pymem::Runtime::default_config();
    cfg.max_bytes = 1024 * 1024;
    pymem::Runtime limited(cfg);
    EXPECT_ERROR(limited.malloc(64 * 1024 * 1024), PYMEM_ERR_NO_MEMORY, "max_bytes");
    EXPECT_ERROR(pymem::Block(limited, 2 * 1024 * 1024), PYMEM_ERR_NO_MEMORY, "max_bytes");
    pymem::Block grow(limited, 1000);
    std::memset(grow.get(), 0x33, 1000);
    EXPECT_ERROR(grow.resize(4 * 1024 * 1024), PYMEM_ERR_NO_MEMORY, "out of memory");
    CHECK(grow.size() == 1000 && grow.as<unsigned char>()[999] == 0x33);  // strong guarantee
    CHECK_EQ_U64(limited.stats().blocks_in_use, 1);
    grow.free();
    CHECK(!grow);
    CHECK_EQ_U64(limited.stats().blocks_in_use, 0);

    b.reset();
    CHECK_EQ_U64(rt.stats().blocks_in_use, start);
}

static void test_debug_hooks() {
    pymem_config cfg = pymem::Runtime::default_config();
    cfg.debug_hooks = 1;
    pymem::Runtime rt(cfg);
    const uint64_t start = rt.stats().blocks_in_use;
    pymem::Block b(rt, 24);
    for (int i = 0; i < 24; i++)
        CHECK(b.as<unsigned char>()[i] == 0xCD);
    b.as<unsigned char>()[24] = 0;  // overrun
    EXPECT_ERROR(b.free(), PYMEM_ERR_HEAP_CORRUPTION, "overrun");
    CHECK(b);  // still owned, still allocated
    CHECK_EQ_U64(rt.stats().blocks_in_use, start + 1);
    b.as<unsigned char>()[24] = 0xFD;  // repaired
    b.free();
    CHECK(!b);

    // A corrupted block's destructor does not throw: pymem refuses the free
    // and keeps the block allocated (pymem_runtime_free would reclaim it).
    unsigned char *raw = nullptr;
    {
        pymem::Block c(rt, 40);
        raw = c.as<unsigned char>();
        raw[-1] = 0;  // underrun
    }
    CHECK_EQ_U64(rt.stats().blocks_in_use, start + 1);
    raw[-1] = 0xFD;  // repaired: still a live block, freed by hand
    rt.free(raw);
    CHECK_EQ_U64(rt.stats().blocks_in_use, start);
}

static void test_moves_and_ownership() {
    pymem::Runtime a;
    pymem::Block kept(a, 50);
    std::memset(kept.get(), 0x44, 50);
    pymem::Runtime b(std::move(a));
    CHECK(!a && a.get() == nullptr);
    CHECK(b);
    // A moved-from runtime is empty: calls fail with NULL_ARGUMENT.
    EXPECT_ERROR(a.malloc(1), PYMEM_ERR_NULL_ARGUMENT, "NULL");
    EXPECT_ERROR((void)a.stats(), PYMEM_ERR_NULL_ARGUMENT, "NULL");
    // The block belongs to the same runtime, now owned by b.
    CHECK(kept.as<unsigned char>()[49] == 0x44);
    CHECK_EQ_U64(b.stats().blocks_in_use, 1);
    kept.reset();
    CHECK_EQ_U64(b.stats().blocks_in_use, 0);

    // Move assignment frees the runtime it replaces (with its blocks).
    pymem::Runtime c;
    void *leftover = c.malloc(100);
    (void)leftover;
    c = std::move(b);
    CHECK(!b && c);
    CHECK_EQ_U64(c.stats().blocks_in_use, 0);

    // release/adopt round trip.
    pymem_runtime *raw = c.release();
    CHECK(!c && raw != nullptr);
    pymem::Runtime d = pymem::Runtime::adopt(raw);
    CHECK(d.get() == raw);
    pymem::Runtime empty = pymem::Runtime::adopt(nullptr);
    CHECK(!empty);
}

static void test_threads() {
    pymem::Runtime rt;
    pymem::Block b(rt, 16);
    pymem_status seen = PYMEM_OK;
    std::string message;
    std::thread t([&] {
        try {
            (void)rt.malloc(8);
        } catch (const pymem::Error &e) {
            seen = e.code();
            message = e.message();
        }
    });
    t.join();
    CHECK(seen == PYMEM_ERR_BUSY);
    CHECK_CONTAINS(message.c_str(), "belongs to another thread");

    // Hand over: detach here, attach and use there, detach, attach back.
    rt.detach();
    EXPECT_ERROR(rt.free(b.get()), PYMEM_ERR_BUSY, "another thread");
    std::thread u([&] {
        rt.attach();
        pymem::Block there(rt, 1000);
        std::memset(there.get(), 1, 1000);
        there.reset();
        rt.detach();
    });
    u.join();
    rt.attach();
    b.reset();
    CHECK_EQ_U64(rt.stats().blocks_in_use, 0);
}

int main() {
    test_runtime_and_blocks();
    test_errors();
    test_debug_hooks();
    test_moves_and_ownership();
    test_threads();
    std::printf("cpp_raii: OK\n");
    return 0;
}

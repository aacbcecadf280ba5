// cpp_objects.cpp: include/pymem.hpp's object layer. pymem::Ref owns one
// reference (destructor = decref, copy = incref, move = steal), counts are
// observed through refcount(); failed calls throw pymem::Error with the
// library's status and message; native functions written in C++ return
// their exceptions as statuses (none crosses into pymem); HostType<T> keeps
// a C++ object in each instance and destroys it in the type's dealloc.
// Every test ends with the allocator's blocks back to their baseline
// before its Runtime is destroyed.
#include "pymem.hpp"  // first: the header compiles on its own

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "check.hpp"

using pymem::Args;
using pymem::Ref;

static_assert(std::is_copy_constructible_v<Ref>, "copy = incref");
static_assert(std::is_copy_assignable_v<Ref>, "");
static_assert(std::is_nothrow_move_constructible_v<Ref>, "move = steal, never throws");
static_assert(std::is_nothrow_move_assignable_v<Ref>, "");
static_assert(std::is_nothrow_destructible_v<Ref>, "the destructor never throws");
static_assert(std::is_nothrow_swappable_v<Ref>, "");
static_assert(std::is_constructible_v<bool, Ref &> && !std::is_convertible_v<Ref, bool>,
              "operator bool is explicit");
static_assert(std::is_base_of_v<pymem::RuntimeView, pymem::Runtime>, "");

static uint64_t blocks(const pymem::Runtime &rt) { return rt.stats().blocks_in_use; }

// The runtime's blocks after its first object call (the singletons).
static uint64_t baseline(const pymem::Runtime &rt) {
    (void)rt.none();
    rt.clear_free_lists();
    return blocks(rt);
}

static void check_baseline(const pymem::Runtime &rt, uint64_t base) {
    rt.clear_free_lists();
    CHECK_EQ_U64(blocks(rt), base);
}

/* ------------------------------------------------------------------------ */

static void test_raii_counts() {
    pymem::Runtime rt;
    const uint64_t base = baseline(rt);
    {
        Ref x = rt.floating(2.5);
        CHECK(x && x.refcount() == 1);
        {
            Ref y = x;  // copy: incref
            CHECK(y.is(x) && x.refcount() == 2);
            Ref z;
            CHECK(!z);
            z = y;  // copy assignment
            CHECK(x.refcount() == 3);
            z = rt.str("something else");  // drops x's reference, takes the new one
            CHECK(x.refcount() == 2);
        }
        CHECK(x.refcount() == 1);  // y and z gone

        // Move: the reference changes hands, no count changes.
        Ref moved = std::move(x);
        CHECK(!x && x.get() == nullptr);  // NOLINT: testing the moved-from state
        CHECK(moved.refcount() == 1);
        Ref target = rt.floating(9.0);
        const std::size_t freed_id = target.id();
        target = std::move(moved);  // the float 9.0 is freed
        CHECK(!moved && target.refcount() == 1);
        CHECK(target.id() != freed_id);
        Ref &alias = target;
        target = alias;  // self copy-assignment keeps the reference
        CHECK(target.refcount() == 1);
        target = std::move(alias);  // self move-assignment too
        CHECK(target && target.refcount() == 1);

        // swap, release/steal, borrow, reset.
        Ref other = rt.integer(100000);
        swap(target, other);
        CHECK(target.as_int() == 100000 && other.as_float() == 2.5);
        pymem_object *raw = other.release();
        CHECK(!other);
        CHECK_REFCOUNT(rt.get(), raw, 1);  // still alive: the caller owns it now
        Ref adopted = Ref::steal(rt.get(), raw);
        CHECK(adopted.refcount() == 1);
        Ref borrowed = Ref::borrow(rt.get(), raw);  // a reference of its own
        CHECK(adopted.refcount() == 2);
        borrowed.reset();
        CHECK(!borrowed && adopted.refcount() == 1);
        borrowed.reset();  // twice: nothing
        CHECK(Ref::steal(rt.get(), nullptr).get() == nullptr);
        CHECK(!Ref::borrow(rt.get(), nullptr));

        // In containers: each holder is one count, an item held twice two.
        Ref item = rt.str("shared item");
        Ref l = rt.list({item, item});
        CHECK(item.refcount() == 3 && l.len() == 2);
        Ref t = rt.tuple({item, item, l});
        CHECK(item.refcount() == 5 && l.refcount() == 2);
        Ref d = rt.dict({{item, l}});
        CHECK(item.refcount() == 6 && l.refcount() == 3);
        l.reset();  // still held by t and d
        CHECK(item.refcount() == 6);
        t.reset();
        CHECK(item.refcount() == 4);  // ours, the list's two, the dict's key
        d.reset();  // the list goes with it
        CHECK(item.refcount() == 1);

        // A std::vector of Refs: copies and moves as the vector grows.
        std::vector<Ref> many;
        for (int i = 0; i < 1000; i++)
            many.push_back(item);
        CHECK(item.refcount() == 1001);
        std::vector<Ref> copy = many;
        CHECK(item.refcount() == 2001);
        many.clear();
        copy.erase(copy.begin(), copy.begin() + 500);
        CHECK(item.refcount() == 501);
    }
    check_baseline(rt, base);
}

static void test_identity_and_python_semantics() {
    pymem::Runtime rt;
    const uint64_t base = baseline(rt);
    {
        Ref none = rt.none();
        CHECK(none.immortal() && none.is(rt.none()));
        CHECK(static_cast<uint64_t>(none.refcount()) == PYMEM_IMMORTAL_REFCNT);
        CHECK(rt.boolean(true).is(rt.boolean(true)) && !rt.boolean(true).is(rt.boolean(false)));
        CHECK(rt.integer(7).is(rt.integer(7)));     // the small-int cache
        CHECK(!rt.integer(257).is(rt.integer(257)));  // outside it
        CHECK(rt.integer(257) == rt.integer(257));
        Ref x = rt.list();
        Ref y = x;  // y = x
        CHECK(y.is(x) && y.id() == x.id());

        // == is Python's: 1 == 1.0 == True; hashes agree.
        CHECK(rt.integer(1) == rt.floating(1.0) && rt.floating(1.0) == rt.boolean(true));
        CHECK(rt.integer(1).hash() == rt.floating(1.0).hash());
        CHECK(rt.integer(-1).hash() == -2);
        CHECK(rt.tuple({rt.integer(1), rt.integer(2)}).hash() == -3550055125485641917LL);
        CHECK(rt.list({rt.integer(1), rt.integer(2)}) == rt.list({rt.integer(1), rt.floating(2.0)}));
        CHECK(rt.tuple({rt.integer(1)}) != rt.list({rt.integer(1)}));
        Ref nan = rt.floating(NAN);
        CHECK(nan != nan);

        // repr.
        Ref nested = rt.list({rt.integer(1), rt.floating(1e16), rt.str("it's"),
                              rt.tuple({rt.none(), rt.boolean(true)}), rt.dict({{rt.str("k"), rt.list()}})});
        CHECK(nested.repr() == "[1, 1e+16, \"it's\", (None, True), {'k': []}]");
        CHECK(std::string(nested.type_name()) == "list");
        Ref self = rt.list();
        self.append(self);
        CHECK(self.repr() == "[[...]]");
        self.pop().reset();  // break the cycle by hand
        CHECK(self.len() == 0);

        // Lists.
        Ref l = rt.list();
        l.append(rt.integer(2));
        l.insert(0, rt.integer(1));
        l.insert(100, rt.integer(4));
        l.insert(2, rt.integer(3));
        CHECK(l.repr() == "[1, 2, 3, 4]");
        l.set(0, rt.str("one"));
        CHECK(l[0].as_str() == "one" && l.get(3).as_int() == 4);
        CHECK(l.pop().as_int() == 4 && l.pop(0).as_str() == "one" && l.len() == 2);
        Ref t = rt.tuple({rt.integer(10), rt.integer(20)});
        CHECK(t.len() == 2 && t[1].as_int() == 20);
        CHECK(rt.tuple({}).is(rt.tuple(std::vector<Ref>{})) && rt.tuple({}).immortal());

        // Dicts, in insertion order.
        Ref d = rt.dict();
        d.setitem(rt.str("b"), rt.integer(2));
        d.setitem(rt.str("a"), rt.integer(1));
        d.setitem(rt.str("c"), rt.integer(3));
        d.delitem(rt.str("a"));
        d.setitem(rt.str("a"), rt.integer(10));
        d.setitem(rt.floating(1.0), rt.str("float key"));
        d.setitem(rt.integer(1), rt.str("int key"));  // the same key
        CHECK(d.len() == 4);
        CHECK(d.repr() == "{'b': 2, 'c': 3, 'a': 10, 1.0: 'int key'}");
        CHECK(d.contains(rt.boolean(true)) && !d.contains(rt.str("zz")));
        CHECK(d.getitem(rt.str("c")).as_int() == 3);
        std::vector<std::pair<Ref, Ref>> items = d.items();
        CHECK(items.size() == 4 && items[0].first.as_str() == "b" && items[2].second.as_int() == 10);

        // Strings.
        Ref s = rt.str(std::string_view("a\0b", 3));
        CHECK(s.str_view().size() == 3 && s.str_view()[1] == '\0');
        CHECK(rt.str("").is(rt.str("")) && rt.str("q").immortal());
        Ref i1 = rt.intern("interned text");
        CHECK(i1.is(rt.intern("interned text")) && !i1.is(rt.str("interned text")));

        // Attributes.
        Ref m = rt.module("config");
        m.setattr("debug", rt.boolean(true));
        m.setattr("level", rt.integer(3));
        CHECK(m.hasattr("debug") && !m.hasattr("missing"));
        CHECK(m.getattr("level").as_int() == 3);
        m.delattr("level");
        CHECK(!m.hasattr("level"));
        CHECK(m.repr() == "<module 'config'>");
    }
    check_baseline(rt, base);
}

static void test_errors() {
    pymem::Runtime rt;
    const uint64_t base = baseline(rt);
    {
        Ref s = rt.str("text");
        Ref l = rt.list({rt.integer(1)});
        Ref d = rt.dict();
        // Wrong types.
        EXPECT_ERROR((void)s.as_int(), PYMEM_ERR_TYPE, "expected int, got str");
        EXPECT_ERROR((void)l.as_float(), PYMEM_ERR_TYPE, "got list");
        EXPECT_ERROR((void)rt.integer(5).str_view(), PYMEM_ERR_TYPE, "got int");
        EXPECT_ERROR(d.append(s), PYMEM_ERR_TYPE, "expected list, got dict");
        EXPECT_ERROR((void)l.getitem(s), PYMEM_ERR_TYPE, "got list");
        EXPECT_ERROR((void)s.len(), PYMEM_ERR_TYPE, "got str");
        EXPECT_ERROR((void)l.payload(), PYMEM_ERR_TYPE, "got list");
        EXPECT_ERROR(rt.integer(5).setattr("x", s), PYMEM_ERR_TYPE, "'int'");
        EXPECT_ERROR((void)l(), PYMEM_ERR_TYPE, "expected function, got list");
        // Unhashable.
        EXPECT_ERROR(d.setitem(l, s), PYMEM_ERR_TYPE, "unhashable type: 'list'");
        EXPECT_ERROR((void)d.hash(), PYMEM_ERR_TYPE, "unhashable type: 'dict'");
        EXPECT_ERROR((void)d.contains(l), PYMEM_ERR_TYPE, "unhashable type: 'list'");
        // Index and key.
        EXPECT_ERROR((void)l.get(1), PYMEM_ERR_INDEX, "out of range");
        EXPECT_ERROR(l.set(5, s), PYMEM_ERR_INDEX, "out of range");
        EXPECT_ERROR((void)rt.list().pop(), PYMEM_ERR_INDEX, "out of range");
        EXPECT_ERROR((void)rt.tuple({s})[1], PYMEM_ERR_INDEX, "tuple index 1 out of range");
        EXPECT_ERROR((void)d.getitem(s), PYMEM_ERR_KEY, "'text'");
        EXPECT_ERROR(d.delitem(s), PYMEM_ERR_KEY, "'text'");
        EXPECT_ERROR((void)rt.module("m").getattr("nope"), PYMEM_ERR_KEY, "has no attribute 'nope'");
        // Invalid UTF-8.
        EXPECT_ERROR((void)rt.str("\xff\xfe"), PYMEM_ERR_INVALID_ARGUMENT, "invalid UTF-8");
        EXPECT_ERROR((void)rt.module("\xc0\x80"), PYMEM_ERR_INVALID_ARGUMENT, "not valid UTF-8");
        // Not an object; an empty Ref; a freed object.
        long on_stack[4] = {0, 0, 0, 0};
        EXPECT_ERROR((void)Ref::borrow(rt.get(), reinterpret_cast<pymem_object *>(on_stack)),
                     PYMEM_ERR_INVALID_POINTER, "not a live object");
        EXPECT_ERROR((void)Ref().repr(), PYMEM_ERR_NULL_ARGUMENT, "runtime is NULL");
        EXPECT_ERROR((void)Ref::steal(rt.get(), nullptr).refcount(), PYMEM_ERR_NULL_ARGUMENT, "o is NULL");
        EXPECT_ERROR(l.append(Ref()), PYMEM_ERR_NULL_ARGUMENT, "item is NULL");
        // Failed calls changed nothing.
        CHECK(s.refcount() == 1 && l.refcount() == 1 && l.len() == 1 && d.len() == 0);
        // Catchable as std::runtime_error; the status is kept.
        try {
            (void)s.as_float();
            CHECK(!"not reached");
        } catch (const std::runtime_error &e) {
            CHECK_CONTAINS(e.what(), "PYMEM_ERR_TYPE: pymem_float_value: expected float, got str");
        }
        // A Ref of another runtime, used with this one's objects.
        pymem::Runtime other;
        Ref foreign = other.list();
        EXPECT_ERROR(l.append(foreign), PYMEM_ERR_INVALID_POINTER, "not a live object of this runtime");
        EXPECT_ERROR(foreign.append(s), PYMEM_ERR_INVALID_POINTER, "not a live object of this runtime");
        // Another thread: every call throws BUSY; a copy cannot be made
        // there, and nothing changes.
        std::thread t([&] {
            EXPECT_ERROR((void)s.repr(), PYMEM_ERR_BUSY, "belongs to another thread");
            EXPECT_ERROR(Ref copy = s, PYMEM_ERR_BUSY, "another thread");
            EXPECT_ERROR((void)rt.integer(5000), PYMEM_ERR_BUSY, "another thread");
        });
        t.join();
        CHECK(s.refcount() == 1);
    }
    check_baseline(rt, base);
}

/* ------------------------------------------------------------------------ */
/* Native functions in C++ */

static Ref add(const Args &args, void *userdata) {
    ++*static_cast<int *>(userdata);
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < args.size(); i++)
        sum += args[i].as_int();  // a str argument throws Error(TYPE)
    return args.runtime().integer(sum);
}

static Ref nothing(const Args &, void *) { return Ref(); }  // None

static Ref throws_std(const Args &, void *) { throw std::runtime_error("the host gave up"); }

static Ref throws_key(const Args &args, void *) {
    return args.runtime().dict().getitem(args[0]);  // always missing: Error(KEY)
}

static Ref needs_two(const Args &args, void *) {
    Ref second = args[1];  // Error(INDEX) with one argument
    return second;
}

static Ref throws_int(const Args &, void *) { throw 42; }

static Ref make_pair(const Args &args, void *) {
    pymem::RuntimeView rt = args.runtime();
    return rt.tuple({args[0], rt.list({args[0], rt.str("made inside")})});
}

// Written against pymem.h by hand, with status_guard.
static pymem_status by_hand(pymem_runtime *rt, pymem_object *const *args, size_t nargs, pymem_object **result,
                            void *) {
    return pymem::status_guard([&] {
        if (nargs != 1)
            throw std::invalid_argument("by_hand takes one argument");
        Ref x = Ref::borrow(rt, args[0]);
        *result = pymem::RuntimeView(rt).integer(x.as_int() * 2).release();
    });
}

static void test_native_functions() {
    pymem::Runtime rt;
    const uint64_t base = baseline(rt);
    {
        int calls = 0;
        Ref f = rt.function<add>("add", &calls);
        CHECK(std::string(f.type_name()) == "function");
        Ref a = rt.integer(40000), b = rt.integer(2000);
        CHECK(f(a, b).as_int() == 42000 && calls == 1);
        CHECK(f.call({a, a, a}).as_int() == 120000 && calls == 2);
        CHECK(f().as_int() == 0);
        CHECK(a.refcount() == 1);  // arguments are borrowed

        // Exceptions become statuses, never cross into pymem.
        pymem::clear_callback_exception();
        EXPECT_ERROR((void)f(a, rt.str("x")), PYMEM_ERR_TYPE, "native function 'add' returned PYMEM_ERR_TYPE");
        {
            const std::string caught = pymem::last_callback_exception();
            CHECK_CONTAINS(caught.c_str(), "expected int, got str");
        }
        EXPECT_ERROR((void)rt.function<throws_std>("gives_up")(), PYMEM_ERR_INVALID_ARGUMENT,
                     "native function 'gives_up' returned PYMEM_ERR_INVALID_ARGUMENT");
        CHECK(pymem::last_callback_exception() == "the host gave up");
        EXPECT_ERROR((void)rt.function<throws_key>("lookup")(a), PYMEM_ERR_KEY, "'lookup'");
        EXPECT_ERROR((void)rt.function<needs_two>("two")(a), PYMEM_ERR_INDEX, "'two'");
        {
            const std::string caught = pymem::last_callback_exception();
            CHECK_CONTAINS(caught.c_str(), "argument 1 missing (1 given)");
        }
        EXPECT_ERROR((void)rt.function<throws_int>("odd")(), PYMEM_ERR_INVALID_ARGUMENT, "'odd'");
        CHECK(pymem::last_callback_exception() == "a C++ exception of unknown type");
        CHECK(rt.function<nothing>("nothing")().is(rt.none()));

        Ref pair = rt.function<make_pair>("pair")(a);
        CHECK(pair.repr() == "(40000, [40000, 'made inside'])");
        CHECK(a.refcount() == 3);
        pair.reset();
        CHECK(a.refcount() == 1);

        Ref twice = rt.function("by_hand", by_hand);
        CHECK(twice(b).as_int() == 4000);
        EXPECT_ERROR((void)twice(), PYMEM_ERR_INVALID_ARGUMENT, "'by_hand'");
        CHECK(pymem::last_callback_exception() == "by_hand takes one argument");

        // The raw trampoline with pymem_function_new.
        pymem_object *raw = nullptr;
        CHECK_OK(rt.get(), pymem_function_new(rt.get(), "raw_add", &pymem::native<add>, &calls, &raw));
        Ref raw_f = rt.steal(raw);
        CHECK(raw_f(b).as_int() == 2000);
    }
    check_baseline(rt, base);
}

/* ------------------------------------------------------------------------ */
/* Host types with a C++ payload */

struct Node {
    static int alive;
    std::string label;
    std::vector<int> data;
    Ref child;

    Node(std::string l, Ref c) : label(std::move(l)), data(100, 7), child(std::move(c)) { ++alive; }
    ~Node() { --alive; }
    Node(const Node &) = delete;
    Node &operator=(const Node &) = delete;

    void clear() { child.reset(); }
    int traverse(pymem_visit_fn visit, void *arg) const { return pymem::visit(child, visit, arg); }
};
int Node::alive = 0;

struct Fails {
    explicit Fails(int) { throw std::runtime_error("constructor failed"); }
};

struct Grumpy {
    static int destroyed;
    void clear() { throw std::logic_error("grumpy clear"); }
    ~Grumpy() { ++destroyed; }
};
int Grumpy::destroyed = 0;

struct alignas(16) Wide {
    double values[4] = {1, 2, 3, 4};
};

static void test_host_types() {
    pymem::Runtime rt;
    const uint64_t base = baseline(rt);
    {
        pymem::HostType<Node> nodes(rt, "Node");
        Ref a = nodes.make(std::string("a node with a label long enough to live on the heap"), Ref());
        Ref b = nodes.make("b", a);
        CHECK(Node::alive == 2);
        CHECK(a.refcount() == 2 && b.refcount() == 1);
        CHECK(std::string(b.type_name()) == "Node" && b.is_instance(nodes.get()));
        CHECK(nodes.of(b).label == "b" && nodes.of(b).child.is(a));
        CHECK(nodes.of(a).data.size() == 100 && !nodes.of(a).child);
        CHECK(reinterpret_cast<std::uintptr_t>(b.payload()) % 16 == 0);
        EXPECT_ERROR((void)nodes.of(rt.list()), PYMEM_ERR_TYPE, "got list");
        // The instances keep attributes besides the payload.
        b.setattr("tag", rt.str("bee"));
        CHECK(b.getattr("tag").as_str() == "bee");

        b.reset();  // clear drops the child, dealloc destroys the Node
        CHECK(Node::alive == 1 && a.refcount() == 1);
        a.reset();
        CHECK(Node::alive == 0);

        // A long chain, freed by dropping its head: every Node destroyed,
        // no recursion on the stack.
        const std::size_t n = scaled(300000, 10000);
        Ref head;
        for (std::size_t i = 0; i < n; i++)
            head = nodes.make(std::to_string(i), std::move(head));
        CHECK(static_cast<std::size_t>(Node::alive) == n);
        CHECK(nodes.of(head).label == std::to_string(n - 1));
        head.reset();
        CHECK(Node::alive == 0);

        // A Node in a list; the list holds it after our Ref goes.
        Ref l = rt.list({nodes.make("in a list", rt.str("payload child"))});
        CHECK(Node::alive == 1 && l[0].refcount() == 2);
        l.reset();
        CHECK(Node::alive == 0);

        // A constructor that throws: nothing is leaked, no destructor runs.
        pymem::HostType<Fails> fails(rt, "Fails");
        rt.clear_free_lists();
        const uint64_t before = blocks(rt);
        try {
            (void)fails.make(1);
            CHECK(!"not reached");
        } catch (const std::runtime_error &e) {
            CHECK_CONTAINS(e.what(), "constructor failed");
        }
        CHECK_EQ_U64(blocks(rt), before);

        // An exception in clear() stays in C++: recorded, not propagated.
        pymem::HostType<Grumpy> grumpy(rt, "Grumpy");
        pymem::clear_callback_exception();
        Ref g = grumpy.make();
        g.reset();
        CHECK(Grumpy::destroyed == 1);
        CHECK(pymem::last_callback_exception() == "grumpy clear");

        // An over-aligned payload.
        pymem::HostType<Wide> wide(rt, "Wide");
        Ref w = wide.make();
        CHECK(reinterpret_cast<std::uintptr_t>(&wide.of(w)) % 16 == 0 && wide.of(w).values[3] == 4);

        // A raw instance of the type (not made by make) holds no Node.
        Ref bare = rt.instance(nodes.get());
        EXPECT_ERROR((void)nodes.of(bare), PYMEM_ERR_TYPE, "holds no C++ object");
    }
    // The Node type keeps the name of the attribute set on its instances
    // ("tag", an interned str) for the runtime's life, as CPython's split
    // keys do.
    check_baseline(rt, base + 1);
}

// Live instances when the Runtime is destroyed: their dealloc destroys each
// C++ object (valgrind sees no leak of their heap memory). (No Node holds
// another Node here: see objects_host_types.c, teardown with decref.)
static void test_teardown() {
    Node::alive = 0;
    {
        pymem::Runtime rt;
        pymem::HostType<Node> nodes(rt, "Node");
        Ref keep = rt.list();
        for (int i = 0; i < 50; i++)
            keep.append(nodes.make(std::string(100, 'x') + std::to_string(i), rt.str("child string object")));
        Ref loose = nodes.make("loose", rt.floating(1.5));
        CHECK(Node::alive == 51);
        (void)keep.release();  // left to the runtime on purpose
        (void)loose.release();
    }
    CHECK(Node::alive == 0);
}

int main() {
    test_raii_counts();
    test_identity_and_python_semantics();
    test_errors();
    test_native_functions();
    test_host_types();
    test_teardown();
    std::printf("cpp_objects: OK\n");
    return 0;
}

// cpp_namespaces.cpp: pymem::Namespace, the RAII face of the namespace
// calls: bindings, who/whos, hidden names, reset, why_alive, and errors as
// pymem::Error exceptions with the C status.
#include <cstdio>
#include <string>
#include <vector>

#include "pymem.hpp"
#include "check.h"

int main() {
    pymem::Runtime rt;
    {
        pymem::Namespace ns(rt, "main", PYMEM_NS_NOTEBOOK);
        CHECK_STR_EQ(ns.object().type_name(), "namespace");
        CHECK(ns.who().empty());
        ns.set("numbers", rt.list({rt.integer(1000), rt.integer(1001)}));
        ns.set("ratio", rt.floating(0.25));
        ns.set("math", rt.module("math"));
        const std::vector<std::string> expected{"numbers", "ratio"};
        CHECK(ns.who() == expected);
        CHECK(ns.who("float") == std::vector<std::string>{"ratio"});
        const std::string table = ns.whos();
        std::printf("%s", table.c_str());
        CHECK_CONTAINS(table.c_str(), "numbers    list    ");
        CHECK_CONTAINS(table.c_str(), "n=2\n");
        CHECK_CONTAINS(table.c_str(), "reachable from 2 variables");
        pymem::Ref numbers = ns.get("numbers");
        const std::string why = ns.why_alive("numbers");
        CHECK_CONTAINS(why.c_str(), "namespace 'main': numbers\n");
        numbers.reset();

        ns.hide("ratio");
        CHECK(ns.who() == std::vector<std::string>{"numbers"});

        bool threw = false;
        try {
            ns.get("missing");
        } catch (const pymem::Error &e) {
            threw = true;
            CHECK_EQ_U64(e.code(), PYMEM_ERR_KEY);
            CHECK_CONTAINS(e.what(), "name 'missing' is not defined in namespace 'main'");
        }
        CHECK(threw);
        threw = false;
        try {
            ns.reset("(");
        } catch (const pymem::Error &e) {
            threw = true;
            CHECK_EQ_U64(e.code(), PYMEM_ERR_INVALID_ARGUMENT);
            CHECK_CONTAINS(e.what(), "invalid regex");
        }
        CHECK(threw);

        const pymem_reset_report report = ns.reset();
        CHECK_EQ_U64(report.names_removed, 1);
        CHECK(report.objects_freed >= 3);
        CHECK(ns.who().empty());
        CHECK(ns.get("math").type_name() == std::string("module"));
        ns.del("math");
        ns.set("again", rt.list());
        ns.xdel("again");
        CHECK(ns.who().empty());
    }
    std::printf("cpp_namespaces: OK\n");
    return 0;
}

// The CMake consumer's C++ program: pymem.hpp through pymem::pymem, a
// double free as a pymem::Error, and the memory report with one mark.
#include <pymem.hpp>

#include <cstdio>
#include <string>

int main() {
    pymem::Runtime rt;
    rt.report_mark("start");
    void *p = rt.malloc(100);
    pymem_free(rt.get(), p);
    try {
        pymem::check(pymem_free(rt.get(), p), rt.get());
        std::fprintf(stderr, "the double free was not refused\n");
        return 1;
    } catch (const pymem::Error &e) {
        std::printf("C++ via CMake: %s\n", e.what());
        if (e.code() != PYMEM_ERR_DOUBLE_FREE) return 1;
    }
    const std::string page = rt.report_html();
    if (page.find("data-label=\"start\"") == std::string::npos) {
        std::fprintf(stderr, "the report has no mark\n");
        return 1;
    }
    return 0;
}

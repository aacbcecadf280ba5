// check.hpp: what the C++ ffi-tests share on top of check.h.
//
//   EXPECT_ERROR(body, code, needle)   `body` (statements) must throw
//                                      pymem::Error with status `code`, a
//                                      message containing `needle`, and a
//                                      what() that names the status
#ifndef PYMEM_FFI_TESTS_CHECK_HPP
#define PYMEM_FFI_TESTS_CHECK_HPP

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "check.h"
#include "pymem.hpp"

template <class F>
static void expect_error(const char *file, int line, F body, pymem_status code, const char *needle) {
    try {
        body();
    } catch (const pymem::Error &e) {
        if (e.code() != code || std::strstr(e.message(), needle) == nullptr ||
            std::strstr(e.what(), pymem_status_name(code)) == nullptr) {
            std::fprintf(stderr, "%s:%d: expected %s containing \"%s\", got %s: \"%s\"\n", file, line,
                         pymem_status_name(code), needle, e.name(), e.what());
            std::exit(1);
        }
        return;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s:%d: expected pymem::Error, got std::exception: %s\n", file, line, e.what());
        std::exit(1);
    }
    std::fprintf(stderr, "%s:%d: expected pymem::Error %s, nothing was thrown\n", file, line,
                 pymem_status_name(code));
    std::exit(1);
}

#define EXPECT_ERROR(body, code, needle) expect_error(__FILE__, __LINE__, [&] { body; }, code, needle)

#endif

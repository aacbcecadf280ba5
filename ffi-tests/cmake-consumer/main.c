/* The CMake consumer's C program: the header and library found through
 * find_package(pymem), the library's version equal to the package's and
 * to the header's macros, and a double free refused. */
#include <pymem.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    char header[32];
    snprintf(header, sizeof header, "%d.%d.%d", PYMEM_VERSION_MAJOR, PYMEM_VERSION_MINOR, PYMEM_VERSION_PATCH);
    if (strcmp(pymem_version(), EXPECTED_VERSION) != 0 || strcmp(header, EXPECTED_VERSION) != 0) {
        fprintf(stderr, "version: library %s, header %s, CMake package %s\n", pymem_version(), header,
                EXPECTED_VERSION);
        return 1;
    }
    pymem_runtime *rt;
    if (pymem_runtime_new(NULL, &rt) != PYMEM_OK) {
        fprintf(stderr, "%s\n", pymem_last_error(NULL));
        return 1;
    }
    char *p = pymem_malloc(rt, 100);
    pymem_free(rt, p);
    pymem_status st = pymem_free(rt, p);
    printf("pymem %s via CMake: %s\n", pymem_version(), pymem_status_name(st));
    return st == PYMEM_ERR_DOUBLE_FREE && pymem_runtime_free(rt) == PYMEM_OK ? 0 : 1;
}

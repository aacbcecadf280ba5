//! `cargo xtask dist --prefix DIR`: a release build installed the way a
//! Unix library is, for hosts that use pkg-config:
//!
//! ```text
//! DIR/lib/libpymem.so.<version>            the shared library (soname libpymem.so.0)
//! DIR/lib/libpymem.so.0 -> libpymem.so.<version>
//! DIR/lib/libpymem.so   -> libpymem.so.0   (the link-time name)
//! DIR/lib/libpymem.a
//! DIR/lib/pkgconfig/pymem.pc
//! DIR/include/pymem.h   (and pymem.hpp when the repository has it)
//! DIR/lib/cmake/pymem/pymem-config.cmake           imported targets pymem::pymem
//! DIR/lib/cmake/pymem/pymem-config-version.cmake   (shared), pymem::pymem_static
//! ```
//!
//! The CMake package is relocatable: its paths are computed from the
//! config file's own location, so a prefix may be moved or unpacked
//! anywhere (the pkg-config file names the prefix it was installed to).

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{build_release, mkdir, release_dir, symlink_force, workspace_version, write_file};

/// Parses `--prefix DIR` (or `--prefix=DIR`) and installs there.
pub fn cmd(root: &Path, args: &[String]) -> Result<(), String> {
    let mut prefix = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--prefix" {
            prefix = it.next().cloned();
        } else if let Some(p) = arg.strip_prefix("--prefix=") {
            prefix = Some(p.to_string());
        } else {
            return Err(format!("dist: unknown argument {arg:?} (usage: cargo xtask dist --prefix DIR)"));
        }
    }
    let prefix = prefix.ok_or("usage: cargo xtask dist --prefix DIR")?;
    build_release(root, None)?;
    let installed = install(root, Path::new(&prefix))?;
    for path in installed {
        println!("installed {}", path.display());
    }
    Ok(())
}

/// Copies an already built release into `prefix` (made absolute) and writes
/// `pymem.pc`. Returns the paths written.
pub fn install(root: &Path, prefix: &Path) -> Result<Vec<PathBuf>, String> {
    let prefix = if prefix.is_absolute() {
        prefix.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| e.to_string())?.join(prefix)
    };
    let version = workspace_version(root)?;
    let major = version.split('.').next().unwrap_or("0");
    let lib = prefix.join("lib");
    let include = prefix.join("include");
    let pkgconfig = lib.join("pkgconfig");
    for dir in [&lib, &include, &pkgconfig] {
        mkdir(dir)?;
    }
    let built = release_dir(root);
    let mut written = Vec::new();

    let real_name = format!("libpymem.so.{version}");
    let soname = format!("libpymem.so.{major}");
    copy(&built.join("libpymem.so"), &lib.join(&real_name), &mut written)?;
    symlink_force(&real_name, &lib.join(&soname))?;
    written.push(lib.join(&soname));
    symlink_force(&soname, &lib.join("libpymem.so"))?;
    written.push(lib.join("libpymem.so"));
    copy(&built.join("libpymem.a"), &lib.join("libpymem.a"), &mut written)?;

    for header in ["pymem.h", "pymem.hpp"] {
        let src = root.join("include").join(header);
        if src.exists() {
            copy(&src, &include.join(header), &mut written)?;
        }
    }

    let pc = pkgconfig.join("pymem.pc");
    write_file(&pc, &pc_text(&prefix, &version))?;
    written.push(pc);

    let cmake = lib.join("cmake/pymem");
    for (name, text) in
        [("pymem-config.cmake", cmake_config(&real_name)), ("pymem-config-version.cmake", cmake_version(&version))]
    {
        write_file(&cmake.join(name), &text)?;
        written.push(cmake.join(name));
    }
    Ok(written)
}

/// The pkg-config file. `Libs.private` lists what the static library needs
/// from the system (Rust's std: threads, dlopen, libm) for
/// `pkg-config --static`; the C compiler driver adds libgcc_s itself.
fn pc_text(prefix: &Path, version: &str) -> String {
    format!(
        "prefix={}\n\
         libdir=${{prefix}}/lib\n\
         includedir=${{prefix}}/include\n\
         \n\
         Name: pymem\n\
         Description: CPython's memory model (allocator, reference counts, cycle collector) as a C library\n\
         Version: {version}\n\
         Libs: -L${{libdir}} -lpymem\n\
         Libs.private: -lpthread -ldl -lm\n\
         Cflags: -I${{includedir}}\n",
        prefix.display()
    )
}

/// `find_package(pymem)`'s config file: the two imported targets, their
/// paths computed from where the file is (`<prefix>/lib/cmake/pymem`).
/// The static library needs what Rust's std needs from the system, as
/// `Libs.private` says for pkg-config.
fn cmake_config(real_name: &str) -> String {
    format!(
        r#"# pymem-config.cmake -- written by `cargo xtask dist`.
#
#   find_package(pymem 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE pymem::pymem)          # libpymem.so.0
#   target_link_libraries(app PRIVATE pymem::pymem_static)   # libpymem.a
#
# Relocatable: every path below is computed from this file's location,
# <prefix>/lib/cmake/pymem.
get_filename_component(_pymem_prefix "${{CMAKE_CURRENT_LIST_DIR}}/../../.." ABSOLUTE)

include(CMakeFindDependencyMacro)
find_dependency(Threads)

if(NOT TARGET pymem::pymem)
  add_library(pymem::pymem SHARED IMPORTED)
  set_target_properties(pymem::pymem PROPERTIES
    IMPORTED_LOCATION "${{_pymem_prefix}}/lib/{real_name}"
    IMPORTED_SONAME "libpymem.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${{_pymem_prefix}}/include")
endif()

if(NOT TARGET pymem::pymem_static)
  add_library(pymem::pymem_static STATIC IMPORTED)
  set_target_properties(pymem::pymem_static PROPERTIES
    IMPORTED_LOCATION "${{_pymem_prefix}}/lib/libpymem.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${{_pymem_prefix}}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${{CMAKE_DL_LIBS}};m")
endif()

unset(_pymem_prefix)
"#
    )
}

/// The version file: until 1.0 the ABI may change between minor versions
/// (pymem.h), so a request for 0.1 accepts 0.1.x at or above it only.
fn cmake_version(version: &str) -> String {
    format!(
        r#"# pymem-config-version.cmake -- written by `cargo xtask dist`.
# Compatible: the same major version and, before 1.0, the same minor one,
# at least the version asked for; built for 64-bit hosts only.
set(PACKAGE_VERSION "{version}")
set(PACKAGE_VERSION_COMPATIBLE FALSE)
set(PACKAGE_VERSION_EXACT FALSE)
if(PACKAGE_FIND_VERSION)
  if(NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
    string(REGEX MATCH "^([0-9]+)\.([0-9]+)" _pymem_mm "${{PACKAGE_VERSION}}")
    set(_pymem_major "${{CMAKE_MATCH_1}}")
    set(_pymem_minor "${{CMAKE_MATCH_2}}")
    if(PACKAGE_FIND_VERSION_MAJOR EQUAL _pymem_major AND
       (_pymem_major GREATER 0 OR PACKAGE_FIND_VERSION_MINOR EQUAL _pymem_minor))
      set(PACKAGE_VERSION_COMPATIBLE TRUE)
    endif()
    unset(_pymem_mm)
    unset(_pymem_major)
    unset(_pymem_minor)
  endif()
  if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
if(NOT CMAKE_SIZEOF_VOID_P STREQUAL "8")
  set(PACKAGE_VERSION "${{PACKAGE_VERSION}} (64-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
"#
    )
}

fn copy(from: &Path, to: &Path, written: &mut Vec<PathBuf>) -> Result<(), String> {
    // Remove first: the destination may be a link or a library in use.
    if fs::symlink_metadata(to).is_ok() {
        fs::remove_file(to).map_err(|e| format!("removing {}: {e}", to.display()))?;
    }
    fs::copy(from, to).map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))?;
    written.push(to.to_path_buf());
    Ok(())
}

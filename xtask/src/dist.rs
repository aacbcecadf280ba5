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
//! ```

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

fn copy(from: &Path, to: &Path, written: &mut Vec<PathBuf>) -> Result<(), String> {
    // Remove first: the destination may be a link or a library in use.
    if fs::symlink_metadata(to).is_ok() {
        fs::remove_file(to).map_err(|e| format!("removing {}: {e}", to.display()))?;
    }
    fs::copy(from, to).map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))?;
    written.push(to.to_path_buf());
    Ok(())
}

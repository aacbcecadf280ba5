//! test-all's packaging checks: what a C or C++ build that links pymem
//! relies on, checked the way such a build meets it.
//!
//! - [`exports`]: libpymem.so exports exactly the functions pymem.h
//!   declares, all `pymem_*` (nothing of Rust's std or of a dependency).
//! - [`header_version`]: `PYMEM_VERSION_MAJOR/MINOR/PATCH` in pymem.h are
//!   Cargo.toml's workspace version.
//! - [`build_tree`]: README.md's build-tree lines, run as written after a
//!   plain `cargo build`, give programs that start.
//! - [`cmake_consumer`]: ffi-tests/cmake-consumer configured, built and run
//!   with CMake against a copy of a dist prefix moved elsewhere (the
//!   package is relocatable).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::util::{
    c_program, mkdir, output_checked, release_dir, show, symlink_force, target_dir, workspace_version, write_file,
};

/// The functions pymem.h declares: `pymem_x(` outside comments.
fn header_functions(header: &str) -> BTreeSet<String> {
    let mut code = String::with_capacity(header.len());
    let mut rest = header;
    while let Some(start) = rest.find("/*") {
        code.push_str(&rest[..start]);
        rest = rest[start..].find("*/").map_or("", |end| &rest[start + end + 2..]);
    }
    code.push_str(rest);
    let code: String = code.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut names = BTreeSet::new();
    let bytes = code.as_bytes();
    for (i, _) in code.match_indices("pymem_") {
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            continue;
        }
        let len = code[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(code.len() - i);
        if code[i + len..].starts_with('(') {
            names.insert(code[i..i + len].to_string());
        }
    }
    names
}

/// The defined dynamic symbols of a shared library (`nm -D --defined-only`).
fn dynamic_symbols(lib: &Path) -> Result<BTreeSet<String>, String> {
    let out = output_checked(Command::new("nm").args(["-D", "--defined-only"]).arg(lib))?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|s| s.split('@').next().unwrap_or(s).to_string())
        .collect())
}

/// libpymem.so exports only `pymem_*` symbols, and exactly pymem.h's functions.
pub fn exports(root: &Path) -> Result<String, String> {
    let lib = release_dir(root).join("libpymem.so");
    let exported = dynamic_symbols(&lib)?;
    let header = std::fs::read_to_string(root.join("include/pymem.h")).map_err(|e| format!("reading pymem.h: {e}"))?;
    let declared = header_functions(&header);
    let foreign: Vec<&String> = exported.iter().filter(|s| !s.starts_with("pymem_")).collect();
    let undeclared: Vec<&String> =
        exported.iter().filter(|s| s.starts_with("pymem_") && !declared.contains(*s)).collect();
    let missing: Vec<&String> = declared.iter().filter(|s| !exported.contains(*s)).collect();
    let mut problems = Vec::new();
    if !foreign.is_empty() {
        problems.push(format!("exported but not pymem_*: {foreign:?}"));
    }
    if !undeclared.is_empty() {
        problems.push(format!("exported but not declared in pymem.h: {undeclared:?}"));
    }
    if !missing.is_empty() {
        problems.push(format!("declared in pymem.h but not exported: {missing:?}"));
    }
    if problems.is_empty() {
        Ok(format!("{} symbols, all pymem_*, all in pymem.h", exported.len()))
    } else {
        Err(problems.join("\n"))
    }
}

/// `#define NAME value` in pymem.h.
fn header_define(header: &str, name: &str) -> Option<String> {
    header.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("#define") && words.next() == Some(name)).then(|| words.next().unwrap_or("").to_string())
    })
}

/// The header's version macros are Cargo.toml's workspace version.
pub fn header_version(root: &Path) -> Result<String, String> {
    let header = std::fs::read_to_string(root.join("include/pymem.h")).map_err(|e| format!("reading pymem.h: {e}"))?;
    let parts: Vec<String> = ["PYMEM_VERSION_MAJOR", "PYMEM_VERSION_MINOR", "PYMEM_VERSION_PATCH"]
        .iter()
        .map(|m| header_define(&header, m).ok_or(format!("pymem.h has no {m}")))
        .collect::<Result<_, _>>()?;
    let from_header = parts.join(".");
    let cargo = workspace_version(root)?;
    if from_header == cargo {
        Ok(from_header)
    } else {
        Err(format!("pymem.h says {from_header}, Cargo.toml's workspace version is {cargo}"))
    }
}

/// The first ```c block of README.md (the example program).
fn readme_c_example(readme: &str) -> Result<&str, String> {
    let start = readme.find("```c\n").ok_or("README.md has no ```c block")? + "```c\n".len();
    let len = readme[start..].find("```").ok_or("README.md's ```c block is not closed")?;
    Ok(&readme[start..start + len])
}

/// The marker of README.md's build-tree block: its first line.
const BUILD_TREE_MARKER: &str = "# Straight from the build tree";

/// README.md's build-tree lines, run as written (app.c being README's
/// example program) from the repository root, with the runner's
/// `libpymem.so.0` link removed first: after each `cc` line the program
/// must start and print the double free. The link is restored afterwards.
pub fn build_tree(root: &Path, dir: &Path) -> Result<(), String> {
    let readme = std::fs::read_to_string(root.join("README.md")).map_err(|e| format!("reading README.md: {e}"))?;
    let start =
        readme.find(BUILD_TREE_MARKER).ok_or(format!("README.md has no block starting {BUILD_TREE_MARKER:?}"))?;
    let block = &readme[start..start + readme[start..].find("```").ok_or("the build-tree block is not closed")?];
    let _ = std::fs::remove_dir_all(dir);
    mkdir(dir)?;
    let app_c = dir.join("app.c");
    write_file(&app_c, readme_c_example(&readme)?)?;
    let app = dir.join("app");
    let release = release_dir(root);
    let link = release.join("libpymem.so.0");
    let _ = std::fs::remove_file(&link);
    let result = (|| {
        let mut programs = 0;
        for line in block.lines() {
            let line = line.split(" #").next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut line =
                line.replace("app.c", &app_c.display().to_string()).replace("-o app", &format!("-o {}", app.display()));
            if target_dir(root) != root.join("target") {
                line = line.replace("$PWD/target/release", &release.display().to_string());
                line = line.replace("target/release", &release.display().to_string());
            }
            let mut sh = Command::new("bash");
            sh.current_dir(root).args(["-c", &line]).env("PWD", root);
            output_checked(&mut sh).map_err(|e| format!("README line `{line}`:\n{e}"))?;
            if line.starts_with("cc ") {
                programs += 1;
                let printed =
                    output_checked(&mut c_program(&app, root)).map_err(|e| format!("after `{line}`:\n{e}"))?;
                if !printed.contains("PYMEM_ERR_DOUBLE_FREE") {
                    return Err(format!("after `{line}` the program printed: {printed}"));
                }
            }
        }
        if programs == 0 {
            return Err("the build-tree block builds no program".into());
        }
        Ok(())
    })();
    symlink_force("libpymem.so", &link)?;
    result
}

/// ffi-tests/cmake-consumer against a copy of `prefix` moved to `work`.
pub fn cmake_consumer(root: &Path, prefix: &Path, work: &Path) -> Result<String, String> {
    if !crate::util::have("cmake") {
        return Err("cmake is not installed (Debian: apt-get install cmake; .ci/run installs it)".into());
    }
    let _ = std::fs::remove_dir_all(work);
    mkdir(work)?;
    let moved = work.join("moved-prefix");
    output_checked(Command::new("cp").arg("-a").arg(prefix).arg(&moved))?;
    let build = work.join("build");
    let mut configure = Command::new("cmake");
    configure
        .arg("-S")
        .arg(root.join("ffi-tests/cmake-consumer"))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", moved.display()))
        .arg("-DCMAKE_BUILD_TYPE=Release")
        .env_remove("PKG_CONFIG_PATH");
    output_checked(&mut configure).map_err(|e| format!("{}\n{e}", show(&configure)))?;
    let mut make = Command::new("cmake");
    make.arg("--build").arg(&build);
    output_checked(&mut make).map_err(|e| format!("{}\n{e}", show(&make)))?;
    let mut printed = String::new();
    for exe in ["consumer_shared", "consumer_static", "consumer_cpp"] {
        printed.push_str(&output_checked(&mut c_program(build.join(exe), root))?);
    }
    let needed = output_checked(Command::new("readelf").arg("-d").arg(build.join("consumer_shared")))?;
    let moved_lib = moved.join("lib").display().to_string();
    if !needed.contains("[libpymem.so.0]") || !needed.contains(&moved_lib) {
        return Err(format!("consumer_shared should need libpymem.so.0 from {moved_lib}:\n{needed}"));
    }
    let static_needed = output_checked(Command::new("readelf").arg("-d").arg(build.join("consumer_static")))?;
    if static_needed.contains("libpymem") {
        return Err(format!("consumer_static needs a shared libpymem:\n{static_needed}"));
    }
    Ok(printed)
}

#[cfg(test)]
mod tests {
    use super::{header_define, header_functions};

    #[test]
    fn header_functions_skip_comments_and_types() {
        let h = "/* pymem_in_comment(x) */\n#define PYMEM_VERSION_MAJOR 0\n\
                 typedef void (*pymem_visit_fn)(int);\n// pymem_line_comment()\n\
                 pymem_status pymem_free(struct pymem_runtime *rt, void *p);\nint xpymem_not(void);\n";
        let names: Vec<String> = header_functions(h).into_iter().collect();
        assert_eq!(names, ["pymem_free"]);
        assert_eq!(header_define(h, "PYMEM_VERSION_MAJOR").as_deref(), Some("0"));
        assert_eq!(header_define(h, "PYMEM_VERSION"), None);
    }
}

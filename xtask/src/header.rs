//! `cargo xtask header [--check]`: generate include/pymem.h with cbindgen.

use std::path::Path;

/// Renders the header from crates/pymem and its cbindgen.toml.
pub fn render(root: &Path) -> Result<String, String> {
    let crate_dir = root.join("crates/pymem");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .map_err(|e| format!("reading cbindgen.toml: {e}"))?;
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .map_err(|e| format!("cbindgen: {e}"))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// Fails when the committed header differs from what cbindgen renders now.
/// Prints nothing (test-all reports the result).
pub fn check(root: &Path) -> Result<(), String> {
    let rendered = render(root)?;
    let committed = std::fs::read_to_string(root.join("include/pymem.h")).unwrap_or_default();
    if committed != rendered {
        return Err("include/pymem.h is out of date: run `cargo xtask header` and commit it".into());
    }
    Ok(())
}

/// Writes the header, or with `check` compares it and fails on drift.
pub fn run(root: &Path, check: bool) -> Result<(), String> {
    let path = root.join("include/pymem.h");
    if check {
        self::check(root)?;
        println!("include/pymem.h is up to date");
        return Ok(());
    }
    std::fs::write(&path, render(root)?).map_err(|e| e.to_string())?;
    println!("wrote {}", path.display());
    Ok(())
}

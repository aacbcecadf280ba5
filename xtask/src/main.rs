//! cargo xtask: the project's build tasks (matklad/cargo-xtask).
mod header;

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("header") => header::run(&root(), args.iter().any(|a| a == "--check")),
        _ => Err("usage: cargo xtask header [--check]".to_string()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

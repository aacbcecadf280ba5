//! Gives libpymem.so its soname, which Cargo does not set (rust-lang/cargo#5045).
//! Hosts link against `libpymem.so.0` and keep working across 0.x patch releases
//! installed by `cargo xtask dist`.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os == "freebsd" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpymem.so.0");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

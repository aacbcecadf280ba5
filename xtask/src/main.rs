//! cargo xtask: the project's build tasks (matklad/cargo-xtask). One module
//! per subcommand; every external tool runs through `std::process::Command`.
//!
//! ```text
//! cargo xtask test-all                       every CI check, then "N passed, N failed"
//! cargo xtask header [--check]               regenerate include/pymem.h (or check it)
//! cargo xtask dist --prefix DIR              install lib, headers and pymem.pc into DIR
//! cargo xtask bench alloc [--runs N] [--n N] [--no-ir]
//! cargo xtask bench objects [--runs N] [--n N] [--no-ir]
//! cargo xtask bench gc [--runs N] [--n N]
//! cargo xtask bench reset [--runs N]
//! cargo xtask bench cuda [--runs N] [--n N]
//! cargo xtask bench [--runs N] [--no-ir]     all four benches
//! cargo xtask demo [SECTION...] [--list] [--html FILE]
//!                                            the C-API demo (xtask/c/demo.c); section report writes the HTML report
//! cargo xtask fuzz [--calls N] [--seed S]    random call sequences over the C ABI (crates/pymem-fuzz)
//! ```

mod bench;
mod bench_cuda;
mod browser;
mod demo;
mod dist;
mod fuzz;
mod header;
mod packaging;
mod report_check;
mod test_all;
mod util;

const USAGE: &str = "usage:
  cargo xtask test-all                                  run every check (fmt, clippy, tests, header, ffi-tests, dist)
  cargo xtask header [--check]                          regenerate include/pymem.h, or fail if it is stale
  cargo xtask dist --prefix DIR                         install libpymem, headers and pymem.pc into DIR
  cargo xtask bench alloc [--runs N] [--n N] [--no-ir]  allocator throughput vs glibc, pymalloc, mimalloc
  cargo xtask bench objects [--runs N] [--n N] [--no-ir]
                                                        object create/destroy vs CPython's C API
  cargo xtask bench gc [--runs N] [--n N]               full cycle collection vs CPython's gc.collect()
  cargo xtask bench reset [--runs N]                    namespace reset vs CPython's del + gc.collect()
  cargo xtask bench cuda [--runs N] [--n N]             GPU cache: cache-hit latency, reserved/allocated on a trace
  cargo xtask bench [--runs N] [--no-ir]                all four benches
  cargo xtask demo [SECTION...] [--list] [--html FILE]  run the C-API demo (section report writes the HTML
                                                        memory report to FILE, default target/demo/report.html)
  cargo xtask fuzz [--calls N] [--seed S] [--max-len L] random call sequences over the whole C ABI, checked
                   [--replay FILE]                      against a model (crates/pymem-fuzz)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = util::root();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("test-all") => test_all::cmd(&root, rest),
        Some("header") => header::run(&root, rest.iter().any(|a| a == "--check")),
        Some("dist") => dist::cmd(&root, rest),
        Some("bench") => bench::cmd(&root, rest),
        Some("demo") => demo::cmd(&root, rest),
        Some("fuzz") => fuzz::cmd(&root, rest),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use crate::util::{thousands, workspace_version};

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000_000), "10,000,000");
    }

    #[test]
    fn workspace_version_is_read() {
        let v = workspace_version(&crate::util::root()).unwrap();
        assert_eq!(v.split('.').count(), 3, "{v}");
    }
}

//! A page checked in a real browser: headless Chromium driven through the
//! DevTools protocol over a pipe (`--remote-debugging-pipe`: the browser
//! reads JSON commands, each ended by a NUL byte, on its fd 3 and writes
//! replies and events on its fd 4).
//!
//! Why the protocol and not `--dump-dom` / `--screenshot` runs: one browser
//! session loads the page once and gives everything the check needs — the
//! DOM after load (queried with `Runtime.evaluate`), a full-page screenshot
//! (`Page.captureScreenshot`), and every console error as an event, not a
//! log line whose format changes between Chromium versions:
//! `Runtime.consoleAPICalled` (console.error/assert), `Runtime.exceptionThrown`
//! (an uncaught exception) and `Log.entryAdded` at level error (what the
//! browser itself reports: a resource that failed to load, a blocked
//! request, a CSP violation).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one protocol step may take before the check fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// What the browser saw of a page.
#[derive(Debug)]
pub struct PageFacts {
    /// The result of the page query (a JSON value built by `query`).
    pub dom: Value,
    /// Console errors, uncaught exceptions and browser errors, as text.
    pub console_errors: Vec<String>,
    /// The full-page screenshot.
    pub png: Vec<u8>,
    /// Chromium's `--version`.
    pub version: String,
}

/// The Chromium binary: Debian's `chromium`, or what other systems call it.
pub fn find_chromium() -> Result<PathBuf, String> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if crate::util::have(name) {
            return Ok(PathBuf::from(name));
        }
    }
    Err("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it): \
         the page cannot be checked in a browser"
        .into())
}

/// The browser process and its two pipe ends.
struct Browser {
    child: Child,
    to_browser: File,
    from_browser: Receiver<Value>,
    next_id: u64,
    /// Events seen while waiting for replies, kept for the caller.
    events: Vec<Value>,
}

/// A pipe with both ends close-on-exec: (read end, write end).
fn pipe() -> Result<(RawFd, RawFd), String> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is writable for two ints, as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    Ok((fds[0], fds[1]))
}

impl Browser {
    fn launch(chromium: &Path, profile: &Path, log: &Path) -> Result<Browser, String> {
        let _ = std::fs::remove_dir_all(profile);
        crate::util::mkdir(profile)?;
        let (cmd_read, cmd_write) = pipe()?; // we write commands, the browser reads fd 3
        let (evt_read, evt_write) = pipe()?; // the browser writes fd 4, we read
        let log_file = File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_err));
        // SAFETY: between fork and exec only async-signal-safe calls
        // (fcntl, dup2) on fds this process owns. The two fds are first
        // moved above 10, so that putting them on 3 and 4 cannot overwrite
        // one with the other; dup2 clears close-on-exec on the copies.
        unsafe {
            cmd.pre_exec(move || {
                let a = libc::fcntl(cmd_read, libc::F_DUPFD, 10);
                let b = libc::fcntl(evt_write, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let spawned = cmd.spawn();
        // SAFETY: the child has its copies; the parent closes the ends it
        // does not use (each fd from pipe2 above, closed once).
        unsafe {
            libc::close(cmd_read);
            libc::close(evt_write);
        }
        let child = spawned.map_err(|e| format!("cannot start {}: {e}", chromium.display()))?;
        // SAFETY: fresh fds from pipe2 that nothing else owns.
        let to_browser = unsafe { File::from_raw_fd(cmd_write) };
        // SAFETY: as above.
        let events = unsafe { File::from_raw_fd(evt_read) };
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(events);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                            if tx.send(v).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        Ok(Browser { child, to_browser, from_browser: rx, next_id: 1, events: Vec::new() })
    }

    /// Sends a command (to the page's session when `session` is given) and
    /// waits for its reply; events that arrive meanwhile are kept.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.to_browser.write_all(&bytes).map_err(|e| format!("writing to Chromium: {e}"))?;
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.from_browser.recv_timeout(left).map_err(|_| format!("Chromium did not answer {method}"))?;
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = v.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(v.get("result").cloned().unwrap_or(Value::Null));
            }
            self.events.push(v);
        }
    }

    /// Waits for an event of the session (one already seen counts).
    fn wait_event(&mut self, session: &str, method: &str) -> Result<(), String> {
        let seen = |v: &Value| {
            v.get("method").and_then(Value::as_str) == Some(method)
                && v.get("sessionId").and_then(Value::as_str) == Some(session)
        };
        if self.events.iter().any(seen) {
            return Ok(());
        }
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.from_browser.recv_timeout(left).map_err(|_| format!("no {method} from Chromium"))?;
            let done = seen(&v);
            self.events.push(v);
            if done {
                return Ok(());
            }
        }
    }

    /// Console errors, exceptions and browser errors among the events.
    fn errors(&mut self) -> Vec<String> {
        while let Ok(v) = self.from_browser.try_recv() {
            self.events.push(v);
        }
        let mut out = Vec::new();
        for e in &self.events {
            let p = &e["params"];
            match e.get("method").and_then(Value::as_str) {
                Some("Runtime.consoleAPICalled") if matches!(p["type"].as_str(), Some("error" | "assert")) => {
                    let args: Vec<String> = p["args"]
                        .as_array()
                        .map(|a| a.iter().map(|x| x["value"].to_string()).collect())
                        .unwrap_or_default();
                    out.push(format!("console.{}: {}", p["type"].as_str().unwrap_or("?"), args.join(" ")));
                }
                Some("Runtime.exceptionThrown") => {
                    out.push(format!("uncaught exception: {}", p["exceptionDetails"]["text"]));
                }
                Some("Log.entryAdded") if p["entry"]["level"].as_str() == Some("error") => {
                    out.push(format!("browser error: {} ({})", p["entry"]["text"], p["entry"]["url"]));
                }
                _ => {}
            }
        }
        out
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `page` (a file) at `width` pixels, runs `query` (a JavaScript
/// expression whose value is JSON-serialisable) once the page has loaded,
/// and takes a screenshot of the whole page. `work` holds the browser's
/// fresh profile and its log.
pub fn check_page(page: &Path, width: u32, query: &str, work: &Path) -> Result<PageFacts, String> {
    let chromium = find_chromium()?;
    let version = crate::util::output_checked(Command::new(&chromium).arg("--version"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let page = std::fs::canonicalize(page).map_err(|e| format!("{}: {e}", page.display()))?;
    crate::util::mkdir(work)?;
    let log = work.join("chromium.log");
    let mut b = Browser::launch(&chromium, &work.join("profile"), &log)
        .map_err(|e| format!("{e}\n{}", crate::util::tail(&log, 20)))?;
    let run = |b: &mut Browser| -> Result<PageFacts, String> {
        let target = b.call(None, "Target.createTarget", json!({ "url": "about:blank" }))?;
        let target_id = target["targetId"].as_str().ok_or("no targetId")?.to_string();
        let attached = b.call(None, "Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }))?;
        let session = attached["sessionId"].as_str().ok_or("no sessionId")?.to_string();
        let s = Some(session.as_str());
        b.call(s, "Page.enable", json!({}))?;
        b.call(s, "Runtime.enable", json!({}))?;
        b.call(s, "Log.enable", json!({}))?;
        let metrics =
            |height: u32| json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false });
        b.call(s, "Emulation.setDeviceMetricsOverride", metrics(900))?;
        let url = format!("file://{}", page.display());
        let nav = b.call(s, "Page.navigate", json!({ "url": url }))?;
        if let Some(e) = nav.get("errorText") {
            return Err(format!("loading {url}: {e}"));
        }
        b.wait_event(&session, "Page.loadEventFired")?;
        let evaluated = b.call(s, "Runtime.evaluate", json!({ "expression": query, "returnByValue": true }))?;
        if let Some(e) = evaluated.get("exceptionDetails") {
            return Err(format!("the page query failed: {e}"));
        }
        let dom = evaluated["result"]["value"].clone();
        let height = b.call(
            s,
            "Runtime.evaluate",
            json!({
            "expression": "document.documentElement.scrollHeight", "returnByValue": true }),
        )?;
        let height = height["result"]["value"].as_u64().unwrap_or(900).clamp(100, 16000) as u32;
        b.call(s, "Emulation.setDeviceMetricsOverride", metrics(height))?;
        let shot = b.call(s, "Page.captureScreenshot", json!({ "format": "png" }))?;
        let png = base64_decode(shot["data"].as_str().ok_or("no screenshot data")?)?;
        let console_errors = b.errors();
        let _ = b.call(None, "Browser.close", json!({}));
        Ok(PageFacts { dom, console_errors, png, version: version.clone() })
    };
    run(&mut b).map_err(|e| format!("{e}\n(Chromium's log: {})\n{}", log.display(), crate::util::tail(&log, 20)))
}

/// Standard base64 (RFC 4648, with padding), as the protocol sends binary.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let value = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("not base64: {:?}", c as char)),
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if !bytes.len().is_multiple_of(4) {
        return Err("base64 length is not a multiple of 4".into());
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_decodes_rfc4648_vectors() {
        for (text, plain) in
            [("", ""), ("Zg==", "f"), ("Zm8=", "fo"), ("Zm9v", "foo"), ("Zm9vYg==", "foob"), ("Zm9vYmFy", "foobar")]
        {
            assert_eq!(base64_decode(text).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("Zm9").is_err());
        assert!(base64_decode("Zm9*").is_err());
    }
}

//! The allocator's options and the PYTORCH_CUDA_ALLOC_CONF parser.
//!
//! The parser follows `CUDAAllocatorConfig::parseArgs`: the string is cut
//! into tokens at `,` `:` `[` `]` (spaces dropped), then read as
//! `key:value` pairs separated by commas. Error texts are PyTorch's where it
//! has them (they name the option); a value that is not a number, which
//! PyTorch reports as a bare `stoi`, names the option and the value here.

use crate::policy::{LARGE_BUFFER, ROUNDUP_INTERVALS, UNLIMITED_SPLIT};

/// Options of a cache, PyTorch's defaults from [`AllocatorConfig::default`].
#[derive(Clone, Debug, PartialEq)]
pub struct AllocatorConfig {
    /// Blocks of this size or more are never split (`max_split_size_mb`, in
    /// bytes); [`UNLIMITED_SPLIT`] by default.
    pub max_split_size: u64,
    /// `roundup_power2_divisions` per power-of-two interval from 1 MiB
    /// (index log2(size) - 20, clamped to 0..15); 0 = plain 512-byte rounding.
    pub roundup_power2_divisions: [u32; ROUNDUP_INTERVALS],
    /// `garbage_collection_threshold` in (0, 1), or 0 = off. Acts only with a
    /// memory fraction set.
    pub garbage_collection_threshold: f64,
    /// `set_per_process_memory_fraction` for every device at creation, in
    /// [0, 1]; `None` = no limit.
    pub memory_fraction: Option<f64>,
    /// History ring size at creation; 0 = history off.
    pub history_max_entries: usize,
    /// false = pass-through (PYTORCH_NO_CUDA_MEMORY_CACHING=1): every malloc
    /// and free goes to the device; nothing is cached.
    pub caching: bool,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            max_split_size: UNLIMITED_SPLIT,
            roundup_power2_divisions: [0; ROUNDUP_INTERVALS],
            garbage_collection_threshold: 0.0,
            memory_fraction: None,
            history_max_entries: 0,
            caching: true,
        }
    }
}

/// A rejected option: the message says which and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn fail<T>(message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(message.into()))
}

/// `lexArgs`: separators are tokens of their own; spaces vanish.
fn tokens(conf: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for ch in conf.chars() {
        if matches!(ch, ',' | ':' | '[' | ']') {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            out.push(ch.to_string());
        } else if ch != ' ' {
            word.push(ch);
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// A token cursor with PyTorch's `consumeToken` check.
struct Cursor {
    tokens: Vec<String>,
    i: usize,
}

impl Cursor {
    fn expect(&mut self, c: char) -> Result<(), ConfigError> {
        self.i += 1;
        match self.tokens.get(self.i) {
            Some(t) if t.len() == 1 && t.starts_with(c) => Ok(()),
            _ => fail(format!("Error parsing CachingAllocator settings, expected {c}")),
        }
    }

    /// The value token after `key:`, or PyTorch's "expecting ... value".
    fn value(&mut self, key: &str) -> Result<String, ConfigError> {
        self.expect(':')?;
        self.i += 1;
        match self.tokens.get(self.i) {
            Some(t) => Ok(t.clone()),
            None => fail(format!("Error, expecting {key} value")),
        }
    }

    fn peek_is(&self, offset: usize, s: &str) -> bool {
        self.tokens.get(self.i + offset).is_some_and(|t| t == s)
    }
}

fn integer(key: &str, text: &str) -> Result<u64, ConfigError> {
    text.parse::<u64>().or_else(|_| {
        fail(format!("CachingAllocator option {key}: invalid value '{text}' (expected a non-negative integer)"))
    })
}

impl AllocatorConfig {
    /// Applies a PYTORCH_CUDA_ALLOC_CONF string on top of `self`, e.g.
    /// `max_split_size_mb:128,roundup_power2_divisions:[256:1,512:2,>:8],garbage_collection_threshold:0.6`.
    /// On error `self` is unchanged.
    pub fn parse(&mut self, conf: &str) -> Result<(), ConfigError> {
        let mut next = self.clone();
        let mut c = Cursor { tokens: tokens(conf), i: 0 };
        while c.i < c.tokens.len() {
            let key = c.tokens[c.i].clone();
            match key.as_str() {
                "max_split_size_mb" => next.max_split_size = parse_max_split_size(&mut c)?,
                "roundup_power2_divisions" => parse_roundup(&mut c, &mut next.roundup_power2_divisions)?,
                "garbage_collection_threshold" => {
                    next.garbage_collection_threshold = parse_gc_threshold(&mut c)?;
                }
                "expandable_segments" => {
                    let v = c.value("expandable_segments")?;
                    match v.as_str() {
                        "False" => {}
                        "True" => {
                            return fail(
                                "expandable_segments:True is not supported by pymem's cuda-cache (segments are \
                                 allocated whole, as with expandable_segments:False)",
                            )
                        }
                        _ => return fail("Expected a single True/False argument for expandable_segments"),
                    }
                }
                "backend" => {
                    let v = c.value("backend")?;
                    match v.as_str() {
                        "native" => {}
                        "cudaMallocAsync" => {
                            return fail("backend:cudaMallocAsync is not supported by pymem's cuda-cache (only native)")
                        }
                        _ => return fail("Unknown allocator backend, options are native and cudaMallocAsync"),
                    }
                }
                _ => return fail(format!("Unrecognized CachingAllocator option: {key}")),
            }
            if c.i + 1 < c.tokens.len() {
                c.expect(',')?;
            }
            c.i += 1;
        }
        *self = next;
        Ok(())
    }
}

fn parse_max_split_size(c: &mut Cursor) -> Result<u64, ConfigError> {
    const MB: u64 = 1 << 20;
    let v = integer("max_split_size_mb", &c.value("max_split_size_mb")?)?;
    if v <= LARGE_BUFFER / MB {
        return fail(format!("CachingAllocator option max_split_size_mb too small, must be > {}", LARGE_BUFFER / MB));
    }
    Ok(v.min(u64::MAX / MB) * MB)
}

fn parse_gc_threshold(c: &mut Cursor) -> Result<f64, ConfigError> {
    let text = c.value("garbage_collection_threshold")?;
    let v: f64 = text.parse().or_else(|_| {
        fail(format!(
            "CachingAllocator option garbage_collection_threshold: invalid value '{text}' (expected a number)"
        ))
    })?;
    if v.is_nan() || v <= 0.0 {
        return fail("garbage_collect_threshold too small, set it 0.0~1.0");
    }
    if v >= 1.0 {
        return fail("garbage_collect_threshold too big, set it 0.0~1.0");
    }
    Ok(v)
}

/// `parseRoundUpPower2Divisions`: one value for every interval, or a list
/// `[MB:divisions, ..., >:divisions]` where MB is an interval's start in
/// MiB (a power of two) and `>` fills every interval after the last one
/// named. The first entry also fills the intervals below it.
fn parse_roundup(c: &mut Cursor, out: &mut [u32; ROUNDUP_INTERVALS]) -> Result<(), ConfigError> {
    let first = c.value("roundup_power2_divisions")?;
    if first != "[" {
        let v = integer("roundup_power2_divisions", &first)?;
        if !v.is_power_of_two() {
            return fail("For roundups, the divisons has to be power of 2 ");
        }
        *out = [divisions_value(v)?; ROUNDUP_INTERVALS];
        return Ok(());
    }
    let mut first_value = true;
    let mut last_index = 0usize;
    loop {
        c.i += 1;
        let Some(interval) = c.tokens.get(c.i).cloned() else {
            return fail("Error parsing CachingAllocator settings, expected ]");
        };
        if interval == "]" {
            return Ok(());
        }
        c.expect(':')?;
        c.i += 1;
        let Some(text) = c.tokens.get(c.i).cloned() else {
            return fail("Error parsing roundup_power2_divisions value");
        };
        let divisions = integer("roundup_power2_divisions", &text)?;
        if divisions != 0 && !divisions.is_power_of_two() {
            return fail("For roundups, the divisons has to be power of 2 or 0 to disable roundup ");
        }
        let divisions = divisions_value(divisions)?;
        if interval == ">" {
            out[last_index..].fill(divisions);
        } else {
            let mb = integer("roundup_power2_divisions", &interval)?;
            if !mb.is_power_of_two() {
                return fail("For roundups, the intervals have to be power of 2 ");
            }
            let index = (63 - mb.leading_zeros() as usize).min(ROUNDUP_INTERVALS - 1);
            if first_value {
                out[..index].fill(divisions);
                first_value = false;
            }
            out[index] = divisions;
            last_index = index;
        }
        if !c.peek_is(1, "]") {
            c.expect(',')?;
        }
    }
}

fn divisions_value(v: u64) -> Result<u32, ConfigError> {
    u32::try_from(v).or_else(|_| fail(format!("roundup_power2_divisions: {v} divisions is too many")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(conf: &str) -> Result<AllocatorConfig, String> {
        let mut c = AllocatorConfig::default();
        c.parse(conf).map(|()| c).map_err(|e| e.0)
    }

    #[test]
    fn the_issue_example_parses() {
        let c =
            parsed("max_split_size_mb:128,roundup_power2_divisions:[256:1,512:2,>:8],garbage_collection_threshold:0.6")
                .unwrap();
        assert_eq!(c.max_split_size, 128 << 20);
        assert_eq!(c.garbage_collection_threshold, 0.6);
        // 256 MiB is interval 8: the first entry fills 0..=8 with 1; 512 -> 9 = 2; > fills 9.. with 8.
        let mut want = [1u32; ROUNDUP_INTERVALS];
        want[9..].fill(8);
        assert_eq!(c.roundup_power2_divisions, want);
    }

    #[test]
    fn a_single_divisions_value_applies_everywhere() {
        assert_eq!(parsed("roundup_power2_divisions:4").unwrap().roundup_power2_divisions, [4; 16]);
        assert_eq!(
            parsed("roundup_power2_divisions:3").unwrap_err(),
            "For roundups, the divisons has to be power of 2 "
        );
    }

    #[test]
    fn pytorchs_messages_name_the_bad_option() {
        assert_eq!(
            parsed("max_split_size_mb:20").unwrap_err(),
            "CachingAllocator option max_split_size_mb too small, must be > 20"
        );
        assert_eq!(
            parsed("garbage_collection_threshold:1.0").unwrap_err(),
            "garbage_collect_threshold too big, set it 0.0~1.0"
        );
        assert_eq!(
            parsed("garbage_collection_threshold:0").unwrap_err(),
            "garbage_collect_threshold too small, set it 0.0~1.0"
        );
        assert_eq!(parsed("foo:1").unwrap_err(), "Unrecognized CachingAllocator option: foo");
        assert_eq!(parsed("max_split_size_mb").unwrap_err(), "Error parsing CachingAllocator settings, expected :");
        assert_eq!(parsed("max_split_size_mb:").unwrap_err(), "Error, expecting max_split_size_mb value");
        assert!(parsed("max_split_size_mb:100 garbage").unwrap_err().contains("max_split_size_mb"));
        assert_eq!(
            parsed("max_split_size_mb:100;x").unwrap_err(),
            "CachingAllocator option max_split_size_mb: invalid value '100;x' (expected a non-negative integer)"
        );
        assert!(parsed("expandable_segments:True").unwrap_err().contains("expandable_segments:True is not supported"));
        assert!(parsed("expandable_segments:False").is_ok());
        assert_eq!(
            parsed("expandable_segments:yes").unwrap_err(),
            "Expected a single True/False argument for expandable_segments"
        );
        assert_eq!(
            parsed("roundup_power2_divisions:[300:2]").unwrap_err(),
            "For roundups, the intervals have to be power of 2 "
        );
    }

    #[test]
    fn an_error_leaves_the_config_unchanged_and_empty_is_fine() {
        let mut c = AllocatorConfig::default();
        assert!(c.parse("max_split_size_mb:128,bogus:1").is_err());
        assert_eq!(c, AllocatorConfig::default());
        c.parse("").unwrap();
        c.parse(" max_split_size_mb : 64 ").unwrap();
        assert_eq!(c.max_split_size, 64 << 20);
    }
}

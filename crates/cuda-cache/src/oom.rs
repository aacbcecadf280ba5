//! The out-of-memory message, in PyTorch's words, and its size formatting.

/// PyTorch's `format_size`: up to 1024 "N bytes", then KiB up to 1 MiB, MiB
/// up to 1 GiB, else GiB, with two decimals.
pub fn format_size(size: u64) -> String {
    const KIB: f64 = 1024.0;
    if size <= 1024 {
        format!("{size} bytes")
    } else if size <= 1 << 20 {
        format!("{:.2} KiB", size as f64 / KIB)
    } else if size <= 1 << 30 {
        format!("{:.2} MiB", size as f64 / (KIB * KIB))
    } else {
        format!("{:.2} GiB", size as f64 / (KIB * KIB * KIB))
    }
}

/// What the OOM message reports.
pub(crate) struct OomFacts {
    pub device: usize,
    /// The segment size that could not be had (PyTorch's alloc_size).
    pub alloc_size: u64,
    pub device_total: u64,
    pub device_free: u64,
    /// The memory-fraction limit, when one is set.
    pub allowed: Option<u64>,
    pub allocated: u64,
    pub reserved: u64,
}

/// "CUDA out of memory. Tried to allocate ..." as PyTorch's malloc writes it.
pub(crate) fn message(f: &OomFacts) -> String {
    let allowed = f.allowed.map(|a| format!("{} allowed; ", format_size(a))).unwrap_or_default();
    format!(
        "CUDA out of memory. Tried to allocate {}. GPU {} has a total capacity of {} of which {} is free. {}Of the \
         allocated memory {} is allocated by PyTorch, and {} is reserved by PyTorch but unallocated. If reserved but \
         unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid \
         fragmentation.",
        format_size(f.alloc_size),
        f.device,
        format_size(f.device_total),
        format_size(f.device_free),
        allowed,
        format_size(f.allocated),
        format_size(f.reserved.saturating_sub(f.allocated)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_size_steps_at_1024_1_mib_1_gib_inclusive() {
        assert_eq!(format_size(0), "0 bytes");
        assert_eq!(format_size(1024), "1024 bytes");
        assert_eq!(format_size(1025), "1.00 KiB");
        assert_eq!(format_size(1536), "1.50 KiB");
        assert_eq!(format_size(1 << 20), "1024.00 KiB");
        assert_eq!(format_size((1 << 20) + 1), "1.00 MiB");
        assert_eq!(format_size(20 << 20), "20.00 MiB");
        assert_eq!(format_size(1 << 30), "1024.00 MiB");
        assert_eq!(format_size(79 << 30), "79.00 GiB");
    }

    #[test]
    fn the_message_reads_as_pytorchs() {
        let m = message(&OomFacts {
            device: 0,
            alloc_size: 20 << 20,
            device_total: 1 << 30,
            device_free: 10 << 20,
            allowed: Some(512 << 20),
            allocated: 500 << 20,
            reserved: 510 << 20,
        });
        assert_eq!(
            m,
            "CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 1024.00 MiB of which \
             10.00 MiB is free. 512.00 MiB allowed; Of the allocated memory 500.00 MiB is allocated by PyTorch, and \
             10.00 MiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try \
             setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation."
        );
    }
}

//! The wall clock the load and verify share: milliseconds since the Unix epoch, so the load
//! pod's failure times and verify's pod events line up.

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

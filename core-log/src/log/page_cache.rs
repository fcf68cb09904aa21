//! How much of each partition's tail the log keeps in the page cache
//! (`log.page.cache.window.bytes`).
//!
//! Kafka writes through the page cache and leaves everything there: readers that lag behind
//! read memory, and the kernel evicts under pressure. That is cheap where a freed page is an
//! ordinary page. On a virtual machine whose balloon device reports free pages to the host
//! (virtio's free page reporting), it is not: the host takes every free page back, and the
//! guest's first write into one faults it in again. A log writing into fresh page-cache pages
//! then runs at that fault rate (measured on the development VM: ~215-250 MB/s, its whole
//! buffered-write limit), however fast the disk.
//!
//! The window bounds the cache instead: behind each partition's last `N` bytes, data is written
//! back and its pages dropped (`fadvise(DONTNEED)`), so new writes reuse pages the guest freed
//! a moment ago, before they are reported. The cost: a reader more than `N` bytes behind the
//! end reads the disk (once; what it reads is cached again).
//!
//! [`PageCacheWindow::Auto`], the default, chooses per machine: the window
//! ([`AUTO_WINDOW_BYTES`]) where the host reclaims free memory, Kafka's behaviour elsewhere.

use std::path::Path;

/// The window `Auto` chooses where the host reclaims free memory: 64 MiB per partition.
pub const AUTO_WINDOW_BYTES: u64 = 64 << 20;

/// Virtio's device id of a memory balloon.
const VIRTIO_ID_BALLOON: &str = "0x0005";
/// `VIRTIO_BALLOON_F_REPORTING`: the guest reports free pages, and the host reclaims them.
const VIRTIO_BALLOON_F_REPORTING: usize = 5;

/// `log.page.cache.window.bytes`: bytes behind each partition's log end kept in the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageCacheWindow {
    /// [`AUTO_WINDOW_BYTES`] where the host reclaims free memory
    /// ([`host_reclaims_free_memory`]), else everything (property value `auto`, the default).
    #[default]
    Auto,
    /// Everything stays in the page cache, as in Kafka (property value `-1`).
    Unbounded,
    /// The last `N` bytes of each partition stay cached; older ones are written back and
    /// dropped.
    Bytes(u64),
}

impl PageCacheWindow {
    /// The window in bytes on this machine (`None`: unbounded).
    pub fn resolve(self) -> Option<u64> {
        self.resolve_with(host_reclaims_free_memory)
    }

    fn resolve_with(self, host_reclaims: impl FnOnce() -> bool) -> Option<u64> {
        match self {
            PageCacheWindow::Auto => host_reclaims().then_some(AUTO_WINDOW_BYTES),
            PageCacheWindow::Unbounded => None,
            PageCacheWindow::Bytes(n) => Some(n),
        }
    }
}

impl std::fmt::Display for PageCacheWindow {
    /// The property's value: `auto`, `-1` or a number of bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageCacheWindow::Auto => f.write_str("auto"),
            PageCacheWindow::Unbounded => f.write_str("-1"),
            PageCacheWindow::Bytes(n) => write!(f, "{n}"),
        }
    }
}

impl std::str::FromStr for PageCacheWindow {
    type Err = String;

    /// Parses the property's value; the error says what is accepted.
    fn from_str(s: &str) -> Result<Self, String> {
        const ACCEPTED: &str = "auto, -1 (unbounded) or a number of bytes";
        match s.trim() {
            v if v.eq_ignore_ascii_case("auto") => Ok(PageCacheWindow::Auto),
            "-1" => Ok(PageCacheWindow::Unbounded),
            v => v
                .parse::<u64>()
                .map(PageCacheWindow::Bytes)
                .map_err(|_| format!("{v:?} is not {ACCEPTED}")),
        }
    }
}

/// Whether this machine's host takes free memory back: a virtio balloon that negotiated free
/// page reporting. Reads `/sys/bus/virtio/devices`; false where that does not exist.
pub fn host_reclaims_free_memory() -> bool {
    reporting_balloon_in(Path::new("/sys/bus/virtio/devices"))
}

/// Whether a device under `devices` (sysfs's virtio devices) is a balloon whose negotiated
/// features (one `0`/`1` per bit, bit 0 first) include free page reporting.
fn reporting_balloon_in(devices: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(devices) else {
        return false;
    };
    entries.flatten().any(|dev| {
        let read = |name: &str| std::fs::read_to_string(dev.path().join(name)).ok();
        read("device").is_some_and(|id| id.trim() == VIRTIO_ID_BALLOON)
            && read("features")
                .is_some_and(|bits| bits.as_bytes().get(VIRTIO_BALLOON_F_REPORTING) == Some(&b'1'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(root: &Path, name: &str, id: &str, features: &str) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("device"), format!("{id}\n")).unwrap();
        std::fs::write(dir.join("features"), format!("{features}\n")).unwrap();
    }

    #[test]
    fn a_balloon_that_reports_free_pages_is_found() {
        let root = tempfile::tempdir().unwrap();
        device(root.path(), "virtio1", "0x0002", "0010001001100100");
        assert!(!reporting_balloon_in(root.path()), "a block device");
        device(root.path(), "virtio0", "0x0005", "0110000000000000");
        assert!(
            !reporting_balloon_in(root.path()),
            "a balloon without reporting"
        );
        device(root.path(), "virtio0", "0x0005", "0110010100000000");
        assert!(reporting_balloon_in(root.path()));
        assert!(!reporting_balloon_in(&root.path().join("missing")));
    }

    #[test]
    fn auto_resolves_per_machine_and_explicit_values_do_not() {
        assert_eq!(
            PageCacheWindow::Auto.resolve_with(|| true),
            Some(AUTO_WINDOW_BYTES)
        );
        assert_eq!(PageCacheWindow::Auto.resolve_with(|| false), None);
        let never = || panic!("an explicit value asks nothing of the machine");
        assert_eq!(PageCacheWindow::Unbounded.resolve_with(never), None);
        assert_eq!(PageCacheWindow::Bytes(7).resolve_with(never), Some(7));
    }

    #[test]
    fn the_property_value_round_trips_and_names_what_is_accepted() {
        for w in [
            PageCacheWindow::Auto,
            PageCacheWindow::Unbounded,
            PageCacheWindow::Bytes(67108864),
        ] {
            assert_eq!(w.to_string().parse::<PageCacheWindow>(), Ok(w));
        }
        assert_eq!("AUTO".parse(), Ok(PageCacheWindow::Auto));
        let e = "-5".parse::<PageCacheWindow>().unwrap_err();
        assert!(e.contains("\"-5\"") && e.contains("auto, -1"), "{e}");
    }
}

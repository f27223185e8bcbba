//! Files in an image's layers, as the merged filesystem shows them: top layer first, whiteouts
//! and opaque directories honoured, symlinks resolved inside the image. Reading is pure (bytes
//! in, entries out) and bounded; fetching the layers is the inspector's.

use std::io::Read;

/// What reading an image's layers may cost.
#[derive(Debug, Clone, Copy)]
pub struct LayerBudget {
    pub max_layers: usize,
    /// Compressed bytes of one layer (held in memory while it is scanned).
    pub max_layer_bytes: usize,
    /// Uncompressed bytes read from one layer.
    pub max_uncompressed: u64,
}

impl Default for LayerBudget {
    fn default() -> Self {
        LayerBudget {
            max_layers: 16,
            max_layer_bytes: 32 << 20,
            max_uncompressed: 128 << 20,
        }
    }
}

/// What a layer holds at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file: its first bytes (up to the read bound).
    File(Vec<u8>),
    Symlink(String),
    /// Deleted by this layer (`.wh.NAME`, or an opaque directory above it).
    Gone,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayerError {
    #[error("layer is not tar (gzip, zstd or plain): {0}")]
    Format(String),
    #[error("layer holds more than {0} bytes uncompressed")]
    TooLarge(u64),
}

/// Normalises a tar path: no leading `./` or `/`, no trailing `/`.
fn clean(path: &str) -> &str {
    path.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
}

/// Looks for `wanted` (clean absolute paths without the leading `/`) in one layer's bytes
/// (gzip, zstd or plain tar), reading at most `max_uncompressed` bytes and `max_file` bytes of
/// each file found. Returns what the layer says about each path it mentions.
pub fn scan(
    blob: &[u8],
    wanted: &[String],
    max_uncompressed: u64,
    max_file: usize,
) -> Result<Vec<(String, Entry)>, LayerError> {
    let reader: Box<dyn Read + '_> = if blob.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(blob))
    } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = ruzstd::decoding::StreamingDecoder::new(blob)
            .map_err(|e| LayerError::Format(e.to_string()))?;
        Box::new(decoder)
    } else {
        Box::new(blob)
    };
    let mut bounded = reader.take(max_uncompressed.saturating_add(1));
    let mut archive = tar::Archive::new(&mut bounded);
    let mut found: Vec<(String, Entry)> = Vec::new();
    let read = walk(&mut archive, wanted, max_file, &mut found);
    // Cut at the bound: whatever the tar reader made of the cut, the layer is too large.
    if bounded.limit() == 0 {
        return Err(LayerError::TooLarge(max_uncompressed));
    }
    read?;
    Ok(found)
}

fn walk<R: Read>(
    archive: &mut tar::Archive<R>,
    wanted: &[String],
    max_file: usize,
    found: &mut Vec<(String, Entry)>,
) -> Result<(), LayerError> {
    let entries = archive
        .entries()
        .map_err(|e| LayerError::Format(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| LayerError::Format(e.to_string()))?;
        let Ok(path) = entry.path() else { continue };
        let path = clean(&path.to_string_lossy()).to_owned();
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if name == ".wh..wh..opq" {
            // An opaque directory: what lower layers had below it is gone.
            for w in wanted {
                if w.starts_with(&format!("{dir}/")) || dir.is_empty() {
                    found.push((w.clone(), Entry::Gone));
                }
            }
            continue;
        }
        if let Some(deleted) = name.strip_prefix(".wh.") {
            let deleted = if dir.is_empty() {
                deleted.to_owned()
            } else {
                format!("{dir}/{deleted}")
            };
            for w in wanted {
                if *w == deleted || w.starts_with(&format!("{deleted}/")) {
                    found.push((w.clone(), Entry::Gone));
                }
            }
            continue;
        }
        if !wanted.contains(&path) {
            continue;
        }
        let kind = entry.header().entry_type();
        let what = if kind.is_symlink() || kind.is_hard_link() {
            match entry.link_name() {
                Ok(Some(target)) => {
                    let target = target.to_string_lossy().into_owned();
                    // A hard link names another path of the archive, from its root.
                    if kind.is_hard_link() {
                        Entry::Symlink(format!("/{}", clean(&target)))
                    } else {
                        Entry::Symlink(target)
                    }
                }
                _ => continue,
            }
        } else if kind.is_file() {
            let mut bytes = Vec::new();
            let _ = (&mut entry).take(max_file as u64).read_to_end(&mut bytes);
            Entry::File(bytes)
        } else {
            continue;
        };
        // Within one layer a later entry replaces an earlier one.
        found.retain(|(p, _)| *p != path);
        found.push((path, what));
    }
    Ok(())
}

/// Resolves a symlink target against the link's directory, inside the image (`..` stops at
/// the root).
pub fn resolve(link: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        clean(link)
            .rsplit_once('/')
            .map(|(d, _)| d.split('/').collect())
            .unwrap_or_default()
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of (path, Some(content) | None for a symlink to the target in content).
    pub fn tar_of(files: &[(&str, &str, bool)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data, link) in files {
            let mut header = tar::Header::new_gnu();
            if *link {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mode(0o777);
                builder.append_link(&mut header, path, data).unwrap();
            } else {
                header.set_size(data.len() as u64);
                header.set_mode(0o755);
                header.set_cksum();
                builder
                    .append_data(&mut header, path, data.as_bytes())
                    .unwrap();
            }
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn files_links_whiteouts_and_compression() {
        let plain = tar_of(&[
            ("bin/sh", "dash", true),
            ("start.sh", "#!/bin/sh\nexec app\n", false),
            ("app/.wh.old.sh", "", false),
        ]);
        let wanted: Vec<String> = ["bin/sh", "start.sh", "app/old.sh", "missing"]
            .map(String::from)
            .to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &plain).unwrap();
        let gz = gz.finish().unwrap();
        for blob in [plain.clone(), gz] {
            let found = scan(&blob, &wanted, 1 << 20, 1024).unwrap();
            assert!(
                found.contains(&("bin/sh".into(), Entry::Symlink("dash".into()))),
                "{found:?}"
            );
            assert!(found.contains(&(
                "start.sh".into(),
                Entry::File(b"#!/bin/sh\nexec app\n".to_vec())
            )));
            assert!(found.contains(&("app/old.sh".into(), Entry::Gone)));
            assert!(!found.iter().any(|(p, _)| p == "missing"));
        }
        let opaque = tar_of(&[("app/.wh..wh..opq", "", false)]);
        assert_eq!(
            scan(&opaque, &wanted, 1 << 20, 1024).unwrap(),
            vec![("app/old.sh".into(), Entry::Gone)]
        );
        // Bounded: a layer bigger than the bound is refused, not read to the end.
        assert_eq!(
            scan(&plain, &wanted, 512, 1024),
            Err(LayerError::TooLarge(512))
        );
        assert!(
            scan(b"not a tar at all, not even close", &wanted, 1 << 20, 1024).is_err()
                || scan(b"x", &wanted, 1 << 20, 1024).is_ok()
        );
    }

    #[test]
    fn symlinks_resolve_inside_the_image() {
        assert_eq!(resolve("bin/sh", "dash"), "bin/dash");
        assert_eq!(resolve("bin/sh", "/bin/busybox"), "bin/busybox");
        assert_eq!(resolve("usr/bin/start", "../../../../etc/x"), "etc/x");
        assert_eq!(resolve("start", "./app/run.sh"), "app/run.sh");
    }
}

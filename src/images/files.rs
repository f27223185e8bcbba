//! An image's merged filesystem as the inspector reads it: the first file of a list of
//! candidates, layer by layer from the top (one layer in memory), symlinks followed inside the
//! image; which shell `/bin/sh` is; the verdict on the script PID 1 starts.

use super::blobs::{Pull, verified};
use super::layers::{Entry, LayerBudget, resolve, scan};
use super::manifest::Descriptor;
use super::registry::RegistryClient;
use zerodrop_core::engine::image::{Script, Shell, classify_script};

/// A script is read up to this much: entrypoint scripts are small.
const MAX_SCRIPT: usize = 256 * 1024;
/// Symlink hops followed (`/bin/sh -> dash`, an entrypoint linked to a script).
const MAX_HOPS: usize = 4;

/// An image's merged filesystem, read layer by layer from the top (one layer in memory).
pub(super) struct Files<'a> {
    pub client: &'a RegistryClient,
    pub budget: LayerBudget,
    pub pull: Pull<'a>,
    pub layers: &'a [Descriptor],
}

impl Files<'_> {
    /// The first of `candidates` that exists in the merged view, with its content; symlinks
    /// are followed inside the image.
    async fn read(&self, candidates: Vec<String>) -> Result<Option<(String, Vec<u8>)>, String> {
        let budget = self.budget;
        let mut wanted = candidates;
        for _hop in 0..=MAX_HOPS {
            let mut seen: Vec<(String, Entry)> = Vec::new();
            for layer in self.layers.iter().rev() {
                let open: Vec<String> = wanted
                    .iter()
                    .filter(|w| !seen.iter().any(|(p, _)| p == *w))
                    .cloned()
                    .collect();
                if open.is_empty() {
                    break;
                }
                let blob = verified(
                    self.client,
                    self.pull,
                    "blobs",
                    &layer.digest,
                    "*/*",
                    budget.max_layer_bytes,
                )
                .await?;
                let found = scan(&blob, &open, budget.max_uncompressed, MAX_SCRIPT)
                    .map_err(|e| e.to_string())?;
                seen.extend(found);
            }
            // In the order asked (PATH order): the first that exists decides.
            let Some((path, entry)) = wanted
                .iter()
                .find_map(|w| seen.iter().find(|(p, _)| p == w).cloned())
            else {
                return Ok(None);
            };
            match entry {
                Entry::File(bytes) => return Ok(Some((path, bytes))),
                Entry::Gone => return Ok(None),
                Entry::Symlink(target) => wanted = vec![resolve(&path, &target)],
            }
        }
        Ok(None)
    }

    /// Which shell `/bin/sh` is, by what it links to or what its binary says.
    pub async fn shell(&self) -> Shell {
        let Ok(Some((path, bytes))) = self.read(vec!["bin/sh".into()]).await else {
            return Shell::Unknown;
        };
        let base = path.rsplit('/').next().unwrap_or(&path);
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        match base {
            "dash" => Shell::Dash,
            "bash" => Shell::Bash,
            "busybox" => Shell::Busybox,
            _ if has(b"BusyBox") => Shell::Busybox,
            _ if has(b"GNU bash") => Shell::Bash,
            _ => Shell::Unknown,
        }
    }

    /// The verdict on argv[0] when it is a shell script (by name or by its `#!` line).
    pub async fn script(
        &self,
        first: &str,
        env: &[String],
        workdir: Option<&str>,
    ) -> Result<Option<(String, Script)>, String> {
        let candidates: Vec<String> = if first.starts_with('/') {
            vec![first.trim_start_matches('/').to_owned()]
        } else if first.contains('/') {
            vec![resolve(&format!("{}/x", workdir.unwrap_or("/")), first)]
        } else {
            let path = env
                .iter()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
            path.split(':')
                .filter(|d| !d.is_empty())
                .take(16)
                .map(|d| format!("{}/{first}", d.trim_matches('/')))
                .collect()
        };
        let base = first.rsplit('/').next().unwrap_or(first);
        let named_script = base.ends_with(".sh") || base.starts_with("docker-entrypoint");
        let Some((_, bytes)) = self.read(candidates).await? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        let shebang = text.lines().next().unwrap_or_default();
        let shell_shebang = shebang.starts_with("#!")
            && ["sh", "bash", "ash", "dash"]
                .iter()
                .any(|s| shebang.split(['/', ' ']).any(|w| w == *s));
        if !(named_script || shell_shebang) {
            return Ok(None);
        }
        Ok(Some((first.to_owned(), classify_script(&text))))
    }
}

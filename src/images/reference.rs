//! Image references as the kubelet reads them (docker/distribution's normalisation): Docker Hub
//! by default, `library/` for official images, registries with ports, tags and digests.

use std::fmt;

/// Where Docker Hub's registry API lives (`docker.io` is its name, not its host).
pub const DOCKER_HUB: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Host (and port) of the registry API.
    pub registry: String,
    /// Repository path, e.g. `library/nginx`.
    pub repository: String,
    /// `tag` or `sha256:…`: what the manifest is asked by.
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {why}")]
pub struct ReferenceError {
    pub reference: String,
    pub why: &'static str,
}

impl Reference {
    pub fn parse(raw: &str) -> Result<Reference, ReferenceError> {
        let err = |why| ReferenceError {
            reference: raw.to_owned(),
            why,
        };
        if raw.is_empty()
            || raw.len() > 4096
            || raw.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(err("empty, too long, or has spaces"));
        }
        let (name, digest) = match raw.split_once('@') {
            Some((name, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| err("only sha256 digests"))?;
                if hex.len() != 64
                    || !hex
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                {
                    return Err(err("a sha256 digest has 64 lowercase hex digits"));
                }
                (name, Some(digest.to_owned()))
            }
            None => (raw, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a port comes before it).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &name[last_slash + i + 1..];
                let ok = !tag.is_empty()
                    && tag.len() <= 128
                    && tag
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                    && !tag.starts_with(['.', '-']);
                if !ok {
                    return Err(err("a tag is up to 128 of [A-Za-z0-9_.-]"));
                }
                (&name[..last_slash + i], Some(tag.to_owned()))
            }
            None => (name, None),
        };
        let (registry, repository) = match path.split_once('/') {
            // The first part is a registry when it looks like a host: a dot, a port, localhost.
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_owned(), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), path.to_owned()),
        };
        let registry = match registry.as_str() {
            "docker.io" | "index.docker.io" => DOCKER_HUB.to_owned(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let valid_component = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(valid_component) {
            return Err(err("repository components are lowercase [a-z0-9._-]"));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_owned())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What the manifest is asked by: the digest when there is one (immutable), else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Pinned by digest: what it names can never change.
    pub fn pinned(&self) -> bool {
        self.digest.is_some()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_the_kubelet() {
        let digest = format!("sha256:{}", "a".repeat(64));
        type Expected<'a> = (&'a str, &'a str, Option<&'a str>, bool);
        let cases: Vec<(String, Expected)> = vec![
            (
                "nginx".into(),
                (DOCKER_HUB, "library/nginx", Some("latest"), false),
            ),
            (
                "nginx:1.27".into(),
                (DOCKER_HUB, "library/nginx", Some("1.27"), false),
            ),
            (
                "docker.io/nginx".into(),
                (DOCKER_HUB, "library/nginx", Some("latest"), false),
            ),
            (
                "bitnami/redis:7".into(),
                (DOCKER_HUB, "bitnami/redis", Some("7"), false),
            ),
            (
                "ghcr.io/acme/web:v2".into(),
                ("ghcr.io", "acme/web", Some("v2"), false),
            ),
            (
                "localhost:5000/app".into(),
                ("localhost:5000", "app", Some("latest"), false),
            ),
            (
                "127.0.0.1:5000/a/b:t".into(),
                ("127.0.0.1:5000", "a/b", Some("t"), false),
            ),
            (
                format!("quay.io/x/y@{digest}"),
                ("quay.io", "x/y", None, true),
            ),
            (
                format!("quay.io/x/y:1@{digest}"),
                ("quay.io", "x/y", Some("1"), true),
            ),
        ];
        for (raw, (registry, repository, tag, pinned)) in cases {
            let r = Reference::parse(&raw).unwrap();
            assert_eq!(
                (
                    r.registry.as_str(),
                    r.repository.as_str(),
                    r.tag.as_deref(),
                    r.pinned()
                ),
                (registry, repository, tag, pinned),
                "{raw}"
            );
        }
        assert_eq!(
            Reference::parse(&format!("x/y@{digest}"))
                .unwrap()
                .manifest_ref(),
            digest
        );
    }

    #[test]
    fn refuses_what_the_kubelet_refuses() {
        for bad in [
            "",
            "Nginx",
            "a b",
            "x@sha256:abc",
            "x@md5:aaa",
            "x:",
            "x:-bad",
            "registry.io/UPPER/x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}

//! Registry credentials: a Docker config file (`~/.docker/config.json`, `--registry-config`)
//! and the pull Secrets of a pod (`kubernetes.io/dockerconfigjson`, `kubernetes.io/dockercfg`).

use super::reference::DOCKER_HUB;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use zerodrop_core::admission::Puller;

/// A user name and password for one registry; the password never reaches a log.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({}, <redacted>)", self.user)
    }
}

/// Logins by registry host, in the order they are tried.
pub type Keyring = HashMap<String, Vec<Login>>;

/// The logins a pod's kubelet would use for its images: what its pull secrets hold. Errors
/// (a Secret that cannot be read) are logged by the source and count as no login.
pub trait PullCredentials: Send + Sync {
    fn keyring(&self, puller: Arc<Puller>) -> BoxFuture<'static, Arc<Keyring>>;
}

/// Basic credentials by registry host. A broken file is an error that names what is wrong.
pub fn from_docker_config(text: &str) -> Result<HashMap<String, Login>, String> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        auths: HashMap<String, Auth>,
    }
    let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    for (key, auth) in file.auths {
        if let Some(login) = auth.login(&key)? {
            out.insert(host_of(&key), login);
        }
    }
    Ok(out)
}

/// The logins of one pull Secret, by its `type` and decoded `data`: `.dockerconfigjson` holds
/// a Docker config file, the legacy `.dockercfg` its `auths` map alone.
pub fn from_pull_secret<'a>(
    kind: &str,
    data: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<Vec<(String, Login)>, String> {
    let (key, wrapped) = match kind {
        "kubernetes.io/dockerconfigjson" => (".dockerconfigjson", true),
        "kubernetes.io/dockercfg" => (".dockercfg", false),
        other => return Err(format!("type {other} is not an image pull secret")),
    };
    let text = data(key).ok_or_else(|| format!("no {key} key"))?;
    let auths: HashMap<String, Auth> = if wrapped {
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            auths: HashMap<String, Auth>,
        }
        serde_json::from_slice::<File>(text)
            .map_err(|e| format!("{key}: {e}"))?
            .auths
    } else {
        serde_json::from_slice(text).map_err(|e| format!("{key}: {e}"))?
    };
    let mut out = Vec::new();
    for (key, auth) in auths {
        if let Some(login) = auth.login(&key)? {
            out.push((host_of(&key), login));
        }
    }
    // HashMap order is random; the kubelet's is its own. Sorted, at least it is stable.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[derive(serde::Deserialize)]
struct Auth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl Auth {
    /// `auth` (base64 `user:password`) or `username` and `password`; neither is no login.
    fn login(self, key: &str) -> Result<Option<Login>, String> {
        use base64::Engine as _;
        Ok(match (self.auth, self.username, self.password) {
            (Some(b64), _, _) if !b64.trim().is_empty() => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| format!("auths[{key}].auth is not base64"))?;
                let raw =
                    String::from_utf8(raw).map_err(|_| format!("auths[{key}].auth is not text"))?;
                raw.split_once(':').map(|(u, p)| Login {
                    user: u.to_owned(),
                    password: p.to_owned(),
                })
            }
            (_, Some(user), Some(password)) => Some(Login { user, password }),
            _ => None,
        })
    }
}

/// `https://index.docker.io/v1/` and `docker.io` are Docker Hub; other keys are hosts, maybe
/// written as URLs.
fn host_of(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(key);
    match host {
        "index.docker.io" | "docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        h => h.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(user: &str, password: &str) -> Login {
        Login {
            user: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn reads_auth_and_username_password() {
        let text = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
            "registry.example.com:5000": {"username": "a", "password": "b:c"},
            "empty.example.com": {}
        }}"#;
        let creds = from_docker_config(text).unwrap();
        assert_eq!(creds[DOCKER_HUB], login("user", "pass"));
        assert_eq!(creds["registry.example.com:5000"], login("a", "b:c"));
        assert!(!creds.contains_key("empty.example.com"));
        assert!(from_docker_config("{").is_err());
        assert!(from_docker_config(r#"{"auths":{"x":{"auth":"%%"}}}"#).is_err());
    }

    fn get<'a>(data: &'a HashMap<String, Vec<u8>>) -> impl Fn(&str) -> Option<&'a [u8]> {
        move |key| data.get(key).map(Vec::as_slice)
    }

    #[test]
    fn reads_both_pull_secret_types_and_refuses_others() {
        let json = br#"{"auths": {"registry.example.com": {"auth": "dXNlcjpwYXNz"}}}"#;
        let data = HashMap::from([(".dockerconfigjson".to_owned(), json.to_vec())]);
        assert_eq!(
            from_pull_secret("kubernetes.io/dockerconfigjson", get(&data)).unwrap(),
            vec![("registry.example.com".to_owned(), login("user", "pass"))]
        );
        let legacy = br#"{"https://index.docker.io/v1/": {"username": "u", "password": "p"}}"#;
        let data = HashMap::from([(".dockercfg".to_owned(), legacy.to_vec())]);
        assert_eq!(
            from_pull_secret("kubernetes.io/dockercfg", get(&data)).unwrap(),
            vec![(DOCKER_HUB.to_owned(), login("u", "p"))]
        );
        let err = from_pull_secret("Opaque", get(&data)).unwrap_err();
        assert!(err.contains("not an image pull secret"), "{err}");
        let err = from_pull_secret("kubernetes.io/dockerconfigjson", get(&data)).unwrap_err();
        assert!(err.contains("no .dockerconfigjson"), "{err}");
    }

    #[test]
    fn a_login_never_prints_its_password() {
        assert_eq!(
            format!("{:?}", login("u", "hunter2")),
            "Login(u, <redacted>)"
        );
    }
}

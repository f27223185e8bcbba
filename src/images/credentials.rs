//! Registry credentials from a Docker config file (`~/.docker/config.json`, or what
//! `--registry-config` names): `auths` entries, base64 `auth` or `username`/`password`.

use super::reference::DOCKER_HUB;
use std::collections::HashMap;

/// Basic credentials by registry host. A missing file is no credentials; a broken one is an
/// error that names it.
pub fn from_docker_config(text: &str) -> Result<HashMap<String, (String, String)>, String> {
    use base64::Engine as _;
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        auths: HashMap<String, Auth>,
    }
    #[derive(serde::Deserialize)]
    struct Auth {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    for (key, auth) in file.auths {
        let pair = match (auth.auth, auth.username, auth.password) {
            (Some(b64), _, _) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| format!("auths[{key}].auth is not base64"))?;
                let raw =
                    String::from_utf8(raw).map_err(|_| format!("auths[{key}].auth is not text"))?;
                match raw.split_once(':') {
                    Some((u, p)) => (u.to_owned(), p.to_owned()),
                    None => continue,
                }
            }
            (None, Some(u), Some(p)) => (u, p),
            _ => continue,
        };
        out.insert(host_of(&key), pair);
    }
    Ok(out)
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

    #[test]
    fn reads_auth_and_username_password() {
        let text = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
            "registry.example.com:5000": {"username": "a", "password": "b:c"},
            "empty.example.com": {}
        }}"#;
        let creds = from_docker_config(text).unwrap();
        assert_eq!(creds[DOCKER_HUB], ("user".into(), "pass".into()));
        assert_eq!(
            creds["registry.example.com:5000"],
            ("a".into(), "b:c".into())
        );
        assert!(!creds.contains_key("empty.example.com"));
        assert!(from_docker_config("{").is_err());
    }
}

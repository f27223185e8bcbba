//! A registry client on the hyper/rustls already in the tree: the distribution API's GETs,
//! anonymous, Basic and Bearer-token auth, redirects only to safe places, every body bounded.

use super::credentials::Login;
use super::reference::Reference;
use super::resolve::{SafeResolver, forbidden_host};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("unauthorized")]
    Unauthorized,
    #[error("rate limited (429)")]
    RateLimited,
    #[error("not found")]
    NotFound,
    #[error("registry answered {0}")]
    Status(u16),
    #[error("more than {0} bytes")]
    TooLarge(usize),
    #[error("timed out")]
    Timeout,
    #[error("refused redirect to {0}")]
    Redirect(String),
    #[error("refused: {0} is a link-local or metadata address")]
    Forbidden(String),
    #[error("{0}")]
    Transport(String),
}

/// Who may be asked what, and how much may come back.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Hosts (`host:port`) spoken to over plain HTTP; every other registry is HTTPS only.
    pub insecure: HashSet<String>,
    /// Basic credentials by registry host (used when the caller brings none).
    pub credentials: HashMap<String, Login>,
    /// PEM CA bundles trusted besides the system's.
    pub extra_roots: Vec<Vec<u8>>,
    /// Bound of one call (auth round trips included).
    pub timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure: HashSet::new(),
            credentials: HashMap::new(),
            extra_roots: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

pub struct RegistryClient {
    http: Client<HttpsConnector<HttpConnector<SafeResolver>>, Empty<Bytes>>,
    config: RegistryConfig,
    /// Bearer tokens by registry, repository and the login they were issued to.
    tokens: Mutex<HashMap<TokenKey, String>>,
    /// Calls in flight per registry host, so one image flood cannot hammer a registry (or be
    /// rate-limited out of it) and one slow registry cannot hold every call.
    per_registry: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// Calls at once to one registry.
pub const PER_REGISTRY: usize = 4;
/// Registries with a limiter kept; past it idle ones are dropped (names are tenant input).
const MAX_REGISTRIES: usize = 256;

type TokenKey = (String, String, Option<Login>);

const MAX_REDIRECTS: usize = 3;
/// Tokens kept; past it they are dropped and fetched again (one round trip each).
const MAX_TOKENS: usize = 1024;

impl RegistryClient {
    pub fn new(config: RegistryConfig) -> Result<Arc<RegistryClient>, RegistryError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        for pem in &config.extra_roots {
            for cert in crate::certs::bundle::certificates(&String::from_utf8_lossy(pem)) {
                roots
                    .add(cert)
                    .map_err(|e| RegistryError::Transport(e.to_string()))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(crate::certs::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| RegistryError::Transport(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // Names are resolved by a resolver that drops link-local and metadata addresses: an
        // image reference is tenant input, and so is where its registry redirects.
        let mut http = HttpConnector::new_with_resolver(SafeResolver::default());
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Arc::new(RegistryClient {
            http: Client::builder(TokioExecutor::new()).build(https),
            config,
            tokens: Mutex::default(),
            per_registry: Mutex::default(),
        }))
    }

    /// The login the configuration holds for `registry`.
    pub fn configured_login(&self, registry: &str) -> Option<&Login> {
        self.config.credentials.get(registry)
    }

    /// GET `/v2/<repository>/<kind>/<reference>` (kind: `manifests` or `blobs`), at most `max`
    /// bytes of body, within the configured timeout, as `login` (or anonymously).
    pub async fn get(
        &self,
        image: &Reference,
        login: Option<&Login>,
        kind: &str,
        reference: &str,
        accept: &str,
        max: usize,
    ) -> Result<(HeaderMap, Bytes), RegistryError> {
        // The host as the connector reads the authority (`[v6]`, `[v6]:port`, `host:port`).
        let authority = image
            .registry
            .parse::<http::uri::Authority>()
            .map_err(|_| RegistryError::Transport("bad registry host".into()))?;
        if forbidden_host(authority.host().trim_matches(['[', ']'])) {
            return Err(RegistryError::Forbidden(image.registry.clone()));
        }
        let scheme = if self.config.insecure.contains(&image.registry) {
            "http"
        } else {
            "https"
        };
        let url = format!(
            "{scheme}://{}/v2/{}/{kind}/{reference}",
            image.registry, image.repository
        );
        let limit = self.limiter(&image.registry);
        let fetch = async {
            // Waiting for a turn counts against the call's bound.
            let _turn = limit
                .acquire()
                .await
                .map_err(|_| RegistryError::Transport("limiter closed".into()))?;
            self.fetch(image, login, url, accept, max).await
        };
        tokio::time::timeout(self.config.timeout, fetch)
            .await
            .map_err(|_| RegistryError::Timeout)?
    }

    fn limiter(&self, registry: &str) -> Arc<tokio::sync::Semaphore> {
        let mut limits = self.per_registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(limit) = limits.get(registry) {
            return limit.clone();
        }
        if limits.len() >= MAX_REGISTRIES {
            limits.retain(|_, l| l.available_permits() < PER_REGISTRY);
        }
        let limit = Arc::new(tokio::sync::Semaphore::new(PER_REGISTRY));
        if limits.len() < MAX_REGISTRIES {
            limits.insert(registry.to_owned(), limit.clone());
        }
        limit
    }

    async fn fetch(
        &self,
        image: &Reference,
        login: Option<&Login>,
        url: String,
        accept: &str,
        max: usize,
    ) -> Result<(HeaderMap, Bytes), RegistryError> {
        let key = (
            image.registry.clone(),
            image.repository.clone(),
            login.cloned(),
        );
        let mut url: Uri = url
            .parse()
            .map_err(|_| RegistryError::Transport("bad URL".into()))?;
        let mut authorized_once = false;
        let mut redirects = 0;
        loop {
            // Credentials go to the registry only, never to where it redirects.
            let same_host = url.authority().map(|a| a.as_str()) == Some(image.registry.as_str());
            let auth = if same_host {
                self.authorization(&key)
            } else {
                None
            };
            let response = self.send(&url, accept, auth.as_deref()).await?;
            let status = response.status();
            if status.is_redirection() {
                redirects += 1;
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                url = self.safe_redirect(&url, location)?;
                if redirects > MAX_REDIRECTS {
                    return Err(RegistryError::Redirect("too many redirects".into()));
                }
                continue;
            }
            if status == StatusCode::UNAUTHORIZED && same_host && !authorized_once {
                authorized_once = true;
                let challenge = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                self.authorize(&key, &challenge).await?;
                continue;
            }
            return match status {
                StatusCode::OK => {
                    let headers = response.headers().clone();
                    let body = Limited::new(response.into_body(), max)
                        .collect()
                        .await
                        .map_err(|_| RegistryError::TooLarge(max))?
                        .to_bytes();
                    Ok((headers, body))
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    Err(RegistryError::Unauthorized)
                }
                StatusCode::NOT_FOUND => Err(RegistryError::NotFound),
                StatusCode::TOO_MANY_REQUESTS => Err(RegistryError::RateLimited),
                s => Err(RegistryError::Status(s.as_u16())),
            };
        }
    }

    async fn send(
        &self,
        url: &Uri,
        accept: &str,
        auth: Option<&str>,
    ) -> Result<http::Response<hyper::body::Incoming>, RegistryError> {
        let mut req = Request::get(url.clone())
            .header(header::ACCEPT, accept)
            .header(header::USER_AGENT, "zerodrop");
        if let Some(auth) = auth {
            req = req.header(header::AUTHORIZATION, auth);
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| RegistryError::Transport(e.to_string()))?;
        self.http
            .request(req)
            .await
            .map_err(|e| RegistryError::Transport(e.to_string()))
    }

    fn authorization(&self, key: &TokenKey) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = tokens.get(key) {
            return Some(format!("Bearer {token}"));
        }
        drop(tokens);
        basic(key.2.as_ref())
    }

    /// Answers a `WWW-Authenticate` challenge: Bearer (the token flow, with Basic credentials
    /// when there are any) or Basic (nothing to fetch: the next try sends the credentials).
    async fn authorize(&self, key: &TokenKey, challenge: &str) -> Result<(), RegistryError> {
        let (registry, login) = (&key.0, key.2.as_ref());
        let Some(params) = challenge.strip_prefix("Bearer ").map(parse_challenge) else {
            return if challenge.starts_with("Basic") && login.is_some() {
                Ok(())
            } else {
                Err(RegistryError::Unauthorized)
            };
        };
        let realm = params.get("realm").ok_or(RegistryError::Unauthorized)?;
        let mut url = format!("{realm}?scope=repository:{}:pull", key.1);
        if let Some(service) = params.get("service") {
            url.push_str("&service=");
            url.extend(form_urlencoded::byte_serialize(service.as_bytes()));
        }
        let url: Uri = url
            .parse()
            .map_err(|_| RegistryError::Transport("bad token realm".into()))?;
        // The realm is where the registry sends us: the same rules as a redirect.
        let base: Uri = format!("https://{registry}/")
            .parse()
            .map_err(|_| RegistryError::Transport("bad registry".into()))?;
        let url = self.safe_redirect(&base, &url.to_string())?;
        let response = self
            .send(&url, "application/json", basic(login).as_deref())
            .await?;
        if response.status() != StatusCode::OK {
            return Err(RegistryError::Unauthorized);
        }
        let body = Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map_err(|_| RegistryError::TooLarge(64 * 1024))?
            .to_bytes();
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token: Token =
            serde_json::from_slice(&body).map_err(|_| RegistryError::Unauthorized)?;
        let token = token
            .token
            .or(token.access_token)
            .ok_or(RegistryError::Unauthorized)?;
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.len() >= MAX_TOKENS {
            tokens.clear();
        }
        tokens.insert(key.clone(), token);
        Ok(())
    }

    /// A redirect target zerodrop will follow: HTTPS (or HTTP to a host listed insecure), and
    /// never a link-local or cloud metadata address.
    fn safe_redirect(&self, from: &Uri, location: &str) -> Result<Uri, RegistryError> {
        let refuse = || RegistryError::Redirect(location.chars().take(200).collect());
        let target: Uri = if location.starts_with('/') {
            let authority = from.authority().ok_or_else(refuse)?;
            let scheme = from.scheme_str().unwrap_or("https");
            format!("{scheme}://{authority}{location}")
                .parse()
                .map_err(|_| refuse())?
        } else {
            location.parse().map_err(|_| refuse())?
        };
        let host = target.host().ok_or_else(refuse)?.trim_matches(['[', ']']);
        let authority = target
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let plain_ok = self.config.insecure.contains(&authority);
        let scheme_ok = match target.scheme_str() {
            Some("https") => true,
            Some("http") => plain_ok,
            _ => false,
        };
        if !scheme_ok || forbidden_host(host) {
            return Err(refuse());
        }
        Ok(target)
    }
}

fn basic(login: Option<&Login>) -> Option<String> {
    use base64::Engine as _;
    let Login { user, password } = login?;
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    ))
}

fn parse_challenge(params: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = params.trim();
    while let Some((key, tail)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, tail) = match tail.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((v, t)) => (v, t),
                None => (quoted, ""),
            },
            None => tail.split_once(',').unwrap_or((tail, "")),
        };
        out.insert(key, value.to_owned());
        rest = tail.trim_start_matches(',').trim();
    }
    out
}

/// The header value of a manifest request: every manifest and index media type we read.
pub fn manifest_accept() -> HeaderValue {
    HeaderValue::from_static(
        "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
         application/vnd.docker.distribution.manifest.list.v2+json, \
         application/vnd.docker.distribution.manifest.v2+json",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_and_hosts() {
        let p = parse_challenge(
            r#"realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#,
        );
        assert_eq!(p["realm"], "https://auth.example.com/token");
        assert_eq!(p["service"], "registry.example.com");
        assert_eq!(p["scope"], "repository:a/b:pull");
    }
}

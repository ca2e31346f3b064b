//! Just enough HTTP for a proxy's JSON API on loopback or a private network: one `GET` per
//! connection, HTTP/1.0 so that the answer is never chunked. No TLS: an API worth exposing over
//! TLS sits behind its own proxy, which the user can point a `command` adapter at.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long one API call may take before it counts as failed.
const LIMIT: Duration = Duration::from_secs(2);

/// An `http://host:port/prefix` base URL, checked once when the settings are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    /// `host:port`, for the connection and the Host header.
    authority: String,
    /// The path before the API's own, without a trailing slash (often empty).
    prefix: String,
}

impl BaseUrl {
    pub fn parse(text: &str) -> Result<BaseUrl, String> {
        let rest = text.strip_prefix("http://").ok_or_else(|| {
            format!("'{text}' is not an http:// URL: write it like http://127.0.0.1:8080")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!(
                "'{text}' names no host: write it like http://127.0.0.1:8080"
            ));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()))
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(BaseUrl {
            authority,
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }
}

/// An answer: its status code and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `GET base + path`; an error says what went wrong in a few words.
pub async fn get(base: &BaseUrl, path: &str) -> Result<Response, String> {
    let request = format!(
        "GET {}{path} HTTP/1.0\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: docker-reroll\r\n\r\n",
        base.prefix, base.authority
    );
    let exchange = async {
        let mut stream = TcpStream::connect(&base.authority).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = match timeout(LIMIT, exchange).await {
        Err(_) => return Err(format!("no answer within {}s", LIMIT.as_secs())),
        Ok(Err(error)) => return Err(error.to_string()),
        Ok(Ok(raw)) => raw,
    };
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("an incomplete HTTP answer")?;
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or("an HTTP answer without a status")?;
    Ok(Response {
        status,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_keep_a_prefix_and_default_to_port_80() {
        let url = BaseUrl::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            (url.authority.as_str(), url.prefix.as_str()),
            ("127.0.0.1:8080", "")
        );
        let url = BaseUrl::parse("http://traefik.local/dashboard/").unwrap();
        assert_eq!(
            (url.authority.as_str(), url.prefix.as_str()),
            ("traefik.local:80", "/dashboard")
        );
        for bad in ["https://x:1", "127.0.0.1:8080", "http://"] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_status_and_body() {
        let response = parse_response(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n404 page not found\n",
        )
        .unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(response.body, "404 page not found\n");
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }

    #[tokio::test]
    async fn gets_from_a_real_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 1024];
            let read = socket.read(&mut buffer).await.unwrap();
            let request = String::from_utf8_lossy(&buffer[..read]).to_string();
            socket
                .write_all(b"HTTP/1.0 200 OK\r\n\r\n{\"ok\":true}")
                .await
                .unwrap();
            request
        });
        let base = BaseUrl::parse(&format!("http://127.0.0.1:{port}/api-prefix")).unwrap();
        let response = get(&base, "/api/x").await.unwrap();
        assert_eq!(
            (response.status, response.body.as_str()),
            (200, "{\"ok\":true}")
        );
        let request = server.await.unwrap();
        assert!(
            request.starts_with("GET /api-prefix/api/x HTTP/1.0\r\n"),
            "{request}"
        );
    }
}

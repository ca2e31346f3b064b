//! A minimal HTTP/1.1 client: just enough to send `GET /` and read one response, on a fresh or a
//! reused connection. Knows Content-Length, chunked bodies and bodies delimited by close.

use std::io::{Error, ErrorKind, Result};
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub type Connection = BufReader<TcpStream>;

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The server will not take another request on this connection.
    pub closes: bool,
}

pub async fn connect(addr: SocketAddr) -> Result<Connection> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// `GET /` on a connection of its own.
pub async fn get_once(addr: SocketAddr) -> Result<Response> {
    let mut conn = connect(addr).await?;
    get(&mut conn, false).await
}

/// Sends `GET /` and reads the whole response. With `keep_alive` false, asks the server to close.
pub async fn get(conn: &mut Connection, keep_alive: bool) -> Result<Response> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let request = format!("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: {connection}\r\n\r\n");
    conn.get_mut().write_all(request.as_bytes()).await?;

    let status_line = read_line(conn).await?;
    let mut parts = status_line.splitn(3, ' ');
    let http_version = parts.next().unwrap_or_default().to_owned();
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;

    let mut content_length = None;
    let mut chunked = false;
    let mut closes = !keep_alive || http_version == "HTTP/1.0";
    loop {
        let line = read_line(conn).await?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid(format!("bad header {line:?}")));
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                content_length = Some(value.parse().map_err(|_| invalid("bad content-length"))?)
            }
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" => closes = value.contains("close"),
            _ => {}
        }
    }

    let body = if chunked {
        read_chunked(conn).await?
    } else if let Some(len) = content_length {
        let mut body = vec![0; len];
        conn.read_exact(&mut body).await?;
        body
    } else {
        closes = true;
        let mut body = Vec::new();
        conn.read_to_end(&mut body).await?;
        body
    };
    Ok(Response {
        status,
        body,
        closes,
    })
}

async fn read_chunked(conn: &mut Connection) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(conn).await?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(conn).await?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        conn.read_exact(&mut body[start..]).await?;
        read_line(conn).await?; // the CRLF after the chunk
    }
}

/// One line without its CRLF; an error if the connection ends first.
async fn read_line(conn: &mut Connection) -> Result<String> {
    let mut line = Vec::new();
    if conn.read_until(b'\n', &mut line).await? == 0 {
        return Err(Error::new(ErrorKind::UnexpectedEof, "connection closed"));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("response line is not UTF-8"))
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidData, msg.into())
}

//! HAProxy, through its runtime API (`stats socket`, on a Unix socket or `ipv4@…` over TCP):
//! `show servers state <backend>` gives each server's address, operational and administrative
//! state; `show stat` gives the sessions each still has (`scur`), so that a server taken out of
//! rotation counts as drained only once its requests are done.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use super::ProxyError;
use crate::model::routing::{Route, Routing, Target};

const LIMIT: Duration = Duration::from_secs(2);

/// Where the runtime API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Socket {
    Tcp(String),
    Unix(String),
}

impl Socket {
    /// `tcp://127.0.0.1:9999`, `unix:///run/haproxy.sock`, or a plain socket path.
    pub fn parse(text: &str) -> Result<Socket, String> {
        if let Some(address) = text.strip_prefix("tcp://") {
            if address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            {
                return Ok(Socket::Tcp(address.to_owned()));
            }
        } else if let Some(path) = text.strip_prefix("unix://") {
            if path.starts_with('/') {
                return Ok(Socket::Unix(path.to_owned()));
            }
        } else if text.starts_with('/') {
            return Ok(Socket::Unix(text.to_owned()));
        }
        Err(format!(
            "'{text}' is not a HAProxy runtime API address: write tcp://HOST:PORT or unix:///PATH"
        ))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Haproxy {
    pub socket: Socket,
    pub backend: String,
}

/// One line of `show servers state`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ServerState {
    pub(super) name: String,
    pub(super) address: Option<IpAddr>,
    /// 0 stopped, 1 starting, 2 running, 3 stopping.
    operational: u32,
    /// Maintenance and drain flags; 0 when none is set.
    admin: u32,
}

impl ServerState {
    fn in_rotation(&self) -> bool {
        matches!(self.operational, 1 | 2) && self.admin == 0
    }

    fn describe(&self) -> &'static str {
        match (self.operational, self.admin) {
            (_, admin) if admin & 0x18 != 0 && admin & 0x67 == 0 => "DRAIN",
            (_, admin) if admin != 0 => "MAINT",
            (0, _) => "DOWN",
            (1, _) => "STARTING",
            (2, _) => "UP",
            _ => "STOPPING",
        }
    }
}

impl Haproxy {
    pub async fn observe(&self, targets: &[Target]) -> Result<Routing, ProxyError> {
        let states_command = format!("show servers state {}", self.backend);
        let stat_command = format!("show stat {} 4 -1", self.backend);
        let (states, stats) = tokio::join!(self.ask(&states_command), self.ask(&stat_command));
        let states = states?;
        if states.trim_start().starts_with("Can't find backend") {
            return Err(ProxyError::UnknownService {
                name: self.backend.clone(),
                known: self.backends().await,
            });
        }
        let servers = parse_states(&states).map_err(ProxyError::Unexpected)?;
        let sessions = parse_sessions(&stats.unwrap_or_default(), &self.backend);
        Ok(routing(&self.backend, &servers, &sessions, targets))
    }

    async fn backends(&self) -> Vec<String> {
        let Ok(list) = self.ask("show backend").await else {
            return Vec::new();
        };
        list.lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| line.trim().to_owned())
            .collect()
    }

    /// One command on one connection: the runtime API closes it after answering.
    pub(super) async fn ask(&self, command: &str) -> Result<String, ProxyError> {
        let exchange = async {
            match &self.socket {
                Socket::Tcp(address) => {
                    exchange(tokio::net::TcpStream::connect(address).await?, command).await
                }
                Socket::Unix(path) => {
                    exchange(tokio::net::UnixStream::connect(path).await?, command).await
                }
            }
        };
        let unreachable =
            |why: String| ProxyError::Unreachable(format!("HAProxy's runtime API: {why}"));
        match timeout(LIMIT, exchange).await {
            Err(_) => Err(unreachable(format!(
                "no answer within {}s",
                LIMIT.as_secs()
            ))),
            Ok(Err(error)) => Err(unreachable(error.to_string())),
            Ok(Ok(text)) => Ok(text),
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    command: &str,
) -> std::io::Result<String> {
    stream.write_all(format!("{command}\n").as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

pub(super) fn parse_states(text: &str) -> Result<Vec<ServerState>, String> {
    let mut header: Option<Vec<&str>> = None;
    let mut servers = Vec::new();
    for line in text.lines() {
        if let Some(names) = line.strip_prefix("# ") {
            header = Some(names.split_whitespace().collect());
            continue;
        }
        let Some(names) = &header else { continue };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < names.len().min(7) {
            continue;
        }
        let field = |name: &str| {
            names
                .iter()
                .position(|n| *n == name)
                .and_then(|index| fields.get(index).copied())
        };
        let number = |name: &str| field(name).and_then(|v| v.parse::<u32>().ok());
        servers.push(ServerState {
            name: field("srv_name").unwrap_or("?").to_owned(),
            address: field("srv_addr").and_then(|a| a.parse().ok()),
            operational: number("srv_op_state").unwrap_or(0),
            admin: number("srv_admin_state").unwrap_or(0),
        });
    }
    if header.is_none() {
        let first = text.lines().next().unwrap_or("").trim();
        return Err(format!(
            "HAProxy's runtime API answered '{first}' to show servers state"
        ));
    }
    Ok(servers)
}

/// `scur` per server of `backend`, from `show stat`'s CSV.
fn parse_sessions(text: &str, backend: &str) -> BTreeMap<String, u32> {
    let mut lines = text.lines();
    let Some(header) = lines.next().and_then(|l| l.strip_prefix("# ")) else {
        return BTreeMap::new();
    };
    let columns: Vec<&str> = header.split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(proxy), Some(server), Some(current)) = (at("pxname"), at("svname"), at("scur"))
    else {
        return BTreeMap::new();
    };
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|fields| fields.get(proxy) == Some(&backend))
        .filter_map(|fields| {
            let sessions = fields.get(current)?.parse().ok()?;
            Some((fields.get(server)?.to_string(), sessions))
        })
        .collect()
}

fn routing(
    backend: &str,
    servers: &[ServerState],
    sessions: &BTreeMap<String, u32>,
    targets: &[Target],
) -> Routing {
    let routes = targets
        .iter()
        .map(|target| {
            let mine: Vec<&ServerState> = servers
                .iter()
                .filter(|s| s.address.is_some_and(|a| target.addresses.contains(&a)))
                .collect();
            let in_flight: u32 = mine
                .iter()
                .map(|s| sessions.get(&s.name).copied().unwrap_or(0))
                .sum();
            let route = if mine.iter().any(|s| s.in_rotation()) {
                Route::Serving
            } else if in_flight > 0 {
                Route::Finishing { in_flight }
            } else {
                Route::Out
            };
            (target.id.clone(), route)
        })
        .collect();
    let listed: Vec<String> = servers
        .iter()
        .filter_map(|s| {
            let address = s.address.filter(|a| !a.is_unspecified())?;
            let busy = match sessions.get(&s.name) {
                Some(&n) if n > 0 => format!(" ({n} in flight)"),
                _ => String::new(),
            };
            Some(format!("{} {address} {}{busy}", s.name, s.describe()))
        })
        .collect();
    Routing {
        routes,
        shown: format!(
            "haproxy backend {backend}: {}",
            if listed.is_empty() {
                "no servers with an address".to_owned()
            } else {
                listed.join(", ")
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATES: &str = "1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 app 1 app1 172.18.0.3 2 0 1 1 5 6 3 4 6 0 0 0 app 80 - 0 0 - - 0
3 app 2 app2 172.18.0.4 0 0 1 1 2 7 2 0 6 0 0 0 app 80 - 0 0 - - 0
3 app 3 app3 172.18.0.5 2 8 1 1 2 6 3 4 6 0 0 0 app 80 - 0 0 - - 0
3 app 4 app4 0.0.0.0 0 32 1 1 9 1 0 0 14 0 0 0 app 80 - 0 0 - - 0

";

    const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim
app,app1,0,0,1,4,
app,app2,0,0,2,3,
app,app3,0,0,0,2,
app,BACKEND,0,0,3,9,
other,app2,0,0,7,7,
";

    fn target(id: &str, ip: &str) -> Target {
        Target {
            id: id.into(),
            name: id.into(),
            addresses: vec![ip.parse().unwrap()],
        }
    }

    #[test]
    fn up_servers_serve_down_ones_finish_their_sessions() {
        let servers = parse_states(STATES).unwrap();
        assert_eq!(servers.len(), 4);
        let sessions = parse_sessions(STAT, "app");
        assert_eq!(
            sessions.get("app2"),
            Some(&2),
            "only the app backend counts"
        );
        let targets = [
            target("up", "172.18.0.3"),
            target("down-busy", "172.18.0.4"),
            target("drain-idle", "172.18.0.5"),
            target("unknown", "172.18.0.9"),
        ];
        let routing = routing("app", &servers, &sessions, &targets);
        assert_eq!(routing.route("up"), Route::Serving);
        assert_eq!(
            routing.route("down-busy"),
            Route::Finishing { in_flight: 2 }
        );
        assert_eq!(routing.route("drain-idle"), Route::Out);
        assert_eq!(routing.route("unknown"), Route::Out);
        assert_eq!(
            routing.shown,
            "haproxy backend app: app1 172.18.0.3 UP (1 in flight), app2 172.18.0.4 DOWN (2 in flight), \
             app3 172.18.0.5 DRAIN"
        );
    }

    #[test]
    fn an_unexpected_answer_is_an_error() {
        assert!(parse_states("Unknown command.\n").is_err());
    }

    #[test]
    fn sockets_are_tcp_or_unix() {
        assert_eq!(
            Socket::parse("tcp://127.0.0.1:9999"),
            Ok(Socket::Tcp("127.0.0.1:9999".into()))
        );
        assert_eq!(
            Socket::parse("unix:///run/haproxy.sock"),
            Ok(Socket::Unix("/run/haproxy.sock".into()))
        );
        assert_eq!(
            Socket::parse("/run/h.sock"),
            Ok(Socket::Unix("/run/h.sock".into()))
        );
        for bad in ["tcp://nohost", "http://x:1", "unix://relative", "tcp://:80"] {
            assert!(Socket::parse(bad).is_err(), "{bad}");
        }
    }
}

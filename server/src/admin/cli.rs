//! `crucial-admin`: the admin plane from the command line.
//!
//! ```text
//! crucial-admin --node 127.0.0.1:7100 status          # the cluster, one row per node
//! crucial-admin --node 127.0.0.1:7100 objects         # every object, with its node
//! crucial-admin --node 127.0.0.1:7101 drain           # hand off, leave, stop
//! crucial-admin --node 127.0.0.1:7100 delete crucial::AtomicI64 hits
//! crucial-admin --node 127.0.0.1:7100 migrate Account alice --to 127.0.0.1:7002
//! crucial-admin --node 127.0.0.1:7100 migrate Account alice --back
//! crucial-admin --node 127.0.0.1:7100 light Account alice --on 127.0.0.1:7001,127.0.0.1:7002
//! crucial-admin --node 127.0.0.1:7100 light Account alice --off
//! ```
//!
//! `--node` is any member's admin address (`CRUCIAL_ADMIN`); the others are
//! found through its view. `--json` prints one JSON document for scripts.

use super::pb;
use super::pb::admin_client::AdminClient;
use clap::{Parser, Subcommand};
use crucial_protocol::placement::{Placement, View};
use serde::Serialize;
use std::io::Write;
use std::time::Duration;
use tonic::transport::Channel;

/// The admin plane of a Crucial cluster.
#[derive(Debug, Parser)]
#[command(name = "crucial-admin", version, about)]
pub struct Args {
    /// Admin address (`host:port`) of any node of the cluster.
    #[arg(long, env = "CRUCIAL_ADMIN", default_value = "127.0.0.1:7100")]
    pub node: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A `crucial-admin` command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The cluster's view and every node's objects, bytes, calls/s and parked calls.
    Status,
    /// Every object of the cluster, with the node that holds it.
    Objects,
    /// Makes the node at `--node` hand off its objects, leave and stop.
    Drain,
    /// Deletes an object (on whichever node owns it).
    Delete {
        /// Registered type name, e.g. `crucial::AtomicI64`.
        type_name: String,
        /// The object's key.
        key: String,
        /// The application whose shared object it is, on nodes that
        /// authenticate (`objects` lists it).
        #[arg(long)]
        app: Option<String>,
    },
    /// Moves a lambda object (a hot one) to another node while workflows
    /// run: its calls wait for the move, nothing fails. A type placed by
    /// application moves its whole application.
    Migrate {
        /// The lambda object type, as `objects` lists it.
        type_name: String,
        /// The object's key.
        key: String,
        /// Data-plane address of the member to move it to.
        #[arg(long, required_unless_present = "back", conflicts_with = "back")]
        to: Option<String>,
        /// Back to where the ring places it.
        #[arg(long)]
        back: bool,
    },
    /// Gives a read-mostly lambda object light replicas: members that
    /// serve its read-only (`&self`) calls besides its owner, each checked
    /// at the owner.
    Light {
        /// The lambda object type, as `objects` lists it.
        type_name: String,
        /// The object's key.
        key: String,
        /// Data-plane addresses of the members, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            required_unless_present = "off",
            conflicts_with = "off"
        )]
        on: Vec<String>,
        /// No light replicas any more.
        #[arg(long)]
        off: bool,
    },
}

/// What `light` did.
#[derive(Debug, Serialize)]
pub struct Lightened {
    /// The lambda object type.
    pub type_name: String,
    /// Its key.
    pub key: String,
    /// Its owner.
    pub owner: String,
    /// Its light replicas now.
    pub light: Vec<String>,
    /// The view that says so.
    pub epoch: u64,
}

/// What `migrate` did.
#[derive(Debug, Serialize)]
pub struct Migrated {
    /// The lambda object type.
    pub type_name: String,
    /// Its key.
    pub key: String,
    /// The node it was on.
    pub from: String,
    /// The node it is on now.
    pub to: String,
    /// The view it moved in.
    pub epoch: u64,
}

/// An object placed on a node by hand, as `status` lists it.
#[derive(Debug, Serialize)]
pub struct PlacedRow {
    /// The object: `Type key` (or `application app` for a type placed by
    /// application).
    pub object: String,
    /// Data-plane address of its node.
    pub node: String,
}

/// One node's row of `status`.
#[derive(Debug, Serialize)]
pub struct NodeRow {
    /// Data-plane address.
    pub addr: String,
    /// Admin address.
    pub admin: String,
    /// Its newest view's epoch.
    pub epoch: u64,
    /// Objects it holds.
    pub objects: u64,
    /// Bytes of its persistent objects.
    pub bytes: u64,
    /// Requests per second over the sampling interval.
    pub calls_per_second: f64,
    /// Calls parked on its objects.
    pub parked: u64,
    /// Its data directory: `none`, `ok` or `failing: <cause>`.
    pub store: String,
    /// `serving`, `moving` (a handoff under way) or `draining`.
    pub state: String,
}

/// `status`: the cluster as one document.
#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    /// Whether the nodes are in a cluster (etcd) or one is on its own.
    pub clustered: bool,
    /// The view's epoch as the asked node knows it.
    pub epoch: u64,
    /// Copies of each persistent object (`--replicas`).
    pub replicas: u32,
    /// The view's members, in order.
    pub members: Vec<String>,
    /// Objects placed on a node by hand (`migrate`).
    pub placed: Vec<PlacedRow>,
    /// Objects with light replicas (`light`): the object, and its light
    /// replicas.
    pub light: Vec<(String, Vec<String>)>,
    /// One row per member that answered.
    pub nodes: Vec<NodeRow>,
    /// `node: error` for each member that did not.
    pub errors: Vec<String>,
}

/// One object, with its node.
#[derive(Debug, Serialize)]
pub struct ObjectRow {
    /// The node holding it.
    pub node: String,
    /// Its application (empty: none).
    pub application: String,
    /// Registered type name.
    pub type_name: String,
    /// Key.
    pub key: String,
    /// Kept on disk.
    pub persistent: bool,
    /// Encoded bytes (persistent objects).
    pub bytes: u64,
    /// Calls parked on it.
    pub parked: u32,
}

/// Environment variable holding the admin token `crucial-admin` presents.
pub const ENV_ADMIN_TOKEN: &str = "CRUCIAL_ADMIN_TOKEN";

/// Environment variable naming a file holding the admin token.
pub const ENV_ADMIN_TOKEN_FILE: &str = "CRUCIAL_ADMIN_TOKEN_FILE";

/// Puts the admin token, if one is configured, on every request.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    /// The token from `CRUCIAL_ADMIN_TOKEN_FILE` or `CRUCIAL_ADMIN_TOKEN`.
    pub fn from_env() -> Result<Bearer, String> {
        let value = crucial::Token::from_env(ENV_ADMIN_TOKEN, ENV_ADMIN_TOKEN_FILE)?
            .map(|t| format!("Bearer {}", t.expose()).parse())
            .transpose()
            .map_err(|_| "the admin token holds characters a header cannot".to_string())?;
        Ok(Bearer(value))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The admin client `connect` gives.
pub type Admin = AdminClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>;

/// A gRPC client of the admin plane of the node at `admin`, presenting the
/// admin token of the environment if there is one.
pub async fn connect(admin: &str) -> Result<Admin, String> {
    let ca = std::env::var_os(crucial::ENV_TLS_CA).filter(|p| !p.is_empty());
    let scheme = if ca.is_some() { "https" } else { "http" };
    let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{admin}"))
        .map_err(|e| format!("node {admin}: bad address: {e}"))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(30));
    if let Some(ca) = ca {
        // TLS with the CA of CRUCIAL_TLS_CA, as the data-plane clients.
        let pem = std::fs::read(&ca).map_err(|e| {
            format!(
                "{}={}: {e}",
                crucial::ENV_TLS_CA,
                std::path::Path::new(&ca).display()
            )
        })?;
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(pem))
            .domain_name(crucial_protocol::wire::host_of(admin));
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("node {admin}: TLS: {e}"))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("node {admin}: cannot connect: {e}"))?;
    Ok(AdminClient::with_interceptor(channel, Bearer::from_env()?))
}

/// One node's status, asked at its admin address.
pub async fn status_of(admin: &str) -> Result<pb::NodeStatus, String> {
    let mut client = connect(admin).await?;
    client
        .status(pb::StatusRequest {})
        .await
        .map(|r| r.into_inner())
        .map_err(|e| format!("node {admin}: {}", e.message()))
}

/// Asks `node` for the view, then every member for its status (twice, 500 ms
/// apart, for the call rate).
pub async fn cluster_status(node: &str) -> Result<ClusterStatus, String> {
    let first = status_of(node).await?;
    let members: Vec<pb::Member> = first.members.clone();
    let mut before = Vec::new();
    for member in &members {
        before.push(status_of(&member.admin).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut status = ClusterStatus {
        clustered: first.clustered,
        epoch: first.epoch,
        replicas: first.replicas.max(1),
        members: members.iter().map(|m| m.addr.clone()).collect(),
        placed: first
            .placed
            .iter()
            .map(|p| PlacedRow {
                object: placed_object(&p.type_name, &p.key),
                node: p.node.clone(),
            })
            .collect(),
        light: first
            .light
            .iter()
            .map(|l| (placed_object(&l.type_name, &l.key), l.nodes.clone()))
            .collect(),
        nodes: Vec::new(),
        errors: Vec::new(),
    };
    for (member, before) in members.iter().zip(before) {
        if member.admin.is_empty() {
            status.errors.push(format!(
                "node {}: serves no admin plane (--admin)",
                member.addr
            ));
            continue;
        }
        let after = status_of(&member.admin).await;
        match (before, after) {
            (Ok(before), Ok(after)) => {
                let seconds = after.uptime_ms.saturating_sub(before.uptime_ms).max(1) as f64 / 1e3;
                let state = if after.draining {
                    "draining"
                } else if !after.settled {
                    "moving"
                } else {
                    "serving"
                };
                status.nodes.push(NodeRow {
                    addr: after.addr,
                    admin: after.admin,
                    epoch: after.epoch,
                    objects: after.objects,
                    bytes: after.bytes,
                    calls_per_second: after.requests_total.saturating_sub(before.requests_total)
                        as f64
                        / seconds,
                    parked: after.parked,
                    store: after.store,
                    state: state.into(),
                });
            }
            (Err(e), _) | (_, Err(e)) => status.errors.push(e),
        }
    }
    Ok(status)
}

/// Every object of the cluster.
pub async fn cluster_objects(node: &str) -> Result<(Vec<ObjectRow>, Vec<String>), String> {
    let first = status_of(node).await?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for member in first.members {
        let listed = async {
            let mut client = connect(&member.admin).await?;
            client
                .list_objects(pb::ListObjectsRequest {})
                .await
                .map(|r| r.into_inner().objects)
                .map_err(|e| format!("node {}: {}", member.admin, e.message()))
        };
        match listed.await {
            Ok(objects) => rows.extend(objects.into_iter().map(|o| ObjectRow {
                node: member.addr.clone(),
                application: o.application,
                type_name: o.type_name,
                key: o.key,
                persistent: o.persistent,
                bytes: o.bytes,
                parked: o.parked,
            })),
            Err(e) => errors.push(e),
        }
    }
    rows.sort_by(|a, b| {
        (&a.application, &a.type_name, &a.key).cmp(&(&b.application, &b.type_name, &b.key))
    });
    Ok((rows, errors))
}

/// Deletes an object on its owner (found through the asked node's view).
pub async fn delete(node: &str, type_name: &str, key: &str) -> Result<(String, bool), String> {
    let first = status_of(node).await?;
    let view = View::new(
        first.epoch,
        first.members.iter().map(|m| m.addr.clone()).collect(),
    );
    let owner_addr = Placement::new(view).owner(type_name, key).to_string();
    let owner = first
        .members
        .iter()
        .find(|m| m.addr == owner_addr)
        .map(|m| m.admin.clone())
        .unwrap_or_default();
    let mut client = connect(&owner).await?;
    let existed = client
        .delete_object(pb::DeleteObjectRequest {
            type_name: type_name.into(),
            key: key.into(),
        })
        .await
        .map_err(|e| format!("node {owner_addr}: {}", e.message()))?
        .into_inner()
        .existed;
    Ok((owner_addr, existed))
}

/// How `status` names an object placed by hand.
fn placed_object(type_name: &str, key: &str) -> String {
    use crucial_protocol::placement::{lambda_home_parts, LAMBDA_HOME};
    if type_name != LAMBDA_HOME {
        return format!("{type_name} {key}");
    }
    match lambda_home_parts(key) {
        (_, Some((type_name, key))) => format!("{type_name} {key}"),
        (application, None) => format!("application {application}"),
    }
}

/// Moves lambda object `key` of `type_name` to member `to` (`None`: back
/// where the ring places it), asking the node at `admin`.
pub async fn migrate(
    admin: &str,
    type_name: &str,
    key: &str,
    to: Option<&str>,
) -> Result<Migrated, String> {
    let mut client = connect(admin).await?;
    let reply = client
        .migrate(pb::MigrateRequest {
            type_name: type_name.into(),
            key: key.into(),
            to: to.unwrap_or_default().into(),
        })
        .await
        .map_err(|e| format!("node {admin}: {}", e.message()))?
        .into_inner();
    Ok(Migrated {
        type_name: type_name.into(),
        key: key.into(),
        from: reply.from,
        to: reply.to,
        epoch: reply.epoch,
    })
}

/// Gives lambda object `key` of `type_name` the light replicas `on` (none:
/// none any more), asking the node at `admin`.
pub async fn light(
    admin: &str,
    type_name: &str,
    key: &str,
    on: &[String],
) -> Result<Lightened, String> {
    let mut client = connect(admin).await?;
    let reply = client
        .light(pb::LightRequest {
            type_name: type_name.into(),
            key: key.into(),
            on: on.to_vec(),
        })
        .await
        .map_err(|e| format!("node {admin}: {}", e.message()))?
        .into_inner();
    Ok(Lightened {
        type_name: type_name.into(),
        key: key.into(),
        owner: reply.owner,
        light: reply.nodes,
        epoch: reply.epoch,
    })
}

/// Drains the node at `admin`.
pub async fn drain(admin: &str) -> Result<u64, String> {
    let mut client = connect(admin).await?;
    client
        .drain(pb::DrainRequest {})
        .await
        .map(|r| r.into_inner().moved)
        .map_err(|e| format!("node {admin}: {}", e.message()))
}

/// Prints `status` as a table.
pub fn print_status(out: &mut impl Write, status: &ClusterStatus) -> std::io::Result<()> {
    if status.clustered {
        writeln!(
            out,
            "cluster view {}: {} node(s), {} cop{} of each persistent object",
            status.epoch,
            status.members.len(),
            status.replicas,
            if status.replicas == 1 { "y" } else { "ies" }
        )?;
    } else {
        writeln!(out, "a single node (no cluster)")?;
    }
    writeln!(
        out,
        "{:22} {:22} {:>8} {:>9} {:>12} {:>9} {:>7}  {:8} STATE",
        "NODE", "ADMIN", "EPOCH", "OBJECTS", "BYTES", "CALLS/S", "PARKED", "STORE"
    )?;
    for n in &status.nodes {
        // A failing store's cause is printed below the table.
        let store = n.store.split(':').next().unwrap_or_default();
        writeln!(
            out,
            "{:22} {:22} {:>8} {:>9} {:>12} {:>9.0} {:>7}  {:8} {}",
            n.addr,
            n.admin,
            n.epoch,
            n.objects,
            n.bytes,
            n.calls_per_second,
            n.parked,
            store,
            n.state
        )?;
    }
    for n in status
        .nodes
        .iter()
        .filter(|n| n.store.starts_with("failing"))
    {
        writeln!(out, "store of {}: {}", n.addr, n.store)?;
    }
    for p in &status.placed {
        writeln!(out, "placed by hand: {} on {}", p.object, p.node)?;
    }
    for (object, nodes) in &status.light {
        writeln!(out, "light replicas: {object} on {}", nodes.join(", "))?;
    }
    for e in &status.errors {
        writeln!(out, "error: {e}")?;
    }
    Ok(())
}

/// `main` of `crucial-admin`.
pub fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let result: Result<bool, String> = rt.block_on(async {
        match &args.command {
            Command::Status => {
                let status = cluster_status(&args.node).await?;
                if args.json {
                    let _ = writeln!(out, "{}", json(&status));
                } else {
                    let _ = print_status(&mut out, &status);
                }
                Ok(status.errors.is_empty())
            }
            Command::Objects => {
                let (rows, errors) = cluster_objects(&args.node).await?;
                if args.json {
                    let doc = serde_json::json!({ "objects": rows, "errors": errors });
                    let _ = writeln!(out, "{doc}");
                } else {
                    let _ = writeln!(
                        out,
                        "{:22} {:12} {:28} {:24} {:>10} {:>10} {:>6}",
                        "NODE", "APP", "TYPE", "KEY", "PERSISTENT", "BYTES", "PARKED"
                    );
                    for r in &rows {
                        let app = if r.application.is_empty() {
                            "-"
                        } else {
                            &r.application
                        };
                        let _ = writeln!(
                            out,
                            "{:22} {:12} {:28} {:24} {:>10} {:>10} {:>6}",
                            r.node, app, r.type_name, r.key, r.persistent, r.bytes, r.parked
                        );
                    }
                    let _ = writeln!(out, "objects: {}", rows.len());
                    for e in &errors {
                        let _ = writeln!(out, "error: {e}");
                    }
                }
                Ok(errors.is_empty())
            }
            Command::Drain => {
                let moved = drain(&args.node).await?;
                if args.json {
                    let _ = writeln!(
                        out,
                        "{}",
                        serde_json::json!({ "drained": args.node, "moved": moved })
                    );
                } else {
                    let _ = writeln!(out, "{} drained: {moved} object(s) handed off", args.node);
                }
                Ok(true)
            }
            Command::Delete {
                type_name,
                key,
                app,
            } => {
                let full_key = match app {
                    Some(app) => crucial_protocol::placement::namespaced(app, key),
                    None => key.clone(),
                };
                let (owner, existed) = delete(&args.node, type_name, &full_key).await?;
                if args.json {
                    let doc = serde_json::json!({ "node": owner, "existed": existed });
                    let _ = writeln!(out, "{doc}");
                } else {
                    let what = if existed { "deleted" } else { "did not exist" };
                    let _ = writeln!(out, "{type_name} `{key}` on {owner}: {what}");
                }
                Ok(true)
            }
            Command::Light {
                type_name,
                key,
                on,
                off: _,
            } => {
                let done = light(&args.node, type_name, key, on).await?;
                if args.json {
                    let _ = writeln!(out, "{}", json(&done));
                } else {
                    let _ = writeln!(
                        out,
                        "{type_name} `{key}` on {}: light replicas {} (view {})",
                        done.owner,
                        if done.light.is_empty() {
                            "none".to_string()
                        } else {
                            done.light.join(", ")
                        },
                        done.epoch
                    );
                }
                Ok(true)
            }
            Command::Migrate {
                type_name,
                key,
                to,
                back: _,
            } => {
                let moved = migrate(&args.node, type_name, key, to.as_deref()).await?;
                if args.json {
                    let _ = writeln!(out, "{}", json(&moved));
                } else {
                    let _ = writeln!(
                        out,
                        "{type_name} `{key}`: {} -> {} (view {})",
                        moved.from, moved.to, moved.epoch
                    );
                }
                Ok(true)
            }
        }
    });
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

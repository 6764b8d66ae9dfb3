//! Authentication with real node processes: the credentials file, tokens on
//! the client port, the peer port, the admin plane and the metrics page,
//! rotation without a restart, client ids scoped to their application, and
//! the safe default (no credentials: loopback only, unless `--insecure`).

mod common;

use common::bank::Account;
use common::cluster::{free_port, terminate, wait_for_views, Etcd};
use common::{http_get, parked_on, sample, wait_until, DataDir, RawConnection, ServerProcess};
use crucial::__private::registry::registry;
use crucial::{
    AtomicBytes, AtomicI64, Bytes, Client, Config, Error, RemoteError, Semaphore, Token,
};
use crucial_protocol::codec;
use crucial_protocol::wire::{Call, ObjectRef, Request};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const SHOP: &str = "shop-token-0000000000000001";
const SHOP_NEXT: &str = "shop-token-0000000000000002";
/// The fixture's lambda objects belong to application `crucial-server`.
const FIXTURE_APP: &str = "fixture-token-000000000001";
const ADMIN: &str = "admin-token-00000000000001";
const CLUSTER: &str = "cluster-token-0000000000001";

/// A credentials file in a fresh directory, readable by its owner only.
struct Credentials {
    dir: DataDir,
    path: PathBuf,
}

impl Credentials {
    fn new(name: &str, text: &str) -> Credentials {
        let dir = DataDir::new(name);
        std::fs::create_dir_all(&dir.0).expect("dir");
        let path = dir.0.join("credentials");
        let credentials = Credentials { dir, path };
        credentials.write(text);
        credentials
    }

    /// Replaces the file's text at once (a rename, as an operator's tool
    /// would), so the node never reads half a file.
    fn write(&self, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        let next = self.dir.0.join("credentials.next");
        std::fs::write(&next, text).expect("write");
        std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::rename(&next, &self.path).expect("rename");
    }

    fn arg(&self) -> &str {
        self.path.to_str().expect("utf-8")
    }
}

fn all_roles() -> String {
    format!(
        "# test credentials\napp shop {SHOP}\napp crucial-server {FIXTURE_APP}\n\
         admin ops {ADMIN}\ncluster nodes {CLUSTER}\n"
    )
}

fn client(addr: &str, token: Option<&str>) -> Client {
    let config = Config::new().server(addr.to_string());
    match token {
        Some(token) => config.token(Token::new(token)),
        None => config,
    }
    .connect()
    .expect("a client (it connects on its first call)")
}

/// The handshake's refusal, as the client reports it.
fn refused(result: crucial::Result<i64>) -> String {
    match result {
        Err(Error::Connect { reason, .. }) => reason,
        other => panic!("expected a refused handshake, got {other:?}"),
    }
}

/// `GET /metrics` with an optional bearer token: the status line.
fn scrape(url: &str, token: Option<&str>) -> String {
    scrape_page(url, token).0
}

/// `GET /metrics` with an optional bearer token: the status line and the
/// rest of the response.
fn scrape_page(url: &str, token: Option<&str>) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = std::net::TcpStream::connect(host).expect("connect to metrics");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (status, rest) = response.split_once("\r\n").unwrap_or((&response, ""));
    (status.to_string(), rest.to_string())
}

#[test]
fn every_client_needs_a_valid_token_and_a_rotation_needs_no_restart() {
    let credentials = Credentials::new("auth-client", &all_roles());
    let node = ServerProcess::fixture_node_with(&[
        "--credentials",
        credentials.arg(),
        "--metrics",
        "127.0.0.1:0",
    ]);

    // Missing, wrong, and another port's token: refused, nothing ran.
    let reason = refused(client(&node.addr, None).open::<AtomicI64>("x").fetch_add(1));
    assert!(
        reason.contains("requires a token and none was given"),
        "{reason}"
    );
    let reason = refused(
        client(&node.addr, Some("not-a-token-of-this-node"))
            .open::<AtomicI64>("x")
            .fetch_add(1),
    );
    assert!(reason.contains("wrong, or revoked"), "{reason}");
    let reason = refused(
        client(&node.addr, Some(CLUSTER))
            .open::<AtomicI64>("x")
            .fetch_add(1),
    );
    assert!(reason.contains("peer port"), "{reason}");
    let shop = client(&node.addr, Some(SHOP));
    assert_eq!(
        shop.open::<AtomicI64>("x").load().expect("a valid token"),
        0,
        "no refused call ran"
    );

    // The metrics page takes an admin's token only.
    let url = node.metrics.clone().expect("metrics");
    assert!(scrape(&url, None).contains("401"), "no token");
    assert!(
        scrape(&url, Some(SHOP)).contains("401"),
        "an application's token"
    );
    assert!(
        scrape(&url, Some(ADMIN)).contains("200"),
        "an admin's token"
    );
    let page = {
        // http_get sends no token: it is refused with a reason in the body.
        let (status, body) = http_get(&url);
        assert!(status.contains("401"), "{status}");
        body
    };
    assert!(page.contains("admin token is required"), "{page}");

    // Rotation: the new token is added (both work), then the old one
    // removed (refused on new connections), without a restart.
    shop.open::<AtomicI64>("x").fetch_add(1).expect("before");
    credentials.write(&format!("{}app shop {SHOP_NEXT}\n", all_roles()));
    wait_until("the new token is taken", || {
        client(&node.addr, Some(SHOP_NEXT))
            .open::<AtomicI64>("x")
            .load()
            .is_ok()
    });
    client(&node.addr, Some(SHOP))
        .open::<AtomicI64>("x")
        .fetch_add(1)
        .expect("the old token still works during the rotation");
    credentials.write(&all_roles().replace(SHOP, SHOP_NEXT));
    wait_until("the old token is refused", || {
        client(&node.addr, Some(SHOP))
            .open::<AtomicI64>("x")
            .load()
            .is_err()
    });
    let next = client(&node.addr, Some(SHOP_NEXT));
    assert_eq!(
        next.open::<AtomicI64>("x").load().expect("the new token"),
        2
    );
    // A connection opened before keeps the identity it proved.
    shop.open::<AtomicI64>("x")
        .fetch_add(1)
        .expect("an open connection stays");
    assert!(
        !node.stderr().contains(SHOP) && !node.stderr().contains(SHOP_NEXT),
        "a token was logged"
    );
}

/// `AtomicI64::fetch_add(delta)` on `key`, encoded.
fn fetch_add(key: &str, delta: i64) -> Vec<u8> {
    let fingerprint = registry()
        .shared_type("crucial::AtomicI64")
        .and_then(|t| t.method("fetch_add"))
        .map(|m| m.id.fingerprint)
        .expect("AtomicI64::fetch_add is registered");
    let args = codec::encode(&(delta,)).expect("args");
    Request::Call(Call {
        object: ObjectRef {
            type_name: "crucial::AtomicI64",
            key,
        },
        method: "fetch_add",
        fingerprint,
        args: &args,
        timeout_ms: 0,
    })
    .encode()
    .expect("call")
}

#[test]
fn a_client_reusing_another_application_s_client_id_gets_none_of_its_replies() {
    let credentials = Credentials::new("auth-ids", &all_roles());
    let node = ServerProcess::fixture_node_with(&["--credentials", credentials.arg()]);
    // Application shop's client 4321 makes its request 7.
    let mut shop = RawConnection::open_with(&node.addr, 4321, Some(SHOP)).expect("shop");
    let old: i64 = codec::decode(&shop.request(7, &fetch_add("shop/a", 4321)).unwrap()).unwrap();
    assert_eq!(old, 0);
    // A client of another application says it is client 4321 and sends
    // request 7 again: its own call runs, it is not handed shop's reply.
    let mut other =
        RawConnection::open_with(&node.addr, 4321, Some(FIXTURE_APP)).expect("another app");
    let reply: i64 = codec::decode(&other.request(7, &fetch_add("other/b", 1)).unwrap()).unwrap();
    assert_eq!(reply, 0, "its own call's reply, not shop's");
    let shop_client = client(&node.addr, Some(SHOP));
    let other_client = client(&node.addr, Some(FIXTURE_APP));
    assert_eq!(other_client.open::<AtomicI64>("other/b").load().unwrap(), 1);
    assert_eq!(
        shop_client.open::<AtomicI64>("shop/a").load().unwrap(),
        4321
    );
    // Shop's own retry is still answered from memory, applied once.
    let mut again = RawConnection::open_with(&node.addr, 4321, Some(SHOP)).expect("shop");
    let replayed: i64 =
        codec::decode(&again.request(7, &fetch_add("shop/a", 4321)).unwrap()).unwrap();
    assert_eq!(replayed, 0, "the remembered reply");
    assert_eq!(
        shop_client.open::<AtomicI64>("shop/a").load().unwrap(),
        4321
    );
}

#[test]
fn an_application_cannot_call_another_application_s_functions() {
    let credentials = Credentials::new("auth-apps", &all_roles());
    let node = ServerProcess::fixture_node_with(&["--credentials", credentials.arg()]);
    let owner = client(&node.addr, Some(FIXTURE_APP));
    let account = Account::at("acct").with_client(owner);
    account.open("ann".into(), 10).expect("its own application");
    let shop = Account::at("acct").with_client(client(&node.addr, Some(SHOP)));
    match shop.balance() {
        Err(Error::Remote(RemoteError::Forbidden {
            application,
            reason,
        })) => {
            assert_eq!(application, "shop");
            assert!(reason.contains("`crucial-server`"), "{reason}");
        }
        other => panic!("another application's function: {other:?}"),
    }
    // An admin may (it has every application's rights on the client port).
    let admin = Account::at("acct").with_client(client(&node.addr, Some(ADMIN)));
    assert_eq!(admin.balance().expect("an admin"), 10);
}

#[test]
fn a_node_on_a_public_address_without_credentials_refuses_to_start() {
    let on_any = |extra: &[&str]| {
        let mut command = Command::new(common::example_binary("fixture-node"));
        command
            .args(["--listen", "0.0.0.0:0", "--workers", "2"])
            .args(extra);
        command
    };
    let refused = ServerProcess::try_start(on_any(&[]))
        .err()
        .expect("no credentials on 0.0.0.0: refused");
    assert!(
        refused.contains("refusing to serve --listen 0.0.0.0:0"),
        "{refused}"
    );
    assert!(refused.contains("--credentials FILE"), "{refused}");
    // Told so, it serves.
    let node = ServerProcess::start(on_any(&["--insecure"]));
    let addr = node.addr.replace("0.0.0.0", "127.0.0.1");
    let client = client(&addr, None);
    assert_eq!(client.open::<AtomicI64>("x").fetch_add(1).unwrap(), 0);
    // A credentials file anyone may read is refused too.
    let credentials = Credentials::new("auth-mode", &all_roles());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&credentials.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = ServerProcess::try_start(common::fixture_command(
        "fixture-node",
        &["--credentials", credentials.arg()],
    ))
    .err()
    .expect("a world-readable credentials file: refused");
    assert!(refused.contains("chmod 600"), "{refused}");
    // Quotas without credentials would limit nobody: refused, saying why.
    let refused = ServerProcess::try_start(common::fixture_command(
        "fixture-node",
        &["--app-max-objects", "10"],
    ))
    .err()
    .expect("quotas without credentials: refused");
    assert!(refused.contains("need --credentials"), "{refused}");
}

/// Runs `crucial-admin --node ADMIN status --json` with `token` in its
/// environment: its stdout, or its stderr if it failed.
fn admin_status(admin: &str, token: Option<&str>) -> Result<String, String> {
    admin_status_with(admin, token, None)
}

/// [`admin_status`], trusting `ca` for TLS if given.
fn admin_status_with(
    admin: &str,
    token: Option<&str>,
    ca: Option<&Path>,
) -> Result<String, String> {
    crucial_admin(admin, &["status", "--json"], token, ca)
}

/// Runs `crucial-admin --node ADMIN ARGS` with `token` in its environment
/// (and `ca` trusted): its stdout, or its stderr if it failed.
fn crucial_admin(
    admin: &str,
    args: &[&str],
    token: Option<&str>,
    ca: Option<&Path>,
) -> Result<String, String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crucial-admin"));
    command
        .args(["--node", admin])
        .args(args)
        .env_remove("CRUCIAL_ADMIN_TOKEN")
        .env_remove("CRUCIAL_ADMIN_TOKEN_FILE")
        .env_remove("CRUCIAL_TLS_CA");
    if let Some(token) = token {
        command.env("CRUCIAL_ADMIN_TOKEN", token);
    }
    if let Some(ca) = ca {
        command.env("CRUCIAL_TLS_CA", ca);
    }
    let output = command.output().expect("run crucial-admin");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The view of the node at `addr`, asked with an admin's token.
fn view_of(addr: &str) -> crucial_protocol::placement::View {
    let mut conn = RawConnection::open_with(addr, 0x0b5e_77e7, Some(ADMIN)).expect("admin");
    let reply = conn
        .request(1, &Request::View.encode().unwrap())
        .expect("view");
    let view: Option<crucial_protocol::placement::View> = codec::decode(&reply).unwrap();
    view.expect("a member has a view")
}

fn clustered(etcd: &Etcd, credentials: &Path, peer: &str) -> ServerProcess {
    let path = credentials.to_str().expect("utf-8");
    etcd.node("auth", &["--credentials", path, "--peer-listen", peer])
}

#[test]
fn nodes_present_the_cluster_token_and_the_admin_plane_takes_admins_only() {
    let credentials = Credentials::new("auth-cluster", &all_roles());
    let etcd = Etcd::start("auth");
    let peer_a = format!("127.0.0.1:{}", free_port());
    let a = clustered(&etcd, &credentials.path, &peer_a);
    // Objects made on the first node move to the second when it joins: the
    // handoff crosses the peer port with the cluster's token.
    let on_a = client(&a.addr, Some(SHOP));
    for i in 0..32 {
        on_a.open::<AtomicI64>(format!("k{i}"))
            .fetch_add(i)
            .unwrap();
    }
    let peer_b = format!("127.0.0.1:{}", free_port());
    let b = clustered(&etcd, &credentials.path, &peer_b);
    wait_until("both nodes see both", || {
        [&a, &b].iter().all(|n| view_of(&n.addr).nodes.len() == 2)
    });
    let both = Config::new()
        .server(a.addr.clone())
        .server(b.addr.clone())
        .token(Token::new(SHOP))
        .connect()
        .expect("client");
    for i in 0..32 {
        assert_eq!(both.open::<AtomicI64>(format!("k{i}")).load().unwrap(), i);
    }
    let objects = |node: &ServerProcess| {
        Config::new()
            .server(node.addr.clone())
            .token(Token::new(ADMIN))
            .connect()
            .and_then(|c| c.list_objects())
            .expect("list")
            .len()
    };
    assert!(objects(&b) > 0, "the handoff reached b over its peer port");

    // The peer port takes the cluster's token only.
    for token in [
        None,
        Some(SHOP),
        Some(ADMIN),
        Some("not-a-token-of-this-node"),
    ] {
        match RawConnection::open_with(&peer_a, 0xfe, token) {
            Err(RemoteError::Unauthenticated { port, .. }) => assert_eq!(port, "peer"),
            Err(other) => panic!("{token:?} on the peer port: {other}"),
            Ok(_) => panic!("{token:?} was taken on the peer port"),
        }
    }
    RawConnection::open_with(&peer_a, 0xfe, Some(CLUSTER)).expect("the cluster's token");

    // The admin plane takes an admin's token only.
    let admin = a.admin.as_deref().expect("--admin");
    let refused = admin_status(admin, None).expect_err("no token");
    assert!(refused.contains("admin token is required"), "{refused}");
    let refused = admin_status(admin, Some(SHOP)).expect_err("an application's token");
    assert!(refused.contains("an `app` token"), "{refused}");
    let status = admin_status(admin, Some(ADMIN)).expect("an admin's token");
    assert!(status.contains(&b.addr), "{status}");

    // The admin plane lists shop's counters under their application and
    // the keys shop named, spread over both nodes (placed by those keys,
    // as the client routed them).
    let listed = crucial_admin(admin, &["objects", "--json"], Some(ADMIN), None).expect("objects");
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let counters: Vec<_> = listed["objects"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|row| row["type_name"] == "crucial::AtomicI64")
        .collect();
    assert_eq!(counters.len(), 32, "{listed}");
    assert!(counters.iter().all(|row| row["application"] == "shop"));
    assert!(counters.iter().any(|row| row["key"] == "k7"), "{listed}");
    let nodes: std::collections::HashSet<_> = counters.iter().map(|row| &row["node"]).collect();
    assert_eq!(nodes.len(), 2, "spread over both nodes: {listed}");
    // An admin deletes one of shop's counters by naming its application.
    let deleted = crucial_admin(
        admin,
        &["delete", "crucial::AtomicI64", "k7", "--app", "shop"],
        Some(ADMIN),
        None,
    )
    .expect("delete");
    assert!(deleted.contains(": deleted"), "{deleted}");
    assert_eq!(both.open::<AtomicI64>("k7").load().unwrap(), 0, "deleted");
}

/// The flag a `Limit` error names, and its detail.
fn limit_of<T: std::fmt::Debug>(result: crucial::Result<T>) -> (String, String) {
    match result {
        Err(Error::Remote(RemoteError::Limit { limit, detail, .. })) => (limit, detail),
        other => panic!("expected a Limit error, got {other:?}"),
    }
}

#[test]
fn an_application_at_its_quotas_is_refused_naming_them_and_another_is_not() {
    let credentials = Credentials::new("auth-quotas", &all_roles());
    let node = ServerProcess::fixture_node_with(&[
        "--credentials",
        credentials.arg(),
        "--app-max-objects",
        "3",
        "--app-max-connections",
        "2",
        "--app-max-parked",
        "2",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let shop = client(&node.addr, Some(SHOP));
    let other = client(&node.addr, Some(FIXTURE_APP));

    // Objects: the fourth is refused, naming the quota and the application;
    // the three work on; another application makes its own three.
    for i in 0..3 {
        shop.open::<AtomicI64>(format!("k{i}"))
            .fetch_add(1)
            .unwrap();
    }
    let (limit, detail) = limit_of(shop.open::<AtomicI64>("k3").fetch_add(1));
    assert_eq!(limit, "--app-max-objects");
    assert!(
        detail.contains("`shop`") && detail.contains("`k3`"),
        "{detail}"
    );
    assert_eq!(shop.open::<AtomicI64>("k0").fetch_add(1).unwrap(), 1);
    for i in 0..3 {
        other
            .open::<AtomicI64>(format!("k{i}"))
            .fetch_add(1)
            .unwrap();
    }
    // Deleting frees room.
    assert!(shop.delete("crucial::AtomicI64", "k0").unwrap());
    assert!(shop.delete("crucial::AtomicI64", "k1").unwrap());
    shop.open::<AtomicI64>("k3")
        .fetch_add(1)
        .expect("room again");

    // Parked calls: two of shop's wait, the third is refused; another
    // application's two wait all the same.
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let shop = shop.clone();
            std::thread::spawn(move || shop.open::<Semaphore>("gate").acquire(1))
        })
        .collect();
    wait_until("two of shop's calls park", || parked_on(&shop, "gate") == 2);
    let (limit, detail) = limit_of(shop.open::<Semaphore>("gate").acquire(1));
    assert_eq!(limit, "--app-max-parked");
    assert!(detail.contains("`shop`"), "{detail}");
    // (It has three objects: one goes, for its gate.)
    assert!(other.delete("crucial::AtomicI64", "k0").unwrap());
    let theirs: Vec<_> = (0..2)
        .map(|_| {
            let other = other.clone();
            std::thread::spawn(move || other.open::<Semaphore>("gate").acquire(1))
        })
        .collect();
    wait_until("two of theirs park", || parked_on(&other, "gate") == 2);
    shop.open::<Semaphore>("gate").release(2).unwrap();
    other.open::<Semaphore>("gate").release(2).unwrap();
    for waiter in waiters.into_iter().chain(theirs) {
        waiter.join().expect("waiter").expect("released");
    }

    // Connections: shop has one; a second is taken, a third refused.
    let second = client(&node.addr, Some(SHOP));
    second
        .open::<AtomicI64>("k2")
        .load()
        .expect("a second connection");
    let reason = refused(
        client(&node.addr, Some(SHOP))
            .open::<AtomicI64>("k2")
            .load(),
    );
    assert!(reason.contains("--app-max-connections"), "{reason}");
    assert!(reason.contains("`shop`"), "{reason}");
    client(&node.addr, Some(FIXTURE_APP))
        .open::<AtomicI64>("k1")
        .load()
        .expect("another application connects");
    drop(second);
    wait_until("the second connection's place is free", || {
        client(&node.addr, Some(SHOP))
            .open::<AtomicI64>("k2")
            .load()
            .is_ok()
    });

    // Each quota has its gauge and its refusals on the metrics page.
    let url = node.metrics.clone().expect("metrics");
    let (status, page) = scrape_page(&url, Some(ADMIN));
    assert!(status.contains("200"), "{status}");
    // k2, k3 and gate.
    assert_eq!(
        sample(&page, "crucial_app_objects{application=\"shop\"}"),
        3.0
    );
    assert_eq!(
        sample(&page, "crucial_app_parked{application=\"shop\"}"),
        0.0
    );
    assert_eq!(sample(&page, "crucial_app_objects_limit"), 3.0);
    for quota in [
        "--app-max-objects",
        "--app-max-parked",
        "--app-max-connections",
    ] {
        let series =
            format!("crucial_app_quota_refusals_total{{application=\"shop\",quota=\"{quota}\"}}");
        assert!(sample(&page, &series) >= 1.0, "{series}");
    }
}

#[test]
fn an_application_at_its_byte_quota_reads_and_deletes_but_does_not_write() {
    let credentials = Credentials::new("auth-bytes", &all_roles());
    let node = ServerProcess::fixture_node_with(&[
        "--credentials",
        credentials.arg(),
        "--app-max-bytes",
        "10k",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let shop = client(&node.addr, Some(SHOP));
    let other = client(&node.addr, Some(FIXTURE_APP));
    let blob = |n: usize| Bytes::from(vec![7u8; n]);

    // 6 000 bytes, then 6 000 more: the write that crosses 10 KiB is let
    // through (its growth is known once it ran); the next is refused.
    shop.open::<AtomicBytes>("a").set(blob(6000)).unwrap();
    shop.open::<AtomicBytes>("b").set(blob(6000)).unwrap();
    let (limit, detail) = limit_of(shop.open::<AtomicBytes>("c").set(blob(10)));
    assert_eq!(limit, "--app-max-bytes");
    assert!(
        detail.contains("`shop`") && detail.contains("`c`"),
        "{detail}"
    );
    // Any write: a counter too, and a create with an initial state.
    let (limit, _) = limit_of(shop.open::<AtomicI64>("n").fetch_add(1));
    assert_eq!(limit, "--app-max-bytes");
    let (limit, detail) = limit_of(shop.create("c", &AtomicBytes::new(blob(10))));
    assert_eq!(limit, "--app-max-bytes");
    assert!(detail.contains("bytes of state"), "{detail}");
    // Reads are served; another application writes as much as it likes.
    assert_eq!(shop.open::<AtomicBytes>("a").len().unwrap(), 6000);
    other.open::<AtomicBytes>("a").set(blob(9000)).unwrap();
    assert!(other.create("b", &AtomicBytes::new(blob(500))).unwrap());

    // Deleting makes room; so does a smaller value, measured after its
    // write.
    assert!(shop.delete("crucial::AtomicBytes", "b").unwrap());
    shop.open::<AtomicBytes>("c")
        .set(blob(10))
        .expect("room again");
    shop.open::<AtomicBytes>("a").set(blob(100)).unwrap();
    assert!(shop.create("d", &AtomicBytes::new(blob(8000))).unwrap());

    // The gauge counts each application's bytes, near the encoded sizes.
    let url = node.metrics.clone().expect("metrics");
    let (_, page) = scrape_page(&url, Some(ADMIN));
    assert_eq!(sample(&page, "crucial_app_bytes_limit"), 10240.0);
    let shop_bytes = sample(&page, "crucial_app_bytes{application=\"shop\"}");
    assert!((8110.0..8200.0).contains(&shop_bytes), "{shop_bytes}");
    let other_bytes = sample(&page, "crucial_app_bytes{application=\"crucial-server\"}");
    assert!((9500.0..9600.0).contains(&other_bytes), "{other_bytes}");
    assert!(
        sample(
            &page,
            "crucial_app_quota_refusals_total{application=\"shop\",quota=\"--app-max-bytes\"}"
        ) >= 3.0
    );
}

#[test]
fn applications_keep_their_shared_objects_apart() {
    let credentials = Credentials::new("auth-namespaces", &all_roles());
    let node = ServerProcess::fixture_node_with(&["--credentials", credentials.arg()]);
    let shop = client(&node.addr, Some(SHOP));
    let other = client(&node.addr, Some(FIXTURE_APP));
    // One key, two applications: two objects.
    shop.open::<AtomicI64>("hits").fetch_add(5).unwrap();
    other.open::<AtomicI64>("hits").fetch_add(7).unwrap();
    assert_eq!(shop.open::<AtomicI64>("hits").load().unwrap(), 5);
    assert_eq!(other.open::<AtomicI64>("hits").load().unwrap(), 7);
    Account::at("acct")
        .with_client(other.clone())
        .open("ann".into(), 10)
        .expect("the other application's lambda object");
    // Naming the other's object by its full key names one of its own.
    let full = crucial_protocol::placement::namespaced("crucial-server", "hits");
    assert_eq!(shop.open::<AtomicI64>(full.clone()).load().unwrap(), 0);
    // Each lists its own objects only, by the keys it named.
    let listed = shop.list_objects().expect("shop's listing");
    assert!(listed.iter().all(|o| o.application == "shop"), "{listed:?}");
    assert!(listed.iter().any(|o| o.key == "hits"), "{listed:?}");
    let theirs = other.list_objects().expect("their listing");
    assert!(
        theirs.iter().all(|o| o.application == "crucial-server"),
        "{theirs:?}"
    );
    assert!(theirs.iter().any(|o| o.key == "acct"), "{theirs:?}");
    // Deleting deletes its own.
    assert!(shop.delete("crucial::AtomicI64", "hits").unwrap());
    assert_eq!(other.open::<AtomicI64>("hits").load().unwrap(), 7);
    assert_eq!(shop.open::<AtomicI64>("hits").load().unwrap(), 0);
    // An admin sees every application's, and names one by its full key.
    let admin = client(&node.addr, Some(ADMIN));
    let all = admin.list_objects().expect("an admin's listing");
    assert!(all.iter().any(|o| o.application == "shop"), "{all:?}");
    assert!(
        all.iter().any(|o| o.application == "crucial-server"),
        "{all:?}"
    );
    assert_eq!(admin.open::<AtomicI64>(full).load().unwrap(), 7);
}

/// A test CA and a node certificate it signed (for `localhost` and
/// `127.0.0.1`), as PEM files in `dir`: (CA, certificate, key).
fn test_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca = ca_params.self_signed(&ca_key).expect("self-signed CA");
    let node_key = rcgen::KeyPair::generate().expect("node key");
    let node_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("node certificate");
    let node = node_params
        .signed_by(&node_key, &ca, &ca_key)
        .expect("signed by the CA");
    let files = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-node.pem")),
        dir.join(format!("{name}-node.key")),
    );
    std::fs::write(&files.0, ca.pem()).unwrap();
    std::fs::write(&files.1, node.pem()).unwrap();
    std::fs::write(&files.2, node_key.serialize_pem()).unwrap();
    (files.0, files.1, files.2)
}

fn tls_client(addr: &str, ca: &Path) -> Client {
    Config::new()
        .server(addr.to_string())
        .token(Token::new(SHOP))
        .tls(crucial::Tls::with_ca_file(ca).expect("the CA"))
        .connect()
        .expect("client")
}

#[test]
fn tls_end_to_end_with_a_ca_made_by_the_test() {
    let credentials = Credentials::new("auth-tls", &all_roles());
    let (ca, cert, key) = test_ca(&credentials.dir.0, "good");
    let node = ServerProcess::fixture_node_with(&[
        "--credentials",
        credentials.arg(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
    ]);
    // The metrics page is HTTPS with the node's certificate.
    let url = node.metrics.clone().expect("metrics");
    assert!(
        scrape(&url, Some(ADMIN)).contains("400"),
        "plain HTTP refused"
    );
    assert!(scrape_tls(&url, &ca, Some(ADMIN)).contains("200 OK"));
    assert!(scrape_tls(&url, &ca, None).contains("401"));
    let client = tls_client(&node.addr, &ca);
    assert_eq!(client.open::<AtomicI64>("x").fetch_add(5).unwrap(), 0);
    // Large values both ways (many records), and callers at once on one
    // connection (the reader and the writers share the session).
    let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    client
        .open::<crucial::AtomicBytes>("big")
        .set(big.clone().into())
        .expect("3 MiB over TLS");
    assert_eq!(
        client.open::<crucial::AtomicBytes>("big").get().unwrap(),
        big
    );
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..200 {
                    client.open::<AtomicI64>("x").fetch_add(1).unwrap();
                }
            });
        }
    });
    assert_eq!(client.open::<AtomicI64>("x").load().unwrap(), 5 + 8 * 200);

    // Plain frames to the TLS port: told so, in a plain frame.
    let reason = refused(client_plain(&node.addr).open::<AtomicI64>("x").load());
    assert!(reason.contains("this port speaks TLS"), "{reason}");
    // A CA that did not sign the node's certificate: refused by the client.
    let (other_ca, _, _) = test_ca(&credentials.dir.0, "other");
    let reason = refused(
        tls_client(&node.addr, &other_ca)
            .open::<AtomicI64>("x")
            .load(),
    );
    assert!(reason.contains("TLS handshake"), "{reason}");
    assert!(reason.to_lowercase().contains("certificate"), "{reason}");
    // TLS to a node that serves plain frames.
    let plain = ServerProcess::fixture_node_with(&["--credentials", credentials.arg()]);
    let reason = refused(tls_client(&plain.addr, &ca).open::<AtomicI64>("x").load());
    assert!(reason.contains("TLS"), "{reason}");
    // The node kept serving through all of it.
    assert_eq!(client.open::<AtomicI64>("x").load().unwrap(), 5 + 8 * 200);
}

/// `GET /metrics` over HTTPS, trusting `ca`: the status line.
fn scrape_tls(url: &str, ca: &Path, token: Option<&str>) -> String {
    use rustls::pki_types::pem::PemObject;
    let rest = url.strip_prefix("http://").expect("the printed url");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut tcp = std::net::TcpStream::connect(host).expect("connect to metrics");
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        tls,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    // The node closes without close_notify once the body (its length
    // given) is written: what was read is the answer.
    let _ = tls.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    response.lines().next().unwrap_or_default().to_string()
}

fn client_plain(addr: &str) -> Client {
    client(addr, Some(SHOP))
}

#[test]
fn a_cluster_with_tls_hands_objects_off_over_encrypted_peer_links() {
    let credentials = Credentials::new("auth-tls-cluster", &all_roles());
    let (ca, cert, key) = test_ca(&credentials.dir.0, "cluster");
    let etcd = Etcd::start("tls");
    let peer_a = format!("127.0.0.1:{}", free_port());
    let secured = [
        "--credentials",
        credentials.arg(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let tls = |peer: &str| {
        let mut args = secured.to_vec();
        args.extend(["--tls-ca", ca.to_str().unwrap(), "--peer-listen", peer]);
        args.extend(["--replicas", "2"]);
        etcd.node("tls", &args)
    };
    let a = tls(&peer_a);
    let on_a = tls_client(&a.addr, &ca);
    for i in 0..32 {
        on_a.open::<AtomicI64>(format!("k{i}"))
            .fetch_add(i)
            .unwrap();
    }
    let b = tls(&format!("127.0.0.1:{}", free_port()));
    let both = Config::new()
        .server(a.addr.clone())
        .server(b.addr.clone())
        .token(Token::new(SHOP))
        .tls(crucial::Tls::with_ca_file(&ca).unwrap())
        .connect()
        .expect("client");
    wait_until("b holds some of the objects (handed off over TLS)", || {
        both.list_objects().is_ok_and(|all| {
            all.len() >= 32 && all.len() < 64 // every object once, some on b
        })
    });
    for i in 0..32 {
        assert_eq!(both.open::<AtomicI64>(format!("k{i}")).load().unwrap(), i);
        // A write reaches the object's replica over a TLS link too.
        both.open::<AtomicI64>(format!("k{i}"))
            .fetch_add(1)
            .unwrap();
    }
    // Plain frames to the peer port: told it speaks TLS.
    match RawConnection::open_with(&peer_a, 0xfe, Some(CLUSTER)) {
        Err(RemoteError::Protocol { reason }) => {
            assert!(reason.contains("this port speaks TLS"), "{reason}")
        }
        other => panic!("plain frames to a TLS peer port: {:?}", other.err()),
    }
    // The admin plane is TLS too: crucial-admin with the CA and a token.
    let admin = a.admin.as_deref().expect("--admin");
    let status = admin_status_with(admin, Some(ADMIN), Some(&ca)).expect("TLS and a token");
    assert!(status.contains(&b.addr), "{status}");
    assert!(
        admin_status_with(admin, Some(ADMIN), None).is_err(),
        "plain gRPC to TLS"
    );
    // A member without --tls-ca cannot start (it could not reach the others).
    let refused = etcd.try_node("tls", &secured).err().expect("refused");
    assert!(refused.contains("--tls-ca FILE"), "{refused}");
}

#[test]
fn a_cluster_reaches_etcd_over_tls_as_an_etcd_user_and_outlives_its_tokens() {
    // (Directory names are per test process: unlike any other test's.)
    let credentials = Credentials::new("auth-etcd-user", &all_roles());
    let dir = credentials.dir.0.clone();
    let (ca, cert, key) = test_ca(&dir, "etcd");
    let mut etcd = Etcd::start_tls("etcd-user", &ca, &cert, &key);
    etcd.enable_auth("crucial", "node-password", "/crucial/");
    let password = dir.join("etcd-password");
    std::fs::write(&password, "node-password\n").unwrap();
    let wrong = dir.join("wrong-password");
    std::fs::write(&wrong, "guess\n").unwrap();
    let path = |p: &Path| p.to_str().expect("utf-8").to_string();
    let (ca, cert, key, password, wrong) = (
        path(&ca),
        path(&cert),
        path(&key),
        path(&password),
        path(&wrong),
    );
    let tls = ["--etcd-ca", &ca, "--etcd-cert", &cert, "--etcd-key", &key];
    let user = ["--etcd-user", "crucial", "--etcd-password-file", &password];
    let refused =
        |endpoint: &str, flags: &[&str]| match etcd.try_node_via(endpoint, "secure", flags) {
            Ok(_) => panic!("a node with {flags:?} joined"),
            Err(stderr) => stderr,
        };

    // Each way of getting it wrong is refused, saying what to give.
    let plain = refused(&etcd.endpoint(), &user);
    assert!(plain.contains("--etcd-ca"), "plain to TLS: {plain}");
    let no_cert = refused(
        &etcd.endpoint(),
        &["--etcd-ca", &ca, user[0], user[1], user[2], user[3]],
    );
    assert!(
        no_cert.contains("--etcd-cert"),
        "no client certificate: {no_cert}"
    );
    let wrong_password = refused(
        &etcd.endpoint(),
        &[
            &tls[..],
            &["--etcd-user", "crucial", "--etcd-password-file", &wrong],
        ]
        .concat(),
    );
    assert!(
        wrong_password.contains("etcd refused user `crucial`"),
        "{wrong_password}"
    );
    let no_user = refused(&etcd.plain_endpoint(), &[]);
    assert!(no_user.contains("--etcd-user"), "no user: {no_user}");
    let https_without_ca = refused(&format!("https://{}", etcd.endpoint()), &user);
    assert!(
        https_without_ca.contains("needs --etcd-ca"),
        "{https_without_ca}"
    );

    // Two members over TLS as the etcd user form a cluster and spread
    // objects; they keep working past the tokens' one second.
    let flags = [&tls[..], &user[..]].concat();
    let a = etcd.node("secure", &flags);
    let b = etcd.node("secure", &flags);
    wait_for_views(&[&a, &b], 2);
    let both = Config::new()
        .server(a.addr.clone())
        .server(b.addr.clone())
        .connect()
        .expect("client");
    for i in 0..16 {
        both.open::<AtomicI64>(format!("k{i}"))
            .fetch_add(i)
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let c = etcd.node("secure", &flags);
    wait_for_views(&[&a, &b, &c], 3);
    for i in 0..16 {
        assert_eq!(both.open::<AtomicI64>(format!("k{i}")).load().unwrap(), i);
    }
    // The third, idle past its token's life, leaves cleanly: its last
    // calls to etcd authenticate again.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let mut c = c;
    terminate(&c);
    assert!(c.wait_within(std::time::Duration::from_secs(20)).success());
    assert!(
        c.stderr().contains("authenticating again"),
        "{}",
        c.stderr()
    );
    wait_for_views(&[&a, &b], 2);
    assert!(
        !c.stderr().contains("node-password"),
        "no password in the log"
    );
}

#[test]
fn a_cloud_thread_of_a_tls_client_reaches_the_nodes_with_its_ca_and_as_its_application() {
    use crucial::{Executor, Invocation, ProcessExecutor, Tls};
    let credentials = Credentials::new("auth-threads", &all_roles());
    let (ca, cert, key) = test_ca(&credentials.dir.0, "threads");
    let node = ServerProcess::fixture_node_with(&[
        "--credentials",
        credentials.arg(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let function = crucial_lambda_host::FunctionSpec::new(
        "fixture",
        common::example_binary("fixture-function"),
    );
    let executor = ProcessExecutor::with_spec(function).expect("executor");
    let tls = Tls::with_ca_file(&ca).expect("CA");
    let invocation_of = |token: &str, tls: Option<Tls>| Invocation {
        thread: "fixture_function::bump".into(),
        args: codec::encode(&("visits".to_string(),)).unwrap(),
        servers: vec![node.addr.clone()],
        attempt: 1,
        token: Some(Token::new(token)),
        tls,
    };
    let invocation = |tls| invocation_of(SHOP, tls);
    // Without a CA the thread cannot reach the TLS node, and says why...
    let failed = executor
        .start(invocation(None), None)
        .unwrap()
        .join()
        .expect_err("no CA");
    assert!(failed.contains("speaks TLS"), "{failed}");
    // ... with its client's, it can, and runs as the client's application.
    let out = executor
        .start(invocation(Some(tls.clone())), None)
        .unwrap()
        .join()
        .expect("the thread ran");
    assert_eq!(codec::decode::<i64>(&out).unwrap(), 1);
    let as_client = |token: &str| {
        Config::new()
            .server(node.addr.clone())
            .tls(tls.clone())
            .token(Token::new(token))
            .connect()
            .expect("client")
    };
    assert_eq!(
        as_client(SHOP).open::<AtomicI64>("visits").load().unwrap(),
        1
    );
    assert_eq!(
        as_client(FIXTURE_APP)
            .open::<AtomicI64>("visits")
            .load()
            .unwrap(),
        0,
        "another application's `visits` is another object"
    );
    // The same warm process then runs another application's invocation as
    // that application, and the first's again as the first.
    let run = |token: &str| {
        let out = executor
            .start(invocation_of(token, Some(tls.clone())), None)
            .unwrap()
            .join()
            .expect("the thread ran");
        codec::decode::<i64>(&out).unwrap()
    };
    assert_eq!(run(FIXTURE_APP), 1, "its own counter");
    assert_eq!(run(SHOP), 2);
    assert_eq!(executor.cold_starts(), 1, "one warm process ran all three");
}

#[test]
fn an_application_at_its_lambda_object_quota_cannot_construct_one_more() {
    let credentials = Credentials::new("auth-lambda-quota", &all_roles());
    let node = ServerProcess::fixture_node_with(&[
        "--credentials",
        credentials.arg(),
        "--app-max-lambda-objects",
        "2",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let app = client(&node.addr, Some(FIXTURE_APP));
    let account = |key: &str| Account::at(key).with_client(app.clone());
    account("a").open("ann".into(), 10).expect("first");
    account("b").open("bob".into(), 10).expect("second");
    let (limit, detail) = limit_of(account("c").open("cy".into(), 10));
    assert_eq!(limit, "--app-max-lambda-objects");
    assert!(detail.contains("`crucial-server`"), "{detail}");
    // The refused workflow wrote nothing: `c` does not exist, and the two
    // that do work on.
    match account("c").balance() {
        Err(Error::Remote(RemoteError::NoObject { .. })) => {}
        other => panic!("expected NoObject, got {other:?}"),
    }
    account("a")
        .transfer(account("b").id().clone(), 5)
        .expect("the two work on");
    assert_eq!(account("b").balance().unwrap(), 15);
    // The gauge, the limit and the refusal on the metrics page.
    let url = node.metrics.clone().expect("metrics");
    let (_, page) = scrape_page(&url, Some(ADMIN));
    assert_eq!(
        sample(
            &page,
            "crucial_app_lambda_objects{application=\"crucial-server\"}"
        ),
        2.0
    );
    assert_eq!(sample(&page, "crucial_app_lambda_objects_limit"), 2.0);
    assert!(
        sample(
            &page,
            "crucial_app_quota_refusals_total{application=\"crucial-server\",quota=\"--app-max-lambda-objects\"}"
        ) >= 1.0
    );
}

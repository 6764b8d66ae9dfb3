//! The admin plane's gRPC service, served by every node that has `--admin`.

use super::pb;
use crate::request::control::objects;
use crate::state::NodeState;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The `Admin` service of one node.
pub struct AdminService {
    node: Arc<NodeState>,
    /// This node's admin address, as it reports it.
    admin: String,
    /// This node's data-plane address.
    addr: String,
}

impl AdminService {
    /// The service for `node`, bound at `addr` (data) and `admin`.
    pub fn new(node: Arc<NodeState>, addr: String, admin: String) -> AdminService {
        AdminService { node, admin, addr }
    }
}

impl AdminService {
    /// This node's cluster and the home of lambda object `key` of
    /// `type_name`, for admin command `command`.
    #[allow(clippy::result_large_err)] // tonic's Status, as every handler returns
    fn lambda_home(
        &self,
        command: &str,
        type_name: &str,
        key: &str,
    ) -> Result<(&Arc<crate::cluster::member::Cluster>, String), Status> {
        let Some(cluster) = self.node.cluster.get() else {
            return Err(Status::failed_precondition(format!(
                "{} is not in a cluster (started without --etcd): `{command}` places an \
                 object on other nodes",
                self.addr
            )));
        };
        let ty = self.node.registry.lambda_type(type_name).ok_or_else(|| {
            Status::invalid_argument(format!(
                "`{type_name}` is not a lambda object type of this node's build: `{command}` \
                 places lambda objects (shared objects stay where the ring places them)"
            ))
        })?;
        let id = crucial::ObjectId::new(ty.application, ty.name, key);
        Ok((cluster, self.node.lambdas.store.home(&id)))
    }
}

/// `Ok` if every one of `nodes` is a member of `cluster`'s newest view.
#[allow(clippy::result_large_err)] // tonic's Status, as every handler returns
fn members_only(cluster: &crate::cluster::member::Cluster, nodes: &[String]) -> Result<(), Status> {
    let members = cluster.view().nodes;
    match nodes.iter().find(|node| !members.contains(node)) {
        None => Ok(()),
        Some(stranger) => Err(Status::invalid_argument(format!(
            "{stranger} is not a member of the cluster (its members: {}): name the node by its \
             data-plane address",
            members.join(", ")
        ))),
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::NodeStatus>, Status> {
        let node = &self.node;
        let listed = objects(node);
        let counts = node.metrics.counts();
        let mut status = pb::NodeStatus {
            addr: self.addr.clone(),
            admin: self.admin.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            clustered: false,
            epoch: 0,
            replicas: 1,
            members: vec![pb::Member {
                addr: self.addr.clone(),
                admin: self.admin.clone(),
            }],
            settled: true,
            draining: false,
            placed: Vec::new(),
            light: Vec::new(),
            objects: listed.len() as u64,
            bytes: listed.iter().map(|o| o.bytes).sum(),
            parked: listed.iter().map(|o| u64::from(o.parked)).sum(),
            requests_total: counts.requests,
            uptime_ms: counts.uptime.as_millis() as u64,
            moved_in: counts.moved_in,
            moved_out: counts.moved_out,
            store: match &node.storage {
                None => "none".into(),
                Some(storage) => match storage.failure() {
                    None => "ok".into(),
                    Some(failure) => format!("failing: {}", failure.cause),
                },
            },
        };
        if let Some(cluster) = node.cluster.get() {
            let view = cluster.view();
            let admins = cluster.admins();
            status.clustered = true;
            status.epoch = view.epoch;
            status.replicas = u32::from(cluster.replicas());
            status.members = view
                .nodes
                .iter()
                .map(|addr| pb::Member {
                    addr: addr.clone(),
                    admin: admins.get(addr).cloned().unwrap_or_default(),
                })
                .collect();
            status.settled = cluster.is_settled();
            status.placed = view
                .placed
                .iter()
                .map(|((type_name, key), node)| pb::Placed {
                    type_name: type_name.clone(),
                    key: key.clone(),
                    node: node.clone(),
                })
                .collect();
            status.light = view
                .light
                .iter()
                .map(|((type_name, key), nodes)| pb::Light {
                    type_name: type_name.clone(),
                    key: key.clone(),
                    nodes: nodes.clone(),
                })
                .collect();
            status.draining = cluster.is_draining();
        }
        Ok(Response::new(status))
    }

    async fn list_objects(
        &self,
        _: Request<pb::ListObjectsRequest>,
    ) -> Result<Response<pb::ObjectList>, Status> {
        let objects = objects(&self.node)
            .into_iter()
            .map(|o| pb::Object {
                application: o.application,
                type_name: o.type_name,
                key: o.key,
                persistent: o.persistent,
                resident: o.resident,
                bytes: o.bytes,
                parked: o.parked,
                poisoned: o.poisoned,
            })
            .collect();
        Ok(Response::new(pb::ObjectList { objects }))
    }

    async fn delete_object(
        &self,
        request: Request<pb::DeleteObjectRequest>,
    ) -> Result<Response<pb::DeleteObjectReply>, Status> {
        let request = request.into_inner();
        let existed = crate::request::control::delete(&self.node, &request.type_name, &request.key)
            .await
            .map_err(|e| match e {
                crucial::RemoteError::NotOwner { view, .. } => {
                    let owner = crucial_protocol::placement::Placement::new(*view)
                        .owner(&request.type_name, &request.key)
                        .to_string();
                    Status::failed_precondition(format!(
                        "{} does not own `{}` of type `{}`: its owner is {owner}",
                        self.addr, request.key, request.type_name
                    ))
                }
                other => Status::internal(other.to_string()),
            })?;
        Ok(Response::new(pb::DeleteObjectReply { existed }))
    }

    async fn drain(
        &self,
        _: Request<pb::DrainRequest>,
    ) -> Result<Response<pb::DrainReply>, Status> {
        let Some(cluster) = self.node.cluster.get() else {
            return Err(Status::failed_precondition(format!(
                "{} is not in a cluster (started without --etcd): nothing to drain to",
                self.addr
            )));
        };
        let before = self.node.metrics.counts().moved_out;
        cluster.drain().await;
        let moved = self.node.metrics.counts().moved_out - before;
        Ok(Response::new(pb::DrainReply { moved }))
    }

    async fn migrate(
        &self,
        request: Request<pb::MigrateRequest>,
    ) -> Result<Response<pb::MigrateReply>, Status> {
        use crucial_protocol::placement::LAMBDA_HOME;
        let request = request.into_inner();
        let (cluster, home) = self.lambda_home("migrate", &request.type_name, &request.key)?;
        let to = (!request.to.is_empty()).then(|| request.to.clone());
        if let Some(to) = &to {
            members_only(cluster, std::slice::from_ref(to))?;
        }
        let from = cluster.placement().owner(LAMBDA_HOME, &home).to_string();
        let epoch = cluster
            .place(LAMBDA_HOME, &home, crate::cluster::member::Placed::On(to))
            .await
            .map_err(Status::unavailable)?;
        let to = cluster.placement().owner(LAMBDA_HOME, &home).to_string();
        Ok(Response::new(pb::MigrateReply { from, to, epoch }))
    }

    async fn light(
        &self,
        request: Request<pb::LightRequest>,
    ) -> Result<Response<pb::LightReply>, Status> {
        use crucial_protocol::placement::LAMBDA_HOME;
        let request = request.into_inner();
        let (cluster, home) = self.lambda_home("light", &request.type_name, &request.key)?;
        let mut nodes = request.on;
        nodes.sort();
        nodes.dedup();
        members_only(cluster, &nodes)?;
        let epoch = cluster
            .place(
                LAMBDA_HOME,
                &home,
                crate::cluster::member::Placed::Light(nodes),
            )
            .await
            .map_err(Status::unavailable)?;
        let placement = cluster.placement();
        let nodes = placement
            .light_indexes(LAMBDA_HOME, &home)
            .into_iter()
            .map(|i| placement.view().nodes[i].clone())
            .collect();
        let owner = placement.owner(LAMBDA_HOME, &home).to_string();
        Ok(Response::new(pb::LightReply {
            owner,
            nodes,
            epoch,
        }))
    }
}

//! Placement: which node owns an object, by consistent hashing over a membership view.
//!
//! Each node gets [`VIRTUAL_NODES`] points on a 64-bit ring; an object's owner is
//! the node of the first point at or after the hash of `(type name, key)`, as in
//! the Crucial paper (section 4.1). A [`View`] is numbered by its epoch; views
//! replace each other in epoch order, so a client and a node holding different
//! views can tell which one is newer. This module is the one source of placement:
//! the client routes with it, and nodes (with the cluster) check ownership with it.
//!
//! A view may also *place* objects by hand ([`View::placed`]): an operator
//! moved a hot object to a node of their choice (`crucial-admin migrate`).
//! Such an object's owner is that node while it is a member, and its
//! replicas are the ring's successors of its hash after it; every other
//! object stays where the ring puts it, so a migration moves one object.
//! And it may give a read-mostly hot object *light replicas*
//! ([`View::light`]): other nodes where clients send its read-only calls
//! (`crucial-admin light`).

use std::collections::BTreeMap;
use std::hash::Hasher;

/// The type name lambda objects are placed by, with their application as the
/// key: a workflow runs where every object it may touch lives.
pub const LAMBDA_HOME: &str = "<lambda objects>";

/// The type name of the objects that hold the decisions of transactions
/// across nodes, one object per home; such an object's key is its home (it
/// lives, moves and is copied with the objects of that home).
pub const DECISIONS: &str = "<decisions>";

/// Separates an object's parts in its home key (no application or type name
/// holds it).
const HOME_SEPARATOR: char = '\u{1f}';

/// The key a lambda object is placed by under [`LAMBDA_HOME`]: its
/// application's name, or, for a type placed object by object
/// (`object: Some((type name, key))`), the object's own key.
pub fn lambda_home(application: &str, object: Option<(&str, &str)>) -> String {
    match object {
        None => application.to_string(),
        Some((type_name, key)) => {
            format!("{application}{HOME_SEPARATOR}{type_name}{HOME_SEPARATOR}{key}")
        }
    }
}

/// The parts of a home key made by [`lambda_home`]: the application, and
/// the object's type name and key if the key is one object's.
pub fn lambda_home_parts(home: &str) -> (&str, Option<(&str, &str)>) {
    let mut parts = home.splitn(3, HOME_SEPARATOR);
    let application = parts.next().unwrap_or_default();
    match (parts.next(), parts.next()) {
        (Some(type_name), Some(key)) => (application, Some((type_name, key))),
        _ => (application, None),
    }
}

/// Separates an application's name from a shared object's key when a node
/// that authenticates keeps each application's shared objects apart (see
/// [`namespaced`]). No application name holds it.
pub const NAMESPACE_SEPARATOR: char = '\u{1d}';

/// The key a node keeps an application's shared object under: the key the
/// client named, in its application's namespace. The ring places it where
/// it places the key alone (see [`without_namespace`]), so a client routes
/// by the key it named and every node finds the object where it routed.
pub fn namespaced(application: &str, key: &str) -> String {
    format!("{application}{NAMESPACE_SEPARATOR}{key}")
}

/// The application and the key of a key made by [`namespaced`]: `("", key)`
/// for a key in no namespace.
pub fn without_namespace(key: &str) -> (&str, &str) {
    key.split_once(NAMESPACE_SEPARATOR).unwrap_or(("", key))
}

/// Points per node on the ring.
pub const VIRTUAL_NODES: usize = 64;

/// A membership view: an ordered list of node addresses numbered by an epoch.
///
/// A cluster's views come from etcd and their epochs are etcd revisions; a
/// list of servers given to a client (no cluster behind it) is epoch 0, so any
/// view a node sends replaces it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct View {
    /// View number; views are totally ordered, a larger epoch is newer.
    pub epoch: u64,
    /// Node addresses (`host:port`).
    pub nodes: Vec<String>,
    /// Objects placed by hand, by `(type name, key)`, with their node
    /// (ignored while that node is not in `nodes`).
    pub placed: BTreeMap<(String, String), String>,
    /// Objects with light replicas, by `(type name, key)`: the nodes that
    /// serve their read-only calls besides their owner.
    pub light: BTreeMap<(String, String), Vec<String>>,
}

impl View {
    /// The view of a fixed list of nodes (epoch 0: older than any cluster's).
    pub fn fixed(nodes: Vec<String>) -> View {
        View::new(0, nodes)
    }

    /// View `epoch` of `nodes`, with nothing placed by hand.
    pub fn new(epoch: u64, nodes: Vec<String>) -> View {
        View {
            epoch,
            nodes,
            placed: BTreeMap::new(),
            light: BTreeMap::new(),
        }
    }
}

/// A view with its ring: answers "who owns this object" for one epoch.
#[derive(Debug, Clone)]
pub struct Placement {
    view: View,
    ring: Ring,
    /// [`View::placed`] with its nodes as indexes into the view's nodes
    /// (those that are members).
    placed: BTreeMap<(String, String), usize>,
}

impl Placement {
    /// The placement of a view.
    pub fn new(view: View) -> Placement {
        let placed = view
            .placed
            .iter()
            .filter_map(|(object, node)| {
                let index = view.nodes.iter().position(|n| n == node)?;
                Some((object.clone(), index))
            })
            .collect();
        Placement {
            ring: Ring::new(&view),
            view,
            placed,
        }
    }

    /// The node an object was placed on by hand, if it was (and that node
    /// is a member).
    fn placed(&self, type_name: &str, key: &str) -> Option<usize> {
        if self.placed.is_empty() {
            return None;
        }
        self.placed
            .get(&(type_name.to_string(), key.to_string()))
            .copied()
    }

    /// The view this placement was built from.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// Index (into the view's nodes) of the owner of an object.
    pub fn owner_index(&self, type_name: &str, key: &str) -> usize {
        self.placed(type_name, key)
            .unwrap_or_else(|| self.ring.owner(type_name, key))
    }

    /// Indexes of the nodes that serve an object's read-only calls besides
    /// its owner (its light replicas that are members), if it has any.
    pub fn light_indexes(&self, type_name: &str, key: &str) -> Vec<usize> {
        if self.view.light.is_empty() {
            return Vec::new();
        }
        let Some(nodes) = self
            .view
            .light
            .get(&(type_name.to_string(), key.to_string()))
        else {
            return Vec::new();
        };
        let owner = self.owner_index(type_name, key);
        let mut indexes: Vec<usize> = nodes
            .iter()
            .filter_map(|node| self.view.nodes.iter().position(|n| n == node))
            .filter(|i| *i != owner)
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
    }

    /// Whether `node` is a light replica of an object (a member, not its
    /// owner).
    pub fn is_light(&self, type_name: &str, key: &str, node: &str) -> bool {
        self.light_indexes(type_name, key)
            .into_iter()
            .any(|i| self.view.nodes[i] == node)
    }

    /// Address of the owner of an object.
    pub fn owner(&self, type_name: &str, key: &str) -> &str {
        &self.view.nodes[self.owner_index(type_name, key)]
    }

    /// Addresses of the `rf` nodes that hold an object's replicas, the
    /// owner first (fewer if the view has fewer nodes). With `rf = 1`, the
    /// owner alone.
    pub fn replicas(&self, type_name: &str, key: &str, rf: usize) -> Vec<&str> {
        let indexes = match self.placed(type_name, key) {
            None => self.ring.replicas(type_name, key, rf),
            Some(owner) => {
                // Its node, then the ring's choices without it.
                let mut indexes = vec![owner];
                indexes.extend(
                    self.ring
                        .replicas(type_name, key, rf.saturating_add(1))
                        .into_iter()
                        .filter(|i| *i != owner),
                );
                indexes.truncate(rf.min(self.view.nodes.len()));
                indexes
            }
        };
        indexes
            .into_iter()
            .map(|i| self.view.nodes[i].as_str())
            .collect()
    }
}

/// A consistent-hash ring built from a [`View`].
#[derive(Debug, Clone)]
pub struct Ring {
    points: Vec<(u64, usize)>,
    nodes: usize,
}

fn hash64(parts: &[&[u8]]) -> u64 {
    // FNV-1a then a SplitMix64 finalizer: stable across builds and well mixed.
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    for part in parts {
        h.write(part);
        h.write(&[0xff]);
    }
    let mut z = h.finish();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

impl Ring {
    /// Builds the ring of a view.
    pub fn new(view: &View) -> Ring {
        let mut points = Vec::with_capacity(view.nodes.len() * VIRTUAL_NODES);
        for (index, node) in view.nodes.iter().enumerate() {
            for v in 0..VIRTUAL_NODES {
                points.push((hash64(&[node.as_bytes(), &(v as u64).to_le_bytes()]), index));
            }
        }
        points.sort_unstable();
        Ring {
            points,
            nodes: view.nodes.len(),
        }
    }

    /// Index (into the view's `nodes`) of the owner of an object.
    pub fn owner(&self, type_name: &str, key: &str) -> usize {
        if self.nodes <= 1 {
            return 0;
        }
        self.points[self.first_point(type_name, key)].1
    }

    /// Indexes of the `rf` distinct nodes met walking the ring clockwise
    /// from an object's hash: its owner, then its successors (a replica
    /// chain's order). Fewer if the view has fewer nodes.
    pub fn replicas(&self, type_name: &str, key: &str, rf: usize) -> Vec<usize> {
        let wanted = rf.min(self.nodes);
        match wanted {
            0 => return Vec::new(),
            1 => return vec![self.owner(type_name, key)],
            _ => {}
        }
        let start = self.first_point(type_name, key);
        let mut nodes = Vec::with_capacity(wanted);
        for step in 0..self.points.len() {
            let node = self.points[(start + step) % self.points.len()].1;
            if !nodes.contains(&node) {
                nodes.push(node);
                if nodes.len() == wanted {
                    break;
                }
            }
        }
        nodes
    }

    /// The first point at or after an object's hash.
    fn first_point(&self, type_name: &str, key: &str) -> usize {
        let (_, key) = without_namespace(key);
        let h = hash64(&[type_name.as_bytes(), key.as_bytes()]);
        self.points.partition_point(|(p, _)| *p < h) % self.points.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_key_splits_back_into_its_parts() {
        assert_eq!(lambda_home("bank", None), "bank");
        assert_eq!(lambda_home_parts("bank"), ("bank", None));
        let one = lambda_home("bank", Some(("Account", "a\u{1f}b")));
        assert_eq!(
            lambda_home_parts(&one),
            ("bank", Some(("Account", "a\u{1f}b")))
        );
    }

    fn view(n: usize) -> View {
        View::fixed((0..n).map(|i| format!("10.0.0.{i}:7000")).collect())
    }

    #[test]
    fn single_node_owns_everything() {
        let ring = Ring::new(&view(1));
        assert_eq!(ring.owner("T", "a"), 0);
    }

    #[test]
    fn keys_spread_and_adding_a_node_moves_few() {
        let four = Ring::new(&view(4));
        let five = Ring::new(&view(5));
        let mut counts = [0usize; 4];
        let mut moved = 0;
        for i in 0..10_000 {
            let key = format!("k{i}");
            let a = four.owner("T", &key);
            counts[a] += 1;
            if five.owner("T", &key) != a {
                moved += 1;
            }
        }
        assert!(counts.iter().all(|&c| c > 1500), "{counts:?}");
        // Ideal is 1/5 of the keys; allow slack for 64 virtual nodes.
        assert!(moved < 3000, "moved {moved}");
    }

    #[test]
    fn placement_names_the_owner_by_address() {
        let placement = Placement::new(view(3));
        let owner = placement.owner("T", "k").to_string();
        assert!(placement.view().nodes.contains(&owner));
        assert_eq!(
            placement.view().nodes[placement.owner_index("T", "k")],
            owner
        );
    }

    #[test]
    fn replicas_are_distinct_owner_first_and_mostly_stay_on_a_join() {
        let placement = Placement::new(view(4));
        for i in 0..1000 {
            let key = format!("k{i}");
            let three = placement.replicas("T", &key, 3);
            assert_eq!(three.len(), 3);
            assert_eq!(three[0], placement.owner("T", &key));
            let mut distinct = three.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), 3, "{three:?}");
            assert_eq!(
                placement.replicas("T", &key, 1),
                vec![placement.owner("T", &key)]
            );
        }
        // Asking for more replicas than nodes gives every node once.
        assert_eq!(Placement::new(view(2)).replicas("T", "k", 3).len(), 2);
        assert_eq!(Placement::new(view(1)).replicas("T", "k", 3).len(), 1);
        // A joining node takes a share of the replica slots, not all of them.
        let four = Ring::new(&view(4));
        let five = Ring::new(&view(5));
        let kept = (0..2000)
            .filter(|i| {
                let key = format!("k{i}");
                four.replicas("T", &key, 2)[0] == five.replicas("T", &key, 2)[0]
            })
            .count();
        assert!(kept > 1400, "{kept} of 2000 owners kept");
    }

    #[test]
    fn an_object_placed_by_hand_moves_alone_while_its_node_is_a_member() {
        let plain = Placement::new(view(3));
        let key = (0..100)
            .map(|i| format!("k{i}"))
            .find(|k| plain.owner("T", k) != "10.0.0.2:7000")
            .unwrap();
        let mut placed = view(3);
        placed
            .placed
            .insert(("T".to_string(), key.clone()), "10.0.0.2:7000".to_string());
        let placed = Placement::new(placed);
        assert_eq!(placed.owner("T", &key), "10.0.0.2:7000");
        let replicas = placed.replicas("T", &key, 2);
        assert_eq!(replicas[0], "10.0.0.2:7000");
        assert_eq!(replicas.len(), 2);
        assert_ne!(replicas[1], replicas[0]);
        assert_eq!(placed.replicas("T", &key, 5).len(), 3);
        // Every other object stays where it was.
        for i in 0..1000 {
            let other = format!("o{i}");
            assert_eq!(placed.owner("T", &other), plain.owner("T", &other));
            assert_eq!(placed.owner("U", &key), plain.owner("U", &key));
        }
        // Light replicas: members other than the owner.
        let mut light = view(3);
        light.light.insert(
            ("T".to_string(), key.clone()),
            vec![
                plain.owner("T", &key).to_string(),
                "10.0.0.2:7000".to_string(),
                "10.0.0.9:7000".to_string(),
            ],
        );
        let light = Placement::new(light);
        assert_eq!(light.light_indexes("T", &key), vec![2]);
        assert!(light.is_light("T", &key, "10.0.0.2:7000"));
        assert!(!light.is_light("T", &key, plain.owner("T", &key)));
        assert!(light.light_indexes("T", "other").is_empty());
        // A node that left places nothing.
        let mut gone = view(2);
        gone.placed
            .insert(("T".to_string(), key.clone()), "10.0.0.2:7000".to_string());
        let gone_placed = Placement::new(gone.clone());
        assert_eq!(
            gone_placed.owner("T", &key),
            Placement::new(view(2)).owner("T", &key)
        );
    }
}

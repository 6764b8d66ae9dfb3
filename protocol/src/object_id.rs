//! The identity of a lambda object.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Names one lambda object: the application it belongs to, its type and its
/// key. Storable in other objects' fields (a `Set<ObjectId>` of a forum's
/// threads), so objects can reference each other.
///
/// ```
/// let id = crucial_protocol::ObjectId::new("forum", "Thread", "t-42");
/// assert_eq!(id.to_string(), "forum/Thread/t-42");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId {
    /// The application (one namespace of types and objects).
    pub application: String,
    /// The registered type name.
    pub type_name: String,
    /// The key within the type.
    pub key: String,
}

impl ObjectId {
    /// An id from its three parts.
    pub fn new(
        application: impl Into<String>,
        type_name: impl Into<String>,
        key: impl Into<String>,
    ) -> ObjectId {
        ObjectId {
            application: application.into(),
            type_name: type_name.into(),
            key: key.into(),
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.application, self.type_name, self.key)
    }
}

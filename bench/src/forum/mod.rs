//! CloudForum's mix on the two designs LambdaStore compares itself with:
//! Redis driven by client-side optimistic transactions (`redis`), and
//! PostgreSQL with the operations as serializable SQL functions
//! (`postgres`). The lambda-object backend is the example's own
//! (`forum::LambdaForum`).

pub mod postgres;
pub mod redis;

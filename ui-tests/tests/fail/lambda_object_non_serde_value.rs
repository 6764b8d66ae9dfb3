use crucial::store::Cell;

pub struct Connection;

#[crucial::lambda_object]
pub struct Session {
    socket: Cell<Connection>,
}

fn main() {}

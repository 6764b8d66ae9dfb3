pub struct Connection(std::net::TcpStream);

#[crucial::cloud_thread]
pub fn work(connection: Connection) -> u64 {
    let _ = connection;
    0
}

fn main() {}

#[crucial::shared]
pub enum State {
    On,
    Off,
}

fn main() {}

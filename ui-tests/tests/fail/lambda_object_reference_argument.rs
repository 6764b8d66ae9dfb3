use crucial::store::Cell;

#[crucial::lambda_object]
pub struct Account {
    owner: Cell<String>,
}

#[crucial::lambda_object]
impl Account {
    pub fn rename(&mut self, name: &str) {
        let _ = name;
    }
}

fn main() {}

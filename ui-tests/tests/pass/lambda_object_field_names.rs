//! Fields may have the names generated code uses inside (`id`, `host`,
//! `core`, `wf`): generated items never share a namespace with them.

use crucial::store::{Cell, TxError};

#[crucial::lambda_object]
pub struct Odd {
    id: Cell<u64>,
    host: Cell<String>,
    core: Cell<bool>,
    wf: Cell<i32>,
}

#[crucial::lambda_object]
impl Odd {
    #[constructor]
    pub fn create(&mut self) -> Result<(), TxError> {
        self.id.set(&1)?;
        self.host.set(&"h".to_string())?;
        self.core.set(&true)?;
        self.wf.set(&-1)
    }

    pub fn id_value(&self) -> Result<Option<u64>, TxError> {
        self.id.get()
    }
}

fn main() {
    let odd: OddRef = Odd::at("o");
    assert_eq!(odd.id().key, "o");
}

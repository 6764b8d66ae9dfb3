//! One mistake in a #[lambda_object] struct gives one error: the impl block's
//! functions still compile against the struct.

use crucial::store::{Cell, TxError};

#[crucial::lambda_object]
pub struct Page {
    title: String,
    views: Cell<u64>,
}

#[crucial::lambda_object]
impl Page {
    #[constructor]
    pub fn create(&mut self) -> Result<(), TxError> {
        self.views.set(&0)
    }

    pub fn view(&mut self) -> Result<u64, TxError> {
        let views = self.views.get()?.unwrap_or(0) + 1;
        self.views.set(&views)?;
        Ok(views)
    }

    pub fn views(&self) -> Result<Option<u64>, TxError> {
        self.views.get()
    }
}

fn main() {}

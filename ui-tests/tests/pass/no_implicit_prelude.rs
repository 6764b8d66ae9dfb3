#![no_implicit_prelude]

#[::crucial::shared(name = "ui::Counter", persistent)]
#[derive(::core::default::Default, ::serde::Serialize, ::serde::Deserialize)]
pub struct Counter {
    n: i64,
    names: ::std::vec::Vec<::std::string::String>,
}

#[::crucial::shared]
impl Counter {
    pub fn add(&mut self, d: i64) -> i64 {
        self.n += d;
        self.n
    }

    pub fn names(&self) -> ::std::vec::Vec<::std::string::String> {
        ::core::clone::Clone::clone(&self.names)
    }

    pub fn reset(&mut self) {
        self.n = 0;
    }
}

#[::crucial::cloud_thread]
pub fn work(n: u64, label: ::std::string::String) -> ::core::result::Result<u64, ::std::string::String> {
    let _ = label;
    ::core::result::Result::Ok(n)
}

#[::crucial::lambda_object(name = "ui::Ledger")]
pub struct Ledger {
    total: ::crucial::store::Cell<i64>,
    entries: ::crucial::store::Map<u64, ::std::string::String>,
}

#[::crucial::lambda_object(time_limit = "1s")]
impl Ledger {
    #[constructor]
    pub fn open(&mut self) -> ::core::result::Result<(), ::crucial::store::TxError> {
        self.total.set(&0)
    }

    pub fn total(&self) -> ::core::result::Result<i64, ::crucial::store::TxError> {
        ::core::result::Result::Ok(::core::option::Option::unwrap_or(self.total.get()?, 0))
    }

    #[protected]
    pub fn add(&mut self, n: i64) -> ::core::result::Result<i64, ::crucial::store::TxError> {
        let total = self.total()? + n;
        self.total.set(&total)?;
        ::core::result::Result::Ok(total)
    }

    pub async fn move_to(
        &mut self,
        wf: &::crucial::store::Workflow,
        other: ::crucial::ObjectId,
        n: i64,
    ) -> ::core::result::Result<i64, ::crucial::store::TxError> {
        self.add(-n)?;
        wf.at::<Ledger>(other).add(n).await
    }

    pub fn count(wf: &::crucial::store::Workflow) -> u64 {
        wf.random()
    }
}

fn main() {
    let _ledger: LedgerRef = Ledger::at("l");
    let _proxy: CounterProxy = Counter::shared("k");
    let _spawn: fn(u64, ::std::string::String) -> ::crucial::JoinHandle<::core::result::Result<u64, ::std::string::String>> = work::spawn;
    let _name: &str = work::NAME;
}

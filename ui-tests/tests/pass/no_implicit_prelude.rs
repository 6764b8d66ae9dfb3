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

fn main() {
    let _proxy: CounterProxy = Counter::shared("k");
    let _spawn: fn(u64, ::std::string::String) -> ::crucial::JoinHandle<::core::result::Result<u64, ::std::string::String>> = work::spawn;
    let _name: &str = work::NAME;
}

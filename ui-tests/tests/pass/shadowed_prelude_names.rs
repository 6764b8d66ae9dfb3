// Local items shadowing prelude and std names must not confuse generated code.
#![allow(dead_code)]

use serde::{Deserialize, Serialize};

type Result<T> = std::result::Result<T, MyError>;
struct Option;
struct Vec;
struct String;
struct Box;
trait Into {}
trait Clone {}
trait Send {}
trait Future {}
mod core {}
mod std_ {}

#[derive(Debug, Serialize, Deserialize)]
pub struct MyError;

#[crucial::shared]
#[derive(Default, Serialize, Deserialize)]
pub struct Counter {
    n: i64,
}

#[crucial::shared]
impl Counter {
    pub fn add(&mut self, d: i64) -> Result<i64> {
        self.n += d;
        Ok(self.n)
    }
}

#[crucial::cloud_thread]
fn work(n: i64) -> Result<i64> {
    Ok(n)
}

fn main() {
    let counter = Counter::shared("k");
    let _ = || -> crucial::Result<Result<i64>> { counter.add(1) };
    let _ = work::spawn;
}

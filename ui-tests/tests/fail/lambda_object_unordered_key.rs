use crucial::store::Map;

#[crucial::lambda_object]
pub struct Prices {
    by_price: Map<f64, String>,
}

fn main() {}

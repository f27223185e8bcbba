//! The `zerodrop` binary: a thin shell over the library's commands.

fn main() {
    println!("zerodrop {}", env!("CARGO_PKG_VERSION"));
}

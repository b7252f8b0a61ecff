//! Compiles `proto/client.proto` with protox (pure Rust, no `protoc`) when the `grpc`
//! feature is on.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "grpc")]
    {
        println!("cargo:rerun-if-changed=proto/client.proto");
        let descriptors = protox::compile(["proto/client.proto"], ["proto"])?;
        tonic_prost_build::configure()
            .bytes(".")
            .compile_fds(descriptors)?;
    }
    Ok(())
}

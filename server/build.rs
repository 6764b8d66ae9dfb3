//! Generates the admin plane's gRPC code from `proto/admin.proto` (tonic;
//! `protoc` from Debian's `protobuf-compiler`, which `.ci/run` installs).

fn main() {
    println!("cargo:rerun-if-changed=proto/admin.proto");
    tonic_prost_build::configure()
        .compile_protos(&["proto/admin.proto"], &["proto"])
        .expect(
            "compile proto/admin.proto (is protoc installed? apt-get install protobuf-compiler)",
        );
}

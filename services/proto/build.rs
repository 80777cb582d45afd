//! Compiles `proto/pos/v1/*.proto` with protox (pure Rust, no protoc) and generates
//! prost messages plus tonic clients and servers. The descriptor set is written next to
//! the generated code so the binary can serve reflection from it.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut files: Vec<PathBuf> = fs::read_dir(proto_root.join("pos/v1"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let descriptors = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("pos_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    // What the edge may show clients: every file but the internal APIs' (nothing public
    // imports them).
    let mut public = descriptors.clone();
    public
        .file
        .retain(|file| !file.name().ends_with("_internal.proto"));
    fs::write(
        out_dir.join("pos_public_descriptor.bin"),
        public.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // prost's, with decoding failures answered INVALID_ARGUMENT MALFORMED_REQUEST.
        .codec_path("crate::codec::PosCodec")
        .compile_fds(descriptors)?;
    Ok(())
}

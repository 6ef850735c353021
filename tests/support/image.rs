//! A tiny but valid OCI image layout (image-spec `image-layout.md`) built in-process: one
//! gzip-compressed tar layer holding one small file, a config, a manifest and an `index.json`
//! that tags it. Clients push it with `skopeo copy oci:<dir>:<tag> docker://…` (and podman,
//! buildah the same way), so end-to-end tests need no image from the internet.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;
use sha2::{Digest, Sha256};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// An OCI image layout directory with one tagged image in it.
pub struct OciImage {
    pub dir: PathBuf,
    pub tag: String,
    /// `sha256:<hex>` of the manifest: what a registry reports after a digest-preserving push.
    pub manifest_digest: String,
}

impl OciImage {
    /// Builds the layout in `dir` (created if needed) with a layer holding `hello.txt` with
    /// `content`, tagged `tag`. Different contents give different digests; the same content
    /// gives the same bytes every time.
    pub fn build(dir: &Path, tag: &str, content: &str) -> OciImage {
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("create {}: {e}", blobs.display()));

        let tar = layer_tar("hello.txt", content.as_bytes());
        let diff_id = digest(&tar);
        let layer = gzip(&tar);
        let layer_descriptor = write_blob(&blobs, LAYER_MEDIA_TYPE, &layer);

        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": { "Cmd": ["/hello.txt"] },
            "rootfs": { "type": "layers", "diff_ids": [diff_id] },
            "history": [{ "created_by": "docker-credential-icr e2e test harness" }],
        });
        let config_descriptor = write_blob(&blobs, CONFIG_MEDIA_TYPE, &to_bytes(&config));

        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config_descriptor,
            "layers": [layer_descriptor],
        });
        let mut manifest_descriptor = write_blob(&blobs, MANIFEST_MEDIA_TYPE, &to_bytes(&manifest));
        let manifest_digest = manifest_descriptor["digest"].as_str().expect("digest is a string").to_string();
        manifest_descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });

        let index = json!({ "schemaVersion": 2, "manifests": [manifest_descriptor] });
        fs::write(dir.join("index.json"), to_bytes(&index)).expect("write index.json");
        fs::write(dir.join("oci-layout"), to_bytes(&json!({ "imageLayoutVersion": "1.0.0" })))
            .expect("write oci-layout");

        OciImage { dir: dir.to_path_buf(), tag: tag.to_string(), manifest_digest }
    }

    /// The `oci:<dir>:<tag>` reference of the containers-transports(5) syntax.
    pub fn reference(&self) -> String {
        format!("oci:{}:{}", self.dir.display(), self.tag)
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Stores `bytes` as a content-addressed blob and returns its descriptor.
fn write_blob(blobs: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let digest = digest(bytes);
    let hex = digest.trim_start_matches("sha256:");
    fs::write(blobs.join(hex), bytes).expect("write blob");
    json!({ "mediaType": media_type, "digest": digest, "size": bytes.len() })
}

/// A tar archive with one regular file at its root, with fixed metadata so that it is
/// reproducible.
fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, content).expect("append file to layer");
    builder.into_inner().expect("finish layer tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip layer");
    encoder.finish().expect("finish gzip")
}

fn to_bytes(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialize JSON")
}

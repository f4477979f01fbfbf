//! Files attached to messages, kept in a local blob store (the data
//! directory by default) and checked before they are kept.
//!
//! - The type is what the bytes are, not what the uploader says: images
//!   (PNG, JPEG, GIF, WebP), audio (MP3, WAV, Ogg: call recordings), PDF
//!   and office documents by their signature; plain text and CSV only when
//!   the bytes are UTF-8. Anything else, SVG and HTML included (they can
//!   carry script), is refused.
//! - A file is written to a temporary name, synced and renamed, so a crash
//!   never leaves half a file under a key that a message names.
//! - Keys are UUIDs under the workspace's directory: a key from a request
//!   cannot reach outside it, and another workspace's key is not found.
//!
//! Several instances need the data directory on shared storage (or an
//! object store behind this same interface).

use std::path::{Path, PathBuf};

use seamline_core::{FieldError, WorkspaceId};
use seamline_store::Attachment;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// The largest file a message may carry.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// The most files on one message.
pub const MAX_FILES: usize = 10;
const MAX_NAME_CHARS: usize = 200;

/// Types recognised by their bytes.
const SIGNED_TYPES: [&str; 12] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    // Call recordings.
    "audio/mpeg",
    "audio/x-wav",
    "audio/ogg",
    "application/pdf",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/msword",
];
/// Types taken as declared when the bytes are UTF-8 text.
const TEXT_TYPES: [&str; 2] = ["text/plain", "text/csv"];

/// What a checked upload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub name: String,
    pub content_type: String,
}

/// Checks an upload's size and type; the name is cleaned to a plain file
/// name. The error names the field at fault.
pub fn check(name: &str, declared: &str, bytes: &[u8]) -> Result<Checked, FieldError> {
    if bytes.is_empty() {
        return Err(FieldError::new("empty", "file", "the file is empty"));
    }
    if bytes.len() > MAX_BYTES {
        return Err(FieldError::new(
            "too_large",
            "file",
            format!("files up to {} MB", MAX_BYTES / 1024 / 1024),
        ));
    }
    let declared = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let content_type = match infer::get(bytes) {
        Some(kind) if SIGNED_TYPES.contains(&kind.mime_type()) => kind.mime_type().to_owned(),
        Some(kind) => {
            return Err(FieldError::new(
                "unsupported_type",
                "file",
                format!("{} files are not accepted", kind.mime_type()),
            ))
        }
        None if TEXT_TYPES.contains(&declared.as_str()) && std::str::from_utf8(bytes).is_ok() => {
            declared
        }
        None => {
            return Err(FieldError::new(
                "unsupported_type",
                "file",
                "images, PDF, office documents, plain text and CSV are accepted",
            ))
        }
    };
    Ok(Checked {
        name: clean_name(name),
        content_type,
    })
}

/// The last path component, without control characters, shortened.
fn clean_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let clean = clean.trim().trim_start_matches('.').to_owned();
    if clean.is_empty() {
        "file".to_owned()
    } else {
        clean
    }
}

/// Whether a browser may show the file in the page (images) rather than
/// download it.
pub fn is_image(content_type: &str) -> bool {
    content_type.starts_with("image/")
}

/// Whether the inbox plays the file in the page (call recordings).
pub fn is_audio(content_type: &str) -> bool {
    content_type.starts_with("audio/")
}

/// The sidecar kept next to each file.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    attachment: Attachment,
}

/// Files in a directory, one subdirectory per workspace.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn paths(&self, ws: WorkspaceId, key: &str) -> Option<(PathBuf, PathBuf)> {
        // Only a UUID names a file: nothing from a request walks the tree.
        let key: Uuid = key.parse().ok()?;
        let dir = self.root.join(ws.to_string());
        Some((dir.join(key.to_string()), dir.join(format!("{key}.json"))))
    }

    /// Keeps checked bytes; answers the attachment to put on a message.
    pub async fn put(
        &self,
        ws: WorkspaceId,
        checked: Checked,
        bytes: &[u8],
    ) -> std::io::Result<Attachment> {
        let key = Uuid::now_v7().to_string();
        let (file, meta) = self
            .paths(ws, &key)
            .ok_or_else(|| std::io::Error::other("a new key is a UUID"))?;
        if let Some(dir) = file.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let attachment = Attachment {
            name: checked.name,
            content_type: checked.content_type,
            size: bytes.len() as u64,
            key,
        };
        let sidecar = serde_json::to_vec(&Meta {
            attachment: attachment.clone(),
        })
        .map_err(std::io::Error::other)?;
        write_durably(&file, bytes).await?;
        write_durably(&meta, &sidecar).await?;
        Ok(attachment)
    }

    /// The attachment a key names in the workspace, if there is one.
    pub async fn describe(
        &self,
        ws: WorkspaceId,
        key: &str,
    ) -> std::io::Result<Option<Attachment>> {
        let Some((_, meta)) = self.paths(ws, key) else {
            return Ok(None);
        };
        match tokio::fs::read(&meta).await {
            Ok(bytes) => {
                let meta: Meta = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
                Ok(Some(meta.attachment))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The file's bytes and what it is.
    pub async fn get(
        &self,
        ws: WorkspaceId,
        key: &str,
    ) -> std::io::Result<Option<(Attachment, Vec<u8>)>> {
        let Some(attachment) = self.describe(ws, key).await? else {
            return Ok(None);
        };
        let Some((file, _)) = self.paths(ws, key) else {
            return Ok(None);
        };
        match tokio::fs::read(&file).await {
            Ok(bytes) => Ok(Some((attachment, bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes a file and its sidecar; a file already gone is fine.
    pub async fn delete(&self, ws: WorkspaceId, key: &str) -> std::io::Result<()> {
        let Some((file, meta)) = self.paths(ws, key) else {
            return Ok(());
        };
        for path in [file, meta] {
            match tokio::fs::remove_file(&path).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Writes to a temporary name, syncs, then renames over `path`.
async fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial).await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: [u8; 16] = [
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
    ];

    #[test]
    fn the_type_is_what_the_bytes_are() {
        let png = check("фото.png", "application/octet-stream", &PNG).expect("a PNG");
        assert_eq!(png.content_type, "image/png");
        let text = check("note.txt", "text/plain; charset=utf-8", "привет".as_bytes());
        assert_eq!(text.expect("text").content_type, "text/plain");
        for (name, declared, bytes) in [
            ("x.svg", "image/svg+xml", &b"<svg onload=alert(1)>"[..]),
            ("x.html", "text/html", &b"<script>alert(1)</script>"[..]),
            ("x.exe", "application/x-msdownload", &b"MZ\x90\x00\x03"[..]),
            ("x.txt", "text/plain", &[0xff, 0xfe, 0x00][..]),
        ] {
            let refused = check(name, declared, bytes).expect_err(name);
            assert_eq!(
                (refused.code, refused.field.as_str()),
                ("unsupported_type", "file")
            );
        }
        assert_eq!(
            check("a", "text/plain", b"").expect_err("empty").code,
            "empty"
        );
        let big = vec![b'a'; MAX_BYTES + 1];
        assert_eq!(
            check("a", "text/plain", &big).expect_err("big").code,
            "too_large"
        );
    }

    #[test]
    fn call_recordings_are_audio_by_their_bytes() {
        let wav = [b"RIFF".as_slice(), &[36, 0, 0, 0], b"WAVEfmt "].concat();
        let mp3 = [b"ID3".as_slice(), &[4, 0, 0, 0, 0, 0, 0]].concat();
        let ogg = [b"OggS".as_slice(), &[0, 2, 0, 0, 0, 0, 0, 0, 0, 0]].concat();
        for (bytes, kind) in [
            (wav, "audio/x-wav"),
            (mp3, "audio/mpeg"),
            (ogg, "audio/ogg"),
        ] {
            let checked = check("call.bin", "application/octet-stream", &bytes).expect(kind);
            assert_eq!(checked.content_type, kind);
            assert!(is_audio(&checked.content_type) && !is_image(kind));
        }
        let flac = [b"fLaC".as_slice(), &[0, 0, 0, 34]].concat();
        assert_eq!(
            check("a.flac", "audio/flac", &flac).expect_err("flac").code,
            "unsupported_type"
        );
    }

    #[test]
    fn names_are_plain_file_names() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\olga\\паспорт.jpg"), "паспорт.jpg");
        assert_eq!(clean_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean_name("..."), "file");
        assert_eq!(clean_name(""), "file");
    }

    #[tokio::test]
    async fn files_are_kept_per_workspace_and_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let blobs = BlobStore::new(dir.path());
        let (ws, other) = (WorkspaceId(Uuid::now_v7()), WorkspaceId(Uuid::now_v7()));
        let checked = check("a.png", "image/png", &PNG).expect("png");
        let kept = blobs.put(ws, checked, &PNG).await.expect("put");
        assert_eq!(kept.size, PNG.len() as u64);
        let (read, bytes) = blobs.get(ws, &kept.key).await.expect("get").expect("there");
        assert_eq!((read, bytes), (kept.clone(), PNG.to_vec()));
        assert!(blobs.get(other, &kept.key).await.expect("get").is_none());
        assert!(blobs.get(ws, "../x").await.expect("get").is_none());
        blobs.delete(ws, &kept.key).await.expect("delete");
        assert!(blobs.get(ws, &kept.key).await.expect("get").is_none());
        blobs
            .delete(ws, &kept.key)
            .await
            .expect("deleting twice is fine");
    }
}

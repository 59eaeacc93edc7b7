//! A Docker build context assembled in memory: a recipe folder plus extra files, packed as tar,
//! and the hash that names the resulting image.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

/// The files of one build, by path inside the context.
#[derive(Debug, Default, Clone)]
pub struct BuildContext {
    files: BTreeMap<String, (u32, Vec<u8>)>,
}

impl BuildContext {
    /// Every regular file of `dir` (recursively), keeping the executable bit.
    pub fn from_dir(dir: &Path) -> std::io::Result<Self> {
        let mut context = Self::default();
        context.add_dir(dir, dir)?;
        Ok(context)
    }

    fn add_dir(&mut self, root: &Path, dir: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                self.add_dir(root, &path)?;
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("inside root")
                    .to_string_lossy()
                    .into_owned();
                self.add_file(&rel, &path)?;
            }
        }
        Ok(())
    }

    /// Adds the file at `source` as `name`, keeping its mode.
    pub fn add_file(&mut self, name: &str, source: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(source)?.permissions().mode() & 0o777;
        let bytes = std::fs::read(source)?;
        self.files.insert(name.to_owned(), (mode, bytes));
        Ok(())
    }

    /// Hash of every file (name, mode, content) and of `extra` (base image id, build args):
    /// equal hashes mean an equal image.
    pub fn hash(&self, extra: &[&str]) -> String {
        let mut hasher = Sha256::new();
        for (name, (mode, bytes)) in &self.files {
            hasher.update(name.as_bytes());
            hasher.update(mode.to_le_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        }
        for item in extra {
            hasher.update(item.as_bytes());
            hasher.update([0]);
        }
        crate::docker::hex_digest(&hasher.finalize()[..6])
    }

    /// The context as an uncompressed tar archive.
    pub fn to_tar(&self) -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, (mode, bytes)) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(*mode);
            header.set_mtime(0);
            builder.append_data(&mut header, name, bytes.as_slice())?;
        }
        builder.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_content_and_extra() {
        let dir = std::env::temp_dir().join(format!("fleet-ctx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM x\n").unwrap();
        let a = BuildContext::from_dir(&dir).unwrap();
        assert_eq!(
            a.hash(&["base1"]),
            BuildContext::from_dir(&dir).unwrap().hash(&["base1"])
        );
        assert_ne!(a.hash(&["base1"]), a.hash(&["base2"]));
        std::fs::write(dir.join("Dockerfile"), "FROM y\n").unwrap();
        assert_ne!(
            a.hash(&["base1"]),
            BuildContext::from_dir(&dir).unwrap().hash(&["base1"])
        );
        let tar = a.to_tar().unwrap();
        assert!(tar.len() >= 1024);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

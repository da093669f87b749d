//! Drives a `plinth-vendor` binary for the demo and the fan-out benchmark:
//! its state (SQLite database, package store, signing key) lives in one
//! folder, passed through the vendor's own environment variables.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A vendor's state folder and the binary that works on it.
pub struct VendorCli {
    pub bin: PathBuf,
    pub dir: PathBuf,
}

/// Kills the vendor server when dropped, so a failed run leaves nothing
/// behind.
pub struct VendorServer(pub Child);

impl Drop for VendorServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl VendorCli {
    /// A fresh state folder (emptied if it exists) with a new signing key;
    /// returns the vendor and its public key.
    pub fn fresh(bin: PathBuf, dir: PathBuf) -> Result<(VendorCli, String)> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let vendor = VendorCli { bin, dir };
        let key = vendor.dir.join("vendor.key");
        let out = vendor.run(&["key", "generate", "--out", &key.display().to_string()])?;
        let public = out
            .split_whitespace()
            .find(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()))
            .with_context(|| format!("no public key in the output of key generate: {out}"))?
            .to_owned();
        Ok((vendor, public))
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .env(
                "PLINTH_VENDOR_DB",
                format!("sqlite://{}?mode=rwc", self.dir.join("vendor.db").display()),
            )
            .env("PLINTH_VENDOR_STORE", self.dir.join("store"))
            .env("PLINTH_VENDOR_KEY_FILE", self.dir.join("vendor.key"))
            .env_remove("PLINTH_VENDOR_KEY");
        command
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let out = self
            .command()
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {}", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "plinth-vendor {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Adds customers; returns `(name, token)` pairs.
    pub fn add_customers(&self, names: &[String]) -> Result<Vec<(String, String)>> {
        let mut args = vec!["customer", "add"];
        args.extend(names.iter().map(String::as_str));
        let out = self.run(&args)?;
        let pairs: Vec<(String, String)> = out
            .lines()
            .filter_map(|line| {
                let (name, token) = line.split_once(' ')?;
                Some((name.to_owned(), token.trim().to_owned()))
            })
            .collect();
        if pairs.len() != names.len() {
            bail!(
                "customer add printed {} tokens for {} names",
                pairs.len(),
                names.len()
            );
        }
        Ok(pairs)
    }

    /// Starts `serve` on `bind` with its log in the state folder and waits
    /// until it accepts connections.
    pub fn serve(&self, bind: SocketAddr) -> Result<VendorServer> {
        let log = std::fs::File::create(self.dir.join("serve.log"))?;
        let child = self
            .command()
            .args(["serve", "--bind", &bind.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} serve", self.bin.display()))?;
        let server = VendorServer(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&bind, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "the vendor server did not come up on {bind}; see {}",
                    self.dir.join("serve.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }
}

/// The `plinth-vendor` binary of a `profile` build.
pub fn binary(target: &Path, profile: &str) -> PathBuf {
    target.join(profile).join("plinth-vendor")
}

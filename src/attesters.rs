//! Attester processes over a devnet: `baton attester serve` for each of the devnet's attesters
//! (dev accounts 7, 8 and 9), as children of this process that stop with it (the demo), or left
//! running for `baton devnet down` to stop (`baton devnet up`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use baton_adapters::devnet::{ATTESTERS, DEV_KEYS, DevnetAttester, dev_signer};

/// Attester processes, stopped when dropped unless [`Spawned::detach`]ed.
pub(crate) struct Spawned {
    children: Vec<Child>,
    /// Each one's URL, address and pid.
    pub(crate) attesters: Vec<DevnetAttester>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Spawned {
    /// Leaves the processes running after this value (and this process) is gone.
    pub(crate) fn detach(mut self) -> Vec<DevnetAttester> {
        self.children.clear();
        std::mem::take(&mut self.attesters)
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts the devnet's attesters over the chains of `devnet_file`, each with its config, SQLite
/// state and log in `dir` (`attester-N.toml`, `.db`, `.log`), and waits until each answers.
pub(crate) async fn spawn(devnet_file: &Path, dir: &Path) -> Result<Spawned> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe().context("finding the baton binary")?;
    let devnet_file = std::path::absolute(devnet_file)?;
    let mut spawned = Spawned {
        children: Vec::new(),
        attesters: Vec::new(),
    };
    for (i, k) in ATTESTERS.into_iter().enumerate() {
        let n = i + 1;
        let port = free_port()?;
        let at = |ext: &str| -> Result<PathBuf> {
            Ok(std::path::absolute(
                dir.join(format!("attester-{n}.{ext}")),
            )?)
        };
        let config = at("toml")?;
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{db}\"\nkey = {{ env = \
                 \"BATON_ATTESTER_KEY\" }}\nconfirmations = 2\ndevnet = \"{devnet}\"\n",
                db = at("db")?.display(),
                devnet = devnet_file.display(),
            ),
        )?;
        let child = start(&exe, dir, n, k)?;
        spawned.attesters.push(DevnetAttester {
            url: format!("http://127.0.0.1:{port}/"),
            address: dev_signer(k).address(),
            pid: Some(child.id()),
        });
        spawned.children.push(child);
    }
    answering(&mut spawned, dir).await?;
    Ok(spawned)
}

/// Starts attester `n` (dev account `k`) with its config in `dir` (`attester-N.toml`), logging
/// to `attester-N.log` there.
fn start(exe: &Path, dir: &Path, n: usize, k: usize) -> Result<Child> {
    let config = std::path::absolute(dir.join(format!("attester-{n}.toml")))?;
    let log = std::fs::File::create(dir.join(format!("attester-{n}.log")))?;
    Command::new(exe)
        .args(["attester", "serve", "--config"])
        .arg(&config)
        .env("BATON_ATTESTER_KEY", DEV_KEYS[k])
        .env_remove("BATON_ATTESTER_LISTEN")
        .env_remove("BATON_ATTESTER_DATABASE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting `baton attester serve`")
}

/// Stops the devnet's `attesters` (started by [`spawn`] with their configs in `dir`) and starts
/// them again, on the same ports and state, so they read the devnet file again; waits until each
/// answers.
pub(crate) async fn restart(attesters: &[DevnetAttester], dir: &Path) -> Result<Spawned> {
    let exe = std::env::current_exe().context("finding the baton binary")?;
    baton_adapters::devnet::stop_processes(attesters.iter().filter_map(|a| a.pid), "attester");
    let mut spawned = Spawned {
        children: Vec::new(),
        attesters: Vec::new(),
    };
    for (i, a) in attesters.iter().enumerate() {
        let k = ATTESTERS
            .into_iter()
            .find(|k| dev_signer(*k).address() == a.address)
            .with_context(|| format!("attester {} is not one of the devnet's", a.address))?;
        let child = start(&exe, dir, i + 1, k)?;
        spawned.attesters.push(DevnetAttester {
            pid: Some(child.id()),
            ..a.clone()
        });
        spawned.children.push(child);
    }
    answering(&mut spawned, dir).await?;
    Ok(spawned)
}

/// Waits until each of `spawned` answers its health check (30 s at most).
async fn answering(spawned: &mut Spawned, dir: &Path) -> Result<()> {
    let started = Instant::now();
    for (i, a) in spawned.attesters.iter().enumerate() {
        loop {
            let health = reqwest::get(format!("{}v1/health", a.url)).await;
            if health.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if let Some(status) = spawned.children[i].try_wait()? {
                let log = std::fs::read_to_string(dir.join(format!("attester-{}.log", i + 1)));
                bail!(
                    "attester {} exited ({status}): {}",
                    i + 1,
                    log.unwrap_or_default()
                );
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("attester {} did not answer within 30 s", i + 1);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

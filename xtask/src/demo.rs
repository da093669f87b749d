//! `cargo xtask demo`: the host with the example plugins on the embedded
//! SQLite default, from a fresh clone.
//!
//! Builds the plugins and the host, puts the plugin versions that
//! `config.json` lists into the data dir, prints the URLs to open and runs
//! `plinth serve` in the foreground until Ctrl-C. The usual `PLINTH__…`
//! overrides (`PLINTH__SERVER__BIND`, `PLINTH__DATABASE__URL`,
//! `PLINTH__DATA_DIR`) reach the host unchanged.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::build_plugins;
use crate::util::{cargo, copy_dir, target_dir, workspace_root};

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("demo takes no arguments (got `{arg}`)");
    }
    let root = workspace_root();
    build_plugins::run(&[])?;
    let status = cargo(&root)
        .args(["build", "-p", "plinth-host", "--bin", "plinth"])
        .status()?;
    if !status.success() {
        bail!("building the host failed ({status})");
    }

    let config_path = root.join("config.json");
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    )
    .with_context(|| format!("{} is not valid JSON", config_path.display()))?;
    let data_dir = match std::env::var_os("PLINTH__DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => root.join(config["data_dir"].as_str().unwrap_or("data")),
    };
    let bind = std::env::var("PLINTH__SERVER__BIND").unwrap_or_else(|_| {
        config["server"]["bind"]
            .as_str()
            .unwrap_or("127.0.0.1:8080")
            .to_owned()
    });

    let built = target_dir(&root).join("plugins");
    let mut mounted = Vec::new();
    for entry in config["plugins"].as_array().into_iter().flatten() {
        let (Some(name), Some(version)) = (entry["name"].as_str(), entry["version"].as_str())
        else {
            continue;
        };
        let from = built.join(format!("{name}-{version}"));
        if !from.is_dir() {
            bail!(
                "config.json lists {name} {version}, but `cargo xtask build-plugins` did not produce {}",
                from.display()
            );
        }
        let to = data_dir.join("plugins").join(name).join(version);
        if to.exists() {
            std::fs::remove_dir_all(&to).with_context(|| format!("clearing {}", to.display()))?;
        }
        copy_dir(&from, &to)?;
        mounted.push(name.to_owned());
    }

    let base = format!("http://{bind}");
    println!();
    println!("Plinth demo: {base}/ (admin web)");
    println!("  health        {base}/healthz");
    for name in &mounted {
        println!("  {name:<13} {base}/p/{name}/");
    }
    if mounted.iter().any(|n| n == "goods") {
        println!("  goods API     {base}/p/goods/api/items");
        println!(
            "  try           curl -X POST -H 'content-type: application/json' \
             -d '{{\"sku\":\"A-1\",\"name\":\"Widget\",\"stock\":3}}' {base}/p/goods/api/items"
        );
    }
    println!(
        "Data (SQLite, plugins, compile cache): {}",
        data_dir.display()
    );
    println!("Stop with Ctrl-C.");
    println!();

    let plinth = target_dir(&root).join("debug").join("plinth");
    let status = std::process::Command::new(&plinth)
        .current_dir(&root)
        .args(["serve", "--config"])
        .arg(&config_path)
        .status()
        .with_context(|| format!("running {}", plinth.display()))?;
    if !status.success() {
        bail!("plinth exited with {status}");
    }
    Ok(())
}

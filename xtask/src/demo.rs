//! `cargo xtask demo`: the vendor server and a host connected to it, on
//! the embedded SQLite default, from a fresh clone. The host gets its
//! plugins the way a customer's would: pushed by the vendor.
//!
//! Builds the plugins, the host and the vendor; makes a fresh vendor state
//! in `target/demo/vendor/` (new signing key, customer `demo`), publishes
//! `hello`, `http-hello` and `goods` 1.0.0, assigns them to `demo` and
//! pushes; starts `plinth-vendor serve`, then runs `plinth serve` in the
//! foreground with its upgrade agent pointed at the vendor, until Ctrl-C.
//! The agent downloads, verifies and installs the pushed plugins within
//! seconds of start-up.
//!
//! The host reads `target/demo/config.json`, written from the repo's
//! `config.json` with its plugin list emptied (the push fills it) and the
//! vendor section set. The usual `PLINTH__…` overrides
//! (`PLINTH__SERVER__BIND`, `PLINTH__DATABASE__URL`, `PLINTH__DATA_DIR`)
//! reach the host unchanged; `PLINTH_DEMO_VENDOR_BIND` moves the vendor
//! (default `127.0.0.1:7400`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::build_plugins;
use crate::util::{cargo, target_dir, workspace_root};
use crate::vendor_cli::{self, VendorCli};

const CUSTOMER: &str = "demo";
/// What the vendor publishes and assigns: `(package, assigned range)`.
const RELEASES: &[(&str, &str, &str)] = &[
    ("hello", "0.1.0", "^0.1"),
    ("http-hello", "0.1.0", "^0.1"),
    ("goods", "1.0.0", "^1"),
];

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("demo takes no arguments (got `{arg}`)");
    }
    let root = workspace_root();
    build_plugins::run(&[])?;
    // One package per build: building both in one command unifies their
    // dependencies' features differently and recompiles wasmtime.
    for package in ["plinth-vendor", "plinth-host"] {
        let status = cargo(&root).args(["build", "-p", package]).status()?;
        if !status.success() {
            bail!("building {package} failed ({status})");
        }
    }
    let target = target_dir(&root);
    let demo = target.join("demo");
    let built = target.join("plugins");

    // The vendor: fresh state, the example releases, one customer.
    let (vendor, public_key) =
        VendorCli::fresh(vendor_cli::binary(&target, "debug"), demo.join("vendor"))?;
    let token = vendor.add_customers(&[CUSTOMER.to_owned()])?.remove(0).1;
    for (name, version, range) in RELEASES {
        let zip = built.join(format!("{name}-{version}.zip"));
        vendor.run(&["publish", &zip.display().to_string()])?;
        vendor.run(&["assign", CUSTOMER, name, range])?;
    }
    print!("{}", vendor.run(&["push", CUSTOMER])?);
    let vendor_bind: SocketAddr = std::env::var("PLINTH_DEMO_VENDOR_BIND")
        .unwrap_or_else(|_| "127.0.0.1:7400".to_owned())
        .parse()
        .context("PLINTH_DEMO_VENDOR_BIND is not an address like 127.0.0.1:7400")?;
    let _server = vendor.serve(vendor_bind)?;

    // The host: the repo's config, plugins left to the push.
    let config_path = root.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(
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
    config["data_dir"] = json!(data_dir);
    config["public_dir"] = json!(root.join("public"));
    config["database"]["url"] = json!(format!("sqlite://{}", data_dir.join("plinth.db").display()));
    config["database"]["schema_dir"] = json!(root.join("common-sql"));
    config["plugins"] = json!([]);
    config["vendor"] = json!({
        "endpoint": format!("ws://{vendor_bind}/api/agent"),
        "customer": CUSTOMER,
        "customer_token": token,
        "public_key": public_key,
    });
    let demo_config = demo.join("config.json");
    std::fs::write(&demo_config, serde_json::to_string_pretty(&config)?)
        .with_context(|| format!("writing {}", demo_config.display()))?;

    let base = format!("http://{bind}");
    let vendor_env = format!(
        "PLINTH_VENDOR_DB=sqlite://{}/vendor.db PLINTH_VENDOR_STORE={}/store PLINTH_VENDOR_KEY_FILE={}/vendor.key",
        vendor.dir.display(),
        vendor.dir.display(),
        vendor.dir.display()
    );
    println!();
    println!("Plinth demo");
    println!("  vendor status page  http://{vendor_bind}/");
    println!(
        "  host admin web      {base}/  (sign in as {} / {})",
        config["admin"]["login"].as_str().unwrap_or("admin"),
        config["admin"]["password"]
            .as_str()
            .unwrap_or("dev-admin-password")
    );
    println!(
        "  agent state         {base}/api/admin/agent  (bearer: admin.token from config.json)"
    );
    println!("  health              {base}/healthz");
    for (name, ..) in RELEASES {
        println!("  {name:<19} {base}/p/{name}/");
    }
    println!("  goods API           {base}/p/goods/api/items");
    println!(
        "  try                 curl -X POST -H \"authorization: Bearer $ADMIN_TOKEN\" -H 'content-type: application/json' \
         -d '{{\"sku\":\"A-1\",\"name\":\"Widget\",\"price_cents\":990,\"stock\":3}}' {base}/p/goods/api/items"
    );
    println!(
        "  (plugin routes check the caller first: anonymous gets 401; ADMIN_TOKEN is admin.token from config.json)"
    );
    println!(
        "  role clerk          may read goods (goods.items.read), not write or delete (B_GOODS_ITEM_DELETE): granted by goods' default_roles"
    );
    println!(
        "  clerk's login       {CLERK_LOGIN} / {CLERK_PASSWORD}  (created once goods has arrived)"
    );
    println!("Push an upgrade live, from another terminal:");
    println!(
        "  {vendor_env} {} publish {} --push",
        vendor.bin.display(),
        built.join("goods-1.1.0.zip").display()
    );
    println!(
        "Data (SQLite, plugins, compile cache): {}",
        data_dir.display()
    );
    println!("Stop with Ctrl-C.");
    println!();

    let plinth = target.join("debug").join("plinth");
    let mut host = std::process::Command::new(&plinth)
        .current_dir(&root)
        .args(["serve", "--config"])
        .arg(&demo_config)
        .spawn()
        .with_context(|| format!("running {}", plinth.display()))?;
    let token = config["admin"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    match bind.parse::<SocketAddr>() {
        Ok(addr) => seed_clerk(addr, &token, &mut host),
        Err(_) => eprintln!("demo: {bind} is not an address; the clerk user is not created"),
    }
    let status = host.wait().context("waiting for plinth")?;
    if !status.success() {
        bail!("plinth exited with {status}");
    }
    Ok(())
}

/// The demo's second user: reads goods, may not write or delete.
const CLERK_LOGIN: &str = "clerk";
const CLERK_PASSWORD: &str = "clerk-demo-password";

/// Creates the clerk user through the admin API once goods, whose
/// `default_roles` bring the `clerk` role, has been pushed and installed.
/// Waits at most two minutes and stops early if the host exits.
fn seed_clerk(addr: SocketAddr, token: &str, host: &mut std::process::Child) {
    let user = json!({
        "login": CLERK_LOGIN,
        "display_name": "Clerk",
        "password": CLERK_PASSWORD,
        "roles": ["clerk"],
    })
    .to_string();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(120) {
        if host.try_wait().ok().flatten().is_some() {
            return;
        }
        let answer = crate::util::http_call(
            addr,
            "POST",
            "/api/admin/users",
            Some(token),
            "application/json",
            user.as_bytes(),
        );
        match answer {
            Ok((201, _)) => {
                println!("demo: user {CLERK_LOGIN} created with role clerk");
                return;
            }
            Ok((409, _)) => return,
            // Not listening yet, or the clerk role not there until goods is.
            _ => std::thread::sleep(std::time::Duration::from_millis(500)),
        }
    }
    eprintln!("demo: goods did not arrive within two minutes; the clerk user was not created");
}

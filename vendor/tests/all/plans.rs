//! Publishing, assignments and plans, and which deployments a push makes.

use plinth_package::DeploymentManifest;
use plinth_vendor::VendorError;
use plinth_vendor::db::deployments;
use plinth_vendor::deploy::PushResult;

use crate::support::{TestVendor, all_dbs, package_zip};

fn manifest_of(text: &str) -> DeploymentManifest {
    serde_json::from_str(text).unwrap()
}

fn names(m: &DeploymentManifest) -> Vec<String> {
    m.packages
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect()
}

#[tokio::test]
async fn plan_lists_transitive_dependencies_first_and_picks_newest() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("base", "1.0.0", &[]).await;
        tv.publish("base", "1.3.0", &[]).await;
        tv.publish("base", "2.0.0", &[]).await;
        tv.publish("hello", "0.2.0", &[("base", "^1.1")]).await;
        tv.publish("goods", "1.0.0", &[("hello", "^0.2")]).await;
        tv.publish("goods", "1.1.0", &[("hello", "^0.2")]).await;
        tv.customers(&["acme"]).await;
        let plan = tv
            .vendor
            .assign("acme", "goods", "^1.0")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            plan.to_string(),
            "base 1.3.0, hello 0.2.0, goods 1.1.0",
            "{:?}",
            tv.kind()
        );

        let id = tv.push("acme").await;
        let row = deployments::by_id(&tv.vendor.db, &id)
            .await
            .unwrap()
            .unwrap();
        let m = manifest_of(&row.manifest);
        assert_eq!(names(&m), ["base 1.3.0", "hello 0.2.0", "goods 1.1.0"]);
        assert_eq!(m.packages[2].url, "/packages/goods/1.1.0");
        assert_eq!(m.customer, "acme");
        assert!(m.expires_at > m.issued_at);
        // The stored signature verifies under the vendor's public key.
        let expect = plinth_package::Expectations {
            customer: "acme",
            now: m.issued_at,
            max_clock_skew_secs: 300,
        };
        row.signed().verify(&tv.key.public_key(), &expect).unwrap();
    }
}

#[tokio::test]
async fn unsatisfiable_assignment_gives_a_reason_and_is_never_pushed() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("base", "1.0.0", &[]).await;
        tv.publish("goods", "1.1.0", &[("base", "^2")]).await;
        tv.publish("hello", "0.1.0", &[]).await;
        tv.customers(&["acme", "beta"]).await;
        let unsat = tv
            .vendor
            .assign("acme", "goods", "^1")
            .await
            .unwrap()
            .unwrap_err();
        assert!(unsat.reason.contains("goods"), "{}", unsat.reason);
        assert!(unsat.reason.contains("base"), "{}", unsat.reason);
        assert!(unsat.reason.contains(">=2.0.0, <3.0.0"), "{}", unsat.reason);
        tv.assign("beta", "hello", "*").await;

        // Pushing everyone: beta gets its deployment, acme does not.
        let results = tv.vendor.push(&tv.key, None, 3600).await.unwrap();
        assert_eq!(results.len(), 2);
        assert!(matches!(&results[0], PushResult::Unsatisfiable(u) if u.customer == "acme"));
        assert!(matches!(&results[1], PushResult::Pushed { customer, .. } if customer == "beta"));
        let acme = tv.vendor.customer("acme").await.unwrap();
        assert_eq!(
            deployments::newest(&tv.vendor.db, acme.id).await.unwrap(),
            None
        );
        let beta = tv.vendor.customer("beta").await.unwrap();
        assert!(
            deployments::newest(&tv.vendor.db, beta.id)
                .await
                .unwrap()
                .is_some()
        );

        let only_acme = tv.vendor.push(&tv.key, Some("acme"), 3600).await.unwrap();
        assert!(matches!(&only_acme[..], [PushResult::Unsatisfiable(_)]));
        assert_eq!(
            deployments::newest(&tv.vendor.db, acme.id).await.unwrap(),
            None
        );
    }
}

#[tokio::test]
async fn per_customer_forks_each_get_only_their_own_packages() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.1.0", &[]).await;
        tv.publish("goods-acme", "1.0.0", &[]).await;
        tv.customers(&["acme", "beta"]).await;
        tv.assign("acme", "goods-acme", "^1").await;
        tv.assign("beta", "goods", "^1").await;
        let results = tv.vendor.push(&tv.key, None, 3600).await.unwrap();
        assert!(results.iter().all(PushResult::pushed), "{results:?}");
        for (customer, expected) in [("acme", "goods-acme 1.0.0"), ("beta", "goods 1.1.0")] {
            let c = tv.vendor.customer(customer).await.unwrap();
            let row = deployments::newest(&tv.vendor.db, c.id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(names(&manifest_of(&row.manifest)), [expected]);
        }
    }
}

#[tokio::test]
async fn republishing_the_same_bytes_is_a_no_op_and_other_bytes_are_refused() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        let zip = tv.publish("goods", "1.1.0", &[]).await;
        let again = tv.vendor.publish(&zip).await.unwrap();
        assert!(again.already_published);
        // Same name and version, different contents.
        let other_dir = tempfile::tempdir().unwrap();
        let other = package_zip(other_dir.path(), "goods", "1.1.0", &[("hello", "^0.1")]);
        let err = tv.vendor.publish(&other).await.unwrap_err();
        assert!(matches!(err, VendorError::PublishConflict { .. }), "{err}");
        assert!(err.to_string().contains("bump `version`"), "{err}");
        // An invalid archive is refused with the package error.
        let junk = tv.dir.path().join("junk.zip");
        std::fs::write(&junk, b"not a zip").unwrap();
        let err = tv.vendor.publish(&junk).await.unwrap_err();
        assert!(matches!(err, VendorError::BadPackage { .. }), "{err}");
    }
}

#[tokio::test]
async fn customers_affected_by_a_publish_include_transitive_dependents() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("base", "1.0.0", &[]).await;
        tv.publish("goods", "1.0.0", &[("base", "^1")]).await;
        tv.publish("hello", "0.1.0", &[]).await;
        tv.customers(&["acme", "beta", "gamma"]).await;
        tv.assign("acme", "goods", "^1").await;
        tv.assign("beta", "hello", "*").await;
        tv.assign("gamma", "base", "*").await;
        let affected: Vec<String> = tv
            .vendor
            .customers_affected_by("base")
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(affected, ["acme", "gamma"]);
    }
}

#[tokio::test]
async fn adding_customers_is_all_or_nothing() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.customers(&["acme"]).await;
        let names: Vec<String> = ["beta", "acme", "gamma"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let err = tv.vendor.add_customers(&names, &[]).await.unwrap_err();
        assert!(
            matches!(err, VendorError::CustomerExists(ref n) if n == "acme"),
            "{err}"
        );
        assert!(matches!(
            tv.vendor.customer("beta").await,
            Err(VendorError::UnknownCustomer(_))
        ));
        let err = tv
            .vendor
            .add_customers(&["Bad Name".to_string()], &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("lowercase"), "{err}");

        // Many at once, one transaction, tokens all distinct.
        let many: Vec<String> = (0..1200).map(|i| format!("c-{i:05}")).collect();
        let issued = tv.vendor.add_customers(&many, &[]).await.unwrap();
        assert_eq!(issued.len(), 1200);
        let tokens: std::collections::BTreeSet<&String> = issued.iter().map(|(_, t)| t).collect();
        assert_eq!(tokens.len(), 1200);
        let found = tv
            .vendor
            .customer_by_token(&issued[777].1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.name, "c-00777");
    }
}

#[tokio::test]
async fn customers_added_with_assignments_have_plans_at_once() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.2.0", &[]).await;
        let names: Vec<String> = (0..600).map(|i| format!("shop-{i:04}")).collect();
        let assign = [("goods".to_string(), "^1".to_string())];
        tv.vendor.add_customers(&names, &assign).await.unwrap();
        for name in ["shop-0000", "shop-0599"] {
            let customer = tv.vendor.customer(name).await.unwrap();
            let plan = tv.vendor.plan_of(&customer).await.unwrap().unwrap();
            assert_eq!(plan.to_string(), "goods 1.2.0", "{name}");
        }
        // A bad range refuses the whole call and adds nobody.
        let bad = [("goods".to_string(), "one".to_string())];
        let err = tv
            .vendor
            .add_customers(&["late".to_string()], &bad)
            .await
            .unwrap_err();
        assert!(matches!(err, VendorError::BadRange { .. }), "{err}");
        assert!(matches!(
            tv.vendor.customer("late").await,
            Err(VendorError::UnknownCustomer(_))
        ));
    }
}

#[tokio::test]
async fn unassign_and_cancel_say_what_is_missing() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.customers(&["acme"]).await;
        let err = tv.vendor.unassign("acme", "goods").await.unwrap_err();
        assert!(matches!(err, VendorError::NotAssigned { .. }), "{err}");
        let err = tv.vendor.cancel("acme", "why").await.unwrap_err();
        assert!(matches!(err, VendorError::NothingToCancel(_)), "{err}");
        let err = tv.vendor.assign("nobody", "goods", "*").await.unwrap_err();
        assert!(err.to_string().contains("customer add nobody"), "{err}");
        let err = tv.vendor.assign("acme", "goods", "one").await.unwrap_err();
        assert!(matches!(err, VendorError::BadRange { .. }), "{err}");
    }
}

#[tokio::test]
async fn a_reissue_never_replaces_a_newer_push() {
    for db in all_dbs().await {
        let tv = TestVendor::new(db).await;
        tv.publish("goods", "1.0.0", &[]).await;
        tv.customers(&["acme"]).await;
        tv.assign("acme", "goods", "^1").await;
        let first = tv.push("acme").await;
        let stale = deployments::by_id(&tv.vendor.db, &first)
            .await
            .unwrap()
            .unwrap();
        let second = tv.push("acme").await;
        let reissued = tv.vendor.reissue(&tv.key, &stale, 3600).await.unwrap();
        assert_eq!(reissued, None);
        let acme = tv.vendor.customer("acme").await.unwrap();
        let newest = deployments::newest(&tv.vendor.db, acme.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(newest.id, second);
        assert_eq!(newest.outcome, None);
        let first = deployments::by_id(&tv.vendor.db, &first)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.outcome.as_deref(), Some("superseded"));
    }
}

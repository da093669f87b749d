//! The host schema is applied through a checksummed ledger: a second start
//! applies nothing, and an already-applied file that was edited stops
//! start-up with a message naming the file.

use plinth_host::startup::StartupError;

use crate::support::{TestHost, all_dbs, copy_dir, repo_root, test_config};

#[tokio::test]
async fn an_edited_applied_host_sql_file_stops_start_up() {
    for db in all_dbs().await {
        let data = tempfile::tempdir().expect("temp dir");
        let schema = tempfile::tempdir().expect("temp dir");
        copy_dir(&repo_root().join("common-sql"), schema.path());
        let mut config = test_config(&db, data.path(), &[]);
        config.database.schema_dir = schema.path().to_owned();

        let host = TestHost::start(config.clone()).await.expect("first start");
        host.stop().await;
        let again = TestHost::start(config.clone())
            .await
            .expect("second start applies nothing");
        again.stop().await;

        let dialect = match db.kind {
            crate::support::DbKind::Sqlite => "sqlite",
            crate::support::DbKind::Postgres => "postgres",
            crate::support::DbKind::Mysql => "mysql",
        };
        let file = schema
            .path()
            .join("table/plinth_plugins")
            .join(dialect)
            .join("0001_create.sql");
        let mut sql = std::fs::read_to_string(&file).expect("read");
        sql.push_str("\n-- edited by hand\n");
        std::fs::write(&file, sql).expect("edit");

        let error = match TestHost::start(config).await {
            Ok(_) => panic!("{}: start-up must refuse an edited migration", db.kind),
            Err(e) => e,
        };
        assert!(
            matches!(error, StartupError::Schema(_)),
            "{}: {error}",
            db.kind
        );
        let message = error.to_string();
        assert!(
            message.contains("0001_create.sql") && message.contains("edited"),
            "{}: {message}",
            db.kind
        );
    }
}
